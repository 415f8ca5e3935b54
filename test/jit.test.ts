/** The JIT and translation cache: self-modifying code, code/data sharing a page, chaining. */
import { describe, expect, it } from 'vitest';
import { MODES, endedNormally, runSnippet } from './helpers/asm.js';

describe('self-modifying code', () => {
  // `target` returns its immediate in eax; the snippet calls it, patches the immediate, calls again.
  const src = `
    lea rdi, [rip+target]
    call target
    mov ebx, eax
    mov dword ptr [rdi+1], 5
    call target
    mov ecx, eax
    mov dword ptr [rip+data], 77      # data in the same page, another granule: no invalidation
    call target
    mov edx, eax
    jmp done
    .p2align 6
  target:
    mov eax, 1
    ret
    .p2align 6
  data:
    .long 0
    .p2align 6
  done:`;

  for (const mode of MODES) {
    it(`runs rewritten code and keeps code next to written data (${mode})`, () => {
      const r = runSnippet(src, mode, undefined, { rwx: true });
      expect(endedNormally(r, src), String(r.end)).toBe(true);
      expect(r.cpu.s[3 * 2]).toBe(1);
      expect(r.cpu.s[1 * 2]).toBe(5);
      expect(r.cpu.s[2 * 2]).toBe(5);
      // One invalidation: the patched block. The data store next to it invalidates nothing.
      expect(r.engine.stats.invalidations).toBe(1);
    });
  }

  it('leaves a region whose own store rewrote one of its members before running the old code', () => {
    // At the JIT threshold of 1 the block that patches `target` and calls it becomes a region
    // holding `target` too (it ran once already); the store invalidates the region while it runs.
    const r = runSnippet(src, 'jit', undefined, { rwx: true });
    expect(endedNormally(r, src), String(r.end)).toBe(true);
    expect(r.engine.stats.regionsCompiled).toBeGreaterThan(0);
    expect(r.cpu.s[1 * 2]).toBe(5);
    expect(r.cpu.s[2 * 2]).toBe(5);
  });
});

describe('translation cache', () => {
  it('chains direct exits so a hot loop stops looking blocks up', () => {
    const src = 'mov ecx, 10000\n1: add eax, ecx\ncmp ecx, 5000\njne 2f\nnop\n2: dec ecx\njnz 1b';
    const r = runSnippet(src, 'jit');
    expect(endedNormally(r, src)).toBe(true);
    // Four blocks; ~20000 block transitions, but only a handful of lookups.
    expect(r.engine.stats.cacheMisses).toBeLessThan(10);
    expect(r.engine.stats.cacheHits).toBeLessThan(50);
  });

  it('compiles a hot loop over several blocks into one region', () => {
    const src = 'mov ecx, 100000\n1: test ecx, 3\njz 2f\nadd eax, ecx\njmp 3f\n2: sub eax, 7\n3: dec ecx\njnz 1b';
    const r = runSnippet(src, 'jit');
    expect(endedNormally(r, src)).toBe(true);
    expect(r.engine.stats.regionsCompiled).toBeGreaterThan(0);
    const ref = runSnippet(src, 'interp');
    expect(r.cpu.s[0]).toBe(ref.cpu.s[0]);
    expect(r.cpu.st.icount).toBe(ref.cpu.st.icount);
  });
});

describe('faults inside helpers', () => {
  // A REP MOVS that runs off the end of the data mapping faults part-way: RCX, RSI and RDI must
  // show the progress made (the helper wrote them to the state), not the values the compiled
  // block held before it called the helper. Found by musl's memcpy under lazily mapped memory.
  const src = `
    mov rcx, rdx
    shr rcx, 3
    rep movsq`;
  for (const mode of MODES) {
    it(`keeps the state a faulting REP MOVS left (${mode})`, () => {
      const r = runSnippet(src, mode, (cpu) => {
        cpu.st.setReg(2, 8 * 100); // rdx: 100 qwords
        cpu.st.setReg(6, 0x600000); // rsi
        cpu.st.setReg(7, 0x610000 - 8 * 40); // rdi: 40 qwords before the end of the mapping
      });
      expect(r.end.vector).toBe(14);
      expect(r.cpu.st.reg(1)).toBe(60);
      expect(r.cpu.st.reg(7)).toBe(0x610000);
      expect(r.cpu.st.reg(6)).toBe(0x600000 + 8 * 40);
    });
  }
});
