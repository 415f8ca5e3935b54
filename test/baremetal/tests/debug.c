/*
 * debug: the debug registers and #DB. Instruction breakpoints in DR0-DR3 (a fault: RIP at
 * the instruction, DR6.Bn, RF = 0 pushed; RF = 1 in the IRETQ image resumes without a second
 * hit), data write and read/write breakpoints (a trap after the access), I/O breakpoints,
 * single-stepping with TF (DR6.BS), ICEBP, general detect (DR7.GD, DR6.BD), DR4/DR5 aliasing,
 * and how instruction breakpoints and RF interact with other faults of the same instruction
 * (../shared/spec/svm.md §6.8: the breakpoint is checked once, before any other fault, and
 * every other fault-class exception pushes RF = 1 so the re-executed instruction does not
 * hit it again).
 */
#include "runtime.h"

#define DR6_BS BIT(14)
#define DR6_BD BIT(13)
#define DR6_INIT 0xffff0ff0ull		/* DR6 with no condition recorded (SDM Vol 3 §18.2.3) */
#define DR7_GD BIT(13)

/* DR7 fields (SDM Vol 3 §18.2.4): Ln = bit 2n, R/Wn = bits 16+4n, LENn = bits 18+4n. */
enum { RW_EXEC = 0, RW_WRITE = 1, RW_IO = 2, RW_RW = 3 };
enum { LEN_1 = 0, LEN_2 = 1, LEN_8 = 2, LEN_4 = 3 };
static u64 dr7_enable(int n, int rw, int len)
{
	return BIT(2 * n) | (u64)rw << (16 + 4 * n) | (u64)len << (18 + 4 * n);
}

static void write_dr(int n, u64 v)
{
	switch (n) {
	case 0: write_dr0(v); break;
	case 1: write_dr1(v); break;
	case 2: write_dr2(v); break;
	default: write_dr3(v); break;
	}
}

/* What the #DB handler saw, hit by hit. */
#define MAX_HITS 8
static volatile struct db_hit { u64 rip, dr6, rflags; } hits[MAX_HITS];
static volatile unsigned nhits;
static volatile bool set_rf;		/* resume with RF = 1 (past an instruction breakpoint) */
static volatile unsigned step_limit;	/* clear TF once this many hits were seen */
static volatile u64 dr7_in_handler;

static void db_handler(struct ex_frame *f)
{
	if (nhits < MAX_HITS)
		hits[nhits] = (struct db_hit){ f->rip, read_dr6(), f->rflags };
	nhits++;
	dr7_in_handler = read_dr7();
	/* DR6 is sticky (SDM Vol 3 §18.2.3): clear it for the next hit. */
	write_dr6(DR6_INIT);
	if (set_rf)
		f->rflags |= RFLAGS_RF;
	if (step_limit && nhits >= step_limit)
		f->rflags &= ~RFLAGS_TF;
	/* A runaway breakpoint loop ends as a failure instead of a hang. */
	if (nhits > 64) {
		write_dr7(0);
		f->rflags &= ~RFLAGS_TF;
	}
}

static void db_reset(bool rf)
{
	nhits = 0;
	set_rf = rf;
	step_limit = 0;
	for (int i = 0; i < MAX_HITS; i++)
		hits[i] = (struct db_hit){ 0, 0, 0 };
	write_dr6(DR6_INIT);
}

/* The address of a small callable snippet `insn; ret` placed out of line. */
#define SNIPPET(insn)                                                                    \
	({                                                                               \
		u64 _site;                                                               \
		asm volatile("lea 2f(%%rip), %0\n\t"                                     \
			     "jmp 3f\n"                                                   \
			     "2: " insn "\n\t"                                            \
			     "ret\n"                                                      \
			     "3:"                                                         \
			     : "=r"(_site));                                              \
		_site;                                                                   \
	})

/* A #DB handler that leaves RF clear twice, then sets it: counts re-triggered hits. */
static void db_rf_late_handler(struct ex_frame *f)
{
	nhits++;
	write_dr6(DR6_INIT);
	if (nhits >= 3)
		f->rflags |= RFLAGS_RF;
}

static void test_instruction_breakpoints(void)
{
	u64 site = SNIPPET("nop");
	for (int n = 0; n < 4; n++) {
		db_reset(true);
		write_dr(n, site);
		write_dr7(dr7_enable(n, RW_EXEC, LEN_1));
		asm volatile("call *%0" : : "r"(site) : "memory");
		write_dr7(0);
		char name[96];
		snprintf(name, sizeof(name), "DR%d instruction breakpoint: one #DB with RIP at the instruction", n);
		report(nhits == 1 && hits[0].rip == site, "%s", name);
		snprintf(name, sizeof(name), "DR%d instruction breakpoint: DR6.B%d set, no other condition", n, n);
		expect_eq(name, hits[0].dr6 & (0xf | DR6_BS | DR6_BD), BIT(n));
		snprintf(name, sizeof(name), "DR%d instruction breakpoint: pushed RF = 0 (SDM Vol 3 §18.3.1.1)", n);
		expect_eq(name, hits[0].rflags & RFLAGS_RF, 0);
		write_dr(n, 0);
	}

	/* Without RF in the IRETQ image the breakpoint fires again on the same instruction. */
	nhits = 0;
	set_handler(DB_VECTOR, db_rf_late_handler);
	write_dr0(site);
	write_dr7(dr7_enable(0, RW_EXEC, LEN_1));
	asm volatile("call *%0" : : "r"(site) : "memory");
	write_dr7(0);
	set_handler(DB_VECTOR, db_handler);
	expect_eq("IRETQ with RF=0 returns into the same breakpoint (3 hits when RF is set on the third)",
		  nhits, 3);
}

static volatile u64 watched __attribute__((aligned(8)));

static void test_data_breakpoints(void)
{
	/* Data breakpoints are traps: RIP after the access, the access done (SDM Vol 3 §18.3.1.2). */
	u64 after;
	db_reset(false);
	write_dr1((u64)&watched);
	write_dr7(dr7_enable(1, RW_WRITE, LEN_8));
	asm volatile("movq $7, %1\n"
		     "1: lea 1b(%%rip), %0"
		     : "=r"(after), "=m"(watched) : : "memory");
	report(nhits == 1 && hits[0].rip == after, "write breakpoint: one #DB, RIP after the write");
	expect_eq("write breakpoint: DR6.B1", hits[0].dr6 & (0xf | DR6_BS), BIT(1));
	expect_eq("write breakpoint: the write happened", watched, 7);

	db_reset(false);
	u64 v;
	asm volatile("mov %1, %0" : "=r"(v) : "m"(watched) : "memory");
	expect_eq("write breakpoint: a read does not trigger it", nhits, 0);
	db_reset(false);
	asm volatile("movb $1, 5+%0" : "=m"(watched) : : "memory");
	expect_eq("write breakpoint: a 1-byte write inside the 8-byte range triggers it", nhits, 1);

	write_dr7(dr7_enable(1, RW_RW, LEN_8));
	db_reset(false);
	asm volatile("mov %2, %1\n"
		     "1: lea 1b(%%rip), %0"
		     : "=r"(after), "=r"(v) : "m"(watched) : "memory");
	report(nhits == 1 && hits[0].rip == after, "read/write breakpoint: a read traps after the instruction");
	expect_eq("read/write breakpoint: DR6.B1", hits[0].dr6 & (0xf | DR6_BS), BIT(1));
	write_dr7(0);
	(void)v;

	/*
	 * A single-step trap and a data breakpoint after the same instruction are reported by
	 * one #DB with both DR6.BS and DR6.Bn (SDM Vol 3 §18.2.3: DR6 reports every condition
	 * met; both are trap-class, §18.3.1).
	 */
	db_reset(false);
	step_limit = 1;
	write_dr2((u64)&watched);
	write_dr7(dr7_enable(2, RW_WRITE, LEN_8));
	asm volatile("pushfq\n\t"
		     "orq $0x100, (%%rsp)\n\t"
		     "popfq\n\t"
		     "movq $9, %1\n"
		     "1: lea 1b(%%rip), %0"
		     : "=r"(after), "=m"(watched) : : "memory", "cc");
	write_dr7(0);
	qemu_deviation("TCG delivers the data-breakpoint #DB, then single-steps into the #DB handler");
	report(nhits == 1 && hits[0].rip == after && (hits[0].dr6 & (0xf | DR6_BS)) == (DR6_BS | BIT(2)),
	       "TF and a write breakpoint on the same instruction: one #DB after it with DR6.BS and DR6.B2");
}

static void test_single_step(void)
{
	/*
	 * SDM Vol 3 §18.3.1.4: with TF set, #DB (DR6.BS) follows each instruction; TF set by POPF
	 * takes effect after the instruction that follows POPF.
	 */
	u64 rips[3];
	db_reset(false);
	step_limit = 3;
	asm volatile("lea 1f(%%rip), %0\n\t"
		     "lea 2f(%%rip), %1\n\t"
		     "lea 3f(%%rip), %2\n\t"
		     "pushfq\n\t"
		     "orq $0x100, (%%rsp)\n\t"
		     "popfq\n\t"
		     "nop\n"
		     "1: nop\n"
		     "2: xchg %%ax, %%ax\n"
		     "3: nop"
		     : "=&r"(rips[0]), "=&r"(rips[1]), "=&r"(rips[2]) : : "memory", "cc");
	expect_eq("single-step: three traps until the handler cleared TF", nhits, 3);
	for (int i = 0; i < 3; i++) {
		char name[80];
		snprintf(name, sizeof(name), "single-step trap %d: RIP after the stepped instruction", i + 1);
		expect_eq(name, hits[i].rip, rips[i]);
		snprintf(name, sizeof(name), "single-step trap %d: DR6.BS", i + 1);
		expect_eq(name, hits[i].dr6 & (0xf | DR6_BS), DR6_BS);
	}
	report(!(read_rflags() & RFLAGS_TF), "TF is clear afterwards");
}

static void test_icebp_and_gd(void)
{
	/* ICEBP (F1, "INT1"): #DB as a trap, RIP after it (SDM Vol 2 INT n/INTO/INT3/INT1). */
	db_reset(false);
	TRY_TRAP(".byte 0xf1", ::: "memory");
	int vec = ex_vector();
	qemu_deviation("TCG 7.2 raises #UD for ICEBP (F1)");
	report(vec < 0 && nhits == 1 && hits[0].rip == ex_site, "ICEBP: one #DB with RIP after the instruction");

	/*
	 * General detect (SDM Vol 3 §18.2.4): with DR7.GD = 1 a MOV DR is a #DB fault with
	 * DR6.BD = 1; the CPU clears GD on entering the handler so it can use the registers.
	 */
	db_reset(true);
	u64 site;
	asm volatile("lea 2f(%%rip), %0\n\t"
		     "mov %1, %%dr7\n\t"
		     "2: mov %%dr0, %%rax"
		     : "=&r"(site) : "r"(DR7_GD) : "rax", "memory");
	qemu_deviation("TCG 7.2 does not implement DR7.GD");
	report(nhits == 1 && hits[0].rip == site && (hits[0].dr6 & DR6_BD) && !(dr7_in_handler & DR7_GD),
	       "DR7.GD: MOV DR raises #DB at the MOV with DR6.BD, GD cleared for the handler");
	write_dr7(0);

	/* DR4/DR5 alias DR6/DR7 when CR4.DE = 0 and are #UD when CR4.DE = 1 (SDM Vol 3 §18.2.2). */
	write_dr6(DR6_INIT | 1);
	u64 dr4;
	asm volatile("mov %%dr4, %0" : "=r"(dr4));
	expect_eq("CR4.DE=0: DR4 reads DR6", dr4, read_dr6());
	write_cr4(read_cr4() | CR4_DE);
	TRY("mov %%dr4, %%rax", ::: "rax", "memory");
	ex_check("CR4.DE=1: MOV from DR4 is #UD", UD_VECTOR, 0, ex_site);
	write_cr4(read_cr4() & ~(u64)CR4_DE);
	write_dr6(DR6_INIT);

	/* SDM Vol 2 MOV DR: #GP(0) for a 1 in bits 63:32 of DR6 or DR7. */
	TRY("mov %%rax, %%dr7", : : "a"(BIT(32)) : "memory");
	ex_check("MOV to DR7 with bit 32 set: #GP(0)", GP_VECTOR, 0, ex_site);
	write_dr7(0);
}

static void test_io_breakpoint(void)
{
	/* I/O breakpoints need CR4.DE (SDM Vol 3 §18.2.4, R/W = 10b); they are traps. */
	write_cr4(read_cr4() | CR4_DE);
	db_reset(false);
	write_dr3(0x80);
	write_dr7(dr7_enable(3, RW_IO, LEN_1));
	u64 after;
	asm volatile("outb %%al, $0x80\n"
		     "1: lea 1b(%%rip), %0"
		     : "=r"(after) : "a"(0) : "memory");
	asm volatile("outb %%al, $0x84" : : "a"(0));
	write_dr7(0);
	write_cr4(read_cr4() & ~(u64)CR4_DE);
	report(nhits == 1 && hits[0].rip == after, "I/O breakpoint on port 0x80: one #DB after the OUT");
	expect_eq("I/O breakpoint: DR6.B3", hits[0].dr6 & (0xf | DR6_BS), BIT(3));
}

static volatile u64 fault_db_hits;
static volatile u64 pf_fixes;
static u64 fault_page_va, fault_page_pa;

static void db_count_handler(struct ex_frame *f)
{
	fault_db_hits++;
	write_dr6(DR6_INIT);
	f->rflags |= RFLAGS_RF;
	if (fault_db_hits > 8)
		write_dr7(0);
}

static void pf_fix_handler(struct ex_frame *f)
{
	ex_record_frame(f);
	map_page(fault_page_va, fault_page_pa, PTE_P | PTE_W, 1);
	pf_fixes++;
}

static void test_breakpoint_and_faults(void)
{
	set_handler(DB_VECTOR, db_count_handler);

	/*
	 * A breakpoint on an instruction that also faults: the #DB comes first (it outranks
	 * every other fault of the instruction); resuming with RF = 1, the instruction then raises
	 * its #GP, whose pushed RFLAGS has RF = 1 (SDM Vol 3 §18.3.1.1, svm.md §6.8 rules 1-2).
	 */
	fault_db_hits = 0;
	u64 site = SNIPPET("mov (%%rax), %%rax\n\tud2");
	write_dr0(site);
	write_dr7(dr7_enable(0, RW_EXEC, LEN_1));
	asm volatile(ASM_TRY("1f", "2f")
		     "2: jmp *%0\n"
		     "1:"
		     : : "r"(site), "a"(0x8000000000000000ull) : "memory");
	int vec = ex_vector();
	write_dr7(0);
	expect_eq("breakpoint on a faulting instruction: #DB first, once", fault_db_hits, 1);
	report(vec == GP_VECTOR && last_ex.rip == site, "then the instruction's own #GP at the same RIP");
	report(last_ex.rflags & RFLAGS_RF, "the #GP frame has RF = 1");

	/*
	 * A breakpoint on an instruction that page-faults; the #PF handler maps the page and
	 * returns with the pushed RF = 1, so the re-executed instruction completes without a
	 * second #DB (svm.md §6.8 rule 3).
	 */
	fault_page_va = 0x4000000000ull;
	fault_page_pa = (u64)alloc_page();
	*(volatile u64 *)fault_page_pa = 0x77;
	*pte_4k(fault_page_va) = 0;
	invlpg((void *)fault_page_va);
	set_handler(PF_VECTOR, pf_fix_handler);
	fault_db_hits = 0;
	pf_fixes = 0;
	u64 got;
	site = SNIPPET("mov (%%rcx), %%rax");
	write_dr0(site);
	write_dr7(dr7_enable(0, RW_EXEC, LEN_1));
	asm volatile("call *%1" : "=a"(got) : "r"(site), "c"(fault_page_va) : "memory");
	write_dr7(0);
	set_handler(PF_VECTOR, NULL);
	expect_eq("breakpoint on a page-faulting load: the #PF is fixed once", pf_fixes, 1);
	expect_eq("... the load completes with the mapped value", got, 0x77);
	expect_eq("... and the #DB fired only before the #PF, not on re-execution", fault_db_hits, 1);

	/* #DB outranks #UD: a breakpoint on UD2 gives #DB, then #UD. */
	fault_db_hits = 0;
	site = SNIPPET("ud2");
	write_dr0(site);
	write_dr7(dr7_enable(0, RW_EXEC, LEN_1));
	asm volatile(ASM_TRY("1f", "2f")
		     "2: jmp *%0\n"
		     "1:"
		     : : "r"(site) : "memory");
	vec = ex_vector();
	write_dr7(0);
	report(fault_db_hits == 1 && vec == UD_VECTOR && last_ex.rip == site,
	       "breakpoint on UD2: #DB first, then #UD at the same RIP");

	set_handler(DB_VECTOR, db_handler);
}

void test_main(void)
{
	set_handler(DB_VECTOR, db_handler);
	test_instruction_breakpoints();
	test_data_breakpoints();
	test_single_step();
	test_icebp_and_gd();
	test_io_breakpoint();
	test_breakpoint_and_faults();
	set_handler(DB_VECTOR, NULL);
	write_dr7(0);
}
