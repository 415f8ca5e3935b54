/**
 * IR blocks and the builder the lifter uses. An IrInsn has one fixed shape for every op (so
 * the passes, interpreter and JIT stay monomorphic); unused fields are -1 or 0.
 */
import type { Insn } from '../frontend/insn.js';
import type { CpuException } from '../cpu/exceptions.js';
import { ALU_NAMES, OPS, Op, Ty, UN_NAMES, UnOp } from './ops.js';

export interface IrInsn {
  op: Op;
  dst: number;
  a: number;
  b: number;
  c: number;
  /** The first operand of a FLAGS op (for fused conditions), else -1. */
  d: number;
  k: number;
  size: number;
  size2: number;
  reg: number;
  scale: number;
  imm: number;
  immHi: number;
  imm2: number;
  /** Index of the guest instruction (in IrBlock.insns) this belongs to. */
  gi: number;
}

export class IrBlock {
  readonly code: IrInsn[] = [];
  readonly types: Ty[] = [];
  /** The guest instructions of the block, in order. */
  readonly insns: Insn[] = [];
  /** The exception a RAISE with k = -1 throws (an undecodable or unimplemented instruction). */
  error: CpuException | null = null;
  /** Guest address of the first instruction. */
  constructor(readonly addr: number) {}

  /** Address just past the last guest instruction. */
  get end(): number {
    const last = this.insns[this.insns.length - 1];
    return last ? last.next : this.addr;
  }
}

/** Emits IR into a block; each method returns the new temporary. */
export class IrBuilder {
  gi = 0;
  constructor(readonly blk: IrBlock) {}

  temp(ty: Ty): number {
    this.blk.types.push(ty);
    return this.blk.types.length - 1;
  }

  emit(op: Op, fields: Partial<IrInsn>, dstTy: Ty = Ty.NONE): number {
    const dst = dstTy === Ty.NONE ? -1 : this.temp(dstTy);
    this.blk.code.push({
      op, dst, a: -1, b: -1, c: -1, d: -1, k: 0, size: 0, size2: 0, reg: -1, scale: 1, imm: 0, immHi: 0, imm2: 0, gi: this.gi, ...fields,
    });
    return dst;
  }

  static tyOf(size: number): Ty {
    return size === 8 ? Ty.I64 : Ty.I32;
  }

  const32(v: number): number {
    return this.emit(Op.CONST32, { imm: v | 0 }, Ty.I32);
  }
  const64(lo: number, hi: number): number {
    return this.emit(Op.CONST64, { imm: lo | 0, immHi: hi | 0 }, Ty.I64);
  }
  constOf(size: number, lo: number, hi: number): number {
    return size === 8 ? this.const64(lo, hi) : this.const32(mask(lo, size));
  }
  get(reg: number, size: number, hi8 = false): number {
    return this.emit(Op.GET, { reg, size, k: hi8 ? 1 : 0 }, IrBuilder.tyOf(size));
  }
  put(reg: number, size: number, a: number, hi8 = false): void {
    this.emit(Op.PUT, { reg, size, a, k: hi8 ? 1 : 0 });
  }
  bin(k: number, size: number, a: number, b: number): number {
    return this.emit(Op.BIN, { k, size, a, b }, IrBuilder.tyOf(size));
  }
  un(k: number, size: number, a: number): number {
    return this.emit(Op.UN, { k, size, a }, k === UnOp.ISZERO ? Ty.I32 : IrBuilder.tyOf(size));
  }
  /** Extend a (of `from` bytes) to `to` bytes. */
  ext(a: number, from: number, to: number, signed: boolean): number {
    return this.emit(Op.EXT, { a, size: from, size2: to, k: signed ? 1 : 0 }, IrBuilder.tyOf(to));
  }
  lo(a: number): number {
    return this.emit(Op.LO, { a }, Ty.I32);
  }
  /** wrap32: outside 64-bit mode the linear address (offset + segment base) wraps at 4 GiB. */
  ea(base: number, index: number, scale: number, disp: number, addrSize: number, seg: number, wrap32 = false): number {
    return this.emit(Op.EA, { a: base, b: index, scale, imm: disp, k: addrSize, reg: seg, size2: wrap32 ? 4 : 0 }, Ty.ADDR);
  }
  toaddr(a: number): number {
    return this.emit(Op.TOADDR, { a }, Ty.ADDR);
  }
  load(size: number, addr: number): number {
    return this.emit(Op.LOAD, { size, a: addr }, IrBuilder.tyOf(size));
  }
  store(size: number, addr: number, v: number): void {
    this.emit(Op.STORE, { size, a: addr, b: v });
  }
  flags(k: number, size: number, dst: number, src = -1, src2 = -1, first = -1): void {
    this.emit(Op.FLAGS, { k, size, a: dst, b: src, c: src2, d: first });
  }
  cond(cc: number): number {
    return this.emit(Op.COND, { k: cc }, Ty.I32);
  }
  getflags(): number {
    return this.emit(Op.GETFLAGS, {}, Ty.I32);
  }
  setflags(a: number, maskBits: number): void {
    this.emit(Op.SETFLAGS, { a, imm: maskBits });
  }
  select(size: number, c: number, a: number, b: number): number {
    return this.emit(Op.SELECT, { size, a: c, b: a, c: b }, IrBuilder.tyOf(size));
  }
  mul(size: number, a: number, b: number): number {
    return this.emit(Op.MUL, { size, a, b }, IrBuilder.tyOf(size));
  }
  imulovf(size: number, a: number, b: number): number {
    return this.emit(Op.IMULOVF, { size, a, b }, Ty.I32);
  }
  /** `addr`: the memory operand's address, for back ends that run the instruction inline (else -1). */
  helper(addr = -1): void {
    this.emit(Op.HELPER, { k: this.gi, a: addr });
  }
  jump(target: number): void {
    this.emit(Op.JUMP, { imm: target });
  }
  branch(c: number, taken: number, notTaken: number): void {
    this.emit(Op.BRANCH, { a: c, imm: taken, imm2: notTaken });
  }
  jumpi(addr: number): void {
    this.emit(Op.JUMPI, { a: addr });
  }
  exit(reason: number, rip: number): void {
    this.emit(Op.EXIT, { k: reason, imm: rip });
  }
  resume(reason: number): void {
    this.emit(Op.RESUME, { k: reason });
  }
  /** Raise `vector` (or, with -1, the block's stored error) with RIP = rip. */
  raise(vector: number, errorCode: number, rip: number): void {
    this.emit(Op.RAISE, { k: vector, imm: errorCode, imm2: rip });
  }
}

export function mask(v: number, size: number): number {
  return size === 1 ? v & 0xff : size === 2 ? v & 0xffff : v | 0;
}

/** A readable listing of a block (for -d ir and tests). */
export function printBlock(blk: IrBlock): string {
  const t = (n: number) => (n < 0 ? '-' : `t${n}`);
  const lines: string[] = [];
  let gi = -1;
  for (const i of blk.code) {
    if (i.gi !== gi) {
      gi = i.gi;
      const g = blk.insns[gi];
      if (g) lines.push(`  ; 0x${g.addr.toString(16)} ${g.mnem}`);
    }
    const info = OPS[i.op];
    let extra = '';
    if (i.op === Op.BIN) extra = ALU_NAMES[i.k];
    else if (i.op === Op.UN) extra = UN_NAMES[i.k];
    const parts = [info.name + (extra ? '.' + extra : '') + (i.size ? `.${i.size * 8}` : '')];
    if (i.op === Op.GET || i.op === Op.PUT) parts.push(`r${i.reg}${i.k ? 'h' : ''}`);
    for (const x of [i.a, i.b, i.c]) if (x >= 0) parts.push(t(x));
    if (i.op === Op.CONST32 || i.op === Op.CONST64) parts.push(`0x${(i.immHi >>> 0).toString(16)}:${(i.imm >>> 0).toString(16)}`);
    if (i.op === Op.JUMP || i.op === Op.BRANCH || i.op === Op.EXIT || i.op === Op.EA) parts.push(`0x${i.imm.toString(16)}`);
    if (i.op === Op.BRANCH) parts.push(`0x${i.imm2.toString(16)}`);
    if (i.op === Op.FLAGS || i.op === Op.COND || i.op === Op.EXIT || i.op === Op.RESUME || i.op === Op.RAISE || i.op === Op.HELPER) parts.push(`k=${i.k}`);
    lines.push(`  ${i.dst >= 0 ? t(i.dst) + ' = ' : ''}${parts.join(' ')}`);
  }
  return lines.join('\n');
}
