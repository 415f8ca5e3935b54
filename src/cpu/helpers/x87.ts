/**
 * x87 interpreter helpers: the register stack, status/control/tag words and every D8-DF
 * instruction (plus 9B FWAIT) the libcs and gcc emit, on top of softfloat80.ts.
 *
 * Shape: each helper (1) sets softfloat80's rounding/precision from the control word, (2)
 * reads its operands — memory first, so a page fault leaves the state untouched — (3) computes
 * through softfloat80, which reports exception flags and C1 in `fp`, (4) writes memory, and
 * only then (5) changes registers, TOP and the tag word and merges the status word in one
 * place (commit). Families that differ only by an operator (FADD…FDIVR with their P and I
 * forms, the compare family, the constant loads, FCMOVcc, the transcendentals) are one
 * factory each, with the operands described by the decoded instruction: one memory operand
 * means "ST0 op memory", two ST operands mean "ops[0] = ops[0] op ops[1]".
 *
 * Stack model: TOP lives in FPU_SW bits 11-13, ST(j) is physical register (TOP+j)&7 at
 * S.FPR + 4*p (significand lo, hi, sign<<15|exponent), and FPU_TAG is the abridged tag (bit p
 * set = register p valid); the full two-bit tags are derived when FNSTENV/FNSAVE need them.
 * Stack overflow/underflow raise IE and SF (C1 = 1 for overflow) with the masked response (the
 * QNaN indefinite). Only masked responses are implemented: an unmasked exception sets ES and
 * B in the status word but no #MF is delivered and the destination is written as if masked.
 * FIP/FCS/FOP/FDP/FDS are not tracked (stored as zero).
 */
import type { Cpu } from '../cpu.js';
import { cond, setOszapc } from '../flags.js';
import { Prot } from '../memory.js';
import { effAddr, writeGpr } from '../operands.js';
import { F, fpuControlWord, S } from '../state.js';
import * as sf from '../softfloat80.js';
import { Cls, Cmp, fp, Fx, INDEFINITE_HI, INDEFINITE_SE } from '../softfloat80.js';
import { type Insn, OpKind } from '../../frontend/insn.js';
import type { Helper } from './index.js';

/** Status word bits besides the exception flags (softfloat80's Fx). */
const enum Sw {
  SF = 0x40,
  ES = 0x80,
  C0 = 0x100,
  C1 = 0x200,
  C2 = 0x400,
  TOP = 0x3800,
  C3 = 0x4000,
  B = 0x8000,
  CC = C0 | C1 | C2 | C3,
}

// ---------------------------------------------------------------------------------------------
// Register stack

function topOf(s: Int32Array): number {
  return (s[S.FPU_SW] >> 11) & 7;
}

/** State index of ST(i). */
function stIndex(s: Int32Array, i: number): number {
  return S.FPR + 4 * ((topOf(s) + i) & 7);
}

function isEmpty(s: Int32Array, i: number): boolean {
  return (s[S.FPU_TAG] & (1 << ((topOf(s) + i) & 7))) === 0;
}

function writeSt(s: Int32Array, i: number, se: number, hi: number, lo: number): void {
  const p = (topOf(s) + i) & 7;
  const k = S.FPR + 4 * p;
  s[k] = lo;
  s[k + 1] = hi;
  s[k + 2] = se & 0xffff;
  s[S.FPU_TAG] |= 1 << p;
}

function writeStResult(s: Int32Array, i: number): void {
  writeSt(s, i, fp.se, fp.hi, fp.lo);
}

function pop(s: Int32Array): void {
  const t = topOf(s);
  s[S.FPU_TAG] &= ~(1 << t);
  s[S.FPU_SW] = (s[S.FPU_SW] & ~Sw.TOP) | (((t + 1) & 7) << 11);
}

/** Push a value; a full stack is an overflow whose masked response pushes the indefinite. */
function push(s: Int32Array, se: number, hi: number, lo: number): void {
  const t = (topOf(s) - 1) & 7;
  s[S.FPU_SW] = (s[S.FPU_SW] & ~Sw.TOP) | (t << 11);
  if (s[S.FPU_TAG] & (1 << t)) {
    stackFault(true);
    se = INDEFINITE_SE;
    hi = INDEFINITE_HI;
    lo = 0;
  }
  writeSt(s, 0, se, hi, lo);
}

/** Stack fault flags, kept until commit: SF with IE, and C1 = 1 for overflow, 0 for underflow. */
let stackFaultBits = 0;
function stackFault(overflow: boolean): void {
  fp.flags |= Fx.IE;
  stackFaultBits = Sw.SF;
  fp.c1 = overflow ? 1 : 0;
}

/** Start an instruction: rounding/precision from the control word, no flags yet. */
function begin(s: Int32Array): void {
  sf.setControl(s[S.FPU_CW]);
  stackFaultBits = 0;
}

/**
 * Finish an instruction: OR the raised exceptions into the status word, set C0-C3 to `cc`
 * (C1 from fp.c1 unless cc says otherwise), and the ES/B summary when one is unmasked.
 */
function commit(s: Int32Array, cc: number, keepCc = false): void {
  let sw = s[S.FPU_SW] | fp.flags | stackFaultBits;
  if (!keepCc) sw = (sw & ~Sw.CC) | cc | (fp.c1 ? Sw.C1 : 0);
  if (sw & ~s[S.FPU_CW] & 0x3f) sw |= Sw.ES | Sw.B;
  s[S.FPU_SW] = sw & 0xffff;
}

// ---------------------------------------------------------------------------------------------
// Operand access

/** The source operand, unpacked into these three (memory values converted to extended). */
let srcSe = 0, srcHi = 0, srcLo = 0;

function loadSt(s: Int32Array, i: number): void {
  const k = stIndex(s, i);
  srcLo = s[k];
  srcHi = s[k + 1];
  srcSe = s[k + 2] & 0xffff;
}

function setSrcFromResult(): void {
  srcSe = fp.se;
  srcHi = fp.hi;
  srcLo = fp.lo;
}

/** Read a memory operand as a floating-point (`integer` false) or integer value into src. */
function loadMem(cpu: Cpu, insn: Insn, size: number, integer: boolean): void {
  const a = effAddr(cpu, insn);
  const m = cpu.mem;
  if (integer) {
    if (size === 2) sf.fromInt32((m.read16(a) << 16) >> 16);
    else if (size === 4) sf.fromInt32(m.read32(a));
    else {
      const lo = m.read64(a);
      sf.fromInt64(lo, m.hi);
    }
    return setSrcFromResult();
  }
  if (size === 4) sf.fromF32(m.read32(a));
  else if (size === 8) {
    const lo = m.read64(a);
    sf.fromF64(lo, m.hi);
  } else {
    const lo = m.read64(a);
    const hi = m.hi;
    const se = m.read16(a + 8);
    srcSe = se;
    srcHi = hi;
    srcLo = lo;
    return;
  }
  setSrcFromResult();
}

function setIndefinite(): void {
  fp.se = INDEFINITE_SE;
  fp.hi = INDEFINITE_HI;
  fp.lo = 0;
}

/** Stack underflow with the masked response: IE and SF, and the indefinite NaN in ST0. */
function underflowIntoSt0(s: Int32Array): void {
  stackFault(false);
  setIndefinite();
  writeStResult(s, 0);
}

// ---------------------------------------------------------------------------------------------
// Loads and stores

const fld: Helper = (cpu, insn) => {
  const s = cpu.s;
  begin(s);
  const op = insn.ops[0];
  if (op.kind === OpKind.St) {
    if (isEmpty(s, op.reg)) {
      stackFault(false);
      setIndefinite();
      setSrcFromResult();
    } else loadSt(s, op.reg);
  } else loadMem(cpu, insn, op.size, false);
  fp.c1 = 0;
  push(s, srcSe, srcHi, srcLo);
  commit(s, 0);
};

const fild: Helper = (cpu, insn) => {
  const s = cpu.s;
  begin(s);
  loadMem(cpu, insn, insn.ops[0].size, true);
  push(s, srcSe, srcHi, srcLo);
  commit(s, 0);
};

/** FLD1, FLDL2T, FLDL2E, FLDPI, FLDLG2, FLDLN2, FLDZ: softfloat80's constant k. */
function loadConstant(k: number): Helper {
  return (cpu) => {
    const s = cpu.s;
    begin(s);
    sf.loadConstant(k);
    push(s, fp.se, fp.hi, fp.lo);
    commit(s, 0);
  };
}

/** FST/FSTP to memory (m32, m64, m80) or to ST(i). */
function store(popAfter: boolean): Helper {
  return (cpu, insn) => {
    const s = cpu.s;
    begin(s);
    const op = insn.ops[0];
    const empty = isEmpty(s, 0);
    if (empty) stackFault(false);
    loadSt(s, 0);
    if (op.kind === OpKind.St) {
      if (empty) setIndefinite();
      else (fp.se = srcSe), (fp.hi = srcHi), (fp.lo = srcLo);
      writeStResult(s, op.reg);
    } else {
      const a = effAddr(cpu, insn);
      const m = cpu.mem;
      if (op.size === 4) {
        if (empty) fp.ilo = 0xffc00000 | 0;
        else sf.toF32(srcSe, srcHi, srcLo);
        m.write32(a, fp.ilo);
      } else if (op.size === 8) {
        if (empty) (fp.ilo = 0), (fp.ihi = 0xfff80000 | 0);
        else sf.toF64(srcSe, srcHi, srcLo);
        m.write64(a, fp.ilo, fp.ihi);
      } else {
        if (empty) (srcSe = INDEFINITE_SE), (srcHi = INDEFINITE_HI), (srcLo = 0);
        m.translate(a + 9, Prot.WRITE); // both ends writable before any byte is written
        m.write64(a, srcLo, srcHi);
        m.write16(a + 8, srcSe);
      }
    }
    if (popAfter) pop(s);
    commit(s, 0);
  };
}

/** FIST/FISTP (rounding by RC) and FISTTP (truncating) to m16/m32/m64. */
function storeInt(popAfter: boolean, truncate: boolean): Helper {
  return (cpu, insn) => {
    const s = cpu.s;
    begin(s);
    const size = insn.ops[0].size;
    if (isEmpty(s, 0)) {
      stackFault(false);
      fp.ilo = size === 2 ? 0x8000 : size === 4 ? 0x80000000 | 0 : 0;
      fp.ihi = size === 8 ? 0x80000000 | 0 : 0;
    } else {
      loadSt(s, 0);
      sf.toInt(srcSe, srcHi, srcLo, size, truncate);
    }
    const a = effAddr(cpu, insn);
    if (size === 2) cpu.mem.write16(a, fp.ilo);
    else if (size === 4) cpu.mem.write32(a, fp.ilo);
    else cpu.mem.write64(a, fp.ilo, fp.ihi);
    if (popAfter) pop(s);
    commit(s, 0);
  };
}

const fbld: Helper = (cpu, insn) => {
  const s = cpu.s;
  begin(s);
  const a = effAddr(cpu, insn);
  const lo = cpu.mem.read64(a);
  const hi = cpu.mem.hi;
  sf.fromBcd(lo, hi, cpu.mem.read16(a + 8));
  push(s, fp.se, fp.hi, fp.lo);
  commit(s, 0);
};

const fbstp: Helper = (cpu, insn) => {
  const s = cpu.s;
  begin(s);
  if (isEmpty(s, 0)) {
    stackFault(false);
    sf.toBcd(INDEFINITE_SE, INDEFINITE_HI, 0);
  } else {
    loadSt(s, 0);
    sf.toBcd(srcSe, srcHi, srcLo);
  }
  const a = effAddr(cpu, insn);
  cpu.mem.translate(a + 9, Prot.WRITE);
  cpu.mem.write64(a, fp.ilo, fp.ihi);
  cpu.mem.write16(a + 8, fp.iw8);
  pop(s);
  commit(s, 0);
};

const fxch: Helper = (cpu, insn) => {
  const s = cpu.s;
  begin(s);
  const i = insn.ops.length ? insn.ops[insn.ops.length - 1].reg : 1;
  const e0 = isEmpty(s, 0);
  const ei = isEmpty(s, i);
  if (e0 || ei) stackFault(false);
  loadSt(s, i);
  const k0 = stIndex(s, 0);
  const lo0 = e0 ? 0 : s[k0], hi0 = e0 ? INDEFINITE_HI : s[k0 + 1], se0 = e0 ? INDEFINITE_SE : s[k0 + 2];
  if (ei) (srcSe = INDEFINITE_SE), (srcHi = INDEFINITE_HI), (srcLo = 0);
  writeSt(s, 0, srcSe, srcHi, srcLo);
  writeSt(s, i, se0, hi0, lo0);
  fp.c1 = 0;
  commit(s, 0);
};

/** FCMOVcc ST0, ST(i): `cc` is the condition-code number of the Jcc encoding. */
function fcmov(cc: number): Helper {
  return (cpu, insn) => {
    const s = cpu.s;
    begin(s);
    const i = insn.ops[1].reg;
    // Both registers are checked whatever the condition (as hardware does): an empty one is a
    // stack underflow whose masked response puts the indefinite NaN in ST0.
    if (isEmpty(s, 0) || isEmpty(s, i)) {
      underflowIntoSt0(s);
    } else if (cond(cpu, cc)) {
      loadSt(s, i);
      writeSt(s, 0, srcSe, srcHi, srcLo);
    }
    commit(s, 0);
  };
}

// ---------------------------------------------------------------------------------------------
// Arithmetic

type Binary = (ase: number, ahi: number, alo: number, bse: number, bhi: number, blo: number) => void;

/**
 * FADD/FSUB/FSUBR/FMUL/FDIV/FDIVR and their P (pop) and I (integer memory operand) forms.
 * `reverse` computes src op dest instead of dest op src.
 */
function arith(op: Binary, reverse: boolean, popAfter: boolean, integer: boolean): Helper {
  return (cpu, insn) => {
    const s = cpu.s;
    begin(s);
    let dest = 0;
    let srcEmpty = false;
    if (insn.ops.length === 1) loadMem(cpu, insn, insn.ops[0].size, integer);
    else {
      dest = insn.ops[0].reg;
      const src = insn.ops[1].reg;
      srcEmpty = isEmpty(s, src);
      loadSt(s, src);
    }
    if (srcEmpty || isEmpty(s, dest)) {
      fp.flags = 0; // a stack fault preempts the operand's own exceptions
      stackFault(false);
      setIndefinite();
    } else {
      const k = stIndex(s, dest);
      const dse = s[k + 2] & 0xffff, dhi = s[k + 1], dlo = s[k];
      if (reverse) op(srcSe, srcHi, srcLo, dse, dhi, dlo);
      else op(dse, dhi, dlo, srcSe, srcHi, srcLo);
    }
    writeStResult(s, dest);
    if (popAfter) pop(s);
    commit(s, 0);
  };
}

/** A one-operand operation on ST0 (FSQRT, FRNDINT). */
function unary(op: (se: number, hi: number, lo: number) => void): Helper {
  return (cpu) => {
    const s = cpu.s;
    begin(s);
    if (isEmpty(s, 0)) {
      stackFault(false);
      setIndefinite();
    } else {
      loadSt(s, 0);
      op(srcSe, srcHi, srcLo);
    }
    writeStResult(s, 0);
    commit(s, 0);
  };
}

/** FCHS and FABS: sign-bit operations that raise nothing but stack underflow. */
function signOp(clear: boolean): Helper {
  return (cpu) => {
    const s = cpu.s;
    begin(s);
    if (isEmpty(s, 0)) {
      underflowIntoSt0(s);
    } else {
      const k = stIndex(s, 0);
      s[k + 2] = clear ? s[k + 2] & 0x7fff : s[k + 2] ^ 0x8000;
    }
    commit(s, 0);
  };
}

const fscale: Helper = (cpu) => twoStackOp(cpu, (a, b, c, d, e, f) => sf.scale(a, b, c, d, e, f), 0);

/** An operation of ST0 with ST1 whose result replaces ST0 (FSCALE, FPREM, FPREM1). */
function twoStackOp(cpu: Cpu, op: Binary, kind: number): void {
  const s = cpu.s;
  begin(s);
  let cc = 0;
  if (isEmpty(s, 0) || isEmpty(s, 1)) {
    stackFault(false);
    setIndefinite();
  } else {
    loadSt(s, 1);
    const k = stIndex(s, 0);
    op(s[k + 2] & 0xffff, s[k + 1], s[k], srcSe, srcHi, srcLo);
    if (kind !== 0) {
      // FPREM/FPREM1: C2 = incomplete; else C0, C3, C1 = quotient bits 2, 1, 0.
      const q = fp.quotient;
      fp.c1 = 0;
      if (fp.partial) cc = Sw.C2;
      else if ((fp.flags & Fx.IE) === 0) cc = (q & 4 ? Sw.C0 : 0) | (q & 2 ? Sw.C3 : 0) | (q & 1 ? Sw.C1 : 0);
    }
  }
  writeStResult(s, 0);
  commit(s, cc);
}

const fprem: Helper = (cpu) => twoStackOp(cpu, (a, b, c, d, e, f) => sf.remainder(a, b, c, d, e, f, false), 1);
const fprem1: Helper = (cpu) => twoStackOp(cpu, (a, b, c, d, e, f) => sf.remainder(a, b, c, d, e, f, true), 1);

const fxtract: Helper = (cpu) => {
  const s = cpu.s;
  begin(s);
  if (isEmpty(s, 0)) {
    underflowIntoSt0(s);
    push(s, fp.se, fp.hi, fp.lo);
  } else {
    loadSt(s, 0);
    sf.extract(srcSe, srcHi, srcLo);
    const x = sf.xtract;
    writeSt(s, 0, x.se, x.hi, x.lo);
    push(s, fp.se, fp.hi, fp.lo);
  }
  commit(s, 0);
};

// ---------------------------------------------------------------------------------------------
// Comparisons

/**
 * FCOM, FUCOM and FICOM with their P/PP forms into C3,C2,C0, or with `eflags` FCOMI/FUCOMI(P) into
 * ZF,PF,CF. `pops` is how many registers to pop afterwards.
 */
function compareOp(quiet: boolean, pops: number, integer: boolean, eflags: boolean): Helper {
  return (cpu, insn) => {
    const s = cpu.s;
    begin(s);
    let srcEmpty = false;
    const ops = insn.ops;
    if (ops.length > 0 && ops[ops.length - 1].kind === OpKind.Mem) loadMem(cpu, insn, ops[ops.length - 1].size, integer);
    else {
      const src = ops.length > 0 ? ops[ops.length - 1].reg : 1;
      srcEmpty = isEmpty(s, src);
      loadSt(s, src);
    }
    let result: number;
    if (srcEmpty || isEmpty(s, 0)) {
      fp.flags = 0;
      stackFault(false);
      result = Cmp.Unordered;
    } else {
      const k = stIndex(s, 0);
      result = sf.compare(s[k + 2] & 0xffff, s[k + 1], s[k], srcSe, srcHi, srcLo, quiet);
    }
    fp.c1 = 0;
    for (let i = 0; i < pops; i++) pop(s);
    if (eflags) {
      setOszapc(cpu, (result & Sw.C3 ? F.ZF : 0) | (result & Sw.C2 ? F.PF : 0) | (result & Sw.C0 ? F.CF : 0));
      commit(s, 0, true); // FCOMI leaves C0, C2, C3 alone and clears C1
      s[S.FPU_SW] &= ~Sw.C1;
    } else commit(s, result);
  };
}

const ftst: Helper = (cpu) => {
  const s = cpu.s;
  begin(s);
  let result: number = Cmp.Unordered;
  if (isEmpty(s, 0)) stackFault(false);
  else {
    loadSt(s, 0);
    result = sf.compare(srcSe, srcHi, srcLo, 0, 0, 0, false);
  }
  fp.c1 = 0;
  commit(s, result);
};

const fxam: Helper = (cpu) => {
  const s = cpu.s;
  begin(s);
  loadSt(s, 0);
  const cc = isEmpty(s, 0) ? Sw.C3 | Sw.C0 : sf.examine(srcSe, srcHi, srcLo);
  fp.c1 = (srcSe & 0x8000) !== 0 ? 1 : 0;
  commit(s, cc);
};

// ---------------------------------------------------------------------------------------------
// Transcendentals (through double: see softfloat80.ts)

/** |x| >= 2^63: FSIN/FCOS/FPTAN/FSINCOS leave the operand and set C2. */
function outOfTrigRange(se: number): boolean {
  return (se & 0x7fff) >= 0x3fff + 63 && (se & 0x7fff) !== 0x7fff;
}

/**
 * Screen a transcendental's operands: NaNs propagate (via softfloat80's two-operand rules),
 * unsupported encodings and infinities (where `infInvalid`) are invalid, denormals raise DE.
 * Returns true when fp holds the final result.
 */
function screenTranscendental(se: number, hi: number, lo: number, infInvalid: boolean): boolean {
  const c = sf.classify(se, hi, lo);
  if (c === Cls.QNaN || c === Cls.SNaN || c === Cls.Unsupported) {
    sf.add(se, hi, lo, 0, 0, 0);
    return true;
  }
  if (c === Cls.Inf && infInvalid) {
    fp.flags |= Fx.IE;
    setIndefinite();
    return true;
  }
  if (c === Cls.Denormal) fp.flags |= Fx.DE;
  return false;
}

/** FSIN, FCOS, F2XM1: ST0 = f(ST0). */
function transcendental1(f: (x: number) => number, trig: boolean): Helper {
  return (cpu) => {
    const s = cpu.s;
    begin(s);
    let cc = 0;
    if (isEmpty(s, 0)) {
      stackFault(false);
      setIndefinite();
    } else {
      loadSt(s, 0);
      if (trig && outOfTrigRange(srcSe)) {
        setSrcToFp();
        cc = Sw.C2;
      } else if (!screenTranscendental(srcSe, srcHi, srcLo, trig)) {
        const x = sf.toDouble(srcSe, srcHi, srcLo);
        if (x === 0) setSrcToFp();
        else sf.fromDouble(f(x));
      }
    }
    writeStResult(s, 0);
    commit(s, cc);
  };
}

function setSrcToFp(): void {
  fp.se = srcSe;
  fp.hi = srcHi;
  fp.lo = srcLo;
}

/** FSINCOS (ST0 = sin, push cos) and FPTAN (ST0 = tan, push 1.0). */
function transcendentalPush(first: (x: number) => number, second: ((x: number) => number) | null): Helper {
  return (cpu) => {
    const s = cpu.s;
    begin(s);
    if (isEmpty(s, 0)) {
      underflowIntoSt0(s);
      push(s, fp.se, fp.hi, fp.lo);
      return commit(s, 0);
    }
    loadSt(s, 0);
    if (outOfTrigRange(srcSe)) return commit(s, Sw.C2);
    if (!isEmpty(s, 7)) {
      // No room for the second result: overflow, both become the indefinite.
      stackFault(true);
      setIndefinite();
      writeStResult(s, 0);
      push(s, fp.se, fp.hi, fp.lo);
      return commit(s, 0);
    }
    let se2: number, hi2: number, lo2: number;
    if (screenTranscendental(srcSe, srcHi, srcLo, true)) {
      se2 = fp.se;
      hi2 = fp.hi;
      lo2 = fp.lo;
    } else {
      const x = sf.toDouble(srcSe, srcHi, srcLo);
      if (second) sf.fromDouble(second(x));
      else sf.loadConstant(0);
      se2 = fp.se;
      hi2 = fp.hi;
      lo2 = fp.lo;
      if (x === 0) setSrcToFp(); // sin and tan keep the sign of zero
      else sf.fromDouble(first(x));
    }
    writeStResult(s, 0);
    push(s, se2, hi2, lo2);
    commit(s, 0);
  };
}

/** FPATAN, FYL2X, FYL2XP1: ST1 = f(ST1, ST0), then pop. */
function transcendental2(f: (y: number, x: number) => number, kind: 'atan' | 'log'): Helper {
  return (cpu) => {
    const s = cpu.s;
    begin(s);
    if (isEmpty(s, 0) || isEmpty(s, 1)) {
      stackFault(false);
      setIndefinite();
    } else {
      loadSt(s, 1);
      const ySe = srcSe, yHi = srcHi, yLo = srcLo;
      loadSt(s, 0);
      const cx = sf.classify(srcSe, srcHi, srcLo);
      const cy = sf.classify(ySe, yHi, yLo);
      if (cx >= Cls.QNaN || cy >= Cls.QNaN) sf.add(ySe, yHi, yLo, srcSe, srcHi, srcLo);
      else {
        if (cx === Cls.Denormal || cy === Cls.Denormal) fp.flags |= Fx.DE;
        const x = sf.toDouble(srcSe, srcHi, srcLo);
        const y = sf.toDouble(ySe, yHi, yLo);
        // log2 of a positive normal from its exponent and significand, so that operands beyond
        // the double range still get a finite logarithm.
        const r = f === fyl2xFn && cx === Cls.Normal && (srcSe & 0x8000) === 0 ? y * log2Normal(srcSe, srcHi, srcLo) : f(y, x);
        if (r !== r || (kind === 'log' && x < 0)) {
          fp.flags |= Fx.IE;
          setIndefinite();
        } else {
          if (kind === 'log' && x === 0 && f === fyl2xFn) fp.flags |= Fx.ZE;
          sf.fromDouble(r);
        }
      }
    }
    writeStResult(s, 1);
    pop(s);
    commit(s, 0);
  };
}

const fyl2xFn = (y: number, x: number) => y * Math.log2(x);

function log2Normal(se: number, hi: number, lo: number): number {
  return (se & 0x7fff) - 0x3fff + Math.log2((hi >>> 0) / 2147483648 + (lo >>> 0) / 9223372036854775808);
}
const fyl2xp1Fn = (y: number, x: number) => (y * Math.log1p(x)) / Math.LN2;

// ---------------------------------------------------------------------------------------------
// Control: status/control words, environment, init

const fnstsw: Helper = (cpu, insn) => {
  const op = insn.ops[0];
  const sw = cpu.s[S.FPU_SW] & 0xffff;
  if (op.kind === OpKind.Reg) writeGpr(cpu, 0, 2, false, sw);
  else cpu.mem.write16(effAddr(cpu, insn), sw);
};

const fnstcw: Helper = (cpu, insn) => cpu.mem.write16(effAddr(cpu, insn), cpu.s[S.FPU_CW]);

const fldcw: Helper = (cpu, insn) => {
  const s = cpu.s;
  s[S.FPU_CW] = fpuControlWord(cpu.mem.read16(effAddr(cpu, insn)));
  summarize(s);
};

/** Recompute ES and B after the control or status word changed. */
function summarize(s: Int32Array): void {
  let sw = s[S.FPU_SW] & ~(Sw.ES | Sw.B);
  if (sw & ~s[S.FPU_CW] & 0x3f) sw |= Sw.ES | Sw.B;
  s[S.FPU_SW] = sw;
}

const fninit: Helper = (cpu) => {
  const s = cpu.s;
  s[S.FPU_CW] = 0x037f;
  s[S.FPU_SW] = 0;
  s[S.FPU_TAG] = 0;
};

const fnclex: Helper = (cpu) => {
  cpu.s[S.FPU_SW] &= ~(0x3f | Sw.SF | Sw.ES | Sw.B);
};

const fwait: Helper = () => {
  // Unmasked exceptions are not delivered (see the header), so there is nothing to wait for.
};

const fnop: Helper = () => {};

/** The full two-bit tag of physical register p: 0 valid, 1 zero, 2 special, 3 empty. */
function fullTag(s: Int32Array, p: number): number {
  if ((s[S.FPU_TAG] & (1 << p)) === 0) return 3;
  const k = S.FPR + 4 * p;
  const c = sf.classify(s[k + 2], s[k + 1], s[k]);
  return c === Cls.Zero ? 1 : c === Cls.Normal ? 0 : 2;
}

/**
 * The x87 environment image. 64-bit mode uses the 28-byte 32-bit protected-mode layout (seven
 * dwords); with a 66 prefix the 14-byte 16-bit layout (seven words). Either way the fields are
 * CW, SW, TW, FIP, FCS:FOP, FDP, FDS in that order, and FNSAVE/FRSTOR follow it with ST0-ST7.
 */
function envBytes(insn: Insn): number {
  return insn.opSize === 2 ? 14 : 28;
}

const envFields = new Int32Array(7);
function writeEnv(cpu: Cpu, a: number, bytes: number): void {
  const s = cpu.s;
  let tag = 0;
  for (let p = 0; p < 8; p++) tag |= fullTag(s, p) << (2 * p);
  const m = cpu.mem;
  // We keep no last-instruction/operand pointers: FIP, FCS:FOP, FDP, FDS read as zero. In the
  // 32-bit layout the unused upper halves of CW, SW, TW and FDS read as ones, as AMD stores them.
  const fields = envFields;
  fields[0] = s[S.FPU_CW];
  fields[1] = s[S.FPU_SW];
  fields[2] = tag;
  if (bytes === 14) for (let i = 0; i < 7; i++) m.write16(a + 2 * i, fields[i]);
  else for (let i = 0; i < 7; i++) m.write32(a + 4 * i, i < 3 || i === 6 ? fields[i] | 0xffff0000 : fields[i]);
}

/** Read an environment image; the caller stores it with applyEnv once nothing can fault. */
let envCw = 0, envSw = 0, envTag = 0;
function readEnv(cpu: Cpu, a: number, bytes: number): void {
  const m = cpu.mem;
  const step = bytes === 14 ? 2 : 4;
  envCw = m.read16(a);
  envSw = m.read16(a + step);
  envTag = m.read16(a + 2 * step);
  m.read16(a + bytes - 2); // the whole image must be readable
}

function applyEnv(s: Int32Array): void {
  s[S.FPU_CW] = fpuControlWord(envCw);
  s[S.FPU_SW] = envSw;
  let abridged = 0;
  for (let p = 0; p < 8; p++) if (((envTag >> (2 * p)) & 3) !== 3) abridged |= 1 << p;
  s[S.FPU_TAG] = abridged;
  summarize(s);
}

const fnstenv: Helper = (cpu, insn) => {
  const a = effAddr(cpu, insn);
  const bytes = envBytes(insn);
  cpu.mem.translate(a, Prot.WRITE);
  cpu.mem.translate(a + bytes - 1, Prot.WRITE);
  writeEnv(cpu, a, bytes);
  cpu.s[S.FPU_CW] |= 0x3f; // FNSTENV leaves all exceptions masked
};

const fldenv: Helper = (cpu, insn) => {
  readEnv(cpu, effAddr(cpu, insn), envBytes(insn));
  applyEnv(cpu.s);
};

const fnsave: Helper = (cpu, insn) => {
  const a = effAddr(cpu, insn);
  const m = cpu.mem;
  const env = envBytes(insn);
  m.translate(a, Prot.WRITE);
  m.translate(a + env + 80 - 1, Prot.WRITE);
  writeEnv(cpu, a, env);
  const s = cpu.s;
  for (let i = 0; i < 8; i++) {
    const k = stIndex(s, i);
    const at = a + env + 10 * i;
    m.write64(at, s[k], s[k + 1]);
    m.write16(at + 8, s[k + 2]);
  }
  fninit(cpu, insn);
};

const saveRegs = new Int32Array(24);
const frstor: Helper = (cpu, insn) => {
  const a = effAddr(cpu, insn);
  const m = cpu.mem;
  const env = envBytes(insn);
  readEnv(cpu, a, env);
  for (let i = 0; i < 8; i++) {
    const at = a + env + 10 * i;
    saveRegs[3 * i] = m.read64(at);
    saveRegs[3 * i + 1] = m.hi;
    saveRegs[3 * i + 2] = m.read16(at + 8);
  }
  const s = cpu.s;
  applyEnv(s);
  for (let i = 0; i < 8; i++) {
    const k = stIndex(s, i);
    s[k] = saveRegs[3 * i];
    s[k + 1] = saveRegs[3 * i + 1];
    s[k + 2] = saveRegs[3 * i + 2];
  }
};

const ffree: Helper = (cpu, insn) => {
  const s = cpu.s;
  s[S.FPU_TAG] &= ~(1 << ((topOf(s) + insn.ops[0].reg) & 7));
};

const ffreep: Helper = (cpu, insn) => {
  ffree(cpu, insn);
  pop(cpu.s);
};

function stepTop(delta: number): Helper {
  return (cpu) => {
    const s = cpu.s;
    s[S.FPU_SW] = (s[S.FPU_SW] & ~(Sw.TOP | Sw.C1)) | (((topOf(s) + delta) & 7) << 11);
  };
}

// ---------------------------------------------------------------------------------------------
// The table

const add: Binary = (a, b, c, d, e, f) => sf.add(a, b, c, d, e, f);

const ARITH: [string, Binary, boolean][] = [
  ['add', add, false],
  ['mul', sf.mul, false],
  ['sub', sf.sub, false],
  ['subr', sf.sub, true],
  ['div', sf.div, false],
  ['divr', sf.div, true],
];

function arithHelpers(): Record<string, Helper> {
  const h: Record<string, Helper> = {};
  for (const [name, op, reverse] of ARITH) {
    h[`f${name}`] = arith(op, reverse, false, false);
    h[`f${name}p`] = arith(op, reverse, true, false);
    h[`fi${name}`] = arith(op, reverse, false, true);
  }
  return h;
}

/** Condition codes (Jcc numbering) of FCMOVB, FCMOVE, FCMOVBE, FCMOVU and their negations. */
const FCMOV: [string, number][] = [
  ['fcmovb', 2], ['fcmove', 4], ['fcmovbe', 6], ['fcmovu', 10],
  ['fcmovnb', 3], ['fcmovne', 5], ['fcmovnbe', 7], ['fcmovnu', 11],
];

const CONSTANT_NAMES = ['fld1', 'fldl2t', 'fldl2e', 'fldpi', 'fldlg2', 'fldln2', 'fldz'];

export const X87_HELPERS: Record<string, Helper> = {
  ...arithHelpers(),
  ...Object.fromEntries(FCMOV.map(([n, cc]) => [n, fcmov(cc)])),
  ...Object.fromEntries(CONSTANT_NAMES.map((n, k) => [n, loadConstant(k)])),
  fld, fild, fbld, fbstp,
  fst: store(false), fstp: store(true),
  fist: storeInt(false, false), fistp: storeInt(true, false), fisttp: storeInt(true, true),
  fxch,
  fchs: signOp(false), fabs: signOp(true),
  fsqrt: unary((se, hi, lo) => sf.sqrt(se, hi, lo)),
  frndint: unary((se, hi, lo) => sf.roundToInteger(se, hi, lo)),
  fscale, fprem, fprem1, fxtract,
  fcom: compareOp(false, 0, false, false),
  fcomp: compareOp(false, 1, false, false),
  fcompp: compareOp(false, 2, false, false),
  fucom: compareOp(true, 0, false, false),
  fucomp: compareOp(true, 1, false, false),
  fucompp: compareOp(true, 2, false, false),
  ficom: compareOp(false, 0, true, false),
  ficomp: compareOp(false, 1, true, false),
  fcomi: compareOp(false, 0, false, true),
  fcomip: compareOp(false, 1, false, true),
  fucomi: compareOp(true, 0, false, true),
  fucomip: compareOp(true, 1, false, true),
  ftst, fxam,
  fsin: transcendental1(Math.sin, true),
  fcos: transcendental1(Math.cos, true),
  f2xm1: transcendental1((x) => Math.expm1(x * Math.LN2), false),
  fsincos: transcendentalPush(Math.sin, Math.cos),
  fptan: transcendentalPush(Math.tan, null),
  fpatan: transcendental2((y, x) => Math.atan2(y, x), 'atan'),
  fyl2x: transcendental2(fyl2xFn, 'log'),
  fyl2xp1: transcendental2(fyl2xp1Fn, 'log'),
  fnstsw, fnstcw, fldcw, fnstenv, fldenv, fnsave, frstor, fninit, fnclex, fwait, fnop,
  ffree, ffreep, fincstp: stepTop(1), fdecstp: stepTop(-1),
};
