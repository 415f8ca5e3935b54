/*
 * Signal delivery as programs rely on it: a SIGSEGV from a NULL write and a SIGFPE from integer
 * division (by zero, and INT_MIN / -1) caught with sigsetjmp/siglongjmp out of an SA_SIGINFO
 * handler; raise() with a handler; a blocked signal left pending and delivered on unblock; the
 * signal mask restored by siglongjmp; and SA_RESETHAND. Handlers only record facts that are the
 * same on every run (signal number, si_code, whether si_addr is NULL).
 */
#include <limits.h>
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static sigjmp_buf recovery;
static volatile sig_atomic_t last_signal, last_code, fault_address_is_null, usr1_count;

static void on_fault(int signal_number, siginfo_t *info, void *context) {
  (void)context;
  last_signal = signal_number;
  last_code = info->si_code;
  fault_address_is_null = info->si_addr == NULL;
  siglongjmp(recovery, signal_number);
}

static void on_usr1(int signal_number) {
  (void)signal_number;
  usr1_count++;
}

static void install(int signal_number, int flags) {
  struct sigaction action;
  memset(&action, 0, sizeof action);
  action.sa_sigaction = on_fault;
  action.sa_flags = SA_SIGINFO | flags;
  sigemptyset(&action.sa_mask);
  sigaction(signal_number, &action, NULL);
}

static int usr1_blocked(void) {
  sigset_t current;
  sigprocmask(SIG_BLOCK, NULL, &current);
  return sigismember(&current, SIGUSR1);
}

static void null_write(void) {
  volatile int *volatile nowhere = NULL;
  install(SIGSEGV, 0);
  for (int attempt = 0; attempt < 3; attempt++) {
    int caught = sigsetjmp(recovery, 1);
    if (caught == 0) {
      *nowhere = 42;
      printf("NULL write did not fault\n");
    } else {
      printf("attempt %d: caught signal %d (SIGSEGV=%d) code %d address NULL %d\n", attempt, caught, SIGSEGV, last_code,
             fault_address_is_null);
    }
  }
}

static void divide_faults(void) {
  volatile int zero = 0, minus_one = -1, smallest = INT_MIN;
  volatile long long_zero = 0;
  install(SIGFPE, 0);
  int caught = sigsetjmp(recovery, 1);
  if (caught == 0) printf("100/0 = %d (no fault)\n", 100 / zero);
  else printf("int divide by zero: signal %d (SIGFPE=%d) code %d (FPE_INTDIV=%d)\n", caught, SIGFPE, last_code, FPE_INTDIV);
  caught = sigsetjmp(recovery, 1);
  if (caught == 0) printf("INT_MIN/-1 = %d (no fault)\n", smallest / minus_one);
  else printf("INT_MIN / -1: signal %d code %d\n", caught, last_code);
  caught = sigsetjmp(recovery, 1);
  if (caught == 0) printf("long %% 0 = %ld (no fault)\n", 7L % long_zero);
  else printf("long remainder by zero: signal %d code %d\n", caught, last_code);
}

static void raised_and_pending(void) {
  struct sigaction action;
  memset(&action, 0, sizeof action);
  action.sa_handler = on_usr1;
  sigemptyset(&action.sa_mask);
  sigaction(SIGUSR1, &action, NULL);
  raise(SIGUSR1);
  printf("after raise: handler ran %d time(s)\n", (int)usr1_count);
  kill(getpid(), SIGUSR1);
  printf("after kill(getpid()): %d\n", (int)usr1_count);

  sigset_t block, pending;
  sigemptyset(&block);
  sigaddset(&block, SIGUSR1);
  sigprocmask(SIG_BLOCK, &block, NULL);
  raise(SIGUSR1);
  sigpending(&pending);
  printf("blocked: handler count %d, pending %d\n", (int)usr1_count, sigismember(&pending, SIGUSR1));
  sigprocmask(SIG_UNBLOCK, &block, NULL);
  printf("unblocked: handler count %d\n", (int)usr1_count);

  /* siglongjmp with savesigs restores the mask that was current at sigsetjmp */
  install(SIGSEGV, 0);
  if (sigsetjmp(recovery, 1) == 0) {
    sigprocmask(SIG_BLOCK, &block, NULL);
    volatile int *volatile nowhere = NULL;
    *nowhere = 1;
  }
  printf("mask restored by siglongjmp: SIGUSR1 blocked %d\n", usr1_blocked());

  action.sa_flags = SA_RESETHAND;
  sigaction(SIGUSR1, &action, NULL);
  raise(SIGUSR1);
  struct sigaction now;
  sigaction(SIGUSR1, NULL, &now);
  printf("SA_RESETHAND: count %d, handler reset to default %d\n", (int)usr1_count, now.sa_handler == SIG_DFL);
  signal(SIGUSR2, SIG_IGN);
  raise(SIGUSR2);
  printf("ignored SIGUSR2 survived\n");
}

int main(void) {
  setvbuf(stdout, NULL, _IONBF, 0); /* output must not be lost or duplicated around the jumps */
  null_write();
  divide_faults();
  raised_and_pending();
  return 0;
}
