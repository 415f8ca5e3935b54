/**
 * Integer semantics shared by the IR interpreter and compiled code: the 64-bit operations on
 * int32 pairs that are too long to inline at every use (multiplies, variable shifts). Each
 * returns the low half and leaves the high half in `R.hi`, so nothing allocates.
 * The JIT emits calls to these by name (they are passed into every compiled unit).
 */

/** The high half of the last 64-bit result. */
export const R = { hi: 0 };

/** High 32 bits of the unsigned product of two uint32 values. */
export function mulhu32(a: number, b: number): number {
  const a0 = a & 0xffff;
  const a1 = a >>> 16;
  const b0 = b & 0xffff;
  const b1 = b >>> 16;
  const t = a0 * b0;
  const m1 = a1 * b0 + (t >>> 16);
  const m2 = a0 * b1 + (m1 & 0xffff);
  return (a1 * b1 + Math.floor(m1 / 65536) + Math.floor(m2 / 65536)) | 0;
}

/** Low 64 bits of a 64x64 product (signed and unsigned agree). */
export function mul64(al: number, ah: number, bl: number, bh: number): number {
  R.hi = (mulhu32(al >>> 0, bl >>> 0) + Math.imul(al, bh) + Math.imul(ah, bl)) | 0;
  return Math.imul(al, bl);
}

const TWO32 = 4294967296;

/** Does the signed 64x64 product overflow 64 bits? (IMUL's CF/OF.) */
export function imulOverflow64(al: number, ah: number, bl: number, bh: number): number {
  const aL = al >>> 0, aH = ah >>> 0, bL = bl >>> 0, bH = bh >>> 0;
  // Unsigned 128-bit product in 32-bit words w0..w3.
  const p0h = mulhu32(aL, bL) >>> 0;
  const p1l = Math.imul(aL, bH) >>> 0, p1h = mulhu32(aL, bH) >>> 0;
  const p2l = Math.imul(aH, bL) >>> 0, p2h = mulhu32(aH, bL) >>> 0;
  const p3l = Math.imul(aH, bH) >>> 0, p3h = mulhu32(aH, bH) >>> 0;
  const s1 = p0h + p1l + p2l;
  const w1 = s1 % TWO32;
  const s2 = p1h + p2h + p3l + Math.floor(s1 / TWO32);
  let w2 = s2 % TWO32;
  let w3 = (p3h + Math.floor(s2 / TWO32)) % TWO32;
  // Signed correction: subtract b << 64 when a < 0, a << 64 when b < 0.
  if (ah < 0) {
    const lo = w2 - bL;
    w2 = (lo + TWO32) % TWO32;
    w3 = (w3 - bH - (lo < 0 ? 1 : 0) + 2 * TWO32) % TWO32;
  }
  if (bh < 0) {
    const lo = w2 - aL;
    w2 = (lo + TWO32) % TWO32;
    w3 = (w3 - aH - (lo < 0 ? 1 : 0) + 2 * TWO32) % TWO32;
  }
  const sign = w1 >= 2147483648 ? TWO32 - 1 : 0;
  return w2 === sign && w3 === sign ? 0 : 1;
}

/** Does the signed product of two sign-extended values of `size` bytes (1, 2, 4) overflow it? */
export function imulOverflow32(a: number, b: number, size: number): number {
  if (size === 4) {
    // Inexact above 2^53, but a product outside the int32 range stays outside it when rounded.
    const p = (a | 0) * (b | 0);
    return p >= -2147483648 && p <= 2147483647 ? 0 : 1;
  }
  const bits = size * 8;
  const sa = (a << (32 - bits)) >> (32 - bits);
  const sb = (b << (32 - bits)) >> (32 - bits);
  const p = sa * sb;
  const sp = (p << (32 - bits)) >> (32 - bits);
  return sp === p ? 0 : 1;
}

export function shl64(lo: number, hi: number, n: number): number {
  if (n === 0) {
    R.hi = hi;
    return lo;
  }
  if (n < 32) {
    R.hi = (hi << n) | (lo >>> (32 - n));
    return lo << n;
  }
  R.hi = lo << (n - 32);
  return 0;
}

export function shr64(lo: number, hi: number, n: number): number {
  if (n === 0) {
    R.hi = hi;
    return lo;
  }
  if (n < 32) {
    R.hi = hi >>> n | 0;
    return (lo >>> n) | (hi << (32 - n));
  }
  R.hi = 0;
  return (hi >>> (n - 32)) | 0;
}

export function sar64(lo: number, hi: number, n: number): number {
  if (n === 0) {
    R.hi = hi;
    return lo;
  }
  if (n < 32) {
    R.hi = hi >> n;
    return (lo >>> n) | (hi << (32 - n));
  }
  R.hi = hi >> 31;
  return hi >> (n - 32);
}

/** A signed 64-bit value from its halves, as an address (exact for canonical addresses). */
export function toAddr(lo: number, hi: number): number {
  return hi * TWO32 + (lo >>> 0);
}
