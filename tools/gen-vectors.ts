/**
 * Test-vector generator: for every opcode-table row svmjit executes (an IR lowering or an
 * interpreter helper), encode the instruction straight from the row — every operand size the
 * row allows, register and memory operand shapes, a run of immediates — generate edge and
 * random operand values, run them on the host CPU (native-runner.c) and write what the
 * hardware did to test/vectors/<group>.json. Being driven by the table, re-running it after
 * rows are added covers them with no change here.
 *
 *   npm run build && node dist/tools/gen-vectors.js [--seed N] [--cases N] [--only mnem,...]
 *
 * Vector file format (readable JSON, one form per line group, one case per line):
 *   { cpu, generated, seed, forms: [ { asm, bytes, row, undefFlags, base, in: [cols], out: [cols],
 *     cases: [[...in values, ...out values]] } ] }
 * Columns are described in native-runner.ts. `base` holds state shared by every case of the
 * form (a memory operand's base register). An out value "?" is undefined for that case (not
 * compared); a flags value "v/m" means bits m are undefined in that case. The `fault` out
 * column is "" or "<vector>@<RIP>[:<CR2>]" (hex).
 *
 * This file also exports the row encoder and value generators; tools/fuzz.ts builds its random
 * instruction sequences from them.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { HELPERS } from '../src/cpu/helpers/index.js';
import { REG_NAMES64 } from '../src/cpu/state.js';
import { decode } from '../src/frontend/decoder.js';
import { disassemble } from '../src/frontend/disasm.js';
import { Loc, type OpRow, type OperandSpec, ROWS, operandBytes, rowExists } from '../src/frontend/table.js';
import { SYSTEM_HELPERS } from '../src/machine/system.js';
import { LOWERINGS } from '../src/ir/lift.js';
import {
  CODE, DATA, GUEST_RSP, NO_FAULT, TIMEOUT, type MachineState, type Outcome, defaultState, outcomeColumn, runNative, writeColumn,
} from './native-runner.js';

// ---- deterministic randomness ----

/** sfc32 (small fast counter) on int32 words: no BigInt, reproducible from a seed. */
export class Rng {
  private a: number;
  private b: number;
  private c: number;
  private d = 1;
  constructor(seed: number) {
    this.a = 0x9e3779b9;
    this.b = seed | 0;
    this.c = Math.imul(seed | 0, 0x85ebca6b) ^ 0xc2b2ae35;
    for (let i = 0; i < 16; i++) this.u32();
  }
  u32(): number {
    const t = (((this.a + this.b) | 0) + this.d) | 0;
    this.d = (this.d + 1) | 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) | 0;
    this.c = (this.c << 21) | (this.c >>> 11);
    this.c = (this.c + t) | 0;
    return t >>> 0;
  }
  below(n: number): number {
    return this.u32() % n;
  }
  pick<T>(xs: readonly T[]): T {
    return xs[this.below(xs.length)];
  }
  chance(p: number): boolean {
    return this.u32() / 4294967296 < p;
  }
}

// ---- which rows are executed and how they are shaped ----

/**
 * Rows the generator leaves out, with the reason. Everything else that svmjit executes gets
 * vectors.
 */
export const SKIP: Record<string, string> = {
  syscall: 'leaves user mode', hlt: 'privileged', int: 'software interrupt', int1: 'software interrupt', int3: 'software interrupt',
  ud2: 'ends every snippet already', cpuid: 'host-specific values', rdtsc: 'non-deterministic', rdtscp: 'non-deterministic',
  xgetbv: 'host-specific values', rdfsbase: 'host TLS base', rdgsbase: 'host segment base', wrfsbase: 'would replace the host TLS base',
  wrgsbase: 'host segment base', fxsave: 'image holds host-specific FIP/FDP and reserved fields', fxrstor: 'paired with fxsave',
};

/** Mnemonics whose rows touch segment registers (host selectors differ from svmjit's). */
function touchesSegments(row: OpRow): boolean {
  return row.operands.some((o) => o.loc === Loc.S || o.fixedKind === 'seg');
}

export function executes(row: OpRow): boolean {
  // Rows of 64-bit mode with user-mode semantics: system instructions need the machine (and
  // CPL 0), so their tests are the bare-metal images, not native user-mode vectors.
  if (!rowExists(row, true) || row.mnem in SYSTEM_HELPERS) return false;
  return !!(LOWERINGS[row.mnem] || HELPERS[row.mnem]) && !SKIP[row.mnem] && !touchesSegments(row);
}

/** MXCSR inputs of FP forms: default twice, PE set twice, RD, RU, RZ, FTZ, DAZ, all unmasked, IE unmasked. */
const MXCSR_VALUES = ['1f80', '1f80', '1fa0', '1fa0', '3f80', '5f80', '7f80', '9f80', '1fc0', '0000', '1f00'];

/** Registers an instruction reads or writes without naming them (beyond its operand list). */
const IMPLICIT: Record<string, string[]> = {
  mul: ['rax', 'rdx'], imul1: ['rax', 'rdx'], div: ['rax', 'rdx'], idiv: ['rax', 'rdx'],
  cbw: ['rax'], cwd: ['rax', 'rdx'], cmpxchg: ['rax'], cmpxchg8b: ['rax', 'rdx', 'rbx', 'rcx'],
  movs: ['rsi', 'rdi', 'rcx'], cmps: ['rsi', 'rdi', 'rcx'], stos: ['rdi', 'rcx', 'rax'], lods: ['rsi', 'rcx'], scas: ['rdi', 'rcx', 'rax'],
  loop: ['rcx'], loope: ['rcx'], loopne: ['rcx'], jrcxz: ['rcx'], leave: ['rbp'], enter: ['rbp'],
};
const STRING = new Set(['movs', 'cmps', 'stos', 'lods', 'scas']);
/** The marker a taken forward branch skips: lea r11, [r11+1] (changes no flags). */
export const MARKER = [0x4d, 0x8d, 0x5b, 0x01];

export function group(row: OpRow): string {
  const m = row.mnem;
  if (row.operands.some((o) => o.loc === Loc.V || o.loc === Loc.W || o.loc === Loc.U)) return 'sse';
  if (row.operands.some((o) => o.loc === Loc.N || o.fixedKind === 'st') || (m[0] === 'f' && m !== 'fxsave' && m !== 'fxrstor')) return 'x87';
  if (['add', 'or', 'adc', 'sbb', 'and', 'sub', 'xor', 'cmp', 'test', 'inc', 'dec', 'neg', 'not'].includes(m)) return 'alu';
  if (['shl', 'shr', 'sar', 'rol', 'ror', 'rcl', 'rcr', 'shld', 'shrd'].includes(m)) return 'shift';
  if (['mul', 'imul', 'imul1', 'imul3', 'div', 'idiv'].includes(m)) return 'muldiv';
  if (/^(bt|bts|btr|btc|bsf|bsr|tzcnt|lzcnt|popcnt|bswap)$/.test(m)) return 'bits';
  if (['push', 'pop', 'pushf', 'popf', 'leave', 'enter'].includes(m)) return 'stack';
  if (row.end || ['jcc', 'loop', 'loope', 'loopne', 'jrcxz'].includes(m)) return 'branch';
  if (STRING.has(m)) return 'string';
  if (['clc', 'stc', 'cmc', 'cld', 'std', 'sahf', 'lahf', 'setcc', 'cmovcc'].includes(m)) return 'flags';
  return 'move';
}

// ---- encoding from the row ----

export interface MemSpec {
  /** 'disp8' [base+d8], 'sib' [base+index*scale+d32], 'rip' [rip+d32], 'abs' [d32] via SIB. */
  mode: 'disp8' | 'sib' | 'rip' | 'abs';
  base: number;
  index: number;
  scale: number;
  /** Values of the base and index registers (fixed per form) and the displacement. */
  baseVal: number;
  indexVal: number;
  disp: number;
  /** Address the operand reaches. */
  target: number;
}

export interface FormSpec {
  row: OpRow;
  /** Operand size in bytes (what 66 / REX.W select; the row's default where it has none). */
  opSize: number;
  /** Register per register operand index (GPR or XMM); for byte operands 4-7 without REX mean AH-BH. */
  regs: number[];
  /** Force a REX prefix (SPL/BPL/SIL/DIL instead of AH..BH). */
  rex: boolean;
  mem: MemSpec | null;
  /** Immediate per operand index. */
  imms: number[];
  lock: boolean;
  /** F3/F2 on string instructions. */
  rep: number;
}


/** Operand sizes a row can be encoded with. */
export function sizesOf(row: OpRow): number[] {
  const variable = row.operands.some((o) => ['v', 'z', 'y'].includes(o.size)) || ['cbw', 'cwd', 'movs', 'cmps', 'stos', 'lods', 'scas', 'pushf', 'popf', 'leave', 'enter', 'cmpxchg8b'].includes(row.mnem);
  // Near branches with 66 are vendor-specific in 64-bit mode (AMD: rel16 and IP truncated to
  // 16 bits; Intel: the prefix is ignored), so relative branches keep their default size.
  if (!variable || row.prefix === 0x66 || row.operands.some((o) => o.loc === Loc.J)) return [4];
  if (row.f64) return [8];
  if (row.o64) return [8, 2];
  if (row.mnem === 'cmpxchg8b') return [4, 8];
  return [2, 4, 8];
}

/** Is operand spec i a register-or-memory slot (ModRM r/m)? */
function isRm(o: OperandSpec): boolean {
  return [Loc.E, Loc.M, Loc.R, Loc.W, Loc.U, Loc.N].includes(o.loc);
}

/** Encode one instruction at address `at`. */
export function encode(f: FormSpec, at: number): Uint8Array {
  const row = f.row;
  const out: number[] = [];
  if (f.lock) out.push(0xf0);
  const defaultSize = row.f64 || row.o64 ? 8 : 4;
  if (f.opSize === 2 && row.prefix !== 0x66) out.push(0x66);
  if (f.rep) out.push(f.rep);
  if (row.prefix) out.push(row.prefix);
  let rex = 0;
  if (f.opSize === 8 && defaultSize !== 8) rex |= 8;
  let regField = row.ext >= 0 ? row.ext : 0;
  let rm = 0;
  let plusR = 0;
  row.operands.forEach((o, i) => {
    const r = f.regs[i];
    if (o.loc === Loc.G || o.loc === Loc.V || o.loc === Loc.S || o.loc === Loc.C || o.loc === Loc.D) regField = r;
    else if (o.loc === Loc.Z) plusR = r;
    else if (isRm(o) && !f.mem) rm = r;
    if ((o.loc === Loc.G || o.loc === Loc.Z || o.loc === Loc.E || o.loc === Loc.R) && operandBytes(o.size, f.opSize) === 1 && r >= 4 && r < 8 && f.rex) rex |= 0x40;
  });
  if (regField & 8) rex |= 4;
  if (rm & 8 || plusR & 8) rex |= 1;
  if (f.mem) {
    if (f.mem.mode !== 'rip' && f.mem.mode !== 'abs' && f.mem.base & 8) rex |= 1;
    if (f.mem.mode === 'sib' && f.mem.index & 8) rex |= 2;
  }
  if (f.rex) rex |= 0x40;
  if (rex) out.push(0x40 | rex);
  if (row.map >= 1) out.push(0x0f);
  if (row.map === 2) out.push(0x38);
  if (row.map === 3) out.push(0x3a);
  out.push(row.opcode + (row.plusR ? plusR & 7 : 0));
  let ripFix = -1;
  if (row.modrmExact >= 0) out.push(row.modrmExact);
  else if (row.hasModrm) {
    const reg = (regField & 7) << 3;
    const m = f.mem;
    if (!m) out.push(0xc0 | reg | (rm & 7));
    else if (m.mode === 'disp8') {
      if ((m.base & 7) === 4) out.push(0x40 | reg | 4, 0x24);
      else out.push(0x40 | reg | (m.base & 7));
      out.push(m.disp & 0xff);
    } else if (m.mode === 'sib') {
      out.push(0x80 | reg | 4, (Math.log2(m.scale) << 6) | ((m.index & 7) << 3) | (m.base & 7));
      pushLe(out, m.disp, 4);
    } else if (m.mode === 'abs') {
      out.push(0x00 | reg | 4, 0x25);
      pushLe(out, m.target, 4);
    } else {
      out.push(0x00 | reg | 5);
      ripFix = out.length;
      pushLe(out, 0, 4);
    }
  }
  row.operands.forEach((o, i) => {
    if (o.loc === Loc.I || o.loc === Loc.Is || o.loc === Loc.J) {
      const size = o.loc === Loc.Is || (o.loc === Loc.J && o.size === 'b') ? 1 : o.loc === Loc.J ? 4 : Math.min(operandBytes(o.size, f.opSize), o.size === 'v' ? 8 : 4);
      pushLe(out, f.imms[i], size);
    } else if (o.loc === Loc.O) pushLe(out, f.imms[i], 8);
  });
  if (ripFix >= 0) {
    const disp = f.mem!.target - (at + out.length);
    for (let k = 0; k < 4; k++) out[ripFix + k] = (disp >> (8 * k)) & 0xff;
  }
  return Uint8Array.from(out);
}

function pushLe(out: number[], v: number, n: number): void {
  for (let k = 0; k < n; k++) out.push(k < 4 ? (v >> (8 * k)) & 0xff : (Math.floor(v / 4294967296) >> (8 * (k - 4))) & 0xff);
}

/** A memory operand reaching `target`, with base/index values and displacement to match. */
export function memSpec(rng: Rng, mode: MemSpec['mode'], base: number, index: number, target: number): MemSpec {
  const scale = rng.pick([1, 2, 4, 8]);
  if (mode === 'disp8') {
    const disp = rng.below(256) - 128;
    return { mode, base, index: -1, scale: 1, baseVal: target - disp, indexVal: 0, disp, target };
  }
  if (mode === 'sib') {
    const indexVal = rng.below(64) - 32; // negative indexes too
    const baseVal = DATA + 0x800;
    return { mode, base, index, scale, baseVal, indexVal, disp: target - baseVal - indexVal * scale, target };
  }
  return { mode, base: -1, index: -1, scale: 1, baseVal: 0, indexVal: 0, disp: 0, target };
}

/** The register values a memory operand needs (a form's `base` state). */
export function memoryBase(m: MemSpec): Record<string, string> {
  const hex = (v: number) => (v < 0 ? (BigInt.asUintN(64, BigInt(v))).toString(16) : v.toString(16));
  const base: Record<string, string> = {};
  if (m.mode === 'disp8' || m.mode === 'sib') base[REG_NAMES64[m.base]] = hex(m.baseVal);
  if (m.mode === 'sib') base[REG_NAMES64[m.index]] = hex(m.indexVal);
  return base;
}

// ---- values ----

const EDGE8 = [0, 1, 2, 0x7f, 0x80, 0x81, 0xfe, 0xff, 0x40, 0x0f, 0x10];
const SHIFT_COUNTS = [0, 1, 2, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65, 127, 255];

/** A 64-bit register value as hex: edge values at the operand width, random bits above it. */
export function gprValue(rng: Rng, width: number): string {
  const hi = rng.u32();
  const lo = rng.u32();
  let vlo = lo;
  let vhi = hi;
  const r = rng.below(8);
  if (r < 5) {
    // An edge value of the operand width: 0, ±1, sign boundaries, all ones, small numbers.
    const w = width * 8;
    const k = rng.below(8);
    const ones = (bits: number) => (bits >= 32 ? 0xffffffff : (2 ** bits - 1));
    const edges: [number, number][] = [
      [0, 0], [1, 0], [ones(w), w > 32 ? ones(w - 32) : 0],
      w > 32 ? [0xffffffff, 0x7fffffff] : [ones(w - 1), 0], w > 32 ? [0, 0x80000000] : [2 ** (w - 1), 0],
      [rng.pick(EDGE8), 0], [ones(w) - 1, w > 32 ? ones(w - 32) : 0], w > 32 ? [0, 1] : [2 ** (w - 1) + 1, 0],
    ];
    const [elo, ehi] = edges[k];
    const keepMask = w >= 32 ? 0 : ~(2 ** w - 1);
    vlo = w >= 32 ? elo : (lo & keepMask) | elo;
    vhi = w > 32 ? ehi : w === 32 ? hi : hi;
  } else if (r === 5) {
    vlo = rng.below(16);
    vhi = 0;
  }
  const h = (vhi >>> 0).toString(16);
  return vhi >>> 0 ? h + (vlo >>> 0).toString(16).padStart(8, '0') : (vlo >>> 0).toString(16);
}

function bytesValue(rng: Rng, n: number, width: number): string {
  const lo = gprValue(rng, Math.min(width, 8)).padStart(16, '0');
  let out = '';
  for (let i = 0; i < n; i++) {
    const b = i < 8 ? parseInt(lo.slice(14 - 2 * i, 16 - 2 * i), 16) : rng.below(256);
    out += b.toString(16).padStart(2, '0');
  }
  return out;
}

const F32_EDGES = [0x00000000, 0x80000000, 0x3f800000, 0xbf800000, 0x7f800000, 0xff800000, 0x7fc00000, 0xffc00000, 0x7fa00000, 0x00000001, 0x807fffff, 0x00800000, 0x7f7fffff, 0x4f000000, 0xcf000000, 0x3f000000];
const F64_EDGES: [number, number][] = [
  [0, 0], [0, 0x80000000], [0, 0x3ff00000], [0, 0xbff00000], [0, 0x7ff00000], [0, 0xfff00000], [0, 0x7ff80000], [0, 0xfff80000], [1, 0x7ff00000],
  [1, 0], [0xffffffff, 0x800fffff], [0, 0x00100000], [0xffffffff, 0x7fefffff], [0, 0x41e00000], [0, 0xc1e00000], [0, 0x43e00000], [0, 0x3fe00000],
];

/** 16 bytes for an XMM register, lanes as the operand's element view suggests. */
export function xmmValue(rng: Rng, view: string): string {
  const words: number[] = [];
  for (let i = 0; i < 4; i++) words.push(rng.u32());
  if (view === 'ss' || view === 'ps' || view === 'd') {
    for (let i = 0; i < 4; i++) if (rng.chance(0.6)) words[i] = rng.chance(0.7) ? rng.pick(F32_EDGES) : (rng.u32() & 0x807fffff) | ((rng.below(60) + 97) << 23);
  } else if (view === 'sd' || view === 'pd' || view === 'q') {
    for (let i = 0; i < 2; i++)
      if (rng.chance(0.6)) {
        const [lo, hi] = rng.chance(0.7) ? rng.pick(F64_EDGES) : [rng.u32(), (rng.u32() & 0x800fffff) | ((rng.below(120) + 960) << 20)];
        words[2 * i] = lo;
        words[2 * i + 1] = hi;
      }
  }
  return words.map((w) => (w >>> 0).toString(16).padStart(8, '0')).reverse().join('');
}

// ---- forms and cases ----

export interface Form {
  spec: FormSpec;
  code: Uint8Array;
  asm: string;
  base: Record<string, string>;
  /** Input columns and a value generator for each. */
  inputs: [string, (rng: Rng) => string][];
}

const ALL_GPRS = [0, 1, 2, 3, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15];

/** Register operands and shapes for one row/size: returns the forms (one per immediate value). */
export function makeForms(row: OpRow, opSize: number, shape: 'reg' | 'mem' | 'same' | 'lock', rng: Rng, immCount: number): Form[] {
  const implicit = new Set((IMPLICIT[row.mnem] ?? []).map((n) => REG_NAMES64.indexOf(n)));
  const fixed = row.operands.filter((o) => o.loc === Loc.Fixed && o.fixedKind === 'gpr').map((o) => o.fixedReg);
  const taken = new Set<number>([...implicit, ...fixed, 4, 11]); // rsp is the harness's; r11 counts branch markers
  const useRex = rng.chance(0.5);
  const pickReg = (): number => {
    const pool = ALL_GPRS.filter((r) => !taken.has(r) && (useRex || r < 8));
    const r = rng.pick(pool.length ? pool : [3]);
    taken.add(r);
    if (!useRex && r >= 4 && r < 8) taken.add(r - 4); // as a byte register it would be AH..BH, part of r-4
    if (!useRex && r < 4) taken.add(r + 4);
    return r;
  };
  const hasRm = row.operands.some(isRm);
  if ((shape === 'mem' || shape === 'lock') && (!hasRm || row.mod === 'reg' || row.operands.some((o) => o.loc === Loc.U || o.loc === Loc.R))) return [];
  if (shape === 'reg' && hasRm && (row.mod === 'mem' || row.operands.some((o) => o.loc === Loc.M))) return [];
  if (shape === 'lock' && !row.lock) return [];
  const regs: number[] = [];
  let mem: MemSpec | null = null;
  const xmmTaken = new Set<number>();
  const pickXmm = () => {
    let r: number;
    do r = rng.below(16);
    while (xmmTaken.has(r));
    xmmTaken.add(r);
    return r;
  };
  row.operands.forEach((o, i) => {
    if (o.loc === Loc.V || o.loc === Loc.U || (o.loc === Loc.W && shape !== 'mem' && shape !== 'lock')) regs[i] = pickXmm();
    else if (o.loc === Loc.G || o.loc === Loc.Z || ((o.loc === Loc.E || o.loc === Loc.R) && shape !== 'mem' && shape !== 'lock')) regs[i] = pickReg();
    else if (o.loc === Loc.N) regs[i] = rng.below(8);
    else regs[i] = 0;
  });
  if (shape === 'same') {
    const gi = row.operands.findIndex((o) => o.loc === Loc.G);
    const ei = row.operands.findIndex((o) => o.loc === Loc.E);
    if (gi < 0 || ei < 0) return [];
    regs[ei] = regs[gi];
  }
  // Legacy byte registers AH..BH only where no operand needs REX.
  const byteRegs = row.operands.some((o, i) => operandBytes(o.size, opSize) === 1 && [Loc.G, Loc.E, Loc.Z, Loc.R].includes(o.loc) && regs[i] >= 4);
  const rex = useRex && byteRegs;
  if (shape === 'mem' || shape === 'lock') {
    const mode = rng.pick(['disp8', 'sib', 'rip', 'abs'] as const);
    const baseR = pickReg();
    const indexR = mode === 'sib' ? pickReg() : -1;
    const width = Math.max(8, ...row.operands.map((o) => operandBytes(o.size, opSize)));
    // Mostly aligned, sometimes not; always inside the scratch page.
    const off = 0x100 + (rng.chance(0.7) ? 0 : rng.below(width));
    mem = memSpec(rng, mode, baseR, indexR, DATA + off);
  }
  // Immediates: one form per immediate value.
  const immSpecs = row.operands.map((o, i) => [o, i] as const).filter(([o]) => o.loc === Loc.I || o.loc === Loc.Is);
  const forms: Form[] = [];
  const immValues = immediateValues(row, opSize, rng, immSpecs.length ? immCount : 1);
  for (const imm of immValues) {
    const imms: number[] = row.operands.map(() => 0);
    immSpecs.forEach(([o, i], k) => {
      imms[i] = k === 0 ? imm : o.loc === Loc.Is ? rng.below(256) : rng.u32() | 0;
      if (row.mnem === 'enter' && k === 1) imms[i] = rng.pick([0, 1, 2]);
      if (row.mnem === 'enter' && k === 0) imms[i] = rng.pick([0, 8, 0x30]);
    });
    row.operands.forEach((o, i) => {
      if (o.loc === Loc.J) imms[i] = MARKER.length;
      if (o.loc === Loc.O) imms[i] = DATA + 0x100;
    });
    const spec: FormSpec = { row, opSize, regs, rex, mem, imms, lock: shape === 'lock', rep: 0 };
    for (const rep of STRING.has(row.mnem) ? [0, 0xf3, ...(row.mnem === 'cmps' || row.mnem === 'scas' ? [0xf2] : [])] : [0]) {
      const s = { ...spec, rep };
      let code = encode(s, CODE);
      if (row.operands.some((o) => o.loc === Loc.J) || ['jmp', 'call', 'ret'].includes(row.mnem)) code = Uint8Array.from([...code, ...MARKER]);
      let asm: string;
      try {
        const insn = decode((a) => code[a - CODE] ?? 0, CODE);
        asm = disassemble(insn);
      } catch (e) {
        asm = `(svmjit does not decode: ${e})`;
      }
      forms.push({ spec: s, code, asm, base: mem ? memoryBase(mem) : {}, inputs: inputColumns(s, code) });
    }
  }
  return forms;
}

function immediateValues(row: OpRow, opSize: number, rng: Rng, n: number): number[] {
  if (n <= 1) return [rng.u32() | 0];
  const isShift = group(row) === 'shift' || ['bt', 'bts', 'btr', 'btc'].includes(row.mnem);
  const base = isShift ? SHIFT_COUNTS : [0, 1, -1, 0x7f, -0x80, 0x7fff, -0x8000, 0x7fffffff, -0x80000000, 2, 0x55, -2];
  const vals = base.slice(0, n);
  while (vals.length < n) vals.push(rng.u32() | 0);
  void opSize;
  return vals;
}

/** The columns a form's cases vary, each with its value generator. */
function inputColumns(f: FormSpec, code: Uint8Array): [string, (rng: Rng) => string][] {
  const row = f.row;
  const cols = new Map<string, (rng: Rng) => string>();
  const gpr = (r: number, width: number, gen?: (rng: Rng) => string) => {
    const n = REG_NAMES64[r];
    if (!cols.has(n)) cols.set(n, gen ?? ((rng) => gprValue(rng, width)));
  };
  const end = CODE + code.length;
  const targets = (rng: Rng) => (rng.chance(0.5) ? end : end - MARKER.length).toString(16);
  const isBranchTarget = row.mnem === 'jmp' || row.mnem === 'call';
  row.operands.forEach((o, i) => {
    const size = operandBytes(o.size, f.opSize);
    if ([Loc.G, Loc.Z].includes(o.loc) || ([Loc.E, Loc.R].includes(o.loc) && !f.mem)) {
      const r = f.regs[i];
      const legacyHigh = size === 1 && !f.rex && r >= 4 && r < 8;
      gpr(legacyHigh ? r - 4 : r, size === 1 && legacyHigh ? 2 : size, isBranchTarget ? targets : undefined);
    } else if (o.loc === Loc.Fixed && o.fixedKind === 'gpr') {
      gpr(o.fixedReg, size || f.opSize, o.text === 'CL' ? (rng) => (rng.chance(0.8) ? rng.pick(SHIFT_COUNTS).toString(16) : gprValue(rng, 1)) : undefined);
    } else if ([Loc.V, Loc.U].includes(o.loc) || (o.loc === Loc.W && !f.mem)) {
      cols.set(`xmm${f.regs[i]}`, (rng) => xmmValue(rng, o.size));
    }
  });
  for (const n of IMPLICIT[row.mnem] ?? []) gpr(REG_NAMES64.indexOf(n), f.opSize);
  if (f.mem || row.operands.some((o) => o.loc === Loc.O)) {
    const target = f.mem ? f.mem.target : DATA + 0x100;
    const width = Math.max(1, ...row.operands.map((o) => (isRm(o) || o.loc === Loc.O ? operandBytes(o.size, f.opSize) || 16 : 0)));
    const bytes = Math.max(width, 8);
    const view = row.operands.find((o) => o.loc === Loc.W)?.size;
    cols.set(`m${target.toString(16)}:${bytes}`, isBranchTarget
      ? (rng) => bytesFromHex(targets(rng), 8)
      : view ? (rng) => xmmValue(rng, view).match(/../g)!.reverse().join('').slice(0, 2 * bytes) : (rng) => bytesValue(rng, bytes, width));
  }
  // Floating-point SSE forms run under varied MXCSR: each rounding mode, FTZ, DAZ, sticky PE
  // already set, and unmasked exceptions (which the hardware turns into #XM).
  if (group(row) === 'sse' && (row.operands.some((o) => ['ss', 'sd', 'ps', 'pd'].includes(o.size)) || row.mnem.startsWith('cvt')))
    cols.set('mxcsr', (rng) => rng.pick(MXCSR_VALUES));
  // Instruction-specific inputs: string pointers and counts, loop counts, stack contents.
  const m = row.mnem;
  if (STRING.has(m)) {
    const sz = f.opSize;
    cols.set('rsi', (rng) => (DATA + 0x400 + sz * rng.below(8)).toString(16));
    cols.set('rdi', (rng) => (DATA + 0x600 + sz * rng.below(8)).toString(16));
    cols.set('rcx', (rng) => (rng.chance(0.9) ? rng.below(12) : rng.below(40)).toString(16));
    cols.set('rax', (rng) => gprValue(rng, sz));
    const src = (rng: Rng) => {
      let s = '';
      for (let i = 0; i < 96; i++) s += (rng.chance(0.5) ? 0x41 : rng.below(256)).toString(16).padStart(2, '0');
      return s;
    };
    cols.set(`m${(DATA + 0x3c0).toString(16)}:96`, src);
    cols.set(`m${(DATA + 0x5c0).toString(16)}:96`, src);
  }
  if (['loop', 'loope', 'loopne', 'jrcxz'].includes(m)) cols.set('rcx', (rng) => rng.pick(['0', '1', '2', '100000000', '100000001', 'ffffffffffffffff', gprValue(rng, 8)]));
  if (m === 'ret') cols.set(`m${GUEST_RSP.toString(16)}:8`, (rng) => bytesFromHex(targets(rng), 8));
  if (m === 'pop' || m === 'popf' || m === 'leave') {
    cols.set(`m${GUEST_RSP.toString(16)}:16`, (rng) => {
      let v = bytesValue(rng, 16, 8);
      // Never TF (bit 8, in byte 1): a trap flag would single-step the host runner. Never AC
      // (bit 18, in byte 2): alignment checking would fault inside the runner's own C code.
      if (m === 'popf') {
        v = v.slice(0, 2) + (parseInt(v.slice(2, 4), 16) & 0xfe).toString(16).padStart(2, '0') + v.slice(4);
        v = v.slice(0, 4) + (parseInt(v.slice(4, 6), 16) & 0xfb).toString(16).padStart(2, '0') + v.slice(6);
      }
      return v;
    });
    if (m === 'popf') cols.delete('flags');
  }
  if (m === 'leave' || m === 'enter') cols.set('rbp', (rng) => (GUEST_RSP + 8 * rng.below(8)).toString(16));
  if (m === 'sahf' || m === 'lahf') gpr(0, 8);
  if (!cols.has('flags')) {
    const df = STRING.has(m) || m === 'cld' || m === 'std' || m === 'pushf' || m === 'popf';
    cols.set('flags', (rng) => {
      const k = rng.below(4);
      const v = k === 0 ? 0 : k === 1 ? 0x8d5 : rng.u32() & 0x8d5;
      return (v | (df && rng.chance(0.5) ? 0x400 : 0)).toString(16);
    });
  }
  return [...cols];
}

function bytesFromHex(h: string, n: number): string {
  const p = h.padStart(2 * n, '0');
  let out = '';
  for (let i = n - 1; i >= 0; i--) out += p.slice(2 * i, 2 * i + 2);
  return out;
}

/** Per-case undefined results the manuals name (beyond the row's undefined flags). */
export function caseUndefined(f: FormSpec, init: MachineState, inCols: string[], inVals: string[]): { cols: string[]; flags: number } {
  const m = f.row.mnem;
  if (f.row.operands.length < 2) return { cols: [], flags: 0 };
  const val = (i: number) => {
    const o = f.row.operands[i];
    const size = operandBytes(o.size, f.opSize);
    let hex: string;
    if (f.mem && [Loc.E, Loc.M].includes(o.loc)) hex = inVals[inCols.findIndex((c) => c[0] === 'm')].match(/../g)!.reverse().join('');
    else if (o.loc === Loc.Fixed) hex = inVals[inCols.indexOf(REG_NAMES64[o.fixedReg])] ?? '0';
    else if (o.loc === Loc.I || o.loc === Loc.Is) return f.imms[i] >>> 0;
    else hex = inVals[inCols.indexOf(REG_NAMES64[f.regs[i]])] ?? '0';
    const low = hex.padStart(16, '0').slice(16 - 2 * Math.min(size, 4));
    const lowVal = parseInt(low, 16);
    return size === 8 ? (parseInt(hex.padStart(16, '0').slice(0, 8), 16) ? 1 : 0) * 0x100000000 + lowVal : lowVal;
  };
  void init;
  const dest = f.row.operands[0];
  const destCol = dest.loc === Loc.G ? REG_NAMES64[f.regs[0]] : '';
  // BSF/BSR with a zero source: the destination is undefined (AMD keeps it; Intel says undefined).
  if ((m === 'bsf' || m === 'bsr') && val(1) === 0) return { cols: destCol ? [destCol] : [], flags: 0 };
  // SHL/SHR by a count >= the operand width (8/16-bit forms): CF is undefined.
  if ((m === 'shl' || m === 'shr') && f.row.operands[1].loc !== Loc.One) {
    const bits = operandBytes(dest.size, f.opSize) * 8;
    const count = val(1) & (bits === 64 ? 63 : 31);
    if (count >= bits) return { cols: [], flags: 0x1 | 0x800 };
  }
  // SHLD/SHRD of 16-bit operands by more than 16: destination and flags undefined.
  if ((m === 'shld' || m === 'shrd') && f.opSize === 2 && (val(2) & 31) > 16) {
    const c = f.mem ? inCols.find((x) => x[0] === 'm')! : REG_NAMES64[f.regs[0]];
    return { cols: [c], flags: 0x8d5 };
  }
  return { cols: [], flags: 0 };
}

export interface VectorForm {
  asm: string;
  bytes: string;
  row: string;
  undefFlags: string;
  base: Record<string, string>;
  in: string[];
  out: string[];
  cases: string[][];
}

export function initialState(base: Record<string, string>, cols: string[], vals: string[]): MachineState {
  const st = defaultState();
  for (const [c, v] of Object.entries(base)) writeColumn(st, c, v);
  cols.forEach((c, i) => writeColumn(st, c, vals[i]));
  return st;
}

export function faultText(o: Outcome): string {
  if (o.trap === NO_FAULT) return '';
  const hex = (v: number) => (v < 0 ? BigInt.asUintN(64, BigInt(v)).toString(16) : v.toString(16));
  return `${o.trap}@${hex(o.rip)}${o.trap === 14 ? `:${hex(o.faultAddr)}` : ''}`;
}

/** Run a form's cases natively and turn them into a vector form (or null when nothing usable). */
export function vectorize(form: Form, rng: Rng, n: number): VectorForm | null {
  const inCols = form.inputs.map(([c]) => c);
  const cases: { vals: string[]; init: MachineState }[] = [];
  for (let k = 0; k < n; k++) {
    const vals = form.inputs.map(([, g]) => g(rng));
    cases.push({ vals, init: initialState(form.base, inCols, vals) });
  }
  let results: Outcome[];
  try {
    results = runNative(cases.map((c) => ({ code: form.code, state: c.init })));
  } catch (e) {
    throw new Error(`${form.asm}: ${(e as Error).message}`);
  }
  const keep = results.map((r, i) => [r, cases[i]] as const).filter(([r]) => r.trap !== TIMEOUT);
  if (!keep.length) return null;
  // Output columns: every register that changed in some case, flags, and the memory spans touched.
  const out: string[] = [];
  for (let r = 0; r < 16; r++)
    if (keep.some(([o, c]) => o.gpr[2 * r] !== c.init.gpr[2 * r] || o.gpr[2 * r + 1] !== c.init.gpr[2 * r + 1])) out.push(REG_NAMES64[r]);
  out.push('flags');
  for (const c of ['mxcsr', 'fcw', 'fsw', 'ftw', ...Array.from({ length: 16 }, (_, i) => `xmm${i}`), ...Array.from({ length: 8 }, (_, i) => `st${i}`)])
    if (keep.some(([o, cs]) => outcomeColumn(o, cs.init, c) !== outcomeColumn({ ...o, gpr: cs.init.gpr, rflags: cs.init.rflags, fx: cs.init.fx }, cs.init, c))) out.push(c);
  const touched = new Set<number>();
  for (const [o] of keep) for (const a of o.memDiff.keys()) touched.add(a);
  const addrs = [...touched].sort((a, b) => a - b);
  for (let i = 0; i < addrs.length; ) {
    let j = i;
    while (j + 1 < addrs.length && addrs[j + 1] - addrs[j] <= 8) j++;
    out.push(`m${addrs[i].toString(16)}:${addrs[j] - addrs[i] + 1}`);
    i = j + 1;
  }
  const faults = keep.some(([o]) => o.trap !== NO_FAULT);
  if (faults) out.push('fault');
  const rows = keep.map(([o, c]) => {
    const und = caseUndefined(form.spec, c.init, inCols, c.vals);
    const outVals = out.map((col) => {
      if (col === 'fault') return faultText(o);
      if (und.cols.includes(col)) return '?';
      const v = outcomeColumn(o, c.init, col);
      return col === 'flags' && und.flags ? `${v}/${und.flags.toString(16)}` : v;
    });
    return [...c.vals, ...outVals];
  });
  return {
    asm: form.asm,
    bytes: [...form.code].map((b) => b.toString(16).padStart(2, '0')).join(''),
    row: form.spec.row.text,
    undefFlags: form.spec.row.undef.toString(16),
    base: form.base,
    in: inCols,
    out,
    cases: rows,
  };
}

/** Readable JSON: one line per case, so diffs of regenerated vectors stay reviewable. */
export function formatVectors(header: Record<string, unknown>, forms: VectorForm[]): string {
  const lines: string[] = ['{'];
  for (const [k, v] of Object.entries(header)) lines.push(`  ${JSON.stringify(k)}: ${JSON.stringify(v)},`);
  lines.push('  "forms": [');
  forms.forEach((f, fi) => {
    const { cases, ...rest } = f;
    const head = JSON.stringify(rest);
    lines.push(`    ${head.slice(0, -1)}, "cases": [`);
    cases.forEach((c, ci) => lines.push(`      ${JSON.stringify(c)}${ci + 1 < cases.length ? ',' : ''}`));
    lines.push(`    ]}${fi + 1 < forms.length ? ',' : ''}`);
  });
  lines.push('  ]', '}', '');
  return lines.join('\n');
}

export function hostCpuName(): string {
  try {
    const m = /model name\s*:\s*(.*)/.exec(fs.readFileSync('/proc/cpuinfo', 'utf8'));
    return m ? m[1].trim() : os.cpus()[0]?.model ?? 'unknown';
  } catch {
    return os.cpus()[0]?.model ?? 'unknown';
  }
}

/** Cases per (row, size, shape): at least `perForm`, spread over the immediate values. */
function generate(seed: number, perForm: number, only: Set<string> | null): Map<string, VectorForm[]> {
  const rng = new Rng(seed);
  const groups = new Map<string, VectorForm[]>();
  for (const row of ROWS) {
    if (!executes(row) || (only && !only.has(row.mnem))) continue;
    for (const size of sizesOf(row)) {
      let regForms = 0;
      for (const shape of ['reg', 'mem', 'same', 'lock'] as const) {
        const hasImm = row.operands.some((o) => o.loc === Loc.I || o.loc === Loc.Is);
        const immCount = hasImm ? (group(row) === 'shift' ? SHIFT_COUNTS.length : 8) : 1;
        const forms = makeForms(row, size, shape, rng, shape === 'reg' ? immCount : Math.min(immCount, 3));
        if (shape === 'reg') regForms = forms.length;
        // The main shape gets `perForm` cases: the register form, or the memory form of a
        // memory-only row; the other shapes are variations on it.
        const main = shape === 'reg' || (shape === 'mem' && regForms === 0);
        const total = main ? perForm : shape === 'mem' ? Math.max(16, perForm >> 2) : 12;
        for (const form of forms) {
          const v = vectorize(form, rng, Math.max(4, Math.ceil(total / forms.length)));
          if (!v) continue;
          const g = group(row);
          if (!groups.has(g)) groups.set(g, []);
          groups.get(g)!.push(v);
        }
      }
    }
  }
  return groups;
}

function main(): void {
  const args = process.argv.slice(2);
  const opt = (name: string, dflt: string) => {
    const i = args.indexOf(name);
    return i >= 0 ? args[i + 1] : dflt;
  };
  const seed = +opt('--seed', '1');
  const perForm = +opt('--cases', '200');
  const onlyArg = opt('--only', '');
  const only = onlyArg ? new Set(onlyArg.split(',')) : null;
  const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), fs.existsSync(path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../package.json')) ? '..' : '../..');
  const dir = path.join(root, 'test', 'vectors');
  fs.mkdirSync(dir, { recursive: true });
  const groups = generate(seed, perForm, only);
  const header = { cpu: hostCpuName(), generated: new Date().toISOString().slice(0, 10), seed, generator: 'tools/gen-vectors.ts' };
  for (const [g, forms] of groups) {
    const file = path.join(dir, `${g}.json`);
    fs.writeFileSync(file, formatVectors(header, forms));
    const n = forms.reduce((s, f) => s + f.cases.length, 0);
    console.log(`${path.relative(root, file)}: ${forms.length} forms, ${n} cases, ${(fs.statSync(file).size / 1024).toFixed(0)} KiB`);
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) main();
