/**
 * The guest CPU's architectural state, kept in one ArrayBuffer at fixed offsets.
 *
 * Why one buffer: compiled blocks, the IR interpreter and every helper read and write the
 * same typed-array slots, so a block can keep registers in JS locals and write them back to
 * known indices at its exits, and saving or comparing a whole CPU is a buffer copy. 64-bit
 * registers are pairs of int32 halves (lo at the even index, hi at the odd one): JS has no
 * fast 64-bit integers and BigInt is far too slow per instruction. test/state-layout.test.ts
 * pins this layout.
 */

/** Int32 indices into the state buffer. */
export const enum S {
  /** General registers: register r has lo at 2r, hi at 2r+1 (RAX=0 … R15=15). */
  GPR = 0,
  RIP_LO = 32,
  RIP_HI = 33,
  /** Lazy flags (see cpu/flags.ts): the kind of the last flag-setting op and its operands. */
  CC_OP = 34,
  CC_DST_LO = 35,
  CC_DST_HI = 36,
  CC_SRC_LO = 37,
  CC_SRC_HI = 38,
  CC_SRC2_LO = 39,
  CC_SRC2_HI = 40,
  /**
   * RFLAGS bits that are not computed lazily (DF, IF, TF, AC, ID, …), and OSZAPC too while
   * CC_OP is CcOp.EFLAGS.
   */
  FLAGS = 41,
  MXCSR = 46,
  /** x87 control word, status word (TOP is kept in bits 11-13 as in FSTSW), tag word (abridged: bit i = ST register i physical is valid). */
  FPU_CW = 47,
  FPU_SW = 48,
  FPU_TAG = 49,
  /** Scratch slots a compiled block or helper uses to report why it stopped (see jit/exits). */
  EXIT_REASON = 50,
  EXIT_INFO = 51,
  /** XMM0-15: four int32 lanes each, starting at int32 index 64 (byte 256, 16-byte aligned). */
  XMM = 64,
  /** ST(physical 0-7): mantissa lo, mantissa hi, sign<<15|exponent, unused. */
  FPR = 128,
  /**
   * Segment caches ES CS SS DS FS GS LDTR TR (SegReg order), SEG_STRIDE int32s each:
   * selector, attributes (the VMCB's 12-bit packing: type, S, DPL, P, AVL, L, D/B, G), limit
   * (bytes, expanded by G), base lo, base hi. User mode uses only the FS and GS bases.
   */
  SEG = 192,
  FS_BASE_LO = 192 + 4 * 6 + 4,
  FS_BASE_HI = 192 + 4 * 6 + 5,
  GS_BASE_LO = 192 + 5 * 6 + 4,
  GS_BASE_HI = 192 + 5 * 6 + 5,
  // System registers (machine mode). 64-bit values are lo/hi pairs.
  CR0 = 240,
  CR2_LO = 241,
  CR2_HI = 242,
  CR3_LO = 243,
  CR3_HI = 244,
  CR4 = 245,
  EFER = 247,
  XCR0 = 248,
  /** DR0-DR3 lo/hi pairs. */
  DR0 = 250,
  DR6 = 258,
  DR7 = 259,
  GDTR_BASE_LO = 260,
  GDTR_BASE_HI = 261,
  GDTR_LIMIT = 262,
  IDTR_BASE_LO = 263,
  IDTR_BASE_HI = 264,
  IDTR_LIMIT = 265,
  /** Current privilege level (CS.DPL as loaded; kept separately because every check reads it). */
  CPL = 266,
  /** MSRs that instructions read directly (lo/hi pairs). */
  STAR_LO = 268,
  STAR_HI = 269,
  LSTAR_LO = 270,
  LSTAR_HI = 271,
  CSTAR_LO = 272,
  CSTAR_HI = 273,
  SFMASK = 274,
  KGS_BASE_LO = 276,
  KGS_BASE_HI = 277,
  SYSENTER_CS = 278,
  SYSENTER_ESP_LO = 280,
  SYSENTER_ESP_HI = 281,
  SYSENTER_EIP_LO = 282,
  SYSENTER_EIP_HI = 283,
  TSC_AUX = 286,
  SIZE = 320,
}

/** Int32s per segment cache in S.SEG. */
export const SEG_STRIDE = 6;
/** Offsets inside one segment cache. */
export const enum SegField {
  SEL = 0,
  ATTR = 1,
  LIMIT = 2,
  BASE_LO = 4,
  BASE_HI = 5,
}
/** Segment registers in state order (ES…GS match the encoding of the ModRM reg field). */
export const enum SegReg {
  ES = 0, CS, SS, DS, FS, GS, LDTR, TR,
}

/** Float64 index of the retired-instruction counter. */
export const ICOUNT_F64 = 80; // byte 640 = int32 index 160, inside the unused tail before SIZE

export const enum Reg {
  RAX = 0, RCX, RDX, RBX, RSP, RBP, RSI, RDI, R8, R9, R10, R11, R12, R13, R14, R15,
}

export const REG_NAMES64 = ['rax', 'rcx', 'rdx', 'rbx', 'rsp', 'rbp', 'rsi', 'rdi', 'r8', 'r9', 'r10', 'r11', 'r12', 'r13', 'r14', 'r15'];
export const REG_NAMES32 = ['eax', 'ecx', 'edx', 'ebx', 'esp', 'ebp', 'esi', 'edi', 'r8d', 'r9d', 'r10d', 'r11d', 'r12d', 'r13d', 'r14d', 'r15d'];
export const REG_NAMES16 = ['ax', 'cx', 'dx', 'bx', 'sp', 'bp', 'si', 'di', 'r8w', 'r9w', 'r10w', 'r11w', 'r12w', 'r13w', 'r14w', 'r15w'];
/** 8-bit names with REX present; without REX, 4-7 are ah, ch, dh, bh (see REG8_LEGACY). */
export const REG_NAMES8 = ['al', 'cl', 'dl', 'bl', 'spl', 'bpl', 'sil', 'dil', 'r8b', 'r9b', 'r10b', 'r11b', 'r12b', 'r13b', 'r14b', 'r15b'];
export const REG8_LEGACY = ['al', 'cl', 'dl', 'bl', 'ah', 'ch', 'dh', 'bh'];

/** RFLAGS bits. */
export const enum F {
  CF = 1 << 0,
  PF = 1 << 2,
  AF = 1 << 4,
  ZF = 1 << 6,
  SF = 1 << 7,
  TF = 1 << 8,
  IF = 1 << 9,
  DF = 1 << 10,
  OF = 1 << 11,
  AC = 1 << 18,
  ID = 1 << 21,
  /** The six arithmetic flags. */
  OSZAPC = 0x8d5,
  /** Bit 1 always reads as one. */
  FIXED = 1 << 1,
}

/** The whole state: views over one buffer. */
export class CpuState {
  readonly buf = new ArrayBuffer(S.SIZE * 4);
  readonly s = new Int32Array(this.buf);
  readonly f64 = new Float64Array(this.buf);
  readonly u8 = new Uint8Array(this.buf);
  readonly dv = new DataView(this.buf);

  constructor() {
    this.s[S.MXCSR] = 0x1f80;
    this.s[S.FPU_CW] = 0x037f;
  }

  /** A 64-bit register as a JS number (exact when it fits 53 bits; for logs and syscalls). */
  reg(r: number): number {
    return this.s[2 * r + 1] * 4294967296 + (this.s[2 * r] >>> 0);
  }

  /** Unsigned 64-bit register as bigint: for syscall arguments and logs only, never per instruction. */
  regU(r: number): bigint {
    return (BigInt(this.s[2 * r + 1] >>> 0) << 32n) | BigInt(this.s[2 * r] >>> 0);
  }

  setReg(r: number, v: number): void {
    this.s[2 * r] = v | 0; // ToInt32 keeps the low 32 bits of any integral double
    this.s[2 * r + 1] = Math.floor(v / 4294967296) | 0;
  }

  get rip(): number {
    return this.s[S.RIP_HI] * 4294967296 + (this.s[S.RIP_LO] >>> 0);
  }

  set rip(v: number) {
    this.s[S.RIP_LO] = v | 0;
    this.s[S.RIP_HI] = Math.floor(v / 4294967296) | 0;
  }

  get icount(): number {
    return this.f64[ICOUNT_F64];
  }

  set icount(v: number) {
    this.f64[ICOUNT_F64] = v;
  }
}

/**
 * The x87 control word as loaded by FLDCW, FLDENV, FRSTOR, FXRSTOR and sigreturn: only the
 * exception masks, precision, rounding and infinity control are writable; bit 6 reads as one.
 */
export function fpuControlWord(v: number): number {
  return (v & 0x1f3f) | 0x40;
}

const hex = (v: number, digits: number) => (v >>> 0).toString(16).padStart(digits, '0');

/** The registers as `-d cpu` logs them before each block (QEMU's layout, abridged). */
export function formatCpuState(cpu: { s: Int32Array }): string {
  const s = cpu.s;
  const r64 = (i: number) => hex(s[2 * i + 1], 8) + hex(s[2 * i], 8);
  const lines: string[] = [];
  for (let i = 0; i < 16; i += 4) lines.push([0, 1, 2, 3].map((k) => `${REG_NAMES64[i + k].toUpperCase().padEnd(3)}=${r64(i + k)}`).join(' '));
  lines.push(`RIP=${hex(s[S.RIP_HI], 8)}${hex(s[S.RIP_LO], 8)} FL=${hex(s[S.FLAGS], 8)} (lazy op ${s[S.CC_OP]}) CPL=${s[S.CPL]}`);
  const seg = (name: string, i: number) => {
    const at = S.SEG + SEG_STRIDE * i;
    return `${name} =${hex(s[at + SegField.SEL], 4)} ${hex(s[at + SegField.BASE_HI], 8)}${hex(s[at + SegField.BASE_LO], 8)} ${hex(s[at + SegField.LIMIT], 8)} ${hex(s[at + SegField.ATTR], 3)}`;
  };
  ['ES', 'CS', 'SS', 'DS', 'FS', 'GS', 'LDT', 'TR'].forEach((n, i) => lines.push(seg(n.padEnd(3), i)));
  lines.push(`CR0=${hex(s[S.CR0], 8)} CR2=${hex(s[S.CR2_HI], 8)}${hex(s[S.CR2_LO], 8)} CR3=${hex(s[S.CR3_HI], 8)}${hex(s[S.CR3_LO], 8)} CR4=${hex(s[S.CR4], 8)} EFER=${hex(s[S.EFER], 8)}`);
  return lines.join('\n');
}
