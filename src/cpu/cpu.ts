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
  /** Host hooks the personality (user-mode Linux, bare-metal machine) installs. */
  hooks: CpuHooks = {
    cpuid: () => {
      throw new Error('cpuid hook not installed');
    },
    rdtsc: () => 0,
  };

  constructor(readonly mem: Memory) {}
}

export interface CpuHooks {
  /** Fill EAX/EBX/ECX/EDX in state for leaf EAX, subleaf ECX. */
  cpuid(cpu: Cpu): void;
  /** The time-stamp counter as a JS number. */
  rdtsc(cpu: Cpu): number;
}
