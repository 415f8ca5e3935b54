/**
 * The 512-byte FXSAVE image of the x87/SSE state, as the kernel stores it in a signal frame
 * (uc_mcontext.fpstate) and reads it back on rt_sigreturn. Signal handlers and debuggers
 * (and glibc's makecontext/swapcontext users) read and patch this image, so it follows the
 * hardware layout exactly: ST(i) slots are in stack order (physical register (TOP+i) & 7) and
 * the tag byte is FXSAVE's abridged form, which S.FPU_TAG already holds.
 */
import type { Cpu } from '../cpu/cpu.js';
import { fpuControlWord, S } from '../cpu/state.js';

export const FXSAVE_SIZE = 512;
/** MXCSR bits the CPU implements (DAZ included); a restored image may not set others. */
const MXCSR_MASK = 0xffff;

export function saveFxsave(cpu: Cpu): Buffer {
  const s = cpu.s;
  const b = Buffer.alloc(FXSAVE_SIZE);
  b.writeUInt16LE(s[S.FPU_CW] & 0xffff, 0);
  b.writeUInt16LE(s[S.FPU_SW] & 0xffff, 2);
  b[4] = s[S.FPU_TAG] & 0xff;
  b.writeUInt32LE(s[S.MXCSR] >>> 0, 24);
  b.writeUInt32LE(MXCSR_MASK, 28);
  const top = (s[S.FPU_SW] >> 11) & 7;
  for (let i = 0; i < 8; i++) {
    const r = S.FPR + 4 * ((top + i) & 7);
    b.writeInt32LE(s[r], 32 + 16 * i);
    b.writeInt32LE(s[r + 1], 36 + 16 * i);
    b.writeUInt16LE(s[r + 2] & 0xffff, 40 + 16 * i);
  }
  for (let i = 0; i < 64; i++) b.writeInt32LE(s[S.XMM + i], 160 + 4 * i);
  return b;
}

export function restoreFxsave(cpu: Cpu, b: Uint8Array): void {
  const s = cpu.s;
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  s[S.FPU_CW] = fpuControlWord(dv.getUint16(0, true));
  s[S.FPU_SW] = dv.getUint16(2, true);
  s[S.FPU_TAG] = b[4];
  s[S.MXCSR] = dv.getUint32(24, true) & MXCSR_MASK;
  const top = (s[S.FPU_SW] >> 11) & 7;
  for (let i = 0; i < 8; i++) {
    const r = S.FPR + 4 * ((top + i) & 7);
    s[r] = dv.getInt32(32 + 16 * i, true);
    s[r + 1] = dv.getInt32(36 + 16 * i, true);
    s[r + 2] = dv.getUint16(40 + 16 * i, true);
  }
  for (let i = 0; i < 64; i++) s[S.XMM + i] = dv.getInt32(160 + 4 * i, true);
}

/** The state a signal handler starts with (the kernel's fpu__clear_user_states). */
export function resetFpu(cpu: Cpu): void {
  const s = cpu.s;
  s[S.FPU_CW] = 0x37f;
  s[S.FPU_SW] = 0;
  s[S.FPU_TAG] = 0;
  s[S.MXCSR] = 0x1f80;
  s.fill(0, S.XMM, S.XMM + 64);
  s.fill(0, S.FPR, S.FPR + 32);
}
