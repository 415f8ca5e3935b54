/*
 * The demo hypervisor: an L1 hypervisor of our own that `npm start` boots under svmjit, and the
 * image the SVM benchmarks time. It enables AMD SVM, builds one VMCB for an L2 guest that shares
 * its page tables (under identity nested page tables when the CPU offers NP) and runs it with
 * VMRUN, handling each #VMEXIT as a small real hypervisor would: IN/OUT on a virtual debug
 * console (port 0xE9, the Bochs convention), CPUID (a hypervisor leaf, SVM hidden from the
 * guest), RDTSC (a guest clock that starts at zero), VMMCALL (the guest's hypercalls to this
 * hypervisor) and HLT (the guest is done). It counts the exits by code and prints them at the end.
 *
 * The kernel command line (`svmjit boot --append`) chooses what runs:
 *   (nothing)              the demo: L2 says hello, looks at its CPU, counts primes, reports back
 *   bench=roundtrip n=N    L2 makes N VMMCALLs, each a round trip L2 -> L1 -> L2
 *   bench=workload n=N laps=K   K laps of N rounds of workload.h in L2, each followed by the
 *                          same lap in L1: the same code timed at both levels, alternately, so
 *                          that a busy host slows both alike
 * A benchmark warms up first, then prints "svmjit-bench: begin <lap> ..." and "svmjit-bench: end
 * <lap> ..." around each timed lap (<lap> = roundtrip, l2 or l1); the harness (bench/svm.ts) times
 * the laps by when those lines arrive, which leaves svmjit's start-up, the boot and the warm-up
 * out of the figures.
 *
 * Under svmjit, L1 reads the cycle counter and exits through svmjit's hypercalls (README
 * "Hypercalls"); on any other machine (QEMU with -cpu max,+svm) it falls back to RDTSC and
 * isa-debug-exit, so the image also runs there for a second opinion.
 *
 * Built on test/baremetal's runtime and its SVM helpers (lib/svm.h) by demo/build-hypervisor.sh.
 */
#include "svm.h"
#include "workload.h"

/* Which sources this image was built from (see demo/hypervisor.mk). */
static const char stamp[] __attribute__((used)) = "demo-sources-sha256:" DEMO_STAMP;

/*
 * VMMCALL with the number in RAX and the argument in RBX; the result comes back in RAX. From L1
 * it is a hypercall to svmjit; from L2 it exits to this hypervisor, which answers the same way.
 */
static u64 vmmcall(u64 nr, u64 arg)
{
	u64 ret;
	asm volatile("vmmcall" : "=a"(ret) : "a"(nr), "b"(arg) : "memory");
	return ret;
}

/* ---- svmjit's hypercalls, made by L1 ------------------------------------------------------- */

enum { SVMJIT_EXIT = 2, SVMJIT_CYCLES = 3 };

static bool on_svmjit;

/* svmjit's CPU names itself in the brand string; VMMCALL from L1 is #UD anywhere else. */
static void detect_svmjit(void)
{
	u32 brand[12];
	for (u32 i = 0; i < 3; i++) {
		struct cpuid c = cpuid(0x80000002 + i, 0);
		brand[4 * i] = c.a, brand[4 * i + 1] = c.b, brand[4 * i + 2] = c.c, brand[4 * i + 3] = c.d;
	}
	on_svmjit = strncmp((const char *)brand, "svmjit", 6) == 0;
}

static u64 cycles(void)
{
	return on_svmjit ? vmmcall(SVMJIT_CYCLES, 0) : rdtsc();
}

/* svmjit's exit hypercall gives the status as it is; isa-debug-exit would make it (s << 1) | 1. */
static __attribute__((noreturn)) void finish(int status)
{
	if (on_svmjit)
		vmmcall(SVMJIT_EXIT, (u64)status);
	exit(status);
}

/* ---- what L2 sees of the hypervisor -------------------------------------------------------- */

#define CONSOLE_PORT 0xe9		/* reads return 0xE9 so a guest can tell the console is there */
#define HV_CPUID_LEAF 0x40000000	/* EBX, ECX, EDX = the signature, as KVM's "KVMKVMKVM" */
#define HV_SIGNATURE "SvmJitDemoHV"	/* 12 characters */
#define CPUID_1_ECX_HYPERVISOR BIT(31)
#define CPUID_EXT_ECX_SVM BIT(2)

/* The guest's hypercalls: VMMCALL with the number in RAX, the argument in RBX, result in RAX. */
enum hv_call {
	HV_PING = 0,		/* nothing: one round trip */
	HV_REPORT = 1,		/* RBX = the guest's result, for the hypervisor to check */
	HV_EXITS = 2,		/* RAX = the #VMEXITs handled so far */
	HV_BENCH_BEGIN = 3,	/* a timed lap of a benchmark starts */
	HV_BENCH_END = 4,	/* ... and ends; RBX = its result */
};
#define HV_UNKNOWN_CALL ((u64)-1000)	/* what KVM answers (-KVM_ENOSYS) */

/* Exceptions L2 should never raise: intercepted so the hypervisor reports them. */
#define L2_FATAL_EXCEPTIONS (BIT(DE_VECTOR) | BIT(UD_VECTOR) | BIT(DF_VECTOR) | BIT(SS_VECTOR) | \
			     BIT(GP_VECTOR) | BIT(PF_VECTOR))

/* ---- the guest's side (runs in L2) --------------------------------------------------------- */

static __attribute__((noreturn)) void l2_halt(void)
{
	for (;;)
		asm volatile("hlt" ::: "memory");
}

static __attribute__((format(printf, 1, 2))) void l2_printf(const char *fmt, ...)
{
	char line[160];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	for (const char *p = line; *p; p++)
		outb(CONSOLE_PORT, (u8)*p);
}

/* The sieve's scratch: L1 and L2 share it (and all other memory). */
#define DEMO_LIMIT 1000000
static u8 scratch[DEMO_LIMIT];

/* The demo's guest: a short tour of what the hypervisor virtualizes, then real work. */
static void l2_demo(u64 unused)
{
	(void)unused;
	if (inb(CONSOLE_PORT) != CONSOLE_PORT)
		l2_halt();		/* no console to talk to */
	l2_printf("hello from L2, a guest at CPL %u started by VMRUN\n", read_cs() & 3);

	struct cpuid c = cpuid(HV_CPUID_LEAF, 0);
	u32 sig[4] = { c.b, c.c, c.d, 0 };
	bool svm = cpuid(0x80000001, 0).c & CPUID_EXT_ECX_SVM;
	bool flagged = cpuid(1, 0).c & CPUID_1_ECX_HYPERVISOR;
	l2_printf("CPUID: hypervisor bit %s, leaf 0x40000000 \"%s\", SVM %s\n", flagged ? "set" : "clear",
		  (const char *)sig, svm ? "visible" : "hidden from me");

	u64 t0 = rdtsc();
	struct primes p = sieve(scratch, DEMO_LIMIT, FNV_OFFSET);
	u64 t1 = rdtsc();
	l2_printf("primes below %u: %u, the largest %u (%lu cycles on my clock)\n", DEMO_LIMIT, p.count,
		  p.largest, t1 - t0);
	vmmcall(HV_REPORT, p.checksum);
	l2_printf("checksum 0x%016lx reported; the hypervisor has handled %lu exits for me\n", p.checksum,
		  vmmcall(HV_EXITS, 0));
	l2_printf("bye\n");
	l2_halt();
}

static void l2_bench_roundtrip(u64 n)
{
	for (u64 i = bench_warmup(n); i; i--)
		vmmcall(HV_PING, 0);
	vmmcall(HV_BENCH_BEGIN, 0);
	for (u64 i = n; i; i--)
		vmmcall(HV_PING, 0);
	vmmcall(HV_BENCH_END, 0);
	l2_halt();
}

/* Laps of n rounds for as long as the hypervisor resumes the guest after them. */
static void l2_bench_workload(u64 n)
{
	workload(scratch, bench_warmup(n));
	for (;;) {
		vmmcall(HV_BENCH_BEGIN, 0);
		vmmcall(HV_BENCH_END, workload(scratch, n));
	}
}

/* ---- the hypervisor (L1) ------------------------------------------------------------------ */

static struct hv {
	struct vmcb *vmcb;
	u64 exits;			/* #VMEXITs handled */
	u64 tsc_base;			/* L2's clock reads 0 here */
	bool nrips;			/* the CPU fills NRIP (read once: CPUID is not free) */
	char line[160];			/* console output not yet printed */
	unsigned line_len;
	bool reported;
	u64 report;			/* HV_REPORT's argument */
	/* The benchmark in progress: the name of L2's laps, their size, how many to run and have
	   run, when the current lap began, the pings since. */
	const char *bench;
	u64 bench_n, laps, laps_done, lap_start, pings;
	bool bench_roundtrip;		/* a lap's result is the pings the hypervisor saw */
} hv;

/* RIP past the intercepted instruction: NRIP when the CPU provides it (§3.11), else its length. */
static void skip(struct vmcb *v, unsigned len)
{
	v->save.rip = hv.nrips ? v->control.next_rip : v->save.rip + len;
}

static void lap_begin(const char *name)
{
	hv.pings = 0;
	printf("svmjit-bench: begin %s n=%lu\n", name, hv.bench_n);
	hv.lap_start = cycles();
}

static void lap_end(const char *name, u64 result)
{
	u64 spent = cycles() - hv.lap_start;
	printf("svmjit-bench: end %s n=%lu cycles=%lu result=0x%lx\n", name, hv.bench_n, spent, result);
}

static void console_flush(void)
{
	if (!hv.line_len)
		return;
	hv.line[hv.line_len] = 0;
	printf("  L2 | %s\n", hv.line);
	hv.line_len = 0;
}

static void console_put(char ch)
{
	if (ch != '\n')
		hv.line[hv.line_len++] = ch;
	if (ch == '\n' || hv.line_len == sizeof(hv.line) - 1)
		console_flush();
}

static __attribute__((noreturn)) void unexpected(const char *what)
{
	struct vmcb *v = hv.vmcb;
	console_flush();
	printf("hypervisor: %s: #VMEXIT 0x%lx at L2 RIP 0x%lx (EXITINFO1 0x%lx, EXITINFO2 0x%lx); stopping\n",
	       what, v->control.exit_code, v->save.rip, v->control.exit_info_1, v->control.exit_info_2);
	finish(1);
}

/* Each handler emulates one exit and returns false when the guest is done (not to be resumed). */

static bool handle_io(struct vmcb *v)
{
	u64 info = v->control.exit_info_1;	/* §4.3 */
	if (info >> 16 != CONSOLE_PORT || (info & (IOIO_STR | IOIO_SZ16 | IOIO_SZ32)))
		unexpected("I/O the hypervisor does not emulate");
	if (info & IOIO_TYPE_IN)
		v->save.rax = (v->save.rax & ~0xffull) | CONSOLE_PORT;
	else
		console_put((char)v->save.rax);
	v->save.rip = v->control.exit_info_2;	/* §4.2: the next RIP, with or without NRIPS */
	return true;
}

static bool handle_cpuid(struct vmcb *v)
{
	u32 leaf = (u32)v->save.rax;
	struct cpuid c;
	if (leaf == HV_CPUID_LEAF) {
		c.a = HV_CPUID_LEAF;
		memcpy(&c.b, HV_SIGNATURE, 4);
		memcpy(&c.c, HV_SIGNATURE + 4, 4);
		memcpy(&c.d, HV_SIGNATURE + 8, 4);
	} else {
		c = cpuid(leaf, (u32)svm_gregs.rcx);
		if (leaf == 1)
			c.c |= CPUID_1_ECX_HYPERVISOR;
		/* No nested SVM for L2: the bit goes, and with it the SVM leaf's contents. */
		if (leaf == 0x80000001)
			c.c &= ~CPUID_EXT_ECX_SVM;
		if (leaf == 0x8000000a)
			c = (struct cpuid){ 0, 0, 0, 0 };
	}
	v->save.rax = c.a;
	svm_gregs.rbx = c.b;
	svm_gregs.rcx = c.c;
	svm_gregs.rdx = c.d;
	skip(v, 2);
	return true;
}

static bool handle_rdtsc(struct vmcb *v)
{
	u64 t = cycles() - hv.tsc_base;
	v->save.rax = (u32)t;
	svm_gregs.rdx = t >> 32;
	skip(v, 2);
	return true;
}

static bool handle_vmmcall(struct vmcb *v)
{
	u64 ret = 0;
	bool resume = true;
	switch (v->save.rax) {
	case HV_PING:
		hv.pings++;
		break;
	case HV_REPORT:
		hv.reported = true;
		hv.report = svm_gregs.rbx;
		break;
	case HV_EXITS:
		ret = hv.exits;
		break;
	case HV_BENCH_BEGIN:
		lap_begin(hv.bench);
		break;
	case HV_BENCH_END:
		lap_end(hv.bench, hv.bench_roundtrip ? hv.pings : svm_gregs.rbx);
		if (hv.bench_roundtrip)
			break;
		/* The same lap in L1 right after L2's, then L2's next one, until all laps ran. */
		lap_begin("l1");
		lap_end("l1", workload(scratch, hv.bench_n));
		resume = ++hv.laps_done < hv.laps;
		break;
	default:
		ret = HV_UNKNOWN_CALL;
	}
	v->save.rax = ret;
	skip(v, 3);
	return resume;
}

static bool handle_hlt(struct vmcb *v)
{
	skip(v, 1);
	return false;
}

/* The exits this hypervisor handles: what it intercepts, how, and how often it happened. */
static struct exit_handler {
	u64 code;
	const char *name;
	bool (*handle)(struct vmcb *v);
	u64 count;
} handlers[] = {
	{ SVM_EXIT_IOIO, "IOIO", handle_io, 0 },
	{ SVM_EXIT_CPUID, "CPUID", handle_cpuid, 0 },
	{ SVM_EXIT_RDTSC, "RDTSC", handle_rdtsc, 0 },
	{ SVM_EXIT_VMMCALL, "VMMCALL", handle_vmmcall, 0 },
	{ SVM_EXIT_HLT, "HLT", handle_hlt, 0 },
};

/* The VMCB for fn(arg) in L2: the baseline of lib/svm.c plus this hypervisor's intercepts. */
static void setup_guest(void (*fn)(u64), u64 arg)
{
	hv.vmcb = vmcb_alloc();
	vmcb_init_guest(hv.vmcb, fn, arg);
	for (size_t i = 0; i < ARRAY_SIZE(handlers); i++)
		vmcb_set_intercept(hv.vmcb, handlers[i].code);
	hv.vmcb->control.intercept_exceptions |= L2_FATAL_EXCEPTIONS;
	iopm_set(CONSOLE_PORT, true);
	hv.nrips = svm_has(SVM_FEAT_NRIPS);
	hv.tsc_base = cycles();
}

/* VMRUN until the guest halts, handing each #VMEXIT to its handler. */
static void run_guest(void)
{
	for (;;) {
		u64 code = svm_run(hv.vmcb);
		hv.exits++;
		/* The first VMRUN flushed the guest's ASID (vmcb_init asks for it); from then on its
		   translations stay valid across exits, as with KVM's TLB_CONTROL_DO_NOTHING. */
		hv.vmcb->control.tlb_control = 0;
		size_t i = 0;
		while (i < ARRAY_SIZE(handlers) && handlers[i].code != code)
			i++;
		if (i == ARRAY_SIZE(handlers)) {
			char what[48];
			if (code >= SVM_EXIT_EXCP_BASE && code < SVM_EXIT_EXCP_BASE + 32)
				snprintf(what, sizeof(what), "L2 raised exception %lu", code - SVM_EXIT_EXCP_BASE);
			else
				snprintf(what, sizeof(what), "an exit the hypervisor does not handle");
			unexpected(what);
		}
		handlers[i].count++;
		if (!handlers[i].handle(hv.vmcb))
			return;
	}
}

static void print_banner(void)
{
	static const struct { u32 bit; const char *name; } features[] = {
		{ SVM_FEAT_NP, "NP" }, { SVM_FEAT_LBRV, "LBRV" }, { SVM_FEAT_NRIPS, "NRIPS" },
		{ SVM_FEAT_TSC_RATE, "TscRate" }, { SVM_FEAT_VMCB_CLEAN, "VmcbClean" },
		{ SVM_FEAT_FLUSH_ASID, "FlushByAsid" }, { SVM_FEAT_DECODE_ASSISTS, "DecodeAssists" },
		{ SVM_FEAT_PAUSE_FILTER, "PauseFilter" }, { SVM_FEAT_VGIF, "vGIF" }, { SVM_FEAT_VNMI, "vNMI" },
	};
	struct cpuid c = cpuid(0x8000000a, 0);
	printf("hypervisor: SVM revision %u, %u ASIDs, features:", c.a & 0xff, c.b);
	for (size_t i = 0; i < ARRAY_SIZE(features); i++)
		if (c.d & features[i].bit)
			printf(" %s", features[i].name);
	printf("\nhypervisor: L2 %s\n", svm_has(SVM_FEAT_NP) ? "runs under identity nested page tables"
							     : "shares L1's page tables (no nested paging)");
}

static void print_exits(void)
{
	printf("hypervisor: L2 halted; %lu #VMEXITs handled:\n", hv.exits);
	for (size_t i = 0; i < ARRAY_SIZE(handlers); i++)
		if (handlers[i].count)
			printf("hypervisor:   %-8s (0x%03lx) %6lu\n", handlers[i].name, handlers[i].code,
			       handlers[i].count);
}

static void demo(void)
{
	print_banner();
	setup_guest(l2_demo, 0);
	printf("hypervisor: intercepting");
	for (size_t i = 0; i < ARRAY_SIZE(handlers); i++) {
		printf(" %s", handlers[i].name);
		if (handlers[i].code == SVM_EXIT_IOIO)
			printf(" (port 0x%x)", CONSOLE_PORT);
		printf(",");
	}
	printf(" and exceptions");
	for (int v = 0; v < 32; v++)
		if (L2_FATAL_EXCEPTIONS & BIT(v))
			printf(" %d", v);
	printf("; VMRUN\n");
	run_guest();
	console_flush();
	print_exits();

	/* Trust, but verify: the same sieve in L1 must give L2's checksum. */
	struct primes p = sieve(scratch, DEMO_LIMIT, FNV_OFFSET);
	if (!hv.reported || hv.report != p.checksum) {
		printf("hypervisor: L2 reported %s0x%lx, L1 computes 0x%lx: MISMATCH\n", hv.reported ? "" : "nothing, not ",
		       hv.report, p.checksum);
		finish(1);
	}
	printf("hypervisor: L2's checksum matches the sieve L1 ran itself; done\n");
	finish(0);
}

/* ---- the command line ---------------------------------------------------------------------- */

/* The text after " key=" on the command line (up to the next space), or NULL. */
static const char *option(const char *key, char *buf, size_t size)
{
	char pattern[32];
	snprintf(pattern, sizeof(pattern), " %s=", key);
	const char *at = strstr(mb_cmdline(), pattern);
	if (!at)
		return NULL;
	at += strlen(pattern);
	size_t n = 0;
	while (at[n] && at[n] != ' ' && n + 1 < size)
		buf[n] = at[n], n++;
	buf[n] = 0;
	return buf;
}

static u64 number_option(const char *key, u64 fallback)
{
	char buf[24];
	const char *text = option(key, buf, sizeof(buf));
	if (!text)
		return fallback;
	u64 v = 0;
	for (const char *p = text; *p; p++) {
		if (*p < '0' || *p > '9') {
			printf("hypervisor: %s=%s is not a number\n", key, text);
			finish(2);
		}
		v = v * 10 + (u64)(*p - '0');
	}
	return v;
}

static void bench(const char *name)
{
	hv.bench_n = number_option("n", 0);
	hv.laps = number_option("laps", 1);
	if (!hv.bench_n || !hv.laps) {
		printf("hypervisor: bench=%s needs n=<positive count> (and laps=<positive count>, default 1)\n", name);
		finish(2);
	}
	if (!strncmp(name, "roundtrip", 10)) {
		hv.bench = "roundtrip";
		hv.bench_roundtrip = true;
		setup_guest(l2_bench_roundtrip, hv.bench_n);
	} else if (!strncmp(name, "workload", 9)) {
		hv.bench = "l2";
		workload(scratch, bench_warmup(hv.bench_n));	/* L1's warm-up; L2 warms up in L2 */
		setup_guest(l2_bench_workload, hv.bench_n);
	} else {
		printf("hypervisor: unknown bench=%s (roundtrip or workload)\n", name);
		finish(2);
	}
	run_guest();
	finish(0);
}

void test_main(void)
{
	detect_svmjit();
	svm_setup();
	char buf[16];
	const char *name = option("bench", buf, sizeof(buf));
	if (name)
		bench(name);
	demo();
}
