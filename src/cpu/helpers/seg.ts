/**
 * MOV, PUSH and POP of segment registers as a 64-bit user-mode process sees them: the selectors are
 * those Linux gives every process (cs 0x33, ss 0x2b, data segments null), and a load succeeds
 * only for a selector that names one of those descriptors; anything else is #GP(selector), as
 * it would be for a descriptor outside the process's GDT view. (The bare-metal machine, with
 * real descriptor tables, replaces this.)
 */
import { CpuException, Vec } from '../exceptions.js';
import { readOp, writeOp } from '../operands.js';
import { Prot } from '../memory.js';
import { OpKind } from '../../frontend/insn.js';
import type { Helper } from './index.js';

/** Selector values of the user-mode GDT entries Linux sets up: user code (64-bit) and user data. */
export const USER_CS = 0x33;
export const USER_SS = 0x2b;
const SS = 2;
const RSP = 4;

/** Would loading selector v into segment register `seg` succeed? Else #GP(selector). */
function checkLoad(seg: number, v: number): void {
  const rpl3 = (v & 3) === 3;
  const ok = seg === SS ? v === USER_SS : v < 4 || (rpl3 && (v === USER_SS || v === USER_CS));
  if (!ok) throw new CpuException(Vec.GP, v & 0xfffc);
}

/** PUSH FS/GS: the selector, zero-extended to the operand size (8 bytes, or 2 with 66). */
const pushSeg: Helper = (cpu, insn) => {
  const size = insn.opSize === 2 ? 2 : 8;
  const at = cpu.st.reg(RSP) - size;
  const v = cpu.sel[insn.ops[0].reg];
  if (size === 2) cpu.mem.write16(at, v);
  else cpu.mem.write64(at, v, 0);
  cpu.st.setReg(RSP, at);
};

/** POP FS/GS: load a selector from the stack (checked as MOV would) and release the slot. */
const popSeg: Helper = (cpu, insn) => {
  const size = insn.opSize === 2 ? 2 : 8;
  const at = cpu.st.reg(RSP);
  cpu.mem.translate(at + size - 1, Prot.READ);
  const v = cpu.mem.read16(at);
  checkLoad(insn.ops[0].reg, v);
  cpu.sel[insn.ops[0].reg] = v;
  cpu.st.setReg(RSP, at + size);
};

const movSeg: Helper = (cpu, insn) => {
  const [dst, src] = insn.ops;
  if (src.kind === OpKind.Seg) {
    // A register destination gets the selector zero-extended; memory gets 16 bits.
    writeOp(cpu, insn, 0, cpu.sel[src.reg], 0);
    return;
  }
  if (dst.kind !== OpKind.Seg) throw new Error('mov helper: neither operand is a segment register');
  const v = readOp(cpu, insn, 1) & 0xffff;
  checkLoad(dst.reg, v);
  cpu.sel[dst.reg] = v;
};

// Keyed by mnemonic like every helper; the lifter lowers the general-register forms of these
// mnemonics itself and calls the helper only for segment-register operands.
export const SEG_HELPERS: Record<string, Helper> = { mov: movSeg, push: pushSeg, pop: popSeg };
