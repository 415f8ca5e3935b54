/**
 * The execution engine: translation cache, dispatcher and self-modifying-code handling, shared
 * by every personality (user-mode Linux now, the bare-metal machine later).
 *
 * Units are keyed by the guest-physical address of their first byte (user mode has a single
 * CPU mode, so the mode bits are constant here). A direct-mapped cache keyed by the virtual RIP
 * sits in front of the Map and is dropped whenever the address-space mapping changes. Direct
 * exits of a unit remember their successor (chaining), so the common path from one block to
 * the next costs an array load and a validity check, not a lookup.
 *
 * Tiering: a block is interpreted from its IR until it has run `jitThreshold` times, then
 * compiled to JS: as the head of a region with its hot successors when it has any (formRegion),
 * else alone, and as a region head later if it stays hot (REGION_AT). `--no-jit` never compiles; `--one-insn-per-tb` makes every block one
 * instruction long.
 */
import { type Cpu, CpuMode, codeBits, is64BitCode } from '../cpu/cpu.js';
import { CpuException, NonCanonical, RepPause, Vec } from '../cpu/exceptions.js';
import { decode } from '../frontend/decoder.js';
import { OpKind, Seg } from '../frontend/insn.js';
import { PAGE_SIZE, Prot } from '../cpu/memory.js';
import { formatCpuState, S, SEG_STRIDE, SegField, SegReg } from '../cpu/state.js';
import { disassemble } from '../frontend/disasm.js';
import type { IrBlock } from '../ir/ir.js';
import { printBlock } from '../ir/ir.js';
import { interpretBlock } from '../ir/interp.js';
import { liftBlock, MAX_BLOCK_INSNS } from '../ir/lift.js';
import { optimize } from '../ir/passes.js';
import { type BlockFn, compileBlock, compileUnit } from '../jit/codegen.js';
import { Exit, Op } from '../ir/ops.js';
import { JitRuntime } from '../jit/runtime.js';
import type { GuestProfiler } from '../profile/profiler.js';

export type ExecMode = 'jit' | 'interp' | 'one-insn';

export interface EngineOptions {
  mode: ExecMode;
  /** Stop after this many guest instructions (0 = no limit). */
  maxInsns: number;
  /** Executions before a block is compiled (JIT modes). */
  jitThreshold: number;
  /** -d categories. */
  debug: Set<string>;
  log: (line: string) => void;
  /** Symbol lookup for unit names (flamegraphs, logs). */
  symbolize?: (addr: number) => string | undefined;
  verify?: boolean;
  /** Guest profiler: translated code tracks calls, the dispatcher takes samples. */
  profiler?: GuestProfiler | null;
}

/** Internal jumps per unit entry while profiling, so samples reach every hot loop often. */
const PROFILE_LOOP_BUDGET = 256;
/** Internal jumps per unit entry in machine mode (see compileOptions). */
const MACHINE_LOOP_BUDGET = 4096;

export class Block {
  fn: BlockFn | null = null;
  runs = 0;
  valid = true;
  /** When this block heads a compiled region: its member blocks (itself first). */
  region: Block[] | null = null;
  /** Region heads whose compiled code includes this block. */
  readonly inRegions = new Set<Block>();
  links: (Block | undefined)[] = [undefined, undefined];
  linkEpoch = 0;
  constructor(
    readonly vaddr: number,
    /** Cache key: guest-physical address of the first byte * MODE_KEYS + the CpuMode it was translated for. */
    readonly key: number,
    readonly ir: IrBlock,
    /** Physical byte ranges the block's code came from: [start, len, start, len, …]. */
    readonly ranges: number[],
  ) {}
}

export interface EngineStats {
  blocksTranslated: number;
  blocksCompiled: number;
  regionsCompiled: number;
  compileMs: number;
  cacheHits: number;
  cacheMisses: number;
  invalidations: number;
}

/** Thrown when the guest has run past --max-insns. */
export class InsnLimit extends Error {}

/** Instructions whose implicit memory access is on the stack (non-canonical: #SS). */
const STACK_OPS = new Set(['push', 'pop', 'call', 'ret', 'enter', 'leave', 'pushf', 'popf']);
/** String instructions address DS:rSI / ES:rDI, never the stack segment. */
const STRING_OPS = new Set(['movs', 'cmps', 'stos', 'lods', 'scas']);

/** The profiler's sample flag when there is no profiler: always 0, shared (dispatch runs once per machine turn). */
const NO_TICK = new Int32Array(1);

const JMP_CACHE = 4096;
/** CpuMode values are below this: cache keys are phys * MODE_KEYS + mode. */
const MODE_KEYS = 512;
/**
 * Executions of a block before it is compiled (the CLIs' default for --jit-threshold). Until
 * then the interpreter runs it: compiling costs about 0.3-1 ms of codegen and V8 parsing per
 * block, which code that runs a few dozen times never earns back, and start-up code is mostly
 * such (hello-world compiled 21 blocks for 30 ms of its 60 at a threshold of 2). Measured at
 * scale 1 against 2: compile time 1.5-3x lower, bench's `memory` 0.80x the time, the others
 * within noise.
 */
export const DEFAULT_JIT_THRESHOLD = 100;
/** Dispatcher entries of a compiled block before it is recompiled as the head of a region. */
const REGION_AT = 64;
/** Most blocks in one region. */
const REGION_MAX = 24;
/**
 * Most IR ops in one region, a HELPER op counting as HELPER_COST: a helper call spills and
 * reloads the registers around it, and an SSE instruction the JIT runs inline (jit/vector.ts)
 * emits a dozen lane statements. V8 will not optimise a function past a bytecode size, and an
 * unoptimised region is slower than the blocks it replaced: keep regions well below that.
 * (At 12, the vectorised loop of bench's `integer` grew past it and ran 3.5x slower.) Small
 * regions also optimise sooner and deoptimise less: at 1200 rather than 300, `integer` ran
 * 1.1-1.2x slower at scales 1-10 and compiled 20% more; the head always joins whatever its size.
 */
const REGION_MAX_COST = 300;
const HELPER_COST = 40;

/** Where a block's direct exits go (its jump or branch targets; none for indirect exits). */
function directTargets(ir: IrBlock): number[] {
  const last = ir.code[ir.code.length - 1];
  return last.op === Op.JUMP ? [last.imm] : last.op === Op.BRANCH ? [last.imm, last.imm2] : [];
}

function unitCost(ir: IrBlock): number {
  let c = 0;
  for (const i of ir.code) c += i.op === Op.HELPER ? HELPER_COST : 1;
  return c;
}

export class Engine {
  readonly rt: JitRuntime;
  private readonly cache = new Map<number, Block>();
  private readonly pageBlocks = new Map<number, Set<Block>>();
  private readonly jmpTag = new Float64Array(JMP_CACHE).fill(NaN);
  private readonly jmpBlk: (Block | undefined)[] = new Array(JMP_CACHE);
  private linkEpoch = 1;
  /**
   * Return to the caller (exit reason Exit.NONE) once this many instructions have retired:
   * the machine's timers use it to get control back in time. Checked between units.
   */
  yieldAt = Infinity;
  /** The CpuMode of each direct-mapped cache entry. */
  private readonly jmpModes = new Int32Array(JMP_CACHE);
  readonly stats: EngineStats = { blocksTranslated: 0, blocksCompiled: 0, regionsCompiled: 0, compileMs: 0, cacheHits: 0, cacheMisses: 0, invalidations: 0 };

  constructor(
    readonly cpu: Cpu,
    readonly opts: EngineOptions,
  ) {
    this.rt = new JitRuntime(cpu);
    cpu.mem.onCodeWrite = (phys, len) => this.invalidate(phys, len);
    cpu.mem.onMapChange = () => this.flushVirtual();
  }

  private flushVirtual(): void {
    this.jmpTag.fill(NaN);
    this.linkEpoch++;
  }

  /**
   * The linear address of code offset `rip`: outside 64-bit mode RIP is an offset in CS
   * (whose base is 0 in 64-bit mode and in flat protected mode).
   */
  linearRip(): number {
    return this.linear(this.cpu.st.rip);
  }

  /** Is the instruction at code offset rip an IRET (which loads RF rather than clearing it)? */
  isIretAt(rip: number): boolean {
    const mem = this.cpu.mem;
    try {
      return decode((a) => mem.fetchByte(this.linear(a)), rip, codeBits(this.cpu.mode)).mnem === 'iret';
    } catch {
      return false;
    }
  }

  private linear(rip: number): number {
    const cpu = this.cpu;
    if (is64BitCode(cpu.mode)) return rip;
    const s = cpu.s;
    return ((s[S.SEG + SEG_STRIDE * SegReg.CS + SegField.BASE_LO] >>> 0) + rip) % 4294967296;
  }

  /**
   * The block at the current RIP. The direct-mapped cache is tagged with the linear address
   * and the CPU mode, so switching modes (SVM world switches, real-mode segment changes) needs
   * no flush; chains need none either, since a unit's direct exits never change the mode.
   */
  lookup(): Block {
    const cpu = this.cpu;
    const rip = cpu.st.rip;
    const lin = this.linear(rip);
    const slot = (lin | 0) & (JMP_CACHE - 1);
    if (this.jmpTag[slot] === lin && this.jmpModes[slot] === cpu.mode) {
      const b = this.jmpBlk[slot]!;
      if (b.valid) {
        this.stats.cacheHits++;
        return b;
      }
    }
    const phys = cpu.mem.translateFetch(lin);
    const key = phys * MODE_KEYS + cpu.mode;
    let b = this.cache.get(key);
    if (b && b.valid) this.stats.cacheHits++;
    else b = this.translate(rip, phys);
    this.jmpTag[slot] = lin;
    this.jmpModes[slot] = cpu.mode;
    this.jmpBlk[slot] = b;
    return b;
  }

  private translate(rip: number, phys: number): Block {
    this.stats.cacheMisses++;
    this.stats.blocksTranslated++;
    const cpu = this.cpu;
    const mem = cpu.mem;
    const ranges: number[] = [];
    const fetch = (a: number) => mem.fetchByte(this.linear(a));
    const ir = liftBlock(fetch, rip, this.opts.mode === 'one-insn' ? 1 : MAX_BLOCK_INSNS, !!this.opts.profiler, cpu.mode, cpu.machine);
    optimize(ir);
    for (const g of ir.insns) {
      const p0 = mem.translateFetch(this.linear(g.addr));
      const firstLen = Math.min(g.len, PAGE_SIZE - (p0 % PAGE_SIZE));
      ranges.push(p0, firstLen);
      if (firstLen < g.len) ranges.push(mem.translateFetch(this.linear(g.addr + firstLen)), g.len - firstLen);
    }
    const b = new Block(rip, phys * MODE_KEYS + cpu.mode, ir, ranges);
    for (let i = 0; i < ranges.length; i += 2) {
      mem.markCode(ranges[i], ranges[i + 1]);
      const ppn = Math.floor(ranges[i] / PAGE_SIZE);
      let set = this.pageBlocks.get(ppn);
      if (!set) this.pageBlocks.set(ppn, (set = new Set()));
      set.add(b);
    }
    this.cache.set(b.key, b);
    const d = this.opts.debug;
    if (d.has('in_asm')) {
      this.opts.log(`IN: ${this.nameOf(rip)}`);
      for (const g of ir.insns) this.opts.log(`0x${g.addr.toString(16).padStart(16, '0')}:  ${disassemble(g)}`);
      this.opts.log('');
    }
    if (d.has('ir')) this.opts.log(`IR 0x${rip.toString(16)}:\n${printBlock(ir)}\n`);
    return b;
  }

  private compile(b: Block): void {
    const t0 = performance.now();
    const name = `blk_${this.nameOf(b.vaddr).replace(/[^A-Za-z0-9_$]/g, '_')}`;
    const c = compileBlock(b.ir, this.rt, name, this.compileOptions());
    b.fn = c.fn;
    b.runs = 0; // from here on it counts entries of the compiled block, towards REGION_AT
    // Compiled units number their exits differently from the interpreter (internal jumps have none).
    b.links = new Array(Math.max(c.exits, 2));
    this.stats.blocksCompiled++;
    this.stats.compileMs += performance.now() - t0;
    if (this.opts.debug.has('js')) this.opts.log(`JS 0x${b.vaddr.toString(16)}:\n${c.source}\n`);
  }

  private compileOptions() {
    // A machine guest's loop must come back to the dispatcher now and then, or a timer
    // interrupt it is waiting for would never be delivered.
    const budget = this.opts.profiler ? PROFILE_LOOP_BUDGET : this.cpu.machine ? MACHINE_LOOP_BUDGET : undefined;
    return { verify: this.opts.verify, loopBudget: budget };
  }

  /** Run exactly one guest instruction, interpreted and not cached (interrupt shadows, single-stepping). */
  step(): number {
    const cpu = this.cpu;
    const mem = cpu.mem;
    const ir = liftBlock((a) => mem.fetchByte(this.linear(a)), cpu.st.rip, 1, false, cpu.mode, cpu.machine);
    optimize(ir);
    const r = interpretBlock(cpu, ir);
    return r === -2 ? cpu.s[S.EXIT_REASON] : Exit.NONE;
  }

  /** The translated block at a guest address, or null when there is none (not run yet, or its code is not fetchable). */
  private cachedBlockAt(addr: number): Block | null {
    let phys: number;
    try {
      phys = this.cpu.mem.translateFetch(this.linear(addr));
    } catch {
      return null;
    }
    const b = this.cache.get(phys * MODE_KEYS + this.cpu.mode);
    return b && b.valid ? b : null;
  }

  /**
   * Compile a hot block together with the blocks its direct exits reach (breadth-first), so a
   * loop spread over several blocks runs inside one JS function; false when there is nothing
   * to join it. Only blocks that have run join: a path never taken so far stays an exit, since
   * in the region it would only add code V8 has no type feedback for, which deoptimises the
   * region when first taken and makes it slower to optimise (with every reachable block, at
   * scale 10 bench's `memory` took 1.3x and `integer` 1.05x the time, and compiling took twice
   * as long). Keeping only the blocks on a cycle through the head was slower still (`integer`
   * 1.17x): paths out of a loop often lead to the next hot one.
   */
  private formRegion(head: Block): boolean {
    const members: Block[] = [head];
    const seen = new Set<number>([head.vaddr]);
    let cost = unitCost(head.ir);
    for (let i = 0; i < members.length && members.length < REGION_MAX; i++) {
      for (const t of directTargets(members[i].ir)) {
        if (seen.has(t) || members.length >= REGION_MAX) continue;
        seen.add(t);
        const b = this.cachedBlockAt(t);
        if (!b || (b.fn === null && b.runs === 0) || cost + unitCost(b.ir) > REGION_MAX_COST) continue;
        cost += unitCost(b.ir);
        members.push(b);
      }
    }
    // Any two blocks are worth it: a loop among them stays inside, and a hot path through them
    // runs without returning to the dispatcher in between.
    if (members.length < 2 || !head.valid) return false;
    const t0 = performance.now();
    const c = compileUnit(members.map((m) => m.ir), this.rt, `rgn_${this.nameOf(head.vaddr).replace(/[^A-Za-z0-9_$]/g, '_')}`, this.compileOptions());
    head.fn = c.fn;
    head.links = new Array(Math.max(c.exits, 2));
    head.region = members;
    for (const m of members) m.inRegions.add(head);
    this.stats.regionsCompiled++;
    this.stats.compileMs += performance.now() - t0;
    if (this.opts.debug.has('js')) this.opts.log(`JS region 0x${head.vaddr.toString(16)} (${members.length} blocks):\n${c.source}\n`);
    return true;
  }

  nameOf(addr: number): string {
    const sym = this.opts.symbolize?.(addr);
    return sym ?? `0x${addr.toString(16)}`;
  }

  /** Drop every unit whose code overlaps physical [phys, phys+len). */
  invalidate(phys: number, len: number): void {
    const mem = this.cpu.mem;
    for (let ppn = Math.floor(phys / PAGE_SIZE); ppn <= Math.floor((phys + len - 1) / PAGE_SIZE); ppn++) {
      const set = this.pageBlocks.get(ppn);
      if (!set) continue;
      let dropped = false;
      for (const b of set) {
        if (!b.valid) {
          set.delete(b);
          continue;
        }
        let hit = false;
        for (let i = 0; i < b.ranges.length; i += 2) if (b.ranges[i] < phys + len && phys < b.ranges[i] + b.ranges[i + 1]) hit = true;
        if (!hit) continue;
        b.valid = false;
        dropped = true;
        for (const head of b.inRegions) head.valid = false; // its compiled code includes b
        b.inRegions.clear();
        this.stats.invalidations++;
        this.rt.codeEpoch[0]++;
        if (this.cache.get(b.key) === b) this.cache.delete(b.key);
        for (let i = 0; i < b.ranges.length; i += 2) this.pageBlocks.get(Math.floor(b.ranges[i] / PAGE_SIZE))?.delete(b);
      }
      if (!dropped) continue;
      // Re-derive the page's code map from the blocks that remain.
      mem.unmarkCode(ppn * PAGE_SIZE, PAGE_SIZE);
      for (const b of set)
        for (let i = 0; i < b.ranges.length; i += 2) if (Math.floor(b.ranges[i] / PAGE_SIZE) === ppn) mem.markCode(b.ranges[i], b.ranges[i + 1]);
    }
    this.flushVirtual();
  }

  /**
   * Run guest code until a block exits with a reason (returned: the S.EXIT_REASON value) or
   * an exception propagates (a CpuException with precise state, or InsnLimit).
   */
  run(): number {
    try {
      return this.dispatch();
    } catch (e) {
      if (e instanceof NonCanonical) throw this.nonCanonicalFault();
      // A paused REP string instruction: RIP is at it, its progress in the registers.
      if (e instanceof RepPause) return Exit.NONE;
      throw e;
    }
  }

  /**
   * A non-canonical access is #SS(0) when it goes through the stack segment (an RSP/RBP-based
   * operand, or PUSH/POP/CALL/RET's own stack access), else #GP(0). RIP is the faulting
   * instruction, which is decoded again to tell: rare, so nothing on the hot path pays.
   */
  private nonCanonicalFault(): CpuException {
    const mem = this.cpu.mem;
    const insn = decode((a) => mem.fetchByte(this.linear(a)), this.cpu.st.rip, codeBits(this.cpu.mode));
    const mem0 = insn.ops.some((o) => o.kind === OpKind.Mem);
    const viaSS = mem0 && !STRING_OPS.has(insn.mnem) && (insn.base === 4 || insn.base === 5) && insn.seg !== Seg.FS && insn.seg !== Seg.GS;
    const implicitStack = !mem0 && STACK_OPS.has(insn.mnem);
    return new CpuException(viaSS || implicitStack ? Vec.SS : Vec.GP, 0);
  }

  private dispatch(): number {
    const cpu = this.cpu;
    const s = cpu.s;
    const st = cpu.st;
    const interp = this.opts.mode === 'interp';
    const threshold = this.opts.jitThreshold;
    const max = this.opts.maxInsns;
    const trace = this.opts.debug.has('exec');
    const cpuLog = this.opts.debug.has('cpu');
    const prof = this.opts.profiler ?? null;
    const tick = prof ? prof.tick : NO_TICK;
    let b = this.lookup();
    for (;;) {
      if (max && st.icount >= max) throw new InsnLimit(`stopped after ${st.icount} guest instructions (--max-insns ${max})`);
      if (st.icount >= this.yieldAt) return Exit.NONE;
      if (cpuLog) this.opts.log(formatCpuState(cpu));
      if (trace) this.opts.log(`Trace 0x${b.vaddr.toString(16)} [${this.nameOf(b.vaddr)}]`);
      let r: number;
      if (b.fn) {
        if (++b.runs === REGION_AT && !interp && this.opts.mode !== 'one-insn' && !b.region) this.formRegion(b);
        r = (b.fn as BlockFn)();
      } else {
        // A block with hot successors becomes a region at once: compiled alone first, it would
        // be thrown away at REGION_AT (compile time -5 to -35% at scale 1).
        if (!interp && ++b.runs >= threshold && (this.opts.mode === 'one-insn' || !this.formRegion(b))) this.compile(b);
        const compiled = b.fn as BlockFn | null;
        r = compiled ? compiled() : interpretBlock(cpu, b.ir);
      }
      if (tick[0] !== 0) {
        tick[0] = 0;
        prof!.sample(b.vaddr, cpu.st.reg(4));
      }
      if (r >= 0) {
        if (b.linkEpoch !== this.linkEpoch) {
          b.links[0] = b.links[1] = undefined;
          b.linkEpoch = this.linkEpoch;
        }
        let n = b.links[r];
        if (n === undefined || !n.valid) n = b.links[r] = this.lookup();
        b = n;
      } else if (r === -1) b = this.lookup();
      else return s[S.EXIT_REASON];
    }
  }
}

export { CpuException, Prot };
