/**
 * The ELF loader and initial process stack: real gcc -static and -static-pie binaries load
 * with the kernel's stack layout; malformed, foreign and dynamic files are refused with one
 * clear line.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, test } from 'vitest';
import { Cpu } from '../src/cpu/cpu.js';
import { CpuException, PfErr, Vec } from '../src/cpu/exceptions.js';
import { Memory, Prot } from '../src/cpu/memory.js';
import { getRflags } from '../src/cpu/flags.js';
import { Reg, S } from '../src/cpu/state.js';
import { LinuxProcess, LoadError } from '../src/linux/process.js';
import { PIE_BASE } from '../src/linux/loader.js';
import { STACK_TOP } from '../src/linux/vm.js';
import { buildC, harness, HELLO_C, tempDir } from './helpers/linux-harness.js';

const staticExe = () => buildC('hello', HELLO_C, ['-static', '-O1']);

function loadError(bytes: Uint8Array | string, memMiB = 64): string {
  const dir = tempDir();
  const file = path.join(dir, 'prog');
  fs.writeFileSync(file, bytes);
  const proc = new LinuxProcess(new Cpu(new Memory(memMiB * 1024 * 1024)), { strace: false, log: () => {} });
  try {
    proc.load(file, [file], []);
  } catch (e) {
    expect(e).toBeInstanceOf(LoadError);
    const msg = (e as Error).message;
    expect(msg).not.toContain('\n');
    return msg.replace(file + ': ', '');
  }
  throw new Error('loaded without error');
}

/** Auxiliary vector of the loaded process as a Map. */
function readStack(h: ReturnType<typeof harness>) {
  const as = h.proc.as;
  let sp = h.cpu.st.reg(Reg.RSP);
  const argc = as.readU64(sp);
  const argv: string[] = [];
  const envp: string[] = [];
  sp += 8;
  for (let a; (a = as.readU64(sp)); sp += 8) argv.push(as.readCString(a));
  sp += 8;
  for (let a; (a = as.readU64(sp)); sp += 8) envp.push(as.readCString(a));
  sp += 8;
  const aux = new Map<number, number>();
  for (;; sp += 16) {
    const k = as.readU64(sp);
    aux.set(k, as.readU64(sp + 8));
    if (k === 0) break;
  }
  return { argc, argv, envp, aux };
}

describe('loading real binaries', () => {
  test('gcc -static: segments, registers, initial stack and auxv', () => {
    const exe = staticExe();
    const file = fs.readFileSync(exe);
    const h = harness();
    h.proc.load(exe, [exe, 'one', 'two words'], ['A=1', 'PATH=/bin']);
    const entry = Number(file.readBigUInt64LE(24));
    expect(h.cpu.st.rip).toBe(entry);
    const rsp = h.cpu.st.reg(Reg.RSP);
    expect(rsp % 16).toBe(0);
    expect(rsp).toBeLessThan(STACK_TOP);
    expect(rsp).toBeGreaterThan(STACK_TOP - 65536);
    for (const r of [Reg.RAX, Reg.RBX, Reg.RCX, Reg.RDX, Reg.RSI, Reg.RDI, Reg.RBP, Reg.R8, Reg.R15]) expect(h.cpu.st.reg(r)).toBe(0);
    expect(getRflags(h.cpu)).toBe(0x202);
    expect(h.cpu.s[S.MXCSR]).toBe(0x1f80);
    expect(h.cpu.s[S.FPU_CW]).toBe(0x37f);

    const { argc, argv, envp, aux } = readStack(h);
    expect(argc).toBe(3);
    expect(argv).toEqual([exe, 'one', 'two words']);
    expect(envp).toEqual(['A=1', 'PATH=/bin']);
    expect(aux.get(6)).toBe(4096); // AT_PAGESZ
    expect(aux.get(9)).toBe(entry); // AT_ENTRY
    expect(aux.get(4)).toBe(56); // AT_PHENT
    expect(aux.get(5)).toBe(file.readUInt16LE(56)); // AT_PHNUM
    expect(aux.get(7)).toBe(0); // AT_BASE
    expect(aux.get(23)).toBe(0); // AT_SECURE
    expect(aux.get(17)).toBe(100); // AT_CLKTCK
    expect(aux.get(26)).toBe(0); // AT_HWCAP2
    expect(aux.get(51)).toBeGreaterThanOrEqual(2048); // AT_MINSIGSTKSZ
    expect(aux.has(33)).toBe(false); // no vDSO
    // AT_PHDR points at the program headers as mapped.
    const phdr = aux.get(3)!;
    expect(Buffer.from(h.proc.as.read(phdr, 56))).toEqual(file.subarray(64, 64 + 56));
    expect(h.proc.as.readCString(aux.get(15)!)).toBe('x86_64');
    expect(h.proc.as.readCString(aux.get(31)!)).toBe(exe);
    expect(h.proc.as.read(aux.get(25)!, 16).length).toBe(16);
    // AT_HWCAP is CPUID.1:EDX.
    h.cpu.st.setReg(Reg.RAX, 1);
    h.cpu.st.setReg(Reg.RCX, 0);
    h.cpu.hooks.cpuid(h.cpu);
    expect(aux.get(16)).toBe(h.cpu.s[2 * Reg.RDX] >>> 0);
    // Strings sit above the vectors, argv ascending.
    expect(h.proc.as.readU64(rsp + 8)).toBeLessThan(h.proc.as.readU64(rsp + 16));

    // Segment permissions: text is R+X and not writable, data writable; bytes come from the file.
    expect(h.mem.protOf(entry) & Prot.EXEC).toBeTruthy();
    expect(h.mem.protOf(entry) & Prot.WRITE).toBeFalsy();
    expect(h.mem.read8(entry)).toBe(file[entry - 0x400000]);
    expect(h.proc.brkStart % 4096).toBe(0);
    expect(h.sys(12, 0)).toBe(h.proc.brkStart);

    // Function symbols, sorted.
    const names = h.proc.symbols.map((s) => s.name);
    expect(names).toContain('main');
    expect(names).toContain('_start');
    const addrs = h.proc.symbols.map((s) => s.addr);
    expect([...addrs].sort((a, b) => a - b)).toEqual(addrs);
    expect(h.proc.symbols.find((s) => s.name === '_start')!.addr).toBe(entry);
  });

  test('gcc -static-pie loads at the PIE base', () => {
    const exe = buildC('hello-pie', HELLO_C, ['-static-pie', '-O1']);
    const h = harness();
    h.proc.load(exe, [exe], []);
    expect(h.cpu.st.rip).toBeGreaterThan(PIE_BASE);
    expect(h.cpu.st.rip).toBeLessThan(PIE_BASE + 0x1000000);
    expect(h.proc.symbols.find((s) => s.name === 'main')!.addr).toBeGreaterThan(PIE_BASE);
  });

  test('a stripped binary loads with no symbols', () => {
    const exe = buildC('hello-stripped', HELLO_C, ['-static', '-O1', '-s']);
    const h = harness();
    h.proc.load(exe, [exe], []);
    expect(h.proc.symbols).toEqual([]);
  });
});

describe('refusing bad input', () => {
  test('dynamic executable', () => {
    expect(loadError(fs.readFileSync(buildC('hello-dyn', HELLO_C, ['-O1'])))).toMatch(/^dynamic executables are not supported yet/);
  });

  test('text file, empty file, missing file, directory', () => {
    expect(loadError('#!/bin/sh\necho hi\n')).toBe('not an ELF file');
    expect(loadError('')).toBe('not an ELF file');
    const proc = new LinuxProcess(new Cpu(new Memory(1 << 20)), { strace: false, log: () => {} });
    expect(() => proc.load('/nonexistent/prog', [], [])).toThrow(/^\/nonexistent\/prog: no such file or directory$/);
    expect(() => proc.load(tempDir(), [], [])).toThrow(LoadError);
  });

  test('truncated at several points', () => {
    const file = fs.readFileSync(staticExe());
    expect(loadError(file.subarray(0, 3))).toBe('not an ELF file');
    expect(loadError(file.subarray(0, 20))).toBe('truncated ELF header');
    expect(loadError(file.subarray(0, 63))).toBe('truncated ELF header');
    expect(loadError(file.subarray(0, 100))).toMatch(/^truncated ELF file \(program headers/);
    expect(loadError(file.subarray(0, 4096))).toMatch(/^truncated ELF file \(segment \d/);
    expect(loadError(file.subarray(0, file.length >> 1))).toMatch(/^truncated ELF file/);
  });

  test('corrupted header fields', () => {
    const good = fs.readFileSync(staticExe());
    const patch = (f: (b: Buffer) => void) => {
      const b = Buffer.from(good);
      f(b);
      return loadError(b);
    };
    expect(patch((b) => (b[4] = 1))).toMatch(/not a 64-bit ELF file/);
    expect(patch((b) => (b[5] = 2))).toBe('not a little-endian ELF file');
    expect(patch((b) => b.writeUInt16LE(3, 18))).toBe('not an x86-64 ELF file (machine 3)');
    expect(patch((b) => b.writeUInt16LE(1, 16))).toMatch(/relocatable object/);
    expect(patch((b) => b.writeUInt16LE(0, 56))).toBe('no program headers');
    expect(patch((b) => b.writeUInt16LE(32, 54))).toBe('bad program header size 32');
    expect(patch((b) => b.writeBigUInt64LE(0x1000000000n, 32))).toMatch(/program headers lie outside the file/);
    expect(patch((b) => b.writeBigUInt64LE(0x123456n, 24))).toBe('entry point 0x123456 is outside the loaded segments');
    // Program header 1 is the text segment: make its file size exceed its memory size, its alignment odd, its offset misaligned.
    const ph1 = 64 + 56;
    expect(patch((b) => b.writeBigUInt64LE(b.readBigUInt64LE(ph1 + 40) - 16n, ph1 + 40))).toMatch(/file size larger than its memory size/);
    expect(patch((b) => b.writeBigUInt64LE(0x1800n, ph1 + 48))).toMatch(/alignment that is not a power of two/);
    expect(patch((b) => b.writeBigUInt64LE(0x1010n, ph1 + 8))).toMatch(/disagree modulo the page size/);
    // Segment 2 moved onto segment 1.
    expect(patch((b) => b.writeBigUInt64LE(0x401000n, 64 + 2 * 56 + 16))).toMatch(/overlap/);
    // A huge bss.
    expect(patch((b) => b.writeBigUInt64LE(0x7fffffffn, 64 + 3 * 56 + 40))).toMatch(/need \d+ MiB but the guest memory limit is 64 MiB/);
    expect(patch((b) => b.writeBigUInt64LE(0x7ffffffff6d8n, 64 + 3 * 56 + 16))).toMatch(/outside the user address space/);
  });

  test('a hand-made AArch64 ELF', () => {
    const b = Buffer.alloc(64 + 56);
    b.set([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1]);
    b.writeUInt16LE(2, 16); // ET_EXEC
    b.writeUInt16LE(183, 18); // EM_AARCH64
    b.writeUInt32LE(1, 20);
    b.writeBigUInt64LE(0x400000n, 24);
    b.writeBigUInt64LE(64n, 32);
    b.writeUInt16LE(64, 52);
    b.writeUInt16LE(56, 54);
    b.writeUInt16LE(1, 56);
    expect(loadError(b)).toBe('not an x86-64 ELF file (machine 183)');
    b.writeUInt16LE(62, 18); // now x86-64 but with a zeroed program header: nothing to load
    expect(loadError(b)).toBe('no loadable segments');
  });
});

test('the stack reserve is populated on demand, down to 8 MiB below the top', () => {
  const h = harness();
  h.proc.load(staticExe(), ['x'], []);
  const deep = STACK_TOP - 8 * 1024 * 1024 + 64;
  expect(h.mem.isMapped(deep)).toBe(false);
  h.proc.onException(new CpuException(Vec.PF, PfErr.U | PfErr.W, deep));
  h.mem.write32(deep, 5);
  expect(h.mem.read32(deep)).toBe(5);
  // Below the reserve is a real fault.
  expect(() => h.proc.onException(new CpuException(Vec.PF, PfErr.U | PfErr.W, STACK_TOP - 8 * 1024 * 1024 - 8))).toThrow(expect.objectContaining({ status: 139 }));
});
