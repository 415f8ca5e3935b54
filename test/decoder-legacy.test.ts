/**
 * Decoder unit tests for 16- and 32-bit code and the system instructions: default and
 * overridden operand/address sizes, 16-bit ModRM addressing, default segments, IP wrap of
 * branch targets, far pointers, INC/DEC versus REX, rows that exist in only some modes, MOV
 * to/from control and debug registers, and the disassembly of all of these. Expected texts are
 * what `objdump -M intel` (with `-M i8086` for 16-bit code) prints for the same bytes, less
 * its spacing (decoder-crosscheck.test.ts compares with objdump wholesale).
 */
import { describe, expect, it } from 'vitest';
import { CpuException } from '../src/cpu/exceptions.js';
import { decode } from '../src/frontend/decoder.js';
import { disassemble } from '../src/frontend/disasm.js';
import { BASE_NONE, type CodeSize, type Insn, OpKind, Seg } from '../src/frontend/insn.js';

const AX = 0, CX = 1, BX = 3, SP = 4, BP = 5, SI = 6, DI = 7;

function at(mode: CodeSize, bytes: number[], addr = 0x1000): Insn {
  return decode((a) => {
    const i = a - addr;
    if (i < 0 || i >= bytes.length) throw new CpuException(14, 0x14, a);
    return bytes[i];
  }, addr, mode);
}

/** The vector decoding raises, or -1 when it decodes. */
function faultOf(mode: CodeSize, bytes: number[]): number {
  try {
    at(mode, bytes);
    return -1;
  } catch (e) {
    if (!(e instanceof CpuException)) throw e;
    return e.vector;
  }
}

/** Disassembly of the bytes, which must form exactly one instruction. */
function text(mode: CodeSize, bytes: number[]): string {
  const insn = at(mode, bytes);
  expect(insn.len).toBe(bytes.length);
  return disassemble(insn);
}

describe('operand and address sizes by mode', () => {
  it('default to 16 bits in 16-bit code and 32 in 32-bit code, and 66/67 toggle them', () => {
    const sizes = (mode: CodeSize, bytes: number[]) => {
      const i = at(mode, bytes);
      return [i.opSize, i.addrSize, i.mode];
    };
    expect(sizes(16, [0x89, 0xc8])).toEqual([2, 2, 16]);
    expect(sizes(16, [0x66, 0x67, 0x89, 0xc8])).toEqual([4, 4, 16]);
    expect(sizes(32, [0x89, 0xc8])).toEqual([4, 4, 32]);
    expect(sizes(32, [0x66, 0x67, 0x89, 0xc8])).toEqual([2, 2, 32]);
    expect(sizes(64, [0x89, 0xc8])).toEqual([4, 8, 64]);
    expect(text(16, [0x89, 0xc8])).toBe('mov ax,cx');
    expect(text(16, [0x66, 0x89, 0xc8])).toBe('mov eax,ecx');
  });

  it('does not apply o64/f64 outside 64-bit mode', () => {
    expect(at(32, [0x50]).opSize).toBe(4); // push eax
    expect(at(16, [0x50]).opSize).toBe(2); // push ax
    expect(text(32, [0xff, 0xe0])).toBe('jmp eax');
    expect(text(16, [0xff, 0xe0])).toBe('jmp ax');
    expect(at(16, [0xc3]).opSize).toBe(2); // ret pops IP
    expect(at(64, [0x50]).opSize).toBe(8);
  });

  it('reads 16-bit immediates, rel16 and address-sized moffs', () => {
    expect(text(16, [0xb8, 0x34, 0x12])).toBe('mov ax,0x1234');
    expect(text(16, [0x05, 0x34, 0x12])).toBe('add ax,0x1234');
    expect(text(16, [0x68, 0x34, 0x12])).toBe('push 0x1234');
    expect(text(16, [0x6a, 0xff])).toBe('push 0xffff');
    expect(text(32, [0x66, 0x68, 0x34, 0x12])).toBe('push 0x1234');
    expect(text(16, [0xa1, 0x34, 0x12])).toBe('mov ax,[0x1234]');
    expect(text(32, [0xa1, 0x78, 0x56, 0x34, 0x12])).toBe('mov eax,[0x12345678]');
    expect(text(32, [0x67, 0xa1, 0x34, 0x12])).toBe('mov eax,[0x1234]');
    expect(at(16, [0xe8, 0x00, 0x01]).len).toBe(3);
    expect(at(16, [0x66, 0xe8, 0x00, 0x01, 0x00, 0x00]).len).toBe(6);
  });
});

describe('16-bit ModRM addressing', () => {
  // [r/m, base, index] of the eight forms
  const forms: [number, number, number, string][] = [
    [0, BX, SI, 'bx+si'], [1, BX, DI, 'bx+di'], [2, BP, SI, 'bp+si'], [3, BP, DI, 'bp+di'],
    [4, SI, -1, 'si'], [5, DI, -1, 'di'], [6, BP, -1, 'bp'], [7, BX, -1, 'bx'],
  ];
  for (const [rm, base, index, name] of forms) {
    it(`decodes [${name}] with disp8 and disp16`, () => {
      const d8 = at(16, [0x8b, 0x40 | rm, 0xfe]); // mov ax, [form-2]
      expect([d8.base, d8.index, d8.scale, d8.disp, d8.len]).toEqual([base, index, 1, -2, 3]);
      expect(disassemble(d8)).toBe(`mov ax,word ptr [${name}-0x2]`);
      const d16 = at(16, [0x8b, 0x80 | rm, 0x00, 0x80]); // disp16 0x8000, sign-extended
      expect([d16.base, d16.index, d16.disp, d16.len]).toEqual([base, index, -0x8000, 4]);
      // SS for the forms that use BP, DS for the others.
      expect(d16.seg).toBe(base === BP ? Seg.SS : Seg.DS);
    });
  }

  it('has an absolute disp16 in place of [bp] with mod 00', () => {
    const i = at(16, [0x8b, 0x06, 0x34, 0x12]);
    expect([i.base, i.index, i.disp, i.seg]).toEqual([BASE_NONE, -1, 0x1234, Seg.DS]);
    expect(disassemble(i)).toBe('mov ax,word ptr [0x1234]');
    expect(at(16, [0x8b, 0x00]).disp).toBe(0); // [bx+si], no displacement
  });

  it('switches to 32-bit addressing with 67, and back with 67 in 32-bit code', () => {
    expect(text(16, [0x67, 0x8b, 0x04, 0x24])).toBe('mov ax,word ptr [esp]');
    expect(text(32, [0x67, 0x8b, 0x42, 0x10])).toBe('mov eax,dword ptr [bp+si+0x10]');
  });
});

describe('32-bit addressing', () => {
  it('has an absolute disp32 for mod 00 r/m 101 (no RIP-relative outside 64-bit mode)', () => {
    const i = at(32, [0x8b, 0x05, 0x78, 0x56, 0x34, 0x12]);
    expect([i.ripRel, i.base, i.disp]).toEqual([false, BASE_NONE, 0x12345678]);
    expect(disassemble(i)).toBe('mov eax,dword ptr [0x12345678]');
    expect(disassemble(at(32, [0x8b, 0x05, 0xf0, 0xff, 0xff, 0xff]))).toBe('mov eax,dword ptr [0xfffffff0]');
    expect(at(64, [0x8b, 0x05, 0x78, 0x56, 0x34, 0x12]).ripRel).toBe(true);
  });
});

describe('segments', () => {
  const segOf = (mode: CodeSize, bytes: number[]) => at(mode, bytes).seg;
  it('default to SS for rSP/rBP bases and to DS otherwise', () => {
    expect(segOf(32, [0x8b, 0x04, 0x24])).toBe(Seg.SS); // [esp]
    expect(segOf(32, [0x8b, 0x45, 0x08])).toBe(Seg.SS); // [ebp+8]
    expect(segOf(32, [0x8b, 0x04, 0x04])).toBe(Seg.SS); // [esp+eax]
    expect(segOf(32, [0x8b, 0x04, 0x68])).toBe(Seg.DS); // [eax+ebp*2]: an index does not count
    expect(segOf(32, [0x8b, 0x04, 0x2d, 0, 0, 0, 0])).toBe(Seg.DS); // SIB base 101, mod 00: no base
    expect(segOf(32, [0x8b, 0x00])).toBe(Seg.DS);
    expect(segOf(32, [0xa1, 0, 0, 0, 0])).toBe(Seg.DS); // moffs
  });

  it('follow an ES/CS/SS/DS override (the last one), shown in the disassembly only then', () => {
    expect(segOf(32, [0x26, 0x8b, 0x04, 0x24])).toBe(Seg.ES);
    expect(segOf(32, [0x3e, 0x8b, 0x45, 0x00])).toBe(Seg.DS);
    expect(segOf(16, [0x2e, 0x36, 0x8b, 0x07])).toBe(Seg.SS);
    expect(segOf(32, [0x64, 0x8b, 0x00])).toBe(Seg.FS);
    expect(text(32, [0x3e, 0x8b, 0x45, 0x00])).toBe('mov eax,dword ptr ds:[ebp]');
    expect(text(32, [0x8b, 0x45, 0x00])).toBe('mov eax,dword ptr [ebp]');
    expect(text(16, [0x26, 0x8b, 0x00])).toBe('mov ax,word ptr es:[bx+si]');
  });

  it('name the source of string instructions (DS or the override); ES:rDI is implicit', () => {
    expect(segOf(32, [0xa4])).toBe(Seg.DS);
    expect(segOf(32, [0x26, 0xa4])).toBe(Seg.ES);
    expect(segOf(16, [0xaa])).toBe(Seg.DS); // stosb: only the implicit ES:DI
    expect(segOf(16, [0x2e, 0x6e])).toBe(Seg.CS); // outsb from CS:SI
  });

  it('stay as in 64-bit mode: ES/CS/SS/DS ignored, FS/GS kept, else none', () => {
    expect(segOf(64, [0x26, 0x8b, 0x04, 0x24])).toBe(Seg.NONE);
    expect(segOf(64, [0x8b, 0x04, 0x24])).toBe(Seg.NONE);
    expect(segOf(64, [0x65, 0x8b, 0x04, 0x24])).toBe(Seg.GS);
  });
});

describe('branch targets', () => {
  const target = (mode: CodeSize, bytes: number[], addr: number) => {
    const op = at(mode, bytes, addr).ops[0];
    expect(op.kind).toBe(OpKind.Rel);
    return [op.imm, op.size];
  };
  it('wrap at 64K with a 16-bit operand size', () => {
    expect(target(16, [0xe9, 0x20, 0x00], 0xfff0)).toEqual([0x0013, 2]);
    expect(target(16, [0xeb, 0x80], 0x0010)).toEqual([0xff92, 2]);
    expect(target(16, [0x74, 0xfe], 0x2000)).toEqual([0x2000, 2]);
    expect(target(32, [0x66, 0xe9, 0x00, 0x00], 0x12340)).toEqual([0x2344, 2]);
    expect(target(32, [0x66, 0xeb, 0x00], 0x12340)).toEqual([0x2343, 2]);
  });

  it('wrap at 4G with a 32-bit operand size, and not at all in 64-bit mode', () => {
    expect(target(32, [0xe9, 0x20, 0x00, 0x00, 0x00], 0xfffffff0)).toEqual([0x15, 4]);
    expect(target(32, [0xe8, 0x00, 0x00, 0x00, 0x80], 0x10)).toEqual([0x80000015, 4]);
    expect(target(16, [0x66, 0xe8, 0xf0, 0xff, 0xff, 0xff], 0x10)).toEqual([0x6, 4]);
    expect(target(64, [0xe9, 0x20, 0x00, 0x00, 0x00], 0xfffffff0)).toEqual([0x100000015, 8]);
  });

  it('are named jcxz/jecxz/jrcxz by address size', () => {
    expect(text(16, [0xe3, 0xfe])).toMatch(/^jcxz /);
    expect(text(16, [0x67, 0xe3, 0xfe])).toMatch(/^jecxz /);
    expect(text(32, [0x67, 0xe3, 0xfe])).toMatch(/^jcxz /);
    expect(text(64, [0xe3, 0xfe])).toMatch(/^jrcxz /);
  });
});

describe('far pointers', () => {
  it('decode direct ptr16:16 and ptr16:32 as an immediate (offset, selector)', () => {
    const near = at(16, [0x9a, 0x78, 0x56, 0x34, 0x12]);
    expect([near.mnem, near.ops[0].kind, near.ops[0].size, near.ops[0].imm, near.ops[0].immHi]).toEqual(['callf', OpKind.Imm, 4, 0x5678, 0x1234]);
    expect(disassemble(near)).toBe('call 0x1234:0x5678');
    const far = at(32, [0xea, 0x78, 0x56, 0x34, 0x12, 0xcd, 0xab]);
    expect([far.mnem, far.ops[0].size, far.ops[0].imm, far.ops[0].immHi]).toEqual(['jmpf', 6, 0x12345678, 0xabcd]);
    expect(disassemble(far)).toBe('jmp 0xabcd:0x12345678');
    expect(text(32, [0x66, 0x9a, 0x34, 0x12, 0x78, 0x56])).toBe('call 0x5678:0x1234');
    expect(text(16, [0x66, 0xea, 0x78, 0x56, 0x34, 0x12, 0xcd, 0xab])).toBe('jmp 0xabcd:0x12345678');
  });

  it('decode indirect m16:16 / m16:32 (REX.W does not make an m16:64, as on AMD)', () => {
    expect(text(32, [0xff, 0x18])).toBe('call fword ptr [eax]');
    expect(text(16, [0xff, 0x2f])).toBe('jmp dword ptr [bx]');
    expect(text(32, [0x66, 0xff, 0x18])).toBe('call dword ptr [eax]');
    expect(text(64, [0xff, 0x18])).toBe('call fword ptr [rax]');
    expect(at(64, [0x48, 0xff, 0x18]).ops[0].size).toBe(6);
    expect(faultOf(32, [0xff, 0xd8])).toBe(6); // a register is no far pointer
  });

  it('load segment:offset pairs with LES/LDS (not in 64-bit mode) and LSS/LFS/LGS', () => {
    expect(text(32, [0xc4, 0x01])).toBe('les eax,fword ptr [ecx]');
    expect(text(16, [0xc5, 0x01])).toBe('lds ax,dword ptr [bx+di]');
    expect(text(16, [0x0f, 0xb2, 0x26, 0x00, 0x7c])).toBe('lss sp,dword ptr [0x7c00]');
    expect(text(64, [0x48, 0x0f, 0xb2, 0x01])).toBe('lss rax,fword ptr [rcx]');
    expect(faultOf(32, [0xc4, 0xc0])).toBe(6); // the register form is a VEX prefix, not decoded
    expect(faultOf(64, [0xc5, 0x01])).toBe(6);
  });
});

describe('rows by mode', () => {
  it('decodes 40-4F as INC/DEC outside 64-bit mode and as REX in it', () => {
    expect(text(32, [0x40])).toBe('inc eax');
    expect(text(32, [0x4f])).toBe('dec edi');
    expect(text(16, [0x41])).toBe('inc cx');
    expect(text(16, [0x66, 0x48])).toBe('dec eax');
    const dec = at(32, [0x48, 0xff, 0xc0]); // dec eax, then inc eax
    expect([dec.mnem, dec.len, dec.rex]).toEqual(['dec', 1, 0]);
    expect(text(64, [0x48, 0xff, 0xc0])).toBe('inc rax');
  });

  it('raises #UD for the rows 64-bit mode dropped (i64)', () => {
    const dropped = [[0x06], [0x1f], [0x27], [0x2f], [0x37], [0x3f], [0x60], [0x61], [0x62, 0x01], [0x9a, 0, 0, 0, 0, 0, 0], [0xce], [0xd4, 0x0a], [0xd5, 0x0a], [0x82, 0xc0, 0x01], [0xea, 0, 0, 0, 0, 0, 0]];
    for (const bytes of dropped) {
      expect(faultOf(64, bytes), bytes.join(' ')).toBe(6);
      expect(faultOf(32, bytes), bytes.join(' ')).toBe(-1);
    }
  });

  it('raises #UD outside 64-bit mode for the 64-bit-only rows (only64), and 63 is ARPL there', () => {
    expect(faultOf(32, [0x0f, 0x01, 0xf8])).toBe(6); // swapgs
    expect(text(64, [0x0f, 0x01, 0xf8])).toBe('swapgs');
    expect(faultOf(16, [0xf3, 0x0f, 0xae, 0xc0])).toBe(6); // rdfsbase
    expect(text(64, [0x63, 0xc8])).toBe('movsxd ecx,eax');
    expect(text(32, [0x63, 0xc8])).toBe('arpl ax,cx');
    expect(text(16, [0x63, 0x01])).toBe('arpl word ptr [bx+di],ax');
  });

  it('decodes the legacy-only general-purpose forms', () => {
    expect(text(32, [0x06])).toBe('push es');
    expect(text(16, [0x17])).toBe('pop ss');
    expect(text(32, [0x27])).toBe('daa');
    expect(text(32, [0xd4, 0x0a])).toBe('aam 0xa');
    expect(text(32, [0xd5, 0x07])).toBe('aad 0x7');
    expect(text(32, [0x62, 0x01])).toBe('bound eax,qword ptr [ecx]');
    expect(text(16, [0x62, 0x01])).toBe('bound ax,dword ptr [bx+di]');
    expect(faultOf(32, [0x62, 0xc1])).toBe(6); // EVEX, not decoded
    expect(text(32, [0x82, 0xc1, 0x05])).toBe('add cl,0x5');
    expect(text(32, [0x60])).toBe('pusha');
    expect(text(32, [0x66, 0x61])).toBe('popaw');
    expect(text(16, [0x66, 0x60])).toBe('pushad');
    expect(text(32, [0xce])).toBe('into');
  });

  it('names the mode in the message for an unknown instruction', () => {
    try {
      at(32, [0x0f, 0x04]);
      expect.unreachable();
    } catch (e) {
      expect((e as CpuException).vector).toBe(6);
      expect(String((e as { what: string }).what)).toContain('(32-bit code): 0f 04');
    }
  });
});

describe('control and debug registers', () => {
  it('move 32-bit registers outside 64-bit mode and 64-bit ones in it, whatever ModRM.mod says', () => {
    const read = at(32, [0x0f, 0x20, 0xc0]);
    expect([read.mnem, read.ops[0].kind, read.ops[0].size, read.ops[1].kind, read.ops[1].reg]).toEqual(['movcr', OpKind.Reg, 4, OpKind.Cr, 0]);
    expect(disassemble(read)).toBe('mov eax,cr0');
    expect(text(32, [0x66, 0x0f, 0x22, 0xd8])).toBe('mov cr3,eax');
    expect(text(32, [0x0f, 0x20, 0x00])).toBe('mov eax,cr0'); // mod 00, no memory operand
    expect(text(64, [0x0f, 0x20, 0xe0])).toBe('mov rax,cr4');
    expect(text(64, [0x44, 0x0f, 0x20, 0xc1])).toBe('mov rcx,cr8');
    expect(text(32, [0x0f, 0x21, 0xf9])).toBe('mov ecx,dr7');
    expect(text(64, [0x0f, 0x23, 0xc0])).toBe('mov dr0,rax');
  });

  it('raise #UD for control and debug registers that do not exist', () => {
    for (const cr of [1, 5, 6, 7]) expect(faultOf(32, [0x0f, 0x20, 0xc0 | (cr << 3)])).toBe(6);
    expect(faultOf(64, [0x44, 0x0f, 0x22, 0xc8])).toBe(6); // cr9
    expect(faultOf(64, [0x44, 0x0f, 0x21, 0xc0])).toBe(6); // dr8
  });
});

describe('system instructions', () => {
  const cases: [CodeSize, number[], string][] = [
    [32, [0x0f, 0x01, 0x10], 'lgdtd [eax]'],
    [16, [0x0f, 0x01, 0x1e, 0x00, 0x10], 'lidtw [0x1000]'],
    [16, [0x66, 0x0f, 0x01, 0x16, 0x00, 0x10], 'lgdtd [0x1000]'],
    [64, [0x0f, 0x01, 0x00], 'sgdt [rax]'],
    [32, [0x0f, 0x01, 0x08], 'sidtd [eax]'],
    [32, [0x0f, 0x01, 0xe0], 'smsw eax'],
    [16, [0x0f, 0x01, 0x20], 'smsw word ptr [bx+si]'],
    [32, [0x0f, 0x01, 0xf0], 'lmsw ax'],
    [32, [0x0f, 0x01, 0x38], 'invlpg byte ptr [eax]'],
    [32, [0x0f, 0x00, 0xc0], 'sldt eax'],
    [32, [0x0f, 0x00, 0xd8], 'ltr ax'],
    [16, [0x0f, 0x00, 0x17], 'lldt word ptr [bx]'],
    [32, [0x0f, 0x00, 0xe0], 'verr ax'],
    [64, [0x48, 0x0f, 0x02, 0xc1], 'lar rax,rcx'],
    [32, [0x0f, 0x03, 0x01], 'lsl eax,word ptr [ecx]'],
    [32, [0x0f, 0x06], 'clts'],
    [32, [0x0f, 0x08], 'invd'],
    [32, [0x0f, 0x09], 'wbinvd'],
    [32, [0x0f, 0x30], 'wrmsr'],
    [32, [0x0f, 0x32], 'rdmsr'],
    [32, [0x0f, 0x33], 'rdpmc'],
    [32, [0x0f, 0x34], 'sysenter'],
    [32, [0x0f, 0x35], 'sysexit'],
    [64, [0x48, 0x0f, 0x07], 'sysretq'],
    [64, [0x0f, 0x07], 'sysretd'],
    [32, [0x0f, 0xaa], 'rsm'],
    [32, [0xe4, 0x60], 'in al,0x60'],
    [16, [0xe5, 0x40], 'in ax,0x40'],
    [32, [0xe6, 0x80], 'out 0x80,al'],
    [32, [0xef], 'out dx,eax'],
    [64, [0x66, 0xed], 'in ax,dx'],
    [32, [0xf3, 0x6c], 'rep insb'],
    [32, [0x66, 0x6f], 'outsw'],
    [16, [0x6d], 'insw'],
    [32, [0xfa], 'cli'],
    [32, [0xfb], 'sti'],
    [32, [0xf1], 'int1'],
    [32, [0xcf], 'iret'],
    [16, [0x66, 0xcf], 'iretd'],
    [64, [0x48, 0xcf], 'iretq'],
    [32, [0x66, 0xcf], 'iretw'],
    [32, [0xcb], 'retf'],
    [16, [0x66, 0xca, 0x08, 0x00], 'retfd 0x8'],
    [64, [0x66, 0x0f, 0x38, 0x82, 0x01], 'invpcid rax,[rcx]'],
    [32, [0x66, 0x0f, 0x38, 0x82, 0x01], 'invpcid eax,[ecx]'],
    [32, [0x0f, 0x01, 0xc8], 'monitor'],
    [32, [0x0f, 0x01, 0xc9], 'mwait'],
    [32, [0x0f, 0x01, 0xca], 'clac'],
    [32, [0x0f, 0x01, 0xcb], 'stac'],
    [32, [0x0f, 0x01, 0xd1], 'xsetbv'],
    [32, [0x0f, 0x01, 0xfd], 'rdpru'],
    [64, [0x0f, 0x01, 0xd8], 'vmrun'],
    [64, [0x0f, 0x01, 0xd9], 'vmmcall'],
    [64, [0x0f, 0x01, 0xda], 'vmload'],
    [64, [0x0f, 0x01, 0xdb], 'vmsave'],
    [64, [0x0f, 0x01, 0xdc], 'stgi'],
    [64, [0x0f, 0x01, 0xdd], 'clgi'],
    [32, [0x0f, 0x01, 0xde], 'skinit'],
    [64, [0x0f, 0x01, 0xdf], 'invlpga'],
    [32, [0x0f, 0xae, 0x20], 'xsave [eax]'],
    [64, [0x48, 0x0f, 0xae, 0x28], 'xrstor64 [rax]'],
  ];
  for (const [mode, bytes, expected] of cases) {
    it(`decodes ${expected} in ${mode}-bit code`, () => expect(text(mode, bytes)).toBe(expected));
  }

  it('refuses 0F 01 register forms whose prefixed encodings are other instructions', () => {
    expect(faultOf(64, [0xf3, 0x0f, 0x01, 0xca])).toBe(6); // ERETU, not CLAC
    expect(faultOf(64, [0xf3, 0x0f, 0x01, 0xd9])).toBe(6); // VMGEXIT, not VMMCALL
    expect(text(64, [0xf3, 0x0f, 0x01, 0xd8])).toBe('vmrun');
    expect(faultOf(32, [0x0f, 0x38, 0x82, 0x01])).toBe(6); // INVPCID needs its 66
  });

  it('ends blocks where control flow, the mode, paging, interrupts or compiled-code state change', () => {
    const ends = (mode: CodeSize, bytes: number[]) => at(mode, bytes).row.end;
    const ending = [[0x0f, 0x22, 0xc0], [0x0f, 0x23, 0xf8], [0x0f, 0x01, 0x10], [0x0f, 0x01, 0xf0], [0x0f, 0x06], [0xcf], [0xcb], [0xfa], [0xfb], [0x9d], [0x0f, 0x30], [0x0f, 0x01, 0x38], [0x0f, 0xaa], [0x0f, 0x01, 0xd8], [0x0f, 0x00, 0xd8], [0x0f, 0x00, 0xd0], [0x8e, 0xd0], [0x17], [0xff, 0x18], [0x9a, 0, 0, 0, 0, 0, 0], [0xce], [0xcd, 0x80], [0x0f, 0x07], [0x0f, 0x34], [0x0f, 0x35], [0xf4]];
    for (const bytes of ending) expect(ends(32, bytes), bytes.join(' ')).toBe(true);
    const plain = [[0x0f, 0x20, 0xc0], [0x0f, 0x21, 0xc0], [0x0f, 0x01, 0x00], [0x0f, 0x01, 0xe0], [0xe4, 0x60], [0x0f, 0x32], [0x8e, 0xd8], [0x1f], [0x0f, 0x00, 0xc0]];
    for (const bytes of plain) expect(ends(32, bytes), bytes.join(' ')).toBe(false);
    expect(ends(64, [0x0f, 0x01, 0xf8])).toBe(true); // swapgs
  });
});
