/*
 * The C interface of the bare-metal test runtime: port and system-register access, serial
 * printf, PASS/FAIL reporting with a final SUMMARY line and exit through isa-debug-exit,
 * the multiboot information, fw_cfg, exception capture (ASM_TRY) and custom handlers,
 * paging helpers, the local APIC, user mode, and starting other CPUs.
 *
 * A test program defines `void test_main(void)`; the runtime has set up long mode, the GDT,
 * TSS, IDT and serial port before calling it, and prints the summary and exits afterwards.
 * Everything runs at CPL0 with interrupts disabled unless a test enables them.
 */
#ifndef BAREMETAL_RUNTIME_H
#define BAREMETAL_RUNTIME_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "asm-defs.h"

typedef uint8_t u8;
typedef uint16_t u16;
typedef uint32_t u32;
typedef uint64_t u64;
typedef int64_t s64;

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define PAGE_SIZE 4096ul
#define LARGE_PAGE_SIZE (2ul << 20)
#define HUGE_PAGE_SIZE (1ul << 30)
#define BIT(n) (1ull << (n))

/* Exception vectors (SDM Vol 3 §6.3.1 table 6-1). */
enum {
	DE_VECTOR = 0, DB_VECTOR = 1, NMI_VECTOR = 2, BP_VECTOR = 3, OF_VECTOR = 4,
	BR_VECTOR = 5, UD_VECTOR = 6, NM_VECTOR = 7, DF_VECTOR = 8, TS_VECTOR = 10,
	NP_VECTOR = 11, SS_VECTOR = 12, GP_VECTOR = 13, PF_VECTOR = 14, MF_VECTOR = 16,
	AC_VECTOR = 17, MC_VECTOR = 18, XM_VECTOR = 19,
};

/* #PF error code bits (SDM Vol 3 §4.7 figure 4-12; APM Vol 2 §8.4.2). */
#define PFERR_P    0x01
#define PFERR_W    0x02
#define PFERR_U    0x04
#define PFERR_RSVD 0x08
#define PFERR_I    0x10

/* RFLAGS bits (SDM Vol 1 §3.4.3). */
#define RFLAGS_CF   0x00000001ul
#define RFLAGS_FIXED 0x00000002ul
#define RFLAGS_ZF   0x00000040ul
#define RFLAGS_TF   0x00000100ul
#define RFLAGS_IF   0x00000200ul
#define RFLAGS_DF   0x00000400ul
#define RFLAGS_IOPL 0x00003000ul
#define RFLAGS_NT   0x00004000ul
#define RFLAGS_RF   0x00010000ul
#define RFLAGS_AC   0x00040000ul

/* ---- instructions ---------------------------------------------------------------------- */

static inline void outb(u16 port, u8 v) { asm volatile("outb %0, %1" : : "a"(v), "Nd"(port)); }
static inline void outw(u16 port, u16 v) { asm volatile("outw %0, %1" : : "a"(v), "Nd"(port)); }
static inline void outl(u16 port, u32 v) { asm volatile("outl %0, %1" : : "a"(v), "Nd"(port)); }
static inline u8 inb(u16 port) { u8 v; asm volatile("inb %1, %0" : "=a"(v) : "Nd"(port)); return v; }
static inline u16 inw(u16 port) { u16 v; asm volatile("inw %1, %0" : "=a"(v) : "Nd"(port)); return v; }
static inline u32 inl(u16 port) { u32 v; asm volatile("inl %1, %0" : "=a"(v) : "Nd"(port)); return v; }

#define DEFINE_CR(n)                                                                     \
	static inline u64 read_cr##n(void) { u64 v; asm volatile("mov %%cr" #n ", %0" : "=r"(v)); return v; } \
	static inline void write_cr##n(u64 v) { asm volatile("mov %0, %%cr" #n : : "r"(v) : "memory"); }
DEFINE_CR(0)
DEFINE_CR(2)
DEFINE_CR(3)
DEFINE_CR(4)
#undef DEFINE_CR

#define DEFINE_DR(n)                                                                     \
	static inline u64 read_dr##n(void) { u64 v; asm volatile("mov %%dr" #n ", %0" : "=r"(v)); return v; } \
	static inline void write_dr##n(u64 v) { asm volatile("mov %0, %%dr" #n : : "r"(v) : "memory"); }
DEFINE_DR(0)
DEFINE_DR(1)
DEFINE_DR(2)
DEFINE_DR(3)
DEFINE_DR(6)
DEFINE_DR(7)
#undef DEFINE_DR

static inline u64 rdmsr(u32 msr)
{
	u32 lo, hi;
	asm volatile("rdmsr" : "=a"(lo), "=d"(hi) : "c"(msr));
	return lo | (u64)hi << 32;
}
static inline void wrmsr(u32 msr, u64 v)
{
	asm volatile("wrmsr" : : "c"(msr), "a"((u32)v), "d"((u32)(v >> 32)) : "memory");
}

struct cpuid { u32 a, b, c, d; };
static inline struct cpuid cpuid(u32 leaf, u32 sub)
{
	struct cpuid r;
	asm volatile("cpuid" : "=a"(r.a), "=b"(r.b), "=c"(r.c), "=d"(r.d) : "a"(leaf), "c"(sub));
	return r;
}

static inline u64 read_rflags(void) { u64 f; asm volatile("pushfq; pop %0" : "=r"(f)); return f; }
static inline void write_rflags(u64 f) { asm volatile("push %0; popfq" : : "r"(f) : "memory", "cc"); }
/* Keeps the compiler from moving memory accesses across this point (page-table edits). */
static inline void barrier(void) { asm volatile("" ::: "memory"); }
static inline void cli(void) { asm volatile("cli" ::: "memory"); }
static inline void sti(void) { asm volatile("sti" ::: "memory"); }
static inline void invlpg(const volatile void *va) { asm volatile("invlpg (%0)" : : "r"(va) : "memory"); }
static inline void pause(void) { asm volatile("pause"); }
static inline u64 rdtsc(void) { u32 lo, hi; asm volatile("rdtsc" : "=a"(lo), "=d"(hi)); return lo | (u64)hi << 32; }
static inline u16 read_cs(void) { u16 v; asm volatile("mov %%cs, %0" : "=r"(v)); return v; }
static inline u16 read_ss(void) { u16 v; asm volatile("mov %%ss, %0" : "=r"(v)); return v; }

/* ---- strings (the compiler may emit calls to these itself) ------------------------------- */

void *memset(void *d, int c, size_t n);
void *memcpy(void *d, const void *s, size_t n);
int memcmp(const void *a, const void *b, size_t n);
size_t strlen(const char *s);
int strncmp(const char *a, const char *b, size_t n);
const char *strstr(const char *hay, const char *needle);

/* ---- serial output and reports ----------------------------------------------------------- */

void serial_init(void);
void putchar(int c);
int printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int vprintf(const char *fmt, va_list ap);
int vsnprintf(char *buf, size_t size, const char *fmt, va_list ap);
int snprintf(char *buf, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* "PASS: name" or "FAIL: name"; the name may be a format. Returns pass. */
bool report(bool pass, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* PASS when got == expected, else FAIL with both values in hex. */
bool expect_eq(const char *name, u64 got, u64 expected);
/* "SKIP: name (why)": a check that cannot run on this machine; not a failure. */
void report_skip(const char *name, const char *why);
/*
 * Declare that the next check is one on which QEMU 7.2 is known to deviate from the manuals.
 * The check stays strict; only when the image runs with "qemu-quirks" on its command line
 * (run-qemu.sh passes it) is its failure printed as "XFAIL: name (known QEMU deviation: why)"
 * and not counted as a failure. `why` names the deviation and where the manual says otherwise.
 */
void qemu_deviation(const char *why);
/*
 * For deviations that would wreck the machine under QEMU (a hang or a crash): with
 * "qemu-quirks" prints "XFAIL: name (known QEMU deviation: why; not run)" and returns true so
 * the caller leaves the check out; otherwise returns false and the check runs.
 */
bool qemu_cannot_run(const char *name, const char *why);
bool qemu_quirks(void);
/* Print the summary line and exit: code 0 when nothing failed, 1 otherwise. */
__attribute__((noreturn)) void report_summary_and_exit(void);
/* isa-debug-exit: QEMU's status becomes (code << 1) | 1. */
__attribute__((noreturn)) void exit(int code);

/* ---- multiboot (Multiboot 0.6.96 §3.3) and fw_cfg ---------------------------------------- */

struct mb_info {
	u32 flags;
	u32 mem_lower, mem_upper;	/* KiB below 1 MiB / above 1 MiB (flags bit 0) */
	u32 boot_device;
	u32 cmdline;			/* flags bit 2 */
	u32 mods_count, mods_addr;	/* flags bit 3 */
	u32 syms[4];
	u32 mmap_length, mmap_addr;	/* flags bit 6 */
} __attribute__((packed));

struct mb_mmap_entry {
	u32 size;			/* of the rest of the entry, without this field */
	u64 addr, len;
	u32 type;			/* 1 = available RAM */
} __attribute__((packed));

struct mb_module { u32 start, end, string, reserved; } __attribute__((packed));

#define MB_INFO_MEM     BIT(0)
#define MB_INFO_CMDLINE BIT(2)
#define MB_INFO_MODS    BIT(3)
#define MB_INFO_MMAP    BIT(6)

extern u64 mb_magic;			/* EAX at entry */
extern struct mb_info *mb_info;		/* NULL when EAX did not hold the multiboot magic */
const char *mb_cmdline(void);		/* "" when absent */

#define FW_CFG_SIGNATURE 0x0000
#define FW_CFG_RAM_SIZE  0x0003
#define FW_CFG_NB_CPUS   0x0005
void fwcfg_read(u16 key, void *buf, size_t len);
u16 fwcfg_cpu_count(void);
u64 fwcfg_ram_size(void);

/* ---- descriptors, exceptions and interrupts --------------------------------------------- */

/* The registers an exception stub saves, then what the CPU pushed (SDM Vol 3 §6.14.2). */
struct ex_frame {
	u64 r15, r14, r13, r12, r11, r10, r9, r8, rbp, rdi, rsi, rdx, rcx, rbx, rax;
	u64 vector, error_code;		/* error_code is 0 for vectors without one */
	u64 rip, cs, rflags, rsp, ss;
};

/* What the default handler recorded about the last exception it caught. */
struct ex_record {
	s64 vector;			/* -1: none since the last ASM_TRY */
	u64 error_code, rip, cs, rflags, rsp, ss, cr2;
};
extern volatile struct ex_record last_ex;
extern volatile u64 ex_recover, ex_site;

/*
 * Catch an exception in inline assembly: ASM_TRY("1f", "2f") arms the default handler so an
 * exception raised before label 1 resumes at label 1 (with the registers of the faulting
 * point), records it in last_ex, and notes label 2 as the expected faulting instruction
 * (ex_site) for ex_check(). Typical use:
 *     asm volatile(ASM_TRY("1f", "2f") "2: ud2\n1:" ::: "memory");
 *     ex_check("ud2 raises #UD", UD_VECTOR, 0, ex_site);
 * Addresses are link-time constants below 2 GiB, so 32-bit sign-extended immediates hold them.
 */
#define ASM_TRY(recover, site)                                                           \
	"movq $-1, last_ex(%%rip)\n\t"                                                   \
	"movq $" site ", ex_site(%%rip)\n\t"                                             \
	"movq $" recover ", ex_recover(%%rip)\n\t"

/*
 * One instruction (or a short sequence) under ASM_TRY with the faulting site at its start:
 *     TRY("divl %%ecx", : "+a"(lo), "+d"(hi) : "c"(0) : "memory");
 *     ex_check("div by zero", DE_VECTOR, 0, ex_site);
 * The operand part is always given (at least `::: "memory"`) so that %% is read as one %.
 * TRY_TRAP puts the site after the sequence, where a trap-class exception reports RIP.
 */
#define TRY(insn, ...) asm volatile(ASM_TRY("1001f", "1000f") "1000: " insn "\n1001:" __VA_ARGS__)
#define TRY_TRAP(insn, ...) asm volatile(ASM_TRY("1001f", "1001f") insn "\n1001:" __VA_ARGS__)
#define EX_ANY_RIP (~0ull)		/* ex_check: the RIP is architecturally undefined */

/* Vector caught since the last ASM_TRY, or -1; disarms the recovery point. */
int ex_vector(void);
/* One check: an exception `vector` with `error_code` (ignored for vectors without one) at `rip`. */
bool ex_check(const char *name, int vector, u64 error_code, u64 rip);
/* One check: no exception since the last ASM_TRY. */
bool ex_check_none(const char *name);
/* Record a frame into last_ex as the default handler does (for custom handlers). */
void ex_record_frame(const struct ex_frame *f);
bool vector_has_error_code(int vector);

typedef void (*ex_handler_t)(struct ex_frame *f);
/* A custom handler for a vector, or NULL for the default; returns the previous one. */
ex_handler_t set_handler(int vector, ex_handler_t h);

/* IDT gate manipulation (SDM Vol 3 §6.14.1 figure 6-8). */
void idt_set_dpl(int vector, int dpl);
void idt_set_present(int vector, bool present);
void idt_set_ist(int vector, int ist);
void idt_set_type(int vector, int type);	/* 0xE interrupt gate, 0xF trap gate */
void idt_restore(int vector);			/* back to the runtime's gate */
void idt_load(void);				/* LIDT of the runtime's IDT (for other CPUs) */

/* GDT access for tests that need their own descriptors (slots from GDT_SPARE_SEL). */
extern u64 gdt[GDT_ENTRIES];
static inline u64 seg_desc(u32 base, u32 limit, u32 access, u32 flags)
{
	/* access = P|DPL|S|type byte; flags = G|D/B|L|AVL nibble (SDM Vol 3 §3.4.5). */
	return (u64)(limit & 0xffff) | (u64)(base & 0xffffff) << 16 | (u64)(access & 0xff) << 40 |
	       (u64)((limit >> 16) & 0xf) << 48 | (u64)(flags & 0xf) << 52 | (u64)(base >> 24) << 56;
}

/* The 64-bit TSS (SDM Vol 3 §8.7 figure 8-11) followed by an I/O permission bitmap. */
struct tss64 {
	u32 reserved0;
	u64 rsp[3];
	u64 reserved1;
	u64 ist[7];
	u64 reserved2;
	u16 reserved3;
	u16 iomap_base;
	u8 iomap[8192 + 1];		/* one bit per port; the trailing byte must be 0xFF */
} __attribute__((packed));
extern struct tss64 tss;
/* Point iomap_base at the bitmap (ports allowed where bits are 0) or beyond the TSS limit. */
void tss_use_iomap(bool use);

/* ---- paging ------------------------------------------------------------------------------ */

/* Zeroed 4 KiB pages from RAM after the image and the multiboot data. Never freed. */
void *alloc_page(void);
/* Aligned allocation of 2^order pages. */
void *alloc_pages_aligned(int order);
/*
 * The leaf entry mapping va at `level` (1 = PTE 4 KiB, 2 = PDE 2 MiB, 3 = PDPTE 1 GiB), creating
 * missing tables on the way (flags P|W|U). With split, a larger leaf met on the way is broken
 * into 512 entries mapping the same memory with the same attributes. NULL when a larger leaf
 * covers va and split is false.
 */
u64 *pte_get(u64 va, int level, bool split);
/* Map one page of `level` size at va -> pa with flags (PS added for levels 2 and 3) and INVLPG. */
void map_page(u64 va, u64 pa, u64 flags, int level);
/* Make the 4 KiB page at va not present (splitting a larger page first) and INVLPG. */
void unmap_page(u64 va);
/* The leaf entry mapping va and its level (0 = none). */
u64 *pte_lookup(u64 va, int *level);
static inline u64 *pte_4k(u64 va) { return pte_get(va, 1, true); }
void flush_tlb(void);
int max_phys_addr_bits(void);

/* ---- local APIC (xAPIC MMIO, SDM Vol 3 §11.4) ---------------------------------------------- */

#define APIC_DEFAULT_BASE 0xfee00000ul
enum {
	APIC_ID = 0x20, APIC_VERSION = 0x30, APIC_TPR = 0x80, APIC_PPR = 0xa0, APIC_EOI = 0xb0,
	APIC_SVR = 0xf0, APIC_ISR = 0x100, APIC_TMR = 0x180, APIC_IRR = 0x200, APIC_ESR = 0x280,
	APIC_ICR_LO = 0x300, APIC_ICR_HI = 0x310, APIC_LVT_TIMER = 0x320, APIC_LVT_LINT0 = 0x350,
	APIC_LVT_LINT1 = 0x360, APIC_LVT_ERROR = 0x370, APIC_TIMER_INIT = 0x380,
	APIC_TIMER_CUR = 0x390, APIC_TIMER_DIV = 0x3e0,
};
#define APIC_LVT_MASKED   BIT(16)
#define APIC_TIMER_PERIODIC BIT(17)
#define APIC_ICR_FIXED    0x000
#define APIC_ICR_NMI      0x400
#define APIC_ICR_INIT     0x500
#define APIC_ICR_STARTUP  0x600
#define APIC_ICR_PENDING  BIT(12)
#define APIC_ICR_ASSERT   BIT(14)
#define APIC_ICR_LEVEL    BIT(15)
#define APIC_DEST_SELF    (1u << 18)

u32 apic_read(u32 reg);
void apic_write(u32 reg, u32 v);
void apic_enable(void);				/* APIC_BASE.EN and SVR software enable */
void apic_eoi(void);
u32 apic_id(void);
/* div: the divide value 1, 2, 4 ... 128 (encoded per SDM Vol 3 §11.5.4 figure 11-10). */
void apic_timer_start(u8 vector, u32 count, u32 div, bool periodic);
void apic_timer_stop(void);
bool apic_irr(u8 vector);
bool apic_isr(u8 vector);
void apic_icr(u32 dest_apic_id, u32 lo);	/* waits for the delivery status to clear */
void pic_mask_all(void);

/* ---- user mode ---------------------------------------------------------------------------- */

/*
 * Run fn(arg) at CPL3 (64-bit user code segment, RFLAGS = rflags | 2) on a user stack, entered
 * with IRETQ. fn returns by `ret` to a stub that leaves user mode with `int $USER_EXIT_VECTOR`
 * (a DPL3 gate); after syscall_setup() it may also leave with do_syscall(SYS_EXIT, value).
 * Returns fn's return value (or that value) like an ordinary call.
 */
u64 user_run(u64 (*fn)(u64), u64 arg, u64 rflags);
extern char user_stack_top[];		/* the user stack: STACK_SIZE bytes below this */
/* Enable SYSCALL/SYSRET: EFER.SCE, STAR, LSTAR = the runtime's entry, SFMASK = sfmask. */
void syscall_setup(u64 sfmask);
/* What the SYSCALL entry saw last: RCX, R11 and the RFLAGS in effect on entry, CS and SS. */
struct syscall_record { u64 rcx, r11, rflags, cs, ss, rsp; };
extern volatile struct syscall_record last_syscall;
/* SYSCALL from user code with RAX = nr and RDI = a1; see SYS_EXIT and SYS_ECHO. */
static inline u64 do_syscall(u64 nr, u64 a1)
{
	u64 ret;
	asm volatile("syscall" : "=a"(ret) : "a"(nr), "D"(a1) : "rcx", "r11", "memory");
	return ret;
}

/* ---- other CPUs --------------------------------------------------------------------------- */

/*
 * Start the CPU with the given APIC id by INIT-SIPI-SIPI (SDM Vol 3 §9.4.4.1): it runs the
 * real-mode trampoline at AP_TRAMPOLINE, enters long mode with the BSP's page tables and calls
 * fn(apic_id) on its own stack. Returns once the AP has reached 64-bit code, or false after a
 * timeout.
 */
bool ap_start(u32 apic_id, void (*fn)(u32 apic_id));

/* ---- helpers for tests -------------------------------------------------------------------- */

/* Busy-wait of roughly n iterations of PAUSE: timeouts for events that should come at once. */
static inline void spin(u64 n) { while (n--) pause(); }
void test_main(void);

#endif
