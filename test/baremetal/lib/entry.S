/*
 * Entry points from the CPU into the runtime: the 256 IDT stubs and their common path to
 * ex_dispatch() in desc.c, entering user mode with IRETQ and coming back from it, and the
 * SYSCALL entry.
 *
 * Each stub pushes a zero in place of the error code for vectors where the CPU pushes none
 * (SDM Vol 3 §6.13, table 6-1: 8, 10-14, 17, 21, 29, 30 have one), so every frame has the same
 * layout (struct ex_frame). Note that INT n to one of those vectors pushes no error code: tests
 * use software interrupts only on vectors without one.
 */
#include "asm-defs.h"

	.text
	.align 16
	.globl isr_stubs
isr_stubs:
	.set vec, 0
	.rept 256
	.align 16
	.if !((vec == 8) || (vec >= 10 && vec <= 14) || (vec == 17) || (vec == 21) || (vec == 29) || (vec == 30))
	push $0
	.endif
	push $vec
	jmp isr_common
	.set vec, vec + 1
	.endr

isr_common:
	push %rax
	push %rbx
	push %rcx
	push %rdx
	push %rsi
	push %rdi
	push %rbp
	push %r8
	push %r9
	push %r10
	push %r11
	push %r12
	push %r13
	push %r14
	push %r15
	mov %rsp, %rdi
	/* The frame is 22 quadwords above a 16-byte aligned RSP (the CPU aligns it on delivery
	   in 64-bit mode, SDM Vol 3 §6.14.2), so the call below is ABI-aligned. */
	cld
	call ex_dispatch
	pop %r15
	pop %r14
	pop %r13
	pop %r12
	pop %r11
	pop %r10
	pop %r9
	pop %r8
	pop %rbp
	pop %rdi
	pop %rsi
	pop %rdx
	pop %rcx
	pop %rbx
	pop %rax
	add $16, %rsp			/* vector and error code */
	iretq

/*
 * u64 user_run(u64 (*fn)(u64), u64 arg, u64 rflags): keeps the callee-saved registers and RSP,
 * builds an IRETQ frame for CPL3 and enters fn with arg in RDI and user_return as its return
 * address on the user stack.
 */
	.globl user_run
user_run:
	push %rbx
	push %rbp
	push %r12
	push %r13
	push %r14
	push %r15
	mov %rsp, user_kernel_rsp(%rip)
	lea user_stack_top - 8(%rip), %rax
	lea user_return(%rip), %rcx
	mov %rcx, (%rax)
	push $(USER_DS | 3)
	push %rax
	or $2, %rdx
	push %rdx
	push $(USER_CS64 | 3)
	push %rdi
	mov %rsi, %rdi
	iretq

	/* CPL3: the user function returned its value in RAX. */
user_return:
	mov %rax, %rdi
	int $USER_EXIT_VECTOR		/* a DPL3 gate */
	ud2

/*
 * void user_exit_kernel(u64 value): back on the kernel stack of user_run, which returns value.
 * Called from the USER_EXIT_VECTOR handler and the SYSCALL entry; whatever they left on their
 * own stacks is abandoned.
 */
	.globl user_exit_kernel
user_exit_kernel:
	mov user_kernel_rsp(%rip), %rsp
	mov %rdi, %rax
	/* IRETQ to CPL3 nulled DS/ES (their DPL is below the new CPL, SDM Vol 2 IRET), and
	   entering CPL0 through a gate or SYSCALL left SS null or as SYSCALL set it: restore
	   the segments the rest of the runtime runs with. */
	mov $KERNEL_DS, %ecx
	mov %ecx, %ds
	mov %ecx, %es
	mov %ecx, %ss
	pop %r15
	pop %r14
	pop %r13
	pop %r12
	pop %rbp
	pop %rbx
	ret

/*
 * SYSCALL entry (LSTAR). On entry RCX = the user RIP after SYSCALL, R11 = the user RFLAGS,
 * RFLAGS = user RFLAGS & ~SFMASK, RSP still the user's (SDM Vol 2 SYSCALL). Records that state
 * in last_syscall (struct syscall_record: rcx, r11, rflags, cs, ss, rsp) before any
 * flag-changing instruction, then handles SYS_EXIT and SYS_ECHO.
 */
	.globl syscall_entry
syscall_entry:
	mov %rsp, last_syscall + 40(%rip)
	lea syscall_stack_top(%rip), %rsp
	pushfq
	popq last_syscall + 16(%rip)
	mov %rcx, last_syscall + 0(%rip)
	mov %r11, last_syscall + 8(%rip)
	movq $0, last_syscall + 24(%rip)
	movq $0, last_syscall + 32(%rip)
	mov %cs, last_syscall + 24(%rip)
	mov %ss, last_syscall + 32(%rip)
	cmp $SYS_EXIT, %rax
	je user_exit_kernel
	mov %rdi, %rax			/* SYS_ECHO and anything else */
	mov last_syscall + 40(%rip), %rsp
	sysretq

	.bss
	.align 16
	.fill STACK_SIZE, 1, 0
syscall_stack_top:
	.fill STACK_SIZE, 1, 0
	.globl user_stack_top
user_stack_top:
	.data
user_kernel_rsp:
	.quad 0
