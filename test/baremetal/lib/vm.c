/*
 * Physical page allocation and 4-level page-table editing for tests: find or create the entry
 * that maps an address at a chosen level, split a 2 MiB or 1 GiB leaf into 512 smaller ones
 * with the same attributes, and map single pages.
 *
 * Page tables are reached through the identity map (they are all below 4 GiB), and every
 * intermediate entry the helpers create is P|W|U so that the leaf alone decides the access
 * rights a test is about.
 */
#include "runtime.h"

#define ADDR_MASK 0x000ffffffffff000ull		/* bits 51:12 of a table entry */

extern char _end[];
static u64 next_free, free_end;

static u64 max_u64(u64 a, u64 b) { return a > b ? a : b; }

/* The allocator starts above everything the loader placed after the image. */
void vm_init(void)
{
	u64 start = (u64)_end;
	free_end = 4ull << 30;
	if (mb_info) {
		start = max_u64(start, (u64)mb_info + sizeof(*mb_info));
		if (mb_info->flags & MB_INFO_CMDLINE)
			start = max_u64(start, mb_info->cmdline + strlen((char *)(u64)mb_info->cmdline) + 1);
		if (mb_info->flags & MB_INFO_MMAP)
			start = max_u64(start, (u64)mb_info->mmap_addr + mb_info->mmap_length);
		if (mb_info->flags & MB_INFO_MODS) {
			struct mb_module *m = (struct mb_module *)(u64)mb_info->mods_addr;
			start = max_u64(start, (u64)(m + mb_info->mods_count));
			for (u32 i = 0; i < mb_info->mods_count; i++) {
				start = max_u64(start, m[i].end);
				if (m[i].string)
					start = max_u64(start, m[i].string + strlen((char *)(u64)m[i].string) + 1);
			}
		}
		if (mb_info->flags & MB_INFO_MEM)
			free_end = (1ull << 20) + (u64)mb_info->mem_upper * 1024;
	}
	next_free = (start + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1);
}

void *alloc_pages_aligned(int order)
{
	u64 size = PAGE_SIZE << order;
	u64 p = (next_free + size - 1) & ~(size - 1);
	if (p + size > free_end) {
		report(false, "out of memory allocating %lu bytes", size);
		report_summary_and_exit();
	}
	next_free = p + size;
	memset((void *)p, 0, size);
	return (void *)p;
}

void *alloc_page(void)
{
	return alloc_pages_aligned(0);
}

void flush_tlb(void)
{
	write_cr3(read_cr3());
}

static int index_at(u64 va, int level)
{
	return (va >> (12 + 9 * (level - 1))) & 511;
}

static u64 level_size(int level)
{
	return 1ull << (12 + 9 * (level - 1));
}

/* Replace the leaf *e at `level` by a table of 512 leaves one level down, same memory and bits. */
static void split_leaf(u64 *e, int level)
{
	u64 *table = alloc_page();
	u64 child = level_size(level - 1);
	u64 base = *e & ADDR_MASK & ~(level_size(level) - 1);
	/* Keep the low attribute bits and NX; the PAT bit of a large leaf (bit 12) is not used. */
	u64 attrs = *e & (0xfffull | BIT(63));
	if (level - 1 == 1)
		attrs &= ~(u64)PTE_PS;
	for (int i = 0; i < 512; i++)
		table[i] = (base + i * child) | attrs;
	*e = (u64)table | PTE_P | PTE_W | PTE_U;
	flush_tlb();
}

u64 *pte_get(u64 va, int level, bool split)
{
	u64 *table = (u64 *)(read_cr3() & ADDR_MASK);
	for (int l = 4; l > level; l--) {
		u64 *e = &table[index_at(va, l)];
		if (!(*e & PTE_P)) {
			*e = (u64)alloc_page() | PTE_P | PTE_W | PTE_U;
		} else if (l <= 3 && (*e & PTE_PS)) {
			if (!split)
				return NULL;
			split_leaf(e, l);
		}
		table = (u64 *)(*e & ADDR_MASK);
	}
	return &table[index_at(va, level)];
}

void unmap_page(u64 va)
{
	*pte_get(va, 1, true) = 0;
	invlpg((void *)va);
}

u64 *pte_lookup(u64 va, int *level)
{
	u64 *table = (u64 *)(read_cr3() & ADDR_MASK);
	for (int l = 4; l >= 1; l--) {
		u64 *e = &table[index_at(va, l)];
		if (l == 1 || !(*e & PTE_P) || (l <= 3 && (*e & PTE_PS))) {
			*level = (*e & PTE_P) ? l : 0;
			return e;
		}
		table = (u64 *)(*e & ADDR_MASK);
	}
	return NULL;
}

void map_page(u64 va, u64 pa, u64 flags, int level)
{
	u64 *e = pte_get(va, level, true);
	*e = pa | flags | (level > 1 ? PTE_PS : 0);
	invlpg((void *)va);
}

int max_phys_addr_bits(void)
{
	/* CPUID 8000_0008h EAX[7:0] (SDM Vol 2 CPUID; APM Vol 3 appendix E.4.7); 36 without it. */
	if (cpuid(0x80000000, 0).a >= 0x80000008)
		return cpuid(0x80000008, 0).a & 0xff;
	return 36;
}
