/**
 * IR passes run on every block before it is interpreted or compiled.
 *
 * Dead-flag elimination: a FLAGS op is dead when a later FLAGS op of the same block replaces
 * the whole record before anything reads the flags (COND, GETFLAGS, SETFLAGS, a helper, an
 * exit) and before anything that can fault (a fault must leave the older flags visible).
 * Dead-code elimination then drops pure ops whose results nobody uses.
 */
import type { IrBlock } from './ir.js';
import { OPS, Op } from './ops.js';

export function optimize(blk: IrBlock): void {
  eliminateDeadFlags(blk);
  eliminateDeadCode(blk);
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
