/**
 * `npm run bench -- --deopts`: what V8 does to the code svmjit generates. Each program runs once
 * under the JIT with V8's --trace-deopt; the bailouts of generated units (functions named
 * blk_<symbol> and rgn_<symbol>, see jit/codegen.ts) are counted per unit and per reason.
 *
 * A unit deoptimised once or twice is normal: V8 optimises a region with the type feedback of
 * the paths that ran so far, and the first run of a cold path (a TLB miss, a rare branch) throws
 * the optimised code away once. A unit deoptimised again and again is a deoptimisation loop —
 * code that keeps falling back to V8's interpreter — and is what this mode exists to catch.
 */
import { spawnSync } from 'node:child_process';
import { SVMJIT_CLI } from './guest.js';

/** Bailouts of one unit from which on it counts as a deoptimisation loop. */
export const DEOPT_LOOP = 10;

export interface DeoptRow {
  program: string;
  /** Bailouts of generated units, in all. */
  total: number;
  /** Generated units deoptimised at least once. */
  units: number;
  /** The unit deoptimised most often, and how often. */
  worst: string;
  worstCount: number;
  /** Reasons by count, most frequent first. */
  reasons: [string, number][];
  /** Units at or past DEOPT_LOOP. */
  loops: string[];
}

const BAILOUT = /bailout \(kind: ([\w-]+), reason: ([^)]*)\): begin\. deoptimizing \S+ <JSFunction ((?:blk|rgn)_[\w$]+)/;

/** Count the bailouts of generated units in V8's --trace-deopt output. */
export function parseDeopts(program: string, trace: string): DeoptRow {
  const perUnit = new Map<string, number>();
  const perReason = new Map<string, number>();
  let total = 0;
  for (const line of trace.split('\n')) {
    const m = BAILOUT.exec(line);
    if (!m) continue;
    total++;
    perUnit.set(m[3], (perUnit.get(m[3]) ?? 0) + 1);
    const reason = `${m[2]} (${m[1]})`;
    perReason.set(reason, (perReason.get(reason) ?? 0) + 1);
  }
  const units = [...perUnit].sort((a, b) => b[1] - a[1]);
  return {
    program,
    total,
    units: units.length,
    worst: units[0]?.[0] ?? '-',
    worstCount: units[0]?.[1] ?? 0,
    reasons: [...perReason].sort((a, b) => b[1] - a[1]),
    loops: units.filter(([, n]) => n >= DEOPT_LOOP).map(([u]) => u),
  };
}

/** Run `binary` once under the JIT with --trace-deopt and summarise. */
export function deoptProgram(program: string, binary: string, scale: number): DeoptRow {
  const r = spawnSync(process.execPath, ['--trace-deopt', SVMJIT_CLI, 'run', binary, String(scale)], { encoding: 'utf8', maxBuffer: 1 << 30 });
  if (r.status !== 0) throw new Error(`${program} under --trace-deopt exited with ${r.status}: ${r.stderr.trim().split('\n').pop()}`);
  return parseDeopts(program, r.stdout + r.stderr);
}

export function deoptTable(rows: DeoptRow[]): string {
  const lines = [
    '| program | bailouts | units | most deoptimised unit | top reasons | loops |',
    '| --- | ---: | ---: | --- | --- | --- |',
  ];
  for (const r of rows) {
    const reasons = r.reasons.slice(0, 3).map(([why, n]) => `${n}× ${why}`).join('; ') || '-';
    lines.push(`| ${r.program} | ${r.total} | ${r.units} | ${r.worstCount ? `${r.worst} (${r.worstCount})` : '-'} | ${reasons} | ${r.loops.length ? `**${r.loops.join(', ')}**` : 'none'} |`);
  }
  return lines.join('\n') + '\n';
}
