/**
 * The reference IR interpreter (`--no-jit`): executes an IrBlock directly against the CPU
 * state. It defines what every IR op means; the JIT's emitters must agree with it (the test
 * suite runs every guest program in both). Registers and flags live in the state buffer, so
 * a faulting op leaves precise state behind without any unwinding (see the ordering rule in
 * lift.ts). It is one switch over the ops: small per-op closures were tried instead and were
 * slower in V8, every op paying a megamorphic call.
 */
import type { Cpu } from '../cpu/cpu.js';
import { CpuException } from '../cpu/exceptions.js';
import { cond, getRflags, setLazy, setRflags } from '../cpu/flags.js';
import { HELPERS } from '../cpu/helpers/index.js';
import { S } from '../cpu/state.js';
import { segBase } from '../cpu/operands.js';
import type { IrBlock } from './ir.js';
import { mask } from './ir.js';
import { AluOp, Op, Ty, UnOp } from './ops.js';
import { R, imulOverflow32, imulOverflow64, mul64, sar64, shl64, shr64, toAddr } from './semantics.js';

let LO = new Int32Array(1024);
let HI = new Int32Array(1024);
let AD = new Float64Array(1024);

/** Result of running a block: the exit index for chaining (>= 0) or -1 for an indirect exit; exits with a reason set S.EXIT_REASON. */
export function interpretBlock(cpu: Cpu, blk: IrBlock): number {
  const s = cpu.s;
  const mem = cpu.mem;
  const n = blk.types.length;
  if (n > LO.length) {
    LO = new Int32Array(n * 2);
    HI = new Int32Array(n * 2);
    AD = new Float64Array(n * 2);
  }
  const lo = LO, hi = HI, ad = AD;
  const code = blk.code;
  let pc = 0;
  let raised = false;
  try {
    for (; pc < code.length; pc++) {
      const i = code[pc];
      switch (i.op) {
        case Op.CONST32:
          lo[i.dst] = i.imm;
          break;
        case Op.CONST64:
          lo[i.dst] = i.imm;
          hi[i.dst] = i.immHi;
          break;
        case Op.GET: {
          const r = 2 * i.reg;
          if (i.size === 8) (lo[i.dst] = s[r]), (hi[i.dst] = s[r + 1]);
          else if (i.k) lo[i.dst] = (s[r] >>> 8) & 0xff;
          else lo[i.dst] = mask(s[r], i.size);
          break;
        }
        case Op.PUT: {
          const r = 2 * i.reg;
          const v = lo[i.a];
          if (i.size === 8) (s[r] = v), (s[r + 1] = hi[i.a]);
          else if (i.size === 4) (s[r] = v), (s[r + 1] = 0);
          else if (i.size === 2) s[r] = (s[r] & ~0xffff) | (v & 0xffff);
          else if (i.k) s[r] = (s[r] & ~0xff00) | ((v & 0xff) << 8);
          else s[r] = (s[r] & ~0xff) | (v & 0xff);
          break;
        }
        case Op.BIN:
          if (i.size === 8) {
            lo[i.dst] = bin64(i.k, lo[i.a], hi[i.a], lo[i.b], hi[i.b]);
            hi[i.dst] = R.hi;
          } else lo[i.dst] = bin32(i.k, i.size, lo[i.a], lo[i.b]);
          break;
        case Op.UN:
          if (i.k === UnOp.ISZERO) lo[i.dst] = (i.size === 8 ? (lo[i.a] | hi[i.a]) : mask(lo[i.a], i.size)) === 0 ? 1 : 0;
          else if (i.size === 8) {
            if (i.k === UnOp.NOT) (lo[i.dst] = ~lo[i.a]), (hi[i.dst] = ~hi[i.a]);
            else (lo[i.dst] = -lo[i.a] | 0), (hi[i.dst] = (~hi[i.a] + (lo[i.a] === 0 ? 1 : 0)) | 0);
          } else lo[i.dst] = mask(i.k === UnOp.NOT ? ~lo[i.a] : -lo[i.a], i.size);
          break;
        case Op.EXT: {
          const v = extend32(lo[i.a], i.size, i.k === 1);
          if (i.size2 === 8) (lo[i.dst] = v), (hi[i.dst] = i.k === 1 ? v >> 31 : 0);
          else lo[i.dst] = mask(v, i.size2);
          break;
        }
        case Op.LO:
          lo[i.dst] = lo[i.a];
          break;
        case Op.EA: {
          if (i.k !== 8) {
            let a = i.imm | 0;
            if (i.a >= 0) a = (a + lo[i.a]) | 0;
            if (i.b >= 0) a = (a + Math.imul(lo[i.b], i.scale)) | 0;
            const lin = (i.k === 2 ? a & 0xffff : a >>> 0) + segBase(cpu, i.reg);
            ad[i.dst] = i.size2 === 4 ? lin % 4294967296 : lin;
          } else {
            let a = i.imm;
            if (i.a >= 0) a += toAddr(lo[i.a], hi[i.a]);
            if (i.b >= 0) a += toAddr(lo[i.b], hi[i.b]) * i.scale;
            if (i.reg >= 0) a += segBase(cpu, i.reg);
            ad[i.dst] = a;
          }
          break;
        }
        case Op.TOADDR:
          ad[i.dst] = toAddr(lo[i.a], hi[i.a]);
          break;
        case Op.LOAD: {
          const a = ad[i.a];
          if (i.size === 1) lo[i.dst] = mem.read8(a);
          else if (i.size === 2) lo[i.dst] = mem.read16(a);
          else if (i.size === 4) lo[i.dst] = mem.read32(a);
          else (lo[i.dst] = mem.read64(a)), (hi[i.dst] = mem.hi);
          break;
        }
        case Op.STORE: {
          const a = ad[i.a];
          if (i.size === 1) mem.write8(a, lo[i.b]);
          else if (i.size === 2) mem.write16(a, lo[i.b]);
          else if (i.size === 4) mem.write32(a, lo[i.b]);
          else mem.write64(a, lo[i.b], hi[i.b]);
          break;
        }
        case Op.FLAGS:
          setLazy(cpu, i.k, i.size, lo[i.a], i.size === 8 ? hi[i.a] : 0, i.b >= 0 ? lo[i.b] : 0, i.b >= 0 && blk.types[i.b] === Ty.I64 ? hi[i.b] : 0, i.c >= 0 ? lo[i.c] : 0);
          break;
        case Op.COND:
          lo[i.dst] = cond(cpu, i.k) ? 1 : 0;
          break;
        case Op.GETFLAGS:
          lo[i.dst] = getRflags(cpu);
          break;
        case Op.SETFLAGS:
          setRflags(cpu, (getRflags(cpu) & ~i.imm) | (lo[i.a] & i.imm));
          break;
        case Op.SELECT:
          lo[i.dst] = lo[i.a] ? lo[i.b] : lo[i.c];
          if (i.size === 8) hi[i.dst] = lo[i.a] ? hi[i.b] : hi[i.c];
          break;
        case Op.MUL:
          if (i.size === 8) (lo[i.dst] = mul64(lo[i.a], hi[i.a], lo[i.b], hi[i.b])), (hi[i.dst] = R.hi);
          else lo[i.dst] = mask(Math.imul(lo[i.a], lo[i.b]), i.size);
          break;
        case Op.IMULOVF:
          lo[i.dst] = i.size === 8 ? imulOverflow64(lo[i.a], hi[i.a], lo[i.b], hi[i.b]) : imulOverflow32(extend32(lo[i.a], i.size, true), extend32(lo[i.b], i.size, true), i.size);
          break;
        case Op.HELPER: {
          const insn = blk.insns[i.k];
          s[S.RIP_LO] = insn.addr | 0;
          s[S.RIP_HI] = Math.floor(insn.addr / 4294967296);
          HELPERS[insn.mnem](cpu, insn);
          break;
        }
        case Op.JUMP:
          setRip(s, i.imm);
          cpu.st.icount += blk.insns.length;
          return 0;
        case Op.BRANCH:
          cpu.st.icount += blk.insns.length;
          if (lo[i.a]) {
            setRip(s, i.imm);
            return 0;
          }
          setRip(s, i.imm2);
          return 1;
        case Op.JUMPI:
          setRip(s, ad[i.a]);
          cpu.st.icount += blk.insns.length;
          return -1;
        case Op.EXIT:
          setRip(s, i.imm);
          s[S.EXIT_REASON] = i.k;
          cpu.st.icount += blk.insns.length;
          return -2;
        case Op.RESUME:
          s[S.EXIT_REASON] = i.k;
          cpu.st.icount += blk.insns.length;
          return -2;
        case Op.TRACK:
          cpu.profiler?.track(i.k, i.imm, i.a >= 0 ? toAddr(lo[i.a], hi[i.a]) : 0);
          break;
        case Op.RAISE:
          setRip(s, i.imm2);
          cpu.st.icount += i.gi;
          raised = true;
          throw i.k < 0 ? blk.error! : new CpuException(i.k, i.imm);
      }
    }
  } catch (e) {
    if (e instanceof CpuException && !raised) {
      const gi = code[pc].gi;
      setRip(s, blk.insns[gi].addr);
      cpu.st.icount += gi;
    }
    throw e;
  }
  throw new Error('IR block without an exit');
}

export function setRip(s: Int32Array, v: number): void {
  s[S.RIP_LO] = v | 0;
  s[S.RIP_HI] = Math.floor(v / 4294967296);
}

/** Sign- or zero-extend the low `size` bytes of v to int32. */
export function extend32(v: number, size: number, signed: boolean): number {
  if (size === 1) return signed ? (v << 24) >> 24 : v & 0xff;
  if (size === 2) return signed ? (v << 16) >> 16 : v & 0xffff;
  return v | 0;
}

export function bin32(k: number, size: number, a: number, b: number): number {
  switch (k) {
    case AluOp.ADD: return mask(a + b, size);
    case AluOp.SUB: return mask(a - b, size);
    case AluOp.AND: return mask(a & b, size);
    case AluOp.OR: return mask(a | b, size);
    case AluOp.XOR: return mask(a ^ b, size);
    case AluOp.SHL: return b > 31 ? 0 : mask(a << b, size);
    case AluOp.SHR: return b > 31 ? 0 : mask(mask(a, size) >>> b, size);
    case AluOp.SAR: return mask(extend32(a, size, true) >> Math.min(b, 31), size);
  }
  throw new Error(`bin32: op ${k}`);
}

/** 64-bit binary op; the high half goes to R.hi. */
export function bin64(k: number, al: number, ah: number, bl: number, bh: number): number {
  switch (k) {
    case AluOp.ADD: {
      const lo = (al + bl) | 0;
      R.hi = (ah + bh + (lo >>> 0 < al >>> 0 ? 1 : 0)) | 0;
      return lo;
    }
    case AluOp.SUB: {
      R.hi = (ah - bh - (al >>> 0 < bl >>> 0 ? 1 : 0)) | 0;
      return (al - bl) | 0;
    }
    case AluOp.AND: R.hi = ah & bh; return al & bl;
    case AluOp.OR: R.hi = ah | bh; return al | bl;
    case AluOp.XOR: R.hi = ah ^ bh; return al ^ bl;
    case AluOp.SHL: return shl64(al, ah, bl & 63);
    case AluOp.SHR: return shr64(al, ah, bl & 63);
    case AluOp.SAR: return sar64(al, ah, bl & 63);
  }
  throw new Error(`bin64: op ${k}`);
}

