/**
 * The guest profiler end to end: `svmjit profile` on a guest whose time is known to go mostly
 * into one function must attribute most samples to that function, by its ELF symbol name, in
 * all three output files. And the 0x flamegraph of svmjit itself (`npm run flame`) and the perf
 * map (`--perfmap`) show compiled units under guest names.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT, TEST_BUILD_DIR, benchBuild, compileIfStale } from './helpers/build.js';

const CLI = path.join(REPO_ROOT, 'dist/src/cli/main.js');

describe('svmjit profile', () => {
  // The profiler samples at the dispatcher, so it must see the same profile in every execution mode.
  const MODE_FLAGS: [string, string[]][] = [['interp', ['--no-jit']], ['one-insn', ['--one-insn-per-tb']], ['jit', []]];
  for (const [mode, flags] of MODE_FLAGS)
    it(`puts most samples in the hot function and names it (${mode})`, async () => {
      const prog = await compileIfStale(path.join(REPO_ROOT, 'test/profile/hot.c'), path.join(TEST_BUILD_DIR, 'profile/hot'), benchBuild());
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'svmjit-profile-'));
      try {
        const out = execFileSync('node', [CLI, 'profile', ...flags, '--profile-dir', dir, prog], { encoding: 'utf8' });
        expect(out.trim()).toMatch(/^[0-9a-f]+$/);
        const folded = fs.readFileSync(path.join(dir, 'hot.svmjit.folded'), 'utf8').trim().split('\n');
        let total = 0;
        let inHot = 0;
        let hotUnderMain = 0;
        for (const line of folded) {
          const sp = line.lastIndexOf(' ');
          const frames = line.slice(0, sp).split(';');
          const n = Number(line.slice(sp + 1));
          total += n;
          if (frames[frames.length - 1] === 'hot_spin') {
            inHot += n;
            if (frames.includes('main')) hotUnderMain += n;
          }
        }
        expect(total).toBeGreaterThan(50);
        expect(inHot / total).toBeGreaterThan(0.6);
        // Stacks come from CALL/RET tracking: the hot function sits under main (a sample taken
        // at a call or return boundary may see the frame being entered or left, so not all).
        expect(hotUnderMain / inHot).toBeGreaterThan(0.9);
        const prof = JSON.parse(fs.readFileSync(path.join(dir, 'hot.svmjit.cpuprofile'), 'utf8')) as { nodes: { callFrame: { functionName: string } }[] };
        expect(prof.nodes.map((n) => n.callFrame.functionName)).toContain('hot_spin');
        expect(fs.readFileSync(path.join(dir, 'hot.svmjit.svg'), 'utf8')).toContain('hot_spin');
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    });

  it('npm run flame: compiled units carry guest names in the 0x flamegraph', async () => {
    const prog = await compileIfStale(path.join(REPO_ROOT, 'test/profile/hot.c'), path.join(TEST_BUILD_DIR, 'profile/hot'), benchBuild());
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'svmjit-flame-'));
    try {
      const zeroX = path.join(REPO_ROOT, 'node_modules/.bin/0x');
      const out = execFileSync(zeroX, ['--output-dir', dir, '--', 'node', CLI, 'run', prog], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
      expect(out).toMatch(/[0-9a-f]{8,}/); // the guest's own output still reaches the terminal
      const ticks = fs.readdirSync(dir).filter((f) => f.endsWith('.log.json'));
      expect(ticks.length).toBe(1);
      const names = fs.readFileSync(path.join(dir, ticks[0]), 'utf8');
      // Units are named after the guest symbol they start at, in a guest:// script.
      expect(names).toMatch(/guest:\/\/(blk|rgn)_hot_spin_0x[0-9a-f]+/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('--perfmap: /tmp/perf-<pid>.map names compiled units after guest symbols', async () => {
    const prog = await compileIfStale(path.join(REPO_ROOT, 'test/profile/hot.c'), path.join(TEST_BUILD_DIR, 'profile/hot'), benchBuild());
    const r = spawnSync('node', [CLI, 'run', '--perfmap', prog], { encoding: 'utf8' });
    expect(r.status).toBe(0);
    expect(r.stdout.trim()).toMatch(/^[0-9a-f]+$/);
    const m = /svmjit: perf map (\/tmp\/perf-\d+\.map)/.exec(r.stderr);
    expect(m, r.stderr).not.toBeNull();
    try {
      // perf's format: "<start hex> <size hex> <name>", one line per compiled function.
      const lines = fs.readFileSync(m![1], 'utf8').split('\n').filter((l) => /guest:\/\/(blk|rgn)_hot_spin/.test(l));
      expect(lines.length).toBeGreaterThan(0);
      expect(lines[0]).toMatch(/^[0-9a-f]+ [0-9a-f]+ \S/);
    } finally {
      fs.rmSync(m![1], { force: true });
    }
  });
});
