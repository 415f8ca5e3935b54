/**
 * Instructions that exist only outside 64-bit mode or depend on the legacy modes, as
 * interpreter helpers: decimal adjustment (DAA, DAS, AAA, AAS, AAM, AAD), PUSHA/POPA, BOUND,
 * ARPL, the descriptor queries LAR/LSL/VERR/VERW, SYSENTER/SYSEXIT with AMD's rules, and RDPMC.
 *
 * They live with the machine because they need its segment descriptors, stack width and MSRs,
 * but they are registered with every helper: in user mode (64-bit, CPL 3, an empty GDT) the
 * decoder never produces the legacy-only ones, the descriptor queries find nothing (ZF = 0)
 * and SYSENTER, SYSEXIT and RDPMC fault as they would for a Linux process on an AMD CPU.
 *
 * Semantics follow the AMD APM Vol 3 where the two manuals differ (svmjit's CPU is AMD): LAR
 * keeps descriptor bits 23:8 (mask 00FF_FF00h), long mode rejects the 16-bit system
 * descriptors and needs a zero type in the upper half of 16-byte ones, SYSENTER and SYSEXIT
 * are #UD in long mode. Flags the manuals leave undefined are set as the hardware they were
 * measured on sets them (every AL with AF/CF in, several AH, in compatibility mode on an Intel
 * host; test/legacy-helpers.test.ts repeats the comparison on the host it runs on): OF = 0
 * after DAA/DAS/AAA/AAS, SF/ZF/PF of the result AL after AAA/AAS, OF/AF/CF = 0 after AAM, and
 * those of the 8-bit addition AL + AH × imm8 after AAD. QEMU 7.2 differs on the AAA/AAS/AAD
 * ones (it keeps the old flags, or clears them).
 *
 * Helpers without `end` in the opcode table leave RIP alone (the caller advances it);
 * SYSENTER/SYSEXIT end their block and set RIP themselves.
 */
import type { Cpu } from '../cpu/cpu.js';
import { CpuException, Vec } from '../cpu/exceptions.js';
import { CcOp, getRflags, oszapc, parity, setLazy, setOszapc, setRflags } from '../cpu/flags.js';
import { effAddr, readOp, writeGpr, writeOp, writeOpAt } from '../cpu/operands.js';
import { F, Reg, S, SegField, SegReg } from '../cpu/state.js';
import { type Insn, OpKind } from '../frontend/insn.js';
import type { Helper } from '../cpu/helpers/index.js';
import { RF, VM } from './interrupts.js';
import { Msr } from './msr.js';
import { Attr, cpl, desc, descAttr, descLimit, inLongMode, protectedMode, readDescriptor, segAt, setSegCache } from './segments.js';
import { interceptInsn } from '../svm/intercept.js';
import { ExitCode } from '../svm/vmcb.js';
import { gp0, needProtected, readStack, setStackPointer, stackPointer, sys, wrapSp, writeStack } from './system.js';

const TWO32 = 4294967296;

// ---- decimal arithmetic ----

/** SF, ZF and PF of an 8-bit result. */
function szp8(v: number): number {
  return (v & 0x80 ? F.SF : 0) | ((v & 0xff) === 0 ? F.ZF : 0) | parity(v);
}

/**
 * DAA (sign +1) and DAS (sign −1), SDM pseudo-code: ±6 when the low digit is above 9 or AF is
 * set (AF = 1, and CF = 1 if that carries or borrows out of AL), ±60h when the original AL is
 * above 99h or CF is set (CF = 1). Only DAS can borrow without the second step following.
 */
function decimalAdjust(sign: 1 | -1): Helper {
  return (cpu) => {
    const f = oszapc(cpu);
    const old = cpu.s[0] & 0xff;
    let al = old;
    let out = 0;
    if ((old & 0xf) > 9 || f & F.AF) {
      al += 6 * sign;
      out |= al & ~0xff ? F.AF | F.CF : F.AF;
    }
    if (old > 0x99 || f & F.CF) {
      al += 0x60 * sign;
      out |= F.CF;
    }
    cpu.s[0] = (cpu.s[0] & ~0xff) | (al & 0xff);
    setOszapc(cpu, out | szp8(al));
  };
}

/**
 * AAA (sign +1) and AAS (sign −1): when the low digit is above 9 or AF is set, AX ± 106h (so
 * a carry or borrow out of AL reaches AH as well, as the SDM's "AX := AX + 106H" says and the
 * hardware does) with AF = CF = 1; AL keeps only its low digit either way.
 */
function asciiAdjust(sign: 1 | -1): Helper {
  return (cpu) => {
    const f = oszapc(cpu);
    let ax = cpu.s[0] & 0xffff;
    const adjust = (ax & 0xf) > 9 || (f & F.AF) !== 0;
    if (adjust) ax += 0x106 * sign;
    ax &= 0xff0f;
    cpu.s[0] = (cpu.s[0] & ~0xffff) | ax;
    setOszapc(cpu, (adjust ? F.AF | F.CF : 0) | szp8(ax));
  };
}

/** AAM imm8: AH = AL / imm8, AL = AL mod imm8 (#DE for 0); flags of AL as a logical result. */
const aam: Helper = (cpu, insn) => {
  const base = insn.ops[0].imm & 0xff;
  if (base === 0) throw new CpuException(Vec.DE);
  const al = cpu.s[0] & 0xff;
  const r = (Math.floor(al / base) << 8) | al % base;
  cpu.s[0] = (cpu.s[0] & ~0xffff) | r;
  setLazy(cpu, CcOp.LOGIC, 1, r & 0xff, 0, 0, 0);
};

/** AAD imm8: AL = AL + AH × imm8 (8 bits), AH = 0; the flags are those of that 8-bit addition. */
const aad: Helper = (cpu, insn) => {
  const base = insn.ops[0].imm & 0xff;
  const ax = cpu.s[0];
  const product = (((ax >>> 8) & 0xff) * base) & 0xff;
  const al = ((ax & 0xff) + product) & 0xff;
  cpu.s[0] = (ax & ~0xffff) | al;
  setLazy(cpu, CcOp.ADD, 1, al, 0, product, 0);
};

// ---- stack, bounds, privilege level ----

/**
 * PUSHA/PUSHAD: AX/EAX, CX, DX, BX, the stack pointer as it was, BP, SI, DI, each at the
 * operand size, on the stack of the current width. The stores go from the lowest slot up, so
 * a stack that runs into an unmapped page below faults before anything is written; the stack
 * pointer moves last.
 */
const pusha: Helper = (cpu, insn) => {
  const size = insn.opSize;
  const sp = stackPointer(cpu);
  for (let r = Reg.RDI; r >= Reg.RAX; r--) writeStack(cpu, sp - size * (r + 1), size, cpu.s[2 * r]);
  setStackPointer(cpu, wrapSp(cpu, sp - 8 * size));
};

/** Values POPA has read, DI first, so that every read happens before a register changes. */
const popped = new Int32Array(8);

/** POPA/POPAD: the reverse of PUSHA, except that the stack pointer's slot is skipped. */
const popa: Helper = (cpu, insn) => {
  const size = insn.opSize;
  const sp = stackPointer(cpu);
  for (let i = 0; i < 8; i++) popped[i] = readStack(cpu, sp + size * i, size);
  for (let r = Reg.RAX; r <= Reg.RDI; r++) if (r !== Reg.RSP) writeGpr(cpu, r, size, false, popped[7 - r]);
  setStackPointer(cpu, wrapSp(cpu, sp + 8 * size));
};

/** A signed 16- or 32-bit value at linear address `at`. */
function readSigned(cpu: Cpu, at: number, size: number): number {
  return size === 2 ? (cpu.mem.read16(at) << 16) >> 16 : cpu.mem.read32(at) | 0;
}

/** BOUND r, m: #BR unless lower ≤ r ≤ upper, all signed at the operand size (both bounds are read first). */
const bound: Helper = (cpu, insn) => {
  const size = insn.opSize;
  const a = effAddr(cpu, insn);
  const lower = readSigned(cpu, a, size);
  const upper = readSigned(cpu, (a + size) % TWO32, size);
  const index = size === 2 ? (readOp(cpu, insn, 0) << 16) >> 16 : readOp(cpu, insn, 0);
  if (index < lower || index > upper) throw new CpuException(Vec.BR);
};

/**
 * ARPL r/m16, r16: raise the destination selector's RPL to the source's (ZF = 1) or leave it
 * (ZF = 0). Like hardware's read-modify-write it writes a memory destination back either way,
 * so a read-only destination faults whatever the RPLs are. Not recognised in real mode.
 */
const arpl: Helper = (cpu, insn) => {
  if (!protectedMode(cpu)) throw new CpuException(Vec.UD);
  const a = insn.ops[0].kind === OpKind.Mem ? effAddr(cpu, insn) : 0;
  const dst = readOp(cpu, insn, 0);
  const rpl = readOp(cpu, insn, 1) & 3;
  const raise = (dst & 3) < rpl;
  writeOpAt(cpu, insn, a, 0, raise ? (dst & ~3) | rpl : dst);
  setZf(cpu, raise);
};

function setZf(cpu: Cpu, on: boolean): void {
  setOszapc(cpu, (oszapc(cpu) & ~F.ZF) | (on ? F.ZF : 0));
}

// ---- descriptor queries ----

/** Bit sets of the system-descriptor types LAR and LSL accept (APM Vol 3 LAR, LSL). */
const LAR_TYPES_LEGACY = (1 << 0x1) | (1 << 0x2) | (1 << 0x3) | (1 << 0x4) | (1 << 0x5) | (1 << 0x9) | (1 << 0xb) | (1 << 0xc);
const LAR_TYPES_LONG = (1 << 0x2) | (1 << 0x9) | (1 << 0xb) | (1 << 0xc);
const LSL_TYPES_LEGACY = (1 << 0x1) | (1 << 0x2) | (1 << 0x3) | (1 << 0x9) | (1 << 0xb);
const LSL_TYPES_LONG = (1 << 0x2) | (1 << 0x9) | (1 << 0xb);

/** The limit of the table selector `sel` indexes (GDT, or LDT by TI), or -1 when TI names a null LDT. */
function tableLimit(cpu: Cpu, sel: number): number {
  if (!(sel & 4)) return cpu.s[S.GDTR_LIMIT] & 0xffff;
  const ldt = segAt(SegReg.LDTR);
  return (cpu.s[ldt + SegField.SEL] & 0xfffc) === 0 ? -1 : cpu.s[ldt + SegField.LIMIT] >>> 0;
}

/**
 * Read the descriptor of `sel` into `desc` for a query that reports failure in ZF instead of
 * faulting: its linear address, or -1 for a null selector or one beyond its table's limit.
 * Only the memory reads themselves can fault.
 */
function readForQuery(cpu: Cpu, sel: number): number {
  if ((sel & 0xfffc) === 0 || (sel & 0xfff8) + 7 > tableLimit(cpu, sel)) return -1;
  return readDescriptor(cpu, sel);
}

/** DPL ≥ CPL and DPL ≥ RPL: the descriptor is visible at the current privilege through this selector. */
function visible(cpu: Cpu, sel: number, attr: number): boolean {
  const dpl = (attr >> Attr.DPL_SHIFT) & 3;
  return dpl >= cpl(cpu) && dpl >= (sel & 3);
}

function isConformingCode(attr: number): boolean {
  return (attr & (Attr.TYPE_CODE | Attr.TYPE_DC)) === (Attr.TYPE_CODE | Attr.TYPE_DC);
}

/**
 * The LAR/LSL checks: code and data descriptors (conforming code at any privilege), or a
 * system descriptor of a type in `legacyTypes` / `longTypes`; in long mode a system descriptor
 * is 16 bytes, and its upper half must fit the table and have a zero type field.
 */
function loadable(cpu: Cpu, sel: number, legacyTypes: number, longTypes: number): boolean {
  const at = readForQuery(cpu, sel);
  if (at < 0) return false;
  const attr = descAttr();
  if (attr & Attr.S) return isConformingCode(attr) || visible(cpu, sel, attr);
  const long = inLongMode(cpu);
  if (!(((long ? longTypes : legacyTypes) >>> (attr & 0xf)) & 1)) return false;
  // Bits 12:8 of dword 3 sit where a type would be, so a legacy descriptor is never taken for a 16-byte one.
  if (long && ((sel & 0xfff8) + 15 > tableLimit(cpu, sel) || (cpu.mem.read32(at + 12) >>> 8) & 0x1f)) return false;
  return visible(cpu, sel, attr);
}

/** The selector operand of a descriptor query (only in protected mode: #UD in real mode). */
function selectorOf(cpu: Cpu, insn: Insn, i: number): number {
  needProtected(cpu);
  return readOp(cpu, insn, i) & 0xffff;
}

/** LAR: the descriptor's dword 1 masked with FF00h (16-bit operand) or 00FF_FF00h, zero-extended. */
const lar: Helper = (cpu, insn) => {
  const ok = loadable(cpu, selectorOf(cpu, insn, 1), LAR_TYPES_LEGACY, LAR_TYPES_LONG);
  if (ok) writeOp(cpu, insn, 0, desc[1] & (insn.opSize === 2 ? 0xff00 : 0x00ffff00), 0);
  setZf(cpu, ok);
};

/** LSL: the limit in bytes (expanded by G), truncated to a 16-bit operand, zero-extended otherwise. */
const lsl: Helper = (cpu, insn) => {
  const ok = loadable(cpu, selectorOf(cpu, insn, 1), LSL_TYPES_LEGACY, LSL_TYPES_LONG);
  if (ok) writeOp(cpu, insn, 0, descLimit() | 0, 0);
  setZf(cpu, ok);
};

/**
 * VERR/VERW: could a data-segment register load and a read (write) use this selector now?
 * Only code and data descriptors qualify; VERR needs data or readable code (conforming
 * readable code at any privilege), VERW writable data. The present bit is not checked.
 */
function verify(write: boolean): Helper {
  return (cpu, insn) => {
    const sel = selectorOf(cpu, insn, 0);
    let ok = readForQuery(cpu, sel) >= 0;
    if (ok) {
      const attr = descAttr();
      const code = (attr & Attr.TYPE_CODE) !== 0;
      if (!(attr & Attr.S)) ok = false;
      else if (write) ok = !code && (attr & Attr.TYPE_RW) !== 0 && visible(cpu, sel, attr);
      else if (code && !(attr & Attr.TYPE_RW)) ok = false;
      else ok = isConformingCode(attr) || visible(cpu, sel, attr);
    }
    setZf(cpu, ok);
  };
}

// ---- fast system calls (AMD: legacy mode only) ----

/** Flat 4 GiB segments SYSENTER and SYSEXIT load without reading the GDT (VMCB attribute packing). */
const CODE32_DPL0 = 0xc9b;
const DATA32_DPL0 = 0xc93;
const CODE32_DPL3 = 0xcfb;
const DATA32_DPL3 = 0xcf3;

/** The SYSENTER/SYSEXIT checks shared by both (APM Vol 3): the kernel code selector, RPL cleared. */
function sysenterCs(cpu: Cpu): number {
  if (inLongMode(cpu)) throw new CpuException(Vec.UD);
  if (!protectedMode(cpu)) gp0();
  const cs = cpu.s[S.SYSENTER_CS] & 0xfffc;
  if (cs === 0) gp0();
  return cs;
}

/** SYSENTER: CPL 0 at SYSENTER_CS:SYSENTER_EIP on SYSENTER_CS + 8:SYSENTER_ESP, with VM, IF and RF cleared. */
const sysenter: Helper = (cpu) => {
  const cs = sysenterCs(cpu);
  const s = cpu.s;
  setRflags(cpu, getRflags(cpu) & ~(F.IF | VM | RF));
  setSegCache(cpu, SegReg.CS, cs, CODE32_DPL0, 0xffffffff, 0);
  setSegCache(cpu, SegReg.SS, cs + 8, DATA32_DPL0, 0xffffffff, 0);
  s[S.CPL] = 0;
  s[2 * Reg.RSP] = s[S.SYSENTER_ESP_LO];
  s[2 * Reg.RSP + 1] = 0;
  cpu.st.rip = s[S.SYSENTER_EIP_LO] >>> 0;
  sys(cpu).systemChanged(cpu, true);
};

/** SYSEXIT (CPL 0 only): CPL 3 at SYSENTER_CS + 16:EDX on SYSENTER_CS + 24:ECX; the flags stay. */
const sysexit: Helper = (cpu) => {
  const cs = sysenterCs(cpu);
  if (cpl(cpu) !== 0) gp0();
  const s = cpu.s;
  setSegCache(cpu, SegReg.CS, (cs + 16) | 3, CODE32_DPL3, 0xffffffff, 0);
  setSegCache(cpu, SegReg.SS, (cs + 24) | 3, DATA32_DPL3, 0xffffffff, 0);
  s[S.CPL] = 3;
  s[2 * Reg.RSP] = s[2 * Reg.RCX];
  s[2 * Reg.RSP + 1] = 0;
  cpu.st.rip = s[2 * Reg.RDX] >>> 0;
  sys(cpu).systemChanged(cpu, true);
};

// ---- performance counters ----

const CR4_PCE = 0x100;
/** PerfCtr0, the first of the four legacy counters RDPMC's ECX 0-3 select (APM Vol 2 §13.2). */
const PERF_CTR0 = (Msr.PERF_CTL_FIRST + 4) | 0;

/**
 * RDPMC: outside CPL 0 only with CR4.PCE; EDX:EAX = the 48-bit counter, as RDMSR of its MSR
 * reads it. In an SVM guest both #GP checks come before the intercept (spec/svm.md §6.9).
 */
const rdpmc: Helper = (cpu, insn) => {
  const s = cpu.s;
  if (cpl(cpu) !== 0 && !(s[S.CR4] & CR4_PCE)) gp0();
  const n = s[2 * Reg.RCX] >>> 0;
  if (n > 3) gp0();
  interceptInsn(cpu, ExitCode.RDPMC, insn);
  const lo = sys(cpu).readMsr(cpu, PERF_CTR0 + n);
  writeGpr(cpu, Reg.RAX, 4, false, lo);
  writeGpr(cpu, Reg.RDX, 4, false, cpu.hi & 0xffff);
};

export const LEGACY_HELPERS: Record<string, Helper> = {
  daa: decimalAdjust(1), das: decimalAdjust(-1), aaa: asciiAdjust(1), aas: asciiAdjust(-1), aam, aad,
  pusha, popa, bound, arpl,
  lar, lsl, verr: verify(false), verw: verify(true),
  sysenter, sysexit, rdpmc,
};
