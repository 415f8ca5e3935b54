/**
 * SHL/SHR/SAR by CL. Constant counts are lowered to IR (src/ir/lift.ts); a variable count needs
 * "flags change only when the masked count is non-zero", which is simplest as a helper.
 */
import { CcOp, setLazy } from '../flags.js';
import { readOp, writeOpAt, effAddr } from '../operands.js';
import { OpKind } from '../../frontend/insn.js';
import { bin32, bin64, extend32 } from '../../ir/interp.js';
import { AluOp } from '../../ir/ops.js';
import { R } from '../../ir/semantics.js';
import type { Helper } from './index.js';

function shiftBy(k: AluOp, cc: CcOp): Helper {
  return (cpu, insn) => {
    const op = insn.ops[0];
    const size = op.size;
    const count = readOp(cpu, insn, 1) & (size === 8 ? 63 : 31);
    const addr = op.kind === OpKind.Mem ? effAddr(cpu, insn) : 0;
    const lo = readOp(cpu, insn, 0);
    const hi = cpu.hi;
    if (count === 0) {
      // No flags change, but a 32-bit register destination is still written, zeroing its upper half.
      if (size === 4 && op.kind !== OpKind.Mem) writeOpAt(cpu, insn, addr, 0, lo, 0);
      return;
    }
    let rl: number, rh = 0, sl: number, sh = 0, s2 = 0;
    if (size === 8) {
      rl = bin64(k, lo, hi, count, 0);
      rh = R.hi;
      sl = bin64(k, lo, hi, count - 1, 0);
      sh = R.hi;
      s2 = hi >>> 31;
    } else {
      rl = bin32(k, size, lo, count);
      sl = k === AluOp.SAR ? extend32(lo, size, true) >> (count - 1) : bin32(k, 4, lo, count - 1);
      s2 = (lo >>> (size * 8 - 1)) & 1;
    }
    writeOpAt(cpu, insn, addr, 0, rl, rh);
    setLazy(cpu, cc, size, rl, rh, sl, sh, s2);
  };
}

export const SHIFT_HELPERS: Record<string, Helper> = {
  shl: shiftBy(AluOp.SHL, CcOp.SHL),
  shr: shiftBy(AluOp.SHR, CcOp.SHR),
  sar: shiftBy(AluOp.SAR, CcOp.SAR),
};
