/**
 * A user-mode Linux process around the emulated CPU: what `svmjit run` talks to. It loads a
 * static x86-64 ELF with its initial stack, serves SYSCALL exits from the syscall table,
 * turns CPU exceptions into signals (or pages in lazily populated memory), delivers pending
 * signals, and writes the --strace log.
 *
 * The run loop owns execution; this object only ever sees the guest between instructions,
 * with precise state in cpu.s. Everything the guest can do wrong ends here as -errno, a
 * signal, or a ProcessExit carrying the exit status — never as a JS exception from guest data.
 */
import fs from 'node:fs';
import nodePath from 'node:path';
import type { Cpu } from '../cpu/cpu.js';
import { cpuidUserMode } from '../cpu/cpuid.js';
import { CpuException } from '../cpu/exceptions.js';
import { getRflags } from '../cpu/flags.js';
import { Reg, S, SEG_STRIDE, SegField, SegReg } from '../cpu/state.js';
import { E, Errno, errnoMessage, errnoText, hostErrno } from './errno.js';
import { type ElfSymbol, LoadError, parseElf } from './elf.js';
import { ProcessExit } from './exit.js';
import { FdTable } from './files.js';
import { mapImage, setupInitialStack } from './loader.js';
import { MINSIGSTKSZ, SIGFRAME_MAX, Signals } from './signals.js';
import { formatArg, formatCall, hex, quote, type TraceContext } from './strace.js';
import { SYSCALLS } from './syscalls.js';
import { AddressSpace } from './vm.js';

export { LoadError } from './elf.js';
export type { ElfSymbol } from './elf.js';
export { ProcessExit } from './exit.js';

export interface LinuxOptions {
  strace: boolean;
  /** Writes one line to the log (stderr or the -D file). */
  log: (line: string) => void;
  /** What /proc/self/exe names; defaults to the absolute path of the loaded program. */
  execPath?: string;
  /** Where the one-line reports of fatal conditions go; defaults to the host's stderr. */
  warn?: (line: string) => void;
}

/** Registers holding syscall arguments, in order. */
const ARG_REGS = [Reg.RDI, Reg.RSI, Reg.RDX, Reg.R10, Reg.R8, Reg.R9];

function writeStderr(line: string): void {
  const buf = Buffer.from(line + '\n');
  for (let off = 0; off < buf.length; ) {
    try {
      off += fs.writeSync(2, buf, off);
    } catch (e) {
      if (hostErrno(e) !== -E.AGAIN) return;
    }
  }
}

export class LinuxProcess implements TraceContext {
  readonly as: AddressSpace;
  readonly files = new FdTable();
  readonly signals: Signals;
  symbols: ElfSymbol[] = [];
  readonly pid = process.pid;
  readonly uid = process.getuid?.() ?? 0;
  readonly gid = process.getgid?.() ?? 0;
  /** The guest's working directory (kept here: the host process's must not change). */
  cwd = process.cwd();
  exePath = '';
  brkStart = 0;
  brk = 0;
  umask = 0o022;
  private readonly args = [0, 0, 0, 0, 0, 0];
  private readonly warnLine: (line: string) => void;

  constructor(
    readonly cpu: Cpu,
    readonly opts: LinuxOptions,
  ) {
    this.as = new AddressSpace(cpu.mem);
    this.warnLine = opts.warn ?? writeStderr;
    enterUserMode(cpu);
    this.signals = new Signals({
      cpu,
      as: this.as,
      pid: this.pid,
      uid: this.uid,
      trace: (line) => this.trace(line),
      warn: (line) => this.warnLine(line),
    });
    cpu.hooks.cpuid = cpuidUserMode;
    const start = process.hrtime.bigint();
    let last = 0;
    cpu.hooks.rdtsc = () => {
      // A nominal 2 GHz counter that never stands still, even between two reads in one nanosecond.
      const t = Number(process.hrtime.bigint() - start) * 2;
      last = t > last ? t : last + 1;
      return last;
    };
    this.files.inheritStdio();
  }

  load(path: string, argv: string[], envp: string[]): void {
    let file: Buffer;
    try {
      if (fs.statSync(path).isDirectory()) throw new LoadError(`${path}: is a directory`);
      file = fs.readFileSync(path);
    } catch (e) {
      if (e instanceof LoadError) throw e;
      const code = hostErrno(e);
      throw new LoadError(`${path}: ${code ? errnoMessage(-code).toLowerCase() : (e as Error).message}`);
    }
    const img = parseElf(file, path);
    const image = mapImage(this.as, file, img, path);
    this.symbols = image.symbols;
    this.exePath = this.opts.execPath ?? nodePath.resolve(path);
    this.brkStart = this.brk = image.brkStart;
    setupInitialStack(this.cpu, this.as, image, argv, envp, path, {
      hwcap: this.hwcap(),
      minSigStackSize: Math.max(MINSIGSTKSZ, SIGFRAME_MAX),
      uid: this.uid,
      gid: this.gid,
    });
  }

  /** CPUID.1:EDX as the guest's cpuid reports it (AT_HWCAP). */
  private hwcap(): number {
    const s = this.cpu.s;
    const saved = s.slice(0, 8);
    s[2 * Reg.RAX] = 1;
    s[2 * Reg.RCX] = 0;
    this.cpu.hooks.cpuid(this.cpu);
    const edx = s[2 * Reg.RDX] >>> 0;
    s.set(saved, 0);
    return edx;
  }

  syscall(): void {
    const st = this.cpu.st;
    const nr = st.reg(Reg.RAX);
    // SYSCALL itself leaves the return address in RCX and RFLAGS in R11.
    st.setReg(Reg.RCX, st.rip);
    st.setReg(Reg.R11, getRflags(this.cpu) >>> 0);
    const a = this.args;
    for (let i = 0; i < 6; i++) a[i] = st.reg(ARG_REGS[i]);
    const def = nr >= 0 && nr < SYSCALLS.length ? SYSCALLS[nr] : undefined;
    let ret: number;
    if (!def) {
      ret = -E.NOSYS;
      if (this.opts.strace) this.opts.log(`syscall_${hex(nr)}(${a.map(hex).join(', ')}) = ${errnoText(E.NOSYS)}`);
      st.setReg(Reg.RAX, ret);
      return;
    }
    try {
      ret = def.impl(this, a);
    } catch (e) {
      if (e instanceof Errno) ret = -e.code;
      else if (e instanceof CpuException) ret = -E.FAULT;
      else if (hostErrno(e) !== undefined) ret = hostErrno(e)!;
      else {
        if (e instanceof ProcessExit && this.opts.strace) {
          this.opts.log(`${formatCall(def.name, def.args, a, 0, def.ret, this).replace(/ = 0$/, ' = ?')}`);
          if (!e.signal) this.opts.log(`+++ exited with ${e.status} +++`);
        }
        throw e;
      }
    }
    st.setReg(Reg.RAX, ret);
    if (this.opts.strace) this.opts.log(formatCall(def.name, def.args, a, ret, def.ret, this));
  }

  onException(e: CpuException): void {
    this.signals.onException(e);
  }

  deliverPendingSignals(): void {
    if (this.signals.pending !== 0n) this.signals.deliverPending();
  }

  /** End the run with one clear line (conditions a real kernel would hang on). */
  fatal(message: string): never {
    this.warnLine(`svmjit: ${message}`);
    throw new ProcessExit(1);
  }

  trace(line: string): void {
    if (this.opts.strace) this.opts.log(line);
  }

  /** strace rendering of struct arguments (TraceContext). */
  describe(kind: string, addr: number, args: readonly number[], ret: number): string | undefined {
    if (kind === 'sigreturn') return `{mask=${Signals.formatSet(this.signals.blocked)}}`;
    if (addr === 0) return 'NULL';
    try {
      switch (kind) {
        case 'stat': {
          if (ret !== 0) return hex(addr);
          const mode = this.as.readU32(addr + 24);
          const types: Record<number, string> = { 0o140000: 'S_IFSOCK', 0o120000: 'S_IFLNK', 0o100000: 'S_IFREG', 0o60000: 'S_IFBLK', 0o40000: 'S_IFDIR', 0o20000: 'S_IFCHR', 0o10000: 'S_IFIFO' };
          const perm = '0' + (mode & 0o7777).toString(8).padStart(3, '0');
          return `{st_mode=${types[mode & 0o170000] ?? 'S_IFMT'}|${perm}, st_size=${this.as.readI64(addr + 48)}, ...}`;
        }
        case 'ts':
        case 'tsout':
          if (kind === 'tsout' && ret !== 0) return hex(addr);
          return `{tv_sec=${this.as.readI64(addr)}, tv_nsec=${this.as.readI64(addr + 8)}}`;
        case 'sigset': {
          const lo = this.as.readU32(addr), hi = this.as.readU32(addr + 4);
          return Signals.formatSet((BigInt(hi) << 32n) | BigInt(lo));
        }
        case 'sigact': {
          const handler = this.as.readU64(addr);
          const flags = this.as.readU32(addr + 8);
          const mask = (BigInt(this.as.readU32(addr + 28)) << 32n) | BigInt(this.as.readU32(addr + 24));
          const h = handler === 0 ? 'SIG_DFL' : handler === 1 ? 'SIG_IGN' : hex(handler);
          const restorer = flags & 0x04000000 ? `, sa_restorer=${hex(this.as.readU64(addr + 16))}` : '';
          return `{sa_handler=${h}, sa_mask=${Signals.formatSet(mask)}, sa_flags=${formatArg('saflags', 0, [flags], 0, this)}${restorer}}`;
        }
        case 'iov': {
          const n = Math.min(args[2] | 0, 8);
          const parts: string[] = [];
          for (let i = 0; i < n; i++) {
            const base = this.as.readU64(addr + 16 * i), len = this.as.readU64(addr + 16 * i + 8);
            parts.push(`{iov_base=${quote(this.as.peek(base, Math.min(len, 33)), 32, len > 33)}, iov_len=${len}}`);
          }
          return `[${parts.join(', ')}${(args[2] | 0) > n ? ', ...' : ''}]`;
        }
        case 'pipefd':
          return ret === 0 ? `[${this.as.readI32(addr)}, ${this.as.readI32(addr + 4)}]` : hex(addr);
        case 'rstr':
          return ret > 0 ? quote(this.as.peekCString(addr, 4096), 4096) : hex(addr);
      }
    } catch (e) {
      if (!(e instanceof Errno)) throw e;
    }
    return hex(addr);
  }
}

/**
 * The system state a Linux process runs under: 64-bit user mode at CPL 3 with paging and
 * long mode on, so system instructions fault as they would for a real process (#GP for CLI,
 * HLT, MOV CR…) and the decoder and helpers see a consistent machine.
 */
function enterUserMode(cpu: Cpu): void {
  const s = cpu.s;
  s[S.CPL] = 3;
  s[S.CR0] = 0x80050033 | 0; // PG, AM, WP, NE, ET, MP, PE
  s[S.CR4] = 0x6a0; // PAE, PGE, OSFXSR, OSXMMEXCPT
  s[S.EFER] = 0xd01; // SCE, LME, LMA, NXE
  const cs = S.SEG + SEG_STRIDE * SegReg.CS, ss = S.SEG + SEG_STRIDE * SegReg.SS;
  s[cs + SegField.SEL] = 0x33;
  s[cs + SegField.ATTR] = 0x2fb; // 64-bit code, DPL 3, present
  s[ss + SegField.SEL] = 0x2b;
  s[ss + SegField.ATTR] = 0xcf3; // data, DPL 3, present
}
