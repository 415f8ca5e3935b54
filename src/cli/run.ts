/**
 * `svmjit run`: wires a user-mode Linux process (src/linux) to the execution engine and turns
 * every way a run can end into an exit status and at most one line on stderr.
 */
import fs from 'node:fs';
import { Cpu } from '../cpu/cpu.js';
import { CpuException, Vec } from '../cpu/exceptions.js';
import { Memory, OutOfGuestMemory } from '../cpu/memory.js';
import { Exit } from '../ir/ops.js';
import { LinuxProcess, LoadError, ProcessExit } from '../linux/process.js';
import { Engine, type EngineStats, type ExecMode, InsnLimit } from '../runtime/engine.js';
import { GuestProfiler } from '../profile/profiler.js';
import { writeProfile } from '../profile/output.js';

export interface RunOptions {
  mode: ExecMode;
  maxInsns: number;
  memoryMiB: number;
  strace: boolean;
  debug: Set<string>;
  logFile?: string;
  env: string[];
  stats: '' | 'text' | 'json';
  jitThreshold: number;
  verify: boolean;
  /** Write a guest profile into this directory ('' = no profiling). */
  profileDir: string;
}

export function makeLog(file?: string): (line: string) => void {
  const fd = file ? fs.openSync(file, 'w') : 2;
  return (line: string) => {
    const buf = Buffer.from(line + '\n');
    for (let off = 0; off < buf.length; ) {
      try {
        off += fs.writeSync(fd, buf, off);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EAGAIN') throw e;
      }
    }
  };
}

/** Symbol+offset for an address, from a sorted symbol list. */
function symbolizer(syms: { name: string; addr: number; size: number }[]): (addr: number) => string | undefined {
  return (addr) => {
    let lo = 0, hi = syms.length - 1, best = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (syms[mid].addr <= addr) (best = mid), (lo = mid + 1);
      else hi = mid - 1;
    }
    if (best < 0) return undefined;
    const s = syms[best];
    const off = addr - s.addr;
    if (s.size && off >= s.size) return undefined;
    return off ? `${s.name}+0x${off.toString(16)}` : s.name;
  };
}

export function runProgram(prog: string, args: string[], opts: RunOptions): number {
  const log = makeLog(opts.logFile);
  const say = (msg: string) => process.stderr.write(`svmjit: ${msg}\n`);
  const t0 = performance.now();
  let mem: Memory;
  try {
    mem = new Memory(opts.memoryMiB * 1024 * 1024);
  } catch {
    say(`cannot allocate ${opts.memoryMiB} MiB of guest memory`);
    return 127;
  }
  const cpu = new Cpu(mem);
  const proc = new LinuxProcess(cpu, { strace: opts.strace, log });
  try {
    proc.load(prog, [prog, ...args], opts.env);
  } catch (e) {
    if (e instanceof LoadError) say(e.message);
    else if (e instanceof OutOfGuestMemory) say(`${prog}: ${e.message}`);
    else say(`${prog}: cannot load: ${(e as Error).message}`);
    return 127;
  }
  const profiler = opts.profileDir ? new GuestProfiler() : null;
  cpu.profiler = profiler;
  const symbolize = symbolizer(proc.symbols);
  const engine = new Engine(cpu, {
    profiler,
    mode: opts.mode,
    maxInsns: opts.maxInsns,
    jitThreshold: opts.mode === 'interp' ? Infinity : opts.mode === 'one-insn' ? 1 : opts.jitThreshold,
    debug: opts.debug,
    log,
    symbolize,
    verify: opts.verify,
  });
  let status: number;
  profiler?.start();
  for (;;) {
    try {
      const reason = engine.run();
      if (reason === Exit.SYSCALL) proc.syscall();
      else if (reason === Exit.SOFTINT) proc.onException(new CpuException(Vec.BP));
      proc.deliverPendingSignals();
    } catch (thrown) {
      let e: unknown = thrown;
      if (e instanceof CpuException) {
        try {
          proc.onException(e);
          proc.deliverPendingSignals();
          continue;
        } catch (e2) {
          e = e2;
        }
      }
      if (e instanceof ProcessExit) {
        status = e.status;
        break;
      }
      if (e instanceof InsnLimit) {
        say(e.message);
        status = 124;
        break;
      }
      if (e instanceof OutOfGuestMemory) {
        say(e.message);
        status = 137;
        break;
      }
      const err = e as Error;
      say(`internal error at guest RIP 0x${cpu.st.rip.toString(16)}: ${err.message}`);
      if (process.env.SVMJIT_DEBUG) process.stderr.write(String(err.stack) + '\n');
      status = 70;
      break;
    }
  }
  const wallMs = performance.now() - t0;
  if (profiler) {
    profiler.stop();
    const files = writeProfile(profiler, symbolize, prog, opts.profileDir);
    log(`svmjit: guest profile (${profiler.samples.length} samples): ${files.join(', ')}`);
  }
  if (opts.stats) reportStats(opts.stats, log, opts.mode, engine.stats, cpu.st.icount, wallMs, status);
  return status;
}

/**
 * The --stats report both personalities print: engine counters, guest instructions and MIPS,
 * plus any personality-specific lines (`extra`: label → value).
 */
export function reportStats(
  format: 'text' | 'json', log: (line: string) => void, mode: ExecMode, st: EngineStats, insns: number, wallMs: number, status: number,
  extra: Record<string, string | number | Record<string, number>> = {},
): void {
  const record = {
    insns, blocks: st.blocksTranslated, blocksCompiled: st.blocksCompiled, regionsCompiled: st.regionsCompiled, compileMs: +st.compileMs.toFixed(2), cacheHits: st.cacheHits,
    cacheMisses: st.cacheMisses, invalidations: st.invalidations, wallMs: +wallMs.toFixed(2), mips: +(insns / wallMs / 1000).toFixed(2), exitStatus: status,
    ...extra,
  };
  if (format === 'json') {
    log(`svmjit-stats: ${JSON.stringify(record)}`);
    return;
  }
  log(`\n--- svmjit statistics (${mode}) ---`);
  log(`guest instructions   ${insns.toLocaleString('en-US')}`);
  log(`blocks translated    ${st.blocksTranslated} (compiled to JS: ${st.blocksCompiled} blocks, ${st.regionsCompiled} regions, ${st.compileMs.toFixed(1)} ms)`);
  log(`cache hits / misses  ${st.cacheHits} / ${st.cacheMisses}; invalidations ${st.invalidations}`);
  for (const [k, v] of Object.entries(extra)) log(`${k.padEnd(20)} ${typeof v === 'object' ? JSON.stringify(v) : v}`);
  log(`wall time            ${wallMs.toFixed(1)} ms, ${record.mips} guest MIPS; exit status ${status}`);
}
