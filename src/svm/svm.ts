/**
 * AMD SVM for one virtual CPU, as spec/svm.md describes it (KVM's nested SVM is the model):
 * GIF, VMRUN with its checks in the spec's order and its consistency checks (a failure is
 * #VMEXIT(VMEXIT_INVALID) decided before any L2 state is loaded), the world switch of #VMEXIT,
 * VMLOAD/VMSAVE, the intercept bit tests (instructions, exceptions, IOPM, MSRPM), EVENTINJ and
 * the EXITINTINFO bookkeeping.
 *
 * The VMCB lives in L1-physical memory and is read and written there by declared offsets
 * (vmcb.ts). L1's state is saved here, not in the host save area page (which L1 may not
 * inspect: spec §2.4). The intercept words are cached at VMRUN; instruction helpers test them
 * through `intercepted` (intercept.ts) and throw VmExit; the machine calls `vmexit`.
 */
import type { Cpu, SvmHooks } from '../cpu/cpu.js';
import { CpuException, Vec } from '../cpu/exceptions.js';
import { getRflags, setRflags } from '../cpu/flags.js';
import { S, SegField, SegReg } from '../cpu/state.js';
import type { MachineMemory } from '../machine/mmu.js';
import { CR0_PE, CR0_PG, CR4_VALID, EFER_LMA, EFER_LME, EFER_SVME, segAt, setSegCache } from '../machine/segments.js';
import { EventInj, ExitCode, INJECTABLE_EXCEPTIONS, IntCtl, Vmcb, VmcbSeg } from './vmcb.js';
import { loadPdptes } from '../machine/paging.js';
import type { MsrFile } from '../machine/msr.js';
import { MiscCtl, nestedPagingConsistent, type NestedPagingSetup } from './npt.js';

const TWO32 = 4294967296;
const MAXPHYADDR = 48;
const RF = 1 << 16;
const TF = 1 << 8;

/** The saved-by-VMRUN host state (§5.2 step 9): the state-buffer slots it covers. */
const HOST_SLOTS: number[] = (() => {
  const slots: number[] = [];
  for (const seg of [SegReg.ES, SegReg.CS, SegReg.SS, SegReg.DS]) for (let i = 0; i < 6; i++) slots.push(segAt(seg) + i);
  slots.push(S.GDTR_BASE_LO, S.GDTR_BASE_HI, S.GDTR_LIMIT, S.IDTR_BASE_LO, S.IDTR_BASE_HI, S.IDTR_LIMIT);
  slots.push(S.EFER, S.CR0, S.CR3_LO, S.CR3_HI, S.CR4, S.CPL);
  slots.push(0, 1, 8, 9); // RAX, RSP
  return slots;
})();

/** The segments VMRUN and #VMEXIT switch (§5.2 step 11, §5.6) and where the VMCB holds them. */
const SWITCHED_SEGS = [SegReg.ES, SegReg.CS, SegReg.SS, SegReg.DS];
const SWITCHED_SEGS_AT = [Vmcb.ES, Vmcb.CS, Vmcb.SS, Vmcb.DS];
/** The segments VMLOAD and VMSAVE move (§5.7). */
const LOADED_SEGS = [SegReg.FS, SegReg.GS, SegReg.TR, SegReg.LDTR];
const LOADED_SEGS_AT = [Vmcb.FS, Vmcb.GS, Vmcb.TR, Vmcb.LDTR];

/** What the machine provides to the SVM runtime. */
export interface SvmMachine {
  mem: MachineMemory;
  /** A world switch replaced CR0/CR3/CR4/EFER/CS/SS: recompute the mode, switch TLB sets (mmu.ts). */
  systemChanged(): void;
  /** The interrupt shadow after VMRUN / at #VMEXIT. */
  setShadow(on: boolean): boolean;
  /** `-d svm` logging (null when off). */
  log: ((line: string) => void) | null;
  /** The CPU's MSRs (PAT is switched with nested paging, §7.6). */
  msrs: MsrFile;
}

export class Svm implements SvmHooks {
  guest = false;
  gif = true;
  hsavePa = 0;
  vmcr = 0;
  /** Physical address of vmcb12 while in guest mode. */
  vmcbPa = 0;
  /** Intercept words 0-5 cached at VMRUN. */
  readonly intercepts = new Int32Array(6);
  private iopm = 0;
  private msrpm = 0;
  private intCtl = 0;
  private intVector = 0;
  /** vmcb12 TSC_OFFSET, added to L2's TSC reads. */
  tscOffset = 0;
  /** L1's RFLAGS.IF at VMRUN (masks physical interrupts with V_INTR_MASKING). */
  hostIf = false;
  /** EVENTINJ to deliver before the first L2 instruction (0 = none), with its error code and NRIP. */
  injectEvent = 0;
  injectError = 0;
  injectNrip = 0;
  /**
   * An instruction intercept recorded by a helper whose block then ends (intercept.ts
   * recordInterceptAtEnd), for the machine to take: its exit code and NRIP. EXITINFO1/2 are 0.
   */
  exitRecorded = false;
  recordedExitCode = 0;
  recordedNrip = 0;
  /** The event being delivered into L2 (EXITINTINFO if an exit interrupts it), 0 = none. */
  deliveringEvent = 0;
  deliveringError = 0;
  private readonly hostSaved = new Int32Array(HOST_SLOTS.length);
  private readonly pdpteScratch = new Uint32Array(8);
  /** Whether nested paging is offered (CPUID NP); NP_ENABLE is ignored otherwise (§5.2 step 8). */
  npAvailable = true;
  /** Nested paging is on for the current guest (§7). */
  private np = false;
  /** L1's PAT while the guest runs on G_PAT (§7.6). */
  private hostPatLo = 0;
  private hostPatHi = 0;
  private hostRflags = 0;
  /** What setNestedPaging is given at VMRUN, reused. */
  private readonly npSetup: NestedPagingSetup = { nCr3: 0, cr0: 0, cr4: 0, efer: 0 };
  private hostRip = 0;
  /** A single-step trap owed to L1 after the #VMEXIT (host RFLAGS.TF at VMRUN). */
  hostTrap = false;
  /** VMRUNs, #VMEXITs by exit code, and the wall time spent switching worlds (both directions). */
  readonly stats = { vmruns: 0, vmexits: new Map<number, number>(), switchMs: 0 };
  /** Whether to time world switches into stats.switchMs (--stats): two clock reads per switch otherwise saved. */
  timeSwitches = false;

  constructor(
    readonly cpu: Cpu,
    readonly machine: SvmMachine,
  ) {}

  // ---- physical access to the VMCB, IOPM and MSRPM (L1-physical, no paging) ----

  /** RAM at [pa, pa+len), or #GP(0): what checks a VMCB page (4 KiB) before its fields are used. */
  private ram(pa: number, len: number): DataView {
    const mem = this.machine.mem;
    if (pa < 0 || pa + len > mem.ramEnd) throw new CpuException(Vec.GP, 0);
    return mem.dv;
  }
  // The field accessors below take an address in a 4 KiB page the caller checked with ram(),
  // so they check nothing themselves; writers leave code invalidation to notePageWritten.
  private r32(pa: number): number {
    return this.machine.mem.dv.getInt32(pa, true);
  }
  private r64(pa: number): number {
    const dv = this.machine.mem.dv;
    return dv.getInt32(pa + 4, true) * TWO32 + dv.getUint32(pa, true);
  }
  private w32(pa: number, v: number): void {
    this.machine.mem.dv.setInt32(pa, v | 0, true);
  }
  /** An unsigned 64-bit field as a double (exact below 2^53; enough for comparing addresses). */
  private ru64(pa: number): number {
    const dv = this.machine.mem.dv;
    return dv.getUint32(pa + 4, true) * TWO32 + dv.getUint32(pa, true);
  }
  /** Copy a lo/hi pair of the state into a 64-bit field, exactly. */
  private wPair(pa: number, lo: number, hi: number): void {
    const dv = this.machine.mem.dv;
    dv.setInt32(pa, lo, true);
    dv.setInt32(pa + 4, hi, true);
  }
  /** Copy a 64-bit field into a lo/hi pair of the state, exactly (sign-extended from bit 47 when `canonical`). */
  private rPair(pa: number, slot: number, canon = false): void {
    const dv = this.machine.mem.dv;
    const s = this.cpu.s;
    s[slot] = dv.getInt32(pa, true);
    s[slot + 1] = canon ? (dv.getInt32(pa + 4, true) << 16) >> 16 : dv.getInt32(pa + 4, true);
  }
  private w64(pa: number, v: number): void {
    const dv = this.machine.mem.dv;
    dv.setInt32(pa, v | 0, true);
    dv.setInt32(pa + 4, Math.floor(v / TWO32) | 0, true);
  }
  /**
   * After writing fields of the 4 KiB page at `pa` (a VMCB or VMSAVE area): translated code on
   * that page is invalidated — all of it, once, rather than the bytes of each field. Such pages
   * never hold code in practice, so a world switch pays one test here instead of one per field.
   */
  private notePageWritten(pa: number): void {
    const mem = this.machine.mem;
    if (mem.codeOnPage(Math.floor(pa / 4096))) mem.noteStore(pa, 4096);
  }

  // ---- intercept tests ----

  /** Is `exitCode` intercepted by vmcb12 (guest mode only)? Exit code 0 (READ_CR0) is a real code. */
  intercepted(exitCode: number): boolean {
    const w = this.intercepts;
    if (exitCode < 0x20) return ((w[0] >>> exitCode) & 1) !== 0; // CR reads 0x00-0x0F, writes 0x10-0x1F
    if (exitCode < 0x40) return ((w[1] >>> (exitCode - 0x20)) & 1) !== 0;
    if (exitCode < 0x60) return ((w[2] >>> (exitCode - 0x40)) & 1) !== 0;
    const k = exitCode - 0x60;
    if (k < 96) return ((w[3 + (k >> 5)] >>> (k & 31)) & 1) !== 0;
    return false;
  }

  /** IOIO through the IOPM (§3.7): any bit of port..port+size-1. */
  ioIntercepted(port: number, size: number): boolean {
    if (!this.intercepted(ExitCode.IOIO)) return false;
    const at = this.iopm + (port >>> 3);
    const bits = this.ram(at, 2).getUint16(at, true);
    return (bits & (((1 << size) - 1) << (port & 7))) !== 0;
  }

  /** RDMSR/WRMSR through the MSRPM (§3.8); MSRs outside its ranges always exit. */
  msrIntercepted(msr: number, write: boolean): boolean {
    if (!this.intercepted(ExitCode.MSR)) return false;
    const m = msr >>> 0;
    const ranges = [0, 0xc0000000, 0xc0010000];
    for (let r = 0; r < 3; r++) {
      const off = m - ranges[r];
      if (off < 0 || off >= 0x2000) continue;
      const bit = r * 0x800 * 8 + off * 2 + (write ? 1 : 0);
      const at = this.msrpm + (bit >>> 3);
      return ((this.ram(at, 1).getUint8(at) >>> (bit & 7)) & 1) !== 0;
    }
    return true;
  }

  recordExit(exitCode: number, nrip: number): void {
    this.exitRecorded = true;
    this.recordedExitCode = exitCode;
    this.recordedNrip = nrip;
  }

  // ---- VMRUN ----

  /**
   * VMRUN at `vmcbPa` from L1 (the caller made the §5.1 checks and the host-mode test); `next`
   * is the instruction after VMRUN. Returns normally in both outcomes — L2 entered, or
   * #VMEXIT(VMEXIT_INVALID) reported to L1 — and throws #GP(0) only for §5.2 steps 2 and 4.
   */
  vmrun(vmcbPa: number, next: number): void {
    if (!this.timeSwitches) return this.enter(vmcbPa, next);
    const t0 = performance.now();
    try {
      this.enter(vmcbPa, next);
    } finally {
      this.stats.switchMs += performance.now() - t0;
    }
  }

  private enter(vmcbPa: number, next: number): void {
    const cpu = this.cpu;
    const s = cpu.s;
    if (this.hsavePa === 0) throw new CpuException(Vec.GP, 0);
    this.ram(vmcbPa, 4096); // #GP(0) when the VMCB is not RAM
    this.stats.vmruns++;
    // Fields are read with r32/r64 at vmcbPa + offset: no closure or array is made per VMRUN.
    // Consistency checks (§5.3) on the VMCB as it is now, before anything changes.
    const ok = this.consistent(vmcbPa);
    this.machine.log?.(`svm: VMRUN vmcb 0x${vmcbPa.toString(16)}${ok ? ` rip 0x${this.r64(vmcbPa + Vmcb.RIP).toString(16)}` : ': consistency check failed, #VMEXIT(VMEXIT_INVALID)'}`);
    if (!ok) {
      this.w64(vmcbPa + Vmcb.EXITCODE, -1);
      this.w64(vmcbPa + Vmcb.EXITINFO1, 0);
      this.w64(vmcbPa + Vmcb.EXITINFO2, 0);
      this.w64(vmcbPa + Vmcb.EVENTINJ, 0);
      this.notePageWritten(vmcbPa);
      this.gif = false;
      this.count(ExitCode.INVALID);
      cpu.st.rip = next;
      setRflags(cpu, getRflags(cpu) & ~RF);
      return;
    }
    // Save the host state (§5.2 step 9).
    const saved = this.hostSaved;
    for (let i = 0; i < HOST_SLOTS.length; i++) saved[i] = s[HOST_SLOTS[i]];
    this.hostRflags = getRflags(cpu) & ~RF;
    this.hostRip = next;
    this.hostTrap = (this.hostRflags & TF) !== 0;
    this.hostIf = (this.hostRflags & (1 << 9)) !== 0;
    // Controls (§5.2 step 10).
    for (let i = 0; i < 6; i++) this.intercepts[i] = this.r32(vmcbPa + Vmcb.INTERCEPT_CR + 4 * i);
    this.iopm = Math.floor(this.ru64(vmcbPa + Vmcb.IOPM_BASE_PA) / 4096) * 4096;
    this.msrpm = Math.floor(this.ru64(vmcbPa + Vmcb.MSRPM_BASE_PA) / 4096) * 4096;
    this.intCtl = this.r32(vmcbPa + Vmcb.INT_CTL);
    this.intVector = this.r32(vmcbPa + Vmcb.INT_VECTOR) & 0xff;
    this.tscOffset = this.r64(vmcbPa + Vmcb.TSC_OFFSET);
    const inj = this.r32(vmcbPa + Vmcb.EVENTINJ);
    this.injectEvent = inj & EventInj.V ? inj : 0;
    this.injectError = this.r32(vmcbPa + Vmcb.EVENTINJ_ERR);
    this.injectNrip = this.r64(vmcbPa + Vmcb.NRIP);
    this.vmcbPa = vmcbPa;
    // TLB_CONTROL (§3.9, §5.2 step 13): any value but 0 flushes everything, L1's entries too
    // (allowed for every value); 0 leaves the guest's kept translations in place.
    if (this.machine.mem.dv.getUint8(vmcbPa + Vmcb.TLB_CONTROL) & 7) this.machine.mem.flushTlb();
    this.machine.mem.asid = this.r32(vmcbPa + Vmcb.GUEST_ASID); // nonzero by C13
    // Nested paging takes L1's paging mode as its format (§7.2): set up while L1's registers are live.
    this.np = (this.r32(vmcbPa + Vmcb.MISC_CTL) & MiscCtl.NP_ENABLE) !== 0 && this.npAvailable;
    if (this.np) {
      const np = this.npSetup;
      np.nCr3 = this.r64(vmcbPa + Vmcb.N_CR3);
      np.cr0 = s[S.CR0];
      np.cr4 = s[S.CR4];
      np.efer = s[S.EFER];
      this.machine.mem.setNestedPaging(np);
      const pat = this.machine.msrs.pat;
      this.hostPatLo = pat[0];
      this.hostPatHi = pat[1];
      pat[0] = this.r32(vmcbPa + Vmcb.G_PAT); // valid by C19
      pat[1] = this.r32(vmcbPa + Vmcb.G_PAT + 4);
    }
    // Guest state (§5.2 step 11): EFER, then CR0, CR4, CR3; segments; RFLAGS/RIP/RSP/RAX.
    for (let i = 0; i < 4; i++) this.loadSeg(SWITCHED_SEGS[i], vmcbPa + SWITCHED_SEGS_AT[i]);
    this.loadTable(S.GDTR_BASE_LO, S.GDTR_LIMIT, vmcbPa + Vmcb.GDTR);
    this.loadTable(S.IDTR_BASE_LO, S.IDTR_LIMIT, vmcbPa + Vmcb.IDTR);
    let efer = this.r32(vmcbPa + Vmcb.EFER);
    const cr0 = this.r32(vmcbPa + Vmcb.CR0);
    efer = efer & EFER_LME && cr0 & CR0_PG ? efer | EFER_LMA : efer & ~EFER_LMA;
    s[S.EFER] = efer;
    s[S.CR0] = cr0;
    s[S.CR4] = this.r32(vmcbPa + Vmcb.CR4);
    s[S.CR3_LO] = this.r32(vmcbPa + Vmcb.CR3);
    s[S.CR3_HI] = this.r32(vmcbPa + Vmcb.CR3 + 4);
    s[S.CR2_LO] = this.r32(vmcbPa + Vmcb.CR2);
    s[S.CR2_HI] = this.r32(vmcbPa + Vmcb.CR2 + 4);
    s[S.DR7] = this.r32(vmcbPa + Vmcb.DR7) | 0x400;
    s[S.DR6] = this.r32(vmcbPa + Vmcb.DR6) | (0xffff0ff0 | 0);
    let cpl = this.machine.mem.dv.getUint8(vmcbPa + Vmcb.CPL) & 3;
    const rflags = this.r32(vmcbPa + Vmcb.RFLAGS) | 2;
    if (!(cr0 & CR0_PE)) cpl = 0;
    else if (rflags & (1 << 17)) cpl = 3;
    s[S.CPL] = cpl;
    setRflags(cpu, rflags);
    this.rPair(vmcbPa + Vmcb.RIP, S.RIP_LO);
    this.rPair(vmcbPa + Vmcb.RSP, 8);
    this.rPair(vmcbPa + Vmcb.RAX, 0);
    this.guest = true;
    this.machine.systemChanged();
    this.machine.setShadow((this.r32(vmcbPa + Vmcb.INT_STATE) & 1) !== 0);
    this.gif = true;
  }

  /** The §5.3 checks that apply to what svmjit implements (no vNMI, TSC ratio or VGIF: their checks cannot apply). */
  private consistent(pa: number): boolean {
    const efer = this.r32(pa + Vmcb.EFER);
    const eferHi = this.r32(pa + Vmcb.EFER + 4);
    const cr0 = this.r32(pa + Vmcb.CR0);
    const cr4 = this.r32(pa + Vmcb.CR4);
    const csAttr = this.machine.mem.dv.getUint16(pa + Vmcb.CS + VmcbSeg.ATTRIB, true);
    if (!(efer & EFER_SVME)) return false; // C1
    if (!(cr0 & 0x40000000) && cr0 & 0x20000000) return false; // C2
    if (this.r32(pa + Vmcb.CR0 + 4) !== 0) return false; // C3
    if (this.r32(pa + Vmcb.CR3 + 4) >>> (MAXPHYADDR - 32)) return false; // C4
    if (this.r32(pa + Vmcb.CR4 + 4) !== 0 || cr4 & ~CR4_VALID) return false; // C5
    if (this.r32(pa + Vmcb.DR6 + 4) !== 0 || this.r32(pa + Vmcb.DR7 + 4) !== 0) return false; // C6, C7
    if (eferHi !== 0 || efer & ~EFER_VALID) return false; // C8
    const lmePg = efer & EFER_LME && cr0 & CR0_PG;
    if (lmePg && !(cr4 & 0x20)) return false; // C9
    if (lmePg && !(cr0 & CR0_PE)) return false; // C10
    if (lmePg && cr4 & 0x20 && csAttr & 0x200 && csAttr & 0x400) return false; // C11
    if (!(this.r32(pa + Vmcb.INTERCEPT_MISC2) & 1)) return false; // C12
    if (this.r32(pa + Vmcb.GUEST_ASID) === 0) return false; // C13
    const limit = 2 ** MAXPHYADDR;
    if (Math.floor(this.ru64(pa + Vmcb.MSRPM_BASE_PA) / 4096) * 4096 >= limit - 0x2000) return false; // C14
    if (Math.floor(this.ru64(pa + Vmcb.IOPM_BASE_PA) / 4096) * 4096 >= limit - 0x2001) return false; // C15
    // C22 (KVM): with MSR_PROT on, the MSRPM must be readable RAM.
    const msrpm = Math.floor(this.ru64(pa + Vmcb.MSRPM_BASE_PA) / 4096) * 4096;
    if (this.r32(pa + Vmcb.INTERCEPT_MISC1) & (1 << 28) && msrpm + 0x2000 > this.machine.mem.ramEnd) return false;
    // C21: without NP, a legacy-PAE guest's PDPTEs are loaded now, and a present one with a
    // reserved bit fails VMRUN.
    const np = (this.r32(pa + Vmcb.MISC_CTL) & MiscCtl.NP_ENABLE) !== 0 && this.npAvailable;
    if (np && !nestedPagingConsistent(this.r32(pa + Vmcb.N_CR3), this.r32(pa + Vmcb.N_CR3 + 4), this.cpu.s[S.CR0], this.r32(pa + Vmcb.G_PAT), this.r32(pa + Vmcb.G_PAT + 4))) return false; // C17-C19
    if (!np && cr0 & CR0_PG && cr4 & 0x20 && !(efer & EFER_LME)) {
      const cr3 = (this.r32(pa + Vmcb.CR3 + 4) >>> 0) * TWO32 + (this.r32(pa + Vmcb.CR3) >>> 0);
      if (!loadPdptes(this.machine.mem.dv, cr3, this.pdpteScratch)) return false;
    }
    const inj = this.r32(pa + Vmcb.EVENTINJ);
    if (inj & EventInj.V) {
      const type = (inj >>> EventInj.TYPE_SHIFT) & 7;
      if (type === 1 || type >= 5) return false; // C16
      if (type === EventInj.TYPE_EXCEPTION && !INJECTABLE_EXCEPTIONS.has(inj & 0xff)) return false;
    }
    return true;
  }

  private loadSeg(seg: SegReg, at: number): void {
    const dv = this.machine.mem.dv;
    setSegCache(this.cpu, seg, dv.getUint16(at, true), dv.getUint16(at + 2, true) & 0xfff, dv.getInt32(at + 4, true), 0);
    this.rPair(at + 8, segAt(seg) + SegField.BASE_LO, true);
  }

  private saveSeg(seg: SegReg, at: number): void {
    const s = this.cpu.s;
    const c = segAt(seg);
    const dv = this.machine.mem.dv;
    dv.setUint16(at, s[c + SegField.SEL] & 0xffff, true);
    dv.setUint16(at + 2, s[c + SegField.ATTR] & 0xfff, true);
    dv.setInt32(at + 4, s[c + SegField.LIMIT], true);
    dv.setInt32(at + 8, s[c + SegField.BASE_LO], true);
    dv.setInt32(at + 12, s[c + SegField.BASE_HI], true);
  }

  private loadTable(baseLo: number, limitSlot: number, at: number): void {
    this.cpu.s[limitSlot] = this.r32(at + 4) & 0xffff;
    this.rPair(at + 8, baseLo, true);
  }

  private saveTable(baseLo: number, limitSlot: number, at: number): void {
    const s = this.cpu.s;
    this.w32(at + 4, s[limitSlot] & 0xffff);
    this.w32(at + 8, s[baseLo]);
    this.w32(at + 12, s[baseLo + 1]);
  }

  // ---- #VMEXIT ----

  /** The world switch back to L1 (§5.6). RIP in the state is where L2 stopped. */
  vmexit(exitCode: number, info1: number, info2: number, nrip: number): void {
    if (!this.timeSwitches) return this.leave(exitCode, info1, info2, nrip);
    const t0 = performance.now();
    this.leave(exitCode, info1, info2, nrip);
    this.stats.switchMs += performance.now() - t0;
  }

  private leave(exitCode: number, info1: number, info2: number, nrip: number): void {
    const cpu = this.cpu;
    const s = cpu.s;
    const pa = this.vmcbPa;
    this.count(exitCode);
    this.guest = false;
    this.gif = false;
    const shadow = this.machine.setShadow(false);
    // Guest state into vmcb12.
    for (let i = 0; i < 4; i++) this.saveSeg(SWITCHED_SEGS[i], pa + SWITCHED_SEGS_AT[i]);
    this.saveTable(S.GDTR_BASE_LO, S.GDTR_LIMIT, pa + Vmcb.GDTR);
    this.saveTable(S.IDTR_BASE_LO, S.IDTR_LIMIT, pa + Vmcb.IDTR);
    this.w64(pa + Vmcb.EFER, s[S.EFER] >>> 0);
    this.w64(pa + Vmcb.CR0, s[S.CR0] >>> 0);
    this.wPair(pa + Vmcb.CR2, s[S.CR2_LO], s[S.CR2_HI]);
    this.wPair(pa + Vmcb.CR3, s[S.CR3_LO], s[S.CR3_HI]);
    this.w64(pa + Vmcb.CR4, s[S.CR4] >>> 0);
    this.w64(pa + Vmcb.DR6, s[S.DR6] >>> 0);
    this.w64(pa + Vmcb.DR7, s[S.DR7] >>> 0);
    const rflags = getRflags(cpu);
    this.w64(pa + Vmcb.RFLAGS, rflags >>> 0);
    this.wPair(pa + Vmcb.RIP, s[S.RIP_LO], s[S.RIP_HI]);
    this.wPair(pa + Vmcb.RSP, s[8], s[9]);
    this.wPair(pa + Vmcb.RAX, s[0], s[1]);
    this.machine.mem.dv.setUint8(pa + Vmcb.CPL, s[S.CPL] & 3);
    // Control area.
    this.w64(pa + Vmcb.EXITCODE, exitCode);
    this.w64(pa + Vmcb.EXITINFO1, info1);
    this.w64(pa + Vmcb.EXITINFO2, info2);
    this.w32(pa + Vmcb.EXITINTINFO, this.deliveringEvent);
    this.w32(pa + Vmcb.EXITINTINFO_ERR, this.deliveringError);
    this.w64(pa + Vmcb.NRIP, nrip);
    this.w32(pa + Vmcb.INT_STATE, (shadow ? 1 : 0) | (rflags & (1 << 9) ? 2 : 0));
    this.w32(pa + Vmcb.INT_CTL, this.intCtl);
    this.w64(pa + Vmcb.EVENTINJ, 0);
    this.machine.mem.dv.setUint8(pa + Vmcb.INSN_BYTES_COUNT, 0);
    this.deliveringEvent = this.deliveringError = 0;
    this.injectEvent = 0;
    this.intercepts.fill(0);
    this.tscOffset = 0;
    // Host state back (§5.6 step 5): CR0.PE forced, DR7 = 0x400, CPL 0, RF and VM clear.
    const saved = this.hostSaved;
    for (let i = 0; i < HOST_SLOTS.length; i++) s[HOST_SLOTS[i]] = saved[i];
    s[S.CR0] |= CR0_PE;
    s[S.CPL] = 0;
    s[S.DR7] = 0x400;
    this.machine.mem.asid = 0;
    setRflags(cpu, this.hostRflags & ~(RF | (1 << 17)));
    cpu.st.rip = this.hostRip;
    if (this.np) {
      // G_PAT back to vmcb12 as two halves (a PAT value does not fit a double exactly).
      const pat = this.machine.msrs.pat;
      this.w32(pa + Vmcb.G_PAT, pat[0]);
      this.w32(pa + Vmcb.G_PAT + 4, pat[1]);
      this.leaveNestedPaging();
    }
    this.notePageWritten(pa);
    this.machine.systemChanged();
  }

  private leaveNestedPaging(): void {
    const pat = this.machine.msrs.pat;
    pat[0] = this.hostPatLo;
    pat[1] = this.hostPatHi;
    this.machine.mem.setNestedPaging(null);
    this.np = false;
  }

  private count(code: number): void {
    this.stats.vmexits.set(code, (this.stats.vmexits.get(code) ?? 0) + 1);
  }

  /** INIT taken in guest mode: the CPU resets and guest mode is abandoned without writing vmcb12 (§6.2). */
  abandonGuest(): void {
    if (this.np) this.leaveNestedPaging();
    this.machine.mem.asid = 0;
    this.guest = false;
    this.gif = true;
    this.injectEvent = 0;
    this.deliveringEvent = this.deliveringError = 0;
    this.intercepts.fill(0);
    this.tscOffset = 0;
  }

  // ---- VMLOAD / VMSAVE (§5.7) ----

  vmload(pa: number): void {
    this.ram(pa, 4096);
    const s = this.cpu.s;
    for (let i = 0; i < 4; i++) this.loadSeg(LOADED_SEGS[i], pa + LOADED_SEGS_AT[i]);
    const pair = (slot: number, off: number, canon = false) => this.rPair(pa + off, slot, canon);
    pair(S.KGS_BASE_LO, Vmcb.KERNEL_GS_BASE, true);
    pair(S.STAR_LO, Vmcb.STAR);
    pair(S.LSTAR_LO, Vmcb.LSTAR);
    pair(S.CSTAR_LO, Vmcb.CSTAR);
    s[S.SFMASK] = this.r32(pa + Vmcb.SFMASK);
    s[S.SYSENTER_CS] = this.r32(pa + Vmcb.SYSENTER_CS) & 0xffff;
    pair(S.SYSENTER_ESP_LO, Vmcb.SYSENTER_ESP);
    pair(S.SYSENTER_EIP_LO, Vmcb.SYSENTER_EIP);
  }

  vmsave(pa: number): void {
    this.ram(pa, 4096);
    const s = this.cpu.s;
    for (let i = 0; i < 4; i++) this.saveSeg(LOADED_SEGS[i], pa + LOADED_SEGS_AT[i]);
    const pair = (slot: number, off: number) => this.wPair(pa + off, s[slot], s[slot + 1]);
    pair(S.KGS_BASE_LO, Vmcb.KERNEL_GS_BASE);
    pair(S.STAR_LO, Vmcb.STAR);
    pair(S.LSTAR_LO, Vmcb.LSTAR);
    pair(S.CSTAR_LO, Vmcb.CSTAR);
    this.w64(pa + Vmcb.SFMASK, s[S.SFMASK] >>> 0);
    this.w64(pa + Vmcb.SYSENTER_CS, s[S.SYSENTER_CS] & 0xffff);
    pair(S.SYSENTER_ESP_LO, Vmcb.SYSENTER_ESP);
    pair(S.SYSENTER_EIP_LO, Vmcb.SYSENTER_EIP);
    this.notePageWritten(pa);
  }

  /** int_ctl.V_TPR: L2's CR8 under V_INTR_MASKING. */
  get vTpr(): number {
    return this.intCtl & IntCtl.V_TPR;
  }
  set vTpr(v: number) {
    this.intCtl = (this.intCtl & ~IntCtl.V_TPR) | (v & IntCtl.V_TPR);
  }

  /** Could the pending virtual interrupt be taken now (§6.4)? */
  virtualInterruptReady(shadow: boolean): boolean {
    const c = this.intCtl;
    if (!this.guest || !(c & IntCtl.V_IRQ) || !this.gif || shadow || !(this.cpu.s[S.FLAGS] & (1 << 9))) return false;
    return (c & IntCtl.V_IGN_TPR) !== 0 || ((c >>> IntCtl.V_INTR_PRIO_SHIFT) & 15) > (c & IntCtl.V_TPR);
  }

  /** Take the virtual interrupt: V_IRQ clears, its vector is delivered. */
  takeVirtualInterrupt(): number {
    this.intCtl &= ~IntCtl.V_IRQ;
    return this.intVector;
  }

  /** Does V_INTR_MASKING make L1's IF (saved at VMRUN) mask physical interrupts in guest mode? */
  get intrMasking(): boolean {
    return (this.intCtl & IntCtl.V_INTR_MASKING) !== 0;
  }

  /** Whether a physical interrupt is unmasked for this vCPU's current level (§6.2 row 5). */
  interruptsEnabled(): boolean {
    if (!this.gif) return false;
    if (this.guest && this.intrMasking) return this.hostIf;
    return (this.cpu.s[S.FLAGS] & (1 << 9)) !== 0;
  }
}

/** EFER bits defined for this CPU: SCE, LME, LMA, NXE, SVME. */
const EFER_VALID = 0x1 | 0x100 | 0x400 | 0x800 | 0x1000;


export { ExitCode, EventInj };
