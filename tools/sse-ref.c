/*
 * Native reference for test/sse.test.ts: runs single SSE/SSE2 instructions on the host CPU.
 *
 * Protocol (one case per line on stdin, hex numbers):
 *   name imm mxcsr a0 a1 a2 a3 b0 b1 b2 b3 g
 * loads xmm0 = a (destination), xmm1 = b (source), rax = g, MXCSR = mxcsr, executes the
 * instruction `name` (with immediate `imm` for the forms that take one) and prints
 *   r0 r1 r2 r3 mxcsr rflags g
 * (xmm0, MXCSR and RFLAGS afterwards, rax afterwards), or "unknown" for a name not listed.
 * All exceptions are expected to be masked by the caller. Immediates must come from IMMS.
 *
 * Every instruction runs inside one asm statement so the compiler cannot touch xmm0/xmm1/rax or
 * MXCSR in between; build with -mno-red-zone because the statement pushes RFLAGS.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

typedef struct {
  uint32_t a[4] __attribute__((aligned(16)));
  uint32_t b[4] __attribute__((aligned(16)));
  uint64_t g;
  uint32_t mx;
  uint64_t fl;
} State;

static uint32_t default_mxcsr = 0x1f80;

#define RUN(TEXT)                                                                    \
  asm volatile("ldmxcsr %[mx]\n\t"                                                  \
               "movdqa %[a], %%xmm0\n\t"                                            \
               "movdqa %[b], %%xmm1\n\t"                                            \
               "mov %[g], %%rax\n\t" TEXT "\n\t"                                    \
               "pushfq\n\t"                                                         \
               "pop %[fl]\n\t"                                                      \
               "stmxcsr %[mx]\n\t"                                                  \
               "movdqa %%xmm0, %[a]\n\t"                                            \
               "mov %%rax, %[g]\n\t"                                                \
               "ldmxcsr %[mx0]"                                                     \
               : [a] "+m"(s->a), [g] "+m"(s->g), [mx] "+m"(s->mx), [fl] "=&r"(s->fl) \
               : [b] "m"(s->b), [mx0] "m"(default_mxcsr)                            \
               : "rax", "xmm0", "xmm1", "cc", "memory")

typedef void (*Fn)(State *s);
typedef struct {
  const char *name;
  int imm;
  Fn fn;
} Entry;

/* xmm0 = op(xmm0, xmm1) and friends: the text is the whole instruction. */
#define PLAIN(name, TEXT) static void f_##name(State *s) { RUN(TEXT); }
#define XX(name) PLAIN(name, #name " %%xmm1, %%xmm0")

#define FOR_IMMS(M, a, b) \
  M(a, b, 0) M(a, b, 1) M(a, b, 2) M(a, b, 3) M(a, b, 4) M(a, b, 5) M(a, b, 6) M(a, b, 7) \
  M(a, b, 8) M(a, b, 15) M(a, b, 16) M(a, b, 17) M(a, b, 31) M(a, b, 32) M(a, b, 33) M(a, b, 63) \
  M(a, b, 64) M(a, b, 27) M(a, b, 78) M(a, b, 147) M(a, b, 228) M(a, b, 177) M(a, b, 255)

/* Immediate forms: "op $i, %xmm1, %xmm0", "op $i, %xmm0" (shift groups), GPR forms. */
#define DEF_XI(name, TEXTFMT, i) static void f_##name##_##i(State *s) { RUN(#name " $" #i TEXTFMT); }
#define ENT_I(name, TEXTFMT, i) {#name, i, f_##name##_##i},

#define XX_LIST(M) \
  M(paddb) M(paddw) M(paddd) M(paddq) M(psubb) M(psubw) M(psubd) M(psubq) \
  M(paddusb) M(paddusw) M(psubusb) M(psubusw) M(paddsb) M(paddsw) M(psubsb) M(psubsw) \
  M(pcmpeqb) M(pcmpeqw) M(pcmpeqd) M(pcmpgtb) M(pcmpgtw) M(pcmpgtd) \
  M(pminub) M(pmaxub) M(pminsw) M(pmaxsw) M(pmullw) M(pmulhw) M(pmulhuw) M(pmuludq) M(pmaddwd) \
  M(psadbw) M(pavgb) M(pavgw) M(pand) M(pandn) M(por) M(pxor) \
  M(packsswb) M(packuswb) M(packssdw) \
  M(punpcklbw) M(punpcklwd) M(punpckldq) M(punpcklqdq) M(punpckhbw) M(punpckhwd) M(punpckhdq) M(punpckhqdq) \
  M(unpcklps) M(unpckhps) M(unpcklpd) M(unpckhpd) \
  M(psllw) M(pslld) M(psllq) M(psrlw) M(psrld) M(psrlq) M(psraw) M(psrad) \
  M(andps) M(andpd) M(andnps) M(andnpd) M(orps) M(orpd) M(xorps) M(xorpd) \
  M(addps) M(addpd) M(addss) M(addsd) M(subps) M(subpd) M(subss) M(subsd) \
  M(mulps) M(mulpd) M(mulss) M(mulsd) M(divps) M(divpd) M(divss) M(divsd) \
  M(minps) M(minpd) M(minss) M(minsd) M(maxps) M(maxpd) M(maxss) M(maxsd) \
  M(sqrtps) M(sqrtpd) M(sqrtss) M(sqrtsd) M(rcpps) M(rcpss) M(rsqrtps) M(rsqrtss) \
  M(ucomiss) M(ucomisd) M(comiss) M(comisd) \
  M(cvtps2pd) M(cvtpd2ps) M(cvtss2sd) M(cvtsd2ss) M(cvtdq2ps) M(cvtps2dq) M(cvttps2dq) \
  M(cvtdq2pd) M(cvtpd2dq) M(cvttpd2dq) \
  M(movss) M(movsd) M(movq) M(movhlps) M(movlhps) M(movaps) M(movdqu)

#define XI_LIST(M) \
  M(cmpps) M(cmppd) M(cmpss) M(cmpsd) M(shufps) M(shufpd) M(pshufd) M(pshuflw) M(pshufhw)
#define SHIFT_IMM_LIST(M) \
  M(psrlw) M(psraw) M(psllw) M(psrld) M(psrad) M(pslld) M(psrlq) M(psllq) M(psrldq) M(pslldq)

/* name, instruction text */
#define GPR_LIST(M) \
  M(cvtsi2ss32, "cvtsi2ssl %%eax, %%xmm0") M(cvtsi2ss64, "cvtsi2ssq %%rax, %%xmm0") \
  M(cvtsi2sd32, "cvtsi2sdl %%eax, %%xmm0") M(cvtsi2sd64, "cvtsi2sdq %%rax, %%xmm0") \
  M(cvtss2si32, "cvtss2si %%xmm1, %%eax") M(cvtss2si64, "cvtss2si %%xmm1, %%rax") \
  M(cvttss2si32, "cvttss2si %%xmm1, %%eax") M(cvttss2si64, "cvttss2si %%xmm1, %%rax") \
  M(cvtsd2si32, "cvtsd2si %%xmm1, %%eax") M(cvtsd2si64, "cvtsd2si %%xmm1, %%rax") \
  M(cvttsd2si32, "cvttsd2si %%xmm1, %%eax") M(cvttsd2si64, "cvttsd2si %%xmm1, %%rax") \
  M(movd_to_xmm, "movd %%eax, %%xmm0") M(movq_to_xmm, "movq %%rax, %%xmm0") \
  M(movd_to_gpr, "movd %%xmm1, %%eax") M(movq_to_gpr, "movq %%xmm1, %%rax") \
  M(movq_store_form, ".byte 0x66, 0x0f, 0xd6, 0xc8") /* movq xmm0, xmm1 (66 0F D6 /r) */ \
  M(movmskps, "movmskps %%xmm1, %%eax") M(movmskpd, "movmskpd %%xmm1, %%eax") \
  M(pmovmskb, "pmovmskb %%xmm1, %%eax")

#define GPR_IMM_LIST(M) M(pextrw, ", %%xmm1, %%eax") M(pinsrw, ", %%eax, %%xmm0")

XX_LIST(XX)

#define DEF_GPR(name, TEXT) PLAIN(name, TEXT)
GPR_LIST(DEF_GPR)

#define DEF_XI_ALL(name) FOR_IMMS(DEF_XI, name, ", %%xmm1, %%xmm0")
XI_LIST(DEF_XI_ALL)

/* The shift-by-immediate forms are named with an "i" suffix (psrlwi): same mnemonic otherwise. */
#define DEF_SI(name, unused, i) static void f_##name##i_##i(State *s) { RUN(#name " $" #i ", %%xmm0"); }
#define DEF_SI_ALL(name) FOR_IMMS(DEF_SI, name, _)
SHIFT_IMM_LIST(DEF_SI_ALL)

#define DEF_GI_ALL(name, TEXTFMT) FOR_IMMS(DEF_XI, name, TEXTFMT)
GPR_IMM_LIST(DEF_GI_ALL)

#define ENT_XX(name) {#name, -1, f_##name},
#define ENT_GPR(name, TEXT) {#name, -1, f_##name},
#define ENT_XI_ALL(name) FOR_IMMS(ENT_I, name, _)
#define ENT_SI(name, unused, i) {#name "i", i, f_##name##i_##i},
#define ENT_SI_ALL(name) FOR_IMMS(ENT_SI, name, _)
#define ENT_GI_ALL(name, TEXTFMT) FOR_IMMS(ENT_I, name, _)

static const Entry table[] = {
  XX_LIST(ENT_XX) GPR_LIST(ENT_GPR) XI_LIST(ENT_XI_ALL) SHIFT_IMM_LIST(ENT_SI_ALL) GPR_IMM_LIST(ENT_GI_ALL)
};

int main(void) {
  char name[64];
  unsigned imm, mx;
  State st;
  State *s = &st;
  while (scanf("%63s %x %x %x %x %x %x %x %x %x %x %lx", name, &imm, &mx, &st.a[0], &st.a[1], &st.a[2], &st.a[3],
               &st.b[0], &st.b[1], &st.b[2], &st.b[3], &st.g) == 12) {
    const Entry *e = 0;
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
      if (strcmp(table[i].name, name) == 0 && (table[i].imm < 0 || table[i].imm == (int)imm)) {
        e = &table[i];
        break;
      }
    if (!e) {
      printf("unknown\n");
      continue;
    }
    st.mx = mx;
    e->fn(s);
    printf("%x %x %x %x %x %lx %lx\n", st.a[0], st.a[1], st.a[2], st.a[3], st.mx, st.fl, st.g);
  }
  return 0;
}
