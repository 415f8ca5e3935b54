/**
 * A decoded instruction: what the decoder produces and the lifter, the disassembler and the
 * interpreter helpers consume. Decoding happens once per translation, never per executed
 * instruction, so these are plain objects.
 */
import type { OpRow } from './table.js';

/**
 * The code size the decoder works in: 16 (real mode, 16-bit protected and virtual-8086 code),
 * 32 (32-bit protected and compatibility mode with CS.D = 1) or 64 (64-bit mode, CS.L = 1).
 * It sets the default operand and address sizes and which opcodes exist.
 */
export type CodeSize = 16 | 32 | 64;

export const enum OpKind {
  None = 0,
  /** General register; size 1 with hi8 = AH/CH/DH/BH. */
  Reg,
  /** Memory at the instruction's effective address (base/index/scale/disp/seg). */
  Mem,
  /**
   * Immediate: imm (low 32 bits, signed) and immHi (high 32 bits) after sign/zero extension to
   * the operand size. A direct far pointer (row operand `Ap`, size 4 or 6) holds the offset in
   * imm and the selector in immHi.
   */
  Imm,
  /**
   * Absolute branch target (imm holds it as a JS number). Size 8 in 64-bit mode; elsewhere the
   * operand size, to which the target is already truncated (IP wraps at 64K in 16-bit code).
   */
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
  /**
   * Size in bytes: 1, 2, 4, 8, 10 (x87 m80), 16; far pointers 4 (16:16) or 6 (16:32); BOUND's
   * pair of bounds 4 or 8; for Mem operands of no fixed size, 0.
   */
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
  /** The code size it was decoded for. */
  mode: CodeSize;
  /** Effective operand size in bytes (2, 4 or 8) as the mode, prefixes and REX.W make it. */
  opSize: number;
  /** Address size in bytes: the mode's (2, 4 or 8), or the other one the 67 prefix selects (4, 2 or 4). */
  addrSize: number;
  // Memory operand (when some op has kind Mem).
  /** Base register 0-15 or BASE_NONE. */
  base: number;
  /** Index register 0-15 or -1. */
  index: number;
  scale: number;
  /**
   * Displacement, sign-extended; for RIP-relative operands the absolute target (next + disp32)
   * with base = BASE_NONE. With 16- and 32-bit addressing the consumer truncates the sum
   * base + index*scale + disp to the address size (16-bit forms use scale 1: [bx+si] is base
   * rBX, index rSI).
   */
  disp: number;
  ripRel: boolean;
  /**
   * The segment of the memory operand. In 64-bit mode Seg.FS or Seg.GS when overridden, else
   * Seg.NONE (the others have base 0 there). In 16- and 32-bit modes always a segment: the
   * override, else SS for rSP/rBP-based forms (16-bit: those using BP), else DS; for string
   * instructions the override or DS names the source, while ES:rDI is implicit.
   */
  seg: number;
  /** 0, 0xF3 (rep/repe) or 0xF2 (repne) when not consumed as a mandatory prefix. */
  rep: number;
  lock: boolean;
  /** The ModRM reg field (with REX.R), for helpers that need it; -1 without ModRM. */
  modrmReg: number;
  /** REX prefix byte, or 0. */
  rex: number;
}
