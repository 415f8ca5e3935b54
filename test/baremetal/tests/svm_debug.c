/*
 * svm_debug: instruction breakpoints, RF and single-step at both levels and across VMRUN and
 * #VMEXIT (../shared/spec/svm.md §5.2 "Debug behaviour around VMRUN", §5.6, §6.8): the seed
 * behaviour S2 (a code breakpoint is checked once, RF suppresses it, faults push RF = 1,
 * §8.3), host TF/RF across VMRUN (T-24), guest single-step (T-29), DR6/DR7 after #VMEXIT, and
 * LBR (T-34).
 */
#include "svm.h"

#define DR6_INIT 0xffff0ff0ull
#define DR6_BS BIT(14)
#define DR7_FIXED 0x400ull
#define DR7_L0 BIT(0)
#define DR7_G0 BIT(1)

static struct vmcb *vmcb;
static u8 *scratch;

/* What the #DB handler saw. in_l2 is set by guest code so a hit knows its level. */
static volatile int in_l2;
static volatile unsigned db_hits, db_hits_l2;
static volatile u64 db_rip, db_dr6, db_rflags;
static volatile bool db_set_rf;		/* resume past an instruction breakpoint */

static void db_handler(struct ex_frame *f)
{
	db_hits++;
	db_hits_l2 += in_l2;
	db_rip = f->rip;
	db_dr6 = read_dr6();
	db_rflags = f->rflags;
	write_dr6(DR6_INIT);
	if (db_set_rf)
		f->rflags |= RFLAGS_RF;
	f->rflags &= ~RFLAGS_TF;
	if (db_hits > 16)		/* a runaway breakpoint ends as a failure, not a hang */
		write_dr7(DR7_FIXED);
}

static void db_reset(bool set_rf)
{
	db_hits = db_hits_l2 = 0;
	db_rip = db_dr6 = db_rflags = 0;
	db_set_rf = set_rf;
	in_l2 = 0;
	write_dr6(DR6_INIT);
}

static struct vmcb *guest(void (*fn)(u64), u64 arg)
{
	vmcb_init_guest(vmcb, fn, arg);
	vmcb->save.dr7 = DR7_FIXED;
	vmcb->save.dr6 = DR6_INIT;
	return vmcb;
}

/* The address of `insn; ret` placed out of line. */
#define SNIP(insn)                                                                        \
	({                                                                                \
		u64 _s;                                                                   \
		asm volatile("lea 2f(%%rip), %0\n\tjmp 3f\n2: " insn "\n\tret\n3:" : "=r"(_s)); \
		_s;                                                                       \
	})

/* Run the snippet at site with RF = 1 for its first instruction: enter it with IRETQ. */
/* The snippets may change RAX, RBX, RCX, RDX, RSI and RDI (CPUID, REP MOVSB ...). */
static void call_with_rf(u64 site, u64 rsi, u64 rdi, u64 rcx)
{
	asm volatile("lea 1f(%%rip), %%rax\n\t"
		     "push %%rax\n\t"			/* where the snippet's RET goes */
		     "mov %%rsp, %%rax\n\t"
		     "push $0x10\n\t"
		     "push %%rax\n\t"
		     "pushfq\n\t"
		     "orq $0x10000, (%%rsp)\n\t"
		     "push $0x8\n\t"
		     "push %3\n\t"
		     "iretq\n"
		     "1:"
		     : "+S"(rsi), "+D"(rdi), "+c"(rcx) : "r"(site) : "rax", "rbx", "rdx", "memory", "cc");
}

static void call_site(u64 site, u64 rsi, u64 rdi, u64 rcx)
{
	u64 rax = 0;
	asm volatile("call *%4" : "+S"(rsi), "+D"(rdi), "+c"(rcx), "+a"(rax) : "r"(site) : "rbx", "rdx", "memory", "cc");
}

/* ---- S2-1 / S2-2 in L1 ------------------------------------------------------------------- */

static volatile u64 s21_count, s21_rflags_after;
static u64 fault_va, fault_pa;
static volatile unsigned pf_hits;
static volatile u64 pf_rflags, pf_rip;

static void pf_fix_handler(struct ex_frame *f)
{
	pf_hits++;
	pf_rflags = f->rflags;
	pf_rip = f->rip;
	map_page(fault_va, fault_pa, PTE_P | PTE_W, 1);
}

static void test_s2_host(void)
{
	/* S2-1: a breakpoint on an instruction: one #DB before it, RF resumes it exactly once. */
	u64 site = SNIP("incq s21_count(%%rip)\n\tpushfq\n\tpopq s21_rflags_after(%%rip)");
	db_reset(true);
	s21_count = 0;
	write_dr0(site);
	write_dr7(DR7_FIXED | DR7_L0);
	call_site(site, 0, 0, 0);
	write_dr7(DR7_FIXED);
	expect_eq("S2-1 L1 breakpoint (DR7 = 0x401) on X: one #DB", db_hits, 1);
	expect_eq("S2-1 ... saved RIP = X (a fault, before X runs)", db_rip, site);
	expect_eq("S2-1 ... DR6.B0 = 1", db_dr6 & 0xf, 1);
	expect_eq("S2-1 ... saved RFLAGS.RF = 0", db_rflags & RFLAGS_RF, 0);
	expect_eq("S2-1 ... the handler's RF = 1 lets X execute exactly once", s21_count, 1);
	expect_eq("S2-1 ... after X, RF = 0", s21_rflags_after & RFLAGS_RF, 0);

	/* S2-2: X also page-faults: #DB, then #PF with RF = 1, then X completes without a 2nd #DB. */
	fault_va = 0x4000000000ull;
	fault_pa = (u64)alloc_page();
	*(volatile u64 *)fault_pa = 0x5a5a;
	*pte_4k(fault_va) = 0;
	invlpg((void *)fault_va);
	set_handler(PF_VECTOR, pf_fix_handler);
	site = SNIP("mov (%%rsi), %%rax\n\tmov %%rax, (%%rdi)");
	static volatile u64 loaded;
	db_reset(true);
	pf_hits = 0;
	loaded = 0;
	write_dr0(site);
	write_dr7(DR7_FIXED | DR7_L0);
	call_site(site, fault_va, (u64)&loaded, 0);
	write_dr7(DR7_FIXED);
	set_handler(PF_VECTOR, NULL);
	expect_eq("S2-2 breakpoint on a load from a not-present page: exactly one #DB", db_hits, 1);
	expect_eq("S2-2 ... exactly one #PF, at X", pf_hits == 1 ? pf_rip : 0, site);
	expect_eq("S2-2 ... the #PF frame has RF = 1", pf_rflags & RFLAGS_RF, RFLAGS_RF);
	expect_eq("S2-2 ... X completes after the fix (no #DB on re-execution)", loaded, 0x5a5a);
}

/* ---- S2-3: instructions that may take a slow path --------------------------------------------- */

static const char *const slow_names[] = {
	"CPUID", "RDMSR", "IN", "OUT", "MMIO load (APIC version)", "MMIO store (APIC TPR)", "REP MOVSB",
	"INVLPG", "MOV to CR3", "LOCK CMPXCHG", "VMSAVE", "STGI",
};
#define NSLOW ARRAY_SIZE(slow_names)
#define REP_MOVSB 6
#define REP_DEVIATION "QEMU 7.2 checks the breakpoint again at every iteration of REP MOVSB"

static u64 slow_site(unsigned i)
{
	switch (i) {
	case 0: return SNIP("cpuid");
	case 1: return SNIP("rdmsr");
	case 2: return SNIP("inb $0x61, %%al");
	case 3: return SNIP("outb %%al, $0x80");
	case 4: return SNIP("mov 0x30(%%rsi), %%eax");
	case 5: return SNIP("movl $0, 0x80(%%rsi)");
	case 6: return SNIP("rep movsb");
	case 7: return SNIP("invlpg (%%rdi)");
	case 8: return SNIP("mov %%rsi, %%cr3");
	case 9: return SNIP("lock cmpxchg %%ecx, (%%rdi)");
	case 10: return SNIP("vmsave %%rax");
	default: return SNIP("stgi");
	}
}

/* Operands: RSI, RDI, RCX, RAX per instruction (RAX only matters for VMSAVE and the CMPXCHG). */
static void slow_operands(unsigned i, u64 *rsi, u64 *rdi, u64 *rcx)
{
	*rsi = APIC_DEFAULT_BASE;
	*rdi = (u64)scratch + 2048;
	*rcx = 0;
	if (i == 1)
		*rcx = MSR_EFER;
	if (i == 6) {
		*rsi = (u64)scratch;
		*rcx = 16;
	}
	if (i == 8)
		*rsi = read_cr3();
}

static void run_slow(unsigned i, bool rf)
{
	u64 rsi, rdi, rcx, site = slow_site(i);
	slow_operands(i, &rsi, &rdi, &rcx);
	write_dr0(site);
	write_dr7(DR7_FIXED | DR7_L0);
	if (i == 10) {
		/* VMSAVE takes RAX: both helpers load RAX = 0 or clobber it, so use its own path. */
		u64 rax = (u64)scratch;
		if (rf)
			asm volatile("lea 1f(%%rip), %%rdx\n\tpush %%rdx\n\tmov %%rsp, %%rdx\n\tpush $0x10\n\tpush %%rdx\n\t"
				     "pushfq\n\torq $0x10000, (%%rsp)\n\tpush $0x8\n\tpush %1\n\tiretq\n1:"
				     : "+a"(rax) : "r"(site) : "rdx", "memory", "cc");
		else
			asm volatile("call *%1" : "+a"(rax) : "r"(site) : "memory", "cc");
	} else if (rf) {
		call_with_rf(site, rsi, rdi, rcx);
	} else {
		call_site(site, rsi, rdi, rcx);
	}
	write_dr7(DR7_FIXED);
}

static void guest_slow(u64 i)
{
	in_l2 = 1;
	run_slow((unsigned)i, false);
	in_l2 = 0;
}

static void test_s2_slow(void)
{
	for (unsigned i = 0; i < NSLOW; i++) {
		char name[128];
		db_reset(true);
		run_slow(i, false);
		snprintf(name, sizeof(name), "S2-3 L1 breakpoint on %s, RF = 0: exactly one #DB", slow_names[i]);
		if (i == REP_MOVSB)
			qemu_deviation(REP_DEVIATION);
		report(db_hits == 1 && db_rip == slow_site(i), "%s (%u)", name, db_hits);
		db_reset(true);
		run_slow(i, true);
		snprintf(name, sizeof(name), "S2-3 L1 breakpoint on %s, entered with RF = 1: no #DB", slow_names[i]);
		if (i == REP_MOVSB)
			qemu_deviation(REP_DEVIATION);
		expect_eq(name, db_hits, 0);
	}
	/* The same in L2 (L2 arms its own DR7; DR0 is shared), #DB not intercepted (a subset: the
	   instructions an L2 can run without side effects on L1). */
	static const unsigned in_guest[] = { 0, 1, 2, 3, 4, 6, 7, 9 };
	for (size_t k = 0; k < ARRAY_SIZE(in_guest); k++) {
		unsigned i = in_guest[k];
		db_reset(true);
		struct vmcb *v = guest(guest_slow, i);
		svm_run(v);
		char name[128];
		snprintf(name, sizeof(name), "S2-3 L2 breakpoint on %s, #DB not intercepted: exactly one #DB in L2", slow_names[i]);
		if (i == REP_MOVSB)
			qemu_deviation(REP_DEVIATION);
		report(v->control.exit_code == SVM_EXIT_VMMCALL && db_hits == 1 && db_hits_l2 == 1,
		       "%s (exit 0x%lx, #DBs %u, in L2 %u)", name, v->control.exit_code, db_hits, db_hits_l2);
	}
	write_dr7(DR7_FIXED);
}

/* ---- S2-4: a breakpoint in L2 with #DB intercepted ---------------------------------------------- */

static volatile u64 s24_count;
static void guest_bp(u64 site)
{
	in_l2 = 1;
	call_site(site, 0, 0, 0);
	in_l2 = 0;
}

static void test_s2_guest(void)
{
	u64 site = SNIP("incq s24_count(%%rip)");
	write_dr0(site);			/* DR0-DR3 are shared by L1 and L2 (§3.2, §6.8 rule 7) */
	write_dr7(DR7_FIXED);
	db_reset(false);
	s24_count = 0;
	struct vmcb *v = guest(guest_bp, site);
	v->save.dr7 = DR7_FIXED | DR7_L0;
	vmcb_intercept_exception(v, DB_VECTOR, true);
	svm_run(v);
	qemu_deviation("QEMU 7.2 does not arm the breakpoints of the DR7 that VMRUN loads");
	if (!expect_exit("S2-4 L2 breakpoint on X with #DB intercepted: exit 0x041", v, SVM_EXIT_EXCP_BASE + DB_VECTOR)) {
		report_skip("S2-4 ... the rest of S2-4", "no #DB exit to continue from");
		goto dr_after_exit;
	}
	expect_eq("S2-4 ... vmcb12 RIP = X", v->save.rip, site);
	expect_eq("S2-4 ... vmcb12 DR6.B0 = 1", v->save.dr6 & 0xf, 1);
	expect_eq("S2-4 ... vmcb12 RFLAGS.RF = 0", v->save.rflags & RFLAGS_RF, 0);
	expect_eq("S2-4 ... X has not run", s24_count, 0);
	expect_eq("S2-4 ... no #DB reached any handler", db_hits, 0);
	v->save.rflags |= RFLAGS_RF;
	svm_run(v);
	expect_exit("S2-4 ... L1 sets vmcb12 RFLAGS.RF = 1 and re-enters: X completes, next exit is VMMCALL", v,
		    SVM_EXIT_VMMCALL);
	expect_eq("S2-4 ... X ran once", s24_count, 1);
	expect_eq("S2-4 ... RFLAGS.RF = 0 at that exit", v->save.rflags & RFLAGS_RF, 0);

dr_after_exit:
	/* §5.6 step 5, §6.8 rule 7: after #VMEXIT L1's DR7 = 0x400, DR6 keeps L2's value. */
	write_dr0(0);
	write_dr7(DR7_FIXED | DR7_G0 | 0x30000);	/* enabled, but DR0 = 0 is never executed */
	v = guest(guest_bp, SNIP("nop"));
	v->save.dr6 = DR6_INIT | 0x2;			/* L2's DR6: B1 set */
	svm_run(v);
	u64 dr7 = read_dr7(), dr6 = read_dr6();
	write_dr7(DR7_FIXED);
	write_dr6(DR6_INIT);
	expect_exit("§5.6 guest with DR6.B1 set runs", v, SVM_EXIT_VMMCALL);
	qemu_deviation("QEMU 7.2 reloads L1's DR7 at #VMEXIT");
	expect_eq("§5.6 step 5 ... L1's DR7 = 0x400 after the #VMEXIT", dr7, DR7_FIXED);
	qemu_deviation("QEMU 7.2 reloads L1's DR6 at #VMEXIT");
	expect_eq("§5.6 step 5 ... L1's DR6 keeps L2's value (B1)", dr6 & 0xf, 0x2);
	expect_eq("§5.6 step 2 ... vmcb12 DR7 = L2's value", v->save.dr7, DR7_FIXED);
}

/* ---- S2-6: RF in frames of faults, traps and interrupts ----------------------------------------- */

#define IPI_VECTOR 0xd0
static volatile u64 ipi_rflags;
static void ipi_handler(struct ex_frame *f) { ipi_rflags = f->rflags; apic_eoi(); }

static u64 user_cli(u64 arg)
{
	(void)arg;
	TRY("cli", ::: "memory");
	return (u64)ex_vector();
}

static volatile u64 guest_fault_rflags;
static void guest_fault(u64 arg)
{
	(void)arg;
	TRY("ud2", ::: "memory");
	guest_fault_rflags = last_ex.rflags;
}

static void test_s2_6(void)
{
	write_dr7(DR7_FIXED);
	u64 vec = user_run(user_cli, 0, 0);
	report(vec == GP_VECTOR, "S2-6 CLI at CPL3 (IOPL 0): #GP");
	qemu_deviation("TCG does not set RF in the frame of a fault-class exception");
	expect_eq("S2-6 ... its frame has RF = 1", last_ex.rflags & RFLAGS_RF, RFLAGS_RF);
	TRY("ud2", ::: "memory");
	ex_vector();
	qemu_deviation("TCG does not set RF in the frame of a fault-class exception");
	expect_eq("S2-6 UD2 at CPL0: the #UD frame has RF = 1", last_ex.rflags & RFLAGS_RF, RFLAGS_RF);
	set_handler(IPI_VECTOR, ipi_handler);
	ipi_rflags = ~0ull;
	apic_icr(apic_id(), APIC_ICR_FIXED | APIC_ICR_ASSERT | IPI_VECTOR);
	asm volatile("sti; nop; cli" ::: "memory");
	set_handler(IPI_VECTOR, NULL);
	expect_eq("S2-6 an interrupt's frame has RF = 0", ipi_rflags & RFLAGS_RF, 0);
	db_reset(false);
	asm volatile("pushfq\n\torq $0x100, (%%rsp)\n\tpopfq\n\tnop" ::: "memory", "cc");
	report(db_hits == 1 && !(db_rflags & RFLAGS_RF), "S2-6 a single-step #DB (trap) frame has RF = 0");

	struct vmcb *v = guest(guest_fault, 0);
	svm_run(v);
	expect_exit("S2-6 L2 UD2 (not intercepted) is handled in L2", v, SVM_EXIT_VMMCALL);
	qemu_deviation("TCG does not set RF in the frame of a fault-class exception");
	expect_eq("S2-6 ... L2's #UD frame has RF = 1", guest_fault_rflags & RFLAGS_RF, RFLAGS_RF);
}

/* ---- T-24 host TF/RF across VMRUN (and S2-5) ---------------------------------------------------- */

static void guest_mark(u64 arg) { (void)arg; in_l2 = 1; in_l2 = 0; }

static void test_host_rflags(void)
{
	/* Step 1: TF set a few instructions before VMRUN: one #DB in L1 before it, none in L2. */
	db_reset(false);
	struct vmcb *v = guest(guest_mark, 0);
	write_rflags(read_rflags() | RFLAGS_TF);
	svm_vmrun_raw((u64)v, 0);
	stgi();
	expect_exit("T-24 step 1: TF set before VMRUN, cleared at the first trap: guest runs", v, SVM_EXIT_VMMCALL);
	report(db_hits == 1 && db_hits_l2 == 0 && db_rip < (u64)svm_vmrun_insn,
	       "T-24 step 1 ... one #DB in L1 before the VMRUN, none in the guest (%u, rip 0x%lx)", db_hits, db_rip);

	/* Step 2: TF set by the POPF right before VMRUN: the trap comes after the #VMEXIT. */
	db_reset(false);
	v = guest(guest_mark, 0);
	svm_vmrun_raw((u64)v, RFLAGS_TF);
	stgi();
	expect_exit("T-24 step 2: TF set immediately before VMRUN: guest runs", v, SVM_EXIT_VMMCALL);
	report(db_hits == 1 && db_hits_l2 == 0, "T-24 step 2 ... exactly one #DB, in L1 (%u, in L2 %u)", db_hits, db_hits_l2);
	qemu_deviation("QEMU 7.2 does not single-step the VMRUN itself: its first #DB follows the next instruction");
	expect_eq("T-24 step 2 ... with RIP = VMRUN + 3 (§5.2)", db_rip, (u64)svm_vmrun_insn + 3);
	expect_eq("T-24 step 2 ... DR6.BS = 1", db_dr6 & DR6_BS, DR6_BS);
	expect_eq("T-24 RFLAGS.RF = 0 after VMRUN", svm_host_after.rflags & RFLAGS_RF, 0);

	/* Step 3 = S2-5: a breakpoint on L1's VMRUN fires with GIF = 0; RF = 1 lets VMRUN run. */
	db_reset(true);
	v = guest(guest_mark, 0);
	write_dr0((u64)svm_vmrun_insn);
	write_dr7(DR7_FIXED | DR7_L0 | DR7_G0);
	clgi();
	svm_vmrun_raw((u64)v, 0);
	u64 dr7 = read_dr7();
	write_dr7(DR7_FIXED);
	stgi();
	expect_eq("S2-5/T-24 step 3 breakpoint (DR7 = 0x403) on L1's VMRUN with GIF = 0: exactly one #DB", db_hits, 1);
	expect_eq("S2-5 ... at the VMRUN (fires although GIF = 0, §5.8)", db_rip, (u64)svm_vmrun_insn);
	expect_exit("S2-5 ... then VMRUN runs the guest", v, SVM_EXIT_VMMCALL);
	expect_eq("S2-5 ... L1's RFLAGS.RF = 0 after the #VMEXIT", svm_host_after.rflags & RFLAGS_RF, 0);
	qemu_deviation("QEMU 7.2 reloads L1's DR7 at #VMEXIT");
	expect_eq("S2-5 ... L1's DR7 = 0x400 after the #VMEXIT (§5.6)", dr7, DR7_FIXED);
}

/* ---- T-29 guest single-step --------------------------------------------------------------------- */

extern char ss_guest[], ss_insn2[], ss_vmmcall2[];
asm(".text\n.globl ss_guest, ss_insn2, ss_vmmcall2\n"
    "ss_guest:\n\tpush %rbp\nss_insn2:\n\tmov %rsp, %rbp\n\tvmmcall\nss_vmmcall2:\n\tvmmcall\n\tvmmcall\n\tjmp ss_guest\n");

static void test_singlestep(void)
{
	db_reset(false);
	struct vmcb *v = guest(guest_mark, 0);
	v->save.rip = (u64)ss_guest;
	v->save.rflags |= RFLAGS_TF;
	svm_run(v);
	expect_exit("T-29 vmcb12 RFLAGS.TF = 1, guest PUSH; MOV; VMMCALL: runs to the VMMCALL", v, SVM_EXIT_VMMCALL);
	report(db_hits == 1, "T-29 ... one #DB in L2 (%u)", db_hits);
	expect_eq("T-29 ... at the MOV (the trap follows the first guest instruction)", db_rip, (u64)ss_insn2);
	expect_eq("T-29 ... DR6.BS = 1", db_dr6 & DR6_BS, DR6_BS);
	db_reset(false);
	v->save.rip = (u64)ss_vmmcall2;
	v->save.rflags |= RFLAGS_TF;
	svm_run(v);
	expect_exit("T-29 resume at the second VMMCALL with TF = 1: exit 0x081", v, SVM_EXIT_VMMCALL);
	expect_eq("T-29 ... no #DB (the intercepted VMMCALL never completes)", db_hits, 0);

	/* The same first step with #DB intercepted: exit 0x041 after the first instruction. */
	db_reset(false);
	v = guest(guest_mark, 0);
	v->save.rip = (u64)ss_guest;
	v->save.rflags |= RFLAGS_TF;
	vmcb_intercept_exception(v, DB_VECTOR, true);
	svm_run(v);
	expect_exit("T-29 TF = 1 with #DB intercepted: exit 0x041", v, SVM_EXIT_EXCP_BASE + DB_VECTOR);
	expect_eq("T-29 ... vmcb12 RIP = the MOV (trap: the next instruction, §6.7)", v->save.rip, (u64)ss_insn2);
	expect_eq("T-29 ... vmcb12 DR6.BS = 1", v->save.dr6 & DR6_BS, DR6_BS);
}

/* ---- T-34 LBR ---------------------------------------------------------------------------------- */

extern char lbr_guest[], lbr_guest_from[], lbr_guest_to[], lbr_probe_from[], lbr_probe_to[];
void lbr_vmrun(u64 vmcb_pa, u64 out[3]);
u64 lbr_probe(u64 out[2]);

static void test_lbr(void)
{
	/* T-34 is about who sees which branches; it needs L1 itself to record them first. */
	u64 v64 = 0, probe[2] = { 0, 0 };
	if (wrmsr_safe(MSR_DEBUGCTL, 1) >= 0 || rdmsr_safe(MSR_DEBUGCTL, &v64) >= 0 || !(v64 & 1)) {
		wrmsr_safe(MSR_DEBUGCTL, 0);
		report_skip("T-34 LBR", "DEBUGCTL.LBR cannot be set here (no LBR support)");
		return;
	}
	wrmsr(MSR_DEBUGCTL, 0);
	lbr_probe(probe);
	if (probe[0] != (u64)lbr_probe_from || probe[1] != (u64)lbr_probe_to) {
		report_skip("T-34 LBR", "DEBUGCTL.LBR sticks but L1's own branches are not recorded in LASTBRANCHFROMIP/TOIP");
		return;
	}
	u64 out[3];
	struct vmcb *v = guest(guest_mark, 0);
	v->save.rip = (u64)lbr_guest;
	v->save.dbgctl = 0;
	lbr_vmrun((u64)v, out);
	stgi();
	expect_exit("T-34 without LBR virtualization: L2 turns DEBUGCTL.LBR on and branches", v, SVM_EXIT_VMMCALL);
	expect_eq("T-34 ... L2's DEBUGCTL persists after the exit", out[0] & 1, 1);
	report(out[1] == (u64)lbr_guest_from && out[2] == (u64)lbr_guest_to,
	       "T-34 ... L2's branch is visible to L1 (from 0x%lx to 0x%lx)", out[1], out[2]);
	if (!svm_has(SVM_FEAT_LBRV)) {
		report_skip("T-34 with LBR virtualization", "LbrVirt not advertised");
		return;
	}
	v = guest(guest_mark, 0);
	v->save.rip = (u64)lbr_guest;
	v->control.misc_ctl2 = LBR_VIRT_ENABLE;
	v->save.dbgctl = 0;
	lbr_vmrun((u64)v, out);
	stgi();
	expect_exit("T-34 with LBR virtualization: guest runs", v, SVM_EXIT_VMMCALL);
	expect_eq("T-34 ... L1's DEBUGCTL (0) is restored at the exit", out[0] & 1, 0);
	expect_eq("T-34 ... vmcb12 DBGCTL holds L2's final value", v->save.dbgctl & 1, 1);
	report(v->save.br_from == (u64)lbr_guest_from && v->save.br_to == (u64)lbr_guest_to,
	       "T-34 ... vmcb12 BR_FROM/BR_TO hold L2's branch");
}

void test_main(void)
{
	svm_setup();
	vmcb = vmcb_alloc();
	scratch = alloc_page();
	set_handler(DB_VECTOR, db_handler);
	write_dr7(DR7_FIXED);

	test_s2_host();
	test_s2_slow();
	test_s2_guest();
	test_s2_6();
	test_host_rflags();
	test_singlestep();
	test_lbr();
	write_dr7(DR7_FIXED);
	set_handler(DB_VECTOR, NULL);
}
