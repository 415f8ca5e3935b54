/** Pins the state buffer layout (design.md §2): compiled code and helpers hard-code these indices. */
import { describe, expect, it } from 'vitest';
import { CpuState, ICOUNT_F64, S } from '../src/cpu/state.js';

describe('CPU state layout', () => {
  it('keeps the documented offsets', () => {
    expect([S.GPR, S.RIP_LO, S.RIP_HI, S.CC_OP, S.CC_DST_LO, S.CC_SRC_LO, S.CC_SRC2_LO, S.FLAGS]).toEqual([0, 32, 33, 34, 35, 37, 39, 41]);
    expect([S.MXCSR, S.FPU_CW, S.FPU_SW, S.FPU_TAG]).toEqual([46, 47, 48, 49]);
    expect([S.SEG, S.FS_BASE_LO, S.GS_BASE_LO, S.CR0, S.EFER, S.DR0, S.CPL, S.STAR_LO]).toEqual([192, 220, 226, 240, 247, 250, 266, 268]);
    expect([S.XMM, S.FPR, S.SIZE]).toEqual([64, 128, 320]);
    // XMM registers are 16-byte aligned for Float64Array/Float32Array views.
    expect((S.XMM * 4) % 16).toBe(0);
    // The instruction counter lies past the x87 registers and inside the buffer.
    expect(ICOUNT_F64 * 2).toBeGreaterThanOrEqual(S.FPR + 32);
    expect(ICOUNT_F64 * 8 + 8).toBeLessThanOrEqual(S.SIZE * 4);
  });

  it('stores 64-bit registers as lo/hi int32 halves', () => {
    const st = new CpuState();
    st.setReg(3, -2);
    expect([st.s[6], st.s[7]]).toEqual([-2, -1]);
    st.setReg(5, 0x123456789a);
    expect([st.s[10] >>> 0, st.s[11]]).toEqual([0x3456789a, 0x12]);
    expect(st.reg(5)).toBe(0x123456789a);
    expect(st.regU(3)).toBe(0xfffffffffffffffen);
  });

  it('starts with the architectural reset values of MXCSR and the x87 control word', () => {
    const st = new CpuState();
    expect(st.s[S.MXCSR]).toBe(0x1f80);
    expect(st.s[S.FPU_CW]).toBe(0x37f);
  });
});
