/**
 * `npm run bench`: how fast svmjit runs real programs, next to native. Builds the CPU-bound C
 * programs in bench/programs/ with musl-gcc -static -O2, then for each program runs it natively,
 * under qemu-x86_64 when it is installed, under `svmjit run --no-jit` and under the JIT, alternating them within each round so that
 * machine noise (thermal state, other load) hits all of them alike. Reports medians of wall time
 * measured from outside the process (what a user waits for, start-up included), guest
 * instruction counts from `--stats=json`, MIPS and ratios, and writes bench/results/latest.json
 * and latest.md. A row whose output differs from the native run is marked WRONG: a fast wrong
 * answer is not a result.
 *
 * Options: --runs N (default 5), --quick (1 run, two programs, a tenth of the work),
 * --filter NAME (programs whose name contains NAME), --scale N (the programs' work multiplier,
 * default 10: about 0.3-0.5 s natively each).
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { REPO_ROOT, benchBuild, buildAll, runCaptured, type RunResult } from '../test/helpers/build.js';

const PROGRAMS_DIR = path.join(REPO_ROOT, 'bench/programs');
const BUILD_DIR = path.join(REPO_ROOT, 'bench/.build');
const RESULTS_DIR = path.join(REPO_ROOT, 'bench/results');
const CLI = path.join(REPO_ROOT, 'dist/src/cli/main.js');
/** The two programs --quick keeps: one integer, one floating point. */
const QUICK_PROGRAMS = ['integer', 'nbody'];
const STATS_PREFIX = 'svmjit-stats: ';
/** qemu-x86_64 (user-mode QEMU, the tool a user would otherwise pick), when it is installed. */
const QEMU = (() => {
  try {
    return execFileSync('sh', ['-c', 'command -v qemu-x86_64'], { encoding: 'utf8' }).trim() || '';
  } catch {
    return '';
  }
})();
/** A hung run should end the benchmark, not the patience of whoever started it. */
const RUN_TIMEOUT_MS = 30 * 60_000;

interface GuestStats {
  insns: number;
  compileMs: number;
  wallMs: number;
}

interface Row {
  program: string;
  nativeMs: number;
  noJitMs: number;
  jitMs: number;
  guestInsns: number;
  noJitMips: number;
  jitMips: number;
  jitOverNative: number;
  noJitOverJit: number;
  /** qemu-x86_64 (user mode) median wall time, NaN when qemu is not installed. */
  qemuMs: number;
  /** svmjit JIT time / qemu time. */
  jitOverQemu: number;
  compileShare: number;
  /** Empty when every run matched the native output; otherwise why the row is WRONG. */
  wrong: string;
}

const median = (values: number[]): number => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
};

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

function gitCommit(): string {
  try {
    const commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: REPO_ROOT, encoding: 'utf8' }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--untracked-files=no'], { cwd: REPO_ROOT, encoding: 'utf8' }).trim();
    return dirty ? `${commit}+uncommitted` : commit;
  } catch {
    return 'unknown';
  }
}

const fixed = (value: number, digits: number) => (Number.isFinite(value) ? value.toFixed(digits) : '-');

function markdownTable(rows: Row[]): string {
  const header = ['program', 'native ms', 'qemu ms', 'no-jit ms', 'jit ms', 'guest insns', 'no-jit MIPS', 'jit MIPS', 'jit/native', 'jit/qemu', 'no-jit/jit', 'compile share'];
  const lines = [`| ${header.join(' | ')} |`, `| ${header.map((_, i) => (i === 0 ? '---' : '---:')).join(' | ')} |`];
  for (const r of rows) {
    const name = r.wrong ? `${r.program} **WRONG**` : r.program;
    lines.push(
      `| ${[
        name,
        fixed(r.nativeMs, 1),
        fixed(r.qemuMs, 0),
        fixed(r.noJitMs, 0),
        fixed(r.jitMs, 0),
        r.guestInsns.toLocaleString('en-US'),
        fixed(r.noJitMips, 1),
        fixed(r.jitMips, 1),
        `${fixed(r.jitOverNative, 1)}x`,
        Number.isFinite(r.jitOverQemu) ? `${fixed(r.jitOverQemu, 2)}x` : '-',
        `${fixed(r.noJitOverJit, 2)}x`,
        `${fixed(r.compileShare * 100, 1)}%`,
      ].join(' | ')} |`,
    );
  }
  return lines.join('\n');
}

async function benchmarkProgram(program: string, binary: string, runs: number, scale: number): Promise<Row> {
  const args = [String(scale)];
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
    if (QEMU) {
      const q = await runCaptured(QEMU, [binary, ...args], { timeoutMs: RUN_TIMEOUT_MS });
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
    process.stderr.write(
      `  ${program} round ${round + 1}/${runs}: native ${fixed(times.native[round], 0)} ms, no-jit ${fixed(times.noJit[round], 0)} ms, jit ${fixed(times.jit[round], 0)} ms\n`,
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

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      runs: { type: 'string' },
      quick: { type: 'boolean' },
      filter: { type: 'string' },
      scale: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    process.stdout.write('usage: npm run bench -- [--quick] [--runs N] [--filter NAME] [--scale N]\n');
    return;
  }
  const positive = (text: string | undefined, name: string, fallback: number): number => {
    if (text === undefined) return fallback;
    const n = Number(text);
    if (!Number.isInteger(n) || n < 1) throw new Error(`${name} takes a positive integer, not '${text}'`);
    return n;
  };
  const runs = positive(values.runs, '--runs', values.quick ? 1 : 5);
  const scale = positive(values.scale, '--scale', values.quick ? 1 : 10);
  if (!fs.existsSync(CLI)) throw new Error(`${CLI} is missing: run \`npm run build\` first (\`npm run bench\` does)`);

  process.stderr.write(`building bench/programs with musl-gcc -static -O2 into ${path.relative(REPO_ROOT, BUILD_DIR)}/\n`);
  let built = await buildAll(PROGRAMS_DIR, BUILD_DIR, [benchBuild()]);
  if (values.quick) built = built.filter((b) => QUICK_PROGRAMS.includes(b.program));
  if (values.filter) built = built.filter((b) => b.program.includes(values.filter!));
  if (built.length === 0) throw new Error(`no benchmark program matches --filter ${values.filter}`);

  process.stderr.write(`running ${built.map((b) => b.program).join(', ')}: ${runs} run(s) each of native${QEMU ? ', qemu-x86_64' : ''}, --no-jit and jit, work scale ${scale}\n`);
  const rows: Row[] = [];
  for (const { program, path: binary } of built) rows.push(await benchmarkProgram(program, binary, runs, scale));

  const cpus = os.cpus();
  const machine = {
    cpu: cpus[0]?.model ?? 'unknown',
    cores: cpus.length,
    os: `${os.type()} ${os.release()} ${os.arch()}`,
    node: process.version,
    commit: gitCommit(),
    date: new Date().toISOString(),
  };
  const settings = { runs, scale, quick: !!values.quick, filter: values.filter ?? null, statistic: 'median wall time of the whole process' };
  const table = markdownTable(rows);
  const wrong = rows.filter((r) => r.wrong);
  const notes = wrong.map((r) => `- **${r.program} WRONG**: ${r.wrong}`).join('\n');

  fs.mkdirSync(RESULTS_DIR, { recursive: true });
  fs.writeFileSync(path.join(RESULTS_DIR, 'latest.json'), JSON.stringify({ machine, settings, rows }, null, 2) + '\n');
  const markdown = [
    '# svmjit benchmark results',
    '',
    `${machine.date} on ${machine.cpu} (${machine.cores} cores), ${machine.os}, Node ${machine.node}, commit ${machine.commit}.`,
    `Median of ${runs} run(s) at work scale ${scale}; times are whole-process wall time, so svmjit's include Node start-up.`,
    'MIPS = guest instructions retired per microsecond of that wall time; compile share = time compiling blocks / svmjit run time.',
    '',
    table,
    ...(notes ? ['', notes] : []),
    '',
  ].join('\n');
  fs.writeFileSync(path.join(RESULTS_DIR, 'latest.md'), markdown);

  process.stdout.write(`\n${table}\n${notes ? `\n${notes}\n` : ''}\nwritten to ${path.relative(process.cwd(), RESULTS_DIR)}/latest.{json,md}\n`);
  if (wrong.length) process.exitCode = 1;
}

main().catch((e: Error) => {
  process.stderr.write(`bench: ${e.message}\n`);
  process.exitCode = 1;
});
