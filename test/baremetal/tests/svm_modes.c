/*
 * svm_modes: T-12 of ../shared/spec/svm.md §8.5 ("mode_switch"): L2 leaves long mode, passes
 * through 16-bit protected mode into real mode and exits with VMMCALL there (VMMCALL exits from
 * any mode, §5.9), then L1 resumes it and it returns to long mode and exits again. #GP, #UD and
 * #DF are intercepted so that any mistake ends as a visible exit. The guest code is in
 * svm_modes.S.
 */
#include "svm.h"

#define SVM_RM_BASE 0x7000

extern char mode_guest[], mode_guest_back64[], svm_rm_start[], svm_rm_end[], mode_rm_vmmcall[];
extern volatile u32 mode_saved_esp;

void test_main(void)
{
	svm_setup();
	struct vmcb *v = vmcb_alloc();
	memcpy((void *)SVM_RM_BASE, svm_rm_start, svm_rm_end - svm_rm_start);

	vmcb_init(v, (u64)mode_guest, svm_guest_stack());
	mode_saved_esp = (u32)v->save.rsp;
	vmcb_intercept_exception(v, GP_VECTOR, true);
	vmcb_intercept_exception(v, UD_VECTOR, true);
	vmcb_intercept_exception(v, DF_VECTOR, true);
	svm_run(v);

	expect_exit("T-12 L2 leaves long mode for real mode and executes VMMCALL: exit 0x081", v, SVM_EXIT_VMMCALL);
	expect_eq("T-12 ... from real mode: vmcb12 RIP = the real-mode VMMCALL",
		  v->save.rip, SVM_RM_BASE + (u64)(mode_rm_vmmcall - svm_rm_start));
	expect_eq("T-12 ... vmcb12 CR0.PE = CR0.PG = 0", v->save.cr0 & (CR0_PE | CR0_PG), 0);
	expect_eq("T-12 ... vmcb12 CR4.PAE = 0", v->save.cr4 & CR4_PAE, 0);
	expect_eq("T-12 ... vmcb12 EFER.LME = EFER.LMA = 0", v->save.efer & (EFER_LME | EFER_LMA), 0);
	expect_eq("T-12 ... vmcb12 CS selector = 0 (real mode)", v->save.cs.selector, 0);

	v->save.rip += 3;
	svm_run(v);
	expect_exit("T-12 L1 resumes it: back to long mode, second VMMCALL: exit 0x081", v, SVM_EXIT_VMMCALL);
	expect_eq("T-12 ... at the 64-bit VMMCALL", v->save.rip, (u64)mode_guest_back64);
	expect_eq("T-12 ... vmcb12 CR0.PE = CR0.PG = 1", v->save.cr0 & (CR0_PE | CR0_PG), CR0_PE | CR0_PG);
	expect_eq("T-12 ... vmcb12 CR4.PAE = 1", v->save.cr4 & CR4_PAE, CR4_PAE);
	expect_eq("T-12 ... vmcb12 EFER.LME = EFER.LMA = 1", v->save.efer & (EFER_LME | EFER_LMA), EFER_LME | EFER_LMA);
	report((rdmsr(MSR_EFER) & (EFER_LME | EFER_LMA)) == (EFER_LME | EFER_LMA) && (read_cr4() & CR4_PAE),
	       "T-12 ... L1's own EFER and CR4 were not touched by L2's mode changes");
}
