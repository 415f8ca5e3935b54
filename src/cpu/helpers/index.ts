/**
 * Interpreter helpers: the semantics of every instruction that has no hand-written IR
 * lowering, as plain functions on the CPU state. Both the IR interpreter and compiled code
 * call them through the IR's `helper` op (after writing registers and flags back), so an
 * instruction works in every execution mode from the day it has a helper, and gets faster
 * when it gets a lowering.
 *
 * Contract: a helper is called with S.RIP = insn.addr, performs the whole instruction except
 * advancing RIP (the caller does that), and throws a CpuException *before changing any state*
 * when the instruction faults. It must not allocate per call.
 */
import type { Cpu } from '../cpu.js';
import type { Insn } from '../../frontend/insn.js';
import { INT_HELPERS } from './int.js';
import { SSE_HELPERS } from './sse.js';
import { X87_HELPERS } from './x87.js';
import { SHIFT_HELPERS } from './shift.js';
import { SEG_HELPERS } from './seg.js';
import { MACHINE_FORMS, SYSTEM_HELPERS } from '../../machine/system.js';
import { LEGACY_HELPERS } from '../../machine/legacy.js';
import { SVM_HELPERS } from '../../svm/instructions.js';

export type Helper = (cpu: Cpu, insn: Insn) => void;

const USER_HELPERS: Record<string, Helper> = { ...INT_HELPERS, ...SSE_HELPERS, ...X87_HELPERS, ...SHIFT_HELPERS, ...SEG_HELPERS };

/** Helpers with a user-mode and a machine-mode form pick one per call (cpu.machine never changes during a run). */
function byPersonality(user: Helper, machine: Helper): Helper {
  return (cpu, insn) => (cpu.machine ? machine(cpu, insn) : user(cpu, insn));
}

export const HELPERS: Record<string, Helper> = { ...USER_HELPERS, ...SYSTEM_HELPERS, ...LEGACY_HELPERS, ...SVM_HELPERS };
for (const [mnem, machine] of Object.entries(MACHINE_FORMS)) HELPERS[mnem] = byPersonality(USER_HELPERS[mnem], machine);
