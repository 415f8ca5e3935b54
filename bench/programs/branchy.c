/*
 * Benchmark: unpredictable control flow. A small stack-machine bytecode interpreter (a switch
 * dispatched once per virtual instruction, the shape of every scripting-language core) runs a
 * sieve and an iterative Fibonacci written in its bytecode, and an insertion-plus-quick sort
 * shuffles pseudo-random keys. argv[1] scales the work (default 10, about 0.4 s natively); the
 * last line is a checksum.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

enum opcode { PUSH, LOAD, STORE, ADD, SUB, MUL, MOD, LT, JZ, JMP, DUP, DROP, LOADI, STOREI, HALT };

struct instruction {
  uint8_t op;
  int32_t operand;
};

static int64_t execute(const struct instruction *code, int64_t *vars, int64_t *memory) {
  int64_t stack[64];
  int sp = 0, pc = 0;
  for (;;) {
    const struct instruction in = code[pc++];
    switch (in.op) {
    case PUSH: stack[sp++] = in.operand; break;
    case LOAD: stack[sp++] = vars[in.operand]; break;
    case STORE: vars[in.operand] = stack[--sp]; break;
    case ADD: sp--, stack[sp - 1] += stack[sp]; break;
    case SUB: sp--, stack[sp - 1] -= stack[sp]; break;
    case MUL: sp--, stack[sp - 1] *= stack[sp]; break;
    case MOD: sp--, stack[sp - 1] %= stack[sp]; break;
    case LT: sp--, stack[sp - 1] = stack[sp - 1] < stack[sp]; break;
    case JZ: if (stack[--sp] == 0) pc = in.operand; break;
    case JMP: pc = in.operand; break;
    case DUP: stack[sp] = stack[sp - 1], sp++; break;
    case DROP: sp--; break;
    case LOADI: stack[sp - 1] = memory[stack[sp - 1]]; break;
    case STOREI: sp -= 2, memory[stack[sp + 1]] = stack[sp]; break;
    case HALT: return sp ? stack[sp - 1] : 0;
    }
  }
}

/* vars: 0 = i, 1 = j, 2 = count, 3 = limit. memory[k] != 0 marks k composite. Returns the count. */
enum { SIEVE_LOOP = 4, SIEVE_PRIME = 12, SIEVE_INNER = 20, SIEVE_NEXT = 32, SIEVE_END = 37 };
static const struct instruction sieve_program[] = {
    {PUSH, 2}, {STORE, 0}, {PUSH, 0}, {STORE, 2},
    /* SIEVE_LOOP: while i < limit; if memory[i] == 0 it is prime */
    {LOAD, 0}, {LOAD, 3}, {LT, 0}, {JZ, SIEVE_END}, {LOAD, 0}, {LOADI, 0}, {JZ, SIEVE_PRIME}, {JMP, SIEVE_NEXT},
    /* SIEVE_PRIME: count++, j = i * i */
    {LOAD, 2}, {PUSH, 1}, {ADD, 0}, {STORE, 2}, {LOAD, 0}, {LOAD, 0}, {MUL, 0}, {STORE, 1},
    /* SIEVE_INNER: while j < limit: memory[j] = 1, j += i */
    {LOAD, 1}, {LOAD, 3}, {LT, 0}, {JZ, SIEVE_NEXT}, {PUSH, 1}, {LOAD, 1}, {STOREI, 0},
    {LOAD, 1}, {LOAD, 0}, {ADD, 0}, {STORE, 1}, {JMP, SIEVE_INNER},
    /* SIEVE_NEXT: i++ */
    {LOAD, 0}, {PUSH, 1}, {ADD, 0}, {STORE, 0}, {JMP, SIEVE_LOOP},
    /* SIEVE_END */
    {LOAD, 2}, {HALT, 0}};

/* vars: 0 = a, 1 = b, 2 = n, 3 = modulus. Returns Fibonacci(n) mod modulus. */
enum { FIB_LOOP = 4, FIB_END = 19 };
static const struct instruction fibonacci_program[] = {
    {PUSH, 0}, {STORE, 0}, {PUSH, 1}, {STORE, 1},
    /* FIB_LOOP: while n != 0: (a, b) = (b, (a + b) % modulus); n-- */
    {LOAD, 2}, {JZ, FIB_END}, {LOAD, 0}, {LOAD, 1}, {ADD, 0}, {LOAD, 3}, {MOD, 0}, {LOAD, 1}, {STORE, 0}, {STORE, 1},
    {LOAD, 2}, {PUSH, 1}, {SUB, 0}, {STORE, 2}, {JMP, FIB_LOOP},
    /* FIB_END */
    {LOAD, 0}, {HALT, 0}};

static uint64_t random_state = 88172645463325252ULL;
static uint64_t next_random(void) {
  random_state ^= random_state << 13;
  random_state ^= random_state >> 7;
  random_state ^= random_state << 17;
  return random_state;
}

static void insertion_sort(uint32_t *keys, int count) {
  for (int i = 1; i < count; i++) {
    uint32_t key = keys[i];
    int j = i - 1;
    while (j >= 0 && keys[j] > key) keys[j + 1] = keys[j], j--;
    keys[j + 1] = key;
  }
}

static void quick_sort(uint32_t *keys, int count) {
  while (count > 16) {
    uint32_t pivot = keys[count / 2];
    int i = 0, j = count - 1;
    while (i <= j) {
      while (keys[i] < pivot) i++;
      while (keys[j] > pivot) j--;
      if (i <= j) {
        uint32_t t = keys[i];
        keys[i++] = keys[j];
        keys[j--] = t;
      }
    }
    if (j + 1 < count - i) quick_sort(keys, j + 1), keys += i, count -= i;
    else quick_sort(keys + i, count - i), count = j + 1;
  }
  insertion_sort(keys, count);
}

int main(int argc, char **argv) {
  int scale = argc > 1 ? atoi(argv[1]) : 10;
  enum { LIMIT = 20000, KEYS = 20000 };
  int64_t *memory = calloc(LIMIT, sizeof *memory);
  uint32_t *keys = malloc(KEYS * sizeof *keys);
  uint64_t checksum = 0;
  for (int round = 0; round < scale * 10; round++) {
    for (int i = 0; i < LIMIT; i++) memory[i] = 0;
    int64_t vars[4] = {0, 0, 0, LIMIT - round};
    checksum = checksum * 31 + (uint64_t)execute(sieve_program, vars, memory);
    int64_t fib_vars[4] = {0, 0, 30000 + round, 1000000007};
    checksum = checksum * 31 + (uint64_t)execute(fibonacci_program, fib_vars, memory);
    for (int i = 0; i < KEYS; i++) keys[i] = (uint32_t)next_random();
    quick_sort(keys, KEYS);
    for (int i = 1; i < KEYS; i++)
      if (keys[i - 1] > keys[i]) checksum++;
    checksum = checksum * 31 + keys[KEYS / 3];
  }
  free(memory);
  free(keys);
  printf("branchy checksum %016llx\n", (unsigned long long)checksum);
  return 0;
}
