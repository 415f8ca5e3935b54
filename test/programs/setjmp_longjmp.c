/*
 * Non-local control flow: setjmp/longjmp out of deep recursion, through frames with live
 * callee-saved registers and locals, repeated many times, plus a jump buffer reused from a loop.
 * glibc mangles the saved stack and return addresses with a per-process pointer guard read from
 * the TCB, so this also checks that %fs-relative thread state survives the round trip.
 */
#include <setjmp.h>
#include <stdio.h>

static jmp_buf escape;
static int deepest;

static long descend(int depth, int limit, long accumulated) {
  volatile long local = accumulated * 3 + depth; /* lives in this frame across the jump */
  if (depth > deepest) deepest = depth;
  if (depth == limit) longjmp(escape, (int)(local % 1000) + 1);
  return descend(depth + 1, limit, local) + local;
}

static int run_with_escape(int limit) {
  int code = setjmp(escape);
  if (code != 0) return code;
  descend(0, limit, 1);
  return -1; /* not reached */
}

static void callee_saved_survive(void) {
  /* register variables kept across setjmp must be volatile to be defined after longjmp */
  volatile int counter = 0;
  volatile double product = 1.0;
  jmp_buf again;
  int code = setjmp(again);
  counter++;
  product *= 1.5;
  if (code < 5) longjmp(again, code + 1);
  printf("loop via longjmp: counter %d product %.4f last code %d\n", counter, product, code);
  int zero_code = 0;
  if (setjmp(again) == 0) longjmp(again, zero_code); /* longjmp with 0 must deliver 1 */
  else printf("longjmp(0) delivered 1\n");
}

int main(void) {
  long total = 0;
  for (int limit = 0; limit < 200; limit += 3) {
    int code = run_with_escape(limit);
    total = total * 7 + code;
    if (limit % 50 == 0) printf("escape from depth %d: code %d\n", limit, code);
  }
  printf("escapes total %ld deepest %d\n", total, deepest);
  callee_saved_survive();
  return 0;
}
