/**
 * What the benchmark runner writes: a description of the machine and checkout the figures came
 * from, Markdown tables, and the pair of result files (<name>.json for tools, <name>.md for
 * people). Both halves of `npm run bench` (whole-guest and micro) format their tables here so
 * the two read alike.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export interface Machine {
  cpu: string;
  cores: number;
  memoryGiB: number;
  os: string;
  node: string;
  v8: string;
  /** First line of `qemu-x86_64 --version`, or null when the qemu column was not measured. */
  qemu: string | null;
  commit: string;
  date: string;
}

/** The short commit, with `+uncommitted` when tracked files differ from it (figures of a dirty tree). */
function gitCommit(repo: string): string {
  try {
    // git's own complaints (say, a tree exported without .git) would only clutter the output: 'unknown' says it.
    const git = (...args: string[]) => execFileSync('git', args, { cwd: repo, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    const commit = git('rev-parse', '--short', 'HEAD');
    const dirty = git('status', '--porcelain', '--untracked-files=no');
    return dirty ? `${commit}+uncommitted` : commit;
  } catch {
    return 'unknown';
  }
}

export function describeMachine(repo: string, qemu: string): Machine {
  const cpus = os.cpus();
  let qemuVersion: string | null = null;
  if (qemu) {
    try {
      qemuVersion = execFileSync(qemu, ['--version'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).split('\n')[0].trim();
    } catch {
      qemuVersion = 'unknown version';
    }
  }
  return {
    cpu: cpus[0]?.model.trim() ?? 'unknown',
    cores: cpus.length,
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    os: `${os.type()} ${os.release()} ${os.arch()}`,
    node: process.version,
    v8: process.versions.v8,
    qemu: qemuVersion,
    commit: gitCommit(repo),
    date: new Date().toISOString(),
  };
}

/** The median: the figure a whole-guest benchmark reports of its runs. */
export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/** A number with fixed decimals, or '-' for a figure that was not measured (NaN). */
export const fixed = (value: number, digits: number): string => (Number.isFinite(value) ? value.toFixed(digits) : '-');

/** A ratio as `12.3x`, or '-' when either side was not measured. */
export const ratio = (value: number, digits: number): string => (Number.isFinite(value) ? `${value.toFixed(digits)}x` : '-');

/** Three significant digits with thousands separators: rates that span 10^2 to 10^9. */
export const rate = (value: number): string =>
  Number.isFinite(value) ? Number(value.toPrecision(3)).toLocaleString('en-US', { maximumFractionDigits: 2 }) : '-';

/** A duration in seconds in the unit that keeps it readable (ns, µs, ms). */
export function duration(seconds: number): string {
  if (!Number.isFinite(seconds)) return '-';
  if (seconds < 1e-6) return `${(seconds * 1e9).toPrecision(3)} ns`;
  if (seconds < 1e-3) return `${(seconds * 1e6).toPrecision(3)} µs`;
  return `${(seconds * 1e3).toPrecision(3)} ms`;
}

/** A Markdown table: the first column (names) left-aligned, every other (figures) right-aligned. */
export function markdownTable(header: string[], rows: string[][]): string {
  const line = (cells: string[]) => `| ${cells.join(' | ')} |`;
  return [line(header), line(header.map((_, i) => (i === 0 ? '---' : '---:'))), ...rows.map(line)].join('\n');
}

/**
 * Writes <dir>/<name>.json and <dir>/<name>.md through temporary files renamed into place, so
 * an interrupted run never leaves a half-written result next to a complete one.
 */
export function writeResults(dir: string, name: string, json: unknown, markdown: string): string[] {
  fs.mkdirSync(dir, { recursive: true });
  const written: string[] = [];
  for (const [ext, text] of [
    ['json', JSON.stringify(json, null, 2) + '\n'],
    ['md', markdown],
  ] as const) {
    const file = path.join(dir, `${name}.${ext}`);
    fs.writeFileSync(`${file}.tmp`, text);
    fs.renameSync(`${file}.tmp`, file);
    written.push(file);
  }
  return written;
}
