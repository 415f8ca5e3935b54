/*
 * Start-up code of an application processor. The SIPI starts it in real mode at
 * CS:IP = (vector << 8):0 (SDM Vol 3 §9.4.4.1); ap_start() copies the part between
 * ap_trampoline_start and ap_trampoline_end to AP_TRAMPOLINE (vector 0x08) and fills in
 * ap_gdt_base. From there the AP loads the runtime's GDT, enters protected mode, then long
 * mode with the same LONG_MODE_ON as the boot path, and continues in ap_long64 in the image.
 */
#include "asm-defs.h"

#define TRAMP(label) (AP_TRAMPOLINE + (label) - ap_trampoline_start)

	.text
	.code16
	.globl ap_trampoline_start, ap_trampoline_end, ap_gdt_base
ap_trampoline_start:
	cli
	cld
	xor %ax, %ax
	mov %ax, %ds
	/* 32-bit LGDT operand: the runtime's GDT is above 1 MiB. */
	lgdtl TRAMP(ap_gdt_desc)
	mov %cr0, %eax
	or $CR0_PE, %eax
	mov %eax, %cr0
	ljmpl $KERNEL_CS32, $TRAMP(ap_protected)

	.code32
ap_protected:
	mov $KERNEL_DS, %eax
	mov %eax, %ds
	mov %eax, %es
	mov %eax, %ss
	LONG_MODE_ON ap_long64

	.align 4
ap_gdt_desc:
	.word GDT_ENTRIES * 8 - 1
ap_gdt_base:
	.long 0
ap_trampoline_end:

	.code64
ap_long64:
	mov $KERNEL_DS, %eax
	mov %eax, %ds
	mov %eax, %es
	mov %eax, %ss
	xor %eax, %eax
	mov %eax, %fs
	mov %eax, %gs
	mov ap_stack_top(%rip), %rsp
	xor %ebp, %ebp
	call ap_entry
	ud2

	.data
	.align 8
	.globl ap_stack_top
ap_stack_top:
	.quad 0
