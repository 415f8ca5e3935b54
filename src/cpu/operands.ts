/**
 * Generic operand access for interpreter helpers: compute the effective address, read and
 * write general-register, memory, immediate and XMM operands of a decoded instruction.
 * The lifter has its own IR-emitting twin of this (src/ir/lift/operands.ts); helpers run only
 * for instructions without a hand-written lowering, so clarity wins over speed here.
 */
import type { Cpu } from './cpu.js';
import { S, SEG_STRIDE, SegField } from './state.js';
import { type Insn, OpKind, Seg, BASE_NONE } from '../frontend/insn.js';

/** A register's value as a signed 64-bit JS number (exact for addresses). */
export function regAddr(cpu: Cpu, r: number): number {
  return cpu.s[2 * r + 1] * 4294967296 + (cpu.s[2 * r] >>> 0);
}

/** The effective (linear) address of the instruction's memory operand. */
export function effAddr(cpu: Cpu, insn: Insn): number {
  const s = cpu.s;
  if (insn.addrSize !== 8) {
    let a = insn.disp | 0;
    if (insn.base !== BASE_NONE) a = (a + s[2 * insn.base]) | 0;
    if (insn.index >= 0) a = (a + Math.imul(s[2 * insn.index], insn.scale)) | 0;
    const lin = (insn.addrSize === 2 ? a & 0xffff : a >>> 0) + segBase(cpu, insn.seg);
    // Outside 64-bit mode the linear address wraps at 4 GiB.
    return insn.mode === 64 ? lin : lin % 4294967296;
  }
  let a = insn.disp;
  if (insn.base !== BASE_NONE) a += regAddr(cpu, insn.base);
  if (insn.index >= 0) a += regAddr(cpu, insn.index) * insn.scale;
  return wrap64(a + segBase(cpu, insn.seg));
}

/** Reduce a sum of signed 64-bit addresses back into the signed 64-bit range. */
export function wrap64(a: number): number {
  if (a >= 9223372036854775808) return a - 18446744073709551616;
  if (a < -9223372036854775808) return a + 18446744073709551616;
  return a;
}

/** The base of segment `seg` (a Seg; Seg.NONE = no segment). 64-bit mode ignores ES/CS/SS/DS: the decoder never names them there. */
export function segBase(cpu: Cpu, seg: number): number {
  if (seg < 0) return 0;
  const at = S.SEG + SEG_STRIDE * seg;
  return cpu.s[at + SegField.BASE_HI] * 4294967296 + (cpu.s[at + SegField.BASE_LO] >>> 0);
}

/**
 * Read operand i. Returns the low 32 bits (zero-extended for sizes 1 and 2, as int32 for 4
 * and 8); for size 8 the high half is left in cpu.hi (else cpu.hi = 0).
 */
export function readOp(cpu: Cpu, insn: Insn, i: number): number {
  const op = insn.ops[i];
  const s = cpu.s;
  cpu.hi = 0;
  switch (op.kind) {
    case OpKind.Reg:
      if (op.size === 1) return op.hi8 ? (s[2 * op.reg] >>> 8) & 0xff : s[2 * op.reg] & 0xff;
      if (op.size === 2) return s[2 * op.reg] & 0xffff;
      if (op.size === 8) cpu.hi = s[2 * op.reg + 1];
      return s[2 * op.reg];
    case OpKind.Mem: {
      const a = effAddr(cpu, insn);
      if (op.size === 1) return cpu.mem.read8(a);
      if (op.size === 2) return cpu.mem.read16(a);
      if (op.size === 4) return cpu.mem.read32(a);
      const lo = cpu.mem.read64(a);
      cpu.hi = cpu.mem.hi;
      return lo;
    }
    case OpKind.Imm:
      if (op.size === 8) cpu.hi = op.immHi;
      return op.size === 1 ? op.imm & 0xff : op.size === 2 ? op.imm & 0xffff : op.imm;
    default:
      throw new Error(`readOp: operand kind ${op.kind} of ${insn.mnem}`);
  }
}

/** Write operand i (register writes of size 4 zero the high half, as the architecture does). */
export function writeOp(cpu: Cpu, insn: Insn, i: number, lo: number, hi = 0): void {
  const op = insn.ops[i];
  writeOpAt(cpu, insn, op.kind === OpKind.Mem ? effAddr(cpu, insn) : 0, i, lo, hi);
}

/** writeOp with the effective address already computed (read-modify-write helpers). */
export function writeOpAt(cpu: Cpu, insn: Insn, addr: number, i: number, lo: number, hi = 0): void {
  const op = insn.ops[i];
  const s = cpu.s;
  if (op.kind === OpKind.Reg) {
    writeGpr(cpu, op.reg, op.size, op.hi8, lo, hi);
    return;
  }
  if (op.kind !== OpKind.Mem) throw new Error(`writeOp: operand kind ${op.kind} of ${insn.mnem}`);
  if (op.size === 1) cpu.mem.write8(addr, lo);
  else if (op.size === 2) cpu.mem.write16(addr, lo);
  else if (op.size === 4) cpu.mem.write32(addr, lo);
  else cpu.mem.write64(addr, lo, hi);
  void s;
}

export function writeGpr(cpu: Cpu, reg: number, size: number, hi8: boolean, lo: number, hi = 0): void {
  const s = cpu.s;
  const i = 2 * reg;
  if (size === 1) s[i] = hi8 ? (s[i] & ~0xff00) | ((lo & 0xff) << 8) : (s[i] & ~0xff) | (lo & 0xff);
  else if (size === 2) s[i] = (s[i] & ~0xffff) | (lo & 0xffff);
  else if (size === 4) (s[i] = lo), (s[i + 1] = 0);
  else (s[i] = lo), (s[i + 1] = hi);
}

/** Byte offset of XMM register r inside the state buffer. */
export function xmmByteOffset(r: number): number {
  return (S.XMM + 4 * r) * 4;
}

/** Int32 index of lane 0 of XMM register r inside the state's int32 view. */
export function xmmIndex(r: number): number {
  return S.XMM + 4 * r;
}
