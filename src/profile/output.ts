/**
 * Writes a guest profile in the three forms people open: folded stacks (`*.folded`, one line
 * per distinct stack, for flamegraph.pl / speedscope), a Chrome `.cpuprofile` (speedscope,
 * Chrome DevTools) and an SVG flamegraph drawn here, all named by the guest's symbols.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { GuestProfiler } from './profiler.js';

export type Symbolize = (addr: number) => string | undefined;

/** The function a guest address belongs to (symbol without offset), or its hex address. */
export function frameName(addr: number, symbolize: Symbolize): string {
  const s = symbolize(addr);
  return s ? s.replace(/\+0x[0-9a-f]+$/, '') : `0x${addr.toString(16)}`;
}

/** Stacks as frame-name lists, root first. */
export function namedStacks(p: GuestProfiler, symbolize: Symbolize): string[][] {
  return p.samples.map((st) => st.map((a) => frameName(a, symbolize)));
}

export function foldedText(stacks: string[][]): string {
  const counts = new Map<string, number>();
  for (const st of stacks) {
    const k = st.join(';');
    counts.set(k, (counts.get(k) ?? 0) + 1);
  }
  return [...counts].sort((a, b) => b[1] - a[1]).map(([k, n]) => `${k} ${n}`).join('\n') + '\n';
}

interface CpuNode {
  id: number;
  callFrame: { functionName: string; scriptId: string; url: string; lineNumber: number; columnNumber: number };
  hitCount: number;
  children: number[];
}

export function cpuProfile(stacks: string[][], times: number[], url: string): object {
  const nodes: CpuNode[] = [];
  const childIndex = new Map<string, number>();
  const mk = (name: string): number => {
    nodes.push({ id: nodes.length + 1, callFrame: { functionName: name, scriptId: '0', url, lineNumber: -1, columnNumber: -1 }, hitCount: 0, children: [] });
    return nodes.length;
  };
  const root = mk('(root)');
  const samples: number[] = [];
  for (const st of stacks) {
    let cur = root;
    for (const name of st) {
      const key = `${cur}/${name}`;
      let id = childIndex.get(key);
      if (id === undefined) {
        id = mk(name);
        childIndex.set(key, id);
        nodes[cur - 1].children.push(id);
      }
      cur = id;
    }
    nodes[cur - 1].hitCount++;
    samples.push(cur);
  }
  const startTime = Math.round((times[0] ?? 0) * 1000);
  const timeDeltas = times.map((t, i) => Math.round((t - (i ? times[i - 1] : times[0])) * 1000));
  const endTime = Math.round((times[times.length - 1] ?? 0) * 1000);
  return { nodes, startTime, endTime, samples, timeDeltas };
}

interface Tree {
  name: string;
  value: number;
  children: Map<string, Tree>;
}

function escapeXml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/** A self-contained SVG flamegraph (root at the bottom, as flamegraph.pl draws it). */
export function flamegraphSvg(stacks: string[][], title: string): string {
  const root: Tree = { name: 'all', value: 0, children: new Map() };
  for (const st of stacks) {
    root.value++;
    let cur = root;
    for (const name of st) {
      let c = cur.children.get(name);
      if (!c) cur.children.set(name, (c = { name, value: 0, children: new Map() }));
      c.value++;
      cur = c;
    }
  }
  const depthOf = (t: Tree): number => 1 + Math.max(0, ...[...t.children.values()].map(depthOf));
  const width = 1200, rowH = 17, top = 40;
  const depth = depthOf(root);
  const height = top + depth * rowH + 20;
  const scale = root.value ? (width - 20) / root.value : 0;
  const rects: string[] = [];
  const hue = (name: string) => {
    let h = 0;
    for (const ch of name) h = (h * 31 + ch.charCodeAt(0)) >>> 0;
    return `rgb(${205 + (h % 50)},${(h >>> 8) % 130 + 60},${(h >>> 16) % 55})`;
  };
  const draw = (t: Tree, x: number, level: number) => {
    const w = t.value * scale;
    const y = height - 20 - (level + 1) * rowH;
    const pct = ((t.value / Math.max(1, root.value)) * 100).toFixed(2);
    const label = w > 30 ? escapeXml(t.name.slice(0, Math.floor(w / 7))) : '';
    rects.push(
      `<g><title>${escapeXml(t.name)} (${t.value} samples, ${pct}%)</title><rect x="${(10 + x).toFixed(1)}" y="${y}" width="${Math.max(0.5, w - 0.5).toFixed(1)}" height="${rowH - 1}" fill="${hue(t.name)}" rx="2"/>` +
        (label ? `<text x="${(13 + x).toFixed(1)}" y="${y + 12}">${label}</text>` : '') + '</g>',
    );
    let cx = x;
    for (const c of [...t.children.values()].sort((a, b) => a.name.localeCompare(b.name))) {
      draw(c, cx, level + 1);
      cx += c.value * scale;
    }
  };
  draw(root, 0, 0);
  return `<?xml version="1.0" standalone="no"?>
<svg version="1.1" width="${width}" height="${height}" xmlns="http://www.w3.org/2000/svg" font-family="Verdana" font-size="12">
<rect x="0" y="0" width="${width}" height="${height}" fill="#fdfdf5"/>
<text x="${width / 2}" y="24" text-anchor="middle" font-size="17">${escapeXml(title)}</text>
${rects.join('\n')}
</svg>
`;
}

/** Write prog.folded, prog.cpuprofile and prog.svg into dir; returns the paths. */
export function writeProfile(p: GuestProfiler, symbolize: Symbolize, prog: string, dir: string): string[] {
  fs.mkdirSync(dir, { recursive: true });
  const base = path.join(dir, `${path.basename(prog)}.svmjit`);
  const stacks = namedStacks(p, symbolize);
  const files = [`${base}.folded`, `${base}.cpuprofile`, `${base}.svg`];
  fs.writeFileSync(files[0], foldedText(stacks));
  fs.writeFileSync(files[1], JSON.stringify(cpuProfile(stacks, p.times, path.resolve(prog))));
  fs.writeFileSync(files[2], flamegraphSvg(stacks, `svmjit guest profile: ${path.basename(prog)} (${stacks.length} samples)`));
  return files;
}
