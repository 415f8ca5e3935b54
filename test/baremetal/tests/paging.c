/*
 * paging: 4-level translation with 4 KiB, 2 MiB and 1 GiB pages, the page-fault error code
 * (P, W, U, RSVD, I) and CR2 for each kind of violation, CR0.WP, NX, reserved bits, how
 * permissions combine across levels, the Accessed and Dirty bits, and the TLB invalidation
 * rules (INVLPG, CR3 reload, CR4.PGE). Everything happens in a scratch area of the address
 * space far above the identity map, so the runtime's own mappings are never disturbed.
 */
#include "runtime.h"

#define TEST_VA 0x4000000000ull		/* 256 GiB: PML4[0], PDPT[256] */
#define TEST_VA_2M (TEST_VA + 0x40000000ull)	/* PDPT[257] */
#define TEST_VA_1G 0x8000000000ull		/* 512 GiB: PML4[1] */
#define UNMAPPED_VA (TEST_VA + 0x80000000ull)	/* PDPT[258]: never mapped */
#define NX BIT(63)

static u64 page_a, page_b;			/* two data pages with different contents */
static u64 code_page;				/* a page filled with UD2 */
static int maxphy;

/* Accesses through test mappings; the barriers keep page-table reads and writes in order
   around them, since the compiler cannot see that the CPU reads and writes those entries. */
static u64 read_at(u64 va)
{
	barrier();
	u64 v = *(volatile u64 *)va;
	barrier();
	return v;
}

static void write_at(u64 va, u64 v)
{
	barrier();
	*(volatile u64 *)va = v;
	barrier();
}

/* The #PF of the last ASM_TRY: vector, error code, RIP and CR2 in one report line. */
static bool pf_check(const char *name, u64 error_code, u64 cr2, u64 rip)
{
	s64 vec = ex_vector();
	bool ok = vec == PF_VECTOR && last_ex.error_code == error_code && last_ex.cr2 == cr2 &&
		  last_ex.rip == rip;
	if (ok)
		return report(true, "%s", name);
	if (vec < 0)
		return report(false, "%s (no exception; expected #PF error code 0x%lx CR2 0x%lx)", name,
			      error_code, cr2);
	return report(false, "%s (got vector %ld error code 0x%lx CR2 0x%lx RIP 0x%lx; expected #PF "
		      "error code 0x%lx CR2 0x%lx RIP 0x%lx)", name, vec, last_ex.error_code, last_ex.cr2,
		      last_ex.rip, error_code, cr2, rip);
}

/* Data accesses and instruction fetches under ASM_TRY, usable at CPL0 and CPL3. */
static u64 try_read(u64 va)
{
	u64 v = 0;
	TRY("mov (%1), %0", : "+r"(v) : "r"(va) : "memory");
	return ex_vector();
}

static u64 try_write(u64 va)
{
	TRY("movq $0x5a5a, (%0)", : : "r"(va) : "memory");
	return ex_vector();
}

static u64 try_fetch(u64 va)
{
	/* The fault is reported at the target, so the caller checks RIP == va. */
	TRY("jmp *%0", : : "r"(va) : "memory");
	return ex_vector();
}

static void set_pte(u64 va, u64 value)
{
	*pte_4k(va) = value;
	invlpg((void *)va);
}

static void test_translation(void)
{
	set_pte(TEST_VA, page_a | PTE_P | PTE_W);
	expect_eq("4 KiB page: read through the mapping", read_at(TEST_VA + 8), 0xaaaa0001);
	set_pte(TEST_VA, page_b | PTE_P | PTE_W);
	expect_eq("4 KiB page: remapped and INVLPG'd, reads the new page", read_at(TEST_VA + 8), 0xbbbb0001);
	write_at(TEST_VA + 16, 0x1234);
	expect_eq("4 KiB page: a write lands in the physical page", read_at(page_b + 16), 0x1234);

	/* A 2 MiB page (SDM Vol 3 §4.5.4, PDE with PS = 1) over 2 MiB-aligned RAM. */
	u64 big = (u64)alloc_pages_aligned(9);
	write_at(big + 0x1ff008, 0xc0ffee);
	map_page(TEST_VA_2M, big, PTE_P | PTE_W, 2);
	expect_eq("2 MiB page: read at offset 0x1FF008", read_at(TEST_VA_2M + 0x1ff008), 0xc0ffee);
	int level;
	pte_lookup(TEST_VA_2M + 0x1ff008, &level);
	expect_eq("2 MiB page: the walk ends at the PDE", level, 2);

	/* 1 GiB pages exist when CPUID 8000_0001h EDX bit 26 (Page1GB) is set. */
	if (!(cpuid(0x80000001, 0).d & BIT(26))) {
		report_skip("1 GiB page", "CPUID 8000_0001h EDX.Page1GB = 0");
		return;
	}
	static volatile u64 marker = 0x1616161616ull;
	map_page(TEST_VA_1G, 0, PTE_P | PTE_W, 3);
	expect_eq("1 GiB page: maps physical 0-1 GiB (reads a kernel variable)",
		  read_at(TEST_VA_1G + (u64)&marker), marker);
	u64 *pdpte = pte_lookup(TEST_VA_1G, &level);
	expect_eq("1 GiB page: the walk ends at the PDPTE", level, 3);
	report(*pdpte & PTE_A, "1 GiB page: the access set A in the PDPTE");
}

static void test_not_present_and_write_protect(void)
{
	/* SDM Vol 3 §4.7: P = 0 for a not-present page, W for a write, U for CPL3, I for fetch. */
	set_pte(TEST_VA, page_a);	/* P = 0 */
	try_read(TEST_VA + 0x123);
	pf_check("read of a not-present page: #PF error code 0, CR2 = address", 0, TEST_VA + 0x123, ex_site);
	try_write(TEST_VA + 0x456);
	pf_check("write to a not-present page: #PF error code W", PFERR_W, TEST_VA + 0x456, ex_site);
	try_read(UNMAPPED_VA);
	pf_check("read where a PDPTE is not present: #PF error code 0", 0, UNMAPPED_VA, ex_site);

	/* SDM Vol 3 §4.10.4.3: a not-present entry is never cached, so P 0 -> 1 needs no INVLPG. */
	*pte_4k(TEST_VA) = page_a | PTE_P;
	try_read(TEST_VA + 8);
	ex_check_none("P 0 -> 1 without INVLPG: the next read succeeds");

	/* Read-only page at CPL0: a write faults only with CR0.WP = 1 (SDM Vol 3 §4.6.1). */
	set_pte(TEST_VA, page_a | PTE_P);
	try_write(TEST_VA + 0x10);
	pf_check("CPL0 write to a read-only page with WP=1: #PF error code P|W", PFERR_P | PFERR_W,
		 TEST_VA + 0x10, ex_site);
	write_cr0(read_cr0() & ~(u64)CR0_WP);
	try_write(TEST_VA + 0x10);
	ex_check_none("CPL0 write to a read-only page with WP=0: no fault");
	write_cr0(read_cr0() | CR0_WP);
	expect_eq("the WP=0 write reached memory", read_at(page_a + 0x10), 0x5a5a);
	report(*pte_4k(TEST_VA) & PTE_D, "the WP=0 write set D in the read-only PTE");

	/* Permissions combine across levels: R/W = 0 in the PDE protects a writable PTE. */
	set_pte(TEST_VA, page_a | PTE_P | PTE_W);
	u64 *pde = pte_get(TEST_VA, 2, false);
	*pde &= ~(u64)PTE_W;
	invlpg((void *)TEST_VA);
	try_write(TEST_VA + 0x18);
	pf_check("CPL0 write through a read-only PDE (WP=1): #PF error code P|W", PFERR_P | PFERR_W,
		 TEST_VA + 0x18, ex_site);
	*pde |= PTE_W;
	invlpg((void *)TEST_VA);
}

/* User-mode probes: run at CPL3 through user_run(); they return the vector caught or -1. */
static u64 user_read(u64 va) { return try_read(va); }
static u64 user_write(u64 va) { return try_write(va); }
static u64 user_fetch(u64 va) { return try_fetch(va); }

static void test_user_supervisor(void)
{
	/* SDM Vol 3 §4.6.1: CPL3 may not access a page with U/S = 0 at any level. */
	set_pte(TEST_VA, page_a | PTE_P | PTE_W);	/* supervisor page */
	user_run(user_read, TEST_VA + 0x20, 0);
	pf_check("CPL3 read of a supervisor page: #PF error code P|U", PFERR_P | PFERR_U, TEST_VA + 0x20,
		 ex_site);
	user_run(user_write, TEST_VA + 0x28, 0);
	pf_check("CPL3 write to a supervisor page: #PF error code P|W|U", PFERR_P | PFERR_W | PFERR_U,
		 TEST_VA + 0x28, ex_site);
	set_pte(TEST_VA, code_page | PTE_P);
	user_run(user_fetch, TEST_VA, 0);
	pf_check("CPL3 fetch from a supervisor page: #PF error code P|U|I", PFERR_P | PFERR_U | PFERR_I,
		 TEST_VA, TEST_VA);

	set_pte(TEST_VA, page_a | PTE_U);		/* user page, not present */
	user_run(user_read, TEST_VA + 0x30, 0);
	pf_check("CPL3 read of a not-present page: #PF error code U", PFERR_U, TEST_VA + 0x30, ex_site);

	/* CR0.WP does not matter at CPL3: a read-only user page is never writable there. */
	set_pte(TEST_VA, page_a | PTE_P | PTE_U);
	write_cr0(read_cr0() & ~(u64)CR0_WP);
	user_run(user_write, TEST_VA + 0x38, 0);
	write_cr0(read_cr0() | CR0_WP);
	pf_check("CPL3 write to a read-only user page with WP=0: #PF error code P|W|U",
		 PFERR_P | PFERR_W | PFERR_U, TEST_VA + 0x38, ex_site);
	report(user_run(user_read, TEST_VA + 0x38, 0) == (u64)-1, "CPL3 read of a read-only user page works");

	/* U/S = 0 in the PDE makes the user PTE below it supervisor-only. */
	set_pte(TEST_VA, page_a | PTE_P | PTE_W | PTE_U);
	u64 *pde = pte_get(TEST_VA, 2, false);
	*pde &= ~(u64)PTE_U;
	invlpg((void *)TEST_VA);
	user_run(user_read, TEST_VA + 0x40, 0);
	pf_check("CPL3 read through a supervisor PDE: #PF error code P|U", PFERR_P | PFERR_U,
		 TEST_VA + 0x40, ex_site);
	*pde |= PTE_U;
	invlpg((void *)TEST_VA);
	report(try_read(TEST_VA + 0x40) == (u64)-1, "CPL0 read of a user page works (no SMAP)");
}

/*
 * SDM Vol 3 §4.7: "bit 3 of the error code can be set only if bit 0 is also set" (reserved
 * bits are checked only in present entries). QEMU 7.2 reports RSVD without P.
 */
#define QEMU_RSVD_WITHOUT_P "TCG's reserved-bit #PF error code lacks P"

static void test_nx(void)
{
	if (!(rdmsr(MSR_EFER) & EFER_NXE)) {
		report_skip("NX checks", "EFER.NXE could not be set (CPUID 8000_0001h EDX.NX = 0)");
		return;
	}
	/* SDM Vol 3 §4.6.2 and §4.7: a fetch from an XD page faults with I = 1. */
	set_pte(TEST_VA, code_page | PTE_P | NX);
	try_fetch(TEST_VA);
	pf_check("fetch from an NX page: #PF error code P|I, RIP = CR2 = target", PFERR_P | PFERR_I,
		 TEST_VA, TEST_VA);
	report(try_read(TEST_VA) == (u64)-1, "data read from an NX page works");
	set_pte(TEST_VA, code_page | PTE_P);
	try_fetch(TEST_VA);
	ex_check("fetch from an executable page runs its code (UD2 there)", UD_VECTOR, 0, TEST_VA);

	set_pte(TEST_VA, code_page);
	try_fetch(TEST_VA);
	pf_check("fetch from a not-present page: #PF error code I", PFERR_I, TEST_VA, TEST_VA);

	/* XD in the PDE applies to every page below it. */
	set_pte(TEST_VA, code_page | PTE_P);
	u64 *pde = pte_get(TEST_VA, 2, false);
	*pde |= NX;
	invlpg((void *)TEST_VA);
	try_fetch(TEST_VA);
	pf_check("fetch through an NX PDE: #PF error code P|I", PFERR_P | PFERR_I, TEST_VA, TEST_VA);
	*pde &= ~NX;
	invlpg((void *)TEST_VA);

	/*
	 * An instruction that starts on an executable page and continues on a not-present one
	 * faults on the second page: CR2 = its first byte, RIP = the instruction.
	 */
	u64 second = TEST_VA + PAGE_SIZE;
	set_pte(second, page_b);
	u8 *code = (u8 *)code_page;
	code[PAGE_SIZE - 2] = 0x48;	/* movabs $imm64, %rax: 10 bytes, 8 of them on the next page */
	code[PAGE_SIZE - 1] = 0xb8;
	try_fetch(TEST_VA + PAGE_SIZE - 2);
	pf_check("instruction crossing into a not-present page: #PF error code I, CR2 = next page",
		 PFERR_I, second, TEST_VA + PAGE_SIZE - 2);
	code[PAGE_SIZE - 2] = 0x0f;
	code[PAGE_SIZE - 1] = 0x0b;

	/* With EFER.NXE = 0, bit 63 is reserved (SDM Vol 3 §4.5, table 4-20 note). */
	set_pte(TEST_VA, page_a | PTE_P | NX);
	wrmsr(MSR_EFER, rdmsr(MSR_EFER) & ~(u64)EFER_NXE);
	try_read(TEST_VA + 0x48);
	wrmsr(MSR_EFER, rdmsr(MSR_EFER) | EFER_NXE);
	qemu_deviation(QEMU_RSVD_WITHOUT_P);
	pf_check("read of a page with XD set while EFER.NXE=0: #PF error code P|RSVD",
		 PFERR_P | PFERR_RSVD, TEST_VA + 0x48, ex_site);
}

static void test_reserved_bits(void)
{
	/* SDM Vol 3 §4.5: bits MAXPHYADDR..51 of an entry are reserved; RSVD with P in the error code. */
	if (maxphy >= 52) {
		report_skip("reserved address bits", "MAXPHYADDR is 52");
		return;
	}
	set_pte(TEST_VA, page_a | PTE_P | PTE_W | BIT(maxphy));
	try_read(TEST_VA + 0x50);
	qemu_deviation(QEMU_RSVD_WITHOUT_P);
	pf_check("read via a PTE with a reserved address bit: #PF error code P|RSVD", PFERR_P | PFERR_RSVD,
		 TEST_VA + 0x50, ex_site);
	try_write(TEST_VA + 0x58);
	qemu_deviation(QEMU_RSVD_WITHOUT_P);
	pf_check("write via a PTE with a reserved address bit: #PF error code P|W|RSVD",
		 PFERR_P | PFERR_W | PFERR_RSVD, TEST_VA + 0x58, ex_site);
	set_pte(TEST_VA, code_page | PTE_P | BIT(maxphy));
	try_fetch(TEST_VA);
	qemu_deviation(QEMU_RSVD_WITHOUT_P);
	pf_check("fetch via a PTE with a reserved address bit: #PF error code P|RSVD|I",
		 PFERR_P | PFERR_RSVD | PFERR_I, TEST_VA, TEST_VA);
	set_pte(TEST_VA, page_a | PTE_P | PTE_W);

	/* Bits 20:13 of a 2 MiB PDE are reserved (SDM Vol 3 §4.5 table 4-18). */
	u64 *pde = pte_lookup(TEST_VA_2M, &(int){ 0 });
	u64 saved = *pde;
	*pde |= BIT(13);
	invlpg((void *)TEST_VA_2M);
	try_read(TEST_VA_2M + 0x60);
	qemu_deviation(QEMU_RSVD_WITHOUT_P);
	pf_check("read via a 2 MiB PDE with reserved bit 13: #PF error code P|RSVD", PFERR_P | PFERR_RSVD,
		 TEST_VA_2M + 0x60, ex_site);
	*pde = saved;
	invlpg((void *)TEST_VA_2M);

	/* A reserved bit in a not-present entry does not matter: P = 0 wins (error code 0). */
	set_pte(TEST_VA, page_a | BIT(maxphy));
	try_read(TEST_VA + 0x68);
	pf_check("not-present PTE with a reserved bit: #PF error code 0", 0, TEST_VA + 0x68, ex_site);
}

static void test_accessed_dirty(void)
{
	/* SDM Vol 3 §4.8: A is set on any access through an entry, D on a write to the page. */
	set_pte(TEST_VA, page_a | PTE_P | PTE_W);
	u64 *pte = pte_4k(TEST_VA);
	u64 *pde = pte_get(TEST_VA, 2, false);
	u64 *pdpte = pte_get(TEST_VA, 3, false);
	*pde &= ~(u64)PTE_A;
	*pdpte &= ~(u64)PTE_A;
	invlpg((void *)TEST_VA);
	read_at(TEST_VA);
	expect_eq("read: PTE A=1 D=0", *pte & (PTE_A | PTE_D), PTE_A);
	report(*pde & PTE_A, "read: A set in the PDE that points to the page table");
	report(*pdpte & PTE_A, "read: A set in the PDPTE");
	report(!(*pde & PTE_D), "read: the non-leaf PDE gets no D");
	write_at(TEST_VA, 1);
	expect_eq("write after read: PTE A=1 D=1", *pte & (PTE_A | PTE_D), PTE_A | PTE_D);

	set_pte(TEST_VA, page_a | PTE_P | PTE_W);
	write_at(TEST_VA, 2);
	expect_eq("write first: PTE A=1 D=1", *pte & (PTE_A | PTE_D), PTE_A | PTE_D);

	/* A fault sets neither bit in the leaf entry. */
	set_pte(TEST_VA, page_a | PTE_P);
	try_write(TEST_VA);
	ex_vector();
	expect_eq("write fault on a read-only page leaves D clear", *pte & PTE_D, 0);

	/* The leaf of a 2 MiB page is the PDE: A and D are set there. */
	u64 *pde2m = pte_lookup(TEST_VA_2M, &(int){ 0 });
	*pde2m &= ~(u64)(PTE_A | PTE_D);
	invlpg((void *)TEST_VA_2M);
	read_at(TEST_VA_2M + 0x100000);
	expect_eq("2 MiB page read: PDE A=1 D=0", *pde2m & (PTE_A | PTE_D), PTE_A);
	write_at(TEST_VA_2M + 0x100000, 3);
	expect_eq("2 MiB page write: PDE A=1 D=1", *pde2m & (PTE_A | PTE_D), PTE_A | PTE_D);
}

static void test_tlb(void)
{
	/* SDM Vol 3 §4.10.4.1: INVLPG and MOV to CR3 invalidate non-global translations. */
	set_pte(TEST_VA, page_a | PTE_P | PTE_W);
	read_at(TEST_VA + 8);
	*pte_4k(TEST_VA) = page_b | PTE_P | PTE_W;
	invlpg((void *)TEST_VA);
	expect_eq("INVLPG makes a changed PTE visible", read_at(TEST_VA + 8), 0xbbbb0001);

	*pte_4k(TEST_VA) = page_a | PTE_P | PTE_W;
	write_cr3(read_cr3());
	expect_eq("CR3 reload makes a changed PTE visible", read_at(TEST_VA + 8), 0xaaaa0001);

	/* Global pages survive CR3 loads but not a change of CR4.PGE. */
	if (!(cpuid(1, 0).d & BIT(13))) {
		report_skip("global pages", "CPUID 1 EDX.PGE = 0");
		return;
	}
	u64 cr4 = read_cr4();
	write_cr4(cr4 | CR4_PGE);
	set_pte(TEST_VA, page_b | PTE_P | PTE_W | PTE_G);
	expect_eq("global page: read through it", read_at(TEST_VA + 8), 0xbbbb0001);
	*pte_4k(TEST_VA) = page_a | PTE_P | PTE_W | PTE_G;
	write_cr4(cr4 & ~(u64)CR4_PGE);
	expect_eq("clearing CR4.PGE flushes global translations", read_at(TEST_VA + 8), 0xaaaa0001);
	write_cr4(cr4);
	set_pte(TEST_VA, page_a | PTE_P | PTE_W);
}

void test_main(void)
{
	maxphy = max_phys_addr_bits();
	printf("MAXPHYADDR %d, EFER 0x%lx\n", maxphy, rdmsr(MSR_EFER));
	page_a = (u64)alloc_page();
	page_b = (u64)alloc_page();
	code_page = (u64)alloc_page();
	write_at(page_a + 8, 0xaaaa0001);
	write_at(page_b + 8, 0xbbbb0001);
	for (u64 i = 0; i < PAGE_SIZE; i += 2)
		*(volatile u16 *)(code_page + i) = 0x0b0f;	/* ud2 */

	test_translation();
	test_not_present_and_write_protect();
	test_user_supervisor();
	test_nx();
	test_reserved_bits();
	test_accessed_dirty();
	test_tlb();
}
