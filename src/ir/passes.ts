/**
 * IR passes run on every block before it is interpreted or compiled.
 *
 * Register-read forwarding: a GET of a general register whose value the block already holds in
 * a temporary (from an earlier GET or PUT of the same width, with no helper in between, since
 * helpers may write registers) is dropped and its uses read that temporary.
 *
 * Dead-flag elimination: a FLAGS op is dead when a later FLAGS op of the same block replaces
 * the whole record before anything reads the flags (COND, GETFLAGS, SETFLAGS, a helper, an
 * exit) and before anything that can fault (a fault must leave the older flags visible).
 * Dead-code elimination then drops pure ops whose results nobody uses.
 */
import type { IrBlock } from './ir.js';
import { OPS, Op } from './ops.js';

export function optimize(blk: IrBlock): void {
  forwardRegisterReads(blk);
  eliminateDeadFlags(blk);
  eliminateDeadCode(blk);
}

/** Registers GET and PUT can name (the GPRs). */
const GPRS = 16;

export function forwardRegisterReads(blk: IrBlock): void {
  const alias = Int32Array.from(blk.types, (_, x) => x);
  /** Per register: the temporary holding it (-1: none), and its width (4: the low 32 bits, 8: all 64). */
  const holder = new Int32Array(GPRS).fill(-1);
  const width = new Int8Array(GPRS);
  const rename = (x: number) => (x >= 0 ? alias[x] : x);
  const kept = blk.code.filter((i) => {
    (i.a = rename(i.a)), (i.b = rename(i.b)), (i.c = rename(i.c)), (i.d = rename(i.d));
    const r = i.reg;
    const whole = !i.k && (i.size === 8 || i.size === 4);
    if (i.op === Op.HELPER) holder.fill(-1);
    else if (r < 0 || r >= GPRS) return true;
    else if (i.op === Op.GET && whole) {
      const h = holder[r];
      if (h >= 0 && width[r] === i.size && blk.types[h] === blk.types[i.dst]) {
        alias[i.dst] = h;
        return false;
      }
      (holder[r] = i.dst), (width[r] = i.size);
    } else if (i.op === Op.PUT) {
      if (whole) (holder[r] = i.a), (width[r] = i.size);
      else holder[r] = -1;
    }
    return true;
  });
  if (kept.length !== blk.code.length) blk.code.splice(0, blk.code.length, ...kept);
}

export function eliminateDeadFlags(blk: IrBlock): void {
  const code = blk.code;
  let overwritten = false; // a later FLAGS op replaces the record, with no reader or fault in between
  const keep: boolean[] = new Array(code.length).fill(true);
  for (let pc = code.length - 1; pc >= 0; pc--) {
    const i = code[pc];
    const info = OPS[i.op];
    if (i.op === Op.FLAGS) {
      if (overwritten) keep[pc] = false;
      overwritten = true;
    } else if (info.readsFlags || info.faults || info.ends) overwritten = false;
  }
  if (keep.every(Boolean)) return;
  blk.code.splice(0, code.length, ...code.filter((_, pc) => keep[pc]));
}

/** Ops with no effect beyond their result. */
function isPure(op: Op): boolean {
  const info = OPS[op];
  return info.hasDst && !info.faults && !info.readsFlags && op !== Op.GET;
}

export function eliminateDeadCode(blk: IrBlock): void {
  const code = blk.code;
  const used = new Uint8Array(blk.types.length);
  const keep: boolean[] = new Array(code.length).fill(true);
  for (let pc = code.length - 1; pc >= 0; pc--) {
    const i = code[pc];
    if ((isPure(i.op) || i.op === Op.GET || i.op === Op.COND || i.op === Op.GETFLAGS) && !used[i.dst]) {
      keep[pc] = false;
      continue;
    }
    for (const x of [i.a, i.b, i.c, i.d]) if (x >= 0) used[x] = 1;
  }
  if (keep.every(Boolean)) return;
  blk.code.splice(0, code.length, ...code.filter((_, pc) => keep[pc]));
}
