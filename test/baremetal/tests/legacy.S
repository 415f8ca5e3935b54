/*
 * 32-bit code for the legacy test: two runners that execute a snippet with registers and
 * flags from a struct regs32 and store them back, one in compatibility mode (a far call from
 * 64-bit code; exceptions go through the runtime's 64-bit IDT, whose handler resumes at
 * run_recover) and one in legacy protected mode (long mode switched off and on again around
 * the snippet as in the modes test, SDM Vol 3 §10.8.5; exceptions go through a 32-bit IDT of
 * stubs that record the frame in legacy_fault and resume at run_recover). Then the snippets:
 * each a few instructions ending in RET, run by either runner.
 */
#include "asm-defs.h"
#include "legacy.h"

	.text
	.code64

/*
 * 64-bit code ignores DS, ES and SS, which may hold null or user selectors after earlier tests;
 * 32-bit code uses them, so both runners load flat kernel ones first.
 */
.macro FLAT_DATA_SEGMENTS
	mov $KERNEL_DS, %eax
	mov %eax, %ds
	mov %eax, %es
	mov %eax, %ss
.endm

/* void run_compat(struct regs32 *r, void (*snippet)(void)) */
	.globl run_compat
run_compat:
	SAVE_CALLEE
	FLAT_DATA_SEGMENTS
	mov %edi, run_regs(%rip)
	mov %esi, run_snippet(%rip)
	lcall *compat_ptr(%rip)
	RESTORE_CALLEE
	ret

/* void run_legacy(struct regs32 *r, void (*snippet)(void)) */
	.globl run_legacy
run_legacy:
	SAVE_CALLEE
	FLAT_DATA_SEGMENTS
	mov %edi, run_regs(%rip)
	mov %esi, run_snippet(%rip)
	mov %rsp, legacy_rsp(%rip)
	sidt legacy_idtr64(%rip)
	ljmp *legacy_ptr(%rip)

	.code32
compat_entry:
	call run_body
	lret

legacy_entry:
	/* Compatibility mode, CPL 0, identity-mapped: clearing PG leaves long mode (LMA = 0). */
	mov %cr0, %eax
	and $~CR0_PG, %eax
	mov %eax, %cr0
	mov $MSR_EFER, %ecx
	rdmsr
	and $~EFER_LME, %eax
	wrmsr
	mov $KERNEL_DS32, %eax
	mov %eax, %ds
	mov %eax, %es
	mov %eax, %ss
	lidt idt32_desc
	call run_body
	mov $KERNEL_DS32, %eax
	mov %eax, %ds
	mov %eax, %es
	LONG_MODE_ON legacy_back

	.code64
legacy_back:
	FLAT_DATA_SEGMENTS
	mov legacy_rsp(%rip), %rsp
	lidt legacy_idtr64(%rip)
	RESTORE_CALLEE
	ret

	.code32
/*
 * Load EBX..EDI, EAX and EFLAGS from *run_regs, call *run_snippet, store them back. After an
 * exception the handlers resume at run_recover with the registers of the faulting point.
 */
run_body:
	mov %esp, run_esp
	mov run_regs, %eax
	pushl R32_EFLAGS(%eax)
	popfl
	mov R32_ECX(%eax), %ecx
	mov R32_EDX(%eax), %edx
	mov R32_EBX(%eax), %ebx
	mov R32_EBP(%eax), %ebp
	mov R32_ESI(%eax), %esi
	mov R32_EDI(%eax), %edi
	mov R32_EAX(%eax), %eax
	call *run_snippet
run_store:
	pushfl
	push %eax
	mov run_regs, %eax
	popl R32_EAX(%eax)
	popl R32_EFLAGS(%eax)
	mov %ecx, R32_ECX(%eax)
	mov %edx, R32_EDX(%eax)
	mov %ebx, R32_EBX(%eax)
	mov %ebp, R32_EBP(%eax)
	mov %esi, R32_ESI(%eax)
	mov %edi, R32_EDI(%eax)
	cld
	ret

	/* SS too: a snippet may have been on its 16-bit stack (KERNEL_DS is flat in every mode). */
	.globl run_recover
run_recover:
	lss run_esp, %esp
	jmp run_store

/*
 * Legacy-mode exception stubs for vectors 0-31, 16 bytes apart (legacy.c builds the IDT):
 * a zero stands in for the error code where the CPU pushes none. The common part records
 * the frame (with SS:ESP when the exception came from CPL 3) and goes on at run_recover, at
 * CPL 0, without returning to the snippet.
 */
	.align 16
	.globl legacy_isr_stubs
legacy_isr_stubs:
	.set vec, 0
	.rept 32
	.align 16
	.if !((vec == 8) || (vec >= 10 && vec <= 14) || (vec == 17) || (vec == 21) || (vec == 29) || (vec == 30))
	push $0
	.endif
	push $vec
	jmp legacy_isr_common
	.set vec, vec + 1
	.endr

legacy_isr_common:
	mov %eax, isr_eax
	popl legacy_fault + F32_VECTOR
	popl legacy_fault + F32_ERROR
	popl legacy_fault + F32_EIP
	popl legacy_fault + F32_CS
	popl legacy_fault + F32_EFLAGS
	testb $3, legacy_fault + F32_CS
	jz 1f
	popl legacy_fault + F32_ESP
	popl legacy_fault + F32_SS
1:	mov %cr2, %eax
	mov %eax, legacy_fault + F32_CR2
	mov isr_eax, %eax
	jmp run_recover

/* ---- snippets (32-bit code; registers and flags from the runner) ---- */

.macro SNIPPET name, insns:vararg
	.globl \name
\name:
	\insns
	ret
.endm

	SNIPPET snip_daa, daa
	SNIPPET snip_das, das
	SNIPPET snip_aaa, aaa
	SNIPPET snip_aas, aas
	SNIPPET snip_aam, aam
	SNIPPET snip_aam16, aam $16
	SNIPPET snip_aam0, .byte 0xd4, 0x00
	SNIPPET snip_aad, aad
	SNIPPET snip_aad7, aad $7
	SNIPPET snip_bound32, bound %eax, bound32_pair
	SNIPPET snip_bound16, boundw %ax, bound16_pair
	SNIPPET snip_arpl, arpl %cx, %ax
	SNIPPET snip_arpl_mem, arpl %cx, arpl_word
	SNIPPET snip_lar, lar %cx, %eax
	SNIPPET snip_lar16, lar %cx, %ax
	SNIPPET snip_lar_mem, lar query_sel, %eax
	SNIPPET snip_lsl, lsl %cx, %eax
	SNIPPET snip_lsl16, lsl %cx, %ax
	SNIPPET snip_verr, verr %cx
	SNIPPET snip_verw, verw %cx
	SNIPPET snip_verw_mem, verw query_sel
	SNIPPET snip_rdpmc, rdpmc
	SNIPPET snip_sysenter, sysenter
	SNIPPET snip_sysexit, sysexit

/* PUSHAD/PUSHAW: the stack pointer before and after, and the slots pushed (lowest first). */
.macro PUSHA_SNIPPET name, insn, bytes
	.globl \name
\name:
	mov %esp, stk_before
	\insn
	mov %esp, stk_after
	push %esi
	push %edi
	push %ecx
	lea 12(%esp), %esi
	mov $stk_slots, %edi
	mov $(\bytes / 4), %ecx
	cld
	rep movsl
	pop %ecx
	pop %edi
	pop %esi
	add $\bytes, %esp
	ret
.endm
	PUSHA_SNIPPET snip_pushad, pushal, 32
	PUSHA_SNIPPET snip_pushaw, pushaw, 16

/* POPAD/POPAW of the values in stk_slots; the stack pointer before and after. */
.macro POPA_SNIPPET name, insn, bytes
	.globl \name
\name:
	mov %esp, stk_before
	sub $\bytes, %esp
	mov %esp, %edi
	mov $stk_slots, %esi
	mov $(\bytes / 4), %ecx
	cld
	rep movsl
	/* the inputs the copy clobbered, whose upper halves POPAW must keep */
	mov stk_regs_in + R32_ECX, %ecx
	mov stk_regs_in + R32_ESI, %esi
	mov stk_regs_in + R32_EDI, %edi
	\insn
	mov %esp, stk_after
	ret
.endm
	POPA_SNIPPET snip_popad, popal, 32
	POPA_SNIPPET snip_popaw, popaw, 16

/* PUSHAD/POPAD with ESP = stk_esp_in, for faults: the labels name the faulting instruction. */
	.globl snip_pushad_at, pushad_at_insn, snip_popad_at, popad_at_insn
snip_pushad_at:
	mov %esp, stk_before
	mov stk_esp_in, %esp
pushad_at_insn:
	pushal
	mov stk_before, %esp
	ret
snip_popad_at:
	mov %esp, stk_before
	mov stk_esp_in, %esp
popad_at_insn:
	popal
	mov stk_before, %esp
	ret

/* ENTER level 3 and LEAVE, 32-bit: ESP/EBP after each, and the four slots ENTER pushed. */
	.globl snip_enter32
snip_enter32:
	mov %esp, stk_before
	enter $16, $3
	mov %esp, stk_after
	mov %ebp, stk_ebp
	mov (%ebp), %eax
	mov %eax, stk_slots
	mov -4(%ebp), %eax
	mov %eax, stk_slots + 4
	mov -8(%ebp), %eax
	mov %eax, stk_slots + 8
	mov -12(%ebp), %eax
	mov %eax, stk_slots + 12
	leave
	mov %esp, stk_leave_esp
	mov %ebp, stk_leave_ebp
	ret

/*
 * The same instructions on a 16-bit stack (SS = STACK16_SEL: B = 0, base STACK16_BASE), entered
 * and left with LSS so that no general register is needed: SS:ESP from stk16_in, the old ones
 * kept in stk16_saved. ESP (and EBP) after each step go to stk16_out[].
 */
.macro STACK16_ENTER name
	.globl \name
\name:
	mov %esp, stk16_saved
	mov %ss, stk16_saved + 4
	lss stk16_in, %esp
.endm
.macro STACK16_LEAVE
	lss stk16_saved, %esp
	ret
.endm
	STACK16_ENTER snip16_pushad
	pushal
	mov %esp, stk16_out
	STACK16_LEAVE

	STACK16_ENTER snip16_popaw
	popaw
	mov %esp, stk16_out
	STACK16_LEAVE

	STACK16_ENTER snip16_enterw
	enterw $6, $2
	mov %esp, stk16_out
	mov %ebp, stk16_out + 4
	leavew
	mov %esp, stk16_out + 8
	mov %ebp, stk16_out + 12
	STACK16_LEAVE

	STACK16_ENTER snip16_push
	pushw $0x1234
	mov %esp, stk16_out
	push $-2
	mov %esp, stk16_out + 4
	pushfw
	mov %esp, stk16_out + 8
	pushfl
	mov %esp, stk16_out + 12
	popfl
	popfw
	lea 6(%esp), %esp		/* drops the two immediates; SP is 0 here, so no carry into ESP[31:16] */
	mov %esp, stk16_out + 16
	STACK16_LEAVE

/*
 * SYSEXIT to CPL 3 and SYSENTER back (legacy mode only). SYSENTER_ESP = ESP here, so the
 * SYSENTER target finds the return address on its stack. The CPL 3 code records its CS, SS,
 * ESP and EFLAGS, then sysenter_user_action: 0 = SYSENTER, 1 = SYSEXIT (#GP at CPL 3).
 */
	.globl snip_sysexit_trip
snip_sysexit_trip:
	mov %esp, %eax
	xor %edx, %edx
	mov $MSR_SYSENTER_ESP, %ecx
	wrmsr
	mov $user_entry, %edx
	mov $sysexit_user_stack_top, %ecx
	sti				/* SYSEXIT leaves EFLAGS alone; SYSENTER clears IF */
	sysexit
user_entry:
	mov %cs, user_seen + 0
	mov %ss, user_seen + 4
	mov %esp, user_seen + 8
	pushfl
	popl user_seen + 12
	cmpl $0, sysenter_user_action
	jne 1f
	sysenter
1:	.globl user_sysexit
user_sysexit:
	sysexit

	.globl sysenter_target
sysenter_target:
	mov %cs, kernel_seen + 0
	mov %ss, kernel_seen + 4
	mov %esp, kernel_seen + 8
	pushfl
	popl kernel_seen + 12
	ret

/* RDPMC at CPL 3 (legacy mode): SYSEXIT there, RDPMC with the runner's ECX, SYSENTER back. */
	.globl snip_rdpmc_user
snip_rdpmc_user:
	mov %ecx, pmc_user_ecx
	mov %esp, %eax
	xor %edx, %edx
	mov $MSR_SYSENTER_ESP, %ecx
	wrmsr
	mov $pmc_user_entry, %edx
	mov $sysexit_user_stack_top, %ecx
	sysexit
pmc_user_entry:
	mov pmc_user_ecx, %ecx
	.globl pmc_user_rdpmc
pmc_user_rdpmc:
	rdpmc
	sysenter

	.data
	.align 8
compat_ptr:
	.long compat_entry
	.word KERNEL_CS32
legacy_ptr:
	.long legacy_entry
	.word KERNEL_CS32
	.align 8
legacy_rsp:	.quad 0
legacy_idtr64:	.fill 10, 1, 0
run_regs:	.long 0
run_snippet:	.long 0
run_esp:	.long 0			/* with a selector for LSS */
	.word KERNEL_DS
isr_eax:	.long 0
pmc_user_ecx:	.long 0
	.globl stk_before, stk_after, stk_ebp, stk_slots, stk_leave_esp, stk_leave_ebp, stk_regs_in, stk_esp_in
stk_esp_in:	.long 0
stk_before:	.long 0
stk_after:	.long 0
stk_ebp:	.long 0
stk_leave_esp:	.long 0
stk_leave_ebp:	.long 0
stk_slots:	.fill 8, 4, 0
stk_regs_in:	.fill 9, 4, 0
	.globl stk16_in, stk16_out
stk16_in:	.long 0			/* m16:32 for LSS: ESP, then SS */
	.word STACK16_SEL
stk16_saved:	.long 0
	.word 0
	.align 4
stk16_out:	.fill 5, 4, 0
	.globl bound32_pair, bound16_pair, arpl_word, query_sel
bound32_pair:	.long 0, 0
bound16_pair:	.word 0, 0
arpl_word:	.word 0
query_sel:	.word 0
	.globl user_seen, kernel_seen, sysenter_user_action
user_seen:	.fill 4, 4, 0
kernel_seen:	.fill 4, 4, 0
sysenter_user_action: .long 0

	.bss
	.align 16
	.fill 1024, 1, 0
	.globl sysexit_user_stack_top
sysexit_user_stack_top:
