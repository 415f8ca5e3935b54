/*
 * svm_basic: enabling SVM and the checks every SVM instruction shares (../shared/spec/svm.md §2,
 * §5.1, §5.10), the seed behaviour S0 (rAX checks of VMRUN/VMLOAD/VMSAVE and their exit codes in
 * L2, §8.1), VMMCALL executed by L2 (S3, §8.4), and the plain round trips T-01, T-02, T-30, T-31.
 *
 * The L1 hypercall ABI (S3-1, S3-2) belongs to svmjit alone and is tested by tests/hypercall.c:
 * under QEMU an L1 VMMCALL is #UD.
 */
#include "svm.h"

#define NONCANONICAL_FS 0x0000800012345000ull	/* bit 47 set, bits 63:48 clear */

static struct vmcb *vmcb, *other;
static u8 *backup;				/* VMSAVE of L1 before tests that VMLOAD junk */

/* Fresh baseline VMCB running fn(arg) (§8.0). */
static struct vmcb *guest(void (*fn)(u64), u64 arg)
{
	vmcb_init_guest(vmcb, fn, arg);
	return vmcb;
}

static void guest_nothing(u64 arg) { (void)arg; }

/* ---- §2 enabling --------------------------------------------------------------------------- */

static void test_cpuid(void)
{
	struct cpuid c = cpuid(0x8000000a, 0);
	report(svm_supported(), "§2.1 CPUID Fn8000_0001 ECX[2] (SVM) = 1");
	expect_eq("§2.1 CPUID Fn8000_0001 ECX[12] (SKINIT) = 0: SKINIT not implemented",
		  cpuid(0x80000001, 0).c & BIT(12), 0);
	expect_eq("§2.1 CPUID Fn8000_000A EAX[7:0] SvmRev = 1", c.a & 0xff, 1);
	report(c.b >= 2, "§2.1 CPUID Fn8000_000A EBX (NASID) >= 2 (got %u)", c.b);
	expect_eq("§2.1 CPUID Fn8000_000A ECX reserved = 0", c.c, 0);
	qemu_deviation("TCG does not implement NRIPS");
	report(c.d & SVM_FEAT_NRIPS, "§2.1 CPUID Fn8000_000A EDX[3] NRIPS = 1 (recommended, issue 5 implements NRIP)");
	report(c.d & SVM_FEAT_ADDR_CHK, "§2.1 CPUID Fn8000_000A EDX[28] NestedVirtVmcbAddrChk = 1");
	printf("  SVM features EDX = 0x%x, MAXPHYADDR = %d\n", c.d, max_phys_addr_bits());
}

/* The SVM instructions of §5.1 with their #UD/#GP sites; rAX points at a valid page. */
static void try_svm_insn(int i, u64 rax)
{
	switch (i) {
	case 0: TRY("vmrun %%rax", : : "a"(rax) : "memory"); break;
	case 1: TRY("vmload %%rax", : : "a"(rax) : "memory"); break;
	case 2: TRY("vmsave %%rax", : : "a"(rax) : "memory"); break;
	case 3: TRY("stgi", ::: "memory"); break;
	case 4: TRY("clgi", ::: "memory"); break;
	case 5: TRY("invlpga %%rax, %%ecx", : : "a"(rax), "c"(1) : "memory"); break;
	default: TRY("skinit %%eax", : : "a"(rax) : "memory"); break;
	}
}
static const char *const svm_insn_names[] = { "VMRUN", "VMLOAD", "VMSAVE", "STGI", "CLGI", "INVLPGA", "SKINIT" };

static void test_efer_svme(void)
{
	u64 efer = rdmsr(MSR_EFER);
	report(efer & EFER_SVME, "§2.2 WRMSR EFER.SVME = 1 sticks (SVM advertised)");

	/* §2.2/§5.1 step 1: with EFER.SVME = 0 every SVM instruction is #UD. */
	vmsave((u64)backup);
	wrmsr(MSR_EFER, efer & ~EFER_SVME);
	for (int i = 0; i < 7; i++) {
		char name[96];
		try_svm_insn(i, (u64)other);
		snprintf(name, sizeof(name), "§5.1 step 1: %s with EFER.SVME = 0 is #UD", svm_insn_names[i]);
		ex_check(name, UD_VECTOR, 0, ex_site);
	}
	wrmsr(MSR_EFER, efer);
	vmload((u64)backup);

	/* §1.3/§2.2: writing EFER.SVME does not change GIF, in either direction. */
	report(svm_gif_probe(), "§1.3 GIF = 1 after reset");
	wrmsr(MSR_EFER, efer & ~EFER_SVME);
	wrmsr(MSR_EFER, efer);
	report(svm_gif_probe(), "§1.3 clearing and setting EFER.SVME leaves GIF = 1");
	clgi();
	wrmsr(MSR_EFER, efer & ~EFER_SVME);
	wrmsr(MSR_EFER, efer);
	report(!svm_gif_probe(), "§1.3 clearing EFER.SVME does not set GIF (GIF stays 0 after CLGI)");
	stgi();
	report(svm_gif_probe(), "§5.8 STGI sets GIF = 1");
}

/* User-mode bodies for §5.1 step 2 (CPL > 0 is #GP(0)). */
static u64 user_svm_insn(u64 i)
{
	try_svm_insn((int)i, (u64)other);
	return (u64)ex_vector();
}

static void test_cpl(void)
{
	for (int i = 0; i < 6; i++) {
		char name[96];
		u64 vec = user_run(user_svm_insn, i, 0);
		snprintf(name, sizeof(name), "§5.1 step 2: %s at CPL3 is #GP(0)", svm_insn_names[i]);
		report(vec == GP_VECTOR && last_ex.error_code == 0 && last_ex.rip == ex_site,
		       "%s (got vector %ld error code 0x%lx)", name, (s64)vec, last_ex.error_code);
	}
	/* §5.10: INVLPGA never faults on the address, canonical or not. */
	TRY("invlpga %%rax, %%ecx", : : "a"(0x12345000ull), "c"(1) : "memory");
	ex_check_none("§5.10 INVLPGA in L1 of an unmapped address: no exception");
	TRY("invlpga %%rax, %%ecx", : : "a"(0x8000000000000000ull), "c"(7) : "memory");
	ex_check_none("§5.10 INVLPGA in L1 of a non-canonical address: no exception");
}

static void test_msrs(void)
{
	u64 v = ~0ull;
	int vec = rdmsr_safe(MSR_VM_CR, &v);
	report(vec < 0 && v == 0, "§2.3 RDMSR VM_CR = 0 after reset (vector %d, value 0x%lx)", vec, v);
	qemu_deviation("TCG ignores writes to VM_CR (an MSR it does not implement)");
	report(wrmsr_safe(MSR_VM_CR, BIT(5)) == GP_VECTOR, "§2.3 WRMSR VM_CR with reserved bit 5: #GP(0)");
	qemu_deviation("TCG ignores writes to VM_CR");
	report(wrmsr_safe(MSR_VM_CR, VM_CR_SVMDIS) == GP_VECTOR,
	       "§2.3 WRMSR VM_CR.SVMDIS while EFER.SVME = 1: #GP(0)");
	v = ~0ull;
	rdmsr_safe(MSR_VM_CR, &v);
	expect_eq("§2.3 VM_CR unchanged by the faulting writes", v, 0);

	/* §2.2: SVMDIS makes EFER.SVME must-be-zero. */
	u64 efer = rdmsr(MSR_EFER);
	wrmsr(MSR_EFER, efer & ~EFER_SVME);
	report(wrmsr_safe(MSR_VM_CR, VM_CR_SVMDIS) < 0, "§2.3 WRMSR VM_CR.SVMDIS with EFER.SVME = 0 is accepted");
	v = 0;
	rdmsr_safe(MSR_VM_CR, &v);
	qemu_deviation("TCG does not implement VM_CR");
	expect_eq("§2.3 VM_CR reads back SVMDIS", v & VM_CR_SVMDIS, VM_CR_SVMDIS);
	qemu_deviation("TCG does not implement VM_CR.SVMDIS");
	report(wrmsr_safe(MSR_EFER, efer) == GP_VECTOR, "§2.2 WRMSR EFER.SVME = 1 while VM_CR.SVMDIS = 1: #GP(0)");
	wrmsr(MSR_EFER, efer & ~EFER_SVME);
	report(wrmsr_safe(MSR_VM_CR, 0) < 0, "§2.3 VM_CR.SVMDIS cleared again while LOCK = 0");
	report(wrmsr_safe(MSR_EFER, efer) < 0 && (rdmsr(MSR_EFER) & EFER_SVME),
	       "§2.2 EFER.SVME can be set again once SVMDIS = 0");

	/* §2.4 VM_HSAVE_PA. */
	expect_eq("§2.4 RDMSR VM_HSAVE_PA returns the value written", rdmsr(MSR_VM_HSAVE_PA), svm_hsave_pa);
	report(wrmsr_safe(MSR_VM_HSAVE_PA, svm_hsave_pa | 0x800) == GP_VECTOR,
	       "§2.4 WRMSR VM_HSAVE_PA not 4 KiB aligned: #GP(0)");
	wrmsr(MSR_VM_HSAVE_PA, svm_hsave_pa);
	report(wrmsr_safe(MSR_VM_HSAVE_PA, svm_maxphyaddr()) == GP_VECTOR,
	       "§2.4 WRMSR VM_HSAVE_PA = 2^MAXPHYADDR: #GP(0)");
	wrmsr(MSR_VM_HSAVE_PA, svm_hsave_pa);
	expect_eq("§2.4 VM_HSAVE_PA unchanged by the faulting writes", rdmsr(MSR_VM_HSAVE_PA), svm_hsave_pa);

	/* §2.4 (KVM): VMRUN with VM_HSAVE_PA = 0 is #GP(0). */
	wrmsr(MSR_VM_HSAVE_PA, 0);
	guest(guest_nothing, 0);
	svm_vmrun_try((u64)vmcb, 0);
	stgi();
	wrmsr(MSR_VM_HSAVE_PA, svm_hsave_pa);
	qemu_deviation("TCG runs the guest with the host save area at 0");
	ex_check("§2.4 VMRUN with VM_HSAVE_PA = 0: #GP(0) at the VMRUN", GP_VECTOR, 0, (u64)svm_vmrun_insn);

	/* §2.5: TSC_RATIO exists only with TscRateMsr; §2.6: SMM_CTL and SVM_KEY are not emulated. */
	if (svm_has(SVM_FEAT_TSC_RATE)) {
		v = 0;
		rdmsr_safe(MSR_TSC_RATIO, &v);
		expect_eq("§2.5 TSC_RATIO resets to 1.0 (0x1_0000_0000)", v, 0x100000000ull);
		report(wrmsr_safe(MSR_TSC_RATIO, BIT(40)) == GP_VECTOR, "§2.5 WRMSR TSC_RATIO bit 40: #GP(0)");
	} else {
		qemu_deviation("TCG reads an unknown MSR as 0");
		report(rdmsr_safe(MSR_TSC_RATIO, &v) == GP_VECTOR, "§2.5 RDMSR TSC_RATIO without TscRateMsr: #GP(0)");
		qemu_deviation("TCG ignores WRMSR to an unknown MSR");
		report(wrmsr_safe(MSR_TSC_RATIO, 0x100000000ull) == GP_VECTOR,
		       "§2.5 WRMSR TSC_RATIO without TscRateMsr: #GP(0)");
	}
	qemu_deviation("TCG reads an unknown MSR as 0");
	report(rdmsr_safe(MSR_SMM_CTL, &v) == GP_VECTOR, "§2.6 RDMSR SMM_CTL (C001_0116): #GP(0)");
	qemu_deviation("TCG reads an unknown MSR as 0");
	report(rdmsr_safe(MSR_SVM_KEY, &v) == GP_VECTOR, "§2.6 RDMSR SVM_KEY (C001_0118): #GP(0)");
	report(wrmsr_safe(MSR_VM_IGNNE, 0) < 0, "§2.6 WRMSR VM_IGNNE is accepted");
}

/* §2.3: with VM_CR.LOCK = 1 the LOCK and SVMDIS bits keep their values. Run last but one:
   nothing can unlock VM_CR afterwards (SVML is not offered). */
static void test_vm_cr_lock(void)
{
	u64 v = 0;
	report(wrmsr_safe(MSR_VM_CR, VM_CR_LOCK) < 0, "§2.3 WRMSR VM_CR.LOCK = 1 is accepted");
	rdmsr_safe(MSR_VM_CR, &v);
	qemu_deviation("TCG does not implement VM_CR");
	expect_eq("§2.3 VM_CR.LOCK reads back 1", v & VM_CR_LOCK, VM_CR_LOCK);
	u64 efer = rdmsr(MSR_EFER);
	wrmsr(MSR_EFER, efer & ~EFER_SVME);
	wrmsr_safe(MSR_VM_CR, VM_CR_LOCK | VM_CR_SVMDIS | BIT(0));
	wrmsr_safe(MSR_VM_CR, 0);
	v = 0;
	rdmsr_safe(MSR_VM_CR, &v);
	qemu_deviation("TCG does not implement VM_CR");
	expect_eq("§2.3 VM_CR with LOCK = 1: writes keep LOCK = 1, SVMDIS = 0 (bits 3-4 frozen)",
		  v & (VM_CR_LOCK | VM_CR_SVMDIS), VM_CR_LOCK);
	report(wrmsr_safe(MSR_EFER, efer) < 0 && (rdmsr(MSR_EFER) & EFER_SVME),
	       "§2.2 EFER.SVME can still be set with VM_CR locked and SVMDIS = 0");
}

/* ---- S0: rAX checks in L1 (§8.1) ----------------------------------------------------------- */

static u8 vmcb_copy[4096];

static void test_s0_host(void)
{
	u64 misaligned = (u64)other + 0x10, beyond = svm_maxphyaddr();
	u64 not_ram = svm_maxphyaddr() - PAGE_SIZE;	/* legal and aligned, far above any RAM */

	guest(guest_nothing, 0);
	memcpy(vmcb_copy, vmcb, sizeof(vmcb_copy));
	vmcb_init_guest(other, guest_nothing, 0);
	memcpy(vmcb_copy, other, sizeof(vmcb_copy));
	vmsave((u64)backup);

	/* S0-1: misaligned rAX: #GP(0) at the instruction, the page untouched, GIF unchanged. */
	svm_vmrun_try(misaligned, 0);
	bool gif = svm_gif_probe();
	stgi();
	ex_check("S0-1 VMRUN with RAX = VMCB + 0x10: #GP(0) at the VMRUN", GP_VECTOR, 0, (u64)svm_vmrun_insn);
	report(memcmp(vmcb_copy, other, sizeof(vmcb_copy)) == 0, "S0-1 VMRUN misaligned: the VMCB page is not written");
	report(gif, "S0-1 VMRUN misaligned: GIF unchanged (still 1)");

	TRY("vmload %%rax", : : "a"(misaligned) : "memory");
	vmload((u64)backup);
	ex_check("S0-1 VMLOAD with RAX = page + 0x10: #GP(0)", GP_VECTOR, 0, ex_site);
	memcpy(vmcb_copy, other, sizeof(vmcb_copy));
	TRY("vmsave %%rax", : : "a"(misaligned) : "memory");
	ex_check("S0-1 VMSAVE with RAX = page + 0x10: #GP(0)", GP_VECTOR, 0, ex_site);
	report(memcmp(vmcb_copy, other, sizeof(vmcb_copy)) == 0, "S0-1 VMSAVE misaligned: the page is not written");

	/* S0-2: rAX = 2^MAXPHYADDR (aligned, beyond the physical-address width). */
	TRY("vmload %%rax", : : "a"(beyond) : "memory");
	vmload((u64)backup);
	ex_check("S0-2 VMLOAD with RAX = 2^MAXPHYADDR: #GP(0)", GP_VECTOR, 0, ex_site);
	svm_vmrun_try(beyond, 0);
	stgi();
	ex_check("S0-2 VMRUN with RAX = 2^MAXPHYADDR: #GP(0)", GP_VECTOR, 0, (u64)svm_vmrun_insn);
	TRY("vmsave %%rax", : : "a"(beyond) : "memory");
	ex_check("S0-2 VMSAVE with RAX = 2^MAXPHYADDR: #GP(0)", GP_VECTOR, 0, ex_site);

	/* S0-3: a legal, aligned rAX that is not RAM (§5.2 step 4). */
	svm_vmrun_try(not_ram, 0);
	stgi();
	qemu_deviation("QEMU 7.2 reads the VMCB from unassigned memory (the VMRUN then fails its consistency checks)");
	ex_check("S0-3 VMRUN with RAX = 2^MAXPHYADDR - 4 KiB (not RAM): #GP(0)", GP_VECTOR, 0,
		 (u64)svm_vmrun_insn);
	report(svm_gif_probe(), "S0 after the faulting VMRUNs L1 still runs in host mode with GIF = 1");
}

/* ---- S0 in L2 -------------------------------------------------------------------------------- */

static void guest_vmload(u64 rax) { TRY("vmload %%rax", : : "a"(rax) : "memory"); }
static void guest_vmsave(u64 rax) { TRY("vmsave %%rax", : : "a"(rax) : "memory"); }
static void guest_vmrun(u64 rax) { TRY("vmrun %%rax", : : "a"(rax) : "memory"); }

/* An exit for an instruction intercept: code, RIP at the instruction, EXITINFO = 0, NRIP = +len. */
static void check_insn_exit(const char *id, struct vmcb *v, u64 code, u64 site, unsigned len)
{
	char name[160];
	snprintf(name, sizeof(name), "%s: exit 0x%03lx", id, code);
	expect_exit(name, v, code);
	snprintf(name, sizeof(name), "%s: vmcb12 RIP = the instruction", id);
	expect_eq(name, v->save.rip, site);
	snprintf(name, sizeof(name), "%s: EXITINFO1 = EXITINFO2 = 0 (§4.2)", id);
	report(v->control.exit_info_1 == 0 && v->control.exit_info_2 == 0, "%s (0x%lx, 0x%lx)", name,
	       v->control.exit_info_1, v->control.exit_info_2);
	snprintf(name, sizeof(name), "%s: NRIP = RIP + %u (§3.11)", id, len);
	if (svm_has(SVM_FEAT_NRIPS))
		expect_eq(name, v->control.next_rip, site + len);
	else
		report_skip(name, "NRIPS not advertised");
}

static void test_s0_guest(void)
{
	struct vmcb *v;
	u64 misaligned = (u64)other + 0x10;

	/* S0-4: the #GP for a misaligned rAX beats the VMLOAD intercept and goes to L2. */
	v = guest(guest_vmload, misaligned);
	vmcb_set_intercept(v, SVM_EXIT_VMLOAD);
	svm_run(v);
	expect_exit("S0-4 L2 VMLOAD misaligned, VMLOAD intercepted: no #VMEXIT(VMLOAD), L2 runs on to VMMCALL",
		    v, SVM_EXIT_VMMCALL);
	ex_check("S0-4 ... #GP(0) delivered to L2's handler at the VMLOAD", GP_VECTOR, 0, ex_site);

	/* S0-5: the same with #GP intercepted. */
	v = guest(guest_vmload, misaligned);
	vmcb_set_intercept(v, SVM_EXIT_VMLOAD);
	vmcb_intercept_exception(v, GP_VECTOR, true);
	svm_run(v);
	expect_exit("S0-5 L2 VMLOAD misaligned, #GP intercepted: exit 0x04D, not 0x082", v, SVM_EXIT_EXCP_BASE + GP_VECTOR);
	expect_eq("S0-5 ... EXITINFO1 = error code 0", v->control.exit_info_1, 0);
	expect_eq("S0-5 ... vmcb12 RIP = the VMLOAD", v->save.rip, ex_site);

	/* S0-6 / T-02 / T-31: valid rAX, intercept set: the instruction's own exit. */
	v = guest(guest_vmrun, (u64)vmcb);
	svm_run(v);
	check_insn_exit("S0-6/T-02 L2 VMRUN with RAX = vmcb12", v, SVM_EXIT_VMRUN, ex_site, 3);
	expect_eq("S0-6 L2 VMRUN: L2's RAX saved unchanged", v->save.rax, (u64)vmcb);
	v = guest(guest_vmload, (u64)other);
	vmcb_set_intercept(v, SVM_EXIT_VMLOAD);
	svm_run(v);
	check_insn_exit("S0-6 L2 VMLOAD intercepted", v, SVM_EXIT_VMLOAD, ex_site, 3);
	expect_eq("S0-6 L2 VMLOAD: L2's RAX saved unchanged", v->save.rax, (u64)other);
	v = guest(guest_vmsave, (u64)other);
	vmcb_set_intercept(v, SVM_EXIT_VMSAVE);
	svm_run(v);
	check_insn_exit("S0-6 L2 VMSAVE intercepted", v, SVM_EXIT_VMSAVE, ex_site, 3);
	expect_eq("S0-6 L2 VMSAVE: L2's RAX saved unchanged", v->save.rax, (u64)other);

	/* S0-7: the CPL check (#GP) beats the VMSAVE intercept. */
	v = guest(guest_vmsave, (u64)other);
	vmcb_user_mode(v);
	vmcb_set_intercept(v, SVM_EXIT_VMSAVE);
	vmcb_intercept_exception(v, GP_VECTOR, true);
	svm_run(v);
	expect_exit("S0-7 L2 at CPL3 VMSAVE, VMSAVE and #GP intercepted: exit 0x04D", v, SVM_EXIT_EXCP_BASE + GP_VECTOR);
	expect_eq("S0-7 ... vmcb12 RIP = the VMSAVE", v->save.rip, ex_site);
	expect_eq("S0-7 ... vmcb12 CPL = 3", v->save.cpl, 3);
	v = guest(guest_vmsave, (u64)other);
	vmcb_user_mode(v);
	vmcb_set_intercept(v, SVM_EXIT_VMSAVE);
	svm_run(v);
	expect_exit("S0-7 L2 at CPL3 VMSAVE, #GP not intercepted: L2 handles #GP, then VMMCALL", v, SVM_EXIT_VMMCALL);
	ex_check("S0-7 ... #GP(0) in L2 at the VMSAVE", GP_VECTOR, 0, ex_site);

	/* S0-9: un-intercepted VMLOAD in L2 works on L1 memory and canonicalises the FS base. */
	vmsave((u64)other);
	other->save.fs.base = NONCANONICAL_FS;
	v = guest(guest_vmload, (u64)other);
	svm_run(v);
	u64 fs_base = rdmsr(MSR_FS_BASE);	/* FS is not switched by VMRUN/#VMEXIT (§3.2) */
	vmload((u64)backup);
	expect_exit("S0-9 L2 VMLOAD, not intercepted: no exit at the VMLOAD, L2 goes on to VMMCALL", v, SVM_EXIT_VMMCALL);
	ex_check_none("S0-9 ... no exception in L2");
	qemu_deviation("QEMU 7.2 VMLOAD does not sign-extend segment bases (later QEMU does)");
	expect_eq("S0-9 ... FS base loaded from the L1-physical page, sign-extended (§5.7)", fs_base,
		  0xffff800012345000ull);

	/* S0-10: rAX with bit 63 set: #GP(0), never #VMEXIT(VMRUN). */
	v = guest(guest_vmrun, BIT(63) | (u64)vmcb);
	vmcb_intercept_exception(v, GP_VECTOR, true);
	svm_run(v);
	expect_exit("S0-10 L2 VMRUN with RAX bit 63 set, #GP intercepted: exit 0x04D, never 0x080", v,
		    SVM_EXIT_EXCP_BASE + GP_VECTOR);
	v = guest(guest_vmrun, BIT(63) | (u64)vmcb);
	svm_run(v);
	expect_exit("S0-10 L2 VMRUN with RAX bit 63 set, #GP not intercepted: L2 gets #GP, then VMMCALL", v,
		    SVM_EXIT_VMMCALL);
	ex_check("S0-10 ... #GP(0) in L2 at the VMRUN", GP_VECTOR, 0, ex_site);
}

/* S0-8: L2 clears its own EFER.SVME, then VMLOAD is #UD before its intercept. */
static void guest_svme_off_vmload(u64 rax)
{
	wrmsr(MSR_EFER, rdmsr(MSR_EFER) & ~EFER_SVME);
	TRY("vmload %%rax", : : "a"(rax) : "memory");
}

static void test_s0_svme(void)
{
	struct vmcb *v = guest(guest_svme_off_vmload, (u64)other);
	vmcb_set_intercept(v, SVM_EXIT_VMLOAD);
	vmcb_intercept_exception(v, UD_VECTOR, true);
	svm_run(v);
	expect_exit("S0-8 L2 with EFER.SVME = 0 executes VMLOAD (intercepted): exit 0x046", v,
		    SVM_EXIT_EXCP_BASE + UD_VECTOR);
	expect_eq("S0-8 ... vmcb12 RIP = the VMLOAD", v->save.rip, ex_site);
	expect_eq("S0-8 ... vmcb12 EFER.SVME = 0 (L2's own EFER)", v->save.efer & EFER_SVME, 0);
	report(rdmsr(MSR_EFER) & EFER_SVME, "S0-8 ... L1's EFER.SVME is still 1 after the exit");
}

/* ---- S3: VMMCALL in L2 (§8.4) --------------------------------------------------------------- */

static void guest_vmmcall(u64 arg)
{
	(void)arg;
	TRY("vmmcall", ::: "memory");
	/* Only reached when VMMCALL did not exit: leave through an intercepted CPUID. */
	asm volatile("cpuid" : : "a"(0) : "rbx", "rcx", "rdx", "memory");
}

static void test_s3(void)
{
	report_skip("S3-1 L1 VMMCALL is a hypercall to the emulator",
		    "svmjit's own hypercall ABI, checked by the svmjit-only image tests/hypercall.c (QEMU: #UD)");
	report_skip("S3-2 L1 VMMCALL at CPL3, in real mode and with EFER.SVME = 0 reaches the hypercall handler",
		    "svmjit's own hypercall ABI, checked by the svmjit-only image tests/hypercall.c (QEMU: #UD)");

	struct vmcb *v = guest(guest_vmmcall, 0);
	svm_run(v);
	check_insn_exit("S3-3 L2 VMMCALL intercepted", v, SVM_EXIT_VMMCALL, ex_site, 3);

	v = guest(guest_vmmcall, 0);
	vmcb_clear_intercept(v, SVM_EXIT_VMMCALL);
	vmcb_set_intercept(v, SVM_EXIT_CPUID);
	svm_run(v);
	expect_exit("S3-4 L2 VMMCALL not intercepted, #UD not intercepted: no exit at the VMMCALL", v, SVM_EXIT_CPUID);
	ex_check("S3-4 ... #UD delivered to L2's handler with RIP = the VMMCALL", UD_VECTOR, 0, ex_site);

	v = guest(guest_vmmcall, 0);
	vmcb_clear_intercept(v, SVM_EXIT_VMMCALL);
	vmcb_intercept_exception(v, UD_VECTOR, true);
	svm_run(v);
	expect_exit("S3-5 L2 VMMCALL not intercepted, #UD intercepted: exit 0x046", v, SVM_EXIT_EXCP_BASE + UD_VECTOR);
	expect_eq("S3-5 ... vmcb12 RIP = the VMMCALL", v->save.rip, ex_site);
	expect_eq("S3-5 ... EXITINFO1 = 0", v->control.exit_info_1, 0);

	v = guest(guest_vmmcall, 0);
	vmcb_user_mode(v);
	vmcb_clear_intercept(v, SVM_EXIT_VMMCALL);
	vmcb_set_intercept(v, SVM_EXIT_CPUID);
	svm_run(v);
	expect_exit("S3-6 L2 at CPL3 VMMCALL not intercepted: no exit at the VMMCALL (no #GP)", v, SVM_EXIT_CPUID);
	ex_check("S3-6 ... #UD (not #GP) delivered to L2's handler at the VMMCALL", UD_VECTOR, 0, ex_site);
	v = guest(guest_vmmcall, 0);
	vmcb_user_mode(v);
	vmcb_clear_intercept(v, SVM_EXIT_VMMCALL);
	vmcb_intercept_exception(v, UD_VECTOR, true);
	vmcb_intercept_exception(v, GP_VECTOR, true);
	svm_run(v);
	expect_exit("S3-6 L2 at CPL3 VMMCALL, #UD and #GP intercepted: exit 0x046", v, SVM_EXIT_EXCP_BASE + UD_VECTOR);
}

/* ---- T-01, T-31 ------------------------------------------------------------------------------ */

static void guest_vmload_vmsave(u64 rax)
{
	asm volatile("vmload %%rax\n\tvmsave %%rax" : : "a"(rax) : "memory");
}

static void test_round_trips(void)
{
	struct vmcb *v = guest(guest_nothing, 0);
	svm_run(v);
	expect_exit("T-01 baseline guest that only executes VMMCALL: exit 0x081", v, SVM_EXIT_VMMCALL);
	expect_eq("T-01 ... vmcb12 RIP = the VMMCALL of the guest stub", v->save.rip, (u64)svm_guest_vmmcall);
	expect_eq("T-01 ... EXITINTINFO = 0 (no event in delivery, §5.6 step 3)", v->control.exit_int_info, 0);
	expect_eq("T-01 ... EVENTINJ = 0", v->control.event_inj, 0);
	expect_eq("T-01 ... L1 RAX after the exit = the VMCB address (§5.6 step 5)", svm_host_after.rax, (u64)v);

	for (int i = 0; i < 4; i++) {
		bool load = i & 1, save = i & 2;
		v = guest(guest_vmload_vmsave, (u64)vmcb);
		vmcb_intercept(v, SVM_EXIT_VMLOAD, load);
		vmcb_intercept(v, SVM_EXIT_VMSAVE, save);
		svm_run(v);
		char name[128];
		snprintf(name, sizeof(name), "T-31 L2 VMLOAD; VMSAVE with VMLOAD %s, VMSAVE %s",
			 load ? "intercepted" : "not intercepted", save ? "intercepted" : "not intercepted");
		expect_exit(name, v, load ? SVM_EXIT_VMLOAD : save ? SVM_EXIT_VMSAVE : SVM_EXIT_VMMCALL);
	}
	vmload((u64)backup);
}

/* ---- T-30 ------------------------------------------------------------------------------------- */

/* VMSAVE on every page the allocator could still hand out; ends the image (it uses them up). */
static void test_vmsave_all_pages(void)
{
	if (!mb_info || !(mb_info->flags & MB_INFO_MEM)) {
		report_skip("T-30 VMSAVE on every allocatable page", "no multiboot memory information");
		return;
	}
	u64 end = (1ull << 20) + (u64)mb_info->mem_upper * 1024;
	u64 first = (u64)alloc_page(), pages = 0, faults = 0;
	for (u64 p = first; p + PAGE_SIZE <= end; p += PAGE_SIZE, pages++) {
		TRY("vmsave %%rax", : : "a"(p) : "memory");
		if (ex_vector() >= 0)
			faults++;
	}
	report(faults == 0 && pages > 0, "T-30 VMSAVE on every allocatable RAM page never #GPs (%lu pages, %lu faults)",
	       pages, faults);
}

void test_main(void)
{
	svm_setup();
	vmcb = vmcb_alloc();
	other = vmcb_alloc();
	backup = alloc_page();

	test_cpuid();
	test_efer_svme();
	test_cpl();
	test_msrs();
	test_round_trips();
	test_s0_host();
	test_s0_guest();
	test_s0_svme();
	test_s3();
	test_vm_cr_lock();
	test_vmsave_all_pages();
}
