/*
 * Local APIC in xAPIC mode through its MMIO page at 0xFEE00000 (identity-mapped uncached by
 * boot.S), and masking of the legacy 8259 PICs. The firmware that ran before the multiboot
 * loader left the PICs initialised with the timer on IRQ0 at vector 8; masking them keeps
 * PIT ticks from arriving as fake double faults once a test enables interrupts.
 */
#include "runtime.h"

#define APIC_BASE_ENABLE BIT(11)	/* IA32_APIC_BASE.EN (SDM Vol 3 §11.4.4) */
#define APIC_SVR_ENABLE BIT(8)
#define APIC_SPURIOUS_VECTOR 0xff

static volatile u32 *apic_reg(u32 reg)
{
	return (volatile u32 *)(APIC_DEFAULT_BASE + reg);
}

u32 apic_read(u32 reg) { return *apic_reg(reg); }
void apic_write(u32 reg, u32 v) { *apic_reg(reg) = v; }

void apic_enable(void)
{
	wrmsr(MSR_APIC_BASE, rdmsr(MSR_APIC_BASE) | APIC_BASE_ENABLE);
	apic_write(APIC_SVR, APIC_SVR_ENABLE | APIC_SPURIOUS_VECTOR);
	apic_write(APIC_TPR, 0);
}

void apic_eoi(void) { apic_write(APIC_EOI, 0); }

u32 apic_id(void) { return apic_read(APIC_ID) >> 24; }

void apic_timer_start(u8 vector, u32 count, u32 div, bool periodic)
{
	/*
	 * Divide configuration (SDM Vol 3 §11.5.4 figure 11-10): bits 3,1:0 hold log2(div) - 1,
	 * with 0b1011 meaning divide by 1.
	 */
	u32 enc = 0xb;
	if (div > 1) {
		u32 n = (u32)__builtin_ctz(div) - 1;
		enc = (n & 3) | (n & 4) << 1;
	}
	apic_write(APIC_TIMER_DIV, enc);
	apic_write(APIC_LVT_TIMER, vector | (periodic ? APIC_TIMER_PERIODIC : 0));
	apic_write(APIC_TIMER_INIT, count);
}

void apic_timer_stop(void)
{
	apic_write(APIC_LVT_TIMER, APIC_LVT_MASKED);
	apic_write(APIC_TIMER_INIT, 0);
}

/* IRR and ISR are 8 registers of 32 bits at 16-byte strides (SDM Vol 3 §11.8.4). */
bool apic_irr(u8 v) { return apic_read(APIC_IRR + (v / 32) * 16) >> (v % 32) & 1; }
bool apic_isr(u8 v) { return apic_read(APIC_ISR + (v / 32) * 16) >> (v % 32) & 1; }

void apic_icr(u32 dest, u32 lo)
{
	apic_write(APIC_ICR_HI, dest << 24);
	apic_write(APIC_ICR_LO, lo);
	for (int i = 0; i < 1000000 && (apic_read(APIC_ICR_LO) & APIC_ICR_PENDING); i++)
		pause();
}

void pic_mask_all(void)
{
	outb(0x21, 0xff);
	outb(0xa1, 0xff);
}
