/**
 * The SVM and machine-mode rows of `npm run bench`, measured with the demo hypervisor
 * (demo/hypervisor.c, the image `npm start` boots) built from source and booted under
 * `svmjit boot` with a benchmark chosen by --append:
 *
 * - `bench=roundtrip`: L2 loops on VMMCALL, L1 handles each #VMEXIT and resumes L2 — round trips
 *   L2 → L1 → L2 per second, the cost of svmjit's world switch plus a small hypervisor's handler;
 * - `bench=workload`: laps of demo/workload.h's rounds run by the guest and, after each, the same
 *   lap run by the hypervisor itself — the JIT's speed on L2 code against the same code in L1,
 *   alternating within one process so that a burst of load on the host lands on both;
 * - the same laps once more as a static Linux program under `svmjit run` (demo/workload-user.c):
 *   machine mode against user mode. The program also runs natively, once per round, as the
 *   reference for the checksum every lap must reproduce.
 *
 * Every timed lap sits between an "svmjit-bench: begin <lap>" and an "svmjit-bench: end <lap>"
 * line, after a warm-up; its figure is the host time between the arrival of those two lines, so
 * Node's start-up, the boot and the warm-up stay out of it. svmjit writes a guest's serial line the
 * moment the guest ends it, and this process waits on nothing else, so a line arrives well within
 * a millisecond — against laps of tens of milliseconds and more. A row's time is the sum of its
 * laps in one run; the processes alternate within each round, as in guest.ts, and medians over
 * the rounds are reported.
 *
 * The image sources stay in demo/ because they are one program: the demo and the benchmarks
 * exercise the same exit handlers. The benchmark builds them (gcc and make, like the C programs
 * it needs musl-gcc for) rather than trusting the committed demo/hypervisor.flat.
 */
import { execFile, spawn } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { REPO_ROOT, compileIfStale, requireCompilers, type GuestBuild } from '../test/helpers/build.js';
import { SVMJIT_CLI } from './guest.js';
import { fixed, markdownTable, median, rate } from './report.js';

const DEMO_DIR = path.join(REPO_ROOT, 'demo');
/** A run that hangs ends the benchmark with a WRONG row instead of waiting for ever. */
const RUN_TIMEOUT_MS = 10 * 60_000;
const BEGIN = 'svmjit-bench: begin ';
const END = 'svmjit-bench: end ';
/**
 * Work at scale 1: about 0.2 s of round trips, and 10 laps of 2 workload rounds (about 0.4 s)
 * at each level. Ten laps alternate L2 and L1 finely enough that a burst of load on the host
 * lands on both.
 */
const ROUND_TRIPS_PER_SCALE = 20_000;
const ROUNDS_PER_LAP_PER_SCALE = 2;
const LAPS = 10;

/**
 * The user-mode build of the workload: test/baremetal's code-generation flags (general
 * registers only, no memset idiom, frame pointers, no red zone, no PIC) on top of the static
 * musl build, so its loops compile as the hypervisor's do.
 */
const USER_BUILD: GuestBuild = {
  name: 'musl-O2-baremetal-flags',
  compiler: 'musl-gcc',
  before: ['-static', '-O2', '-mgeneral-regs-only', '-fno-tree-loop-distribute-patterns', '-fno-omit-frame-pointer', '-mno-red-zone', '-fno-pie', '-no-pie'],
  after: [],
};

export type SvmBench = 'roundtrip' | 'l1' | 'l2' | 'user';

/** One row. NaN (null in JSON) marks what was not measured. */
export interface SvmRow {
  bench: SvmBench;
  /** What runs, for the table. */
  label: string;
  /** What the timed laps do `n` of in all: round trips, or rounds of the workload. */
  unit: 'round trips' | 'rounds';
  n: number;
  /** Median over runs of the host time of the timed laps (summed within a run), milliseconds. */
  ms: number;
  /** Units per second at that median. */
  perSec: number;
  /**
   * Virtual cycles per unit, from svmjit's cycle-counter hypercall: the virtual TSC advances one
   * per guest instruction, so this is the L1 + L2 instructions one unit takes. NaN in user mode.
   */
  cyclesPerUnit: number;
  /** Guest instructions per microsecond of the timed laps (cycles / ms / 1000). */
  mips: number;
  /**
   * The same rounds' speed relative to L1: the median over runs of L1's time / this row's in the
   * same round (for L2, laps of the same process). NaN for round trips.
   */
  speedVsL1: number;
  /** Empty when every run ended well with the expected result; otherwise what went wrong. */
  wrong: string;
}

export interface SvmOptions {
  runs: number;
  scale: number;
  log: (line: string) => void;
}

/** One timed lap: its name (roundtrip, l1, l2, user), host time and the fields of its end line. */
interface Lap {
  name: string;
  ms: number;
  fields: Record<string, string>;
}

/** A run's laps in order, and empty or why the run does not count. */
interface LapRun {
  laps: Lap[];
  problem: string;
}

const LABELS: Record<SvmBench, string> = {
  roundtrip: 'L2→L1→L2 round trip (VMMCALL exit, L1 resumes L2)',
  l1: 'workload in L1 (the hypervisor, ring 0)',
  l2: 'workload in L2 (its guest, via VMRUN)',
  user: 'workload in user mode (svmjit run)',
};

/** Builds the hypervisor image and the user-mode workload; returns their paths. */
export async function buildSvmBench(buildDir: string): Promise<{ image: string; user: string }> {
  requireCompilers();
  const out = path.join(buildDir, 'hypervisor');
  await promisify(execFile)(path.join(DEMO_DIR, 'build-hypervisor.sh'), [out]).catch((e: { stderr?: string; message: string }) => {
    throw new Error(`demo/build-hypervisor.sh failed:\n${e.stderr || e.message}`);
  });
  const user = await compileIfStale(path.join(DEMO_DIR, 'workload-user.c'), path.join(buildDir, USER_BUILD.name, 'workload-user'), USER_BUILD);
  return { image: path.join(out, 'hypervisor.flat'), user };
}

/**
 * Runs a command and times each of its laps: from the arrival of a "begin <lap>" line to that of
 * the next "end <lap>" line. Other output (the hypervisor's banner, say) is ignored.
 */
function timeLaps(command: string, args: string[]): Promise<LapRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const open = new Map<string, number>();
    const laps: Lap[] = [];
    const strays: string[] = [];
    let partial = '';
    let stderr = '';
    const timer = setTimeout(() => child.kill('SIGKILL'), RUN_TIMEOUT_MS);
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (chunk: string) => {
      const now = performance.now();
      const lines = (partial + chunk).split('\n');
      partial = lines.pop()!;
      for (const line of lines) {
        const marker = line.startsWith(BEGIN) ? BEGIN : line.startsWith(END) ? END : '';
        if (!marker) continue;
        const [name, ...rest] = line.slice(marker.length).split(' ');
        if (marker === BEGIN) {
          open.set(name, now);
          continue;
        }
        const began = open.get(name);
        if (began === undefined) strays.push(name);
        open.delete(name);
        const fields: Record<string, string> = {};
        for (const [, key, value] of rest.join(' ').matchAll(/(\w+)=(\S+)/g)) fields[key] = value;
        laps.push({ name, ms: now - (began ?? NaN), fields });
      }
    });
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (chunk: string) => (stderr += chunk));
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const why = stderr.trim().split('\n')[0];
      const problem =
        signal ? `killed by ${signal}${signal === 'SIGKILL' ? ' (timed out)' : ''}`
        : code !== 0 ? `exited with ${code}${why ? `: ${why}` : ''}`
        : strays.length ? `ended lap ${strays[0]} without beginning it`
        : open.size ? `began lap ${[...open.keys()][0]} without ending it`
        : '';
      resolve({ laps, problem });
    });
  });
}

/** One benchmark's laps of a run added up, or why they do not count. */
function addLaps(run: LapRun, name: SvmBench, laps: number, n: number, result: string | undefined): { ms: number; cycles: number } | string {
  if (run.problem) return run.problem;
  const mine = run.laps.filter((l) => l.name === name);
  if (mine.length !== laps) return `ran ${mine.length} ${name} lap(s), not ${laps}`;
  for (const lap of mine) {
    if (lap.fields.n !== String(n)) return `ran a lap of n=${lap.fields.n}, not ${n}`;
    if (result !== undefined && lap.fields.result !== result) return `result ${lap.fields.result}, expected ${result}`;
  }
  return { ms: mine.reduce((t, l) => t + l.ms, 0), cycles: mine.reduce((t, l) => t + Number(l.fields.cycles ?? NaN), 0) };
}

export async function benchmarkSvm(image: string, user: string, opts: SvmOptions): Promise<SvmRow[]> {
  const { runs, scale, log } = opts;
  const roundTrips = scale * ROUND_TRIPS_PER_SCALE;
  const lapRounds = scale * ROUNDS_PER_LAP_PER_SCALE;
  const boot = (append: string): [string, string[]] => [process.execPath, [SVMJIT_CLI, 'boot', '--append', append, image]];
  // Three processes a round: the L1 and L2 laps share one, alternating, so a busy host slows both alike.
  const commands = {
    roundtrip: boot(`bench=roundtrip n=${roundTrips}`),
    workload: boot(`bench=workload n=${lapRounds} laps=${LAPS}`),
    user: [process.execPath, [SVMJIT_CLI, 'run', user, String(lapRounds), String(LAPS)]] as [string, string[]],
  };
  const benches: SvmBench[] = ['roundtrip', 'l1', 'l2', 'user'];
  const processOf: Record<SvmBench, keyof typeof commands> = { roundtrip: 'roundtrip', l1: 'workload', l2: 'workload', user: 'user' };
  const lapsOf = (b: SvmBench) => (b === 'roundtrip' ? 1 : LAPS);
  const lapN = (b: SvmBench) => (b === 'roundtrip' ? roundTrips : lapRounds);
  const times = Object.fromEntries(benches.map((b) => [b, [] as number[]])) as Record<SvmBench, number[]>;
  /** Each round's times, for ratios paired within a round. */
  const rounds: Partial<Record<SvmBench, number>>[] = [];
  const cycles: Partial<Record<SvmBench, number>> = {};
  const problems = Object.fromEntries(benches.map((b) => [b, new Set<string>()])) as Record<SvmBench, Set<string>>;

  for (let round = 0; round < runs; round++) {
    // The native run gives the checksum every workload lap must print (a fast wrong answer is not a result).
    const native = await timeLaps(user, [String(lapRounds)]);
    const reference = native.laps.find((l) => l.name === 'user')?.fields.result;
    const expected: Record<SvmBench, string | undefined> = { roundtrip: `0x${roundTrips.toString(16)}`, l1: reference, l2: reference, user: reference };
    const thisRound: string[] = [];
    const roundTimes: Partial<Record<SvmBench, number>> = {};
    rounds.push(roundTimes);
    for (const [proc, [command, args]] of Object.entries(commands)) {
      const run = await timeLaps(command, args);
      for (const b of benches.filter((b) => processOf[b] === proc)) {
        const sum = !reference && b !== 'roundtrip' ? `the native reference run ${native.problem || 'printed no result'}` : addLaps(run, b, lapsOf(b), lapN(b), expected[b]);
        thisRound.push(`${b} ${typeof sum === 'string' ? 'failed' : `${fixed(sum.ms, 0)} ms`}`);
        if (typeof sum === 'string') problems[b].add(sum);
        else {
          times[b].push(sum.ms);
          roundTimes[b] = sum.ms;
          cycles[b] = sum.cycles;
        }
      }
    }
    log(`  svm round ${round + 1}/${runs}: ${thisRound.join(', ')}`);
  }

  const ms = (b: SvmBench) => (times[b].length ? median(times[b]) : NaN);
  const speedVsL1 = (b: SvmBench) => {
    const ratios = rounds.filter((r) => r.l1 !== undefined && r[b] !== undefined).map((r) => r.l1! / r[b]!);
    return b === 'roundtrip' || !ratios.length ? NaN : median(ratios);
  };
  return benches.map((b) => {
    const n = lapN(b) * lapsOf(b);
    const perUnit = (cycles[b] ?? NaN) / n;
    return {
      bench: b,
      label: LABELS[b],
      unit: b === 'roundtrip' ? 'round trips' : 'rounds',
      n,
      ms: ms(b),
      perSec: (n / ms(b)) * 1000,
      cyclesPerUnit: perUnit,
      mips: (cycles[b] ?? NaN) / ms(b) / 1000,
      speedVsL1: speedVsL1(b),
      wrong: [...problems[b]].join('; '),
    };
  });
}

/** Figures for the summary line and the README: round trips per second and L2's speed against L1. */
export function svmHeadline(rows: SvmRow[]): string {
  const rt = rows.find((r) => r.bench === 'roundtrip');
  const l2 = rows.find((r) => r.bench === 'l2');
  return `${rt ? `${rate(rt.perSec)} round trips/s` : ''}${rt && l2 ? '; ' : ''}${l2 ? `L2 runs the workload at ${fixed(l2.speedVsL1 * 100, 0)}% of L1's speed` : ''}`;
}

export function svmTable(rows: SvmRow[]): string {
  return markdownTable(
    ['SVM and machine mode', 'timed work', 'median ms', 'per second', 'cycles per unit', 'guest MIPS', 'speed vs L1'],
    rows.map((r) => [
      r.wrong ? `${r.label} **WRONG**` : r.label,
      `${r.n.toLocaleString('en-US')} ${r.unit}`,
      fixed(r.ms, 1),
      rate(r.perSec),
      Number.isFinite(r.cyclesPerUnit) ? Math.round(r.cyclesPerUnit).toLocaleString('en-US') : '-',
      fixed(r.mips, 1),
      Number.isFinite(r.speedVsL1) ? `${fixed(r.speedVsL1 * 100, 1)}%` : '-',
    ]),
  );
}
