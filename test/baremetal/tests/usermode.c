/*
 * usermode: privilege levels in long mode. Entering CPL3 with IRETQ and coming back through
 * a DPL3 interrupt gate (stack switch to TSS.RSP0, null SS), the DPL check of INT n, the
 * instructions reserved to CPL0 or to IOPL, the I/O permission bitmap, POPF's silent limits,
 * segment and IRETQ privilege checks, and the SYSCALL/SYSRET round trip with RCX, R11 and
 * SFMASK.
 */
#include "runtime.h"

/* A probe is a function run at CPL3 that executes one instruction under TRY and returns the
   vector it raised (or -1); the caller then checks last_ex and ex_site as at CPL0. */
#define USER_PROBE(fn, insn, ...)                                                        \
	static u64 fn(u64 arg)                                                           \
	{                                                                                \
		(void)arg;                                                               \
		TRY(insn, __VA_ARGS__);                                                  \
		return (u64)(s64)ex_vector();                                            \
	}

static volatile struct { u64 cs, ss, rflags, arg; } seen;

static bool on_user_stack(u64 rsp)
{
	return rsp <= (u64)user_stack_top && rsp > (u64)user_stack_top - STACK_SIZE;
}

static u64 user_report_state(u64 arg)
{
	seen.cs = read_cs();
	seen.ss = read_ss();
	seen.rflags = read_rflags();
	seen.arg = arg;
	return arg * 3;
}

static volatile u64 gate_cs, gate_ss, gate_frame_top, gate_handler_ss, gate_rsp_in_frame;

static void gate_handler(struct ex_frame *f)
{
	gate_cs = f->cs;
	gate_ss = f->ss;
	gate_rsp_in_frame = f->rsp;
	gate_frame_top = (u64)&f->ss + 8;
	gate_handler_ss = read_ss();
	f->rax = 0x600d;
}

static u64 user_int_gate(u64 arg)
{
	u64 r = arg;
	asm volatile("int $0x50" : "+a"(r) : : "memory");
	return r;
}

static void test_iretq_and_gates(void)
{
	/* SDM Vol 2 IRET: IRETQ to a CPL3 code segment loads CS, SS (both RPL3), RSP and RFLAGS. */
	u64 r = user_run(user_report_state, 14, RFLAGS_AC);
	expect_eq("user function's return value comes back to CPL0", r, 42);
	expect_eq("user mode: argument passed in RDI", seen.arg, 14);
	expect_eq("user mode: CS = USER_CS64 | 3", seen.cs, USER_CS64 | 3);
	expect_eq("user mode: SS = USER_DS | 3", seen.ss, USER_DS | 3);
	expect_eq("user mode: RFLAGS as given to IRETQ", seen.rflags & ~(u64)0xff, RFLAGS_AC);

	/*
	 * INT n through a DPL3 gate from CPL3: the CPU switches to TSS.RSP0, pushes the user
	 * SS:RSP, and loads SS with a null selector (SDM Vol 3 §6.14.2, §6.14.4).
	 */
	set_handler(0x50, gate_handler);
	idt_set_dpl(0x50, 3);
	r = user_run(user_int_gate, 0, 0);
	idt_restore(0x50);
	set_handler(0x50, NULL);
	expect_eq("INT 0x50 from CPL3 reaches a DPL3 gate and returns to CPL3", r, 0x600d);
	expect_eq("INT from CPL3: frame CS is the user CS", gate_cs, USER_CS64 | 3);
	expect_eq("INT from CPL3: frame SS is the user SS", gate_ss, USER_DS | 3);
	report(on_user_stack(gate_rsp_in_frame), "INT from CPL3: frame RSP is on the user stack");
	expect_eq("INT from CPL3: handler stack is TSS.RSP0 (frame ends there)", gate_frame_top, tss.rsp[0]);
	expect_eq("INT from CPL3: handler runs with a null SS (SDM Vol 3 §6.14.4)", gate_handler_ss, 0);
}

USER_PROBE(user_int_dpl0, "int $0x40", ::: "memory")
USER_PROBE(user_int3, "int3", ::: "memory")
USER_PROBE(user_ud2, "ud2", ::: "memory")

static void test_gate_dpl(void)
{
	/* SDM Vol 3 §6.12.1.1: INT n / INT3 with gate DPL < CPL is #GP(vector*8+2), EXT = 0. */
	qemu_deviation("TCG's 64-bit IDT error code is vector*16+2 (SDM Vol 3 §6.13: vector in bits 15:3)");
	user_run(user_int_dpl0, 0, 0);
	ex_check("CPL3 INT 0x40 to a DPL0 gate: #GP(0x40*8+2)", GP_VECTOR, 0x40 * 8 + 2, ex_site);
	qemu_deviation("TCG's 64-bit IDT error code is vector*16+2 (SDM Vol 3 §6.13: vector in bits 15:3)");
	user_run(user_int3, 0, 0);
	ex_check("CPL3 INT3 to a DPL0 gate: #GP(3*8+2)", GP_VECTOR, 3 * 8 + 2, ex_site);
	/* Exceptions are delivered whatever the gate's DPL (SDM Vol 3 §6.12.1.1). */
	user_run(user_ud2, 0, 0);
	ex_check("CPL3 UD2: #UD through the DPL0 gate", UD_VECTOR, 0, ex_site);
	expect_eq("CPL3 UD2: frame CS has RPL 3", last_ex.cs, USER_CS64 | 3);
}

/* SDM Vol 2, each instruction's "Protected Mode Exceptions": #GP(0) if CPL is not 0. */
USER_PROBE(user_hlt, "hlt", ::: "memory")
USER_PROBE(user_mov_from_cr0, "mov %%cr0, %%rax", ::: "rax", "memory")
USER_PROBE(user_mov_to_cr3, "mov %%rax, %%cr3", : : "a"(0) : "memory")
USER_PROBE(user_wrmsr, "wrmsr", : : "c"(MSR_EFER), "a"(0), "d"(0) : "memory")
USER_PROBE(user_rdmsr, "rdmsr", : : "c"(MSR_EFER) : "rax", "rdx", "memory")
USER_PROBE(user_lidt, "lidt (%%rsp)", ::: "memory")
USER_PROBE(user_invlpg_unmapped, "invlpg (%%rax)", : : "a"(0x200000000ull) : "memory")
USER_PROBE(user_mov_dr7, "mov %%dr7, %%rax", ::: "rax", "memory")
USER_PROBE(user_clts, "clts", ::: "memory")
USER_PROBE(user_wbinvd, "wbinvd", ::: "memory")
USER_PROBE(user_swapgs, "swapgs", ::: "memory")
USER_PROBE(user_rdtsc, "rdtsc", ::: "rax", "rdx", "memory")
USER_PROBE(user_sgdt, "sub $16, %%rsp; sgdt (%%rsp); add $16, %%rsp", ::: "memory")
/* IOPL-sensitive: #GP(0) when CPL > IOPL (SDM Vol 1 §19.5.1, §19.5.2). */
USER_PROBE(user_cli, "cli", ::: "memory")
USER_PROBE(user_sti, "sti", ::: "memory")
USER_PROBE(user_in80, "inb $0x80, %%al", ::: "rax", "memory")
USER_PROBE(user_out80, "outb %%al, $0x80", : : "a"(0) : "memory")
USER_PROBE(user_out81, "outb %%al, $0x81", : : "a"(0) : "memory")
USER_PROBE(user_outw80, "outw %%ax, $0x80", : : "a"(0) : "memory")

static void test_privileged_instructions(void)
{
	static const struct {
		const char *name;
		u64 (*probe)(u64);
	} cpl0_only[] = {
		{ "CPL3 HLT: #GP(0)", user_hlt },
		{ "CPL3 MOV from CR0: #GP(0)", user_mov_from_cr0 },
		{ "CPL3 MOV to CR3: #GP(0)", user_mov_to_cr3 },
		{ "CPL3 WRMSR: #GP(0)", user_wrmsr },
		{ "CPL3 RDMSR: #GP(0)", user_rdmsr },
		{ "CPL3 LIDT: #GP(0)", user_lidt },
		{ "CPL3 INVLPG of an unmapped address: #GP(0), the CPL check comes first", user_invlpg_unmapped },
		{ "CPL3 MOV from DR7: #GP(0)", user_mov_dr7 },
		{ "CPL3 CLTS: #GP(0)", user_clts },
		{ "CPL3 WBINVD: #GP(0)", user_wbinvd },
		{ "CPL3 SWAPGS: #GP(0)", user_swapgs },
		{ "CPL3 CLI with IOPL 0: #GP(0)", user_cli },
		{ "CPL3 STI with IOPL 0: #GP(0)", user_sti },
		{ "CPL3 IN with IOPL 0 and no I/O bitmap: #GP(0)", user_in80 },
		{ "CPL3 OUT with IOPL 0 and no I/O bitmap: #GP(0)", user_out80 },
	};
	for (size_t i = 0; i < ARRAY_SIZE(cpl0_only); i++) {
		user_run(cpl0_only[i].probe, 0, 0);
		ex_check(cpl0_only[i].name, GP_VECTOR, 0, ex_site);
	}

	/* Not privileged: SGDT without CR4.UMIP, RDTSC with CR4.TSD = 0 (and #GP(0) with TSD = 1). */
	report(user_run(user_sgdt, 0, 0) == (u64)-1, "CPL3 SGDT without UMIP works");
	report(user_run(user_rdtsc, 0, 0) == (u64)-1, "CPL3 RDTSC with CR4.TSD=0 works");
	write_cr4(read_cr4() | BIT(2));		/* TSD */
	user_run(user_rdtsc, 0, 0);
	write_cr4(read_cr4() & ~BIT(2));
	ex_check("CPL3 RDTSC with CR4.TSD=1: #GP(0)", GP_VECTOR, 0, ex_site);

	/* With IOPL 3 the IOPL-sensitive instructions are allowed at CPL3. */
	report(user_run(user_cli, 0, RFLAGS_IOPL) == (u64)-1, "CPL3 CLI with IOPL 3 works");
	report(user_run(user_in80, 0, RFLAGS_IOPL) == (u64)-1, "CPL3 IN with IOPL 3 works");

	/* IOPL 0 with an I/O bitmap in the TSS: port 0x80 allowed, 0x81 not (SDM Vol 1 §19.5.2). */
	tss.iomap[0x80 / 8] &= ~(1u << (0x80 % 8));
	tss_use_iomap(true);
	report(user_run(user_out80, 0, 0) == (u64)-1, "CPL3 OUT to a port allowed by the I/O bitmap works");
	user_run(user_out81, 0, 0);
	ex_check("CPL3 OUT to a port denied by the I/O bitmap: #GP(0)", GP_VECTOR, 0, ex_site);
	user_run(user_outw80, 0, 0);
	ex_check("CPL3 16-bit OUT to 0x80 (0x81 denied): #GP(0), every byte's bit counts", GP_VECTOR, 0,
		 ex_site);
	tss_use_iomap(false);
	tss.iomap[0x80 / 8] |= 1u << (0x80 % 8);
}

static u64 user_popf(u64 flags)
{
	/* At CPL3, POPF leaves IOPL alone, and IF too when CPL > IOPL, without faulting. */
	write_rflags(flags);
	return read_rflags();
}

static void test_popf(void)
{
	u64 f = user_run(user_popf, RFLAGS_IOPL | RFLAGS_IF | RFLAGS_FIXED, 0);
	expect_eq("CPL3 POPF with IOPL 0 cannot set IOPL or IF (SDM Vol 2 POPF)", f & (RFLAGS_IOPL | RFLAGS_IF), 0);
	f = user_run(user_popf, RFLAGS_FIXED, RFLAGS_IOPL);
	expect_eq("CPL3 POPF with IOPL 3 may change IF but not IOPL", f & (RFLAGS_IOPL | RFLAGS_IF), RFLAGS_IOPL);
}

USER_PROBE(user_load_kernel_ds, "mov %%ax, %%ds", : : "a"(KERNEL_DS) : "memory")
USER_PROBE(user_far_jump_kernel, "ljmpl *(%%rax)", : : "a"(&(const struct { u32 off; u16 sel; }){ 0, KERNEL_CS64 }) : "memory")

static void test_segment_privilege(void)
{
	/* SDM Vol 2 MOV: a data segment with DPL < CPL gives #GP(selector). */
	user_run(user_load_kernel_ds, 0, 0);
	ex_check("CPL3 mov ds, KERNEL_DS (DPL0): #GP(0x10)", GP_VECTOR, KERNEL_DS, ex_site);
	/* SDM Vol 2 JMP: a non-conforming code segment with DPL != CPL gives #GP(selector). */
	user_run(user_far_jump_kernel, 0, 0);
	ex_check("CPL3 far jump to KERNEL_CS64: #GP(0x08)", GP_VECTOR, KERNEL_CS64, ex_site);

	/* SDM Vol 2 IRET: returning to CPL3 with an SS whose RPL is not 3 is #GP(SS selector). */
	asm volatile(ASM_TRY("1f", "2f")
		     "mov %%rsp, %%rcx\n\t"
		     "push %[ss]\n\t"
		     "push %%rcx\n\t"
		     "pushfq\n\t"
		     "push %[cs]\n\t"
		     "lea 1f(%%rip), %%rax\n\t"
		     "push %%rax\n\t"
		     "2: iretq\n\t"
		     "1: mov %%rcx, %%rsp"
		     : : [ss] "i"(KERNEL_DS), [cs] "i"(USER_CS64 | 3) : "rax", "rcx", "memory");
	ex_check("IRETQ to CPL3 with SS.RPL = 0: #GP(SS selector)", GP_VECTOR, KERNEL_DS, ex_site);
}

static volatile u64 syscall_return_rip, user_flags_before, user_flags_after, user_cs_after, user_ss_after;

static u64 user_syscall(u64 arg)
{
	u64 ret;
	user_flags_before = read_rflags();
	asm volatile("lea 1f(%%rip), %%rcx\n\t"
		     "mov %%rcx, syscall_return_rip(%%rip)\n\t"
		     "syscall\n"
		     "1:"
		     : "=a"(ret) : "a"(SYS_ECHO), "D"(arg) : "rcx", "r11", "memory");
	user_flags_after = read_rflags();
	user_cs_after = read_cs();
	user_ss_after = read_ss();
	return ret;
}

static u64 user_syscall_exit(u64 arg)
{
	do_syscall(SYS_EXIT, arg + 1);
	return 0;	/* not reached: SYS_EXIT does not return to user mode */
}

USER_PROBE(user_syscall_ud, "syscall", : : "a"(SYS_ECHO) : "rcx", "r11", "memory")
USER_PROBE(user_sysret, "sysretq", ::: "rcx", "r11", "memory")

static void test_syscall(void)
{
	/* SDM Vol 2 SYSCALL: #UD while EFER.SCE = 0. */
	user_run(user_syscall_ud, 0, 0);
	ex_check("SYSCALL with EFER.SCE=0: #UD", UD_VECTOR, 0, ex_site);

	u64 sfmask = RFLAGS_TF | RFLAGS_DF | RFLAGS_IF | RFLAGS_AC | RFLAGS_NT;
	syscall_setup(sfmask);
	/*
	 * SYSCALL: RCX = next RIP, R11 = RFLAGS (RF cleared), RFLAGS &= ~SFMASK, CS = STAR[47:32],
	 * SS = STAR[47:32] + 8. SYSRET (64-bit): RIP = RCX, RFLAGS = R11, CS = STAR[63:48] + 16,
	 * SS = STAR[63:48] + 8, both with RPL 3.
	 */
	u64 user_flags = RFLAGS_DF | RFLAGS_AC | RFLAGS_CF;
	u64 r = user_run(user_syscall, 0x5150, user_flags);
	expect_eq("SYSCALL/SYSRET round trip returns the echoed value", r, 0x5150);
	expect_eq("SYSCALL: RCX = the instruction after SYSCALL", last_syscall.rcx, syscall_return_rip);
	expect_eq("SYSCALL: R11 = the user RFLAGS", last_syscall.r11, user_flags_before);
	qemu_deviation("TCG's SYSCALL clears the status flags (CF here) instead of keeping them");
	expect_eq("SYSCALL: RFLAGS = user RFLAGS & ~SFMASK", last_syscall.rflags,
		  (user_flags_before & ~sfmask) | RFLAGS_FIXED);
	expect_eq("SYSCALL: CS = STAR[47:32]", last_syscall.cs, KERNEL_CS64);
	expect_eq("SYSCALL: SS = STAR[47:32] + 8", last_syscall.ss, KERNEL_DS);
	report(on_user_stack(last_syscall.rsp), "SYSCALL does not switch stacks: RSP is still the user's");
	expect_eq("SYSRET: RFLAGS restored from R11", user_flags_after, user_flags_before);
	expect_eq("SYSRET: CS = STAR[63:48] + 16, RPL 3", user_cs_after, USER_CS64 | 3);
	expect_eq("SYSRET: SS = STAR[63:48] + 8, RPL 3", user_ss_after, USER_DS | 3);

	expect_eq("SYSCALL(SYS_EXIT) leaves user mode with its argument", user_run(user_syscall_exit, 76, 0), 77);

	/* SDM Vol 2 SYSRET: #GP(0) if CPL is not 0. */
	user_run(user_sysret, 0, 0);
	ex_check("CPL3 SYSRET: #GP(0)", GP_VECTOR, 0, ex_site);
	wrmsr(MSR_EFER, rdmsr(MSR_EFER) & ~(u64)EFER_SCE);
}

/* ---- call gates (APM Vol 2 §4.11.3, SDM Vol 3 §5.8.3.1: 64-bit call gates in long mode) ---- */

#define CALL_GATE_SEL GDT_SPARE_SEL	/* a 16-byte system descriptor: slots 0x60 and 0x68 */

static volatile u64 gate_target_cs, gate_target_ss, gate_target_rsp;

/* CPL0 code reached through the gate: records CS, SS and RSP, returns with a 64-bit far return. */
extern char call_gate_target[];
asm(".text\n"
    "call_gate_target:\n"
    "	mov %cs, %rax\n"
    "	mov %rax, gate_target_cs(%rip)\n"
    "	mov %ss, %rax\n"
    "	mov %rax, gate_target_ss(%rip)\n"
    "	mov %rsp, gate_target_rsp(%rip)\n"
    "	lretq\n");

/* A 64-bit call gate: type 0xC, present, the given DPL, target KERNEL_CS64:call_gate_target. */
static void set_call_gate(int dpl)
{
	u64 off = (u64)call_gate_target;
	gdt[CALL_GATE_SEL / 8] = (off & 0xffff) | ((u64)KERNEL_CS64 << 16) | ((u64)(0xc | 0x80 | dpl << 5) << 40) | ((off >> 16 & 0xffff) << 48);
	gdt[CALL_GATE_SEL / 8 + 1] = off >> 32;
}

static const struct { u32 off; u16 sel; } __attribute__((packed)) gate_ptr = { 0, CALL_GATE_SEL | 3 };

static u64 user_call_gate(u64 arg)
{
	(void)arg;
	asm volatile("lcall *%0" : : "m"(gate_ptr) : "rax", "memory");
	return read_cs();
}

/* These fault before the target runs, so nothing clobbers RAX. */
USER_PROBE(user_call_gate_probe, "lcall *(%%rax)", : : "a"(&gate_ptr) : "memory")
USER_PROBE(user_jmp_gate_probe, "ljmp *(%%rax)", : : "a"(&gate_ptr) : "memory")

static void test_call_gates(void)
{
	set_call_gate(3);
	gate_target_cs = gate_target_ss = gate_target_rsp = ~0ull;
	u64 cs = user_run(user_call_gate, 0, 0);
	expect_eq("far CALL from CPL3 through a DPL3 call gate runs the target at CPL0", gate_target_cs, KERNEL_CS64);
	expect_eq("... with SS a null selector of the new level (APM §4.11.3)", gate_target_ss, 0);
	expect_eq("... on the TSS.RSP0 stack: old SS, RSP, CS, RIP pushed (4 x 8 bytes)", gate_target_rsp, tss.rsp[0] - 32);
	expect_eq("LRETQ returns to CPL3", cs, USER_CS64 | 3);
	/* A JMP through a call gate cannot change privilege (SDM Vol 2 JMP): #GP(target selector). */
	user_run(user_jmp_gate_probe, 0, 0);
	ex_check("far JMP from CPL3 through a call gate to CPL0 code: #GP(target)", GP_VECTOR, KERNEL_CS64, ex_site);
	/* The gate's DPL must admit the caller (SDM Vol 3 §5.8.4): #GP(gate selector). */
	set_call_gate(0);
	user_run(user_call_gate_probe, 0, 0);
	ex_check("far CALL from CPL3 through a DPL0 call gate: #GP(gate)", GP_VECTOR, CALL_GATE_SEL, ex_site);
	gdt[CALL_GATE_SEL / 8] = gdt[CALL_GATE_SEL / 8 + 1] = 0;
}

void test_main(void)
{
	test_call_gates();
	test_iretq_and_gates();
	test_gate_dpl();
	test_privileged_instructions();
	test_popf();
	test_segment_privilege();
	test_syscall();
}
