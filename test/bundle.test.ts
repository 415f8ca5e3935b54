/**
 * The one-file command line (dist/svmjit.mjs, built by tools/bundle.ts), which is what the
 * `svmjit` bin and `npm start` run, against the modules the other tests exercise: the same
 * usage text, the same guest output and exit status for a Linux program and for the bare-metal
 * demo hypervisor (the L1 hypervisor and its L2 guest), the JIT compiling in both (acorn and
 * astring stay outside the bundle and must still load).
 */
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from './helpers/build.js';

const MODULES = path.join(REPO_ROOT, 'dist/src/cli/main.js');
const BUNDLE = path.join(REPO_ROOT, 'dist/svmjit.mjs');

function run(cli: string, args: string[]) {
  const r = spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8', cwd: REPO_ROOT, timeout: 120_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Output without svmjit's statistics, whose timings differ from run to run. */
function guestLines(out: string): string {
  const at = out.indexOf('--- svmjit statistics');
  return at < 0 ? out : out.slice(0, at);
}

describe('the bundled command line', () => {
  it('prints the same usage', () => {
    const a = run(MODULES, ['--help']);
    const b = run(BUNDLE, ['--help']);
    expect(b.status).toBe(a.status);
    expect(b.stdout + b.stderr).toBe(a.stdout + a.stderr);
    expect(a.stdout + a.stderr).toMatch(/usage: svmjit run/);
  });

  it('runs a Linux program with the JIT to the same output', () => {
    // --jit-threshold 2 so the JIT (and so the lazily loaded acorn/astring) does most of the work.
    const args = ['run', '--jit-threshold', '2', '--stats', 'demo/demo.elf'];
    const a = run(MODULES, args);
    const b = run(BUNDLE, args);
    expect(b.status).toBe(0);
    expect(a.status).toBe(0);
    expect(b.stdout).toBe(a.stdout);
    expect(a.stdout).toMatch(/primes below 1000000: 78498/);
    expect(b.stderr).toMatch(/compiled to JS: [1-9]\d* blocks/);
  });

  it('boots the demo hypervisor (`npm start`) to the same guest output', () => {
    const a = run(MODULES, ['demo']);
    const b = run(BUNDLE, ['demo']);
    expect(b.status).toBe(0);
    expect(a.status).toBe(0);
    expect(guestLines(b.stdout)).toBe(guestLines(a.stdout));
    expect(b.stdout).toMatch(/L2 \|/);
  });
});
