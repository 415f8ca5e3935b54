/*
 * Native reference runner: executes x86-64 snippets on the host CPU from a given initial
 * state and reports the final state, so svmjit's results can be compared with real hardware.
 *
 * Why it is shaped so: the guest-visible layout is the one svmjit's test harness uses (code at
 * 0x400000, a 4 KiB scratch region at 0x600000, an 8 KiB stack below 0x800000 with RSP = 0x7fff00),
 * so absolute and RIP-relative addresses mean the same thing on both sides. Registers are
 * loaded by a small assembly trampoline; x87, MXCSR and XMM are loaded with one FXRSTOR of an
 * FXSAVE image and read back with FXSAVE, so every piece of FP state travels in the one format
 * the hardware defines (and the one the kernel gives a signal handler). The snippet is followed
 * by an absolute indirect jump to an exit stub that stores the registers without touching the
 * guest stack. Faults are caught by a signal handler on an alternate stack that copies the
 * state at the faulting instruction out of the ucontext (trap number, error, CR2 included) and
 * siglongjmps back. Many cases run per process: the wrapper (native-runner.ts) streams them
 * through stdin/stdout in a fixed little-endian binary format:
 *
 *   input case:  u32 code_len, code bytes, u64 gpr[16] (RSP ignored), u64 rflags,
 *                u8 fx[512] (FXSAVE image), u32 n_chunks, n * { u64 addr, u32 len, bytes }
 *                (memory to preset; everything else in scratch and stack starts zero)
 *   output case: i32 trapno (-1 = ran to the end, -2 = timeout), i32 signo, u64 error,
 *                u64 fault address (CR2 / si_addr), u64 rip, u64 gpr[16], u64 rflags,
 *                u8 fx[512], u32 n_runs, n * { u64 addr, u32 len, bytes } (memory that differs
 *                from the preset image)
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <ucontext.h>
#include <unistd.h>

#define CODE_ADDR 0x400000UL
#define CODE_SIZE 0x10000UL
#define DATA_ADDR 0x600000UL
#define DATA_SIZE 0x1000UL
#define STACK_ADDR 0x7fe000UL
#define STACK_SIZE 0x2000UL
#define GUEST_RSP 0x7fff00UL
#define MAX_CODE 4096

struct ctx {
  uint64_t gpr[16];
  uint64_t rflags;
  uint64_t pad;
  uint8_t fx[512] __attribute__((aligned(16)));
};

/* Shared with the trampoline below (referenced RIP-relatively from assembly). */
struct ctx g_in __attribute__((aligned(16)));
struct ctx g_out __attribute__((aligned(16)));
uint64_t g_host_rsp;
uint64_t g_entry = CODE_ADDR;
uint32_t g_default_mxcsr = 0x1f80;

void run_guest(void);
void guest_exit(void);

/*
 * run_guest: save the host's callee-saved registers, load FP state, flags (on the host stack,
 * so the guest stack is never written) and the GPRs, then jump to the snippet.
 * guest_exit: store the GPRs, switch back to the host stack, store flags and FP state, restore
 * a sane host environment (DF, AC, MXCSR, x87) and return to run_guest's caller.
 */
__asm__(
    ".intel_syntax noprefix\n"
    ".text\n"
    ".globl run_guest\n"
    "run_guest:\n"
    "  push rbx\n  push rbp\n  push r12\n  push r13\n  push r14\n  push r15\n"
    "  mov [rip+g_host_rsp], rsp\n"
    "  fxrstor [rip+g_in+144]\n"
    "  push qword ptr [rip+g_in+128]\n"
    "  popfq\n"
    "  mov rax, [rip+g_in+0]\n  mov rcx, [rip+g_in+8]\n  mov rdx, [rip+g_in+16]\n  mov rbx, [rip+g_in+24]\n"
    "  mov rbp, [rip+g_in+40]\n  mov rsi, [rip+g_in+48]\n  mov rdi, [rip+g_in+56]\n"
    "  mov r8, [rip+g_in+64]\n  mov r9, [rip+g_in+72]\n  mov r10, [rip+g_in+80]\n  mov r11, [rip+g_in+88]\n"
    "  mov r12, [rip+g_in+96]\n  mov r13, [rip+g_in+104]\n  mov r14, [rip+g_in+112]\n  mov r15, [rip+g_in+120]\n"
    "  mov rsp, [rip+g_in+32]\n"
    "  jmp qword ptr [rip+g_entry]\n"
    ".globl guest_exit\n"
    "guest_exit:\n"
    "  mov [rip+g_out+0], rax\n  mov [rip+g_out+8], rcx\n  mov [rip+g_out+16], rdx\n  mov [rip+g_out+24], rbx\n"
    "  mov [rip+g_out+32], rsp\n  mov [rip+g_out+40], rbp\n  mov [rip+g_out+48], rsi\n  mov [rip+g_out+56], rdi\n"
    "  mov [rip+g_out+64], r8\n  mov [rip+g_out+72], r9\n  mov [rip+g_out+80], r10\n  mov [rip+g_out+88], r11\n"
    "  mov [rip+g_out+96], r12\n  mov [rip+g_out+104], r13\n  mov [rip+g_out+112], r14\n  mov [rip+g_out+120], r15\n"
    "  mov rsp, [rip+g_host_rsp]\n"
    "  pushfq\n"
    "  pop qword ptr [rip+g_out+128]\n"
    "  push 0x202\n"
    "  popfq\n"
    "  fxsave [rip+g_out+144]\n"
    "  fninit\n"
    "  ldmxcsr [rip+g_default_mxcsr]\n"
    "  pop r15\n  pop r14\n  pop r13\n  pop r12\n  pop rbp\n  pop rbx\n"
    "  ret\n"
    ".att_syntax prefix\n");

static sigjmp_buf g_jmp;
static volatile int g_trapno, g_signo;
static volatile uint64_t g_err, g_addr, g_rip;
static uint8_t *g_data, *g_stack;
static uint8_t g_data_init[DATA_SIZE], g_stack_init[STACK_SIZE];

/* ucontext register order (REG_R8 …) mapped to our RAX..R15 order. */
static const int GREG_OF[16] = {REG_RAX, REG_RCX, REG_RDX, REG_RBX, REG_RSP, REG_RBP, REG_RSI, REG_RDI,
                                REG_R8,  REG_R9,  REG_R10, REG_R11, REG_R12, REG_R13, REG_R14, REG_R15};

static void on_fault(int sig, siginfo_t *si, void *ucv) {
  ucontext_t *uc = ucv;
  greg_t *g = uc->uc_mcontext.gregs;
  for (int i = 0; i < 16; i++) g_out.gpr[i] = (uint64_t)g[GREG_OF[i]];
  g_out.rflags = (uint64_t)g[REG_EFL];
  if (uc->uc_mcontext.fpregs) memcpy(g_out.fx, uc->uc_mcontext.fpregs, 512);
  g_signo = sig;
  g_trapno = sig == SIGALRM ? -2 : (int)g[REG_TRAPNO];
  g_err = (uint64_t)g[REG_ERR];
  g_addr = sig == SIGSEGV && g_trapno == 14 ? (uint64_t)g[REG_CR2] : (uint64_t)si->si_addr;
  g_rip = (uint64_t)g[REG_RIP];
  siglongjmp(g_jmp, 1);
}

static int read_all(void *p, size_t n) {
  return fread(p, 1, n, stdin) == n;
}

static void write_all(const void *p, size_t n) {
  if (fwrite(p, 1, n, stdout) != n) exit(3);
}

static void *map_fixed(unsigned long addr, unsigned long size, int prot) {
  void *p = mmap((void *)addr, size, prot, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
  if (p != (void *)addr) {
    fprintf(stderr, "native-runner: cannot map 0x%lx\n", addr);
    exit(2);
  }
  return p;
}

/* Emit the runs of bytes in [mem, mem+size) that differ from init. */
static uint32_t count_runs(const uint8_t *mem, const uint8_t *init, size_t size) {
  uint32_t n = 0;
  for (size_t i = 0; i < size;) {
    if (mem[i] == init[i]) { i++; continue; }
    while (i < size && mem[i] != init[i]) i++;
    n++;
  }
  return n;
}

static void write_runs(const uint8_t *mem, const uint8_t *init, size_t size, uint64_t base) {
  for (size_t i = 0; i < size;) {
    if (mem[i] == init[i]) { i++; continue; }
    size_t start = i;
    while (i < size && mem[i] != init[i]) i++;
    uint64_t addr = base + start;
    uint32_t len = (uint32_t)(i - start);
    write_all(&addr, 8);
    write_all(&len, 4);
    write_all(mem + start, len);
  }
}

int main(void) {
  uint8_t *code = map_fixed(CODE_ADDR, CODE_SIZE, PROT_READ | PROT_WRITE | PROT_EXEC);
  g_data = map_fixed(DATA_ADDR, DATA_SIZE, PROT_READ | PROT_WRITE);
  g_stack = map_fixed(STACK_ADDR, STACK_SIZE, PROT_READ | PROT_WRITE);

  static uint8_t altstack[65536];
  stack_t ss = {.ss_sp = altstack, .ss_size = sizeof altstack, .ss_flags = 0};
  sigaltstack(&ss, NULL);
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = on_fault;
  sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_NODEFER;
  sigemptyset(&sa.sa_mask);
  int sigs[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP, SIGALRM};
  for (unsigned i = 0; i < sizeof sigs / sizeof sigs[0]; i++) sigaction(sigs[i], &sa, NULL);

  for (;;) {
    uint32_t code_len;
    if (!read_all(&code_len, 4)) break;
    if (code_len > MAX_CODE) return 4;
    if (!read_all(code, code_len)) return 4;
    /* The return sequence: jmp qword ptr [rip+0]; .quad guest_exit */
    uint8_t *t = code + code_len;
    t[0] = 0xff, t[1] = 0x25, t[2] = t[3] = t[4] = t[5] = 0;
    uint64_t exit_addr = (uint64_t)&guest_exit;
    memcpy(t + 6, &exit_addr, 8);
    if (!read_all(g_in.gpr, 128) || !read_all(&g_in.rflags, 8) || !read_all(g_in.fx, 512)) return 4;
    g_in.gpr[4] = GUEST_RSP;
    g_in.rflags = (g_in.rflags & 0x2c0dd5) | 0x202; /* arithmetic flags, DF, AC, ID; never TF */
    memset(g_data, 0, DATA_SIZE);
    memset(g_stack, 0, STACK_SIZE);
    uint32_t n_chunks;
    if (!read_all(&n_chunks, 4)) return 4;
    for (uint32_t i = 0; i < n_chunks; i++) {
      uint64_t addr;
      uint32_t len;
      if (!read_all(&addr, 8) || !read_all(&len, 4)) return 4;
      uint8_t *dst = addr >= DATA_ADDR && addr + len <= DATA_ADDR + DATA_SIZE     ? g_data + (addr - DATA_ADDR)
                     : addr >= STACK_ADDR && addr + len <= STACK_ADDR + STACK_SIZE ? g_stack + (addr - STACK_ADDR)
                                                                                   : NULL;
      if (!dst) return 5;
      if (!read_all(dst, len)) return 4;
    }
    memcpy(g_data_init, g_data, DATA_SIZE);
    memcpy(g_stack_init, g_stack, STACK_SIZE);

    g_trapno = -1, g_signo = 0, g_err = 0, g_addr = 0, g_rip = 0;
    if (sigsetjmp(g_jmp, 1) == 0) {
      alarm(2); /* a snippet that never ends is reported, not waited for */
      run_guest();
      alarm(0);
      g_rip = CODE_ADDR + code_len;
    } else {
      alarm(0);
      __asm__ volatile("cld\n\tfninit\n\tldmxcsr %0" ::"m"(g_default_mxcsr));
    }
    int32_t trapno = g_trapno, signo = g_signo;
    uint64_t err = g_err, addr = g_addr, rip = g_rip;
    write_all(&trapno, 4);
    write_all(&signo, 4);
    write_all(&err, 8);
    write_all(&addr, 8);
    write_all(&rip, 8);
    write_all(g_out.gpr, 128);
    write_all(&g_out.rflags, 8);
    write_all(g_out.fx, 512);
    uint32_t runs = count_runs(g_data, g_data_init, DATA_SIZE) + count_runs(g_stack, g_stack_init, STACK_SIZE);
    write_all(&runs, 4);
    write_runs(g_data, g_data_init, DATA_SIZE, DATA_ADDR);
    write_runs(g_stack, g_stack_init, STACK_SIZE, STACK_ADDR);
  }
  fflush(stdout);
  return 0;
}
