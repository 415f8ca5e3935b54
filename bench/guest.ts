/**
 * Whole-guest benchmarks: one statically linked program run natively, under qemu-x86_64 (when it
 * is installed), under `svmjit run --no-jit` and under the JIT, alternating within each round so
 * that machine noise (thermal state, other load) hits all of them alike. Times are medians of
 * wall time measured from outside the process (what a user waits for, start-up included);
 * instruction counts and compile time come from svmjit's `--stats=json`. A row whose output
 * differs from the native run is marked WRONG: a fast wrong answer is not a result.
 */
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { REPO_ROOT, runCaptured, type RunResult } from '../test/helpers/build.js';
import { fixed, markdownTable, median, ratio } from './report.js';

/** The command users run: the one-file build (tools/bundle.ts). */
const CLI = path.join(REPO_ROOT, 'dist/svmjit.mjs');
const STATS_PREFIX = 'svmjit-stats: ';
/** A hung run should end the benchmark, not the patience of whoever started it. */
const RUN_TIMEOUT_MS = 30 * 60_000;

/** Where `svmjit run` lives; the runner checks it exists before starting. */
export const SVMJIT_CLI = CLI;

/** qemu-x86_64 (user-mode QEMU, the tool a user would otherwise pick), or '' when it is not installed. */
export function findQemu(): string {
  try {
    return execFileSync('sh', ['-c', 'command -v qemu-x86_64'], { encoding: 'utf8' }).trim();
  } catch {
    return '';
  }
}

interface GuestStats {
  insns: number;
  compileMs: number;
  wallMs: number;
}

/** One program's figures. NaN (null in JSON) marks what was not measured. */
export interface GuestRow {
  program: string;
  nativeMs: number;
  noJitMs: number;
  jitMs: number;
  guestInsns: number;
  noJitMips: number;
  jitMips: number;
  jitOverNative: number;
  noJitOverJit: number;
  /** qemu-x86_64 (user mode) median wall time, NaN when qemu was not run. */
  qemuMs: number;
  /** svmjit JIT time / qemu time. */
  jitOverQemu: number;
  /** Median over the JIT runs of (time compiling blocks / svmjit's own run time). */
  compileShare: number;
  /** Empty when every run matched the native output; otherwise why the row is WRONG. */
  wrong: string;
}

export interface GuestOptions {
  runs: number;
  scale: number;
  /** Path of qemu-x86_64, or '' to leave the qemu column out. */
  qemu: string;
  log: (line: string) => void;
}

/** Splits svmjit's stats line off the guest's own stderr. */
function parseStats(result: RunResult): { stats: GuestStats | undefined; guestStderr: string } {
  let stats: GuestStats | undefined;
  const kept: string[] = [];
  for (const line of result.stderr.toString('utf8').split('\n')) {
    if (line.startsWith(STATS_PREFIX)) stats = JSON.parse(line.slice(STATS_PREFIX.length)) as GuestStats;
    else kept.push(line);
  }
  return { stats, guestStderr: kept.join('\n') };
}

export async function benchmarkProgram(program: string, binary: string, opts: GuestOptions): Promise<GuestRow> {
  const { runs, qemu } = opts;
  const args = [String(opts.scale)];
  const times = { native: [] as number[], qemu: [] as number[], noJit: [] as number[], jit: [] as number[] };
  const problems = new Set<string>();
  let insns = 0;
  const compileShares: number[] = [];
  let expected: Buffer | undefined;
  const check = (label: string, result: RunResult, guestStderr: string) => {
    if (result.timedOut) problems.add(`${label} timed out`);
    else if (result.status !== 0) problems.add(`${label} exited with ${result.status}${guestStderr ? `: ${guestStderr.trim().split('\n')[0]}` : ''}`);
    else if (expected && !result.stdout.equals(expected)) problems.add(`${label} printed a different checksum`);
  };
  for (let round = 0; round < runs; round++) {
    const native = await runCaptured(binary, args, { timeoutMs: RUN_TIMEOUT_MS });
    expected ??= native.stdout;
    check('native', native, native.stderr.toString('utf8'));
    times.native.push(native.wallMs);
    if (qemu) {
      const q = await runCaptured(qemu, [binary, ...args], { timeoutMs: RUN_TIMEOUT_MS });
      check('qemu-x86_64', q, q.stderr.toString('utf8'));
      times.qemu.push(q.wallMs);
    }
    for (const [label, flags, into] of [
      ['no-jit', ['--no-jit'], times.noJit],
      ['jit', [], times.jit],
    ] as const) {
      const result = await runCaptured(process.execPath, [CLI, 'run', ...flags, '--stats=json', binary, ...args], { timeoutMs: RUN_TIMEOUT_MS });
      const { stats, guestStderr } = parseStats(result);
      check(label, result, guestStderr);
      into.push(result.wallMs);
      if (!stats) {
        problems.add(`${label} printed no statistics`);
        continue;
      }
      if (insns && stats.insns !== insns) problems.add(`instruction counts disagree (${insns} vs ${stats.insns})`);
      insns = stats.insns;
      if (label === 'jit' && stats.wallMs > 0) compileShares.push(stats.compileMs / stats.wallMs);
    }
    opts.log(
      `  ${program} round ${round + 1}/${runs}: native ${fixed(times.native[round], 0)} ms${qemu ? `, qemu ${fixed(times.qemu[round], 0)} ms` : ''}, no-jit ${fixed(times.noJit[round], 0)} ms, jit ${fixed(times.jit[round], 0)} ms`,
    );
  }
  const nativeMs = median(times.native);
  const noJitMs = median(times.noJit);
  const jitMs = median(times.jit);
  const qemuMs = times.qemu.length ? median(times.qemu) : NaN;
  return {
    program,
    nativeMs,
    noJitMs,
    jitMs,
    guestInsns: insns,
    noJitMips: insns / noJitMs / 1000,
    jitMips: insns / jitMs / 1000,
    jitOverNative: jitMs / nativeMs,
    noJitOverJit: noJitMs / jitMs,
    qemuMs,
    jitOverQemu: jitMs / qemuMs,
    compileShare: compileShares.length ? median(compileShares) : NaN,
    wrong: [...problems].join('; '),
  };
}

export function guestTable(rows: GuestRow[]): string {
  const header = ['program', 'native ms', 'qemu ms', 'no-jit ms', 'jit ms', 'guest insns', 'no-jit MIPS', 'jit MIPS', 'jit/native', 'jit/qemu', 'no-jit/jit', 'compile share'];
  return markdownTable(
    header,
    rows.map((r) => [
      r.wrong ? `${r.program} **WRONG**` : r.program,
      fixed(r.nativeMs, 1),
      fixed(r.qemuMs, 0),
      fixed(r.noJitMs, 0),
      fixed(r.jitMs, 0),
      r.guestInsns.toLocaleString('en-US'),
      fixed(r.noJitMips, 1),
      fixed(r.jitMips, 1),
      ratio(r.jitOverNative, 1),
      ratio(r.jitOverQemu, 2),
      ratio(r.noJitOverJit, 2),
      Number.isFinite(r.compileShare) ? `${fixed(r.compileShare * 100, 1)}%` : '-',
    ]),
  );
}
