/*
 * User mode: the kernel side of user_run() (entry.S). A function run at CPL3 leaves through
 * the DPL3 gate USER_EXIT_VECTOR or SYSCALL(SYS_EXIT); both land in user_exit_kernel(), which
 * resumes the kernel context user_run() saved.
 */
#include "runtime.h"

extern char syscall_entry[];
__attribute__((noreturn)) void user_exit_kernel(u64 value);
volatile struct syscall_record last_syscall;

static void user_exit_handler(struct ex_frame *f)
{
	if ((f->cs & 3) != 3) {
		report(false, "INT %d from CPL%lu: the user-exit gate is for user mode only",
		       USER_EXIT_VECTOR, f->cs & 3);
		report_summary_and_exit();
	}
	user_exit_kernel(f->rdi);
}

void user_init(void)
{
	set_handler(USER_EXIT_VECTOR, user_exit_handler);
}

void syscall_setup(u64 sfmask)
{
	/*
	 * STAR[47:32] = kernel CS (SS = +8); STAR[63:48] = base of the user selectors: SYSRET to
	 * 64-bit code loads CS = base + 16, SS = base + 8, RPL 3 (SDM Vol 2 SYSRET). The base is
	 * given with RPL 3 already, as both vendors' manuals allow.
	 */
	wrmsr(MSR_STAR, (u64)(USER_CS32 | 3) << 48 | (u64)KERNEL_CS64 << 32);
	wrmsr(MSR_LSTAR, (u64)syscall_entry);
	wrmsr(MSR_SFMASK, sfmask);
	wrmsr(MSR_EFER, rdmsr(MSR_EFER) | EFER_SCE);
}
