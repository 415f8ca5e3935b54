/*
 * Assembly for svm_vmrun: a 32-bit guest stub for the legacy-mode guests of T-28 and the legacy
 * CR4 checks, and vmrun_paging_off(), which executes VMRUN from legacy protected mode with
 * CR0.PG = 0 for consistency check C18 (NP_ENABLE with host paging off, ../shared/spec/svm.md
 * §5.3) and comes back to 64-bit mode.
 */
#include "asm-defs.h"

	.text
	.code32
/* The 32-bit guests only exit: VMMCALL assembles the same in every mode (0F 01 D9). */
	.globl guest32_vmmcall
guest32_vmmcall:
	vmmcall
	jmp guest32_vmmcall

	.code64
/*
 * void vmrun_paging_off(u32 vmcb_pa): far jump to compatibility mode, CR0.PG = 0 (leaving long
 * mode; EFER.LME stays 1, LMA becomes 0), VMRUN, then CR0.PG = 1 (long mode again) and back.
 * Interrupts are off and no exception may happen in between: the IDT is a 64-bit one.
 * Should the VMRUN wrongly succeed, the guest's #VMEXIT lands here the same way.
 */
	.globl vmrun_paging_off
vmrun_paging_off:
	push %rbx
	push %rbp
	push %r12
	push %r13
	push %r14
	push %r15
	mov %rsp, po_rsp(%rip)
	mov %edi, po_vmcb(%rip)
	ljmp *po_far32(%rip)

	.code32
po_entry32:
	mov %cr0, %eax
	and $~CR0_PG, %eax
	mov %eax, %cr0
	mov po_vmcb, %eax
	vmrun %eax
	mov %cr0, %eax
	or $CR0_PG, %eax
	mov %eax, %cr0
	ljmp $KERNEL_CS64, $po_back64

	.code64
po_back64:
	mov $KERNEL_DS, %eax
	mov %eax, %ds
	mov %eax, %es
	mov %eax, %ss
	mov po_rsp(%rip), %rsp
	pop %r15
	pop %r14
	pop %r13
	pop %r12
	pop %rbp
	pop %rbx
	ret

	.data
	.align 8
po_far32:
	.long po_entry32
	.word KERNEL_CS32
	.align 8
po_rsp:	.quad 0
po_vmcb: .long 0
