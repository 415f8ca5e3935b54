/**
 * `npm run bench`: how fast svmjit is, and which piece to blame. Three parts, all on by default:
 *
 * - micro-benchmarks (micro.ts): decode, lift + passes, JS generation and compile, lazy flags,
 *   TLB lookups, timed in this process with Benchmark.js;
 * - whole-guest benchmarks (guest.ts): the CPU-bound C programs in bench/programs/, built with
 *   musl-gcc -static -O2 and run natively, under qemu-x86_64 when it is installed, under
 *   `svmjit run --no-jit` and under the JIT;
 * - SVM and machine mode (svm.ts): the demo hypervisor under `svmjit boot` — L2→L1→L2 round
 *   trips per second, and one workload in L2, in L1 and in user mode.
 *
 * Prints the tables and writes them with the machine, Node version and commit to
 * bench/results/<name>.{json,md}. Exits with 1 when a program's output differed from native or
 * an SVM row's checksum from the native workload (WRONG), or a micro-benchmark failed. `--help`
 * lists the options.
 */
import Benchmark from 'benchmark';
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { REPO_ROOT, benchBuild, buildAll } from '../test/helpers/build.js';
import { SVMJIT_CLI, benchmarkProgram, findQemu, guestTable, type GuestRow } from './guest.js';
import { microNames, microTable, runMicro, type MicroRow } from './micro.js';
import { deoptProgram, deoptTable, DEOPT_LOOP } from './deopts.js';
import { describeMachine, writeResults } from './report.js';
import { benchmarkSvm, buildSvmBench, svmHeadline, svmTable, type SvmRow } from './svm.js';

const PROGRAMS_DIR = path.join(REPO_ROOT, 'bench/programs');
const BUILD_DIR = path.join(REPO_ROOT, 'bench/.build');
const RESULTS_DIR = path.join(REPO_ROOT, 'bench/results');
/**
 * The programs --quick keeps, at work scale 1 (the smallest): integer, branchy and memory take
 * about 35 s together under --no-jit and the JIT on an idle 2-core machine, which leaves room
 * for the micro-benchmarks in a minute. nbody and string are left to the full run: nbody alone
 * takes 40 s at scale 1.
 */
const QUICK_PROGRAMS = ['integer', 'branchy', 'memory'];
/** The program whose code feeds decode, lift and compile; its mix is the most ordinary C. */
const CODE_STREAM_PROGRAM = 'integer';

const usage = () => `usage: npm run bench -- [options]

  --quick              about a minute: short micro-benchmarks, programs ${QUICK_PROGRAMS.join(', ')}
                       (all of them with --programs) and the SVM rows at scale 1, one run each
  --runs N             runs of each program and mode, the median is reported (default 5)
  --scale N            the work multiplier (default 10: the programs take 0.3-0.5 s natively
                       each; the SVM rows time 200,000 round trips and 200 workload rounds)
  --filter NAME        only the programs whose name contains NAME
  --programs DIR       C programs to run instead of bench/programs (built into DIR/.build)
  --no-qemu            leave the qemu-x86_64 column out even when qemu is installed
  --micro-only         only the micro-benchmarks
  --no-micro           leave the micro-benchmarks out
  --svm-only           only the SVM and machine-mode rows (the demo hypervisor under svmjit boot)
  --no-svm             leave the SVM and machine-mode rows out
  --deopts             instead of timing: run each program once under the JIT with V8's
                       --trace-deopt and count the bailouts of generated code per unit and
                       reason (status 1 when a unit deoptimises ${DEOPT_LOOP} times or more: a loop)
  --micro-filter TEXT  only the micro-benchmarks whose name contains TEXT
  --micro-time S       Benchmark.js maxTime per micro-benchmark, seconds (default 2, --quick 0.25)
  --out DIR            where the results go (default bench/results)
  --name NAME          result file name: DIR/NAME.json and DIR/NAME.md (default latest)

micro-benchmarks:
${microNames()
  .map((n) => `  ${n}`)
  .join('\n')}
`;

interface Settings {
  runs: number;
  scale: number;
  quick: boolean;
  filter: string | null;
  programs: string;
  microMaxTime: number;
  microFilter: string | null;
  /** The binary whose functions the decode, lift and jit micro-benchmarks translate. */
  codeStream: string | null;
  /** Whether the SVM and machine-mode rows ran. */
  svm: boolean;
  benchmarkjs: string;
  statistic: string;
}

function options() {
  const { values } = parseArgs({
    options: {
      runs: { type: 'string' },
      quick: { type: 'boolean' },
      filter: { type: 'string' },
      scale: { type: 'string' },
      programs: { type: 'string' },
      'no-qemu': { type: 'boolean' },
      'micro-only': { type: 'boolean' },
      'no-micro': { type: 'boolean' },
      deopts: { type: 'boolean' },
      'svm-only': { type: 'boolean' },
      'no-svm': { type: 'boolean' },
      'micro-filter': { type: 'string' },
      'micro-time': { type: 'string' },
      out: { type: 'string' },
      name: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  const positive = (text: string | undefined, name: string, fallback: number, integer = true): number => {
    if (text === undefined) return fallback;
    const n = Number(text);
    if (!(n > 0) || !Number.isFinite(n) || (integer && !Number.isInteger(n))) throw new Error(`${name} takes a positive ${integer ? 'integer' : 'number'}, not '${text}'`);
    return n;
  };
  const only = (['micro-only', 'svm-only'] as const).filter((o) => values[o]);
  if (only.length > 1) throw new Error('--micro-only and --svm-only exclude each other');
  for (const part of ['micro', 'svm'] as const)
    if (values[`${part}-only`] && values[`no-${part}`]) throw new Error(`--${part}-only and --no-${part} exclude each other`);
  const name = values.name ?? 'latest';
  if (!/^[\w.-]+$/.test(name) || name.startsWith('.')) throw new Error(`--name takes a plain file name, not '${name}'`);
  const quick = !!values.quick;
  return {
    help: !!values.help,
    deopts: !!values.deopts,
    quick,
    runs: positive(values.runs, '--runs', quick ? 1 : 5),
    scale: positive(values.scale, '--scale', quick ? 1 : 10),
    filter: values.filter,
    programsDir: path.resolve(values.programs ?? PROGRAMS_DIR),
    qemu: values['no-qemu'] ? '' : findQemu(),
    guest: only.length === 0,
    micro: !values['no-micro'] && !values['svm-only'],
    svm: !values['no-svm'] && !values['micro-only'],
    microFilter: values['micro-filter'],
    microTime: positive(values['micro-time'], '--micro-time', quick ? 0.25 : 2, false),
    outDir: path.resolve(values.out ?? RESULTS_DIR),
    name,
  };
}

async function main(): Promise<void> {
  const opts = options();
  if (opts.help) {
    process.stdout.write(usage());
    return;
  }
  const log = (line: string) => process.stderr.write(`${line}\n`);
  if ((opts.guest || opts.svm) && !fs.existsSync(SVMJIT_CLI)) throw new Error(`${SVMJIT_CLI} is missing: run \`npm run build\` first (\`npm run bench\` does)`);

  // The programs are built even for --micro-only: one of them is the micro-benchmarks' code stream.
  const own = opts.programsDir !== PROGRAMS_DIR;
  const buildDir = own ? path.join(opts.programsDir, '.build') : BUILD_DIR;
  const built = opts.guest || opts.micro ? await buildPrograms(opts.programsDir, buildDir, log) : [];
  const codeStream = built.find((b) => b.program === CODE_STREAM_PROGRAM) ?? built[0];

  let selected = built;
  if (opts.quick && !own) selected = selected.filter((b) => QUICK_PROGRAMS.includes(b.program));
  if (opts.filter) selected = selected.filter((b) => b.program.includes(opts.filter!));
  if (opts.guest && selected.length === 0) throw new Error(`no benchmark program matches --filter ${opts.filter}`);

  if (opts.deopts) {
    log(`V8 bailouts of generated code: ${selected.map((b) => b.program).join(', ')} once each under the JIT, work scale ${opts.scale}`);
    const rows = selected.map((b) => deoptProgram(b.program, b.path, opts.scale));
    process.stdout.write(deoptTable(rows));
    if (rows.some((r) => r.loops.length)) process.exitCode = 1;
    return;
  }

  const svmBuilt = opts.svm ? await buildSvmBench(BUILD_DIR) : undefined;
  if (svmBuilt) log(`built the demo hypervisor into ${path.relative(process.cwd(), svmBuilt.image)}`);

  let micro: MicroRow[] = [];
  if (opts.micro) {
    log(`micro-benchmarks: Benchmark.js ${Benchmark.version}, at most ${opts.microTime} s each`);
    micro = runMicro({ binary: codeStream.path, maxTime: opts.microTime, filter: opts.microFilter, log });
  }

  const rows: GuestRow[] = [];
  if (opts.guest) {
    log(`running ${selected.map((b) => b.program).join(', ')}: ${opts.runs} run(s) each of native${opts.qemu ? ', qemu-x86_64' : ''}, --no-jit and jit, work scale ${opts.scale}`);
    for (const { program, path: binary } of selected) rows.push(await benchmarkProgram(program, binary, { runs: opts.runs, scale: opts.scale, qemu: opts.qemu, log }));
  }

  let svm: SvmRow[] = [];
  if (svmBuilt) {
    log(`SVM and machine mode: ${opts.runs} run(s) each of round trips, the workload in L1, in L2 and in user mode, work scale ${opts.scale}`);
    svm = await benchmarkSvm(svmBuilt.image, svmBuilt.user, { runs: opts.runs, scale: opts.scale, log });
  }

  const machine = describeMachine(REPO_ROOT, opts.guest ? opts.qemu : '');
  const settings: Settings = {
    runs: opts.runs,
    scale: opts.scale,
    quick: opts.quick,
    filter: opts.filter ?? null,
    programs: path.relative(REPO_ROOT, opts.programsDir) || '.',
    microMaxTime: opts.microTime,
    microFilter: opts.microFilter ?? null,
    codeStream: opts.micro ? codeStream.program : null,
    svm: opts.svm,
    benchmarkjs: Benchmark.version,
    statistic:
      'whole-guest: median wall time of the whole process; micro: Benchmark.js mean with its 95% relative margin of error; ' +
      'SVM and machine mode: median over runs of the host time between the begin and end lines the guest prints around each timed lap, summed over the laps of a run',
  };
  const wrong = rows.filter((r) => r.wrong);
  const failed = micro.filter((m) => m.error);
  const svmWrong = svm.filter((r) => r.wrong);
  const notes = [
    ...wrong.map((r) => `- **${r.program} WRONG**: ${r.wrong}`),
    ...svmWrong.map((r) => `- **${r.label} WRONG**: ${r.wrong}`),
    ...failed.map((m) => `- **${m.name} ERROR**: ${m.error}`),
  ].join('\n');
  const guestMd = rows.length ? guestTable(rows) : '';
  const svmMd = svm.length ? svmTable(svm) : '';
  const microMd = micro.length ? microTable(micro) : '';

  const markdown = [
    '# svmjit benchmark results',
    '',
    `${machine.date} on ${machine.cpu} (${machine.cores} cores, ${machine.memoryGiB} GiB), ${machine.os}, Node ${machine.node} (V8 ${machine.v8}), commit ${machine.commit}${machine.qemu ? `; ${machine.qemu}` : ''}.`,
    ...(guestMd
      ? [
          '',
          `Whole-guest: median of ${opts.runs} run(s) at work scale ${opts.scale}; times are whole-process wall time, so svmjit's include Node start-up.`,
          'MIPS = guest instructions retired per microsecond of that wall time; compile share = time compiling blocks / svmjit run time.',
          '',
          guestMd,
        ]
      : []),
    ...(svmMd
      ? [
          '',
          `SVM and machine mode: median of ${opts.runs} run(s) of the demo hypervisor (demo/hypervisor.c) under \`svmjit boot\`, and of demo/workload-user.c under \`svmjit run\`; ` +
            'a time is the host time between the lines the guest prints around each timed lap, summed over the laps, after a warm-up (start-up and boot excluded); ' +
            'L1 and L2 laps alternate in one process.',
          'Cycles per unit come from the virtual cycle counter (one per guest instruction, L1 and L2 together); speed vs L1 = median over runs of L1\'s time / this row\'s.',
          '',
          svmMd,
        ]
      : []),
    ...(microMd
      ? [
          '',
          `Micro-benchmarks: Benchmark.js ${Benchmark.version}, at most ${opts.microTime} s each; code stream: the functions of the \`${codeStream.program}\` program (musl, -O2).`,
          'mean/op is the mean time of one operation; ±RME the relative margin of error of that mean at 95% confidence.',
          '',
          microMd,
        ]
      : []),
    ...(notes ? ['', notes] : []),
    '',
  ].join('\n');
  const written = writeResults(opts.outDir, opts.name, { machine, settings, rows, svm, micro }, markdown);

  const headline = svm.length ? `\nSVM: ${svmHeadline(svm)}\n` : '';
  process.stdout.write(`\n${[guestMd, svmMd, microMd].filter(Boolean).join('\n\n')}\n${headline}${notes ? `\n${notes}\n` : ''}\nwritten to ${written.map((f) => path.relative(process.cwd(), f)).join(' and ')}\n`);
  if (wrong.length || svmWrong.length || failed.length) process.exitCode = 1;
}

async function buildPrograms(programsDir: string, buildDir: string, log: (line: string) => void) {
  log(`building ${path.relative(process.cwd(), programsDir) || '.'} with musl-gcc -static -O2 into ${path.relative(process.cwd(), buildDir)}/`);
  const built = await buildAll(programsDir, buildDir, [benchBuild()]);
  if (built.length === 0) throw new Error(`no C programs in ${programsDir}`);
  return built;
}

main().catch((e: Error) => {
  process.stderr.write(`bench: ${e.message}\n`);
  process.exitCode = 1;
});
