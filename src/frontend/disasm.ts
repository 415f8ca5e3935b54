/**
 * Intel-syntax disassembly of decoded instructions (for -d in_asm, error messages and the
 * decoder cross-checks), in the style of `objdump -M intel`.
 */
import { REG8_LEGACY, REG_NAMES16, REG_NAMES32, REG_NAMES64, REG_NAMES8 } from '../cpu/state.js';
import { BASE_NONE, type Insn, OpKind, type Operand } from './insn.js';
import { CC_NAMES, Loc } from './table.js';

const SEG_NAMES = ['es', 'cs', 'ss', 'ds', 'fs', 'gs'];
const PTR: Record<number, string> = { 1: 'byte', 2: 'word', 4: 'dword', 8: 'qword', 10: 'tbyte', 16: 'xmmword' };

function hex(v: number): string {
  return v < 0 ? `-0x${(-v).toString(16)}` : `0x${v.toString(16)}`;
}

export function regName(r: number, size: number, hi8 = false): string {
  if (size === 1) return hi8 ? REG8_LEGACY[r + 4] : REG_NAMES8[r];
  if (size === 2) return REG_NAMES16[r];
  if (size === 4) return REG_NAMES32[r];
  return REG_NAMES64[r];
}

function memText(insn: Insn, op: Operand, index: number): string {
  const parts: string[] = [];
  const regs = insn.addrSize === 4 ? REG_NAMES32 : REG_NAMES64;
  let inner: string;
  if (insn.ripRel) inner = `rip+${hex(insn.disp - insn.next)}`.replace('+-', '-');
  else {
    if (insn.base !== BASE_NONE) parts.push(regs[insn.base]);
    if (insn.index >= 0) parts.push(`${regs[insn.index]}*${insn.scale}`);
    inner = parts.join('+');
    if (insn.disp !== 0 || !inner) inner += inner ? (insn.disp < 0 ? `-${hex(-insn.disp)}` : `+${hex(insn.disp)}`) : hex(insn.disp);
  }
  const seg = insn.seg >= 0 ? `${SEG_NAMES[insn.seg]}:` : '';
  // moffs forms take their size from the accumulator, so objdump prints no size for them.
  const ptr = PTR[op.size] && insn.row.operands[index]?.loc !== Loc.O ? `${PTR[op.size]} ptr ` : '';
  return `${ptr}${seg}[${inner}]`;
}

function operandText(insn: Insn, op: Operand, index: number): string {
  switch (op.kind) {
    case OpKind.Reg: return regName(op.reg, op.size, op.hi8);
    case OpKind.Mem: return memText(insn, op, index);
    case OpKind.Imm:
      // Unsigned in the operand's width, as objdump prints it (BigInt is fine off the hot path).
      return op.size === 8 ? `0x${((BigInt(op.immHi >>> 0) << 32n) | BigInt(op.imm >>> 0)).toString(16)}` : hex(op.size === 4 ? op.imm >>> 0 : op.imm);
    case OpKind.Rel: return hex(op.imm);
    case OpKind.Xmm: return `xmm${op.reg}`;
    // The implicit stack top is `st`; a ModRM-selected register is `st(i)`, even st(0).
    case OpKind.St: return insn.row.operands[index]?.loc === Loc.Fixed ? 'st' : `st(${op.reg})`;
    case OpKind.Seg: return SEG_NAMES[op.reg];
    case OpKind.Cr: return `cr${op.reg}`;
    case OpKind.Dr: return `dr${op.reg}`;
  }
  return '?';
}

/** The mnemonic as the manuals spell it for this form. */
export function mnemonicOf(insn: Insn): string {
  const m = insn.mnem;
  if (insn.cond >= 0) return m.replace('cc', CC_NAMES[insn.cond]);
  if (m === 'cbw') return insn.opSize === 2 ? 'cbw' : insn.opSize === 4 ? 'cwde' : 'cdqe';
  if (m === 'cwd') return insn.opSize === 2 ? 'cwd' : insn.opSize === 4 ? 'cdq' : 'cqo';
  if (m === 'imul1' || m === 'imul3') return 'imul';
  if (m === 'cmpxchg8b' && insn.opSize === 8) return 'cmpxchg16b';
  if ((m === 'fxsave' || m === 'fxrstor') && insn.rex & 8) return m + '64';
  if (m === 'movd' && insn.opSize === 8) return 'movq';
  if (m === 'jrcxz' && insn.addrSize === 4) return 'jecxz';
  const sfx: Record<number, string> = { 1: 'b', 2: 'w', 4: 'd', 8: 'q' };
  if (['movs', 'cmps', 'stos', 'lods', 'scas'].includes(m)) return m + sfx[insn.ops[0].size];
  return m;
}

const CMP_PREDICATES = ['eq', 'lt', 'le', 'unord', 'neq', 'nlt', 'nle', 'ord'];
const SSE_CMP = /^cmp(ps|pd|ss|sd)$/;
const X87_ENV = /^(fldenv|fnstenv|frstor|fnsave)$/;

export function disassemble(insn: Insn): string {
  let mnem = mnemonicOf(insn);
  let operands = insn.ops;
  // objdump's spellings: an SSE compare with a predicate below 8 is named by it (cmpltsd), and
  // the 16-bit x87 environment forms (66 prefix) get a `w` suffix.
  if (SSE_CMP.test(insn.mnem) && insn.ops[2].imm < 8) {
    mnem = 'cmp' + CMP_PREDICATES[insn.ops[2].imm] + mnem.slice(3);
    operands = operands.slice(0, 2);
  }
  if (X87_ENV.test(mnem) && insn.opSize === 2) mnem += 'w';
  const prefix = insn.rep && insn.row.rep ? (insn.rep === 0xf3 ? (['cmps', 'scas'].includes(insn.mnem) ? 'repz ' : 'rep ') : 'repnz ') : '';
  const lock = insn.lock ? 'lock ' : '';
  const ops = ['movs', 'cmps', 'stos', 'lods', 'scas'].includes(insn.mnem) ? '' : operands.map((o, i) => operandText(insn, o, i)).join(',');
  return `${lock}${prefix}${mnem}${ops ? ' ' + ops : ''}`;
}
