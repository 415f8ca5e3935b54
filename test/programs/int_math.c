/*
 * Integer arithmetic the compilers lower in very different ways: 128-bit multiply and divide
 * (inline mul/imul pairs, libgcc's __divti3/__udivti3/__modti3), overflow builtins (which read
 * OF/CF directly), signed division and remainder at the edges, and widening multiplies.
 * Values come from a fixed sequence plus hand-picked edge cases; results print as hex/decimal.
 */
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include "common.h"

typedef unsigned __int128 u128;
typedef __int128 s128;

/* printf has no 128-bit conversion; divide down by 10^19 so each step fits a uint64_t. */
static void print_u128(const char *label, u128 v) {
  const uint64_t chunk = 10000000000000000000ULL;
  uint64_t parts[3];
  int n = 0;
  do {
    parts[n++] = (uint64_t)(v % chunk);
    v /= chunk;
  } while (v != 0);
  printf("%s ", label);
  printf("%llu", (unsigned long long)parts[n - 1]);
  for (int i = n - 2; i >= 0; i--) printf("%019llu", (unsigned long long)parts[i]);
  printf("\n");
}

static void print_s128(const char *label, s128 v) {
  if (v < 0) {
    char neg[64];
    snprintf(neg, sizeof neg, "%s -", label);
    print_u128(neg, -(u128)v);
  } else {
    print_u128(label, (u128)v);
  }
}

static void wide_math(void) {
  static const uint64_t edges[] = {0, 1, 2, 3, 7, 10, 0xffffffffULL, 0x100000000ULL, 0x7fffffffffffffffULL,
                                   0x8000000000000000ULL, 0xffffffffffffffffULL, 0xdeadbeefcafebabeULL};
  const int count = sizeof edges / sizeof edges[0];
  for (int i = 0; i < count; i++) {
    for (int j = 0; j < count; j += 3) {
      u128 product = (u128)edges[i] * edges[j];
      printf("mul %llx * %llx = %016llx%016llx\n", (unsigned long long)edges[i], (unsigned long long)edges[j],
             (unsigned long long)(product >> 64), (unsigned long long)product);
    }
  }
  volatile u128 big = ((u128)0x0123456789abcdefULL << 64) | 0xfedcba9876543210ULL;
  for (int j = 1; j < count; j++) {
    u128 divisor = edges[j];
    print_u128("udiv", big / divisor);
    print_u128("umod", big % divisor);
  }
  volatile s128 negative = -(s128)big / 3;
  print_s128("sneg", negative);
  print_s128("sdiv", negative / (s128)-7);
  print_s128("smod", negative % (s128)-7);
  print_s128("smod2", negative % (s128)1000000007);
  u128 huge_divisor = ((u128)3 << 64) | 5;
  print_u128("udiv128", (u128)big * 1000 / huge_divisor);
  print_u128("umod128", (u128)big * 1000 % huge_divisor);
  u128 factorial = 1;
  for (int k = 1; k <= 34; k++) factorial *= (u128)k;
  print_u128("34!", factorial);
}

static void overflow_builtins(void) {
  static const int ints[] = {0, 1, -1, INT_MAX, INT_MIN, 46341, -46341, 65536, 123456789};
  const int count = sizeof ints / sizeof ints[0];
  for (int i = 0; i < count; i++) {
    for (int j = 0; j < count; j++) {
      int sum, difference, product;
      int add_over = __builtin_add_overflow(ints[i], ints[j], &sum);
      int sub_over = __builtin_sub_overflow(ints[i], ints[j], &difference);
      int mul_over = __builtin_mul_overflow(ints[i], ints[j], &product);
      printf("ovf32 %d %d: %d/%d %d/%d %d/%d\n", ints[i], ints[j], add_over, sum, sub_over, difference, mul_over, product);
    }
  }
  static const long longs[] = {0, -1, LONG_MAX, LONG_MIN, 3037000500L, -3037000500L, 4294967296L};
  const int lcount = sizeof longs / sizeof longs[0];
  for (int i = 0; i < lcount; i++) {
    for (int j = 0; j < lcount; j++) {
      long product;
      unsigned long uproduct, usum;
      int mul_over = __builtin_mul_overflow(longs[i], longs[j], &product);
      int umul_over = __builtin_mul_overflow((unsigned long)longs[i], (unsigned long)longs[j], &uproduct);
      int uadd_over = __builtin_add_overflow((unsigned long)longs[i], (unsigned long)longs[j], &usum);
      printf("ovf64 %ld %ld: %d/%ld %d/%lu %d/%lu\n", longs[i], longs[j], mul_over, product, umul_over, uproduct,
             uadd_over, usum);
    }
  }
}

static void division_edges(void) {
  static const long dividends[] = {7, -7, 0, LONG_MIN + 1, LONG_MAX, -1, 1000000007};
  static const long divisors[] = {1, -1, 2, -2, 3, -3, 10, 1000000007, LONG_MAX};
  for (unsigned i = 0; i < sizeof dividends / sizeof dividends[0]; i++) {
    for (unsigned j = 0; j < sizeof divisors / sizeof divisors[0]; j++) {
      volatile long a = dividends[i], b = divisors[j];
      volatile int a32 = (int)a, b32 = (int)b ? (int)b : 1;
      printf("div %ld %ld: %ld %ld | %d %d | %lu\n", a, b, a / b, a % b, a32 / b32, a32 % b32,
             (unsigned long)a / (unsigned long)b);
    }
  }
}

static uint64_t modular_power(uint64_t base, uint64_t exponent, uint64_t modulus) {
  uint64_t result = 1 % modulus;
  base %= modulus;
  while (exponent) {
    if (exponent & 1) result = (uint64_t)((u128)result * base % modulus);
    base = (uint64_t)((u128)base * base % modulus);
    exponent >>= 1;
  }
  return result;
}

static void number_theory(void) {
  const uint64_t prime = 0xffffffffffffffc5ULL; /* largest 64-bit prime */
  seed_random(42);
  for (int i = 0; i < 8; i++) {
    uint64_t base = next_random();
    printf("fermat %016llx -> %llu\n", (unsigned long long)base,
           (unsigned long long)modular_power(base, prime - 1, prime));
  }
  uint64_t longest = 0, longest_start = 0;
  for (uint64_t start = 1; start < 3000; start++) {
    uint64_t steps = 0;
    for (uint64_t n = start; n != 1; steps++) n = (n & 1) ? 3 * n + 1 : n / 2;
    if (steps > longest) longest = steps, longest_start = start;
  }
  printf("collatz longest below 3000: %llu (%llu steps)\n", (unsigned long long)longest_start,
         (unsigned long long)longest);
  int64_t mixed = 0;
  for (int i = 0; i < 2000; i++) {
    int64_t r = (int64_t)next_random();
    int32_t small = (int32_t)(r >> 40) | 1;
    mixed += (r / small) ^ (r % small) ^ ((int64_t)(int16_t)r * (int8_t)(r >> 8));
    mixed = (mixed << 3) | ((uint64_t)mixed >> 61);
  }
  printf("mixed %lld\n", (long long)mixed);
}

int main(void) {
  wide_math();
  overflow_builtins();
  division_edges();
  number_theory();
  return 0;
}
