/**
 * Event delivery for the bare-metal machine: exceptions, software interrupts and external
 * interrupts through the real-mode IVT or the protected/long-mode IDT, with the privilege
 * switch (TSS stacks, IST), the frame each mode pushes, and the rules that turn a fault during
 * delivery into a double fault and a fault during that into a shutdown.
 *
 * Delivery reads and writes guest memory through the normal (paged) accessors at the new
 * privilege level, so a fault while pushing the frame is itself a fault of the delivery — the
 * caller (Machine) applies the double-fault rules by calling deliver() again.
 */
import type { Cpu } from '../cpu/cpu.js';
import { CpuException, Vec } from '../cpu/exceptions.js';
import { getRflags, setRflags } from '../cpu/flags.js';
import { F, S, SegReg, SegField } from '../cpu/state.js';
import { Attr, cpl, desc, descAttr, inLongMode, loadCodeSegment, protectedMode, readDescriptor, segAt, segBaseOf, setSegCache } from './segments.js';

/** RFLAGS bits beyond the F enum. */
export const RF = 1 << 16;
export const NT = 1 << 14;
export const VM = 1 << 17;
export const IOPL_SHIFT = 12;

export const enum EventKind {
  /** A fault or trap raised by an instruction (or by delivery itself). */
  EXCEPTION,
  /** INT n: gate DPL is checked against CPL; RIP points after the instruction. */
  SOFTWARE,
  /** INT3 and INTO: like INT n for the gate, but the event is an exception (#BP, #OF). */
  SOFT_EXCEPTION,
  /** INT1 (ICEBP): like an exception for the DPL rule, pushed RIP after the instruction. */
  ICEBP,
  /** An interrupt from the APIC/PIC, or NMI. */
  EXTERNAL,
}

/** Vectors whose exceptions push an error code. */
export function hasErrorCode(vector: number): boolean {
  return vector === Vec.DF || vector === Vec.TS || vector === Vec.NP || vector === Vec.SS || vector === Vec.GP || vector === Vec.PF || vector === Vec.AC || vector === 21;
}

/** A linear address from a lo/hi pair in the state. */
function pair(s: Int32Array, lo: number): number {
  return s[lo + 1] * 4294967296 + (s[lo] >>> 0);
}

/**
 * Deliver event `vector` now: RIP in the state is the address to push (the faulting
 * instruction for faults, the next one for traps and software interrupts).
 * errorCode < 0 = none pushed. External events and exceptions set the EXT bit of error codes
 * this delivery raises. pushRf: the event is a fault (other than an instruction breakpoint).
 */
export function deliver(cpu: Cpu, vector: number, errorCode: number, kind: EventKind, pushRf = false): void {
  if (!protectedMode(cpu)) return deliverReal(cpu, vector);
  const ext = kind === EventKind.EXTERNAL || kind === EventKind.EXCEPTION ? 1 : 0;
  const idtErr = vector * 8 + 2 + ext;
  const s = cpu.s;
  const long = inLongMode(cpu);
  const gateSize = long ? 16 : 8;
  const idtBase = pair(s, S.IDTR_BASE_LO);
  if (vector * gateSize + gateSize - 1 > (s[S.IDTR_LIMIT] & 0xffff)) throw new CpuException(Vec.GP, idtErr);
  const gateAt = idtBase + vector * gateSize;
  const lo = cpu.mem.read32(gateAt);
  const hi = cpu.mem.read32(gateAt + 4);
  const type = (hi >>> 8) & 0x1f;
  const gateDpl = (hi >>> 13) & 3;
  const present = (hi & 0x8000) !== 0;
  // 64-bit interrupt/trap gates in long mode; 32- or 16-bit ones in legacy mode (task gates are not supported).
  const interruptGate = (type & 7) === 6;
  const valid = long ? type === 0xe || type === 0xf : type === 0xe || type === 0xf || type === 0x6 || type === 0x7;
  if (!valid) throw new CpuException(Vec.GP, idtErr);
  if ((kind === EventKind.SOFTWARE || kind === EventKind.SOFT_EXCEPTION) && gateDpl < cpl(cpu)) throw new CpuException(Vec.GP, vector * 8 + 2);
  if (!present) throw new CpuException(Vec.NP, idtErr);
  const sel = lo >>> 16;
  let offset = ((lo & 0xffff) | (hi & 0xffff0000)) >>> 0;
  if (long) offset += cpu.mem.read32(gateAt + 8) * 4294967296;
  else if (!(type & 8)) offset &= 0xffff;
  const ist = long ? cpu.mem.read32(gateAt + 4) & 7 : 0;

  // Target code segment: its DPL is the new CPL (conforming segments keep the current one).
  if ((sel & 0xfffc) === 0) throw new CpuException(Vec.GP, ext);
  readDescriptor(cpu, sel);
  const csAttr = descAttr();
  if (!(csAttr & Attr.S) || !(csAttr & Attr.TYPE_CODE)) throw new CpuException(Vec.GP, (sel & 0xfffc) + ext);
  const oldCpl = cpl(cpu);
  const newCpl = csAttr & Attr.TYPE_DC ? oldCpl : (csAttr >> Attr.DPL_SHIFT) & 3;
  if (newCpl > oldCpl) throw new CpuException(Vec.GP, (sel & 0xfffc) + ext);
  if (!(csAttr & Attr.P)) throw new CpuException(Vec.NP, (sel & 0xfffc) + ext);
  if (long && (!(csAttr & Attr.L) || csAttr & Attr.DB)) throw new CpuException(Vec.GP, (sel & 0xfffc) + ext);

  // A fault's frame has RF set, so that IRET back to the instruction skips its instruction
  // breakpoint, which was already checked (spec/svm.md §6.8 rule 2).
  const flags = getRflags(cpu) | (pushRf ? RF : 0);
  const oldCs = s[segAt(SegReg.CS) + SegField.SEL];
  const oldSs = s[segAt(SegReg.SS) + SegField.SEL];
  const oldRsp = cpu.st.reg(4);
  const rip = cpu.st.rip;
  const push = errorCode >= 0;

  if (long) {
    let rsp: number;
    let newSs = oldSs;
    if (ist) rsp = tssRead64(cpu, 0x24 + 8 * (ist - 1));
    else if (newCpl < oldCpl) rsp = tssRead64(cpu, 4 + 8 * newCpl);
    else rsp = oldRsp;
    if (newCpl < oldCpl) newSs = newCpl; // a null selector with RPL = new CPL
    rsp = Math.floor(rsp / 16) * 16;
    // The frame is written before any register changes: a fault here leaves the old state.
    const frame = [oldSs, oldRsp, flags, oldCs, rip];
    if (push) frame.push(errorCode);
    const savedCpl = s[S.CPL];
    s[S.CPL] = newCpl; // pushes are supervisor accesses when going to ring 0
    try {
      for (let i = 0; i < frame.length; i++) write64(cpu, rsp - 8 * (i + 1), frame[i]);
    } catch (e) {
      s[S.CPL] = savedCpl;
      throw e;
    }
    loadCodeSegment(cpu, sel, newCpl);
    if (newCpl < oldCpl) setSegCache(cpu, SegReg.SS, newSs, 0, 0, 0);
    cpu.st.setReg(4, rsp - 8 * frame.length);
  } else {
    const size = type & 8 ? 4 : 2;
    let esp = oldRsp % 4294967296;
    let ssBase = segBaseOf(cpu, SegReg.SS);
    const frame: number[] = [];
    let newSsSel = -1;
    if (newCpl < oldCpl) {
      // Inner stack from the 32-bit TSS: ESPn at 4 + 8n, SSn at 8 + 8n.
      const trBase = segBaseOf(cpu, SegReg.TR);
      esp = cpu.mem.read32(trBase + 4 + 8 * newCpl) >>> 0;
      newSsSel = cpu.mem.read16(trBase + 8 + 8 * newCpl);
      readDescriptor(cpu, newSsSel, Vec.TS);
      ssBase = (((desc[0] >>> 16) | ((desc[1] & 0xff) << 16) | (desc[1] & 0xff000000)) >>> 0);
      frame.push(oldSs, oldRsp % 4294967296);
    }
    frame.push(flags, oldCs, rip % 4294967296);
    if (push) frame.push(errorCode);
    const mask = size === 4 ? 4294967296 : 65536;
    for (let i = 0; i < frame.length; i++) {
      const at = ssBase + (((esp - size * (i + 1)) % 4294967296) + 4294967296) % 4294967296;
      if (size === 4) cpu.mem.write32(at % 4294967296, frame[i] % mask);
      else cpu.mem.write16(at % 4294967296, frame[i] % mask);
    }
    if (newSsSel >= 0) {
      const attr = descAttr();
      setSegCache(cpu, SegReg.SS, newSsSel, attr, 0xffffffff, ssBase);
    }
    loadCodeSegment(cpu, sel, newCpl);
    const nesp = esp - size * frame.length;
    s[2 * 4] = nesp | 0;
    s[2 * 4 + 1] = 0;
  }
  s[S.RIP_LO] = offset | 0;
  s[S.RIP_HI] = Math.floor(offset / 4294967296) | 0;
  let nf = flags & ~(F.TF | NT | RF | VM);
  if (interruptGate) nf &= ~F.IF;
  setRflags(cpu, nf);
}

function write64(cpu: Cpu, at: number, v: number): void {
  cpu.mem.write64(at, v | 0, Math.floor(v / 4294967296) | 0);
}

/** A 64-bit field of the long-mode TSS. */
function tssRead64(cpu: Cpu, offset: number): number {
  const tr = segAt(SegReg.TR);
  if ((cpu.s[tr + SegField.LIMIT] >>> 0) < offset + 7) throw new CpuException(Vec.TS, cpu.s[tr + SegField.SEL] & 0xfffc);
  const base = segBaseOf(cpu, SegReg.TR);
  const lo = cpu.mem.read32(base + offset);
  return cpu.mem.read32(base + offset + 4) * 4294967296 + (lo >>> 0);
}

/** Real mode: the 4-byte IVT entry, a 16-bit frame of FLAGS, CS, IP. */
function deliverReal(cpu: Cpu, vector: number): void {
  const s = cpu.s;
  const base = pair(s, S.IDTR_BASE_LO);
  if (vector * 4 + 3 > (s[S.IDTR_LIMIT] & 0xffff)) throw new CpuException(Vec.GP, 0);
  const ip = cpu.mem.read16(base + vector * 4);
  const cs = cpu.mem.read16(base + vector * 4 + 2);
  const flags = getRflags(cpu);
  const ssBase = segBaseOf(cpu, SegReg.SS);
  let sp = s[8] & 0xffff;
  for (const v of [flags, s[segAt(SegReg.CS) + SegField.SEL], s[S.RIP_LO]]) {
    sp = (sp - 2) & 0xffff;
    cpu.mem.write16(ssBase + sp, v & 0xffff);
  }
  s[8] = (s[8] & ~0xffff) | sp;
  loadCodeSegment(cpu, cs, 0);
  s[S.RIP_LO] = ip;
  s[S.RIP_HI] = 0;
  setRflags(cpu, flags & ~(F.IF | F.TF | F.AC | RF));
}

/**
 * Exception classes for the double-fault rules (SDM Vol 3 Table 6-5): benign, contributory
 * (#DE #TS #NP #SS #GP) and page faults.
 */
export function faultClass(vector: number): 'benign' | 'contributory' | 'pf' | 'df' {
  if (vector === Vec.DF) return 'df';
  if (vector === Vec.PF) return 'pf';
  if (vector === Vec.DE || vector === Vec.TS || vector === Vec.NP || vector === Vec.SS || vector === Vec.GP) return 'contributory';
  return 'benign';
}

/** Does a second exception `second` while delivering `first` become a double fault? */
export function isDoubleFault(first: number, second: number): boolean {
  const a = faultClass(first);
  const b = faultClass(second);
  if (a === 'contributory') return b === 'contributory';
  if (a === 'pf') return b === 'contributory' || b === 'pf';
  return false;
}
