/*
 * AMD SVM helpers for the svm* test images: the VMCB layout of ../shared/spec/svm.md §3 (declared
 * once, with every offset checked at compile time), exit codes (§4), intercept bits (§3.3),
 * EVENTINJ/EXITINTINFO (§3.6), int_ctl (§3.5), the IOPM and MSRPM (§3.7, §3.8), nested page
 * tables (§7), and the baseline environment of §8.0: a guest that shares L1's page tables,
 * segments and IDT, run with a plain VMRUN wrapper that swaps the general registers the VMCB does
 * not hold.
 *
 * Only test images include this; the runtime itself knows nothing about SVM.
 */
#ifndef BAREMETAL_SVM_H
#define BAREMETAL_SVM_H

#include "runtime.h"

/* ---- MSRs and CPUID (§2) -------------------------------------------------------------------- */

#define MSR_TSC			0x00000010
#define MSR_TSC_ADJUST		0x0000003b
#define MSR_DEBUGCTL		0x000001d9
#define MSR_LASTBRANCHFROMIP	0x000001db
#define MSR_LASTBRANCHTOIP	0x000001dc
#define MSR_PAT			0x00000277
#define MSR_TSC_RATIO		0xc0000104
#define MSR_VM_CR		0xc0010114
#define MSR_VM_IGNNE		0xc0010115
#define MSR_SMM_CTL		0xc0010116
#define MSR_VM_HSAVE_PA		0xc0010117
#define MSR_SVM_KEY		0xc0010118

#define EFER_SVME		BIT(12)
#define VM_CR_LOCK		BIT(3)
#define VM_CR_SVMDIS		BIT(4)

/* CPUID Fn8000_000A EDX (§2.1). */
#define SVM_FEAT_NP		BIT(0)
#define SVM_FEAT_LBRV		BIT(1)
#define SVM_FEAT_SVML		BIT(2)
#define SVM_FEAT_NRIPS		BIT(3)
#define SVM_FEAT_TSC_RATE	BIT(4)
#define SVM_FEAT_VMCB_CLEAN	BIT(5)
#define SVM_FEAT_FLUSH_ASID	BIT(6)
#define SVM_FEAT_DECODE_ASSISTS	BIT(7)
#define SVM_FEAT_PAUSE_FILTER	BIT(10)
#define SVM_FEAT_PAUSE_THRESH	BIT(12)
#define SVM_FEAT_AVIC		BIT(13)
#define SVM_FEAT_VLS		BIT(15)
#define SVM_FEAT_VGIF		BIT(16)
#define SVM_FEAT_VNMI		BIT(25)
#define SVM_FEAT_ADDR_CHK	BIT(28)

bool svm_supported(void);		/* CPUID Fn8000_0001 ECX[2] */
u32 svm_features(void);			/* CPUID Fn8000_000A EDX (0 when the leaf is missing) */
static inline bool svm_has(u32 feat) { return (svm_features() & feat) == feat; }
u64 svm_maxphyaddr(void);		/* 2^MAXPHYADDR: the first illegal physical address */

/* ---- VMCB layout (§3.1, §3.2, §3.4) ---------------------------------------------------------- */

struct vmcb_seg {
	u16 selector;
	u16 attrib;			/* packed access rights, §3.4 */
	u32 limit;
	u64 base;
};

struct vmcb_control {
	u32 intercept_cr;		/* 0x000 word 0: reads bits 15:0, writes 31:16 */
	u32 intercept_dr;		/* 0x004 word 1 */
	u32 intercept_exceptions;	/* 0x008 word 2 */
	u32 intercept_word3;		/* 0x00C INTR ... SHUTDOWN */
	u32 intercept_word4;		/* 0x010 VMRUN ... CR write traps */
	u32 intercept_word5;		/* 0x014 INVLPGB ... IDLE_HLT */
	u8 reserved_018[0x03c - 0x018];
	u16 pause_filter_thresh;	/* 0x03C */
	u16 pause_filter_count;		/* 0x03E */
	u64 iopm_base_pa;		/* 0x040 */
	u64 msrpm_base_pa;		/* 0x048 */
	u64 tsc_offset;			/* 0x050 */
	u32 asid;			/* 0x058 */
	u8 tlb_control;			/* 0x05C */
	u8 erap_control;		/* 0x05D */
	u16 reserved_05e;
	u32 int_ctl;			/* 0x060 */
	u32 int_vector;			/* 0x064 */
	u32 int_state;			/* 0x068 */
	u32 reserved_06c;
	u64 exit_code;			/* 0x070: 64 bits, §4 */
	u64 exit_info_1;		/* 0x078 */
	u64 exit_info_2;		/* 0x080 */
	u32 exit_int_info;		/* 0x088 */
	u32 exit_int_info_err;		/* 0x08C */
	u64 misc_ctl;			/* 0x090: bit 0 NP_ENABLE */
	u64 avic_apic_bar;		/* 0x098 */
	u64 ghcb_gpa;			/* 0x0A0 */
	u32 event_inj;			/* 0x0A8 */
	u32 event_inj_err;		/* 0x0AC */
	u64 nested_cr3;			/* 0x0B0 */
	u64 misc_ctl2;			/* 0x0B8: bit 0 LBR virtualization, bit 1 virtual VMLOAD/VMSAVE */
	u32 clean;			/* 0x0C0 */
	u32 reserved_0c4;
	u64 next_rip;			/* 0x0C8 */
	u8 insn_len;			/* 0x0D0 */
	u8 insn_bytes[15];		/* 0x0D1 */
	u8 reserved_0e0[0x3e0 - 0x0e0];
	u8 software[0x400 - 0x3e0];	/* 0x3E0: reserved for host software, never touched */
};

struct vmcb_save {
	struct vmcb_seg es, cs, ss, ds, fs, gs, gdtr, ldtr, idtr, tr;	/* 0x400-0x49F */
	u8 reserved_4a0[0x4ca - 0x4a0];
	u8 vmpl;			/* 0x4CA */
	u8 cpl;				/* 0x4CB */
	u32 reserved_4cc;
	u64 efer;			/* 0x4D0 */
	u8 reserved_4d8[0x548 - 0x4d8];
	u64 cr4;			/* 0x548 */
	u64 cr3;			/* 0x550 */
	u64 cr0;			/* 0x558 */
	u64 dr7;			/* 0x560 */
	u64 dr6;			/* 0x568 */
	u64 rflags;			/* 0x570 */
	u64 rip;			/* 0x578 */
	u8 reserved_580[0x5d8 - 0x580];
	u64 rsp;			/* 0x5D8 */
	u64 s_cet, ssp, isst_addr;	/* 0x5E0 */
	u64 rax;			/* 0x5F8 */
	u64 star;			/* 0x600 */
	u64 lstar;			/* 0x608 */
	u64 cstar;			/* 0x610 */
	u64 sfmask;			/* 0x618 */
	u64 kernel_gs_base;		/* 0x620 */
	u64 sysenter_cs;		/* 0x628 */
	u64 sysenter_esp;		/* 0x630 */
	u64 sysenter_eip;		/* 0x638 */
	u64 cr2;			/* 0x640 */
	u8 reserved_648[0x668 - 0x648];
	u64 g_pat;			/* 0x668 */
	u64 dbgctl;			/* 0x670 */
	u64 br_from;			/* 0x678 */
	u64 br_to;			/* 0x680 */
	u64 last_excp_from;		/* 0x688 */
	u64 last_excp_to;		/* 0x690 */
	u8 reserved_698[0x6e0 - 0x698];
	u64 spec_ctrl;			/* 0x6E0 */
	u8 reserved_6e8[0x1000 - 0x6e8];
};

struct vmcb {
	struct vmcb_control control;
	struct vmcb_save save;
};

/* The offsets of spec §3.1/§3.2, so a typo in the structs cannot go unnoticed. */
#define VMCB_OFF(f, off) _Static_assert(__builtin_offsetof(struct vmcb, f) == (off), "VMCB offset of " #f)
VMCB_OFF(control.intercept_word3, 0x00c);
VMCB_OFF(control.intercept_word5, 0x014);
VMCB_OFF(control.pause_filter_thresh, 0x03c);
VMCB_OFF(control.pause_filter_count, 0x03e);
VMCB_OFF(control.iopm_base_pa, 0x040);
VMCB_OFF(control.msrpm_base_pa, 0x048);
VMCB_OFF(control.tsc_offset, 0x050);
VMCB_OFF(control.asid, 0x058);
VMCB_OFF(control.tlb_control, 0x05c);
VMCB_OFF(control.int_ctl, 0x060);
VMCB_OFF(control.int_vector, 0x064);
VMCB_OFF(control.int_state, 0x068);
VMCB_OFF(control.exit_code, 0x070);
VMCB_OFF(control.exit_info_1, 0x078);
VMCB_OFF(control.exit_info_2, 0x080);
VMCB_OFF(control.exit_int_info, 0x088);
VMCB_OFF(control.exit_int_info_err, 0x08c);
VMCB_OFF(control.misc_ctl, 0x090);
VMCB_OFF(control.event_inj, 0x0a8);
VMCB_OFF(control.event_inj_err, 0x0ac);
VMCB_OFF(control.nested_cr3, 0x0b0);
VMCB_OFF(control.misc_ctl2, 0x0b8);
VMCB_OFF(control.clean, 0x0c0);
VMCB_OFF(control.next_rip, 0x0c8);
VMCB_OFF(control.insn_len, 0x0d0);
VMCB_OFF(control.software, 0x3e0);
VMCB_OFF(save.es, 0x400);
VMCB_OFF(save.cs, 0x410);
VMCB_OFF(save.ss, 0x420);
VMCB_OFF(save.ds, 0x430);
VMCB_OFF(save.fs, 0x440);
VMCB_OFF(save.gs, 0x450);
VMCB_OFF(save.gdtr, 0x460);
VMCB_OFF(save.ldtr, 0x470);
VMCB_OFF(save.idtr, 0x480);
VMCB_OFF(save.tr, 0x490);
VMCB_OFF(save.cpl, 0x4cb);
VMCB_OFF(save.efer, 0x4d0);
VMCB_OFF(save.cr4, 0x548);
VMCB_OFF(save.cr3, 0x550);
VMCB_OFF(save.cr0, 0x558);
VMCB_OFF(save.dr7, 0x560);
VMCB_OFF(save.dr6, 0x568);
VMCB_OFF(save.rflags, 0x570);
VMCB_OFF(save.rip, 0x578);
VMCB_OFF(save.rsp, 0x5d8);
VMCB_OFF(save.rax, 0x5f8);
VMCB_OFF(save.star, 0x600);
VMCB_OFF(save.lstar, 0x608);
VMCB_OFF(save.cstar, 0x610);
VMCB_OFF(save.sfmask, 0x618);
VMCB_OFF(save.kernel_gs_base, 0x620);
VMCB_OFF(save.sysenter_cs, 0x628);
VMCB_OFF(save.sysenter_esp, 0x630);
VMCB_OFF(save.sysenter_eip, 0x638);
VMCB_OFF(save.cr2, 0x640);
VMCB_OFF(save.g_pat, 0x668);
VMCB_OFF(save.dbgctl, 0x670);
VMCB_OFF(save.br_from, 0x678);
VMCB_OFF(save.last_excp_to, 0x690);
VMCB_OFF(save.spec_ctrl, 0x6e0);
_Static_assert(sizeof(struct vmcb) == 4096, "the VMCB is one page");
#undef VMCB_OFF

/* Segment attributes of the baseline guest (§3.4, §8.0). */
#define SVM_ATTR_CODE64		0xa99	/* type 9 | S | P | L | G */
#define SVM_ATTR_DATA		0xc93	/* type 3 | S | P | D/B | G */
#define SVM_ATTR_CODE32		0xc9b	/* type B | S | P | D/B | G */

/* ---- exit codes (§4.1) --------------------------------------------------------------------- */

#define SVM_EXIT_READ_CR0	0x000
#define SVM_EXIT_READ_CR3	0x003
#define SVM_EXIT_WRITE_CR0	0x010
#define SVM_EXIT_READ_DR0	0x020
#define SVM_EXIT_WRITE_DR0	0x030
#define SVM_EXIT_EXCP_BASE	0x040
#define SVM_EXIT_INTR		0x060
#define SVM_EXIT_NMI		0x061
#define SVM_EXIT_SMI		0x062
#define SVM_EXIT_INIT		0x063
#define SVM_EXIT_VINTR		0x064
#define SVM_EXIT_CR0_SEL_WRITE	0x065
#define SVM_EXIT_IDTR_READ	0x066
#define SVM_EXIT_GDTR_READ	0x067
#define SVM_EXIT_LDTR_READ	0x068
#define SVM_EXIT_TR_READ	0x069
#define SVM_EXIT_IDTR_WRITE	0x06a
#define SVM_EXIT_GDTR_WRITE	0x06b
#define SVM_EXIT_LDTR_WRITE	0x06c
#define SVM_EXIT_TR_WRITE	0x06d
#define SVM_EXIT_RDTSC		0x06e
#define SVM_EXIT_RDPMC		0x06f
#define SVM_EXIT_PUSHF		0x070
#define SVM_EXIT_POPF		0x071
#define SVM_EXIT_CPUID		0x072
#define SVM_EXIT_RSM		0x073
#define SVM_EXIT_IRET		0x074
#define SVM_EXIT_SWINT		0x075
#define SVM_EXIT_INVD		0x076
#define SVM_EXIT_PAUSE		0x077
#define SVM_EXIT_HLT		0x078
#define SVM_EXIT_INVLPG		0x079
#define SVM_EXIT_INVLPGA	0x07a
#define SVM_EXIT_IOIO		0x07b
#define SVM_EXIT_MSR		0x07c
#define SVM_EXIT_TASK_SWITCH	0x07d
#define SVM_EXIT_FERR_FREEZE	0x07e
#define SVM_EXIT_SHUTDOWN	0x07f
#define SVM_EXIT_VMRUN		0x080
#define SVM_EXIT_VMMCALL	0x081
#define SVM_EXIT_VMLOAD		0x082
#define SVM_EXIT_VMSAVE		0x083
#define SVM_EXIT_STGI		0x084
#define SVM_EXIT_CLGI		0x085
#define SVM_EXIT_SKINIT		0x086
#define SVM_EXIT_RDTSCP		0x087
#define SVM_EXIT_ICEBP		0x088
#define SVM_EXIT_WBINVD		0x089
#define SVM_EXIT_MONITOR	0x08a
#define SVM_EXIT_MWAIT		0x08b
#define SVM_EXIT_MWAIT_COND	0x08c
#define SVM_EXIT_XSETBV		0x08d
#define SVM_EXIT_RDPRU		0x08e
#define SVM_EXIT_INVPCID	0x0a2
#define SVM_EXIT_NPF		0x400
#define SVM_EXIT_INVALID	0xffffffffffffffffull	/* §4: -1 in all 64 bits */

/* ---- intercepts (§3.3) ---------------------------------------------------------------------- */

/* Set or clear the intercept behind an exit code: CR/DR/exception words or the bit string of
   words 3-5 (bit k = exit code 0x060 + k). */
void vmcb_intercept(struct vmcb *v, u64 exit_code, bool on);
static inline void vmcb_set_intercept(struct vmcb *v, u64 code) { vmcb_intercept(v, code, true); }
static inline void vmcb_clear_intercept(struct vmcb *v, u64 code) { vmcb_intercept(v, code, false); }
static inline void vmcb_intercept_exception(struct vmcb *v, int vector, bool on)
{
	vmcb_intercept(v, SVM_EXIT_EXCP_BASE + vector, on);
}

/* ---- int_ctl, int_state, EVENTINJ (§3.5, §3.6) ---------------------------------------------- */

#define V_TPR_MASK		0x0f
#define V_IRQ			BIT(8)
#define V_GIF			BIT(9)
#define V_NMI_PENDING		BIT(11)
#define V_NMI_MASK		BIT(12)
#define V_INTR_PRIO_SHIFT	16
#define V_IGN_TPR		BIT(20)
#define V_INTR_MASKING		BIT(24)
#define V_GIF_ENABLE		BIT(25)
#define V_NMI_ENABLE		BIT(26)
#define INT_STATE_SHADOW	BIT(0)

#define EVTINJ_VALID		BIT(31)
#define EVTINJ_EV		BIT(11)
#define EVTINJ_TYPE_INTR	(0u << 8)
#define EVTINJ_TYPE_NMI		(2u << 8)
#define EVTINJ_TYPE_EXC		(3u << 8)
#define EVTINJ_TYPE_SOFT	(4u << 8)
#define EVTINJ_TYPE(t)		((u32)(t) << 8)

#define NP_ENABLE		BIT(0)
#define LBR_VIRT_ENABLE		BIT(0)

/* IOIO EXITINFO1 (§4.3). */
#define IOIO_TYPE_IN		BIT(0)
#define IOIO_STR		BIT(2)
#define IOIO_REP		BIT(3)
#define IOIO_SZ8		BIT(4)
#define IOIO_SZ16		BIT(5)
#define IOIO_SZ32		BIT(6)
#define IOIO_A16		BIT(7)
#define IOIO_A32		BIT(8)
#define IOIO_A64		BIT(9)

/* NPF EXITINFO1 (§7.4). */
#define NPF_P			BIT(0)
#define NPF_RW			BIT(1)
#define NPF_US			BIT(2)
#define NPF_RSVD		BIT(3)
#define NPF_ID			BIT(4)
#define NPF_GPA			BIT(32)
#define NPF_GPT			BIT(33)

/* ---- the SVM instructions (§5.1 encodings) --------------------------------------------------- */

static inline void stgi(void) { asm volatile("stgi" ::: "memory"); }
static inline void clgi(void) { asm volatile("clgi" ::: "memory"); }
static inline void vmsave(u64 pa) { asm volatile("vmsave %%rax" : : "a"(pa) : "memory"); }
static inline void vmload(u64 pa) { asm volatile("vmload %%rax" : : "a"(pa) : "memory"); }
static inline void invlpga(u64 va, u32 asid) { asm volatile("invlpga %%rax, %%ecx" : : "a"(va), "c"(asid) : "memory"); }

/* ---- running a guest ---------------------------------------------------------------------- */

/*
 * The general registers VMRUN does not switch (§3.2 "State that is not in the VMCB"): the wrapper
 * loads these before VMRUN and stores the guest's values back after the #VMEXIT, so L1's
 * registers survive whatever L2 does. Guest RAX, RSP, RIP and RFLAGS live in the VMCB.
 */
struct svm_gprs {
	u64 rbx, rcx, rdx, rsi, rdi, rbp, r8, r9, r10, r11, r12, r13, r14, r15;
};
extern struct svm_gprs svm_gregs;

/*
 * VMRUN with RAX = rax (normally a VMCB address), RFLAGS |= rflags_or loaded by the POPFQ right
 * before it (so TF or IF take effect exactly at VMRUN). STGI is *not* executed afterwards: GIF
 * stays as the #VMEXIT left it (0). svm_vmrun_insn is the address of the VMRUN instruction,
 * svm_vmrun_after the one after it.
 */
void svm_vmrun_raw(u64 rax, u64 rflags_or);
extern char svm_vmrun_insn[], svm_vmrun_after[];
/* svm_vmrun_raw with ASM_TRY armed on the VMRUN: returns the vector it raised, or -1. */
int svm_vmrun_try(u64 rax, u64 rflags_or);
/* RSP, RFLAGS and RAX of L1 right at the VMRUN and right after it, recorded by the wrapper. */
struct svm_host_regs { u64 rsp, rflags, rax; };
extern struct svm_host_regs svm_host_before, svm_host_after;
/* VMRUN, then STGI so L1 runs with GIF = 1 again; returns vmcb->control.exit_code. */
u64 svm_run(struct vmcb *vmcb);
/*
 * Whether GIF is 1, seen through a self-IPI (vector SVM_GIF_PROBE_VECTOR) taken or held across
 * STI; NOP; CLI (§1.3: GIF = 0 holds INTR pending). Leaves GIF and IF as they were; needs the
 * APIC (svm_setup enables it) and IF = 0 on entry.
 */
bool svm_gif_probe(void);
#define SVM_GIF_PROBE_VECTOR 0xe0

/* One-time setup: SVM present (else the image reports a skip and exits), EFER.SVME,
   VM_HSAVE_PA, zeroed IOPM/MSRPM, the identity nested page tables when NP exists. */
void svm_setup(void);
extern u8 *svm_iopm;			/* 12 KiB, §3.7 */
extern u8 *svm_msrpm;			/* 8 KiB, §3.8 */
extern u64 svm_hsave_pa;

/*
 * The baseline VMCB of §8.0: zeroed, VMSAVE'd, segments/descriptor tables/control registers
 * of L1, ASID 1, intercepts VMRUN | VMMCALL | SHUTDOWN, the shared IOPM/MSRPM, nested paging
 * with the identity tables when NP is advertised, RFLAGS = 2, RIP = guest_rip, RSP = guest_rsp.
 */
void vmcb_init(struct vmcb *v, u64 guest_rip, u64 guest_rsp);
/*
 * The baseline with the guest being fn(arg) at CPL0 on its own stack: svm_guest_entry calls
 * fn, then executes VMMCALL (in a loop, should L1 resume it). A fresh stack every call.
 */
void vmcb_init_guest(struct vmcb *v, void (*fn)(u64), u64 arg);
extern char svm_guest_entry[], svm_guest_vmmcall[];
/* Make the guest start at CPL3: 64-bit user code and data segments of the GDT, CPL = 3. */
void vmcb_user_mode(struct vmcb *v);
struct vmcb *vmcb_alloc(void);
/* The top of the 16 KiB guest stack the baseline guests share (16-byte aligned). */
u64 svm_guest_stack(void);


/* Report exit code == expected, naming the exit in the failure detail. */
bool expect_exit(const char *name, struct vmcb *v, u64 expected);

/* ---- IOPM and MSRPM (§3.7, §3.8) --------------------------------------------------------- */

void iopm_set(u32 port, bool on);
void msrpm_set(u32 msr, bool read, bool write);
/* Bit offset of an MSR's read bit in the MSRPM, or -1 outside the three ranges. */
s64 msrpm_bit(u32 msr);

/* ---- nested page tables (§7) ------------------------------------------------------------- */

extern u64 npt_root_pa;			/* 4-level identity map of 0-4 GiB (2 MiB pages), U/S = 1 */
/* The nested entry mapping gpa at level (1 = 4 KiB ... 4 = PML4E), splitting large pages. */
u64 *npt_entry(u64 gpa, int level);
void npt_reset(void);			/* rebuild the identity map (after a test edited it) */

/* ---- misc ---------------------------------------------------------------------------------- */

/* RDMSR/WRMSR that return the exception vector they raised (-1 for none) instead of dying. */
static inline int rdmsr_safe(u32 msr, u64 *val)
{
	u32 lo = 0, hi = 0;
	asm volatile(ASM_TRY("1f", "2f") "2: rdmsr\n1:" : "+a"(lo), "+d"(hi) : "c"(msr) : "memory");
	int v = ex_vector();
	if (v < 0)
		*val = lo | (u64)hi << 32;
	return v;
}
static inline int wrmsr_safe(u32 msr, u64 val)
{
	asm volatile(ASM_TRY("1f", "2f") "2: wrmsr\n1:"
		     : : "c"(msr), "a"((u32)val), "d"((u32)(val >> 32)) : "memory");
	return ex_vector();
}

static inline u64 rdtscp_aux(u32 *aux) { u32 lo, hi, c; asm volatile("rdtscp" : "=a"(lo), "=d"(hi), "=c"(c)); if (aux) *aux = c; return lo | (u64)hi << 32; }
static inline void sgdt(void *p) { asm volatile("sgdt %0" : "=m"(*(u8 (*)[10])p)); }
static inline void sidt(void *p) { asm volatile("sidt %0" : "=m"(*(u8 (*)[10])p)); }

#endif
