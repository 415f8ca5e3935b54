/**
 * Inline JavaScript for the hot SSE2 integer and move instructions, so compiled code runs them
 * on the XMM lanes in the state array instead of calling their interpreter helper (which
 * spills and reloads registers around the call and copies operands through scratch vectors).
 *
 * An XMM register is four int32 lanes at S.XMM + 4*reg (lane 0 = bytes 0-3). Every lowering
 * reads all source and destination lanes into block-scoped constants before it writes, so
 * operands may alias, and reads a memory source completely before changing anything, so a
 * fault leaves the instruction restartable (the unit's fault path reports it at this
 * instruction). Aligned forms check the 16-byte alignment their helpers check (#GP(0)).
 * Instructions or forms not listed here keep their helper; the helper remains the definition
 * of the semantics, and the differential vectors run every form in all three execution modes.
 */
import * as acorn from 'acorn';
import type * as E from 'estree';
import { S } from '../cpu/state.js';
import { type Insn, OpKind } from '../frontend/insn.js';

/** Lane expressions of the destination (y0-y3) and source (x0-x3), and the result lanes to write. */
type LaneOp = (imm: number) => [string, string, string, string];

const lanes = (f: (k: number) => string): [string, string, string, string] => [f(0), f(1), f(2), f(3)];

/** Lane-wise int32 operations. */
const dword = (f: (y: string, x: string) => string): LaneOp => () => lanes((k) => f(`y${k}`, `x${k}`));
/** Two 16-bit lanes per int32, computed separately. */
const words = (lo: (y: string, x: string) => string, hi: (y: string, x: string) => string): LaneOp => () =>
  lanes((k) => `((${lo(`y${k}`, `x${k}`)}) & 0xffff) | ((${hi(`y${k}`, `x${k}`)}) << 16)`);

const LANE_OPS: Record<string, LaneOp> = {
  paddd: dword((y, x) => `(${y} + ${x}) | 0`),
  psubd: dword((y, x) => `(${y} - ${x}) | 0`),
  pand: dword((y, x) => `${y} & ${x}`),
  andps: dword((y, x) => `${y} & ${x}`),
  andpd: dword((y, x) => `${y} & ${x}`),
  pandn: dword((y, x) => `~${y} & ${x}`),
  andnps: dword((y, x) => `~${y} & ${x}`),
  andnpd: dword((y, x) => `~${y} & ${x}`),
  por: dword((y, x) => `${y} | ${x}`),
  orps: dword((y, x) => `${y} | ${x}`),
  orpd: dword((y, x) => `${y} | ${x}`),
  pxor: dword((y, x) => `${y} ^ ${x}`),
  xorps: dword((y, x) => `${y} ^ ${x}`),
  xorpd: dword((y, x) => `${y} ^ ${x}`),
  pcmpeqd: dword((y, x) => `${y} === ${x} ? -1 : 0`),
  pcmpgtd: dword((y, x) => `${y} > ${x} ? -1 : 0`),
  paddw: words((y, x) => `${y} + ${x}`, (y, x) => `(${y} >>> 16) + (${x} >>> 16)`),
  psubw: words((y, x) => `${y} - ${x}`, (y, x) => `(${y} >>> 16) - (${x} >>> 16)`),
  // Products of two signed 16-bit values fit an int32 exactly.
  pmullw: words((y, x) => `Math.imul(${y} << 16 >> 16, ${x} << 16 >> 16)`, (y, x) => `Math.imul(${y} >> 16, ${x} >> 16)`),
  pmulhw: words((y, x) => `Math.imul(${y} << 16 >> 16, ${x} << 16 >> 16) >> 16`, (y, x) => `Math.imul(${y} >> 16, ${x} >> 16) >> 16`),
  // Unsigned products stay below 2^32: exact doubles, and >>> 16 takes their high word.
  pmulhuw: words((y, x) => `((${y} & 0xffff) * (${x} & 0xffff)) >>> 16`, (y, x) => `((${y} >>> 16) * (${x} >>> 16)) >>> 16`),
  // Bytes: SWAR add/sub without carries between lanes.
  paddb: dword((y, x) => `((${y} & 0x7f7f7f7f) + (${x} & 0x7f7f7f7f)) ^ ((${y} ^ ${x}) & 0x80808080)`),
  psubb: dword((y, x) => `((${y} | 0x80808080) - (${x} & 0x7f7f7f7f)) ^ ((${y} ^ ~${x}) & 0x80808080)`),
  // 64-bit lanes as (lo, hi) pairs.
  paddq: () => {
    const q = (l: number) => [`(y${l} + x${l}) | 0`, `(y${l + 1} + x${l + 1} + (((y${l} + x${l}) >>> 0) < (x${l} >>> 0) ? 1 : 0)) | 0`];
    return [...q(0), ...q(2)] as [string, string, string, string];
  },
  psubq: () => {
    const q = (l: number) => [`(y${l} - x${l}) | 0`, `(y${l + 1} - x${l + 1} - ((y${l} >>> 0) < (x${l} >>> 0) ? 1 : 0)) | 0`];
    return [...q(0), ...q(2)] as [string, string, string, string];
  },
  // Interleaves.
  punpcklwd: () => ['(y0 & 0xffff) | (x0 << 16)', '(y0 >>> 16) | (x0 & -65536)', '(y1 & 0xffff) | (x1 << 16)', '(y1 >>> 16) | (x1 & -65536)'],
  punpckhwd: () => ['(y2 & 0xffff) | (x2 << 16)', '(y2 >>> 16) | (x2 & -65536)', '(y3 & 0xffff) | (x3 << 16)', '(y3 >>> 16) | (x3 & -65536)'],
  punpckldq: () => ['y0', 'x0', 'y1', 'x1'],
  punpckhdq: () => ['y2', 'x2', 'y3', 'x3'],
  punpcklqdq: () => ['y0', 'y1', 'x0', 'x1'],
  punpckhqdq: () => ['y2', 'y3', 'x2', 'x3'],
  unpcklps: () => ['y0', 'x0', 'y1', 'x1'],
  unpckhps: () => ['y2', 'x2', 'y3', 'x3'],
  unpcklpd: () => ['y0', 'y1', 'x0', 'x1'],
  unpckhpd: () => ['y2', 'y3', 'x2', 'x3'],
  pshufd: (imm) => lanes((k) => `x${(imm >>> (2 * k)) & 3}`),
  // Unsigned 32x32 -> 64-bit products of lanes 0 and 2 (rt.mulU32 leaves the high half in rt.hi).
  pmuludq: () => ['rt.mulU32(y0, x0)', 'rt.hi', 'rt.mulU32(y2, x2)', 'rt.hi'],
};

/** Shifts by an immediate count: [lane op for counts in range, result when the count is too large]. */
function shiftImm(mnem: string, c: number): [string, string, string, string] | null {
  switch (mnem) {
    case 'pslld': return lanes((k) => (c > 31 ? '0' : `y${k} << ${c}`));
    case 'psrld': return lanes((k) => (c > 31 ? '0' : `y${k} >>> ${c}`));
    case 'psrad': return lanes((k) => `y${k} >> ${Math.min(c, 31)}`);
    case 'psllq': case 'psrlq': {
      const left = mnem === 'psllq';
      const q = (l: number): [string, string] => {
        if (c === 0) return [`y${l}`, `y${l + 1}`];
        if (c > 63) return ['0', '0'];
        if (left) return c >= 32 ? ['0', `y${l} << ${c - 32}`] : [`y${l} << ${c}`, `(y${l + 1} << ${c}) | (y${l} >>> ${32 - c})`];
        return c >= 32 ? [`y${l + 1} >>> ${c - 32}`, '0'] : [`(y${l} >>> ${c}) | (y${l + 1} << ${32 - c})`, `y${l + 1} >>> ${c}`];
      };
      return [...q(0), ...q(2)] as [string, string, string, string];
    }
  }
  return null;
}

/** 16-byte moves: which may be unaligned. */
const MOVES: Record<string, boolean> = { movdqa: false, movaps: false, movapd: false, movdqu: true, movups: true, movupd: true };

function parse(src: string): E.Statement[] {
  return (acorn.parse(src, { ecmaVersion: 2022, sourceType: 'script' }) as unknown as E.Program).body as E.Statement[];
}

const xmm = (reg: number) => S.XMM + 4 * reg;

/** Read the source operand's four lanes into x0-x3 (memory first checks alignment). */
function readSource(insn: Insn, addr: string | null, unaligned: boolean): string {
  const src = insn.ops[1];
  if (src.kind === OpKind.Xmm) return lanes((k) => `const x${k} = s[${xmm(src.reg) + k}];`).join(' ');
  const check = unaligned ? '' : `if (${addr} % 16 !== 0) throw new CpuException(13, 0); `;
  return check + lanes((k) => `const x${k} = mem.read32(${addr} + ${4 * k});`).join(' ');
}

/**
 * JS statements for `insn` (with `addr` naming the temporary that holds its memory operand's
 * address, if any), or null when this instruction or form keeps its helper.
 */
export function inlineVector(insn: Insn, addr: string | null): E.Statement[] | null {
  const ops = insn.ops;
  const dst = ops[0];
  if (!dst) return null;
  const move = MOVES[insn.mnem];
  if (move !== undefined) {
    if (dst.kind === OpKind.Xmm) {
      if (ops[1].kind === OpKind.Mem && !addr) return null;
      const d = xmm(dst.reg);
      return parse(`{ ${readSource(insn, addr, move)} ${lanes((k) => `s[${d + k}] = x${k};`).join(' ')} }`);
    }
    // An aligned store lies in one page, so its first 32-bit write faults (if any does) before
    // anything is written.
    if (dst.kind === OpKind.Mem && !move && addr && ops[1].kind === OpKind.Xmm) {
      const x = xmm(ops[1].reg);
      return parse(`{ if (${addr} % 16 !== 0) throw new CpuException(13, 0); ${lanes((k) => `mem.write32(${addr} + ${4 * k}, s[${x + k}]);`).join(' ')} }`);
    }
    return null;
  }
  if (dst.kind !== OpKind.Xmm) return null;
  const d = xmm(dst.reg);
  const readDst = lanes((k) => `const y${k} = s[${d + k}];`).join(' ');
  // Lanes are written in order, so an rt.hi after its rt.mulU32 reads the right product.
  const write = (r: string[]) => r.map((e, k) => `s[${d + k}] = ${e};`).join(' ');
  if (ops.length === 2 && ops[1].kind === OpKind.Imm) {
    const r = shiftImm(insn.mnem, ops[1].imm & 0xff);
    return r ? parse(`{ ${readDst} ${write(r)} }`) : null;
  }
  const op = LANE_OPS[insn.mnem];
  if (!op || ops.length < 2 || (ops[1].kind === OpKind.Mem && !addr) || (ops[1].kind !== OpKind.Mem && ops[1].kind !== OpKind.Xmm)) return null;
  if (ops[1].size !== 16) return null;
  const imm = ops.length > 2 ? ops[2].imm & 0xff : 0;
  return parse(`{ ${readSource(insn, addr, false)} ${readDst} ${write(op(imm))} }`);
}
