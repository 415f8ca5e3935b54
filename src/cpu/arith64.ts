/**
 * 64-bit multiplication and 128-by-64-bit division on int32 pairs, for MUL/IMUL/DIV/IDIV in
 * the interpreter helpers and (later) in compiled code.
 *
 * Why it is shaped so: JS has no fast 64-bit integers and BigInt is far too slow per guest
 * instruction, while doubles hold every integer below 2^53 exactly. Products are therefore
 * formed from 16-bit limbs (each partial product < 2^32, each column sum < 2^35) and
 * divisions either in doubles when both sides are small enough, or in 16-bit limbs when the
 * divisor fits in 32 bits, or bit by bit for wide divisors (rare in real code). Results go
 * to the module-level `wide` array, so nothing is allocated per call and the JIT can read
 * the four words back after calling in.
 */

/**
 * Results of the last call: for a multiplication the 128-bit product as four little-endian
 * 32-bit words (wide[0] lowest); for a division the quotient in wide[0..1] (lo, hi) and the
 * remainder in wide[2..3].
 */
export const wide = new Int32Array(4);

const TWO32 = 4294967296;
const TWO52 = 4503599627370496;

/** 16-bit limbs of the two operands and of the 128-bit product. */
const limbA = new Float64Array(4);
const limbB = new Float64Array(4);
const limbP = new Float64Array(8);

/** Unsigned 64×64→128 product of (al, ah) and (bl, bh) into `wide`. Returns true when the high 64 bits are non-zero (MUL's CF/OF). */
export function mulu64(al: number, ah: number, bl: number, bh: number): boolean {
  limbA[0] = al & 0xffff, limbA[1] = al >>> 16, limbA[2] = ah & 0xffff, limbA[3] = ah >>> 16;
  limbB[0] = bl & 0xffff, limbB[1] = bl >>> 16, limbB[2] = bh & 0xffff, limbB[3] = bh >>> 16;
  let carry = 0;
  for (let k = 0; k < 8; k++) {
    let column = carry;
    for (let i = k < 4 ? 0 : k - 3, end = k < 4 ? k : 3; i <= end; i++) column += limbA[i] * limbB[k - i];
    limbP[k] = column % 65536;
    carry = Math.floor(column / 65536);
  }
  for (let w = 0; w < 4; w++) wide[w] = limbP[2 * w] + limbP[2 * w + 1] * 65536;
  return (wide[2] | wide[3]) !== 0;
}

/**
 * Signed 64×64→128 product into `wide`. Returns true when the product does not fit in a
 * signed 64-bit value (IMUL's CF/OF).
 */
export function muls64(al: number, ah: number, bl: number, bh: number): boolean {
  mulu64(al, ah, bl, bh);
  // Reading a negative operand as unsigned adds 2^64 to it, which adds 2^64 times the other
  // operand to the product: subtract that back from the high 64 bits.
  if (ah < 0) subHigh(bl, bh);
  if (bh < 0) subHigh(al, ah);
  const signExt = wide[1] >> 31;
  return wide[2] !== signExt || wide[3] !== signExt;
}

function subHigh(l: number, h: number): void {
  const lo = (wide[2] >>> 0) - (l >>> 0);
  wide[2] = lo;
  wide[3] = (wide[3] - h - (lo < 0 ? 1 : 0)) | 0;
}

/** The low 64 bits of a product (signed and unsigned alike): returns the low word, the high word is in wide[1]. */
export function mul64lo(al: number, ah: number, bl: number, bh: number): number {
  // Only the low 64 bits matter: al*bl in full plus the low 32 bits of the cross products.
  const a0 = al & 0xffff, a1 = al >>> 16, b0 = bl & 0xffff, b1 = bl >>> 16;
  const mid = a1 * b0 + a0 * b1; // < 2^33
  const low = a0 * b0 + (mid % 65536) * 65536; // < 2^49
  const carry = Math.floor(low / TWO32);
  const high = a1 * b1 + Math.floor(mid / 65536) + carry;
  wide[0] = low;
  wide[1] = (high + Math.imul(al, bh) + Math.imul(ah, bl)) | 0;
  return wide[0];
}

/**
 * Unsigned division of the 128-bit value (n0 lowest … n3 highest word) by (dl, dh).
 * Quotient and remainder go to `wide`. Returns false — and leaves `wide` unspecified — when
 * the divisor is zero or the quotient does not fit in 64 bits (the #DE cases of DIV).
 */
export function divu128by64(n0: number, n1: number, n2: number, n3: number, dl: number, dh: number): boolean {
  if ((dl | dh) === 0) return false;
  // The quotient fits in 64 bits exactly when the high half of the dividend is below the divisor.
  if (n3 >>> 0 > dh >>> 0 || (n3 === dh && n2 >>> 0 >= dl >>> 0)) return false;
  const divisor = (dh >>> 0) * TWO32 + (dl >>> 0);
  if ((n2 | n3) === 0) {
    const dividend = (n1 >>> 0) * TWO32 + (n0 >>> 0);
    if (dividend < TWO52 && divisor < TWO52) {
      // Both exact in doubles; the rounded quotient is off by at most one, and q*d stays below 2^53.
      let q = Math.floor(dividend / divisor);
      let r = dividend - q * divisor;
      if (r < 0) (q -= 1), (r += divisor);
      else if (r >= divisor) (q += 1), (r -= divisor);
      storePair(0, q);
      storePair(2, r);
      return true;
    }
  }
  if (dh === 0) divBySmall(n0, n1, n2, n3, dl >>> 0);
  else divBitwise(n0, n1, n2, n3, dl, dh);
  return true;
}

/** wide[i..i+1] = a non-negative integer below 2^53. */
function storePair(i: number, v: number): void {
  wide[i] = v % TWO32;
  wide[i + 1] = Math.floor(v / TWO32);
}

/**
 * Long division by a divisor below 2^32, one 16-bit limb at a time: the running remainder
 * (< d < 2^32) times 2^16 plus a limb stays below 2^48, exact in a double, and each quotient
 * digit is below 2^16. Callers have checked that the quotient fits in 64 bits, so the high
 * half of the dividend (n3:n2) is below d: it is the first remainder, and four digits remain.
 */
function divBySmall(n0: number, n1: number, n2: number, _n3: number, d: number): void {
  divRem = n2 >>> 0;
  wide[1] = quotientDigit(n1 >>> 16, d) * 65536 + quotientDigit(n1 & 0xffff, d);
  wide[0] = quotientDigit(n0 >>> 16, d) * 65536 + quotientDigit(n0 & 0xffff, d);
  wide[2] = divRem;
  wide[3] = 0;
}

/** The running remainder of divBySmall. */
let divRem = 0;

/** One step of divBySmall: (divRem * 2^16 + limb) / d, the remainder left in divRem. */
function quotientDigit(limb: number, d: number): number {
  const v = divRem * 65536 + limb;
  // The rounded double quotient is off by at most one.
  let q = Math.floor(v / d);
  let rem = v - q * d;
  if (rem < 0) (q -= 1), (rem += d);
  else if (rem >= d) (q += 1), (rem -= d);
  divRem = rem;
  return q;
}

/**
 * Restoring division one bit at a time, for divisors of 2^32 and more: the remainder starts
 * as the high 64 bits of the dividend (already below the divisor) and takes in the 64 low
 * bits one by one. The remainder can briefly need 65 bits, tracked in `top`.
 */
function divBitwise(n0: number, n1: number, n2: number, n3: number, dl: number, dh: number): void {
  let rl = n2, rh = n3;
  let ql = n0, qh = n1; // the dividend's low bits shift out at the top while quotient bits shift in below
  for (let i = 0; i < 64; i++) {
    const top = rh >>> 31;
    rh = (rh << 1) | (rl >>> 31);
    rl = (rl << 1) | (qh >>> 31);
    qh = (qh << 1) | (ql >>> 31);
    ql <<= 1;
    if (top || rh >>> 0 > dh >>> 0 || (rh === dh && rl >>> 0 >= dl >>> 0)) {
      const lo = (rl >>> 0) - (dl >>> 0);
      rh = (rh - dh - (lo < 0 ? 1 : 0)) | 0;
      rl = lo | 0;
      ql |= 1;
    }
  }
  wide[0] = ql;
  wide[1] = qh;
  wide[2] = rl;
  wide[3] = rh;
}

/**
 * Signed division of the 128-bit value (n0 … n3, two's complement) by (dl, dh): quotient
 * truncated toward zero, remainder with the dividend's sign, as IDIV does. Returns false for a
 * zero divisor or a quotient outside the signed 64-bit range.
 */
export function divs128by64(n0: number, n1: number, n2: number, n3: number, dl: number, dh: number): boolean {
  const negN = n3 < 0;
  const negD = dh < 0;
  if (negN) {
    // 128-bit two's-complement negation: invert, then add one with carry.
    n0 = ~n0, n1 = ~n1, n2 = ~n2, n3 = ~n3;
    n0 = (n0 + 1) | 0;
    if (n0 === 0) {
      n1 = (n1 + 1) | 0;
      if (n1 === 0) {
        n2 = (n2 + 1) | 0;
        if (n2 === 0) n3 = (n3 + 1) | 0;
      }
    }
  }
  if (negD) {
    dl = -dl | 0;
    dh = (~dh + (dl === 0 ? 1 : 0)) | 0;
  }
  if (!divu128by64(n0, n1, n2, n3, dl, dh)) return false;
  const negQ = negN !== negD;
  // |quotient| may be at most 2^63 - 1, or exactly 2^63 when the result is negative.
  if (wide[1] < 0 && !(negQ && wide[1] === (0x80000000 | 0) && wide[0] === 0)) return false;
  if (negQ) negatePair(0);
  if (negN) negatePair(2);
  return true;
}

function negatePair(i: number): void {
  const lo = -wide[i] | 0;
  wide[i + 1] = (~wide[i + 1] + (lo === 0 ? 1 : 0)) | 0;
  wide[i] = lo;
}
