/*
 * Assembly for svm_intercepts: INTO exists only outside 64-bit mode, so the #OF case of T-33
 * (../shared/spec/svm.md §8.5) far-calls into a 32-bit code segment (compatibility mode), sets
 * OF and executes INTO there, then far-returns. The #OF handler of the runtime resumes at
 * into_after (ASM_TRY style), which is what a trap reports as RIP anyway.
 */
#include "asm-defs.h"

	.text
	.code64
	.globl into_compat
into_compat:
	lcall *into_ptr(%rip)
	ret

	.code32
into_entry:
	mov $0x7f, %al
	add $1, %al			/* 0x7F + 1 overflows: OF = 1 */
	.globl into_site, into_after
into_site:
	into
into_after:
	lret

	.data
	.align 8
into_ptr:
	.long into_entry
	.word KERNEL_CS32
