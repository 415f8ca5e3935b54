/*
 * smp: bringing up a second CPU the PC way. The CPU count comes from fw_cfg; each AP is
 * started with INIT-SIPI-SIPI into the runtime's real-mode trampoline, reaches long mode on
 * its own, reports what it sees and increments a shared counter with a locked add. An AP
 * then takes a fixed IPI from the BSP. With a single CPU (QEMU without -smp) there is
 * nothing to start, and the test says so.
 */
#include "runtime.h"

#define MAX_CPUS 16
#define AP_IPI_VECTOR 0x60

static volatile u32 started_count;
static volatile u32 ap_apic_id[MAX_CPUS];
static volatile u64 ap_cs[MAX_CPUS], ap_efer[MAX_CPUS], ap_cr3[MAX_CPUS], ap_apic_base[MAX_CPUS];
static volatile u32 ipi_hits[MAX_CPUS];

static void ipi_handler(struct ex_frame *f)
{
	(void)f;
	__atomic_fetch_add(&ipi_hits[apic_id() % MAX_CPUS], 1, __ATOMIC_SEQ_CST);
	apic_eoi();
}

static void ap_main(u32 id)
{
	u32 slot = id % MAX_CPUS;
	ap_apic_id[slot] = id;
	ap_cs[slot] = read_cs();
	ap_efer[slot] = rdmsr(MSR_EFER);
	ap_cr3[slot] = read_cr3();
	ap_apic_base[slot] = rdmsr(MSR_APIC_BASE);
	apic_enable();
	__atomic_fetch_add(&started_count, 1, __ATOMIC_SEQ_CST);
	/* Wait for IPIs: HLT with interrupts on. */
	for (;;)
		asm volatile("sti; hlt; cli" ::: "memory");
}

void test_main(void)
{
	u16 cpus = fwcfg_cpu_count();
	printf("fw_cfg reports %u CPUs\n", cpus);
	if (cpus < 2) {
		report_skip("start an application processor", "one CPU; run with -smp 2");
		return;
	}
	if (cpus > MAX_CPUS)
		cpus = MAX_CPUS;
	apic_enable();
	set_handler(AP_IPI_VECTOR, ipi_handler);
	u32 bsp = apic_id();
	expect_eq("the BSP has APIC ID 0", bsp, 0);

	for (u32 id = 1; id < cpus; id++) {
		char name[64];
		snprintf(name, sizeof(name), "AP %u reaches 64-bit code after INIT-SIPI-SIPI", id);
		report(ap_start(id, ap_main), "%s", name);
	}
	for (u64 i = 0; i < 100000000 && started_count < cpus - 1u; i++)
		pause();
	expect_eq("every AP incremented the shared counter", started_count, cpus - 1u);

	for (u32 id = 1; id < cpus; id++) {
		char name[96];
		snprintf(name, sizeof(name), "AP %u: its APIC ID", id);
		expect_eq(name, ap_apic_id[id], id);
		snprintf(name, sizeof(name), "AP %u: runs in KERNEL_CS64 with EFER.LMA", id);
		report(ap_cs[id] == KERNEL_CS64 && (ap_efer[id] & EFER_LMA), "%s", name);
		snprintf(name, sizeof(name), "AP %u: uses the BSP's page tables (same CR3)", id);
		expect_eq(name, ap_cr3[id], read_cr3());
		snprintf(name, sizeof(name), "AP %u: IA32_APIC_BASE.BSP = 0", id);
		expect_eq(name, ap_apic_base[id] & BIT(8), 0);

		/* A fixed IPI to the AP wakes it from HLT and runs the handler there. */
		apic_icr(id, APIC_ICR_FIXED | AP_IPI_VECTOR);
		for (u64 i = 0; i < 100000000 && !ipi_hits[id]; i++)
			pause();
		snprintf(name, sizeof(name), "AP %u: a fixed IPI from the BSP runs its handler on the AP", id);
		expect_eq(name, ipi_hits[id], 1);
	}
	expect_eq("the BSP did not take the AP's IPI", ipi_hits[bsp], 0);
}
