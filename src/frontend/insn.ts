/**
 * A decoded instruction: what the decoder produces and the lifter, the disassembler and the
 * interpreter helpers consume. Decoding happens once per translation, never per executed
 * instruction, so these are plain objects.
 */
import type { OpRow } from './table.js';

export const enum OpKind {
  None = 0,
  /** General register; size 1 with hi8 = AH/CH/DH/BH. */
  Reg,
  /** Memory at the instruction's effective address (base/index/scale/disp/seg). */
  Mem,
  /** Immediate: imm (low 32 bits, signed) and immHi (high 32 bits) after sign/zero extension to the operand size. */
  Imm,
  /** Absolute branch target (imm holds it as a JS number). */
  Rel,
  Xmm,
  /** x87 register ST(reg). */
  St,
  Seg,
  Cr,
  Dr,
}

export interface Operand {
  kind: OpKind;
  /** Size in bytes: 1, 2, 4, 8, 10 (x87 m80), 16; for Mem operands of no fixed size, 0. */
  size: number;
  /** Register number (0-15) for Reg/Xmm/St/Seg/Cr/Dr. */
  reg: number;
  /** Reg size 1 without REX and reg 4-7: the legacy high-byte registers AH, CH, DH, BH (reg is then 0-3). */
  hi8: boolean;
  /** Imm and Rel: the value. For Imm, the low 32 bits as int32; for Rel, the whole target address. */
  imm: number;
  /** Imm: the high 32 bits as int32. */
  immHi: number;
}

export const enum Seg {
  ES = 0, CS = 1, SS = 2, DS = 3, FS = 4, GS = 5, NONE = -1,
}

/** Register number used as Insn.base for RIP-relative operands (already folded into disp). */
export const BASE_NONE = -1;

export interface Insn {
  /** Address of the first byte (a JS number holding the signed 64-bit value). */
  addr: number;
  len: number;
  /** Address of the next instruction. */
  next: number;
  bytes: Uint8Array;
  /** Table mnemonic ('add', 'jcc', 'movdqa', …). */
  mnem: string;
  /** Condition code 0-15 for jcc/setcc/cmovcc, else -1. */
  cond: number;
  row: OpRow;
  ops: Operand[];
  /** Effective operand size in bytes (2, 4 or 8) as prefixes and REX.W make it. */
  opSize: number;
  /** Address size in bytes (4 with the 67 prefix, else 8). */
  addrSize: number;
  // Memory operand (when some op has kind Mem).
  /** Base register 0-15 or BASE_NONE. */
  base: number;
  /** Index register 0-15 or -1. */
  index: number;
  scale: number;
  /** Displacement; for RIP-relative operands the absolute target (next + disp32) with base = BASE_NONE. */
  disp: number;
  ripRel: boolean;
  /** Segment override (Seg.FS / Seg.GS matter in 64-bit mode), or Seg.NONE. */
  seg: number;
  /** 0, 0xF3 (rep/repe) or 0xF2 (repne) when not consumed as a mandatory prefix. */
  rep: number;
  lock: boolean;
  /** The ModRM reg field (with REX.R), for helpers that need it; -1 without ModRM. */
  modrmReg: number;
  /** REX prefix byte, or 0. */
  rex: number;
}
