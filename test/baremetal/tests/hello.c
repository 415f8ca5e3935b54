/*
 * hello: the smallest end-to-end check of a machine that boots multiboot images. It shows
 * the loader handed over correctly (magic, info structure, command line, memory map) and that
 * the platform devices the other tests lean on (serial, fw_cfg, isa-debug-exit) work.
 */
#include "runtime.h"

/* Whether the entries of the map (of any type) together cover [start, end). */
static bool map_covers(u64 start, u64 end)
{
	u8 *first = (u8 *)(u64)mb_info->mmap_addr, *last = first + mb_info->mmap_length;
	while (start < end) {
		u64 next = start;
		for (u8 *p = first; p < last; p += ((struct mb_mmap_entry *)p)->size + 4) {
			struct mb_mmap_entry *e = (struct mb_mmap_entry *)p;
			if (e->addr <= start && e->addr + e->len > start && e->addr + e->len > next)
				next = e->addr + e->len;
		}
		if (next == start)
			return false;
		start = next;
	}
	return true;
}

static void check_memory_map(u64 ram)
{
	if (!(mb_info->flags & MB_INFO_MMAP)) {
		report(false, "multiboot info has a memory map (flags bit 6)");
		return;
	}
	/*
	 * Walk the map (Multiboot 0.6.96 §3.3: entries are `size` + 4 bytes apart) and find the
	 * available (type 1) region that holds 1 MiB; RAM above 1 MiB must be available without a
	 * hole at least up to mem_upper and end no later than fw_cfg's RAM size.
	 */
	u64 avail_top = 0, regions = 0, low_avail = 0;
	u8 *p = (u8 *)(u64)mb_info->mmap_addr, *end = p + mb_info->mmap_length;
	while (p < end) {
		struct mb_mmap_entry *e = (struct mb_mmap_entry *)p;
		printf("  mmap: 0x%010lx-0x%010lx type %u\n", e->addr, e->addr + e->len - 1, e->type);
		if (e->type == 1 && e->addr <= 0x100000 && e->addr + e->len > 0x100000)
			avail_top = e->addr + e->len;
		if (e->type == 1 && e->addr == 0)
			low_avail = e->len;
		regions++;
		p += e->size + 4;
	}
	report(regions > 0, "memory map has entries (%lu)", regions);
	report(map_covers(0x100000, ram), "memory map entries cover [1 MiB, fw_cfg RAM size) without a gap");
	expect_eq("available RAM at 1 MiB extends to 1 MiB + mem_upper KiB (Multiboot §3.3)",
		  avail_top, 0x100000 + (u64)mb_info->mem_upper * 1024);
	report(avail_top <= ram && avail_top >= ram - (ram / 16),
	       "available RAM above 1 MiB ends within the last 1/16 of fw_cfg's RAM size");
	expect_eq("low available region is mem_lower KiB (Multiboot §3.3)", low_avail,
		  (u64)mb_info->mem_lower * 1024);
}

void test_main(void)
{
	printf("hello from a bare-metal test image\n");
	expect_eq("EAX at entry holds the multiboot magic 0x2BADB002 (Multiboot §3.2)", mb_magic,
		  MB_BOOT_MAGIC);
	if (!report(mb_info != NULL, "multiboot info pointer in EBX"))
		return;
	printf("  flags 0x%x cmdline \"%s\" mem_lower %u KiB mem_upper %u KiB\n", mb_info->flags,
	       mb_cmdline(), mb_info->mem_lower, mb_info->mem_upper);
	report(mb_info->flags & MB_INFO_MEM, "multiboot info has mem_lower/mem_upper (flags bit 0)");
	report(mb_info->flags & MB_INFO_CMDLINE, "multiboot info has a command line (flags bit 2)");
	/* QEMU passes "<kernel path> <-append text>"; the path names this image. */
	report(strncmp(mb_cmdline(), " ", 1) && strstr(mb_cmdline(), "hello") != NULL,
	       "command line starts with the image path");

	char sig[4];
	fwcfg_read(FW_CFG_SIGNATURE, sig, sizeof(sig));
	report(!memcmp(sig, "QEMU", 4), "fw_cfg signature is \"QEMU\" (QEMU docs/specs/fw_cfg.txt)");
	u16 cpus = fwcfg_cpu_count();
	u64 ram = fwcfg_ram_size();
	printf("  fw_cfg: %u CPUs, RAM %lu MiB\n", cpus, ram >> 20);
	report(cpus >= 1, "fw_cfg CPU count is at least 1");
	report(ram >= (16ull << 20) && !(ram & 0xfffff), "fw_cfg RAM size is whole MiB, at least 16 MiB");
	report((u64)mb_info->mem_upper * 1024 + 0x100000 <= ram,
	       "mem_upper does not exceed fw_cfg's RAM size");
	check_memory_map(ram);

	/* A few basics of the state the runtime established, which every other test relies on. */
	expect_eq("running in 64-bit code segment KERNEL_CS64", read_cs(), KERNEL_CS64);
	report((rdmsr(MSR_EFER) & (EFER_LME | EFER_LMA)) == (EFER_LME | EFER_LMA),
	       "EFER.LME and EFER.LMA are set in long mode (SDM Vol 3 §10.8.5)");
	report((read_cr0() & (CR0_PE | CR0_PG)) == (CR0_PE | CR0_PG) && (read_cr4() & CR4_PAE),
	       "CR0.PE, CR0.PG and CR4.PAE are set");
}
