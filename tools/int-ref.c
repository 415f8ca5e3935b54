/*
 * Reference results for the integer interpreter helpers (test/int-helpers.test.ts), taken
 * from the host CPU.
 *
 * Each "kind" is one instruction written in Intel syntax; the same text is the kind's name,
 * and the test parses it back into an Insn, so the instruction run here and the one the
 * helper sees cannot drift apart. For every kind the program generates inputs (edge values
 * and seeded random values, shaped so that e.g. divisions mostly do not fault), runs the
 * instruction with RAX…R9 and RFLAGS loaded from a struct, and prints one line per case:
 *
 *   <kind>|<rax rcx rdx rbx rsi rdi r8 r9 rflags in hex>|<memory window hex or ->|<result>
 *
 * where <result> is "DE" / "GP" (the instruction faulted: SIGFPE / SIGSEGV or SIGBUS) or
 * "ok <the nine registers after> <memory window after, '=' when unchanged, or ->". Memory kinds address a
 * 256-byte window mapped at a fixed address (WINDOW) so pointers mean the same thing in the
 * emulator. Build with -mno-red-zone: the trampoline pushes while the compiler may keep
 * locals below RSP.
 *
 * Usage: int-ref [seed] [cases-per-kind]
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define WINDOW 0x10000000UL
#define WINDOW_LEN 256
#define MAX_KINDS 512

typedef struct {
  uint64_t rax, rcx, rdx, rbx, rsi, rdi, r8, r9, rflags;
} Regs;

typedef enum { GEN, DIV, SIGNED_DIV, COUNT, SCAN, BITOFF, CMPX, CMPX16, STR } Shape;

typedef struct {
  const char *text;
  Shape shape;
  int size;      /* operand size in bytes, for shaping inputs */
  int uses_mem;  /* operand at [r8] or string operands in the window */
  void (*run)(Regs *);
} Kind;

static Kind kinds[MAX_KINDS];
static int n_kinds;

static void add_kind(const char *text, Shape shape, int size, int uses_mem, void (*run)(Regs *)) {
  kinds[n_kinds++] = (Kind){text, shape, size, uses_mem, run};
}

/* Load all nine values, run the instruction, store them back; CLD afterwards because the
   C ABI requires DF clear and some cases set it. */
#define TRAMPOLINE(INSN)                                                                        \
  __asm__ volatile(".intel_syntax noprefix\n"                                                  \
                   "mov r15, %0\n"                                                             \
                   "mov rax, [r15]\n mov rcx, [r15+8]\n mov rdx, [r15+16]\n mov rbx, [r15+24]\n" \
                   "mov rsi, [r15+32]\n mov rdi, [r15+40]\n mov r8, [r15+48]\n mov r9, [r15+56]\n" \
                   "push qword ptr [r15+64]\n popfq\n" INSN "\n"                               \
                   "pushfq\n pop qword ptr [r15+64]\n cld\n"                                   \
                   "mov [r15], rax\n mov [r15+8], rcx\n mov [r15+16], rdx\n mov [r15+24], rbx\n" \
                   "mov [r15+32], rsi\n mov [r15+40], rdi\n mov [r15+48], r8\n mov [r15+56], r9\n" \
                   ".att_syntax prefix\n"                                                      \
                   :                                                                           \
                   : "r"(r)                                                                    \
                   : "rax", "rcx", "rdx", "rbx", "rsi", "rdi", "r8", "r9", "r15", "memory", "cc")

#define CAT2(a, b) a##b
#define CAT(a, b) CAT2(a, b)
#define KIND(shape, size, mem, INSN)                                                           \
  static void CAT(run_, __LINE__)(Regs * r) { TRAMPOLINE(INSN); }                             \
  __attribute__((constructor)) static void CAT(reg_, __LINE__)(void) {                        \
    add_kind(INSN, shape, size, mem, CAT(run_, __LINE__));                                    \
  }

/* ---- the kinds ---- */

KIND(DIV, 1, 0, "div bl")
KIND(DIV, 1, 0, "div bh")
KIND(DIV, 2, 0, "div bx")
KIND(DIV, 4, 0, "div ebx")
KIND(DIV, 8, 0, "div rbx")
KIND(DIV, 8, 1, "div qword ptr [r8]")
KIND(SIGNED_DIV, 1, 0, "idiv bl")
KIND(SIGNED_DIV, 2, 0, "idiv bx")
KIND(SIGNED_DIV, 4, 0, "idiv ebx")
KIND(SIGNED_DIV, 8, 0, "idiv rbx")
KIND(SIGNED_DIV, 4, 1, "idiv dword ptr [r8]")
KIND(GEN, 1, 0, "mul bl")
KIND(GEN, 1, 0, "mul ah")
KIND(GEN, 2, 0, "mul bx")
KIND(GEN, 4, 0, "mul ebx")
KIND(GEN, 8, 0, "mul rbx")
KIND(GEN, 2, 1, "mul word ptr [r8]")
KIND(GEN, 1, 0, "imul bl")
KIND(GEN, 2, 0, "imul bx")
KIND(GEN, 4, 0, "imul ebx")
KIND(GEN, 8, 0, "imul rbx")
KIND(GEN, 8, 1, "imul qword ptr [r8]")

KIND(COUNT, 2, 0, "shld bx, si, cl")
KIND(COUNT, 4, 0, "shld ebx, esi, cl")
KIND(COUNT, 8, 0, "shld rbx, rsi, cl")
KIND(COUNT, 2, 0, "shrd bx, si, cl")
KIND(COUNT, 4, 0, "shrd ebx, esi, cl")
KIND(COUNT, 8, 0, "shrd rbx, rsi, cl")
KIND(COUNT, 2, 0, "shld bx, si, 20")
KIND(COUNT, 4, 0, "shrd ebx, esi, 7")
KIND(COUNT, 8, 1, "shld qword ptr [r8], rsi, cl")
KIND(COUNT, 2, 1, "shrd word ptr [r8], si, cl")

KIND(COUNT, 1, 0, "rol bl, cl")
KIND(COUNT, 2, 0, "rol bx, cl")
KIND(COUNT, 4, 0, "rol ebx, cl")
KIND(COUNT, 8, 0, "rol rbx, cl")
KIND(COUNT, 1, 0, "ror bl, cl")
KIND(COUNT, 2, 0, "ror bx, cl")
KIND(COUNT, 4, 0, "ror ebx, cl")
KIND(COUNT, 8, 0, "ror rbx, cl")
KIND(COUNT, 1, 0, "rcl bl, cl")
KIND(COUNT, 2, 0, "rcl bx, cl")
KIND(COUNT, 4, 0, "rcl ebx, cl")
KIND(COUNT, 8, 0, "rcl rbx, cl")
KIND(COUNT, 1, 0, "rcr bl, cl")
KIND(COUNT, 2, 0, "rcr bx, cl")
KIND(COUNT, 4, 0, "rcr ebx, cl")
KIND(COUNT, 8, 0, "rcr rbx, cl")
KIND(COUNT, 1, 0, "rol bh, 1")
KIND(COUNT, 4, 0, "ror ebx, 1")
KIND(COUNT, 8, 0, "rcl rbx, 1")
KIND(COUNT, 2, 0, "rcr bx, 1")
KIND(COUNT, 4, 0, "rcl ebx, 33")
KIND(COUNT, 1, 0, "rcr bl, 13")
KIND(COUNT, 8, 1, "rcl qword ptr [r8], cl")
KIND(COUNT, 2, 1, "ror word ptr [r8], cl")

KIND(SCAN, 2, 0, "bsf bx, si")
KIND(SCAN, 4, 0, "bsf ebx, esi")
KIND(SCAN, 8, 0, "bsf rbx, rsi")
KIND(SCAN, 2, 0, "bsr bx, si")
KIND(SCAN, 4, 0, "bsr ebx, esi")
KIND(SCAN, 8, 0, "bsr rbx, rsi")
KIND(SCAN, 2, 0, "tzcnt bx, si")
KIND(SCAN, 4, 0, "tzcnt ebx, esi")
KIND(SCAN, 8, 0, "tzcnt rbx, rsi")
KIND(SCAN, 2, 0, "lzcnt bx, si")
KIND(SCAN, 4, 0, "lzcnt ebx, esi")
KIND(SCAN, 8, 0, "lzcnt rbx, rsi")
KIND(SCAN, 2, 0, "popcnt bx, si")
KIND(SCAN, 4, 0, "popcnt ebx, esi")
KIND(SCAN, 8, 0, "popcnt rbx, rsi")
KIND(SCAN, 8, 1, "bsr rbx, qword ptr [r8]")
KIND(SCAN, 4, 1, "tzcnt ebx, dword ptr [r8]")

KIND(BITOFF, 2, 0, "bt bx, cx")
KIND(BITOFF, 4, 0, "bts ebx, ecx")
KIND(BITOFF, 8, 0, "btr rbx, rcx")
KIND(BITOFF, 8, 0, "btc rbx, rcx")
KIND(BITOFF, 4, 0, "bt ebx, 37")
KIND(BITOFF, 8, 0, "btc rbx, 63")
KIND(BITOFF, 2, 0, "bts bx, 19")
KIND(BITOFF, 2, 1, "bt word ptr [r8], cx")
KIND(BITOFF, 2, 1, "btc word ptr [r8], cx")
KIND(BITOFF, 4, 1, "bts dword ptr [r8], ecx")
KIND(BITOFF, 8, 1, "btr qword ptr [r8], rcx")
KIND(BITOFF, 8, 1, "btc qword ptr [r8], rcx")
KIND(BITOFF, 4, 1, "btr dword ptr [r8], 45")
KIND(BITOFF, 2, 1, "bt word ptr [r8], 9")

KIND(CMPX, 1, 0, "cmpxchg bl, cl")
KIND(CMPX, 2, 0, "cmpxchg bx, cx")
KIND(CMPX, 4, 0, "cmpxchg ebx, ecx")
KIND(CMPX, 8, 0, "cmpxchg rbx, rcx")
KIND(CMPX, 4, 0, "cmpxchg eax, ecx")
KIND(CMPX, 8, 1, "cmpxchg qword ptr [r8], rcx")
KIND(CMPX, 4, 1, "lock cmpxchg dword ptr [r8], ecx")
KIND(CMPX16, 16, 1, "cmpxchg16b xmmword ptr [r8]")
KIND(CMPX16, 8, 1, "cmpxchg8b qword ptr [r8]")
KIND(GEN, 1, 0, "xadd bl, cl")
KIND(GEN, 2, 0, "xadd bx, cx")
KIND(GEN, 4, 0, "xadd ebx, ecx")
KIND(GEN, 8, 0, "xadd rbx, rcx")
KIND(GEN, 4, 1, "xadd dword ptr [r8], ecx")
KIND(GEN, 1, 0, "xchg bl, ch")
KIND(GEN, 4, 0, "xchg ebx, ecx")
KIND(GEN, 8, 0, "xchg rbx, rcx")
KIND(GEN, 2, 1, "xchg word ptr [r8], cx")

KIND(GEN, 2, 0, "bswap ebx")
KIND(GEN, 8, 0, "bswap rbx")
KIND(GEN, 2, 0, ".byte 0x66, 0x0f, 0xcb")
KIND(GEN, 2, 0, "cbw")
KIND(GEN, 4, 0, "cwde")
KIND(GEN, 8, 0, "cdqe")
KIND(GEN, 2, 0, "cwd")
KIND(GEN, 4, 0, "cdq")
KIND(GEN, 8, 0, "cqo")
KIND(GEN, 1, 0, "sahf")
KIND(GEN, 1, 0, "lahf")
KIND(GEN, 1, 0, "cmc")
KIND(GEN, 1, 0, "clc")
KIND(GEN, 1, 0, "stc")

KIND(STR, 1, 1, "movsb")
KIND(STR, 8, 1, "movsq")
KIND(STR, 1, 1, "rep movsb")
KIND(STR, 2, 1, "rep movsw")
KIND(STR, 4, 1, "rep movsd")
KIND(STR, 8, 1, "rep movsq")
KIND(STR, 1, 1, "rep stosb")
KIND(STR, 2, 1, "rep stosw")
KIND(STR, 4, 1, "rep stosd")
KIND(STR, 8, 1, "rep stosq")
KIND(STR, 1, 1, "lodsb")
KIND(STR, 8, 1, "lodsq")
KIND(STR, 2, 1, "rep lodsw")
KIND(STR, 1, 1, "cmpsb")
KIND(STR, 1, 1, "repe cmpsb")
KIND(STR, 2, 1, "repe cmpsw")
KIND(STR, 4, 1, "repne cmpsd")
KIND(STR, 8, 1, "repe cmpsq")
KIND(STR, 1, 1, "scasb")
KIND(STR, 1, 1, "repne scasb")
KIND(STR, 1, 1, "repe scasb")
KIND(STR, 2, 1, "repne scasw")
KIND(STR, 4, 1, "repe scasd")
KIND(STR, 8, 1, "repne scasq")
KIND(STR, 1, 1, "addr32 rep movsb")
KIND(STR, 4, 1, "addr32 repne scasd")
KIND(STR, 2, 1, "addr32 rep stosw")

/* ---- inputs ---- */

static uint64_t rng_state;

static uint64_t rnd(void) {
  /* splitmix64: small, seedable, good enough to spread inputs */
  uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

static const uint64_t EDGES[] = {
  0, 1, 2, 3, 0xffffffffffffffffULL, 0xfffffffffffffffeULL, 0x7f, 0x80, 0xff, 0x7fff, 0x8000, 0xffff,
  0x7fffffff, 0x80000000, 0xffffffff, 0x100000000ULL, 0x7fffffffffffffffULL, 0x8000000000000000ULL,
  0xffffffffffffff80ULL, 0xffffffffffff8000ULL, 0xffffffff80000000ULL,
};

/* A value biased towards edges, small numbers and values of one operand width. */
static uint64_t value(void) {
  switch (rnd() % 8) {
    case 0: return EDGES[rnd() % (sizeof EDGES / sizeof EDGES[0])];
    case 1: return rnd() % 70;
    case 2: return rnd() & 0xff;
    case 3: return rnd() & 0xffff;
    case 4: return rnd() & 0xffffffff;
    case 5: return (uint64_t)-(int64_t)(rnd() % 70);
    default: return rnd();
  }
}

static uint64_t mask_of(int size) { return size == 8 ? ~0ULL : (1ULL << (8 * size)) - 1; }

/* Replace the low `size` bytes of x (the part an operand of that size sees). */
static uint64_t set_part(uint64_t x, int size, uint64_t v) {
  uint64_t m = mask_of(size);
  return (x & ~m) | (v & m);
}

static uint64_t sext(uint64_t v, int size) {
  int sh = 64 - 8 * size;
  return (uint64_t)((int64_t)(v << sh) >> sh);
}

static uint8_t window_in[WINDOW_LEN];

static void shape_inputs(const Kind *k, Regs *r) {
  r->rax = value(), r->rcx = value(), r->rdx = value(), r->rbx = value();
  r->rsi = value(), r->rdi = value(), r->r8 = value(), r->r9 = value();
  /* random OSZAPC, everything else as user code normally has it (IF set, bit 1 set) */
  r->rflags = 0x202 | (rnd() & 0x8d5);
  for (int i = 0; i < WINDOW_LEN; i++) window_in[i] = (uint8_t)rnd();
  if (k->uses_mem) r->r8 = WINDOW + 128;
  int sz = k->size;
  uint64_t *divisor = k->uses_mem ? (uint64_t *)(window_in + 128) : &r->rbx;
  switch (k->shape) {
    case GEN:
    case SCAN:
      if (k->shape == SCAN && rnd() % 4 == 0) {
        r->rsi = rnd() % 2 ? 0 : (rnd() & ~mask_of(sz)) | (1ULL << (rnd() % (8 * sz))); /* zero or one bit */
        memcpy(window_in + 128, &r->rsi, 8);
      }
      break;
    case DIV:
    case SIGNED_DIV: {
      /* Mostly non-faulting: make the high half of the dividend smaller than the divisor
         (unsigned) or the sign extension of the low half (signed); sometimes leave it random. */
      uint64_t d = *divisor;
      if (rnd() % 8 == 0) d = set_part(d, sz, rnd() % 3 == 0 ? 0 : (uint64_t)-1);
      *divisor = d;
      if (sz == 1) d = k->text[5] == 'h' || k->text[6] == 'h' ? d >> 8 : d; /* "div bh" */
      uint64_t dm = d & mask_of(sz);
      int hi_reg_is_ah = sz == 1;
      uint64_t hi;
      uint64_t roll = rnd() % 4;
      if (roll == 3) break;
      if (k->shape == DIV) hi = dm ? rnd() % dm : 0;
      else hi = roll == 0 ? (rnd() % 2 ? 0 : (uint64_t)-1) : (((r->rax >> (8 * sz - 1)) & 1) ? (uint64_t)-1 : 0);
      if (hi_reg_is_ah) r->rax = (r->rax & ~0xff00ULL) | ((hi & 0xff) << 8);
      else r->rdx = set_part(r->rdx, sz, hi);
      break;
    }
    case COUNT:
      r->rcx = (r->rcx & ~0xffULL) | (rnd() % 3 == 0 ? rnd() & 0xff : rnd() % 70);
      if (k->shape == COUNT && rnd() % 6 == 0) r->rcx &= ~0xffULL; /* count 0: nothing changes */
      break;
    case BITOFF:
      if (k->uses_mem) {
        /* signed bit offsets that stay inside the window: +-1000 bits around r8 */
        r->rcx = set_part(r->rcx, sz, (uint64_t)((int64_t)(rnd() % 2001) - 1000));
        if (sz == 2) r->rcx = set_part(r->rcx, sz, sext(r->rcx, 2) & 0xffff);
      }
      break;
    case CMPX:
      if (rnd() % 2) {
        uint64_t cur = k->uses_mem ? *(uint64_t *)(window_in + 128) : r->rbx;
        if (strstr(k->text, "eax, ecx")) cur = r->rax;
        r->rax = set_part(r->rax, sz, cur);
      }
      break;
    case CMPX16: {
      int half = sz / 2;
      uint64_t lo, hi;
      memcpy(&lo, window_in + 128, 8);
      memcpy(&hi, window_in + 128 + 8, 8);
      if (half == 4) hi = lo >> 32, lo &= 0xffffffff;
      if (rnd() % 2) r->rax = set_part(r->rax, half, lo), r->rdx = set_part(r->rdx, half, hi);
      else if (rnd() % 2) r->rax = set_part(r->rax, half, lo);
      if (rnd() % 6 == 0) r->r8 = WINDOW + 128 + 8; /* misaligned for cmpxchg16b */
      break;
    }
    case STR: {
      /* two-letter alphabet so comparisons stop at varied places */
      for (int i = 0; i < WINDOW_LEN; i++) window_in[i] = (uint8_t)(rnd() % 5 == 0);
      r->rax = rnd() % 2 ? 0 : r->rax;
      if (rnd() % 2) r->rax = set_part(r->rax, sz, 0x0101010101010101ULL * (rnd() % 2));
      uint64_t hi_garbage = strstr(k->text, "addr32") ? rnd() << 32 : 0;
      /* up to 9 elements of 8 bytes either way must stay inside the window */
      r->rsi = hi_garbage | (WINDOW + 72 + rnd() % 104);
      r->rdi = (hi_garbage >> 3 << 32) | (WINDOW + 72 + rnd() % 104);
      r->rcx = (strstr(k->text, "addr32") ? rnd() << 32 : 0) | (rnd() % 10);
      if (rnd() % 2) r->rflags |= 0x400; /* DF */
      break;
    }
  }
}

/* ---- running ---- */

static sigjmp_buf fault_jmp;
static volatile int fault_sig;

static void on_fault(int sig) {
  fault_sig = sig;
  siglongjmp(fault_jmp, 1);
}

static void print_regs(const Regs *r) {
  printf("%lx %lx %lx %lx %lx %lx %lx %lx %lx", r->rax, r->rcx, r->rdx, r->rbx, r->rsi, r->rdi, r->r8, r->r9, r->rflags);
}

static void print_window(const uint8_t *w, int used) {
  if (!used) {
    printf("-");
    return;
  }
  for (int i = 0; i < WINDOW_LEN; i++) printf("%02x", w[i]);
}

int main(int argc, char **argv) {
  rng_state = argc > 1 ? strtoull(argv[1], 0, 0) : 1;
  int cases = argc > 2 ? atoi(argv[2]) : 200;
  uint8_t *window = mmap((void *)WINDOW, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
  if (window == MAP_FAILED) return perror("mmap"), 1;
  struct sigaction sa = {0};
  sa.sa_handler = on_fault;
  sa.sa_flags = SA_NODEFER;
  sigaction(SIGFPE, &sa, 0);
  sigaction(SIGSEGV, &sa, 0);
  sigaction(SIGBUS, &sa, 0);
  for (int ki = 0; ki < n_kinds; ki++) {
    const Kind *k = &kinds[ki];
    for (int c = 0; c < cases; c++) {
      Regs in, out;
      shape_inputs(k, &in);
      memcpy(window, window_in, WINDOW_LEN);
      out = in;
      printf("%s|", k->text);
      print_regs(&in);
      printf("|");
      print_window(window_in, k->uses_mem);
      printf("|");
      if (sigsetjmp(fault_jmp, 1) == 0) {
        Regs *r = &out;
        k->run(r);
        printf("ok ");
        print_regs(&out);
        printf(" ");
        if (k->uses_mem && memcmp(window, window_in, WINDOW_LEN) == 0) printf("=");
        else print_window(window, k->uses_mem);
      } else {
        printf(fault_sig == SIGFPE ? "DE" : "GP");
      }
      printf("\n");
    }
  }
  return 0;
}
