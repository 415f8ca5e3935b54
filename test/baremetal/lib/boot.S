/*
 * Boot path of every test image: the multiboot v1 header, the 32-bit entry the loader jumps
 * to (flat protected mode, paging off, EAX = magic, EBX = info), the static GDT and the
 * identity page tables, and the switch into 64-bit mode before calling runtime_start().
 *
 * The page tables map the first 4 GiB with 2 MiB pages, all user-accessible so the user-mode
 * tests can run code from the image; tests that need supervisor or 4 KiB pages change
 * individual entries through vm.c. They live in .data, not .bss, so the loader copies them
 * ready-made and the boot path needs no loop to build them.
 */
#include "asm-defs.h"

	.section .multiboot, "a"
	.align 4
	.long MB_HEADER_MAGIC
	.long MB_HEADER_FLAGS
	.long -(MB_HEADER_MAGIC + MB_HEADER_FLAGS)

	.section .text.boot, "ax"
	.code32
	.globl start32
start32:
	/* Keep the magic and the info pointer for the tests: hello checks the magic. */
	mov %eax, mb_magic
	cmp $MB_BOOT_MAGIC, %eax
	jne 1f
	mov %ebx, mb_info_addr
1:	mov $boot_stack_top, %esp
	/* The loader's GDT is unknown (Multiboot 0.6.96 §3.2: "GDTR may be invalid"). */
	lgdt gdt_desc
	ljmp $KERNEL_CS32, $2f
2:	mov $KERNEL_DS, %eax
	mov %eax, %ds
	mov %eax, %es
	mov %eax, %ss
	mov %eax, %fs
	mov %eax, %gs

	/* The loader zero-fills .bss from the ELF headers; doing it again costs nothing and
	   keeps us correct under loaders that do not. The stack is in .bss but still empty. */
	mov $__bss_start, %edi
	mov $__bss_end, %ecx
	sub %edi, %ecx
	xor %eax, %eax
	cld
	rep stosb

	/* Long mode must exist (CPUID 8000_0001h EDX bit 29); NX is used when present (bit 20). */
	mov $0x80000001, %eax
	cpuid
	mov $EFER_LME, %eax
	bt $20, %edx
	jnc 3f
	or $EFER_NXE, %eax
3:	mov %eax, boot_efer
	bt $29, %edx
	jc 4f
	mov $no_lm_msg, %esi
	jmp early_fail
4:	LONG_MODE_ON start64

/* Reports a boot failure on the serial port without any setup and exits with status 5. */
early_fail:
	mov $0x3f8 + 5, %dx
5:	in %dx, %al
	test $0x20, %al
	jz 5b
	lodsb
	test %al, %al
	jz 6f
	mov $0x3f8, %dx
	out %al, %dx
	jmp early_fail
6:	mov $2, %al
	out %al, $0xf4
	cli
	hlt
	jmp 6b

	.code64
start64:
	mov $KERNEL_DS, %eax
	mov %eax, %ds
	mov %eax, %es
	mov %eax, %ss
	mov %eax, %fs
	mov %eax, %gs
	mov $boot_stack_top, %rsp
	xor %ebp, %ebp
	call runtime_start
	ud2

	.section .rodata
no_lm_msg:
	.asciz "FAIL: CPU has no long mode (CPUID 8000_0001h EDX bit 29)\n"

	.data
	.align 8
	.globl mb_magic, mb_info_addr, boot_efer, boot_cr3
mb_magic:	.quad 0
mb_info_addr:	.quad 0
boot_efer:	.quad 0
boot_cr3:	.quad pml4

/*
 * GDT: the layout is described with the selectors in asm-defs.h. Descriptor fields follow
 * SDM Vol 3 §3.4.5 / APM Vol 2 §4.8: 0x9A = present, DPL0, code exec/read; 0x92 = present,
 * DPL0, data read/write; 0xFA/0xF2 the same at DPL3; flags nibble 0xA = G + L (64-bit code),
 * 0xC = G + D/B (32-bit), 0x0 = byte granular 16-bit with limit 0xFFFF.
 */
	.align 16
	.globl gdt, gdt_desc
gdt:
	.quad 0
	.quad 0x00af9a000000ffff	/* KERNEL_CS64 */
	.quad 0x00cf92000000ffff	/* KERNEL_DS */
	.quad 0x00cf9a000000ffff	/* KERNEL_CS32 */
	.quad 0x00cf92000000ffff	/* KERNEL_DS32 */
	.quad 0x00009a000000ffff	/* KERNEL_CS16 */
	.quad 0x000092000000ffff	/* KERNEL_DS16 */
	.quad 0x00cffa000000ffff	/* USER_CS32 */
	.quad 0x00cff2000000ffff	/* USER_DS */
	.quad 0x00affa000000ffff	/* USER_CS64 */
	.quad 0, 0			/* TSS_SEL: filled by desc.c (its base is a link-time address split in pieces) */
	.fill GDT_ENTRIES - 12, 8, 0	/* spare slots from GDT_SPARE_SEL */
gdt_end:
	.align 8
gdt_desc:
	.word gdt_end - gdt - 1
	.quad gdt

/* Identity map of 0-4 GiB: PML4[0] -> PDPT, PDPT[0..3] -> four PDs of 2 MiB pages. */
	.section .data.pagetables, "aw"
	.align 4096
	.globl pml4
pml4:
	.quad pdpt + PTE_P + PTE_W + PTE_U
	.fill 511, 8, 0
pdpt:
	.quad pd + 0x0000 + PTE_P + PTE_W + PTE_U
	.quad pd + 0x1000 + PTE_P + PTE_W + PTE_U
	.quad pd + 0x2000 + PTE_P + PTE_W + PTE_U
	.quad pd + 0x3000 + PTE_P + PTE_W + PTE_U
	.fill 508, 8, 0
pd:
	.set page, 0
	.rept 1536
	.quad (page << 21) + PTE_PS + PTE_P + PTE_W + PTE_U
	.set page, page + 1
	.endr
	/* The last GiB holds the APIC and other MMIO: uncached, as firmware would map it. */
	.rept 512
	.quad (page << 21) + PTE_PS + PTE_PCD + PTE_PWT + PTE_P + PTE_W + PTE_U
	.set page, page + 1
	.endr

	.bss
	.align 16
boot_stack:
	.fill STACK_SIZE, 1, 0
	.globl boot_stack_top
boot_stack_top:
