/*
 * Test reporting: one line per check ("PASS: ...", "FAIL: ...", "SKIP: ...", "XFAIL: ..."),
 * a final "SUMMARY: n tests, m failed" line, and the exit through QEMU's isa-debug-exit
 * device at port 0xF4, whose exit status is (value << 1) | 1 (so 1 = all passed, 3 = failures).
 *
 * The line format is what the host-side runner parses; keep it stable.
 */
#include "runtime.h"

static unsigned tests, failures, skips, xfails;

static const char *deviation;		/* set by qemu_deviation() for the next check */

/* Count and print one check; `name` has been formatted already. */
static bool record(bool pass, const char *name, const char *detail)
{
	const char *why = deviation;
	deviation = NULL;
	tests++;
	if (pass) {
		printf("PASS: %s\n", name);
	} else if (why && qemu_quirks()) {
		xfails++;
		printf("XFAIL: %s%s (known QEMU deviation: %s)\n", name, detail, why);
	} else {
		failures++;
		printf("FAIL: %s%s\n", name, detail);
	}
	return pass;
}

bool report(bool pass, const char *fmt, ...)
{
	char name[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(name, sizeof(name), fmt, ap);
	va_end(ap);
	return record(pass, name, "");
}

bool expect_eq(const char *name, u64 got, u64 expected)
{
	char detail[64];
	snprintf(detail, sizeof(detail), " (got 0x%lx, expected 0x%lx)", got, expected);
	return record(got == expected, name, detail);
}

void report_skip(const char *name, const char *why)
{
	skips++;
	printf("SKIP: %s (%s)\n", name, why);
}

bool qemu_quirks(void)
{
	return strstr(mb_cmdline(), "qemu-quirks") != NULL;
}

void qemu_deviation(const char *why)
{
	deviation = why;
}

bool qemu_cannot_run(const char *name, const char *why)
{
	if (!qemu_quirks())
		return false;
	tests++;
	xfails++;
	printf("XFAIL: %s (known QEMU deviation: %s; not run)\n", name, why);
	return true;
}

void exit(int code)
{
	outb(0xf4, (u8)code);
	/* Only reached without isa-debug-exit: stop here rather than run off into memory. */
	for (;;)
		asm volatile("cli; hlt");
}

void report_summary_and_exit(void)
{
	printf("SUMMARY: %u tests, %u failed", tests, failures);
	if (skips)
		printf(", %u skipped", skips);
	if (xfails)
		printf(", %u known QEMU deviations", xfails);
	printf("\n");
	exit(failures ? 1 : 0);
}
