/**
 * The whole-program differential test: every C program in test/programs/, built every way
 * test/helpers/build.ts knows (glibc and musl, -O0/-O2, static and static-pie), runs natively and
 * under `svmjit run` in each execution mode, and the two runs must agree byte for byte on stdout,
 * stderr and exit status. The native run is the oracle, so the programs need no expected-output
 * files and a new program is covered by dropping its .c file in.
 *
 * Known differences are data, in test/programs-known-differences.json, as
 * {program, build, mode, reason} ("*" matches every build or mode). An applied entry is reported
 * on the test; an entry whose runs no longer differ fails, so the list cannot quietly go stale.
 *
 * Runs go through one process pool sized to the machine, while vitest runs the tests
 * concurrently; each test only waits for its own runs, so a slow --no-jit run holds up nothing
 * else. The suite also checks how svmjit refuses programs it cannot run.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  REPO_ROOT,
  TEST_BUILD_DIR,
  TEST_PROGRAMS_DIR,
  buildAll,
  compileIfStale,
  dynamicBuild,
  listPrograms,
  requireCompilers,
  runCaptured,
  testBuilds,
  type RunResult,
} from './helpers/build.js';

const CLI = path.join(REPO_ROOT, 'dist/src/cli/main.js');
const KNOWN_DIFFERENCES_FILE = path.join(REPO_ROOT, 'test/programs-known-differences.json');

const MODES = [
  { name: 'no-jit', flags: ['--no-jit'] },
  { name: 'one-insn-per-tb', flags: ['--one-insn-per-tb'] },
  // The programs are short: compiling at a block's second run (not the default hundredth)
  // makes the JIT and its regions, not the interpreter, run nearly all of them.
  { name: 'jit', flags: ['--jit-threshold', '2'] },
] as const;

/** Every program gets the same arguments and extra variables; argv_env prints them. */
const GUEST_ARGS = ['alpha', 'two words', '', 'ünï'];
const GUEST_ENV: NodeJS.ProcessEnv = { ...process.env, PROGTEST_ONE: '1', PROGTEST_SPACES: 'a b  c' };
/**
 * Each program/build pair gets a scratch directory, used as the working directory and TMPDIR of
 * its native run and all its svmjit runs alike, so they see the same environment; a guest that
 * dies halfway leaves its files there, and the whole tree is removed after the suite.
 */
const SCRATCH_ROOT = fs.mkdtempSync(path.join(os.tmpdir(), 'svmjit-programs-'));
function scratchFor(program: string, build: string): { cwd: string; env: NodeJS.ProcessEnv } {
  const cwd = path.join(SCRATCH_ROOT, `${build}-${program}`);
  fs.mkdirSync(cwd, { recursive: true });
  return { cwd, env: { ...GUEST_ENV, TMPDIR: cwd } };
}

/** The reference interpreter on a 2-core CI machine is the slow case these limits are for. */
const EMULATED_TIMEOUT_MS = 120_000;
const NATIVE_TIMEOUT_MS = 20_000;
/** Includes time spent queued behind other runs in the pool. */
const TEST_TIMEOUT_MS = 300_000;

interface KnownDifference {
  program: string;
  build: string;
  mode: string;
  reason: string;
}

requireCompilers();
const PROGRAMS = listPrograms(TEST_PROGRAMS_DIR);
const BUILDS = testBuilds();
const KNOWN: KnownDifference[] = JSON.parse(fs.readFileSync(KNOWN_DIFFERENCES_FILE, 'utf8'));

const matches = (pattern: string, value: string) => pattern === '*' || pattern === value;
function knownDifferenceFor(program: string, build: string, mode: string): KnownDifference | undefined {
  return KNOWN.find((k) => k.program === program && matches(k.build, build) && matches(k.mode, mode));
}

/** A counting semaphore, so runs started by concurrent tests share the machine's cores. */
class Pool {
  private active = 0;
  private readonly waiting: (() => void)[] = [];
  constructor(private readonly size: number) {}
  async run<T>(task: () => Promise<T>): Promise<T> {
    if (this.active >= this.size) await new Promise<void>((wake) => this.waiting.push(wake));
    this.active++;
    try {
      return await task();
    } finally {
      this.active--;
      this.waiting.shift()?.();
    }
  }
}

const pool = new Pool(Math.max(2, os.availableParallelism()));
const builtPaths = new Map<string, string>();
const nativeRuns = new Map<string, Promise<RunResult>>();

function binaryFor(program: string, build: string): string {
  const binary = builtPaths.get(`${build}/${program}`);
  if (!binary) throw new Error(`${program} (${build}) was not built`);
  return binary;
}

function runNative(program: string, build: string): Promise<RunResult> {
  const key = `${build}/${program}`;
  let result = nativeRuns.get(key);
  if (!result) {
    const binary = binaryFor(program, build);
    result = pool.run(() => runCaptured(binary, GUEST_ARGS, { ...scratchFor(program, build), timeoutMs: NATIVE_TIMEOUT_MS }));
    nativeRuns.set(key, result);
  }
  return result;
}

function runSvmjit(binary: string, flags: readonly string[], scratch: { cwd: string; env: NodeJS.ProcessEnv }): Promise<RunResult> {
  return pool.run(() => runCaptured(process.execPath, [CLI, 'run', ...flags, binary, ...GUEST_ARGS], { ...scratch, timeoutMs: EMULATED_TIMEOUT_MS }));
}

/** The first differing line of a stream, with its neighbours, readable in a test report. */
function describeStreamDifference(name: string, expected: Buffer, actual: Buffer): string | undefined {
  if (expected.equals(actual)) return undefined;
  const want = expected.toString('latin1').split('\n');
  const got = actual.toString('latin1').split('\n');
  let line = 0;
  while (line < want.length && line < got.length && want[line] === got[line]) line++;
  const show = (lines: string[]) =>
    lines
      .slice(Math.max(0, line - 2), line + 3)
      .map((text, i) => `    ${Math.max(0, line - 2) + i + 1}: ${JSON.stringify(text.slice(0, 300))}`)
      .join('\n');
  return `${name} differs from line ${line + 1} (native ${expected.length} bytes, svmjit ${actual.length} bytes)\n  native:\n${show(want)}\n  svmjit:\n${show(got)}`;
}

function differences(native: RunResult, emulated: RunResult): string[] {
  const found: string[] = [];
  if (native.timedOut) found.push('the native run timed out');
  if (emulated.timedOut) found.push(`svmjit timed out after ${EMULATED_TIMEOUT_MS / 1000} s`);
  if (native.status !== emulated.status) found.push(`exit status: native ${native.status}, svmjit ${emulated.status}`);
  const out = describeStreamDifference('stdout', native.stdout, emulated.stdout);
  const err = describeStreamDifference('stderr', native.stderr, emulated.stderr);
  if (out) found.push(out);
  if (err) found.push(err);
  return found;
}

beforeAll(async () => {
  if (!fs.existsSync(CLI)) throw new Error(`${CLI} is missing: run \`npm run build\` first (\`npm test\` does)`);
  for (const built of await buildAll(TEST_PROGRAMS_DIR, TEST_BUILD_DIR, BUILDS)) builtPaths.set(`${built.build}/${built.program}`, built.path);
}, 600_000);

afterAll(() => fs.rmSync(SCRATCH_ROOT, { recursive: true, force: true }));

describe('known-differences list', () => {
  it('names only programs, builds and modes that exist, each with a reason', () => {
    const modeNames: string[] = MODES.map((m) => m.name);
    const buildNames = BUILDS.map((b) => b.name);
    for (const entry of KNOWN) {
      expect(PROGRAMS, JSON.stringify(entry)).toContain(entry.program);
      if (entry.build !== '*') expect(buildNames, JSON.stringify(entry)).toContain(entry.build);
      if (entry.mode !== '*') expect(modeNames, JSON.stringify(entry)).toContain(entry.mode);
      expect(typeof entry.reason === 'string' && entry.reason.trim().length > 0, `${JSON.stringify(entry)} needs a reason`).toBe(true);
    }
  });
});

describe.concurrent('guest programs: native vs svmjit', () => {
  for (const program of PROGRAMS) {
    for (const build of BUILDS) {
      for (const mode of MODES) {
        it(`${program} [${build.name}] ${mode.name}`, { timeout: TEST_TIMEOUT_MS }, async ({ expect, annotate }) => {
          const binary = binaryFor(program, build.name);
          const [native, emulated] = await Promise.all([runNative(program, build.name), runSvmjit(binary, mode.flags, scratchFor(program, build.name))]);
          const found = differences(native, emulated);
          const known = knownDifferenceFor(program, build.name, mode.name);
          if (known) {
            expect(
              found,
              `listed in programs-known-differences.json (${known.reason}) but no longer differs: remove the entry`,
            ).not.toEqual([]);
            const note = `known difference applied: ${known.reason}\n${found.join('\n')}`;
            console.warn(`${program} [${build.name}] ${mode.name}: ${note}`);
            await annotate(note, 'notice');
            return;
          }
          expect(found, `${program} [${build.name}] under svmjit run ${mode.flags.join(' ')}`).toEqual([]);
        });
      }
    }
  }
});

/** svmjit's own complaints are exactly one line, with no JavaScript stack trace. */
function expectOneLine(result: RunResult, mustMention?: string): void {
  const text = result.stderr.toString('utf8');
  expect(text, 'stderr').toMatch(/^[^\n]+\n$/);
  expect(text).not.toMatch(/\n\s+at /);
  if (mustMention) expect(text).toContain(mustMention);
}

describe('programs svmjit cannot run', () => {
  const badDir = path.join(TEST_BUILD_DIR, 'bad-input');

  it('refuses a truncated ELF with one line and status 127', async () => {
    fs.mkdirSync(badDir, { recursive: true });
    const whole = fs.readFileSync(binaryFor('exit_status', 'musl-O2'));
    const truncated = path.join(badDir, 'truncated.elf');
    fs.writeFileSync(truncated, whole.subarray(0, 200));
    const result = await runSvmjit(truncated, [], scratchFor('bad-input', 'none'));
    expect(result.status).toBe(127);
    expect(result.stdout.length).toBe(0);
    expectOneLine(result);
  });

  it('refuses a text file with one line and status 127', async () => {
    fs.mkdirSync(badDir, { recursive: true });
    const text = path.join(badDir, 'notes.txt');
    fs.writeFileSync(text, 'this is a text file, not a program\nsecond line\n');
    const result = await runSvmjit(text, [], scratchFor('bad-input', 'none'));
    expect(result.status).toBe(127);
    expectOneLine(result);
  });

  it('refuses a dynamically linked program, saying so', async () => {
    const build = dynamicBuild();
    const binary = await compileIfStale(path.join(TEST_PROGRAMS_DIR, 'exit_status.c'), path.join(TEST_BUILD_DIR, build.name, 'exit_status'), build);
    const result = await runSvmjit(binary, [], scratchFor('bad-input', 'none'));
    expect(result.status).toBe(127);
    expectOneLine(result, 'dynamic executables are not supported yet');
  });

  it('stops a long run at --max-insns with one line and a non-zero status', async () => {
    const result = await runSvmjit(binaryFor('malloc_churn', 'musl-O2'), ['--max-insns', '1000'], scratchFor('bad-input', 'none'));
    expect(result.status).not.toBe(0);
    expectOneLine(result);
  });
});
