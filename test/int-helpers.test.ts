/**
 * The integer interpreter helpers (src/cpu/helpers/int.ts) against the host CPU.
 *
 * tools/int-ref.c runs each instruction natively on edge and seeded random inputs and prints
 * the registers, RFLAGS and a 256-byte memory window before and after (or the fault). Each
 * case's name is the instruction in Intel syntax; `parseInsn` here turns that text into the
 * Insn the decoder would produce, so the instruction the host ran and the one the helper runs
 * are the same by construction. The rest of the file covers what a native run cannot show
 * simply: CPUID, RDTSC, XGETBV, FS/GS base, ENTER, PUSHF/POPF, segment overrides, REP across
 * pages and faults in the middle of a REP.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { Cpu } from '../src/cpu/cpu.js';
import { cpuidUserMode } from '../src/cpu/cpuid.js';
import { CpuException, Vec } from '../src/cpu/exceptions.js';
import { getRflags, setRflags } from '../src/cpu/flags.js';
import { INT_HELPERS } from '../src/cpu/helpers/int.js';
import { Memory, Prot } from '../src/cpu/memory.js';
import { REG8_LEGACY, REG_NAMES16, REG_NAMES32, REG_NAMES64, REG_NAMES8, S } from '../src/cpu/state.js';
import { BASE_NONE, type Insn, OpKind, type Operand, Seg } from '../src/frontend/insn.js';
import { type OpRow, ROWS } from '../src/frontend/table.js';

const WINDOW = 0x10000000;
const WINDOW_LEN = 256;
/** RAX RCX RDX RBX RSI RDI R8 R9, the registers the native trampoline loads and stores. */
const REGS = [0, 1, 2, 3, 6, 7, 8, 9];
/** Flags compared: OSZAPC and DF. */
const FLAGS_MASK = 0x8d5 | 0x400;

// ---- Insn construction ----

function operand(kind: OpKind, size: number, reg = 0, hi8 = false, imm = 0): Operand {
  return { kind, size, reg, hi8, imm, immHi: imm < 0 ? -1 : 0 };
}

function regOperand(name: string): Operand | undefined {
  const tables: [string[], number][] = [[REG_NAMES64, 8], [REG_NAMES32, 4], [REG_NAMES16, 2], [REG_NAMES8, 1]];
  for (const [names, size] of tables) {
    const r = names.indexOf(name);
    if (r >= 0) return operand(OpKind.Reg, size, r);
  }
  const legacy = REG8_LEGACY.indexOf(name);
  if (legacy >= 4) return operand(OpKind.Reg, 1, legacy - 4, true);
  return undefined;
}

const PTR_SIZES: Record<string, number> = { byte: 1, word: 2, dword: 4, qword: 8, xmmword: 16 };
const STRING_SIZES: Record<string, number> = { b: 1, w: 2, d: 4, q: 8 };

export function makeInsn(mnem: string, ops: Operand[], opSize: number, extra: Partial<Insn> = {}): Insn {
  return {
    addr: 0x401000, len: 3, next: 0x401003, bytes: new Uint8Array(0), mnem, cond: -1, row: {} as OpRow, ops, opSize,
    addrSize: 8, base: 8, index: -1, scale: 1, disp: 0, ripRel: false, seg: Seg.NONE, rep: 0, lock: false, modrmReg: -1, rex: 0, mode: 64,
    ...extra,
  };
}

/** Intel-syntax text (as tools/int-ref.c writes it) to the Insn the decoder would make. */
function parseInsn(text: string): Insn {
  if (text === '.byte 0x66, 0x0f, 0xcb') return makeInsn('bswap', [operand(OpKind.Reg, 4, 3)], 2); // bswap bx
  const words = text.split(/\s+/);
  let rep = 0;
  let addrSize = 8;
  while (['lock', 'rep', 'repe', 'repne', 'addr32'].includes(words[0])) {
    const p = words.shift()!;
    if (p === 'rep' || p === 'repe') rep = 0xf3;
    if (p === 'repne') rep = 0xf2;
    if (p === 'addr32') addrSize = 4;
  }
  let mnem = words.shift()!;
  const ops: Operand[] = [];
  const rest = words.join(' ');
  for (const t of rest ? rest.split(',').map((x) => x.trim()) : []) {
    const mem = /^(\w+) ptr \[r8\]$/.exec(t);
    const reg = regOperand(t);
    if (mem) ops.push(operand(OpKind.Mem, PTR_SIZES[mem[1]]));
    else if (reg) ops.push(reg);
    else if (/^\d+$/.test(t)) ops.push(operand(OpKind.Imm, 1, 0, false, +t));
    else throw new Error(`parseInsn: operand '${t}' in '${text}'`);
  }
  const str = /^(movs|stos|lods|cmps|scas)([bwdq])$/.exec(mnem);
  if (str) {
    const e = STRING_SIZES[str[2]];
    const acc = operand(OpKind.Reg, e, 0);
    const m = operand(OpKind.Mem, e);
    const shapes: Record<string, Operand[]> = { movs: [m, m], cmps: [m, m], stos: [m, acc], lods: [acc, m], scas: [acc, m] };
    return makeInsn(str[1], shapes[str[1]], e === 1 ? 4 : e, { rep, addrSize, base: BASE_NONE });
  }
  const accSizes: Record<string, [string, number]> = {
    cbw: ['cbw', 2], cwde: ['cbw', 4], cdqe: ['cbw', 8], cwd: ['cwd', 2], cdq: ['cwd', 4], cqo: ['cwd', 8],
  };
  if (accSizes[mnem]) return makeInsn(accSizes[mnem][0], [], accSizes[mnem][1]);
  let opSize = ops.find((o) => o.size >= 2 && o.size <= 8)?.size ?? 4;
  if (mnem === 'cmpxchg16b' || mnem === 'cmpxchg8b') (opSize = mnem === 'cmpxchg16b' ? 8 : 4), (mnem = 'cmpxchg8b'), (ops[0].size = 0);
  if (mnem === 'imul' && ops.length === 1) mnem = 'imul1';
  return makeInsn(mnem, ops, opSize, { rep, addrSize, lock: text.startsWith('lock') });
}

// ---- machine set-up ----

function newCpu(): Cpu {
  const mem = new Memory(1 << 20);
  mem.map(WINDOW, 4096, Prot.READ | Prot.WRITE);
  return new Cpu(mem);
}

function setRegs(cpu: Cpu, values: bigint[]): void {
  REGS.forEach((r, i) => {
    cpu.s[2 * r] = Number(BigInt.asIntN(32, values[i]));
    cpu.s[2 * r + 1] = Number(BigInt.asIntN(32, values[i] >> 32n));
  });
  setRflags(cpu, Number(values[8]));
}

function getRegs(cpu: Cpu): bigint[] {
  return [...REGS.map((r) => cpu.st.regU(r)), BigInt(getRflags(cpu) & FLAGS_MASK)];
}

/**
 * Cases whose result the manuals leave to the implementation and on which Intel and AMD parts
 * really differ, so a native reference from either vendor is right: 16-bit SHLD/SHRD by more
 * than 16 (the result is undefined), and a REP string instruction with 32-bit addressing and
 * ECX = 0 (Intel still zero-extends RCX/RSI/RDI, AMD leaves them alone).
 */
function vendorDependent(insn: Insn, c: RefCase): boolean {
  const count = insn.ops[2]?.kind === OpKind.Imm ? insn.ops[2].imm : Number(c.input[1] & 0xffn);
  if ((insn.mnem === 'shld' || insn.mnem === 'shrd') && insn.ops[0].size === 2 && (count & 31) > 16) return true;
  return insn.rep !== 0 && insn.addrSize === 4 && (c.input[1] & 0xffffffffn) === 0n;
}

/** RFLAGS bits the opcode table marks undefined for a mnemonic (any of its forms). */
function undefinedFlags(mnem: string): number {
  return ROWS.filter((r) => r.mnem === mnem).reduce((m, r) => m | r.undef, 0);
}

function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('hex');
}

// ---- native reference ----

interface RefCase {
  text: string;
  input: bigint[];
  memIn: string;
  fault: string; // '' | 'DE' | 'GP'
  output: bigint[];
  memOut: string;
}

function nativeCases(): Map<string, RefCase[]> | null {
  const src = path.join(import.meta.dirname, '../tools/int-ref.c');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'svmjit-int-ref-'));
  const exe = path.join(dir, 'int-ref');
  try {
    execFileSync('gcc', ['-O1', '-mno-red-zone', '-o', exe, src], { stdio: 'pipe' });
    // INT_REF_SEED / INT_REF_CASES widen the search when hunting a difference
    const seed = process.env.INT_REF_SEED ?? '12345';
    const cases = process.env.INT_REF_CASES ?? '150';
    const text = execFileSync(exe, [seed, cases], { maxBuffer: 1 << 30 }).toString();
    const byKind = new Map<string, RefCase[]>();
    for (const line of text.split('\n')) {
      if (!line) continue;
      const [name, regs, memIn, result] = line.split('|');
      const words = result.split(' ');
      const c: RefCase = {
        text: name,
        input: regs.split(' ').map((x) => BigInt('0x' + x)),
        memIn,
        fault: words[0] === 'ok' ? '' : words[0],
        output: words[0] === 'ok' ? words.slice(1, 10).map((x) => BigInt('0x' + x)) : [],
        memOut: words[10] === '=' ? memIn : (words[10] ?? ''),
      };
      if (!byKind.has(name)) byKind.set(name, []);
      byKind.get(name)!.push(c);
    }
    return byKind;
  } catch (e) {
    console.warn(`int-helpers: no native reference (${(e as Error).message.split('\n')[0]})`);
    return null;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

const NAMES = ['rax', 'rcx', 'rdx', 'rbx', 'rsi', 'rdi', 'r8', 'r9', 'flags'];

/** Run one native case on the helper; returns a description of the first difference, or ''. */
function replay(cpu: Cpu, insn: Insn, c: RefCase): string {
  setRegs(cpu, c.input);
  if (c.memIn !== '-') cpu.mem.writeBytes(WINDOW, Buffer.from(c.memIn, 'hex'));
  const before = getRegs(cpu);
  let fault = '';
  try {
    INT_HELPERS[insn.mnem](cpu, insn);
  } catch (e) {
    if (!(e instanceof CpuException)) throw e;
    fault = e.vector === Vec.DE ? 'DE' : e.vector === Vec.GP ? 'GP' : `vector ${e.vector}`;
  }
  const regs = getRegs(cpu);
  const mem = c.memIn === '-' ? '-' : hex(cpu.mem.readBytes(WINDOW, WINDOW_LEN));
  const inputs = `inputs ${c.input.map((v, i) => `${NAMES[i]}=${v.toString(16)}`).join(' ')}`;
  if (fault !== c.fault) return `${inputs}: fault '${fault}', native '${c.fault}'`;
  if (fault) {
    // A faulting instruction must leave everything as it was.
    const changed = regs.findIndex((v, i) => v !== before[i]);
    if (changed >= 0) return `${inputs}: ${NAMES[changed]} changed before the fault`;
    if (mem !== c.memIn) return `${inputs}: memory changed before the fault`;
    return '';
  }
  // Flags the manuals leave undefined differ between CPU vendors (DIV's, for one): not compared.
  const defined = BigInt(FLAGS_MASK & ~undefinedFlags(insn.mnem));
  const want = [...c.output.slice(0, 8), c.output[8] & defined];
  regs[8] &= defined;
  if (vendorDependent(insn, c)) return '';
  for (let i = 0; i < want.length; i++)
    if (regs[i] !== want[i]) return `${inputs}: ${NAMES[i]} = ${regs[i].toString(16)}, native ${want[i].toString(16)}`;
  if (mem !== c.memOut) {
    let at = 0;
    while (mem[at] === c.memOut[at]) at++;
    return `${inputs}: memory differs at window byte ${at >> 1}`;
  }
  return '';
}

const native = process.platform === 'linux' && process.arch === 'x64' ? nativeCases() : null;

describe.skipIf(!native)('helpers agree with the host CPU', () => {
  const kinds = [...(native?.keys() ?? [])];
  it('covers every family the helpers implement', () => {
    for (const m of ['div', 'idiv', 'mul', 'imul', 'shld', 'shrd', 'rcl', 'rcr', 'rol', 'ror', 'bsf', 'bsr', 'tzcnt', 'lzcnt',
      'popcnt', 'bt', 'bts', 'btr', 'btc', 'cmpxchg16b', 'rep movs', 'rep stos', 'cmps', 'scas'])
      expect(kinds.some((k) => k.includes(m)), m).toBe(true);
  });
  it.each(kinds)('%s', (text) => {
    const cpu = newCpu();
    const insn = parseInsn(text);
    expect(INT_HELPERS[insn.mnem], `helper for ${insn.mnem}`).toBeTypeOf('function');
    const failures: string[] = [];
    for (const c of native!.get(text)!) {
      const diff = replay(cpu, insn, c);
      if (diff) failures.push(diff);
    }
    expect(failures.slice(0, 5), `${failures.length} of ${native!.get(text)!.length} cases differ`).toEqual([]);
  });
});

// ---- instructions without a native comparison ----

function cpuWith(init: (cpu: Cpu) => void = () => {}): Cpu {
  const cpu = newCpu();
  cpu.mem.map(0x7fe000, 0x2000, Prot.READ | Prot.WRITE); // stack
  cpu.st.setReg(4, 0x7fff00);
  setRflags(cpu, 0x202);
  init(cpu);
  return cpu;
}

const RBX = operand(OpKind.Reg, 8, 3);
const EBX = operand(OpKind.Reg, 4, 3);

describe('cpuid', () => {
  function leaf(eax: number, ecx = 0): number[] {
    const cpu = cpuWith();
    cpu.hooks.cpuid = cpuidUserMode;
    cpu.st.setReg(0, eax);
    cpu.st.setReg(1, ecx);
    cpu.s[1] = -1; // the high half must be cleared
    INT_HELPERS.cpuid(cpu, makeInsn('cpuid', [], 4));
    expect([cpu.s[1], cpu.s[3], cpu.s[5], cpu.s[7]]).toEqual([0, 0, 0, 0]);
    return [0, 3, 1, 2].map((r) => cpu.s[2 * r] >>> 0);
  }
  const text = (words: number[]) => Buffer.from(new Uint32Array(words).buffer).toString('latin1').replace(/\0+$/, '');

  it('identifies an AMD CPU with a brand string', () => {
    const [max, b, c, d] = leaf(0);
    expect(max).toBe(0xd);
    expect(text([b, d, c])).toBe('AuthenticAMD');
    expect(leaf(0x80000000)[0]).toBe(0x80000008);
    expect(text([...leaf(0x80000002), ...leaf(0x80000003), ...leaf(0x80000004)])).toBe('svmjit virtual CPU');
    expect(leaf(0x80000008)[0] & 0xffff).toBe(0x3030);
  });

  it('claims exactly the implemented features', () => {
    const [sig, ebx, ecx, edx] = leaf(1);
    expect(((sig >>> 8) & 0xf) + ((sig >>> 20) & 0xff)).toBe(0x17);
    expect((ebx >>> 8) & 0xff).toBe(8);
    expect(ecx).toBe((1 << 13) | (1 << 23)); // CX16, POPCNT: no SSE3+, AVX, XSAVE, OSXSAVE, MOVBE, AES
    for (const bit of [0, 4, 8, 15, 24, 25, 26]) expect((edx >>> bit) & 1, `leaf 1 EDX bit ${bit}`).toBe(1);
    expect((edx >>> 23) & 1, 'MMX').toBe(0);
    expect(leaf(7)).toEqual([0, 0, 0, 0]);
    expect(leaf(7, 1)).toEqual([0, 0, 0, 0]);
    const ext = leaf(0x80000001);
    expect(ext[2]).toBe(1 | (1 << 5));
    expect(ext[3]).toBe(((1 << 11) | (1 << 20) | (1 << 26) | (1 << 27) | (1 << 29)) >>> 0); // SYSCALL, NX, Page1GB, RDTSCP, LM
    expect(leaf(0xd)).toEqual([0, 0, 0, 0]);
    expect(leaf(0x80000005)).toEqual([0, 0, 0, 0]);
    expect(leaf(0x40000000)).toEqual([0, 0, 0, 0]);
  });
});

describe('system instructions', () => {
  it('rdtsc and rdtscp split the counter into EDX:EAX', () => {
    const cpu = cpuWith((c) => c.st.setReg(1, -1));
    cpu.hooks.rdtsc = () => 0x123456789ab;
    INT_HELPERS.rdtsc(cpu, makeInsn('rdtsc', [], 4));
    expect([cpu.st.reg(0), cpu.st.reg(2), cpu.st.reg(1)]).toEqual([0x456789ab, 0x123, -1]);
    INT_HELPERS.rdtscp(cpu, makeInsn('rdtscp', [], 4));
    expect([cpu.st.reg(0), cpu.st.reg(2), cpu.st.reg(1)]).toEqual([0x456789ab, 0x123, 0]);
  });

  it('xgetbv reports x87 and SSE state, and faults for other registers', () => {
    const cpu = cpuWith((c) => (c.st.setReg(0, -1), c.st.setReg(2, -1)));
    INT_HELPERS.xgetbv(cpu, makeInsn('xgetbv', [], 4));
    expect([cpu.st.reg(0), cpu.st.reg(2)]).toEqual([3, 0]);
    cpu.st.setReg(1, 1);
    expect(() => INT_HELPERS.xgetbv(cpu, makeInsn('xgetbv', [], 4))).toThrow(CpuException);
  });

  it('reads and writes the FS and GS bases', () => {
    const cpu = cpuWith((c) => c.st.setReg(3, 0x7fff12345678));
    INT_HELPERS.wrfsbase(cpu, makeInsn('wrfsbase', [RBX], 8));
    expect([cpu.s[S.FS_BASE_LO], cpu.s[S.FS_BASE_HI]]).toEqual([0x12345678, 0x7fff]);
    INT_HELPERS.wrgsbase(cpu, makeInsn('wrgsbase', [EBX], 4));
    expect([cpu.s[S.GS_BASE_LO], cpu.s[S.GS_BASE_HI]]).toEqual([0x12345678, 0]);
    cpu.st.setReg(3, -1);
    INT_HELPERS.rdfsbase(cpu, makeInsn('rdfsbase', [EBX], 4));
    expect(cpu.st.reg(3)).toBe(0x12345678);
    INT_HELPERS.rdfsbase(cpu, makeInsn('rdfsbase', [RBX], 8));
    expect(cpu.st.reg(3)).toBe(0x7fff12345678);
    cpu.s[7] = 0x12345; // non-canonical
    expect(() => INT_HELPERS.wrgsbase(cpu, makeInsn('wrgsbase', [RBX], 8))).toThrow(CpuException);
    expect(cpu.s[S.GS_BASE_LO]).toBe(0x12345678);
  });
});

describe('stack and flags instructions', () => {
  it('pushf and popf move RFLAGS, popf changing only what user mode may', () => {
    const cpu = cpuWith();
    setRflags(cpu, 0x202 | 0x400 | 0x1 | 0x80);
    INT_HELPERS.pushf(cpu, makeInsn('pushf', [], 8));
    expect(cpu.st.reg(4)).toBe(0x7ffef8);
    expect(cpu.mem.read32(0x7ffef8)).toBe(0x202 | 0x400 | 0x1 | 0x80);
    cpu.mem.write64(0x7ffef8, 0x00240000 | 0x8d5 | 0x100 | 0x3000 | 0x4000, 0); // + AC ID OSZAPC TF, IOPL, NT
    setRflags(cpu, 0x202);
    INT_HELPERS.popf(cpu, makeInsn('popf', [], 8));
    expect(cpu.st.reg(4)).toBe(0x7fff00);
    expect(getRflags(cpu)).toBe(0x00240000 | 0x8d5 | 0x100 | 0x202);
    // 16-bit popf keeps the upper half (AC, ID)
    cpu.mem.write16(0x7ffefe, 0x0001);
    cpu.st.setReg(4, 0x7ffefe);
    INT_HELPERS.popf(cpu, makeInsn('popf', [], 2));
    expect(getRflags(cpu)).toBe(0x00240000 | 0x200 | 0x2 | 0x1);
    expect(cpu.st.reg(4)).toBe(0x7fff00);
  });

  it('lahf/sahf, cld/std', () => {
    const cpu = cpuWith();
    INT_HELPERS.std(cpu, makeInsn('std', [], 4));
    expect(getRflags(cpu) & 0x400).toBe(0x400);
    INT_HELPERS.cld(cpu, makeInsn('cld', [], 4));
    expect(getRflags(cpu) & 0x400).toBe(0);
  });

  it('enter builds frames at nesting levels 0 and 3', () => {
    const cpu = cpuWith((c) => c.st.setReg(5, 0x7fff80));
    const enter = (alloc: number, level: number, opSize = 8) =>
      INT_HELPERS.enter(cpu, makeInsn('enter', [operand(OpKind.Imm, 2, 0, false, alloc), operand(OpKind.Imm, 1, 0, false, level)], opSize));
    enter(0x20, 0);
    expect(cpu.mem.read32(0x7ffef8)).toBe(0x7fff80);
    expect(cpu.st.reg(5)).toBe(0x7ffef8);
    expect(cpu.st.reg(4)).toBe(0x7ffef8 - 0x20);
    // level 3: old RBP, two outer frame pointers copied from [rbp-8], [rbp-16], then the new frame pointer
    cpu.mem.write64(0x7ffef0, 0x1111, 0);
    cpu.mem.write64(0x7ffee8, 0x2222, 0);
    const rsp = cpu.st.reg(4);
    enter(0x10, 3);
    expect(cpu.mem.read32(rsp - 8)).toBe(0x7ffef8);
    expect(cpu.mem.read32(rsp - 16)).toBe(0x1111);
    expect(cpu.mem.read32(rsp - 24)).toBe(0x2222);
    expect(cpu.mem.read32(rsp - 32)).toBe(rsp - 8);
    expect(cpu.st.reg(5)).toBe(rsp - 8);
    expect(cpu.st.reg(4)).toBe(rsp - 32 - 0x10);
  });

  it('enter faults before changing anything when the stack is not writable', () => {
    const cpu = cpuWith((c) => (c.st.setReg(4, 0x7fe010), c.st.setReg(5, 0x7fe100)));
    const insn = makeInsn('enter', [operand(OpKind.Imm, 2, 0, false, 0), operand(OpKind.Imm, 1, 0, false, 4)], 8);
    expect(() => INT_HELPERS.enter(cpu, insn)).toThrow(CpuException);
    expect([cpu.st.reg(4), cpu.st.reg(5)]).toEqual([0x7fe010, 0x7fe100]);
    expect(cpu.mem.read64(0x7fe008)).toBe(0);
  });
});

describe('string instructions beyond the native window', () => {
  const movsb = (rep: number, extra: Partial<Insn> = {}) =>
    makeInsn('movs', [operand(OpKind.Mem, 1), operand(OpKind.Mem, 1)], 4, { rep, base: BASE_NONE, ...extra });

  it('rep movsb copies across pages, overlapping forward copies replicate like hardware', () => {
    const cpu = cpuWith();
    const src = 0x20000, dst = 0x30800, n = 9000;
    cpu.mem.map(src, 0x4000, Prot.READ | Prot.WRITE);
    cpu.mem.map(0x30000, 0x4000, Prot.READ | Prot.WRITE);
    const data = Uint8Array.from({ length: n }, (_, i) => (i * 7 + (i >> 8)) & 0xff);
    cpu.mem.writeBytes(src + 3, data);
    cpu.st.setReg(6, src + 3);
    cpu.st.setReg(7, dst);
    cpu.st.setReg(1, n);
    INT_HELPERS.movs(cpu, movsb(0xf3));
    expect(hex(cpu.mem.readBytes(dst, n))).toBe(hex(data));
    expect([cpu.st.reg(6), cpu.st.reg(7), cpu.st.reg(1)]).toEqual([src + 3 + n, dst + n, 0]);
    // dst = src + 1: the first byte propagates, as the element-by-element definition says
    cpu.st.setReg(6, src);
    cpu.st.setReg(7, src + 1);
    cpu.st.setReg(1, 5000);
    const first = cpu.mem.read8(src);
    INT_HELPERS.movs(cpu, movsb(0xf3));
    expect(cpu.mem.readBytes(src, 5001).every((b) => b === first)).toBe(true);
  });

  it('rep stosq backwards and rep movsq forwards stop at an unmapped page with exact registers', () => {
    const cpu = cpuWith();
    cpu.mem.map(0x40000, 0x1000, Prot.READ | Prot.WRITE);
    setRflags(cpu, 0x202 | 0x400);
    cpu.st.setReg(0, -2);
    cpu.st.setReg(7, 0x40010);
    cpu.st.setReg(1, 5);
    const stosq = makeInsn('stos', [operand(OpKind.Mem, 8), operand(OpKind.Reg, 8, 0)], 8, { rep: 0xf3, base: BASE_NONE });
    let fault: unknown;
    try {
      INT_HELPERS.stos(cpu, stosq);
    } catch (e) {
      fault = e;
    }
    expect(fault).toBeInstanceOf(CpuException);
    expect((fault as CpuException).vector).toBe(Vec.PF);
    // elements at 0x40010, 0x40008, 0x40000 were stored; the fourth (0x3fff8) faulted
    expect([cpu.st.reg(7), cpu.st.reg(1)]).toEqual([0x3fff8, 2]);
    expect(cpu.mem.read64(0x40000)).toBe(-2);
    setRflags(cpu, 0x202);
    cpu.st.setReg(6, 0x40ff0);
    cpu.st.setReg(7, 0x40000);
    cpu.st.setReg(1, 4);
    const movsq = makeInsn('movs', [operand(OpKind.Mem, 8), operand(OpKind.Mem, 8)], 8, { rep: 0xf3, base: BASE_NONE });
    expect(() => INT_HELPERS.movs(cpu, movsq)).toThrow(CpuException);
    expect([cpu.st.reg(6), cpu.st.reg(7), cpu.st.reg(1)]).toEqual([0x41000, 0x40010, 2]);
  });

  it('a segment override applies to the source of movs and lods, never to the destination', () => {
    const cpu = cpuWith();
    cpu.s[S.FS_BASE_LO] = 0x80;
    cpu.mem.write8(WINDOW + 0x80 + 4, 0xab);
    cpu.st.setReg(6, WINDOW + 4);
    cpu.st.setReg(7, WINDOW + 8);
    INT_HELPERS.movs(cpu, movsb(0, { seg: Seg.FS }));
    expect(cpu.mem.read8(WINDOW + 8)).toBe(0xab);
    expect(cpu.mem.read8(WINDOW + 0x88)).toBe(0);
    cpu.st.setReg(6, WINDOW + 4);
    INT_HELPERS.lods(cpu, makeInsn('lods', [operand(OpKind.Reg, 1, 0), operand(OpKind.Mem, 1)], 4, { base: BASE_NONE, seg: Seg.FS }));
    expect(cpu.s[0] & 0xff).toBe(0xab);
  });

  it('rep with a zero count changes nothing', () => {
    const cpu = cpuWith((c) => (c.st.setReg(6, 0x1234), c.st.setReg(7, 0x5678), c.st.setReg(1, 0)));
    const flags = getRflags(cpu);
    INT_HELPERS.cmps(cpu, makeInsn('cmps', [operand(OpKind.Mem, 4), operand(OpKind.Mem, 4)], 4, { rep: 0xf3, base: BASE_NONE }));
    expect([cpu.st.reg(6), cpu.st.reg(7), cpu.st.reg(1), getRflags(cpu)]).toEqual([0x1234, 0x5678, 0, flags]);
  });
});

describe('faults leave state alone', () => {
  it('xadd and cmpxchg on a read-only page', () => {
    const cpu = cpuWith((c) => (c.st.setReg(8, 0x50000), c.st.setReg(1, 5), c.st.setReg(0, 9)));
    cpu.mem.map(0x50000, 0x1000, Prot.READ);
    const m = operand(OpKind.Mem, 4);
    const ecx = operand(OpKind.Reg, 4, 1);
    const flags = getRflags(cpu);
    for (const mnem of ['xadd', 'cmpxchg', 'xchg', 'bts']) {
      expect(() => INT_HELPERS[mnem](cpu, makeInsn(mnem, [m, ecx], 4))).toThrow(CpuException);
      expect([cpu.st.reg(1), cpu.st.reg(0), getRflags(cpu)]).toEqual([5, 9, flags]);
    }
  });
});
