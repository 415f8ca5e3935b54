/**
 * Lazy flags. Flag-setting instructions do not compute RFLAGS; they record the kind of
 * operation (CcOp) with its size and operands in the state (S.CC_OP, CC_DST, CC_SRC,
 * CC_SRC2), and the six arithmetic flags are derived only when something reads them. Inside
 * a compiled block the JIT goes further: it knows the producing op at compile time, so a
 * `cmp; jl` becomes one JS comparison and flags nobody reads are never written
 * (jit/flags). This file is the single definition of what each CcOp means; the IR
 * interpreter, the JIT's slow path and every helper use it.
 *
 * CC_OP holds op * 4 + log2(size): size is part of the op so a reader needs one load.
 *
 * What each op stores (d = result, b = second operand, a = first operand):
 *   ADD/SUB: dst=d, src=b            ADC/SBB: dst=d, src=b, src2=carry in (0/1)
 *   LOGIC: dst=d                     INC/DEC: dst=d, src=CF before the instruction
 *   SHL: dst=d, src=a<<(n-1)         SHR: dst=d, src=a>>>(n-1), src2=a's sign bit (OF)
 *   SAR: dst=d, src=a>>(n-1)         MUL: dst=low result, src=1 when CF=OF=1
 *   EFLAGS: OSZAPC are in S.FLAGS itself.
 * Values of size < 8 are stored as int32 holding the zero- or sign-extended value; readers
 * mask by size. Only size-8 ops use the _HI slots.
 */
import type { Cpu } from './cpu.js';
import { F, S } from './state.js';

export const enum CcOp {
  EFLAGS = 0,
  ADD = 1,
  ADC = 2,
  SUB = 3,
  SBB = 4,
  LOGIC = 5,
  INC = 6,
  DEC = 7,
  SHL = 8,
  SHR = 9,
  SAR = 10,
  MUL = 11,
}

export const CC_OP_NAMES = ['eflags', 'add', 'adc', 'sub', 'sbb', 'logic', 'inc', 'dec', 'shl', 'shr', 'sar', 'mul'];

/** log2 of an operand size in bytes (1, 2, 4, 8 -> 0..3). */
export function sizeLog(size: number): number {
  return size === 1 ? 0 : size === 2 ? 1 : size === 4 ? 2 : 3;
}

/** Parity flag of the low byte of x. */
export function parity(x: number): number {
  x &= 0xff;
  x ^= x >>> 4;
  x ^= x >>> 2;
  x ^= x >>> 1;
  return (x & 1) === 0 ? F.PF : 0;
}

/** Unsigned a < b for 64-bit pairs. */
function ltu64(al: number, ah: number, bl: number, bh: number): boolean {
  return ah >>> 0 < bh >>> 0 || (ah === bh && al >>> 0 < bl >>> 0);
}

/**
 * OSZAPC for a lazy-flags record. For sizes below 8, dh/sh are ignored.
 * This is the reference semantics; it allocates nothing.
 */
export function computeFlags(op: number, szLog: number, dl: number, dh: number, sl: number, sh: number, s2: number): number {
  if (szLog === 3) return computeFlags64(op, dl, dh, sl, sh, s2);
  const bits = 8 << szLog; // 8, 16, 32
  const mask = bits === 32 ? -1 : (1 << bits) - 1;
  const sign = bits === 32 ? 0x80000000 | 0 : 1 << (bits - 1);
  const d = dl & mask;
  const b = sl & mask;
  let f = parity(d) | (d === 0 ? F.ZF : 0) | (d & sign ? F.SF : 0);
  switch (op) {
    case CcOp.ADD:
    case CcOp.ADC: {
      const c = op === CcOp.ADC ? s2 & 1 : 0;
      const a = (d - b - c) & mask;
      if (c ? d >>> 0 <= b >>> 0 : d >>> 0 < b >>> 0) f |= F.CF;
      if ((a ^ d) & (b ^ d) & sign) f |= F.OF;
      f |= (a ^ b ^ d) & F.AF;
      return f;
    }
    case CcOp.SUB:
    case CcOp.SBB: {
      const c = op === CcOp.SBB ? s2 & 1 : 0;
      const a = (d + b + c) & mask;
      if (c ? a >>> 0 <= b >>> 0 : a >>> 0 < b >>> 0) f |= F.CF;
      if ((a ^ b) & (a ^ d) & sign) f |= F.OF;
      f |= (a ^ b ^ d) & F.AF;
      return f;
    }
    case CcOp.LOGIC:
      return f;
    case CcOp.INC:
      return f | (sl & 1 ? F.CF : 0) | (d === (sign & mask) ? F.OF : 0) | ((d & 0xf) === 0 ? F.AF : 0);
    case CcOp.DEC:
      return f | (sl & 1 ? F.CF : 0) | (d === (~sign & mask) ? F.OF : 0) | ((d & 0xf) === 0xf ? F.AF : 0);
    case CcOp.SHL: {
      const cf = b & sign ? 1 : 0;
      return f | cf | ((d & sign ? 1 : 0) ^ cf ? F.OF : 0);
    }
    case CcOp.SHR:
      return f | (b & 1) | (s2 & 1 ? F.OF : 0);
    case CcOp.SAR:
      return f | (b & 1);
    case CcOp.MUL:
      return f | (sl ? F.CF | F.OF : 0);
  }
  return 0;
}

function computeFlags64(op: number, dl: number, dh: number, sl: number, sh: number, s2: number): number {
  let f = parity(dl) | ((dl | dh) === 0 ? F.ZF : 0) | (dh < 0 ? F.SF : 0);
  switch (op) {
    case CcOp.ADD:
    case CcOp.ADC: {
      const c = op === CcOp.ADC ? s2 & 1 : 0;
      // a = d - b - c
      let al = (dl - sl) | 0;
      let ah = (dh - sh - (dl >>> 0 < sl >>> 0 ? 1 : 0)) | 0;
      if (c) (ah = (ah - (al === 0 ? 1 : 0)) | 0), (al = (al - 1) | 0);
      const cf = c ? !ltu64(sl, sh, dl, dh) : ltu64(dl, dh, sl, sh);
      if (cf) f |= F.CF;
      if ((ah ^ dh) & (sh ^ dh) & 0x80000000) f |= F.OF;
      f |= (al ^ sl ^ dl) & F.AF;
      return f;
    }
    case CcOp.SUB:
    case CcOp.SBB: {
      const c = op === CcOp.SBB ? s2 & 1 : 0;
      // a = d + b + c
      let al = (dl + sl) | 0;
      let ah = (dh + sh + (al >>> 0 < dl >>> 0 ? 1 : 0)) | 0;
      if (c) (al = (al + 1) | 0), (ah = (ah + (al === 0 ? 1 : 0)) | 0);
      const cf = c ? !ltu64(sl, sh, al, ah) : ltu64(al, ah, sl, sh);
      if (cf) f |= F.CF;
      if ((ah ^ sh) & (ah ^ dh) & 0x80000000) f |= F.OF;
      f |= (al ^ sl ^ dl) & F.AF;
      return f;
    }
    case CcOp.LOGIC:
      return f;
    case CcOp.INC:
      return f | (sl & 1 ? F.CF : 0) | (dl === 0 && dh === (0x80000000 | 0) ? F.OF : 0) | ((dl & 0xf) === 0 ? F.AF : 0);
    case CcOp.DEC:
      return f | (sl & 1 ? F.CF : 0) | (dl === -1 && dh === 0x7fffffff ? F.OF : 0) | ((dl & 0xf) === 0xf ? F.AF : 0);
    case CcOp.SHL: {
      const cf = sh < 0 ? 1 : 0;
      return f | cf | ((dh < 0 ? 1 : 0) ^ cf ? F.OF : 0);
    }
    case CcOp.SHR:
      return f | (sl & 1) | (s2 & 1 ? F.OF : 0);
    case CcOp.SAR:
      return f | (sl & 1);
    case CcOp.MUL:
      return f | (sl ? F.CF | F.OF : 0);
  }
  return 0;
}

/** The arithmetic flags (OSZAPC) as the lazy record in the state says. */
export function oszapc(cpu: Cpu): number {
  const s = cpu.s;
  const cc = s[S.CC_OP];
  if (cc >>> 2 === CcOp.EFLAGS) return s[S.FLAGS] & F.OSZAPC;
  return computeFlags(cc >>> 2, cc & 3, s[S.CC_DST_LO], s[S.CC_DST_HI], s[S.CC_SRC_LO], s[S.CC_SRC_HI], s[S.CC_SRC2_LO]);
}

/** The full RFLAGS (low 32 bits) with the arithmetic flags materialised. */
export function getRflags(cpu: Cpu): number {
  return (cpu.s[S.FLAGS] & ~F.OSZAPC) | oszapc(cpu) | F.FIXED;
}

/** Set RFLAGS wholesale (POPF, signal return, helpers): the lazy record becomes EFLAGS. */
export function setRflags(cpu: Cpu, v: number): void {
  cpu.s[S.FLAGS] = v | F.FIXED;
  cpu.s[S.CC_OP] = CcOp.EFLAGS << 2;
}

/** Replace only the arithmetic flags, keeping DF/IF/TF/… (helpers that compute flags eagerly). */
export function setOszapc(cpu: Cpu, bits: number): void {
  cpu.s[S.FLAGS] = (cpu.s[S.FLAGS] & ~F.OSZAPC) | (bits & F.OSZAPC);
  cpu.s[S.CC_OP] = CcOp.EFLAGS << 2;
}

/** Record a lazy-flags result (helpers whose flags are those of a standard op, e.g. CMPS = SUB). */
export function setLazy(cpu: Cpu, op: CcOp, size: number, dl: number, dh: number, sl: number, sh: number, s2 = 0): void {
  const s = cpu.s;
  s[S.CC_OP] = (op << 2) | sizeLog(size);
  s[S.CC_DST_LO] = dl;
  s[S.CC_DST_HI] = dh;
  s[S.CC_SRC_LO] = sl;
  s[S.CC_SRC_HI] = sh;
  s[S.CC_SRC2_LO] = s2;
}

/** Evaluate condition code cc (0-15, the Jcc/SETcc/CMOVcc encoding) from the arithmetic flags. */
export function condFromFlags(cc: number, f: number): boolean {
  let r: boolean;
  switch (cc >> 1) {
    case 0: r = (f & F.OF) !== 0; break;
    case 1: r = (f & F.CF) !== 0; break;
    case 2: r = (f & F.ZF) !== 0; break;
    case 3: r = (f & (F.CF | F.ZF)) !== 0; break;
    case 4: r = (f & F.SF) !== 0; break;
    case 5: r = (f & F.PF) !== 0; break;
    case 6: r = ((f & F.SF) !== 0) !== ((f & F.OF) !== 0); break;
    default: r = (f & F.ZF) !== 0 || ((f & F.SF) !== 0) !== ((f & F.OF) !== 0); break;
  }
  return cc & 1 ? !r : r;
}

export function cond(cpu: Cpu, cc: number): boolean {
  return condFromFlags(cc, oszapc(cpu));
}
