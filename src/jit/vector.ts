/**
 * Inline JavaScript for the hot SSE2 instructions, so compiled code runs them on the XMM lanes
 * in the state array instead of calling their interpreter helper (which spills and reloads
 * registers around the call and copies operands through scratch vectors).
 *
 * An XMM register is four int32 lanes at S.XMM + 4*reg (lane 0 = bytes 0-3), and the same bytes
 * are two doubles of the state's Float64Array. Every lowering reads all source and destination
 * lanes into block-scoped constants before it writes, so operands may alias, and reads a memory
 * source completely before changing anything, so a fault leaves the instruction restartable
 * (the unit's fault path reports it at this instruction). Aligned forms check the 16-byte
 * alignment their helpers check (#GP(0)). Instructions or forms not listed here keep their
 * helper; the helper remains the definition of the semantics, and the differential vectors run
 * every form in all three execution modes.
 *
 * Double-precision arithmetic runs as JavaScript doubles, which are IEEE round-to-nearest, on a
 * fast path guarded so that it cannot differ from the helper: MXCSR rounds to nearest with PE
 * already recorded and masked (so an inexact result changes nothing), and every operand and
 * result is a normal finite number or an exact zero (so no NaN, denormal, overflow, underflow or
 * divide-by-zero case, each of which sets a flag or needs exact NaN bits). Anything else runs
 * the helper, which then re-reads the operands (a memory source is read twice: harmless for RAM,
 * and SSE arithmetic on device memory is not something guests do).
 */
import type * as E from 'estree';
import { F, S } from '../cpu/state.js';
import { raw } from './js.js';
import { type Insn, OpKind } from '../frontend/insn.js';

/** Lane expressions of the destination (y0-y3) and source (x0-x3), and the result lanes to write. */
type LaneOp = (imm: number) => [string, string, string, string];

const lanes = (f: (k: number) => string): [string, string, string, string] => [f(0), f(1), f(2), f(3)];

/** Lane-wise int32 operations. */
const dword = (f: (y: string, x: string) => string): LaneOp => () => lanes((k) => f(`y${k}`, `x${k}`));
/** Two 16-bit lanes per int32, computed separately. */
const words = (lo: (y: string, x: string) => string, hi: (y: string, x: string) => string): LaneOp => () =>
  lanes((k) => `((${lo(`y${k}`, `x${k}`)}) & 0xffff) | ((${hi(`y${k}`, `x${k}`)}) << 16)`);

const LANE_OPS: Record<string, LaneOp> = {
  paddd: dword((y, x) => `(${y} + ${x}) | 0`),
  psubd: dword((y, x) => `(${y} - ${x}) | 0`),
  pand: dword((y, x) => `${y} & ${x}`),
  andps: dword((y, x) => `${y} & ${x}`),
  andpd: dword((y, x) => `${y} & ${x}`),
  pandn: dword((y, x) => `~${y} & ${x}`),
  andnps: dword((y, x) => `~${y} & ${x}`),
  andnpd: dword((y, x) => `~${y} & ${x}`),
  por: dword((y, x) => `${y} | ${x}`),
  orps: dword((y, x) => `${y} | ${x}`),
  orpd: dword((y, x) => `${y} | ${x}`),
  pxor: dword((y, x) => `${y} ^ ${x}`),
  xorps: dword((y, x) => `${y} ^ ${x}`),
  xorpd: dword((y, x) => `${y} ^ ${x}`),
  pcmpeqd: dword((y, x) => `${y} === ${x} ? -1 : 0`),
  pcmpgtd: dword((y, x) => `${y} > ${x} ? -1 : 0`),
  paddw: words((y, x) => `${y} + ${x}`, (y, x) => `(${y} >>> 16) + (${x} >>> 16)`),
  psubw: words((y, x) => `${y} - ${x}`, (y, x) => `(${y} >>> 16) - (${x} >>> 16)`),
  // Products of two signed 16-bit values fit an int32 exactly.
  pmullw: words((y, x) => `Math.imul(${y} << 16 >> 16, ${x} << 16 >> 16)`, (y, x) => `Math.imul(${y} >> 16, ${x} >> 16)`),
  pmulhw: words((y, x) => `Math.imul(${y} << 16 >> 16, ${x} << 16 >> 16) >> 16`, (y, x) => `Math.imul(${y} >> 16, ${x} >> 16) >> 16`),
  // Unsigned products stay below 2^32: exact doubles, and >>> 16 takes their high word.
  pmulhuw: words((y, x) => `((${y} & 0xffff) * (${x} & 0xffff)) >>> 16`, (y, x) => `((${y} >>> 16) * (${x} >>> 16)) >>> 16`),
  // Bytes: SWAR add/sub without carries between lanes.
  paddb: dword((y, x) => `((${y} & 0x7f7f7f7f) + (${x} & 0x7f7f7f7f)) ^ ((${y} ^ ${x}) & 0x80808080)`),
  psubb: dword((y, x) => `((${y} | 0x80808080) - (${x} & 0x7f7f7f7f)) ^ ((${y} ^ ~${x}) & 0x80808080)`),
  // 64-bit lanes as (lo, hi) pairs.
  paddq: () => {
    const q = (l: number) => [`(y${l} + x${l}) | 0`, `(y${l + 1} + x${l + 1} + (((y${l} + x${l}) >>> 0) < (x${l} >>> 0) ? 1 : 0)) | 0`];
    return [...q(0), ...q(2)] as [string, string, string, string];
  },
  psubq: () => {
    const q = (l: number) => [`(y${l} - x${l}) | 0`, `(y${l + 1} - x${l + 1} - ((y${l} >>> 0) < (x${l} >>> 0) ? 1 : 0)) | 0`];
    return [...q(0), ...q(2)] as [string, string, string, string];
  },
  // Interleaves.
  punpcklwd: () => ['(y0 & 0xffff) | (x0 << 16)', '(y0 >>> 16) | (x0 & -65536)', '(y1 & 0xffff) | (x1 << 16)', '(y1 >>> 16) | (x1 & -65536)'],
  punpckhwd: () => ['(y2 & 0xffff) | (x2 << 16)', '(y2 >>> 16) | (x2 & -65536)', '(y3 & 0xffff) | (x3 << 16)', '(y3 >>> 16) | (x3 & -65536)'],
  punpckldq: () => ['y0', 'x0', 'y1', 'x1'],
  punpckhdq: () => ['y2', 'x2', 'y3', 'x3'],
  punpcklqdq: () => ['y0', 'y1', 'x0', 'x1'],
  punpckhqdq: () => ['y2', 'y3', 'x2', 'x3'],
  unpcklps: () => ['y0', 'x0', 'y1', 'x1'],
  unpckhps: () => ['y2', 'x2', 'y3', 'x3'],
  unpcklpd: () => ['y0', 'y1', 'x0', 'x1'],
  unpckhpd: () => ['y2', 'y3', 'x2', 'x3'],
  pshufd: (imm) => lanes((k) => `x${(imm >>> (2 * k)) & 3}`),
  // Unsigned 32x32 -> 64-bit products of lanes 0 and 2 (rt.mulU32 leaves the high half in rt.hi).
  pmuludq: () => ['rt.mulU32(y0, x0)', 'rt.hi', 'rt.mulU32(y2, x2)', 'rt.hi'],
};

/** Shifts by an immediate count: [lane op for counts in range, result when the count is too large]. */
function shiftImm(mnem: string, c: number): [string, string, string, string] | null {
  switch (mnem) {
    case 'pslld': return lanes((k) => (c > 31 ? '0' : `y${k} << ${c}`));
    case 'psrld': return lanes((k) => (c > 31 ? '0' : `y${k} >>> ${c}`));
    case 'psrad': return lanes((k) => `y${k} >> ${Math.min(c, 31)}`);
    case 'psllq': case 'psrlq': {
      const left = mnem === 'psllq';
      const q = (l: number): [string, string] => {
        if (c === 0) return [`y${l}`, `y${l + 1}`];
        if (c > 63) return ['0', '0'];
        if (left) return c >= 32 ? ['0', `y${l} << ${c - 32}`] : [`y${l} << ${c}`, `(y${l + 1} << ${c}) | (y${l} >>> ${32 - c})`];
        return c >= 32 ? [`y${l + 1} >>> ${c - 32}`, '0'] : [`(y${l} >>> ${c}) | (y${l + 1} << ${32 - c})`, `y${l + 1} >>> ${c}`];
      };
      return [...q(0), ...q(2)] as [string, string, string, string];
    }
  }
  return null;
}

/** 16-byte moves: which may be unaligned. */
const MOVES: Record<string, boolean> = { movdqa: false, movaps: false, movapd: false, movdqu: true, movups: true, movupd: true };

/** Lane code is built as source text and printed verbatim (js.ts raw). */
const source = (src: string): E.Statement[] => [raw(src)];

const xmm = (reg: number) => S.XMM + 4 * reg;

/** Read the source operand's four lanes into x0-x3 (memory first checks alignment; rt.v is scratch). */
function readSource(insn: Insn, addr: string | null, unaligned: boolean): string {
  const src = insn.ops[1];
  if (src.kind === OpKind.Xmm) return lanes((k) => `const x${k} = s[${xmm(src.reg) + k}];`).join(' ');
  return `${alignCheck(addr, unaligned)} mem.readVec(${addr}, rt.v, 0); ${lanes((k) => `const x${k} = rt.v[${k}];`).join(' ')}`;
}

const alignCheck = (addr: string | null, unaligned: boolean) => (unaligned ? '' : `if (${addr} % 16 !== 0) throw new CpuException(13, 0);`);

/** What a lowering needs from the code generator. */
export interface VectorContext {
  /** The temporary holding the memory operand's linear address, if the instruction has one. */
  addr: string | null;
  /** JS statements running the instruction's helper: the slow path of the guarded FP lowerings. */
  slow: string;
  /** The JS locals (low, high half) of general register `reg`. */
  gpr(reg: number): [string, string];
}

// ---- double precision

const f64Of = (reg: number, lane: number) => `f64[${xmm(reg) / 2 + lane}]`;
const MIN_NORMAL = '2.2250738585072014e-308';
const MAX_FINITE = '1.7976931348623157e308';
/**
 * Normal and finite, strictly above the smallest normal: a result that rounds up to exactly
 * that value may still have been tiny before rounding (an underflow), so it takes the helper.
 */
const normal = (x: string) => `(Math.abs(${x}) > ${MIN_NORMAL} && Math.abs(${x}) <= ${MAX_FINITE})`;
const normalOrZero = (x: string) => `(${x} === 0 || ${normal(x)})`;
/** MXCSR rounds to nearest, PE is set and masked: the fast path's flag state (RC, PM, PE bits). */
const SETTLED = `(s[${S.MXCSR}] & 0x7020) === 0x1020`;

interface FpArith {
  /** The result of one lane from destination a and source b. */
  op: (a: string, b: string) => string;
  /** When a zero result is exact (else a zero from non-zero operands was an underflow). */
  zeroExact: (a: string, b: string) => string;
  unary?: boolean;
}

const FP_ARITH: Record<string, FpArith> = {
  add: { op: (a, b) => `${a} + ${b}`, zeroExact: () => 'true' },
  sub: { op: (a, b) => `${a} - ${b}`, zeroExact: () => 'true' },
  mul: { op: (a, b) => `${a} * ${b}`, zeroExact: (a, b) => `(${a} === 0 || ${b} === 0)` },
  div: { op: (a, b) => `${a} / ${b}`, zeroExact: (a) => `${a} === 0` },
  sqrt: { op: (_a, b) => `Math.sqrt(${b})`, zeroExact: () => 'true', unary: true },
  // MIN/MAX return the source when the operands are equal (zeros of either sign): JS's
  // comparison gives exactly that. They round nothing, so need no MXCSR state.
  min: { op: (a, b) => `${a} < ${b} ? ${a} : ${b}`, zeroExact: () => 'true' },
  max: { op: (a, b) => `${a} > ${b} ? ${a} : ${b}`, zeroExact: () => 'true' },
};

/** Read the double-precision source lanes into b0 (and b1 for packed forms). */
function readDoubles(insn: Insn, ctx: VectorContext, lanes: number): string | null {
  const src = insn.ops[1];
  if (src.kind === OpKind.Xmm) return Array.from({ length: lanes }, (_, k) => `const b${k} = ${f64Of(src.reg, k)};`).join(' ');
  if (src.kind !== OpKind.Mem || !ctx.addr) return null;
  if (lanes === 1) return `const b0 = mem.readF64(${ctx.addr});`;
  return `if (${ctx.addr} % 16 !== 0) throw new CpuException(13, 0); const b0 = mem.readF64(${ctx.addr}), b1 = mem.readF64(${ctx.addr} + 8);`;
}

/** ADDSD … MAXPD: a guarded fast path per the header, else the helper. */
function fpArith(insn: Insn, ctx: VectorContext): string | null {
  const m = /^(add|sub|mul|div|sqrt|min|max)(sd|pd)$/.exec(insn.mnem);
  const dst = insn.ops[0];
  if (!m || dst.kind !== OpKind.Xmm || insn.ops.length !== 2) return null;
  const f = FP_ARITH[m[1]];
  const lanes = m[2] === 'sd' ? 1 : 2;
  const read = readDoubles(insn, ctx, lanes);
  if (!read) return null;
  const rounds = m[1] !== 'min' && m[1] !== 'max';
  const guards: string[] = rounds ? [SETTLED] : [];
  const body: string[] = [read];
  const writes: string[] = [];
  for (let k = 0; k < lanes; k++) {
    const a = `a${k}`, b = `b${k}`, r = `r${k}`;
    body.push(`const ${a} = ${f64Of(dst.reg, k)}, ${r} = ${f.op(a, b)};`);
    if (!f.unary) guards.push(normalOrZero(a));
    guards.push(normalOrZero(b), `(${normal(r)} || (${r} === 0 && ${f.zeroExact(a, b)}))`);
    writes.push(`${f64Of(dst.reg, k)} = ${r};`);
  }
  return `{ ${body.join(' ')} if (${guards.join(' && ')}) { ${writes.join(' ')} } else { ${ctx.slow} } }`;
}

/**
 * UCOMISD/COMISD: ZF, PF, CF from the comparison, OF, SF, AF cleared. The word goes to RFLAGS
 * (the lazy record becomes EFLAGS) and stays in the local `fw`, so a following Jcc tests it
 * without a call. Fast path: both operands normal or zero (no NaN: IE for COMISD or a signaling
 * one; no denormal: DE).
 */
function fpCompare(insn: Insn, ctx: VectorContext): string | null {
  const dst = insn.ops[0];
  if ((insn.mnem !== 'ucomisd' && insn.mnem !== 'comisd') || dst.kind !== OpKind.Xmm) return null;
  const read = readDoubles(insn, ctx, 1);
  if (!read) return null;
  const flags = S.FLAGS, keep = ~F.OSZAPC;
  return `{ ${read} const a0 = ${f64Of(dst.reg, 0)}; if (${normalOrZero('a0')} && ${normalOrZero('b0')}) { fw = a0 < b0 ? ${F.CF} : a0 === b0 ? ${F.ZF} : 0; s[${flags}] = (s[${flags}] & ${keep}) | fw; s[${S.CC_OP}] = 0; } else { ${ctx.slow} fw = s[${flags}]; } fop = -1; }`;
}

/** Source value of an integer operand (register local or memory) as [lo, hi] expressions, after `pre`. */
function readInteger(op: Insn['ops'][number], ctx: VectorContext): { pre: string; lo: string; hi: string } | null {
  if (op.kind === OpKind.Reg && !op.hi8) {
    const [lo, hi] = ctx.gpr(op.reg);
    return { pre: '', lo, hi: op.size === 8 ? hi : '0' };
  }
  if (op.kind !== OpKind.Mem || !ctx.addr) return null;
  if (op.size === 8) return { pre: `const vl = mem.read64(${ctx.addr}), vh = mem.hi;`, lo: 'vl', hi: 'vh' };
  if (op.size === 4) return { pre: `const vl = mem.read32(${ctx.addr});`, lo: 'vl', hi: '0' };
  return null;
}

/** CVTSI2SD: an int32 converts exactly; an int64 beyond 2^53 rounds, so needs the settled MXCSR. */
function intToDouble(insn: Insn, ctx: VectorContext): string | null {
  const [dst, src] = insn.ops;
  if (dst.kind !== OpKind.Xmm || (src.size !== 4 && src.size !== 8)) return null;
  const v = readInteger(src, ctx);
  if (!v) return null;
  const out = f64Of(dst.reg, 0);
  if (src.size === 4) return `{ ${v.pre} ${out} = ${v.lo}; }`;
  // |value| < 2^53 when the high half is within ±2^21: then hi*2^32 + lo is exact.
  return `{ ${v.pre} const vh2 = ${v.hi}; if ((vh2 >= -2097152 && vh2 < 2097152) || ${SETTLED}) ${out} = vh2 * 4294967296 + (${v.lo} >>> 0); else { ${ctx.slow} } }`;
}

/**
 * CVTTSD2SI: truncation needs no rounding mode; a fraction is inexact, so it needs PE settled
 * (masked and set) unless the value is integral; out of range or NaN takes the helper (IE and
 * the integer indefinite).
 */
function doubleToInt(insn: Insn, ctx: VectorContext): string | null {
  const [dst, src] = insn.ops;
  if (dst.kind !== OpKind.Reg || (dst.size !== 4 && dst.size !== 8)) return null;
  const read = readDoubles(insn, ctx, 1);
  if (!read || (src.kind === OpKind.Mem && src.size !== 8)) return null;
  const [lo, hi] = ctx.gpr(dst.reg);
  const exactOrSettled = `((s[${S.MXCSR}] & 0x1020) === 0x1020 || b0 === Math.trunc(b0))`;
  if (dst.size === 4) return `{ ${read} if (b0 > -2147483649 && b0 < 2147483648 && ${exactOrSettled}) { ${lo} = b0 | 0; ${hi} = 0; } else { ${ctx.slow} } }`;
  return `{ ${read} if (b0 >= -9223372036854775808 && b0 < 9223372036854775808 && ${exactOrSettled}) { const t = Math.trunc(b0), th = Math.floor(t / 4294967296); ${lo} = (t - th * 4294967296) | 0; ${hi} = th | 0; } else { ${ctx.slow} } }`;
}

/**
 * MOVSD/MOVQ/MOVD/MOVLPD/MOVHPD: exact bit copies (int32 lanes, never through a double, so NaN
 * payloads survive). Loads into a register zero the lanes above the value, except MOVSD
 * between registers and MOVLPD/MOVHPD, which replace one quadword.
 */
/** MOVLPD/MOVLPS/MOVHPD/MOVHPS: the first lane of the quadword they replace (the rest is kept). */
const QUADWORD_MOVES: Record<string, number> = { movlpd: 0, movlps: 0, movhpd: 2, movhps: 2 };

function moveScalar(insn: Insn, ctx: VectorContext): string | null {
  const [dst, src] = insn.ops;
  const mnem = insn.mnem;
  const quad = QUADWORD_MOVES[mnem];
  if ((quad === undefined && mnem !== 'movsd' && mnem !== 'movq' && mnem !== 'movd') || insn.ops.length !== 2) return null;
  const half = quad ?? 0; // first lane of the quadword moved
  if (dst.kind === OpKind.Xmm) {
    const d = xmm(dst.reg);
    const keepsUpper = quad !== undefined || (mnem === 'movsd' && src.kind === OpKind.Xmm);
    let pre: string, lo: string, hi: string;
    if (src.kind === OpKind.Xmm) {
      if (mnem !== 'movsd' && mnem !== 'movq') return null; // the register forms of MOVLPS/MOVHPS are MOVHLPS/MOVLHPS
      pre = `const vl = s[${xmm(src.reg)}], vh = s[${xmm(src.reg) + 1}];`;
      lo = 'vl';
      hi = 'vh';
    } else {
      const v = readInteger(src, ctx);
      if (!v) return null;
      ({ pre, lo, hi } = v);
      if (src.kind === OpKind.Reg && mnem !== 'movd' && mnem !== 'movq') return null;
    }
    const upper = keepsUpper ? '' : `s[${d + 2}] = 0; s[${d + 3}] = 0;`;
    return `{ ${pre} s[${d + half}] = ${lo}; s[${d + half + 1}] = ${hi}; ${upper} }`;
  }
  if (src.kind !== OpKind.Xmm) return null;
  const x = xmm(src.reg) + half;
  if (dst.kind === OpKind.Reg && (mnem === 'movd' || mnem === 'movq') && !dst.hi8) {
    const [lo, hi] = ctx.gpr(dst.reg);
    return dst.size === 8 ? `{ ${lo} = s[${x}]; ${hi} = s[${x + 1}]; }` : dst.size === 4 ? `{ ${lo} = s[${x}]; ${hi} = 0; }` : null;
  }
  if (dst.kind !== OpKind.Mem || !ctx.addr) return null;
  if (dst.size === 4) return `mem.write32(${ctx.addr}, s[${x}]);`;
  if (dst.size === 8) return `mem.write64(${ctx.addr}, s[${x}], s[${x + 1}]);`;
  return null;
}

/** Mnemonics whose inline forms may read or write general registers (the code generator keeps those in locals). */
export const GPR_FORMS = new Set(['movd', 'movq', 'cvtsi2sd', 'cvttsd2si']);

/**
 * JS statements for `insn`, or null when this instruction or form keeps its helper.
 */
export function inlineVector(insn: Insn, ctx: VectorContext): E.Statement[] | null {
  const scalar = fpArith(insn, ctx) ?? fpCompare(insn, ctx) ?? moveScalar(insn, ctx) ??
    (insn.mnem === 'cvtsi2sd' ? intToDouble(insn, ctx) : insn.mnem === 'cvttsd2si' ? doubleToInt(insn, ctx) : null);
  if (scalar) return source(scalar);
  return inlinePacked(insn, ctx.addr);
}

/** The integer and 16-byte move forms (no FP state involved). */
function inlinePacked(insn: Insn, addr: string | null): E.Statement[] | null {
  const ops = insn.ops;
  const dst = ops[0];
  if (!dst) return null;
  const move = MOVES[insn.mnem];
  if (move !== undefined) {
    // Memory operands move straight between memory and the register's lanes in the state.
    const src = ops[1];
    if (dst.kind === OpKind.Xmm && src.kind === OpKind.Xmm) return source(`{ ${readSource(insn, addr, move)} ${lanes((k) => `s[${xmm(dst.reg) + k}] = x${k};`).join(' ')} }`);
    if (!addr) return null;
    if (dst.kind === OpKind.Xmm) return source(`{ ${alignCheck(addr, move)} mem.readVec(${addr}, s, ${xmm(dst.reg)}); }`);
    if (src.kind === OpKind.Xmm) return source(`{ ${alignCheck(addr, move)} mem.writeVec(${addr}, s, ${xmm(src.reg)}); }`);
    return null;
  }
  if (dst.kind !== OpKind.Xmm) return null;
  const d = xmm(dst.reg);
  const readDst = lanes((k) => `const y${k} = s[${d + k}];`).join(' ');
  // Lanes are written in order, so an rt.hi after its rt.mulU32 reads the right product.
  const write = (r: string[]) => r.map((e, k) => `s[${d + k}] = ${e};`).join(' ');
  if (ops.length === 2 && ops[1].kind === OpKind.Imm) {
    const r = shiftImm(insn.mnem, ops[1].imm & 0xff);
    return r ? source(`{ ${readDst} ${write(r)} }`) : null;
  }
  const op = LANE_OPS[insn.mnem];
  if (!op || ops.length < 2 || (ops[1].kind === OpKind.Mem && !addr) || (ops[1].kind !== OpKind.Mem && ops[1].kind !== OpKind.Xmm)) return null;
  if (ops[1].size !== 16) return null;
  const imm = ops.length > 2 ? ops[2].imm & 0xff : 0;
  return source(`{ ${readSource(insn, addr, false)} ${readDst} ${write(op(imm))} }`);
}
