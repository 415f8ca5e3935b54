/**
 * What compiled blocks call into: the state views, memory, helpers and the slow paths for
 * flags, passed once to each block's factory so the block body refers to them as closure
 * constants (monomorphic, no property lookups on the hot path).
 */
import type { Cpu } from '../cpu/cpu.js';
import { computeFlags, condFromFlags, cond, getRflags, setRflags } from '../cpu/flags.js';
import { HELPERS } from '../cpu/helpers/index.js';
import { segBase } from '../cpu/operands.js';
import { F, ICOUNT_F64, S } from '../cpu/state.js';
import { R, imulOverflow32, imulOverflow64, mul64, sar64, shl64, shr64 } from '../ir/semantics.js';
import { setRip } from '../ir/interp.js';

export class JitRuntime {
  readonly s: Int32Array;
  readonly f64: Float64Array;
  readonly mem: Cpu['mem'];
  readonly H = HELPERS;
  readonly R = R;
  readonly mul64 = mul64;
  readonly imulOverflow64 = imulOverflow64;
  readonly imulOverflow32 = imulOverflow32;
  readonly shl64 = shl64;
  readonly shr64 = shr64;
  readonly sar64 = sar64;
  /** Conditions on a flags word held in a local (after an inline UCOMISD). */
  readonly condFromFlags = condFromFlags;

  constructor(readonly cpu: Cpu) {
    this.s = cpu.s;
    this.f64 = cpu.st.f64;
    this.mem = cpu.mem;
  }

  /**
   * Counts invalidations of translated code (engine.ts). A region notes it at entry and checks it
   * at each internal jump: a store of its own may have rewritten a member, whose old code must
   * not run, so the region leaves for the dispatcher, which translates the new bytes.
   */
  readonly codeEpoch = new Int32Array(1);

  /** Scratch lanes for a 16-byte memory source of inline SSE code (jit/vector.ts). */
  readonly v = new Int32Array(4);

  /** High half of the last mulU32. */
  hi = 0;

  /** Unsigned 32x32 -> 64-bit product (PMULUDQ inline): the low half, the high half in `hi`. */
  mulU32(a: number, b: number): number {
    a >>>= 0;
    b >>>= 0;
    const a0 = a & 0xffff, a1 = a >>> 16, b0 = b & 0xffff, b1 = b >>> 16;
    const mid = a1 * b0 + a0 * b1; // < 2^33: exact
    const lo = a0 * b0 + (mid % 65536) * 65536; // < 2^49: exact
    this.hi = (a1 * b1 + Math.floor(mid / 65536) + Math.floor(lo / 4294967296)) | 0;
    return lo | 0;
  }

  /** Condition cc from a lazy-flags record held in a block's locals (the unfused slow path). */
  condOf(cc: number, opsz: number, dl: number, dh: number, sl: number, sh: number, s2: number): number {
    return condFromFlags(cc, computeFlags(opsz >>> 2, opsz & 3, dl, dh, sl, sh, s2)) ? 1 : 0;
  }

  /** Condition cc from the flags in the state. */
  cond(cc: number): number {
    return cond(this.cpu, cc) ? 1 : 0;
  }

  flagsOf(opsz: number, dl: number, dh: number, sl: number, sh: number, s2: number): number {
    return (this.s[S.FLAGS] & ~F.OSZAPC) | computeFlags(opsz >>> 2, opsz & 3, dl, dh, sl, sh, s2) | F.FIXED;
  }

  getflags(): number {
    return getRflags(this.cpu);
  }

  setflags(v: number, mask: number): void {
    setRflags(this.cpu, (getRflags(this.cpu) & ~mask) | (v & mask));
  }

  segBase(seg: number): number {
    return segBase(this.cpu, seg);
  }

  /** A guest exception inside a block: RIP of the faulting instruction, instructions retired before it. */
  faultAt(rip: number, retired: number): void {
    setRip(this.s, rip);
    this.f64[ICOUNT_F64] += retired;
  }
}
