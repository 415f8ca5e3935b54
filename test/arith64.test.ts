/**
 * src/cpu/arith64.ts against BigInt reference arithmetic, on edge values and seeded random
 * operands (shaped so that divisions exercise all three internal paths: doubles, 16-bit limbs
 * and bit-by-bit).
 */
import { describe, expect, it } from 'vitest';
import { divs128by64, divu128by64, mul64lo, muls64, mulu64, wide } from '../src/cpu/arith64.js';

const M64 = (1n << 64n) - 1n;
const M128 = (1n << 128n) - 1n;

function lo32(v: bigint): number {
  return Number(BigInt.asIntN(32, v));
}
function hi32(v: bigint): number {
  return Number(BigInt.asIntN(32, v >> 32n));
}
function word(v: bigint, i: number): number {
  return Number(BigInt.asIntN(32, v >> BigInt(32 * i)));
}
function wideAs128(): bigint {
  let v = 0n;
  for (let i = 3; i >= 0; i--) v = (v << 32n) | BigInt(wide[i] >>> 0);
  return v;
}
function pairAt(i: number): bigint {
  return (BigInt(wide[i + 1] >>> 0) << 32n) | BigInt(wide[i] >>> 0);
}

/** Deterministic xorshift so failures reproduce. */
function rng(seed: number): () => bigint {
  let s = BigInt(seed) | 1n;
  return () => {
    s ^= (s << 13n) & M64;
    s ^= s >> 7n;
    s ^= (s << 17n) & M64;
    return s & M64;
  };
}

const EDGES = [0n, 1n, 2n, 3n, 0x7fn, 0xffffn, 0x7fffffffn, 0x80000000n, 0xffffffffn, 0x100000000n, (1n << 52n) - 1n, 1n << 52n,
  (1n << 53n) + 1n, 0x7fffffffffffffffn, 0x8000000000000000n, M64 - 1n, M64];

function operands(n: number): bigint[] {
  const next = rng(n);
  const out = [...EDGES];
  for (let i = 0; i < 400; i++) {
    const r = next();
    const shapes = [r, r & 0xffffffffn, r & 0xfffffn, r >> BigInt(Number(r % 64n)), M64 - (r & 0xffffn)];
    out.push(shapes[i % shapes.length]);
  }
  return out;
}

describe('multiplication', () => {
  const xs = operands(11);
  const ys = operands(23).reverse();
  it('mulu64 / muls64 / mul64lo agree with BigInt', () => {
    for (const a of xs)
      for (const b of [ys[xs.indexOf(a) % ys.length], ...EDGES]) {
        const u = a * b;
        const flagU = mulu64(lo32(a), hi32(a), lo32(b), hi32(b));
        expect(wideAs128(), `${a} * ${b}`).toBe(u);
        expect(flagU).toBe(u >> 64n !== 0n);
        const sa = BigInt.asIntN(64, a), sb = BigInt.asIntN(64, b);
        const sp = sa * sb;
        const flagS = muls64(lo32(a), hi32(a), lo32(b), hi32(b));
        expect(wideAs128(), `${sa} * ${sb}`).toBe(sp & M128);
        expect(flagS).toBe(sp !== BigInt.asIntN(64, sp));
        const low = mul64lo(lo32(a), hi32(a), lo32(b), hi32(b));
        expect(low).toBe(lo32(u));
        expect(wide[1]).toBe(hi32(u));
      }
  });
});

describe('division', () => {
  function checkUnsigned(n: bigint, d: bigint): void {
    const ok = divu128by64(word(n, 0), word(n, 1), word(n, 2), word(n, 3), lo32(d), hi32(d));
    const expectOk = d !== 0n && n / d <= M64;
    expect(ok, `${n} / ${d}`).toBe(expectOk);
    if (!ok) return;
    expect(pairAt(0), `${n} / ${d}`).toBe(n / d);
    expect(pairAt(2), `${n} % ${d}`).toBe(n % d);
  }
  function checkSigned(n: bigint, d: bigint): void {
    const sn = BigInt.asIntN(128, n), sd = BigInt.asIntN(64, d);
    const ok = divs128by64(word(n, 0), word(n, 1), word(n, 2), word(n, 3), lo32(d), hi32(d));
    const q = sd === 0n ? 0n : sn / sd; // BigInt division truncates toward zero, like IDIV
    const expectOk = sd !== 0n && q === BigInt.asIntN(64, q);
    expect(ok, `${sn} / ${sd}`).toBe(expectOk);
    if (!ok) return;
    expect(BigInt.asIntN(64, pairAt(0)), `${sn} / ${sd}`).toBe(q);
    expect(BigInt.asIntN(64, pairAt(2)), `${sn} % ${sd}`).toBe(sn % sd);
  }

  it('divu128by64 matches BigInt, including the #DE cases', () => {
    const next = rng(5);
    const ds = operands(31);
    for (const d of ds) {
      const r = next();
      const qWanted = next();
      // dividends: small (double path), q*d + r (fits), and one with a too-large high half
      for (const n of [r & 0xffffffffffffn, d * qWanted + (d ? r % d : 0n), ((d + (r & 1n)) << 64n) | r, r, d])
        checkUnsigned(n & M128, d);
    }
  });

  it('divs128by64 matches BigInt, including the #DE cases', () => {
    const next = rng(9);
    const ds = operands(37);
    const specials: [bigint, bigint][] = [
      [-(1n << 63n), -1n], // quotient 2^63: overflow
      [-(1n << 63n), 1n], // quotient -2^63: fits
      [(1n << 63n) - 1n, 1n],
      [-7n, 2n],
      [7n, -2n],
      [-(1n << 127n), -1n],
      [-(1n << 126n), -(1n << 63n)],
      [(1n << 126n), -(1n << 63n)],
    ];
    for (const [n, d] of specials) checkSigned(n & M128, d & M64);
    for (const d of ds) {
      const r = next();
      const sd = BigInt.asIntN(64, d);
      const q = BigInt.asIntN(64, next()) >> BigInt(Number(r % 64n));
      const n = sd * q + (sd ? BigInt.asIntN(64, r) % sd : 0n);
      for (const v of [n, -n, BigInt.asIntN(64, r), BigInt.asIntN(128, (r << 64n) | r)]) checkSigned(v & M128, d);
    }
  });
});
