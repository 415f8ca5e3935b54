/**
 * Test support for the Linux personality: a LinuxProcess on a small guest memory whose
 * syscalls are driven by hand (registers set, proc.syscall() called, RAX read back), a
 * scratch buffer in guest memory, and static gcc test binaries built once per run.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Cpu } from '../../src/cpu/cpu.js';
import { Memory } from '../../src/cpu/memory.js';
import { Reg } from '../../src/cpu/state.js';
import { LinuxProcess } from '../../src/linux/process.js';

export interface Harness {
  cpu: Cpu;
  mem: Memory;
  proc: LinuxProcess;
  log: string[];
  warnings: string[];
  /** Run syscall nr with the given arguments; returns RAX as a signed number. */
  sys(nr: number, ...args: number[]): number;
  /** A fresh read/write anonymous mapping of len bytes (made with mmap). */
  scratch(len?: number): number;
  /** Put a NUL-terminated string in guest memory, return its address. */
  str(s: string): number;
}

export function harness(memMiB = 64, strace = true): Harness {
  const mem = new Memory(memMiB * 1024 * 1024);
  const cpu = new Cpu(mem);
  const log: string[] = [];
  const warnings: string[] = [];
  const proc = new LinuxProcess(cpu, { strace, log: (l) => log.push(l), warn: (l) => warnings.push(l) });
  const argRegs = [Reg.RDI, Reg.RSI, Reg.RDX, Reg.R10, Reg.R8, Reg.R9];
  const sys = (nr: number, ...args: number[]) => {
    cpu.st.setReg(Reg.RAX, nr);
    args.forEach((v, i) => cpu.st.setReg(argRegs[i], v));
    for (let i = args.length; i < 6; i++) cpu.st.setReg(argRegs[i], 0);
    proc.syscall();
    return cpu.st.reg(Reg.RAX);
  };
  const scratch = (len = 65536) => {
    const a = sys(9, 0, len, 3, 0x22, -1, 0);
    if (a < 0) throw new Error(`scratch mmap failed: ${a}`);
    return a;
  };
  let strings = 0;
  let strEnd = 0;
  const str = (s: string) => {
    const bytes = Buffer.from(s + '\0');
    if (!strings || strEnd + bytes.length > strings + 65536) (strings = scratch()), (strEnd = strings);
    const a = strEnd;
    proc.as.write(a, bytes);
    strEnd += bytes.length;
    return a;
  };
  return { cpu, mem, proc, log, warnings, sys, scratch, str };
}

const built = new Map<string, string>();
let buildDir = '';

/** Compile a C program with gcc (or musl-gcc) and the given flags (cached per run); returns the binary's path. */
export function buildC(name: string, source: string, flags: string[], compiler = 'gcc', ext = 'c'): string {
  const key = `${compiler}|${name}|${flags.join(' ')}`;
  const hit = built.get(key);
  if (hit) return hit;
  if (!buildDir) buildDir = fs.mkdtempSync(path.join(os.tmpdir(), 'svmjit-linux-'));
  const src = path.join(buildDir, `${name}.${ext}`);
  const out = path.join(buildDir, name);
  fs.writeFileSync(src, source);
  execFileSync(compiler, [...flags, '-o', out, src]);
  built.set(key, out);
  return out;
}

export const HELLO_C = '#include <stdio.h>\nint main(int argc, char **argv) { printf("hello %d\\n", argc); return 3; }\n';

export function tempDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'svmjit-fs-'));
}
