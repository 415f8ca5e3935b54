/**
 * MOV to and from segment registers as a 64-bit user-mode process sees them: the selectors are
 * those Linux gives every process (cs 0x33, ss 0x2b, data segments null), and a load succeeds
 * only for a selector that names one of those descriptors; anything else is #GP(selector), as
 * it would be for a descriptor outside the process's GDT view. (The bare-metal machine, with
 * real descriptor tables, replaces this.)
 */
import { CpuException, Vec } from '../exceptions.js';
import { readOp, writeOp } from '../operands.js';
import { OpKind } from '../../frontend/insn.js';
import type { Helper } from './index.js';

/** Selector values of the user-mode GDT entries Linux sets up: user code (64-bit) and user data. */
export const USER_CS = 0x33;
export const USER_SS = 0x2b;
const SS = 2;

const movSeg: Helper = (cpu, insn) => {
  const [dst, src] = insn.ops;
  if (src.kind === OpKind.Seg) {
    // A register destination gets the selector zero-extended; memory gets 16 bits.
    writeOp(cpu, insn, 0, cpu.sel[src.reg], 0);
    return;
  }
  if (dst.kind !== OpKind.Seg) throw new Error('mov helper: neither operand is a segment register');
  const v = readOp(cpu, insn, 1) & 0xffff;
  const rpl3 = (v & 3) === 3;
  const ok = dst.reg === SS ? v === USER_SS : v < 4 || (rpl3 && (v === USER_SS || v === USER_CS));
  if (!ok) throw new CpuException(Vec.GP, v & 0xfffc);
  cpu.sel[dst.reg] = v;
};

export const SEG_HELPERS: Record<string, Helper> = { mov: movSeg };
