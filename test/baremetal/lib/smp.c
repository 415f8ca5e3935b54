/*
 * Starting application processors: INIT, then two STARTUP IPIs pointing at the trampoline
 * (the "universal start-up algorithm" of SDM Vol 3 §9.4.4.1 and the MP specification), then
 * ap_entry() on the AP in long mode with the BSP's GDT, IDT and page tables. One AP starts at
 * a time, so the trampoline and the stack handover need no locking.
 */
#include "runtime.h"

extern char ap_trampoline_start[], ap_trampoline_end[];
extern u32 ap_gdt_base;
extern u64 ap_stack_top;

static void (*volatile ap_fn)(u32 apic_id);
static volatile u32 ap_started;

__attribute__((noreturn)) void ap_entry(void)
{
	idt_load();
	ap_started = 1;
	ap_fn(apic_id());
	for (;;)
		asm volatile("cli; hlt");
}

bool ap_start(u32 id, void (*fn)(u32 apic_id))
{
	/* The trampoline refers to itself by absolute low addresses: patch, then copy. */
	ap_gdt_base = (u32)(u64)gdt;
	memcpy((void *)AP_TRAMPOLINE, ap_trampoline_start, ap_trampoline_end - ap_trampoline_start);
	ap_stack_top = (u64)alloc_pages_aligned(2) + 4 * PAGE_SIZE;
	ap_fn = fn;
	ap_started = 0;

	apic_icr(id, APIC_ICR_INIT | APIC_ICR_LEVEL | APIC_ICR_ASSERT);
	spin(100000);			/* "10 ms": emulators need no real delay */
	apic_icr(id, APIC_ICR_INIT | APIC_ICR_LEVEL);	/* de-assert, for older APICs */
	for (int i = 0; i < 2; i++) {
		apic_icr(id, APIC_ICR_STARTUP | (AP_TRAMPOLINE >> 12));
		spin(10000);		/* "200 us" */
		if (ap_started)
			break;
	}
	for (u64 i = 0; i < 100000000 && !ap_started; i++)
		pause();
	return ap_started;
}
