/*
 * svm_npt: nested paging (../shared/spec/svm.md §7): the nested page faults of §7.4 with their
 * EXITINFO1/EXITINFO2 (T-38: not present, NX, U/S, R/W on data, on L2's own page-table walk and
 * on L1's APIC page, reserved bits at every level), identity-mapped MMIO, accessed/dirty bits
 * in nested entries, a nested fault while an injected event is delivered (§7.5), and G_PAT
 * (§7.6).
 *
 * The baseline nested tables map 0-4 GiB 1:1 with 2 MiB pages (svm.h); each case changes one
 * entry (splitting to 4 KiB where needed) and npt_reset() restores the map afterwards.
 */
#include "svm.h"

#define GPAT_L2 0x0006040600060406ull		/* valid types, different from the reset PAT */
#define PAT_WRITE 0x0007040600050406ull

static struct vmcb *vmcb;
static u64 nxe_or_smep;			/* NPF_ID when L1 has EFER.NXE or CR4.SMEP (§7.4) */
static int maxphy;

static struct vmcb *guest(void (*fn)(u64), u64 arg)
{
	npt_reset();
	vmcb_init_guest(vmcb, fn, arg);
	return vmcb;
}

/* One NPF check: exit 0x400 with EXITINFO1 and EXITINFO2. */
static void expect_npf(const char *id, struct vmcb *v, u64 info1, u64 info2)
{
	char name[160];
	snprintf(name, sizeof(name), "%s: exit 0x400", id);
	if (!expect_exit(name, v, SVM_EXIT_NPF))
		return;
	snprintf(name, sizeof(name), "%s: EXITINFO1 (§7.4)", id);
	if (info1 & NPF_RSVD)
		qemu_deviation("QEMU 7.2 reports reserved-bit nested faults without the P bit");
	expect_eq(name, v->control.exit_info_1, info1);
	snprintf(name, sizeof(name), "%s: EXITINFO2 = the GPA", id);
	expect_eq(name, v->control.exit_info_2, info2);
}

static volatile u64 g_val;
static void guest_read(u64 gpa) { g_val = *(volatile u32 *)gpa; }
static void guest_write(u64 gpa) { *(volatile u32 *)gpa = 0; }

/* A code page of its own, in a 2 MiB region of its own, holding "VMMCALL; JMP back". */
static u64 code_page;
static void make_code_page(void)
{
	code_page = (u64)alloc_pages_aligned(9);
	static const u8 stub[] = { 0x0f, 0x01, 0xd9, 0xeb, 0xfb };	/* vmmcall; jmp -5 */
	memcpy((void *)code_page, stub, sizeof(stub));
}

static struct vmcb *code_guest(void)
{
	struct vmcb *v = guest(guest_read, 0);
	v->save.rip = code_page;
	return v;
}

static void test_faults(void)
{
	u64 data = (u64)alloc_page();
	struct vmcb *v;

	/* npt_np */
	v = guest(guest_read, data);
	*npt_entry(data, 1) &= ~(u64)PTE_P;
	svm_run(v);
	expect_npf("T-38 npt_np: nested PTE of a data page not present, L2 reads it", v, NPF_GPA | NPF_US, data);

	/* npt_nx: NX in the nested PTE of L2's code page; L1 EFER.NXE = 1, L2 EFER.NXE = 0. */
	if (rdmsr(MSR_EFER) & EFER_NXE) {
		v = code_guest();
		v->save.efer &= ~(u64)EFER_NXE;
		*npt_entry(code_page, 1) |= BIT(63);
		svm_run(v);
		expect_npf("T-38 npt_nx: NX in the nested PTE of L2's code page (L2 EFER.NXE = 0)", v,
			   NPF_GPA | NPF_ID | NPF_US | NPF_P, code_page);
	} else {
		report_skip("T-38 npt_nx", "L1 has no EFER.NXE");
	}

	/* npt_us: all nested accesses are user accesses. */
	v = guest(guest_read, data);
	*npt_entry(data, 1) &= ~(u64)PTE_U;
	svm_run(v);
	expect_npf("T-38 npt_us: U/S = 0 in the nested PTE, L2 reads", v, NPF_GPA | NPF_US | NPF_P, data);

	/* npt_rw */
	v = guest(guest_write, 0x80000);
	*npt_entry(0x80000, 1) &= ~(u64)PTE_W;
	svm_run(v);
	expect_npf("T-38 npt_rw: R/W = 0 in the nested PTE of GPA 0x80000, L2 writes", v,
		   NPF_GPA | NPF_US | NPF_RW | NPF_P, 0x80000);

	/* npt_rw_pfwalk: L2's walk of its own PML4 is a write for the nested check (§7.2). */
	u64 *pml4 = alloc_page();
	memcpy(pml4, (void *)(read_cr3() & ~0xfffull), PAGE_SIZE);
	v = guest(guest_read, data);
	v->save.cr3 = (u64)pml4;
	*npt_entry((u64)pml4, 1) &= ~(u64)PTE_W;
	svm_run(v);
	expect_npf("T-38 npt_rw_pfwalk: R/W = 0 in the nested PTE of L2's PML4 page", v,
		   NPF_GPT | NPF_US | NPF_RW | NPF_P, (u64)pml4);

	/* npt_rw_l1mmio: L1's APIC page read-only in the nested map; L2 writes the TPR. */
	v = guest(guest_write, APIC_DEFAULT_BASE + APIC_TPR);
	*npt_entry(APIC_DEFAULT_BASE, 1) &= ~(u64)PTE_W;
	svm_run(v);
	expect_npf("T-38 npt_rw_l1mmio: R/W = 0 on the nested PTE of the APIC page, L2 writes the APIC", v,
		   NPF_GPA | NPF_US | NPF_RW | NPF_P, APIC_DEFAULT_BASE + APIC_TPR);

	/* npt_l1mmio: the identity map reaches L1's APIC. */
	v = guest(guest_read, APIC_DEFAULT_BASE + APIC_VERSION);
	g_val = 0;
	svm_run(v);
	expect_exit("T-38 npt_l1mmio: identity nested map of the APIC, L2 reads the version register: no exit", v,
		    SVM_EXIT_VMMCALL);
	expect_eq("T-38 npt_l1mmio ... L2 reads L1's APIC version", (u32)g_val, apic_read(APIC_VERSION));

	/* Reserved bits: in the leaf PTE and in a 2 MiB PDE of the code page (final GPA, bit 32). */
	if (maxphy < 52) {
		v = code_guest();
		*npt_entry(code_page, 1) |= BIT(maxphy);
		svm_run(v);
		expect_npf("T-38 rsvd: nested PTE of the code page with bit MAXPHYADDR set", v,
			   NPF_GPA | NPF_RSVD | NPF_US | NPF_P | nxe_or_smep, code_page);
	} else {
		report_skip("T-38 rsvd: nested PTE above MAXPHYADDR", "MAXPHYADDR = 52");
	}
	v = code_guest();
	*npt_entry(code_page, 2) |= BIT(13);	/* a 2 MiB leaf: bits 20:13 are reserved */
	svm_run(v);
	expect_npf("T-38 rsvd: nested 2 MiB PDE of the code page with bit 13 set", v,
		   NPF_GPA | NPF_RSVD | NPF_US | NPF_P | nxe_or_smep, code_page);
	if (maxphy < 52) {
		/* Reserved bits high in the walk: L2's first page-table access meets them (bit 33). */
		v = code_guest();
		v->save.cr3 = (u64)pml4;
		*npt_entry(0, 3) |= BIT(maxphy);
		svm_run(v);
		expect_npf("T-38 rsvd: nested PDPE 0 with bit MAXPHYADDR set", v,
			   NPF_GPT | NPF_RSVD | NPF_US | NPF_RW | NPF_P, (u64)pml4);
		v = code_guest();
		v->save.cr3 = (u64)pml4;
		*npt_entry(0, 4) |= BIT(maxphy);
		svm_run(v);
		expect_npf("T-38 rsvd: nested PML4E 0 with bit MAXPHYADDR set", v,
			   NPF_GPT | NPF_RSVD | NPF_US | NPF_RW | NPF_P, (u64)pml4);
	}
	if (svm_has(BIT(17)))
		report_skip("T-38 GMET cases", "GMET is optional and not covered here");
	else
		report_skip("T-38 GMET cases", "GMET not advertised");
	npt_reset();
}

/* §7.2: the nested walker sets A and D in the nested entries it uses. */
static void test_accessed_dirty(void)
{
	u64 data = (u64)alloc_page();
	struct vmcb *v = guest(guest_write, data);
	u64 *pte = npt_entry(data, 1);
	*pte &= ~(u64)(PTE_A | PTE_D);
	svm_run(v);
	expect_exit("§7.2 L2 writes a page whose nested PTE has A = D = 0", v, SVM_EXIT_VMMCALL);
	expect_eq("§7.2 ... the nested walk set A and D", *pte & (PTE_A | PTE_D), PTE_A | PTE_D);
	npt_reset();
}

/* §7.5 / §6.7: a nested fault while delivering an injected event records it in EXITINTINFO. */
#define INJ_VECTOR 0xd2
static void test_fault_in_delivery(void)
{
	struct { u16 limit; u64 base; } __attribute__((packed)) idtr;
	sidt(&idtr);
	u8 *idt = alloc_page();
	memcpy(idt, (void *)idtr.base, PAGE_SIZE);
	struct vmcb *v = guest(guest_read, 0);
	v->save.idtr.base = (u64)idt;
	v->control.event_inj = EVTINJ_VALID | EVTINJ_TYPE_INTR | INJ_VECTOR;
	*npt_entry((u64)idt, 1) &= ~(u64)PTE_P;
	svm_run(v);
	expect_npf("§7.5 injected INTR 0xD2 with L2's IDT page not present in the nested map", v, NPF_GPA | NPF_US,
		   (u64)idt + INJ_VECTOR * 16);
	expect_eq("§7.5 ... EXITINTINFO = the injected event", v->control.exit_int_info,
		  EVTINJ_VALID | EVTINJ_TYPE_INTR | INJ_VECTOR);
	npt_reset();
}

/* §7.6 G_PAT: L2's PAT with NP, L1's PAT untouched; without NP the PAT is shared. */
static volatile u64 g_pat_read;
static void guest_pat(u64 write)
{
	g_pat_read = rdmsr(MSR_PAT);
	wrmsr(MSR_PAT, write);
}

static void test_gpat(void)
{
	u64 pat = rdmsr(MSR_PAT);
	struct vmcb *v = guest(guest_pat, PAT_WRITE);
	v->save.g_pat = GPAT_L2;
	svm_run(v);
	u64 l1 = rdmsr(MSR_PAT);
	wrmsr(MSR_PAT, pat);
	expect_exit("§7.6 NP with G_PAT: L2 reads and writes IA32_PAT", v, SVM_EXIT_VMMCALL);
	qemu_deviation("QEMU 7.2 does not implement G_PAT (L2 uses L1's PAT)");
	expect_eq("§7.6 ... L2 reads G_PAT", g_pat_read, GPAT_L2);
	qemu_deviation("QEMU 7.2 does not implement G_PAT (L2 uses L1's PAT)");
	expect_eq("§7.6 ... #VMEXIT stores L2's PAT in G_PAT", v->save.g_pat, PAT_WRITE);
	qemu_deviation("QEMU 7.2 does not implement G_PAT (L2 uses L1's PAT)");
	expect_eq("§7.6 ... L1's PAT is untouched", l1, pat);

	v = guest(guest_pat, PAT_WRITE);
	v->control.misc_ctl = 0;
	v->save.g_pat = GPAT_L2;
	svm_run(v);
	l1 = rdmsr(MSR_PAT);
	wrmsr(MSR_PAT, pat);
	expect_exit("§7.6 without NP: L2 reads and writes IA32_PAT", v, SVM_EXIT_VMMCALL);
	expect_eq("§7.6 ... L2 reads L1's PAT (G_PAT ignored)", g_pat_read, pat);
	expect_eq("§7.6 ... L2's write reached L1's PAT (shared)", l1, PAT_WRITE);
}

void test_main(void)
{
	svm_setup();
	if (!svm_has(SVM_FEAT_NP)) {
		report_skip("T-38 nested paging", "NP not advertised");
		return;
	}
	vmcb = vmcb_alloc();
	maxphy = max_phys_addr_bits();
	nxe_or_smep = ((rdmsr(MSR_EFER) & EFER_NXE) || (read_cr4() & BIT(20))) ? NPF_ID : 0;
	make_code_page();

	test_faults();
	test_accessed_dirty();
	test_fault_in_delivery();
	test_gpat();
}
