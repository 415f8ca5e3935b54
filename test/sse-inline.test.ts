/**
 * The JIT's inline double-precision SSE2 code (jit/vector.ts) against the helpers it stands in
 * for: a loop runs every inline form over operand pairs chosen at the edges of the fast path's
 * guard (zeros of both signs, the smallest normal and its neighbours, denormals, huge values
 * whose products overflow, tiny ones whose products underflow, infinities, quiet and signalling
 * NaNs with payloads) under MXCSR values that do and do not let the fast path run (PE clear or
 * set, directed rounding, FTZ, DAZ), and stores every result, RFLAGS and MXCSR. The interpreter
 * (helpers only) is the reference; one-instruction blocks and the JIT must store the same bytes.
 * The helpers themselves are checked against this CPU by test/vectors.
 */
import { describe, expect, it } from 'vitest';
import { DATA, MODES, endedNormally, runSnippet } from './helpers/asm.js';

/** Doubles as [lo, hi] bit patterns. */
const VALUES: [number, number][] = [
  [0, 0x3ff80000], // 1.5
  [0, 0xc0020000 | 0], // -2.25
  [0, 0], // +0
  [0, 0x80000000 | 0], // -0
  [0, 0x00100000], // smallest normal
  [1, 0x00100000], // its successor
  [-1, 0x000fffff], // largest denormal
  [1, 0], // smallest denormal
  [0, 0x20000000], // 2^-511: squares to 2^-1022, the smallest normal, exactly
  [0x55555555, 0x1ff55555], // a bit above 2^-512: its square is tiny and inexact
  [0, 0x7fe00000], // 2^1023
  [-1, 0x7fefffff], // largest finite
  [0, 0x7ff00000], // +inf
  [0, 0xfff00000 | 0], // -inf
  [0x1234, 0x7ff80000], // quiet NaN with a payload
  [1, 0x7ff00000], // signalling NaN
  [0x55555555, 0x3fd55555], // 1/3 (inexact products and quotients)
  [0, 0x41e00000], // 2^31: just out of int32 range
  [0, 0xc3e00000 | 0], // -2^63: the smallest int64
  [0xfffffc00 | 0, 0x43dfffff], // largest double below 2^63
];

const MXCSR = [0x1f80, 0x1fa0, 0x3fa0, 0x5fa0, 0x9fa0, 0x1fe0, 0x1fa1];

const CASE_BYTES = 32;
const OUT = DATA + 0x2000;
const OUT_BYTES = 200;
/** Cases per run: inputs and results fit the snippet's 64 KiB data area. */
const BATCH = 200;

/** For each case: a, b, mxcsr at DATA + CASE_BYTES*i; results at OUT + OUT_BYTES*i. */
const SRC = `
    mov esi, ${DATA}
    mov edi, ${OUT}
    mov ecx, CASES
  1:
    ldmxcsr [rsi+16]
    movsd xmm0, [rsi]
    movsd xmm1, [rsi+8]
    movapd xmm2, xmm0
    addsd xmm2, xmm1
    movsd [rdi], xmm2
    movapd xmm2, xmm0
    subsd xmm2, [rsi+8]
    movsd [rdi+8], xmm2
    movapd xmm2, xmm0
    mulsd xmm2, xmm1
    movsd [rdi+16], xmm2
    movapd xmm2, xmm0
    divsd xmm2, [rsi+8]
    movsd [rdi+24], xmm2
    sqrtsd xmm2, xmm1
    movsd [rdi+32], xmm2
    movapd xmm2, xmm0
    minsd xmm2, xmm1
    movsd [rdi+40], xmm2
    movapd xmm2, xmm0
    maxsd xmm2, [rsi+8]
    movsd [rdi+48], xmm2
    movupd xmm3, [rsi]
    movapd xmm4, xmm3
    shufpd xmm4, xmm4, 1
    movapd xmm5, xmm3
    mulpd xmm5, xmm4
    movupd [rdi+56], xmm5
    movapd xmm5, xmm3
    divpd xmm5, xmm4
    movupd [rdi+72], xmm5
    addpd xmm3, xmm4
    subpd xmm3, xmm4
    movupd [rdi+88], xmm3
    stmxcsr [rdi+104]
    ucomisd xmm0, xmm1
    pushfq
    pop rax
    mov [rdi+108], eax
    seta byte ptr [rdi+112]
    setb byte ptr [rdi+113]
    sete byte ptr [rdi+114]
    setp byte ptr [rdi+115]
    comisd xmm1, [rsi]
    setbe byte ptr [rdi+116]
    stmxcsr [rdi+120]
    ldmxcsr [rsi+16]
    mov eax, 0x77777777
    cvttsd2si eax, xmm0
    mov [rdi+124], eax
    cvttsd2si rax, [rsi+8]
    mov [rdi+128], rax
    cvtsi2sd xmm6, rax
    movsd [rdi+136], xmm6
    cvtsi2sd xmm6, dword ptr [rsi+8]
    movsd [rdi+144], xmm6
    movq rdx, xmm1
    mov [rdi+152], rdx
    movd xmm7, edx
    movq [rdi+160], xmm7
    movq xmm7, rax
    movhpd xmm7, [rsi]
    movupd [rdi+168], xmm7
    movlpd xmm7, [rsi+8]
    movhpd [rdi+184], xmm7
    movd [rdi+192], xmm7
    stmxcsr [rdi+196]
    add rsi, ${CASE_BYTES}
    add rdi, ${OUT_BYTES}
    dec ecx
    jnz 1b
`;

function cases(): { a: [number, number]; b: [number, number]; mxcsr: number }[] {
  const out = [];
  let k = 0;
  for (const a of VALUES) for (const b of VALUES) out.push({ a, b, mxcsr: MXCSR[k++ % MXCSR.length] });
  return out;
}

describe('inline double-precision SSE2 (jit/vector.ts)', () => {
  const list = cases();
  const run = (mode: (typeof MODES)[number]) => {
    const out: number[] = [];
    for (let first = 0; first < list.length; first += BATCH) out.push(...runBatch(mode, list.slice(first, first + BATCH)));
    return out;
  };
  const runBatch = (mode: (typeof MODES)[number], batch: typeof list) => {
    const src = SRC.replace('CASES', String(batch.length));
    const r = runSnippet(src, mode, (cpu) => {
      batch.forEach((c, i) => {
        const at = DATA + CASE_BYTES * i;
        cpu.mem.write64(at, c.a[0], c.a[1]);
        cpu.mem.write64(at + 8, c.b[0], c.b[1]);
        cpu.mem.write32(at + 16, c.mxcsr);
      });
    });
    expect(endedNormally(r, src), String(r.end)).toBe(true);
    return Array.from({ length: (batch.length * OUT_BYTES) / 4 }, (_, i) => r.cpu.mem.read32(OUT + 4 * i));
  };
  const reference = run('interp');

  it('the reference run produced results (NaNs, flags and MXCSR states included)', () => {
    // Guards against a vacuous comparison: the interpreter stored distinct MXCSR outcomes.
    const mxcsrSeen = new Set(list.map((_, i) => reference[(i * OUT_BYTES + 196) / 4]));
    expect(mxcsrSeen.size).toBeGreaterThan(5);
  });

  for (const mode of MODES.filter((m) => m !== 'interp')) {
    it(`stores the same bytes as the helpers, case by case (${mode})`, () => {
      const got = run(mode);
      for (let i = 0; i < list.length; i++) {
        const span = (v: number[]) => v.slice((i * OUT_BYTES) / 4, ((i + 1) * OUT_BYTES) / 4).map((x) => (x >>> 0).toString(16));
        expect(span(got), `case ${i}: a=${list[i].a} b=${list[i].b} mxcsr=${list[i].mxcsr.toString(16)}`).toEqual(span(reference));
      }
    });
  }
});
