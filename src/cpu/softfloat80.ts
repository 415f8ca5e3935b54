/**
 * IEEE-754 double-extended arithmetic (the x87's 80-bit format: sign, 15-bit exponent, 64-bit
 * significand with an explicit integer bit) on int32 limbs, bit-exact with the hardware for
 * every rounding control and precision control setting.
 *
 * Why not JS doubles: musl and glibc do their long double work (printf's fmt_fp scales every
 * double through long double) in 64-bit precision, so a double shortcut changes printed digits.
 * Why not BigInt: these functions run once per guest x87 instruction.
 *
 * Shape: operands come in as (se, hi, lo) int32 triples exactly as the state keeps an ST
 * register (se = sign<<15 | exponent); results, the masked-response exception flags and the
 * C1 round-up indicator go out through the module-level record `fp`, so nothing allocates.
 * Internally a finite value is unpacked into sign, an unbounded unbiased exponent and a
 * normalised 64-bit significand (two uint32 held in JS numbers); every result passes through
 * one rounding routine (roundPack) that knows the target precision and exponent range, so the
 * x87 register format under PC=24/53/64, float32 and float64 stores, FRNDINT and FIST all
 * round the same way. Long division and square root are bit-serial: slower than a clever
 * Newton step but obviously exact, and x87 code in libc is not hot.
 *
 * Hardware conventions followed (checked against this machine by test/softfloat80.test.ts):
 * tininess is detected after rounding; a denormal result under PC<64 is rounded at the
 * precision's bit position of the denormalised significand; two NaNs yield the one with the
 * larger significand (ties: the positive one); unnormals, pseudo-NaNs and pseudo-infinities are
 * invalid operands; pseudo-denormals are read as denormals with exponent 1; stores to float32/
 * float64/integer do not raise DE for a denormal source, nor does x/0 for a denormal x; FPREM
 * and FPREM1 reduce an exponent difference D >= 64 by N = 32 + D mod 32 bits per step (the
 * manuals leave N to the implementation; this is what the AMD hosts of this project do).
 *
 * Transcendentals (f2xm1, fyl2x, fyl2xp1, fptan, fpatan, fsin, fcos, fsincos) are computed in
 * double with Math and converted (the helpers in helpers/x87.ts do this through toDouble and
 * fromDouble): they carry only ~53 correct bits (the hardware gives ~64), operands outside the
 * double range lose accuracy (FYL2X excepted: it takes the exponent from the extended operand),
 * and their inexact/underflow flags are approximate. Static libc code paths rarely use them.
 */

/** Status-word exception bits (the masked responses are what this module computes). */
export const enum Fx {
  IE = 0x01,
  DE = 0x02,
  ZE = 0x04,
  OE = 0x08,
  UE = 0x10,
  PE = 0x20,
}

/** Operand classes, the FXAM order aside. */
export const enum Cls {
  Zero,
  Normal,
  /** Denormal or pseudo-denormal (exponent 0, any significand but zero). */
  Denormal,
  Inf,
  QNaN,
  SNaN,
  /** Unnormal, pseudo-NaN, pseudo-infinity: invalid on every 387-or-later x87. */
  Unsupported,
}

/** Rounding control values (the x87 CW bits 10-11 and MXCSR bits 13-14 agree). */
export const enum Rc {
  Nearest = 0,
  Down = 1,
  Up = 2,
  Zero = 3,
}

/** Inputs and outputs of every operation (module-level so no call allocates). */
export const fp = {
  /** Rounding control and precision (24, 53 or 64 bits) taken from the control word. */
  rc: 0,
  pc: 64,
  /** Exception flags raised by the operations since the last setControl. */
  flags: 0,
  /** The C1 the instruction leaves: 1 when the rounded result's magnitude was rounded up. */
  c1: 0,
  /** Extended result: sign<<15|exponent, significand high and low halves (int32). */
  se: 0,
  hi: 0,
  lo: 0,
  /** Integer or float32/float64 result bits (lo) and the high half of 64-bit ones (ihi). */
  ilo: 0,
  ihi: 0,
  /** Bits 64-79 of FBSTP's 10-byte result (sign in bit 15). */
  iw8: 0,
  /** fprem quotient bits (low three) for C0/C3/C1, and whether the reduction is complete. */
  quotient: 0,
  partial: false,
};

/** Take RC and PC from an x87 control word and clear the per-instruction outputs. */
export function setControl(cw: number): void {
  fp.rc = (cw >> 10) & 3;
  const pcBits = (cw >> 8) & 3;
  fp.pc = pcBits === 0 ? 24 : pcBits === 2 ? 53 : 64;
  fp.flags = 0;
  fp.c1 = 0;
}

const EXP_BIAS = 16383;
const EXT_EMIN = -16382;
const EXT_EMAX = 16383;
const TWO32 = 4294967296;

export const INDEFINITE_SE = 0xffff;
export const INDEFINITE_HI = 0xc0000000 | 0;

export function classify(se: number, hi: number, lo: number): Cls {
  const e = se & 0x7fff;
  if (e === 0) return (hi | lo) === 0 ? Cls.Zero : Cls.Denormal;
  if (hi >= 0) return Cls.Unsupported; // integer bit clear with a nonzero exponent
  if (e !== 0x7fff) return Cls.Normal;
  if (((hi & 0x7fffffff) | lo) === 0) return Cls.Inf;
  return hi & 0x40000000 ? Cls.QNaN : Cls.SNaN;
}

function isNaNClass(c: Cls): boolean {
  return c === Cls.QNaN || c === Cls.SNaN;
}

function setResult(se: number, hi: number, lo: number): void {
  fp.se = se;
  fp.hi = hi | 0;
  fp.lo = lo | 0;
}

function setIndefinite(): void {
  setResult(INDEFINITE_SE, INDEFINITE_HI, 0);
}

function invalid(): void {
  fp.flags |= Fx.IE;
  setIndefinite();
}

// ---------------------------------------------------------------------------------------------
// Unpacked operands: A and B slots, and the 96-bit working significand W (w0 top word).

let aSign = 0, aExp = 0, aHi = 0, aLo = 0;
let bSign = 0, bExp = 0, bHi = 0, bLo = 0;
let w0 = 0, w1 = 0, w2 = 0, wExp = 0;

let uSign = 0, uExp = 0, uHi = 0, uLo = 0;

/** Unpack a finite nonzero operand (normal or denormal) into uSign/uExp/uHi/uLo. */
function unpack(se: number, hi: number, lo: number): void {
  uSign = (se >> 15) & 1;
  const e = se & 0x7fff;
  uHi = hi >>> 0;
  uLo = lo >>> 0;
  uExp = (e === 0 ? 1 : e) - EXP_BIAS;
  if (uHi === 0) {
    uHi = uLo;
    uLo = 0;
    uExp -= 32;
  }
  const n = Math.clz32(uHi);
  if (n) {
    uHi = ((uHi << n) | (uLo >>> (32 - n))) >>> 0;
    uLo = (uLo << n) >>> 0;
    uExp -= n;
  }
}

function unpackA(se: number, hi: number, lo: number): void {
  unpack(se, hi, lo);
  aSign = uSign;
  aExp = uExp;
  aHi = uHi;
  aLo = uLo;
}

function unpackB(se: number, hi: number, lo: number): void {
  unpack(se, hi, lo);
  bSign = uSign;
  bExp = uExp;
  bHi = uHi;
  bLo = uLo;
}

/** Shift W right by n bits, ORing everything shifted out into w2's lowest bit. */
function shiftRightSticky(n: number): void {
  if (n <= 0) return;
  if (n >= 96) {
    w2 = (w0 | w1 | w2) !== 0 ? 1 : 0;
    w0 = 0;
    w1 = 0;
    return;
  }
  let sticky = 0;
  while (n >= 32) {
    sticky |= w2;
    w2 = w1;
    w1 = w0;
    w0 = 0;
    n -= 32;
  }
  if (n > 0) {
    sticky |= w2 << (32 - n);
    w2 = ((w2 >>> n) | (w1 << (32 - n))) >>> 0;
    w1 = ((w1 >>> n) | (w0 << (32 - n))) >>> 0;
    w0 = w0 >>> n;
  }
  if (sticky !== 0) w2 = (w2 | 1) >>> 0;
}

/** Shift W left until its top bit is set (W nonzero). */
function normalizeW(): void {
  while (w0 === 0) {
    w0 = w1;
    w1 = w2;
    w2 = 0;
    wExp -= 32;
  }
  const n = Math.clz32(w0);
  if (n) {
    w0 = ((w0 << n) | (w1 >>> (32 - n))) >>> 0;
    w1 = ((w1 << n) | (w2 >>> (32 - n))) >>> 0;
    w2 = (w2 << n) >>> 0;
    wExp -= n;
  }
}

/**
 * Round W to `prec` significant bits (counted from w0's top bit) in place by fp.rc. Returns
 * 1 when the magnitude was incremented, 0 otherwise; sets `roundInexact`.
 */
let roundInexact = false;
function roundAt(sign: number, prec: number, rc: number): number {
  const L = 64 - prec; // bit index of the unit in the last place within w0:w1
  let lsb: number, half: number, sticky: number;
  if (L === 0) {
    lsb = w1 & 1;
    half = w2 >>> 31;
    sticky = w2 & 0x7fffffff;
  } else if (L < 32) {
    lsb = (w1 >>> L) & 1;
    half = (w1 >>> (L - 1)) & 1;
    sticky = (w1 & ((1 << (L - 1)) - 1)) | w2;
    w1 = (w1 & ~((1 << L) - 1)) >>> 0;
  } else if (L === 32) {
    lsb = w0 & 1;
    half = w1 >>> 31;
    sticky = (w1 & 0x7fffffff) | w2;
    w1 = 0;
  } else {
    const b = L - 32;
    lsb = (w0 >>> b) & 1;
    half = (w0 >>> (b - 1)) & 1;
    sticky = (w0 & ((1 << (b - 1)) - 1)) | w1 | w2;
    w0 = (w0 & ~((1 << b) - 1)) >>> 0;
    w1 = 0;
  }
  w2 = 0;
  roundInexact = (half | sticky) !== 0;
  if (!roundInexact) return 0;
  let up: boolean;
  if (rc === Rc.Nearest) up = half !== 0 && (sticky !== 0 || lsb !== 0);
  else if (rc === Rc.Down) up = sign !== 0;
  else if (rc === Rc.Up) up = sign === 0;
  else up = false;
  if (!up) return 0;
  if (L < 32) {
    w1 += 2 ** L;
    if (w1 >= TWO32) {
      w1 -= TWO32;
      w0 += 1;
    }
  } else {
    w0 += 2 ** (L - 32);
  }
  if (w0 >= TWO32) {
    // Carry out of the top: the significand was all ones and is now exactly 2.0.
    w0 = 0x80000000;
    wExp++;
  }
  return 1;
}

/**
 * Tininess is detected after rounding (as this hardware does): a result below 2^emin is not
 * tiny when rounding it to `prec` bits with an unbounded exponent reaches 2^emin.
 */
function tinyAfterRounding(sign: number, prec: number, rc: number, emin: number): boolean {
  if (wExp < emin - 1) return true;
  const s0 = w0, s1 = w1, s2 = w2, se = wExp;
  roundAt(sign, prec, rc);
  const tiny = wExp < emin;
  w0 = s0;
  w1 = s1;
  w2 = s2;
  wExp = se;
  return tiny;
}

/**
 * Round W (w0's top bit weighs 2^wExp) to `prec` bits in the exponent
 * range [emin, emax], raising PE/UE/OE and setting fp.c1. Leaves the rounded significand in
 * w0:w1 (top bit clear for a denormal or zero, whose exponent is then emin) and the exponent in
 * wExp. Returns false on overflow (w0:w1 and wExp then hold the overflow response).
 */
function roundPack(sign: number, prec: number, emin: number, emax: number): boolean {
  const rc = fp.rc;
  let tiny = false;
  if (wExp < emin) {
    tiny = tinyAfterRounding(sign, prec, rc, emin);
    shiftRightSticky(emin - wExp);
    wExp = emin;
  }
  const up = roundAt(sign, prec, rc);
  if (roundInexact) {
    fp.flags |= Fx.PE;
    if (tiny) fp.flags |= Fx.UE;
  }
  fp.c1 = up;
  if (wExp > emax) {
    fp.flags |= Fx.OE | Fx.PE;
    const toInf = rc === Rc.Nearest || (rc === Rc.Up && sign === 0) || (rc === Rc.Down && sign !== 0);
    if (toInf) {
      fp.c1 = 1;
      w0 = 0x80000000;
      w1 = 0;
      wExp = emax + 1;
    } else {
      fp.c1 = 0;
      w0 = 0xffffffff;
      w1 = 0xffffffff;
      wExp = emax;
      roundAt(sign, prec, Rc.Zero); // largest finite at this precision
      roundInexact = true;
    }
    return false;
  }
  return true;
}

/** Round W to the x87 register format with the given precision and put it in fp. */
function packExt(sign: number, prec: number): void {
  if (!roundPack(sign, prec, EXT_EMIN, EXT_EMAX) && wExp > EXT_EMAX) {
    setResult((sign << 15) | 0x7fff, 0x80000000, 0);
    return;
  }
  const e = w0 >= 0x80000000 ? wExp + EXP_BIAS : 0;
  setResult((sign << 15) | e, w0, w1);
}

// ---------------------------------------------------------------------------------------------
// NaN handling

/** Quiet NaN result from one NaN operand (SNaN raises IE). */
function propagateOne(se: number, hi: number, lo: number, c: Cls): void {
  if (c === Cls.SNaN) fp.flags |= Fx.IE;
  setResult(se, hi | 0x40000000, lo);
}

/**
 * Result of a two-operand operation when at least one operand is a NaN: an SNaN is quieted
 * (IE); with two NaNs of the same kind the larger significand wins, with one QNaN and one SNaN
 * the QNaN does.
 */
function propagateTwo(ase: number, ahi: number, alo: number, ca: Cls, bse: number, bhi: number, blo: number, cb: Cls): void {
  const aNaN = isNaNClass(ca);
  const bNaN = isNaNClass(cb);
  if (ca === Cls.SNaN || cb === Cls.SNaN) fp.flags |= Fx.IE;
  const qa = (ahi | 0x40000000) >>> 0;
  const qb = (bhi | 0x40000000) >>> 0;
  let pickA: boolean;
  if (aNaN && bNaN) {
    if (ca !== cb) pickA = ca === Cls.QNaN;
    else if (qa !== qb) pickA = qa > qb;
    else if (alo >>> 0 !== blo >>> 0) pickA = alo >>> 0 > blo >>> 0;
    else pickA = (ase & 0xffff) < (bse & 0xffff);
  } else pickA = aNaN;
  if (pickA) setResult(ase, qa, alo);
  else setResult(bse, qb, blo);
}

/**
 * Common operand screening for two-operand arithmetic: handles NaNs and unsupported encodings
 * and raises DE. Returns true when the result has been produced.
 */
function screenTwo(ase: number, ahi: number, alo: number, ca: Cls, bse: number, bhi: number, blo: number, cb: Cls): boolean {
  if (ca === Cls.Unsupported || cb === Cls.Unsupported) {
    invalid();
    return true;
  }
  if (isNaNClass(ca) || isNaNClass(cb)) {
    propagateTwo(ase, ahi, alo, ca, bse, bhi, blo, cb);
    return true;
  }
  if (ca === Cls.Denormal || cb === Cls.Denormal) fp.flags |= Fx.DE;
  return false;
}

// ---------------------------------------------------------------------------------------------
// Arithmetic

/** a + b (negateB: a - b), rounded to fp.pc. */
export function add(ase: number, ahi: number, alo: number, bse: number, bhi: number, blo: number, negateB = false): void {
  const ca = classify(ase, ahi, alo);
  const cb = classify(bse, bhi, blo);
  if (screenTwo(ase, ahi, alo, ca, bse, bhi, blo, cb)) return;
  const sa = (ase >> 15) & 1;
  const sb = ((bse >> 15) & 1) ^ (negateB ? 1 : 0);
  if (ca === Cls.Inf || cb === Cls.Inf) {
    if (ca === Cls.Inf && cb === Cls.Inf && sa !== sb) return invalid();
    const s = ca === Cls.Inf ? sa : sb;
    return setResult((s << 15) | 0x7fff, 0x80000000, 0);
  }
  if (ca === Cls.Zero && cb === Cls.Zero) {
    const s = sa === sb ? sa : fp.rc === Rc.Down ? 1 : 0;
    return setResult(s << 15, 0, 0);
  }
  if (cb === Cls.Zero) {
    unpackA(ase, ahi, alo);
    return roundUnpackedA(aSign);
  }
  if (ca === Cls.Zero) {
    unpackA(bse, bhi, blo);
    return roundUnpackedA(sb);
  }
  unpackA(ase, ahi, alo);
  unpackB(bse, bhi, blo);
  // Make A the larger magnitude.
  let sBig = sa;
  let sSmall = sb;
  if (bExp > aExp || (bExp === aExp && (bHi > aHi || (bHi === aHi && bLo > aLo)))) {
    swapAB();
    sBig = sb;
    sSmall = sa;
  }
  w0 = bHi;
  w1 = bLo;
  w2 = 0;
  shiftRightSticky(aExp - bExp);
  wExp = aExp;
  if (sBig === sSmall) {
    // A's third word is zero, so w2 (b's shifted-out bits) is already the sum's third word.
    let t = aLo + w1;
    let c = 0;
    c = t >= TWO32 ? 1 : 0;
    w1 = t - c * TWO32;
    t = aHi + w0 + c;
    c = t >= TWO32 ? 1 : 0;
    w0 = t - c * TWO32;
    if (c) {
      const lost = w2 & 1;
      w2 = ((w2 >>> 1) | (w1 << 31) | lost) >>> 0;
      w1 = ((w1 >>> 1) | (w0 << 31)) >>> 0;
      w0 = ((w0 >>> 1) | 0x80000000) >>> 0;
      wExp++;
    }
  } else {
    let t = 0 - w2;
    let borrow = t < 0 ? 1 : 0;
    w2 = t + borrow * TWO32;
    t = aLo - w1 - borrow;
    borrow = t < 0 ? 1 : 0;
    w1 = t + borrow * TWO32;
    t = aHi - w0 - borrow;
    w0 = t;
    if ((w0 | w1 | w2) === 0) {
      return setResult((fp.rc === Rc.Down ? 1 : 0) << 15, 0, 0);
    }
    normalizeW();
  }
  packExt(sBig, fp.pc);
}

function swapAB(): void {
  let t = aSign;
  aSign = bSign;
  bSign = t;
  t = aExp;
  aExp = bExp;
  bExp = t;
  t = aHi;
  aHi = bHi;
  bHi = t;
  t = aLo;
  aLo = bLo;
  bLo = t;
}

/** Round the unpacked A (with the given sign) to fp.pc: x + 0 still rounds to the precision. */
function roundUnpackedA(sign: number): void {
  w0 = aHi;
  w1 = aLo;
  w2 = 0;
  wExp = aExp;
  packExt(sign, fp.pc);
}

export function sub(ase: number, ahi: number, alo: number, bse: number, bhi: number, blo: number): void {
  add(ase, ahi, alo, bse, bhi, blo, true);
}

const LA = new Float64Array(4);
const LB = new Float64Array(4);
const COL = new Float64Array(8);

/** 64x64 -> 128-bit product of the A and B significands into W (top 96 bits, sticky). */
function mulSignificands(): void {
  LA[0] = aLo & 0xffff;
  LA[1] = aLo >>> 16;
  LA[2] = aHi & 0xffff;
  LA[3] = aHi >>> 16;
  LB[0] = bLo & 0xffff;
  LB[1] = bLo >>> 16;
  LB[2] = bHi & 0xffff;
  LB[3] = bHi >>> 16;
  COL.fill(0);
  for (let i = 0; i < 4; i++) for (let j = 0; j < 4; j++) COL[i + j] += LA[i] * LB[j];
  // Carry-propagate into 16-bit limbs, reusing COL.
  let carry = 0;
  for (let k = 0; k < 8; k++) {
    const v = COL[k] + carry;
    carry = Math.floor(v / 65536);
    COL[k] = v - carry * 65536;
  }
  const p3 = COL[1] * 65536 + COL[0];
  w2 = COL[3] * 65536 + COL[2];
  w1 = COL[5] * 65536 + COL[4];
  w0 = COL[7] * 65536 + COL[6];
  if (p3 !== 0) w2 = (w2 | 1) >>> 0;
}

export function mul(ase: number, ahi: number, alo: number, bse: number, bhi: number, blo: number): void {
  const ca = classify(ase, ahi, alo);
  const cb = classify(bse, bhi, blo);
  if (screenTwo(ase, ahi, alo, ca, bse, bhi, blo, cb)) return;
  const s = ((ase ^ bse) >> 15) & 1;
  if (ca === Cls.Inf || cb === Cls.Inf) {
    if (ca === Cls.Zero || cb === Cls.Zero) return invalid();
    return setResult((s << 15) | 0x7fff, 0x80000000, 0);
  }
  if (ca === Cls.Zero || cb === Cls.Zero) return setResult(s << 15, 0, 0);
  unpackA(ase, ahi, alo);
  unpackB(bse, bhi, blo);
  mulSignificands();
  wExp = aExp + bExp + 1;
  normalizeW();
  packExt(s, fp.pc);
}

/** Divide A's significand by B's into W: 65 quotient bits plus a sticky bit. Returns log2 adjust. */
function divSignificands(): number {
  // r = A (65-bit capacity: r2 is the bit above rh); if A < B start one bit lower.
  let r2 = 0, rh = aHi, rl = aLo;
  let adjust = 0;
  if (aHi < bHi || (aHi === bHi && aLo < bLo)) {
    r2 = rh >>> 31;
    rh = ((rh << 1) | (rl >>> 31)) >>> 0;
    rl = (rl << 1) >>> 0;
    adjust = -1;
  }
  let qh = 0, ql = 0, q2 = 0;
  for (let i = 0; i < 65; i++) {
    let bit = 0;
    if (r2 !== 0 || rh > bHi || (rh === bHi && rl >= bLo)) {
      let t = rl - bLo;
      const borrow = t < 0 ? 1 : 0;
      rl = t + borrow * TWO32;
      t = rh - bHi - borrow;
      if (t < 0) {
        rh = t + TWO32;
        r2 = 0;
      } else {
        rh = t;
        r2 = 0;
      }
      bit = 1;
    }
    // Shift the quotient (qh:ql:q2 holds 65 bits: q2 gets the last bit only).
    if (i < 64) {
      qh = ((qh << 1) | (ql >>> 31)) >>> 0;
      ql = ((ql << 1) | bit) >>> 0;
    } else q2 = bit;
    r2 = rh >>> 31;
    rh = ((rh << 1) | (rl >>> 31)) >>> 0;
    rl = (rl << 1) >>> 0;
  }
  w0 = qh;
  w1 = ql;
  w2 = ((q2 << 31) | (r2 | rh | rl ? 1 : 0)) >>> 0;
  return adjust;
}

export function div(ase: number, ahi: number, alo: number, bse: number, bhi: number, blo: number): void {
  const ca = classify(ase, ahi, alo);
  const cb = classify(bse, bhi, blo);
  if (screenTwo(ase, ahi, alo, ca, bse, bhi, blo, cb)) return;
  const s = ((ase ^ bse) >> 15) & 1;
  if (ca === Cls.Inf) {
    if (cb === Cls.Inf) return invalid();
    return setResult((s << 15) | 0x7fff, 0x80000000, 0);
  }
  if (cb === Cls.Inf) return setResult(s << 15, 0, 0);
  if (cb === Cls.Zero) {
    if (ca === Cls.Zero) return invalid();
    fp.flags = (fp.flags & ~Fx.DE) | Fx.ZE; // a denormal dividend does not add DE to ZE
    return setResult((s << 15) | 0x7fff, 0x80000000, 0);
  }
  if (ca === Cls.Zero) return setResult(s << 15, 0, 0);
  unpackA(ase, ahi, alo);
  unpackB(bse, bhi, blo);
  wExp = aExp - bExp + divSignificands();
  packExt(s, fp.pc);
}

export function sqrt(se: number, hi: number, lo: number): void {
  const c = classify(se, hi, lo);
  if (c === Cls.Unsupported) return invalid();
  if (isNaNClass(c)) return propagateOne(se, hi, lo, c);
  const sign = (se >> 15) & 1;
  if (c === Cls.Zero) return setResult(se, hi, lo);
  if (sign) return invalid();
  if (c === Cls.Inf) return setResult(se, hi, lo);
  if (c === Cls.Denormal) fp.flags |= Fx.DE;
  unpackA(se, hi, lo);
  // value = A·2^f with A the 64-bit integer significand; N = A·2^k has a 65-bit root.
  const f = aExp - 63;
  const k = (f & 1) === 0 ? 66 : 65;
  // Bit-serial square root: R (remainder) and Q (root) as three uint32 words each.
  let r2 = 0, r1 = 0, r0 = 0;
  let q2 = 0, q1 = 0, q0 = 0;
  for (let i = 64; i >= 0; i--) {
    // Next two bits of N: positions 2i+1, 2i, i.e. bits 2i+1-k and 2i-k of A.
    const pair = (bitOfA(2 * i + 1 - k) << 1) | bitOfA(2 * i - k);
    // R = R*4 + pair
    r2 = ((r2 << 2) | (r1 >>> 30)) >>> 0;
    r1 = ((r1 << 2) | (r0 >>> 30)) >>> 0;
    r0 = ((r0 << 2) | pair) >>> 0;
    // T = Q*4 + 1
    const t2 = ((q2 << 2) | (q1 >>> 30)) >>> 0;
    const t1 = ((q1 << 2) | (q0 >>> 30)) >>> 0;
    const t0 = ((q0 << 2) | 1) >>> 0;
    let bit = 0;
    if (r2 > t2 || (r2 === t2 && (r1 > t1 || (r1 === t1 && r0 >= t0)))) {
      let t = r0 - t0;
      let borrow = t < 0 ? 1 : 0;
      r0 = t + borrow * TWO32;
      t = r1 - t1 - borrow;
      borrow = t < 0 ? 1 : 0;
      r1 = t + borrow * TWO32;
      r2 = r2 - t2 - borrow;
      bit = 1;
    }
    q2 = ((q2 << 1) | (q1 >>> 31)) >>> 0;
    q1 = ((q1 << 1) | (q0 >>> 31)) >>> 0;
    q0 = ((q0 << 1) | bit) >>> 0;
  }
  // Q has exactly 65 bits (q2 = 1): its top 64 go to w0:w1, the last bit is the round bit.
  w0 = ((q2 << 31) | (q1 >>> 1)) >>> 0;
  w1 = ((q1 << 31) | (q0 >>> 1)) >>> 0;
  w2 = (((q0 & 1) << 31) | (r2 | r1 | r0 ? 1 : 0)) >>> 0;
  wExp = 64 + (f - k) / 2;
  packExt(0, fp.pc);
}

function bitOfA(j: number): number {
  if (j < 0 || j > 63) return 0;
  return j >= 32 ? (aHi >>> (j - 32)) & 1 : (aLo >>> j) & 1;
}

// ---------------------------------------------------------------------------------------------
// Comparison

/** Comparison outcomes, encoded as the C3,C2,C0 bits of the status word (C3=0x4000, C2=0x400, C0=0x100). */
export const enum Cmp {
  Greater = 0,
  Less = 0x100,
  Equal = 0x4000,
  Unordered = 0x4500,
}

/**
 * Compare a with b. `quiet` (FUCOM family) raises IE only for SNaNs; the ordered compares
 * (FCOM, FTST, FICOM) raise it for every NaN.
 */
export function compare(ase: number, ahi: number, alo: number, bse: number, bhi: number, blo: number, quiet: boolean): Cmp {
  const ca = classify(ase, ahi, alo);
  const cb = classify(bse, bhi, blo);
  if (ca === Cls.Unsupported || cb === Cls.Unsupported || isNaNClass(ca) || isNaNClass(cb)) {
    if (!quiet || ca === Cls.SNaN || cb === Cls.SNaN || ca === Cls.Unsupported || cb === Cls.Unsupported) fp.flags |= Fx.IE;
    return Cmp.Unordered;
  }
  if (ca === Cls.Denormal || cb === Cls.Denormal) fp.flags |= Fx.DE;
  const sa = (ase >> 15) & 1;
  const sb = (bse >> 15) & 1;
  if (ca === Cls.Zero && cb === Cls.Zero) return Cmp.Equal;
  if (ca === Cls.Zero) return sb ? Cmp.Greater : Cmp.Less;
  if (cb === Cls.Zero) return sa ? Cmp.Less : Cmp.Greater;
  if (sa !== sb) return sa ? Cmp.Less : Cmp.Greater;
  let mag: number; // sign of |a| - |b|
  if (ca === Cls.Inf || cb === Cls.Inf) mag = ca === cb ? 0 : ca === Cls.Inf ? 1 : -1;
  else {
    unpackA(ase, ahi, alo);
    unpackB(bse, bhi, blo);
    mag = aExp !== bExp ? (aExp > bExp ? 1 : -1) : aHi !== bHi ? (aHi > bHi ? 1 : -1) : aLo !== bLo ? (aLo > bLo ? 1 : -1) : 0;
  }
  if (mag === 0) return Cmp.Equal;
  return (mag > 0) !== (sa === 1) ? Cmp.Greater : Cmp.Less;
}

// ---------------------------------------------------------------------------------------------
// Rounding to integers

/**
 * Round the finite nonzero unpacked A to an integer by `rc` into W (w0's top bit weighing
 * 2^wExp, wExp >= 0) and return whether the magnitude went up; W = 0 when it rounds to zero.
 */
function roundAToInteger(rc: number): number {
  w0 = aHi;
  w1 = aLo;
  w2 = 0;
  wExp = aExp;
  if (wExp >= 63) {
    roundInexact = false;
    return 0;
  }
  let prec = wExp + 1;
  if (wExp < 0) {
    shiftRightSticky(-wExp);
    wExp = 0;
    prec = 1;
  }
  return roundAt(aSign, prec, rc);
}

export function roundToInteger(se: number, hi: number, lo: number): void {
  const c = classify(se, hi, lo);
  if (c === Cls.Unsupported) return invalid();
  if (isNaNClass(c)) return propagateOne(se, hi, lo, c);
  if (c === Cls.Zero || c === Cls.Inf) return setResult(se, hi, lo);
  if (c === Cls.Denormal) fp.flags |= Fx.DE;
  unpackA(se, hi, lo);
  fp.c1 = roundAToInteger(fp.rc);
  if (roundInexact) fp.flags |= Fx.PE;
  if (w0 === 0) return setResult(aSign << 15, 0, 0);
  setResult((aSign << 15) | (wExp + EXP_BIAS), w0, w1);
}

/** Magnitude (magHi:magLo) of the finite nonzero A rounded to an integer by `rc`; false when it needs more than 64 bits. */
let magHi = 0, magLo = 0, magUp = 0;
function roundAToMagnitude(rc: number): boolean {
  if (aExp > 63) return false;
  magUp = roundAToInteger(rc);
  magHi = 0;
  magLo = 0;
  if (w0 !== 0) {
    if (wExp > 63) return false;
    const sh = 63 - wExp;
    if (sh === 0) (magHi = w0), (magLo = w1);
    else if (sh < 32) (magHi = w0 >>> sh), (magLo = ((w1 >>> sh) | (w0 << (32 - sh))) >>> 0);
    else magLo = w0 >>> (sh - 32);
  }
  return true;
}

/**
 * Convert to a signed integer of `bytes` (2, 4, 8) bytes into fp.ilo/fp.ihi, rounding by
 * fp.rc, or truncating when `truncate` (FISTTP). Out of range, NaN and infinity give the
 * integer indefinite (the most negative value) with IE.
 */
export function toInt(se: number, hi: number, lo: number, bytes: number, truncate: boolean): void {
  const c = classify(se, hi, lo);
  fp.ihi = 0;
  if (c === Cls.Zero) {
    fp.ilo = 0;
    return;
  }
  if (c === Cls.Unsupported || c === Cls.Inf || isNaNClass(c)) return intIndefinite(bytes);
  unpackA(se, hi, lo);
  if (!roundAToMagnitude(truncate ? Rc.Zero : fp.rc)) return intIndefinite(bytes);
  let mh = magHi, ml = magLo;
  const neg = aSign !== 0;
  // Range check against the signed limits: |min| = 2^(8*bytes-1).
  if (bytes === 8) {
    if (mh > 0x80000000 || (mh === 0x80000000 && (ml !== 0 || !neg))) return intIndefinite(bytes);
  } else {
    const limit = bytes === 4 ? 0x80000000 : 0x8000;
    if (mh !== 0 || ml > limit || (ml === limit && !neg)) return intIndefinite(bytes);
  }
  if (roundInexact) fp.flags |= Fx.PE;
  fp.c1 = magUp;
  if (neg) {
    // Two's complement of the 64-bit magnitude.
    ml = (~ml + 1) >>> 0;
    mh = (~mh + (ml === 0 ? 1 : 0)) >>> 0;
  }
  fp.ilo = ml | 0;
  fp.ihi = mh | 0;
  if (bytes === 2) fp.ilo &= 0xffff;
}

function intIndefinite(bytes: number): void {
  fp.flags |= Fx.IE;
  fp.ilo = bytes === 2 ? 0x8000 : bytes === 4 ? 0x80000000 | 0 : 0;
  fp.ihi = bytes === 8 ? 0x80000000 | 0 : 0;
}

/** A signed 64-bit integer (lo, hi) to extended (exact). */
export function fromInt64(lo: number, hi: number): void {
  let mh = hi >>> 0;
  let ml = lo >>> 0;
  const sign = hi < 0 ? 1 : 0;
  if (sign) {
    ml = (~ml + 1) >>> 0;
    mh = (~mh + (ml === 0 ? 1 : 0)) >>> 0;
  }
  if ((mh | ml) === 0) return setResult(0, 0, 0);
  w0 = mh;
  w1 = ml;
  w2 = 0;
  wExp = 63;
  normalizeW();
  setResult((sign << 15) | (wExp + EXP_BIAS), w0, w1);
}

export function fromInt32(v: number): void {
  fromInt64(v | 0, v < 0 ? -1 : 0);
}

// ---------------------------------------------------------------------------------------------
// float32 / float64 conversions

/** float64 bits (lo, hi) to extended, exact; SNaN raises IE and is quieted, a denormal raises DE. */
export function fromF64(lo: number, hi: number): void {
  const sign = (hi >>> 31) & 1;
  const e = (hi >>> 20) & 0x7ff;
  const fh = hi & 0xfffff;
  const fl = lo >>> 0;
  // Fraction aligned below the integer bit: bits 62..11 of the extended significand.
  const sh = ((fh << 11) | (fl >>> 21)) >>> 0;
  const sl = (fl << 11) >>> 0;
  if (e === 0x7ff) {
    if ((fh | fl) === 0) return setResult((sign << 15) | 0x7fff, 0x80000000, 0);
    if ((fh & 0x80000) === 0) fp.flags |= Fx.IE;
    return setResult((sign << 15) | 0x7fff, sh | 0xc0000000, sl);
  }
  if (e === 0) {
    if ((fh | fl) === 0) return setResult(sign << 15, 0, 0);
    fp.flags |= Fx.DE;
    // A denormal's integer-bit place (bit 63 here) weighs 2^-1022.
    w0 = sh;
    w1 = sl;
    w2 = 0;
    wExp = -1022;
    normalizeW();
    return setResult((sign << 15) | (wExp + EXP_BIAS), w0, w1);
  }
  setResult((sign << 15) | (e - 1023 + EXP_BIAS), sh | 0x80000000, sl);
}

/** float32 bits to extended (exact). */
export function fromF32(bits: number): void {
  const sign = (bits >>> 31) & 1;
  const e = (bits >>> 23) & 0xff;
  const f = bits & 0x7fffff;
  const sh = (f << 8) >>> 0;
  if (e === 0xff) {
    if (f === 0) return setResult((sign << 15) | 0x7fff, 0x80000000, 0);
    if ((f & 0x400000) === 0) fp.flags |= Fx.IE;
    return setResult((sign << 15) | 0x7fff, sh | 0xc0000000, 0);
  }
  if (e === 0) {
    if (f === 0) return setResult(sign << 15, 0, 0);
    fp.flags |= Fx.DE;
    w0 = sh;
    w1 = 0;
    w2 = 0;
    wExp = -126; // the integer-bit place weighs 2^-126
    normalizeW();
    return setResult((sign << 15) | (wExp + EXP_BIAS), w0, w1);
  }
  setResult((sign << 15) | (e - 127 + EXP_BIAS), sh | 0x80000000, 0);
}

/**
 * Screen a unary operand for a store or conversion: returns true when fp.se/hi/lo already hold
 * the special result (NaN quieted, infinity, zero) or the operation was invalid; otherwise A is
 * unpacked and W loaded with it.
 */
function screenNarrow(se: number, hi: number, lo: number): Cls {
  const c = classify(se, hi, lo);
  if (c === Cls.SNaN) fp.flags |= Fx.IE;
  if (c === Cls.Unsupported) fp.flags |= Fx.IE;
  if (c === Cls.Normal || c === Cls.Denormal) {
    unpackA(se, hi, lo);
    w0 = aHi;
    w1 = aLo;
    w2 = 0;
    wExp = aExp;
  }
  return c;
}

/** Extended to float64 bits (fp.ilo, fp.ihi), rounded by fp.rc. */
export function toF64(se: number, hi: number, lo: number): void {
  const c = screenNarrow(se, hi, lo);
  const sign = (se >> 15) & 1;
  const signBit = sign << 31;
  switch (c) {
    case Cls.Zero:
      fp.ilo = 0;
      fp.ihi = signBit;
      return;
    case Cls.Inf:
      fp.ilo = 0;
      fp.ihi = signBit | 0x7ff00000;
      return;
    case Cls.Unsupported:
      fp.ilo = 0;
      fp.ihi = 0xfff80000 | 0;
      return;
    case Cls.QNaN:
    case Cls.SNaN:
      fp.ihi = signBit | 0x7ff80000 | ((hi >>> 11) & 0xfffff);
      fp.ilo = ((hi << 21) | (lo >>> 11)) | 0;
      return;
  }
  roundPack(sign, 53, -1022, 1023);
  const e = wExp > 1023 ? 0x7ff : w0 >= 0x80000000 ? wExp + 1023 : 0;
  if (e === 0x7ff) {
    fp.ihi = signBit | 0x7ff00000;
    fp.ilo = 0;
    return;
  }
  fp.ihi = signBit | (e << 20) | ((w0 >>> 11) & 0xfffff);
  fp.ilo = ((w0 << 21) | (w1 >>> 11)) | 0;
}

/** Extended to float32 bits (fp.ilo), rounded by fp.rc. */
export function toF32(se: number, hi: number, lo: number): void {
  const c = screenNarrow(se, hi, lo);
  const sign = (se >> 15) & 1;
  const signBit = sign << 31;
  fp.ihi = 0;
  switch (c) {
    case Cls.Zero:
      fp.ilo = signBit;
      return;
    case Cls.Inf:
      fp.ilo = signBit | 0x7f800000;
      return;
    case Cls.Unsupported:
      fp.ilo = 0xffc00000 | 0;
      return;
    case Cls.QNaN:
    case Cls.SNaN:
      fp.ilo = signBit | 0x7fc00000 | ((hi >>> 8) & 0x7fffff);
      return;
  }
  roundPack(sign, 24, -126, 127);
  const e = wExp > 127 ? 0xff : w0 >= 0x80000000 ? wExp + 127 : 0;
  fp.ilo = e === 0xff ? signBit | 0x7f800000 : signBit | (e << 23) | ((w0 >>> 8) & 0x7fffff);
}

// ---------------------------------------------------------------------------------------------
// FSCALE, FXTRACT, FPREM/FPREM1

/** ST0 · 2^trunc(ST1): a = ST0, b = ST1. */
export function scale(ase: number, ahi: number, alo: number, bse: number, bhi: number, blo: number): void {
  const ca = classify(ase, ahi, alo);
  const cb = classify(bse, bhi, blo);
  if (screenTwo(ase, ahi, alo, ca, bse, bhi, blo, cb)) return;
  const sb = (bse >> 15) & 1;
  if (cb === Cls.Inf) {
    if (sb === 0) {
      if (ca === Cls.Zero) return invalid();
      return setResult((ase & 0x8000) | 0x7fff, 0x80000000, 0);
    }
    if (ca === Cls.Inf) return invalid();
    return setResult(ase & 0x8000, 0, 0);
  }
  if (ca === Cls.Zero || ca === Cls.Inf) return setResult(ase, ahi, alo);
  let n = 0;
  if (cb !== Cls.Zero) {
    unpackB(bse, bhi, blo);
    // trunc(b), clamped: anything beyond ±2^16 scales every finite value out of range anyway.
    if (bExp >= 20) n = 1 << 20;
    else if (bExp >= 0) n = bHi >>> (31 - bExp);
    if (sb) n = -n;
  }
  unpackA(ase, ahi, alo);
  w0 = aHi;
  w1 = aLo;
  w2 = 0;
  wExp = aExp + n;
  packExt(aSign, 64);
}

/**
 * FXTRACT: the significand (exponent 0, ST0's sign) into fp.se/hi/lo and the unbiased exponent,
 * as an extended value, into `xtract`.
 */
export const xtract = { se: 0, hi: 0, lo: 0 };
export function extract(se: number, hi: number, lo: number): void {
  const c = classify(se, hi, lo);
  if (c === Cls.Unsupported) {
    invalid();
    return setXtract(INDEFINITE_SE, INDEFINITE_HI, 0);
  }
  if (isNaNClass(c)) {
    propagateOne(se, hi, lo, c);
    return setXtract(fp.se, fp.hi, fp.lo);
  }
  if (c === Cls.Zero) {
    fp.flags |= Fx.ZE;
    setXtract(0xffff, 0x80000000, 0); // exponent -infinity
    return setResult(se, hi, lo);
  }
  if (c === Cls.Inf) {
    setXtract(0x7fff, 0x80000000, 0);
    return setResult(se, hi, lo);
  }
  if (c === Cls.Denormal) fp.flags |= Fx.DE;
  unpackA(se, hi, lo);
  const e = aExp;
  fromInt32(e);
  setXtract(fp.se, fp.hi, fp.lo);
  setResult((aSign << 15) | EXP_BIAS, aHi, aLo);
}

function setXtract(se: number, hi: number, lo: number): void {
  xtract.se = se;
  xtract.hi = hi | 0;
  xtract.lo = lo | 0;
}

/**
 * FPREM (round = false: truncated quotient) and FPREM1 (round = true: nearest-even quotient)
 * of a = ST0 by b = ST1. Sets fp.quotient (low three quotient bits) and fp.partial (C2).
 */
export function remainder(ase: number, ahi: number, alo: number, bse: number, bhi: number, blo: number, round: boolean): void {
  fp.quotient = 0;
  fp.partial = false;
  const ca = classify(ase, ahi, alo);
  const cb = classify(bse, bhi, blo);
  if (screenTwo(ase, ahi, alo, ca, bse, bhi, blo, cb)) return;
  if (ca === Cls.Inf || cb === Cls.Zero) {
    fp.flags &= ~Fx.DE; // an invalid remainder reports only IE
    return invalid();
  }
  if (ca === Cls.Zero) return setResult(ase, ahi, alo);
  unpackA(ase, ahi, alo);
  let d = cb === Cls.Inf ? -2 : 0; // x rem ±inf = x (normalised)
  if (d === 0) {
    unpackB(bse, bhi, blo);
    d = aExp - bExp;
  }
  if (d < 0) {
    // |a| < |b|: the remainder is a, unless FPREM1 finds |a| > |b|/2 (then it is a ∓ b).
    if (!round || d < -1 || !(aHi > bHi || (aHi === bHi && aLo > bLo))) {
      w0 = aHi;
      w1 = aLo;
      w2 = 0;
      wExp = aExp;
      return packExt(aSign, 64);
    }
    // b = 2B in a's units, so |b| - |a| = (2B - A)·2^(aExp-63), a 65-bit difference.
    let t = ((bLo << 1) >>> 0) - aLo;
    let borrow = t < 0 ? 1 : 0;
    w2 = t + borrow * TWO32;
    t = (((bHi << 1) | (bLo >>> 31)) >>> 0) - aHi - borrow;
    borrow = t < 0 ? 1 : 0;
    w1 = t + borrow * TWO32;
    w0 = (bHi >>> 31) - borrow;
    wExp = aExp + 32;
    fp.quotient = 1;
    normalizeW();
    return packExt(aSign ^ 1, 64);
  }
  let sign = aSign;
  let partial = false;
  if (d >= 64) {
    partial = true;
    const n = 32 + (d % 32);
    d = n; // reduce by b·2^(D-N): the result's exponent scale is b's raised by D-N
    bExp = aExp - n;
  }
  // r = A·2^d mod B, q = low bits of floor(A·2^d / B); r fits in 65 bits (r2 on top).
  let r2 = 0, rh = aHi, rl = aLo;
  let q = 0;
  for (let i = 0; i <= d; i++) {
    if (i > 0) {
      r2 = rh >>> 31;
      rh = ((rh << 1) | (rl >>> 31)) >>> 0;
      rl = (rl << 1) >>> 0;
    }
    if (r2 !== 0 || rh > bHi || (rh === bHi && rl >= bLo)) {
      const t = rl - bLo;
      const borrow = t < 0 ? 1 : 0;
      rl = t + borrow * TWO32;
      rh = (rh - bHi - borrow + (r2 ? TWO32 : 0)) >>> 0;
      r2 = 0;
      q = (q << 1) | 1;
    } else q <<= 1;
  }
  if (round && !partial) {
    // Round the quotient to nearest-even: compare 2r with B.
    const t2 = rh >>> 31;
    const th = ((rh << 1) | (rl >>> 31)) >>> 0;
    const tl = (rl << 1) >>> 0;
    const cmp = t2 !== 0 || th > bHi || (th === bHi && tl > bLo) ? 1 : th === bHi && tl === bLo ? 0 : -1;
    if (cmp > 0 || (cmp === 0 && (q & 1) !== 0)) {
      const t = bLo - rl;
      const borrow = t < 0 ? 1 : 0;
      rl = t + borrow * TWO32;
      rh = (bHi - rh - borrow) >>> 0;
      q++;
      sign ^= 1;
    }
  }
  fp.quotient = q & 7;
  fp.partial = partial;
  if ((r2 | rh | rl) === 0) return setResult(aSign << 15, 0, 0);
  // Units of r: B's last place, 2^(bExp-63); w0 holds the bit above rh.
  w0 = r2;
  w1 = rh;
  w2 = rl;
  wExp = bExp + 32;
  normalizeW();
  packExt(sign, 64);
}

// ---------------------------------------------------------------------------------------------
// Packed BCD (FBLD, FBSTP): 18 digits, two per byte, least significant byte first; sign in bit 79

const BILLION = 1e9;

/** FBLD: the 10-byte packed BCD (lo, hi, w8 = bytes 8-9) to extended, exact. */
export function fromBcd(lo: number, hi: number, w8: number): void {
  // Digits 0-7 are lo's nibbles, 8-15 hi's, 16-17 the low byte of w8.
  const low9 = bcdDigits(lo >>> 0, 8) + (hi & 0xf) * 1e8;
  const top = bcdDigits(hi >>> 4, 7) + (w8 & 0xf) * 1e7 + ((w8 >> 4) & 0xf) * 1e8;
  // magnitude = top·10^9 + low9, assembled exactly into 32-bit halves.
  const topHi = Math.floor(top / 65536);
  const topLo = top - topHi * 65536;
  const a = topHi * BILLION; // < 2^44: weight 2^16
  const b = topLo * BILLION + low9; // < 2^47
  const aHigh = Math.floor(a / 65536); // a·2^16 = aHigh·2^32 + (a mod 2^16)·2^16
  const sumLo = (a - aHigh * 65536) * 65536 + b;
  const carry = Math.floor(sumLo / TWO32);
  const mh = aHigh + carry;
  const ml = sumLo - carry * TWO32;
  const sign = (w8 >> 15) & 1;
  if (mh === 0 && ml === 0) return setResult(sign << 15, 0, 0);
  fromInt64(ml | 0, mh | 0);
  fp.se |= sign << 15;
}

/** The decimal value of `count` BCD nibbles of `bits` (least significant first). */
function bcdDigits(bits: number, count: number): number {
  let v = 0;
  for (let i = count - 1; i >= 0; i--) v = v * 10 + ((bits >>> (4 * i)) & 0xf);
  return v;
}

/** FBSTP: round by fp.rc to an integer and store as packed BCD in fp.ilo, fp.ihi, fp.iw8. */
export function toBcd(se: number, hi: number, lo: number): void {
  const c = classify(se, hi, lo);
  const sign = (se >> 15) & 1;
  fp.ilo = 0;
  fp.ihi = 0;
  fp.iw8 = sign << 15;
  if (c === Cls.Zero) return;
  if (c === Cls.Unsupported || c === Cls.Inf || isNaNClass(c)) return bcdIndefinite();
  unpackA(se, hi, lo);
  if (!roundAToMagnitude(fp.rc)) return bcdIndefinite();
  if (magHi >= 0x10000000) return bcdIndefinite(); // >= 2^60 > 10^18
  // Split the magnitude into two 9-digit halves by exact long division by 10^9.
  const x = magHi * 65536 + (magLo >>> 16); // < 2^44
  const qa = Math.floor(x / BILLION);
  const y = (x - qa * BILLION) * 65536 + (magLo & 0xffff);
  const qb = Math.floor(y / BILLION);
  const top = qa * 65536 + qb;
  const low9 = y - qb * BILLION;
  if (top >= BILLION) return bcdIndefinite();
  if (roundInexact) fp.flags |= Fx.PE;
  fp.c1 = magUp;
  // Nibbles: low9 gives digits 0-8, top digits 9-17.
  let l = low9, t = top;
  let bitsLo = 0, bitsHi = 0, bits8 = 0;
  for (let i = 0; i < 18; i++) {
    let d: number;
    if (i < 9) {
      d = l % 10;
      l = (l - d) / 10;
    } else {
      d = t % 10;
      t = (t - d) / 10;
    }
    if (i < 8) bitsLo |= d << (4 * i);
    else if (i < 16) bitsHi |= d << (4 * (i - 8));
    else bits8 |= d << (4 * (i - 16));
  }
  fp.ilo = bitsLo | 0;
  fp.ihi = bitsHi | 0;
  fp.iw8 = (sign << 15) | bits8;
}

function bcdIndefinite(): void {
  fp.flags |= Fx.IE;
  fp.ilo = 0;
  fp.ihi = 0xc0000000 | 0;
  fp.iw8 = 0xffff;
}

// ---------------------------------------------------------------------------------------------
// FXAM

/** C3,C2,C0 for FXAM of a non-empty register (the empty class is the caller's business). */
export function examine(se: number, hi: number, lo: number): number {
  switch (classify(se, hi, lo)) {
    case Cls.Unsupported:
      return 0;
    case Cls.QNaN:
    case Cls.SNaN:
      return 0x100;
    case Cls.Normal:
      return 0x400;
    case Cls.Inf:
      return 0x500;
    case Cls.Zero:
      return 0x4000;
    default:
      return 0x4400;
  }
}

// ---------------------------------------------------------------------------------------------
// Constants

/**
 * FLD1/FLDL2T/FLDL2E/FLDPI/FLDLG2/FLDLN2/FLDZ: the 64-bit truncated significand, the exponent,
 * and whether the discarded tail is above one half (round-to-nearest rounds up). The tail is
 * never exactly a half, and never zero for the irrational ones.
 */
const CONSTANTS: readonly (readonly [number, number, number, boolean, boolean])[] = [
  // [se, hi, lo, inexact, nearestRoundsUp]
  [0x3fff, 0x80000000, 0x00000000, false, false], // 1
  [0x4000, 0xd49a784b, 0xcd1b8afe, true, false], // log2(10)
  [0x3fff, 0xb8aa3b29, 0x5c17f0bb, true, true], // log2(e)
  [0x4000, 0xc90fdaa2, 0x2168c234, true, true], // pi
  [0x3ffd, 0x9a209a84, 0xfbcff798, true, true], // log10(2)
  [0x3ffe, 0xb17217f7, 0xd1cf79ab, true, true], // ln(2)
  [0x0000, 0x00000000, 0x00000000, false, false], // +0
];

/** Load constant k (0 = 1.0 … 6 = +0.0) rounded by fp.rc; the hardware does not raise PE. */
export function loadConstant(k: number): void {
  const [se, hi, lo, inexact, nearestUp] = CONSTANTS[k];
  const up = inexact && (fp.rc === Rc.Nearest ? nearestUp : fp.rc === Rc.Up);
  if (!up) return setResult(se, hi, lo);
  // No constant's significand is all ones in its low word, so the increment does not carry.
  setResult(se, hi, (lo + 1) | 0);
}

// ---------------------------------------------------------------------------------------------
// Transcendentals through double

const F64 = new Float64Array(1);
const F64_I32 = new Int32Array(F64.buffer);

/** The extended operand as a JS double (rounded to nearest; NaN payloads are not preserved). */
export function toDouble(se: number, hi: number, lo: number): number {
  const saveRc = fp.rc;
  const saveFlags = fp.flags;
  const saveC1 = fp.c1;
  fp.rc = Rc.Nearest;
  toF64(se, hi, lo);
  fp.rc = saveRc;
  fp.flags = saveFlags;
  fp.c1 = saveC1;
  F64_I32[0] = fp.ilo;
  F64_I32[1] = fp.ihi;
  return F64[0];
}

/** A JS double into fp.se/hi/lo (exact); PE is raised for a finite nonzero result. */
export function fromDouble(x: number): void {
  F64[0] = x;
  const saveFlags = fp.flags;
  fromF64(F64_I32[0], F64_I32[1]);
  fp.flags = saveFlags;
  if (x === x && x !== 0 && x !== Infinity && x !== -Infinity) fp.flags |= Fx.PE;
  if (x !== x) setIndefinite();
}
