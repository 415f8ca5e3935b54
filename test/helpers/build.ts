/**
 * Compiles the C guest programs used by the whole-program tests (test/programs/) and the
 * benchmarks (bench/programs/). Each program is built in several ways because the two libcs and
 * the optimisation levels exercise very different instruction mixes: glibc and musl, -O0 and -O2,
 * plain -static and -static-pie. Outputs go to a build directory keyed by build name, and a
 * program is recompiled only when its output is older than its source, the headers beside it or
 * this file (which holds the flags), so repeated test runs cost nothing.
 *
 * A missing compiler is an error of the test setup, not a reason to skip: CI installs musl-tools,
 * and a silently skipped half of the matrix would look like a pass.
 *
 * Running a built guest (natively or under svmjit) with its output captured also lives here,
 * because the differential test and the benchmark runner both need exactly that.
 */
import { execFile, execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** One way of building a program: a compiler and the arguments around the source file. */
export interface GuestBuild {
  name: string;
  compiler: 'gcc' | 'musl-gcc';
  /** Arguments before the source file (startup objects must precede it). */
  before: string[];
  /** Arguments after it (libraries and end objects). */
  after: string[];
}

export interface BuiltProgram {
  program: string;
  build: string;
  path: string;
}

const HERE = path.dirname(fileURLToPath(import.meta.url));
/** The repository root, whether this runs from test/helpers or from dist/test/helpers. */
export const REPO_ROOT = findRepoRoot(HERE);
export const TEST_PROGRAMS_DIR = path.join(REPO_ROOT, 'test/programs');
export const TEST_BUILD_DIR = path.join(REPO_ROOT, 'test/.build');

function findRepoRoot(start: string): string {
  for (let dir = start; ; dir = path.dirname(dir)) {
    if (fs.existsSync(path.join(dir, 'package.json')) && fs.existsSync(path.join(dir, 'test/programs'))) return dir;
    if (path.dirname(dir) === dir) throw new Error(`cannot find the svmjit repository above ${start}`);
  }
}

/** Which compilers are on PATH; throws a setup error naming the package when one is absent. */
export function requireCompilers(): void {
  for (const [compiler, pkg] of [
    ['gcc', 'gcc'],
    ['musl-gcc', 'musl-tools'],
  ] as const) {
    try {
      execFileSync(compiler, ['--version'], { stdio: 'ignore' });
    } catch {
      throw new Error(`${compiler} is not installed: the guest programs need it (apt-get install ${pkg}); .ci/run installs it`);
    }
  }
}

let muslLibDirCache: string | undefined;

/**
 * Where musl's startup objects live. The musl-gcc wrapper passes `-specs <dir>/musl-gcc.specs`,
 * and gcc's own -print-file-name would answer with glibc's objects, so read the wrapper.
 */
function muslLibDir(): string {
  if (muslLibDirCache) return muslLibDirCache;
  const wrapper = execFileSync('sh', ['-c', 'command -v musl-gcc'], { encoding: 'utf8' }).trim();
  const specs = /-specs\s+"?([^"\s]+)"?/.exec(fs.readFileSync(wrapper, 'utf8'));
  if (!specs) throw new Error(`cannot find musl's library directory in ${wrapper}`);
  muslLibDirCache = path.dirname(specs[1]);
  return muslLibDirCache;
}

function gccFile(name: string): string {
  return execFileSync('gcc', [`-print-file-name=${name}`], { encoding: 'utf8' }).trim();
}

/**
 * musl-gcc's specs always pass -dynamic-linker and Scrt1.o, so `musl-gcc -static-pie` makes a
 * dynamically linked program. A real static PIE needs musl's self-relocating rcrt1.o and a link
 * without an interpreter, spelled out here.
 */
function muslStaticPie(): Pick<GuestBuild, 'before' | 'after'> {
  const lib = muslLibDir();
  return {
    before: ['-fPIE', '-nostartfiles', `${lib}/rcrt1.o`, `${lib}/crti.o`, gccFile('crtbeginS.o')],
    after: ['-Wl,-static', '-Wl,-pie', '-Wl,--no-dynamic-linker', gccFile('crtendS.o'), `${lib}/crtn.o`],
  };
}

/** The build matrix of the whole-program tests. */
export function testBuilds(): GuestBuild[] {
  const plain = (compiler: GuestBuild['compiler'], opt: string): GuestBuild => ({
    name: `${compiler === 'gcc' ? 'gcc' : 'musl'}-${opt}`,
    compiler,
    before: ['-static', `-${opt}`],
    after: ['-lm'],
  });
  const pie = muslStaticPie();
  return [
    plain('gcc', 'O0'),
    plain('gcc', 'O2'),
    plain('musl-gcc', 'O0'),
    plain('musl-gcc', 'O2'),
    { name: 'gcc-pie-O2', compiler: 'gcc', before: ['-static-pie', '-O2'], after: ['-lm'] },
    { name: 'musl-pie-O2', compiler: 'musl-gcc', before: ['-O2', ...pie.before], after: ['-lm', ...pie.after] },
  ];
}

/** The benchmark build: what a user would ship for speed. */
export function benchBuild(): GuestBuild {
  return { name: 'musl-O2', compiler: 'musl-gcc', before: ['-static', '-O2'], after: ['-lm'] };
}

/** A dynamically linked glibc build, only for checking that svmjit refuses it cleanly. */
export function dynamicBuild(): GuestBuild {
  return { name: 'gcc-dynamic-O2', compiler: 'gcc', before: ['-O2'], after: ['-lm'] };
}

function newestInput(source: string): number {
  const dir = path.dirname(source);
  const headers = fs.readdirSync(dir).filter((f) => f.endsWith('.h'));
  const inputs = [source, fileURLToPath(import.meta.url), ...headers.map((h) => path.join(dir, h))];
  return Math.max(...inputs.filter((f) => fs.existsSync(f)).map((f) => fs.statSync(f).mtimeMs));
}

/** Compiles `source` to `output` with `build` unless the output is newer than every input. */
export async function compileIfStale(source: string, output: string, build: GuestBuild): Promise<string> {
  if (fs.existsSync(output) && fs.statSync(output).mtimeMs > newestInput(source)) return output;
  fs.mkdirSync(path.dirname(output), { recursive: true });
  // Link to a temporary name first so an interrupted build never leaves a half-written program
  // that looks up to date.
  const partial = `${output}.${process.pid}.tmp`;
  try {
    await run(build.compiler, [...build.before, source, '-o', partial, ...build.after], { maxBuffer: 16 << 20 });
  } catch (e) {
    const err = e as { stderr?: string; message: string };
    throw new Error(`${build.compiler} failed on ${path.basename(source)} (${build.name}):\n${err.stderr || err.message}`);
  }
  fs.renameSync(partial, output);
  return output;
}

/** The C programs in a directory, by name without the extension, sorted. */
export function listPrograms(dir: string): string[] {
  return fs
    .readdirSync(dir)
    .filter((f) => f.endsWith('.c'))
    .map((f) => f.slice(0, -2))
    .sort();
}

/** Runs `task` over `items` with at most `limit` in flight; results keep the input order. */
export async function mapConcurrent<T, R>(items: readonly T[], limit: number, task: (item: T) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const index = next++;
      results[index] = await task(items[index]);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
  return results;
}

/** Builds every program in `programsDir` with every build into `buildDir/<build>/<program>`. */
export async function buildAll(programsDir: string, buildDir: string, builds: GuestBuild[]): Promise<BuiltProgram[]> {
  requireCompilers();
  const jobs = listPrograms(programsDir).flatMap((program) => builds.map((build) => ({ program, build })));
  return mapConcurrent(jobs, os.availableParallelism(), async ({ program, build }) => ({
    program,
    build: build.name,
    path: await compileIfStale(path.join(programsDir, `${program}.c`), path.join(buildDir, build.name, program), build),
  }));
}

/** How a process ended, with everything it wrote. */
export interface RunResult {
  stdout: Buffer;
  stderr: Buffer;
  /** The exit status, or 128+N when killed by signal N (what a shell reports). */
  status: number;
  wallMs: number;
  timedOut: boolean;
}

export interface RunOptions {
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  timeoutMs?: number;
}

/** Runs a command to completion, capturing both streams as bytes (never decoded or trimmed). */
export function runCaptured(command: string, args: readonly string[], options: RunOptions = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const start = performance.now();
    const child = spawn(command, args, { env: options.env ?? process.env, cwd: options.cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    const stdout: Buffer[] = [];
    const stderr: Buffer[] = [];
    let timedOut = false;
    const timer = options.timeoutMs
      ? setTimeout(() => {
          timedOut = true;
          child.kill('SIGKILL');
        }, options.timeoutMs)
      : undefined;
    child.stdout.on('data', (chunk: Buffer) => stdout.push(chunk));
    child.stderr.on('data', (chunk: Buffer) => stderr.push(chunk));
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({
        stdout: Buffer.concat(stdout),
        stderr: Buffer.concat(stderr),
        status: code ?? 128 + (signal ? os.constants.signals[signal] : 0),
        wallMs: performance.now() - start,
        timedOut,
      });
    });
  });
}
