/**
 * The x86-64 decoder (64-bit mode): prefixes, REX, opcode maps, ModRM/SIB, displacements and
 * immediates, driven entirely by the opcode table (table.ts). It runs once per translated
 * instruction, never per executed one.
 *
 * Prefix rules that matter: a REX byte counts only directly before the opcode; the last of
 * F2/F3 wins; a mandatory prefix (66/F2/F3 rows) is chosen before 66 acts as operand-size
 * override; CS/DS/ES/SS overrides are ignored in 64-bit mode, FS/GS add their bases.
 * An undecodable byte sequence raises #UD through `Unimplemented`, whose text names the bytes.
 */
import { CpuException, Unimplemented, Vec } from '../cpu/exceptions.js';
import { BASE_NONE, type Insn, OpKind, type Operand, Seg } from './insn.js';
import { Loc, type OpRow, type OperandSpec, ROWS_BY_OPCODE, SSE_OPCODES, operandBytes } from './table.js';

export type FetchByte = (addr: number) => number;

const MAX_LEN = 15;

class Cursor {
  pos = 0;
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
  s32(): number {
    return this.u8() | (this.u8() << 8) | (this.u8() << 16) | (this.u8() << 24);
  }
}

function hex(bytes: number[]): string {
  return bytes.map((b) => b.toString(16).padStart(2, '0')).join(' ');
}

function noSuchInstruction(c: Cursor): never {
  // Show the bytes decoded so far plus a few after, as far as they can be fetched.
  const shown = [...c.bytes];
  for (let i = c.pos; i < c.pos + 4 && shown.length < MAX_LEN; i++) {
    try {
      shown.push(c.fetch(c.start + i));
    } catch {
      break;
    }
  }
  throw new Unimplemented(`unknown or unsupported instruction at 0x${c.start.toString(16)}: ${hex(shown)}`);
}


function operand(kind: OpKind, size: number, reg = 0, hi8 = false, imm = 0, immHi = 0): Operand {
  return { kind, size, reg, hi8, imm, immHi };
}

/** Decode one instruction at addr. */
export function decode(fetch: FetchByte, addr: number): Insn {
  const c = new Cursor(fetch, addr);
  let opSize16 = false;
  let addr32 = false;
  let lock = false;
  let rep = 0;
  let seg = Seg.NONE;
  let rex = 0;
  let has66 = false;
  let b: number;
  // Legacy prefixes, then an optional REX that must immediately precede the opcode.
  for (;;) {
    b = c.u8();
    if (b === 0x66) (opSize16 = true), (has66 = true);
    else if (b === 0x67) addr32 = true;
    else if (b === 0xf0) lock = true;
    else if (b === 0xf2 || b === 0xf3) rep = b;
    else if (b === 0x64) seg = Seg.FS;
    else if (b === 0x65) seg = Seg.GS;
    else if (b === 0x26 || b === 0x2e || b === 0x36 || b === 0x3e) {
      /* ignored in 64-bit mode */
    } else if ((b & 0xf0) === 0x40) {
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
  const candidates = ROWS_BY_OPCODE.get(map * 256 + b);
  if (!candidates) noSuchInstruction(c);

  // Choose by mandatory prefix. For an SSE opcode (one with a 66 row) the last F2/F3, else 66,
  // selects the form, and a missing form is #UD. Elsewhere F2/F3 select a form only where a row
  // wants them (tzcnt, pause…) and are otherwise ignored, except by NP forms.
  const sse = SSE_OPCODES.has(map * 256 + b);
  let prefix = 0;
  if (sse) prefix = rep || (has66 ? 0x66 : 0);
  else if (rep && candidates.some((r) => r.prefix === rep)) prefix = rep;
  let rows = candidates.filter((r) => r.prefix === prefix && !(r.np && (rep || has66)));
  if (rows.length === 0) noSuchInstruction(c);
  if (sse && has66) opSize16 = false;
  if (prefix === rep && prefix) rep = 0;

  // 90: NOP unless REX.B makes it XCHG r8, rax.
  if (map === 0 && b === 0x90) rows = rows.filter((r) => (rex & 1 ? r.mnem === 'xchg' : r.mnem !== 'xchg'));

  let modrm = -1;
  if (rows.some((r) => r.hasModrm)) {
    modrm = c.u8();
    const mod = modrm >> 6;
    const reg = (modrm >> 3) & 7;
    rows = rows.filter(
      (r) =>
        r.hasModrm &&
        (r.modrmExact < 0 || r.modrmExact === modrm) &&
        (r.ext < 0 || r.ext === reg) &&
        (r.mod === 'any' || (r.mod === 'mem') === (mod !== 3)),
    );
    // Rows with an exact ModRM byte are more specific than /digit rows.
    if (rows.length > 1) {
      const exact = rows.filter((r) => r.modrmExact >= 0);
      if (exact.length) rows = exact;
    }
  }
  if (rows.length !== 1) noSuchInstruction(c);
  const row = rows[0];

  const rexW = (rex & 8) !== 0;
  let opSize = rexW ? 8 : opSize16 ? 2 : 4;
  if (row.f64) opSize = 8;
  else if (row.o64 && !opSize16) opSize = 8;
  const addrSize = addr32 ? 4 : 8;

  const insn: Insn = {
    addr, len: 0, next: 0, bytes: new Uint8Array(0), mnem: row.mnem, cond: row.cond, row, ops: [],
    opSize, addrSize, base: BASE_NONE, index: -1, scale: 1, disp: 0, ripRel: false, seg, rep,
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
    if (mod === 3) {
      rmIsReg = true;
      rmReg = rm | (rex & 1 ? 8 : 0);
    } else {
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
        insn.ripRel = true;
        disp = c.s32();
      } else insn.base = rm | (rex & 1 ? 8 : 0);
      if (mod === 1) disp = c.s8();
      else if (mod === 2) disp = c.s32();
      insn.disp = disp;
    }
  }

  for (const spec of row.operands) insn.ops.push(decodeOperand(c, insn, row, spec, b, rmIsReg, rmReg, regField, rex));

  insn.len = c.pos;
  insn.next = addr + c.pos;
  insn.bytes = Uint8Array.from(c.bytes);
  if (insn.ripRel) insn.disp = insn.next + insn.disp; // absolute: immediates are decoded by now
  if (insn.lock && (!row.lock || !insn.ops.some((o) => o.kind === OpKind.Mem))) throw new CpuException(Vec.UD);
  return insn;
}

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
      return operand(OpKind.Cr, 8, regField);
    case Loc.D:
      return operand(OpKind.Dr, 8, regField);
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
      const rel = spec.size === 'b' ? c.s8() : c.s32();
      // The target is relative to the end of the instruction, which is here: J is always last.
      return operand(OpKind.Rel, 8, 0, false, insn.addr + c.pos + rel, 0);
    }
    case Loc.O: {
      const lo = c.s32();
      const hi = insn.addrSize === 8 ? c.s32() : 0;
      insn.base = BASE_NONE;
      insn.disp = insn.addrSize === 8 ? hi * 4294967296 + (lo >>> 0) : lo >>> 0;
      return operand(OpKind.Mem, size);
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
