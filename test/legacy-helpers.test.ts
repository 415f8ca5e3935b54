/**
 * The helpers of src/machine/legacy.ts, on a bare CPU in 32-bit protected or long mode.
 *
 * Decimal adjustment is compared with the host CPU over every AL with AF/CF in and several AH
 * values: a small C program (below, compiled at test time) runs each instruction in
 * compatibility mode through a far call to Linux's 32-bit user code segment and prints EAX and
 * the flags before and after. The flags the manuals define are compared on any host; the ones
 * they leave undefined only on the kind of host whose behaviour the helpers reproduce (Intel,
 * where they were measured; see legacy.ts).
 *
 * The rest covers what the ring-0 image (test/baremetal/tests/legacy.c) cannot reach or sees
 * only indirectly: real mode (#UD for the descriptor queries and ARPL, #GP for SYSENTER), the
 * 16-byte descriptor rules of long mode at the table limit, the user-mode personality with no
 * GDT, faults in the middle of PUSHA/POPA, RDPMC's counter width and its SVM intercept.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { Cpu, CpuMode, type SystemHooks } from '../src/cpu/cpu.js';
import { CpuException, Vec } from '../src/cpu/exceptions.js';
import { getRflags, setRflags } from '../src/cpu/flags.js';
import { HELPERS } from '../src/cpu/helpers/index.js';
import { Memory, Prot } from '../src/cpu/memory.js';
import { F, S, SegReg } from '../src/cpu/state.js';
import { decode } from '../src/frontend/decoder.js';
import type { CodeSize } from '../src/frontend/insn.js';
import { computeMode, segAt, setSegCache } from '../src/machine/segments.js';
import { VmExit } from '../src/svm/intercept.js';

const EAX = 0, ECX = 1, EDX = 2, EBX = 3, ESP = 4, EBP = 5, ESI = 6, EDI = 7;
const OSZAPC = F.OSZAPC;
const SZAPC = F.SF | F.ZF | F.AF | F.PF | F.CF;
const CODE_AT = 0x8000;
const GDT_AT = 0x3000;
const MSR_PERF_CTR0 = 0xc0010004 | 0;

/** A CPU in 32-bit protected mode, CPL 0, flat segments, with RAM mapped at 0-64 KiB and 0x20000-0x3FFFF. */
function newCpu(): Cpu {
  const mem = new Memory(1 << 20);
  mem.map(0, 0x10000, Prot.READ | Prot.WRITE);
  mem.map(0x20000, 0x20000, Prot.READ | Prot.WRITE);
  const cpu = new Cpu(mem);
  cpu.machine = true;
  const msrs = new Map<number, [number, number]>();
  cpu.sys = {
    systemChanged: (c: Cpu) => void (c.mode = computeMode(c)),
    readMsr: (c: Cpu, msr: number) => {
      const v = msrs.get(msr);
      if (!v) throw new CpuException(Vec.GP, 0);
      c.hi = v[1];
      return v[0];
    },
    writeMsr: (_c: Cpu, msr: number, lo: number, hi: number) => void msrs.set(msr, [lo, hi]),
  } as unknown as SystemHooks;
  const s = cpu.s;
  s[S.CR0] = 0x11; // PE, ET
  s[S.CPL] = 0;
  for (const seg of [SegReg.ES, SegReg.SS, SegReg.DS, SegReg.FS, SegReg.GS]) setSegCache(cpu, seg, 0x10, 0xc93, 0xffffffff, 0);
  setSegCache(cpu, SegReg.CS, 0x08, 0xc9b, 0xffffffff, 0);
  s[S.GDTR_BASE_LO] = GDT_AT;
  s[S.GDTR_LIMIT] = 0x7f;
  setRflags(cpu, 2);
  cpu.mode = computeMode(cpu);
  return cpu;
}

/** Run one instruction (its bytes) through its helper in code of `bits`; returns the exception vector or -1. */
function exec(cpu: Cpu, bytes: number[], bits: CodeSize = 32): number {
  const insn = decode((a) => bytes[a - CODE_AT], CODE_AT, bits);
  expect(insn.len).toBe(bytes.length);
  cpu.st.rip = CODE_AT;
  try {
    HELPERS[insn.mnem](cpu, insn);
    return -1;
  } catch (e) {
    if (!(e instanceof CpuException)) throw e;
    return e.vector;
  }
}

function setDescriptor(cpu: Cpu, sel: number, lo: number, hi: number): void {
  cpu.mem.write32(GDT_AT + (sel & ~7), lo);
  cpu.mem.write32(GDT_AT + (sel & ~7) + 4, hi);
}

function enterLongMode(cpu: Cpu): void {
  cpu.s[S.EFER] = 0x500; // LME, LMA
  setSegCache(cpu, SegReg.CS, 0x18, 0xc9b, 0xffffffff, 0); // compatibility mode
  cpu.mode = computeMode(cpu);
}

const reg = (cpu: Cpu, r: number) => cpu.s[2 * r] >>> 0;
const zf = (cpu: Cpu) => (getRflags(cpu) & F.ZF) !== 0;

// ---- decimal adjustment against the host ----

const NATIVE_SRC = String.raw`
#define _GNU_SOURCE
#include <cpuid.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
/* 32-bit code at CODE: EFLAGS and EAX from IN, the instruction, EAX and EFLAGS to OUT, RETF; stack below 0x1FF00. */
#define CODE 0x10100
#define IN 0x10000
#define OUT 0x10008
static struct { uint32_t off; uint16_t sel; } __attribute__((packed)) target = { CODE, 0x23 };
static void run(void)
{
	/* A stack below 4 GiB, and DS = ES = Linux's flat user data segment, which 64-bit code leaves null. */
	__asm__ volatile("mov %%rsp, %%r12\n mov $0x1ff00, %%esp\n mov $0x2b, %%eax\n mov %%eax, %%ds\n"
			 " mov %%eax, %%es\n lcall *%0\n mov %%r12, %%rsp\n xor %%eax, %%eax\n mov %%eax, %%ds\n"
			 " mov %%eax, %%es\n" : : "m"(target) : "memory", "rax", "rbx", "rcx", "rdx", "rsi", "rdi", "r12", "cc");
}
int main(void)
{
	unsigned a, b, c, d;
	char vendor[13] = { 0 };
	__cpuid(0, a, b, c, d);
	memcpy(vendor, &b, 4), memcpy(vendor + 4, &d, 4), memcpy(vendor + 8, &c, 4);
	printf("vendor %s\n", vendor);
	fflush(stdout);
	if (mmap((void *)IN, 0x10000, PROT_READ | PROT_WRITE | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) == MAP_FAILED)
		return 2;
	unsigned char *p = (unsigned char *)CODE;
	*p++ = 0xff, *p++ = 0x35, *(uint32_t *)p = IN + 4, p += 4;	/* push dword [IN+4] */
	*p++ = 0x9d;							/* popfd */
	*p++ = 0xa1, *(uint32_t *)p = IN, p += 4;			/* mov eax, [IN] */
	unsigned char *insn = p;
	p += 2;
	*p++ = 0x9c;							/* pushfd */
	*p++ = 0x8f, *p++ = 0x05, *(uint32_t *)p = OUT + 4, p += 4;	/* pop dword [OUT+4] */
	*p++ = 0xa3, *(uint32_t *)p = OUT, p += 4;			/* mov [OUT], eax */
	*p++ = 0xcb;							/* retf */
	static const struct { const char *name; unsigned char op[2]; int kind; } kinds[] = {
		{ "27", { 0x27, 0x90 }, 0 }, { "2f", { 0x2f, 0x90 }, 0 }, { "37", { 0x37, 0x90 }, 0 },
		{ "3f", { 0x3f, 0x90 }, 0 }, { "d40a", { 0xd4, 0x0a }, 1 }, { "d410", { 0xd4, 0x10 }, 1 },
		{ "d4ff", { 0xd4, 0xff }, 1 }, { "d50a", { 0xd5, 0x0a }, 2 }, { "d507", { 0xd5, 0x07 }, 2 },
		{ "d500", { 0xd5, 0x00 }, 2 },
	};
	static const unsigned ahs[] = { 0x00, 0x7f, 0xff };
	for (unsigned k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++) {
		insn[0] = kinds[k].op[0], insn[1] = kinds[k].op[1];
		for (unsigned ah = 0; ah < 256; ah++) {
			if (kinds[k].kind == 0 && ah != ahs[0] && ah != ahs[1] && ah != ahs[2])
				continue;
			if (kinds[k].kind == 1 && ah != 0 && ah != 0xff)
				continue;
			if (kinds[k].kind == 2 && ah % 17)
				continue;
			for (unsigned al = 0; al < 256; al++)
				for (unsigned f = 0; f < 8; f++) {
					if (kinds[k].kind && (f & 3))
						continue;
					uint32_t eax = 0x5a5a0000 | ah << 8 | al;
					uint32_t flags = 2 | (f & 1 ? 0x10 : 0) | (f & 2 ? 1 : 0) | (f & 4 ? 0x8c4 : 0);
					*(volatile uint32_t *)IN = eax;
					*(volatile uint32_t *)(IN + 4) = flags;
					run();
					printf("%s %x %x %x %x\n", kinds[k].name, eax, flags, *(volatile uint32_t *)OUT,
					       *(volatile uint32_t *)(OUT + 4) & 0x8d5);
				}
		}
	}
	return 0;
}
`;

/** Flags each instruction defines (SDM Vol 2 / APM Vol 3 "Flags Affected"). */
const DEFINED: Record<string, number> = {
  '27': SZAPC, '2f': SZAPC, '37': F.AF | F.CF, '3f': F.AF | F.CF,
  d40a: F.SF | F.ZF | F.PF, d410: F.SF | F.ZF | F.PF, d4ff: F.SF | F.ZF | F.PF,
  d50a: F.SF | F.ZF | F.PF, d507: F.SF | F.ZF | F.PF, d500: F.SF | F.ZF | F.PF,
};

/** The host's results, or why there are none (no 32-bit code segment on this kernel). */
function hostDecimal(): { vendor: string; lines: string[] } | string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'svmjit-legacy-ref-'));
  try {
    const src = path.join(dir, 'legacy-ref.c');
    const exe = path.join(dir, 'legacy-ref');
    fs.writeFileSync(src, NATIVE_SRC);
    const cc = spawnSync('gcc', ['-O1', '-no-pie', '-o', exe, src], { encoding: 'utf8' });
    if (cc.status !== 0) throw new Error(`gcc failed to build the native reference:\n${cc.stderr}`);
    const r = spawnSync(exe, [], { encoding: 'utf8', maxBuffer: 64 << 20 });
    const lines = r.stdout.trim().split('\n');
    if (r.status !== 0) return `the host cannot run 32-bit code in compatibility mode (${r.signal ?? `status ${r.status}`})`;
    return { vendor: lines[0].split(' ')[1], lines: lines.slice(1) };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

describe('decimal adjustment', () => {
  it('agrees with the host CPU on every input: results, defined flags (and undefined ones on Intel hosts)', (ctx) => {
    const host = hostDecimal();
    if (typeof host === 'string') return ctx.skip(host);
    const cpu = newCpu();
    const bad: string[] = [];
    for (const line of host.lines) {
      const [op, ...nums] = line.split(' ');
      const [eaxIn, flagsIn, eaxOut, flagsOut] = nums.map((x) => parseInt(x, 16));
      const mask = host.vendor === 'GenuineIntel' ? OSZAPC : DEFINED[op];
      cpu.s[0] = eaxIn | 0;
      setRflags(cpu, flagsIn);
      const v = exec(cpu, op.match(/../g)!.map((b) => parseInt(b, 16)));
      const got = `${(cpu.s[0] >>> 0).toString(16)} ${(getRflags(cpu) & mask).toString(16)}`;
      const want = `${eaxOut.toString(16)} ${(flagsOut & mask).toString(16)}`;
      if (v >= 0 || got !== want) bad.push(`${line}: svmjit ${v >= 0 ? `vector ${v}` : got}, host ${want}`);
    }
    expect(host.lines.length).toBeGreaterThan(50000);
    expect(bad.slice(0, 10)).toEqual([]);
  }, 60_000);

  it('AAM 0 is #DE before anything changes', () => {
    const cpu = newCpu();
    cpu.s[0] = 0x1234;
    setRflags(cpu, 2 | F.CF);
    expect(exec(cpu, [0xd4, 0x00])).toBe(Vec.DE);
    expect(reg(cpu, EAX)).toBe(0x1234);
    expect(getRflags(cpu) & OSZAPC).toBe(F.CF);
  });
});

// ---- PUSHA / POPA ----

describe('PUSHA and POPA', () => {
  it('PUSHAD on a 16-bit stack wraps SP inside SS and keeps ESP[31:16]', () => {
    const cpu = newCpu();
    setSegCache(cpu, SegReg.SS, 0x30, 0x093, 0xffff, 0x20000); // B = 0
    cpu.mode = computeMode(cpu);
    for (let r = 0; r < 8; r++) cpu.s[2 * r] = 0x11111111 * (r + 1);
    cpu.s[2 * ESP] = 0xabcd0008 | 0;
    expect(exec(cpu, [0x60])).toBe(-1);
    expect(reg(cpu, ESP)).toBe(0xabcdffe8);
    const slots = [...Array(8)].map((_, i) => cpu.mem.read32(0x20000 + ((0xffe8 + 4 * i) & 0xffff)) >>> 0);
    expect(slots).toEqual([0x88888888, 0x77777777, 0x66666666, 0xabcd0008, 0x44444444, 0x33333333, 0x22222222, 0x11111111]);
  });

  it('POPAW writes low words only and skips the SP slot', () => {
    const cpu = newCpu();
    for (let r = 0; r < 8; r++) cpu.s[2 * r] = 0x11110000 * (r + 1);
    cpu.s[2 * ESP] = 0x1000;
    for (let i = 0; i < 8; i++) cpu.mem.write16(0x1000 + 2 * i, 0xa0 + i);
    expect(exec(cpu, [0x66, 0x61])).toBe(-1);
    expect([EDI, ESI, EBP, EBX, EDX, ECX, EAX].map((r) => reg(cpu, r))).toEqual([
      0x888800a0, 0x777700a1, 0x666600a2, 0x444400a4, 0x333300a5, 0x222200a6, 0x111100a7,
    ]);
    expect(reg(cpu, ESP)).toBe(0x1010);
  });

  it('a fault part-way changes neither registers nor memory', () => {
    const cpu = newCpu();
    cpu.mem.unmap(0xf000, 0x1000);
    for (let r = 0; r < 8; r++) cpu.s[2 * r] = 0x11111111 * (r + 1);
    cpu.s[2 * ESP] = 0x10008; // PUSHAD writes 0xFFE8-0x10007: the first half is not mapped
    cpu.mem.map(0x10000, 0x1000, Prot.READ | Prot.WRITE);
    cpu.mem.write32(0x10004, 0);
    expect(exec(cpu, [0x60])).toBe(Vec.PF);
    expect(reg(cpu, ESP)).toBe(0x10008);
    expect(cpu.mem.read32(0x10004)).toBe(0);
    cpu.s[2 * ESP] = 0xeff8; // POPAD reads 0xEFF8-0xF017
    const before = [...Array(8)].map((_, r) => reg(cpu, r));
    expect(exec(cpu, [0x61])).toBe(Vec.PF);
    expect([...Array(8)].map((_, r) => reg(cpu, r))).toEqual(before);
  });
});

// ---- BOUND, ARPL ----

describe('BOUND and ARPL', () => {
  it('BOUND: #BR outside [lower, upper], signed, with nothing changed', () => {
    const cpu = newCpu();
    cpu.mem.write32(0x2000, -5);
    cpu.mem.write32(0x2004, 5);
    cpu.s[2 * EBX] = 0x2000;
    for (const [index, vector] of [[-5, -1], [5, -1], [6, Vec.BR], [-6, Vec.BR], [0x7fffffff, Vec.BR]]) {
      cpu.s[2 * EAX] = index;
      expect(exec(cpu, [0x62, 0x03]), `index ${index}`).toBe(vector); // bound eax, [ebx]
      expect(cpu.s[2 * EAX]).toBe(index);
    }
  });

  it('ARPL is #UD in real mode', () => {
    const cpu = newCpu();
    cpu.s[S.CR0] = 0x10;
    expect(exec(cpu, [0x63, 0xc8], 16)).toBe(Vec.UD);
  });
});

// ---- LAR, LSL, VERR, VERW ----

describe('descriptor queries', () => {
  const TSS16 = 0x20, LDT = 0x28, TAIL = 0x78;

  function withDescriptors(): Cpu {
    const cpu = newCpu();
    setDescriptor(cpu, TSS16, 0x0000002b, 0x00008100); // 16-bit available TSS, limit 2Bh
    setDescriptor(cpu, LDT, 0x0000001f, 0x00008200); // LDT, limit 1Fh; the slot after it is zero
    setDescriptor(cpu, TAIL, 0x0000001f, 0x00008200); // an LDT descriptor in the GDT's last slot
    return cpu;
  }

  it('are #UD in real mode', () => {
    const cpu = newCpu();
    cpu.s[S.CR0] = 0x10;
    for (const bytes of [[0x0f, 0x02, 0xc1], [0x0f, 0x03, 0xc1], [0x0f, 0x00, 0xe1], [0x0f, 0x00, 0xe9]]) expect(exec(cpu, bytes, 16)).toBe(Vec.UD);
  });

  it('legacy mode accepts 16-bit system descriptors, long mode does not (APM Vol 3 LAR, LSL)', () => {
    const cpu = withDescriptors();
    cpu.s[2 * ECX] = TSS16;
    cpu.s[2 * EAX] = 0x5a5a5a5a;
    expect(exec(cpu, [0x0f, 0x02, 0xc1])).toBe(-1); // lar eax, ecx
    expect([zf(cpu), reg(cpu, EAX)]).toEqual([true, 0x00008100]);
    expect(exec(cpu, [0x0f, 0x03, 0xc1])).toBe(-1); // lsl eax, ecx
    expect([zf(cpu), reg(cpu, EAX)]).toEqual([true, 0x2b]);
    enterLongMode(cpu);
    cpu.s[2 * EAX] = 0x5a5a5a5a;
    expect(exec(cpu, [0x0f, 0x02, 0xc1])).toBe(-1);
    expect([zf(cpu), reg(cpu, EAX)]).toEqual([false, 0x5a5a5a5a]);
    expect(exec(cpu, [0x0f, 0x03, 0xc1])).toBe(-1);
    expect([zf(cpu), reg(cpu, EAX)]).toEqual([false, 0x5a5a5a5a]);
  });

  it('in long mode a system descriptor is 16 bytes: its upper half must fit the table', () => {
    const cpu = withDescriptors();
    enterLongMode(cpu);
    cpu.s[2 * ECX] = LDT;
    expect(exec(cpu, [0x0f, 0x03, 0xc1])).toBe(-1);
    expect([zf(cpu), reg(cpu, EAX)]).toEqual([true, 0x1f]);
    cpu.s[2 * ECX] = TAIL;
    cpu.s[2 * EAX] = 0;
    expect(exec(cpu, [0x0f, 0x03, 0xc1])).toBe(-1);
    expect(zf(cpu)).toBe(false);
    cpu.s[S.EFER] = 0;
    cpu.mode = computeMode(cpu);
    expect(exec(cpu, [0x0f, 0x03, 0xc1])).toBe(-1);
    expect(zf(cpu)).toBe(true);
  });

  it('a query of a descriptor whose table read faults raises the fault', () => {
    const cpu = newCpu();
    cpu.s[S.GDTR_BASE_LO] = 0x10000; // not mapped
    cpu.s[2 * ECX] = 0x10;
    expect(exec(cpu, [0x0f, 0x00, 0xe1])).toBe(Vec.PF); // verr cx
  });

  it('in user mode (an empty GDT, no LDT) every query fails without touching memory', () => {
    const cpu = new Cpu(new Memory(1 << 16));
    cpu.s[S.CR0] = 0x80050033 | 0;
    cpu.s[S.EFER] = 0xd01;
    cpu.s[S.CPL] = 3;
    cpu.s[2 * ECX] = 0x33;
    for (const bytes of [[0x0f, 0x02, 0xc1], [0x0f, 0x03, 0xc1], [0x0f, 0x00, 0xe1], [0x0f, 0x00, 0xe9]]) {
      setRflags(cpu, 2 | F.ZF);
      expect(exec(cpu, bytes, 64)).toBe(-1);
      expect(zf(cpu)).toBe(false);
    }
    cpu.s[2 * ECX] = 0x07; // TI = 1 with a null LDTR
    expect(exec(cpu, [0x0f, 0x02, 0xc1], 64)).toBe(-1);
    expect(zf(cpu)).toBe(false);
  });
});

// ---- SYSENTER, SYSEXIT ----

describe('SYSENTER and SYSEXIT (AMD)', () => {
  function legacyCpu(): Cpu {
    const cpu = newCpu();
    cpu.s[S.SYSENTER_CS] = 0x10;
    cpu.s[S.SYSENTER_ESP_LO] = 0x7000;
    cpu.s[S.SYSENTER_EIP_LO] = 0x1234;
    return cpu;
  }

  it('SYSENTER: CPL 0 on the MSRs, VM/IF/RF cleared, RPL of SYSENTER_CS dropped', () => {
    const cpu = legacyCpu();
    cpu.s[S.SYSENTER_CS] = 0x13;
    cpu.s[S.CPL] = 3;
    setRflags(cpu, 2 | F.IF | 0x10000 | F.CF);
    expect(exec(cpu, [0x0f, 0x34])).toBe(-1);
    expect([cpu.s[segAt(SegReg.CS)], cpu.s[segAt(SegReg.SS)], cpu.s[S.CPL]]).toEqual([0x10, 0x18, 0]);
    expect([reg(cpu, ESP), cpu.st.rip]).toEqual([0x7000, 0x1234]);
    expect(getRflags(cpu) & (F.IF | 0x10000 | F.CF)).toBe(F.CF);
    expect(cpu.mode & CpuMode.CODE_MASK).toBe(CpuMode.CODE32);
  });

  it('SYSEXIT: CPL 3 at SYSENTER_CS + 16 | 3 : EDX on SYSENTER_CS + 24 | 3 : ECX', () => {
    const cpu = legacyCpu();
    cpu.s[2 * ECX] = 0x6000;
    cpu.s[2 * EDX] = 0x4321;
    setRflags(cpu, 2 | F.IF);
    expect(exec(cpu, [0x0f, 0x35])).toBe(-1);
    expect([cpu.s[segAt(SegReg.CS)], cpu.s[segAt(SegReg.SS)], cpu.s[S.CPL]]).toEqual([0x23, 0x2b, 3]);
    expect([reg(cpu, ESP), cpu.st.rip, getRflags(cpu) & F.IF]).toEqual([0x6000, 0x4321, F.IF]);
    expect(exec(cpu, [0x0f, 0x35])).toBe(Vec.GP); // now at CPL 3
  });

  it('#GP(0) in real mode and with a null SYSENTER_CS; #UD in long mode', () => {
    const cpu = legacyCpu();
    cpu.s[S.SYSENTER_CS] = 3;
    expect(exec(cpu, [0x0f, 0x34])).toBe(Vec.GP);
    expect(exec(cpu, [0x0f, 0x35])).toBe(Vec.GP);
    cpu.s[S.SYSENTER_CS] = 0x10;
    cpu.s[S.CR0] = 0x10;
    expect(exec(cpu, [0x0f, 0x34], 16)).toBe(Vec.GP);
    cpu.s[S.CR0] = 0x11;
    enterLongMode(cpu);
    expect(exec(cpu, [0x0f, 0x34])).toBe(Vec.UD);
    expect(exec(cpu, [0x0f, 0x35])).toBe(Vec.UD);
    expect(cpu.s[S.CPL]).toBe(0);
  });
});

// ---- RDPMC ----

describe('RDPMC', () => {
  it('reads PerfCtr0-3 (48 bits) at CPL 0 or with CR4.PCE; #GP otherwise or for ECX > 3', () => {
    const cpu = newCpu();
    cpu.sys!.writeMsr(cpu, MSR_PERF_CTR0 + 2, 0x89abcdef | 0, 0x7654321);
    cpu.s[2 * ECX] = 2;
    expect(exec(cpu, [0x0f, 0x33])).toBe(-1);
    expect([reg(cpu, EDX), reg(cpu, EAX)]).toEqual([0x4321, 0x89abcdef]);
    cpu.s[2 * ECX] = 4;
    expect(exec(cpu, [0x0f, 0x33])).toBe(Vec.GP);
    cpu.s[2 * ECX] = 2;
    cpu.s[S.CPL] = 3;
    expect(exec(cpu, [0x0f, 0x33])).toBe(Vec.GP);
    cpu.s[S.CR4] = 0x100;
    expect(exec(cpu, [0x0f, 0x33])).toBe(-1);
  });

  it('in an SVM guest that intercepts it: #VMEXIT(RDPMC), after its #GP checks (spec/svm.md §6.9)', () => {
    const cpu = newCpu();
    cpu.svm = { guest: true, intercepted: (code: number) => code === 0x6f } as unknown as Cpu['svm'];
    cpu.s[2 * ECX] = 4;
    expect(exec(cpu, [0x0f, 0x33])).toBe(Vec.GP);
    cpu.s[2 * ECX] = 0;
    const insn = decode((a) => [0x0f, 0x33][a - CODE_AT], CODE_AT, 32);
    try {
      HELPERS[insn.mnem](cpu, insn);
      expect.unreachable('no #VMEXIT');
    } catch (e) {
      expect(e).toBeInstanceOf(VmExit);
      expect([(e as VmExit).exitCode, (e as VmExit).nrip]).toEqual([0x6f, CODE_AT + 2]);
    }
  });
});
