/**
 * Test support: assemble Intel-syntax x86-64 snippets with binutils `as` (always present where
 * gcc is) and run them on a bare Cpu + Memory in any of the three execution modes, so unit
 * tests of the decoder, interpreter and JIT share one way to get machine code.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Cpu } from '../../src/cpu/cpu.js';
import { CpuException, Vec } from '../../src/cpu/exceptions.js';
import { Memory, Prot } from '../../src/cpu/memory.js';
import { setRflags } from '../../src/cpu/flags.js';
import { S } from '../../src/cpu/state.js';
import { Engine, type ExecMode } from '../../src/runtime/engine.js';

const cache = new Map<string, Uint8Array>();

export function assemble(src: string): Uint8Array {
  const hit = cache.get(src);
  if (hit) return hit;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'svmjit-asm-'));
  try {
    fs.writeFileSync(path.join(dir, 'a.s'), `.intel_syntax noprefix\n.text\n${src}\n`);
    execFileSync('as', ['--64', '-o', path.join(dir, 'a.o'), path.join(dir, 'a.s')]);
    execFileSync('objcopy', ['-O', 'binary', '-j', '.text', path.join(dir, 'a.o'), path.join(dir, 'a.bin')]);
    const bytes = new Uint8Array(fs.readFileSync(path.join(dir, 'a.bin')));
    cache.set(src, bytes);
    return bytes;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

export const CODE = 0x400000;
export const DATA = 0x600000;
export const STACK_TOP = 0x800000;

export interface SnippetResult {
  cpu: Cpu;
  /** The exception that ended the run (a #UD at the final ud2 for a normal end). */
  end: CpuException;
  /** RIP where it ended. */
  rip: number;
  engine: Engine;
}

export interface SnippetOptions {
  /** Map the code writable too (self-modifying code tests). */
  rwx?: boolean;
}

/**
 * Run `src` (assembled, followed by ud2) with registers preset by `init`, until the trailing
 * ud2 or another exception. The data page at DATA (64 KiB) and a stack are mapped.
 */
export function runSnippet(src: string, mode: ExecMode, init?: (cpu: Cpu) => void, opts: SnippetOptions = {}): SnippetResult {
  const code = assemble(src + '\nud2');
  const mem = new Memory(16 * 1024 * 1024);
  mem.map(CODE, Math.ceil(code.length / 4096) * 4096, Prot.READ | Prot.EXEC | (opts.rwx ? Prot.WRITE : 0));
  mem.poke(CODE, code);
  mem.map(DATA, 0x10000, Prot.READ | Prot.WRITE);
  mem.map(STACK_TOP - 0x10000, 0x10000, Prot.READ | Prot.WRITE);
  const cpu = new Cpu(mem);
  setRflags(cpu, 0x202);
  cpu.st.rip = CODE;
  cpu.st.setReg(4, STACK_TOP - 0x100);
  init?.(cpu);
  const engine = new Engine(cpu, {
    mode, maxInsns: 1_000_000, jitThreshold: mode === 'interp' ? Infinity : 1, debug: new Set(), log: () => {}, verify: true,
  });
  for (;;) {
    try {
      engine.run();
      throw new Error('snippet made a system call');
    } catch (e) {
      if (e instanceof CpuException) return { cpu, end: e, rip: cpu.st.rip, engine };
      throw e;
    }
  }
}

export const MODES: ExecMode[] = ['interp', 'one-insn', 'jit'];

/** The trailing ud2's address: a snippet that ran to completion ends there with #UD. */
export function endedNormally(r: SnippetResult, src: string): boolean {
  const len = assemble(src + '\nud2').length;
  return r.end.vector === Vec.UD && r.rip === CODE + len - 2;
}

export { S };
