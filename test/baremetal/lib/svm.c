/*
 * SVM helpers for the svm* test images (see svm.h): enabling SVM, the baseline VMCB of
 * ../shared/spec/svm.md §8.0, the VMRUN wrapper, intercept/IOPM/MSRPM editing and the identity
 * nested page tables. Linked into every image like the rest of lib/, but only the svm* tests
 * call it.
 */
#include "svm.h"

struct svm_gprs svm_gregs;
struct svm_host_regs svm_host_before, svm_host_after;
u8 *svm_iopm, *svm_msrpm;
u64 svm_hsave_pa;
u64 npt_root_pa;

bool svm_supported(void)
{
	if (cpuid(0x80000000, 0).a < 0x80000001)
		return false;
	return cpuid(0x80000001, 0).c & BIT(2);
}

u32 svm_features(void)
{
	if (!svm_supported() || cpuid(0x80000000, 0).a < 0x8000000a)
		return 0;
	return cpuid(0x8000000a, 0).d;
}

u64 svm_maxphyaddr(void)
{
	return 1ull << max_phys_addr_bits();
}

/*
 * The wrapper. Host callee-saved registers go on the host stack (VMRUN saves RSP and #VMEXIT
 * restores it, §5.2 step 9, §5.6 step 5); the guest's RBX..R15 are loaded from svm_gregs and
 * stored back after the exit. RAX is the VMCB address on both sides (the #VMEXIT restores the
 * host RAX). The RFLAGS image is pushed before the guest registers are loaded and popped right
 * before VMRUN, so a TF set there traps after VMRUN, not after the loads.
 */
asm(".text\n"
    ".globl svm_vmrun_raw, svm_vmrun_insn, svm_vmrun_after\n"
    "svm_vmrun_raw:\n\t"
    "push %rbx\n\t"
    "push %rbp\n\t"
    "push %r12\n\t"
    "push %r13\n\t"
    "push %r14\n\t"
    "push %r15\n\t"
    "pushfq\n\t"
    "or %rsi, (%rsp)\n\t"
    "mov (%rsp), %rax\n\t"
    "mov %rax, svm_host_before+8(%rip)\n\t"
    "mov %rdi, %rax\n\t"
    "mov %rsp, svm_host_before+0(%rip)\n\t"
    "addq $8, svm_host_before+0(%rip)\n\t"	/* RSP at VMRUN, after the POPFQ */
    "mov %rax, svm_host_before+16(%rip)\n\t"
    "mov svm_gregs+0(%rip), %rbx\n\t"
    "mov svm_gregs+8(%rip), %rcx\n\t"
    "mov svm_gregs+16(%rip), %rdx\n\t"
    "mov svm_gregs+24(%rip), %rsi\n\t"
    "mov svm_gregs+32(%rip), %rdi\n\t"
    "mov svm_gregs+40(%rip), %rbp\n\t"
    "mov svm_gregs+48(%rip), %r8\n\t"
    "mov svm_gregs+56(%rip), %r9\n\t"
    "mov svm_gregs+64(%rip), %r10\n\t"
    "mov svm_gregs+72(%rip), %r11\n\t"
    "mov svm_gregs+80(%rip), %r12\n\t"
    "mov svm_gregs+88(%rip), %r13\n\t"
    "mov svm_gregs+96(%rip), %r14\n\t"
    "mov svm_gregs+104(%rip), %r15\n\t"
    "popfq\n"
    "svm_vmrun_insn:\n\t"
    "vmrun %rax\n"
    "svm_vmrun_after:\n\t"
    "mov %rsp, svm_host_after+0(%rip)\n\t"
    "pushfq\n\t"
    "popq svm_host_after+8(%rip)\n\t"
    "mov %rax, svm_host_after+16(%rip)\n\t"
    "mov %rbx, svm_gregs+0(%rip)\n\t"
    "mov %rcx, svm_gregs+8(%rip)\n\t"
    "mov %rdx, svm_gregs+16(%rip)\n\t"
    "mov %rsi, svm_gregs+24(%rip)\n\t"
    "mov %rdi, svm_gregs+32(%rip)\n\t"
    "mov %rbp, svm_gregs+40(%rip)\n\t"
    "mov %r8, svm_gregs+48(%rip)\n\t"
    "mov %r9, svm_gregs+56(%rip)\n\t"
    "mov %r10, svm_gregs+64(%rip)\n\t"
    "mov %r11, svm_gregs+72(%rip)\n\t"
    "mov %r12, svm_gregs+80(%rip)\n\t"
    "mov %r13, svm_gregs+88(%rip)\n\t"
    "mov %r14, svm_gregs+96(%rip)\n\t"
    "mov %r15, svm_gregs+104(%rip)\n\t"
    "pop %r15\n\t"
    "pop %r14\n\t"
    "pop %r13\n\t"
    "pop %r12\n\t"
    "pop %rbp\n\t"
    "pop %rbx\n\t"
    "ret\n");

int svm_vmrun_try(u64 rax, u64 rflags_or)
{
	/* Arm the runtime's recovery point on the VMRUN itself: a fault resumes right after it. */
	u64 recover = (u64)svm_vmrun_after;
	last_ex.vector = -1;
	ex_site = (u64)svm_vmrun_insn;
	barrier();
	ex_recover = recover;
	svm_vmrun_raw(rax, rflags_or);
	return ex_vector();
}

/*
 * The guest side of the baseline: fn(arg) on the guest stack, then VMMCALL. Should L1 resume
 * the guest after the VMMCALL exit, it exits again rather than run off.
 */
static void (*volatile guest_fn)(u64) __attribute__((used));
static volatile u64 guest_arg __attribute__((used));
static u8 guest_stack[4 * PAGE_SIZE] __attribute__((aligned(16)));
asm(".text\n"
    ".globl svm_guest_entry, svm_guest_vmmcall\n"
    "svm_guest_entry:\n\t"
    "mov guest_arg(%rip), %rdi\n\t"
    "call *guest_fn(%rip)\n"
    "svm_guest_vmmcall:\n\t"
    "vmmcall\n\t"
    "jmp svm_guest_vmmcall\n");

u64 svm_run(struct vmcb *vmcb)
{
	/* The guest may arm ASM_TRY for its own exceptions; an intercepted one leaves it armed. */
	u64 recover = ex_recover;
	svm_vmrun_raw((u64)vmcb, 0);
	ex_recover = recover;
	stgi();
	return vmcb->control.exit_code;
}

static const char *exit_name(u64 code)
{
	static const struct { u64 code; const char *name; } names[] = {
		{ SVM_EXIT_INTR, "INTR" }, { SVM_EXIT_NMI, "NMI" }, { SVM_EXIT_SMI, "SMI" },
		{ SVM_EXIT_INIT, "INIT" }, { SVM_EXIT_VINTR, "VINTR" },
		{ SVM_EXIT_CR0_SEL_WRITE, "CR0_SEL_WRITE" }, { SVM_EXIT_RDTSC, "RDTSC" },
		{ SVM_EXIT_CPUID, "CPUID" }, { SVM_EXIT_RSM, "RSM" }, { SVM_EXIT_HLT, "HLT" },
		{ SVM_EXIT_IOIO, "IOIO" }, { SVM_EXIT_MSR, "MSR" }, { SVM_EXIT_SHUTDOWN, "SHUTDOWN" },
		{ SVM_EXIT_VMRUN, "VMRUN" }, { SVM_EXIT_VMMCALL, "VMMCALL" },
		{ SVM_EXIT_VMLOAD, "VMLOAD" }, { SVM_EXIT_VMSAVE, "VMSAVE" }, { SVM_EXIT_NPF, "NPF" },
		{ SVM_EXIT_INVALID, "VMEXIT_INVALID" }, { 0xffffffffull, "VMEXIT_INVALID in 32 bits" },
	};
	for (size_t i = 0; i < ARRAY_SIZE(names); i++)
		if (names[i].code == code)
			return names[i].name;
	if (code >= SVM_EXIT_EXCP_BASE && code < SVM_EXIT_EXCP_BASE + 32)
		return "exception";
	if (code < SVM_EXIT_EXCP_BASE)
		return "CR/DR access";
	return "";
}

bool expect_exit(const char *name, struct vmcb *v, u64 expected)
{
	u64 got = v->control.exit_code;
	if (got == expected)
		return report(true, "%s", name);
	return report(false, "%s (exit code 0x%lx %s, expected 0x%lx %s; guest RIP 0x%lx, "
		      "EXITINFO1 0x%lx, EXITINFO2 0x%lx)", name, got, exit_name(got), expected,
		      exit_name(expected), v->save.rip, v->control.exit_info_1, v->control.exit_info_2);
}

void vmcb_intercept(struct vmcb *v, u64 code, bool on)
{
	u32 *word;
	unsigned bit;
	if (code < 0x020) {			/* CR reads 0x000+n, writes 0x010+n: word 0 */
		word = &v->control.intercept_cr;
		bit = (code & 0xf) + (code >= 0x010 ? 16 : 0);
	} else if (code < 0x040) {		/* DR: word 1 */
		word = &v->control.intercept_dr;
		bit = (code & 0xf) + (code >= 0x030 ? 16 : 0);
	} else if (code < 0x060) {		/* exceptions: word 2 */
		word = &v->control.intercept_exceptions;
		bit = code - 0x040;
	} else {				/* words 3-5: bit k = exit code 0x060 + k (§3.3) */
		unsigned k = code - 0x060;
		word = &v->control.intercept_word3 + k / 32;
		bit = k % 32;
	}
	if (on)
		*word |= 1u << bit;
	else
		*word &= ~(1u << bit);
}

void iopm_set(u32 port, bool on)
{
	if (on)
		svm_iopm[port / 8] |= (u8)(1 << (port % 8));
	else
		svm_iopm[port / 8] &= (u8)~(1 << (port % 8));
}

s64 msrpm_bit(u32 msr)
{
	/* §3.8: three 2 KiB ranges, two bits per MSR. */
	static const u32 base[3] = { 0x00000000, 0xc0000000, 0xc0010000 };
	for (int r = 0; r < 3; r++)
		if (msr - base[r] < 0x2000)
			return (s64)r * 0x800 * 8 + (s64)(msr - base[r]) * 2;
	return -1;
}

void msrpm_set(u32 msr, bool read, bool write)
{
	s64 bit = msrpm_bit(msr);
	if (bit < 0)
		return;
	u8 *b = &svm_msrpm[bit / 8];
	*b &= (u8)~(3 << (bit % 8));
	*b |= (u8)(((read ? 1 : 0) | (write ? 2 : 0)) << (bit % 8));
}

/* ---- nested page tables -------------------------------------------------------------------- */

#define NPT_ADDR_MASK 0x000ffffffffff000ull
#define NPT_TABLE_FLAGS (PTE_P | PTE_W | PTE_U)
static u64 *npt_pml4, *npt_pdpt, *npt_pd;	/* npt_pd: 4 consecutive pages */

void npt_reset(void)
{
	/* §7.2: all nested accesses are user accesses, so every entry has U/S = 1. */
	memset(npt_pml4, 0, PAGE_SIZE);
	memset(npt_pdpt, 0, PAGE_SIZE);
	npt_pml4[0] = (u64)npt_pdpt | NPT_TABLE_FLAGS;
	for (u64 i = 0; i < 4; i++)
		npt_pdpt[i] = ((u64)npt_pd + i * PAGE_SIZE) | NPT_TABLE_FLAGS;
	for (u64 i = 0; i < 2048; i++)
		npt_pd[i] = (i << 21) | PTE_PS | NPT_TABLE_FLAGS;
	npt_root_pa = (u64)npt_pml4;
}

u64 *npt_entry(u64 gpa, int level)
{
	u64 *table = npt_pml4;
	for (int l = 4; l > level; l--) {
		u64 *e = &table[(gpa >> (12 + 9 * (l - 1))) & 511];
		if (!(*e & PTE_P)) {
			*e = (u64)alloc_page() | NPT_TABLE_FLAGS;
		} else if (l <= 3 && (*e & PTE_PS)) {
			/* Split a large leaf into 512 smaller ones with the same bits. */
			u64 *t = alloc_page();
			u64 child = 1ull << (12 + 9 * (l - 2));
			u64 base = *e & NPT_ADDR_MASK & ~(child * 512 - 1);
			u64 attrs = *e & (0xfffull | BIT(63));
			if (l == 2)
				attrs &= ~(u64)PTE_PS;
			for (u64 i = 0; i < 512; i++)
				t[i] = (base + i * child) | attrs;
			*e = (u64)t | NPT_TABLE_FLAGS;
		}
		table = (u64 *)(*e & NPT_ADDR_MASK);
	}
	return &table[(gpa >> (12 + 9 * (level - 1))) & 511];
}

/* ---- setup and the baseline VMCB ----------------------------------------------------------- */

static volatile unsigned gif_probe_hits;

static void gif_probe_handler(struct ex_frame *f)
{
	(void)f;
	gif_probe_hits++;
	apic_eoi();
}

bool svm_gif_probe(void)
{
	unsigned before = gif_probe_hits;
	apic_icr(apic_id(), APIC_ICR_FIXED | APIC_ICR_ASSERT | SVM_GIF_PROBE_VECTOR);
	asm volatile("sti; nop; nop; cli" ::: "memory");
	if (gif_probe_hits != before)
		return true;
	/* Held: GIF was 0. Take the IPI with GIF = 1 so it does not linger, then restore GIF = 0. */
	asm volatile("stgi; sti; nop; nop; cli; clgi" ::: "memory");
	return false;
}

void svm_setup(void)
{
	if (!svm_supported()) {
		report_skip("SVM tests", "CPUID Fn8000_0001 ECX[2] (SVM) is 0: run with -cpu max,+svm");
		report_summary_and_exit();
	}
	wrmsr(MSR_EFER, rdmsr(MSR_EFER) | EFER_SVME);
	svm_hsave_pa = (u64)alloc_page();
	wrmsr(MSR_VM_HSAVE_PA, svm_hsave_pa);
	/* 12 KiB for the IOPM as KVM reserves (§3.7), 8 KiB for the MSRPM (§3.8). */
	svm_iopm = alloc_pages_aligned(2);
	svm_msrpm = alloc_pages_aligned(1);
	apic_enable();
	set_handler(SVM_GIF_PROBE_VECTOR, gif_probe_handler);
	npt_pml4 = alloc_page();
	npt_pdpt = alloc_page();
	npt_pd = alloc_pages_aligned(2);
	npt_reset();
}

struct vmcb *vmcb_alloc(void)
{
	return alloc_page();
}

u64 svm_guest_stack(void)
{
	return (u64)guest_stack + sizeof(guest_stack);
}

static void vmcb_seg(struct vmcb_seg *s, u16 sel, u16 attrib)
{
	*s = (struct vmcb_seg){ .selector = sel, .attrib = attrib, .limit = 0xffffffff, .base = 0 };
}

void vmcb_init(struct vmcb *v, u64 guest_rip, u64 guest_rsp)
{
	struct { u16 limit; u64 base; } __attribute__((packed)) dt;
	memset(v, 0, sizeof(*v));
	/* §8.0: VMSAVE fills FS/GS/TR/LDTR and the SYSCALL/SYSENTER MSR fields with L1's values. */
	vmsave((u64)v);

	struct vmcb_control *c = &v->control;
	c->intercept_word4 = 0;
	vmcb_set_intercept(v, SVM_EXIT_VMRUN);
	vmcb_set_intercept(v, SVM_EXIT_VMMCALL);
	vmcb_set_intercept(v, SVM_EXIT_SHUTDOWN);
	c->iopm_base_pa = (u64)svm_iopm;
	c->msrpm_base_pa = (u64)svm_msrpm;
	c->asid = 1;
	if (svm_has(SVM_FEAT_NP)) {
		c->misc_ctl = NP_ENABLE;
		c->nested_cr3 = npt_root_pa;
		c->tlb_control = 1;
	}

	struct vmcb_save *s = &v->save;
	vmcb_seg(&s->es, KERNEL_DS, SVM_ATTR_DATA);
	vmcb_seg(&s->ss, KERNEL_DS, SVM_ATTR_DATA);
	vmcb_seg(&s->ds, KERNEL_DS, SVM_ATTR_DATA);
	vmcb_seg(&s->cs, KERNEL_CS64, SVM_ATTR_CODE64);
	sgdt(&dt);
	s->gdtr.limit = dt.limit;
	s->gdtr.base = dt.base;
	sidt(&dt);
	s->idtr.limit = dt.limit;
	s->idtr.base = dt.base;
	s->cpl = 0;
	s->efer = rdmsr(MSR_EFER);
	s->cr0 = read_cr0();
	s->cr3 = read_cr3();
	s->cr4 = read_cr4();
	s->cr2 = read_cr2();
	s->dr6 = read_dr6();
	s->dr7 = read_dr7();
	s->g_pat = rdmsr(MSR_PAT);
	/* DEBUGCTL may be missing on a machine without LBR support: then 0. */
	s->dbgctl = 0;
	rdmsr_safe(MSR_DEBUGCTL, &s->dbgctl);
	s->rflags = RFLAGS_FIXED;
	s->rip = guest_rip;
	s->rsp = guest_rsp;
}

void vmcb_user_mode(struct vmcb *v)
{
	/* DPL 3 in the packed attributes (bits 6:5, §3.4) and the CPL byte. */
	vmcb_seg(&v->save.cs, USER_CS64 | 3, SVM_ATTR_CODE64 | 0x60);
	vmcb_seg(&v->save.ss, USER_DS | 3, SVM_ATTR_DATA | 0x60);
	vmcb_seg(&v->save.ds, USER_DS | 3, SVM_ATTR_DATA | 0x60);
	vmcb_seg(&v->save.es, USER_DS | 3, SVM_ATTR_DATA | 0x60);
	v->save.cpl = 3;
}

void vmcb_init_guest(struct vmcb *v, void (*fn)(u64), u64 arg)
{
	guest_fn = fn;
	guest_arg = arg;
	vmcb_init(v, (u64)svm_guest_entry, svm_guest_stack());
}
