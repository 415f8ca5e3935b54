/**
 * Intel-syntax disassembly of decoded instructions (for -d in_asm, error messages and the
 * decoder cross-checks), in the style of `objdump -M intel` (with `-M i8086` for 16-bit code):
 * the same mnemonics, including objdump's operand-size suffixes on the instructions it names
 * by size (iretw, retfd, pushad, lgdtw, sysretq), and a segment printed only where a prefix
 * overrides it.
 */
import { REG8_LEGACY, REG_NAMES16, REG_NAMES32, REG_NAMES64, REG_NAMES8 } from '../cpu/state.js';
import { BASE_NONE, type Insn, OpKind, type Operand, Seg } from './insn.js';
import { CC_NAMES, Loc } from './table.js';

const SEG_NAMES = ['es', 'cs', 'ss', 'ds', 'fs', 'gs'];
const PTR: Record<number, string> = { 1: 'byte', 2: 'word', 4: 'dword', 6: 'fword', 8: 'qword', 10: 'tbyte', 16: 'xmmword' };
const SIZE_SUFFIX: Record<number, string> = { 1: 'b', 2: 'w', 4: 'd', 8: 'q' };
/** String instructions: named with their element size and printed without operands (`rep movsd`). */
const STRING_MNEMONICS = new Set(['movs', 'cmps', 'stos', 'lods', 'scas', 'ins', 'outs']);
const LEGACY_PREFIXES = new Set([0x66, 0x67, 0xf0, 0xf2, 0xf3, 0x26, 0x2e, 0x36, 0x3e, 0x64, 0x65]);

function hex(v: number): string {
  return v < 0 ? `-0x${(-v).toString(16)}` : `0x${v.toString(16)}`;
}

export function regName(r: number, size: number, hi8 = false): string {
  if (size === 1) return hi8 ? REG8_LEGACY[r + 4] : REG_NAMES8[r];
  if (size === 2) return REG_NAMES16[r];
  if (size === 4) return REG_NAMES32[r];
  return REG_NAMES64[r];
}

/**
 * The segment a prefix names, or Seg.NONE. In 64-bit mode that is insn.seg (only FS/GS count);
 * elsewhere insn.seg is always set, so the prefix bytes tell an override from the default.
 */
function segmentOverride(insn: Insn): number {
  if (insn.mode === 64) return insn.seg;
  let seg = Seg.NONE;
  for (const b of insn.bytes) {
    if (!LEGACY_PREFIXES.has(b)) break;
    if (b === 0x64 || b === 0x65) seg = b - 0x64 + Seg.FS;
    else if ((b & 0xe7) === 0x26) seg = (b >> 3) & 3; // 26 2E 36 3E: ES CS SS DS
  }
  return seg;
}

function memText(insn: Insn, op: Operand, index: number): string {
  const parts: string[] = [];
  const regs = insn.addrSize === 2 ? REG_NAMES16 : insn.addrSize === 4 ? REG_NAMES32 : REG_NAMES64;
  let inner: string;
  if (insn.ripRel) inner = `rip+${hex(insn.disp - insn.next)}`.replace('+-', '-');
  else {
    if (insn.base !== BASE_NONE) parts.push(regs[insn.base]);
    // 16-bit forms have an index without a scale ([bx+si]).
    if (insn.index >= 0) parts.push(insn.addrSize === 2 ? regs[insn.index] : `${regs[insn.index]}*${insn.scale}`);
    inner = parts.join('+');
    // An absolute address, unsigned in the address size (64-bit ones are printed signed, like branch targets).
    if (!inner && insn.addrSize !== 8) inner = hex(insn.addrSize === 2 ? insn.disp & 0xffff : insn.disp >>> 0);
    else if (insn.disp !== 0 || !inner) inner += inner ? (insn.disp < 0 ? `-${hex(-insn.disp)}` : `+${hex(insn.disp)}`) : hex(insn.disp);
  }
  const override = segmentOverride(insn);
  const seg = override >= 0 ? `${SEG_NAMES[override]}:` : '';
  // moffs forms take their size from the accumulator, so objdump prints no size for them.
  const ptr = PTR[op.size] && insn.row.operands[index]?.loc !== Loc.O ? `${PTR[op.size]} ptr ` : '';
  return `${ptr}${seg}[${inner}]`;
}

function operandText(insn: Insn, op: Operand, index: number): string {
  switch (op.kind) {
    case OpKind.Reg: return regName(op.reg, op.size, op.hi8);
    case OpKind.Mem: return memText(insn, op, index);
    case OpKind.Imm:
      if (insn.row.operands[index]?.loc === Loc.A) return `${hex(op.immHi & 0xffff)}:${hex(op.imm >>> 0)}`; // selector:offset
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

/** The operand size of the mode when no prefix changes it. */
function defaultOpSize(insn: Insn): number {
  return insn.mode === 16 ? 2 : 4;
}

/** The mnemonic as the manuals (and objdump) spell it for this form. */
export function mnemonicOf(insn: Insn): string {
  const m = insn.mnem;
  if (insn.cond >= 0) return m.replace('cc', CC_NAMES[insn.cond]);
  switch (m) {
    case 'cbw': return insn.opSize === 2 ? 'cbw' : insn.opSize === 4 ? 'cwde' : 'cdqe';
    case 'cwd': return insn.opSize === 2 ? 'cwd' : insn.opSize === 4 ? 'cdq' : 'cqo';
    case 'imul1': case 'imul3': return 'imul';
    case 'callf': return 'call';
    case 'jmpf': return 'jmp';
    case 'movcr': case 'movdr': return 'mov';
    case 'cmpxchg8b': return insn.opSize === 8 ? 'cmpxchg16b' : m;
    case 'fxsave': case 'fxrstor': case 'xsave': case 'xrstor': return insn.rex & 8 ? m + '64' : m;
    case 'movd': return insn.opSize === 8 ? 'movq' : m;
    case 'jrcxz': return insn.addrSize === 2 ? 'jcxz' : insn.addrSize === 4 ? 'jecxz' : m;
    // objdump names these by operand size where it is not the mode's default.
    case 'iret': case 'retf': case 'pusha': case 'popa':
      return insn.opSize === defaultOpSize(insn) ? m : m + SIZE_SUFFIX[insn.opSize];
    // ... and these always in 64-bit mode, where REX.W (not 66) picks the mode returned to ...
    case 'sysret': case 'sysexit': return insn.mode === 64 ? m + (insn.rex & 8 ? 'q' : 'd') : m;
    // ... and these always outside it (16-bit operand size loads a 24-bit base).
    case 'sgdt': case 'sidt': case 'lgdt': case 'lidt': return insn.mode === 64 ? m : m + SIZE_SUFFIX[insn.opSize];
  }
  if (STRING_MNEMONICS.has(m)) {
    const element = insn.ops.find((o) => o.kind === OpKind.Mem); // the rSI/rDI operand
    return m + SIZE_SUFFIX[element?.size ?? 1];
  }
  return m;
}

const CMP_PREDICATES = ['eq', 'lt', 'le', 'unord', 'neq', 'nlt', 'nle', 'ord'];
const SSE_CMP = /^cmp(ps|pd|ss|sd)$/;
const X87_ENV = /^(fldenv|fnstenv|frstor|fnsave)$/;

export function disassemble(insn: Insn): string {
  let mnem = mnemonicOf(insn);
  let operands = insn.ops;
  // objdump's spellings: an SSE compare with a predicate below 8 is named by it (cmpltsd), and
  // the x87 environment forms get a size suffix where 66 changes the mode's size (fldenvw).
  if (SSE_CMP.test(insn.mnem) && insn.ops[2].imm < 8) {
    mnem = 'cmp' + CMP_PREDICATES[insn.ops[2].imm] + mnem.slice(3);
    operands = operands.slice(0, 2);
  }
  const envSize = Math.min(insn.opSize, 4); // REX.W changes nothing here
  if (X87_ENV.test(mnem) && envSize !== defaultOpSize(insn)) mnem += SIZE_SUFFIX[envSize];
  const prefix = insn.rep && insn.row.rep ? (insn.rep === 0xf3 ? (['cmps', 'scas'].includes(insn.mnem) ? 'repz ' : 'rep ') : 'repnz ') : '';
  const lock = insn.lock ? 'lock ' : '';
  const ops = STRING_MNEMONICS.has(insn.mnem) ? '' : operands.map((o, i) => operandText(insn, o, i)).join(',');
  return `${lock}${prefix}${mnem}${ops ? ' ' + ops : ''}`;
}
