/*
 * Descriptor tables and exception dispatch: the TSS (RSP0, IST1 and an I/O bitmap), the IDT
 * pointing at the stubs of entry.S, and ex_dispatch(), which either calls a test's handler or
 * records the exception in last_ex and resumes at the recovery point armed by ASM_TRY.
 *
 * An exception nobody expected is a test failure: it is reported with its full frame and the
 * program ends with the summary, so a broken emulator shows where it went wrong instead of
 * looping or triple-faulting.
 */
#include "runtime.h"

struct idt_gate {
	u16 offset0;
	u16 selector;
	u8 ist;
	u8 attr;			/* P | DPL | 0 | type */
	u16 offset1;
	u32 offset2;
	u32 reserved;
} __attribute__((packed));

struct table_ptr {
	u16 limit;
	u64 base;
} __attribute__((packed));

extern char isr_stubs[];		/* 256 stubs of 16 bytes, entry.S */
static struct idt_gate idt[256] __attribute__((aligned(16)));
static ex_handler_t handlers[256];

struct tss64 tss __attribute__((aligned(16)));
static u8 rsp0_stack[STACK_SIZE] __attribute__((aligned(16)));
static u8 ist1_stack[STACK_SIZE] __attribute__((aligned(16)));

volatile struct ex_record last_ex = { .vector = -1 };
volatile u64 ex_recover, ex_site;

static const char *const vector_names[32] = {
	"#DE", "#DB", "NMI", "#BP", "#OF", "#BR", "#UD", "#NM", "#DF", "CSO", "#TS", "#NP",
	"#SS", "#GP", "#PF", "RSV", "#MF", "#AC", "#MC", "#XM", "#VE", "#CP",
};

bool vector_has_error_code(int v)
{
	/* SDM Vol 3 §6.3.1 table 6-1 and APM Vol 2 §8.2 (#VC 29, #SX 30). */
	return v == 8 || (v >= 10 && v <= 14) || v == 17 || v == 21 || v == 29 || v == 30;
}

static void set_gate(int v, int dpl, int ist)
{
	u64 addr = (u64)isr_stubs + 16 * v;
	idt[v] = (struct idt_gate){
		.offset0 = (u16)addr,
		.selector = KERNEL_CS64,
		.ist = (u8)ist,
		.attr = (u8)(0x80 | dpl << 5 | 0xe),	/* present interrupt gate */
		.offset1 = (u16)(addr >> 16),
		.offset2 = (u32)(addr >> 32),
	};
}

void idt_restore(int v)
{
	/*
	 * #DF and NMI run on IST1 so they are delivered even when the current stack is the
	 * problem (SDM Vol 3 §6.14.5); the user-exit gate is callable from CPL3.
	 */
	set_gate(v, v == USER_EXIT_VECTOR ? 3 : 0, (v == DF_VECTOR || v == NMI_VECTOR) ? 1 : 0);
}

void idt_set_dpl(int v, int dpl) { idt[v].attr = (u8)((idt[v].attr & ~0x60) | dpl << 5); }
void idt_set_present(int v, bool p) { idt[v].attr = (u8)((idt[v].attr & 0x7f) | (p ? 0x80 : 0)); }
void idt_set_ist(int v, int ist) { idt[v].ist = (u8)ist; }
void idt_set_type(int v, int type) { idt[v].attr = (u8)((idt[v].attr & 0xf0) | type); }

ex_handler_t set_handler(int v, ex_handler_t h)
{
	ex_handler_t old = handlers[v];
	handlers[v] = h;
	return old;
}

void tss_use_iomap(bool use)
{
	/* A base at or beyond the TSS limit means "no bitmap": every port access above IOPL
	   faults (SDM Vol 1 §19.5.2). */
	tss.iomap_base = use ? offsetof(struct tss64, iomap) : sizeof(struct tss64);
}

void desc_init(void)
{
	u64 base = (u64)&tss, limit = sizeof(tss) - 1;
	tss.rsp[0] = (u64)rsp0_stack + sizeof(rsp0_stack);
	tss.ist[0] = (u64)ist1_stack + sizeof(ist1_stack);
	memset(tss.iomap, 0xff, sizeof(tss.iomap));
	tss_use_iomap(false);
	/* 64-bit TSS descriptor, type 9 = available (SDM Vol 3 §8.2.3 figure 8-4). */
	gdt[TSS_SEL / 8] = seg_desc((u32)base, (u32)limit, 0x89, 0);
	gdt[TSS_SEL / 8 + 1] = base >> 32;
	asm volatile("ltr %w0" : : "r"(TSS_SEL));
	/* The LDTR still holds its reset state (base 0, limit 0xFFFF, SDM Vol 3 §10.1.1 table
	   10-1); a null LLDT makes every LDT reference fault as the tests expect. */
	asm volatile("lldt %w0" : : "r"(0));

	for (int v = 0; v < 256; v++)
		idt_restore(v);
	idt_load();
}

void idt_load(void)
{
	struct table_ptr p = { sizeof(idt) - 1, (u64)idt };
	asm volatile("lidt %0" : : "m"(p));
}

void ex_record_frame(const struct ex_frame *f)
{
	last_ex.error_code = f->error_code;
	last_ex.rip = f->rip;
	last_ex.cs = f->cs;
	last_ex.rflags = f->rflags;
	last_ex.rsp = f->rsp;
	last_ex.ss = f->ss;
	last_ex.cr2 = read_cr2();
	last_ex.vector = (s64)f->vector;
}

static const char *vector_name(u64 v)
{
	return v < 32 && vector_names[v] ? vector_names[v] : "interrupt";
}

__attribute__((noreturn)) static void unexpected(const struct ex_frame *f)
{
	static bool dying;
	if (dying)		/* an exception while reporting one: give up quietly */
		exit(1);
	dying = true;
	report(false, "unexpected exception %s (vector %lu) error code 0x%lx at %lx:%lx "
	       "rflags 0x%lx rsp %lx:%lx cr2 0x%lx", vector_name(f->vector), f->vector,
	       f->error_code, f->cs, f->rip, f->rflags, f->ss, f->rsp, read_cr2());
	report_summary_and_exit();
}

void ex_dispatch(struct ex_frame *f)
{
	ex_handler_t h = handlers[f->vector];
	if (h) {
		h(f);
		return;
	}
	if (!ex_recover)
		unexpected(f);
	ex_record_frame(f);
	f->rip = ex_recover;
	ex_recover = 0;
}

int ex_vector(void)
{
	ex_recover = 0;
	return (int)last_ex.vector;
}

bool ex_check(const char *name, int vector, u64 error_code, u64 rip)
{
	s64 got = ex_vector();
	bool ec_ok = !vector_has_error_code(vector) || last_ex.error_code == error_code;
	if (got == vector && ec_ok && (rip == EX_ANY_RIP || last_ex.rip == rip))
		return report(true, "%s", name);
	if (got < 0)
		return report(false, "%s (no exception; expected %s, error code 0x%lx, rip 0x%lx)",
			      name, vector_name(vector), error_code, rip);
	return report(false, "%s (got %s error code 0x%lx rip 0x%lx; expected %s error code 0x%lx rip 0x%lx)",
		      name, vector_name(got), last_ex.error_code, last_ex.rip, vector_name(vector),
		      error_code, rip);
}

bool ex_check_none(const char *name)
{
	s64 got = ex_vector();
	if (got < 0)
		return report(true, "%s", name);
	return report(false, "%s (unexpected %s error code 0x%lx at rip 0x%lx)", name, vector_name(got),
		      last_ex.error_code, last_ex.rip);
}
