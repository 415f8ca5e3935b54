/*
 * legacy: the instructions that exist only outside 64-bit mode or behave differently there.
 * Each 32-bit check runs twice, in compatibility mode (long mode, CS.L = 0) and in legacy
 * protected mode (long mode and paging off), through the runners of legacy.S: decimal
 * adjustment (DAA, DAS, AAA, AAS, AAM, AAD) with the flags the manuals define, PUSHA/POPA at
 * both operand sizes and on a 16-bit stack, ENTER/LEAVE, PUSH imm and PUSHF on a 16-bit stack,
 * BOUND, ARPL, the descriptor queries LAR/LSL/VERR/VERW on code, data and system descriptors
 * of the GDT and an LDT, SYSENTER/SYSEXIT (AMD: #UD in long mode, a CPL 0 <-> CPL 3 round
 * trip in legacy mode), RDPMC, and the faults: #DE for AAM 0, #BR, #UD in 64-bit mode, #PF in
 * the middle of PUSHAD/POPAD with nothing changed. Expected values come from the Intel SDM
 * Vol 2 and the AMD APM Vol 3 instruction pages; where they differ svmjit's CPU is AMD's.
 */
#include "runtime.h"
#include "legacy.h"

#define FL_CF 0x001
#define FL_PF 0x004
#define FL_AF 0x010
#define FL_ZF 0x040
#define FL_SF 0x080
#define FL_IF 0x200
#define FL_OF 0x800
#define FL_SZAPC (FL_SF | FL_ZF | FL_AF | FL_PF | FL_CF)

#define MSR_PERF_CTR1    0xc0010005
#define CR4_PCE          0x100

struct regs32 { u32 eax, ecx, edx, ebx, esp, ebp, esi, edi, eflags; };
_Static_assert(offsetof(struct regs32, esp) == R32_ESP && offsetof(struct regs32, edi) == R32_EDI &&
	       offsetof(struct regs32, eflags) == R32_EFLAGS, "struct regs32 and legacy.h disagree");
struct fault32 { u32 vector, error, eip, cs, eflags, esp, ss, cr2; };
_Static_assert(offsetof(struct fault32, ss) == F32_SS && offsetof(struct fault32, cr2) == F32_CR2,
	       "struct fault32 and legacy.h disagree");

typedef void snippet_t(void);
void run_compat(struct regs32 *r, snippet_t *snippet);
void run_legacy(struct regs32 *r, snippet_t *snippet);
extern char run_recover[], legacy_isr_stubs[], sysexit_user_stack_top[];
extern snippet_t snip_daa, snip_das, snip_aaa, snip_aas, snip_aam, snip_aam16, snip_aam0, snip_aad, snip_aad7;
extern snippet_t snip_bound32, snip_bound16, snip_arpl, snip_arpl_mem;
extern snippet_t snip_lar, snip_lar16, snip_lar_mem, snip_lsl, snip_lsl16, snip_verr, snip_verw, snip_verw_mem;
extern snippet_t snip_rdpmc, snip_sysenter, snip_sysexit, snip_sysexit_trip, snip_rdpmc_user;
extern snippet_t snip_pushad, snip_pushaw, snip_popad, snip_popaw, snip_pushad_at, snip_popad_at, snip_enter32;
extern snippet_t snip16_pushad, snip16_popaw, snip16_enterw, snip16_push;
extern char user_sysexit[], sysenter_target[], pmc_user_rdpmc[], pushad_at_insn[], popad_at_insn[];
extern volatile u32 stk_before, stk_after, stk_ebp, stk_leave_esp, stk_leave_ebp, stk_slots[8], stk_esp_in;
extern volatile struct regs32 stk_regs_in;
extern volatile u32 stk16_in, stk16_out[5];
extern volatile int32_t bound32_pair[2];
extern volatile int16_t bound16_pair[2];
extern volatile u16 arpl_word, query_sel;
extern volatile u32 user_seen[4], kernel_seen[4], sysenter_user_action;

/* Read by legacy.S: the 32-bit IDT (LIDT takes a 16-bit limit and a 32-bit base there). */
struct { u16 limit; u32 base; } __attribute__((packed)) idt32_desc;
/* Written by legacy.S: the exception a legacy-mode snippet raised (vector ~0 = none). */
volatile struct fault32 legacy_fault;
static u64 idt32[32];
static u8 legacy_ring0_stack[4096] __attribute__((aligned(16)));
static u64 ldt[LDT_ENTRIES];

enum mode { COMPAT, LEGACY };
static const char *const mode_names[] = { "compat", "legacy" };

/* ---- running 32-bit code ---------------------------------------------------------------- */

/*
 * Run `snippet` in 32-bit code of mode `m` with the registers and flags of *r, which get the
 * values they had at its end (or at the exception). Returns the vector of an exception the
 * snippet raised, or -1; the exception is in last_ex, for ex_check(), in both modes.
 */
static int run32(enum mode m, struct regs32 *r, snippet_t *snippet)
{
	last_ex.vector = -1;
	if (m == COMPAT) {
		ex_recover = (u64)run_recover;
		run_compat(r, snippet);
		ex_recover = 0;
		return (int)last_ex.vector;
	}
	/*
	 * In legacy mode the CPU reads TR's TSS as a 32-bit one: an exception from CPL 3 takes
	 * ESP0 from offset 4 and SS0 from offset 8, where the 64-bit TSS keeps RSP0.
	 */
	u64 rsp0 = tss.rsp[0];
	tss.rsp[0] = (u64)KERNEL_DS32 << 32 | (u32)(u64)(legacy_ring0_stack + sizeof(legacy_ring0_stack));
	legacy_fault.vector = ~0u;
	run_legacy(r, snippet);
	tss.rsp[0] = rsp0;
	if (legacy_fault.vector != ~0u) {
		last_ex.error_code = legacy_fault.error;
		last_ex.rip = legacy_fault.eip;
		last_ex.cs = legacy_fault.cs;
		last_ex.rflags = legacy_fault.eflags;
		last_ex.rsp = legacy_fault.esp;
		last_ex.ss = legacy_fault.ss;
		last_ex.cr2 = legacy_fault.cr2;
		last_ex.vector = legacy_fault.vector;
	}
	return (int)last_ex.vector;
}

/* One check of a run that must not fault: "<mode>: <what>", got == want. */
static bool check32(enum mode m, int vector, const char *what, u64 got, u64 want)
{
	char name[200];
	snprintf(name, sizeof(name), "%s: %s", mode_names[m], what);
	if (vector >= 0)
		return report(false, "%s (got exception %d, error code 0x%lx at 0x%lx)", name, vector,
			      last_ex.error_code, last_ex.rip);
	return expect_eq(name, got, want);
}

/* One check of a run that must fault: `vector` (with `error_code`) at `rip`. */
static bool check_fault32(enum mode m, const char *what, int vector, u64 error_code, const void *rip)
{
	char name[200];
	snprintf(name, sizeof(name), "%s: %s", mode_names[m], what);
	return ex_check(name, vector, error_code, (u64)rip);
}

static struct regs32 regs(u32 eax, u32 ecx, u32 eflags)
{
	return (struct regs32){ .eax = eax, .ecx = ecx, .edx = 0x33333333, .ebx = 0x44444444,
				.ebp = 0x66666666, .esi = 0x77777777, .edi = 0x88888888, .eflags = eflags | 2 };
}

/* ---- decimal arithmetic ------------------------------------------------------------------ */

struct bcd_case {
	const char *what;
	snippet_t *snippet;
	u32 eax, flags, want_eax, want_flags, defined;
};

/*
 * Inputs and results follow the Operation sections (SDM Vol 2; APM Vol 3): DAA/DAS adjust AL by
 * 6 when the low digit is above 9 or AF is set and by 60h when AL was above 99h or CF is set,
 * setting AF/CF to match (a borrow out of DAS's first step sets CF too) and SF/ZF/PF from AL
 * (OF undefined). AAA/AAS add/subtract 106h to AX
 * under the same low-digit rule and keep AL's low digit, defining only AF and CF. AAM/AAD define
 * SF/ZF/PF from AL. EAX's upper bits must survive all of them.
 */
static const struct bcd_case bcd_cases[] = {
	{ "DAA after 79h + 35h (SDM example): AL = 14h", snip_daa, 0xae, 0, 0x14, FL_CF | FL_AF | FL_PF, FL_SZAPC },
	{ "DAA of 99h: no adjustment", snip_daa, 0x99, 0, 0x99, FL_SF | FL_PF, FL_SZAPC },
	{ "DAA of 00h with AF and CF: 66h", snip_daa, 0x00, FL_AF | FL_CF, 0x66, FL_CF | FL_AF | FL_PF, FL_SZAPC },
	{ "DAA of FAh: both digits, 60h and CF", snip_daa, 0xfa, 0, 0x60, FL_CF | FL_AF | FL_PF, FL_SZAPC },
	{ "DAA keeps EAX[31:8]", snip_daa, 0xabcdef1a, 0, 0xabcdef20, FL_AF, FL_SZAPC },
	{ "DAS after 35h - 47h (SDM example): AL = 88h", snip_das, 0xee, FL_AF | FL_CF, 0x88,
	  FL_SF | FL_AF | FL_PF | FL_CF, FL_SZAPC },
	{ "DAS of 10h with AF: 0Ah", snip_das, 0x10, FL_AF, 0x0a, FL_AF | FL_PF, FL_SZAPC },
	{ "DAS of 00h with AF: the borrow of AL - 6 sets CF", snip_das, 0x00, FL_AF, 0xfa, FL_SF | FL_AF | FL_PF | FL_CF,
	  FL_SZAPC },
	{ "DAS of 00h with CF: A0h", snip_das, 0x00, FL_CF, 0xa0, FL_SF | FL_PF | FL_CF, FL_SZAPC },
	{ "AAA after 08h + 09h: AX = 0107h", snip_aaa, 0x5a5a0011, FL_AF, 0x5a5a0107, FL_AF | FL_CF, FL_AF | FL_CF },
	{ "AAA without adjustment: AL's high digit cleared, AF = CF = 0", snip_aaa, 0x0235, FL_CF, 0x0205, 0,
	  FL_AF | FL_CF },
	{ "AAA of AL = FAh: AX + 106h carries into AH", snip_aaa, 0x00fa, 0, 0x0200, FL_AF | FL_CF, FL_AF | FL_CF },
	{ "AAS after 02h - 08h: AX = FF04h", snip_aas, 0x5a5a00fa, FL_AF | FL_CF, 0x5a5aff04, FL_AF | FL_CF,
	  FL_AF | FL_CF },
	{ "AAS of AL = 02h with AF: AX - 106h borrows from AH", snip_aas, 0x0502, FL_AF, 0x030c, FL_AF | FL_CF,
	  FL_AF | FL_CF },
	{ "AAM: AL = 3Fh -> AH = 6, AL = 3", snip_aam, 0x5a5a003f, 0, 0x5a5a0603, FL_PF, FL_SF | FL_ZF | FL_PF },
	{ "AAM 16: AL = 3Fh -> AH = 3, AL = Fh", snip_aam16, 0x3f, 0, 0x030f, FL_PF, FL_SF | FL_ZF | FL_PF },
	{ "AAM of AL = 0: AX = 0, ZF", snip_aam, 0x1200, 0, 0x0000, FL_ZF | FL_PF, FL_SF | FL_ZF | FL_PF },
	{ "AAD: AX = 0603h -> AL = 3Fh, AH = 0", snip_aad, 0x5a5a0603, 0, 0x5a5a003f, FL_PF, FL_SF | FL_ZF | FL_PF },
	{ "AAD 7: AX = 0203h -> AL = 11h", snip_aad7, 0x0203, 0, 0x0011, FL_PF, FL_SF | FL_ZF | FL_PF },
	{ "AAD: AL + AH * 10 kept to 8 bits (FFFFh -> F5h)", snip_aad, 0xffff, 0, 0x00f5, FL_SF | FL_PF,
	  FL_SF | FL_ZF | FL_PF },
};

static void test_decimal(enum mode m)
{
	char what[160];
	for (size_t i = 0; i < ARRAY_SIZE(bcd_cases); i++) {
		const struct bcd_case *c = &bcd_cases[i];
		struct regs32 r = regs(c->eax, 0x22222222, c->flags);
		int v = run32(m, &r, c->snippet);
		check32(m, v, c->what, r.eax, c->want_eax);
		snprintf(what, sizeof(what), "%s: defined flags", c->what);
		check32(m, v, what, r.eflags & c->defined, c->want_flags);
	}
	/* SDM Vol 2 AAM: "If imm8 = 0, #DE"; a fault changes nothing. */
	struct regs32 r = regs(0x1234, 0, 0);
	run32(m, &r, snip_aam0);
	check_fault32(m, "AAM 0: #DE at the AAM", DE_VECTOR, 0, snip_aam0);
	check32(m, -1, "AAM 0: AX unchanged", r.eax, 0x1234);
}

/* ---- PUSHA/POPA, ENTER/LEAVE, PUSH on a 16-bit stack ----------------------------------------- */

/* Compare n stack slots with what was expected: one check. */
static void check_slots(enum mode m, int vector, const char *what, const u32 *got, const u32 *want, int n)
{
	int bad = -1;
	for (int i = 0; i < n && bad < 0; i++)
		if (got[i] != want[i])
			bad = i;
	if (vector < 0 && bad >= 0)
		report(false, "%s: %s (got slot %d = 0x%x, expected 0x%x)", mode_names[m], what, bad, got[bad], want[bad]);
	else
		check32(m, vector, what, 0, 0);	/* passes unless the run raised an exception */
}

static void test_pusha_popa(enum mode m)
{
	struct regs32 r = regs(0x11111111, 0x22222222, 0);
	int v = run32(m, &r, snip_pushad);
	u32 slots[8];
	for (int i = 0; i < 8; i++)
		slots[i] = stk_slots[i];
	/* SDM Vol 2 PUSHA/PUSHAD: EAX first, ..., the original ESP, ..., EDI last (lowest). */
	const u32 want32[8] = { r.edi, r.esi, r.ebp, stk_before, r.ebx, r.edx, r.ecx, r.eax };
	check32(m, v, "PUSHAD moves ESP by 32", stk_before - stk_after, 32);
	check_slots(m, v, "PUSHAD slots, lowest first: EDI ESI EBP ESP(before) EBX EDX ECX EAX", slots, want32, 8);

	/* PUSHAW: the same words, two per dword slot (DI in the low half of the lowest). */
	r = regs(0x11111111, 0x22222222, 0);
	v = run32(m, &r, snip_pushaw);
	for (int i = 0; i < 4; i++)
		slots[i] = stk_slots[i];
	const u32 want16[4] = { r.esi << 16 | (r.edi & 0xffff), stk_before << 16 | (r.ebp & 0xffff),
				r.edx << 16 | (r.ebx & 0xffff), r.eax << 16 | (r.ecx & 0xffff) };
	check32(m, v, "PUSHAW (66 60) moves ESP by 16", stk_before - stk_after, 16);
	check_slots(m, v, "PUSHAW slots, lowest first: DI SI BP SP BX DX CX AX", slots, want16, 4);

	/* POPAD loads EDI..EAX from the stack and skips the ESP slot (SDM Vol 2 POPA/POPAD). */
	const u32 pop32[8] = { 0xd1d1d1d1, 0x5151515, 0xb0b0b0b0, 0xdeadbeef, 0xb1b1b1b1, 0xd2d2d2d2, 0xc1c1c1c1, 0xa1a1a1a1 };
	for (int i = 0; i < 8; i++)
		stk_slots[i] = pop32[i];
	r = regs(0, 0, 0);
	stk_regs_in = r;
	v = run32(m, &r, snip_popad);
	check32(m, v, "POPAD skips the ESP slot: ESP back where it was", stk_after, stk_before);
	const u32 got_pop[8] = { r.edi, r.esi, r.ebp, 0xdeadbeef, r.ebx, r.edx, r.ecx, r.eax };
	check_slots(m, v, "POPAD loads EDI ESI EBP - EBX EDX ECX EAX", got_pop, pop32, 8);

	/* POPAW writes the low words only. */
	const u32 pop16[4] = { 0x51515d1d, 0xbeefb0b0, 0xd2d2b1b1, 0xa1a1c1c1 };
	for (int i = 0; i < 4; i++)
		stk_slots[i] = pop16[i];
	r = regs(0x11111111, 0x22222222, 0);
	stk_regs_in = r;
	v = run32(m, &r, snip_popaw);
	check32(m, v, "POPAW (66 61) moves ESP back by 16", stk_after, stk_before);
	const u32 want_w[8] = { 0x88885d1d, 0x77775151, 0x6666b0b0, 0, 0x4444b1b1, 0x3333d2d2, 0x2222c1c1, 0x1111a1a1 };
	const u32 got_w[8] = { r.edi, r.esi, r.ebp, 0, r.ebx, r.edx, r.ecx, r.eax };
	check_slots(m, v, "POPAW loads DI SI BP - BX DX CX AX, upper halves kept", got_w, want_w, 8);
}

static volatile u32 *stack16(u32 offset)
{
	return (volatile u32 *)(u64)(STACK16_BASE + (offset & 0xffff));
}

/*
 * The stack width is SS.B's, not the operand size's (SDM Vol 1 §6.2.3, Vol 3 §3.4.5): on a
 * 16-bit stack SP wraps at 64 KiB inside the segment (base STACK16_BASE) and ESP[31:16] stay.
 * No access here straddles the wrap, which would exceed the segment limit.
 */
static void test_stack16(enum mode m)
{
	/* PUSHAD: eight dwords from SP = 0008h down through the wrap; the ESP pushed is the whole ESP. */
	struct regs32 r = regs(0x11111111, 0x22222222, 0);
	stk16_in = 0x00010008;
	int v = run32(m, &r, snip16_pushad);
	check32(m, v, "PUSHAD on a 16-bit stack: SP 0008h -> FFE8h, ESP[31:16] kept", stk16_out[0], 0x0001ffe8);
	const u32 want[8] = { r.edi, r.esi, r.ebp, 0x00010008, r.ebx, r.edx, r.ecx, r.eax };
	u32 got[8];
	for (int i = 0; i < 8; i++)
		got[i] = *stack16(0xffe8 + 4 * i);
	check_slots(m, v, "PUSHAD on a 16-bit stack: slots at SS:FFE8h..SS:0007h", got, want, 8);

	/* POPAW from SP = FFF8h wraps to 0008h. */
	const u16 words[8] = { 0x0d1d, 0x0515, 0x0b0b, 0xbeef, 0x0b1b, 0x0d2d, 0x0c1c, 0x0a1a };
	for (int i = 0; i < 8; i++)
		*(volatile u16 *)(u64)(STACK16_BASE + ((0xfff8 + 2 * i) & 0xffff)) = words[i];
	r = regs(0x11111111, 0x22222222, 0);
	stk16_in = 0x0001fff8;
	v = run32(m, &r, snip16_popaw);
	check32(m, v, "POPAW on a 16-bit stack: SP FFF8h -> 0008h", stk16_out[0], 0x00010008);
	const u32 want_w[8] = { 0x88880d1d, 0x77770515, 0x66660b0b, 0, 0x44440b1b, 0x33330d2d, 0x22220c1c, 0x11110a1a };
	const u32 got_w[8] = { r.edi, r.esi, r.ebp, 0, r.ebx, r.edx, r.ecx, r.eax };
	check_slots(m, v, "POPAW on a 16-bit stack: registers from SS:FFF8h..SS:0007h", got_w, want_w, 8);

	/*
	 * ENTERW 6, 2 (SDM Vol 2 ENTER, operand and stack size 16): push BP, push the word at
	 * SS:BP-2, push the frame pointer, BP = frame, SP -= 6; LEAVEW undoes it.
	 */
	*(volatile u16 *)(u64)(STACK16_BASE + 0x00fe) = 0x1234;
	r = regs(0, 0, 0);
	r.ebp = 0x5a5a0100;
	stk16_in = 0x00010004;
	v = run32(m, &r, snip16_enterw);
	check32(m, v, "ENTERW 6,2 on a 16-bit stack: SP 0004h -> FFF8h", stk16_out[0], 0x0001fff8);
	check32(m, v, "ENTERW 6,2 on a 16-bit stack: BP = frame (0002h), EBP[31:16] kept", stk16_out[1], 0x5a5a0002);
	check32(m, v, "ENTERW on a 16-bit stack: old BP at SS:0002h", *(volatile u16 *)(u64)(STACK16_BASE + 2), 0x0100);
	check32(m, v, "ENTERW on a 16-bit stack: outer frame pointer copied to SS:0000h",
		*(volatile u16 *)(u64)STACK16_BASE, 0x1234);
	check32(m, v, "ENTERW on a 16-bit stack: frame pointer pushed at SS:FFFEh",
		*(volatile u16 *)(u64)(STACK16_BASE + 0xfffe), 0x0002);
	check32(m, v, "LEAVEW on a 16-bit stack: SP back to 0004h", stk16_out[2], 0x00010004);
	check32(m, v, "LEAVEW on a 16-bit stack: BP restored", stk16_out[3], 0x5a5a0100);

	/* PUSH imm16 (66 68), PUSH imm8 (6A, a dword), PUSHFW, PUSHFD, then POPFD, POPFW. */
	r = regs(0, 0, FL_OF | FL_SF | FL_AF | FL_CF);
	stk16_in = 0x00010006;
	v = run32(m, &r, snip16_push);
	check32(m, v, "PUSHW imm16 on a 16-bit stack: SP - 2", stk16_out[0], 0x00010004);
	check32(m, v, "PUSHW imm16 on a 16-bit stack: the word at SS:0004h", *(volatile u16 *)(u64)(STACK16_BASE + 4), 0x1234);
	check32(m, v, "PUSH imm8 (32-bit operand) on a 16-bit stack: SP - 4", stk16_out[1], 0x00010000);
	check32(m, v, "PUSH imm8 on a 16-bit stack: sign-extended dword at SS:0000h", *stack16(0), 0xfffffffe);
	check32(m, v, "PUSHFW on a 16-bit stack: SP 0000h -> FFFEh", stk16_out[2], 0x0001fffe);
	check32(m, v, "PUSHFW on a 16-bit stack: FLAGS at SS:FFFEh", *(volatile u16 *)(u64)(STACK16_BASE + 0xfffe),
		FL_OF | FL_SF | FL_AF | FL_CF | 2);
	check32(m, v, "PUSHFD on a 16-bit stack: SP - 4", stk16_out[3], 0x0001fffa);
	check32(m, v, "PUSHFD on a 16-bit stack: EFLAGS at SS:FFFAh", *stack16(0xfffa), FL_OF | FL_SF | FL_AF | FL_CF | 2);
	check32(m, v, "POPFD, POPFW and LEA 6(ESP) on a 16-bit stack: SP back to 0006h", stk16_out[4], 0x00010006);
	check32(m, v, "POPFD, POPFW on a 16-bit stack: flags as pushed", r.eflags & (FL_SZAPC | FL_OF),
		FL_OF | FL_SF | FL_AF | FL_CF);
}

static void test_enter32(enum mode m)
{
	/* ENTER 16, 3 (SDM Vol 2 ENTER): push EBP, copy 2 outer frame pointers, push the frame. */
	static u32 outer[3];
	outer[0] = 0xaaaa0002;
	outer[1] = 0xaaaa0001;
	struct regs32 r = regs(0, 0, 0);
	r.ebp = (u32)(u64)&outer[2];
	u32 frame_chain = r.ebp;
	int v = run32(m, &r, snip_enter32);
	u32 frame = stk_before - 4;
	check32(m, v, "ENTER 16,3: ESP = ESP - 4 * 4 - 16", stk_before - stk_after, 32);
	check32(m, v, "ENTER 16,3: EBP = the new frame", stk_ebp, frame);
	const u32 want[4] = { frame_chain, 0xaaaa0001, 0xaaaa0002, frame };
	u32 got[4];
	for (int i = 0; i < 4; i++)
		got[i] = stk_slots[i];
	check_slots(m, v, "ENTER 16,3: old EBP, two outer frame pointers, the frame", got, want, 4);
	check32(m, v, "LEAVE: ESP back", stk_leave_esp, stk_before);
	check32(m, v, "LEAVE: EBP back", stk_leave_ebp, frame_chain);
}

/*
 * A fault in the middle of PUSHAD or POPAD changes no register (the instruction restarts):
 * SDM Vol 3 §6.5 (faults are reported with the state before the instruction). Paging is on
 * only in compatibility mode. The #PF handler runs on IST1, since the stack itself faults.
 */
static void test_stack_faults(void)
{
	u8 *pages = alloc_pages_aligned(1);
	u64 low = (u64)pages, high = low + PAGE_SIZE;
	struct regs32 r;

	unmap_page(low);
	idt_set_ist(PF_VECTOR, 1);
	stk_esp_in = (u32)high + 16;
	r = regs(0x11111111, 0x22222222, 0);
	run32(COMPAT, &r, snip_pushad_at);
	idt_restore(PF_VECTOR);
	map_page(low, low, PTE_P | PTE_W, 1);
	check_fault32(COMPAT, "PUSHAD into a not-present page: #PF (write, not present)", PF_VECTOR, PFERR_W, pushad_at_insn);
	expect_eq("compat: PUSHAD #PF: ESP unchanged", last_ex.rsp, (u32)high + 16);
	report(last_ex.cr2 >= high - 16 && last_ex.cr2 < high, "compat: PUSHAD #PF: CR2 in the part below the mapped page");

	unmap_page(high);
	stk_esp_in = (u32)high - 16;
	r = regs(0x11111111, 0x22222222, FL_CF);
	run32(COMPAT, &r, snip_popad_at);
	map_page(high, high, PTE_P | PTE_W, 1);
	check_fault32(COMPAT, "POPAD from a not-present page: #PF (read, not present)", PF_VECTOR, 0, popad_at_insn);
	expect_eq("compat: POPAD #PF: CR2 = the first byte of the missing page", last_ex.cr2, high);
	const u32 got[7] = { r.eax, r.ecx, r.edx, r.ebx, r.ebp, r.esi, r.edi };
	const struct regs32 in = regs(0x11111111, 0x22222222, 0);
	const u32 want[7] = { in.eax, in.ecx, in.edx, in.ebx, in.ebp, in.esi, in.edi };
	qemu_deviation("TCG's POPA writes each register as it pops it");
	check_slots(COMPAT, -1, "POPAD #PF: no register changed", got, want, 7);
}

/* ---- BOUND and ARPL --------------------------------------------------------------------------- */

static void test_bound(enum mode m)
{
	/* SDM Vol 2 BOUND: #BR unless lower <= index <= upper, signed; nothing else changes. */
	bound32_pair[0] = 10;
	bound32_pair[1] = 20;
	struct regs32 r = regs(15, 0, 0);
	int v;
	v = run32(m, &r, snip_bound32);
	check32(m, v, "BOUND 10 <= 15 <= 20: no exception", r.eax, 15);
	r = regs(20, 0, 0);
	v = run32(m, &r, snip_bound32);
	check32(m, v, "BOUND: the upper bound itself is in range", r.eax, 20);
	r = regs(21, 0, 0);
	run32(m, &r, snip_bound32);
	check_fault32(m, "BOUND 21 above [10, 20]: #BR at the BOUND", BR_VECTOR, 0, snip_bound32);
	r = regs(9, 0, 0);
	run32(m, &r, snip_bound32);
	check_fault32(m, "BOUND 9 below [10, 20]: #BR", BR_VECTOR, 0, snip_bound32);
	bound32_pair[0] = -5;
	bound32_pair[1] = 5;
	r = regs((u32)-5, 0, 0);
	v = run32(m, &r, snip_bound32);
	check32(m, v, "BOUND -5 in [-5, 5]: signed comparison", r.eax, (u32)-5);
	r = regs(0x80000000, 0, 0);
	run32(m, &r, snip_bound32);
	check_fault32(m, "BOUND 80000000h (negative) below [-5, 5]: #BR", BR_VECTOR, 0, snip_bound32);
	bound16_pair[0] = -2;
	bound16_pair[1] = 0x7fff;
	r = regs(0x00008000, 0, 0);
	run32(m, &r, snip_bound16);
	check_fault32(m, "BOUND (66 62) 8000h below [-2, 7FFFh]: 16-bit signed, #BR", BR_VECTOR, 0, snip_bound16);
	r = regs(0x8000fffe, 0, 0);
	v = run32(m, &r, snip_bound16);
	check32(m, v, "BOUND (66 62) FFFEh = -2 in range: EAX[31:16] ignored", r.eax, 0x8000fffe);
}

static void test_arpl(enum mode m)
{
	/* SDM Vol 2 ARPL: RPL raised to the source's with ZF = 1, else unchanged with ZF = 0. */
	struct regs32 r = regs(0xabcd0010, 0x5a5a0003, FL_CF | FL_SF);
	int v = run32(m, &r, snip_arpl);
	check32(m, v, "ARPL 0010h, RPL 3: 0013h, EAX[31:16] kept", r.eax, 0xabcd0013);
	check32(m, v, "ARPL raising the RPL: ZF = 1, other flags kept", r.eflags & FL_SZAPC, FL_ZF | FL_CF | FL_SF);
	r = regs(0x0013, 0x0001, FL_ZF);
	v = run32(m, &r, snip_arpl);
	check32(m, v, "ARPL 0013h, RPL 1: unchanged", r.eax, 0x0013);
	check32(m, v, "ARPL not raising the RPL: ZF = 0", r.eflags & FL_ZF, 0);
	arpl_word = 0x0028;
	r = regs(0, 0x0002, 0);
	v = run32(m, &r, snip_arpl_mem);
	check32(m, v, "ARPL to memory: 0028h, RPL 2 -> 002Ah", arpl_word, 0x002a);
	check32(m, v, "ARPL to memory: ZF = 1", r.eflags & FL_ZF, FL_ZF);
}

/* ---- LAR, LSL, VERR, VERW ------------------------------------------------------------------------ */

static u64 gate_desc(u16 sel, u32 offset, u8 access)
{
	return (u64)(offset & 0xffff) | (u64)sel << 16 | (u64)access << 40 | (u64)(offset >> 16) << 48;
}

/* The test's descriptors (legacy.h), in the GDT's spare slots and the LDT. */
static void setup_descriptors(void)
{
	ldt[LDT_DATA3 / 8] = seg_desc(0, 0x0ffff, 0xf2, 0xc);
	ldt[LDT_CONFORMING / 8] = seg_desc(0, 0xffff, 0x9e, 0x4);
	ldt[LDT_TASKGATE / 8] = gate_desc(TSS_SEL, 0, 0x85);
	ldt[LDT_CALLGATE16 / 8] = gate_desc(KERNEL_CS16, 0, 0x84);
	gdt[LDT_SEL / 8] = seg_desc((u32)(u64)ldt, sizeof(ldt) - 1, 0x82, 0);
	gdt[LDT_SEL / 8 + 1] = 0;
	gdt[CALLGATE_SEL / 8] = gate_desc(KERNEL_CS32, 0, 0xec);
	gdt[CALLGATE_SEL / 8 + 1] = 0;
	gdt[STACK16_SEL / 8] = seg_desc(STACK16_BASE, 0xffff, 0x92, 0);
	gdt[XCODE_SEL / 8] = seg_desc(0, 0xfffff, 0x98, 0xc);
	gdt[DATA_NP_SEL / 8] = seg_desc(0, 0x1234, 0x12, 0);
	gdt[RODATA_SEL / 8] = seg_desc(0, 0xabcd, 0x90, 0x4);
	asm volatile("lldt %w0" : : "r"(LDT_SEL));
}

#define NO (1ull << 32)	/* the query fails: ZF = 0, destination unchanged (not a 32-bit value) */

/*
 * Selectors and what LAR (value & LAR_MASK), LSL, VERR and VERW give for them at CPL 0, in long
 * mode (compat) and legacy mode where those differ (APM Vol 3 LAR/LSL valid-type tables; SDM
 * Vol 2 LAR, LSL, VERR/VERW). Null selectors and selectors beyond the table limit fail all four;
 * DPL must be at least the RPL except for conforming code; the present bit is not checked.
 */
struct query_case {
	const char *what;
	u16 sel;
	u64 lar_long, lar_legacy, lsl_long, lsl_legacy;
	bool verr, verw;
	const char *qemu_long_lar;	/* QEMU 7.2's deviation for LAR in long mode, if any */
};

/*
 * LAR's value is checked without the limit's bits 19:16 (QEMU clears them; the APM keeps them,
 * see test_lar_limit_bits) and without the accessed bit (set by whatever loaded the segment).
 */
#define LAR_MASK 0x00f0fe00u

static const struct query_case query_cases[] = {
	{ "null selector", 0x0000, NO, NO, NO, NO, false, false, NULL },
	{ "null selector with RPL 3", 0x0003, NO, NO, NO, NO, false, false, NULL },
	{ "selector beyond the GDT limit", GDT_ENTRIES * 8, NO, NO, NO, NO, false, false, NULL },
	{ "KERNEL_CS32 (readable code)", KERNEL_CS32, 0x00c09a00, 0x00c09a00, 0xffffffff, 0xffffffff, true, false, NULL },
	{ "KERNEL_DS with RPL 3 (DPL 0 < RPL)", KERNEL_DS | 3, NO, NO, NO, NO, false, false, NULL },
	{ "USER_DS (DPL 3 data)", USER_DS, 0x00c0f200, 0x00c0f200, 0xffffffff, 0xffffffff, true, true, NULL },
	{ "execute-only code", XCODE_SEL, 0x00c09800, 0x00c09800, 0xffffffff, 0xffffffff, false, false, NULL },
	{ "read-only data, limit ABCDh", RODATA_SEL, 0x00409000, 0x00409000, 0xabcd, 0xabcd, true, false, NULL },
	{ "not-present data, limit 1234h", DATA_NP_SEL, 0x00001200, 0x00001200, 0x1234, 0x1234, true, true, NULL },
	{ "16-bit data, limit FFFFh", STACK16_SEL, 0x00009200, 0x00009200, 0xffff, 0xffff, true, true, NULL },
	{ "busy TSS", TSS_SEL, 0x00008a00, 0x00008a00, sizeof(struct tss64) - 1, sizeof(struct tss64) - 1, false, false, NULL },
	{ "LDT descriptor", LDT_SEL, 0x00008200, 0x00008200, sizeof(ldt) - 1, sizeof(ldt) - 1, false, false, NULL },
	{ "the zero upper half of the LDT descriptor", LDT_SEL + 8, NO, NO, NO, NO, false, false, NULL },
	{ "call gate, DPL 3, RPL 3", CALLGATE_SEL | 3, 0x0000ec00, 0x0000ec00, NO, NO, false, false, NULL },
	{ "LDT: DPL 3 data, 4 KiB granular", LDT_DATA3 | 3, 0x00c0f200, 0x00c0f200, 0x0fffffff, 0x0fffffff, true, true, NULL },
	{ "LDT: conforming code with RPL 3", LDT_CONFORMING | 3, 0x00409e00, 0x00409e00, 0xffff, 0xffff, true, false, NULL },
	{ "LDT: task gate (legacy mode only)", LDT_TASKGATE, NO, 0x00008500, NO, NO, false, false,
	  "TCG's LAR accepts legacy-only system types in long mode" },
	{ "LDT: 16-bit call gate (legacy mode only)", LDT_CALLGATE16, NO, 0x00008400, NO, NO, false, false,
	  "TCG's LAR accepts legacy-only system types in long mode" },
	{ "selector beyond the LDT limit", (LDT_ENTRIES * 8) | 4, NO, NO, NO, NO, false, false, NULL },
};

static void check_query(enum mode m, const char *insn, const struct query_case *c, snippet_t *snippet,
			u64 want, u32 mask, const char *qemu)
{
	char what[200];
	struct regs32 r = regs(0x5a5a5a5a, c->sel, want == NO ? FL_ZF : 0);
	int v = run32(m, &r, snippet);
	snprintf(what, sizeof(what), "%s %s (%04xh): %s", insn, c->what, c->sel, want == NO ? "ZF = 0, unchanged" : "ZF = 1");
	u64 got = (r.eflags & FL_ZF) ? (r.eax & mask) : NO;
	if (want == NO && !(r.eflags & FL_ZF) && r.eax != 0x5a5a5a5a)
		got = r.eax;	/* a failed query must not write its destination */
	if (qemu)
		qemu_deviation(qemu);
	check32(m, v, what, got, want == NO ? NO : want & mask);
}

static void check_verify(enum mode m, const char *insn, const struct query_case *c, snippet_t *snippet, bool want)
{
	char what[200];
	struct regs32 r = regs(0, c->sel, want ? 0 : FL_ZF);
	int v = run32(m, &r, snippet);
	snprintf(what, sizeof(what), "%s %s (%04xh): ZF = %d", insn, c->what, c->sel, want);
	check32(m, v, what, !!(r.eflags & FL_ZF), want);
}

static void test_queries(enum mode m)
{
	for (size_t i = 0; i < ARRAY_SIZE(query_cases); i++) {
		const struct query_case *c = &query_cases[i];
		check_query(m, "LAR", c, snip_lar, m == COMPAT ? c->lar_long : c->lar_legacy, LAR_MASK,
			    m == COMPAT ? c->qemu_long_lar : NULL);
		check_query(m, "LSL", c, snip_lsl, m == COMPAT ? c->lsl_long : c->lsl_legacy, ~0u, NULL);
		check_verify(m, "VERR", c, snip_verr, c->verr);
		check_verify(m, "VERW", c, snip_verw, c->verw);
	}

	/* 16-bit operands: LAR masks with FF00h, LSL keeps the limit's low word; EAX[31:16] stay. */
	struct regs32 r = regs(0x5a5a5a5a, RODATA_SEL, 0);
	int v = run32(m, &r, snip_lar16);
	check32(m, v, "LAR r16 (66 0F 02) of read-only data: AX = 9000h, EAX[31:16] kept", r.eax, 0x5a5a9000);
	r = regs(0x5a5a5a5a, XCODE_SEL, 0);
	v = run32(m, &r, snip_lsl16);
	check32(m, v, "LSL r16 of a 4 GiB segment: AX = FFFFh", r.eax, 0x5a5affff);
	/* Memory operands: the selector is a word in memory. */
	query_sel = RODATA_SEL;
	r = regs(0, 0, 0);
	v = run32(m, &r, snip_lar_mem);
	check32(m, v, "LAR with the selector in memory", r.eax, 0x00409000);
	query_sel = RODATA_SEL;
	r = regs(0, 0, FL_ZF);
	v = run32(m, &r, snip_verw_mem);
	check32(m, v, "VERW of read-only data, selector in memory: ZF = 0", r.eflags & FL_ZF, 0);
}

/*
 * APM Vol 3 LAR: for 32- and 64-bit operands the descriptor's dword 1 is masked with
 * 00FF_FF00h, so LAR returns the limit's bits 19:16 too (the SDM leaves them undefined).
 */
static void test_lar_limit_bits(enum mode m)
{
	struct regs32 r = regs(0, XCODE_SEL, 0);
	int v = run32(m, &r, snip_lar);
	qemu_deviation("TCG's LAR masks with 00F0FF00h, clearing limit[19:16]");
	check32(m, v, "LAR of execute-only code, G = 1: 00CF9800h (APM mask 00FFFF00h keeps limit[19:16])",
		r.eax, 0x00cf9800);
}

/*
 * APM Vol 3 LAR/LSL: in long mode a system descriptor is 16 bytes and is valid only if bits
 * 12:8 of its dword 3 (where a type would be) are zero. The call gate's upper half gets a type.
 */
static void test_long_upper_half(void)
{
	gdt[CALLGATE_SEL / 8 + 1] = 0x0000120000000000ull;
	struct regs32 r = regs(0x5a5a5a5a, CALLGATE_SEL, FL_ZF);
	int v = run32(COMPAT, &r, snip_lar);
	struct regs32 r2 = regs(0x5a5a5a5a, CALLGATE_SEL, 0);
	int v2 = run32(LEGACY, &r2, snip_lar);
	gdt[CALLGATE_SEL / 8 + 1] = 0;
	qemu_deviation("TCG's LAR ignores the upper half of 16-byte descriptors");
	check32(COMPAT, v, "LAR of a call gate whose upper half has a type: ZF = 0", r.eflags & FL_ZF, 0);
	check32(LEGACY, v2, "LAR of the same call gate: an 8-byte descriptor, ZF = 1", r2.eflags & FL_ZF, FL_ZF);
}

/* 64-bit mode: the queries exist there too, at 32- and 64-bit operand sizes (zero-extended). */
static u64 user_lar(u64 sel)
{
	u64 v = 0x7777777777777777ull;
	u8 zf;
	asm volatile("lar %w2, %0; setz %1" : "+r"(v), "=q"(zf) : "r"(sel) : "cc");
	return zf ? v : 0xffffffffffffffffull;
}

static u64 user_verw(u64 sel)
{
	u8 zf;
	asm volatile("verw %w1; setz %0" : "=q"(zf) : "r"(sel) : "cc");
	return zf;
}

static u64 user_verr(u64 sel)
{
	u8 zf;
	asm volatile("verr %w1; setz %0" : "=q"(zf) : "r"(sel) : "cc");
	return zf;
}

static void test_queries_64(void)
{
	u64 v = 0xffffffffffffffffull;
	u8 zf;
	asm volatile("lar %w2, %0; setz %1" : "+r"(v), "=q"(zf) : "r"((u64)RODATA_SEL) : "cc");
	expect_eq("64-bit: LAR r64 of read-only data: zero-extended, ZF = 1", v | (u64)!zf << 63, 0x00409000);
	v = 0xffffffffffffffffull;
	asm volatile("lsll %w2, %k0; setz %1" : "+r"(v), "=q"(zf) : "r"((u64)RODATA_SEL) : "cc");
	expect_eq("64-bit: LSL r32 zero-extends into the 64-bit register", v | (u64)!zf << 63, 0xabcd);
	v = 0x1234;
	asm volatile("lar %w2, %0; setz %1" : "+r"(v), "=q"(zf) : "r"((u64)LDT_TASKGATE) : "cc");
	qemu_deviation("TCG's LAR accepts legacy-only system types in long mode");
	expect_eq("64-bit: LAR of a task gate (invalid in long mode): ZF = 0, unchanged", v | (u64)zf << 63, 0x1234);

	/* At CPL 3 (SDM Vol 2 LAR: DPL must be >= CPL and RPL, except for conforming code). */
	expect_eq("CPL 3: LAR of KERNEL_DS (DPL 0): ZF = 0", user_run(user_lar, KERNEL_DS | 3, 0), ~0ull);
	expect_eq("CPL 3: LAR of USER_DS", user_run(user_lar, USER_DS | 3, 0) & LAR_MASK, 0x00c0f200);
	expect_eq("CPL 3: LAR of conforming code (DPL 0)", user_run(user_lar, LDT_CONFORMING | 3, 0) & LAR_MASK,
		  0x00409e00);
	expect_eq("CPL 3: VERW of USER_DS: ZF = 1", user_run(user_verw, USER_DS | 3, 0), 1);
	expect_eq("CPL 3: VERR of KERNEL_CS32 (DPL 0): ZF = 0", user_run(user_verr, KERNEL_CS32 | 3, 0), 0);
	expect_eq("CPL 3: VERR of conforming readable code: ZF = 1", user_run(user_verr, LDT_CONFORMING | 3, 0), 1);
}

/* ---- SYSENTER/SYSEXIT ------------------------------------------------------------------------ */

static void test_sysenter(void)
{
	/* APM Vol 3 SYSENTER, SYSEXIT: "not recognized in long mode": #UD, whatever the MSRs hold. */
	wrmsr(MSR_SYSENTER_CS, KERNEL_CS32);
	wrmsr(MSR_SYSENTER_EIP, (u64)sysenter_target);
	TRY("sysenter", ::: "memory");
	ex_check("64-bit: SYSENTER: #UD (AMD: not supported in long mode)", UD_VECTOR, 0, ex_site);
	TRY(".byte 0x0f, 0x35 /* sysexit */", ::: "memory");
	ex_check("64-bit: SYSEXIT: #UD", UD_VECTOR, 0, ex_site);
	struct regs32 r;
	if (!qemu_cannot_run("compat: SYSENTER: #UD (AMD: not supported in long mode)",
			     "TCG 7.2 runs SYSENTER in compatibility mode")) {
		r = regs(0, 0, 0);
		run32(COMPAT, &r, snip_sysenter);
		check_fault32(COMPAT, "SYSENTER: #UD (AMD: not supported in long mode)", UD_VECTOR, 0, snip_sysenter);
	}
	if (!qemu_cannot_run("compat: SYSEXIT: #UD", "TCG 7.2 runs SYSEXIT in compatibility mode")) {
		r = regs(0, 0, 0);
		run32(COMPAT, &r, snip_sysexit);
		check_fault32(COMPAT, "SYSEXIT: #UD", UD_VECTOR, 0, snip_sysexit);
	}

	/* Legacy mode: #GP(0) when SYSENTER_CS is null. */
	wrmsr(MSR_SYSENTER_CS, 0);
	r = regs(0, 0, 0);
	run32(LEGACY, &r, snip_sysenter);
	check_fault32(LEGACY, "SYSENTER with SYSENTER_CS = 0: #GP(0)", GP_VECTOR, 0, snip_sysenter);
	r = regs(0, 0, 0);
	run32(LEGACY, &r, snip_sysexit);
	check_fault32(LEGACY, "SYSEXIT with SYSENTER_CS = 0: #GP(0)", GP_VECTOR, 0, snip_sysexit);

	/*
	 * The round trip: SYSEXIT loads CS = SYSENTER_CS + 16 | 3, SS = SYSENTER_CS + 24 | 3 (flat,
	 * DPL 3), ESP = ECX, EIP = EDX and leaves EFLAGS; SYSENTER loads CS = SYSENTER_CS,
	 * SS = SYSENTER_CS + 8, ESP/EIP from the MSRs and clears VM, IF and RF.
	 */
	wrmsr(MSR_SYSENTER_CS, KERNEL_CS32);
	sysenter_user_action = 0;
	r = regs(0, 0, 0);
	int v = run32(LEGACY, &r, snip_sysexit_trip);
	check32(LEGACY, v, "SYSEXIT: CS = SYSENTER_CS + 16, RPL 3", user_seen[0] & 0xffff, (KERNEL_CS32 + 16) | 3);
	check32(LEGACY, v, "SYSEXIT: SS = SYSENTER_CS + 24, RPL 3", user_seen[1] & 0xffff, (KERNEL_CS32 + 24) | 3);
	check32(LEGACY, v, "SYSEXIT: ESP = ECX", user_seen[2], (u32)(u64)sysexit_user_stack_top);
	check32(LEGACY, v, "SYSEXIT leaves EFLAGS (IF = 1 as set before it)", user_seen[3] & FL_IF, FL_IF);
	check32(LEGACY, v, "SYSENTER: CS = SYSENTER_CS", kernel_seen[0] & 0xffff, KERNEL_CS32);
	check32(LEGACY, v, "SYSENTER: SS = SYSENTER_CS + 8", kernel_seen[1] & 0xffff, KERNEL_CS32 + 8);
	check32(LEGACY, v, "SYSENTER: ESP = SYSENTER_ESP", kernel_seen[2], (u32)rdmsr(MSR_SYSENTER_ESP));
	check32(LEGACY, v, "SYSENTER clears IF", kernel_seen[3] & FL_IF, 0);

	/* SYSEXIT only at CPL 0 (APM Vol 3 SYSEXIT: #GP(0) "CPL was not 0"). */
	sysenter_user_action = 1;
	r = regs(0, 0, 0);
	run32(LEGACY, &r, snip_sysexit_trip);
	check_fault32(LEGACY, "SYSEXIT at CPL 3: #GP(0)", GP_VECTOR, 0, user_sysexit);
	check32(LEGACY, -1, "SYSEXIT at CPL 3: the #GP comes from CS = SYSENTER_CS + 16 | 3", last_ex.cs & 0xffff,
		(KERNEL_CS32 + 16) | 3);
	sysenter_user_action = 0;
}

/* ---- RDPMC ------------------------------------------------------------------------------------ */

static u64 user_rdpmc(u64 ecx)
{
	u64 a = ~0ull, d = ~0ull;
	TRY("rdpmc", : "+a"(a), "+d"(d) : "c"((u32)ecx) : "memory");
	return (d << 32) | (u32)a;
}

/* One check: no exception since the last TRY, and got == want. */
static bool expect_clean_eq(const char *name, u64 got, u64 want)
{
	int v = ex_vector();
	if (v >= 0)
		return report(false, "%s (got exception %d, error code 0x%lx at 0x%lx)", name, v, last_ex.error_code,
			      last_ex.rip);
	return expect_eq(name, got, want);
}

static void test_rdpmc(void)
{
	/*
	 * APM Vol 3 RDPMC: ECX 0-3 select PerfCtr0-3 (MSRs C001_0004-7, 48 bits) into EDX:EAX;
	 * another ECX, or CPL > 0 with CR4.PCE = 0, is #GP(0). QEMU 7.2 implements no counters.
	 */
	const u64 count = 0x123456789abcull;
	wrmsr(MSR_PERF_CTR1, count);
	u64 a = ~0ull, d = ~0ull;
	TRY("rdpmc", : "+a"(a), "+d"(d) : "c"(1) : "memory");
	qemu_deviation("TCG's RDPMC is #UD");
	expect_clean_eq("64-bit: RDPMC of counter 1 at CPL 0: RDX:RAX = PerfCtr1, upper halves zero",
			a >> 32 || d >> 32 ? ~0ull : d << 32 | a, count);
	TRY("rdpmc", : "+a"(a), "+d"(d) : "c"(4) : "memory");
	qemu_deviation("TCG's RDPMC is #UD");
	ex_check("64-bit: RDPMC with ECX = 4: #GP(0)", GP_VECTOR, 0, ex_site);

	write_cr4(read_cr4() & ~(u64)CR4_PCE);
	user_run(user_rdpmc, 1, 0);
	ex_check("CPL 3: RDPMC with CR4.PCE = 0: #GP(0)", GP_VECTOR, 0, ex_site);
	write_cr4(read_cr4() | CR4_PCE);
	u64 got = user_run(user_rdpmc, 1, 0);
	qemu_deviation("TCG's RDPMC is #UD");
	expect_clean_eq("CPL 3: RDPMC with CR4.PCE = 1 reads the counter", got, count);
	write_cr4(read_cr4() & ~(u64)CR4_PCE);

	for (enum mode m = COMPAT; m <= LEGACY; m++) {
		struct regs32 r = regs(0, 1, 0);
		int v = run32(m, &r, snip_rdpmc);
		qemu_deviation("TCG's RDPMC is #UD");
		check32(m, v, "RDPMC of counter 1 at CPL 0: EDX:EAX", (u64)r.edx << 32 | r.eax, count);
	}
	wrmsr(MSR_SYSENTER_CS, KERNEL_CS32);
	struct regs32 r = regs(0, 1, 0);
	run32(LEGACY, &r, snip_rdpmc_user);
	check_fault32(LEGACY, "RDPMC at CPL 3 with CR4.PCE = 0: #GP(0)", GP_VECTOR, 0, pmc_user_rdpmc);
	wrmsr(MSR_PERF_CTR1, 0);
}

/* ---- 64-bit mode: the legacy-only opcodes are #UD ------------------------------------------------ */

static void test_invalid_in_64bit(void)
{
	/* SDM Vol 2 / APM Vol 3: DAA, DAS, AAA, AAS, AAM, AAD, PUSHA, POPA are #UD in 64-bit mode. */
	TRY(".byte 0x27", ::: "memory");
	ex_check("64-bit: DAA (27): #UD", UD_VECTOR, 0, ex_site);
	TRY(".byte 0x2f", ::: "memory");
	ex_check("64-bit: DAS (2F): #UD", UD_VECTOR, 0, ex_site);
	TRY(".byte 0x37", ::: "memory");
	ex_check("64-bit: AAA (37): #UD", UD_VECTOR, 0, ex_site);
	TRY(".byte 0x3f", ::: "memory");
	ex_check("64-bit: AAS (3F): #UD", UD_VECTOR, 0, ex_site);
	TRY(".byte 0xd4, 0x0a", ::: "memory");
	ex_check("64-bit: AAM (D4 0A): #UD", UD_VECTOR, 0, ex_site);
	TRY(".byte 0xd5, 0x0a", ::: "memory");
	ex_check("64-bit: AAD (D5 0A): #UD", UD_VECTOR, 0, ex_site);
	TRY(".byte 0x60", ::: "memory");
	ex_check("64-bit: PUSHA (60): #UD", UD_VECTOR, 0, ex_site);
	TRY(".byte 0x61", ::: "memory");
	ex_check("64-bit: POPA (61): #UD", UD_VECTOR, 0, ex_site);
}

void test_main(void)
{
	idt32_desc.limit = sizeof(idt32) - 1;
	idt32_desc.base = (u32)(u64)idt32;
	for (int v = 0; v < 32; v++) {
		/* 32-bit interrupt gates to KERNEL_CS32 (SDM Vol 3 §6.11 figure 6-2). */
		u32 off = (u32)(u64)legacy_isr_stubs + 16 * v;
		idt32[v] = gate_desc(KERNEL_CS32, off, 0x8e);
	}
	setup_descriptors();

	test_invalid_in_64bit();
	for (enum mode m = COMPAT; m <= LEGACY; m++) {
		test_decimal(m);
		test_pusha_popa(m);
		test_stack16(m);
		test_enter32(m);
		test_bound(m);
		test_arpl(m);
		test_queries(m);
		test_lar_limit_bits(m);
	}
	test_stack_faults();
	test_long_upper_half();
	test_queries_64();
	test_sysenter();
	test_rdpmc();
	asm volatile("lldt %w0" : : "r"(0));
}
