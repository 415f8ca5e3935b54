/**
 * softfloat80 against this machine's x87, bit for bit. tools/x87-ref.c (compiled here with gcc)
 * runs each case natively and prints the status word, ST0/ST1 and any memory result; the same
 * case goes through softfloat80 and the two must agree on every result bit, the six exception
 * flags, C0-C3. Cases are random from a seeded generator biased towards the places where
 * extended arithmetic goes wrong: rounding boundaries under all four rounding modes and three
 * precision settings, denormals and pseudo-denormals, NaNs of both kinds, infinities,
 * exponents near overflow/underflow of every target format, int64 limits.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import * as sf from '../src/cpu/softfloat80.js';
import { fp } from '../src/cpu/softfloat80.js';

// ---- the native reference ----

function findGcc(): string | null {
  try {
    execFileSync('gcc', ['--version'], { stdio: 'ignore' });
    return 'gcc';
  } catch {
    return null;
  }
}

const gcc = findGcc();
const refBinary = path.join(os.tmpdir(), `svmjit-x87-ref-${process.pid}`);
if (gcc) execFileSync(gcc, ['-O1', '-o', refBinary, path.join(import.meta.dirname, '../tools/x87-ref.c')]);

export interface RefOut {
  sw: number;
  r0: [number, number, number];
  r1: [number, number, number];
  ilo: number;
  ihi: number;
  w8: number;
}

type Ext = [number, number, number];
interface Case {
  op: number;
  cw: number;
  a: Ext;
  b: Ext;
}

function runNative(cases: Case[]): RefOut[] {
  const hex = (v: number) => (v >>> 0).toString(16);
  const text = cases.map((c) => [c.op, c.cw, ...c.a, ...c.b].map(hex).join(' ')).join('\n') + '\n';
  const lines = execFileSync(refBinary, { input: text, maxBuffer: 1 << 28 }).toString().trim().split('\n');
  return lines.map((l) => {
    const v = l.split(' ').map((x) => parseInt(x, 16) | 0);
    return { sw: v[0] & 0xffff, r0: [v[1] & 0xffff, v[2], v[3]], r1: [v[4] & 0xffff, v[5], v[6]], ilo: v[7], ihi: v[8], w8: v[9] & 0xffff };
  });
}

// ---- the operations as tools/x87-ref.c numbers them ----

const enum Op {
  Add = 0, Sub, Mul, Div, Sqrt, Fcom, Fucom, Frndint, Fscale, Fxtract, Fprem, Fprem1,
  StF32, StF64, LdF32, LdF64, Fist16, Fist32, Fistp64, Fisttp16, Fisttp32, Fisttp64,
  Fxam, Ftst, Fld1, Fldl2t, Fldl2e, Fldpi, Fldlg2, Fldln2, Fldz, Fild64, Fbld, Fbstp,
}

const INDEF: Ext = [0xffff, 0xc0000000 | 0, 0];

/** What the model predicts, in the reference's shape; null fields are not compared. */
interface Model {
  sw: number;
  r0: Ext | null;
  r1: Ext | null;
  ilo: number | null;
  ihi: number | null;
  w8: number | null;
  /** Status-word bits not compared (architecturally undefined for this outcome). */
  swIgnore: number;
}

function res(): Ext {
  return [fp.se & 0xffff, fp.hi, fp.lo];
}

function model(c: Case): Model {
  const [ase, ahi, alo] = c.a;
  const [bse, bhi, blo] = c.b;
  sf.setControl(c.cw);
  const m: Model = { sw: 0, r0: null, r1: c.b, ilo: null, ihi: null, w8: null, swIgnore: 0 };
  const c1 = () => (fp.c1 ? 0x200 : 0);
  switch (c.op) {
    case Op.Add: sf.add(ase, ahi, alo, bse, bhi, blo); m.r0 = res(); m.sw = c1(); break;
    case Op.Sub: sf.sub(ase, ahi, alo, bse, bhi, blo); m.r0 = res(); m.sw = c1(); break;
    case Op.Mul: sf.mul(ase, ahi, alo, bse, bhi, blo); m.r0 = res(); m.sw = c1(); break;
    case Op.Div: sf.div(ase, ahi, alo, bse, bhi, blo); m.r0 = res(); m.sw = c1(); break;
    case Op.Sqrt: sf.sqrt(ase, ahi, alo); m.r0 = res(); m.sw = c1(); break;
    case Op.Frndint: sf.roundToInteger(ase, ahi, alo); m.r0 = res(); m.sw = c1(); break;
    case Op.Fscale: sf.scale(ase, ahi, alo, bse, bhi, blo); m.r0 = res(); m.sw = c1(); break;
    case Op.Fcom:
    case Op.Fucom:
      m.sw = sf.compare(ase, ahi, alo, bse, bhi, blo, c.op === Op.Fucom);
      m.r0 = c.a;
      break;
    case Op.Ftst:
      m.sw = sf.compare(ase, ahi, alo, 0, 0, 0, false);
      m.r0 = c.a;
      break;
    case Op.Fxtract:
      sf.extract(ase, ahi, alo);
      m.r0 = res();
      m.r1 = [sf.xtract.se & 0xffff, sf.xtract.hi, sf.xtract.lo];
      break;
    case Op.Fprem:
    case Op.Fprem1:
      sf.remainder(ase, ahi, alo, bse, bhi, blo, c.op === Op.Fprem1);
      m.r0 = res();
      if (fp.partial) {
        m.sw = 0x400;
        m.swIgnore = 0x4300;
      } else {
        const q = fp.quotient;
        m.sw = (q & 4 ? 0x100 : 0) | (q & 2 ? 0x4000 : 0) | (q & 1 ? 0x200 : 0);
      }
      break;
    case Op.StF32: sf.toF32(ase, ahi, alo); m.ilo = fp.ilo; m.ihi = 0; m.r0 = c.a; m.sw = c1(); break;
    case Op.StF64: sf.toF64(ase, ahi, alo); m.ilo = fp.ilo; m.ihi = fp.ihi; m.r0 = c.a; m.sw = c1(); break;
    case Op.Fist16:
    case Op.Fist32:
      sf.toInt(ase, ahi, alo, c.op === Op.Fist16 ? 2 : 4, false);
      m.ilo = c.op === Op.Fist16 ? fp.ilo & 0xffff : fp.ilo;
      m.ihi = 0;
      m.r0 = c.a;
      m.sw = c1();
      break;
    case Op.Fistp64:
    case Op.Fisttp16:
    case Op.Fisttp32:
    case Op.Fisttp64: {
      const bytes = c.op === Op.Fisttp16 ? 2 : c.op === Op.Fisttp32 ? 4 : 8;
      sf.toInt(ase, ahi, alo, bytes, c.op !== Op.Fistp64);
      m.ilo = bytes === 2 ? fp.ilo & 0xffff : fp.ilo;
      m.ihi = bytes === 8 ? fp.ihi : 0;
      m.r0 = c.b; // popped
      m.r1 = null;
      m.sw = c1();
      break;
    }
    case Op.LdF32: sf.fromF32(alo); m.r0 = res(); m.r1 = c.a; break;
    case Op.LdF64: sf.fromF64(alo, ahi); m.r0 = res(); m.r1 = c.a; break;
    case Op.Fild64: sf.fromInt64(alo, ahi); m.r0 = res(); m.r1 = c.a; break;
    case Op.Fbld: sf.fromBcd(alo, ahi, ase); m.r0 = res(); m.r1 = c.a; break;
    case Op.Fbstp:
      sf.toBcd(ase, ahi, alo);
      m.ilo = fp.ilo;
      m.ihi = fp.ihi;
      m.w8 = fp.iw8 & 0xffff;
      m.r0 = c.b;
      m.r1 = null;
      m.sw = c1();
      break;
    case Op.Fxam:
      m.sw = sf.examine(ase, ahi, alo) | (ase & 0x8000 ? 0x200 : 0);
      m.r0 = c.a;
      break;
    default:
      sf.loadConstant(c.op - Op.Fld1);
      m.r0 = res();
      m.r1 = c.a;
      break;
  }
  m.sw |= fp.flags;
  return m;
}

// ---- case generation ----

let seed = Number(process.env.X87_SEED ?? 0x9e3779b9) >>> 0 || 1;
function rnd(): number {
  // xorshift32: deterministic, so a failure reproduces.
  seed ^= seed << 13;
  seed ^= seed >>> 17;
  seed ^= seed << 5;
  return seed >>> 0;
}
const pick = <T>(xs: readonly T[]): T => xs[rnd() % xs.length];
const chance = (n: number) => rnd() % n === 0;

/** A 64-bit significand pattern with the integer bit as given. */
function significand(intBit: boolean): [number, number] {
  let hi: number, lo: number;
  switch (rnd() % 8) {
    case 0: (hi = 0xffffffff), (lo = 0xffffffff); break;
    case 1: (hi = 0x80000000), (lo = 0); break;
    case 2: (hi = 0x80000000 | (rnd() & 0xff)), (lo = rnd() & 0x7ff); break;
    case 3: (hi = rnd()), (lo = (rnd() & ~0xfff) | 0x400); break; // exact halves at PC=53
    case 4: (hi = rnd() & ~0xff), (lo = 0); break; // already 24-bit
    case 5: (hi = rnd()), (lo = rnd() & 0xfffff800); break; // already 53-bit
    default: (hi = rnd()), (lo = rnd()); break;
  }
  hi = intBit ? hi | 0x80000000 : hi & 0x7fffffff;
  return [hi | 0, lo | 0];
}

/** An extended value whose exponent is near `center` (or anything special). */
function ext(center: number, spread = 70): Ext {
  const sign = chance(2) ? 0x8000 : 0;
  const r = rnd() % 100;
  if (r < 3) return [sign, 0, 0];
  if (r < 6) return [sign | 0x7fff, 0x80000000 | 0, 0];
  if (r < 9) {
    const [hi, lo] = significand(true);
    const q = chance(2) ? 0x40000000 : 0;
    const h = (hi & 0x3fffffff) | 0x80000000 | q;
    return [sign | 0x7fff, h | 0, (h & 0x3fffffff) === 0 && lo === 0 ? 1 : lo];
  }
  if (r < 13) {
    const [hi, lo] = significand(chance(8)); // denormal, sometimes pseudo-denormal
    return [sign, hi, (hi | lo) === 0 ? 1 : lo];
  }
  if (r < 14) {
    const [hi, lo] = significand(false); // unnormal
    return [sign | (1 + (rnd() % 0x7ffe)), hi, lo];
  }
  let e: number;
  if (r < 20) e = 1 + (rnd() % 0x7ffe);
  else e = center + ((rnd() % (2 * spread + 1)) - spread);
  e = Math.max(1, Math.min(0x7ffe, e));
  const [hi, lo] = significand(true);
  return [sign | e, hi, lo];
}

const CWS: number[] = [];
for (const rc of [0, 1, 2, 3]) for (const pc of [0, 2, 3]) CWS.push(0x7f | (pc << 8) | (rc << 10));

function makeCases(op: Op, n: number): Case[] {
  const out: Case[] = [];
  const BIAS = 0x3fff;
  for (let i = 0; i < n; i++) {
    const cw = pick(CWS);
    let a: Ext, b: Ext;
    switch (op) {
      case Op.Add:
      case Op.Sub: {
        a = ext(pick([BIAS, 1, 40, 0x7ffe]));
        b = ext((a[0] & 0x7fff) || 1, chance(3) ? 70 : 3);
        break;
      }
      case Op.Mul:
      case Op.Div:
        a = ext(pick([BIAS, BIAS - 8000, BIAS + 8000]), 9000);
        b = ext(pick([BIAS, BIAS - 8000, BIAS + 8000]), 9000);
        break;
      case Op.Fscale: {
        a = ext(pick([BIAS, 40, 0x7fc0]), 100);
        const n2 = (rnd() % 40000) - 20000;
        const small = chance(2) ? (rnd() % 200) - 100 : n2;
        sf.setControl(0x37f);
        sf.fromInt32(small);
        b = chance(10) ? ext(BIAS + 10, 20) : [fp.se, fp.hi, chance(3) ? rnd() | 0 : fp.lo];
        if (chance(3) && (b[0] & 0x7fff) > BIAS) b = [b[0], b[1] | (rnd() >>> 20), rnd() | 0];
        break;
      }
      case Op.Fprem:
      case Op.Fprem1:
        b = ext(pick([BIAS, 20, 0x7f00]), 30);
        a = ext((b[0] & 0x7fff) + (rnd() % 140) - 10, 0);
        if (chance(4)) a = ext(BIAS, 100);
        break;
      case Op.StF32:
        a = ext(pick([BIAS, BIAS - 126, BIAS + 127, BIAS - 150]), 40);
        b = ext(BIAS);
        break;
      case Op.StF64:
        a = ext(pick([BIAS, BIAS - 1022, BIAS + 1023, BIAS - 1075]), 70);
        b = ext(BIAS);
        break;
      case Op.Fist16:
      case Op.Fisttp16:
        a = ext(BIAS + 8, 12);
        b = ext(BIAS);
        break;
      case Op.Fist32:
      case Op.Fisttp32:
        a = ext(BIAS + 20, 22);
        b = ext(BIAS);
        break;
      case Op.Fistp64:
      case Op.Fisttp64:
        a = ext(BIAS + 40, 30);
        if (chance(10)) a = [a[0] & 0x8000 | (BIAS + 63), 0x80000000 | 0, chance(2) ? 0 : 1];
        b = ext(BIAS);
        break;
      case Op.LdF32: {
        const bits = pick([rnd(), rnd() & 0x807fffff, rnd() | 0x7f800000, (rnd() & 0x80000000) | 0x7f800000]);
        a = [0, 0, bits | 0];
        b = ext(BIAS);
        break;
      }
      case Op.LdF64: {
        const hiBits = pick([rnd(), rnd() & 0x800fffff, rnd() | 0x7ff00000, (rnd() & 0x80000000) | 0x7ff00000]);
        a = [0, hiBits | 0, chance(5) ? 0 : rnd() | 0];
        b = ext(BIAS);
        break;
      }
      case Op.Fild64:
        a = [0, pick([rnd(), rnd() >>> (rnd() % 32), 0x80000000, 0, 0xffffffff]) | 0, rnd() | 0];
        b = ext(BIAS);
        break;
      case Op.Fbld: {
        // 18 valid BCD digits, often with leading zeros.
        const nd = rnd() % 19;
        let lo = 0, hi = 0, w = 0;
        for (let d = 0; d < nd; d++) {
          const v = rnd() % 10;
          if (d < 8) lo |= v << (4 * d);
          else if (d < 16) hi |= v << (4 * (d - 8));
          else w |= v << (4 * (d - 16));
        }
        a = [w | (chance(2) ? 0x8000 : 0), hi | 0, lo | 0];
        b = ext(BIAS);
        break;
      }
      case Op.Fbstp:
        a = ext(BIAS + 30, 32);
        if (chance(10)) a = [(a[0] & 0x8000) | (BIAS + 59), 0xde0b6b3a | 0, pick([0x763fffff, 0x76400000, 0x763ffffe, 0x763fffff + 0x200])];
        b = ext(BIAS);
        break;
      case Op.Frndint:
        a = ext(BIAS + 20, 50);
        b = ext(BIAS);
        break;
      default:
        a = ext(pick([BIAS, 1, 0x7ffe]), 100);
        b = chance(4) ? ([...a] as Ext) : ext((a[0] & 0x7fff) || 1, 2);
        if (chance(8)) b = [b[0] ^ 0x8000, b[1], b[2]];
        break;
    }
    out.push({ op, cw, a, b });
  }
  return out;
}

// ---- comparison ----

const fmt = (e: Ext | null) => (e ? `${(e[0] & 0xffff).toString(16)}:${(e[1] >>> 0).toString(16).padStart(8, '0')}${(e[2] >>> 0).toString(16).padStart(8, '0')}` : '-');
const extEq = (x: Ext, y: Ext) => (x[0] & 0xffff) === (y[0] & 0xffff) && x[1] === y[1] && x[2] === y[2];
/** Compared status-word bits: exception flags, SF, C0-C3 (not TOP, ES, B). */
const SW_MASK = 0x477f;

function mismatches(cases: Case[]): string[] {
  const native = runNative(cases);
  const bad: string[] = [];
  cases.forEach((c, i) => {
    const n = native[i];
    const m = model(c);
    const mask = SW_MASK & ~m.swIgnore;
    const ok =
      (n.sw & mask) === (m.sw & mask) &&
      (m.r0 === null || extEq(n.r0, m.r0)) &&
      (m.r1 === null || extEq(n.r1, m.r1)) &&
      (m.ilo === null || n.ilo === (m.ilo | 0)) &&
      (m.ihi === null || n.ihi === (m.ihi | 0)) &&
      (m.w8 === null || n.w8 === m.w8);
    if (!ok && bad.length < 12)
      bad.push(
        `op ${c.op} cw ${c.cw.toString(16)} a ${fmt(c.a)} b ${fmt(c.b)}: native sw ${(n.sw & mask).toString(16)} r0 ${fmt(n.r0)} r1 ${fmt(n.r1)} i ${(n.ihi >>> 0).toString(16)}:${(n.ilo >>> 0).toString(16)}` +
          ` w8 ${n.w8.toString(16)} | model sw ${(m.sw & mask).toString(16)} r0 ${fmt(m.r0)} r1 ${fmt(m.r1)} i ${((m.ihi ?? 0) >>> 0).toString(16)}:${((m.ilo ?? 0) >>> 0).toString(16)} w8 ${(m.w8 ?? 0).toString(16)}`,
      );
  });
  return bad;
}

const OPS: [string, Op, number][] = [
  ['fadd', Op.Add, 6000], ['fsub', Op.Sub, 6000], ['fmul', Op.Mul, 6000], ['fdiv', Op.Div, 6000],
  ['fsqrt', Op.Sqrt, 4000], ['fcom', Op.Fcom, 3000], ['fucom', Op.Fucom, 3000], ['ftst', Op.Ftst, 1000],
  ['frndint', Op.Frndint, 4000], ['fscale', Op.Fscale, 4000], ['fxtract', Op.Fxtract, 2000],
  ['fprem', Op.Fprem, 4000], ['fprem1', Op.Fprem1, 4000],
  ['fst m32', Op.StF32, 5000], ['fst m64', Op.StF64, 5000], ['fld m32', Op.LdF32, 2000], ['fld m64', Op.LdF64, 2000],
  ['fist m16', Op.Fist16, 3000], ['fist m32', Op.Fist32, 3000], ['fistp m64', Op.Fistp64, 4000],
  ['fisttp m16', Op.Fisttp16, 2000], ['fisttp m32', Op.Fisttp32, 2000], ['fisttp m64', Op.Fisttp64, 3000],
  ['fxam', Op.Fxam, 1000], ['fild m64', Op.Fild64, 1000], ['fbld', Op.Fbld, 2000], ['fbstp', Op.Fbstp, 4000],
  ['fld1', Op.Fld1, 50], ['fldl2t', Op.Fldl2t, 50], ['fldl2e', Op.Fldl2e, 50], ['fldpi', Op.Fldpi, 50],
  ['fldlg2', Op.Fldlg2, 50], ['fldln2', Op.Fldln2, 50], ['fldz', Op.Fldz, 50],
];

describe.skipIf(!gcc)('softfloat80 vs host x87 (gcc-built tools/x87-ref.c)', () => {
  for (const [name, op, n] of OPS) {
    it(`${name}: ${n} random and edge cases`, () => {
      expect(mismatches(makeCases(op, n))).toEqual([]);
    });
  }

  it('fixed cases: exact ties, double rounding limits, int64 extremes', () => {
    const BIAS = 0x3fff;
    const cases: Case[] = [];
    const exts: Ext[] = [
      [BIAS, 0x80000000 | 0, 0], [BIAS, 0x80000000 | 0, 0x400], [BIAS, 0x80000000 | 0, 0xc00], [BIAS, 0x80000080 | 0, 0],
      [BIAS + 63, 0x80000000 | 0, 0], [0x8000 | (BIAS + 63), 0x80000000 | 0, 0], [0x8000 | (BIAS + 62), 0xffffffff | 0, 0xffffffff | 0],
      [1, 0x80000000 | 0, 0], [0, 0x40000000, 0], [0, 0x80000000 | 0, 1], [0x7ffe, 0xffffffff | 0, 0xffffffff | 0],
      [BIAS - 1, 0x80000000 | 0, 0], [0x8000 | (BIAS - 1), 0x80000000 | 0, 0], [BIAS - 1, 0xc0000000 | 0, 0],
      // NaNs whose significands tie: the positive one wins
      [0x7fff, 0xc0000000 | 0, 5], [0xffff, 0xc0000000 | 0, 5], [0x7fff, 0x80000000 | 0, 5], [0xffff, 0x80000000 | 0, 5],
      [0xffff, 0xa0000000 | 0, 5],
    ];
    for (const cw of CWS)
      for (const a of exts)
        for (const b of exts)
          for (const op of [Op.Add, Op.Sub, Op.Mul, Op.Div, Op.Frndint, Op.Fistp64, Op.Fist32, Op.StF64, Op.StF32, Op.Fprem1])
            cases.push({ op, cw, a, b });
    expect(mismatches(cases)).toEqual([]);
  });
});

describe.runIf(!gcc)('softfloat80 reference', () => {
  it('is skipped: gcc not found, so tools/x87-ref.c cannot be built', () => {
    expect(gcc).toBeNull();
  });
});

process.on('exit', () => {
  try {
    fs.unlinkSync(refBinary);
  } catch {
    /* already gone */
  }
});
