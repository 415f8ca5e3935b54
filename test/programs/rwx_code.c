/*
 * Code written at run time: x86-64 machine code stored into an RWX mapping, called through a
 * function pointer often enough to be compiled by a JIT, then rewritten in place (one immediate,
 * then the whole function) and called again. A translator that caches code by address must
 * notice the stores and run the new bytes; both results of each pair are printed.
 */
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

typedef int (*no_arguments)(void);
typedef long (*two_arguments)(long, long);

static long call_many(two_arguments function, int times) {
  long sum = 0;
  for (int i = 0; i < times; i++) sum += function(i, 3);
  return sum;
}

int main(void) {
  unsigned char *code = mmap(NULL, 4096, PROT_READ | PROT_WRITE | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (code == MAP_FAILED) {
    perror("mmap");
    return 1;
  }
  /* mov eax, 0x12345678 ; ret */
  static const unsigned char return_constant[] = {0xb8, 0x78, 0x56, 0x34, 0x12, 0xc3};
  memcpy(code, return_constant, sizeof return_constant);
  __builtin___clear_cache((char *)code, (char *)code + sizeof return_constant);
  no_arguments constant = (no_arguments)(void *)code;
  int first = 0;
  for (int i = 0; i < 50; i++) first = constant();
  code[1] = 0x21; /* patch only the low byte of the immediate */
  code[4] = 0x43;
  __builtin___clear_cache((char *)code, (char *)code + sizeof return_constant);
  int second = constant();
  printf("patched immediate: %#x then %#x\n", first, second);

  /* lea rax, [rdi + rsi] ; ret */
  static const unsigned char add[] = {0x48, 0x8d, 0x04, 0x37, 0xc3};
  /* mov rax, rdi ; imul rax, rsi ; ret */
  static const unsigned char multiply[] = {0x48, 0x89, 0xf8, 0x48, 0x0f, 0xaf, 0xc6, 0xc3};
  unsigned char *function = code + 256;
  memcpy(function, add, sizeof add);
  __builtin___clear_cache((char *)function, (char *)function + sizeof add);
  two_arguments operation = (two_arguments)(void *)function;
  long sums = call_many(operation, 1000);
  memcpy(function, multiply, sizeof multiply);
  __builtin___clear_cache((char *)function, (char *)function + sizeof multiply);
  long products = call_many(operation, 1000);
  printf("rewritten function: add-loop %ld, multiply-loop %ld\n", sums, products);

  /* data stored right next to live code must not disturb it */
  code[512] = 0xc3;
  for (int i = 0; i < 100; i++) code[600 + i] = (unsigned char)i;
  printf("neighbouring data: %ld\n", call_many(operation, 10));

  /* a loop that patches its own callee on every iteration */
  long alternating = 0;
  for (int i = 0; i < 20; i++) {
    memcpy(function, i % 2 ? multiply : add, i % 2 ? sizeof multiply : sizeof add);
    __builtin___clear_cache((char *)function, (char *)function + sizeof multiply);
    alternating = alternating * 3 + operation(i, 5);
  }
  printf("alternating: %ld\n", alternating);
  if (mprotect(code, 4096, PROT_READ | PROT_EXEC) != 0) perror("mprotect");
  printf("after mprotect r-x: %ld\n", operation(6, 7));
  munmap(code, 4096);
  return 0;
}
