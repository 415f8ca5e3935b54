/*
 * apic: the local APIC as the source of interrupts. Timer one-shot and periodic modes with
 * the divide configuration, HLT waking on an interrupt, ISR/IRR and EOI, task-priority
 * masking, priority order of pending vectors, self-IPIs and an NMI through the ICR (delivered
 * on IST1 and regardless of IF), and the one-instruction interrupt shadow of STI.
 */
#include "runtime.h"

#define TIMER_VECTOR 0x40
#define LOW_VECTOR 0x41
#define HIGH_VECTOR 0x51
#define WAIT_LOOPS 50000000ull

static volatile u64 hits, last_rip, isr_in_handler, isr_after_eoi;
static volatile u8 order[8];
static volatile unsigned norder;

static void timer_handler(struct ex_frame *f)
{
	hits++;
	last_rip = f->rip;
	isr_in_handler = apic_isr((u8)f->vector);
	apic_eoi();
	isr_after_eoi = apic_isr((u8)f->vector);
}

static void order_handler(struct ex_frame *f)
{
	if (norder < ARRAY_SIZE(order))
		order[norder++] = (u8)f->vector;
	last_rip = f->rip;
	apic_eoi();
}

/* Interrupts on until `hits` reaches target or the loop gives up; returns whether it did. */
static bool wait_hits(u64 target)
{
	sti();
	for (u64 i = 0; i < WAIT_LOOPS && hits < target; i++)
		pause();
	cli();
	return hits >= target;
}

static void self_ipi(u8 vector)
{
	apic_icr(0, APIC_DEST_SELF | APIC_ICR_FIXED | vector);
}

static void test_registers(void)
{
	u64 base = rdmsr(MSR_APIC_BASE);
	expect_eq("IA32_APIC_BASE: base 0xFEE00000 (SDM Vol 3 §11.4.4)", base & ~0xfffull, APIC_DEFAULT_BASE);
	report(base & BIT(11), "IA32_APIC_BASE: global enable (bit 11) set");
	report(base & BIT(8), "IA32_APIC_BASE: BSP flag (bit 8) set on the boot CPU");
	expect_eq("APIC ID matches CPUID 1 EBX[31:24]", apic_id(), cpuid(1, 0).b >> 24);
	u32 version = apic_read(APIC_VERSION);
	report((version & 0xf0) == 0x10, "APIC version 0x1x: an integrated APIC (SDM Vol 3 §11.4.8)");
	report(((version >> 16) & 0xff) >= 3, "max LVT entry >= 3: timer, LINT0, LINT1 and error at least");
	apic_write(APIC_TIMER_DIV, 0xa);
	expect_eq("timer divide configuration reads back (divide by 128 = 1010b)",
		  apic_read(APIC_TIMER_DIV) & 0xb, 0xa);
	apic_write(APIC_TPR, 0x50);
	expect_eq("TPR reads back", apic_read(APIC_TPR) & 0xff, 0x50);
	expect_eq("PPR = TPR when nothing is in service (SDM Vol 3 §11.8.3.1)", apic_read(APIC_PPR) & 0xf0, 0x50);
	apic_write(APIC_TPR, 0);
}

static void test_timer(void)
{
	set_handler(TIMER_VECTOR, timer_handler);

	/* One-shot (SDM Vol 3 §11.5.4): one interrupt, then the current count stays at 0. */
	hits = 0;
	apic_timer_start(TIMER_VECTOR, 200000, 16, false);
	report(apic_read(APIC_TIMER_CUR) <= 200000, "one-shot: current count starts at most at the initial count");
	report(wait_hits(1), "one-shot: the timer interrupt arrives");
	spin(100000);
	sti();
	spin(100000);
	cli();
	expect_eq("one-shot: exactly one interrupt", hits, 1);
	expect_eq("one-shot: current count stays 0 after it fired", apic_read(APIC_TIMER_CUR), 0);
	expect_eq("handler saw the vector in service (ISR bit set)", isr_in_handler, 1);
	expect_eq("EOI clears the ISR bit", isr_after_eoi, 0);

	/* HLT with IF = 1 waits for the interrupt; the handler returns after the HLT. */
	hits = 0;
	u64 after_hlt;
	apic_timer_start(TIMER_VECTOR, 100000, 1, false);
	asm volatile("lea 1f(%%rip), %0\n\t"
		     "sti\n\t"
		     "hlt\n"
		     "1: cli"
		     : "=&r"(after_hlt) : : "memory");
	expect_eq("HLT wakes on the timer interrupt", hits, 1);
	expect_eq("the interrupt's RIP is the instruction after HLT", last_rip, after_hlt);

	/* Periodic: the count reloads and interrupts keep coming. */
	hits = 0;
	apic_timer_start(TIMER_VECTOR, 100000, 2, true);
	report(wait_hits(5), "periodic: five interrupts arrive");
	report(apic_read(APIC_TIMER_CUR) != 0, "periodic: the current count has been reloaded");
	apic_timer_stop();
	/* An interrupt that fired after the last wait is still pending in the IRR: let it in. */
	sti();
	spin(10000);
	cli();
	u64 n = hits;
	sti();
	spin(200000);
	cli();
	expect_eq("stopping the timer (initial count 0, masked) stops the interrupts", hits, n);

	/* A masked LVT entry counts down without interrupting (SDM Vol 3 §11.5.1). */
	hits = 0;
	apic_write(APIC_TIMER_DIV, 0xb);		/* divide by 1 */
	apic_write(APIC_LVT_TIMER, APIC_LVT_MASKED | TIMER_VECTOR);
	apic_write(APIC_TIMER_INIT, 100000);
	sti();
	for (u64 i = 0; i < WAIT_LOOPS && apic_read(APIC_TIMER_CUR); i++)
		pause();
	spin(10000);
	cli();
	expect_eq("masked timer: counts down to 0", apic_read(APIC_TIMER_CUR), 0);
	expect_eq("masked timer: no interrupt", hits, 0);
	report(!apic_irr(TIMER_VECTOR), "masked timer: nothing pending in the IRR");
	apic_timer_stop();
}

static void test_tpr(void)
{
	/*
	 * SDM Vol 3 §11.8.3: a fixed interrupt is delivered only if its priority class
	 * (vector[7:4]) is above PPR[7:4]; with TPR = 0x50 vector 0x40 stays pending in the IRR.
	 */
	hits = 0;
	apic_write(APIC_TPR, 0x50);
	apic_timer_start(TIMER_VECTOR, 10000, 1, false);
	sti();
	for (u64 i = 0; i < WAIT_LOOPS && apic_read(APIC_TIMER_CUR); i++)
		pause();
	spin(100000);
	cli();
	expect_eq("TPR 0x50 blocks vector 0x40", hits, 0);
	report(apic_irr(TIMER_VECTOR), "the blocked vector is pending in the IRR");
	apic_write(APIC_TPR, 0x30);
	report(wait_hits(1), "lowering TPR to 0x30 delivers the pending vector 0x40");
	report(!apic_irr(TIMER_VECTOR), "IRR bit cleared once delivered");
	apic_write(APIC_TPR, 0);
	apic_timer_stop();
	set_handler(TIMER_VECTOR, NULL);
}

static void test_priority_and_shadow(void)
{
	set_handler(LOW_VECTOR, order_handler);
	set_handler(HIGH_VECTOR, order_handler);

	/* Self-IPIs with IF = 0 stay pending; STI delivers the higher vector first. */
	norder = 0;
	self_ipi(LOW_VECTOR);
	self_ipi(HIGH_VECTOR);
	report(apic_irr(LOW_VECTOR) && apic_irr(HIGH_VECTOR), "self-IPIs with IF=0 are pending in the IRR");
	sti();
	spin(10000);
	cli();
	expect_eq("two self-IPIs delivered", norder, 2);
	expect_eq("the higher-priority vector 0x51 comes first (SDM Vol 3 §11.8.3)", order[0], HIGH_VECTOR);
	expect_eq("then vector 0x41", order[1], LOW_VECTOR);

	/*
	 * STI shadow (SDM Vol 2 STI, Vol 3 §7.8.3): with an interrupt pending, it is taken after
	 * the instruction that follows STI, not before it.
	 */
	norder = 0;
	self_ipi(LOW_VECTOR);
	u64 second;
	asm volatile("lea 1f(%%rip), %0\n\t"
		     "sti\n\t"
		     "nop\n"
		     "1: nop\n\t"
		     "cli"
		     : "=&r"(second) : : "memory");
	expect_eq("pending interrupt after STI; NOP: taken after the NOP", last_rip, second);

	/* The same for STI; HLT: the CPU halts, then wakes at once; RIP is after the HLT. */
	norder = 0;
	self_ipi(LOW_VECTOR);
	u64 after;
	asm volatile("lea 1f(%%rip), %0\n\t"
		     "sti\n\t"
		     "hlt\n"
		     "1: cli"
		     : "=&r"(after) : : "memory");
	expect_eq("pending interrupt at STI; HLT: delivered once", norder, 1);
	expect_eq("pending interrupt at STI; HLT: RIP after the HLT", last_rip, after);

	set_handler(LOW_VECTOR, NULL);
	set_handler(HIGH_VECTOR, NULL);
}

static volatile u64 nmi_hits, nmi_frame_top, nmi_rflags;

static void nmi_handler(struct ex_frame *f)
{
	nmi_hits++;
	nmi_frame_top = (u64)&f->ss + 8;
	nmi_rflags = f->rflags;
}

static void test_nmi(void)
{
	/* An NMI IPI to our own APIC ID (the Self shorthand allows only fixed delivery). */
	set_handler(NMI_VECTOR, nmi_handler);
	apic_icr(apic_id(), APIC_ICR_NMI);
	spin(10000);
	set_handler(NMI_VECTOR, NULL);
	expect_eq("NMI via ICR is delivered with IF=0", nmi_hits, 1);
	expect_eq("NMI runs on IST1 (frame ends at TSS.IST1)", nmi_frame_top, tss.ist[0]);
	expect_eq("interrupted context had IF=0", nmi_rflags & RFLAGS_IF, 0);
}

void test_main(void)
{
	apic_enable();
	test_registers();
	test_timer();
	test_tpr();
	test_priority_and_shadow();
	test_nmi();
}
