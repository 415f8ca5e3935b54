/**
 * The lifter: turns decoded guest instructions into IR, one basic block at a time.
 *
 * Each instruction's lowering is a few lines because operand access is generic (load(i) /
 * store(i, v) follow the operand table). Ordering rule that keeps exceptions precise: within
 * one guest instruction every op that can fault (LOAD, STORE, HELPER) comes before any PUT of
 * a register and before FLAGS, so when an instruction faults the registers and flags still hold
 * their values from before it, in the interpreter and in compiled code alike.
 *
 * Instructions without a lowering here run their interpreter helper (src/cpu/helpers) through
 * Op.HELPER; instructions with neither raise #UD.
 */
import { CpuException, Unimplemented, Vec } from '../cpu/exceptions.js';
import { CcOp } from '../cpu/flags.js';
import { HELPERS } from '../cpu/helpers/index.js';
import { SSE_HELPERS } from '../cpu/helpers/sse.js';
import { X87_HELPERS } from '../cpu/helpers/x87.js';
import { Reg } from '../cpu/state.js';
import { CpuMode, codeBits, stackBytes } from '../cpu/cpu.js';
import { decode, type FetchByte } from '../frontend/decoder.js';
import { BASE_NONE, type Insn, OpKind, Seg } from '../frontend/insn.js';
import { IrBlock, IrBuilder } from './ir.js';
import { AluOp, Exit, OPS, Op, UnOp } from './ops.js';

/** Longest block, in guest instructions (one with --one-insn-per-tb). */
export const MAX_BLOCK_INSNS = 64;

const CC_B = 2; // condition "below" = CF set
const CC_E = 4;

export class Lifter {
  readonly b: IrBuilder;
  insn!: Insn;
  private eaTemp = -1;
  /** Stack pointer width in bytes (2, 4 or 8). */
  readonly stackSize: number;
  /** Outside 64-bit mode: segment bases apply and linear addresses wrap at 4 GiB. */
  readonly legacy: boolean;

  constructor(
    readonly blk: IrBlock,
    /** Emit TRACK ops at calls and returns (guest profiling). */
    readonly tracking = false,
    /** The CpuMode the block is translated for. */
    readonly mode: number = CpuMode.LONG64,
    /** Bare-metal machine: system instructions run their system helpers. */
    readonly machine = false,
  ) {
    this.b = new IrBuilder(blk);
    this.stackSize = stackBytes(mode);
    this.legacy = codeBits(mode) !== 64;
  }

  /** Start lowering a new guest instruction. */
  begin(insn: Insn): void {
    this.insn = insn;
    this.eaTemp = -1;
    this.b.gi = this.blk.insns.length - 1;
  }

  /** The effective address of the instruction's memory operand (computed once per instruction). */
  addr(): number {
    if (this.eaTemp >= 0) return this.eaTemp;
    const i = this.insn;
    const base = i.base === BASE_NONE ? -1 : this.b.get(i.base, 8);
    const index = i.index < 0 ? -1 : this.b.get(i.index, 8);
    this.eaTemp = this.b.ea(base, index, i.scale, i.disp, i.addrSize, i.seg, this.legacy);
    return this.eaTemp;
  }

  /** The linear address of stack slot `sp` (a stack-width value): SS-relative outside 64-bit mode. */
  stackAddr(sp: number): number {
    if (!this.legacy) return this.b.toaddr(sp);
    return this.b.ea(this.stackSize === 8 ? sp : this.b.ext(sp, 4, 8, false), -1, 1, 0, this.stackSize, Seg.SS, true);
  }

  /** A branch target of `size` bytes as an address (16/32-bit targets are zero-extended offsets). */
  target(v: number, size: number): number {
    return this.b.toaddr(size === 8 ? v : this.b.ext(v, 4, 8, false));
  }

  /** Operand i at its size (I32 for 1/2/4, I64 for 8). */
  load(i: number, size = this.insn.ops[i].size): number {
    const op = this.insn.ops[i];
    switch (op.kind) {
      case OpKind.Reg:
        return this.b.get(op.reg, size, op.hi8);
      case OpKind.Mem:
        return this.b.load(size, this.addr());
      case OpKind.Imm:
        return this.b.constOf(size, op.imm, op.immHi);
    }
    throw new Error(`lift: cannot load operand kind ${op.kind} of ${this.insn.mnem}`);
  }

  store(i: number, v: number): void {
    const op = this.insn.ops[i];
    if (op.kind === OpKind.Reg) this.b.put(op.reg, op.size, v, op.hi8);
    else if (op.kind === OpKind.Mem) this.b.store(op.size, this.addr(), v);
    else throw new Error(`lift: cannot store operand kind ${op.kind} of ${this.insn.mnem}`);
  }

  isMem(i: number): boolean {
    return this.insn.ops[i].kind === OpKind.Mem;
  }

  /** rsp - n, stored at, then rsp updated: the push sequence with the store first (precise faults). */
  push(size: number, v: number): void {
    const w = this.stackSize;
    const rsp = this.b.get(Reg.RSP, w);
    const nrsp = this.b.bin(AluOp.SUB, w, rsp, this.b.constOf(w, size, 0));
    this.b.store(size, this.stackAddr(nrsp), v);
    this.b.put(Reg.RSP, w, nrsp);
  }

  /** Load from the stack top; returns [value, new rsp] — the caller PUTs rsp after any other faulting op. */
  pop(size: number): [number, number] {
    const w = this.stackSize;
    const rsp = this.b.get(Reg.RSP, w);
    const v = this.b.load(size, this.stackAddr(rsp));
    return [v, this.b.bin(AluOp.ADD, w, rsp, this.b.constOf(w, size, 0))];
  }

  /** Set the stack pointer (a stack-width value from pop()). */
  setSp(v: number): void {
    this.b.put(Reg.RSP, this.stackSize, v);
  }

  /** A 0/1 condition widened to the operand size. */
  widen(c: number, size: number): number {
    return size === 8 ? this.b.ext(c, 4, 8, false) : c;
  }
}

type Lowering = (l: Lifter, i: Insn) => void;

const ALU_OPS: Record<string, [AluOp, CcOp, boolean]> = {
  add: [AluOp.ADD, CcOp.ADD, true],
  sub: [AluOp.SUB, CcOp.SUB, true],
  cmp: [AluOp.SUB, CcOp.SUB, false],
  and: [AluOp.AND, CcOp.LOGIC, true],
  test: [AluOp.AND, CcOp.LOGIC, false],
  or: [AluOp.OR, CcOp.LOGIC, true],
  xor: [AluOp.XOR, CcOp.LOGIC, true],
};

function alu(l: Lifter, i: Insn): void {
  const [k, cc, writes] = ALU_OPS[i.mnem];
  const size = i.ops[0].size;
  const o0 = i.ops[0];
  const o1 = i.ops[1];
  // xor/sub r, r: the zero idiom — no dependency on the old value.
  if ((i.mnem === 'xor' || i.mnem === 'sub') && o0.kind === OpKind.Reg && o1.kind === OpKind.Reg && o0.reg === o1.reg && o0.hi8 === o1.hi8) {
    const z = l.b.constOf(size, 0, 0);
    l.store(0, z);
    l.b.flags(cc, size, z, z, -1, z);
    return;
  }
  const a = l.load(0);
  const b = l.load(1, size);
  const r = l.b.bin(k, size, a, b);
  if (writes) l.store(0, r);
  l.b.flags(cc, size, r, b, -1, a);
}

function adcSbb(l: Lifter, i: Insn): void {
  const size = i.ops[0].size;
  const a = l.load(0);
  const b = l.load(1, size);
  const carry = l.b.cond(CC_B);
  const k = i.mnem === 'adc' ? AluOp.ADD : AluOp.SUB;
  const r = l.b.bin(k, size, l.b.bin(k, size, a, b), l.widen(carry, size));
  l.store(0, r);
  l.b.flags(i.mnem === 'adc' ? CcOp.ADC : CcOp.SBB, size, r, b, carry);
}

function incDec(l: Lifter, i: Insn): void {
  const size = i.ops[0].size;
  const cf = l.b.cond(CC_B);
  const a = l.load(0);
  const r = l.b.bin(i.mnem === 'inc' ? AluOp.ADD : AluOp.SUB, size, a, l.b.constOf(size, 1, 0));
  l.store(0, r);
  l.b.flags(i.mnem === 'inc' ? CcOp.INC : CcOp.DEC, size, r, cf);
}

/** Shifts by a constant count lower to IR; by CL they need "flags only if count != 0": a helper. */
function shift(l: Lifter, i: Insn): void {
  if (i.ops[1].kind !== OpKind.Imm) {
    l.b.helper();
    return;
  }
  const size = i.ops[0].size;
  const count = i.ops[1].imm & (size === 8 ? 63 : 31);
  if (count === 0) {
    // Still a memory access (it can fault), but nothing changes, except that a 32-bit register
    // destination is written and so has its upper half zeroed.
    if (l.isMem(0)) l.load(0);
    else if (size === 4) l.store(0, l.load(0));
    return;
  }
  const k = i.mnem === 'shl' ? AluOp.SHL : i.mnem === 'shr' ? AluOp.SHR : AluOp.SAR;
  const a = l.load(0);
  const r = l.b.bin(k, size, a, l.b.const32(count));
  const src = count === 1 ? a : l.b.bin(k, size, a, l.b.const32(count - 1));
  l.store(0, r);
  let s2 = -1;
  if (k === AluOp.SHR) s2 = l.b.bin(AluOp.SHR, 4, size === 8 ? l.b.lo(l.b.bin(AluOp.SHR, 8, a, l.b.const32(32))) : a, l.b.const32(size === 8 ? 31 : size * 8 - 1));
  l.b.flags(k === AluOp.SHL ? CcOp.SHL : k === AluOp.SHR ? CcOp.SHR : CcOp.SAR, size, r, src, s2);
}

function mov(l: Lifter, i: Insn): void {
  const o0 = i.ops[0];
  const o1 = i.ops[1];
  if (o0.kind === OpKind.Seg || o1.kind === OpKind.Seg) {
    l.b.helper();
    return;
  }
  l.store(0, l.load(1, o0.size));
}

function extend(signed: boolean): Lowering {
  return (l, i) => {
    const v = l.load(1);
    l.store(0, l.b.ext(v, i.ops[1].size, i.ops[0].size, signed));
  };
}

function lea(l: Lifter, i: Insn): void {
  // Address arithmetic without a segment base, in the destination's width.
  const size = i.opSize;
  const w = size === 8 ? 8 : 4;
  let v = -1;
  const add = (x: number) => (v = v < 0 ? x : l.b.bin(AluOp.ADD, w, v, x));
  if (i.ripRel) add(l.b.constOf(w, i.disp | 0, Math.floor(i.disp / 4294967296)));
  else {
    if (i.base !== BASE_NONE) add(l.b.get(i.base, w));
    if (i.index >= 0) {
      const x = l.b.get(i.index, w);
      add(i.scale === 1 ? x : l.b.bin(AluOp.SHL, w, x, l.b.const32(Math.log2(i.scale))));
    }
    if (i.disp !== 0 || v < 0) add(l.b.constOf(w, i.disp | 0, i.disp < 0 ? -1 : 0));
  }
  if (i.addrSize === 4 && w === 8) v = l.b.ext(l.b.lo(v), 4, 8, false);
  l.store(0, size === 2 || i.addrSize === 2 ? l.b.bin(AluOp.AND, 4, w === 8 ? l.b.lo(v) : v, l.b.const32(0xffff)) : v);
}

function imul(l: Lifter, i: Insn): void {
  const size = i.ops[0].size;
  const a = l.load(i.mnem === 'imul3' ? 1 : 0);
  const b = l.load(i.mnem === 'imul3' ? 2 : 1, size);
  const r = l.b.mul(size, a, b);
  const ov = l.b.imulovf(size, a, b);
  l.store(0, r);
  l.b.flags(CcOp.MUL, size, r, ov);
}

function negNot(l: Lifter, i: Insn): void {
  const size = i.ops[0].size;
  const a = l.load(0);
  if (i.mnem === 'not') {
    l.store(0, l.b.un(UnOp.NOT, size, a));
    return;
  }
  const r = l.b.un(UnOp.NEG, size, a);
  const zero = l.b.constOf(size, 0, 0);
  l.store(0, r);
  l.b.flags(CcOp.SUB, size, r, a, -1, zero);
}

function push(l: Lifter, i: Insn): void {
  if (i.ops[0].kind === OpKind.Seg) {
    l.b.helper();
    return;
  }
  const size = i.opSize;
  const v = i.ops[0].kind === OpKind.Imm ? l.b.constOf(size, i.ops[0].imm, i.ops[0].imm >> 31) : l.load(0, size);
  l.push(size, v);
}

function pop(l: Lifter, i: Insn): void {
  if (i.ops[0].kind === OpKind.Seg) {
    l.b.helper();
    return;
  }
  const [v, nrsp] = l.pop(i.opSize);
  if (l.isMem(0)) {
    l.store(0, v);
    l.setSp(nrsp);
  } else {
    l.setSp(nrsp);
    l.store(0, v);
  }
}

function call(l: Lifter, i: Insn): void {
  const op = i.ops[0];
  const size = i.opSize;
  const target = op.kind === OpKind.Rel ? -1 : l.target(l.load(0, size), size);
  l.push(size, l.b.constOf(size, i.next | 0, Math.floor(i.next / 4294967296)));
  if (l.tracking) l.b.emit(Op.TRACK, { k: 0, imm: i.addr, a: l.b.get(Reg.RSP, 8) });
  if (op.kind === OpKind.Rel) l.b.jump(op.imm);
  else l.b.jumpi(target);
}

function ret(l: Lifter, i: Insn): void {
  const size = i.opSize;
  const [v, nrsp] = l.pop(size);
  const imm = i.ops.length ? i.ops[0].imm & 0xffff : 0;
  const w = l.stackSize;
  l.setSp(imm ? l.b.bin(AluOp.ADD, w, nrsp, l.b.constOf(w, imm, 0)) : nrsp);
  if (l.tracking && w === 8) l.b.emit(Op.TRACK, { k: 1, imm: i.addr, a: nrsp });
  l.b.jumpi(l.target(v, size));
}

function jmp(l: Lifter, i: Insn): void {
  const op = i.ops[0];
  if (op.kind === OpKind.Rel) l.b.jump(op.imm);
  else l.b.jumpi(l.target(l.load(0, i.opSize), i.opSize));
}

function loopFamily(l: Lifter, i: Insn): void {
  const w = i.addrSize;
  const target = i.ops[0].imm;
  if (i.mnem === 'jrcxz') {
    l.b.branch(l.b.un(UnOp.ISZERO, w, l.b.get(Reg.RCX, w)), target, i.next);
    return;
  }
  const rcx = l.b.bin(AluOp.SUB, w, l.b.get(Reg.RCX, w), l.b.constOf(w, 1, 0));
  l.b.put(Reg.RCX, w, rcx);
  let go = l.b.bin(AluOp.XOR, 4, l.b.un(UnOp.ISZERO, w, rcx), l.b.const32(1));
  if (i.mnem !== 'loop') {
    const zf = l.b.cond(i.mnem === 'loope' ? CC_E : CC_E + 1);
    go = l.b.bin(AluOp.AND, 4, go, zf);
  }
  l.b.branch(go, target, i.next);
}

function cbwFamily(l: Lifter, i: Insn): void {
  const size = i.opSize;
  if (i.mnem === 'cbw') {
    const half = size / 2;
    l.b.put(Reg.RAX, size, l.b.ext(l.b.get(Reg.RAX, half), half, size, true));
    return;
  }
  // cwd/cdq/cqo: rDX = sign of rAX
  l.b.put(Reg.RDX, size, l.b.bin(AluOp.SAR, size, l.b.get(Reg.RAX, size), l.b.const32(size * 8 - 1)));
}

function xchg(l: Lifter, i: Insn): void {
  const a = l.load(0);
  const b = l.load(1);
  if (l.isMem(0)) {
    l.store(0, b);
    l.store(1, a);
  } else {
    l.store(1, a);
    l.store(0, b);
  }
}

function leave(l: Lifter, i: Insn): void {
  const w = l.stackSize;
  const rbp = l.b.get(Reg.RBP, w);
  const v = l.b.load(i.opSize, l.stackAddr(rbp));
  l.setSp(l.b.bin(AluOp.ADD, w, rbp, l.b.constOf(w, i.opSize, 0)));
  l.b.put(Reg.RBP, i.opSize, v);
}

const nothing: Lowering = () => {};

export const LOWERINGS: Record<string, Lowering> = {
  add: alu, sub: alu, cmp: alu, and: alu, or: alu, xor: alu, test: alu,
  adc: adcSbb, sbb: adcSbb,
  inc: incDec, dec: incDec,
  shl: shift, shr: shift, sar: shift,
  mov, movzx: extend(false), movsx: extend(true), movsxd: extend(true), lea,
  imul, imul3: imul, neg: negNot, not: negNot,
  push, pop, call, ret, jmp,
  jcc: (l, i) => l.b.branch(l.b.cond(i.cond), i.ops[0].imm, i.next),
  setcc: (l, i) => l.store(0, l.b.cond(i.cond)),
  cmovcc: (l, i) => {
    const size = i.ops[0].size;
    const c = l.b.cond(i.cond);
    const src = l.load(1);
    l.store(0, l.b.select(size, c, src, l.load(0)));
  },
  jrcxz: loopFamily, loop: loopFamily, loope: loopFamily, loopne: loopFamily,
  cbw: cbwFamily, cwd: cbwFamily,
  xchg, leave,
  nop: nothing, pause: nothing, endbr64: nothing, endbr32: nothing, lfence: nothing, mfence: nothing, sfence: nothing,
  prefetchnta: nothing, prefetcht0: nothing, prefetcht1: nothing, prefetcht2: nothing, prefetchw: nothing,
  syscall: (l, i) => {
    // SYSCALL itself puts the return address in RCX and RFLAGS in R11 before the kernel runs.
    l.b.put(Reg.R11, 8, l.b.ext(l.b.getflags(), 4, 8, false));
    l.b.put(Reg.RCX, 8, l.b.const64(i.next | 0, Math.floor(i.next / 4294967296)));
    l.b.exit(Exit.SYSCALL, i.next);
  },
  hlt: (l, i) => l.b.raise(Vec.GP, 0, i.addr), // CPL 3
  ud2: (l, i) => l.b.raise(Vec.UD, -1, i.addr),
  int3: (l, i) => l.b.exit(Exit.SOFTINT, i.next),
  int1: (l, i) => l.b.exit(Exit.SOFTINT, i.next),
  int: (l, i) => l.b.raise(Vec.GP, ((i.ops[0].imm & 0xff) << 3) | 2, i.addr), // no IDT gate for user INT n (Linux: SIGSEGV)
};

/**
 * The bare-metal machine runs these through their system helpers (IDT delivery, HLT waiting,
 * SYSCALL through the MSRs) instead of the user-mode personality's lowerings above. VMMCALL's
 * helper relies on ending its block: in an SVM guest it records its #VMEXIT and returns
 * (svm/intercept.ts recordInterceptAtEnd).
 */
const MACHINE_SYSTEM = new Set(['hlt', 'int', 'int3', 'int1', 'syscall', 'vmmcall']);

/**
 * The exception an x87 or SSE instruction raises instead of running under CR0.EM/TS/MP and
 * CR4.OSFXSR (SDM Vol 3 §2.5 and Table 13-1), or -1. The mode bits are part of the cache key,
 * so code translated with the FPU available carries no check.
 */
function fpuUnavailable(mnem: string, mode: number): number {
  const ts = (mode & CpuMode.FPU_TS) !== 0;
  const em = (mode & CpuMode.FPU_EM) !== 0;
  if (mnem === 'fwait') return ts && mode & CpuMode.FPU_MP ? Vec.NM : -1;
  if (mnem === 'fxsave' || mnem === 'fxrstor') return ts || em ? Vec.NM : -1;
  if (mnem in X87_HELPERS) return ts || em ? Vec.NM : -1;
  if (mnem in SSE_HELPERS) return em || mode & CpuMode.NO_OSFXSR ? Vec.UD : ts ? Vec.NM : -1;
  return -1;
}

/** Segment, control and debug register operands: moving them can change the CPU mode. */
function isSystemOperand(o: { kind: OpKind }): boolean {
  return o.kind === OpKind.Seg || o.kind === OpKind.Cr || o.kind === OpKind.Dr;
}

/** A system instruction's helper sets RIP itself and the block ends so the runtime can look at the new state. */
function systemEnd(l: Lifter): void {
  l.b.helper();
  l.b.resume(Exit.SYSTEM);
}

/**
 * Translate the basic block at addr (an offset in CS outside 64-bit mode) for CpuMode `mode`.
 * A decode fault in the first instruction becomes a RAISE of it.
 */
export function liftBlock(fetch: FetchByte, addr: number, maxInsns = MAX_BLOCK_INSNS, tracking = false, mode: number = CpuMode.LONG64, machine = false): IrBlock {
  const blk = new IrBlock(addr);
  const l = new Lifter(blk, tracking, mode, machine);
  const bits = codeBits(mode);
  let pc = addr;
  const page = Math.floor(addr / 4096);
  for (let n = 0; ; n++) {
    let insn: Insn;
    try {
      insn = decode(fetch, pc, bits);
    } catch (e) {
      if (!(e instanceof CpuException)) throw e;
      // Fault at this instruction when (and only when) execution reaches it.
      l.b.gi = blk.insns.length;
      blk.error = e;
      l.b.raise(-1, -1, pc);
      return blk;
    }
    blk.insns.push(insn);
    l.begin(insn);
    const fpuFault = machine && mode & (CpuMode.FPU_TRAPS | CpuMode.FPU_TS) ? fpuUnavailable(insn.mnem, mode) : -1;
    if (fpuFault >= 0) {
      l.b.raise(fpuFault, -1, insn.addr);
      return blk;
    }
    const system = machine && (MACHINE_SYSTEM.has(insn.mnem) || (insn.row.end && !LOWERINGS[insn.mnem]) || insn.ops.some(isSystemOperand));
    // In SVM guest mode PAUSE may be intercepted: it runs its helper, which tests the bit.
    const guestPause = (mode & CpuMode.GUEST) !== 0 && insn.mnem === 'pause';
    const lower = system || guestPause ? undefined : LOWERINGS[insn.mnem];
    if (lower) lower(l, insn);
    else if (system && HELPERS[insn.mnem]) systemEnd(l);
    // SSE helpers get their memory operand's address: the JIT runs the common ones inline.
    else if (HELPERS[insn.mnem]) l.b.helper(insn.mnem in SSE_HELPERS && insn.ops.some((o) => o.kind === OpKind.Mem) ? l.addr() : -1);
    else {
      blk.error = new Unimplemented(`instruction '${insn.mnem}' is not implemented (0x${insn.addr.toString(16)}: ${[...insn.bytes].map((x) => x.toString(16).padStart(2, '0')).join(' ')})`);
      l.b.raise(-1, -1, pc);
      return blk;
    }
    const last = blk.code[blk.code.length - 1];
    if (last && OPS[last.op].ends) return blk;
    pc = insn.next;
    if (n + 1 >= maxInsns || Math.floor(pc / 4096) !== page) {
      l.b.jump(pc);
      return blk;
    }
  }
}
