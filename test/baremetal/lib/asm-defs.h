/*
 * Constants shared by the runtime's assembly and C code: the GDT layout, control-register,
 * EFER and page-table bits, and the long-mode entry sequence used by the boot path, the AP
 * trampoline and the mode-switch tests. Kept in one place so the three entries cannot drift.
 * This header must stay valid for both the assembler and the C compiler.
 */
#ifndef BAREMETAL_ASM_DEFS_H
#define BAREMETAL_ASM_DEFS_H

/*
 * GDT selectors. The order of USER_CS32 / USER_DS / USER_CS64 and KERNEL_CS64 / KERNEL_DS is
 * fixed by SYSCALL/SYSRET (SDM Vol 2 SYSCALL, SYSRET; APM Vol 2 §6.1.1): SYSCALL loads
 * CS = STAR[47:32], SS = STAR[47:32] + 8; 64-bit SYSRET loads CS = STAR[63:48] + 16,
 * SS = STAR[63:48] + 8.
 */
#define KERNEL_CS64	0x08
#define KERNEL_DS	0x10
#define KERNEL_CS32	0x18
#define KERNEL_DS32	0x20
#define KERNEL_CS16	0x28
#define KERNEL_DS16	0x30
#define USER_CS32	0x38
#define USER_DS		0x40
#define USER_CS64	0x48
#define TSS_SEL		0x50	/* 16-byte system descriptor: occupies 0x50 and 0x58 */
#define GDT_SPARE_SEL	0x60	/* first of the slots tests may fill with their own descriptors */
#define GDT_ENTRIES	20

#define CR0_PE		0x00000001
#define CR0_MP		0x00000002
#define CR0_EM		0x00000004
#define CR0_TS		0x00000008
#define CR0_ET		0x00000010
#define CR0_NE		0x00000020
#define CR0_WP		0x00010000
#define CR0_AM		0x00040000
#define CR0_NW		0x20000000
#define CR0_CD		0x40000000
#define CR0_PG		0x80000000

#define CR4_DE		0x00000008
#define CR4_PSE		0x00000010
#define CR4_PAE		0x00000020
#define CR4_PGE		0x00000080

#define MSR_APIC_BASE	0x0000001b
#define MSR_EFER	0xc0000080
#define MSR_STAR	0xc0000081
#define MSR_LSTAR	0xc0000082
#define MSR_CSTAR	0xc0000083
#define MSR_SFMASK	0xc0000084
#define MSR_FS_BASE	0xc0000100
#define MSR_GS_BASE	0xc0000101
#define MSR_KERNEL_GS_BASE 0xc0000102

#define EFER_SCE	0x001
#define EFER_LME	0x100
#define EFER_LMA	0x400
#define EFER_NXE	0x800

/* Page-table entry bits (SDM Vol 3 §4.5 tables 4-15..4-20). */
#define PTE_P		0x001
#define PTE_W		0x002
#define PTE_U		0x004
#define PTE_PWT		0x008
#define PTE_PCD		0x010
#define PTE_A		0x020
#define PTE_D		0x040
#define PTE_PS		0x080
#define PTE_G		0x100

#define MB_HEADER_MAGIC	0x1badb002
#define MB_HEADER_FLAGS	0x00000003	/* page-align modules, want memory info */
#define MB_BOOT_MAGIC	0x2badb002	/* EAX at entry (Multiboot 0.6.96 §3.2) */

#define STACK_SIZE	16384
#define AP_TRAMPOLINE	0x8000		/* SIPI vector 0x08: real-mode CS = 0x0800, IP = 0 */

#define USER_EXIT_VECTOR 0x81		/* DPL3 gate through which user_run's functions return */
#define SYS_EXIT	0		/* SYSCALL numbers of the runtime's entry: leave user mode */
#define SYS_ECHO	1		/* return RDI in RAX after recording the entry state */

#ifdef __ASSEMBLER__
/*
 * Enter long mode from 32-bit protected mode with paging off (SDM Vol 3 §10.8.5,
 * APM Vol 2 §14.6.1): PAE on, CR3 and EFER from the values the boot path chose, then
 * CR0.PG, which activates long mode (EFER.LMA) in compatibility mode; the far jump to a
 * 64-bit code segment completes the switch. Clobbers EAX, ECX, EDX.
 */
.macro LONG_MODE_ON target
	mov %cr4, %eax
	or $CR4_PAE, %eax
	mov %eax, %cr4
	mov boot_cr3, %eax
	mov %eax, %cr3
	mov $MSR_EFER, %ecx
	mov boot_efer, %eax
	xor %edx, %edx
	wrmsr
	mov %cr0, %eax
	or $(CR0_PG | CR0_WP | CR0_PE | CR0_NE), %eax
	mov %eax, %cr0
	ljmp $KERNEL_CS64, $\target
.endm
#endif

#ifdef __ASSEMBLER__
/*
 * Around a call into 32-bit or 16-bit code from 64-bit code (the mode tests): saves what that
 * code cannot preserve (the upper halves of RBX/RBP; R12-R15 it cannot even name).
 */
.macro SAVE_CALLEE
	push %rbx
	push %rbp
	push %r12
	push %r13
	push %r14
	push %r15
.endm
.macro RESTORE_CALLEE
	pop %r15
	pop %r14
	pop %r13
	pop %r12
	pop %rbp
	pop %rbx
.endm
#endif

#endif
