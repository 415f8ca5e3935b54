/**
 * Micro-benchmarks of the translator's and the runtime's hot pieces, timed with Benchmark.js:
 * decoding, lifting with the IR passes, JS generation and compilation, lazy-flag
 * materialisation and software-TLB lookups. The whole-guest figures say how fast svmjit is;
 * these say which piece to blame when that changes.
 *
 * The code stream is real: every function of a musl-static benchmark binary, decoded from its
 * symbol's start to its end, so decode and lift see the instruction mix of compiled C and libc
 * rather than a hand-picked buffer. One timed operation is one unit of work (an instruction, a
 * block, a flag read, a memory access), cycling through a prepared list, so ops/s is directly
 * instructions/s, blocks/s or accesses/s.
 *
 * Benchmark.js 2.1.4 is used with closures only and no setup/teardown (its string-compiled
 * setup would cut the closures off); every result's `error` is checked.
 */
import Benchmark from 'benchmark';
import fs from 'node:fs';
import path from 'node:path';
import vm from 'node:vm';
import { Cpu } from '../src/cpu/cpu.js';
import { CpuException, Vec } from '../src/cpu/exceptions.js';
import { CcOp, cond, getRflags, setLazy } from '../src/cpu/flags.js';
import { Memory, PAGE_SIZE, Prot } from '../src/cpu/memory.js';
import { decode, type FetchByte } from '../src/frontend/decoder.js';
import type { IrBlock } from '../src/ir/ir.js';
import { liftBlock } from '../src/ir/lift.js';
import { optimize } from '../src/ir/passes.js';
import { compileBlock } from '../src/jit/codegen.js';
import { JitRuntime } from '../src/jit/runtime.js';
import { Pf, Pt, parseElf } from '../src/linux/elf.js';
import { duration, markdownTable, rate } from './report.js';

/** One micro-benchmark's result. Figures are null in JSON when the benchmark failed (`error`). */
export interface MicroRow {
  name: string;
  /** What one timed operation is. */
  op: string;
  /** Operations per second. */
  hz: number;
  /** Mean time per operation, nanoseconds. */
  meanNs: number;
  /** Relative margin of error of the mean at 95% confidence, in percent. */
  rmePct: number;
  /** Benchmark.js samples (each a timed loop of many operations). */
  samples: number;
  /** Guest instructions handled per second, for the benchmarks whose operation handles instructions. */
  insnsPerSec: number | null;
  /** Guest code bytes decoded per second / 10^6. */
  mbPerSec: number | null;
  /** Empty, or the error Benchmark.js reported. */
  error: string;
}

export interface MicroOptions {
  /** A statically linked x86-64 ELF with a symbol table: the code stream. */
  binary: string;
  /** Benchmark.js maxTime per benchmark, seconds. */
  maxTime: number;
  /** Only benchmarks whose name contains this. */
  filter?: string;
  log: (line: string) => void;
}

/** The benchmark binary's code, with the instruction and block boundaries a run would see. */
interface CodeStream {
  /** Reads guest code bytes straight from the ELF image (the decoder alone). */
  fetch: FetchByte;
  /** Reads them as the engine does: a TLB translation per byte (runtime/engine.ts). */
  memFetch: FetchByte;
  /** Instruction addresses, function by function. */
  insns: number[];
  bytesPerInsn: number;
  /** Block start addresses: each function's entry and every fall-through from a block. */
  blocks: number[];
  insnsPerBlock: number;
  functions: number;
  /** Functions cut short at an instruction the decoder does not know. */
  undecodable: number;
}

function loadCodeStream(binary: string): CodeStream {
  const file = new Uint8Array(fs.readFileSync(binary));
  const image = parseElf(file, binary);
  const text = image.phdrs.find((p) => p.type === Pt.LOAD && p.flags & Pf.X);
  if (!text) throw new Error(`${binary} has no executable segment`);
  const code = file.subarray(text.offset, text.offset + text.filesz);
  const base = text.vaddr;
  const fetch: FetchByte = (a) => {
    const i = a - base;
    if (i >= 0 && i < code.length) return code[i];
    throw new CpuException(Vec.PF, 0, a);
  };
  const firstPage = base - (base % PAGE_SIZE);
  const pages = Math.ceil((base - firstPage + code.length) / PAGE_SIZE);
  const mem = new Memory(pages * PAGE_SIZE);
  mem.map(firstPage, pages * PAGE_SIZE, Prot.READ | Prot.EXEC);
  mem.poke(base, code);
  const memFetch: FetchByte = (a) => mem.u8[mem.translateFetch(a)];

  // Aliases share an address; decode each function once.
  const seen = new Set<number>();
  const functions = image.symbols.filter((s) => s.size > 0 && s.addr >= base && s.addr + s.size <= base + code.length && !seen.has(s.addr) && seen.add(s.addr));
  if (functions.length === 0) throw new Error(`${binary} has no function symbols in its executable segment (a stripped binary cannot serve as the code stream)`);
  const insns: number[] = [];
  const blocks: number[] = [];
  let bytes = 0;
  let blockInsns = 0;
  let undecodable = 0;
  for (const f of functions) {
    const end = f.addr + f.size;
    for (let a = f.addr; a < end; ) {
      let insn;
      try {
        insn = decode(fetch, a);
      } catch (e) {
        if (!(e instanceof CpuException)) throw e;
        undecodable++;
        break;
      }
      insns.push(a);
      bytes += insn.len;
      a = insn.next;
    }
    for (let a = f.addr; a < end; ) {
      const blk = liftBlock(fetch, a);
      if (blk.error || blk.end <= a) break;
      blocks.push(a);
      blockInsns += blk.insns.length;
      a = blk.end;
    }
  }
  return { fetch, memFetch, insns, bytesPerInsn: bytes / insns.length, blocks, insnsPerBlock: blockInsns / blocks.length, functions: functions.length, undecodable };
}

/** A lazy-flags record as one flag-setting instruction leaves it. */
interface LazyRecord {
  name: string;
  op: CcOp;
  size: number;
  dl: number;
  dh: number;
  sl: number;
  sh: number;
}

/**
 * The flag producers compiled code leaves behind most: add, cmp (sub) on 64-bit values, test
 * (logic), inc and shl. Their operands are ordinary values; the cost does not depend on them.
 */
const LAZY_RECORDS: LazyRecord[] = [
  { name: 'add32', op: CcOp.ADD, size: 4, dl: 1024, dh: 0, sl: 24, sh: 0 },
  { name: 'sub64', op: CcOp.SUB, size: 8, dl: -1, dh: 0, sl: 1, sh: 0 },
  { name: 'logic32', op: CcOp.LOGIC, size: 4, dl: 0, dh: 0, sl: 0, sh: 0 },
  { name: 'inc32', op: CcOp.INC, size: 4, dl: 5, dh: 0, sl: 0, sh: 0 },
  { name: 'shl32', op: CcOp.SHL, size: 4, dl: 6, dh: 0, sl: 3, sh: 0 },
];

/** The single-flag conditions (Jcc encodings) and the flag each one reads. */
const FLAG_CONDITIONS = [
  ['CF', 2, 'jb'],
  ['ZF', 4, 'je'],
  ['SF', 8, 'js'],
  ['OF', 0, 'jo'],
  ['PF', 10, 'jp'],
] as const;

/** A CPU whose lazy-flags state holds `r`, as if the instruction had just run. */
function cpuAfter(r: LazyRecord): Cpu {
  const cpu = new Cpu(new Memory(PAGE_SIZE));
  setLazy(cpu, r.op, r.size, r.dl, r.dh, r.sl, r.sh);
  return cpu;
}

/** Four pages mapped read/write, and a fifth whose TLB entry is the first's. */
interface TlbFixture {
  mem: Memory;
  /** 256 aligned addresses spread over the four pages: always hits once warm. */
  hits: number[];
  /** Two addresses whose pages evict each other: every access misses and refills. */
  conflicting: [number, number];
}

const TLB_BASE = 0x10000000;
/** The direct-mapped TLB's entry count (private to memory.ts): pages this many apart share an entry. */
const TLB_ENTRIES = 4096;

/** How many translations (TLB refills) `accesses` cause on `mem`, counted by shadowing its translate method. */
function countTranslations(mem: Memory, accesses: () => void): number {
  let count = 0;
  const translate = mem.translate;
  mem.translate = (va, access) => {
    count++;
    return translate.call(mem, va, access);
  };
  try {
    accesses();
  } finally {
    Reflect.deleteProperty(mem, 'translate');
  }
  return count;
}

function tlbLayout(): TlbFixture {
  const mem = new Memory(8 * PAGE_SIZE);
  mem.map(TLB_BASE, 4 * PAGE_SIZE, Prot.READ | Prot.WRITE);
  const far = TLB_BASE + TLB_ENTRIES * PAGE_SIZE;
  mem.map(far, PAGE_SIZE, Prot.READ | Prot.WRITE);
  const hits = Array.from({ length: 256 }, (_, k) => TLB_BASE + (k & 3) * PAGE_SIZE + ((k * 52) & (PAGE_SIZE - 4)));
  return { mem, hits, conflicting: [TLB_BASE + 64, far + 64] };
}

/**
 * The hit benchmarks must never translate and the miss benchmarks must translate every time, or
 * their names lie (say, after a change of the TLB's size or indexing). Checked on a twin of the
 * fixture: shadowing a method reshapes the object, and the timed one should have its usual shape.
 */
function tlbFixture(): TlbFixture {
  const { mem, hits, conflicting } = tlbLayout();
  for (const [kind, access] of [
    ['read', (a: number) => mem.read32(a)],
    ['write', (a: number) => mem.write32(a, 0)],
  ] as const) {
    const each = (list: readonly number[]) => () => list.forEach(access);
    each(hits)();
    if (countTranslations(mem, each(hits)) !== 0) throw new Error(`tlb fixture: warm ${kind}s of four pages still miss the TLB`);
    each(conflicting)();
    const refills = countTranslations(mem, each([...conflicting, ...conflicting]));
    if (refills < 4) throw new Error(`tlb fixture: pages ${TLB_ENTRIES} apart do not share a TLB entry (${refills} translations for 4 ${kind}s)`);
  }
  return tlbLayout();
}

/** One benchmark: its name, and how to build what it times (only when it is selected). */
interface MicroCase {
  name: string;
  prepare: () => Prepared;
}

interface Prepared {
  /** What one timed operation is. */
  op: string;
  fn: () => void;
  /** Guest instructions and code bytes one operation handles, when that is meaningful. */
  insnsPerOp?: number;
  bytesPerOp?: number;
}

/** Loop over a prepared list without a modulo on the hot path. */
function cycle<T>(items: readonly T[], use: (item: T) => void): () => void {
  let k = 0;
  return () => {
    use(items[k]);
    if (++k === items.length) k = 0;
  };
}

/** A fixture built on first use and shared by the benchmarks that need it. */
function once<T>(build: () => T): () => T {
  let value: T | undefined;
  return () => (value ??= build());
}

/**
 * Every benchmark body passes its result to keep() so that V8 cannot drop the work as dead
 * code. The sink stays within small-integer range: a running sum would grow into a heap
 * number, and boxing one per operation would be timed too.
 */
let sink = 0;
const keep = (value: number): void => {
  sink = (sink ^ value) & 0x3fffffff;
};

/** Everything the translation benchmarks share: lifted and optimised blocks, their JS source, a runtime to bind to. */
interface Translated {
  lifted: IrBlock[];
  sources: string[];
  rt: JitRuntime;
  /** A block name never used before: V8 caches compiled scripts by source text, and the name is in the source. */
  fresh: (blk: IrBlock) => string;
}

function translate(code: CodeStream): Translated {
  // The JIT benchmarks compile already-optimised IR, as the engine does after liftBlock.
  const lifted = code.blocks.map((a) => {
    const blk = liftBlock(code.fetch, a);
    optimize(blk);
    return blk;
  });
  const rt = new JitRuntime(new Cpu(new Memory(PAGE_SIZE)));
  let serial = 0;
  const fresh = (blk: IrBlock) => `blk_${blk.addr.toString(16)}_${serial++}`;
  return { lifted, sources: lifted.map((blk) => compileBlock(blk, rt, fresh(blk)).source), rt, fresh };
}

function microCases(binary: string, log: (line: string) => void): MicroCase[] {
  const code = once(() => {
    const c = loadCodeStream(binary);
    log(
      `micro: code stream ${path.basename(binary)}: ${c.functions} functions, ${c.insns.length} instructions, ${c.blocks.length} blocks` +
        (c.undecodable ? ` (${c.undecodable} functions end at an undecodable instruction)` : ''),
    );
    return c;
  });
  const translated = once(() => translate(code()));
  const flagCpus = once(() => LAZY_RECORDS.map(cpuAfter));
  const tlb = once(tlbFixture);

  const decodeWith = (name: string, pick: (c: CodeStream) => FetchByte): MicroCase => ({
    name,
    prepare: () => {
      const c = code();
      const fetch = pick(c);
      return {
        op: `instruction (${c.bytesPerInsn.toFixed(1)} bytes avg)`,
        insnsPerOp: 1,
        bytesPerOp: c.bytesPerInsn,
        fn: cycle(c.insns, (a) => {
          keep(decode(fetch, a).len);
        }),
      };
    },
  });
  const perBlock = (name: string, fn: () => () => void): MicroCase => ({
    name,
    prepare: () => ({ op: `block (${code().insnsPerBlock.toFixed(1)} insns avg)`, insnsPerOp: code().insnsPerBlock, fn: fn() }),
  });
  const access = (name: string, fn: (t: TlbFixture) => () => void): MicroCase => ({ name, prepare: () => ({ op: 'access', fn: fn(tlb()) }) });
  const mix = LAZY_RECORDS.map((r) => r.name).join('/');

  return [
    {
      name: 'harness: an empty operation',
      prepare: () => ({
        op: 'one step through a list (the floor under every figure)',
        fn: cycle(LAZY_RECORDS, (r) => {
          keep(r.size);
        }),
      }),
    },
    decodeWith('decode: bytes from an array', (c) => c.fetch),
    decodeWith('decode: bytes through Memory (as the engine fetches)', (c) => c.memFetch),
    perBlock('lift: liftBlock + optimize', () =>
      cycle(code().blocks, (a) => {
        const blk = liftBlock(code().fetch, a);
        optimize(blk);
        keep(blk.code.length);
      }),
    ),
    perBlock('jit: compileBlock (generate, print, vm.Script, bind)', () => {
      const { lifted, rt, fresh } = translated();
      return cycle(lifted, (blk) => {
        keep(compileBlock(blk, rt, fresh(blk)).exits);
      });
    }),
    perBlock('jit: vm.Script alone (V8 parse and compile)', () => {
      const { sources } = translated();
      let n = 0;
      // A trailing comment makes each source new to V8's compilation cache.
      return cycle(sources, (source) => {
        n++;
        keep(typeof new vm.Script(`${source}\n//${n}`, { filename: `guest://bench_${n}` }).runInThisContext() === 'function' ? 1 : 0);
      });
    }),
    ...FLAG_CONDITIONS.map(
      ([flag, cc, jcc]): MicroCase => ({
        name: `flags: ${flag} (${jcc}) from the lazy state`,
        prepare: () => ({
          op: `flag read (${mix} in turn)`,
          fn: cycle(flagCpus(), (cpu) => {
            keep(cond(cpu, cc) ? 1 : 0);
          }),
        }),
      }),
    ),
    ...LAZY_RECORDS.map(
      (r, k): MicroCase => ({
        name: `flags: all (getRflags) after ${r.name}`,
        prepare: () => {
          const cpu = flagCpus()[k];
          return {
            op: 'RFLAGS read',
            fn: () => {
              keep(getRflags(cpu));
            },
          };
        },
      }),
    ),
    access('tlb: read32 hit', ({ mem, hits }) =>
      cycle(hits, (a) => {
        keep(mem.read32(a));
      }),
    ),
    access('tlb: write32 hit', ({ mem, hits }) => cycle(hits, (a) => mem.write32(a, a))),
    access('tlb: read32 miss + refill', ({ mem, conflicting }) =>
      cycle(conflicting, (a) => {
        keep(mem.read32(a));
      }),
    ),
    access('tlb: write32 miss + refill', ({ mem, conflicting }) => cycle(conflicting, (a) => mem.write32(a, a))),
  ];
}

/** Longest warm-up before a benchmark's samples (a quarter of its time when that is shorter). */
const WARM_UP_MS = 200;

function measure(c: MicroCase, maxTime: number): MicroRow {
  let p: Prepared | undefined;
  let error = '';
  try {
    p = c.prepare();
    // Benchmark.js starts sampling at once; run the body a while first so that its samples time
    // V8's optimised code, not the interpreter and the compiles on the way there.
    const warmUntil = performance.now() + Math.min(WARM_UP_MS, (maxTime * 1000) / 4);
    while (performance.now() < warmUntil) for (let i = 0; i < 64; i++) p.fn();
  } catch (e) {
    error = e instanceof Error ? e.message : String(e);
  }
  let samples = 0;
  let hz = NaN;
  let mean = NaN;
  let rme = NaN;
  if (p && !error) {
    // Closures only, no setup/teardown strings, no defer (design §7).
    const bench = new Benchmark(c.name, p.fn, { maxTime, minSamples: 5 });
    bench.run();
    samples = bench.stats.sample.length;
    error = bench.error ? String(bench.error.message ?? bench.error) : bench.aborted ? 'aborted' : samples === 0 ? 'no samples' : '';
    if (!error) {
      hz = bench.hz;
      mean = bench.stats.mean;
      rme = bench.stats.rme;
    }
  }
  return {
    name: c.name,
    op: p?.op ?? '',
    hz,
    meanNs: mean * 1e9,
    rmePct: rme,
    samples,
    insnsPerSec: p?.insnsPerOp === undefined ? null : hz * p.insnsPerOp,
    mbPerSec: p?.bytesPerOp === undefined ? null : (hz * p.bytesPerOp) / 1e6,
    error,
  };
}

/** The names of all micro-benchmarks, in the order they run (for --help and filters). */
export function microNames(): string[] {
  return microCases('', () => {}).map((c) => c.name);
}

/** Runs the micro-benchmarks whose name contains `filter` (all by default), in a fixed order. */
export function runMicro(opts: MicroOptions): MicroRow[] {
  const cases = microCases(opts.binary, opts.log).filter((c) => !opts.filter || c.name.includes(opts.filter));
  if (cases.length === 0) throw new Error(`no micro-benchmark name contains '${opts.filter}'`);
  const rows: MicroRow[] = [];
  for (const c of cases) {
    const row = measure(c, opts.maxTime);
    opts.log(`  ${row.name}: ${row.error ? `ERROR ${row.error}` : `${rate(row.hz)} ops/s ±${row.rmePct.toFixed(1)}%`}`);
    rows.push(row);
  }
  return rows;
}

export function microTable(rows: MicroRow[]): string {
  return markdownTable(
    ['micro-benchmark', 'one op', 'ops/s', 'mean/op', '±RME', 'samples', 'guest insns/s', 'MB/s'],
    rows.map((r) =>
      r.error
        ? [`${r.name} **ERROR**`, r.op, '-', '-', '-', String(r.samples), '-', '-']
        : [r.name, r.op, rate(r.hz), duration(r.meanNs / 1e9), `${r.rmePct.toFixed(1)}%`, String(r.samples), r.insnsPerSec === null ? '-' : rate(r.insnsPerSec), r.mbPerSec === null ? '-' : r.mbPerSec.toFixed(1)],
    ),
  );
}
