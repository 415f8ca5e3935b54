/**
 * The opcode table: one row per instruction form, written in the operand notation of the
 * Intel/AMD manuals (E,v = ModRM r/m of operand size; G,v = ModRM reg; I,b = imm8 …). The rows
 * live in opcodes/*.ts grouped by instruction family; this file parses them once into OpRow
 * objects that drive the decoder (decoder.ts), lifting dispatch (by mnemonic), the
 * disassembler and test generation. One table serves 16-, 32- and 64-bit code: rows that
 * exist in only some modes say so (i64, only64), and the decoder looks rows up in the map of
 * its mode (ROWS_BY_OPCODE_64 / ROWS_BY_OPCODE_LEGACY), so a mode check costs nothing per
 * instruction.
 *
 * Row syntax: "OPCODE | mnemonic | operands | attributes"
 *   OPCODE: [66|F2|F3] [0F [38|3A]] XX[+r|+cc] [/r | /0-7 | /=XX] [!m | !r]
 *     leading 66/F2/F3 = mandatory prefix; +r = register in the low 3 bits; +cc = 16 rows,
 *     one per condition code; /digit = ModRM.reg extension; /=XX = exact ModRM byte;
 *     !m / !r = memory-only / register-only ModRM. Where several rows match, the most specific
 *     wins: an exact ModRM byte over a /digit, a /digit over /r (8E /2, MOV SS, ends a block
 *     while the other 8E forms do not).
 *   operands: comma-separated specs (see OPERAND SPECS below), in Intel order (destination first).
 *   attributes: comma-separated: o64 (operand size defaults to 64 in 64-bit mode), f64 (always
 *     64 there; neither applies in 16/32-bit code), i64 (invalid in 64-bit mode: #UD
 *     there, or another row's form, e.g. 40-4F are REX prefixes), only64 (valid only in 64-bit
 *     mode: swapgs, movsxd whose opcode is ARPL elsewhere), lock (LOCK allowed), rep (honours
 *     REP/REPE/REPNE), end (ends a basic block: anything that changes control flow, CS or the
 *     mode, paging, the interrupt flag or shadow, or state that compiled code depends on),
 *     np (the manuals' NP: #UD with a 66/F2/F3 prefix), ignmod (ModRM.mod is ignored and r/m
 *     always names a register: MOV to/from CR/DR), undef=CF.OF… (flags the manuals leave
 *     undefined; masked in differential tests).
 *
 * OPERAND SPECS: a letter for where the operand comes from, then a size.
 *   E ModRM r/m (gpr or memory)   G ModRM reg (gpr)   M ModRM memory only   R ModRM r/m gpr only
 *   I immediate   Is sign-extended imm8   J relative branch   O moffs   Z register from opcode +r
 *   A direct far pointer in the instruction (offset, then selector)
 *   V ModRM reg xmm   W ModRM r/m xmm or memory   U ModRM r/m xmm only   N ModRM r/m of ST(i)
 *   S ModRM reg segment register   C ModRM reg control register   D ModRM reg debug register
 *   X / Y string source DS:rSI / destination ES:rDI (implicit)
 *   fixed registers: AL CL DX AX eAX rAX ST0 ES CS SS DS FS GS …; 1 = the constant one (shifts).
 *   sizes: b=1 w=2 d=4 q=8 v=operand size z=min(operand size,4) y=8 at operand size 64 else 4
 *          x=16 t=10 (m80)
 *          ss=4 sd=8 ps=16 pd=16 (xmm element views), p=far pointer selector:offset (4 bytes
 *          at operand size 16, else 6: as on AMD, REX.W does not make an m16:64),
 *          a=BOUND's pair of signed bounds (2 × operand size).
 */
import { BASE_ROWS } from './opcodes/base.js';
import { LEGACY_ROWS } from './opcodes/legacy.js';
import { SSE_ROWS } from './opcodes/sse.js';
import { SYSTEM_ROWS } from './opcodes/system.js';
import { X87_ROWS } from './opcodes/x87.js';

export const enum Loc {
  E, G, M, R, I, Is, J, O, Z, A, V, W, U, N, S, C, D, X, Y, Fixed, One,
}

export interface OperandSpec {
  loc: Loc;
  /** Size code: 'b','w','d','q','v','z','y','x','t','ss','sd','ps','pd','p','a' or '' (none). */
  size: string;
  /** For Loc.Fixed: the register number (RAX=0, RCX=1, RDX=2) or ST index, and its family. */
  fixedReg: number;
  fixedKind: 'gpr' | 'st' | 'seg' | '';
  text: string;
}

export interface OpRow {
  id: number;
  prefix: number;
  /** 0 = one-byte map, 1 = 0F, 2 = 0F 38, 3 = 0F 3A. */
  map: number;
  opcode: number;
  /** ModRM.reg extension or -1. */
  ext: number;
  /** Exact ModRM byte or -1. */
  modrmExact: number;
  hasModrm: boolean;
  /** 'any' | 'mem' | 'reg'. */
  mod: string;
  /** ModRM.mod is ignored: r/m names a register whatever mod says (the `ignmod` attribute). */
  modIgnored: boolean;
  plusR: boolean;
  /** Condition code for +cc rows, else -1. */
  cond: number;
  mnem: string;
  operands: OperandSpec[];
  o64: boolean;
  f64: boolean;
  /** Invalid in 64-bit mode. */
  i64: boolean;
  /** Valid only in 64-bit mode. */
  only64: boolean;
  lock: boolean;
  rep: boolean;
  end: boolean;
  /**
   * The manuals' NP: the form does not exist with a 66, F2 or F3 prefix (#UD). Set by the `np`
   * attribute, and implied for unprefixed rows of an opcode that has a 66 row (an SSE opcode
   * whose prefix selects the instruction).
   */
  np: boolean;
  /** RFLAGS bits left undefined by this instruction. */
  undef: number;
  text: string;
}

export const CC_NAMES = ['o', 'no', 'b', 'ae', 'e', 'ne', 'be', 'a', 's', 'ns', 'p', 'np', 'l', 'ge', 'le', 'g'];

const FLAG_BITS: Record<string, number> = { CF: 1, PF: 4, AF: 16, ZF: 64, SF: 128, OF: 2048 };
const ATTRIBUTES = new Set(['o64', 'f64', 'i64', 'only64', 'lock', 'rep', 'end', 'np', 'ignmod']);

const FIXED: Record<string, [number, 'gpr' | 'st' | 'seg', string]> = {
  AL: [0, 'gpr', 'b'], CL: [1, 'gpr', 'b'], DL: [2, 'gpr', 'b'], AX: [0, 'gpr', 'w'], DX: [2, 'gpr', 'w'],
  EAX: [0, 'gpr', 'd'], eAX: [0, 'gpr', 'z'], rAX: [0, 'gpr', 'v'], rDX: [2, 'gpr', 'v'], rCX: [1, 'gpr', 'v'],
  ST0: [0, 'st', 't'], ES: [0, 'seg', 'w'], CS: [1, 'seg', 'w'], SS: [2, 'seg', 'w'], DS: [3, 'seg', 'w'],
  FS: [4, 'seg', 'w'], GS: [5, 'seg', 'w'],
};

/** Bytes of an operand with size code `code` at operand size `opSize` (0 for no size). */
export function operandBytes(code: string, opSize: number): number {
  switch (code) {
    case 'b': return 1;
    case 'w': return 2;
    case 'd': case 'ss': return 4;
    case 'q': case 'sd': return 8;
    case 'v': return opSize;
    case 'z': return opSize === 2 ? 2 : 4;
    case 'y': return opSize === 8 ? 8 : 4;
    case 'x': case 'ps': case 'pd': return 16;
    case 't': return 10;
    case 'p': return opSize === 2 ? 4 : 6;
    case 'a': return 2 * opSize;
    case '': return 0;
  }
  throw new Error(`opcode table: unknown size code '${code}'`);
}

function parseOperand(t: string): OperandSpec {
  const fixed = FIXED[t];
  if (fixed) return { loc: Loc.Fixed, size: fixed[2], fixedReg: fixed[0], fixedKind: fixed[1], text: t };
  if (t === '1') return { loc: Loc.One, size: 'b', fixedReg: 0, fixedKind: '', text: t };
  const m = /^(Is|[EGMRIJOZAVWUNSCDXY])(.*)$/.exec(t);
  if (!m) throw new Error(`opcode table: bad operand '${t}'`);
  const locs: Record<string, Loc> = {
    E: Loc.E, G: Loc.G, M: Loc.M, R: Loc.R, I: Loc.I, Is: Loc.Is, J: Loc.J, O: Loc.O, Z: Loc.Z, A: Loc.A, V: Loc.V,
    W: Loc.W, U: Loc.U, N: Loc.N, S: Loc.S, C: Loc.C, D: Loc.D, X: Loc.X, Y: Loc.Y,
  };
  operandBytes(m[2], 4); // reject unknown size codes when the table is built
  return { loc: locs[m[1]], size: m[2], fixedReg: 0, fixedKind: '', text: t };
}

function parseRow(text: string, out: OpRow[]): void {
  const [opcodeField, mnem, operandField = '', attrField = ''] = text.split('|').map((f) => f.trim());
  const toks = opcodeField.split(/\s+/);
  let prefix = 0;
  let map = 0;
  let i = 0;
  if ((toks[0] === '66' || toks[0] === 'F2' || toks[0] === 'F3') && toks.length > 1) prefix = parseInt(toks[i++], 16);
  if (toks[i] === '0F') {
    map = 1;
    i++;
    if (toks[i] === '38' && toks.length > i + 1) (map = 2), i++;
    else if (toks[i] === '3A' && toks.length > i + 1) (map = 3), i++;
  }
  const opTok = toks[i++];
  const plusR = opTok.endsWith('+r');
  const plusCC = opTok.endsWith('+cc');
  const opcode = parseInt(opTok, 16);
  let ext = -1;
  let modrmExact = -1;
  let hasModrm = false;
  let mod = 'any';
  for (; i < toks.length; i++) {
    const t = toks[i];
    if (t === '/r') hasModrm = true;
    else if (/^\/[0-7]$/.test(t)) (hasModrm = true), (ext = +t[1]);
    else if (t.startsWith('/=')) (hasModrm = true), (modrmExact = parseInt(t.slice(2), 16));
    else if (t === '!m') mod = 'mem';
    else if (t === '!r') mod = 'reg';
    else throw new Error(`opcode table: bad opcode token '${t}' in '${text}'`);
  }
  const operands = operandField ? operandField.split(',').map((s) => parseOperand(s.trim())) : [];
  const attrs = attrField ? attrField.split(',').map((s) => s.trim()) : [];
  let undef = 0;
  for (const a of attrs) {
    if (a.startsWith('undef=')) for (const f of a.slice(6).split('.')) undef |= FLAG_BITS[f] ?? 0;
    else if (!ATTRIBUTES.has(a)) throw new Error(`opcode table: bad attribute '${a}' in '${text}'`);
  }
  const base: OpRow = {
    id: 0, prefix, map, opcode, ext, modrmExact, hasModrm, mod, modIgnored: attrs.includes('ignmod'), plusR, cond: -1, mnem, operands,
    o64: attrs.includes('o64'), f64: attrs.includes('f64'), i64: attrs.includes('i64'), only64: attrs.includes('only64'),
    lock: attrs.includes('lock'), rep: attrs.includes('rep'), end: attrs.includes('end'), np: attrs.includes('np'), undef, text,
  };
  if (base.i64 && base.only64) throw new Error(`opcode table: a row cannot be both i64 and only64: '${text}'`);
  if (plusCC) for (let cc = 0; cc < 16; cc++) out.push({ ...base, opcode: opcode + cc, cond: cc });
  else out.push(base);
}

function build(): OpRow[] {
  const rows: OpRow[] = [];
  for (const t of [...BASE_ROWS, ...LEGACY_ROWS, ...SYSTEM_ROWS, ...SSE_ROWS, ...X87_ROWS]) parseRow(t, rows);
  rows.forEach((r, i) => (r.id = i));
  const sse = sseOpcodes(rows);
  for (const r of rows) if (r.prefix === 0 && sse.has(r.map * 256 + r.opcode)) r.np = true;
  return rows;
}

/** Opcodes (map*256 + opcode) with a 66 row: SSE opcodes, whose prefix selects the form. */
function sseOpcodes(rows: readonly OpRow[]): Set<number> {
  return new Set(rows.filter((r) => r.prefix === 0x66).map((r) => r.map * 256 + r.opcode));
}

export const ROWS: readonly OpRow[] = build();
export const SSE_OPCODES: ReadonlySet<number> = sseOpcodes(ROWS);

/** Does the row exist in 64-bit mode (long = true) or in 16/32-bit code (long = false)? */
export function rowExists(row: OpRow, long: boolean): boolean {
  return long ? !row.i64 : !row.only64;
}

/** Rows by map*256 + opcode (for +r rows, each of the 8 opcodes), of the rows that exist in the mode. */
function rowsByOpcode(long: boolean): ReadonlyMap<number, OpRow[]> {
  const m = new Map<number, OpRow[]>();
  for (const r of ROWS) {
    if (!rowExists(r, long)) continue;
    for (let k = 0; k < (r.plusR ? 8 : 1); k++) {
      const key = r.map * 256 + r.opcode + k;
      const list = m.get(key) ?? [];
      list.push(r);
      m.set(key, list);
    }
  }
  return m;
}

/** The decoder's row lookup in 64-bit mode. */
export const ROWS_BY_OPCODE_64 = rowsByOpcode(true);
/** The decoder's row lookup in 16- and 32-bit code (the same opcodes exist in both). */
export const ROWS_BY_OPCODE_LEGACY = rowsByOpcode(false);
