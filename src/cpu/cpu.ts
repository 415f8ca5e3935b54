/**
 * The CPU object handed to every interpreter helper, the IR interpreter and compiled code:
 * architectural state (state.ts), guest memory (memory.ts) and a few scratch slots that let
 * helpers return 64-bit results without allocating.
 */
import { CpuState } from './state.js';
import type { Memory } from './memory.js';

export class Cpu {
  readonly st = new CpuState();
  /** The state's int32 view (the hottest path, so it gets the short name). */
  readonly s = this.st.s;
  /** Segment selectors ES CS SS DS FS GS (the bases that matter in 64-bit mode live in state). */
  readonly sel = Uint16Array.of(0, 0x33, 0x2b, 0, 0, 0);
  /** Scratch: high half of a 64-bit value returned by a helper. */
  hi = 0;
  /** The guest profiler, when one is attached (the TRACK op reports calls and returns to it). */
  profiler: { track(kind: number, site: number, rsp: number): void } | null = null;
  /**
   * What code means right now (code size and stack width; see CpuMode). Part of every
   * translation's cache key. User mode is always LONG64; the machine recomputes it whenever
   * CS, SS, CR0 or EFER change.
   */
  mode: number = CpuMode.LONG64;
  /**
   * True for the bare-metal machine: privileged instructions, INT n and HLT go to the system
   * helpers instead of the user-mode personality's shortcuts.
   */
  machine = false;
  /** The bare-metal machine's services for system instructions (null in user mode). */
  sys: SystemHooks | null = null;
  /** This CPU's SVM state (machine mode); helpers test intercepts through it. */
  svm: SvmHooks | null = null;
  /** Host hooks the personality (user-mode Linux, bare-metal machine) installs. */
  hooks: CpuHooks = {
    cpuid: () => {
      throw new Error('cpuid hook not installed');
    },
    rdtsc: () => 0,
  };

  constructor(readonly mem: Memory) {}
}

/** Code size and stack width, packed into one small number (a cache-key component). */
export const enum CpuMode {
  CODE16 = 0,
  CODE32 = 1,
  CODE64 = 2,
  CODE_MASK = 3,
  /** Stack pointer width: neither bit = 16-bit SP, STACK32 = ESP, STACK64 = RSP. */
  STACK32 = 4,
  STACK64 = 8,
  LONG64 = CODE64 | STACK64,
  // Machine mode: x87/SSE instructions raise #NM/#UD instead of running (CR0.TS/EM/MP,
  // CR4.OSFXSR). Part of the cache key so the common case carries no check at all.
  FPU_TS = 16,
  FPU_EM = 32,
  FPU_MP = 64,
  NO_OSFXSR = 128,
  FPU_TRAPS = FPU_TS | FPU_EM | NO_OSFXSR,
  /** SVM guest mode: code that may be intercepted (PAUSE) runs its helper, which tests the intercept. */
  GUEST = 256,
}

/** Is a CpuMode 64-bit code? */
export function is64BitCode(mode: number): boolean {
  return (mode & CpuMode.CODE_MASK) === CpuMode.CODE64;
}

/** Code size in bits (16, 32 or 64) of a CpuMode. */
export function codeBits(mode: number): 16 | 32 | 64 {
  const c = mode & CpuMode.CODE_MASK;
  return c === CpuMode.CODE64 ? 64 : c === CpuMode.CODE32 ? 32 : 16;
}

/** Stack pointer width in bytes (2, 4 or 8) of a CpuMode. */
export function stackBytes(mode: number): number {
  return mode & CpuMode.STACK64 ? 8 : mode & CpuMode.STACK32 ? 4 : 2;
}

export interface CpuHooks {
  /** Fill EAX/EBX/ECX/EDX in state for leaf EAX, subleaf ECX. */
  cpuid(cpu: Cpu): void;
  /** The time-stamp counter as a JS number. */
  rdtsc(cpu: Cpu): number;
}

/** What system instructions need from the bare-metal machine around the CPU. */
export interface SystemHooks {
  portIn(port: number, size: 1 | 2 | 4): number;
  portOut(port: number, size: 1 | 2 | 4, value: number): void;
  /** RDMSR: returns the low half and leaves the high half in cpu.hi; throws #GP for an unknown MSR. */
  readMsr(cpu: Cpu, msr: number): number;
  /** WRMSR: throws #GP for an unknown MSR or reserved bits. */
  writeMsr(cpu: Cpu, msr: number, lo: number, hi: number): void;
  /** CR0/CR3/CR4/EFER/CS/SS changed: recompute the CPU mode and flush what depends on it. */
  systemChanged(cpu: Cpu, flushTlb: boolean): void;
  /** INVLPG: drop the translation of one linear address. */
  invalidatePage(cpu: Cpu, va: number): void;
  /** HLT: stop until the next interrupt (the machine loop does the waiting). */
  halt(cpu: Cpu): void;
  /** STI / MOV SS / POP SS: interrupts stay blocked until after the next instruction. */
  interruptShadow(cpu: Cpu): void;
  /** IRET completed (it ends the blocking of NMIs). */
  iretExecuted(cpu: Cpu): void;
  /** VMMCALL in host mode: a hypercall to svmjit (README "Hypercalls"). */
  hypercall(cpu: Cpu): void;
  /** CR8 is the local APIC's task priority (TPR[7:4]). */
  readCr8(cpu: Cpu): number;
  writeCr8(cpu: Cpu, value: number): void;
}

/** What instruction helpers need of the SVM runtime (src/svm): guest mode and the intercept tests. */
export interface SvmHooks {
  readonly guest: boolean;
  gif: boolean;
  hsavePa: number;
  vmcr: number;
  intercepted(exitCode: number): boolean;
  ioIntercepted(port: number, size: number): boolean;
  msrIntercepted(msr: number, write: boolean): boolean;
  /** Record an instruction intercept for the machine to take when the block ends (svm/intercept.ts). */
  recordExit(exitCode: number, nrip: number): void;
  vmrun(vmcbPa: number, next: number): void;
  vmload(pa: number): void;
  vmsave(pa: number): void;
}
