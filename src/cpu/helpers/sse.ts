/**
 * SSE/SSE2 interpreter helpers, plus LDMXCSR/STMXCSR and FXSAVE/FXRSTOR.
 *
 * Shape: every helper copies its operands into three module-level 16-byte scratch vectors
 * (A = destination, B = source, R = result) viewed as every lane type, computes R, and only
 * then writes the destination, so a fault (alignment, page fault, unmasked #XM) leaves the
 * state untouched and nothing is allocated per call. Instruction families that differ only by
 * a lane operator are tables of small functions fed to one driver.
 *
 * Floating point: JS doubles give IEEE round-to-nearest results, but NaN payloads may not
 * survive a trip through a double, so NaN operands are recognised by integer bit tests and NaN
 * results are written as integers. Single precision is computed in double and rounded with
 * Math.fround (exact for + - * / sqrt, since 53 >= 2*24+2). The other MXCSR rounding modes,
 * and the precision/underflow/overflow flags, come from the sign of the rounding error of the
 * double result, computed exactly without FMA (Fast2Sum for sums, Dekker's product on
 * power-of-two-scaled operands for products, quotients and square roots): a result that lies
 * on the wrong side of the exact value for the mode is moved one ulp by integer arithmetic on
 * its bits.
 */
import type { Cpu } from '../cpu.js';
import { CpuException, Vec } from '../exceptions.js';
import { setOszapc } from '../flags.js';
import { Prot } from '../memory.js';
import { effAddr, readOp, writeGpr, writeOp, xmmIndex } from '../operands.js';
import { F, fpuControlWord, S } from '../state.js';
import { type Insn, OpKind } from '../../frontend/insn.js';
import type { Helper } from './index.js';

// ---------------------------------------------------------------------------------------------
// Scratch vectors

class Vec128 {
  readonly buf = new ArrayBuffer(16);
  readonly i32 = new Int32Array(this.buf);
  readonly u32 = new Uint32Array(this.buf);
  readonly i16 = new Int16Array(this.buf);
  readonly u16 = new Uint16Array(this.buf);
  readonly i8 = new Int8Array(this.buf);
  readonly u8 = new Uint8Array(this.buf);
}

const A = new Vec128();
const B = new Vec128();
const R = new Vec128();

/** Bit-cast scratch (little-endian host: word 0 is the low half of the double). */
const CV = new ArrayBuffer(8);
const cvF64 = new Float64Array(CV);
const cvF32 = new Float32Array(CV);
const cvI32 = new Int32Array(CV);

function f32(bits: number): number {
  cvI32[0] = bits;
  return cvF32[0];
}

function f32bits(x: number): number {
  cvF32[0] = x;
  return cvI32[0];
}

function f64(lo: number, hi: number): number {
  cvI32[0] = lo;
  cvI32[1] = hi;
  return cvF64[0];
}

// ---------------------------------------------------------------------------------------------
// Operand access

function misaligned(): never {
  throw new CpuException(Vec.GP, 0);
}

function loadXmm(cpu: Cpu, reg: number, v: Vec128): void {
  const s = cpu.s;
  const x = xmmIndex(reg);
  v.i32[0] = s[x];
  v.i32[1] = s[x + 1];
  v.i32[2] = s[x + 2];
  v.i32[3] = s[x + 3];
}

/** Copy the first `words` int32 lanes of v into xmm register reg. */
function storeXmm(cpu: Cpu, reg: number, v: Vec128, words = 4): void {
  const s = cpu.s;
  const x = xmmIndex(reg);
  for (let i = 0; i < words; i++) s[x + i] = v.i32[i];
}

/**
 * Load operand i (xmm register, or memory of the operand's size) into v. Legacy SSE requires
 * 16-byte memory operands to be 16-byte aligned except for the explicitly unaligned moves.
 */
function loadOperand(cpu: Cpu, insn: Insn, i: number, v: Vec128, unaligned = false): void {
  const op = insn.ops[i];
  if (op.kind === OpKind.Xmm) return loadXmm(cpu, op.reg, v);
  const a = effAddr(cpu, insn);
  const n = op.size;
  if (n === 16 && !unaligned && a % 16 !== 0) misaligned();
  const m = cpu.mem;
  if (n === 16) return m.readVec(a, v.i32, 0);
  v.i32[0] = m.read32(a);
  v.i32[1] = n >= 8 ? m.read32(a + 4) : 0;
  v.i32[2] = n === 16 ? m.read32(a + 8) : 0;
  v.i32[3] = n === 16 ? m.read32(a + 12) : 0;
}

/** Store the first n bytes (4, 8 or 16) of v to memory, faulting before any byte is written. */
function storeMem(cpu: Cpu, a: number, v: Vec128, n: number, unaligned: boolean): void {
  if (n === 16 && !unaligned && a % 16 !== 0) misaligned();
  const m = cpu.mem;
  if (n === 16) return m.writeVec(a, v.i32, 0);
  if ((a & 4095) + n > 4096) {
    m.translate(a, Prot.WRITE);
    m.translate(a + n - 1, Prot.WRITE);
  }
  for (let k = 0; k < n; k += 4) m.write32(a + k, v.i32[k >> 2]);
}

/** The destination xmm in A, the source (xmm or aligned m128 / scalar memory) in B. */
function loadBoth(cpu: Cpu, insn: Insn): void {
  loadOperand(cpu, insn, 1, B);
  loadXmm(cpu, insn.ops[0].reg, A);
}

// ---------------------------------------------------------------------------------------------
// Moves

/** MOVAPS/MOVUPS/MOVDQA/…/MOVNT*: 16 bytes between xmm and xmm or memory. */
function move128(unaligned: boolean): Helper {
  return (cpu, insn) => {
    loadOperand(cpu, insn, 1, A, unaligned);
    const dst = insn.ops[0];
    if (dst.kind === OpKind.Xmm) storeXmm(cpu, dst.reg, A);
    else storeMem(cpu, effAddr(cpu, insn), A, 16, unaligned);
  };
}

/** The low n bytes (4 or 8) of operand i: xmm lanes, a gpr or memory; low half returned, high in cpu.hi. */
function readLow(cpu: Cpu, insn: Insn, i: number, n: number): number {
  const op = insn.ops[i];
  if (op.kind !== OpKind.Xmm) return readOp(cpu, insn, i);
  const x = xmmIndex(op.reg);
  cpu.hi = n === 8 ? cpu.s[x + 1] : 0;
  return cpu.s[x];
}

/** MOVD/MOVQ: the low 4 or 8 bytes; an xmm destination is zero-extended to 128 bits. */
const moveZeroExtend: Helper = (cpu, insn) => {
  const dst = insn.ops[0];
  const n = dst.size;
  const lo = readLow(cpu, insn, 1, n);
  const hi = n === 8 ? cpu.hi : 0;
  if (dst.kind !== OpKind.Xmm) return writeOp(cpu, insn, 0, lo, hi);
  const s = cpu.s;
  const x = xmmIndex(dst.reg);
  s[x] = lo;
  s[x + 1] = hi;
  s[x + 2] = 0;
  s[x + 3] = 0;
};

/** MOVSS/MOVSD: register to register merges the low element; a load zeroes the rest. */
const moveScalar: Helper = (cpu, insn) => {
  const dst = insn.ops[0];
  const src = insn.ops[1];
  const n = dst.size;
  loadOperand(cpu, insn, 1, A);
  if (dst.kind === OpKind.Mem) return storeMem(cpu, effAddr(cpu, insn), A, n, true);
  storeXmm(cpu, dst.reg, A, src.kind === OpKind.Mem ? 4 : n >> 2);
};

/**
 * MOVLPS/MOVHPS/MOVHLPS/MOVLHPS/MOVLPD/MOVHPD: one qword from half srcHalf of the source to
 * half dstHalf of the destination (a memory operand is always "half 0").
 */
function moveQword(dstHalf: number, srcHalf: number): Helper {
  return (cpu, insn) => {
    const dst = insn.ops[0];
    const src = insn.ops[1];
    let lo: number, hi: number;
    if (src.kind === OpKind.Mem) {
      lo = cpu.mem.read64(effAddr(cpu, insn));
      hi = cpu.mem.hi;
    } else {
      const x = xmmIndex(src.reg) + 2 * srcHalf;
      lo = cpu.s[x];
      hi = cpu.s[x + 1];
    }
    if (dst.kind === OpKind.Mem) return cpu.mem.write64(effAddr(cpu, insn), lo, hi);
    const x = xmmIndex(dst.reg) + 2 * dstHalf;
    cpu.s[x] = lo;
    cpu.s[x + 1] = hi;
  };
}

const moveNonTemporalGpr: Helper = (cpu, insn) => {
  const lo = readOp(cpu, insn, 1);
  writeOp(cpu, insn, 0, lo, cpu.hi);
};

/** MOVMSKPS/MOVMSKPD/PMOVMSKB: the sign bit of each lane of `width` bytes, into a gpr. */
function moveMask(width: number): Helper {
  return (cpu, insn) => {
    loadOperand(cpu, insn, 1, B);
    let m = 0;
    for (let i = 0, n = 16 / width; i < n; i++) m |= (B.u8[i * width + width - 1] >>> 7) << i;
    writeGpr(cpu, insn.ops[0].reg, 4, false, m);
  };
}

// ---------------------------------------------------------------------------------------------
// Packed integer

type IntArray = Int8Array | Uint8Array | Int16Array | Uint16Array | Int32Array | Uint32Array;

function lanes(v: Vec128, width: number, signed: boolean): IntArray {
  if (width === 1) return signed ? v.i8 : v.u8;
  if (width === 2) return signed ? v.i16 : v.u16;
  return signed ? v.i32 : v.u32;
}

/** Run compute() on A (destination) and B (source), then write R to the destination. */
function packed(compute: (imm: number) => void): Helper {
  return (cpu, insn) => {
    loadBoth(cpu, insn);
    compute(insn.ops.length > 2 ? insn.ops[2].imm & 0xff : 0);
    storeXmm(cpu, insn.ops[0].reg, R);
  };
}

/** Element-wise a op b on lanes of `width` bytes; storing into the typed array truncates. */
function elementwise(width: number, signed: boolean, op: (a: number, b: number) => number): Helper {
  const a = lanes(A, width, signed);
  const b = lanes(B, width, signed);
  const r = lanes(R, width, signed);
  return packed(() => {
    for (let i = 0; i < a.length; i++) r[i] = op(a[i], b[i]);
  });
}

const clamp = (x: number, lo: number, hi: number) => (x < lo ? lo : x > hi ? hi : x);
const add = (a: number, b: number) => a + b;
const sub = (a: number, b: number) => a - b;
const eq = (a: number, b: number) => (a === b ? -1 : 0);
const gt = (a: number, b: number) => (a > b ? -1 : 0);
const min = (a: number, b: number) => (a < b ? a : b);
const max = (a: number, b: number) => (a > b ? a : b);
const avg = (a: number, b: number) => (a + b + 1) >>> 1;
const and = (a: number, b: number) => a & b;
const andn = (a: number, b: number) => ~a & b;
const or = (a: number, b: number) => a | b;
const xor = (a: number, b: number) => a ^ b;

/** [mnemonic, lane width, signed lanes, operator]. */
const ELEMENTWISE: [string, number, boolean, (a: number, b: number) => number][] = [
  ['paddb', 1, false, add], ['paddw', 2, false, add], ['paddd', 4, false, add],
  ['psubb', 1, false, sub], ['psubw', 2, false, sub], ['psubd', 4, false, sub],
  ['paddusb', 1, false, (a, b) => min(a + b, 0xff)], ['paddusw', 2, false, (a, b) => min(a + b, 0xffff)],
  ['psubusb', 1, false, (a, b) => max(a - b, 0)], ['psubusw', 2, false, (a, b) => max(a - b, 0)],
  ['paddsb', 1, true, (a, b) => clamp(a + b, -0x80, 0x7f)], ['paddsw', 2, true, (a, b) => clamp(a + b, -0x8000, 0x7fff)],
  ['psubsb', 1, true, (a, b) => clamp(a - b, -0x80, 0x7f)], ['psubsw', 2, true, (a, b) => clamp(a - b, -0x8000, 0x7fff)],
  ['pcmpeqb', 1, false, eq], ['pcmpeqw', 2, false, eq], ['pcmpeqd', 4, false, eq],
  ['pcmpgtb', 1, true, gt], ['pcmpgtw', 2, true, gt], ['pcmpgtd', 4, true, gt],
  ['pminub', 1, false, min], ['pmaxub', 1, false, max], ['pminsw', 2, true, min], ['pmaxsw', 2, true, max],
  ['pmullw', 2, true, Math.imul], ['pmulhw', 2, true, (a, b) => (a * b) >> 16], ['pmulhuw', 2, false, (a, b) => (a * b) >>> 16],
  ['pavgb', 1, false, avg], ['pavgw', 2, false, avg],
  ['pand', 4, false, and], ['andps', 4, false, and], ['andpd', 4, false, and],
  ['pandn', 4, false, andn], ['andnps', 4, false, andn], ['andnpd', 4, false, andn],
  ['por', 4, false, or], ['orps', 4, false, or], ['orpd', 4, false, or],
  ['pxor', 4, false, xor], ['xorps', 4, false, xor], ['xorpd', 4, false, xor],
];

/** PADDQ/PSUBQ: 64-bit lanes as int32 pairs with the carry/borrow done by hand. */
function qwordAddSub(negate: boolean): Helper {
  return packed(() => {
    for (let i = 0; i < 4; i += 2) {
      let bl = B.i32[i];
      let bh = B.i32[i + 1];
      if (negate) (bl = -bl | 0), (bh = (~bh + (bl === 0 ? 1 : 0)) | 0);
      const lo = (A.i32[i] + bl) | 0;
      R.i32[i] = lo;
      R.i32[i + 1] = (A.i32[i + 1] + bh + (lo >>> 0 < bl >>> 0 ? 1 : 0)) | 0;
    }
  });
}

/** Unsigned 32x32 -> 64-bit product; low half returned, high half left in mulHi. */
let mulHi = 0;
function mulU32(a: number, b: number): number {
  a >>>= 0;
  b >>>= 0;
  const a0 = a & 0xffff, a1 = a >>> 16, b0 = b & 0xffff, b1 = b >>> 16;
  const mid = a1 * b0 + a0 * b1; // < 2^33, exact
  const lo = a0 * b0 + (mid % 65536) * 65536; // < 2^49, exact
  mulHi = (a1 * b1 + Math.floor(mid / 65536) + Math.floor(lo / 4294967296)) | 0;
  return lo | 0;
}

const pmuludq = packed(() => {
  for (let i = 0; i < 4; i += 2) {
    R.i32[i] = mulU32(A.i32[i], B.i32[i]);
    R.i32[i + 1] = mulHi;
  }
});

const pmaddwd = packed(() => {
  for (let i = 0; i < 4; i++) R.i32[i] = (A.i16[2 * i] * B.i16[2 * i] + A.i16[2 * i + 1] * B.i16[2 * i + 1]) | 0;
});

const psadbw = packed(() => {
  R.i32.fill(0);
  for (let q = 0; q < 2; q++) {
    let sum = 0;
    for (let k = 8 * q; k < 8 * q + 8; k++) sum += Math.abs(A.u8[k] - B.u8[k]);
    R.u16[4 * q] = sum;
  }
});

/** PACKSSWB/PACKUSWB/PACKSSDW: destination lanes then source lanes, narrowed with saturation. */
function pack(srcWidth: number, lo: number, hi: number): Helper {
  const a = lanes(A, srcWidth, true);
  const b = lanes(B, srcWidth, true);
  const r = lanes(R, srcWidth >> 1, lo < 0);
  const n = a.length;
  return packed(() => {
    for (let i = 0; i < n; i++) {
      r[i] = clamp(a[i], lo, hi);
      r[n + i] = clamp(b[i], lo, hi);
    }
  });
}

/** PUNPCKLxx, PUNPCKHxx, UNPCKxPS/PD: interleave elements of `width` bytes from one half of each. */
function unpack(width: number, high: boolean): Helper {
  const base = high ? 8 : 0;
  return packed(() => {
    for (let i = 0; i < 8 / width; i++) {
      for (let k = 0; k < width; k++) {
        R.u8[2 * i * width + k] = A.u8[base + i * width + k];
        R.u8[(2 * i + 1) * width + k] = B.u8[base + i * width + k];
      }
    }
  });
}

const pshufd = packed((imm) => {
  for (let i = 0; i < 4; i++) R.i32[i] = B.i32[(imm >> (2 * i)) & 3];
});

/** PSHUFLW/PSHUFHW: shuffle the words of one half of the source, copy the other half. */
function shuffleWords(high: boolean): Helper {
  const w = high ? 4 : 0;
  const keep = high ? 0 : 2;
  return packed((imm) => {
    R.i32[keep] = B.i32[keep];
    R.i32[keep + 1] = B.i32[keep + 1];
    for (let i = 0; i < 4; i++) R.u16[w + i] = B.u16[w + ((imm >> (2 * i)) & 3)];
  });
}

const shufps = packed((imm) => {
  R.i32[0] = A.i32[imm & 3];
  R.i32[1] = A.i32[(imm >> 2) & 3];
  R.i32[2] = B.i32[(imm >> 4) & 3];
  R.i32[3] = B.i32[(imm >> 6) & 3];
});

const shufpd = packed((imm) => {
  const a = 2 * (imm & 1);
  const b = 2 * ((imm >> 1) & 1);
  R.i32[0] = A.i32[a];
  R.i32[1] = A.i32[a + 1];
  R.i32[2] = B.i32[b];
  R.i32[3] = B.i32[b + 1];
});

const pinsrw: Helper = (cpu, insn) => {
  const v = readOp(cpu, insn, 1);
  loadXmm(cpu, insn.ops[0].reg, R);
  R.u16[insn.ops[2].imm & 7] = v;
  storeXmm(cpu, insn.ops[0].reg, R);
};

const pextrw: Helper = (cpu, insn) => {
  loadXmm(cpu, insn.ops[1].reg, B);
  writeGpr(cpu, insn.ops[0].reg, 4, false, B.u16[insn.ops[2].imm & 7]);
};

// ---- shifts

const enum Shift {
  LEFT,
  RIGHT_LOGICAL,
  RIGHT_ARITH,
}

/**
 * PSLL/PSRL/PSRA by an xmm/m128 count (its low 64 bits) or by imm8 (the 66 0F 71-73 groups):
 * one helper serves both, since only where the count comes from differs.
 */
function shift(width: number, kind: Shift): Helper {
  const bits = width * 8;
  const a = lanes(A, width, kind === Shift.RIGHT_ARITH);
  const r = lanes(R, width, false);
  return (cpu, insn) => {
    const src = insn.ops[1];
    let count: number;
    if (src.kind === OpKind.Imm) count = src.imm & 0xff;
    else {
      loadOperand(cpu, insn, 1, B);
      count = B.i32[1] !== 0 || B.i32[0] >>> 0 > 255 ? 255 : B.i32[0];
    }
    loadXmm(cpu, insn.ops[0].reg, A);
    if (count >= bits) {
      if (kind !== Shift.RIGHT_ARITH) {
        R.i32.fill(0);
        return storeXmm(cpu, insn.ops[0].reg, R);
      }
      count = bits - 1;
    }
    if (width === 8) shiftQwords(count, kind === Shift.LEFT);
    else for (let i = 0; i < a.length; i++) r[i] = kind === Shift.LEFT ? a[i] << count : kind === Shift.RIGHT_LOGICAL ? a[i] >>> count : a[i] >> count;
    storeXmm(cpu, insn.ops[0].reg, R);
  };
}

function shiftQwords(count: number, left: boolean): void {
  for (let i = 0; i < 4; i += 2) {
    const lo = A.i32[i];
    const hi = A.i32[i + 1];
    if (count === 0) (R.i32[i] = lo), (R.i32[i + 1] = hi);
    else if (count >= 32) {
      R.i32[i] = left ? 0 : hi >>> (count - 32);
      R.i32[i + 1] = left ? lo << (count - 32) : 0;
    } else if (left) {
      R.i32[i] = lo << count;
      R.i32[i + 1] = (hi << count) | (lo >>> (32 - count));
    } else {
      R.i32[i] = (lo >>> count) | (hi << (32 - count));
      R.i32[i + 1] = hi >>> count;
    }
  }
}

/** PSLLDQ/PSRLDQ: shift the whole register by imm8 bytes. */
function shiftBytes(left: boolean): Helper {
  return (cpu, insn) => {
    const n = Math.min(insn.ops[1].imm & 0xff, 16);
    loadXmm(cpu, insn.ops[0].reg, A);
    for (let i = 0; i < 16; i++) {
      const from = left ? i - n : i + n;
      R.u8[i] = from >= 0 && from < 16 ? A.u8[from] : 0;
    }
    storeXmm(cpu, insn.ops[0].reg, R);
  };
}

// ---------------------------------------------------------------------------------------------
// Floating point: MXCSR, classification, exact rounding

const enum Mx {
  IE = 1,
  DE = 2,
  ZE = 4,
  OE = 8,
  UE = 16,
  PE = 32,
  /** Denormal source operands are read as zero. */
  DAZ = 0x40,
  /** Exception mask bits start here (IM = IE << MASK_SHIFT …). */
  MASK_SHIFT = 7,
  RC_SHIFT = 13,
  /** Tiny results are flushed to zero. */
  FTZ = 0x8000,
}

/** Bits of MXCSR a guest may set: everything below bit 16 (no MM, the AMD misaligned-SSE mode). */
export const MXCSR_MASK = 0xffff;

const enum Rc {
  NEAREST = 0,
  DOWN = 1,
  UP = 2,
  ZERO = 3,
}

const SIGN = 0x80000000 | 0;
const DEFAULT_NAN32 = 0xffc00000 | 0;
const DEFAULT_NAN64_HI = 0xfff80000 | 0;
const QUIET32 = 0x400000;
const QUIET64_HI = 0x80000;

/** Exceptions raised so far by the current instruction, and the MXCSR controls it runs under. */
let flags = 0;
let rc: Rc = Rc.NEAREST;
let daz = false;
let ftz = false;
/**
 * True while a double-precision lane runs with round-to-nearest, no FTZ, and PE both already
 * recorded and masked: then a normal result's rounding error changes neither its bits nor any
 * flag, and the exact-error computation (the costly part of every FP lane) can be skipped.
 */
let skipErr = false;
let peSettled = false;
/** The smallest normal double: below it the error decides underflow, so it is always computed. */
const MIN_NORMAL64 = 2.2250738585072014e-308;

function beginFp(cpu: Cpu): void {
  const m = cpu.s[S.MXCSR];
  flags = 0;
  rc = (m >> Mx.RC_SHIFT) & 3;
  daz = (m & Mx.DAZ) !== 0;
  ftz = (m & Mx.FTZ) !== 0;
  peSettled = rc === Rc.NEAREST && !ftz && (m & Mx.PE) !== 0 && ((m >> Mx.MASK_SHIFT) & Mx.PE) !== 0;
  skipErr = false;
}

/** Record the flags; an unmasked exception raises #XM before the destination is written. */
function endFp(cpu: Cpu): void {
  const m = cpu.s[S.MXCSR];
  cpu.s[S.MXCSR] = m | flags;
  if (flags & ~(m >> Mx.MASK_SHIFT) & 0x3f) throw new CpuException(Vec.XM);
}

const isNaN32 = (b: number) => (b & 0x7fffffff) > 0x7f800000;
const isDenormal32 = (b: number) => (b & 0x7f800000) === 0 && (b & 0x7fffff) !== 0;
const isNaN64 = (lo: number, hi: number) => (hi & 0x7fffffff) > 0x7ff00000 || ((hi & 0x7fffffff) === 0x7ff00000 && lo !== 0);
const isDenormal64 = (lo: number, hi: number) => (hi & 0x7ff00000) === 0 && ((hi & 0xfffff) | lo) !== 0;
const isFinite = (x: number) => x - x === 0;

/** Sign of (exact result - returned double) of the last exact* call: -1, 0 or 1. */
let errSign = 0;

const sign = (x: number) => (x > 0 ? 1 : x < 0 ? -1 : 0);

/** 2^n for -1022 <= n <= 1023, built from bits so it is exact. */
function pow2(n: number): number {
  return f64(0, (n + 1023) << 20);
}

/** x * 2^n without intermediate overflow or underflow when the result is near 1. */
function scale(x: number, n: number): number {
  while (n > 1000) (x *= pow2(1000)), (n -= 1000);
  while (n < -1000) (x *= pow2(-1000)), (n += 1000);
  return x * pow2(n);
}

/** Unbiased binary exponent of a finite non-zero x (denormals included). */
function exponentOf(x: number): number {
  cvF64[0] = x;
  const e = (cvI32[1] >>> 20) & 0x7ff;
  if (e !== 0) return e - 1023;
  cvF64[0] = x * pow2(64);
  return ((cvI32[1] >>> 20) & 0x7ff) - 1023 - 64;
}

/** x*y - p exactly, for p = RN(x*y) and x, y near 1 (Dekker's product: no FMA in JS). */
function productError(x: number, y: number, p: number): number {
  let c = 134217729 * x; // 2^27 + 1 splits a double into two 26-bit halves
  const xh = c - (c - x);
  const xl = x - xh;
  c = 134217729 * y;
  const yh = c - (c - y);
  const yl = y - yh;
  return xh * yh - p + xh * yl + xl * yh + xl * yl;
}

function exactAdd(x: number, y: number): number {
  let d = x + y;
  if (!isFinite(d)) {
    errSign = isFinite(x) && isFinite(y) ? -sign(d) : 0;
    return d;
  }
  // Fast2Sum: with |x| >= |y| the error y - (d - x) is exact.
  const e = Math.abs(x) >= Math.abs(y) ? y - (d - x) : x - (d - y);
  errSign = sign(e);
  // IEEE: an exact zero sum is +0 except when rounding down (and except -0 + -0).
  if (d === 0 && rc === Rc.DOWN && !(Object.is(x, 0) && Object.is(y, 0))) d = -0;
  return d;
}

/**
 * The cases of a product or quotient d = x op y whose rounding error needs no computing (a zero,
 * infinite or NaN operand, an overflow, or an error that cannot matter): sets errSign and says so.
 */
function errorIsTrivial(x: number, y: number, d: number): boolean {
  if (x === 0 || y === 0 || !isFinite(x) || !isFinite(y)) errSign = 0;
  else if (!isFinite(d)) errSign = x < 0 !== y < 0 ? 1 : -1;
  else if (skipErr && Math.abs(d) >= MIN_NORMAL64) errSign = 0;
  else return false;
  return true;
}

function exactMul(x: number, y: number): number {
  const d = x * y;
  if (errorIsTrivial(x, y, d)) return d;
  const neg = x < 0 !== y < 0;
  const ex = exponentOf(x);
  const ey = exponentOf(y);
  const xs = scale(Math.abs(x), -ex);
  const ys = scale(Math.abs(y), -ey);
  const p = xs * ys;
  const r = scale(Math.abs(d), -(ex + ey));
  const s = sign(p - r + productError(xs, ys, p));
  errSign = neg ? -s : s;
  return d;
}

function exactDiv(x: number, y: number): number {
  const d = x / y;
  if (errorIsTrivial(x, y, d)) return d;
  const neg = x < 0 !== y < 0;
  const ex = exponentOf(x);
  const ey = exponentOf(y);
  const xs = scale(Math.abs(x), -ex);
  const ys = scale(Math.abs(y), -ey);
  const q = scale(Math.abs(d), ey - ex);
  const p = q * ys;
  const s = sign(xs - p - productError(q, ys, p)); // sign(xs/ys - q)
  errSign = neg ? -s : s;
  return d;
}

function exactSqrt(x: number): number {
  const d = Math.sqrt(x);
  if (x <= 0 || !isFinite(x)) return (errSign = 0), d;
  if (skipErr) return (errSign = 0), d; // a square root of a positive double is never tiny
  let e = exponentOf(x);
  e -= e & 1;
  const xs = scale(x, -e);
  const r = scale(d, -e / 2);
  const p = r * r;
  errSign = sign(xs - p - productError(r, r, p));
  return d;
}

/** +1: grow the magnitude by one ulp, -1: shrink it, 0: keep; the result's sign is neg, the exact value lies on side s. */
function directedStep(neg: boolean, s: number): number {
  switch (rc) {
    case Rc.NEAREST: return 0;
    case Rc.DOWN: return s < 0 ? (neg ? 1 : -1) : 0;
    case Rc.UP: return s > 0 ? (neg ? -1 : 1) : 0;
    default: return (neg ? s > 0 : s < 0) ? -1 : 0;
  }
}

/**
 * Round a value to single precision under MXCSR: d is the nearest double to the exact value X
 * and e the sign of X - d. Returns the result's bits and raises PE/OE/UE; honours FTZ.
 */
function roundTo32(d: number, e: number): number {
  let f = Math.fround(d);
  let s = e;
  if (f !== d) {
    // d is a midpoint between two floats only if it was itself rounded (int64 sources): then
    // X's side of d decides, not ties-to-even.
    const toward = d > f ? 1 : -1;
    if (e !== 0 && isFinite(f)) {
      const g = f32(f32bits(f) + (toward === sign(f) || f === 0 ? 1 : -1));
      if (d - f === g - d && e === toward) f = g;
    }
    s = d > f ? 1 : -1;
  }
  let bits = f32bits(f);
  if (s !== 0) {
    flags |= Mx.PE;
    bits = (bits + directedStep(bits < 0, s)) | 0;
    // Overflow is judged on the value rounded with an unbounded exponent: it exceeds the
    // largest float if the mode's result is infinite, or if |X| >= 2^128 (rounding toward zero).
    if ((bits & 0x7fffffff) === 0x7f800000 || Math.abs(d) >= 2 ** 128) flags |= Mx.OE;
  }
  if ((bits & 0x7f800000) === 0 && ((bits & 0x7fffff) !== 0 || s !== 0)) {
    if (ftz) (bits &= SIGN), (flags |= Mx.UE | Mx.PE);
    else if (s !== 0) flags |= Mx.UE;
  }
  return bits;
}

/** Result of roundTo64 and of the double-lane functions: lo/hi int32 halves. */
let rLo = 0;
let rHi = 0;

/** As roundTo32 for double precision: d is already the nearest double, e the sign of X - d. */
function roundTo64(d: number, e: number): void {
  cvF64[0] = d;
  let lo = cvI32[0];
  let hi = cvI32[1];
  if (e !== 0) {
    flags |= Mx.PE;
    const step = directedStep(hi < 0, e);
    if (step > 0) (lo = (lo + 1) | 0), (hi = (hi + (lo === 0 ? 1 : 0)) | 0);
    else if (step < 0) (hi = (hi - (lo === 0 ? 1 : 0)) | 0), (lo = (lo - 1) | 0);
    // As in roundTo32; with no wider format at hand, an RN overflow (d infinite) that rounding
    // toward zero brings back to the largest double is counted as an overflow too.
    if (!isFinite(d) || ((hi & 0x7fffffff) === 0x7ff00000 && lo === 0)) flags |= Mx.OE;
  }
  if ((hi & 0x7ff00000) === 0 && (((hi & 0xfffff) | lo) !== 0 || e !== 0)) {
    if (ftz) (lo = 0), (hi &= SIGN), (flags |= Mx.UE | Mx.PE);
    else if (e !== 0) flags |= Mx.UE;
  }
  rLo = lo;
  rHi = hi;
}

// ---- lane operations, written once for both precisions
//
// A lane function is given the decoded operands (values xa/xb, NaN kinds na/nb, denormal flags)
// and says what the result is as an Out code; the precision-specific wrappers turn that into bits.

const enum Out {
  /** outValue rounded to the destination precision (errSign says where the exact value is). */
  VALUE,
  QUIET_A,
  QUIET_B,
  DEFAULT_NAN,
  COPY_A,
  COPY_B,
  ALL_ONES,
  ZERO,
}

const enum Nan {
  NONE = 0,
  QUIET = 1,
  SIGNALING = 2,
}

let xa = 0;
let xb = 0;
let na: Nan = Nan.NONE;
let nb: Nan = Nan.NONE;
let denA = false;
let denB = false;
let outValue = 0;

type LaneBody = (k: number) => Out;

const enum FOp {
  ADD,
  SUB,
  MUL,
  DIV,
  SQRT,
  MIN,
  MAX,
}

/** ADD/SUB/MUL/DIV/SQRT (SQRT reads only the source). */
const arithmetic: LaneBody = (k) => {
  const unary = k === FOp.SQRT;
  if (nb || (!unary && na)) {
    if (nb === Nan.SIGNALING || (!unary && na === Nan.SIGNALING)) flags |= Mx.IE;
    return !unary && na ? Out.QUIET_A : Out.QUIET_B;
  }
  switch (k) {
    case FOp.ADD: outValue = exactAdd(xa, xb); break;
    case FOp.SUB: outValue = exactAdd(xa, -xb); break;
    case FOp.MUL: outValue = exactMul(xa, xb); break;
    case FOp.DIV:
      if (xb === 0 && xa !== 0 && isFinite(xa)) {
        flags |= Mx.ZE; // like IE, divide-by-zero hides a denormal dividend
        outValue = exactDiv(xa, xb);
        return Out.VALUE;
      }
      outValue = exactDiv(xa, xb);
      break;
    default: outValue = exactSqrt(xb);
  }
  if (outValue !== outValue) {
    flags |= Mx.IE; // an invalid operation hides the denormal operand (sqrt of a negative denormal)
    return Out.DEFAULT_NAN;
  }
  if (denB || (!unary && denA)) flags |= Mx.DE;
  return Out.VALUE;
};

/** MIN/MAX: any NaN, or two zeros, give the second operand unchanged. */
const minMax: LaneBody = (k) => {
  if (na || nb) {
    flags |= Mx.IE;
    return Out.COPY_B;
  }
  if (denA || denB) flags |= Mx.DE;
  return (k === FOp.MIN ? xa < xb : xa > xb) ? Out.COPY_A : Out.COPY_B;
};

/** CMPPS/… predicates 0-7: EQ LT LE UNORD NEQ NLT NLE ORD; LT/LE/NLT/NLE signal on QNaN too. */
const compare: LaneBody = (k) => {
  if (na || nb) {
    if (na === Nan.SIGNALING || nb === Nan.SIGNALING || (k & 3) === 1 || (k & 3) === 2) flags |= Mx.IE;
    return k >= 3 && k <= 6 ? Out.ALL_ONES : Out.ZERO;
  }
  if (denA || denB) flags |= Mx.DE;
  let r: boolean;
  switch (k & 3) {
    case 0: r = xa === xb; break;
    case 1: r = xa < xb; break;
    case 2: r = xa <= xb; break;
    default: r = false; // UNORD; ORD is its negation
  }
  return r !== k >= 4 ? Out.ALL_ONES : Out.ZERO;
};

function lane32(body: LaneBody, k: number, a: number, b: number): number {
  if (daz) {
    if (isDenormal32(a)) a &= SIGN;
    if (isDenormal32(b)) b &= SIGN;
  }
  na = isNaN32(a) ? (a & QUIET32 ? Nan.QUIET : Nan.SIGNALING) : Nan.NONE;
  nb = isNaN32(b) ? (b & QUIET32 ? Nan.QUIET : Nan.SIGNALING) : Nan.NONE;
  denA = isDenormal32(a);
  denB = isDenormal32(b);
  xa = f32(a);
  xb = f32(b);
  switch (body(k)) {
    case Out.VALUE: return roundTo32(outValue, errSign);
    case Out.QUIET_A: return a | QUIET32;
    case Out.QUIET_B: return b | QUIET32;
    case Out.DEFAULT_NAN: return DEFAULT_NAN32;
    case Out.COPY_A: return a;
    case Out.COPY_B: return b;
    case Out.ALL_ONES: return -1;
    default: return 0;
  }
}

/** Double-precision lane; result in rLo/rHi. */
function lane64(body: LaneBody, k: number, alo: number, ahi: number, blo: number, bhi: number): void {
  if (daz) {
    if (isDenormal64(alo, ahi)) (alo = 0), (ahi &= SIGN);
    if (isDenormal64(blo, bhi)) (blo = 0), (bhi &= SIGN);
  }
  na = isNaN64(alo, ahi) ? (ahi & QUIET64_HI ? Nan.QUIET : Nan.SIGNALING) : Nan.NONE;
  nb = isNaN64(blo, bhi) ? (bhi & QUIET64_HI ? Nan.QUIET : Nan.SIGNALING) : Nan.NONE;
  denA = isDenormal64(alo, ahi);
  denB = isDenormal64(blo, bhi);
  xa = f64(alo, ahi);
  xb = f64(blo, bhi);
  skipErr = peSettled;
  const out = body(k);
  skipErr = false;
  switch (out) {
    case Out.VALUE: return roundTo64(outValue, errSign);
    case Out.QUIET_A: return void ((rLo = alo), (rHi = ahi | QUIET64_HI));
    case Out.QUIET_B: return void ((rLo = blo), (rHi = bhi | QUIET64_HI));
    case Out.DEFAULT_NAN: return void ((rLo = 0), (rHi = DEFAULT_NAN64_HI));
    case Out.COPY_A: return void ((rLo = alo), (rHi = ahi));
    case Out.COPY_B: return void ((rLo = blo), (rHi = bhi));
    case Out.ALL_ONES: return void ((rLo = -1), (rHi = -1));
    default: return void ((rLo = 0), (rHi = 0));
  }
}

/**
 * The driver of every FP lane operation: ps (4 lanes), pd (2), ss/sd (lane 0, the other lanes
 * of the destination kept). The operation selector k is fixed, or the imm8 predicate (CMP*).
 */
function fpLanes(body: LaneBody, double: boolean, scalar: boolean, k: number): Helper {
  const count = scalar ? 1 : double ? 2 : 4;
  return (cpu, insn) => {
    const op = k < 0 ? insn.ops[2].imm & 7 : k;
    loadBoth(cpu, insn);
    beginFp(cpu);
    for (let i = 0; i < count; i++) {
      if (double) {
        lane64(body, op, A.i32[2 * i], A.i32[2 * i + 1], B.i32[2 * i], B.i32[2 * i + 1]);
        R.i32[2 * i] = rLo;
        R.i32[2 * i + 1] = rHi;
      } else R.i32[i] = lane32(body, op, A.i32[i], B.i32[i]);
    }
    endFp(cpu);
    storeXmm(cpu, insn.ops[0].reg, R, double ? 2 * count : count);
  };
}

/** RFLAGS ZF PF CF of the last (u)comis lane: 111 unordered, 000 greater, 001 less, 100 equal. */
let relation = 0;

/** COMIS* signal IE on any NaN, UCOMIS* only on a signalling one. */
function orderedRelation(signalQuiet: boolean): LaneBody {
  return () => {
    if (na || nb) {
      if (signalQuiet || na === Nan.SIGNALING || nb === Nan.SIGNALING) flags |= Mx.IE;
      relation = F.ZF | F.PF | F.CF;
    } else {
      if (denA || denB) flags |= Mx.DE;
      relation = xa < xb ? F.CF : xa === xb ? F.ZF : 0;
    }
    return Out.ZERO;
  };
}

/** COMISS/UCOMISS/COMISD/UCOMISD: compare lane 0 into ZF PF CF; OF SF AF are cleared. */
function compareFlags(double: boolean, signalQuiet: boolean): Helper {
  const body = orderedRelation(signalQuiet);
  return (cpu, insn) => {
    loadBoth(cpu, insn);
    beginFp(cpu);
    if (double) lane64(body, 0, A.i32[0], A.i32[1], B.i32[0], B.i32[1]);
    else lane32(body, 0, A.i32[0], B.i32[0]);
    endFp(cpu);
    setOszapc(cpu, relation);
  };
}

const enum Approx {
  RECIPROCAL,
  RSQRT,
}

/**
 * RCPSS/RCPPS/RSQRTSS/RSQRTPS. Hardware returns a table-based approximation (relative error
 * <= 1.5*2^-12) that differs between vendors; we return the correctly rounded value, which is
 * within that bound but not bit-identical to any CPU. They raise no MXCSR flags, read
 * denormals as zero and flush tiny results to zero.
 */
function approx(kind: Approx, scalar: boolean): Helper {
  const count = scalar ? 1 : 4;
  return (cpu, insn) => {
    loadBoth(cpu, insn);
    for (let i = 0; i < count; i++) {
      const b = B.i32[i];
      const neg = b < 0;
      let r: number;
      if (isNaN32(b)) r = b | QUIET32;
      else if ((b & 0x7f800000) === 0) r = (b & SIGN) | 0x7f800000;
      else if (kind === Approx.RSQRT && neg) r = DEFAULT_NAN32;
      else {
        const x = f32(b);
        r = f32bits(Math.fround(kind === Approx.RECIPROCAL ? 1 / x : 1 / Math.sqrt(x)));
        if ((r & 0x7f800000) === 0) r &= SIGN;
      }
      R.i32[i] = r;
    }
    storeXmm(cpu, insn.ops[0].reg, R, count);
  };
}

// ---- conversions

/** Round a finite double to an integer in the given mode (ties to even for NEAREST). */
function roundToInteger(x: number, mode: Rc): number {
  switch (mode) {
    case Rc.DOWN: return Math.floor(x);
    case Rc.UP: return Math.ceil(x);
    case Rc.ZERO: return Math.trunc(x);
  }
  const t = Math.floor(x);
  const frac = x - t;
  return frac < 0.5 ? t : frac > 0.5 ? t + 1 : t % 2 === 0 ? t : t + 1;
}

/**
 * x (or NaN) to a signed integer of `size` bytes; result in rLo/rHi. NaN and out-of-range
 * values give the "integer indefinite" (the most negative integer) and raise IE.
 */
function toInteger(x: number, nan: boolean, size: number, truncate: boolean): void {
  const r = nan ? 0 : roundToInteger(x, truncate ? Rc.ZERO : rc);
  const limit = size === 8 ? 9223372036854775808 : 2147483648;
  if (nan || !(r >= -limit && r < limit)) {
    flags |= Mx.IE;
    rLo = size === 8 ? 0 : SIGN;
    rHi = size === 8 ? SIGN : 0;
    return;
  }
  if (r !== x) flags |= Mx.PE;
  rLo = r | 0; // ToInt32 is exact modulo 2^32 for any integral double
  rHi = Math.floor(r / 4294967296) | 0;
}

/** Lane 0 of operand 1 (xmm or memory) as a double, with DAZ applied; nan says it is a NaN. */
let laneNan = false;
function scalarSource(cpu: Cpu, insn: Insn, double: boolean): number {
  loadOperand(cpu, insn, 1, B);
  return double ? sourceLane64(0) : sourceLane32(0);
}

function sourceLane32(i: number): number {
  let b = B.i32[i];
  if (daz && isDenormal32(b)) b &= SIGN;
  laneNan = isNaN32(b);
  return f32(b);
}

function sourceLane64(i: number): number {
  let lo = B.i32[2 * i];
  let hi = B.i32[2 * i + 1];
  if (daz && isDenormal64(lo, hi)) (lo = 0), (hi &= SIGN);
  laneNan = isNaN64(lo, hi);
  return f64(lo, hi);
}

/** CVTSS2SI/CVTSD2SI/CVTTSS2SI/CVTTSD2SI to r32 or r64. */
function scalarToInteger(double: boolean, truncate: boolean): Helper {
  return (cpu, insn) => {
    beginFp(cpu);
    const x = scalarSource(cpu, insn, double);
    const size = insn.ops[0].size;
    toInteger(x, laneNan, size, truncate);
    endFp(cpu);
    writeGpr(cpu, insn.ops[0].reg, size, false, rLo, rHi);
  };
}

/** CVTPS2DQ/CVTTPS2DQ/CVTPD2DQ/CVTTPD2DQ: packed to int32 lanes (pd: two lanes, upper half zeroed). */
function packedToInteger(double: boolean, truncate: boolean): Helper {
  return (cpu, insn) => {
    loadOperand(cpu, insn, 1, B);
    beginFp(cpu);
    R.i32.fill(0);
    for (let i = 0, n = double ? 2 : 4; i < n; i++) {
      const x = double ? sourceLane64(i) : sourceLane32(i);
      toInteger(x, laneNan, 4, truncate);
      R.i32[i] = rLo;
    }
    endFp(cpu);
    storeXmm(cpu, insn.ops[0].reg, R);
  };
}

/** CVTSI2SS/CVTSI2SD from r/m32 or r/m64 into lane 0, other lanes kept. */
function integerToScalar(double: boolean): Helper {
  return (cpu, insn) => {
    const lo = readOp(cpu, insn, 1);
    const hi = cpu.hi;
    beginFp(cpu);
    // An int64 is hi*2^32 + lo: one rounding, whose exact error Fast2Sum gives.
    const d = insn.ops[1].size === 8 ? exactAdd(hi * 4294967296, lo >>> 0) : ((errSign = 0), lo);
    const s = cpu.s;
    const x = xmmIndex(insn.ops[0].reg);
    if (double) {
      roundTo64(d, errSign);
      endFp(cpu);
      s[x] = rLo;
      s[x + 1] = rHi;
    } else {
      const bits = roundTo32(d, errSign);
      endFp(cpu);
      s[x] = bits;
    }
  };
}

/** CVTDQ2PS (4 lanes, rounded) and CVTDQ2PD (low 2 lanes, exact). */
function integerToPacked(double: boolean): Helper {
  return (cpu, insn) => {
    loadOperand(cpu, insn, 1, B);
    beginFp(cpu);
    if (double) {
      for (let i = 0; i < 2; i++) {
        cvF64[0] = B.i32[i];
        R.i32[2 * i] = cvI32[0];
        R.i32[2 * i + 1] = cvI32[1];
      }
    } else for (let i = 0; i < 4; i++) R.i32[i] = roundTo32(B.i32[i], 0);
    endFp(cpu);
    storeXmm(cpu, insn.ops[0].reg, R);
  };
}

/** Single to double (exact; an SNaN is quieted with IE); result in rLo/rHi. */
function widen(b: number): void {
  if (daz && isDenormal32(b)) b &= SIGN;
  if (isNaN32(b)) {
    if (!(b & QUIET32)) flags |= Mx.IE;
    const m = (b | QUIET32) & 0x7fffff;
    rHi = (b & SIGN) | 0x7ff00000 | (m >>> 3);
    rLo = m << 29;
    return;
  }
  if (isDenormal32(b)) flags |= Mx.DE;
  cvF64[0] = f32(b);
  rLo = cvI32[0];
  rHi = cvI32[1];
}

/** Double to single, rounded under MXCSR. */
function narrow(lo: number, hi: number): number {
  if (daz && isDenormal64(lo, hi)) (lo = 0), (hi &= SIGN);
  if (isNaN64(lo, hi)) {
    if (!(hi & QUIET64_HI)) flags |= Mx.IE;
    return (hi & SIGN) | 0x7fc00000 | ((hi & 0x7ffff) << 3) | (lo >>> 29);
  }
  if (isDenormal64(lo, hi)) flags |= Mx.DE;
  return roundTo32(f64(lo, hi), 0);
}

/** CVTSS2SD / CVTPS2PD (widen) and CVTSD2SS / CVTPD2PS (narrow). */
function convertPrecision(toDouble: boolean, scalar: boolean): Helper {
  return (cpu, insn) => {
    loadBoth(cpu, insn);
    beginFp(cpu);
    if (toDouble) {
      for (let i = 0, n = scalar ? 1 : 2; i < n; i++) {
        widen(B.i32[i]);
        R.i32[2 * i] = rLo;
        R.i32[2 * i + 1] = rHi;
      }
    } else {
      R.i32.fill(0);
      for (let i = 0, n = scalar ? 1 : 2; i < n; i++) R.i32[i] = narrow(B.i32[2 * i], B.i32[2 * i + 1]);
    }
    endFp(cpu);
    storeXmm(cpu, insn.ops[0].reg, R, toDouble ? (scalar ? 2 : 4) : scalar ? 1 : 4);
  };
}

// ---------------------------------------------------------------------------------------------
// MXCSR and FXSAVE/FXRSTOR

function checkMxcsr(v: number): void {
  if (v & ~MXCSR_MASK) throw new CpuException(Vec.GP, 0);
}

const ldmxcsr: Helper = (cpu, insn) => {
  const v = cpu.mem.read32(effAddr(cpu, insn));
  checkMxcsr(v);
  cpu.s[S.MXCSR] = v;
};

const stmxcsr: Helper = (cpu, insn) => cpu.mem.write32(effAddr(cpu, insn), cpu.s[S.MXCSR]);

/**
 * The 512-byte FXSAVE image, 64-bit layout: FCW(0) FSW(2) abridged tag(4) FOP(6) FIP(8) FDP(16)
 * MXCSR(24) MXCSR_MASK(28) ST0-7 in stack order (32 + 16i, 10 bytes each) XMM0-15 (160 + 16i).
 * We keep no last-instruction pointers, so FOP/FIP/FDP are stored as zero; bytes 416-511 are
 * left alone (464-511 belong to software).
 */
const FX_WORDS = 104;
const fxImage = new Int32Array(FX_WORDS);

function fxAddress(cpu: Cpu, insn: Insn): number {
  const a = effAddr(cpu, insn);
  if (a % 16 !== 0) misaligned();
  return a;
}

const fxsave: Helper = (cpu, insn) => {
  const a = fxAddress(cpu, insn);
  cpu.mem.translate(a, Prot.WRITE);
  cpu.mem.translate(a + 415, Prot.WRITE);
  const s = cpu.s;
  fxImage.fill(0);
  fxImage[0] = (s[S.FPU_CW] & 0xffff) | ((s[S.FPU_SW] & 0xffff) << 16);
  fxImage[1] = s[S.FPU_TAG] & 0xff;
  fxImage[6] = s[S.MXCSR];
  fxImage[7] = MXCSR_MASK;
  const top = (s[S.FPU_SW] >> 11) & 7;
  for (let i = 0; i < 8; i++) {
    const p = S.FPR + 4 * ((top + i) & 7);
    fxImage[8 + 4 * i] = s[p];
    fxImage[9 + 4 * i] = s[p + 1];
    fxImage[10 + 4 * i] = s[p + 2] & 0xffff;
  }
  for (let i = 0; i < 64; i++) fxImage[40 + i] = s[S.XMM + i];
  for (let i = 0; i < FX_WORDS; i++) cpu.mem.write32(a + 4 * i, fxImage[i]);
};

const fxrstor: Helper = (cpu, insn) => {
  const a = fxAddress(cpu, insn);
  for (let i = 0; i < FX_WORDS; i++) fxImage[i] = cpu.mem.read32(a + 4 * i);
  checkMxcsr(fxImage[6]);
  const s = cpu.s;
  s[S.FPU_CW] = fpuControlWord(fxImage[0]);
  s[S.FPU_SW] = (fxImage[0] >>> 16) & 0xffff;
  s[S.FPU_TAG] = fxImage[1] & 0xff;
  s[S.MXCSR] = fxImage[6];
  const top = (s[S.FPU_SW] >> 11) & 7;
  for (let i = 0; i < 8; i++) {
    const p = S.FPR + 4 * ((top + i) & 7);
    s[p] = fxImage[8 + 4 * i];
    s[p + 1] = fxImage[9 + 4 * i];
    s[p + 2] = fxImage[10 + 4 * i] & 0xffff;
  }
  for (let i = 0; i < 64; i++) s[S.XMM + i] = fxImage[40 + i];
};

// ---------------------------------------------------------------------------------------------
// The table

function build(): Record<string, Helper> {
  const h: Record<string, Helper> = {
    movaps: move128(false), movapd: move128(false), movdqa: move128(false),
    movups: move128(true), movupd: move128(true), movdqu: move128(true),
    movntps: move128(false), movntpd: move128(false), movntdq: move128(false), movnti: moveNonTemporalGpr,
    movd: moveZeroExtend, movq: moveZeroExtend, movss: moveScalar, movsd: moveScalar,
    movlps: moveQword(0, 0), movlpd: moveQword(0, 0), movhps: moveQword(1, 1), movhpd: moveQword(1, 1),
    movhlps: moveQword(0, 1), movlhps: moveQword(1, 0),
    movmskps: moveMask(4), movmskpd: moveMask(8), pmovmskb: moveMask(1),
    paddq: qwordAddSub(false), psubq: qwordAddSub(true), pmuludq, pmaddwd, psadbw,
    packsswb: pack(2, -0x80, 0x7f), packuswb: pack(2, 0, 0xff), packssdw: pack(4, -0x8000, 0x7fff),
    punpcklbw: unpack(1, false), punpcklwd: unpack(2, false), punpckldq: unpack(4, false), punpcklqdq: unpack(8, false),
    punpckhbw: unpack(1, true), punpckhwd: unpack(2, true), punpckhdq: unpack(4, true), punpckhqdq: unpack(8, true),
    unpcklps: unpack(4, false), unpckhps: unpack(4, true), unpcklpd: unpack(8, false), unpckhpd: unpack(8, true),
    pshufd, pshuflw: shuffleWords(false), pshufhw: shuffleWords(true), shufps, shufpd, pinsrw, pextrw,
    psllw: shift(2, Shift.LEFT), pslld: shift(4, Shift.LEFT), psllq: shift(8, Shift.LEFT),
    psrlw: shift(2, Shift.RIGHT_LOGICAL), psrld: shift(4, Shift.RIGHT_LOGICAL), psrlq: shift(8, Shift.RIGHT_LOGICAL),
    psraw: shift(2, Shift.RIGHT_ARITH), psrad: shift(4, Shift.RIGHT_ARITH),
    pslldq: shiftBytes(true), psrldq: shiftBytes(false),
    cmpps: fpLanes(compare, false, false, -1), cmppd: fpLanes(compare, true, false, -1),
    cmpss: fpLanes(compare, false, true, -1), cmpsd: fpLanes(compare, true, true, -1),
    ucomiss: compareFlags(false, false), comiss: compareFlags(false, true),
    ucomisd: compareFlags(true, false), comisd: compareFlags(true, true),
    rcpps: approx(Approx.RECIPROCAL, false), rcpss: approx(Approx.RECIPROCAL, true),
    rsqrtps: approx(Approx.RSQRT, false), rsqrtss: approx(Approx.RSQRT, true),
    cvtsi2ss: integerToScalar(false), cvtsi2sd: integerToScalar(true),
    cvtss2si: scalarToInteger(false, false), cvttss2si: scalarToInteger(false, true),
    cvtsd2si: scalarToInteger(true, false), cvttsd2si: scalarToInteger(true, true),
    cvtps2dq: packedToInteger(false, false), cvttps2dq: packedToInteger(false, true),
    cvtpd2dq: packedToInteger(true, false), cvttpd2dq: packedToInteger(true, true),
    cvtdq2ps: integerToPacked(false), cvtdq2pd: integerToPacked(true),
    cvtss2sd: convertPrecision(true, true), cvtps2pd: convertPrecision(true, false),
    cvtsd2ss: convertPrecision(false, true), cvtpd2ps: convertPrecision(false, false),
    ldmxcsr, stmxcsr, fxsave, fxrstor,
  };
  for (const [m, width, signed, op] of ELEMENTWISE) h[m] = elementwise(width, signed, op);
  const ops: [string, FOp, LaneBody][] = [
    ['add', FOp.ADD, arithmetic], ['sub', FOp.SUB, arithmetic], ['mul', FOp.MUL, arithmetic],
    ['div', FOp.DIV, arithmetic], ['sqrt', FOp.SQRT, arithmetic], ['min', FOp.MIN, minMax], ['max', FOp.MAX, minMax],
  ];
  for (const [name, k, body] of ops) {
    h[name + 'ps'] = fpLanes(body, false, false, k);
    h[name + 'pd'] = fpLanes(body, true, false, k);
    h[name + 'ss'] = fpLanes(body, false, true, k);
    h[name + 'sd'] = fpLanes(body, true, true, k);
  }
  return h;
}

export const SSE_HELPERS: Record<string, Helper> = build();
