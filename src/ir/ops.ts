/**
 * The IR's operations, declared once. Every other part — the builder, the printer, the
 * validator, the passes, the reference interpreter (interp.ts) and the JIT's emitters
 * (src/jit/emit) — is keyed by these entries, and a test checks that both back ends handle
 * every op.
 *
 * The IR is a straight-line list of instructions per guest basic block over numbered
 * temporaries. A temporary is one of three types: I32 (a JS int32), I64 (two int32 halves —
 * see design.md §2: no BigInt) and ADDR (a JS number holding a signed 64-bit address).
 * Values of 8- and 16-bit operations are I32 holding the zero-extended value.
 */

export const enum Ty {
  NONE = 0,
  I32 = 1,
  I64 = 2,
  ADDR = 3,
}

export const enum Op {
  /** dst:I32 = imm. */
  CONST32,
  /** dst:I64 = imm:immHi. */
  CONST64,
  /** dst = guest register `reg` read at `size` (1/2/4 → I32 zero-extended, 8 → I64); k=1: AH/CH/DH/BH. */
  GET,
  /** guest register `reg` = a at `size` (1/2 merge into the low bits, 4 zero-extends, 8 whole); k=1: high byte. */
  PUT,
  /** dst = a <k:AluOp> b at `size` (I32 for sizes 1/2/4, masked to size; I64 for 8; shift counts are I32). */
  BIN,
  /** dst = <k:UnOp> a at `size`. */
  UN,
  /** dst = a widened: k=0 zero-extend from `size` bytes, k=1 sign-extend from `size` bytes; the result type is I64 when `size2` = 8, else I32. */
  EXT,
  /** dst:I32 = the low half of a:I64. */
  LO,
  /**
   * dst:ADDR = (a + b*scale + disp) truncated to k bytes (8, 4 or 2) + segment base of `reg` (a
   * Seg or -1), the sum wrapped to 32 bits when size2 = 4 (outside 64-bit mode); a, b may be -1.
   */
  EA,
  /** dst:ADDR = a:I64 (a register used as a branch target or an address). */
  TOADDR,
  /** dst = memory[a:ADDR] at `size`. May fault. */
  LOAD,
  /** memory[a:ADDR] = b at `size`. May fault. */
  STORE,
  /** Lazy flags := {k: CcOp, size, dst: a, src: b, src2: c} (c may be -1). The JIT may use `d` (the first operand) for fused conditions. */
  FLAGS,
  /** dst:I32 = condition k (0-15) of the current flags, 0 or 1. */
  COND,
  /** dst:I32 = RFLAGS with the arithmetic flags materialised. */
  GETFLAGS,
  /** RFLAGS = a:I32 (bits masked by imm: only the bits set in imm change). */
  SETFLAGS,
  /** dst = a:I32 ? b : c, at `size` (I64 when 8). */
  SELECT,
  /** dst = low half of a*b at `size` (signed and unsigned agree); I64 when 8. */
  MUL,
  /** dst:I32 = 1 when the signed product a*b at `size` does not fit `size` (IMUL's CF/OF). */
  IMULOVF,
  /**
   * Run the interpreter helper of guest instruction `k` (state written back first, reloaded
   * after). May fault. `a` may hold its memory operand's address for a back end that lowers the
   * instruction inline (jit/vector.ts); the interpreter ignores it.
   */
  HELPER,
  /** End of block: continue at the constant address imm (a direct, chainable exit `k`). */
  JUMP,
  /** End of block: a:I32 ? continue at imm (exit 0) : at imm2 (exit 1). */
  BRANCH,
  /** End of block: continue at a:ADDR (indirect). */
  JUMPI,
  /** End of block: leave to the runtime with exit reason k (Exit), RIP = imm. */
  EXIT,
  /** Raise CpuException(k, imm) at guest instruction boundary (RIP = this instruction). */
  RAISE,
  /**
   * End of block: leave to the runtime with exit reason k; RIP is what the preceding HELPER
   * left in the state (system instructions that transfer control or change the CPU mode).
   */
  RESUME,
  /** Profiling only: a guest CALL (k=0, imm = call-site address, a = the new RSP:I64) or RET (k=1) for the shadow call stack. */
  TRACK,
}

export const enum AluOp {
  ADD, SUB, AND, OR, XOR, SHL, SHR, SAR, ROL, ROR,
}

export const enum UnOp {
  NEG, NOT,
  /** dst:I32 = 1 when a is zero (whatever the size). */
  ISZERO,
}

/** Why a block left to the runtime (Op.EXIT and the runtime's own reasons). */
export const enum Exit {
  /** Not an exit: continue. */
  NONE = 0,
  SYSCALL = 1,
  HLT = 2,
  /** INT3 / INT n / INT1: the runtime raises the exception with RIP after the instruction. */
  SOFTINT = 3,
  /**
   * Machine mode: a system instruction changed state the runtime must look at before running
   * on (CPU mode, interrupt flag, paging, a pending event); RIP is already set.
   */
  SYSTEM = 4,
}

export interface OpInfo {
  name: string;
  /** Does it end a block? */
  ends: boolean;
  /** May it throw a guest exception? */
  faults: boolean;
  /** Does it read the lazy flags / write them? */
  readsFlags: boolean;
  writesFlags: boolean;
  /** Does it have a result? */
  hasDst: boolean;
  meaning: string;
}

function op(name: string, meaning: string, attrs: Partial<OpInfo> = {}): OpInfo {
  return { name, ends: false, faults: false, readsFlags: false, writesFlags: false, hasDst: true, meaning, ...attrs };
}

/** Indexed by Op. */
export const OPS: readonly OpInfo[] = [
  op('const32', 'dst = imm'),
  op('const64', 'dst = imm:immHi'),
  op('get', 'dst = guest register'),
  op('put', 'guest register = a', { hasDst: false }),
  op('bin', 'dst = a <k> b'),
  op('un', 'dst = <k> a'),
  op('ext', 'dst = zero/sign-extend a'),
  op('lo', 'dst = low half of a'),
  op('ea', 'dst = effective address'),
  op('toaddr', 'dst = a as an address'),
  op('load', 'dst = memory[a]', { faults: true }),
  op('store', 'memory[a] = b', { faults: true, hasDst: false }),
  op('flags', 'lazy flags = {k, a, b, c}', { writesFlags: true, hasDst: false }),
  op('cond', 'dst = condition k', { readsFlags: true }),
  op('getflags', 'dst = RFLAGS', { readsFlags: true }),
  op('setflags', 'RFLAGS = a', { writesFlags: true, readsFlags: true, hasDst: false }),
  op('select', 'dst = a ? b : c'),
  op('mul', 'dst = a * b (low half)'),
  op('imulovf', 'dst = signed a*b overflows'),
  op('helper', 'run helper of instruction k', { faults: true, readsFlags: true, writesFlags: true, hasDst: false }),
  op('jump', 'goto imm', { ends: true, hasDst: false, readsFlags: true }),
  op('branch', 'goto a ? imm : imm2', { ends: true, hasDst: false, readsFlags: true }),
  op('jumpi', 'goto a', { ends: true, hasDst: false, readsFlags: true }),
  op('exit', 'leave to the runtime (k)', { ends: true, hasDst: false, readsFlags: true }),
  op('raise', 'raise exception k', { ends: true, faults: true, hasDst: false, readsFlags: true }),
  op('resume', 'leave to the runtime (k) at the RIP a helper set', { ends: true, hasDst: false, readsFlags: true }),
  op('track', 'profiler: guest call (k=0) or return (k=1)', { hasDst: false }),
];

export const ALU_NAMES = ['add', 'sub', 'and', 'or', 'xor', 'shl', 'shr', 'sar', 'rol', 'ror'];
export const UN_NAMES = ['neg', 'not', 'iszero'];
