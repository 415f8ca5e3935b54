/*
 * Assembly for svm_debug: lbr_vmrun() for T-34 (../shared/spec/svm.md §3.12). Without LBR
 * virtualization L2's DEBUGCTL stays in effect after the #VMEXIT, so every branch L1 takes
 * would overwrite the LBR MSRs L2 left behind. This wrapper reads DEBUGCTL and the last-branch
 * MSRs right after VMRUN, before any branch, and turns DEBUGCTL off.
 */
#include "asm-defs.h"

#define MSR_DEBUGCTL		0x1d9
#define MSR_LASTBRANCHFROMIP	0x1db
#define MSR_LASTBRANCHTOIP	0x1dc

	.text
	.code64
/* void lbr_vmrun(u64 vmcb_pa, u64 out[3]): out = DEBUGCTL, LASTBRANCHFROMIP, LASTBRANCHTOIP. */
	.globl lbr_vmrun
lbr_vmrun:
	push %rbx
	push %rbp
	push %r12
	push %r13
	push %r14
	push %r15
	mov %rsi, lbr_out(%rip)
	mov %rdi, %rax
	vmrun %rax
	mov $MSR_DEBUGCTL, %ecx
	rdmsr
	mov %eax, lbr_tmp(%rip)
	mov %edx, lbr_tmp+4(%rip)
	xor %eax, %eax
	xor %edx, %edx
	wrmsr
	mov $MSR_LASTBRANCHFROMIP, %ecx
	rdmsr
	mov %eax, lbr_tmp+8(%rip)
	mov %edx, lbr_tmp+12(%rip)
	mov $MSR_LASTBRANCHTOIP, %ecx
	rdmsr
	mov %eax, lbr_tmp+16(%rip)
	mov %edx, lbr_tmp+20(%rip)
	mov lbr_out(%rip), %rsi
	mov lbr_tmp(%rip), %rax
	mov %rax, 0(%rsi)
	mov lbr_tmp+8(%rip), %rax
	mov %rax, 8(%rsi)
	mov lbr_tmp+16(%rip), %rax
	mov %rax, 16(%rsi)
	pop %r15
	pop %r14
	pop %r13
	pop %r12
	pop %rbp
	pop %rbx
	ret

/*
 * u64 lbr_probe(u64 out[2]): whether L1 itself records branches: LBR on, one taken branch,
 * LBR off, then out = LASTBRANCHFROMIP, LASTBRANCHTOIP; returns DEBUGCTL as it was with LBR on.
 */
	.globl lbr_probe, lbr_probe_from, lbr_probe_to
lbr_probe:
	mov %rdi, %r8
	mov $MSR_DEBUGCTL, %ecx
	mov $1, %eax
	xor %edx, %edx
	wrmsr
lbr_probe_from:
	jmp lbr_probe_to
	nop
lbr_probe_to:
	rdmsr
	mov %eax, %r9d
	xor %eax, %eax
	xor %edx, %edx
	wrmsr
	mov $MSR_LASTBRANCHFROMIP, %ecx
	rdmsr
	shl $32, %rdx
	or %rdx, %rax
	mov %rax, 0(%r8)
	mov $MSR_LASTBRANCHTOIP, %ecx
	rdmsr
	shl $32, %rdx
	or %rdx, %rax
	mov %rax, 8(%r8)
	mov %r9, %rax
	ret

/* The T-34 guest: LBR on, one taken branch, VMMCALL (no branch in between). */
	.globl lbr_guest, lbr_guest_from, lbr_guest_to
lbr_guest:
	mov $MSR_DEBUGCTL, %ecx
	mov $1, %eax
	xor %edx, %edx
	wrmsr
lbr_guest_from:
	jmp lbr_guest_to
	nop
lbr_guest_to:
	vmmcall
	jmp lbr_guest_to

	.data
	.align 8
lbr_out:	.quad 0
lbr_tmp:	.quad 0, 0, 0
