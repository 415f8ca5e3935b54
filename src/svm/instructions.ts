/**
 * The SVM instructions as interpreter helpers: VMRUN, VMLOAD, VMSAVE, STGI, CLGI, INVLPGA,
 * SKINIT and VMMCALL, with the checks in the order spec/svm.md §5.1 fixes — #UD (EFER.SVME=0 or
 * not protected mode), #GP(0) for CPL > 0, #GP(0) for a misaligned or too-large rAX, and only
 * then the intercept (seed 000). VMMCALL has no checks: in host mode it is a hypercall to svmjit
 * (§1.4), in guest mode it exits when intercepted and is #UD otherwise (seed 003).
 *
 * They set RIP themselves (RESUME contract): after VMRUN, RIP is L2's (or, after a failed
 * VMRUN, the instruction after it).
 */
import type { Cpu } from '../cpu/cpu.js';
import { CpuException, Vec } from '../cpu/exceptions.js';
import { S } from '../cpu/state.js';
import type { Insn } from '../frontend/insn.js';
import type { Helper } from '../cpu/helpers/index.js';
import { CR0_PE, EFER_SVME } from '../machine/segments.js';
import { interceptInsn, recordInterceptAtEnd } from './intercept.js';
import { ExitCode } from './vmcb.js';

const TWO32 = 4294967296;
const MAXPHYADDR = 48;


/** §5.1 steps 1-2: #UD unless EFER.SVME and protected mode (not v86), #GP(0) unless CPL 0. */
function svmEnabledAndPrivileged(cpu: Cpu): void {
  const s = cpu.s;
  if (!cpu.svm || !(s[S.EFER] & EFER_SVME) || !(s[S.CR0] & CR0_PE) || s[S.FLAGS] & (1 << 17)) throw new CpuException(Vec.UD);
  if (s[S.CPL] !== 0) throw new CpuException(Vec.GP, 0);
}

/** §5.1 step 3: rAX (by address size) must be 4 KiB aligned and below 2^MAXPHYADDR. */
function physicalOperand(cpu: Cpu, insn: Insn): number {
  const s = cpu.s;
  const pa = insn.addrSize === 8 ? s[1] * TWO32 + (s[0] >>> 0) : s[0] >>> 0;
  if (pa % 4096 !== 0 || pa < 0 || pa >= 2 ** MAXPHYADDR) throw new CpuException(Vec.GP, 0);
  return pa;
}

const vmrun: Helper = (cpu, insn) => {
  svmEnabledAndPrivileged(cpu);
  const pa = physicalOperand(cpu, insn);
  // From L2, VMRUN always exits (its intercept is mandatory, §5.3 C12).
  interceptInsn(cpu, ExitCode.VMRUN, insn);
  cpu.svm!.vmrun(pa, insn.next);
};

function loadSave(exitCode: number, load: boolean): Helper {
  return (cpu, insn) => {
    svmEnabledAndPrivileged(cpu);
    const pa = physicalOperand(cpu, insn);
    interceptInsn(cpu, exitCode, insn);
    if (load) cpu.svm!.vmload(pa);
    else cpu.svm!.vmsave(pa);
    cpu.st.rip = insn.next;
  };
}

function gifInstruction(exitCode: number, gif: boolean): Helper {
  return (cpu, insn) => {
    svmEnabledAndPrivileged(cpu);
    interceptInsn(cpu, exitCode, insn);
    cpu.svm!.gif = gif;
    cpu.st.rip = insn.next;
  };
}

/** INVLPGA: the whole TLB goes (KVM treats it as INVLPG and ignores the ASID, §5.10). */
const invlpga: Helper = (cpu, insn) => {
  svmEnabledAndPrivileged(cpu);
  interceptInsn(cpu, ExitCode.INVLPGA, insn);
  cpu.sys!.invalidatePage(cpu, 0);
  cpu.mem.flushTlb();
  cpu.st.rip = insn.next;
};

/** SKINIT is not advertised (CPUID Fn8000_0001 ECX[12] = 0): after the common checks, #UD, intercept or not (§5.11). */
const skinit: Helper = (cpu) => {
  svmEnabledAndPrivileged(cpu);
  throw new CpuException(Vec.UD);
};

/** Always ends its block in machine mode (lift.ts MACHINE_SYSTEM), so its exit is recorded, not thrown. */
const vmmcall: Helper = (cpu, insn) => {
  const svm = cpu.svm;
  if (svm?.guest) {
    if (recordInterceptAtEnd(cpu, ExitCode.VMMCALL, insn)) return;
    throw new CpuException(Vec.UD); // not intercepted: #UD in L2, never the hypercall (seed 003)
  }
  if (!cpu.sys) throw new CpuException(Vec.UD);
  cpu.sys.hypercall(cpu);
  cpu.st.rip = insn.next;
};

export const SVM_HELPERS: Record<string, Helper> = {
  vmrun,
  vmload: loadSave(ExitCode.VMLOAD, true),
  vmsave: loadSave(ExitCode.VMSAVE, false),
  stgi: gifInstruction(ExitCode.STGI, true),
  clgi: gifInstruction(ExitCode.CLGI, false),
  invlpga,
  skinit,
  vmmcall,
};
