/*
 * What the machine tells the program about itself: the multiboot information the loader
 * passed in EBX, and QEMU's fw_cfg device (selector port 0x510, data port 0x511; the item
 * layouts are QEMU's docs/specs/fw_cfg.txt: little-endian, NB_CPUS 16-bit, RAM_SIZE 64-bit).
 * Also runtime_start(), the C entry from boot.S.
 */
#include "runtime.h"

#define FW_CFG_PORT_SEL 0x510
#define FW_CFG_PORT_DATA 0x511

extern u64 mb_info_addr;
struct mb_info *mb_info;

void desc_init(void);
void vm_init(void);
void user_init(void);

/* A copy of the command line, so tests may reuse low memory wherever the loader put it. */
static char cmdline[512];

const char *mb_cmdline(void)
{
	return cmdline;
}

static void save_cmdline(void)
{
	if (!mb_info || !(mb_info->flags & MB_INFO_CMDLINE) || !mb_info->cmdline)
		return;
	const char *s = (const char *)(u64)mb_info->cmdline;
	size_t n = strlen(s);
	if (n >= sizeof(cmdline))
		n = sizeof(cmdline) - 1;
	memcpy(cmdline, s, n);
}

void fwcfg_read(u16 key, void *buf, size_t len)
{
	u8 *p = buf;
	outw(FW_CFG_PORT_SEL, key);
	while (len--)
		*p++ = inb(FW_CFG_PORT_DATA);
}

u16 fwcfg_cpu_count(void)
{
	u16 n;
	fwcfg_read(FW_CFG_NB_CPUS, &n, sizeof(n));
	return n;
}

u64 fwcfg_ram_size(void)
{
	u64 n;
	fwcfg_read(FW_CFG_RAM_SIZE, &n, sizeof(n));
	return n;
}

__attribute__((noreturn)) void runtime_start(void)
{
	serial_init();
	mb_info = mb_magic == MB_BOOT_MAGIC ? (struct mb_info *)mb_info_addr : NULL;
	save_cmdline();
	desc_init();
	pic_mask_all();
	vm_init();
	user_init();
	test_main();
	report_summary_and_exit();
}
