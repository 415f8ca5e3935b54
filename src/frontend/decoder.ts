/**
 * The x86 decoder for 16-, 32- and 64-bit code: prefixes, REX, opcode maps, ModRM/SIB (and
 * the 16-bit ModRM forms), displacements and immediates, driven entirely by the opcode table
 * (table.ts). It runs once per translated instruction, never per executed one. The mode
 * changes little: which rows exist (a map per mode), the default operand and address sizes,
 * and a few operand rules, each checked where it applies, so 64-bit decoding pays nothing for
 * the others.
 *
 * Prefix rules that matter: a REX byte (64-bit mode only; 40-4F are INC/DEC elsewhere) counts
 * only directly before the opcode; the last of F2/F3 wins; a mandatory prefix (66/F2/F3 rows)
 * is chosen before 66 acts as operand-size override; 66 and 67 toggle the mode's operand and
 * address size; o64/f64 apply only in 64-bit mode. CS/DS/ES/SS overrides are ignored in 64-bit
 * mode, where FS/GS add their bases; elsewhere the last segment override wins.
 * An undecodable byte sequence raises #UD through `Unimplemented`, whose text names the bytes.
 */
import { CpuException, Unimplemented, Vec } from '../cpu/exceptions.js';
import { Reg } from '../cpu/state.js';
import { BASE_NONE, type CodeSize, type Insn, OpKind, type Operand, Seg } from './insn.js';
import { Loc, type OpRow, type OperandSpec, ROWS_BY_OPCODE_64, ROWS_BY_OPCODE_LEGACY, SSE_OPCODES, operandBytes } from './table.js';

export type FetchByte = (addr: number) => number;

const MAX_LEN = 15;

class Cursor {
  pos = 0;
  /** The ModRM byte once read, else -1. */
  modrm = -1;
  readonly bytes: number[] = [];
  constructor(
    readonly fetch: FetchByte,
    readonly start: number,
  ) {}
  u8(): number {
    if (this.pos >= MAX_LEN) throw new CpuException(Vec.GP, 0);
    const b = this.fetch(this.start + this.pos++);
    this.bytes.push(b);
    return b;
  }
  peek(): number {
    if (this.pos >= MAX_LEN) throw new CpuException(Vec.GP, 0);
    return this.fetch(this.start + this.pos);
  }
  s8(): number {
    return (this.u8() << 24) >> 24;
  }
  u16(): number {
    return this.u8() | (this.u8() << 8);
  }
  s16(): number {
    return (this.u16() << 16) >> 16;
  }
  s32(): number {
    return this.u8() | (this.u8() << 8) | (this.u8() << 16) | (this.u8() << 24);
  }
}

function hex(bytes: number[]): string {
  return bytes.map((b) => b.toString(16).padStart(2, '0')).join(' ');
}

function noSuchInstruction(c: Cursor, mode: CodeSize): never {
  // Show the bytes decoded so far plus a few after, as far as they can be fetched.
  const shown = [...c.bytes];
  for (let i = c.pos; i < c.pos + 4 && shown.length < MAX_LEN; i++) {
    try {
      shown.push(c.fetch(c.start + i));
    } catch {
      break;
    }
  }
  const where = mode === 64 ? '' : ` (${mode}-bit code)`;
  throw new Unimplemented(`unknown or unsupported instruction at 0x${c.start.toString(16)}${where}: ${hex(shown)}`);
}

function operand(kind: OpKind, size: number, reg = 0, hi8 = false, imm = 0, immHi = 0): Operand {
  return { kind, size, reg, hi8, imm, immHi };
}

/**
 * Decode one instruction at addr in code of the given size. In 16- and 32-bit code, addr is
 * the offset in CS (IP/EIP), as branch targets wrap in it; `fetch` adds the segment base.
 */
export function decode(fetch: FetchByte, addr: number, mode: CodeSize = 64): Insn {
  const long = mode === 64;
  const c = new Cursor(fetch, addr);
  let has66 = false;
  let has67 = false;
  let lock = false;
  let rep = 0;
  let seg = Seg.NONE;
  let rex = 0;
  let b: number;
  // Legacy prefixes, then (64-bit mode) an optional REX that must immediately precede the opcode.
  for (;;) {
    b = c.u8();
    if (b === 0x66) has66 = true;
    else if (b === 0x67) has67 = true;
    else if (b === 0xf0) lock = true;
    else if (b === 0xf2 || b === 0xf3) rep = b;
    else if (b === 0x64) seg = Seg.FS;
    else if (b === 0x65) seg = Seg.GS;
    else if (b === 0x26 || b === 0x2e || b === 0x36 || b === 0x3e) {
      // ES, CS, SS, DS: bits 4-3 of the byte are the segment number. 64-bit mode ignores them.
      if (!long) seg = (b >> 3) & 3;
    } else if (long && (b & 0xf0) === 0x40) {
      rex = b;
      b = c.u8();
      if ((b & 0xf0) === 0x40) {
        rex = 0; // a REX followed by another REX: only the last one counts
        c.pos--;
        c.bytes.pop();
        continue;
      }
      if (b === 0x66 || b === 0x67 || b === 0xf0 || b === 0xf2 || b === 0xf3 || b === 0x64 || b === 0x65 || b === 0x26 || b === 0x2e || b === 0x36 || b === 0x3e) {
        rex = 0; // a REX followed by a legacy prefix is ignored
        c.pos--;
        c.bytes.pop();
        continue;
      }
      break;
    } else break;
  }
  let map = 0;
  if (b === 0x0f) {
    map = 1;
    b = c.u8();
    if (b === 0x38) (map = 2), (b = c.u8());
    else if (b === 0x3a) (map = 3), (b = c.u8());
  }
  const candidates = (long ? ROWS_BY_OPCODE_64 : ROWS_BY_OPCODE_LEGACY).get(map * 256 + b);
  if (!candidates) noSuchInstruction(c, mode);

  // Choose by mandatory prefix. For an SSE opcode (one with a 66 row) the last F2/F3, else 66,
  // selects the form, and a missing form is #UD. Elsewhere F2/F3 select a form only where a row
  // wants them (tzcnt, pause…) and are otherwise ignored, except by NP forms.
  const sse = SSE_OPCODES.has(map * 256 + b);
  let prefix = 0;
  if (sse) prefix = rep || (has66 ? 0x66 : 0);
  else if (rep) for (const r of candidates) if (r.prefix === rep) prefix = rep;
  // 90: NOP unless REX.B makes it XCHG r8, rax.
  const xchg = map === 0 && b === 0x90 ? rex & 1 : -1;
  const row = selectRow(c, candidates, prefix, rep !== 0 || has66, xchg, mode);
  // 66 on an SSE opcode selects the form; it does not change the operand size.
  const sizeOverride = has66 && !sse;
  if (prefix === rep && prefix) rep = 0;
  const modrm = c.modrm;

  let opSize: number;
  let addrSize: number;
  if (long) {
    opSize = rex & 8 ? 8 : sizeOverride ? 2 : 4;
    if (row.f64) opSize = 8;
    else if (row.o64 && !sizeOverride) opSize = 8;
    addrSize = has67 ? 4 : 8;
  } else {
    // 66 and 67 toggle between the mode's size and the other one.
    opSize = (mode === 16) !== sizeOverride ? 2 : 4;
    addrSize = (mode === 16) !== has67 ? 2 : 4;
  }

  const insn: Insn = {
    addr, len: 0, next: 0, bytes: new Uint8Array(0), mnem: row.mnem, cond: row.cond, row, ops: [],
    mode, opSize, addrSize, base: BASE_NONE, index: -1, scale: 1, disp: 0, ripRel: false, seg, rep,
    lock, modrmReg: -1, rex,
  };

  // ModRM memory operand / register fields.
  let rmIsReg = false;
  let rmReg = 0;
  let regField = 0;
  if (modrm >= 0) {
    const mod = modrm >> 6;
    regField = ((modrm >> 3) & 7) | (rex & 4 ? 8 : 0);
    insn.modrmReg = regField;
    const rm = modrm & 7;
    if (mod === 3 || row.modIgnored) {
      rmIsReg = true;
      rmReg = rm | (rex & 1 ? 8 : 0);
    } else if (addrSize === 2) address16(c, insn, mod, rm);
    else address32or64(c, insn, mod, rm, rex);
  }
  // Outside 64-bit mode every memory access has a segment: rSP/rBP-based ones use SS.
  if (!long && seg === Seg.NONE) insn.seg = insn.base === Reg.RSP || insn.base === Reg.RBP ? Seg.SS : Seg.DS;

  for (const spec of row.operands) insn.ops.push(decodeOperand(c, insn, row, spec, b, rmIsReg, rmReg, regField, rex));

  insn.len = c.pos;
  insn.next = addr + c.pos;
  insn.bytes = Uint8Array.from(c.bytes);
  if (insn.ripRel) insn.disp = insn.next + insn.disp; // absolute: immediates are decoded by now
  if (insn.lock && (!row.lock || !insn.ops.some((o) => o.kind === OpKind.Mem))) throw new CpuException(Vec.UD);
  return insn;
}

/** Does the row fit the prefixes (and, for opcode 90, the REX.B choice between NOP and XCHG)? */
function fitsPrefixes(r: OpRow, prefix: number, strayPrefix: boolean, xchg: number): boolean {
  return r.prefix === prefix && !(r.np && strayPrefix) && (xchg < 0 || (r.mnem === 'xchg') === (xchg === 1));
}

/**
 * The one row that matches: by prefixes, then by ModRM (read here, into c.modrm, when a fitting
 * row has one). Where several match, the most specific wins: an exact ModRM byte over a
 * /digit, a /digit over /r. Loops rather than filters: this runs for every instruction.
 */
function selectRow(c: Cursor, candidates: readonly OpRow[], prefix: number, strayPrefix: boolean, xchg: number, mode: CodeSize): OpRow {
  let fitting = 0;
  let wantsModrm = false;
  for (const r of candidates) {
    if (!fitsPrefixes(r, prefix, strayPrefix, xchg)) continue;
    fitting++;
    if (r.hasModrm) wantsModrm = true;
  }
  if (fitting === 0) noSuchInstruction(c, mode);
  const modrm = wantsModrm ? (c.modrm = c.u8()) : -1;
  const mod = modrm >> 6;
  const reg = (modrm >> 3) & 7;
  let best: OpRow | null = null;
  let bestRank = -1;
  let tie = false;
  for (const r of candidates) {
    if (!fitsPrefixes(r, prefix, strayPrefix, xchg)) continue;
    if (wantsModrm && (!r.hasModrm || (r.modrmExact >= 0 && r.modrmExact !== modrm) || (r.ext >= 0 && r.ext !== reg) || (r.mod !== 'any' && (r.mod === 'mem') !== (mod !== 3)))) continue;
    const rank = r.modrmExact >= 0 ? 2 : r.ext >= 0 ? 1 : 0;
    if (rank > bestRank) (best = r), (bestRank = rank), (tie = false);
    else if (rank === bestRank) tie = true;
  }
  if (!best || tie) noSuchInstruction(c, mode);
  return best;
}

/** 16-bit ModRM memory forms by r/m: base and index registers ([bx+si], [bx+di], [bp+si], [bp+di], [si], [di], [bp], [bx]). */
const BASE16 = [Reg.RBX, Reg.RBX, Reg.RBP, Reg.RBP, Reg.RSI, Reg.RDI, Reg.RBP, Reg.RBX];
const INDEX16 = [Reg.RSI, Reg.RDI, Reg.RSI, Reg.RDI, -1, -1, -1, -1];

function address16(c: Cursor, insn: Insn, mod: number, rm: number): void {
  if (mod === 0 && rm === 6) {
    insn.disp = c.s16(); // absolute disp16 in place of [bp]
    return;
  }
  insn.base = BASE16[rm];
  insn.index = INDEX16[rm];
  insn.disp = mod === 1 ? c.s8() : mod === 2 ? c.s16() : 0;
}

/** 32- and 64-bit ModRM/SIB memory forms. mod=00 r/m=101 is RIP-relative in 64-bit mode, an absolute disp32 elsewhere. */
function address32or64(c: Cursor, insn: Insn, mod: number, rm: number, rex: number): void {
  let disp = 0;
  if (rm === 4) {
    const sib = c.u8();
    const scale = 1 << (sib >> 6);
    const idx = ((sib >> 3) & 7) | (rex & 2 ? 8 : 0);
    const base = sib & 7;
    insn.scale = scale;
    insn.index = idx === 4 ? -1 : idx;
    if (base === 5 && mod === 0) {
      insn.base = BASE_NONE;
      disp = c.s32();
    } else insn.base = base | (rex & 1 ? 8 : 0);
  } else if (rm === 5 && mod === 0) {
    insn.ripRel = insn.mode === 64;
    disp = c.s32();
  } else insn.base = rm | (rex & 1 ? 8 : 0);
  if (mod === 1) disp = c.s8();
  else if (mod === 2) disp = c.s32();
  insn.disp = disp;
}

/** Control registers that exist (CR0, CR2, CR3, CR4, CR8), as a bit mask: MOV with any other is #UD. */
const CONTROL_REGISTERS = (1 << 0) | (1 << 2) | (1 << 3) | (1 << 4) | (1 << 8);

function decodeOperand(
  c: Cursor, insn: Insn, row: OpRow, spec: OperandSpec, opcode: number, rmIsReg: boolean, rmReg: number, regField: number, rex: number,
): Operand {
  const size = operandBytes(spec.size, insn.opSize);
  const gpr = (r: number, sz: number): Operand => {
    // Without REX, byte registers 4-7 are AH, CH, DH, BH.
    if (sz === 1 && !rex && r >= 4 && r < 8) return operand(OpKind.Reg, 1, r - 4, true);
    return operand(OpKind.Reg, sz, r);
  };
  switch (spec.loc) {
    case Loc.E:
      return rmIsReg ? gpr(rmReg, size) : operand(OpKind.Mem, size);
    case Loc.R:
      if (!rmIsReg) throw new CpuException(Vec.UD);
      return gpr(rmReg, size);
    case Loc.M:
      if (rmIsReg) throw new CpuException(Vec.UD);
      return operand(OpKind.Mem, size);
    case Loc.G:
      return gpr(regField, size);
    case Loc.Z:
      return gpr((opcode & 7) | (rex & 1 ? 8 : 0), size);
    case Loc.V:
      return operand(OpKind.Xmm, size, regField);
    case Loc.W:
      return rmIsReg ? operand(OpKind.Xmm, size, rmReg) : operand(OpKind.Mem, size);
    case Loc.U:
      if (!rmIsReg) throw new CpuException(Vec.UD);
      return operand(OpKind.Xmm, size, rmReg);
    case Loc.N:
      return operand(OpKind.St, 10, rmReg & 7);
    case Loc.S: {
      const sreg = regField & 7;
      // There is no sixth or seventh segment register, and CS cannot be loaded by MOV.
      if (sreg > 5 || (sreg === 1 && row.operands[0] === spec)) throw new CpuException(Vec.UD);
      return operand(OpKind.Seg, 2, sreg);
    }
    case Loc.C:
      if (!(CONTROL_REGISTERS & (1 << regField))) throw new CpuException(Vec.UD);
      return operand(OpKind.Cr, size, regField);
    case Loc.D:
      if (regField > 7) throw new CpuException(Vec.UD); // there is no DR8-DR15
      return operand(OpKind.Dr, size, regField);
    case Loc.I: {
      if (size === 1) return operand(OpKind.Imm, 1, 0, false, c.u8(), 0);
      if (size === 2) return operand(OpKind.Imm, 2, 0, false, c.u16(), 0);
      if (spec.size === 'v' && size === 8) {
        // MOV r64, imm64 (the only full 64-bit immediate).
        const lo = c.s32();
        return operand(OpKind.Imm, 8, 0, false, lo, c.s32());
      }
      const v = c.s32(); // imm32, sign-extended to 64 bits for 64-bit operations
      const sz = spec.size === 'z' ? insn.opSize : size;
      return operand(OpKind.Imm, sz, 0, false, v, sz === 8 ? v >> 31 : 0);
    }
    case Loc.Is: {
      const v = c.s8();
      const sz = size || insn.opSize;
      const lo = sz === 1 ? v & 0xff : sz === 2 ? v & 0xffff : v;
      return operand(OpKind.Imm, sz, 0, false, lo, sz === 8 ? v >> 31 : 0);
    }
    case Loc.J: {
      // 64-bit mode reads rel32 even with 66 (as Intel does); elsewhere Jz is rel16 at operand size 16.
      const long = insn.mode === 64;
      const rel = spec.size === 'b' ? c.s8() : !long && insn.opSize === 2 ? c.s16() : c.s32();
      // The target is relative to the end of the instruction, which is here: J is always last.
      const target = insn.addr + c.pos + rel;
      if (long) return operand(OpKind.Rel, 8, 0, false, target, 0);
      // Outside 64-bit mode the instruction pointer has the operand size and wraps.
      return operand(OpKind.Rel, insn.opSize, 0, false, insn.opSize === 2 ? target & 0xffff : target >>> 0, 0);
    }
    case Loc.O: {
      insn.base = BASE_NONE;
      if (insn.addrSize === 2) insn.disp = c.u16();
      else {
        const lo = c.s32();
        const hi = insn.addrSize === 8 ? c.s32() : 0;
        insn.disp = insn.addrSize === 8 ? hi * 4294967296 + (lo >>> 0) : lo >>> 0;
      }
      return operand(OpKind.Mem, size);
    }
    case Loc.A: {
      const offset = insn.opSize === 2 ? c.u16() : c.s32();
      return operand(OpKind.Imm, size, 0, false, offset, c.u16());
    }
    case Loc.X:
    case Loc.Y:
      return operand(OpKind.Mem, size); // implicit rSI / rDI: the string helpers address them
    case Loc.Fixed:
      if (spec.fixedKind === 'st') return operand(OpKind.St, 10, spec.fixedReg);
      if (spec.fixedKind === 'seg') return operand(OpKind.Seg, 2, spec.fixedReg);
      return gpr(spec.fixedReg, size);
    case Loc.One:
      return operand(OpKind.Imm, 1, 0, false, 1, 0);
  }
  void row;
  throw new Error('decoder: unhandled operand location');
}
