/**
 * The benchmark harness (`npm run bench`, bench/run.ts) on a tiny workload: two small guest
 * programs at work scale 1 and one short micro-benchmark, run as the command a user types, into
 * a temporary directory. The result files must be well formed: every figure present, finite and
 * positive, the derived figures (MIPS, ratios) consistent with the measured ones, and the
 * Markdown table holding a row per program. qemu-x86_64 is optional: its column is either
 * measured or null, never half of each.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT } from './helpers/build.js';

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
    expect(tableRows.map(first)).toEqual(['program', 'harmonic', 'spin', 'micro-benchmark', MICRO]);
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
  });
});
