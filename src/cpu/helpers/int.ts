/**
 * Interpreter helpers for the general-purpose integer instructions that have no hand-written
 * IR lowering (or whose lowering falls back here): wide multiply and divide, double and
 * rotate-through-carry shifts, compare-exchange, bit tests and scans, string instructions with
 * their REP loops, flag and stack oddities, and the few system instructions user code runs.
 *
 * Why it is shaped so: families that differ only by an operator are one factory each
 * (rotates, bit tests, string ops, multiply/divide), so the edge-case rules live in one
 * place. 64-bit values are int32 pairs: `lo` is returned and the high half travels in the
 * module variable `H` (the same convention as readOp's cpu.hi), which keeps the pair helpers
 * allocation-free. Flags the manuals leave undefined follow what the AMD EPYC hosts of this
 * project produce (tools/int-ref.c measures them; test/int-helpers.test.ts compares).
 * Every helper reads all it needs and lets memory fault before it changes any state; REP
 * string loops update RCX/RSI/RDI per completed element (or page-sized chunk), which is the
 * architectural state of an interrupted REP.
 */
import { type Cpu, stackBytes } from '../cpu.js';
import { CpuException, RepPause, Vec } from '../exceptions.js';
import { CcOp, getRflags, oszapc, parity, setLazy, setOszapc, setRflags } from '../flags.js';
import { PAGE_SIZE, Prot } from '../memory.js';
import { effAddr, readOp, regAddr, segBase, wrap64, writeGpr, writeOp, writeOpAt } from '../operands.js';
import { F, Reg, S } from '../state.js';
import { divs128by64, divu128by64, mul64lo, muls64, mulu64, wide } from '../arith64.js';
import { type Insn, OpKind, Seg } from '../../frontend/insn.js';
import type { Helper } from './index.js';
import { interceptInsn } from '../../svm/intercept.js';
import { ExitCode } from '../../svm/vmcb.js';

const TWO32 = 4294967296;

// ---------------------------------------------------------------------------------------
// 64-bit pair primitives (high half of the result in H)

let H = 0;

/** (lo, hi) << n for 0 <= n <= 64 (64 gives zero). */
function shl64(lo: number, hi: number, n: number): number {
  if (n === 0) return (H = hi), lo;
  if (n < 32) return (H = (hi << n) | (lo >>> (32 - n))), lo << n;
  H = n < 64 ? lo << (n - 32) : 0;
  return 0;
}

/** (lo, hi) >>> n for 0 <= n <= 64. */
function shr64(lo: number, hi: number, n: number): number {
  if (n === 0) return (H = hi), lo;
  if (n < 32) return (H = hi >>> n), (lo >>> n) | (hi << (32 - n));
  H = 0;
  return n < 64 ? hi >>> (n - 32) : 0;
}

/** Bit i (0-63) of (lo, hi). */
function bitOf(lo: number, hi: number, i: number): number {
  return i < 32 ? (lo >>> i) & 1 : (hi >>> (i - 32)) & 1;
}

/** Truncate (lo, hi) to `bits` (8/16/32/64): zero-extended low word returned, high in H. */
function truncate(lo: number, hi: number, bits: number): number {
  if (bits === 64) return (H = hi), lo;
  H = 0;
  return bits === 32 ? lo : lo & ((1 << bits) - 1);
}

/** Write a signed 64-bit JS number (exact: an address or a small count) to register r. */
function setReg64(cpu: Cpu, r: number, v: number): void {
  cpu.s[2 * r] = v | 0;
  cpu.s[2 * r + 1] = Math.floor(v / TWO32) | 0;
}

/** Add a small delta to register r as a pointer or count of the given address size (4 zero-extends). */
export function addToReg(cpu: Cpu, r: number, delta: number, addrSize: number): void {
  const s = cpu.s;
  if (addrSize === 2) {
    s[2 * r] = (s[2 * r] & ~0xffff) | ((s[2 * r] + delta) & 0xffff);
    return;
  }
  const sum = (s[2 * r] >>> 0) + delta;
  s[2 * r] = sum | 0;
  s[2 * r + 1] = addrSize === 4 ? 0 : (s[2 * r + 1] + Math.floor(sum / TWO32)) | 0;
}

/** Read `size` bytes at a linear address: low word returned, high word in cpu.hi. */
function readAt(cpu: Cpu, a: number, size: number): number {
  const m = cpu.mem;
  cpu.hi = 0;
  if (size === 1) return m.read8(a);
  if (size === 2) return m.read16(a);
  if (size === 4) return m.read32(a);
  const lo = m.read64(a);
  cpu.hi = m.hi;
  return lo;
}

function writeAt(cpu: Cpu, a: number, size: number, lo: number, hi: number): void {
  const m = cpu.mem;
  if (size === 1) m.write8(a, lo);
  else if (size === 2) m.write16(a, lo);
  else if (size === 4) m.write32(a, lo);
  else m.write64(a, lo, hi);
}

/** Replace the arithmetic flags in `changed` by those in `bits`, keeping the others. */
function replaceFlags(cpu: Cpu, changed: number, bits: number): void {
  setOszapc(cpu, (oszapc(cpu) & ~changed) | (bits & changed));
}

/** Whether a and b agree in their low `size` bytes (the high words matter for size 8 only). */
function sameIn(size: number, al: number, ah: number, bl: number, bh: number): boolean {
  if (size === 8) return al === bl && ah === bh;
  return ((al ^ bl) & (size === 4 ? -1 : (1 << (8 * size)) - 1)) === 0;
}

/** CMP semantics: record a - b as a lazy SUB (readers mask by size) and say whether a = b. */
function compareFlags(cpu: Cpu, size: number, al: number, ah: number, bl: number, bh: number): boolean {
  if (size === 8) {
    const dh = (ah - bh - (al >>> 0 < bl >>> 0 ? 1 : 0)) | 0;
    setLazy(cpu, CcOp.SUB, 8, (al - bl) | 0, dh, bl, bh);
  } else setLazy(cpu, CcOp.SUB, size, (al - bl) | 0, 0, bl, 0);
  return sameIn(size, al, ah, bl, bh);
}

// ---------------------------------------------------------------------------------------
// MUL, IMUL (one operand), DIV, IDIV

/**
 * MUL/IMUL r/m: accumulator times operand into the accumulator pair (AX, DX:AX, EDX:EAX,
 * RDX:RAX). CF = OF = "the high half is significant"; AMD leaves SF, ZF, AF and PF as they were.
 */
function multiply(signed: boolean): Helper {
  return (cpu, insn) => {
    const size = insn.ops[0].size;
    const b = readOp(cpu, insn, 0);
    const bh = cpu.hi;
    const s = cpu.s;
    let significant: boolean;
    if (size === 8) {
      significant = signed ? muls64(s[0], s[1], b, bh) : mulu64(s[0], s[1], b, bh);
      (s[0] = wide[0]), (s[1] = wide[1]), (s[4] = wide[2]), (s[5] = wide[3]);
    } else if (size === 4) {
      const a = s[0];
      const lo = signed ? mul64lo(a, a >> 31, b, b >> 31) : mul64lo(a, 0, b, 0);
      const hi = wide[1];
      significant = signed ? hi !== lo >> 31 : hi !== 0;
      writeGpr(cpu, Reg.RAX, 4, false, lo);
      writeGpr(cpu, Reg.RDX, 4, false, hi);
    } else {
      const bits = 8 * size;
      const shift = 32 - bits;
      const a = signed ? (s[0] << shift) >> shift : s[0] & ((1 << bits) - 1);
      const p = Math.imul(a, signed ? (b << shift) >> shift : b); // the whole product fits in 32 bits
      significant = signed ? (p << shift) >> shift !== p : p >>> bits !== 0;
      if (size === 1) writeGpr(cpu, Reg.RAX, 2, false, p);
      else writeGpr(cpu, Reg.RAX, 2, false, p), writeGpr(cpu, Reg.RDX, 2, false, p >>> 16);
    }
    replaceFlags(cpu, F.CF | F.OF, significant ? F.CF | F.OF : 0);
  };
}

/**
 * DIV/IDIV r/m: the accumulator pair divided by the operand, quotient to the low half and
 * remainder to the high half (AL/AH for bytes). #DE for a zero divisor or a quotient that
 * does not fit, raised before anything changes. Flags as AMD leaves them: CF and OF kept,
 * SF = ZF = PF = 0, AF = 1.
 */
function divide(signed: boolean): Helper {
  return (cpu, insn) => {
    const size = insn.ops[0].size;
    const d = readOp(cpu, insn, 0);
    const dh = cpu.hi;
    const s = cpu.s;
    if (size === 8) {
      const ok = signed ? divs128by64(s[0], s[1], s[4], s[5], d, dh) : divu128by64(s[0], s[1], s[4], s[5], d, dh);
      if (!ok) throw new CpuException(Vec.DE);
      (s[0] = wide[0]), (s[1] = wide[1]), (s[4] = wide[2]), (s[5] = wide[3]);
    } else if (size === 4) {
      const eax = s[0], edx = s[4];
      const ok = signed ? divs128by64(eax, edx, edx >> 31, edx >> 31, d, d >> 31) : divu128by64(eax, edx, 0, 0, d, 0);
      if (!ok || wide[1] !== (signed ? wide[0] >> 31 : 0)) throw new CpuException(Vec.DE);
      writeGpr(cpu, Reg.RAX, 4, false, wide[0]);
      writeGpr(cpu, Reg.RDX, 4, false, wide[2]);
    } else {
      // 8/16-bit: the dividend has at most 32 bits, exact in a double.
      const bits = 8 * size;
      const shift = 32 - bits;
      const low = size === 1 ? s[0] & 0xffff : (s[4] << 16) | (s[0] & 0xffff);
      const n = signed ? (size === 1 ? (low << 16) >> 16 : low) : low >>> 0;
      const divisor = signed ? (d << shift) >> shift : d;
      if (divisor === 0) throw new CpuException(Vec.DE);
      const q = Math.trunc(n / divisor);
      const r = n % divisor; // JS keeps the dividend's sign, as IDIV does
      if (signed ? (q << shift) >> shift !== q : q >>> bits !== 0) throw new CpuException(Vec.DE);
      if (size === 1) writeGpr(cpu, Reg.RAX, 2, false, (q & 0xff) | ((r & 0xff) << 8));
      else writeGpr(cpu, Reg.RAX, 2, false, q), writeGpr(cpu, Reg.RDX, 2, false, r);
    }
    replaceFlags(cpu, F.SF | F.ZF | F.AF | F.PF, F.AF);
  };
}

// ---------------------------------------------------------------------------------------
// SHLD, SHRD

/**
 * SHLD/SHRD r/m, reg, count. The count is masked to 5 bits (6 for 64-bit operands); zero
 * changes no flag, but a register destination is still written (a 32-bit one gets
 * zero-extended, as AMD hardware does). For 16-bit operands the masked count can exceed 16: AMD
 * then shifts the 48-bit string dest:src:src (SHLD) or src:src:dest (SHRD), which also
 * describes every count below the operand width, so 16-bit operands use that model directly
 * (exact in doubles). Flags as AMD produces them: CF is the last bit shifted out of the
 * destination alone (0 once the count passes the width), OF = MSB(dest << count) xor CF for
 * SHLD and the xor of the two top result bits for SHRD, AF = 1, SF/ZF/PF from the result.
 */
function doubleShift(left: boolean): Helper {
  return (cpu, insn) => {
    const dst = insn.ops[0];
    const size = dst.size;
    const bits = 8 * size;
    const count = readOp(cpu, insn, 2) & (size === 8 ? 63 : 31);
    const addr = dst.kind === OpKind.Mem ? effAddr(cpu, insn) : 0;
    const src = readOp(cpu, insn, 1);
    const srcHi = cpu.hi;
    const d = readOp(cpu, insn, 0);
    const dHi = cpu.hi;
    if (count === 0) {
      if (dst.kind === OpKind.Reg) writeOpAt(cpu, insn, addr, 0, d, dHi);
      return;
    }
    let rl: number, rh: number;
    if (size === 2) {
      const v = left ? d * TWO32 + src * 65536 + src : src * TWO32 + src * 65536 + d;
      rl = Math.floor(left ? v / 2 ** (32 - count) : v / 2 ** count) % 65536;
      rh = 0;
    } else {
      const outLo = left ? shl64(d, dHi, count) : shr64(d, dHi, count);
      const outHi = H;
      const inLo = left ? shr64(src, srcHi, bits - count) : shl64(src, srcHi, bits - count);
      rl = truncate(outLo | inLo, outHi | H, bits);
      rh = H;
    }
    writeOpAt(cpu, insn, addr, 0, rl, rh);
    const msb = bitOf(rl, rh, bits - 1);
    let cf: number, of: number;
    if (left) {
      cf = count <= bits ? bitOf(d, dHi, bits - count) : 0;
      const shiftedLo = shl64(d, dHi, count);
      of = bitOf(shiftedLo, H, bits - 1) ^ cf;
    } else {
      cf = bitOf(d, dHi, count - 1);
      of = msb ^ bitOf(rl, rh, bits - 2);
    }
    const zero = (rl | rh) === 0;
    setOszapc(cpu, cf | F.AF | parity(rl) | (zero ? F.ZF : 0) | (msb ? F.SF : 0) | (of ? F.OF : 0));
  };
}

// ---------------------------------------------------------------------------------------
// ROL, ROR, RCL, RCR

const enum Rot {
  /** Rotate left. */
  ROL,
  /** Rotate right. */
  ROR,
  /** Rotate left through CF (a bits+1 wide rotation). */
  RCL,
  /** Rotate right through CF. */
  RCR,
}

/**
 * Rotates by 1, imm8 or CL. The count is masked to 5 bits (6 for 64-bit); a masked count of
 * zero changes nothing but still writes a register destination (so a 32-bit one is
 * zero-extended, as on AMD hardware). RCL/RCR rotate through CF, so 8/16-bit counts are taken mod 9/17.
 * Only CF and OF change: CF is the bit rotated into it, OF = MSB(result) xor CF for left
 * rotates and the xor of the two top result bits for right rotates (the manuals define OF for
 * count 1 only; AMD applies the same rule to every count).
 */
function rotate(kind: Rot): Helper {
  return (cpu, insn) => {
    const dst = insn.ops[0];
    const size = dst.size;
    const bits = 8 * size;
    const masked = readOp(cpu, insn, 1) & (size === 8 ? 63 : 31);
    const addr = dst.kind === OpKind.Mem ? effAddr(cpu, insn) : 0;
    const lo = readOp(cpu, insn, 0);
    const hi = cpu.hi;
    if (masked === 0) {
      if (dst.kind === OpKind.Reg) writeOpAt(cpu, insn, addr, 0, lo, hi);
      return;
    }
    const through = kind === Rot.RCL || kind === Rot.RCR;
    const n = through ? masked % (bits + 1) : masked % bits;
    const carryIn = oszapc(cpu) & F.CF;
    let rl = lo, rh = hi, cf = carryIn;
    if (n !== 0) {
      let al: number, ah: number, bl: number, bh: number;
      if (kind === Rot.ROL || kind === Rot.RCL) {
        al = shl64(lo, hi, n), ah = H;
        bl = shr64(lo, hi, bits + (through ? 1 : 0) - n), bh = H;
        if (through) {
          cf = bitOf(lo, hi, bits - n);
          if (carryIn) (bl |= shl64(1, 0, n - 1)), (bh |= H);
        }
      } else {
        al = shr64(lo, hi, n), ah = H;
        bl = shl64(lo, hi, bits + (through ? 1 : 0) - n), bh = H;
        if (through) {
          cf = bitOf(lo, hi, n - 1);
          if (carryIn) (bl |= shl64(1, 0, bits - n)), (bh |= H);
        }
      }
      rl = truncate(al | bl, ah | bh, bits);
      rh = H;
      writeOpAt(cpu, insn, addr, 0, rl, rh);
    }
    const msb = bitOf(rl, rh, bits - 1);
    if (kind === Rot.ROL) cf = rl & 1;
    else if (kind === Rot.ROR) cf = msb;
    const of = kind === Rot.ROL || kind === Rot.RCL ? msb ^ cf : msb ^ bitOf(rl, rh, bits - 2);
    replaceFlags(cpu, F.CF | F.OF, cf | (of ? F.OF : 0));
  };
}

// ---------------------------------------------------------------------------------------
// XCHG, XADD, CMPXCHG, CMPXCHG8B/16B

/** XCHG: the memory operand (always operand 0) is written first so a fault leaves registers alone. */
const xchg: Helper = (cpu, insn) => {
  const addr = insn.ops[0].kind === OpKind.Mem ? effAddr(cpu, insn) : 0;
  const al = readOp(cpu, insn, 0), ah = cpu.hi;
  const bl = readOp(cpu, insn, 1), bh = cpu.hi;
  writeOpAt(cpu, insn, addr, 0, bl, bh);
  writeOp(cpu, insn, 1, al, ah);
};

/** XADD r/m, reg: reg gets the old r/m, r/m the sum; flags of ADD. With r/m = reg the sum wins. */
const xadd: Helper = (cpu, insn) => {
  const dst = insn.ops[0];
  const size = dst.size;
  const addr = dst.kind === OpKind.Mem ? effAddr(cpu, insn) : 0;
  const dl = readOp(cpu, insn, 0), dh = cpu.hi;
  const sl = readOp(cpu, insn, 1), sh = cpu.hi;
  const sum = (dl >>> 0) + (sl >>> 0);
  const rl = sum | 0;
  const rh = size === 8 ? (dh + sh + (sum >= TWO32 ? 1 : 0)) | 0 : 0;
  if (dst.kind === OpKind.Mem) {
    writeOpAt(cpu, insn, addr, 0, rl, rh);
    writeOp(cpu, insn, 1, dl, dh);
  } else {
    writeOp(cpu, insn, 1, dl, dh);
    writeOpAt(cpu, insn, addr, 0, rl, rh);
  }
  setLazy(cpu, CcOp.ADD, size, rl, rh, sl, sh);
};

/**
 * CMPXCHG r/m, reg: compare the accumulator with r/m (flags of CMP). Equal: r/m = reg.
 * Different: the accumulator = r/m; a memory operand is written back unchanged (the locked
 * cycle always writes, so a read-only page faults either way), a register operand is left
 * alone (AMD does not even zero-extend it).
 */
const cmpxchg: Helper = (cpu, insn) => {
  const dst = insn.ops[0];
  const size = dst.size;
  const addr = dst.kind === OpKind.Mem ? effAddr(cpu, insn) : 0;
  const dl = readOp(cpu, insn, 0), dh = cpu.hi;
  const sl = readOp(cpu, insn, 1), sh = cpu.hi;
  const al = cpu.s[0], ah = cpu.s[1];
  if (sameIn(size, al, ah, dl, dh)) writeOpAt(cpu, insn, addr, 0, sl, sh);
  else {
    if (dst.kind === OpKind.Mem) writeOpAt(cpu, insn, addr, 0, dl, dh);
    writeGpr(cpu, Reg.RAX, size, false, dl, dh);
  }
  compareFlags(cpu, size, al, ah, dl, dh);
};

/**
 * CMPXCHG8B m64 / CMPXCHG16B m128 (REX.W): compare EDX:EAX (RDX:RAX) with memory; equal:
 * store ECX:EBX (RCX:RBX), ZF = 1; else load memory into EDX:EAX (RDX:RAX; 32-bit halves
 * zero-extend), ZF = 0, and write memory back unchanged. Only ZF changes. CMPXCHG16B needs a
 * 16-byte aligned operand (#GP(0)).
 */
const cmpxchg8b: Helper = (cpu, insn) => {
  const s = cpu.s;
  const a = effAddr(cpu, insn);
  let equal: boolean;
  if (insn.opSize === 8) {
    if (a % 16 !== 0) throw new CpuException(Vec.GP, 0);
    const m0 = cpu.mem.read64(a), m1 = cpu.mem.hi;
    const m2 = cpu.mem.read64(a + 8), m3 = cpu.mem.hi;
    equal = m0 === s[0] && m1 === s[1] && m2 === s[4] && m3 === s[5];
    if (equal) cpu.mem.write64(a, s[6], s[7]), cpu.mem.write64(a + 8, s[2], s[3]);
    else {
      cpu.mem.write64(a, m0, m1), cpu.mem.write64(a + 8, m2, m3);
      (s[0] = m0), (s[1] = m1), (s[4] = m2), (s[5] = m3);
    }
  } else {
    const m0 = cpu.mem.read64(a), m1 = cpu.mem.hi;
    equal = m0 === s[0] && m1 === s[4];
    if (equal) cpu.mem.write64(a, s[6], s[2]);
    else {
      cpu.mem.write64(a, m0, m1);
      writeGpr(cpu, Reg.RAX, 4, false, m0);
      writeGpr(cpu, Reg.RDX, 4, false, m1);
    }
  }
  replaceFlags(cpu, F.ZF, equal ? F.ZF : 0);
};

// ---------------------------------------------------------------------------------------
// BT, BTS, BTR, BTC

const enum BitOp {
  /** Only copy the bit to CF. */
  TEST,
  SET,
  RESET,
  COMPLEMENT,
}

/**
 * BT/BTS/BTR/BTC r/m, reg|imm8: CF = the selected bit, then the bit is changed as the op says;
 * no other flag changes (AMD). The offset is taken modulo the operand width, except for a
 * register offset on a memory operand: then it is a signed bit string index that can address
 * memory before or after the operand, in operand-sized units.
 */
function bitTest(op: BitOp): Helper {
  return (cpu, insn) => {
    const dst = insn.ops[0];
    const size = dst.size;
    const bits = 8 * size;
    const offLo = readOp(cpu, insn, 1);
    const offHi = cpu.hi;
    let addr = 0;
    let lo: number, hi: number;
    if (dst.kind === OpKind.Mem) {
      addr = effAddr(cpu, insn);
      if (insn.ops[1].kind === OpKind.Reg) {
        const offset = size === 2 ? (offLo << 16) >> 16 : size === 4 ? offLo : offHi * TWO32 + (offLo >>> 0);
        addr = wrap64(addr + Math.floor(offset / bits) * size);
      }
      lo = readAt(cpu, addr, size);
      hi = cpu.hi;
    } else {
      lo = readOp(cpu, insn, 0);
      hi = cpu.hi;
    }
    const bit = offLo & (bits - 1);
    const cf = bitOf(lo, hi, bit);
    if (op !== BitOp.TEST) {
      const ml = shl64(1, 0, bit), mh = H;
      if (op === BitOp.SET) (lo |= ml), (hi |= mh);
      else if (op === BitOp.RESET) (lo &= ~ml), (hi &= ~mh);
      else (lo ^= ml), (hi ^= mh);
      writeOpAt(cpu, insn, addr, 0, lo, hi);
    }
    replaceFlags(cpu, F.CF, cf);
  };
}

// ---------------------------------------------------------------------------------------
// BSF, BSR, TZCNT, LZCNT, POPCNT, BSWAP

function ctz32(x: number): number {
  return 31 - Math.clz32(x & -x);
}

function popcount32(x: number): number {
  x -= (x >>> 1) & 0x55555555;
  x = (x & 0x33333333) + ((x >>> 2) & 0x33333333);
  x = (x + (x >>> 4)) & 0x0f0f0f0f;
  return Math.imul(x, 0x01010101) >>> 24;
}

const enum Scan {
  /** Index of the lowest set bit (BSF). */
  BSF,
  /** Index of the highest set bit (BSR). */
  BSR,
  /** Trailing zeros, width for zero (TZCNT). */
  TZCNT,
  /** Leading zeros, width for zero (LZCNT). */
  LZCNT,
  /** Set bits (POPCNT). */
  POPCNT,
}

/**
 * Bit scans and counts, Gv <- Ev. BSF/BSR of zero set ZF and leave the destination untouched
 * (all 64 bits, as AMD documents). Flags as AMD produces them: BSF/BSR clear CF, OF, SF, AF
 * and take PF from the result (PF = 1 with ZF for a zero source); TZCNT/LZCNT set CF for a
 * zero source, ZF for a zero result, keep OF and clear SF/AF/PF; POPCNT clears all but ZF.
 */
function bitScan(kind: Scan): Helper {
  return (cpu, insn) => {
    const size = insn.ops[0].size;
    const bits = 8 * size;
    const lo = readOp(cpu, insn, 1);
    const hi = cpu.hi;
    const zero = (lo | hi) === 0;
    let r: number;
    switch (kind) {
      case Scan.BSF:
      case Scan.BSR:
        if (zero) {
          setOszapc(cpu, F.ZF | F.PF);
          return;
        }
        if (kind === Scan.BSF) r = lo !== 0 ? ctz32(lo) : 32 + ctz32(hi);
        else r = hi !== 0 ? 63 - Math.clz32(hi) : 31 - Math.clz32(lo);
        writeOp(cpu, insn, 0, r);
        setOszapc(cpu, parity(r));
        return;
      case Scan.TZCNT:
      case Scan.LZCNT:
        if (zero) r = bits;
        else if (kind === Scan.TZCNT) r = lo !== 0 ? ctz32(lo) : 32 + ctz32(hi);
        else r = bits === 64 ? (hi !== 0 ? Math.clz32(hi) : 32 + Math.clz32(lo)) : Math.clz32(lo) - (32 - bits);
        writeOp(cpu, insn, 0, r);
        replaceFlags(cpu, F.OSZAPC & ~F.OF, (zero ? F.CF : 0) | (r === 0 ? F.ZF : 0));
        return;
      default:
        writeOp(cpu, insn, 0, popcount32(lo) + popcount32(hi));
        setOszapc(cpu, zero ? F.ZF : 0);
    }
  };
}

function bswap32(x: number): number {
  return (x << 24) | ((x & 0xff00) << 8) | ((x >>> 8) & 0xff00) | (x >>> 24);
}

/** BSWAP r32/r64. With a 66 prefix (16-bit, undefined in the manuals) AMD clears the low 16 bits. */
const bswap: Helper = (cpu, insn) => {
  const op = insn.ops[0];
  const s = cpu.s;
  if (insn.opSize === 2) writeGpr(cpu, op.reg, 2, false, 0);
  else if (op.size === 8) {
    const lo = s[2 * op.reg];
    s[2 * op.reg] = bswap32(s[2 * op.reg + 1]);
    s[2 * op.reg + 1] = bswap32(lo);
  } else writeGpr(cpu, op.reg, 4, false, bswap32(s[2 * op.reg]));
};

// ---------------------------------------------------------------------------------------
// CBW/CWDE/CDQE, CWD/CDQ/CQO

const cbw: Helper = (cpu, insn) => {
  const s = cpu.s;
  if (insn.opSize === 2) writeGpr(cpu, Reg.RAX, 2, false, (s[0] << 24) >> 24);
  else if (insn.opSize === 4) writeGpr(cpu, Reg.RAX, 4, false, (s[0] << 16) >> 16);
  else s[1] = s[0] >> 31;
};

const cwd: Helper = (cpu, insn) => {
  const s = cpu.s;
  if (insn.opSize === 2) writeGpr(cpu, Reg.RDX, 2, false, (s[0] << 16) >> 31);
  else if (insn.opSize === 4) writeGpr(cpu, Reg.RDX, 4, false, s[0] >> 31);
  else (s[4] = s[1] >> 31), (s[5] = s[1] >> 31);
};

// ---------------------------------------------------------------------------------------
// Flag instructions

/** The arithmetic flags SAHF loads and LAHF stores (OF is not among them). */
const AH_FLAGS = F.SF | F.ZF | F.AF | F.PF | F.CF;
/** RFLAGS bits user-mode POPF may change; IF, IOPL, NT, RF, VM and the rest keep their values. */
const POPF_USER = F.OSZAPC | F.TF | F.DF | F.AC | F.ID;

const cmc: Helper = (cpu) => replaceFlags(cpu, F.CF, ~oszapc(cpu));
const clc: Helper = (cpu) => replaceFlags(cpu, F.CF, 0);
const stc: Helper = (cpu) => replaceFlags(cpu, F.CF, F.CF);
const cld: Helper = (cpu) => void (cpu.s[S.FLAGS] &= ~F.DF);
const std: Helper = (cpu) => void (cpu.s[S.FLAGS] |= F.DF);
const sahf: Helper = (cpu) => replaceFlags(cpu, AH_FLAGS, cpu.s[0] >>> 8);
const lahf: Helper = (cpu) => writeGpr(cpu, 0, 1, true, (oszapc(cpu) & AH_FLAGS) | F.FIXED);

/** PUSHF (64-bit, or 16-bit with 66): RF and VM read as zero. */
const pushf: Helper = (cpu, insn) => {
  const size = insn.opSize;
  const rsp = regAddr(cpu, Reg.RSP) - size;
  const v = getRflags(cpu) & ~0x30000;
  if (size === 2) cpu.mem.write16(rsp, v);
  else cpu.mem.write64(rsp, v, 0);
  setReg64(cpu, Reg.RSP, rsp);
};

/** POPF with user-mode rules (CPL 3, IOPL 0): only POPF_USER bits change; 16-bit POPF only the low word's. */
const popf: Helper = (cpu, insn) => {
  const size = insn.opSize;
  const rsp = regAddr(cpu, Reg.RSP);
  const v = size === 2 ? cpu.mem.read16(rsp) : cpu.mem.read64(rsp); // bits 32-63 are reserved
  const changeable = size === 2 ? POPF_USER & 0xffff : POPF_USER;
  setRflags(cpu, (getRflags(cpu) & ~changeable) | (v & changeable));
  setReg64(cpu, Reg.RSP, rsp + size);
};

// ---------------------------------------------------------------------------------------
// ENTER

/** Register r at stack width w (2, 4 or 8 bytes). */
function atStackWidth(cpu: Cpu, r: number, w: number): number {
  return w === 8 ? regAddr(cpu, r) : w === 4 ? cpu.s[2 * r] >>> 0 : cpu.s[2 * r] & 0xffff;
}

/** Stack offset `off` wrapped to stack width w (64-bit stacks do not wrap here). */
function wrapStack(off: number, w: number): number {
  if (w === 8) return off;
  const m = w === 4 ? TWO32 : 65536;
  return ((off % m) + m) % m;
}

/** The linear address of stack offset `off`: 64-bit stacks are flat, narrower ones SS-relative. */
function stackLinear(cpu: Cpu, off: number, w: number): number {
  return w === 8 ? off : (segBase(cpu, Seg.SS) + wrapStack(off, w)) % TWO32;
}

/** Values ENTER pushes (saved frame pointers of outer levels), read before anything is written. */
/**
 * ENTER imm16, imm8: push RBP, copy level-1 outer frame pointers from the old frame, push the
 * new frame pointer, set RBP, allocate imm16 bytes. The copies run in the hardware's order, one
 * read then one push at a time, so a copy that reads a slot this ENTER has just pushed (RBP ==
 * RSP) sees the pushed value. The stack area is probed for writing first and registers change
 * only at the end, so a fault leaves the instruction restartable. Outside 64-bit mode the
 * stack's width is SS.B's, not the operand size's: SP/BP (or ESP/EBP) wrap at it, addresses
 * are SS-relative, and RSP keeps its bits above the width.
 */
const enter: Helper = (cpu, insn) => {
  const size = insn.opSize;
  const alloc = readOp(cpu, insn, 0) & 0xffff;
  const level = readOp(cpu, insn, 1) & 31;
  const s = cpu.s;
  const w = stackBytes(cpu.mode);
  const rsp = atStackWidth(cpu, Reg.RSP, w);
  const rbp = atStackWidth(cpu, Reg.RBP, w);
  const frame = wrapStack(rsp - size, w);
  const pushes = level === 0 ? 1 : level + 1;
  const lowest = rsp - pushes * size;
  cpu.mem.translate(stackLinear(cpu, lowest, w), Prot.WRITE);
  cpu.mem.translate(stackLinear(cpu, rsp - 1, w), Prot.WRITE);
  writeAt(cpu, stackLinear(cpu, frame, w), size, s[2 * Reg.RBP], s[2 * Reg.RBP + 1]);
  for (let i = 1; i < level; i++) {
    const lo = readAt(cpu, stackLinear(cpu, rbp - i * size, w), size);
    writeAt(cpu, stackLinear(cpu, frame - i * size, w), size, lo, cpu.hi);
  }
  if (level > 0) writeAt(cpu, stackLinear(cpu, lowest, w), size, frame | 0, Math.floor(frame / TWO32) | 0);
  if (size === 2) writeGpr(cpu, Reg.RBP, 2, false, frame);
  else setReg64(cpu, Reg.RBP, frame);
  const sp = wrapStack(lowest - alloc, w);
  if (w === 8) setReg64(cpu, Reg.RSP, sp);
  else writeGpr(cpu, Reg.RSP, w, false, sp);
};

// ---------------------------------------------------------------------------------------
// System instructions user code runs

const cpuid: Helper = (cpu, insn) => {
  interceptInsn(cpu, ExitCode.CPUID, insn);
  cpu.hooks.cpuid(cpu);
};

/** EDX:EAX = the TSC. CR4.TSD (machine mode) restricts RDTSC/RDTSCP to CPL 0: their helpers check first. */
function storeTsc(cpu: Cpu): void {
  const t = cpu.hooks.rdtsc(cpu);
  writeGpr(cpu, Reg.RAX, 4, false, t % TWO32);
  writeGpr(cpu, Reg.RDX, 4, false, Math.floor(t / TWO32));
}

const rdtsc: Helper = (cpu, insn) => {
  if (cpu.s[S.CR4] & 4 && cpu.s[S.CPL] > 0) throw new CpuException(Vec.GP, 0);
  interceptInsn(cpu, ExitCode.RDTSC, insn);
  storeTsc(cpu);
};
/** RDTSCP: also ECX = IA32_TSC_AUX (0 in user mode, where the process cannot set it). */
const rdtscp: Helper = (cpu, insn) => {
  if (cpu.s[S.CR4] & 4 && cpu.s[S.CPL] > 0) throw new CpuException(Vec.GP, 0);
  interceptInsn(cpu, ExitCode.RDTSCP, insn);
  storeTsc(cpu);
  writeGpr(cpu, Reg.RCX, 4, false, cpu.s[S.TSC_AUX]);
};

/** XGETBV: only XCR0 exists, and it enables x87 and SSE state (no AVX). */
const xgetbv: Helper = (cpu) => {
  if (cpu.s[2 * Reg.RCX] !== 0) throw new CpuException(Vec.GP, 0);
  writeGpr(cpu, Reg.RAX, 4, false, 3);
  writeGpr(cpu, Reg.RDX, 4, false, 0);
};

function readBase(slot: S.FS_BASE_LO | S.GS_BASE_LO): Helper {
  return (cpu, insn) => writeOp(cpu, insn, 0, cpu.s[slot], cpu.s[slot + 1]);
}

/** WRFSBASE/WRGSBASE: the 32-bit form zero-extends; a non-canonical 64-bit base is #GP(0). */
function writeBase(slot: S.FS_BASE_LO | S.GS_BASE_LO): Helper {
  return (cpu, insn) => {
    const lo = readOp(cpu, insn, 0);
    const hi = cpu.hi;
    if ((hi << 16) >> 16 !== hi) throw new CpuException(Vec.GP, 0);
    cpu.s[slot] = lo;
    cpu.s[slot + 1] = hi;
  };
}

// ---------------------------------------------------------------------------------------
// String instructions

const enum Str {
  MOVS,
  CMPS,
  STOS,
  LODS,
  SCAS,
}

/** Elements (or page-sized chunks) one call of a REP string helper processes before pausing. */
export const REP_STEPS_PER_CALL = 65536;

/** Offset held by string pointer register r at the address size (16/32-bit sizes zero-extend). */
export function stringPtr(cpu: Cpu, r: number, addrSize: number): number {
  return addrSize === 4 ? cpu.s[2 * r] >>> 0 : addrSize === 2 ? cpu.s[2 * r] & 0xffff : regAddr(cpu, r);
}

/** Linear address of a string element: segment base plus offset, wrapped at 4 GiB outside 64-bit mode. */
export function stringLinear(cpu: Cpu, insn: Insn, seg: number, offset: number): number {
  const lin = segBase(cpu, seg) + offset;
  return insn.mode === 64 ? lin : lin % TWO32;
}

/** Byte offset of a linear address inside its page. */
function pageOffset(a: number): number {
  return ((a % PAGE_SIZE) + PAGE_SIZE) % PAGE_SIZE;
}

/** How many elements of `size` starting at linear `a` lie in a's page when walking by `step`. */
function elementsInPage(a: number, size: number, step: number): number {
  const off = pageOffset(a);
  if (off + size > PAGE_SIZE) return 0;
  return step > 0 ? Math.floor((PAGE_SIZE - off) / size) : Math.floor(off / size) + 1;
}

/**
 * Before storing to physical [p, p+len) behind Memory's back: the self-modifying-code check
 * Memory makes for its own stores (translated code on the page gets invalidated).
 */
function noteStore(cpu: Cpu, p: number, len: number): void {
  const mem = cpu.mem;
  if (mem.codeOnPage(Math.floor(p / PAGE_SIZE))) mem.noteStore(p, len);
}

/**
 * REP MOVS/STOS fast path: as many elements as stay inside the current source and
 * destination pages, done on physical memory in one go. Returns how many were done; 0 means
 * "take the element-by-element path" (an element straddles a page, few elements remain, or
 * source and destination overlap so that a block copy would differ from the sequential one).
 */
function bulkStringChunk(cpu: Cpu, kind: Str, size: number, step: number, src: number, dst: number, remaining: number): number {
  let k = Math.min(remaining, elementsInPage(dst, size, step));
  if (kind === Str.MOVS) k = Math.min(k, elementsInPage(src, size, step));
  if (k < 2) return 0;
  const mem = cpu.mem;
  const span = k * size;
  // Walking down, the chunk's lowest byte is the last element's.
  const back = step > 0 ? 0 : (k - 1) * size;
  const pd = mem.translate(dst, Prot.WRITE) - back;
  if (pd + span > mem.ramEnd) return 0; // MMIO: element by element through the devices
  if (kind === Str.MOVS) {
    const ps = mem.translate(src, Prot.READ) - back;
    if (ps + span > mem.ramEnd) return 0;
    // Sequential copying equals a block move when it walks away from the overlap.
    const disjoint = pd + span <= ps || ps + span <= pd;
    if (!disjoint && (step > 0 ? pd > ps : pd < ps)) return 0;
    noteStore(cpu, pd, span);
    mem.u8.copyWithin(pd, ps, ps + span);
    return k;
  }
  noteStore(cpu, pd, span);
  const s = cpu.s;
  if (size === 1) mem.u8.fill(s[0] & 0xff, pd, pd + span);
  else
    for (let p = pd, end = pd + span; p < end; p += size) {
      if (size === 2) mem.dv.setUint16(p, s[0], true);
      else if (size === 4) mem.dv.setInt32(p, s[0], true);
      else mem.dv.setInt32(p, s[0], true), mem.dv.setInt32(p + 4, s[1], true);
    }
  return k;
}

/**
 * MOVS/CMPS/STOS/LODS/SCAS in every size, with REP/REPE/REPNE. DF picks the direction; a
 * segment override applies to the source (RSI) side; address size 4 uses ESI/EDI/ECX and
 * zero-extends them when they change. A whole REP runs in one call; a fault in the middle
 * leaves the registers at the faulting element, as hardware does. CMPS/SCAS flags are those
 * of the last comparison (a SUB).
 */
function stringOp(kind: Str): Helper {
  const usesSrc = kind === Str.MOVS || kind === Str.CMPS || kind === Str.LODS;
  const usesDst = kind !== Str.LODS;
  return (cpu, insn) => {
    const s = cpu.s;
    const size = insn.ops[0].size;
    const as = insn.addrSize;
    const step = s[S.FLAGS] & F.DF ? -size : size;
    // The destination is always ES:rDI (ES counts only outside 64-bit mode).
    const dstSeg = insn.mode === 64 ? Seg.NONE : Seg.ES;
    let remaining = 1;
    if (insn.rep) {
      remaining = as === 8 ? s[2 * Reg.RCX + 1] * TWO32 + (s[2 * Reg.RCX] >>> 0) : stringPtr(cpu, Reg.RCX, as);
      if (remaining < 0) remaining = Number.MAX_SAFE_INTEGER; // "huge": the loop faults or is stopped long before
    }
    for (let steps = 0; remaining > 0; steps++) {
      // A huge count must not hold the CPU for seconds: pause with the progress made (RepPause).
      if (steps === REP_STEPS_PER_CALL) throw new RepPause();
      const src = usesSrc ? stringLinear(cpu, insn, insn.seg, stringPtr(cpu, Reg.RSI, as)) : 0;
      const dst = usesDst ? stringLinear(cpu, insn, dstSeg, stringPtr(cpu, Reg.RDI, as)) : 0;
      let done = 0;
      let stop = false;
      if (insn.rep && (kind === Str.MOVS || kind === Str.STOS)) done = bulkStringChunk(cpu, kind, size, step, src, dst, remaining);
      if (done === 0) {
        done = 1;
        switch (kind) {
          case Str.MOVS: {
            const lo = readAt(cpu, src, size);
            writeAt(cpu, dst, size, lo, cpu.hi);
            break;
          }
          case Str.STOS:
            writeAt(cpu, dst, size, s[0], s[1]);
            break;
          case Str.LODS: {
            const lo = readAt(cpu, src, size);
            writeGpr(cpu, Reg.RAX, size, false, lo, cpu.hi);
            break;
          }
          default: {
            let al: number, ah: number;
            if (kind === Str.CMPS) (al = readAt(cpu, src, size)), (ah = cpu.hi);
            else (al = size === 8 ? s[0] : truncate(s[0], 0, 8 * size)), (ah = size === 8 ? s[1] : 0);
            const bl = readAt(cpu, dst, size);
            const equal = compareFlags(cpu, size, al, ah, bl, cpu.hi);
            stop = insn.rep === 0xf3 ? !equal : !!insn.rep && equal;
          }
        }
      }
      if (usesSrc) addToReg(cpu, Reg.RSI, done * step, as);
      if (usesDst) addToReg(cpu, Reg.RDI, done * step, as);
      remaining -= done;
      if (insn.rep) addToReg(cpu, Reg.RCX, -done, as);
      if (stop) break;
    }
  };
}

// ---------------------------------------------------------------------------------------

export const INT_HELPERS: Record<string, Helper> = {
  mul: multiply(false),
  imul1: multiply(true),
  div: divide(false),
  idiv: divide(true),
  shld: doubleShift(true),
  shrd: doubleShift(false),
  rol: rotate(Rot.ROL),
  ror: rotate(Rot.ROR),
  rcl: rotate(Rot.RCL),
  rcr: rotate(Rot.RCR),
  xchg,
  xadd,
  cmpxchg,
  cmpxchg8b,
  bt: bitTest(BitOp.TEST),
  bts: bitTest(BitOp.SET),
  btr: bitTest(BitOp.RESET),
  btc: bitTest(BitOp.COMPLEMENT),
  bsf: bitScan(Scan.BSF),
  bsr: bitScan(Scan.BSR),
  tzcnt: bitScan(Scan.TZCNT),
  lzcnt: bitScan(Scan.LZCNT),
  popcnt: bitScan(Scan.POPCNT),
  bswap,
  cbw,
  cwd,
  cmc,
  clc,
  stc,
  cld,
  std,
  sahf,
  lahf,
  pushf,
  popf,
  enter,
  cpuid,
  rdtsc,
  rdtscp,
  xgetbv,
  rdfsbase: readBase(S.FS_BASE_LO),
  rdgsbase: readBase(S.GS_BASE_LO),
  wrfsbase: writeBase(S.FS_BASE_LO),
  wrgsbase: writeBase(S.GS_BASE_LO),
  movs: stringOp(Str.MOVS),
  cmps: stringOp(Str.CMPS),
  stos: stringOp(Str.STOS),
  lods: stringOp(Str.LODS),
  scas: stringOp(Str.SCAS),
};

