/*
 * modes: switching between the x86 operating modes from a running 64-bit kernel, the way
 * firmware and hypervisors do: 64-bit -> compatibility mode -> 64-bit by far CALL/RET, and
 * 64-bit -> compatibility -> legacy protected mode (paging off, then 32-bit and PAE paging)
 * -> 16-bit protected mode -> real mode -> protected mode -> long mode again. The assembly is in modes.S; this file
 * prepares the real-mode thunk and checks what each mode observed.
 */
#include "runtime.h"
#include "modes.h"

u32 compat_call(u32 x);
void legacy_trip(void);
extern char rm_thunk_start[], rm_thunk_end[], rm_int_handler[];
extern volatile u32 compat_cs, compat_push_size, compat_efer;
extern volatile u32 pm_efer_paging_off, pm_efer_lme_off, pm_cr0, pm_marker, pm_cr0_back;

extern volatile u32 pd32_addr, alias_4m, alias_4k, pdpt_pae_addr, alias_2m;
extern volatile u32 paging32_4m_read, paging32_4k_read, pae_2m_read;

/* Page tables for the legacy paging modes (SDM Vol 3 §4.3 and §4.4). */
static u32 pd32[1024] __attribute__((aligned(4096)));
static u32 pt32[1024] __attribute__((aligned(4096)));
static u64 pdpt_pae[4] __attribute__((aligned(32)));
static u64 pd_pae[512] __attribute__((aligned(4096)));
#define ALIAS_BASE 0x80000000u

static void build_legacy_page_tables(void)
{
	u32 marker = (u32)(u64)&pm_marker;
	/* 32-bit paging: identity with 4 MiB pages; 2 GiB aliases physical 0-4 MiB, and
	   2 GiB + 4 MiB is a 4 KiB page table whose first entry maps the marker's page. */
	for (u32 i = 0; i < 1024; i++)
		pd32[i] = i << 22 | PTE_PS | PTE_W | PTE_P;
	pd32[ALIAS_BASE >> 22] = 0 | PTE_PS | PTE_W | PTE_P;
	pd32[(ALIAS_BASE >> 22) + 1] = (u32)(u64)pt32 | PTE_W | PTE_P;
	pt32[0] = (marker & ~0xfffu) | PTE_W | PTE_P;
	pd32_addr = (u32)(u64)pd32;
	alias_4m = ALIAS_BASE + marker;
	alias_4k = ALIAS_BASE + (4u << 20) + (marker & 0xfff);
	/* PAE: PDPTEs hold only P and the address (other bits reserved, SDM table 4-8); the
	   first GiB identity-mapped with 2 MiB pages and aliased again at 2 GiB. */
	for (u64 i = 0; i < 512; i++)
		pd_pae[i] = i << 21 | PTE_PS | PTE_W | PTE_P;
	pdpt_pae[0] = (u64)pd_pae | PTE_P;
	pdpt_pae[2] = (u64)pd_pae | PTE_P;
	pdpt_pae_addr = (u32)(u64)pdpt_pae;
	alias_2m = ALIAS_BASE + marker;
}

static u32 rd32(u64 addr) { return *(volatile u32 *)addr; }
static u16 rd16(u64 addr) { return *(volatile u16 *)addr; }

static void test_compat(void)
{
	expect_eq("compatibility mode: far call runs 32-bit code and far-returns", compat_call(41), 42);
	expect_eq("compatibility mode: CS = KERNEL_CS32", compat_cs & 0xffff, KERNEL_CS32);
	expect_eq("compatibility mode: PUSH moves ESP by 4", compat_push_size, 4);
	report((compat_efer & (EFER_LME | EFER_LMA)) == (EFER_LME | EFER_LMA),
	       "compatibility mode: EFER.LMA = 1 (still long mode, SDM Vol 3 §10.8.1)");
	expect_eq("back in 64-bit mode: CS = KERNEL_CS64", read_cs(), KERNEL_CS64);
}

static void test_legacy_and_real(void)
{
	size_t size = rm_thunk_end - rm_thunk_start;
	memcpy((void *)REALMODE_BASE, rm_thunk_start, size);
	memset((void *)RM_RESULTS, 0, 0x40);
	*(volatile u16 *)RM_SEG_LINEAR = 0;
	/* IVT entry RM_VECTOR -> 0000:offset of the copied handler (SDM Vol 3 §21.1.4). */
	u64 ivt_addr = RM_VECTOR * 4;
	asm("" : "+r"(ivt_addr));	/* GCC takes addresses below 4 KiB for null-pointer offsets */
	volatile u16 *ivt = (volatile u16 *)ivt_addr;
	u16 saved_ivt[2] = { ivt[0], ivt[1] };
	ivt[0] = (u16)(REALMODE_BASE + (rm_int_handler - rm_thunk_start));
	ivt[1] = 0;

	build_legacy_page_tables();
	legacy_trip();

	ivt[0] = saved_ivt[0];
	ivt[1] = saved_ivt[1];
	report(true, "returned to 64-bit mode after the trip through legacy and real mode");
	expect_eq("CR0.PG = 0 leaves long mode: EFER.LMA = 0, LME still 1 (SDM Vol 3 §10.8.5.4)",
		  pm_efer_paging_off & (EFER_LME | EFER_LMA), EFER_LME);
	expect_eq("EFER.LME can be cleared with paging off", pm_efer_lme_off & EFER_LME, 0);
	expect_eq("legacy protected mode: CR0.PE = 1, CR0.PG = 0", pm_cr0 & (CR0_PE | CR0_PG), CR0_PE);
	expect_eq("legacy protected mode: 32-bit code stored through a flat segment", pm_marker, 0x32323232);
	expect_eq("32-bit paging: a 4 MiB page (CR4.PSE) reads through its alias", paging32_4m_read, 0x32323232);
	expect_eq("32-bit paging: a 4 KiB page reads through its alias", paging32_4k_read, 0x32323232);
	expect_eq("32-bit paging: the 4 MiB PDE got A, not D (SDM Vol 3 §4.8)",
		  pd32[ALIAS_BASE >> 22] & (PTE_A | PTE_D), PTE_A);
	expect_eq("PAE paging outside long mode: a 2 MiB page reads through its alias", pae_2m_read, 0x32323232);
	expect_eq("real mode: CR0.PE = 0", rd32(RM_RES_CR0) & CR0_PE, 0);
	expect_eq("real mode: PUSH moves SP by 2", rd16(RM_RES_PUSH), 2);
	expect_eq("real mode: ES:0x10 with ES = 0x07F0 writes linear 0x7F10", rd16(RM_SEG_LINEAR), 0xbeef);
	expect_eq("real mode: INT 0x30 through the IVT calls the handler once", rd16(RM_RES_INTS), 1);
	expect_eq("real mode: INT pushes the IP of the next instruction", rd16(RM_RES_INT_IP),
		  rd16(RM_RES_AFTER_INT));
	expect_eq("real mode: INT pushes CS = 0", rd16(RM_RES_INT_CS), 0);
	expect_eq("protected mode again after real mode: CR0.PE = 1, PG = 0", pm_cr0_back & (CR0_PE | CR0_PG),
		  CR0_PE);
	report((rdmsr(MSR_EFER) & (EFER_LME | EFER_LMA)) == (EFER_LME | EFER_LMA) && (read_cr0() & CR0_PG),
	       "long mode again: EFER.LMA = 1, CR0.PG = 1");
	expect_eq("long mode again: CS = KERNEL_CS64", read_cs(), KERNEL_CS64);

	/* The IDT is back: an exception is delivered as before the trip. */
	TRY("ud2", ::: "memory");
	ex_check("long mode again: #UD delivered through the restored IDT", UD_VECTOR, 0, ex_site);
}

void test_main(void)
{
	test_compat();
	test_legacy_and_real();
}
