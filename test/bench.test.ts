/**
 * The benchmark harness (`npm run bench`, bench/run.ts) on a tiny workload: two small guest
 * programs at work scale 1, one short micro-benchmark and the SVM rows at scale 1 (the demo
 * hypervisor built from source), run as the command a user types, into a temporary directory.
 * The result files must be well formed: every figure present, finite and positive, the derived
 * figures (MIPS, ratios) consistent with the measured ones, and the Markdown tables holding a
 * row per program and per SVM benchmark. qemu-x86_64 is optional: its column is either measured
 * or null, never half of each. Also: the committed demo/hypervisor.flat is built from the
 * current demo sources.
 */
import crypto from 'node:crypto';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT } from './helpers/build.js';
import { DEOPT_LOOP, deoptTable, parseDeopts } from '../bench/deopts.js';

const RUNNER = path.join(REPO_ROOT, 'dist/bench/run.js');
const CLI = path.join(REPO_ROOT, 'dist/src/cli/main.js');

/** Tiny programs with the bench programs' conventions: argv[1] scales the work, the output is a checksum. */
const PROGRAMS: Record<string, string> = {
  spin: `#include <stdio.h>
#include <stdlib.h>
int main(int argc, char **argv) {
  int scale = argc > 1 ? atoi(argv[1]) : 10;
  unsigned h = 2166136261u;
  for (int i = 0; i < scale * 100000; i++) h = (h ^ (unsigned)i) * 16777619u;
  printf("%u\\n", h);
  return 0;
}
`,
  harmonic: `#include <stdio.h>
#include <stdlib.h>
int main(int argc, char **argv) {
  int scale = argc > 1 ? atoi(argv[1]) : 10;
  double sum = 0;
  for (int i = 0; i < scale * 20000; i++) sum += 1.0 / (i + 1.0);
  printf("%.9f\\n", sum);
  return 0;
}
`,
};
/** The least work `spin` can do at scale 1: 100000 iterations of at least an xor, a multiply and a branch. */
const SPIN_MIN_INSNS = 300_000;
const MICRO = 'decode: bytes from an array';
/** The SVM rows in order, and their work at scale 1 (bench/svm.ts). */
const SVM_BENCHES = ['roundtrip', 'l1', 'l2', 'user'];
const SVM_WORK: Record<string, number> = { roundtrip: 20_000, l1: 20, l2: 20, user: 20 };

function runBench(args: string[]) {
  return spawnSync(process.execPath, [RUNNER, ...args], { encoding: 'utf8', timeout: 120_000 });
}

/** a ≈ b to a relative 1e-9: derived figures are computed from the stored ones, not re-measured. */
function expectClose(a: number, b: number) {
  expect(Math.abs(a - b)).toBeLessThanOrEqual(1e-9 * Math.abs(b));
}

function expectPositive(...values: unknown[]) {
  for (const v of values) {
    expect(typeof v).toBe('number');
    expect(Number.isFinite(v as number) && (v as number) > 0, `${v} is not a positive finite number`).toBe(true);
  }
}

describe('npm run bench', () => {
  let dir: string;
  let result: ReturnType<typeof runBench>;

  beforeAll(() => {
    for (const file of [RUNNER, CLI]) if (!fs.existsSync(file)) throw new Error(`${file} is missing: run \`npm run build\` first (\`npm test\` does)`);
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'svmjit-bench-'));
    fs.mkdirSync(path.join(dir, 'programs'));
    for (const [name, source] of Object.entries(PROGRAMS)) fs.writeFileSync(path.join(dir, 'programs', `${name}.c`), source);
    result = runBench(['--programs', path.join(dir, 'programs'), '--out', path.join(dir, 'out'), '--name', 'tiny', '--runs', '1', '--scale', '1', '--micro-filter', MICRO, '--micro-time', '0.05']);
  }, 120_000);

  afterAll(() => {
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('succeeds and prints both tables', () => {
    expect(result.error).toBeUndefined();
    expect(result.status, result.stderr).toBe(0);
    expect(result.stdout).toContain('| program | native ms |');
    expect(result.stdout).toContain('| micro-benchmark | one op |');
    expect(result.stdout).toContain('| SVM and machine mode | timed work |');
    expect(result.stdout).toMatch(/^SVM: [\d,.]+ round trips\/s; L2 runs the workload at \d+% of L1's speed$/m);
  });

  it('writes JSON with the machine, the settings and consistent whole-guest figures', () => {
    const json = JSON.parse(fs.readFileSync(path.join(dir, 'out/tiny.json'), 'utf8'));
    const { machine, settings, rows } = json;
    expect(machine.cpu).toEqual(expect.any(String));
    expect(machine.cpu.length).toBeGreaterThan(0);
    expect(machine.cores).toBe(os.cpus().length);
    expect(machine.node).toBe(process.version);
    expect(machine.commit).toMatch(/^([0-9a-f]{7,}(\+uncommitted)?|unknown)$/);
    expect(Number.isNaN(Date.parse(machine.date))).toBe(false);
    expect(settings).toMatchObject({ runs: 1, scale: 1, quick: false, microFilter: MICRO, codeStream: 'harmonic' });

    expect(rows.map((r: { program: string }) => r.program)).toEqual(['harmonic', 'spin']);
    for (const r of rows) {
      expect(r.wrong).toBe('');
      expectPositive(r.nativeMs, r.noJitMs, r.jitMs, r.guestInsns, r.noJitMips, r.jitMips, r.jitOverNative, r.noJitOverJit);
      expect(Number.isInteger(r.guestInsns)).toBe(true);
      expectClose(r.noJitMips, r.guestInsns / r.noJitMs / 1000);
      expectClose(r.jitMips, r.guestInsns / r.jitMs / 1000);
      expectClose(r.jitOverNative, r.jitMs / r.nativeMs);
      expectClose(r.noJitOverJit, r.noJitMs / r.jitMs);
      expect(r.compileShare).toBeGreaterThanOrEqual(0);
      expect(r.compileShare).toBeLessThan(1);
      // qemu-x86_64 is optional; without it the column is null throughout, with it complete.
      if (machine.qemu === null) {
        expect(r.qemuMs).toBeNull();
        expect(r.jitOverQemu).toBeNull();
      } else {
        expectPositive(r.qemuMs);
        expectClose(r.jitOverQemu, r.jitMs / r.qemuMs);
      }
    }
    expect(rows.find((r: { program: string }) => r.program === 'spin').guestInsns).toBeGreaterThan(SPIN_MIN_INSNS);
  });

  it('writes consistent SVM and machine-mode rows', () => {
    const { svm, settings } = JSON.parse(fs.readFileSync(path.join(dir, 'out/tiny.json'), 'utf8'));
    expect(settings.svm).toBe(true);
    expect(svm.map((r: { bench: string }) => r.bench)).toEqual(SVM_BENCHES);
    const row = (bench: string) => svm.find((r: { bench: string }) => r.bench === bench);
    for (const r of svm) {
      expect(r.wrong).toBe('');
      expect(r.n).toBe(SVM_WORK[r.bench]);
      expectPositive(r.ms, r.perSec);
      expectClose(r.perSec, (r.n / r.ms) * 1000);
    }
    // The virtual cycle counter is readable in machine mode only; user mode leaves those figures out.
    for (const bench of ['roundtrip', 'l1', 'l2']) {
      const r = row(bench);
      expectPositive(r.cyclesPerUnit, r.mips);
      expectClose(r.mips, (r.cyclesPerUnit * r.n) / r.ms / 1000);
    }
    expect(row('user').cyclesPerUnit).toBeNull();
    expect(row('user').mips).toBeNull();
    // A round trip is at least L2's VMMCALL and loop branch and L1's VMRUN, far less than a workload round.
    expect(row('roundtrip').cyclesPerUnit).toBeGreaterThan(3);
    expect(row('roundtrip').cyclesPerUnit).toBeLessThan(10_000);
    // L1 and L2 run one copy of the same function: the same instructions per round (about 1.8 million),
    // up to the two exits that bracket each L2 lap (about 150 instructions a lap).
    expect(row('l1').cyclesPerUnit).toBeGreaterThan(1_000_000);
    expect(Math.abs(row('l2').cyclesPerUnit - row('l1').cyclesPerUnit)).toBeLessThan(1_000);
    expect(row('roundtrip').speedVsL1).toBeNull();
    expect(row('l1').speedVsL1).toBe(1);
    // With one run, the median of the per-run ratios is that run's ratio.
    for (const bench of ['l2', 'user']) expectClose(row(bench).speedVsL1, row('l1').ms / row(bench).ms);
  });

  it('records the micro-benchmark with its error checked and consistent figures', () => {
    const { micro } = JSON.parse(fs.readFileSync(path.join(dir, 'out/tiny.json'), 'utf8'));
    expect(micro).toHaveLength(1);
    const m = micro[0];
    expect(m.name).toBe(MICRO);
    expect(m.error).toBe('');
    expectPositive(m.hz, m.meanNs, m.samples, m.insnsPerSec, m.mbPerSec);
    expect(m.rmePct).toBeGreaterThanOrEqual(0);
    expect(Number.isFinite(m.rmePct)).toBe(true);
    // One operation decodes one instruction: rate and mean time are reciprocal, MB/s follows from the average length.
    expectClose(m.hz * m.meanNs, 1e9);
    expectClose(m.insnsPerSec, m.hz);
    const bytesPerInsn = (m.mbPerSec * 1e6) / m.hz;
    expect(bytesPerInsn).toBeGreaterThanOrEqual(1);
    expect(bytesPerInsn).toBeLessThanOrEqual(15);
  });

  it('writes Markdown with a row per program and per micro-benchmark', () => {
    const md = fs.readFileSync(path.join(dir, 'out/tiny.md'), 'utf8');
    const json = JSON.parse(fs.readFileSync(path.join(dir, 'out/tiny.json'), 'utf8'));
    expect(md).toContain(`Node ${process.version}`);
    expect(md).toContain(`commit ${json.machine.commit}`);
    const tableRows = md.split('\n').filter((line) => line.startsWith('| ') && !line.startsWith('| ---'));
    const first = (line: string) => line.split('|')[1].trim();
    expect(tableRows.map(first)).toEqual(['program', 'harmonic', 'spin', 'SVM and machine mode', ...json.svm.map((r: { label: string }) => r.label), 'micro-benchmark', MICRO]);
    // Every row has as many cells as its header.
    const guestCells = tableRows[0].split('|').length;
    for (const line of tableRows.slice(1, 3)) expect(line.split('|').length).toBe(guestCells);
    const spin = tableRows[2].split('|').map((c) => c.trim());
    expect(spin[6]).toBe(json.rows[1].guestInsns.toLocaleString('en-US'));
  });

  it('rejects a bad option before doing any work', () => {
    const bad = runBench(['--runs', '0', '--out', path.join(dir, 'bad')]);
    expect(bad.status).toBe(1);
    expect(bad.stderr).toContain("--runs takes a positive integer, not '0'");
    expect(fs.existsSync(path.join(dir, 'bad'))).toBe(false);
    const clash = runBench(['--svm-only', '--no-svm', '--out', path.join(dir, 'bad')]);
    expect(clash.status).toBe(1);
    expect(clash.stderr).toContain('--svm-only and --no-svm exclude each other');
  });
});

describe('npm run bench -- --deopts', () => {
  it('counts the bailouts of generated units per unit and reason, and flags a unit that keeps deoptimising', () => {
    const line = (unit: string, reason: string) =>
      `[bailout (kind: deopt-eager, reason: ${reason}): begin. deoptimizing 0x1 <JSFunction ${unit} (sfi = 0x2)>, 0x3 <Code TURBOFAN>, opt id 1, bytecode offset 9]`;
    const trace = [
      line('rgn_main_0x40', 'Insufficient type feedback for binary operation'),
      line('blk_memcpy', 'wrong map'),
      line('dispatch', 'wrong map'), // the engine's own code is not generated code
      ...Array.from({ length: DEOPT_LOOP }, () => line('rgn_loop_0x10', 'wrong map')),
      'ordinary guest output',
    ].join('\n');
    const row = parseDeopts('p', trace);
    expect(row).toMatchObject({ total: DEOPT_LOOP + 2, units: 3, worst: 'rgn_loop_0x10', worstCount: DEOPT_LOOP, loops: ['rgn_loop_0x10'] });
    expect(row.reasons[0]).toEqual(['wrong map (deopt-eager)', DEOPT_LOOP + 1]);
    expect(deoptTable([row])).toContain('| p | 12 | 3 | rgn_loop_0x10 (10) |');
  });

  it('runs each program under --trace-deopt and prints the table', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'svmjit-deopts-'));
    try {
      fs.mkdirSync(path.join(dir, 'programs'));
      fs.writeFileSync(path.join(dir, 'programs', 'spin.c'), PROGRAMS.spin);
      const r = runBench(['--deopts', '--programs', path.join(dir, 'programs'), '--scale', '1']);
      expect(r.status, r.stderr).toBe(0);
      expect(r.stdout).toMatch(/^\| spin \| \d+ \| \d+ \| .* \| none \|$/m);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }, 120_000);
});

describe('demo/hypervisor.flat', () => {
  it('is built from the current demo sources (else run demo/build-hypervisor.sh)', () => {
    // The stamp demo/hypervisor.mk compiles in: SHA-256 of hypervisor.c then workload.h, 16 hex digits.
    const hash = crypto.createHash('sha256');
    for (const file of ['hypervisor.c', 'workload.h']) hash.update(fs.readFileSync(path.join(REPO_ROOT, 'demo', file)));
    const image = fs.readFileSync(path.join(REPO_ROOT, 'demo/hypervisor.flat')).toString('latin1');
    const stamp = /demo-sources-sha256:([0-9a-f]{16})/.exec(image);
    expect(stamp, 'no source stamp in demo/hypervisor.flat').not.toBeNull();
    expect(stamp![1]).toBe(hash.digest('hex').slice(0, 16));
  });
});
