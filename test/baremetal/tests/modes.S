/*
 * Mode switches for the modes test, all started from 64-bit code and ending back there:
 *  - compat_call: a far call into a 32-bit code segment (compatibility mode, CS.L = 0,
 *    CS.D = 1) that runs 32-bit code and returns with a 32-bit far return;
 *  - legacy_trip: a far jump to compatibility mode, CR0.PG = 0 to leave long mode (legacy
 *    32-bit protected mode, paging off, EFER.LMA = 0), EFER.LME = 0, 32-bit paging with 4 MiB
 *    and 4 KiB pages, PAE paging with 2 MiB pages, a trip through 16-bit
 *    protected mode to real mode in a thunk below 1 MiB (IVT interrupt, segment arithmetic),
 *    back to protected mode, and long mode again with the boot path's LONG_MODE_ON.
 * The steps follow SDM Vol 3 §10.8.5 (entering/leaving IA-32e mode), §10.9.2 (switching back
 * to real mode) and APM Vol 2 §14.6-14.7. Results go to variables read by modes.c.
 */
#include "asm-defs.h"
#include "modes.h"

/* Address of a thunk label once the thunk is copied to REALMODE_BASE. */
#define RM(label) (REALMODE_BASE + (label) - rm_thunk_start)

	.text
	.code64

/* u32 compat_call(u32 x): returns x + 1, computed in compatibility mode. */
	.globl compat_call
compat_call:
	SAVE_CALLEE
	mov %edi, %eax
	/* m16:32 operand: a far CALL with 32-bit operand size pushes 32-bit CS and EIP. */
	lcall *compat_ptr(%rip)
	RESTORE_CALLEE
	ret

	.code32
compat_entry:
	mov %cs, compat_cs
	mov %esp, %ecx
	push %eax
	sub %esp, %ecx
	mov %ecx, compat_push_size	/* 4 in 32-bit code */
	pop %eax
	.byte 0x40			/* INC EAX here; a REX prefix in 64-bit mode */
	mov %eax, %ebx
	mov $MSR_EFER, %ecx
	rdmsr
	mov %eax, compat_efer
	mov %ebx, %eax
	lret

	.code64
/* void legacy_trip(void) */
	.globl legacy_trip
legacy_trip:
	SAVE_CALLEE
	sidt saved_idtr(%rip)
	mov %rsp, saved_rsp(%rip)
	ljmp *legacy_ptr(%rip)

	.code32
legacy_entry:
	/* Compatibility mode, CPL0, identity-mapped: clearing PG deactivates long mode. */
	mov %cr0, %eax
	and $~CR0_PG, %eax
	mov %eax, %cr0
	mov $MSR_EFER, %ecx
	rdmsr
	mov %eax, pm_efer_paging_off
	and $~EFER_LME, %eax
	wrmsr
	rdmsr
	mov %eax, pm_efer_lme_off
	mov %cr0, %eax
	mov %eax, pm_cr0
	/* 32-bit protected mode without paging: a flat 4 GiB data segment, linear = physical. */
	movl $0x32323232, pm_marker

	/* 32-bit paging (CR4.PAE = 0) with CR4.PSE for 4 MiB pages (SDM Vol 3 §4.3). */
	mov %cr4, %eax
	and $~CR4_PAE, %eax
	or $CR4_PSE, %eax
	mov %eax, %cr4
	mov pd32_addr, %eax
	mov %eax, %cr3
	mov %cr0, %eax
	or $CR0_PG, %eax
	mov %eax, %cr0
	mov alias_4m, %ebx
	mov (%ebx), %eax
	mov %eax, paging32_4m_read
	mov alias_4k, %ebx
	mov (%ebx), %eax
	mov %eax, paging32_4k_read
	mov %cr0, %eax
	and $~CR0_PG, %eax
	mov %eax, %cr0

	/* PAE paging outside long mode: 4 PDPTEs loaded with CR3, 2 MiB pages (SDM Vol 3 §4.4). */
	mov %cr4, %eax
	or $CR4_PAE, %eax
	mov %eax, %cr4
	mov pdpt_pae_addr, %eax
	mov %eax, %cr3
	mov %cr0, %eax
	or $CR0_PG, %eax
	mov %eax, %cr0
	mov alias_2m, %ebx
	mov (%ebx), %eax
	mov %eax, pae_2m_read
	mov %cr0, %eax
	and $~CR0_PG, %eax
	mov %eax, %cr0

	ljmp $KERNEL_CS16, $RM(pm16_entry)

	/* Back from real mode in 32-bit protected mode (paging off). */
pm32_return:
	mov $KERNEL_DS, %eax
	mov %eax, %ds
	mov %eax, %es
	mov %eax, %ss
	mov %eax, %fs
	mov %eax, %gs
	mov saved_rsp, %esp
	mov %cr0, %eax
	mov %eax, pm_cr0_back
	LONG_MODE_ON long_mode_back

	.code64
long_mode_back:
	mov $KERNEL_DS, %eax
	mov %eax, %ds
	mov %eax, %es
	mov %eax, %ss
	mov saved_rsp(%rip), %rsp
	lidt saved_idtr(%rip)
	RESTORE_CALLEE
	ret

/*
 * The real-mode thunk, copied to REALMODE_BASE by modes.c: every address in it is RM(...).
 */
	.code16
	.globl rm_thunk_start, rm_thunk_end, rm_int_handler
rm_thunk_start:
pm16_entry:
	/* 16-bit protected mode: load 64 KiB segments so real mode inherits sane limits. */
	mov $KERNEL_DS16, %ax
	mov %ax, %ds
	mov %ax, %es
	mov %ax, %ss
	mov %ax, %fs
	mov %ax, %gs
	mov %cr0, %eax
	and $~CR0_PE, %eax
	mov %eax, %cr0
	ljmp $0, $RM(rm_entry)
rm_entry:
	xor %ax, %ax
	mov %ax, %ds
	mov %ax, %es
	mov %ax, %ss
	mov $RM_STACK_TOP, %sp
	/* Real-mode interrupts index the IVT at IDTR.base (SDM Vol 3 §21.1.4): base 0. */
	lidt RM(rm_idtr)
	mov %cr0, %eax
	mov %eax, RM_RES_CR0
	/* Linear = segment * 16 + offset. */
	mov $((RM_SEG_LINEAR - 0x10) >> 4), %ax
	mov %ax, %es
	movw $0xbeef, %es:0x10
	mov %sp, %cx
	push %ax
	sub %sp, %cx
	mov %cx, RM_RES_PUSH		/* 2 in 16-bit code */
	pop %ax
	int $RM_VECTOR
rm_after_int:
	movw $RM(rm_after_int), RM_RES_AFTER_INT
	/* Back to protected mode: PE = 1, then a far jump loads a protected-mode CS. */
	mov %cr0, %eax
	or $CR0_PE, %eax
	mov %eax, %cr0
	ljmpl $KERNEL_CS32, $pm32_return

rm_int_handler:
	incw RM_RES_INTS
	mov %sp, %bp
	mov (%bp), %ax			/* the INT frame: IP, CS, FLAGS (SDM Vol 3 §21.1.4) */
	mov %ax, RM_RES_INT_IP
	mov 2(%bp), %ax
	mov %ax, RM_RES_INT_CS
	iret

rm_idtr:
	.word 0x3ff
	.long 0
rm_thunk_end:

	.data
	.align 8
compat_ptr:
	.long compat_entry
	.word KERNEL_CS32
legacy_ptr:
	.long legacy_entry
	.word KERNEL_CS32
	.globl compat_cs, compat_push_size, compat_efer
	.globl pm_efer_paging_off, pm_efer_lme_off, pm_cr0, pm_marker, pm_cr0_back
compat_cs:		.long 0
compat_push_size:	.long 0
compat_efer:		.long 0
pm_efer_paging_off:	.long 0
pm_efer_lme_off:	.long 0
pm_cr0:			.long 0
pm_marker:		.long 0
pm_cr0_back:		.long 0
	.align 8
	.globl pd32_addr, alias_4m, alias_4k, pdpt_pae_addr, alias_2m
	.globl paging32_4m_read, paging32_4k_read, pae_2m_read
pd32_addr:		.long 0		/* inputs from modes.c */
alias_4m:		.long 0
alias_4k:		.long 0
pdpt_pae_addr:		.long 0
alias_2m:		.long 0
paging32_4m_read:	.long 0		/* outputs */
paging32_4k_read:	.long 0
pae_2m_read:		.long 0
	.align 8
saved_rsp:		.quad 0
saved_idtr:		.fill 10, 1, 0
