/**
 * IR → JavaScript. A compiled unit — one block, or a region of several blocks (a hot loop and
 * its neighbours) — becomes one JS function whose guest registers and lazy flags live in JS
 * locals: registers are loaded at entry, written back at exits, around helper calls and when an
 * exception leaves the unit. Jumps between the unit's own blocks stay inside the function
 * (`for (;;) switch (pc)`), so V8 optimises a whole loop with its registers in machine
 * registers; a budget of internal jumps returns to the dispatcher now and then, so --max-insns
 * and a runaway guest are still noticed. Conditions whose producing flags op is in
 * the same block are fused into one comparison (`cmp; jl` → `a < b`); the rest call the
 * flags slow path. The source is built as ESTree (js.ts), printed with astring and compiled
 * with vm.Script under the filename guest://<name>, so profilers show guest names.
 *
 * The emitted function returns the exit index (0/1 for the direct exits a dispatcher can
 * chain, -1 for an indirect jump, -2 for an exit with S.EXIT_REASON set).
 */
import vm from 'node:vm';
import type * as E from 'estree';
import { CpuException } from '../cpu/exceptions.js';
import { ICOUNT_F64, S, SEG_STRIDE, SegField } from '../cpu/state.js';
import { PAGE_SIZE, TLB_MASK } from '../cpu/memory.js';
import { sizeLog, CcOp } from '../cpu/flags.js';
import type { IrBlock, IrInsn } from '../ir/ir.js';
import { AluOp, OPS, Op, Ty, UnOp } from '../ir/ops.js';
import { expr, fn, ifStmt, letDecl, parseScript, print, raw, stmts, tryCatch, num, type Hole } from './js.js';
import type { JitRuntime } from './runtime.js';
import { type Insn, OpKind } from '../frontend/insn.js';
import { SSE_HELPERS } from '../cpu/helpers/sse.js';
import { X87_HELPERS } from '../cpu/helpers/x87.js';
import { GPR_FORMS, inlineVector, type VectorContext } from './vector.js';

export type BlockFn = () => number;

export interface CompileOptions {
  /** Re-parse the emitted source with acorn (debug mode and tests). */
  verify?: boolean;
  /** Internal jumps before returning to the dispatcher (smaller when profiling, so samples see every block). */
  loopBudget?: number;
}

const MASK = (size: number) => (size === 1 ? 0xff : 0xffff);

/** Internal jumps a unit may take before it returns to the dispatcher. */
const LOOP_BUDGET = 65536;

/**
 * Where the lazy flags are at a point of the generated code, as far as the compiler knows:
 * in the state, in the flag locals (written by a FLAGS op of the current block: `flagsInsn`),
 * or either (at the start of a block that other blocks of the unit jump to: `fop >= 0` tells).
 */
type FlagsAt = 'state' | 'locals' | 'dynamic';

/**
 * Does a helper leave every general register alone? True for SSE and x87 helpers without a
 * general-register operand (their memory operands only read the address registers).
 */
function touchesNoGpr(insn: Insn): boolean {
  return (insn.mnem in SSE_HELPERS || insn.mnem in X87_HELPERS) && insn.ops.every((o) => o.kind !== OpKind.Reg);
}

/** Source moving general registers between their JS locals (r<n>l, r<n>h) and the state. */
const storeRegs = (regs: Iterable<number>) => [...regs].map((r) => `s[${2 * r}] = r${r}l; s[${2 * r + 1}] = r${r}h;`).join(' ');
const loadRegs = (regs: Iterable<number>) => [...regs].map((r) => `r${r}l = s[${2 * r}]; r${r}h = s[${2 * r + 1}];`).join(' ');

class Emitter {
  body: E.Statement[] = [];
  readonly used = new Set<number>();
  /** Registers some block of the unit writes. */
  readonly dirty = new Set<number>();
  /**
   * Registers whose local may differ from the state array at the current point: every written
   * register at a block's start (another block may have run first), a register written since,
   * and nothing right after a helper's spill. Exits and spills write back only these.
   */
  dirtyNow = new Set<number>();
  flagsAt: FlagsAt = 'state';
  /** The FLAGS insn whose values sit in the flag locals when flagsAt is 'locals'. */
  flagsInsn: IrInsn | null = null;
  /** With flagsAt 'state': the arithmetic flags are also in the local `fw` (after an inline UCOMISD). */
  flagsWord = false;
  lastIp = -1;
  /** The block being lowered, its index, and where its instructions start in the unit's list. */
  blk: IrBlock;
  bi = 0;
  readonly base: number[] = [];
  defs: IrInsn[] = [];
  /** Unit-relative index of each member block by guest address. */
  readonly members = new Map<number, number>();
  /** Does any block jump to a member (so the unit needs its loop)? */
  readonly looping: boolean;
  exits = 0;

  constructor(readonly blocks: IrBlock[]) {
    let n = 0;
    blocks.forEach((b, k) => {
      this.members.set(b.addr, k);
      this.base.push(n);
      n += b.insns.length + 1; // +1: a RAISE of a decode error sits past the last instruction
      for (const i of b.code) {
        if (i.op === Op.GET || i.op === Op.PUT) this.used.add(i.reg);
        if (i.op === Op.PUT) this.dirty.add(i.reg);
        if (i.op === Op.HELPER && GPR_FORMS.has(b.insns[i.k].mnem)) {
          // Inline SSE forms (jit/vector.ts) use general registers through their locals.
          b.insns[i.k].ops.forEach((o, n) => {
            if (o.kind !== OpKind.Reg) return;
            this.used.add(o.reg);
            if (n === 0) this.dirty.add(o.reg);
          });
        }
      }
    });
    this.looping = blocks.some((b) => b.code.some((i) => (i.op === Op.JUMP || i.op === Op.BRANCH) && (this.members.has(i.imm) || (i.op === Op.BRANCH && this.members.has(i.imm2)))));
    this.blk = blocks[0];
  }

  /** Start lowering block k. */
  enter(k: number): void {
    this.bi = k;
    this.blk = this.blocks[k];
    this.defs = [];
    for (const i of this.blk.code) if (i.dst >= 0) this.defs[i.dst] = i;
    this.flagsAt = this.looping ? 'dynamic' : 'state';
    this.flagsInsn = null;
    this.flagsWord = false;
    this.lastIp = -1;
    this.body = [];
    this.dirtyNow = new Set(this.dirty);
  }

  prefix(): string {
    return this.blocks.length > 1 ? `b${this.bi}_` : '';
  }
  t(n: number): string {
    return `${this.prefix()}t${n}`;
  }
  h(n: number): string {
    return `${this.prefix()}t${n}h`;
  }
  constOf(n: number): number | undefined {
    const d = this.defs[n];
    return d && d.op === Op.CONST32 ? d.imm : undefined;
  }

  emit(s: E.Statement[]): void {
    this.body.push(...s);
  }

  setIp(gi: number): void {
    if (gi !== this.lastIp) {
      this.emit(stmts`ip = ${this.base[this.bi] + gi};`);
      this.lastIp = gi;
    }
  }

  /** Write back the registers that may differ from the state here. */
  writebackRegs(): E.Statement[] {
    return this.writeback(this.dirtyNow);
  }

  /** Write back every register the unit writes (the fault path, which can come from anywhere). */
  writebackAll(): E.Statement[] {
    return this.writeback(this.dirty);
  }

  private writeback(regs: Set<number>): E.Statement[] {
    return regs.size ? [raw(storeRegs(regs))] : [];
  }

  /** Reload registers a helper may have written (all, unless it touches no general register). */
  reloadRegs(gprFree = false): E.Statement[] {
    return gprFree || !this.used.size ? [] : [raw(loadRegs(this.used))];
  }

  /** Flag locals → state, where they may hold the flags. */
  flushFlags(): E.Statement[] {
    if (this.flagsAt === 'state') return [];
    return this.flagsAt === 'locals' ? this.flagsToState() : [ifStmt(expr`fop >= 0`, this.flagsToState())];
  }

  flagsToState(): E.Statement[] {
    return stmts`s[${S.CC_OP}] = fop; s[${S.CC_DST_LO}] = fdl; s[${S.CC_DST_HI}] = fdh; s[${S.CC_SRC_LO}] = fsl; s[${S.CC_SRC_HI}] = fsh; s[${S.CC_SRC2_LO}] = fs2;`;
  }

  /**
   * Leave the unit with RIP = rip, `retired` instructions of this block retired and exit index
   * `ret`. Exits share one exit sequence after the unit's body (registers and flags to the
   * state, RIP, instruction count): each exit only sets `nr` (the next RIP) and `ex`, so a unit
   * with many exits stays small enough for V8 to compile quickly and optimise. An exit with
   * no RIP (the helper set it) writes back in place.
   */
  exitTo(rip: E.Expression | number | null, ret: number, retired = this.blk.insns.length): E.Statement[] {
    const count = this.looping ? (retired ? stmts`ic += ${retired};` : []) : stmts`ic = ${retired};`;
    if (rip === null) return [...this.writebackRegs(), ...this.flushFlags(), ...count, ...stmts`f64[${ICOUNT_F64}] += ic; return ${ret};`];
    return [...count, ...stmts`nr = ${rip}; ex = ${ret};`, { type: 'BreakStatement', label: { type: 'Identifier', name: 'out' } }];
  }

  /** The shared exit sequence (see exitTo): every register the unit writes, flags held in locals. */
  sharedExit(): E.Statement[] {
    return [
      ...this.writebackAll(),
      ifStmt(expr`fop >= 0`, this.flagsToState()),
      ...stmts`s[${S.RIP_LO}] = nr | 0; s[${S.RIP_HI}] = Math.floor(nr / 4294967296); f64[${ICOUNT_F64}] += ic; return ex;`,
    ];
  }

  /**
   * After a store that did not take the inline TLB path (a helper's, a slow path's): if it
   * rewrote translated code (runtime.ts codeEpoch), a member of this unit may be stale, so the
   * next internal jump goes back to the dispatcher (through the budget, which keeps the hot
   * path's check a single local decrement), which translates the new bytes.
   */
  staleCheck(): E.Statement[] {
    return stmts`if (CE[0] !== ep) budget = 1;`;
  }

  /** Continue at guest address `target`: inside the unit when it is a member, else a chainable exit. */
  goto(target: number): E.Statement[] {
    const k = this.members.get(target);
    if (k === undefined) return this.exitTo(target, this.exits++);
    const n = this.blk.insns.length;
    const out = stmts`ic += ${n}; pc = ${k};`;
    out.push(ifStmt(expr`--budget === 0`, this.exitTo(target, -1, 0)));
    out.push({ type: 'ContinueStatement', label: { type: 'Identifier', name: 'unit' } });
    return out;
  }

  /** The condition as a fused comparison, when the flags producer is known and simple. */
  fusedCond(cc: number, f: IrInsn): E.Expression | null {
    const size = f.size;
    const D = this.t(f.a), Dh = this.h(f.a);
    const zero = size === 8 ? expr`(${D} | ${Dh}) === 0` : expr`${D} === 0`;
    const neg = size === 8 ? expr`${Dh} < 0` : size === 4 ? expr`${D} < 0` : expr`(${D} & ${size === 1 ? 0x80 : 0x8000}) !== 0`;
    const k = f.k;
    const not = (e: E.Expression) => expr`!(${e})`;
    if (cc === 4) return zero;
    if (cc === 5) return not(zero);
    if (cc === 8) return neg;
    if (cc === 9) return not(neg);
    if (k === CcOp.LOGIC) {
      switch (cc) {
        case 0: case 2: return expr`false`;
        case 1: case 3: return expr`true`;
        case 6: return zero;
        case 7: return not(zero);
        case 12: return neg;
        case 13: return not(neg);
        case 14: return expr`${zero} || ${neg}`;
        case 15: return expr`!(${zero} || ${neg})`;
      }
      return null;
    }
    if (k === CcOp.ADD && (cc === 2 || cc === 3)) {
      // CF of an addition: the result is below the second operand (unsigned).
      const B = this.t(f.b), Bh = this.h(f.b);
      const carry =
        size === 8 ? expr`(${Dh} >>> 0) < (${Bh} >>> 0) || (${Dh} === ${Bh} && (${D} >>> 0) < (${B} >>> 0))` : size === 4 ? expr`(${D} >>> 0) < (${B} >>> 0)` : expr`${D} < ${B}`;
      return cc === 2 ? carry : not(carry);
    }
    if (k !== CcOp.SUB || f.d < 0) return null;
    const A = this.t(f.d), B = this.t(f.b), Ah = this.h(f.d), Bh = this.h(f.b);
    let ltu: E.Expression, leu: E.Expression, lts: E.Expression, les: E.Expression;
    if (size === 8) {
      ltu = expr`(${Ah} >>> 0) < (${Bh} >>> 0) || (${Ah} === ${Bh} && (${A} >>> 0) < (${B} >>> 0))`;
      leu = expr`(${Ah} >>> 0) < (${Bh} >>> 0) || (${Ah} === ${Bh} && (${A} >>> 0) <= (${B} >>> 0))`;
      lts = expr`${Ah} < ${Bh} || (${Ah} === ${Bh} && (${A} >>> 0) < (${B} >>> 0))`;
      les = expr`${Ah} < ${Bh} || (${Ah} === ${Bh} && (${A} >>> 0) <= (${B} >>> 0))`;
    } else if (size === 4) {
      ltu = expr`(${A} >>> 0) < (${B} >>> 0)`;
      leu = expr`(${A} >>> 0) <= (${B} >>> 0)`;
      lts = expr`${A} < ${B}`;
      les = expr`${A} <= ${B}`;
    } else {
      const sh = 32 - size * 8;
      ltu = expr`${A} < ${B}`;
      leu = expr`${A} <= ${B}`;
      lts = expr`(${A} << ${sh} >> ${sh}) < (${B} << ${sh} >> ${sh})`;
      les = expr`(${A} << ${sh} >> ${sh}) <= (${B} << ${sh} >> ${sh})`;
    }
    switch (cc) {
      case 2: return ltu;
      case 3: return not(ltu);
      case 6: return leu;
      case 7: return not(leu);
      case 12: return lts;
      case 13: return not(lts);
      case 14: return les;
      case 15: return not(les);
    }
    return null;
  }

  /**
   * For jit/vector.ts: the memory operand's address, the register locals, and a slow path that
   * runs the helper with the state up to date (FP helpers read only address registers and
   * MXCSR; the one that writes a general register is reloaded after).
   */
  vectorContext(i: IrInsn, insn: Insn): VectorContext {
    const wb = storeRegs(this.dirtyNow);
    const dst = insn.ops[0];
    const reload = dst && dst.kind === OpKind.Reg ? loadRegs([dst.reg]) : '';
    return {
      addr: i.a >= 0 ? this.t(i.a) : null,
      slow: `${wb} s[${S.RIP_LO}] = ${insn.addr | 0}; s[${S.RIP_HI}] = ${Math.floor(insn.addr / 4294967296)}; H[${JSON.stringify(insn.mnem)}](cpu, I[${this.base[this.bi] + i.k}]); ${reload}`,
      gpr: (r) => [`r${r}l`, `r${r}h`],
    };
  }

  lower(i: IrInsn): void {
    const t = (n: number) => this.t(n);
    const h = (n: number) => this.h(n);
    const d = i.dst;
    switch (i.op) {
      case Op.CONST32:
        return this.emit(stmts`${t(d)} = ${i.imm};`);
      case Op.CONST64:
        return this.emit(stmts`${t(d)} = ${i.imm}; ${h(d)} = ${i.immHi};`);
      case Op.GET: {
        const rl = `r${i.reg}l`, rh = `r${i.reg}h`;
        if (i.size === 8) return this.emit(stmts`${t(d)} = ${rl}; ${h(d)} = ${rh};`);
        if (i.size === 4) return this.emit(stmts`${t(d)} = ${rl};`);
        if (i.size === 2) return this.emit(stmts`${t(d)} = ${rl} & 0xffff;`);
        return this.emit(i.k ? stmts`${t(d)} = (${rl} >>> 8) & 0xff;` : stmts`${t(d)} = ${rl} & 0xff;`);
      }
      case Op.PUT: {
        this.dirtyNow.add(i.reg);
        const rl = `r${i.reg}l`, rh = `r${i.reg}h`;
        if (i.size === 8) return this.emit(stmts`${rl} = ${t(i.a)}; ${rh} = ${h(i.a)};`);
        if (i.size === 4) return this.emit(stmts`${rl} = ${t(i.a)}; ${rh} = 0;`);
        if (i.size === 2) return this.emit(stmts`${rl} = (${rl} & -65536) | (${t(i.a)} & 0xffff);`);
        if (i.k) return this.emit(stmts`${rl} = (${rl} & -65281) | ((${t(i.a)} & 0xff) << 8);`);
        return this.emit(stmts`${rl} = (${rl} & -256) | (${t(i.a)} & 0xff);`);
      }
      case Op.BIN:
        return i.size === 8 ? this.bin64(i) : this.bin32(i);
      case Op.UN: {
        const a = t(i.a);
        if (i.k === UnOp.ISZERO) return this.emit(i.size === 8 ? stmts`${t(d)} = (${a} | ${h(i.a)}) === 0 ? 1 : 0;` : stmts`${t(d)} = ${a} === 0 ? 1 : 0;`);
        if (i.size === 8) {
          if (i.k === UnOp.NOT) return this.emit(stmts`${t(d)} = ~${a}; ${h(d)} = ~${h(i.a)};`);
          return this.emit(stmts`${t(d)} = -${a} | 0; ${h(d)} = (~${h(i.a)} + (${a} === 0 ? 1 : 0)) | 0;`);
        }
        const v = i.k === UnOp.NOT ? expr`~${a}` : expr`-${a}`;
        return this.emit(i.size === 4 ? stmts`${t(d)} = ${v} | 0;` : stmts`${t(d)} = ${v} & ${MASK(i.size)};`);
      }
      case Op.EXT: {
        const a = t(i.a);
        const signed = i.k === 1;
        const v = i.size === 1 ? (signed ? expr`(${a} << 24) >> 24` : expr`${a} & 0xff`) : i.size === 2 ? (signed ? expr`(${a} << 16) >> 16` : expr`${a} & 0xffff`) : expr`${a} | 0`;
        if (i.size2 === 8) return this.emit(signed ? stmts`${t(d)} = ${v}; ${h(d)} = ${t(d)} >> 31;` : stmts`${t(d)} = ${v}; ${h(d)} = 0;`);
        return this.emit(i.size2 === 4 ? stmts`${t(d)} = ${v};` : stmts`${t(d)} = (${v}) & ${MASK(i.size2)};`);
      }
      case Op.LO:
        return this.emit(stmts`${t(d)} = ${t(i.a)};`);
      case Op.EA: {
        const baseAt = S.SEG + SEG_STRIDE * i.reg;
        if (i.k !== 8) {
          let sum: E.Expression = num(i.imm | 0);
          if (i.a >= 0) sum = expr`${sum} + ${t(i.a)}`;
          if (i.b >= 0) sum = expr`${sum} + Math.imul(${t(i.b)}, ${i.scale})`;
          const off = i.k === 2 ? expr`((${sum}) & 0xffff)` : expr`((${sum}) >>> 0)`;
          // Outside 64-bit mode segment bases are 32-bit and the linear address wraps at 4 GiB.
          if (i.size2 === 4) return this.emit(i.reg < 0 ? stmts`${t(d)} = ${off};` : stmts`${t(d)} = (${off} + s[${baseAt + SegField.BASE_LO}]) >>> 0;`);
          const seg = i.reg < 0 ? num(0) : expr`(s[${baseAt + SegField.BASE_HI}] * 4294967296 + (s[${baseAt + SegField.BASE_LO}] >>> 0))`;
          return this.emit(stmts`${t(d)} = ${off} + ${seg};`);
        }
        const seg: E.Expression = expr`(s[${baseAt + SegField.BASE_HI}] * 4294967296 + (s[${baseAt + SegField.BASE_LO}] >>> 0))`;
        let sum: E.Expression = num(i.imm);
        if (i.a >= 0) sum = expr`${sum} + (${h(i.a)} * 4294967296 + (${t(i.a)} >>> 0))`;
        if (i.b >= 0) sum = expr`${sum} + (${h(i.b)} * 4294967296 + (${t(i.b)} >>> 0)) * ${i.scale}`;
        if (i.reg >= 0) sum = expr`${sum} + ${seg}`;
        return this.emit(stmts`${t(d)} = ${sum};`);
      }
      case Op.TOADDR:
        return this.emit(stmts`${t(d)} = ${h(i.a)} * 4294967296 + (${t(i.a)} >>> 0);`);
      case Op.LOAD: {
        this.setIp(i.gi);
        return this.emit(this.load(i.size, t(i.a), t(d), h(d)));
      }
      case Op.STORE: {
        this.setIp(i.gi);
        return this.emit(this.store(i.size, t(i.a), t(i.b), h(i.b)));
      }
      case Op.FLAGS: {
        const opsz = (i.k << 2) | sizeLog(i.size);
        const wide = i.size === 8;
        this.emit(stmts`fop = ${opsz}; fdl = ${t(i.a)}; fdh = ${wide ? h(i.a) : 0}; fsl = ${i.b >= 0 ? t(i.b) : 0}; fsh = ${i.b >= 0 && this.blk.types[i.b] === Ty.I64 ? h(i.b) : 0}; fs2 = ${i.c >= 0 ? t(i.c) : 0};`);
        this.flagsAt = 'locals';
        this.flagsInsn = i;
        this.flagsWord = false;
        return;
      }
      case Op.COND: {
        const f = this.flagsAt === 'locals' ? this.flagsInsn : null;
        const fused = f ? this.fusedCond(i.k, f) : null;
        if (fused) return this.emit(stmts`${t(d)} = (${fused}) ? 1 : 0;`);
        if (this.flagsAt === 'locals') return this.emit(stmts`${t(d)} = rt.condOf(${i.k}, fop, fdl, fdh, fsl, fsh, fs2);`);
        if (this.flagsAt === 'dynamic') return this.emit(stmts`${t(d)} = fop >= 0 ? rt.condOf(${i.k}, fop, fdl, fdh, fsl, fsh, fs2) : rt.cond(${i.k});`);
        if (this.flagsWord) return this.emit(stmts`${t(d)} = condFromFlags(${i.k}, fw) ? 1 : 0;`);
        return this.emit(stmts`${t(d)} = rt.cond(${i.k});`);
      }
      case Op.GETFLAGS:
        if (this.flagsAt === 'locals') return this.emit(stmts`${t(d)} = rt.flagsOf(fop, fdl, fdh, fsl, fsh, fs2);`);
        if (this.flagsAt === 'dynamic') return this.emit(stmts`${t(d)} = fop >= 0 ? rt.flagsOf(fop, fdl, fdh, fsl, fsh, fs2) : rt.getflags();`);
        return this.emit(stmts`${t(d)} = rt.getflags();`);
      case Op.SETFLAGS:
        this.emit(this.flushFlags());
        this.emit(stmts`rt.setflags(${t(i.a)}, ${i.imm}); fop = -1;`);
        this.flagsAt = 'state';
        this.flagsWord = false;
        return;
      case Op.SELECT:
        this.emit(stmts`${t(d)} = ${t(i.a)} ? ${t(i.b)} : ${t(i.c)};`);
        if (i.size === 8) this.emit(stmts`${h(d)} = ${t(i.a)} ? ${h(i.b)} : ${h(i.c)};`);
        return;
      case Op.MUL:
        if (i.size === 8) return this.emit(stmts`${t(d)} = mul64(${t(i.a)}, ${h(i.a)}, ${t(i.b)}, ${h(i.b)}); ${h(d)} = R.hi;`);
        return this.emit(i.size === 4 ? stmts`${t(d)} = Math.imul(${t(i.a)}, ${t(i.b)});` : stmts`${t(d)} = Math.imul(${t(i.a)}, ${t(i.b)}) & ${MASK(i.size)};`);
      case Op.IMULOVF: {
        if (i.size === 8) return this.emit(stmts`${t(d)} = imulOverflow64(${t(i.a)}, ${h(i.a)}, ${t(i.b)}, ${h(i.b)});`);
        const sh = 32 - i.size * 8;
        return this.emit(stmts`${t(d)} = imulOverflow32(${t(i.a)} << ${sh} >> ${sh}, ${t(i.b)} << ${sh} >> ${sh}, ${i.size});`);
      }
      case Op.HELPER: {
        const insn = this.blk.insns[i.k];
        const inline = inlineVector(insn, this.vectorContext(i, insn));
        if (inline) {
          // Registers and flags stay in locals (a slow path inside writes back what its helper reads).
          this.setIp(i.gi);
          this.emit(inline);
          const dst = insn.ops[0];
          if (dst.kind === OpKind.Reg) this.dirtyNow.add(dst.reg);
          if (dst.kind === OpKind.Mem) this.emit(this.staleCheck());
          if (insn.mnem === 'ucomisd' || insn.mnem === 'comisd') {
            this.flagsAt = 'state';
            this.flagsInsn = null;
            this.flagsWord = true;
          }
          return;
        }
        this.setIp(i.gi);
        this.emit(this.writebackRegs());
        this.dirtyNow.clear();
        this.emit(this.flushFlags());
        this.flagsAt = 'state';
        this.flagsWord = false;
        // While the helper runs, the state array holds the registers (a REP string helper that
        // faults part-way has already advanced RCX/RSI/RDI there): the fault path must not
        // overwrite them with the locals, hence `inHelper`.
        this.emit(stmts`fop = -1; s[${S.RIP_LO}] = ${insn.addr | 0}; s[${S.RIP_HI}] = ${Math.floor(insn.addr / 4294967296)}; inHelper = 1; H[${{ type: 'Literal', value: insn.mnem }}](cpu, I[${this.base[this.bi] + i.k}]); inHelper = 0;`);
        this.emit(this.staleCheck());
        this.emit(this.reloadRegs(touchesNoGpr(insn)));
        return;
      }
      case Op.JUMP:
        return this.emit(this.goto(i.imm));
      case Op.BRANCH:
        this.emit([ifStmt(expr`${t(i.a)} !== 0`, this.goto(i.imm))]);
        return this.emit(this.goto(i.imm2));
      case Op.JUMPI:
        return this.emit(this.exitTo(expr`${t(i.a)}`, -1));
      case Op.EXIT:
        this.emit(stmts`s[${S.EXIT_REASON}] = ${i.k};`);
        return this.emit(this.exitTo(i.imm, -2));
      case Op.RESUME:
        this.emit(stmts`s[${S.EXIT_REASON}] = ${i.k};`);
        return this.emit(this.exitTo(null, -2));
      case Op.TRACK:
        return this.emit(i.a >= 0 ? stmts`cpu.profiler.track(${i.k}, ${i.imm}, ${h(i.a)} * 4294967296 + (${t(i.a)} >>> 0));` : stmts`cpu.profiler.track(${i.k}, ${i.imm}, 0);`);
      case Op.RAISE:
        this.setIp(i.gi);
        if (i.k < 0) return this.emit(stmts`throw ERR[${this.bi}];`);
        return this.emit(stmts`throw new CpuException(${i.k}, ${i.imm});`);
    }
    throw new Error(`codegen: no lowering for ${OPS[i.op].name}`);
  }

  /**
   * A guest load of `size` bytes at linear address `a` into d (and dh): the TLB hit path of
   * Memory.read8…read64 inline (same conditions: tag match, access inside the page), the
   * method call otherwise (misses, page crossings, MMIO, faults). Besides the call, this saves
   * V8 boxing the address (a double) and the value as heap numbers for it.
   */
  load(size: number, a: string, d: string, dh: string): E.Statement[] {
    const probe = stmts`tv = Math.floor(${a} * ${1 / PAGE_SIZE}); ti = (tv & ${TLB_MASK}) + ts; to = ${a} - tv * ${PAGE_SIZE};`;
    const hit = size === 1 ? expr`TR[ti] === tv` : expr`TR[ti] === tv && to <= ${PAGE_SIZE - size}`;
    if (size === 8)
      return [...probe, ifStmt(hit, stmts`to += TB[ti]; ${d} = dv.getInt32(to, true); ${dh} = dv.getInt32(to + 4, true);`, stmts`${d} = mem.read64(${a}); ${dh} = mem.hi;`)];
    const fast = size === 1 ? expr`u8[TB[ti] + to]` : size === 2 ? expr`dv.getUint16(TB[ti] + to, true)` : expr`dv.getInt32(TB[ti] + to, true)`;
    const slow = expr`mem[${{ type: 'Literal', value: size === 1 ? 'read8' : size === 2 ? 'read16' : 'read32' }}](${a})`;
    return [...probe, ...stmts`${d} = ${hit} ? ${fast} : ${slow};`];
  }

  /** A guest store, as load(): Memory.write8…write64's hit path inline. */
  store(size: number, a: string, v: string, vh: string): E.Statement[] {
    const probe = stmts`tv = Math.floor(${a} * ${1 / PAGE_SIZE}); ti = (tv & ${TLB_MASK}) + ts; to = ${a} - tv * ${PAGE_SIZE};`;
    const hit = size === 1 ? expr`TW[ti] === tv` : expr`TW[ti] === tv && to <= ${PAGE_SIZE - size}`;
    if (size === 8) return [...probe, ifStmt(hit, stmts`to += TBW[ti]; dv.setInt32(to, ${v}, true); dv.setInt32(to + 4, ${vh}, true);`, [...stmts`mem.write64(${a}, ${v}, ${vh});`, ...this.staleCheck()])];
    const fast = size === 1 ? stmts`u8[TBW[ti] + to] = ${v};` : size === 2 ? stmts`dv.setUint16(TBW[ti] + to, ${v}, true);` : stmts`dv.setInt32(TBW[ti] + to, ${v}, true);`;
    const slow = stmts`mem[${{ type: 'Literal', value: size === 1 ? 'write8' : size === 2 ? 'write16' : 'write32' }}](${a}, ${v});`;
    return [...probe, ifStmt(hit, fast, [...slow, ...this.staleCheck()])];
  }

  bin32(i: IrInsn): void {
    const d = this.t(i.dst), a = this.t(i.a), b = this.t(i.b);
    const sz = i.size;
    const fit = (e: E.Expression) => this.emit(sz === 4 ? stmts`${d} = ${e} | 0;` : stmts`${d} = ${e} & ${MASK(sz)};`);
    switch (i.k) {
      case AluOp.ADD: return fit(expr`${a} + ${b}`);
      case AluOp.SUB: return fit(expr`${a} - ${b}`);
      case AluOp.AND: return this.emit(stmts`${d} = ${a} & ${b};`);
      case AluOp.OR: return this.emit(stmts`${d} = ${a} | ${b};`);
      case AluOp.XOR: return this.emit(stmts`${d} = ${a} ^ ${b};`);
      case AluOp.SHL: return fit(expr`${a} << ${b}`);
      case AluOp.SHR: return fit(expr`${a} >>> ${b}`);
      case AluOp.SAR: {
        const sh = 32 - sz * 8;
        return fit(sz === 4 ? expr`${a} >> ${b}` : expr`(${a} << ${sh} >> ${sh}) >> ${b}`);
      }
    }
    throw new Error(`codegen: bin32 op ${i.k}`);
  }

  bin64(i: IrInsn): void {
    const d = this.t(i.dst), dh = this.h(i.dst), a = this.t(i.a), ah = this.h(i.a);
    if (i.k === AluOp.SHL || i.k === AluOp.SHR || i.k === AluOp.SAR) {
      const n = this.constOf(i.b);
      const name = i.k === AluOp.SHL ? 'shl64' : i.k === AluOp.SHR ? 'shr64' : 'sar64';
      if (n === undefined) return this.emit(stmts`${d} = ${name}(${a}, ${ah}, ${this.t(i.b)} & 63); ${dh} = R.hi;`);
      const c = n & 63;
      if (c === 0) return this.emit(stmts`${d} = ${a}; ${dh} = ${ah};`);
      if (i.k === AluOp.SHL)
        return this.emit(c < 32 ? stmts`${dh} = (${ah} << ${c}) | (${a} >>> ${32 - c}); ${d} = ${a} << ${c};` : stmts`${dh} = ${a} << ${c - 32}; ${d} = 0;`);
      if (i.k === AluOp.SHR)
        return this.emit(c < 32 ? stmts`${d} = (${a} >>> ${c}) | (${ah} << ${32 - c}); ${dh} = (${ah} >>> ${c}) | 0;` : stmts`${d} = (${ah} >>> ${c - 32}) | 0; ${dh} = 0;`);
      return this.emit(c < 32 ? stmts`${d} = (${a} >>> ${c}) | (${ah} << ${32 - c}); ${dh} = ${ah} >> ${c};` : stmts`${d} = ${ah} >> ${c - 32}; ${dh} = ${ah} >> 31;`);
    }
    const b = this.t(i.b), bh = this.h(i.b);
    switch (i.k) {
      case AluOp.ADD: return this.emit(stmts`${d} = (${a} + ${b}) | 0; ${dh} = (${ah} + ${bh} + ((${d} >>> 0) < (${a} >>> 0) ? 1 : 0)) | 0;`);
      case AluOp.SUB: return this.emit(stmts`${dh} = (${ah} - ${bh} - ((${a} >>> 0) < (${b} >>> 0) ? 1 : 0)) | 0; ${d} = (${a} - ${b}) | 0;`);
      case AluOp.AND: return this.emit(stmts`${d} = ${a} & ${b}; ${dh} = ${ah} & ${bh};`);
      case AluOp.OR: return this.emit(stmts`${d} = ${a} | ${b}; ${dh} = ${ah} | ${bh};`);
      case AluOp.XOR: return this.emit(stmts`${d} = ${a} ^ ${b}; ${dh} = ${ah} ^ ${bh};`);
    }
    throw new Error(`codegen: bin64 op ${i.k}`);
  }
}

export interface Compiled {
  fn: BlockFn;
  source: string;
  /** Number of chainable exits (exit indices 0 … exits-1). */
  exits: number;
}

/**
 * Compile a unit: blocks[0] is its entry; jumps to the other blocks (and to blocks[0]) stay
 * inside the generated function.
 */
export function compileUnit(blocks: IrBlock[], rt: JitRuntime, name: string, opts: CompileOptions = {}): Compiled {
  const em = new Emitter(blocks);
  const cases: E.SwitchCase[] = [];
  const temps: string[] = [];
  blocks.forEach((blk, k) => {
    em.enter(k);
    for (const i of blk.code) em.lower(i);
    cases.push({ type: 'SwitchCase', test: num(k), consequent: [{ type: 'BlockStatement', body: em.body }] });
    blk.types.forEach((ty, n) => {
      temps.push(em.t(n));
      if (ty === Ty.I64) temps.push(em.h(n));
    });
  });
  const regs = [...em.used].flatMap((r) => [`r${r}l`, `r${r}h`]);
  const loads = em.used.size ? [raw(loadRegs(em.used))] : [];
  const onFault: E.Statement[] = [
    ifStmt(expr`inHelper === 0`, em.writebackAll()),
    ifStmt(expr`fop >= 0`, em.flagsToState()),
    ...stmts`rt.faultAt(P[ip], ic + Q[ip]); throw e;`,
  ];
  const units: E.Statement[] = em.looping
    ? [
        {
          type: 'LabeledStatement',
          label: { type: 'Identifier', name: 'unit' },
          body: { type: 'ForStatement', init: null, test: null, update: null, body: { type: 'BlockStatement', body: [{ type: 'SwitchStatement', discriminant: { type: 'Identifier', name: 'pc' }, cases }] } },
        },
      ]
    : (cases[0].consequent as E.Statement[]);
  // Every exit but RESUME and faults breaks out of `out` into the shared exit sequence.
  const body: E.Statement[] = [{ type: 'LabeledStatement', label: { type: 'Identifier', name: 'out' }, body: { type: 'BlockStatement', body: units } }, ...em.sharedExit()];
  const inner = fn(name, [], [
    letDecl([...regs, ...temps, 'fdl', 'fdh', 'fsl', 'fsh', 'fs2', 'fw', 'ip', 'ic', 'pc', 'nr', 'ex', 'tv', 'ti', 'to']),
    // The TLB set in use changes only at an SVM world switch, which always ends the unit.
    ...stmts`let fop = -1, inHelper = 0, budget = ${opts.loopBudget ?? LOOP_BUDGET}, ts = mem.tlbSet, ep = CE[0];`,
    ...loads,
    tryCatch(body, 'e', onFault),
  ]);
  const factory: E.Program = {
    type: 'Program',
    sourceType: 'script',
    body: [
      {
        type: 'ExpressionStatement',
        expression: fn('factory', ['rt', 'I', 'P', 'Q', 'ERR', 'CpuException'], [
          ...stmts`const s = rt.s, f64 = rt.f64, mem = rt.mem, cpu = rt.cpu, H = rt.H, R = rt.R, condFromFlags = rt.condFromFlags;`,
          ...stmts`const TR = mem.tlbTagR, TB = mem.tlbBaseR, TW = mem.tlbTagW, TBW = mem.tlbBaseW, dv = mem.dv, u8 = mem.u8, CE = rt.codeEpoch;`,
          ...stmts`const mul64 = rt.mul64, imulOverflow64 = rt.imulOverflow64, imulOverflow32 = rt.imulOverflow32, shl64 = rt.shl64, shr64 = rt.shr64, sar64 = rt.sar64;`,
          { type: 'ReturnStatement', argument: inner },
        ]),
      },
    ],
  };
  const source = print(factory);
  if (opts.verify) parseScript(source);
  const factoryFn = new vm.Script(source, { filename: `guest://${name}` }).runInThisContext() as (...a: unknown[]) => BlockFn;
  // Per unit-wide instruction index: the guest instruction, its RIP, and how many of its block precede it.
  const insns: unknown[] = [];
  const rips: number[] = [];
  const inBlock: number[] = [];
  for (const blk of blocks) {
    const errAt = blk.code.find((i) => i.op === Op.RAISE && i.k < 0);
    for (let k = 0; k <= blk.insns.length; k++) {
      insns.push(blk.insns[k]);
      rips.push(k < blk.insns.length ? blk.insns[k].addr : errAt ? errAt.imm2 : blk.end);
      inBlock.push(k);
    }
  }
  const fnc = factoryFn(rt, insns, rips, inBlock, blocks.map((b) => b.error), CpuException);
  return { fn: fnc, source, exits: em.exits };
}

/** Compile one block (a unit of one). */
export function compileBlock(blk: IrBlock, rt: JitRuntime, name: string, opts: CompileOptions = {}): Compiled {
  return compileUnit([blk], rt, name, opts);
}
