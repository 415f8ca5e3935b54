/**
 * Model-specific registers of the machine's CPU: RDMSR/WRMSR semantics with the #GP rules.
 *
 * MSRs that instructions use directly (EFER, the SYSCALL targets, FS/GS/KernelGS bases, the
 * SYSENTER registers, TSC_AUX) live in the state buffer so helpers read them with one load;
 * the rest (PAT, MTRRs, DEBUGCTL, the AMD performance counters) only need to read back what
 * was written and live in a small map. An MSR not listed here is #GP(0), as on hardware.
 */
import type { Cpu } from '../cpu/cpu.js';
import { CpuException, Vec } from '../cpu/exceptions.js';
import { S, SegField, SegReg } from '../cpu/state.js';
import { EFER_LMA, EFER_LME, EFER_NXE, EFER_SCE, EFER_SVME, segAt } from './segments.js';
import { validPat } from '../svm/npt.js';

export const enum Msr {
  TSC = 0x10,
  APIC_BASE = 0x1b,
  MTRRCAP = 0xfe,
  SYSENTER_CS = 0x174,
  SYSENTER_ESP = 0x175,
  SYSENTER_EIP = 0x176,
  DEBUGCTL = 0x1d9,
  MTRR_PHYS_FIRST = 0x200,
  MTRR_PHYS_LAST = 0x20f,
  MTRR_FIX64K = 0x250,
  MTRR_FIX16K_80000 = 0x258,
  MTRR_FIX16K_A0000 = 0x259,
  MTRR_FIX4K_FIRST = 0x268,
  MTRR_FIX4K_LAST = 0x26f,
  PAT = 0x277,
  MTRR_DEF_TYPE = 0x2ff,
  TSC_DEADLINE = 0x6e0,
  X2APIC_FIRST = 0x800,
  X2APIC_LAST = 0x8ff,
  EFER = 0xc0000080 | 0,
  STAR = 0xc0000081 | 0,
  LSTAR = 0xc0000082 | 0,
  CSTAR = 0xc0000083 | 0,
  SFMASK = 0xc0000084 | 0,
  FS_BASE = 0xc0000100 | 0,
  GS_BASE = 0xc0000101 | 0,
  KERNEL_GS_BASE = 0xc0000102 | 0,
  TSC_AUX = 0xc0000103 | 0,
  PERF_CTL_FIRST = 0xc0010000 | 0,
  PERF_CTR_LAST = 0xc0010007 | 0,
  VM_CR = 0xc0010114 | 0,
  VM_IGNNE = 0xc0010115 | 0,
  VM_HSAVE_PA = 0xc0010117 | 0,
}

/** VM_CR bits: LOCK makes LOCK and SVMDIS read-only; SVMDIS forbids EFER.SVME. */
const VM_CR_LOCK = 1 << 3;
const VM_CR_SVMDIS = 1 << 4;

/** EFER bits software may set (SVME once SVM exists; LMA is read-only). */
const EFER_WRITABLE = EFER_SCE | EFER_LME | EFER_NXE | EFER_SVME;

/** Slots of MSRs held in the state as lo/hi pairs. */
const STATE_PAIRS = new Map<number, number>([
  [Msr.STAR, S.STAR_LO],
  [Msr.LSTAR, S.LSTAR_LO],
  [Msr.CSTAR, S.CSTAR_LO],
  [Msr.FS_BASE, segAt(SegReg.FS) + SegField.BASE_LO],
  [Msr.GS_BASE, segAt(SegReg.GS) + SegField.BASE_LO],
  [Msr.KERNEL_GS_BASE, S.KGS_BASE_LO],
  [Msr.SYSENTER_ESP, S.SYSENTER_ESP_LO],
  [Msr.SYSENTER_EIP, S.SYSENTER_EIP_LO],
]);

/** Pairs that hold addresses: a non-canonical value is #GP. */
const CANONICAL = new Set<number>([Msr.LSTAR, Msr.CSTAR, Msr.FS_BASE, Msr.GS_BASE, Msr.KERNEL_GS_BASE, Msr.SYSENTER_ESP, Msr.SYSENTER_EIP]);

function gp(): never {
  throw new CpuException(Vec.GP, 0);
}

function isCanonical(lo: number, hi: number): boolean {
  const top = hi >> 15; // bits 63..47 must all equal bit 47
  return top === 0 || top === -1;
}

/** What the local APIC contributes (x2APIC MSRs, APIC_BASE, TSC deadline). */
export interface ApicMsrs {
  owns(msr: number): boolean;
  /** undefined: #GP. */
  readMsr(msr: number): { lo: number; hi: number } | undefined;
  /** false: #GP. */
  writeMsr(msr: number, lo: number, hi: number): boolean;
}

/** SVM's MSRs live in the SVM state (spec/svm.md §2.3, §2.4). */
export interface SvmMsrs {
  vmcr: number;
  hsavePa: number;
}

export class MsrFile {
  /** Read-back-only MSRs: key → [lo, hi]. */
  private readonly plain = new Map<number, [number, number]>();
  /** IA32_PAT as [lo, hi] (one of `plain`): the SVM world switch swaps L1's PAT and G_PAT here (spec/svm.md §7.6). */
  readonly pat: [number, number] = [0x00070406, 0x00070406];
  /** Set by the machine: VM_CR and VM_HSAVE_PA. */
  svm: SvmMsrs | null = null;

  constructor(
    private readonly tsc: (cpu: Cpu) => number,
    private readonly setTsc: (cpu: Cpu, value: number) => void,
    /** Set by the PC once its local APIC exists. */
    public apic: ApicMsrs | null,
  ) {
    this.plain.set(Msr.PAT, this.pat);
    this.plain.set(Msr.MTRRCAP, [0x508, 0]); // 8 variable ranges, fixed ranges, write-combining
    this.plain.set(Msr.MTRR_DEF_TYPE, [0, 0]);
    this.plain.set(Msr.DEBUGCTL, [0, 0]);
    for (let m = Msr.MTRR_PHYS_FIRST; m <= Msr.MTRR_PHYS_LAST; m++) this.plain.set(m, [0, 0]);
    for (const m of [Msr.MTRR_FIX64K, Msr.MTRR_FIX16K_80000, Msr.MTRR_FIX16K_A0000]) this.plain.set(m, [0, 0]);
    for (let m = Msr.MTRR_FIX4K_FIRST; m <= Msr.MTRR_FIX4K_LAST; m++) this.plain.set(m, [0, 0]);
    for (let m = Msr.PERF_CTL_FIRST; m <= Msr.PERF_CTR_LAST; m++) this.plain.set(m, [0, 0]);
  }

  /** AMD's last-branch/last-exception MSRs (0x1DB-0x1DE): read-only, zero while DEBUGCTL.LBR is not modelled. */
  private static readonly LBR_FIRST = 0x1db;
  private static readonly LBR_LAST = 0x1de;

  /** RDMSR: low half returned, high half in cpu.hi. */
  read(cpu: Cpu, msr: number): number {
    const s = cpu.s;
    cpu.hi = 0;
    const slot = STATE_PAIRS.get(msr);
    if (slot !== undefined) {
      cpu.hi = s[slot + 1];
      return s[slot];
    }
    switch (msr) {
      case Msr.EFER:
        return s[S.EFER];
      case Msr.SFMASK:
        return s[S.SFMASK];
      case Msr.SYSENTER_CS:
        return s[S.SYSENTER_CS];
      case Msr.TSC_AUX:
        return s[S.TSC_AUX];
      case Msr.VM_CR:
        if (!this.svm) return gp();
        return this.svm.vmcr;
      case Msr.VM_IGNNE:
        if (!this.svm) return gp();
        return 0;
      case Msr.VM_HSAVE_PA: {
        if (!this.svm) return gp();
        cpu.hi = Math.floor(this.svm.hsavePa / 4294967296) | 0;
        return this.svm.hsavePa | 0;
      }
      case Msr.TSC: {
        const t = this.tsc(cpu);
        cpu.hi = Math.floor(t / 4294967296) | 0;
        return t | 0;
      }
    }
    const p = this.plain.get(msr);
    if (p) {
      cpu.hi = p[1];
      return p[0];
    }
    if (msr >= MsrFile.LBR_FIRST && msr <= MsrFile.LBR_LAST) return 0;
    if (this.apic?.owns(msr)) {
      const a = this.apic.readMsr(msr);
      if (!a) gp();
      cpu.hi = a.hi | 0;
      return a.lo | 0;
    }
    return gp();
  }

  write(cpu: Cpu, msr: number, lo: number, hi: number, systemChanged: () => void): void {
    const s = cpu.s;
    const slot = STATE_PAIRS.get(msr);
    if (slot !== undefined) {
      if (CANONICAL.has(msr) && !isCanonical(lo, hi)) gp();
      s[slot] = lo;
      s[slot + 1] = hi;
      return;
    }
    switch (msr) {
      case Msr.EFER: {
        if (hi !== 0 || lo & ~(EFER_WRITABLE | EFER_LMA)) gp();
        if (lo & EFER_SVME && (!this.svm || this.svm.vmcr & VM_CR_SVMDIS)) gp();
        const old = s[S.EFER];
        // LME cannot change while paging is on; LMA is kept by the CPU.
        if ((old ^ lo) & EFER_LME && s[S.CR0] & 0x80000000) gp();
        s[S.EFER] = (lo & EFER_WRITABLE) | (old & EFER_LMA);
        systemChanged();
        return;
      }
      case Msr.SFMASK:
        if (hi !== 0) gp();
        s[S.SFMASK] = lo;
        return;
      case Msr.VM_CR: {
        // APM 15.30.1: bits 63:5 reserved; SVMDIS with EFER.SVME set is #GP; LOCK freezes LOCK and SVMDIS.
        if (!this.svm || hi !== 0 || lo & ~0x1f) gp();
        if (lo & VM_CR_SVMDIS && s[S.EFER] & EFER_SVME) gp();
        const frozen = this.svm.vmcr & VM_CR_LOCK ? VM_CR_LOCK | VM_CR_SVMDIS : 0;
        this.svm.vmcr = (lo & ~frozen) | (this.svm.vmcr & frozen);
        return;
      }
      case Msr.VM_IGNNE:
        if (!this.svm) gp();
        return;
      case Msr.VM_HSAVE_PA:
        // 4 KiB aligned and below 2^MAXPHYADDR (48), else #GP(0) (§2.4).
        if (!this.svm || lo & 0xfff || hi >>> 16) gp();
        this.svm.hsavePa = (hi >>> 0) * 4294967296 + (lo >>> 0);
        return;
      case Msr.SYSENTER_CS:
        s[S.SYSENTER_CS] = lo & 0xffff;
        return;
      case Msr.TSC_AUX:
        if (hi !== 0) gp();
        s[S.TSC_AUX] = lo;
        return;
      case Msr.TSC:
        this.setTsc(cpu, (hi >>> 0) * 4294967296 + (lo >>> 0));
        return;
      case Msr.PAT:
        if (!validPat(lo, hi)) gp();
        break;
      case Msr.MTRRCAP:
        gp(); // read-only
      case Msr.DEBUGCTL:
        // Branch recording (LBR, BTF) is not implemented: those bits do not stick, which is how
        // software tells (the LBR MSRs then read as zero).
        lo &= ~3;
        break;
    }
    const p = this.plain.get(msr);
    if (p) {
      p[0] = lo;
      p[1] = hi;
      return;
    }
    if (this.apic?.owns(msr) && this.apic.writeMsr(msr, lo, hi)) return;
    gp();
  }
}
