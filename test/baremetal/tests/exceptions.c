/*
 * exceptions: delivery of CPU exceptions through the IDT in 64-bit mode at CPL0, checked for
 * vector, error code and the RIP pushed (the instruction for faults, the next instruction for
 * traps): divide errors, invalid opcodes, breakpoints and INT n, #GP for non-canonical
 * addresses, MSRs, control registers and segment selectors, #NP and #SS for segments and
 * gates, the x87/SSE availability faults, the instruction-length limit, and the double-fault
 * rules.
 */
#include "runtime.h"

#define NONCANONICAL 0x8000000000000000ull
#define NONCANONICAL_LOW 0x0000800000000000ull	/* first address above the lower half */
#define UNMAPPED 0x200000000ull			/* 8 GiB: beyond the 4 GiB identity map */

/* Spare GDT descriptors for the selector checks. */
#define SEL_XONLY (GDT_SPARE_SEL + 0x00)	/* code, execute-only */
#define SEL_NP_DATA (GDT_SPARE_SEL + 0x08)	/* data, not present */
#define SEL_RO_DATA (GDT_SPARE_SEL + 0x10)	/* data, read-only */

static void test_divide(void)
{
	u32 lo = 1, hi = 0;
	/* SDM Vol 2 DIV: #DE if the source operand is 0 or the quotient is too large. */
	TRY("divl %%ecx", : "+a"(lo), "+d"(hi) : "c"(0) : "memory");
	ex_check("div by zero: #DE at the DIV", DE_VECTOR, 0, ex_site);
	lo = 0, hi = 1;
	TRY("divl %%ecx", : "+a"(lo), "+d"(hi) : "c"(1) : "memory");
	ex_check("div quotient 2^32 in 32 bits: #DE", DE_VECTOR, 0, ex_site);
	/* SDM Vol 2 IDIV: the quotient of INT_MIN / -1 is not representable. */
	lo = 0x80000000, hi = 0xffffffff;
	TRY("idivl %%ecx", : "+a"(lo), "+d"(hi) : "c"(-1) : "memory");
	ex_check("idiv INT_MIN / -1: #DE", DE_VECTOR, 0, ex_site);
	/* An 8-bit divide overflows already at 256 / 1 (AH:AL = 0x0100, quotient 256 > 255). */
	u64 ax = 0x100;
	TRY("divb %%cl", : "+a"(ax) : "c"(1) : "memory");
	ex_check("divb 256 / 1: #DE", DE_VECTOR, 0, ex_site);
}

static void test_invalid_opcode(void)
{
	TRY("ud2", ::: "memory");
	ex_check("ud2: #UD at the instruction (SDM Vol 2 UD)", UD_VECTOR, 0, ex_site);
	/* SDM Vol 2 LOCK: #UD when the destination is not memory or the opcode is not lockable. */
	TRY(".byte 0xf0, 0x90", ::: "memory");
	ex_check("lock nop: #UD", UD_VECTOR, 0, ex_site);
	u64 a = 0, b = 0;
	TRY(".byte 0xf0, 0x01, 0xc3", : "+a"(a), "+b"(b) : : "memory");	/* lock add %eax, %ebx */
	ex_check("lock add to a register: #UD", UD_VECTOR, 0, ex_site);
	/* INTO (0xCE) and the BCD opcodes are invalid in 64-bit mode (SDM Vol 2 INTO, AAA). */
	TRY(".byte 0xce", ::: "memory");
	ex_check("INTO in 64-bit mode: #UD", UD_VECTOR, 0, ex_site);
	TRY(".byte 0x37", ::: "memory");
	ex_check("AAA in 64-bit mode: #UD", UD_VECTOR, 0, ex_site);
	/* SDM Vol 2 MOV CR: CR1, CR5-7 and CR9-15 do not exist. */
	TRY("mov %%cr5, %%rax", ::: "rax", "memory");
	ex_check("mov from CR5: #UD", UD_VECTOR, 0, ex_site);
}

static volatile u64 handler_hits;
static volatile struct ex_frame handler_frame;
static volatile u64 handler_frame_top;

static void record_handler(struct ex_frame *f)
{
	handler_hits++;
	handler_frame = *f;
	handler_frame_top = (u64)&f->ss + 8;
}

static void test_breakpoint_and_int(void)
{
	/* #BP is a trap: RIP after INT3 (SDM Vol 3 §6.15 "Interrupt 3"). */
	TRY_TRAP("int3", ::: "memory");
	ex_check("int3: #BP with RIP after the instruction", BP_VECTOR, 0, ex_site);
	TRY_TRAP("int $3", ::: "memory");
	ex_check("int $3 (CD 03): #BP with RIP after the instruction", BP_VECTOR, 0, ex_site);

	/*
	 * INT n to a handler: RIP after the instruction, CS and SS:RSP of the caller, and an
	 * RSP aligned to 16 before the frame is pushed (SDM Vol 3 §6.14.2). The INT runs with RSP
	 * misaligned by 8 to see the alignment.
	 */
	set_handler(0x40, record_handler);
	u64 after, rsp_before;
	asm volatile("sub $8, %%rsp\n\t"
		     "mov %%rsp, %1\n\t"
		     "int $0x40\n\t"
		     "1: add $8, %%rsp\n\t"
		     "lea 1b(%%rip), %0"
		     : "=r"(after), "=&r"(rsp_before) : : "memory");
	set_handler(0x40, NULL);
	expect_eq("INT 0x40 reaches its handler once", handler_hits, 1);
	expect_eq("INT 0x40 frame: vector", handler_frame.vector, 0x40);
	expect_eq("INT 0x40 frame: RIP after the INT", handler_frame.rip, after);
	expect_eq("INT 0x40 frame: CS", handler_frame.cs, KERNEL_CS64);
	expect_eq("INT 0x40 frame: SS:RSP pushed in 64-bit mode even at the same CPL (RSP)",
		  handler_frame.rsp, rsp_before);
	expect_eq("INT 0x40 frame: SS unchanged without a privilege change", handler_frame.ss, KERNEL_DS);
	expect_eq("INT 0x40 frame top is 16-byte aligned (SDM Vol 3 §6.14.2)", handler_frame_top & 15, 0);
	report(!(handler_frame.rflags & RFLAGS_RF) && (handler_frame.rflags & RFLAGS_FIXED),
	       "INT 0x40 frame: RFLAGS with bit 1 set and RF clear");
}

static void test_general_protection(void)
{
	u64 v = 0;
	/* SDM Vol 3 §6.15 "Interrupt 13": a non-canonical linear address gives #GP(0). */
	TRY("mov (%%rax), %%rbx", : "+b"(v) : "a"(NONCANONICAL) : "memory");
	ex_check("load from 0x8000000000000000: #GP(0)", GP_VECTOR, 0, ex_site);
	TRY("movq $1, (%%rax)", : : "a"(NONCANONICAL_LOW) : "memory");
	ex_check("store to 0x0000800000000000: #GP(0)", GP_VECTOR, 0, ex_site);

	/*
	 * SDM Vol 2 WRMSR/RDMSR: #GP(0) for a reserved or unimplemented MSR address.
	 * QEMU 7.2 TCG (as observed) reads unknown MSRs as 0, drops writes to them, and drops
	 * reserved EFER bits instead of faulting.
	 */
	qemu_deviation("TCG ignores WRMSR to an unknown MSR");
	TRY("wrmsr", : : "c"(0xc0011fffu), "a"(0), "d"(0) : "memory");
	ex_check("wrmsr to MSR C001_1FFF (unimplemented): #GP(0)", GP_VECTOR, 0, ex_site);
	qemu_deviation("TCG reads an unknown MSR as 0");
	TRY("rdmsr", : "+a"(v) : "c"(0x40000fffu) : "rdx", "memory");
	ex_check("rdmsr of MSR 4000_0FFF (unimplemented): #GP(0)", GP_VECTOR, 0, ex_site);
	/* SDM Vol 3 §2.2.1 / APM Vol 2 §3.1.7: EFER bits beyond the defined ones are reserved. */
	qemu_deviation("TCG drops reserved EFER bits silently");
	TRY("wrmsr", : : "c"(MSR_EFER), "a"((u32)rdmsr(MSR_EFER) | 0x10000000), "d"(0) : "memory");
	ex_check("wrmsr EFER with reserved bit 28 set: #GP(0)", GP_VECTOR, 0, ex_site);
	expect_eq("EFER unchanged after the faulting write", rdmsr(MSR_EFER) & 0x10000000, 0);
}

/*
 * SDM Vol 2 MOV CR ("64-Bit Mode Exceptions") and Vol 3 §2.5: #GP(0) for reserved bits in CR4,
 * a nonzero CR0[63:32], CR0.NW = 1 with CD = 0, clearing CR0.PG or CR4.PAE in 64-bit mode, and
 * for CR3 bits above MAXPHYADDR (Vol 3 §4.5.2). QEMU 7.2 TCG checks none of these: it ignores
 * CR0's bad combinations and high bits, and the others wreck the machine (a reserved CR4 or
 * CR3 bit hangs it; clearing PAE or PG in long mode takes effect and the next fetch
 * triple-faults), so those are not run under QEMU.
 */
static void test_control_registers(void)
{
	if (!qemu_cannot_run("mov to CR4 with reserved bit 31: #GP(0)", "TCG hangs"))  {
		TRY("mov %%rax, %%cr4", : : "a"(read_cr4() | BIT(31)) : "memory");
		ex_check("mov to CR4 with reserved bit 31: #GP(0)", GP_VECTOR, 0, ex_site);
	}
	qemu_deviation("TCG accepts NW=1 with CD=0");
	TRY("mov %%rax, %%cr0", : : "a"((read_cr0() & ~(u64)CR0_CD) | CR0_NW) : "memory");
	ex_check("mov to CR0 with NW=1, CD=0: #GP(0)", GP_VECTOR, 0, ex_site);
	write_cr0(read_cr0() & ~(u64)CR0_NW);
	qemu_deviation("TCG ignores CR0[63:32]");
	TRY("mov %%rax, %%cr0", : : "a"(read_cr0() | BIT(32)) : "memory");
	ex_check("mov to CR0 with bit 32 set: #GP(0)", GP_VECTOR, 0, ex_site);
	write_cr0((u32)read_cr0());
	if (!qemu_cannot_run("clearing CR4.PAE in long mode: #GP(0)", "TCG clears PAE and crashes")) {
		TRY("mov %%rax, %%cr4", : : "a"(read_cr4() & ~(u64)CR4_PAE) : "memory");
		ex_check("clearing CR4.PAE in long mode: #GP(0)", GP_VECTOR, 0, ex_site);
	}
	if (!qemu_cannot_run("clearing CR0.PG in 64-bit mode: #GP(0)", "TCG clears PG and crashes")) {
		TRY("mov %%rax, %%cr0", : : "a"(read_cr0() & ~(u64)CR0_PG) : "memory");
		ex_check("clearing CR0.PG in 64-bit mode: #GP(0)", GP_VECTOR, 0, ex_site);
	}
	int maxphy = max_phys_addr_bits();
	if (maxphy < 52 && !qemu_cannot_run("mov to CR3 with the bit at MAXPHYADDR set: #GP(0)",
					    "TCG loads the bad CR3 and hangs")) {
		TRY("mov %%rax, %%cr3", : : "a"(read_cr3() | BIT(maxphy)) : "memory");
		ex_check("mov to CR3 with the bit at MAXPHYADDR set: #GP(0)", GP_VECTOR, 0, ex_site);
	}
}

static void test_selectors(void)
{
	gdt[SEL_XONLY / 8] = seg_desc(0, 0xfffff, 0x98, 0xc);
	gdt[SEL_NP_DATA / 8] = seg_desc(0, 0xfffff, 0x12, 0xc);
	gdt[SEL_RO_DATA / 8] = seg_desc(0, 0xfffff, 0x90, 0xc);

	/*
	 * Selector faults report the selector with RPL cleared: error code bits 15:3 index,
	 * bit 2 TI, bit 1 IDT, bit 0 EXT (SDM Vol 3 §6.13, Vol 2 MOV "#GP(selector)").
	 */
	TRY("mov %%ax, %%ds", : : "a"(0x1003) : "memory");
	ex_check("mov ds, 0x1003 beyond the GDT limit: #GP(0x1000)", GP_VECTOR, 0x1000, ex_site);
	TRY("mov %%ax, %%es", : : "a"(0x000f) : "memory");
	ex_check("mov es, 0x000F (LDT, no LDT loaded): #GP(0x000C)", GP_VECTOR, 0x000c, ex_site);
	TRY("mov %%ax, %%ds", : : "a"(TSS_SEL) : "memory");
	ex_check("mov ds, TSS selector (system descriptor): #GP(0x50)", GP_VECTOR, TSS_SEL, ex_site);
	TRY("mov %%ax, %%ds", : : "a"(SEL_XONLY) : "memory");
	ex_check("mov ds, execute-only code segment: #GP(selector)", GP_VECTOR, SEL_XONLY, ex_site);
	TRY("mov %%ax, %%ds", : : "a"(KERNEL_DS | 3) : "memory");
	ex_check("mov ds, DPL0 data with RPL3 (DPL < RPL): #GP(0x10)", GP_VECTOR, KERNEL_DS, ex_site);
	TRY("mov %%ax, %%ss", : : "a"(SEL_RO_DATA) : "memory");
	ex_check("mov ss, read-only data segment: #GP(selector)", GP_VECTOR, SEL_RO_DATA, ex_site);
	TRY("mov %%ax, %%ss", : : "a"(USER_DS | 3) : "memory");
	ex_check("mov ss, selector with RPL3 at CPL0: #GP(0x40)", GP_VECTOR, USER_DS, ex_site);
	TRY("mov %%ax, %%ss", : : "a"(USER_DS) : "memory");
	ex_check("mov ss, DPL3 data at CPL0: #GP(0x40)", GP_VECTOR, USER_DS, ex_site);
	/* SDM Vol 2 MOV: a not-present segment gives #NP(selector), or #SS(selector) for SS. */
	TRY("mov %%ax, %%ds", : : "a"(SEL_NP_DATA) : "memory");
	ex_check("mov ds, not-present data segment: #NP(selector)", NP_VECTOR, SEL_NP_DATA, ex_site);
	TRY("mov %%ax, %%ss", : : "a"(SEL_NP_DATA) : "memory");
	ex_check("mov ss, not-present data segment: #SS(selector)", SS_VECTOR, SEL_NP_DATA, ex_site);
	/* A null selector in DS is fine in 64-bit mode (SDM Vol 3 §5.4.1.1). */
	TRY("mov %%ax, %%ds", : : "a"(0) : "memory");
	ex_check_none("mov ds, null selector: no fault");
	asm volatile("mov %0, %%ds" : : "r"(KERNEL_DS));
}

static void test_stack_fault(void)
{
	u64 v = 0;
	/*
	 * SDM Vol 2 MOV, "64-Bit Mode Exceptions": "#SS(0) if a memory address referencing the SS
	 * segment is in a non-canonical form" (base register RSP or RBP selects SS), not #GP(0).
	 */
	qemu_deviation("TCG raises #GP(0) for every non-canonical address");
	TRY("mov (%%rsp,%%rax,1), %%rbx", : "+b"(v) : "a"(NONCANONICAL) : "memory");
	ex_check("load from RSP + 2^63 (non-canonical): #SS(0)", SS_VECTOR, 0, ex_site);
}

/*
 * QEMU 7.2 builds the IDT error code of a 64-bit IDT as vector * 16 + 2 (the gate's byte
 * offset) where the manuals put the vector in bits 15:3 (SDM Vol 3 §6.13 figure 6-7, APM Vol 2
 * §8.4.1), and never sets EXT for a hardware exception.
 */
#define QEMU_IDT_ERROR_CODE "TCG's 64-bit IDT error code is vector*16+2, without EXT"

static void test_gates(void)
{
	/* SDM Vol 3 §6.13: a not-present IDT gate gives #NP with IDT=1, index = vector. */
	idt_set_present(0x42, false);
	qemu_deviation(QEMU_IDT_ERROR_CODE);
	TRY("int $0x42", ::: "memory");
	ex_check("INT 0x42 to a not-present gate: #NP(0x42*8+2)", NP_VECTOR, 0x42 * 8 + 2, ex_site);
	idt_restore(0x42);

	/* Same for INT3, a software interrupt: EXT = 0. */
	idt_set_present(BP_VECTOR, false);
	qemu_deviation(QEMU_IDT_ERROR_CODE);
	TRY("int3", ::: "memory");
	ex_check("INT3 to a not-present gate: #NP(3*8+2), EXT clear", NP_VECTOR, 3 * 8 + 2, ex_site);
	idt_restore(BP_VECTOR);

	/*
	 * A hardware exception whose gate is not present: #UD is benign, so the #NP is delivered
	 * as is (SDM Vol 3 §6.15 table 6-5), with EXT = 1 because the #NP arose while delivering
	 * an event that was not a software interrupt (SDM Vol 3 §6.13).
	 */
	idt_set_present(UD_VECTOR, false);
	TRY("ud2", ::: "memory");
	idt_restore(UD_VECTOR);
	qemu_deviation(QEMU_IDT_ERROR_CODE);
	ex_check("#UD through a not-present gate: #NP(6*8+3) with EXT set", NP_VECTOR, 6 * 8 + 3, ex_site);
}

static void test_double_fault(void)
{
	/*
	 * SDM Vol 3 §6.15 "Interrupt 8", table 6-5: a contributory exception (#NP here) while
	 * delivering a page fault, or while delivering a contributory exception, is a double
	 * fault with error code 0. The saved RIP is undefined for this abort, so it is not checked.
	 */
	idt_set_present(PF_VECTOR, false);
	TRY("mov (%%rax), %%rax", : : "a"(UNMAPPED) : "memory");
	idt_restore(PF_VECTOR);
	ex_check("#PF through a not-present gate: #DF(0)", DF_VECTOR, 0, EX_ANY_RIP);

	idt_set_present(GP_VECTOR, false);
	TRY("mov (%%rax), %%rax", : : "a"(NONCANONICAL) : "memory");
	idt_restore(GP_VECTOR);
	ex_check("#GP through a not-present gate: #DF(0)", DF_VECTOR, 0, EX_ANY_RIP);

	/* A #PF while pushing the #PF frame (its IST stack is unmapped) is a double fault too. */
	tss.ist[1] = UNMAPPED + PAGE_SIZE;
	idt_set_ist(PF_VECTOR, 2);
	TRY("mov (%%rax), %%rax", : : "a"(UNMAPPED) : "memory");
	idt_restore(PF_VECTOR);
	ex_check("#PF while delivering #PF (unmapped IST stack): #DF(0)", DF_VECTOR, 0, EX_ANY_RIP);

	/* #DE is contributory; a #DE whose gate is missing gives #NP, another contributory: #DF. */
	idt_set_present(DE_VECTOR, false);
	u32 lo = 1, hi = 0;
	TRY("divl %%ecx", : "+a"(lo), "+d"(hi) : "c"(0) : "memory");
	idt_restore(DE_VECTOR);
	ex_check("#DE through a not-present gate: #DF(0)", DF_VECTOR, 0, EX_ANY_RIP);
}

static void test_fpu_availability(void)
{
	/*
	 * SDM Vol 3 §2.5 table 2-2 and table 13-1: x87 instructions
	 * give #NM when CR0.EM or CR0.TS is set; SSE instructions give #UD when CR0.EM = 1 or
	 * CR4.OSFXSR = 0, which takes priority over #NM for CR0.TS; WAIT gives #NM only with
	 * CR0.MP and CR0.TS both set.
	 */
	u64 cr0 = read_cr0(), cr4 = read_cr4();
	write_cr4(cr4 | BIT(9));	/* OSFXSR */
	write_cr0(cr0 & ~(u64)(CR0_EM | CR0_TS | CR0_MP));
	TRY("xorps %%xmm0, %%xmm0", ::: "memory");
	ex_check_none("xorps with EM=0 TS=0 OSFXSR=1: executes");
	TRY("fnop", ::: "memory");
	ex_check_none("fnop with EM=0 TS=0: executes");

	write_cr0(read_cr0() | CR0_TS);
	TRY("xorps %%xmm0, %%xmm0", ::: "memory");
	ex_check("xorps with TS=1: #NM", NM_VECTOR, 0, ex_site);
	TRY("fnop", ::: "memory");
	ex_check("fnop with TS=1: #NM", NM_VECTOR, 0, ex_site);
	TRY("fwait", ::: "memory");
	ex_check_none("fwait with TS=1 MP=0: executes");
	write_cr0(read_cr0() | CR0_MP);
	TRY("fwait", ::: "memory");
	ex_check("fwait with TS=1 MP=1: #NM", NM_VECTOR, 0, ex_site);

	write_cr0(read_cr0() | CR0_EM);
	/* SDM Vol 3 table 13-1 ("Action taken for combinations of OSFXSR, OSXMMEXCPT, SSE, EM,
	   MP and TS"): EM = 1 is #UD whatever TS is. QEMU 7.2 tests TS first. */
	qemu_deviation("TCG checks CR0.TS before CR0.EM for SSE instructions");
	TRY("xorps %%xmm0, %%xmm0", ::: "memory");
	ex_check("xorps with EM=1 TS=1: #UD before #NM", UD_VECTOR, 0, ex_site);
	TRY("fnop", ::: "memory");
	ex_check("fnop with EM=1: #NM", NM_VECTOR, 0, ex_site);

	write_cr0(cr0 & ~(u64)(CR0_EM | CR0_TS | CR0_MP));
	write_cr4(cr4 & ~BIT(9));
	TRY("xorps %%xmm0, %%xmm0", ::: "memory");
	ex_check("xorps with OSFXSR=0: #UD", UD_VECTOR, 0, ex_site);
	write_cr0(cr0);
	write_cr4(cr4);
}

static void test_instruction_length(void)
{
	/*
	 * SDM Vol 2 §2.3.11 / APM Vol 3 §1.1: instructions are at most 15 bytes; a longer one
	 * (here 15 operand-size prefixes before a NOP) raises #GP(0) at its first byte.
	 */
	TRY(".byte 0x66,0x66,0x66,0x66,0x66,0x66,0x66,0x66,0x66,0x66,0x66,0x66,0x66,0x66,0x90",
	    ::: "memory");
	ex_check_none("15-byte instruction (14 prefixes + NOP): executes");
	TRY(".byte 0x66,0x66,0x66,0x66,0x66,0x66,0x66,0x66,0x66,0x66,0x66,0x66,0x66,0x66,0x66,0x90",
	    ::: "memory");
	ex_check("16-byte instruction: #GP(0)", GP_VECTOR, 0, ex_site);
	/* The fetch fault of a memory operand comes before the #DE the division would raise. */
	u32 lo = 1, hi = 0;
	TRY("divl (%%rcx)", : "+a"(lo), "+d"(hi) : "c"(UNMAPPED) : "memory");
	ex_check("div by an unmapped memory operand: #PF, not #DE", PF_VECTOR, 0, ex_site);
}

void test_main(void)
{
	test_divide();
	test_invalid_opcode();
	test_breakpoint_and_int();
	test_general_protection();
	test_control_registers();
	test_selectors();
	test_stack_fault();
	test_gates();
	test_double_fault();
	test_fpu_availability();
	test_instruction_length();
}
