/**
 * One machine-state model for differential testing, and the two machines that run it: the
 * host CPU (through native-runner.c, built on demand with gcc) and svmjit (in any of its three
 * execution modes). The vector test, the vector generator and the fuzzer all go through here,
 * so "what a snippet did" is computed and compared one way everywhere.
 *
 * Both machines use the same guest layout: code at CODE, a 4 KiB scratch region at DATA, an
 * 8 KiB stack below STACK_TOP with RSP = GUEST_RSP. FP state travels as an FXSAVE image (the
 * format the hardware and the kernel's signal frames use); svmjit's state is converted to and
 * from it here. Memory results are the bytes that differ from the preset image, as a sorted
 * map, so a stray store anywhere in scratch or stack shows up.
 *
 * Vectors store states as columns of hex strings (see `readColumn` / `writeColumn`): a GPR
 * name, `flags`, `mxcsr`, `xmm0`-`xmm15` (128-bit number), `fcw`/`fsw`/`ftw`, `st0`-`st7`
 * (stack order, 80-bit: sign/exponent then mantissa), `m<addr>:<len>` (bytes in memory order).
 */
import { spawnSync, execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Cpu } from '../src/cpu/cpu.js';
import { CpuException, Vec } from '../src/cpu/exceptions.js';
import { getRflags, setRflags } from '../src/cpu/flags.js';
import { Memory, Prot } from '../src/cpu/memory.js';
import { REG_NAMES64, S } from '../src/cpu/state.js';
import { Engine, InsnLimit, type ExecMode } from '../src/runtime/engine.js';

export const CODE = 0x400000;
export const DATA = 0x600000;
export const DATA_SIZE = 0x1000;
export const STACK_BASE = 0x7fe000;
export const STACK_SIZE = 0x2000;
export const GUEST_RSP = 0x7fff00;
/** RFLAGS bits the runner passes in and the comparison looks at: OSZAPC, DF, AC, ID. */
export const FLAGS_COMPARED = 0x8d5 | 0x400 | 0x40000 | 0x200000;
export const MODES: ExecMode[] = ['interp', 'one-insn', 'jit'];
/** Trap number for "the snippet ran to its end" and for "it did not finish in time". */
export const NO_FAULT = -1;
export const TIMEOUT = -2;

export interface MachineState {
  /** RAX..R15 as lo/hi int32 pairs (the layout of Cpu.s); RSP is always GUEST_RSP. */
  gpr: Int32Array;
  rflags: number;
  /** FXSAVE image: FCW, FSW, abridged FTW, MXCSR, ST0-7 (stack order), XMM0-15. */
  fx: Uint8Array;
  /** Memory preset in scratch or stack: address → byte (everything else is zero). */
  mem: Map<number, number>;
}

export interface Outcome {
  /** x86 vector of the fault that ended the snippet, NO_FAULT or TIMEOUT. */
  trap: number;
  /** CR2 for #PF. */
  faultAddr: number;
  /** RIP (absolute) where the snippet stopped: the end of the code, or the faulting instruction. */
  rip: number;
  gpr: Int32Array;
  rflags: number;
  fx: Uint8Array;
  /** Bytes of scratch and stack that differ from the preset image. */
  memDiff: Map<number, number>;
}

export function defaultState(): MachineState {
  const fx = new Uint8Array(512);
  const dv = new DataView(fx.buffer);
  dv.setUint16(0, 0x037f, true);
  dv.setUint32(24, 0x1f80, true);
  dv.setUint32(28, 0xffff, true);
  const gpr = new Int32Array(32);
  gpr[8] = GUEST_RSP;
  return { gpr, rflags: 0x2, fx, mem: new Map() };
}

export function cloneState(s: MachineState): MachineState {
  return { gpr: s.gpr.slice(), rflags: s.rflags, fx: s.fx.slice(), mem: new Map(s.mem) };
}

// ---- columns: the textual form of one piece of state ----

const GPR_INDEX = new Map(REG_NAMES64.map((n, i) => [n, i]));

function hex64(lo: number, hi: number): string {
  return hi ? (hi >>> 0).toString(16) + (lo >>> 0).toString(16).padStart(8, '0') : (lo >>> 0).toString(16);
}

function parseHex64(s: string): [number, number] {
  const h = s.padStart(16, '0');
  return [parseInt(h.slice(8), 16) | 0, parseInt(h.slice(0, 8), 16) | 0];
}

function bytesHex(b: ArrayLike<number>, from: number, len: number, reverse: boolean): string {
  let out = '';
  for (let i = 0; i < len; i++) out += b[from + (reverse ? len - 1 - i : i)].toString(16).padStart(2, '0');
  return out;
}

function parseMemCol(col: string): [number, number] {
  const [a, l] = col.slice(1).split(':');
  return [parseInt(a, 16), parseInt(l, 10)];
}

/** Byte offset of a column inside the FXSAVE image, its length, and whether it is a little-endian number. */
function fxField(col: string, ftop: number): [number, number] | null {
  if (col === 'fcw') return [0, 2];
  if (col === 'fsw') return [2, 2];
  if (col === 'ftw') return [4, 1];
  if (col === 'mxcsr') return [24, 4];
  let m = /^xmm(\d+)$/.exec(col);
  if (m) return [160 + 16 * +m[1], 16];
  m = /^st(\d)$/.exec(col);
  if (m) return [32 + 16 * +m[1], 10];
  void ftop;
  return null;
}

type StateLike = { gpr: Int32Array; rflags: number; fx: Uint8Array };

/** The value of a column in a state (memory columns read `mem`, a full byte map). */
export function readColumn(st: StateLike, mem: (a: number) => number, col: string): string {
  const r = GPR_INDEX.get(col);
  if (r !== undefined) return hex64(st.gpr[2 * r], st.gpr[2 * r + 1]);
  if (col === 'flags') return (st.rflags >>> 0).toString(16);
  if (col[0] === 'm') {
    const [a, l] = parseMemCol(col);
    let out = '';
    for (let i = 0; i < l; i++) out += mem(a + i).toString(16).padStart(2, '0');
    return out;
  }
  const f = fxField(col, 0);
  if (!f) throw new Error(`unknown state column '${col}'`);
  return bytesHex(st.fx, f[0], f[1], true);
}

export function writeColumn(st: MachineState, col: string, v: string): void {
  const r = GPR_INDEX.get(col);
  if (r !== undefined) {
    // RSP appears in outcomes only: both machines start every snippet with RSP = GUEST_RSP.
    const [lo, hi] = parseHex64(v);
    st.gpr[2 * r] = lo;
    st.gpr[2 * r + 1] = hi;
    return;
  }
  if (col === 'flags') {
    st.rflags = parseInt(v, 16) | 0x2;
    return;
  }
  if (col[0] === 'm') {
    const [a, l] = parseMemCol(col);
    for (let i = 0; i < l; i++) st.mem.set(a + i, parseInt(v.slice(2 * i, 2 * i + 2), 16));
    return;
  }
  const f = fxField(col, 0);
  if (!f) throw new Error(`unknown state column '${col}'`);
  const h = v.padStart(2 * f[1], '0');
  for (let i = 0; i < f[1]; i++) st.fx[f[0] + f[1] - 1 - i] = parseInt(h.slice(2 * i, 2 * i + 2), 16);
}

/** The same as readColumn for an outcome whose memory is "initial image + diff". */
export function outcomeColumn(o: Outcome, init: MachineState, col: string): string {
  return readColumn(o, (a) => o.memDiff.get(a) ?? init.mem.get(a) ?? 0, col);
}

/** An outcome built from the initial state plus the given column values (a vector's expectation). */
export function expectedOutcome(init: MachineState, cols: string[], values: string[], trap: number, rip: number, faultAddr: number): Outcome {
  const st = cloneState(init);
  st.mem = new Map();
  const o: Outcome = { trap, rip, faultAddr, gpr: st.gpr, rflags: st.rflags, fx: st.fx, memDiff: new Map() };
  cols.forEach((c, i) => {
    if (values[i] === '?') return;
    if (c[0] === 'm') {
      const [a, l] = parseMemCol(c);
      for (let k = 0; k < l; k++) {
        const b = parseInt(values[i].slice(2 * k, 2 * k + 2), 16);
        if (b !== (init.mem.get(a + k) ?? 0)) o.memDiff.set(a + k, b);
      }
    } else {
      writeColumn(st, c, values[i]);
    }
  });
  o.gpr = st.gpr;
  o.rflags = st.rflags;
  o.fx = st.fx;
  return o;
}

// ---- comparing outcomes ----

export interface CompareOptions {
  /** RFLAGS bits to ignore (the row's undefined flags). */
  undefFlags: number;
  /** Columns whose value is undefined for this case. */
  undefCols?: string[];
  /**
   * XMM registers hold single-precision approximations (RCPPS/RSQRTPS and their scalar forms):
   * compare each 32-bit lane as a float within this relative tolerance instead of bit for bit.
   */
  approxRelError?: number;
}

const f32view = new DataView(new ArrayBuffer(4));
/** Do two XMM column values (32 hex digits) agree lane by lane within a relative error? */
function lanesClose(e: string, a: string, rel: number): boolean {
  for (let i = 0; i < 32; i += 8) {
    const eb = e.slice(i, i + 8);
    const ab = a.slice(i, i + 8);
    if (eb === ab) continue;
    f32view.setUint32(0, parseInt(eb, 16));
    const ev = f32view.getFloat32(0);
    f32view.setUint32(0, parseInt(ab, 16));
    const av = f32view.getFloat32(0);
    if (!Number.isFinite(ev) || !Number.isFinite(av) || ev === 0 || Math.abs(av - ev) > rel * Math.abs(ev)) return false;
  }
  return true;
}

/** Human-readable differences between an expected and an actual outcome (empty when they agree). */
export function diffOutcomes(exp: Outcome, act: Outcome, init: MachineState, opt: CompareOptions): string[] {
  const out: string[] = [];
  const skip = new Set(opt.undefCols ?? []);
  if (exp.trap !== act.trap) out.push(`fault: expected ${trapText(exp)} got ${trapText(act)}`);
  else if (exp.trap === Vec.PF && exp.faultAddr !== act.faultAddr) out.push(`#PF address: expected ${exp.faultAddr.toString(16)} got ${act.faultAddr.toString(16)}`);
  if (exp.rip !== act.rip) out.push(`rip: expected ${exp.rip.toString(16)} got ${act.rip.toString(16)}`);
  for (let r = 0; r < 16; r++) {
    const n = REG_NAMES64[r];
    if (skip.has(n)) continue;
    if (exp.gpr[2 * r] !== act.gpr[2 * r] || exp.gpr[2 * r + 1] !== act.gpr[2 * r + 1])
      out.push(`${n}: expected ${hex64(exp.gpr[2 * r], exp.gpr[2 * r + 1])} got ${hex64(act.gpr[2 * r], act.gpr[2 * r + 1])}`);
  }
  const fm = FLAGS_COMPARED & ~opt.undefFlags;
  if (!skip.has('flags') && (exp.rflags & fm) !== (act.rflags & fm))
    out.push(`flags: expected ${(exp.rflags & fm).toString(16)} got ${(act.rflags & fm).toString(16)} (mask ${fm.toString(16)})`);
  const fxCols = ['fcw', 'fsw', 'ftw', 'mxcsr', ...Array.from({ length: 16 }, (_, i) => `xmm${i}`)];
  // ST registers only where the tag says valid: an empty register's stale bytes are not architectural.
  const ftw = exp.fx[4];
  const top = (((exp.fx[3] << 8) | exp.fx[2]) >> 11) & 7;
  for (let i = 0; i < 8; i++) if (ftw & (1 << ((top + i) & 7))) fxCols.push(`st${i}`);
  for (const c of fxCols) {
    if (skip.has(c)) continue;
    const e = readColumn(exp, () => 0, c);
    const a = readColumn(act, () => 0, c);
    if (e !== a && !(opt.approxRelError && c.startsWith('xmm') && lanesClose(e, a, opt.approxRelError))) out.push(`${c}: expected ${e} got ${a}`);
  }
  const addrs = new Set([...exp.memDiff.keys(), ...act.memDiff.keys()]);
  const bad = [...addrs].filter((a) => (exp.memDiff.get(a) ?? init.mem.get(a) ?? 0) !== (act.memDiff.get(a) ?? init.mem.get(a) ?? 0)).sort((x, y) => x - y);
  if (bad.length) {
    const a0 = bad[0];
    const show = (o: Outcome) => bad.slice(0, 16).map((a) => (o.memDiff.get(a) ?? init.mem.get(a) ?? 0).toString(16).padStart(2, '0')).join('');
    out.push(`memory: ${bad.length} byte(s) differ from 0x${a0.toString(16)}: expected ${show(exp)} got ${show(act)}`);
  }
  return out;
}

export function trapText(o: { trap: number; faultAddr: number; rip: number }): string {
  if (o.trap === NO_FAULT) return 'none';
  if (o.trap === TIMEOUT) return 'timeout';
  return `#${o.trap}${o.trap === Vec.PF ? ` at ${o.faultAddr.toString(16)}` : ''} (rip ${o.rip.toString(16)})`;
}

// ---- the host CPU ----

function projectRoot(): string {
  let d = path.dirname(fileURLToPath(import.meta.url));
  while (!fs.existsSync(path.join(d, 'package.json'))) {
    const up = path.dirname(d);
    if (up === d) throw new Error('native-runner: project root not found');
    d = up;
  }
  return d;
}

let runnerPath = '';

/** Build native-runner.c (once per source version) into test/.build and return the binary's path. */
export function nativeRunner(): string {
  if (runnerPath) return runnerPath;
  const root = projectRoot();
  const src = path.join(root, 'tools', 'native-runner.c');
  const hash = createHash('sha256').update(fs.readFileSync(src)).digest('hex').slice(0, 12);
  const dir = path.join(root, 'test', '.build');
  const bin = path.join(dir, `native-runner-${hash}`);
  if (!fs.existsSync(bin)) {
    fs.mkdirSync(dir, { recursive: true });
    const tmp = `${bin}.${process.pid}.tmp`;
    execFileSync('gcc', ['-O2', '-Wall', '-o', tmp, src]);
    fs.renameSync(tmp, bin);
  }
  return (runnerPath = bin);
}

export interface NativeCase {
  code: Uint8Array;
  state: MachineState;
}

/** Run cases on the host CPU (one process for the whole batch). */
export function runNative(cases: NativeCase[]): Outcome[] {
  const parts: Buffer[] = [];
  for (const c of cases) {
    const head = Buffer.alloc(4);
    head.writeUInt32LE(c.code.length);
    const regs = Buffer.alloc(136);
    for (let i = 0; i < 32; i++) regs.writeInt32LE(c.state.gpr[i], 4 * i);
    regs.writeUInt32LE(c.state.rflags >>> 0, 128);
    const chunks = memChunks(c.state.mem);
    const mem: Buffer[] = [];
    const n = Buffer.alloc(4);
    n.writeUInt32LE(chunks.length);
    for (const [a, bytes] of chunks) {
      const h = Buffer.alloc(12);
      h.writeUInt32LE(a >>> 0, 0);
      h.writeUInt32LE(Math.floor(a / 4294967296), 4);
      h.writeUInt32LE(bytes.length, 8);
      mem.push(h, Buffer.from(bytes));
    }
    parts.push(head, Buffer.from(c.code), regs, Buffer.from(c.state.fx), n, ...mem);
  }
  const r = spawnSync(nativeRunner(), { input: Buffer.concat(parts), maxBuffer: 1 << 30 });
  if (r.status !== 0) throw new Error(`native-runner exited with ${r.status ?? r.signal}: ${r.stderr}`);
  const out = r.stdout;
  const res: Outcome[] = [];
  let p = 0;
  // Addresses as svmjit holds them: the signed 64-bit value as a JS number.
  const u64 = (at: number) => Number(out.readBigInt64LE(at));
  for (let k = 0; k < cases.length; k++) {
    const trap = out.readInt32LE(p);
    const faultAddr = u64(p + 16);
    const rip = u64(p + 24);
    p += 32;
    const gpr = new Int32Array(32);
    for (let i = 0; i < 32; i++) gpr[i] = out.readInt32LE(p + 4 * i);
    const rflags = out.readUInt32LE(p + 128);
    p += 136;
    const fx = new Uint8Array(out.subarray(p, p + 512));
    p += 512;
    const runs = out.readUInt32LE(p);
    p += 4;
    const memDiff = new Map<number, number>();
    for (let i = 0; i < runs; i++) {
      const a = u64(p);
      const len = out.readUInt32LE(p + 8);
      p += 12;
      for (let j = 0; j < len; j++) memDiff.set(a + j, out[p + j]);
      p += len;
    }
    res.push({ trap, faultAddr, rip, gpr, rflags, fx, memDiff });
  }
  if (p !== out.length) throw new Error('native-runner: output length mismatch');
  return res;
}

function memChunks(mem: Map<number, number>): [number, number[]][] {
  const addrs = [...mem.keys()].sort((a, b) => a - b);
  const chunks: [number, number[]][] = [];
  for (const a of addrs) {
    const last = chunks[chunks.length - 1];
    if (last && last[0] + last[1].length === a) last[1].push(mem.get(a)!);
    else chunks.push([a, [mem.get(a)!]]);
  }
  return chunks;
}

// ---- svmjit ----

const REGIONS: [number, number][] = [
  [DATA, DATA_SIZE],
  [STACK_BASE, STACK_SIZE],
];

/**
 * svmjit with one snippet loaded: reused for every case of that snippet, so each execution
 * mode translates (and compiles) the code once and later cases hit the translation cache.
 */
export class SvmjitRunner {
  readonly cpu: Cpu;
  readonly engine: Engine;
  private readonly mem: Memory;
  private readonly end: number;
  /** Int32 views of the physical pages behind each region, and their preset image. */
  private readonly views: Int32Array[];
  private readonly images: Int32Array[];

  constructor(code: Uint8Array, mode: ExecMode) {
    this.mem = new Memory(0x100000);
    const withEnd = new Uint8Array(code.length + 2);
    withEnd.set(code);
    withEnd.set([0x0f, 0x0b], code.length); // ud2 marks the end (native runs jump out here)
    this.end = CODE + code.length;
    this.mem.map(CODE, Math.ceil(withEnd.length / 4096) * 4096, Prot.READ | Prot.EXEC);
    this.mem.poke(CODE, withEnd);
    for (const [a, l] of REGIONS) this.mem.map(a, l, Prot.READ | Prot.WRITE);
    // Physical pages come from one buffer; a region's pages need not be contiguous.
    this.views = [];
    this.images = [];
    for (const [a, l] of REGIONS)
      for (let off = 0; off < l; off += 4096) {
        const phys = this.mem.translate(a + off, 0);
        this.views.push(new Int32Array(this.mem.ram, phys, 1024));
        this.images.push(new Int32Array(1024));
      }
    this.cpu = new Cpu(this.mem);
    this.cpu.hooks.cpuid = () => {
      throw new CpuException(Vec.UD);
    };
    this.engine = new Engine(this.cpu, {
      mode, maxInsns: 100_000, jitThreshold: mode === 'interp' ? Infinity : 1, debug: new Set(), log: () => {}, verify: true,
    });
  }

  run(init: MachineState): Outcome {
    const cpu = this.cpu;
    const s = cpu.s;
    s.fill(0);
    s.set(init.gpr, S.GPR);
    s[2 * 4] = GUEST_RSP;
    s[2 * 4 + 1] = 0;
    setRflags(cpu, (init.rflags & FLAGS_COMPARED) | 0x202);
    fxToCpu(init.fx, cpu);
    cpu.st.rip = CODE;
    this.loadMemory(init.mem);
    let trap = NO_FAULT;
    let faultAddr = 0;
    try {
      for (;;) this.engine.run(); // returns only for exits (syscall …), which snippets do not make
    } catch (e) {
      if (e instanceof InsnLimit) trap = TIMEOUT;
      else if (e instanceof CpuException) {
        if (!(e.vector === Vec.UD && cpu.st.rip === this.end)) {
          trap = e.vector;
          faultAddr = e.address;
        }
      } else throw e;
    }
    const gpr = s.slice(S.GPR, S.GPR + 32);
    return { trap, faultAddr, rip: cpu.st.rip, gpr, rflags: getRflags(cpu), fx: cpuToFx(cpu), memDiff: this.memoryDiff() };
  }

  private loadMemory(mem: Map<number, number>): void {
    for (const img of this.images) img.fill(0);
    for (const [a, b] of mem) {
      let base = 0;
      for (const [ra, rl] of REGIONS) {
        if (a >= ra && a < ra + rl) {
          const off = base + (a - ra);
          const img = this.images[off >> 12];
          const u8 = new Uint8Array(img.buffer);
          u8[off & 4095] = b;
        }
        base += rl;
      }
    }
    for (let i = 0; i < this.views.length; i++) this.views[i].set(this.images[i]);
  }

  private memoryDiff(): Map<number, number> {
    const diff = new Map<number, number>();
    let page = 0;
    for (const [ra, rl] of REGIONS)
      for (let off = 0; off < rl; off += 4096, page++) {
        const v = this.views[page];
        const img = this.images[page];
        for (let w = 0; w < 1024; w++) {
          if (v[w] === img[w]) continue;
          for (let k = 0; k < 4; k++) {
            const nb = (v[w] >>> (8 * k)) & 0xff;
            if (nb !== ((img[w] >>> (8 * k)) & 0xff)) diff.set(ra + off + 4 * w + k, nb);
          }
        }
      }
    return diff;
  }
}

/** svmjit state from an FXSAVE image (x87 registers: image in stack order, svmjit physical). */
export function fxToCpu(fx: Uint8Array, cpu: Cpu): void {
  const dv = new DataView(fx.buffer, fx.byteOffset, 512);
  const s = cpu.s;
  s[S.FPU_CW] = dv.getUint16(0, true);
  const fsw = dv.getUint16(2, true);
  s[S.FPU_SW] = fsw;
  s[S.FPU_TAG] = fx[4];
  s[S.MXCSR] = dv.getUint32(24, true);
  const top = (fsw >> 11) & 7;
  for (let i = 0; i < 8; i++) {
    const p = S.FPR + 4 * ((top + i) & 7);
    s[p] = dv.getInt32(32 + 16 * i, true);
    s[p + 1] = dv.getInt32(36 + 16 * i, true);
    s[p + 2] = dv.getUint16(40 + 16 * i, true);
    s[p + 3] = 0;
  }
  for (let i = 0; i < 64; i++) s[S.XMM + i] = dv.getInt32(160 + 4 * i, true);
}

export function cpuToFx(cpu: Cpu): Uint8Array {
  const fx = new Uint8Array(512);
  const dv = new DataView(fx.buffer);
  const s = cpu.s;
  dv.setUint16(0, s[S.FPU_CW] & 0xffff, true);
  dv.setUint16(2, s[S.FPU_SW] & 0xffff, true);
  fx[4] = s[S.FPU_TAG] & 0xff;
  dv.setUint32(24, s[S.MXCSR] >>> 0, true);
  dv.setUint32(28, 0xffff, true);
  const top = (s[S.FPU_SW] >> 11) & 7;
  for (let i = 0; i < 8; i++) {
    const p = S.FPR + 4 * ((top + i) & 7);
    dv.setInt32(32 + 16 * i, s[p], true);
    dv.setInt32(36 + 16 * i, s[p + 1], true);
    dv.setUint16(40 + 16 * i, s[p + 2] & 0xffff, true);
  }
  for (let i = 0; i < 64; i++) dv.setInt32(160 + 4 * i, s[S.XMM + i], true);
  return fx;
}
