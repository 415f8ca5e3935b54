/** Decoder unit tests: prefixes, REX, addressing forms and the architectural faults of decoding. */
import { describe, expect, it } from 'vitest';
import { CpuException } from '../src/cpu/exceptions.js';
import { decode } from '../src/frontend/decoder.js';
import { disassemble } from '../src/frontend/disasm.js';
import { OpKind } from '../src/frontend/insn.js';
import { assemble } from './helpers/asm.js';

const at = (bytes: number[] | Uint8Array, addr = 0x1000) => decode((a) => {
  const i = a - addr;
  if (i >= bytes.length) throw new CpuException(14, 0x14, a);
  return bytes[i];
}, addr);

describe('decoder', () => {
  const samples: [string, string][] = [
    ['mov rax, qword ptr [rbx+rcx*8+0x10]', 'mov rax,qword ptr [rbx+rcx*8+0x10]'],
    ['add dword ptr [rip+0x100], 5', 'add dword ptr [rip+0x100],0x5'],
    ['lea r12, [r13+r14*2-8]', 'lea r12,[r13+r14*2-0x8]'],
    ['mov ah, byte ptr [rsi]', 'mov ah,byte ptr [rsi]'],
    ['mov sil, byte ptr [rdi]', 'mov sil,byte ptr [rdi]'],
    ['movzx eax, word ptr fs:[0x28]', 'movzx eax,word ptr fs:[0x28]'],
    ['imul r9, r10, -3', 'imul r9,r10,0xfffffffffffffffd'],
    ['rep stosq', 'rep stosq'],
    ['repne scasb', 'repnz scasb'],
    ['lock cmpxchg qword ptr [rdx], rcx', 'lock cmpxchg qword ptr [rdx],rcx'],
    ['push 0x12345678', 'push 0x12345678'],
    ['xchg r8, rax', 'xchg r8,rax'],
    ['nop', 'nop'],
    ['nop word ptr [rax+rax*1+0]', 'nop word ptr [rax+rax*1]'],
    ['endbr64', 'endbr64'],
    ['cqo', 'cqo'],
    ['movabs rax, 0x1122334455667788', 'mov rax,0x1122334455667788'],
  ];
  for (const [src, text] of samples) {
    it(`decodes ${src}`, () => {
      const bytes = assemble(src);
      const insn = at(bytes);
      expect(insn.len).toBe(bytes.length);
      expect(disassemble(insn)).toBe(text);
    });
  }

  it('folds RIP-relative displacements into absolute addresses', () => {
    const insn = at(assemble('mov eax, dword ptr [rip+0x20]'));
    expect(insn.ripRel).toBe(true);
    expect(insn.disp).toBe(0x1000 + insn.len + 0x20);
  });

  it('decodes jcc targets relative to the next instruction', () => {
    const insn = at([0x74, 0xfe]); // je self
    expect(insn.ops[0].kind).toBe(OpKind.Rel);
    expect(insn.ops[0].imm).toBe(0x1000);
  });

  it('ignores a REX prefix that is not directly before the opcode', () => {
    const insn = at([0x48, 0x66, 0x89, 0xc8]); // rex.w; 66; mov ax, cx
    expect(insn.opSize).toBe(2);
  });

  it('raises #UD for LOCK on a register destination and for unknown opcodes', () => {
    expect(() => at([0xf0, 0x01, 0xc8])).toThrow(CpuException);
    try {
      at([0x0f, 0x04]);
    } catch (e) {
      expect((e as CpuException).vector).toBe(6);
      expect(String((e as { what: string }).what)).toContain('0f 04');
    }
  });

  it('raises #GP for instructions longer than 15 bytes', () => {
    const bytes = [...new Array(14).fill(0x66), 0x90];
    expect(at(bytes).len).toBe(15);
    try {
      at([0x66, ...bytes]);
      expect.unreachable();
    } catch (e) {
      expect((e as CpuException).vector).toBe(13);
    }
  });
});
