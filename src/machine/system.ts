/**
 * System instructions of the bare-metal machine, as interpreter helpers (the lifter ends the
 * block after each so the runtime sees mode, paging and interrupt-flag changes at once).
 *
 * They are registered with every other helper, so they also exist in user mode, where CPL is 3
 * and every privileged one raises #GP(0) before touching anything — which is what a Linux
 * process sees too. Helpers of control transfers set RIP themselves (RESUME contract, see
 * ir/ops.ts); the others leave RIP at the instruction and the lifter's RESUME continues at
 * insn.next through `next()`.
 */
import type { Cpu } from '../cpu/cpu.js';
import { is64BitCode, stackBytes } from '../cpu/cpu.js';
import { CpuException, RepPause, Vec } from '../cpu/exceptions.js';
import { getRflags, setRflags } from '../cpu/flags.js';
import { effAddr, readOp, writeOp } from '../cpu/operands.js';
import { F, S, SegField, SegReg } from '../cpu/state.js';
import { type Insn, OpKind, Seg } from '../frontend/insn.js';
import { addToReg, REP_STEPS_PER_CALL, stringLinear, stringPtr } from '../cpu/helpers/int.js';
import type { Helper } from '../cpu/helpers/index.js';
import { deliver, EventKind, IOPL_SHIFT, NT, RF, VM } from './interrupts.js';
import { interceptInsn, VmExit } from '../svm/intercept.js';
import { ExitCode } from '../svm/vmcb.js';
import {
  Attr, checkCodeSegment, checkDataSegment, desc, descAttr, CR4_VALID, readDescriptor,
  CR0_ET, CR0_PE, CR0_PG, CR0_TS, CR0_WP, CR0_NW, CR0_CD, EFER_LMA, EFER_LME, cpl, codeDpl, inLongMode, loadCodeSegment, loadDataSegment,
  loadSystemSegment, nullInaccessibleSegments, protectedMode, segAt, segBaseOf, setSegCache,
} from './segments.js';

const TWO32 = 4294967296;
const RSP = 4;
const DR7_GD = 1 << 13;
const DR6_BD = 1 << 13;

export function gp0(): never {
  throw new CpuException(Vec.GP, 0);
}

/** Privileged instructions: #GP(0) unless CPL is 0 (real mode counts as CPL 0). */
function requireCpl0(cpu: Cpu): void {
  if (cpu.s[S.CPL] !== 0) gp0();
}

function iopl(cpu: Cpu): number {
  return (cpu.s[S.FLAGS] >>> IOPL_SHIFT) & 3;
}

export function sys(cpu: Cpu) {
  if (!cpu.sys) gp0();
  return cpu.sys;
}


/** Continue after the instruction (the lifter's RESUME does not advance RIP by itself). */
function next(cpu: Cpu, insn: Insn): void {
  cpu.st.rip = insn.next;
}


// ---- the stack, at the current stack width ----

/** The linear address of stack offset sp (SS-relative outside 64-bit mode). */
function stackLinear(cpu: Cpu, sp: number): number {
  if (is64BitCode(cpu.mode)) return sp;
  return (segBaseOf(cpu, SegReg.SS) + sp) % TWO32;
}

export function stackPointer(cpu: Cpu): number {
  const w = stackBytes(cpu.mode);
  return w === 8 ? cpu.st.reg(RSP) : w === 4 ? cpu.s[8] >>> 0 : cpu.s[8] & 0xffff;
}

export function setStackPointer(cpu: Cpu, v: number): void {
  const w = stackBytes(cpu.mode);
  if (w === 8) cpu.st.setReg(RSP, v);
  else if (w === 4) (cpu.s[8] = v | 0), (cpu.s[9] = 0);
  else cpu.s[8] = (cpu.s[8] & ~0xffff) | (v & 0xffff);
}

/** Wrap a stack offset to the stack width. */
export function wrapSp(cpu: Cpu, v: number): number {
  const w = stackBytes(cpu.mode);
  if (w === 8) return v;
  const m = w === 4 ? TWO32 : 65536;
  return ((v % m) + m) % m;
}

/** Read `size` bytes at stack offset sp. */
export function readStack(cpu: Cpu, sp: number, size: number): number {
  const a = stackLinear(cpu, wrapSp(cpu, sp));
  if (size === 2) return cpu.mem.read16(a);
  if (size === 4) return cpu.mem.read32(a) >>> 0;
  const lo = cpu.mem.read64(a);
  return cpu.mem.hi * TWO32 + (lo >>> 0);
}

export function writeStack(cpu: Cpu, sp: number, size: number, v: number): void {
  const a = stackLinear(cpu, wrapSp(cpu, sp));
  if (size === 2) cpu.mem.write16(a, v & 0xffff);
  else if (size === 4) cpu.mem.write32(a, v | 0);
  else cpu.mem.write64(a, v | 0, Math.floor(v / TWO32) | 0);
}

/** Push values (in order) as one unit: all writes happen before the stack pointer moves. */
function pushAll(cpu: Cpu, size: number, values: number[]): void {
  const sp = stackPointer(cpu);
  for (let i = 0; i < values.length; i++) writeStack(cpu, sp - size * (i + 1), size, values[i]);
  setStackPointer(cpu, wrapSp(cpu, sp - size * values.length));
}

// ---- control registers ----


function readCr(cpu: Cpu, n: number): [number, number] {
  const s = cpu.s;
  switch (n) {
    case 0: return [s[S.CR0], 0];
    case 2: return [s[S.CR2_LO], s[S.CR2_HI]];
    case 3: return [s[S.CR3_LO], s[S.CR3_HI]];
    case 4: return [s[S.CR4], 0];
    case 8: return [sys(cpu).readCr8(cpu) & 15, 0];
  }
  throw new CpuException(Vec.UD);
}

function writeCr(cpu: Cpu, n: number, lo: number, hi: number): void {
  const s = cpu.s;
  const long = inLongMode(cpu);
  switch (n) {
    case 0: {
      if (hi !== 0 && long) gp0();
      // PG without PE, and NW without CD, are invalid combinations.
      if (lo & CR0_PG && !(lo & CR0_PE)) gp0();
      if (lo & CR0_NW && !(lo & CR0_CD)) gp0();
      const old = s[S.CR0];
      let efer = s[S.EFER];
      if (lo & CR0_PG && !(old & CR0_PG) && efer & EFER_LME) {
        // Activating long mode needs PAE and must not happen from a 64-bit code segment.
        if (!(s[S.CR4] & 0x20)) gp0();
        efer |= EFER_LMA;
      }
      if (!(lo & CR0_PG) && old & CR0_PG && long) {
        if (is64BitCode(cpu.mode)) gp0(); // cannot leave long mode from 64-bit code
        efer &= ~EFER_LMA;
      }
      s[S.CR0] = lo | CR0_ET;
      s[S.EFER] = efer;
      if (!(lo & CR0_PE)) s[S.CPL] = 0;
      sys(cpu).systemChanged(cpu, ((old ^ lo) & (CR0_PG | CR0_WP | CR0_PE)) !== 0);
      return;
    }
    case 2:
      s[S.CR2_LO] = lo;
      s[S.CR2_HI] = hi;
      return;
    case 3:
      if (long && hi & 0xffff0000) gp0(); // bits at and above MAXPHYADDR (48) are reserved
      s[S.CR3_LO] = lo;
      s[S.CR3_HI] = long ? hi : 0;
      sys(cpu).systemChanged(cpu, true);
      return;
    case 4: {
      if (hi !== 0 || lo & ~CR4_VALID) gp0();
      if (long && !(lo & 0x20)) gp0(); // PAE cannot be cleared in long mode
      s[S.CR4] = lo;
      sys(cpu).systemChanged(cpu, true);
      return;
    }
    case 8:
      if (hi !== 0 || lo & ~15) gp0();
      sys(cpu).writeCr8(cpu, lo);
      return;
  }
  throw new CpuException(Vec.UD);
}

/** MOV to/from CRn and DRn (register operand always; 64-bit in 64-bit mode, else 32-bit). */
const movSystem: Helper = (cpu, insn) => {
  const [dst, src] = insn.ops;
  if (dst.kind === OpKind.Seg || src.kind === OpKind.Seg) return movSeg(cpu, insn);
  requireCpl0(cpu);
  if ((src.kind === OpKind.Dr || dst.kind === OpKind.Dr) && cpu.s[S.DR7] & DR7_GD) {
    // General detect: any debug-register access is a #DB fault; the CPU reports DR6.BD and
    // clears GD so the handler itself may use the debug registers (SDM Vol 3 §17.2.4).
    cpu.s[S.DR6] |= DR6_BD;
    cpu.s[S.DR7] &= ~DR7_GD;
    throw new CpuException(Vec.DB);
  }
  const wide = is64BitCode(cpu.mode);
  if (cpu.svm?.guest) interceptCrDr(cpu, insn, src, dst, wide);
  if (src.kind === OpKind.Cr) {
    const [lo, hi] = readCr(cpu, src.reg);
    writeGprFull(cpu, dst.reg, lo, wide ? hi : 0);
  } else if (dst.kind === OpKind.Cr) {
    const lo = cpu.s[2 * src.reg];
    writeCr(cpu, dst.reg, lo, wide ? cpu.s[2 * src.reg + 1] : 0);
  } else if (src.kind === OpKind.Dr) {
    const [lo, hi] = readDr(cpu, src.reg);
    writeGprFull(cpu, dst.reg, lo, wide ? hi : 0);
  } else {
    writeDr(cpu, dst.reg, cpu.s[2 * src.reg], wide ? cpu.s[2 * src.reg + 1] : 0);
  }
  next(cpu, insn);
};

/**
 * MOV CR/DR intercepts (§3.3 words 0-1, §6.9): after the CPL and general-detect checks, before
 * the value is checked. A CR0 write not caught by the unconditional intercept may still be by
 * the selective one when it changes bits other than TS and MP.
 */
function interceptCrDr(cpu: Cpu, insn: Insn, src: { kind: OpKind; reg: number }, dst: { kind: OpKind; reg: number }, wide: boolean): void {
  if (src.kind === OpKind.Cr) return interceptInsn(cpu, ExitCode.READ_CR0 + src.reg, insn);
  // DR4/DR5 under CR4.DE (#UD) and a DR6/DR7 write with bits 63:32 set (#GP) beat the intercept (§6.9).
  const dr = src.kind === OpKind.Dr ? src.reg : dst.kind === OpKind.Dr ? dst.reg : -1;
  if ((dr === 4 || dr === 5) && cpu.s[S.CR4] & 8) throw new CpuException(Vec.UD);
  if (dst.kind === OpKind.Dr && dr >= 6 && wide && cpu.s[2 * src.reg + 1] !== 0) gp0();
  if (src.kind === OpKind.Dr) return interceptInsn(cpu, ExitCode.READ_DR0 + src.reg, insn);
  if (dst.kind === OpKind.Dr) return interceptInsn(cpu, ExitCode.WRITE_DR0 + dst.reg, insn);
  interceptInsn(cpu, ExitCode.WRITE_CR0 + dst.reg, insn);
  if (dst.reg === 0) {
    const value = cpu.s[2 * src.reg];
    void wide;
    if ((value ^ cpu.s[S.CR0]) & ~(CR0_TS | 2)) interceptInsn(cpu, ExitCode.CR0_SEL_WRITE, insn);
  }
}

function writeGprFull(cpu: Cpu, r: number, lo: number, hi: number): void {
  cpu.s[2 * r] = lo;
  cpu.s[2 * r + 1] = hi;
}

function readDr(cpu: Cpu, n: number): [number, number] {
  const s = cpu.s;
  if (n < 4) return [s[S.DR0 + 2 * n], s[S.DR0 + 2 * n + 1]];
  // DR4/DR5 alias DR6/DR7 unless CR4.DE.
  if ((n === 4 || n === 5) && s[S.CR4] & 8) throw new CpuException(Vec.UD);
  if (n === 6 || n === 4) return [s[S.DR6] | 0xffff0ff0, 0];
  if (n === 7 || n === 5) return [s[S.DR7] | 0x400, 0];
  throw new CpuException(Vec.UD);
}

function writeDr(cpu: Cpu, n: number, lo: number, hi: number): void {
  const s = cpu.s;
  if (n < 4) {
    s[S.DR0 + 2 * n] = lo;
    s[S.DR0 + 2 * n + 1] = hi;
    return;
  }
  if ((n === 4 || n === 5) && s[S.CR4] & 8) throw new CpuException(Vec.UD);
  if (hi !== 0) gp0(); // the upper half of DR6/DR7 is reserved (must be zero)
  if (n === 6 || n === 4) s[S.DR6] = (lo & 0x0000e00f) | 0xffff0ff0;
  else if (n === 7 || n === 5) s[S.DR7] = (lo & 0xffff2bff) | 0x400;
  else throw new CpuException(Vec.UD);
}

// ---- descriptor tables ----

/** LGDT/LIDT: limit then base (24 bits with a 16-bit operand outside 64-bit mode, 64 in 64-bit mode). */
function loadTableRegister(baseLo: number, limitSlot: number, exitCode: number): Helper {
  return (cpu, insn) => {
    requireCpl0(cpu);
    interceptInsn(cpu, exitCode, insn);
    const a = effAddr(cpu, insn);
    const limit = cpu.mem.read16(a);
    let lo = cpu.mem.read32(a + 2);
    let hi = 0;
    if (is64BitCode(cpu.mode)) hi = cpu.mem.read32(a + 6);
    else if (insn.opSize === 2) lo &= 0xffffff;
    cpu.s[baseLo] = lo;
    cpu.s[baseLo + 1] = hi;
    cpu.s[limitSlot] = limit;
    next(cpu, insn);
  };
}

function storeTableRegister(baseLo: number, limitSlot: number, exitCode: number): Helper {
  return (cpu, insn) => {
    if (cpu.s[S.CR4] & 0x800 && cpl(cpu) > 0) gp0(); // UMIP
    interceptInsn(cpu, exitCode, insn);
    const a = effAddr(cpu, insn);
    cpu.mem.write16(a, cpu.s[limitSlot]);
    if (is64BitCode(cpu.mode)) cpu.mem.write64(a + 2, cpu.s[baseLo], cpu.s[baseLo + 1]);
    else cpu.mem.write32(a + 2, cpu.s[baseLo]);
    next(cpu, insn);
  };
}

function selectorOperand(cpu: Cpu, insn: Insn): number {
  return readOp(cpu, insn, 0) & 0xffff;
}

export /** SLDT/STR/LLDT/LTR (and LAR & co.) exist only in protected mode, not in real or virtual-8086 mode. */
function needProtected(cpu: Cpu): void {
  if (!protectedMode(cpu) || cpu.s[S.FLAGS] & VM) throw new CpuException(Vec.UD);
}

const lldt: Helper = (cpu, insn) => {
  needProtected(cpu);
  requireCpl0(cpu);
  interceptInsn(cpu, ExitCode.LDTR_WRITE, insn);
  loadSystemSegment(cpu, SegReg.LDTR, selectorOperand(cpu, insn));
  next(cpu, insn);
};

const ltr: Helper = (cpu, insn) => {
  needProtected(cpu);
  requireCpl0(cpu);
  interceptInsn(cpu, ExitCode.TR_WRITE, insn);
  const sel = selectorOperand(cpu, insn);
  if ((sel & 0xfffc) === 0) gp0();
  loadSystemSegment(cpu, SegReg.TR, sel);
  next(cpu, insn);
};

function storeSelector(seg: SegReg, exitCode: number): Helper {
  return (cpu, insn) => {
    needProtected(cpu);
    if (cpu.s[S.CR4] & 0x800 && cpl(cpu) > 0) gp0();
    interceptInsn(cpu, exitCode, insn);
    const v = cpu.s[segAt(seg) + SegField.SEL] & 0xffff;
    // A register destination gets the selector zero-extended; memory gets 16 bits.
    writeOp(cpu, insn, 0, v, 0);
    next(cpu, insn);
  };
}

const smsw: Helper = (cpu, insn) => {
  if (cpu.s[S.CR4] & 0x800 && cpl(cpu) > 0) gp0();
  interceptInsn(cpu, ExitCode.READ_CR0, insn);
  writeOp(cpu, insn, 0, insn.ops[0].kind === OpKind.Mem ? cpu.s[S.CR0] & 0xffff : cpu.s[S.CR0], 0);
  next(cpu, insn);
};

/** LMSW: loads PE, MP, EM, TS only, and cannot clear PE. */
const lmsw: Helper = (cpu, insn) => {
  requireCpl0(cpu);
  interceptInsn(cpu, ExitCode.WRITE_CR0, insn);
  interceptInsn(cpu, ExitCode.CR0_SEL_WRITE, insn); // LMSW always counts as a selective CR0 write
  const v = readOp(cpu, insn, 0) & 0xf;
  const old = cpu.s[S.CR0];
  writeCr(cpu, 0, (old & ~0xe) | v | (old & CR0_PE), 0);
  next(cpu, insn);
};

const clts: Helper = (cpu, insn) => {
  requireCpl0(cpu);
  interceptInsn(cpu, ExitCode.WRITE_CR0, insn);
  cpu.s[S.CR0] &= ~CR0_TS;
  next(cpu, insn);
};

const invlpg: Helper = (cpu, insn) => {
  requireCpl0(cpu);
  interceptInsn(cpu, ExitCode.INVLPG, insn);
  sys(cpu).invalidatePage(cpu, effAddr(cpu, insn));
  next(cpu, insn);
};

const cacheControl: Helper = (cpu, insn) => {
  requireCpl0(cpu);
  interceptInsn(cpu, insn.mnem === 'invd' ? ExitCode.INVD : ExitCode.WBINVD, insn);
  next(cpu, insn);
};

// ---- segment registers and far transfers ----

function movSeg(cpu: Cpu, insn: Insn): void {
  const [dst, src] = insn.ops;
  if (src.kind === OpKind.Seg) {
    writeOp(cpu, insn, 0, cpu.s[segAt(src.reg) + SegField.SEL] & 0xffff, 0);
  } else {
    loadDataSegment(cpu, dst.reg, readOp(cpu, insn, 1));
    if (dst.reg === SegReg.SS) {
      sys(cpu).systemChanged(cpu, false);
      sys(cpu).interruptShadow(cpu);
    }
  }
  next(cpu, insn);
}

const pushSeg: Helper = (cpu, insn) => {
  const size = insn.opSize;
  pushAll(cpu, size, [cpu.s[segAt(insn.ops[0].reg) + SegField.SEL] & 0xffff]);
  next(cpu, insn);
};

const popSeg: Helper = (cpu, insn) => {
  const size = insn.opSize;
  const sp = stackPointer(cpu);
  const v = readStack(cpu, sp, size) & 0xffff;
  const seg = insn.ops[0].reg;
  loadDataSegment(cpu, seg, v);
  setStackPointer(cpu, wrapSp(cpu, sp + size));
  if (seg === SegReg.SS) {
    sys(cpu).systemChanged(cpu, false);
    sys(cpu).interruptShadow(cpu);
  }
  next(cpu, insn);
};

/** LSS/LFS/LGS/LES/LDS: a far pointer m16:16/32/64 into a segment register and a general register. */
function loadFarPointer(seg: SegReg): Helper {
  return (cpu, insn) => {
    const a = effAddr(cpu, insn);
    // m16:16 or m16:32 as the operand says (AMD: no m16:64); a 64-bit register gets it zero-extended.
    const size = insn.ops[1].size - 2;
    const lo = size === 2 ? cpu.mem.read16(a) : cpu.mem.read32(a);
    const hi = 0;
    const sel = cpu.mem.read16(a + size);
    if (cpu.machine) {
      loadDataSegment(cpu, seg, sel);
      if (seg === SegReg.SS) {
        sys(cpu).systemChanged(cpu, false);
        sys(cpu).interruptShadow(cpu);
      }
    } else gp0();
    const r = insn.ops[0].reg;
    if (insn.opSize === 2) cpu.s[2 * r] = (cpu.s[2 * r] & ~0xffff) | (lo & 0xffff);
    else writeGprFull(cpu, r, lo, hi);
    next(cpu, insn);
  };
}

/** The far pointer operand: [offset, selector]. */
function farPointer(cpu: Cpu, insn: Insn): [number, number] {
  const op = insn.ops[0];
  if (op.kind === OpKind.Imm) return [op.imm >>> 0, op.immHi & 0xffff];
  // m16:16 or m16:32 (AMD: REX.W does not make an m16:64): the operand size says which.
  const a = effAddr(cpu, insn);
  const size = op.size - 2;
  const off = size === 2 ? cpu.mem.read16(a) : cpu.mem.read32(a) >>> 0;
  return [off, cpu.mem.read16(a + size)];
}

/** Far JMP/CALL to a code segment at the same privilege (call gates and task switches are not supported: #GP). */
function farTransfer(call: boolean): Helper {
  return (cpu, insn) => {
    const [offset, sel] = farPointer(cpu, insn);
    const size = insn.opSize;
    const oldCs = cpu.s[segAt(SegReg.CS) + SegField.SEL] & 0xffff;
    if (protectedMode(cpu) && inLongMode(cpu) && (sel & 0xfffc) !== 0) {
      readDescriptor(cpu, sel);
      if (!(descAttr() & Attr.S)) return callGate(cpu, insn, sel, call, oldCs);
    }
    if (protectedMode(cpu)) {
      const dpl = codeDpl(cpu, sel);
      if (dpl !== cpl(cpu) && (sel & 3) > cpl(cpu)) throw new CpuException(Vec.GP, sel & 0xfffc);
    }
    if (call) {
      const sp = stackPointer(cpu);
      writeStack(cpu, sp - size, size, oldCs);
      writeStack(cpu, sp - 2 * size, size, insn.next);
      loadCodeSegment(cpu, sel, cpl(cpu));
      setStackPointer(cpu, wrapSp(cpu, sp - 2 * size));
    } else loadCodeSegment(cpu, sel, cpl(cpu));
    cpu.st.rip = size === 2 ? offset & 0xffff : offset;
    sys(cpu).systemChanged(cpu, false);
  };
}

/**
 * A far CALL or JMP through a 64-bit call gate (long mode, type 0xC; APM Vol 2 §4.11.3): the
 * gate's DPL must admit max(CPL, RPL); its target must be a present 64-bit code segment with
 * DPL <= CPL. A CALL to a more privileged non-conforming segment switches to the TSS stack of
 * the new level (SS becomes a null selector of that level) and pushes the old SS:RSP before the
 * return CS:RIP, 8 bytes each; a JMP never changes privilege. Everything is checked and the new
 * stack written before any register changes.
 */
function callGate(cpu: Cpu, insn: Insn, sel: number, call: boolean, oldCs: number): void {
  const at = readDescriptor(cpu, sel);
  const attr = descAttr();
  const gateDpl = (attr >> Attr.DPL_SHIFT) & 3;
  const level = cpl(cpu);
  if ((attr & 0xf) !== 0xc) throw new CpuException(Vec.GP, sel & 0xfffc);
  if (gateDpl < level || gateDpl < (sel & 3)) throw new CpuException(Vec.GP, sel & 0xfffc);
  if (!(attr & Attr.P)) throw new CpuException(Vec.NP, sel & 0xfffc);
  // The upper half of a 16-byte system descriptor must have type 0 (not another descriptor).
  const high = cpu.mem.read32(at + 8);
  if ((cpu.mem.read32(at + 12) >>> 8) & 0x1f) throw new CpuException(Vec.GP, sel & 0xfffc);
  const target = (desc[0] >>> 16) & 0xffff;
  const offset = high * TWO32 + ((((desc[1] >>> 16) << 16) | (desc[0] & 0xffff)) >>> 0);
  if ((target & 0xfffc) === 0) throw new CpuException(Vec.GP, 0);
  readDescriptor(cpu, target);
  const cs = descAttr();
  const csDpl = (cs >> Attr.DPL_SHIFT) & 3;
  const conforming = (cs & Attr.TYPE_DC) !== 0;
  if (!(cs & Attr.S) || !(cs & Attr.TYPE_CODE) || !(cs & Attr.L) || cs & Attr.DB || csDpl > level) throw new CpuException(Vec.GP, target & 0xfffc);
  if (!call && !conforming && csDpl !== level) throw new CpuException(Vec.GP, target & 0xfffc);
  if (!(cs & Attr.P)) throw new CpuException(Vec.NP, target & 0xfffc);
  const newCpl = conforming ? level : csDpl;
  if (call) {
    const oldRsp = cpu.st.reg(RSP);
    const oldSs = cpu.s[segAt(SegReg.SS) + SegField.SEL] & 0xffff;
    const inner = newCpl < level;
    let rsp = oldRsp;
    if (inner) {
      const tr = segBaseOf(cpu, SegReg.TR);
      rsp = cpu.mem.read32(tr + 8 + 8 * newCpl) * TWO32 + (cpu.mem.read32(tr + 4 + 8 * newCpl) >>> 0);
    }
    const frame = inner ? [oldSs, oldRsp, oldCs, insn.next] : [oldCs, insn.next];
    for (let i = 0; i < frame.length; i++) cpu.mem.write64(rsp - 8 * (i + 1), frame[i] | 0, Math.floor(frame[i] / TWO32) | 0);
    loadCodeSegment(cpu, target, newCpl);
    if (inner) setSegCache(cpu, SegReg.SS, newCpl, 0, 0, 0);
    cpu.st.setReg(RSP, rsp - 8 * frame.length);
  } else loadCodeSegment(cpu, target, newCpl);
  cpu.st.rip = offset;
  sys(cpu).systemChanged(cpu, true);
}

/** RETF [imm16]: same privilege, or to an outer level (then SS:rSP are popped too). */
const retf: Helper = (cpu, insn) => {
  const size = insn.opSize;
  const imm = insn.ops.length ? insn.ops[0].imm & 0xffff : 0;
  const sp = stackPointer(cpu);
  const offset = readStack(cpu, sp, size);
  const sel = readStack(cpu, sp + size, size) & 0xffff;
  const newCpl = protectedMode(cpu) ? sel & 3 : 0;
  if (newCpl < cpl(cpu)) throw new CpuException(Vec.GP, sel & 0xfffc);
  if (newCpl > cpl(cpu)) {
    const nsp = readStack(cpu, sp + 2 * size + imm, size);
    const nss = readStack(cpu, sp + 3 * size + imm, size) & 0xffff;
    checkReturnSegments(cpu, sel, nss, newCpl);
    loadCodeSegment(cpu, sel, newCpl);
    loadDataSegment(cpu, SegReg.SS, nss, newCpl, (descAttrOf(cpu, SegReg.CS) & Attr.L) !== 0);
    sys(cpu).systemChanged(cpu, true);
    setStackPointer(cpu, wrapSp(cpu, nsp + imm));
    nullInaccessibleSegments(cpu);
  } else {
    loadCodeSegment(cpu, sel, newCpl);
    setStackPointer(cpu, wrapSp(cpu, sp + 2 * size + imm));
  }
  cpu.st.rip = offset;
  sys(cpu).systemChanged(cpu, false);
};

/**
 * IRET/RETF to CS:`sel` and SS:`ss` at `newCpl`: every check (CS, then SS, whose RPL must equal
 * the new CPL) happens before anything is loaded, so a fault leaves the old state whole.
 */
function checkReturnSegments(cpu: Cpu, sel: number, ss: number, newCpl: number): void {
  checkCodeSegment(cpu, sel, newCpl);
  const long64 = inLongMode(cpu) && (descAttr() & Attr.L) !== 0;
  checkDataSegment(cpu, SegReg.SS, ss, newCpl, long64);
}

function descAttrOf(cpu: Cpu, seg: SegReg): number {
  return cpu.s[segAt(seg) + SegField.ATTR];
}

/** RFLAGS bits IRET/POPF may change at this privilege (IOPL only at CPL 0, IF only when CPL <= IOPL). */
function changeableFlags(cpu: Cpu, size: number): number {
  let m = F.OSZAPC | F.TF | F.DF | F.AC | F.ID | NT | RF;
  if (cpl(cpu) === 0) m |= 3 << IOPL_SHIFT;
  if (cpl(cpu) <= iopl(cpu)) m |= F.IF;
  return size === 2 ? m & 0xffff : m;
}

const iret: Helper = (cpu, insn) => {
  interceptInsn(cpu, ExitCode.IRET, insn); // before any IRET fault (§6.1 step 5)
  const size = insn.opSize;
  const sp = stackPointer(cpu);
  const rip = readStack(cpu, sp, size);
  const sel = readStack(cpu, sp + size, size) & 0xffff;
  const flags = readStack(cpu, sp + 2 * size, size);
  if (!protectedMode(cpu)) {
    loadCodeSegment(cpu, sel, 0);
    setStackPointer(cpu, wrapSp(cpu, sp + 3 * size));
    setRflags(cpu, (getRflags(cpu) & ~changeableFlags(cpu, size)) | (flags & changeableFlags(cpu, size)));
    cpu.st.rip = rip;
    sys(cpu).systemChanged(cpu, false);
    sys(cpu).iretExecuted(cpu);
    return;
  }
  if (cpu.s[S.FLAGS] & NT) gp0(); // task return: not supported (no task switching)
  const newCpl = sel & 3;
  if (newCpl < cpl(cpu)) throw new CpuException(Vec.GP, sel & 0xfffc);
  // 64-bit IRET always pops SS:RSP; legacy IRET only when returning to an outer level.
  const popStack = size === 8 || is64BitCode(cpu.mode) || newCpl > cpl(cpu);
  const mask = changeableFlags(cpu, size);
  const nf = (getRflags(cpu) & ~mask) | (flags & mask);
  if (popStack) {
    const nsp = readStack(cpu, sp + 3 * size, size);
    const nss = readStack(cpu, sp + 4 * size, size) & 0xffff;
    checkReturnSegments(cpu, sel, nss, newCpl);
    loadCodeSegment(cpu, sel, newCpl);
    loadDataSegment(cpu, SegReg.SS, nss, newCpl, (descAttrOf(cpu, SegReg.CS) & Attr.L) !== 0);
    sys(cpu).systemChanged(cpu, true);
    setStackPointer(cpu, nsp);
    if (newCpl > 0) nullInaccessibleSegments(cpu);
  } else {
    loadCodeSegment(cpu, sel, newCpl);
    setStackPointer(cpu, wrapSp(cpu, sp + 3 * size));
  }
  setRflags(cpu, nf & ~VM);
  cpu.st.rip = size === 2 ? rip & 0xffff : rip;
  sys(cpu).systemChanged(cpu, false);
  sys(cpu).iretExecuted(cpu);
};

// ---- interrupts and flags ----

/** Raise a software interrupt: delivered by the machine with RIP after the instruction. */
/**
 * A trap-like event raised by an instruction (INT n, INT3, INTO, INT1): the machine delivers
 * it with the return address after the instruction, which the exception carries because the
 * execution modes reset RIP to the instruction on every exception.
 */
export class SoftwareInterrupt extends CpuException {
  constructor(
    vector: number,
    readonly kind: EventKind,
    readonly nextRip: number,
  ) {
    super(vector);
  }

  /** INT3, INTO and ICEBP raise exceptions (#BP, #OF, #DB), which exception intercepts catch; INT n does not. */
  get isException(): boolean {
    return this.kind !== EventKind.SOFTWARE;
  }
}

const intN: Helper = (cpu, insn) => {
  interceptInsn(cpu, ExitCode.SWINT, insn);
  throw new SoftwareInterrupt(insn.ops[0].imm & 0xff, EventKind.SOFTWARE, insn.next);
};
const int3: Helper = (cpu, insn) => {
  throw new SoftwareInterrupt(Vec.BP, EventKind.SOFT_EXCEPTION, insn.next);
};
const int1: Helper = (cpu, insn) => {
  interceptInsn(cpu, ExitCode.ICEBP, insn);
  throw new SoftwareInterrupt(Vec.DB, EventKind.ICEBP, insn.next);
};
const into: Helper = (cpu, insn) => {
  if (getRflags(cpu) & F.OF) throw new SoftwareInterrupt(Vec.OF, EventKind.SOFT_EXCEPTION, insn.next);
  next(cpu, insn);
};

/** CLI/STI: need CPL <= IOPL (no virtual-interrupt extensions). STI blocks interrupts for one more instruction. */
const cli: Helper = (cpu, insn) => {
  if (protectedMode(cpu) && cpl(cpu) > iopl(cpu)) gp0();
  cpu.s[S.FLAGS] &= ~F.IF;
  next(cpu, insn);
};
const sti: Helper = (cpu, insn) => {
  if (protectedMode(cpu) && cpl(cpu) > iopl(cpu)) gp0();
  if (!(cpu.s[S.FLAGS] & F.IF)) sys(cpu).interruptShadow(cpu);
  cpu.s[S.FLAGS] |= F.IF;
  next(cpu, insn);
};

const hlt: Helper = (cpu, insn) => {
  requireCpl0(cpu);
  interceptInsn(cpu, ExitCode.HLT, insn);
  next(cpu, insn);
  sys(cpu).halt(cpu);
};

/** PUSHF/POPF at the current width and privilege (RF and VM read as zero). */
const pushf: Helper = (cpu, insn) => {
  interceptInsn(cpu, ExitCode.PUSHF, insn);
  const size = insn.opSize;
  pushAll(cpu, size, [getRflags(cpu) & ~(RF | VM)]);
  next(cpu, insn);
};
const popf: Helper = (cpu, insn) => {
  interceptInsn(cpu, ExitCode.POPF, insn);
  const size = insn.opSize;
  const sp = stackPointer(cpu);
  const v = readStack(cpu, sp, size);
  const mask = changeableFlags(cpu, size) & ~RF;
  setRflags(cpu, (getRflags(cpu) & ~mask) | (v & mask));
  setStackPointer(cpu, wrapSp(cpu, sp + size));
  next(cpu, insn);
};

// ---- I/O ----

/**
 * IN/OUT/INS/OUTS permission: free when CPL <= IOPL, else every bit of the ports accessed must
 * be clear in the TSS I/O permission bitmap (whose offset is the word at TSS+0x66); a bit
 * beyond the TSS limit counts as set.
 */
function checkIo(cpu: Cpu, port: number, size: number): void {
  if (!protectedMode(cpu) || cpl(cpu) <= iopl(cpu)) return;
  const tr = segAt(SegReg.TR);
  const limit = cpu.s[tr + SegField.LIMIT] >>> 0;
  const base = segBaseOf(cpu, SegReg.TR);
  if (limit < 0x67) gp0();
  const map = cpu.mem.read16(base + 0x66);
  const byte = map + (port >>> 3);
  if (byte + 1 > limit) gp0();
  // Two bytes, since the ports of one access may straddle a byte of the bitmap.
  const bits = cpu.mem.read16(base + byte);
  if ((bits >>> (port & 7)) & ((1 << size) - 1)) gp0();
}

function portOf(cpu: Cpu, insn: Insn, i: number): number {
  const op = insn.ops[i];
  return op.kind === OpKind.Imm ? op.imm & 0xff : cpu.s[2 * 2] & 0xffff;
}

const inPort: Helper = (cpu, insn) => {
  const size = insn.ops[0].size as 1 | 2 | 4;
  const port = portOf(cpu, insn, 1);
  checkIo(cpu, port, size);
  interceptIo(cpu, insn, port, size, true);
  const v = sys(cpu).portIn(port, size);
  if (size === 4) (cpu.s[0] = v), (cpu.s[1] = 0);
  else if (size === 2) cpu.s[0] = (cpu.s[0] & ~0xffff) | (v & 0xffff);
  else cpu.s[0] = (cpu.s[0] & ~0xff) | (v & 0xff);
  next(cpu, insn);
};

const outPort: Helper = (cpu, insn) => {
  const size = insn.ops[1].size as 1 | 2 | 4;
  const port = portOf(cpu, insn, 0);
  checkIo(cpu, port, size);
  interceptIo(cpu, insn, port, size, false);
  const v = size === 4 ? cpu.s[0] : cpu.s[0] & (size === 2 ? 0xffff : 0xff);
  sys(cpu).portOut(port, size, v);
  next(cpu, insn);
};

// ---- MSRs, SYSCALL/SYSRET, SWAPGS ----

/**
 * INS/OUTS with REP: port DX, memory at ES:rDI (INS) or seg:rSI (OUTS, overridable), rCX
 * counting, DF choosing the direction. Each element completes (pointer and count updated)
 * before the next starts, so a fault part-way leaves a restartable state as hardware does.
 */
function stringIo(input: boolean): Helper {
  return (cpu, insn) => {
    const size = (input ? insn.ops[0].size : insn.ops[1].size) as 1 | 2 | 4;
    const port = cpu.s[2 * 2] & 0xffff;
    checkIo(cpu, port, size);
    interceptIo(cpu, insn, port, size, input);
    const as = insn.addrSize;
    const step = cpu.s[S.FLAGS] & F.DF ? -size : size;
    let remaining = insn.rep ? stringPtr(cpu, 1, as === 8 ? 4 : as) + (as === 8 ? cpu.s[3] * TWO32 : 0) : 1;
    const dstSeg = is64BitCode(cpu.mode) ? Seg.NONE : Seg.ES;
    for (let steps = 0; remaining > 0; steps++) {
      if (steps === REP_STEPS_PER_CALL) throw new RepPause(); // see stringOp: a huge count pauses
      if (input) {
        const at = stringLinear(cpu, insn, dstSeg, stringPtr(cpu, 7, as));
        cpu.mem.translate(at, 2, size); // the store must be possible before the port is read
        const v = sys(cpu).portIn(port, size);
        if (size === 1) cpu.mem.write8(at, v);
        else if (size === 2) cpu.mem.write16(at, v);
        else cpu.mem.write32(at, v);
        addToReg(cpu, 7, step, as);
      } else {
        const at = stringLinear(cpu, insn, insn.seg, stringPtr(cpu, 6, as));
        const v = size === 1 ? cpu.mem.read8(at) : size === 2 ? cpu.mem.read16(at) : cpu.mem.read32(at);
        sys(cpu).portOut(port, size, v);
        addToReg(cpu, 6, step, as);
      }
      remaining--;
      if (insn.rep) addToReg(cpu, 1, -1, as);
    }
    next(cpu, insn);
  };
}

/** RSM outside SMM (svmjit has no SMM): #UD, after its intercept (§6.1 step 5, KUT `rsm`). */
const rsm: Helper = (cpu, insn) => {
  interceptInsn(cpu, ExitCode.RSM, insn);
  throw new CpuException(Vec.UD);
};

/** IOIO through the IOPM, with EXITINFO1 as spec §4.3 packs it and EXITINFO2 = the next RIP. */
function interceptIo(cpu: Cpu, insn: Insn, port: number, size: number, input: boolean): void {
  const svm = cpu.svm;
  if (!svm?.guest || !svm.ioIntercepted(port, size)) return;
  const str = insn.mnem === 'ins' || insn.mnem === 'outs';
  const info1 = (port << 16) | (input ? 1 : 0) | (str ? 4 : 0) | (insn.rep ? 8 : 0) | (size << 4) | (insn.addrSize << 6);
  throw new VmExit(ExitCode.IOIO, info1 >>> 0, insn.next, insn.next);
}

/** RDMSR/WRMSR through the MSRPM: EXITINFO1 = 0 for a read, 1 for a write. */
function interceptMsr(cpu: Cpu, insn: Insn, write: boolean): void {
  const svm = cpu.svm;
  if (svm?.guest && svm.msrIntercepted(cpu.s[2], write)) throw new VmExit(ExitCode.MSR, write ? 1 : 0, 0, insn.next);
}

const rdmsr: Helper = (cpu, insn) => {
  requireCpl0(cpu);
  interceptMsr(cpu, insn, false);
  const lo = sys(cpu).readMsr(cpu, cpu.s[2]);
  cpu.s[0] = lo;
  cpu.s[1] = 0;
  cpu.s[4] = cpu.hi;
  cpu.s[5] = 0;
  next(cpu, insn);
};

const wrmsr: Helper = (cpu, insn) => {
  requireCpl0(cpu);
  interceptMsr(cpu, insn, true);
  sys(cpu).writeMsr(cpu, cpu.s[2], cpu.s[0], cpu.s[4]);
  next(cpu, insn);
};

/** SYSCALL (long mode): RCX = next RIP, R11 = RFLAGS, CS/SS from STAR, RIP from LSTAR (CSTAR in compatibility mode), RFLAGS &= ~SFMASK. */
const syscall: Helper = (cpu, insn) => {
  const s = cpu.s;
  if (!(s[S.EFER] & 1)) throw new CpuException(Vec.UD);
  const sel = s[S.STAR_HI] & 0xffff;
  const flags = getRflags(cpu);
  if (inLongMode(cpu)) {
    cpu.st.setReg(1, insn.next);
    cpu.st.setReg(11, flags & ~RF);
    const target = is64BitCode(cpu.mode) ? s[S.LSTAR_HI] * TWO32 + (s[S.LSTAR_LO] >>> 0) : s[S.CSTAR_HI] * TWO32 + (s[S.CSTAR_LO] >>> 0);
    setSegCache(cpu, SegReg.CS, sel & 0xfffc, 0x29b /* 64-bit code, DPL 0, present, accessed */ | 0x200, 0xffffffff, 0);
    setSegCache(cpu, SegReg.SS, (sel + 8) & 0xfffc, 0x493 /* data RW, DPL 0, present, D/B */, 0xffffffff, 0);
    s[S.CPL] = 0;
    setRflags(cpu, flags & ~s[S.SFMASK] & ~RF);
    cpu.st.rip = target;
  } else {
    // Legacy mode: EIP from STAR[31:0], IF, VM and RF cleared.
    cpu.st.setReg(1, insn.next % TWO32);
    setSegCache(cpu, SegReg.CS, sel & 0xfffc, 0xc9b, 0xffffffff, 0);
    setSegCache(cpu, SegReg.SS, (sel + 8) & 0xfffc, 0xc93, 0xffffffff, 0);
    s[S.CPL] = 0;
    setRflags(cpu, flags & ~(F.IF | VM | RF));
    cpu.st.rip = s[S.STAR_LO] >>> 0;
  }
  sys(cpu).systemChanged(cpu, true);
};

/** SYSRET: back to CPL 3 with CS/SS from STAR[63:48] (+16 for 64-bit CS, +8 for SS). */
const sysret: Helper = (cpu, insn) => {
  const s = cpu.s;
  if (!(s[S.EFER] & 1)) throw new CpuException(Vec.UD);
  if (!protectedMode(cpu) || cpl(cpu) !== 0) gp0();
  const base = (s[S.STAR_HI] >>> 16) & 0xffff;
  const to64 = insn.opSize === 8;
  const rip = to64 ? cpu.st.reg(1) : s[2] >>> 0;
  if (to64 && (rip >= 2 ** 47 || rip < -(2 ** 47))) gp0(); // non-canonical RCX: #GP in ring 0 (AMD)
  if (to64) setSegCache(cpu, SegReg.CS, (base + 16) | 3, 0x2fb, 0xffffffff, 0);
  else setSegCache(cpu, SegReg.CS, base | 3, 0xcfb, 0xffffffff, 0);
  // SS keeps its old attributes on AMD except DPL 3; we load a flat writable data segment.
  setSegCache(cpu, SegReg.SS, (base + 8) | 3, 0xcf3, 0xffffffff, 0);
  s[S.CPL] = 3;
  if (inLongMode(cpu)) setRflags(cpu, (cpu.st.reg(11) & 0x3c7fd7) | 2);
  else s[S.FLAGS] |= F.IF;
  cpu.st.rip = rip;
  sys(cpu).systemChanged(cpu, true);
};

const swapgs: Helper = (cpu, insn) => {
  requireCpl0(cpu);
  const s = cpu.s;
  const gs = segAt(SegReg.GS);
  const lo = s[gs + SegField.BASE_LO], hi = s[gs + SegField.BASE_HI];
  s[gs + SegField.BASE_LO] = s[S.KGS_BASE_LO];
  s[gs + SegField.BASE_HI] = s[S.KGS_BASE_HI];
  s[S.KGS_BASE_LO] = lo;
  s[S.KGS_BASE_HI] = hi;
  next(cpu, insn);
};

/** PAUSE: a helper only in guest mode, where it may be intercepted (the lifter lowers it to nothing elsewhere). */
const pause: Helper = (cpu, insn) => {
  interceptInsn(cpu, ExitCode.PAUSE, insn);
};

/** Helpers by mnemonic (see the opcode table); mov/push/pop route here only for segment/system operands. */
export const SYSTEM_HELPERS: Record<string, Helper> = {
  lgdt: loadTableRegister(S.GDTR_BASE_LO, S.GDTR_LIMIT, ExitCode.GDTR_WRITE),
  lidt: loadTableRegister(S.IDTR_BASE_LO, S.IDTR_LIMIT, ExitCode.IDTR_WRITE),
  sgdt: storeTableRegister(S.GDTR_BASE_LO, S.GDTR_LIMIT, ExitCode.GDTR_READ),
  sidt: storeTableRegister(S.IDTR_BASE_LO, S.IDTR_LIMIT, ExitCode.IDTR_READ),
  lldt, ltr, sldt: storeSelector(SegReg.LDTR, ExitCode.LDTR_READ), str: storeSelector(SegReg.TR, ExitCode.TR_READ),
  smsw, lmsw, clts, invlpg, wbinvd: cacheControl, invd: cacheControl,
  jmpf: farTransfer(false), callf: farTransfer(true), retf, iret,
  int: intN, int3, int1, into, cli, sti, hlt,
  in: inPort, out: outPort, rdmsr, wrmsr, syscall, sysret, swapgs,
  movcr: movSystem, movdr: movSystem, pause, rsm, ins: stringIo(true), outs: stringIo(false),
  lss: loadFarPointer(SegReg.SS), lfs: loadFarPointer(SegReg.FS), lgs: loadFarPointer(SegReg.GS),
  les: loadFarPointer(SegReg.ES), lds: loadFarPointer(SegReg.DS),
};

/** The machine-mode forms of helpers that user mode also has (chosen at run time by cpu.machine). */
export const MACHINE_FORMS: Record<string, Helper> = {
  mov: movSystem, push: pushSeg, pop: popSeg, pushf, popf,
};
