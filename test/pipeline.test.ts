/**
 * Decoder → lifter → IR interpreter / JIT on hand-written snippets: every snippet must end
 * normally with the same registers, flags and memory in all three execution modes, and with
 * the values the manuals give.
 */
import { describe, expect, it } from 'vitest';
import { getRflags } from '../src/cpu/flags.js';
import { DATA, MODES, endedNormally, runSnippet } from './helpers/asm.js';

interface Case {
  name: string;
  src: string;
  /** Expected 64-bit register values (as bigint) by register number. */
  regs?: Record<number, bigint>;
  /** Expected arithmetic flags (mask, value). */
  flags?: [number, number];
}

const RAX = 0, RCX = 1, RDX = 2, RBX = 3, RSI = 6, RDI = 7, R8 = 8, R9 = 9;

const CASES: Case[] = [
  { name: 'mov imm64 and 32-bit zero extension', src: 'mov rax, 0x123456789abcdef0\nmov ecx, -1\nmov rdx, rax\nmov edx, edx', regs: { [RAX]: 0x123456789abcdef0n, [RCX]: 0xffffffffn, [RDX]: 0x9abcdef0n } },
  { name: 'add/sub with carries across halves', src: 'mov rax, 0xffffffff\nadd rax, 1\nmov rcx, 0\nsub rcx, 1', regs: { [RAX]: 0x100000000n, [RCX]: 0xffffffffffffffffn }, flags: [0x8d5, 0x95] },
  { name: 'loop summing 1..100', src: 'xor eax, eax\nmov ecx, 100\n1: add rax, rcx\ndec ecx\njnz 1b', regs: { [RAX]: 5050n, [RCX]: 0n } },
  { name: 'signed compare and setcc', src: 'mov eax, -5\nmov ecx, 3\ncmp eax, ecx\nsetl dl\nsetb bl\nmovzx edx, dl\nmovzx ebx, bl', regs: { [RDX]: 1n, [RBX]: 0n } },
  { name: '64-bit compare branches', src: 'mov rax, 0x100000000\nmov rcx, 0xffffffff\nxor edx, edx\ncmp rax, rcx\njbe 1f\nmov edx, 7\n1:', regs: { [RDX]: 7n } },
  { name: 'push/pop/call/ret', src: 'mov rax, 11\npush rax\ncall 1f\njmp 2f\n1: pop rcx\npush rcx\nmov rdx, 22\nret\n2: pop rbx', regs: { [RBX]: 11n, [RDX]: 22n } },
  { name: 'memory store/load and byte registers', src: `mov rdi, ${DATA}\nmov dword ptr [rdi+8], 0x11223344\nmov al, byte ptr [rdi+9]\nmov ah, byte ptr [rdi+10]\nmovzx ecx, ax\nmovsx rdx, byte ptr [rdi+11]`, regs: { [RCX]: 0x2233n, [RDX]: 0x11n } },
  { name: 'lea forms', src: 'mov rax, 10\nmov rcx, 3\nlea rdx, [rax+rcx*8+5]\nlea esi, [rax-20]\nlea rdi, [rip]', regs: { [RDX]: 39n, [RSI]: 0xfffffff6n } },
  { name: 'shifts by constants', src: 'mov rax, 0x8000000000000001\nshl rax, 1\nmov rcx, -16\nsar rcx, 2\nmov edx, 0x80000000\nshr edx, 31\nmov r8, 0x123456789\nshr r8, 33', regs: { [RAX]: 2n, [RCX]: 0xfffffffffffffffcn, [RDX]: 1n, [R8]: 0n } },
  { name: 'imul two and three operands', src: 'mov rax, -3\nmov rcx, 7\nimul rax, rcx\nimul edx, ecx, 1000\nmov r9, 0x100000000\nimul r9, r9', regs: { [RAX]: 0xffffffffffffffebn, [RDX]: 7000n, [R9]: 0n }, flags: [0x801, 0x801] },
  { name: 'adc/sbb chains', src: 'mov rax, -1\nmov rdx, 0\nadd rax, 1\nadc rdx, 0\nmov rcx, 0\nsub rcx, 1\nsbb rbx, rbx', regs: { [RAX]: 0n, [RDX]: 1n, [RBX]: 0xffffffffffffffffn } },
  { name: 'cmov and neg/not', src: 'mov eax, 5\nmov ecx, 9\ncmp eax, ecx\ncmovl eax, ecx\nmov rdx, 1\nneg rdx\nmov rbx, 0\nnot rbx', regs: { [RAX]: 9n, [RDX]: 0xffffffffffffffffn, [RBX]: 0xffffffffffffffffn } },
  { name: 'cqo/cdq/cbw', src: 'mov rax, -2\ncqo\nmov rcx, rdx\nmov eax, 0x80\ncbw\nmov ebx, eax', regs: { [RCX]: 0xffffffffffffffffn, [RBX]: 0xff80n } },
  { name: 'inc/dec keep CF', src: 'stc\nmov eax, 0xffffffff\ninc eax\nsetc cl\nmovzx ecx, cl', regs: { [RAX]: 0n, [RCX]: 1n } },
  { name: 'xchg and leave', src: 'mov rax, 1\nmov rcx, 2\nxchg rax, rcx\npush rbp\nmov rbp, rsp\nsub rsp, 64\nleave\npop rbp', regs: { [RAX]: 2n, [RCX]: 1n } },
  { name: 'indirect jump through a register', src: 'lea rax, [rip+1f]\njmp rax\nmov ecx, 1\n1: mov edx, 2', regs: { [RCX]: 0n, [RDX]: 2n } },
  {
    name: 'multi-block loop (a compiled region) with calls and memory',
    src: `mov ecx, 3000\nxor eax, eax\nxor ebx, ebx\nmov rdi, ${0x600000}\n1: test ecx, 1\njz 2f\nadd rax, rcx\njmp 3f\n2: sub rbx, rcx\ncall 4f\n3: dec ecx\njnz 1b\njmp 5f\n4: mov qword ptr [rdi], rbx\nadd qword ptr [rdi+8], 3\nret\n5: mov rdx, qword ptr [rdi+8]`,
    regs: { [RAX]: 2250000n, [RBX]: BigInt.asUintN(64, -2251500n), [RDX]: 4500n },
  },
  { name: 'loop instruction and jrcxz', src: 'mov ecx, 5\nxor eax, eax\n1: inc eax\nloop 1b\njrcxz 2f\nmov eax, 99\n2:', regs: { [RAX]: 5n } },
];

const reg64 = (s: Int32Array, r: number) => (BigInt(s[2 * r + 1] >>> 0) << 32n) | BigInt(s[2 * r] >>> 0);

describe('pipeline snippets agree in all modes and with the manuals', () => {
  for (const c of CASES) {
    it(c.name, () => {
      const results = MODES.map((m) => runSnippet(c.src, m));
      for (const [k, r] of results.entries()) {
        expect(endedNormally(r, c.src), `${MODES[k]} ended with ${r.end} at 0x${r.rip.toString(16)}`).toBe(true);
        for (const [reg, v] of Object.entries(c.regs ?? {})) expect(reg64(r.cpu.s, +reg), `${MODES[k]} reg ${reg}`).toBe(v);
        if (c.flags) expect(getRflags(r.cpu) & c.flags[0], `${MODES[k]} flags`).toBe(c.flags[1]);
      }
      const ref = results[0];
      for (const r of results.slice(1)) {
        for (let i = 0; i < 32; i++) expect(r.cpu.s[i], `gpr slot ${i}`).toBe(ref.cpu.s[i]);
        expect(getRflags(r.cpu)).toBe(getRflags(ref.cpu));
        expect(r.cpu.st.icount).toBe(ref.cpu.st.icount);
      }
    });
  }

  it('a fault inside a block leaves precise state', () => {
    const src = 'mov eax, 1\nmov ecx, 2\nmov rdx, 0\nadd eax, ecx\nmov ebx, dword ptr [rdx]\nmov eax, 77';
    for (const m of MODES) {
      const r = runSnippet(src, m);
      expect(r.end.vector).toBe(14);
      expect(reg64(r.cpu.s, RAX)).toBe(3n);
      expect(r.cpu.st.icount).toBe(4);
    }
  });
});
void RDI;

describe('segment registers in user mode', () => {
  // The selectors Linux gives a 64-bit process: cs 0x33, ss 0x2b, data segments null.
  const cases: [string, string, (r: ReturnType<typeof runSnippet>) => void][] = [
    ['reads selectors, zero-extended', 'mov rax, -1\nmov eax, ss\nmov rbx, -1\nmov rbx, cs', (r) => {
      expect(r.cpu.st.reg(0)).toBe(0x2b);
      expect(r.cpu.st.reg(3)).toBe(0x33);
    }],
    ['pushes and pops FS', 'push 0\npop fs\npush fs\npop rax', (r) => expect(r.cpu.st.reg(0)).toBe(0)],
    ['loads a valid selector and refuses another with #GP(selector)', 'mov ax, 0x2b\nmov ds, ax\nmov ax, 0x13\nmov es, ax', (r) => {
      expect(r.end.vector).toBe(13);
      expect(r.end.errorCode).toBe(0x10);
    }],
  ];
  for (const [name, src, check] of cases)
    for (const mode of MODES)
      it(`${name} (${mode})`, () => {
        const r = runSnippet(src, mode);
        if (!name.includes('#GP')) expect(endedNormally(r, src), String(r.end)).toBe(true);
        check(r);
      });
});
