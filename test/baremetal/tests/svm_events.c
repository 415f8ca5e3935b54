/*
 * svm_events: interrupts, NMIs, INIT and injected events around guest mode
 * (../shared/spec/svm.md §1.3, §5.5, §5.8, §6.2-§6.6): event injection by type, pending
 * interrupts before the first guest instruction (T-15), V_INTR_MASKING (T-16), direct and
 * intercepted interrupts and NMIs, also while L2 halts (T-17, T-18), vNMI (T-19), virtual
 * interrupts and VINTR (T-20, T-21), no register corruption around an intercepted interrupt
 * (T-22), the INIT intercept (T-23), VGIF (T-25), L2's own GIF and IF (T-35), and V_TPR/CR8.
 *
 * T-18's HLT cases and T-23 need a second CPU (run with -smp 2): the AP sends NMIs to the BSP,
 * and the INIT test runs on the AP because an INIT that reaches L1 afterwards resets the CPU.
 */
#include "svm.h"

#define IPI_VECTOR	0xd0
#define TIMER_VECTOR	0xd1
#define INJ_VECTOR	0xd2
#define SOFT_VECTOR	0xd3
#define NP_GATE_VECTOR	0xd4
#define VIRQ_VECTOR	0xf1
#define TIMER_COUNT	200000

static struct vmcb *vmcb;

/* Where an event handler ran: in_l2 is 1 while guest code runs (set by the guest itself). */
static volatile int in_l2;
static volatile unsigned ipi_hits, ipi_hits_l2, timer_hits, timer_hits_l2, nmi_hits, nmi_hits_l2;
static volatile unsigned virq_hits, inj_hits, soft_hits;
static volatile u64 virq_rip, inj_rip, soft_rip, inj_rflags;

static void ipi_handler(struct ex_frame *f) { (void)f; ipi_hits++; ipi_hits_l2 += in_l2; apic_eoi(); }
static void timer_handler(struct ex_frame *f) { (void)f; timer_hits++; timer_hits_l2 += in_l2; apic_eoi(); }
static void nmi_handler(struct ex_frame *f) { (void)f; nmi_hits++; nmi_hits_l2 += in_l2; }
/* Virtual and injected interrupts never reach the APIC: no EOI. */
static void virq_handler(struct ex_frame *f) { virq_hits++; virq_rip = f->rip; }
static void inj_handler(struct ex_frame *f) { inj_hits++; inj_rip = f->rip; inj_rflags = f->rflags; }
static void soft_handler(struct ex_frame *f) { soft_hits++; soft_rip = f->rip; }

static void reset_counts(void)
{
	ipi_hits = ipi_hits_l2 = timer_hits = timer_hits_l2 = nmi_hits = nmi_hits_l2 = 0;
	virq_hits = inj_hits = soft_hits = 0;
	in_l2 = 0;
}

static void self_ipi(void) { apic_icr(apic_id(), APIC_ICR_FIXED | APIC_ICR_ASSERT | IPI_VECTOR); }
static void self_nmi(void) { apic_icr(apic_id(), APIC_ICR_NMI | APIC_ICR_ASSERT); }
static void sti_nop_cli(void) { asm volatile("sti; nop; cli" ::: "memory"); }

static struct vmcb *guest(void (*fn)(u64), u64 arg)
{
	vmcb_init_guest(vmcb, fn, arg);
	return vmcb;
}

/* VMRUN with GIF = 0 beforehand and IF = if_at_vmrun at the VMRUN (KUT's "CLGI; STI; VMRUN"). */
static u64 run_if(struct vmcb *v, bool if_at_vmrun)
{
	clgi();
	svm_vmrun_raw((u64)v, if_at_vmrun ? RFLAGS_IF : 0);
	cli();
	in_l2 = 0;
	return v->control.exit_code;
}

/* ---- the second CPU ------------------------------------------------------------------------- */

enum { AP_IDLE, AP_INIT_TEST };
static volatile int ap_cmd, ap_done;
/* NMI requests are counted, not flagged: a request can never be lost to the AP's reset. */
static volatile unsigned ap_nmi_requests, ap_nmi_sent;
static volatile u64 ap_delay, ap_init_exit;
static volatile bool ap_ready;
static struct vmcb *ap_vmcb;
static u64 ap_hsave;

static void guest_self_init(u64 arg)
{
	(void)arg;
	apic_icr(apic_id(), APIC_ICR_INIT | APIC_ICR_ASSERT);
	spin(1000000);
}

static void ap_main(u32 id)
{
	(void)id;
	apic_enable();
	ap_ready = true;
	for (;;) {
		int cmd = ap_cmd;
		if (ap_nmi_requests != ap_nmi_sent) {
			spin(ap_delay);
			apic_icr(0, APIC_ICR_NMI | APIC_ICR_ASSERT);
			ap_nmi_sent++;
		} else if (cmd == AP_INIT_TEST) {
			/* T-23 on this CPU. The INIT stays pending for L1 after the exit (§6.6); with
			   GIF = 0 it is held, so this CPU parks here and never takes it. */
			wrmsr(MSR_EFER, rdmsr(MSR_EFER) | EFER_SVME);
			wrmsr(MSR_VM_HSAVE_PA, ap_hsave);
			vmcb_init_guest(ap_vmcb, guest_self_init, 0);
			vmcb_set_intercept(ap_vmcb, SVM_EXIT_INIT);
			svm_vmrun_raw((u64)ap_vmcb, 0);
			ap_init_exit = ap_vmcb->control.exit_code;
			ap_done = 1;
			for (;;)
				asm volatile("cli; hlt");
		}
		pause();
	}
}

static bool have_ap;

static void start_ap(void)
{
	if (fwcfg_cpu_count() < 2)
		return;
	ap_vmcb = vmcb_alloc();
	ap_hsave = (u64)alloc_page();
	have_ap = ap_start(1, ap_main);
	for (u64 i = 0; i < 100000000 && have_ap && !ap_ready; i++)
		pause();
}

/* ---- §5.5 event injection by type --------------------------------------------------------- */

static volatile u64 first_seen_inj;
static void guest_note(u64 arg) { (void)arg; in_l2 = 1; first_seen_inj = inj_hits; }
extern char stub_nops[];
asm(".text\n.globl stub_nops\nstub_nops:\n\tnop\n\tnop\n\tvmmcall\n\tjmp stub_nops\n");

static void test_injection(void)
{
	/* TYPE 0: an external interrupt, regardless of L2's IF = 0, before the first instruction. */
	reset_counts();
	struct vmcb *v = guest(guest_note, 0);
	v->control.event_inj = EVTINJ_VALID | EVTINJ_TYPE_INTR | INJ_VECTOR;
	first_seen_inj = 99;
	svm_run(v);
	expect_exit("§5.5 EVENTINJ type 0 (INTR) vector 0xD2 with L2 IF = 0: VMRUN succeeds", v, SVM_EXIT_VMMCALL);
	report(inj_hits == 1 && first_seen_inj == 1, "§5.5 ... L2's handler ran once, before L2's first instruction");
	expect_eq("§5.5 ... the frame's RIP = the guest's first RIP", inj_rip, (u64)svm_guest_entry);
	expect_eq("§5.5 ... the frame's RFLAGS.IF = 0 (delivered regardless of IF)", inj_rflags & RFLAGS_IF, 0);
	expect_eq("§5.5 ... EVENTINJ = 0 at the next exit", v->control.event_inj, 0);

	/* TYPE 2: an NMI through vector 2. */
	reset_counts();
	v = guest(guest_note, 0);
	v->control.event_inj = EVTINJ_VALID | EVTINJ_TYPE_NMI | 0x55;
	svm_run(v);
	expect_exit("§5.5 EVENTINJ type 2 (NMI, vector field ignored): VMRUN succeeds", v, SVM_EXIT_VMMCALL);
	report(nmi_hits == 1 && nmi_hits_l2 == 0, "§5.5 ... L2's NMI handler ran once, first (%u)", nmi_hits);

	/* TYPE 4: INTn; the pushed return address is NRIP with NRIPS, else the current RIP (§3.11). */
	reset_counts();
	v = guest(guest_note, 0);
	v->save.rip = (u64)stub_nops;
	v->control.next_rip = (u64)stub_nops + 1;
	v->control.event_inj = EVTINJ_VALID | EVTINJ_TYPE_SOFT | SOFT_VECTOR;
	svm_run(v);
	expect_exit("§5.5 EVENTINJ type 4 (INTn) vector 0xD3: VMRUN succeeds", v, SVM_EXIT_VMMCALL);
	expect_eq("§5.5 ... L2's handler ran once", soft_hits, 1);
	if (svm_has(SVM_FEAT_NRIPS))
		expect_eq("§5.5/§3.11 ... pushed return address = NRIP", soft_rip, (u64)stub_nops + 1);
	else
		expect_eq("§5.5/§3.11 ... pushed return address = RIP (no NRIPS)", soft_rip, (u64)stub_nops);

	/* An exception raised while delivering an injected event: the exit records the event in
	   EXITINTINFO (§5.5, §6.7). The gate of 0xD4 is not present: #NP(IDT, EXT). */
	idt_set_present(NP_GATE_VECTOR, false);
	v = guest(guest_note, 0);
	v->control.event_inj = EVTINJ_VALID | EVTINJ_TYPE_INTR | NP_GATE_VECTOR;
	vmcb_intercept_exception(v, NP_VECTOR, true);
	svm_run(v);
	idt_restore(NP_GATE_VECTOR);
	expect_exit("§6.7 injected INTR through a not-present gate, #NP intercepted: exit 0x04B", v,
		    SVM_EXIT_EXCP_BASE + NP_VECTOR);
	expect_eq("§6.7 ... EXITINTINFO = the injected event (V | type 0 | 0xD4)", v->control.exit_int_info,
		  EVTINJ_VALID | EVTINJ_TYPE_INTR | NP_GATE_VECTOR);
	qemu_deviation("QEMU 7.2 reports IDT error codes as vector x 16 + 2 without EXT");
	expect_eq("§6.7 ... EXITINFO1 = #NP error code (index 0xD4, IDT, EXT)", v->control.exit_info_1,
		  NP_GATE_VECTOR << 3 | 2 | 1);
	expect_eq("§6.7 ... vmcb12 RIP = the guest RIP the event was injected at", v->save.rip, (u64)svm_guest_entry);
}

/* ---- T-15 / T-16 ------------------------------------------------------------------------------- */

static volatile unsigned g_before, g_after;
static void guest_mark(u64 arg) { (void)arg; in_l2 = 1; g_before = 1; }
static void guest_sti_nop_cli(u64 arg)
{
	(void)arg;
	in_l2 = 1;
	g_before = ipi_hits;
	sti_nop_cli();
	g_after = ipi_hits;
}

static void test_pending(void)
{
	/* T-15: an interrupt pending before VMRUN with the INTR intercept exits before any L2 code. */
	reset_counts();
	g_before = 0;
	struct vmcb *v = guest(guest_mark, 0);
	vmcb_set_intercept(v, SVM_EXIT_INTR);
	v->control.int_ctl |= V_INTR_MASKING;
	self_ipi();
	run_if(v, true);
	expect_exit("T-15 IPI pending, INTR intercepted, L1 CLGI; STI; VMRUN: exit 0x060", v, SVM_EXIT_INTR);
	report(g_before == 0 && v->save.rip == (u64)svm_guest_entry,
	       "T-15 ... before any L2 instruction ran (RIP = the guest's first)");
	report(v->control.exit_info_1 == 0 && v->control.exit_info_2 == 0, "T-15 ... EXITINFO1 = EXITINFO2 = 0");
	expect_eq("T-15 ... the interrupt was not taken by anyone yet", ipi_hits, 0);
	stgi();
	expect_eq("T-15 ... still held with L1 IF = 0 after STGI", ipi_hits, 0);
	sti_nop_cli();
	report(ipi_hits == 1 && ipi_hits_l2 == 0, "T-15 ... L1 takes it through its own IDT after STI");
	svm_run(v);
	expect_exit("T-15 ... the next VMRUN runs the guest to VMMCALL", v, SVM_EXIT_VMMCALL);
	expect_eq("T-15 ... and the guest ran", g_before, 1);

	/* T-16 round 1: V_INTR_MASKING = 0, L1 IF = 0 at VMRUN, IPI pending: L2's IF decides. */
	reset_counts();
	v = guest(guest_sti_nop_cli, 0);
	self_ipi();
	run_if(v, false);
	stgi();
	expect_exit("T-16 round 1 (V_INTR_MASKING = 0, no INTR intercept): guest runs to VMMCALL", v, SVM_EXIT_VMMCALL);
	expect_eq("T-16 round 1 ... not delivered while L2's IF = 0", g_before, 0);
	report(g_after == 1 && ipi_hits_l2 == 1, "T-16 round 1 ... delivered in L2 right after its STI; NOP");

	/* Round 2: V_INTR_MASKING = 1: L1's IF (0 at VMRUN) masks it; L2's STI does not matter. */
	reset_counts();
	v = guest(guest_sti_nop_cli, 0);
	v->control.int_ctl |= V_INTR_MASKING;
	self_ipi();
	run_if(v, false);
	expect_exit("T-16 round 2 (V_INTR_MASKING = 1, L1 IF = 0): guest runs to VMMCALL", v, SVM_EXIT_VMMCALL);
	report(g_after == 0 && ipi_hits_l2 == 0, "T-16 round 2 ... L2's STI; NOP; CLI does not take it");
	stgi();
	sti_nop_cli();
	report(ipi_hits == 1 && ipi_hits_l2 == 0, "T-16 round 2 ... L1 takes it after the exit when it enables IF");
}

/* ---- T-17 timer interrupts, T-18 NMIs ----------------------------------------------------------- */

enum { WAIT_SPIN, WAIT_HLT };
static volatile u64 hlt_site;
static void guest_timer(u64 how)
{
	in_l2 = 1;
	apic_timer_start(TIMER_VECTOR, TIMER_COUNT, 1, false);
	if (how == WAIT_HLT) {
		/* STI's shadow covers the HLT: the interrupt can only end the halt. */
		asm volatile("movq $1f, hlt_site(%%rip)\n\tsti\n1:\thlt\n\tcli" ::: "memory");
	} else {
		asm volatile("sti" ::: "memory");
		for (u64 i = 0; i < 100000000 && !timer_hits; i++)
			asm volatile("nop");
		asm volatile("cli" ::: "memory");
	}
	apic_timer_stop();
}

static void test_timer(void)
{
	static const char *const how[] = { "spinning", "in HLT" };
	for (int h = 0; h < 2; h++) {
		reset_counts();
		struct vmcb *v = guest(guest_timer, (u64)h);
		run_if(v, false);
		stgi();
		expect_exit(h ? "T-17 APIC timer, no INTR intercept, L2 in HLT: HLT ends, guest runs to VMMCALL"
			      : "T-17 APIC timer, no INTR intercept, L2 spinning: guest runs to VMMCALL", v, SVM_EXIT_VMMCALL);
		report(timer_hits == 1 && timer_hits_l2 == 1, "T-17 ... the timer interrupt is handled in L2 (%s)", how[h]);

		reset_counts();
		v = guest(guest_timer, (u64)h);
		vmcb_set_intercept(v, SVM_EXIT_INTR);
		v->control.int_ctl |= V_INTR_MASKING;
		run_if(v, true);
		apic_timer_stop();
		char name[128];
		snprintf(name, sizeof(name), "T-17 INTR intercepted, V_INTR_MASKING = 1, L2 %s: exit 0x060", how[h]);
		expect_exit(name, v, SVM_EXIT_INTR);
		expect_eq("T-17 ... not delivered in L2", timer_hits_l2, 0);
		if (h)
			expect_eq("T-17 ... vmcb12 RIP = after the HLT (the next instruction, §5.6)", v->save.rip, hlt_site + 1);
		stgi();
		sti_nop_cli();
		report(timer_hits == 1 && timer_hits_l2 == 0, "T-17 ... L1 takes the interrupt after STGI and STI");
	}
}

static volatile unsigned nmi_before_exit;
static void guest_nmi(u64 how)
{
	in_l2 = 1;
	if (how == WAIT_HLT) {
		/*
		 * The other CPU sends the NMI a little later. Should it come before the HLT, a
		 * periodic watchdog timer (handled in L2: INTR is not intercepted) ends the halt
		 * so the loop looks again instead of leaving L2 halted for good.
		 */
		apic_timer_start(TIMER_VECTOR, 10 * TIMER_COUNT, 1, true);
		ap_nmi_requests++;
		while (!nmi_hits && timer_hits < 1000)
			asm volatile("sti; hlt; cli" ::: "memory");
		apic_timer_stop();
	} else {
		self_nmi();
		for (int i = 0; i < 1000 && !nmi_hits; i++)
			pause();
	}
	nmi_before_exit = nmi_hits;
}

static void test_nmi(void)
{
	static const char *const how[] = { "self-NMI", "NMI from the other CPU while L2 is in HLT" };
	for (int h = 0; h < 2; h++) {
		if (h && !have_ap) {
			report_skip("T-18 NMI while L2 is in HLT", "needs a second CPU (-smp 2)");
			break;
		}
		ap_delay = 1000000;
		reset_counts();
		struct vmcb *v = guest(guest_nmi, (u64)h);
		svm_run(v);
		char name[128];
		snprintf(name, sizeof(name), "T-18 %s, no NMI intercept: handled in L2, guest runs to VMMCALL", how[h]);
		report(v->control.exit_code == SVM_EXIT_VMMCALL && nmi_hits == 1 && nmi_hits_l2 == 1,
		       "%s (exit 0x%lx, NMIs %u in L2 %u)", name, v->control.exit_code, nmi_hits, nmi_hits_l2);

		reset_counts();
		nmi_before_exit = 0;
		v = guest(guest_nmi, (u64)h);
		vmcb_set_intercept(v, SVM_EXIT_NMI);
		svm_vmrun_raw((u64)v, 0);
		in_l2 = 0;
		apic_timer_stop();
		unsigned held = nmi_hits;
		snprintf(name, sizeof(name), "T-18 %s, NMI intercepted: exit 0x061", how[h]);
		expect_exit(name, v, SVM_EXIT_NMI);
		expect_eq("T-18 ... the NMI is held while GIF = 0 after the exit", held, 0);
		stgi();
		report(nmi_hits == 1 && nmi_hits_l2 == 0, "T-18 ... L1's NMI handler runs right after STGI");
	}
}

/* ---- T-19 vNMI ------------------------------------------------------------------------------------ */

static void guest_vnmi(u64 arg) { (void)arg; in_l2 = 1; }

static void test_vnmi(void)
{
	if (!svm_has(SVM_FEAT_VNMI)) {
		report_skip("T-19 vNMI", "VNMI not advertised");
		return;
	}
	reset_counts();
	struct vmcb *v = guest(guest_vnmi, 0);
	v->control.int_ctl = V_NMI_ENABLE;
	svm_run(v);
	report((u32)v->control.exit_code == 0xffffffff && nmi_hits == 0,
	       "T-19 V_NMI_ENABLE without the NMI intercept: VMEXIT_INVALID (C20), nothing delivered");
	v = guest(guest_vnmi, 0);
	vmcb_set_intercept(v, SVM_EXIT_NMI);
	v->control.int_ctl = V_NMI_ENABLE | V_NMI_PENDING;
	svm_run(v);
	expect_exit("T-19 V_NMI_ENABLE, NMI intercept, V_NMI pending: runs to VMMCALL", v, SVM_EXIT_VMMCALL);
	report(nmi_hits == 1 && nmi_hits_l2 == 0, "T-19 ... L2's NMI handler ran (the virtual NMI, taken at once)");
	expect_eq("T-19 ... at the exit V_NMI = 0 and V_NMI_MASK = 0 (IRET unblocked)",
		  v->control.int_ctl & (V_NMI_PENDING | V_NMI_MASK), 0);
}

/* ---- T-20 / T-21 virtual interrupts -------------------------------------------------------------- */

static volatile unsigned virq_stage[8];
static void guest_virq(u64 arg)
{
	(void)arg;
	in_l2 = 1;
	virq_stage[0] = virq_hits;		/* IF = 0: not taken */
	sti_nop_cli();
	virq_stage[1] = virq_hits;		/* taken after STI */
	asm volatile("vmmcall");
	virq_stage[2] = virq_hits;
	sti_nop_cli();				/* VINTR intercept: exit here, then taken */
	virq_stage[3] = virq_hits;
	asm volatile("vmmcall");
	sti_nop_cli();				/* V_INTR_PRIO 8 <= V_TPR 0xA: never */
	virq_stage[4] = virq_hits;
	asm volatile("vmmcall");
	sti_nop_cli();				/* ... not even with VINTR intercepted */
	virq_stage[5] = virq_hits;
}

static void test_virq(void)
{
	reset_counts();
	struct vmcb *v = guest(guest_virq, 0);
	v->control.int_ctl = V_INTR_MASKING | V_IRQ | (0xf << V_INTR_PRIO_SHIFT);
	v->control.int_vector = VIRQ_VECTOR;
	svm_run(v);
	expect_exit("T-20 V_IRQ pending, V_INTR_PRIO 0xF, vector 0xF1: guest runs to its first VMMCALL", v, SVM_EXIT_VMMCALL);
	expect_eq("T-20 ... not taken while L2's IF = 0", virq_stage[0], 0);
	expect_eq("T-20 ... taken after STI; NOP", virq_stage[1], 1);
	expect_eq("T-20 ... V_IRQ = 0 at the next exit (§6.4)", v->control.int_ctl & V_IRQ, 0);

	virq_hits = 0;
	v->save.rip += 3;
	vmcb_set_intercept(v, SVM_EXIT_VINTR);
	v->control.int_ctl = V_INTR_MASKING | V_IRQ | (0xf << V_INTR_PRIO_SHIFT);
	svm_run(v);
	expect_exit("T-20 the same with the VINTR intercept: exit 0x064", v, SVM_EXIT_VINTR);
	expect_eq("T-20 ... nothing delivered", virq_hits, 0);
	expect_eq("T-20 ... V_IRQ stays 1", v->control.int_ctl & V_IRQ, V_IRQ);
	report(v->control.exit_info_1 == 0 && v->control.exit_info_2 == 0, "T-20 ... EXITINFO1 = EXITINFO2 = 0");
	vmcb_clear_intercept(v, SVM_EXIT_VINTR);
	svm_run(v);
	expect_exit("T-20 ... without the intercept again: taken, then VMMCALL", v, SVM_EXIT_VMMCALL);
	expect_eq("T-20 ... delivered once", virq_stage[3], 1);

	virq_hits = 0;
	v->save.rip += 3;
	v->control.int_ctl = V_INTR_MASKING | V_IRQ | (0x8 << V_INTR_PRIO_SHIFT) | 0xa;
	svm_run(v);
	expect_exit("T-20 V_INTR_PRIO 8, V_TPR 0xA: guest runs to VMMCALL", v, SVM_EXIT_VMMCALL);
	expect_eq("T-20 ... never taken", virq_stage[4], 0);
	v->save.rip += 3;
	vmcb_set_intercept(v, SVM_EXIT_VINTR);
	svm_run(v);
	expect_exit("T-20 ... and no VINTR exit even with the intercept", v, SVM_EXIT_VMMCALL);
	expect_eq("T-20 ... still never taken", virq_stage[5], 0);

	/* T-21: VMRUN with INTERRUPT_SHADOW = 1, IF = 1, V_IRQ: the first NOP runs, then the interrupt. */
	reset_counts();
	v = guest(guest_virq, 0);
	v->save.rip = (u64)stub_nops;
	v->save.rflags |= RFLAGS_IF;
	v->control.int_state = INT_STATE_SHADOW;
	v->control.int_ctl = V_INTR_MASKING | V_IRQ | (0xf << V_INTR_PRIO_SHIFT);
	v->control.int_vector = VIRQ_VECTOR;
	virq_rip = 0;
	svm_run(v);
	expect_exit("T-21 V_IRQ with INTERRUPT_SHADOW = 1 at VMRUN, guest NOP; NOP; VMMCALL: exit 0x081", v, SVM_EXIT_VMMCALL);
	expect_eq("T-21 ... taken once", virq_hits, 1);
	qemu_deviation("QEMU 7.2 ignores int_state.INTERRUPT_SHADOW at VMRUN");
	expect_eq("T-21 ... interrupted RIP = guest start + 1 (after the first NOP)", virq_rip, (u64)stub_nops + 1);
	expect_eq("T-21 ... V_IRQ = 0 at the exit", v->control.int_ctl & V_IRQ, 0);
	expect_eq("T-21 ... INTERRUPT_SHADOW = 0 at the exit", v->control.int_state & INT_STATE_SHADOW, 0);
}

/* ---- T-22 no register corruption around an intercepted interrupt ------------------------------ */

static volatile u8 insb_var;
extern char insb_site[];

static void guest_insb_loop(u64 arg)
{
	(void)arg;
	asm volatile("1:\n\t"
		     "mov $0x4d0, %%dx\n\t"
		     "lea %0, %%rdi\n\t"
		     "movb $0xaa, %0\n"
		     ".globl insb_site\n"
		     "insb_site:\n\t"
		     "insb\n\t"
		     "jmp 1b"
		     : "+m"(insb_var) : : "rdx", "rdi", "memory");
}

static void test_reg_corruption(void)
{
	reset_counts();
	struct vmcb *v = guest(guest_insb_loop, 0);
	vmcb_set_intercept(v, SVM_EXIT_INTR);
	v->control.int_ctl |= V_INTR_MASKING;
	apic_timer_start(TIMER_VECTOR, 20000, 1, true);
	unsigned bad = 0, at_insb = 0, other = 0;
	u64 exits = 0;
	while (timer_hits < 10000 && exits < 1000000) {
		run_if(v, true);
		exits++;
		if (v->control.exit_code != SVM_EXIT_INTR) {
			other++;
			break;
		}
		if (v->save.rip == (u64)insb_site) {
			at_insb++;
			if (insb_var != 0xaa)
				bad++;
		}
		stgi();
		sti_nop_cli();
	}
	apic_timer_stop();
	stgi();
	sti_nop_cli();
	report(other == 0 && timer_hits >= 10000, "T-22 10000 intercepted timer interrupts around an un-intercepted INSB loop "
	       "(%u interrupts, %lu exits, other exits %u)", timer_hits, exits, other);
	report(bad == 0, "T-22 ... at every exit with RIP = the INSB, the INSB has not run yet (%u of %u were wrong)", bad, at_insb);
}

/* ---- T-23 INIT ----------------------------------------------------------------------------------- */

static void test_init(void)
{
	if (!have_ap) {
		report_skip("T-23 INIT intercept", "needs a second CPU (-smp 2): INIT must not reach the BSP's L1");
		return;
	}
	ap_cmd = AP_INIT_TEST;
	for (u64 i = 0; i < 20000000 && !ap_done; i++)
		pause();
	qemu_deviation("QEMU 7.2 resets the CPU on an INIT in guest mode instead of #VMEXIT(INIT)");
	report(ap_done, "T-23 the AP's guest sent INIT to itself and its L1 got control back (no reset)");
	if (ap_done)
		expect_eq("T-23 ... exit 0x063 (INIT intercepted)", ap_init_exit, SVM_EXIT_INIT);
}

/* ---- T-25 VGIF ------------------------------------------------------------------------------------ */

static void guest_vgif(u64 arg)
{
	(void)arg;
	asm volatile("vmmcall\n\tstgi\n\tvmmcall\n\tclgi\n\tvmmcall" ::: "memory");
}

static void test_vgif(void)
{
	if (!svm_has(SVM_FEAT_VGIF)) {
		report_skip("T-25 VGIF", "VGIF not advertised");
		return;
	}
	struct vmcb *v = guest(guest_vgif, 0);
	v->control.int_ctl |= V_GIF_ENABLE;
	svm_run(v);
	expect_exit("T-25 V_GIF_ENABLE, STGI/CLGI not intercepted: first VMMCALL", v, SVM_EXIT_VMMCALL);
	v->save.rip += 3;
	svm_run(v);
	expect_exit("T-25 ... L2 STGI does not exit", v, SVM_EXIT_VMMCALL);
	expect_eq("T-25 ... after STGI int_ctl.V_GIF = 1", v->control.int_ctl & V_GIF, V_GIF);
	v->save.rip += 3;
	svm_run(v);
	expect_exit("T-25 ... L2 CLGI does not exit", v, SVM_EXIT_VMMCALL);
	expect_eq("T-25 ... after CLGI int_ctl.V_GIF = 0", v->control.int_ctl & V_GIF, 0);
	report(svm_gif_probe(), "T-25 ... L1's GIF is untouched by L2's STGI/CLGI (GIF = 1 after STGI in L1)");
}

/* ---- T-35 L2's own GIF and IF ----------------------------------------------------------------------- */

extern char mix_if_guest[], mix_if_exit[], mix_gif_guest[], mix_gif_exit[], mix_gif2_guest[], mix_gif2_exit[];
extern char mix_nmi_guest[], mix_nmi_exit[];
/* Guest bodies: the exit is expected exactly at the *_exit label. They call the runtime's
   self-IPI/NMI helpers through a register to stay position independent. */
asm(".text\n"
    ".globl mix_if_guest, mix_if_exit\n"
    "mix_if_guest:\n\tnop\n\tsti\n\tnop\nmix_if_exit:\n\tnop\n\tvmmcall\n"
    ".globl mix_gif_guest, mix_gif_exit\n"
    "mix_gif_guest:\n\tclgi\n\tsti\n\tnop\n\tnop\n\tstgi\nmix_gif_exit:\n\tnop\n\tvmmcall\n"
    ".globl mix_gif2_guest, mix_gif2_exit\n"
    "mix_gif2_guest:\n\tclgi\n\tsti\n\tcall self_ipi_thunk\n\tnop\n\tnop\n\tstgi\nmix_gif2_exit:\n\tnop\n\tvmmcall\n"
    ".globl mix_nmi_guest, mix_nmi_exit\n"
    "mix_nmi_guest:\n\tclgi\n\tcall self_nmi_thunk\n\tsti\n\tnop\n\tnop\n\tstgi\nmix_nmi_exit:\n\tnop\n\tvmmcall\n");

void self_ipi_thunk(void);
void self_nmi_thunk(void);
void self_ipi_thunk(void) { self_ipi(); }
void self_nmi_thunk(void) { self_nmi(); }

static void test_mix(void)
{
	static const struct { const char *name; char *rip, *exit; u64 icpt, code; bool pending; } cases[] = {
		{ "T-35 INTR intercept, V_INTR_MASKING = 0, IPI pending, L2 IF = 0 then STI", mix_if_guest, mix_if_exit,
		  SVM_EXIT_INTR, SVM_EXIT_INTR, true },
		{ "T-35 IPI pending, L2: CLGI; STI; NOP; NOP; STGI", mix_gif_guest, mix_gif_exit, SVM_EXIT_INTR,
		  SVM_EXIT_INTR, true },
		{ "T-35 L2: CLGI; STI; self-IPI; NOP; NOP; STGI", mix_gif2_guest, mix_gif2_exit, SVM_EXIT_INTR,
		  SVM_EXIT_INTR, false },
		{ "T-35 NMI intercept, L2: CLGI; self-NMI; STI; NOP; NOP; STGI", mix_nmi_guest, mix_nmi_exit, SVM_EXIT_NMI,
		  SVM_EXIT_NMI, false },
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		reset_counts();
		struct vmcb *v = guest(guest_vnmi, 0);
		v->save.rip = (u64)cases[i].rip;
		vmcb_set_intercept(v, cases[i].icpt);
		if (cases[i].pending)
			self_ipi();
		run_if(v, false);
		char name[160];
		snprintf(name, sizeof(name), "%s: exit 0x%03lx", cases[i].name, cases[i].code);
		expect_exit(name, v, cases[i].code);
		snprintf(name, sizeof(name), "%s: right after the %s", cases[i].name, i ? "STGI" : "STI shadow");
		expect_eq(name, v->save.rip, (u64)cases[i].exit);
		if (cases[i].code == SVM_EXIT_INTR) {
			snprintf(name, sizeof(name), "%s: saved RFLAGS.IF = 1", cases[i].name);
			expect_eq(name, v->save.rflags & RFLAGS_IF, RFLAGS_IF);
		}
		report(ipi_hits_l2 == 0 && nmi_hits_l2 == 0, "%s: nothing delivered inside L2", cases[i].name);
		stgi();
		sti_nop_cli();
		report(ipi_hits + nmi_hits == 1, "%s: L1 takes the event after STGI (and STI)", cases[i].name);
	}
	report_skip("T-35 SMI intercept while L2 has GIF = 0",
		    "the emulator has no SMM and may ignore SMIs (§6.6); no SMI source here");
}

/* ---- §6.3 V_TPR and CR8 --------------------------------------------------------------------------- */

static volatile u64 g_cr8;
static void guest_cr8(u64 val)
{
	asm volatile("mov %0, %%cr8" : : "r"(val) : "memory");
	u64 v;
	asm volatile("mov %%cr8, %0" : "=r"(v));
	g_cr8 = v;
}

static void test_vtpr(void)
{
	struct vmcb *v = guest(guest_cr8, 5);
	v->control.int_ctl |= V_INTR_MASKING;
	svm_run(v);
	expect_exit("§6.3 V_INTR_MASKING = 1: L2 writes CR8 = 5", v, SVM_EXIT_VMMCALL);
	expect_eq("§6.3 ... L2 reads CR8 back as 5", g_cr8, 5);
	expect_eq("§6.3 ... vmcb12 V_TPR = 5 at the exit (§3.5)", v->control.int_ctl & V_TPR_MASK, 5);
	expect_eq("§6.3 ... L1's TPR is untouched", apic_read(APIC_TPR), 0);
	v = guest(guest_cr8, 3);
	svm_run(v);
	u32 tpr = apic_read(APIC_TPR);
	apic_write(APIC_TPR, 0);
	expect_exit("§6.3 V_INTR_MASKING = 0: L2 writes CR8 = 3", v, SVM_EXIT_VMMCALL);
	expect_eq("§6.3 ... it is L1's real TPR (APIC TPR = 0x30)", tpr, 0x30);
}

void test_main(void)
{
	svm_setup();
	vmcb = vmcb_alloc();
	set_handler(IPI_VECTOR, ipi_handler);
	set_handler(TIMER_VECTOR, timer_handler);
	set_handler(NMI_VECTOR, nmi_handler);
	set_handler(VIRQ_VECTOR, virq_handler);
	set_handler(INJ_VECTOR, inj_handler);
	set_handler(SOFT_VECTOR, soft_handler);
	start_ap();
	printf("  second CPU for T-18/T-23: %s\n", have_ap ? "running" : "none");

	test_injection();
	test_pending();
	test_timer();
	test_nmi();
	test_vnmi();
	test_virq();
	test_reg_corruption();
	test_vgif();
	test_mix();
	test_vtpr();
	test_init();
}
