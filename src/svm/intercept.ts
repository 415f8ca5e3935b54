/**
 * Intercept checks as instruction helpers make them (two-phase exits, design.md §2): when the
 * CPU runs in guest mode and vmcb12 intercepts the event, the helper throws a VmExit carrying
 * the exit code and information; it unwinds compiled code like any exception (so the guest
 * state is exact, RIP at the intercepted instruction) and the machine performs the world switch
 * (svm.ts). Host-mode code pays one null test.
 *
 * A helper whose instruction always ends its block in machine mode (VMMCALL: lift.ts
 * MACHINE_SYSTEM) records the exit instead and returns, so the hypervisor's most frequent exit
 * costs no JS throw through the compiled code and the engine: its block returns to the
 * machine, which takes the exit (Vcpu.takeRecordedExit).
 */
import type { Cpu } from '../cpu/cpu.js';
import { CpuException } from '../cpu/exceptions.js';
import type { Insn } from '../frontend/insn.js';

/** A #VMEXIT raised by an instruction, an exception or an event in guest mode. */
export class VmExit extends CpuException {
  constructor(
    readonly exitCode: number,
    readonly info1 = 0,
    readonly info2 = 0,
    /** NRIP: the next sequential RIP for instruction intercepts, else 0. */
    readonly nrip = 0,
  ) {
    super(-1);
  }

  override toString(): string {
    return `#VMEXIT(0x${(this.exitCode >>> 0).toString(16)})`;
  }
}

/** Exit if guest mode and vmcb12 intercepts `exitCode` (an instruction intercept). */
export function interceptInsn(cpu: Cpu, exitCode: number, insn: Insn, info1 = 0, info2 = 0): void {
  const svm = cpu.svm;
  if (svm !== null && svm.guest && svm.intercepted(exitCode)) throw new VmExit(exitCode, info1, info2, insn.next);
}

/**
 * interceptInsn for a helper whose block ends right after it: records the exit in the SVM
 * state and returns true, and the helper must then return at once, changing nothing (RIP
 * stays at the instruction). The block counts the instruction as retired; taking the exit
 * takes that back.
 */
export function recordInterceptAtEnd(cpu: Cpu, exitCode: number, insn: Insn): boolean {
  const svm = cpu.svm;
  if (svm === null || !svm.guest || !svm.intercepted(exitCode)) return false;
  svm.recordExit(exitCode, insn.next);
  return true;
}
