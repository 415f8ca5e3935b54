/*
 * Assembly for svm_modes (T-12, ../shared/spec/svm.md §8.5 "mode_switch"): an L2 guest that
 * starts in 64-bit mode, leaves long mode (CR0.PG, EFER.LME, CR4.PAE off), goes through 16-bit
 * protected mode to real mode and executes VMMCALL there; resumed by L1, it goes back to
 * protected mode and long mode and executes VMMCALL again. The steps are those of SDM Vol 3
 * §10.8.5 and §10.9.2 (as in the runtime's modes test). The 16-bit part runs from a copy below
 * 64 KiB (SVM_RM_BASE), made by svm_modes.c.
 */
#include "asm-defs.h"

#define SVM_RM_BASE	0x7000
#define SVM_RM_STACK	0x7d00
#define RM(label) (SVM_RM_BASE + (label) - svm_rm_start)

	.text
	.code64
	.globl mode_guest, mode_guest_back64
mode_guest:
	ljmp *mode_far32(%rip)

	.code32
mode_pm32:
	mov $KERNEL_DS, %eax
	mov %eax, %ds
	mov %eax, %es
	mov %eax, %ss
	/* Compatibility mode: clearing CR0.PG leaves long mode (EFER.LMA = 0). */
	mov %cr0, %eax
	and $~CR0_PG, %eax
	mov %eax, %cr0
	mov $MSR_EFER, %ecx
	rdmsr
	and $~EFER_LME, %eax
	wrmsr
	mov %cr4, %eax
	and $~CR4_PAE, %eax
	mov %eax, %cr4
	ljmp $KERNEL_CS16, $RM(mode_pm16)

	/* Back from real mode, 32-bit protected mode without paging: long mode again. */
mode_pm32_back:
	mov $KERNEL_DS, %eax
	mov %eax, %ds
	mov %eax, %es
	mov %eax, %ss
	mov mode_saved_esp, %esp
	mov %cr4, %eax
	or $CR4_PAE, %eax
	mov %eax, %cr4
	mov $MSR_EFER, %ecx
	rdmsr
	or $EFER_LME, %eax
	wrmsr
	mov %cr0, %eax
	or $CR0_PG, %eax
	mov %eax, %cr0
	ljmp $KERNEL_CS64, $mode_guest_back64

	.code64
mode_guest_back64:
	vmmcall
	jmp mode_guest_back64

	.code16
	.globl svm_rm_start, svm_rm_end, mode_rm_vmmcall
svm_rm_start:
mode_pm16:
	mov $KERNEL_DS16, %ax
	mov %ax, %ds
	mov %ax, %es
	mov %ax, %ss
	mov %cr0, %eax
	and $~CR0_PE, %eax
	mov %eax, %cr0
	ljmp $0, $RM(mode_rm)
mode_rm:
	xor %ax, %ax
	mov %ax, %ds
	mov %ax, %es
	mov %ax, %ss
	mov $SVM_RM_STACK, %sp
mode_rm_vmmcall:
	vmmcall
	mov %cr0, %eax
	or $CR0_PE, %eax
	mov %eax, %cr0
	ljmpl $KERNEL_CS32, $mode_pm32_back
svm_rm_end:

	.data
	.align 8
mode_far32:
	.long mode_pm32
	.word KERNEL_CS32
	.globl mode_saved_esp
mode_saved_esp:
	.long 0
