/*
 * hypercall: svmjit's hypercall ABI (README "Hypercalls"; spec/svm.md §1.4): VMMCALL executed
 * by the booted program itself is serviced by the emulator — console output, the cycle counter,
 * -1000 for an unknown number, -1 when called from CPL 3 — and never raises #UD. This image is
 * for svmjit only: QEMU has no such ABI (its VMMCALL is #UD outside a guest).
 */
#include "runtime.h"

static u64 vmmcall(u64 nr, u64 a1, u64 a2)
{
	u64 ret;
	asm volatile("vmmcall" : "=a"(ret) : "a"(nr), "b"(a1), "c"(a2) : "memory");
	return ret;
}

static u64 user_hypercall(u64 nr)
{
	return vmmcall(nr, 0, 0);
}

void test_main(void)
{
	static const char text[] = "hypercall console: hello from VMMCALL\n";
	expect_eq("WRITE returns the number of bytes written", vmmcall(1, (u64)text, sizeof text - 1), sizeof text - 1);
	u64 t0 = vmmcall(3, 0, 0);
	for (volatile int i = 0; i < 1000; i++)
		;
	u64 t1 = vmmcall(3, 0, 0);
	report(t1 > t0 + 1000, "CYCLES advances with the instructions run (%lu then %lu)", t0, t1);
	expect_eq("an unknown hypercall returns -1000 (KVM's -KVM_ENOSYS)", vmmcall(0x7777, 0, 0), (u64)-1000);
	ex_check_none("host-mode VMMCALL never raises #UD (spec §1.4)");
	expect_eq("a hypercall from CPL 3 is refused with -1 (KVM's -KVM_EPERM)", user_run(user_hypercall, 3, 0), (u64)-1);
	/* EFER.SVME is not needed for the hypercall (spec §1.4): it is clear here. */
	report(!(rdmsr(0xc0000080) & (1 << 12)), "EFER.SVME is clear while the hypercalls above ran");
}
