/*
 * svm_intercepts: the intercepts of ../shared/spec/svm.md §3.3 and §6 and the exit information
 * they produce (§4): every instruction intercept L2 can reach from 64-bit mode (exit code, RIP at
 * the instruction, EXITINFO = 0, NRIP), CR and DR accesses with the selective CR0 write (T-07,
 * T-08, T-09), NRIP (T-10), the IOPM (T-05 and string I/O), the MSRPM (T-11), RSM (T-06), the TSC
 * offset (T-13), exceptions by vector (T-32, T-33), SHUTDOWN (T-36), unsupported instructions
 * (T-37), CPUID after L2 changes CR4 (T-39), the optional PAUSE filter and TSC ratio (T-40), and
 * which exceptions an instruction checks before its intercept (§6.9).
 */
#include "svm.h"

#define CR4_TSD BIT(2)
#define CR4_OSFXSR BIT(9)
#define CR4_OSXSAVE BIT(18)
#define DR6_BS BIT(14)
#define TSC_OFFSET_VALUE 0xffff000000000000ull	/* -2^48 (T-13) */
#define ADDR_SIZE_BITS (IOIO_A16 | IOIO_A32 | IOIO_A64)

static struct vmcb *vmcb;

/* Where a guest instruction starts and ends, recorded by the guest itself just before it. */
volatile u64 g_site, g_next;
#define GSITE(insn, ...) \
	asm volatile("movq $1000f, g_site(%%rip)\n\tmovq $1001f, g_next(%%rip)\n1000: " insn "\n1001:" __VA_ARGS__)


static struct vmcb *guest(void (*fn)(u64), u64 arg)
{
	vmcb_init_guest(vmcb, fn, arg);
	return vmcb;
}

static bool has_rdtscp(void) { return cpuid(0x80000001, 0).d & BIT(27); }
static bool has_monitor(void) { return cpuid(1, 0).c & BIT(3); }
static bool has_xsave(void) { return cpuid(1, 0).c & BIT(26); }
static bool has_invpcid(void) { return cpuid(7, 0).b & BIT(10); }
static bool has_rdpru(void) { return cpuid(0x80000000, 0).a >= 0x80000008 && (cpuid(0x80000008, 0).b & BIT(4)); }

/* Counter 0 is a valid RDPMC index here unless L1's own RDPMC of it raises #GP. */
static bool rdpmc_works(void)
{
	TRY("rdpmc", : : "c"(0) : "rax", "rdx", "memory");
	return ex_vector() != GP_VECTOR;
}

/*
 * EXITINFO1 of an instruction intercept (§4.2, §3.13): 0, except with DecodeAssists, where INTn
 * reports its vector, INVLPG/INVLPGA the address (the guest uses 0x12345000 and INT 0x21), and
 * MOV CR/DR the operand register, which the compiler chose: those are not checked then (~0).
 */
#define INFO_UNCHECKED (~0ull)
static u64 decode_assist_info(u64 code)
{
	if (!svm_has(SVM_FEAT_DECODE_ASSISTS))
		return 0;
	if (code == SVM_EXIT_SWINT)
		return 0x21;
	if (code == SVM_EXIT_INVLPG || code == SVM_EXIT_INVLPGA)
		return 0x12345000;
	if (code < SVM_EXIT_EXCP_BASE || code == SVM_EXIT_CR0_SEL_WRITE)
		return INFO_UNCHECKED;
	return 0;
}

/* An instruction-intercept exit: code, RIP = the instruction, EXITINFO1/2, NRIP (§3.11, §4.2). */
static void check_exit(const char *id, struct vmcb *v, u64 code, u64 info1)
{
	char name[160];
	snprintf(name, sizeof(name), "%s: exit 0x%03lx", id, code);
	if (!expect_exit(name, v, code))
		return;
	snprintf(name, sizeof(name), "%s: vmcb12 RIP = the instruction", id);
	expect_eq(name, v->save.rip, g_site);
	if (info1 == INFO_UNCHECKED) {
		snprintf(name, sizeof(name), "%s: EXITINFO2 = 0 (§4.2)", id);
		expect_eq(name, v->control.exit_info_2, 0);
	} else {
		snprintf(name, sizeof(name), "%s: EXITINFO1 = 0x%lx, EXITINFO2 = 0 (§4.2)", id, info1);
		report(v->control.exit_info_1 == info1 && v->control.exit_info_2 == 0, "%s (got 0x%lx, 0x%lx)", name,
		       v->control.exit_info_1, v->control.exit_info_2);
	}
	snprintf(name, sizeof(name), "%s: NRIP = the next instruction (§3.11)", id);
	if (svm_has(SVM_FEAT_NRIPS))
		expect_eq(name, v->control.next_rip, g_next);
}

/* ---- instruction intercepts (§3.3 words 0, 3, 4) ------------------------------------------- */

static u8 dt_buf[16] __attribute__((aligned(16)));

enum { NEED_NONE, NEED_RDTSCP, NEED_MONITOR, NEED_XSAVE };
static const struct insn_case {
	const char *name;
	u64 exit;
	int need;
} insns[] = {
	{ "MOV from CR0", SVM_EXIT_READ_CR0, 0 },
	{ "SMSW", SVM_EXIT_READ_CR0, 0 },
	{ "MOV from CR4", SVM_EXIT_READ_CR0 + 4, 0 },
	{ "MOV from CR8", SVM_EXIT_READ_CR0 + 8, 0 },
	{ "MOV to CR0", SVM_EXIT_WRITE_CR0, 0 },
	{ "CLTS", SVM_EXIT_WRITE_CR0, 0 },
	{ "LMSW", SVM_EXIT_WRITE_CR0, 0 },
	{ "MOV to CR3", SVM_EXIT_WRITE_CR0 + 3, 0 },
	{ "MOV to CR4", SVM_EXIT_WRITE_CR0 + 4, 0 },
	{ "MOV to CR8", SVM_EXIT_WRITE_CR0 + 8, 0 },
	{ "SIDT", SVM_EXIT_IDTR_READ, 0 },
	{ "SGDT", SVM_EXIT_GDTR_READ, 0 },
	{ "SLDT", SVM_EXIT_LDTR_READ, 0 },
	{ "STR", SVM_EXIT_TR_READ, 0 },
	{ "LIDT", SVM_EXIT_IDTR_WRITE, 0 },
	{ "LGDT", SVM_EXIT_GDTR_WRITE, 0 },
	{ "LLDT", SVM_EXIT_LDTR_WRITE, 0 },
	{ "LTR (busy TSS: descriptor checks come after the intercept)", SVM_EXIT_TR_WRITE, 0 },
	{ "RDTSC", SVM_EXIT_RDTSC, 0 },
	{ "RDPMC", SVM_EXIT_RDPMC, 0 },
	{ "PUSHF", SVM_EXIT_PUSHF, 0 },
	{ "POPF", SVM_EXIT_POPF, 0 },
	{ "CPUID", SVM_EXIT_CPUID, 0 },
	{ "IRETQ", SVM_EXIT_IRET, 0 },
	{ "INT 0x21", SVM_EXIT_SWINT, 0 },
	{ "INVD", SVM_EXIT_INVD, 0 },
	{ "PAUSE", SVM_EXIT_PAUSE, 0 },
	{ "HLT", SVM_EXIT_HLT, 0 },
	{ "INVLPG", SVM_EXIT_INVLPG, 0 },
	{ "INVLPGA", SVM_EXIT_INVLPGA, 0 },
	{ "STGI", SVM_EXIT_STGI, 0 },
	{ "CLGI", SVM_EXIT_CLGI, 0 },
	{ "RDTSCP", SVM_EXIT_RDTSCP, NEED_RDTSCP },
	{ "ICEBP (F1)", SVM_EXIT_ICEBP, 0 },
	{ "WBINVD", SVM_EXIT_WBINVD, 0 },
	{ "MONITOR", SVM_EXIT_MONITOR, NEED_MONITOR },
	{ "MWAIT", SVM_EXIT_MWAIT, NEED_MONITOR },
	{ "XSETBV", SVM_EXIT_XSETBV, NEED_XSAVE },
};

static void guest_insn(u64 i)
{
	/* Control registers are read only where their read is not the intercept under test. */
	u64 scratch = 0;
	struct { u16 limit; u64 base; } __attribute__((packed)) dt;
	switch (i) {
	case 0: GSITE("mov %%cr0, %0", : "=r"(scratch) : : "memory"); break;
	case 1: GSITE("smsw %k0", : "=r"(scratch) : : "memory"); break;
	case 2: GSITE("mov %%cr4, %0", : "=r"(scratch) : : "memory"); break;
	case 3: GSITE("mov %%cr8, %0", : "=r"(scratch) : : "memory"); break;
	case 4: scratch = read_cr0(); GSITE("mov %0, %%cr0", : : "r"(scratch) : "memory"); break;
	case 5: GSITE("clts", ::: "memory"); break;
	case 6: scratch = read_cr0() & 0xf; GSITE("lmsw %w0", : : "r"(scratch) : "memory"); break;
	case 7: scratch = read_cr3(); GSITE("mov %0, %%cr3", : : "r"(scratch) : "memory"); break;
	case 8: scratch = read_cr4(); GSITE("mov %0, %%cr4", : : "r"(scratch) : "memory"); break;
	case 9: GSITE("mov %0, %%cr8", : : "r"(0ull) : "memory"); break;
	case 10: GSITE("sidt (%0)", : : "r"(dt_buf) : "memory"); break;
	case 11: GSITE("sgdt (%0)", : : "r"(dt_buf) : "memory"); break;
	case 12: GSITE("sldt %k0", : "=r"(scratch) : : "memory"); break;
	case 13: GSITE("str %k0", : "=r"(scratch) : : "memory"); break;
	case 14: sidt(&dt); GSITE("lidt (%0)", : : "r"(&dt) : "memory"); break;
	case 15: sgdt(&dt); GSITE("lgdt (%0)", : : "r"(&dt) : "memory"); break;
	case 16: GSITE("lldt %w0", : : "r"(0) : "memory"); break;
	case 17: GSITE("ltr %w0", : : "r"(TSS_SEL) : "memory"); break;
	case 18: GSITE("rdtsc", ::: "rax", "rdx", "memory"); break;
	case 19: GSITE("rdpmc", : : "c"(0) : "rax", "rdx", "memory"); break;
	case 20: GSITE("pushfq", ::: "memory"); asm volatile("popfq" ::: "memory", "cc"); break;
	case 21: asm volatile("pushfq" ::: "memory"); GSITE("popfq", ::: "memory", "cc"); break;
	case 22: GSITE("cpuid", : : "a"(0), "c"(0) : "rbx", "rdx", "memory"); break;
	case 23:
		/* A frame that returns right after the IRETQ, should it run. */
		asm volatile("mov %%rsp, %%rcx\n\t"
			     "push $0x10\n\tpush %%rcx\n\tpushfq\n\tpush $0x8\n\tpush $1001f\n\t"
			     "movq $1000f, g_site(%%rip)\n\tmovq $1001f, g_next(%%rip)\n"
			     "1000: iretq\n1001:" ::: "rcx", "memory");
		break;
	case 24: GSITE("int $0x21", ::: "memory"); break;
	case 25: GSITE("invd", ::: "memory"); break;
	case 26: GSITE("pause", ::: "memory"); break;
	case 27: GSITE("hlt", ::: "memory"); break;
	case 28: GSITE("invlpg (%0)", : : "r"(0x12345000ull) : "memory"); break;
	case 29: GSITE("invlpga %%rax, %%ecx", : : "a"(0x12345000ull), "c"(1) : "memory"); break;
	case 30: GSITE("stgi", ::: "memory"); break;
	case 31: GSITE("clgi", ::: "memory"); break;
	case 32: GSITE("rdtscp", ::: "rax", "rcx", "rdx", "memory"); break;
	case 33: GSITE(".byte 0xf1", ::: "memory"); break;
	case 34: GSITE("wbinvd", ::: "memory"); break;
	case 35: GSITE("monitor %%rax, %%ecx, %%edx", : : "a"(dt_buf), "c"(0), "d"(0) : "memory"); break;
	case 36: GSITE("mwait %%eax, %%ecx", : : "a"(0), "c"(0) : "memory"); break;
	case 37: GSITE("xsetbv", : : "a"(1), "d"(0), "c"(0) : "memory"); break;
	}
	(void)scratch;
}

static void test_instructions(void)
{
	for (size_t i = 0; i < ARRAY_SIZE(insns); i++) {
		const struct insn_case *c = &insns[i];
		char id[128];
		snprintf(id, sizeof(id), "§3.3 %s intercepted", c->name);
		if ((c->need == NEED_RDTSCP && !has_rdtscp()) || (c->need == NEED_MONITOR && !has_monitor()) ||
		    (c->need == NEED_XSAVE && !has_xsave())) {
			report_skip(id, "not advertised in CPUID (T-37 covers it)");
			continue;
		}
		if (c->exit == SVM_EXIT_RDPMC && !rdpmc_works()) {
			report_skip(id, "RDPMC of counter 0 faults in L1 (its #GP would come before the intercept, §6.9)");
			continue;
		}
		struct vmcb *v = guest(guest_insn, i);
		vmcb_set_intercept(v, c->exit);
		/* A wrong #UD or #GP then ends the guest instead of the image. */
		vmcb_intercept_exception(v, UD_VECTOR, true);
		vmcb_intercept_exception(v, GP_VECTOR, true);
		if (c->need == NEED_XSAVE)
			v->save.cr4 |= CR4_OSXSAVE;
		svm_run(v);
		if (c->exit == SVM_EXIT_INVD)
			qemu_deviation("QEMU 7.2 tests the WBINVD intercept for INVD");
		if (c->exit == SVM_EXIT_RDTSCP)
			qemu_deviation("QEMU 7.2 has no RDTSCP intercept");
		if (c->exit == SVM_EXIT_ICEBP)
			qemu_deviation("QEMU 7.2 raises #UD for ICEBP (F1)");
		if (c->exit == SVM_EXIT_XSETBV)
			qemu_deviation("QEMU 7.2 has no XSETBV intercept");
		check_exit(id, v, c->exit, decode_assist_info(c->exit));
	}
}

/* ---- T-06 RSM -------------------------------------------------------------------------------- */

static void guest_rsm(u64 arg) { (void)arg; GSITE("rsm", ::: "memory"); }

static void test_rsm(void)
{
	struct vmcb *v = guest(guest_rsm, 0);
	vmcb_set_intercept(v, SVM_EXIT_RSM);
	vmcb_intercept_exception(v, UD_VECTOR, true);
	svm_run(v);
	check_exit("T-06 RSM outside SMM with RSM and #UD intercepted", v, SVM_EXIT_RSM, 0);
	vmcb_clear_intercept(v, SVM_EXIT_RSM);
	svm_run(v);
	expect_exit("T-06 ... the same RSM without the RSM intercept: exit 0x046 (#UD)", v, SVM_EXIT_EXCP_BASE + UD_VECTOR);
	expect_eq("T-06 ... at the RSM", v->save.rip, g_site);
}

/* ---- T-07 selective CR0 write, T-08 CR3 read --------------------------------------------------- */

enum { CR0_MOV_CD, CR0_MOV_MP, CR0_LMSW_MP, CR0_CLTS, CR0_MOV_TS };
static volatile u64 cr0_seen;
static void guest_cr0(u64 how)
{
	u64 cr0 = read_cr0();
	switch (how) {
	case CR0_MOV_CD: GSITE("mov %0, %%cr0", : : "r"(cr0 | CR0_CD) : "memory"); break;
	case CR0_MOV_MP: GSITE("mov %0, %%cr0", : : "r"(cr0 | CR0_MP) : "memory"); break;
	case CR0_LMSW_MP: GSITE("lmsw %w0", : : "r"((cr0 & 0xf) | CR0_MP) : "memory"); break;
	case CR0_CLTS: GSITE("clts", ::: "memory"); break;
	case CR0_MOV_TS: GSITE("mov %0, %%cr0", : : "r"(cr0 ^ CR0_TS) : "memory"); break;
	}
	cr0_seen = read_cr0();
}

static struct vmcb *cr0_guest(u64 how, bool sel, bool write)
{
	struct vmcb *v = guest(guest_cr0, how);
	v->save.cr0 &= ~(u64)(CR0_CD | CR0_MP);
	if (how == CR0_CLTS)
		v->save.cr0 |= CR0_TS;
	if (sel)
		vmcb_set_intercept(v, SVM_EXIT_CR0_SEL_WRITE);
	if (write)
		vmcb_set_intercept(v, SVM_EXIT_WRITE_CR0);
	return v;
}

static volatile u64 cr3_value;
static void guest_cr3_read(u64 arg)
{
	(void)arg;
	u64 v;
	GSITE("mov %%cr3, %0", : "=r"(v) : : "memory");
	cr3_value = v;
}

static void test_cr0_cr3(void)
{
	struct vmcb *v = cr0_guest(CR0_MOV_CD, true, false);
	u64 cr0 = v->save.cr0;
	svm_run(v);
	check_exit("T-07(a) selective CR0 intercept, MOV sets CR0.CD", v, SVM_EXIT_CR0_SEL_WRITE,
		   decode_assist_info(SVM_EXIT_CR0_SEL_WRITE));
	expect_eq("T-07(a) ... vmcb12 CR0 unchanged (CD = 0: the write is not performed)", v->save.cr0, cr0);
	v = cr0_guest(CR0_MOV_CD, true, true);
	svm_run(v);
	check_exit("T-07(b) CR0 write and selective intercepts, MOV sets CD: the plain write intercept wins", v,
		   SVM_EXIT_WRITE_CR0, decode_assist_info(SVM_EXIT_WRITE_CR0));
	v = cr0_guest(CR0_MOV_MP, true, false);
	svm_run(v);
	expect_exit("T-07(c) selective intercept, MOV changes only CR0.MP: no exit until VMMCALL", v, SVM_EXIT_VMMCALL);
	expect_eq("T-07(c) ... vmcb12 CR0.MP = 1", v->save.cr0 & CR0_MP, CR0_MP);
	v = cr0_guest(CR0_LMSW_MP, true, false);
	cr0 = v->save.cr0;
	svm_run(v);
	qemu_deviation("QEMU 7.2 does not apply the selective CR0 intercept to LMSW");
	check_exit("T-07(d) selective intercept, LMSW that only sets MP", v, SVM_EXIT_CR0_SEL_WRITE,
		   decode_assist_info(SVM_EXIT_CR0_SEL_WRITE));
	qemu_deviation("QEMU 7.2 does not apply the selective CR0 intercept to LMSW");
	expect_eq("T-07(d) ... vmcb12 CR0 unchanged", v->save.cr0, cr0);
	v = cr0_guest(CR0_MOV_TS, true, false);
	svm_run(v);
	expect_exit("§6.9 selective intercept, MOV changes only CR0.TS: no exit", v, SVM_EXIT_VMMCALL);
	v = cr0_guest(CR0_CLTS, true, false);
	svm_run(v);
	expect_exit("§6.9 selective intercept, CLTS: never triggers it", v, SVM_EXIT_VMMCALL);
	expect_eq("§6.9 ... CLTS cleared TS in L2", cr0_seen & CR0_TS, 0);
	v = cr0_guest(CR0_CLTS, false, true);
	svm_run(v);
	check_exit("§6.9 CR0 write intercept catches CLTS", v, SVM_EXIT_WRITE_CR0, decode_assist_info(SVM_EXIT_WRITE_CR0));

	/* T-08: CR3 reads. vmcb12 CR3 is a copy of L1's PML4 so "the value" is L2's own. */
	u64 *pml4 = alloc_page();
	memcpy(pml4, (void *)(read_cr3() & ~0xfffull), PAGE_SIZE);
	v = guest(guest_cr3_read, 0);
	v->save.cr3 = (u64)pml4;
	vmcb_set_intercept(v, SVM_EXIT_READ_CR3);
	svm_run(v);
	check_exit("T-08 CR3 read intercept: MOV from CR3", v, SVM_EXIT_READ_CR3, decode_assist_info(SVM_EXIT_READ_CR3));
	v = guest(guest_cr3_read, 0);
	v->save.cr3 = (u64)pml4;
	svm_run(v);
	expect_exit("T-08 no CR3 read intercept: no exit", v, SVM_EXIT_VMMCALL);
	expect_eq("T-08 ... L2 reads vmcb12's CR3", cr3_value, (u64)pml4);
}

/* ---- T-09 DR intercepts ------------------------------------------------------------------- */

static void guest_dr(u64 arg)
{
	(void)arg;
	/* 16 MOV DR of 3 bytes each; L1 steps over each one. */
	asm volatile("mov %%dr0, %%rax\n\tmov %%dr1, %%rax\n\tmov %%dr2, %%rax\n\tmov %%dr3, %%rax\n\t"
		     "mov %%dr4, %%rax\n\tmov %%dr5, %%rax\n\tmov %%dr6, %%rax\n\tmov %%dr7, %%rax\n\t"
		     "mov %%rax, %%dr0\n\tmov %%rax, %%dr1\n\tmov %%rax, %%dr2\n\tmov %%rax, %%dr3\n\t"
		     "mov %%rax, %%dr4\n\tmov %%rax, %%dr5\n\tmov %%rax, %%dr6\n\tmov %%rax, %%dr7"
		     ::: "rax", "memory");
}

static void test_dr(void)
{
	struct vmcb *v = guest(guest_dr, 0);
	v->control.intercept_dr = 0x00ff00ff;
	u64 seen[20];
	unsigned n = 0;
	while (n < 20) {
		svm_run(v);
		u64 code = v->control.exit_code;
		if (code < SVM_EXIT_READ_DR0 || code > 0x3f)
			break;
		seen[n++] = code;
		v->save.rip += 3;
	}
	expect_exit("T-09 DR intercepts: the guest ends with VMMCALL", v, SVM_EXIT_VMMCALL);
	expect_eq("T-09 ... 16 DR exits", n, 16);
	bool order = n == 16;
	for (unsigned i = 0; i < n && i < 16; i++)
		if (seen[i] != (i < 8 ? SVM_EXIT_READ_DR0 + i : SVM_EXIT_WRITE_DR0 + i - 8))
			order = false;
	report(order, "T-09 ... codes 0x020-0x027 then 0x030-0x037 in order (DR4/DR5 report 4/5, §6.9)");
}

/* ---- T-10 NRIP --------------------------------------------------------------------------------- */

static void test_nrip(void)
{
	struct vmcb *v = guest(guest_insn, 18);		/* RDTSC */
	vmcb_set_intercept(v, SVM_EXIT_RDTSC);
	svm_run(v);
	expect_exit("T-10 RDTSC intercept: exit 0x06E", v, SVM_EXIT_RDTSC);
	expect_eq("T-10 ... RIP = the RDTSC", v->save.rip, g_site);
	if (svm_has(SVM_FEAT_NRIPS))
		expect_eq("T-10 ... NRIP = the instruction after RDTSC", v->control.next_rip, g_next);
	else
		report_skip("T-10 ... NRIP = the instruction after RDTSC", "NRIPS not advertised");
}

/* ---- T-05 IOPM ---------------------------------------------------------------------------------- */

#define IO_STEPS 12
static volatile int io_step;
static volatile unsigned io_exits[IO_STEPS];
static volatile u64 io_info1[IO_STEPS], io_info2[IO_STEPS], io_next[IO_STEPS];

#define IO(step, insn, ...) do { io_step = step; GSITE(insn, __VA_ARGS__); io_next[step] = g_next; } while (0)

static void guest_ioio(u64 arg)
{
	(void)arg;
	u32 v = 0;
	IO(0, "inb %%dx, %%al", : "+a"(v) : "d"(0x5000) : "memory");
	IO(1, "outb %%al, %%dx", : : "a"(0), "d"(0x5000) : "memory");
	svm_iopm[0] = 0xff;
	IO(2, "inb %%dx, %%al", : "+a"(v) : "d"(0) : "memory");
	IO(3, "outw %%ax, %%dx", : : "a"(0), "d"(0) : "memory");
	IO(4, "inl %%dx, %%eax", : "+a"(v) : "d"(0) : "memory");
	iopm_set(0x5000, true);
	IO(5, "inb %%dx, %%al", : "+a"(v) : "d"(0x5000) : "memory");
	iopm_set(0x9000, true);
	IO(6, "inw %%dx, %%ax", : "+a"(v) : "d"(0x9000) : "memory");
	iopm_set(0x5000, true);
	IO(7, "inl %%dx, %%eax", : "+a"(v) : "d"(0x4fff) : "memory");
	IO(8, "inl %%dx, %%eax", : "+a"(v) : "d"(0x7fff) : "memory");
	iopm_set(0x8000, true);
	IO(9, "inl %%dx, %%eax", : "+a"(v) : "d"(0x7fff) : "memory");
	svm_iopm[0] = 0;
	IO(10, "inl %%dx, %%eax", : "+a"(v) : "d"(0xffff) : "memory");
	svm_iopm[0] = 0xff;
	svm_iopm[0x2000] = 0;
	IO(11, "inl %%dx, %%eax", : "+a"(v) : "d"(0xffff) : "memory");
	svm_iopm[0] = 0;
}

static void test_ioio(void)
{
	static const struct { u16 port; u64 type_size; unsigned exits; const char *what; } want[IO_STEPS] = {
		{ 0x5000, IOIO_TYPE_IN | IOIO_SZ8, 0, "IN 0x5000 with its bit clear" },
		{ 0x5000, IOIO_SZ8, 0, "OUT 0x5000 with its bit clear" },
		{ 0, IOIO_TYPE_IN | IOIO_SZ8, 1, "IOPM byte 0 = 0xFF: INB 0" },
		{ 0, IOIO_SZ16, 1, "OUTW 0 (bit 1 still set)" },
		{ 0, IOIO_TYPE_IN | IOIO_SZ32, 1, "INL 0 (bits 2-3 still set)" },
		{ 0x5000, IOIO_TYPE_IN | IOIO_SZ8, 1, "bit 0x5000 set: INB 0x5000" },
		{ 0x9000, IOIO_TYPE_IN | IOIO_SZ16, 1, "bit 0x9000 set: INW 0x9000" },
		{ 0x4fff, IOIO_TYPE_IN | IOIO_SZ32, 1, "only bit 0x5000 set: INL 0x4FFF covers it" },
		{ 0x7fff, IOIO_TYPE_IN | IOIO_SZ32, 0, "INL 0x7FFF with bits 0x7FFF-0x8002 clear" },
		{ 0x7fff, IOIO_TYPE_IN | IOIO_SZ32, 1, "bit 0x8000 set: INL 0x7FFF (across the IOPM page boundary)" },
		{ 0xffff, IOIO_TYPE_IN | IOIO_SZ32, 1, "byte 0 = 0, byte 0x2000 = 0xFF: INL 0xFFFF checks bits 0x10000-0x10002" },
		{ 0xffff, IOIO_TYPE_IN | IOIO_SZ32, 0, "byte 0 = 0xFF, byte 0x2000 = 0: INL 0xFFFF does not wrap to port 0" },
	};
	memset(svm_iopm, 0, 3 * PAGE_SIZE);
	svm_iopm[0x2000] = 0xff;
	struct vmcb *v = guest(guest_ioio, 0);
	vmcb_set_intercept(v, SVM_EXIT_IOIO);
	for (int i = 0; i < IO_STEPS; i++)
		io_exits[i] = 0;
	for (int n = 0; n < 40; n++) {
		svm_run(v);
		if (v->control.exit_code != SVM_EXIT_IOIO)
			break;
		int s = io_step;
		io_exits[s]++;
		io_info1[s] = v->control.exit_info_1;
		io_info2[s] = v->control.exit_info_2;
		/* Clear the bits of the reported ports and let the same instruction run again. */
		u32 port = v->control.exit_info_1 >> 16, size = (v->control.exit_info_1 >> 4) & 7;
		for (u32 p = port; p < port + size; p++)
			iopm_set(p, false);
	}
	expect_exit("T-05 IOPM: the guest ends with VMMCALL", v, SVM_EXIT_VMMCALL);
	for (int i = 0; i < IO_STEPS; i++) {
		char name[160];
		snprintf(name, sizeof(name), "T-05 %s: %s", want[i].what, want[i].exits ? "one exit 0x07B" : "no exit");
		expect_eq(name, io_exits[i], want[i].exits);
		if (!want[i].exits || io_exits[i] != 1)
			continue;
		/* §4.3: port in 31:16, TYPE and size; the address size on its own; §4.2: EXITINFO2. */
		snprintf(name, sizeof(name), "T-05 ... EXITINFO1 port 0x%x, TYPE and size (§4.3)", want[i].port);
		expect_eq(name, io_info1[i] & ~(u64)ADDR_SIZE_BITS, (u64)want[i].port << 16 | want[i].type_size);
		qemu_deviation("QEMU 7.2 leaves the address-size bits 9:7 of the IOIO EXITINFO1 clear");
		expect_eq("T-05 ... EXITINFO1 address size A64 (bit 9, §4.3)", io_info1[i] & ADDR_SIZE_BITS, IOIO_A64);
		expect_eq("T-05 ... EXITINFO2 = RIP of the next instruction", io_info2[i], io_next[i]);
	}
	memset(svm_iopm, 0, 3 * PAGE_SIZE);
}

/* String I/O: STR/REP/address-size bits, and the exit comes before the first iteration (§6.10). */
static u8 io_buf[16];
static void guest_string_io(u64 which)
{
	switch (which) {
	case 0:
		GSITE("rep insb", : : "D"(io_buf), "c"(4), "d"(0x5000) : "memory");
		break;
	case 1:
		GSITE("addr32 rep outsw", : : "S"(io_buf), "c"(3), "d"(0x5001) : "memory");
		break;
	case 2:
		GSITE("outl %%eax, $0x80", : : "a"(0) : "memory");
		break;
	}
}

static void test_string_io(void)
{
	static const struct { const char *name; u16 port; u64 info; } cases[] = {
		{ "§4.3 REP INSB from port 0x5000", 0x5000, IOIO_TYPE_IN | IOIO_STR | IOIO_REP | IOIO_SZ8 | IOIO_A64 },
		{ "§4.3 ADDR32 REP OUTSW to port 0x5001", 0x5001, IOIO_STR | IOIO_REP | IOIO_SZ16 | IOIO_A32 },
		{ "§4.3 OUT imm8 (port 0x80), 32-bit", 0x80, IOIO_SZ32 | IOIO_A64 },
	};
	for (u64 i = 0; i < ARRAY_SIZE(cases); i++) {
		memset(io_buf, 0x5a, sizeof(io_buf));
		memset(svm_iopm, 0, 3 * PAGE_SIZE);
		iopm_set(cases[i].port, true);
		struct vmcb *v = guest(guest_string_io, i);
		vmcb_set_intercept(v, SVM_EXIT_IOIO);
		svm_run(v);
		char name[128];
		snprintf(name, sizeof(name), "%s: exit 0x07B", cases[i].name);
		if (!expect_exit(name, v, SVM_EXIT_IOIO))
			continue;
		snprintf(name, sizeof(name), "%s: EXITINFO1 port, TYPE, STR, REP, size", cases[i].name);
		expect_eq(name, v->control.exit_info_1 & ~(u64)ADDR_SIZE_BITS,
			  ((u64)cases[i].port << 16 | cases[i].info) & ~(u64)ADDR_SIZE_BITS);
		snprintf(name, sizeof(name), "%s: EXITINFO1 address size", cases[i].name);
		qemu_deviation("QEMU 7.2 leaves the address-size bits 9:7 of the IOIO EXITINFO1 clear");
		expect_eq(name, v->control.exit_info_1 & ADDR_SIZE_BITS, cases[i].info & ADDR_SIZE_BITS);
		snprintf(name, sizeof(name), "%s: EXITINFO2 = next RIP, RIP = the instruction", cases[i].name);
		report(v->control.exit_info_2 == g_next && v->save.rip == g_site, "%s", name);
		if (i < 2) {
			snprintf(name, sizeof(name), "%s: no iteration done (RCX, RDI/RSI and memory unchanged, §6.10)",
				 cases[i].name);
			report(svm_gregs.rcx == (i ? 3 : 4) && (i ? svm_gregs.rsi : svm_gregs.rdi) == (u64)io_buf &&
			       io_buf[0] == 0x5a, "%s", name);
		}
	}
	memset(svm_iopm, 0, 3 * PAGE_SIZE);
}

/* ---- T-11 MSRPM -------------------------------------------------------------------------------- */

/* The MSRs of T-11: the three ranges and one MSR either side of each (KUT's walk). */
static const struct { u32 first, last; } msr_ranges[] = {
	{ 0x00000000, 0x00002000 }, { 0xbfffffff, 0xbfffffff }, { 0xc0000000, 0xc0002000 },
	{ 0xc000ffff, 0xc000ffff }, { 0xc0010000, 0xc0012000 },
};
#define NMSR (0x2001 + 1 + 0x2001 + 1 + 0x2001)

static u32 msr_at(u32 k)
{
	for (size_t r = 0; r < ARRAY_SIZE(msr_ranges); r++) {
		u32 n = msr_ranges[r].last - msr_ranges[r].first + 1;
		if (k < n)
			return msr_ranges[r].first + k;
		k -= n;
	}
	return 0;
}
static int msr_range_of(u32 k)
{
	for (size_t r = 0; r < ARRAY_SIZE(msr_ranges); r++) {
		u32 n = msr_ranges[r].last - msr_ranges[r].first + 1;
		if (k < n)
			return (int)r;
		k -= n;
	}
	return 0;
}

static u64 *l1_msr_val;
static int8_t *l1_msr_vec;
static volatile u32 msr_k;		/* index of the MSR the guest is at */
static volatile int msr_step;		/* 0 intercepted read, 1 intercepted write, 2 free read */
static volatile u64 msr_arb;
static volatile int msr_exited;
/* failures[round][range][kind]: 0 read exit info, 1 write exit info, 2 missing read exit,
   3 missing write exit, 4 unexpected exit, 5 value or fault differs from L1 */
static volatile u32 msr_fail[2][5][6];
static volatile u32 msr_first_bad[2][5][6];
static int msr_round;

static bool msr_skip_compare(u32 msr)
{
	/* Counters that move between L1's read and L2's: TSC, MPERF, APERF. */
	return msr == MSR_TSC || msr == 0xe7 || msr == 0xe8;
}

static void msr_failed(u32 k, int kind)
{
	int r = msr_range_of(k);
	if (!msr_fail[msr_round][r][kind]++)
		msr_first_bad[msr_round][r][kind] = msr_at(k);
}

static void guest_msr(u64 arg)
{
	(void)arg;
	u64 arb = 0xef8056791234abcdull;
	for (u32 k = 0; k < NMSR; k++) {
		u32 m = msr_at(k);
		u32 lo, hi;
		msr_k = k;
		msr_step = 0;
		msr_exited = 0;
		asm volatile(ASM_TRY("1f", "2f") "2: rdmsr\n1:" : "=a"(lo), "=d"(hi) : "c"(m) : "memory");
		ex_vector();
		/* A missing exit means the map and the guest are out of step: stop this round rather
		   than write arbitrary values to MSRs nobody intercepts. */
		if (!msr_exited) {
			msr_failed(k, 2);
			break;
		}
		arb += arb << 1;
		msr_arb = arb;
		msr_step = 1;
		msr_exited = 0;
		asm volatile(ASM_TRY("1f", "2f") "2: wrmsr\n1:" : : "c"(m), "a"((u32)arb), "d"((u32)(arb >> 32)) : "memory");
		ex_vector();
		if (!msr_exited) {
			msr_failed(k, 3);
			break;
		}
		if (msrpm_bit(m) < 0)
			continue;
		msr_step = 2;
		lo = hi = 0;
		asm volatile(ASM_TRY("1f", "2f") "2: rdmsr\n1:" : "+a"(lo), "+d"(hi) : "c"(m) : "memory");
		int vec = ex_vector();
		if (!msr_skip_compare(m) && (vec != l1_msr_vec[k] || (vec < 0 && (lo | (u64)hi << 32) != l1_msr_val[k])))
			msr_failed(k, 5);
	}
}

static void msrpm_bits(u32 m, bool rd, bool wr)
{
	if (msrpm_bit(m) >= 0)
		msrpm_set(m, rd, wr);
}

static void run_msr_round(int round)
{
	bool bg = round == 1;
	msr_round = round;
	memset(svm_msrpm, bg ? 0xff : 0, 2 * PAGE_SIZE);
	msrpm_bits(msr_at(0), true, bg);
	struct vmcb *v = guest(guest_msr, 0);
	vmcb_set_intercept(v, SVM_EXIT_MSR);
	u32 prev = ~0u;
	for (;;) {
		svm_run(v);
		if (v->control.exit_code != SVM_EXIT_MSR)
			break;
		u32 k = msr_k, m = msr_at(k);
		u64 info = v->control.exit_info_1;
		msr_exited = 1;
		switch (msr_step) {
		case 0:
			if (info != 0 || (u32)svm_gregs.rcx != m)
				msr_failed(k, 0);
			msrpm_bits(m, true, true);
			break;
		case 1: {
			u64 val = (svm_gregs.rdx & 0xffffffff) << 32 | (v->save.rax & 0xffffffff);
			if (info != 1 || (u32)svm_gregs.rcx != m || val != msr_arb)
				msr_failed(k, 1);
			/* m is done with its intercepts: both bits clear for the free read; the previous
			   MSR goes back to the background, the next one gets its read bit. */
			if (prev != ~0u)
				msrpm_bits(msr_at(prev), bg, bg);
			msrpm_bits(m, false, false);
			if (k + 1 < NMSR)
				msrpm_bits(msr_at(k + 1), true, bg);
			prev = k;
			break;
		}
		default:
			msr_failed(k, 4);
			break;
		}
		v->save.rip += 2;
	}
	expect_exit(round ? "T-11 round 2 (MSRPM all 0xFF): the guest walks every MSR and ends with VMMCALL"
			  : "T-11 round 1 (MSRPM zero): the guest walks every MSR and ends with VMMCALL", v, SVM_EXIT_VMMCALL);
	memset(svm_msrpm, 0, 2 * PAGE_SIZE);
}

static void test_msrpm(void)
{
	l1_msr_val = alloc_pages_aligned(6);		/* NMSR * 8 bytes */
	l1_msr_vec = alloc_pages_aligned(3);
	for (u32 k = 0; k < NMSR; k++) {
		u64 val = 0;
		l1_msr_vec[k] = (int8_t)rdmsr_safe(msr_at(k), &val);
		l1_msr_val[k] = val;
	}
	run_msr_round(0);
	run_msr_round(1);
	static const char *const range_names[] = { "0x0-0x1FFF (+0x2000)", "0xBFFFFFFF", "0xC0000000-0xC0001FFF (+0xC0002000)",
						   "0xC000FFFF", "0xC0010000-0xC0011FFF (+0xC0012000)" };
	static const char *const kind_names[] = {
		"RDMSR with its read bit set exits with EXITINFO1 = 0, RCX = MSR",
		"WRMSR with its write bit set exits with EXITINFO1 = 1, RCX and RDX:RAX as L2 set them",
		"RDMSR exits (no missing exit)",
		"WRMSR exits (no missing exit)",
		"with both bits clear no exit",
		"with both bits clear L2 reads what L1 reads (or the same fault)",
	};
	for (int round = 0; round < 2; round++)
		for (int r = 0; r < 5; r++)
			for (int kind = 0; kind < 6; kind++) {
				if ((r == 1 || r == 3) && kind >= 4)
					continue;	/* outside the map: nothing but exits */
				report(msr_fail[round][r][kind] == 0, "T-11 round %d (MSRPM %s), MSRs %s: %s (%u failures, first 0x%x)",
				       round + 1, round ? "all 0xFF" : "zero", range_names[r], kind_names[kind],
				       msr_fail[round][r][kind], msr_first_bad[round][r][kind]);
			}
}

/* ---- T-13 TSC offset and TSC_ADJUST ------------------------------------------------------------ */

static volatile u64 g_tsc, g_tsc_msr, g_adjust1, g_adjust2;
static void guest_tsc(u64 adjust)
{
	g_tsc = rdtsc();
	g_tsc_msr = rdmsr(MSR_TSC);
	if (!adjust)
		return;
	g_adjust1 = rdmsr(MSR_TSC_ADJUST);
	/* Write the TSC in L1 terms, 2^32 lower than L1's current value. */
	u64 l1 = rdtsc() - TSC_OFFSET_VALUE;
	wrmsr(MSR_TSC, l1 - (1ull << 32));
	g_adjust2 = rdmsr(MSR_TSC_ADJUST);
}

static void test_tsc(void)
{
	struct vmcb *v = guest(guest_tsc, 0);
	v->control.tsc_offset = TSC_OFFSET_VALUE;
	u64 t0 = rdtsc();
	svm_run(v);
	u64 t1 = rdtsc();
	expect_exit("T-13 TSC_OFFSET = -2^48: guest runs", v, SVM_EXIT_VMMCALL);
	u64 g = g_tsc - TSC_OFFSET_VALUE, gm = g_tsc_msr - TSC_OFFSET_VALUE;
	report(g >= t0 && g <= t1, "T-13 ... L2's RDTSC = L1's TSC + TSC_OFFSET (%lx in [%lx, %lx])", g, t0, t1);
	qemu_deviation("QEMU 7.2 TCG reads IA32_TSC as 0");
	report(gm >= t0 && gm <= t1, "§6.11 ... L2's RDMSR(TSC) = L1's TSC + TSC_OFFSET (%lx in [%lx, %lx])", gm, t0, t1);

	if (!(cpuid(7, 0).b & BIT(1))) {
		report_skip("T-13 TSC_ADJUST seen by L2 and adjusted by L2's TSC write", "IA32_TSC_ADJUST not in CPUID");
		return;
	}
	const u64 adj = -(1ull << 32);
	wrmsr(MSR_TSC_ADJUST, adj);
	v = guest(guest_tsc, 1);
	v->control.tsc_offset = TSC_OFFSET_VALUE;
	svm_run(v);
	expect_exit("T-13 with TSC_ADJUST = -2^32: guest runs", v, SVM_EXIT_VMMCALL);
	expect_eq("T-13 ... L2 reads L1's TSC_ADJUST", g_adjust1, adj);
	s64 a2 = (s64)g_adjust2, a3 = (s64)rdmsr(MSR_TSC_ADJUST);
	report(a2 <= -(1ll << 33) && a2 > -(1ll << 33) - (1ll << 31),
	       "T-13 ... L2's write of IA32_TSC lowered TSC_ADJUST by about another 2^32 (%ld)", a2);
	report(a3 == a2, "T-13 ... L1 sees the same TSC_ADJUST after the exit (%ld)", a3);
	wrmsr(MSR_TSC_ADJUST, 0);
}

/* ---- T-32, T-33 exceptions ------------------------------------------------------------------- */

static void guest_fnop(u64 arg) { (void)arg; TRY("fnop", ::: "memory"); }

static void test_no_nm(void)
{
	write_cr0(read_cr0() & ~(u64)CR0_TS);
	struct vmcb *v = guest(guest_fnop, 0);
	v->save.cr0 &= ~(u64)(CR0_TS | CR0_EM);
	vmcb_intercept_exception(v, NM_VECTOR, true);
	svm_run(v);
	expect_exit("T-32 L1 CR0.TS = 0, vmcb12 CR0.TS = EM = 0: FNOP in L2, no #NM", v, SVM_EXIT_VMMCALL);
	write_cr0(read_cr0() | CR0_TS);
	v = guest(guest_fnop, 0);
	v->save.cr0 &= ~(u64)(CR0_TS | CR0_EM);
	vmcb_intercept_exception(v, NM_VECTOR, true);
	svm_run(v);
	write_cr0(read_cr0() & ~(u64)CR0_TS);
	expect_exit("T-32 L1 CR0.TS = 1, vmcb12 CR0.TS = 0: still no #NM (L2's CR0 governs)", v, SVM_EXIT_VMMCALL);
	v = guest(guest_fnop, 0);
	v->save.cr0 |= CR0_TS;
	vmcb_intercept_exception(v, NM_VECTOR, true);
	svm_run(v);
	expect_exit("T-32 L1 CR0.TS = 0, vmcb12 CR0.TS = 1: #NM in L2 (exit 0x047)", v, SVM_EXIT_EXCP_BASE + NM_VECTOR);
}

extern char into_site[], into_after[];
void into_compat(void);

static volatile u64 db_site, db_hits;
static void db_step_handler(struct ex_frame *f)
{
	ex_record_frame(f);
	db_hits++;
	f->rflags &= ~RFLAGS_TF;
}

static u64 user_misaligned(u64 addr)
{
	u64 v;
	TRY("mov (%1), %0", : "=r"(v) : "r"(addr) : "memory");
	return (u64)ex_vector();
}

enum { EXC_GP, EXC_UD, EXC_DE, EXC_DB, EXC_BP, EXC_AC, EXC_OF, EXC_NM_TS, EXC_NM_EM, EXC_COUNT };
static volatile s64 exc_vector_seen;
static volatile u64 exc_rip_seen, exc_err_seen;

static void guest_exception(u64 which)
{
	u64 v = 0;
	switch (which) {
	case EXC_GP: TRY("mov (%1), %0", : "=r"(v) : "r"(0x8000000000000000ull) : "memory"); break;
	case EXC_UD: TRY("ud2", ::: "memory"); break;
	case EXC_DE: TRY("divl %%ecx", : "+a"(v) : "c"(0), "d"(0) : "memory"); break;
	case EXC_DB:
		db_hits = 0;
		set_handler(DB_VECTOR, db_step_handler);
		asm volatile("movq $1001f, ex_site(%%rip)\n\t"
			     "pushfq\n\torq $0x100, (%%rsp)\n\tpopfq\n\tnop\n1001:" ::: "memory", "cc");
		set_handler(DB_VECTOR, NULL);
		break;
	case EXC_BP: TRY_TRAP("int3", ::: "memory"); break;
	case EXC_AC:
		/* CR0.AM is set in vmcb12; CPL3 with RFLAGS.AC makes the misaligned load fault. */
		user_run(user_misaligned, (u64)&dt_buf[1], RFLAGS_AC);
		break;
	case EXC_OF:
		last_ex.vector = -1;
		ex_site = (u64)into_after;
		ex_recover = (u64)into_after;
		into_compat();
		break;
	case EXC_NM_TS:
		write_cr0(read_cr0() | CR0_TS);
		TRY("fnop", ::: "memory");
		asm volatile("clts");
		break;
	case EXC_NM_EM: TRY("fnop", ::: "memory"); break;
	}
	exc_vector_seen = last_ex.vector;
	exc_rip_seen = last_ex.rip;
	exc_err_seen = last_ex.error_code;
	(void)v;
}

static void test_exceptions(void)
{
	static const struct { const char *name; int vector; bool trap; } cases[EXC_COUNT] = {
		[EXC_GP] = { "#GP (non-canonical load)", GP_VECTOR, false },
		[EXC_UD] = { "#UD (UD2)", UD_VECTOR, false },
		[EXC_DE] = { "#DE (DIV by 0)", DE_VECTOR, false },
		[EXC_DB] = { "#DB (single-step)", DB_VECTOR, true },
		[EXC_BP] = { "#BP (INT3)", BP_VECTOR, true },
		[EXC_AC] = { "#AC (CPL3 misaligned load, CR0.AM, RFLAGS.AC)", AC_VECTOR, false },
		[EXC_OF] = { "#OF (INTO in compatibility mode)", OF_VECTOR, true },
		[EXC_NM_TS] = { "#NM (CR0.TS)", NM_VECTOR, false },
		[EXC_NM_EM] = { "#NM (CR0.EM)", NM_VECTOR, false },
	};
	for (int i = 0; i < EXC_COUNT; i++) {
		for (int icpt = 0; icpt < 2; icpt++) {
			struct vmcb *v = guest(guest_exception, (u64)i);
			if (i == EXC_AC)
				v->save.cr0 |= CR0_AM;
			if (i == EXC_NM_EM)
				v->save.cr0 |= CR0_EM;
			vmcb_intercept_exception(v, cases[i].vector, icpt);
			exc_vector_seen = -2;
			svm_run(v);
			char name[160];
			if (!icpt) {
				snprintf(name, sizeof(name), "T-33 %s not intercepted: L2's handler runs, then VMMCALL", cases[i].name);
				if (i == EXC_AC)
					qemu_deviation("QEMU TCG does not implement alignment checking (#AC)");
				report(v->control.exit_code == SVM_EXIT_VMMCALL && exc_vector_seen == cases[i].vector,
				       "%s (exit 0x%lx, L2 saw vector %ld)", name, v->control.exit_code, exc_vector_seen);
				continue;
			}
			snprintf(name, sizeof(name), "T-33 %s intercepted: exit 0x%03x", cases[i].name,
				 SVM_EXIT_EXCP_BASE + cases[i].vector);
			if (i == EXC_AC)
				qemu_deviation("QEMU TCG does not implement alignment checking (#AC)");
			if (i == EXC_BP || i == EXC_OF)
				qemu_deviation("QEMU 7.2 checks the INTn intercept, not the #BP/#OF one, for INT3/INTO");
			if (!expect_exit(name, v, SVM_EXIT_EXCP_BASE + cases[i].vector))
				continue;
			/* §5.6 step 2 / §6.7: the faulting instruction; the next one for a trap-like #DB;
			   the INT3/INTO itself for #BP/#OF. */
			u64 rip = ex_site;
			if (i == EXC_BP)
				rip = ex_site - 1;
			if (i == EXC_OF)
				rip = (u64)into_site;
			snprintf(name, sizeof(name), "T-33 ... %s: vmcb12 RIP (§6.7)", cases[i].name);
			expect_eq(name, v->save.rip, rip);
			if (i == EXC_GP || i == EXC_AC) {
				snprintf(name, sizeof(name), "T-33 ... %s: EXITINFO1 = error code 0", cases[i].name);
				expect_eq(name, v->control.exit_info_1, 0);
			}
			if (i == EXC_DB) {
				expect_eq("T-33 ... #DB intercepted: vmcb12 DR6.BS = 1 (§4.2)", v->save.dr6 & DR6_BS, DR6_BS);
			}
		}
	}
}

/* ---- T-36 SHUTDOWN -------------------------------------------------------------------------- */

static void guest_ud2(u64 arg) { (void)arg; asm volatile("ud2"); }

static void test_shutdown(void)
{
	struct vmcb *v = guest(guest_ud2, 0);
	v->save.idtr.base = 0x8000000000ull;		/* 512 GiB: nothing maps it */
	svm_run(v);
	expect_exit("T-36 L2 with an unmapped IDT executes UD2: exit 0x07F (triple fault)", v, SVM_EXIT_SHUTDOWN);
	report(v->control.exit_info_1 == 0 && v->control.exit_info_2 == 0, "T-36 ... EXITINFO1 = EXITINFO2 = 0 (§4.2)");
}

/* ---- T-37 unsupported instructions --------------------------------------------------------------- */

static void guest_unsupported(u64 which)
{
	switch (which) {
	case 0: GSITE("rdtscp", ::: "rax", "rcx", "rdx", "memory"); break;
	case 1: GSITE("skinit %%eax", : : "a"(0) : "memory"); break;
	case 2: GSITE("xsetbv", : : "a"(1), "d"(0), "c"(0) : "memory"); break;
	case 3: GSITE(".byte 0x0f, 0x01, 0xfd", : : "c"(0) : "rax", "rdx", "memory"); break;	/* RDPRU */
	case 4: GSITE("invpcid (%0), %1", : : "r"(dt_buf), "r"(0ull) : "memory"); break;
	}
}

static void test_unsupported(void)
{
	static const struct { const char *name; u64 exit; bool supported; } cases[] = {
		{ "RDTSCP", SVM_EXIT_RDTSCP, false }, { "SKINIT", SVM_EXIT_SKINIT, false },
		{ "XSETBV", SVM_EXIT_XSETBV, false }, { "RDPRU", SVM_EXIT_RDPRU, false },
		{ "INVPCID", SVM_EXIT_INVPCID, false },
	};
	bool sup[] = { has_rdtscp(), false, has_xsave(), has_rdpru(), has_invpcid() };
	for (u64 i = 0; i < ARRAY_SIZE(cases); i++) {
		char name[128];
		snprintf(name, sizeof(name), "T-37 %s not in CPUID, its intercept and #UD intercepted: exit 0x046", cases[i].name);
		if (sup[i]) {
			report_skip(name, "advertised in CPUID here");
			continue;
		}
		struct vmcb *v = guest(guest_unsupported, i);
		vmcb_set_intercept(v, cases[i].exit);
		vmcb_intercept_exception(v, UD_VECTOR, true);
		u32 w3 = v->control.intercept_word3, w4 = v->control.intercept_word4, w5 = v->control.intercept_word5;
		svm_run(v);
		if (i == 1)
			qemu_deviation("QEMU 7.2 checks the SKINIT intercept before its #UD");
		expect_exit(name, v, SVM_EXIT_EXCP_BASE + UD_VECTOR);
		snprintf(name, sizeof(name), "T-37 ... %s: vmcb12 intercept words as L1 wrote them", cases[i].name);
		report(v->control.intercept_word3 == w3 && v->control.intercept_word4 == w4 &&
		       v->control.intercept_word5 == w5, "%s", name);
	}
}

/* ---- T-39 CPUID.OSXSAVE, T-40 optional features ------------------------------------------------- */

static volatile u32 g_osxsave;
static void guest_clear_osxsave(u64 arg)
{
	(void)arg;
	write_cr4(read_cr4() & ~(u64)CR4_OSXSAVE);
	g_osxsave = cpuid(1, 0).c & BIT(27);
}

static void test_osxsave(void)
{
	if (!has_xsave()) {
		report_skip("T-39 CPUID.1:ECX.OSXSAVE follows the current level's CR4", "no XSAVE in CPUID");
		return;
	}
	write_cr4(read_cr4() | CR4_OSXSAVE);
	struct vmcb *v = guest(guest_clear_osxsave, 0);
	svm_run(v);
	expect_exit("T-39 L2 clears its CR4.OSXSAVE", v, SVM_EXIT_VMMCALL);
	expect_eq("T-39 ... CPUID.1:ECX[27] in L2 is 0 afterwards (§6.11)", g_osxsave, 0);
	expect_eq("T-39 ... CPUID.1:ECX[27] in L1 after the exit is still 1", cpuid(1, 0).c & BIT(27), BIT(27));
	write_cr4(read_cr4() & ~(u64)CR4_OSXSAVE);
}

static volatile unsigned pauses_done;
static void guest_pauses(u64 n)
{
	for (pauses_done = 0; pauses_done < n; pauses_done++)
		asm volatile("pause");
}

static void test_optional(void)
{
	/* Without the PAUSE filter (or with count 0) every PAUSE exits (§6.11). */
	struct vmcb *v = guest(guest_pauses, 5);
	vmcb_set_intercept(v, SVM_EXIT_PAUSE);
	svm_run(v);
	expect_exit("T-40/§6.11 PAUSE intercept with filter count 0: the first PAUSE exits", v, SVM_EXIT_PAUSE);
	expect_eq("T-40 ... after no completed PAUSE", pauses_done, 0);
	if (svm_has(SVM_FEAT_PAUSE_FILTER)) {
		v = guest(guest_pauses, 10);
		vmcb_set_intercept(v, SVM_EXIT_PAUSE);
		v->control.pause_filter_count = 9;
		svm_run(v);
		expect_exit("T-40 PAUSE filter count 9, 10 PAUSEs: exit 0x077", v, SVM_EXIT_PAUSE);
		v = guest(guest_pauses, 20);
		vmcb_set_intercept(v, SVM_EXIT_PAUSE);
		v->control.pause_filter_count = 21;
		svm_run(v);
		expect_exit("T-40 PAUSE filter count 21, 20 PAUSEs: no exit", v, SVM_EXIT_VMMCALL);
	} else {
		report_skip("T-40 PAUSE filter count", "PauseFilter not advertised");
	}
	if (svm_has(SVM_FEAT_TSC_RATE)) {
		static const u64 ratios[] = { 0x0000000100000000ull, 0x0000000200000000ull, 0x0000000080000000ull };
		for (size_t i = 0; i < ARRAY_SIZE(ratios); i++) {
			wrmsr(MSR_TSC_RATIO, ratios[i]);
			v = guest(guest_tsc, 0);
			u64 t0 = rdtsc();
			svm_run(v);
			u64 t1 = rdtsc();
			/* L2's TSC = L1's TSC * ratio (8.32 fixed point, §2.5) at a moment inside [t0, t1]. */
			u64 lo = (u64)(((unsigned __int128)t0 * ratios[i]) >> 32);
			u64 hi = (u64)(((unsigned __int128)t1 * ratios[i]) >> 32);
			report(g_tsc >= lo && g_tsc <= hi, "T-40 TSC_RATIO 0x%lx: L2's RDTSC = L1's TSC x ratio", ratios[i]);
		}
		wrmsr(MSR_TSC_RATIO, 0x100000000ull);
	} else {
		report_skip("T-40 TSC_RATIO scaling", "TscRateMsr not advertised");
	}
}

/* ---- §6.9: exceptions checked before the intercept ---------------------------------------------- */

static void guest_priority(u64 which)
{
	/* Nothing before the GSITE may fault at CPL3 or hit the intercept under test. */
	u64 cr4;
	switch (which) {
	case 0: GSITE("mov %0, %%cr0", : : "r"(0x80000011ull) : "memory"); break;	/* at CPL3 */
	case 1: GSITE("hlt", ::: "memory"); break;						/* at CPL3 */
	case 2: GSITE("rdtsc", ::: "rax", "rdx", "memory"); break;				/* CPL3, CR4.TSD */
	case 3: GSITE("cpuid", : : "a"(0), "c"(0) : "rbx", "rdx", "memory"); break;		/* at CPL3 */
	case 4: GSITE("rdmsr", : : "c"(MSR_EFER) : "rax", "rdx", "memory"); break;		/* at CPL3 */
	case 5: GSITE("wrmsr", : : "c"(MSR_EFER), "a"((u32)(EFER_SVME | EFER_LME | EFER_LMA | BIT(28))), "d"(0) : "memory"); break;
	case 6: cr4 = read_cr4(); GSITE("mov %0, %%cr4", : : "r"(cr4 | BIT(31)) : "memory"); break;
	case 7:
		asm volatile("push $0\n\tpush $0\n\tpush $0\n\tpush $0\n\tpush $0\n\t"
			     "movq $1000f, g_site(%%rip)\n\tmovq $1001f, g_next(%%rip)\n"
			     "1000: iretq\n1001:" ::: "memory");
		break;
	case 8: GSITE("int $0x22", ::: "memory"); break;					/* not-present gate */
	case 9: GSITE("mov %%cr5, %%rax", ::: "rax", "memory"); break;
	case 10: GSITE("mov %%dr4, %%rax", ::: "rax", "memory"); break;			/* CR4.DE = 1 */
	case 11: GSITE("mov %0, %%dr7", : : "r"(BIT(32)) : "memory"); break;
	}
}

static void test_priority(void)
{
	static const struct { const char *name; u64 icpt; u64 expect; int how; const char *dev; } cases[] = {
		{ "MOV to CR0 at CPL3: #GP beats the CR0 write intercept", SVM_EXIT_WRITE_CR0,
		  SVM_EXIT_EXCP_BASE + GP_VECTOR, 1, NULL },
		{ "HLT at CPL3: #GP beats the HLT intercept", SVM_EXIT_HLT, SVM_EXIT_EXCP_BASE + GP_VECTOR, 1, NULL },
		{ "RDTSC at CPL3 with CR4.TSD: #GP beats the RDTSC intercept", SVM_EXIT_RDTSC,
		  SVM_EXIT_EXCP_BASE + GP_VECTOR, 2, NULL },
		{ "CPUID at CPL3: the intercept (nothing comes before it)", SVM_EXIT_CPUID, SVM_EXIT_CPUID, 1, NULL },
		{ "RDMSR at CPL3: #GP beats the MSR intercept", SVM_EXIT_MSR, SVM_EXIT_EXCP_BASE + GP_VECTOR, 1, NULL },
		{ "WRMSR EFER with a reserved bit: the MSR intercept beats the value #GP", SVM_EXIT_MSR, SVM_EXIT_MSR, 0, NULL },
		{ "MOV to CR4 with a reserved bit: the CR4 write intercept beats the value #GP", SVM_EXIT_WRITE_CR0 + 4,
		  SVM_EXIT_WRITE_CR0 + 4, 0, NULL },
		{ "IRETQ with a null CS in its frame: the IRET intercept beats the fault", SVM_EXIT_IRET, SVM_EXIT_IRET, 0, NULL },
		{ "INT to a not-present gate: the INTn intercept comes before the IDT access", SVM_EXIT_SWINT,
		  SVM_EXIT_SWINT, 0, NULL },
		{ "MOV from CR5: #UD beats the CR5 read intercept", SVM_EXIT_READ_CR0 + 5,
		  SVM_EXIT_EXCP_BASE + UD_VECTOR, 0, NULL },
		{ "MOV from DR4 with CR4.DE = 1: #UD beats the DR4 read intercept", SVM_EXIT_READ_DR0 + 4,
		  SVM_EXIT_EXCP_BASE + UD_VECTOR, 3, "QEMU 7.2 checks the DR intercept before the CR4.DE #UD" },
		{ "MOV to DR7 with bit 32 set: #GP beats the DR7 write intercept", SVM_EXIT_WRITE_DR0 + 7,
		  SVM_EXIT_EXCP_BASE + GP_VECTOR, 0, "QEMU 7.2 checks the DR write intercept before the value" },
	};
	idt_set_present(0x22, false);
	for (u64 i = 0; i < ARRAY_SIZE(cases); i++) {
		struct vmcb *v = guest(guest_priority, i);
		if (cases[i].how == 1 || cases[i].how == 2)
			vmcb_user_mode(v);
		if (cases[i].how == 2)
			v->save.cr4 |= CR4_TSD;
		if (cases[i].how == 3)
			v->save.cr4 |= CR4_DE;
		vmcb_set_intercept(v, cases[i].icpt);
		if (cases[i].icpt == SVM_EXIT_MSR)
			memset(svm_msrpm, 0xff, 2 * PAGE_SIZE);
		vmcb_intercept_exception(v, GP_VECTOR, true);
		vmcb_intercept_exception(v, UD_VECTOR, true);
		vmcb_intercept_exception(v, NP_VECTOR, true);
		svm_run(v);
		memset(svm_msrpm, 0, 2 * PAGE_SIZE);
		char name[160];
		snprintf(name, sizeof(name), "§6.9 %s", cases[i].name);
		if (cases[i].dev)
			qemu_deviation(cases[i].dev);
		if (expect_exit(name, v, cases[i].expect))
			expect_eq("§6.9 ... at the instruction", v->save.rip, g_site);
	}
	idt_restore(0x22);
}

void test_main(void)
{
	svm_setup();
	vmcb = vmcb_alloc();

	test_instructions();
	test_rsm();
	test_cr0_cr3();
	test_dr();
	test_nrip();
	test_ioio();
	test_string_io();
	test_tsc();
	test_no_nm();
	test_exceptions();
	test_shutdown();
	test_unsupported();
	test_osxsave();
	test_optional();
	test_priority();
	test_msrpm();
}
