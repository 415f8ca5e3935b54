/*
 * Bit manipulation as compilers emit it: popcount/clz/ctz/ffs/parity/bswap builtins (libgcc
 * calls or bsr/bsf/bswap depending on the level), rotate idioms that become rol/ror, shifts by
 * run-time counts (masked to the operand width, so every count 0..63 is exercised), sign and zero
 * extension, and classic branch-free tricks. Each section folds its results into a checksum and
 * prints a few raw values so a mismatch points at the operation.
 */
#include <stdint.h>
#include <stdio.h>
#include "common.h"

static uint64_t rotate_left64(uint64_t value, unsigned count) {
  count &= 63;
  return (value << count) | (value >> ((64 - count) & 63));
}

static uint32_t rotate_right32(uint32_t value, unsigned count) {
  count &= 31;
  return (value >> count) | (value << ((32 - count) & 31));
}

static uint8_t rotate_left8(uint8_t value, unsigned count) {
  count &= 7;
  return (uint8_t)((value << count) | (value >> ((8 - count) & 7)));
}

static uint64_t reverse_bits64(uint64_t v) {
  v = ((v >> 1) & 0x5555555555555555ULL) | ((v & 0x5555555555555555ULL) << 1);
  v = ((v >> 2) & 0x3333333333333333ULL) | ((v & 0x3333333333333333ULL) << 2);
  v = ((v >> 4) & 0x0f0f0f0f0f0f0f0fULL) | ((v & 0x0f0f0f0f0f0f0f0fULL) << 4);
  return __builtin_bswap64(v);
}

static void counting_builtins(void) {
  static const uint64_t edges[] = {1, 2, 3, 0x80, 0x8000000000000000ULL, 0xffffffffffffffffULL, 0x00000000ffffffffULL,
                                   0x0000000100000000ULL, 0x5555555555555555ULL};
  for (unsigned i = 0; i < sizeof edges / sizeof edges[0]; i++) {
    uint64_t v = edges[i];
    printf("bits %016llx: pop %d clz %d ctz %d parity %d ffs %d clz32 %d ctz32 %d clrsb %d\n", (unsigned long long)v,
           __builtin_popcountll(v), __builtin_clzll(v), __builtin_ctzll(v), __builtin_parityll(v), __builtin_ffsll((long long)v),
           (uint32_t)v ? __builtin_clz((uint32_t)v) : -1, (uint32_t)v ? __builtin_ctz((uint32_t)v) : -1,
           __builtin_clrsbll((long long)v));
  }
  uint64_t sum = 0;
  seed_random(7);
  for (int i = 0; i < 4000; i++) {
    uint64_t v = next_random() >> (i & 63);
    sum = sum * 31 + (uint64_t)__builtin_popcountll(v);
    if (v) sum = sum * 31 + (uint64_t)(__builtin_clzll(v) * 64 + __builtin_ctzll(v));
    sum ^= __builtin_bswap64(v) + __builtin_bswap32((uint32_t)v) + __builtin_bswap16((uint16_t)v);
    sum += (uint64_t)__builtin_parity((unsigned)v) + (uint64_t)__builtin_popcount((uint16_t)(v >> 3));
  }
  printf("counting checksum %016llx\n", (unsigned long long)sum);
}

static void rotates_and_shifts(void) {
  uint64_t sum = 0;
  seed_random(99);
  for (unsigned count = 0; count < 200; count++) {
    uint64_t v = next_random();
    int64_t signed_v = (int64_t)v;
    volatile unsigned variable = count; /* keep the count a run-time value */
    unsigned c = variable;
    sum = sum * 3 + rotate_left64(v, c);
    sum = sum * 3 + rotate_right32((uint32_t)v, c);
    sum = sum * 3 + rotate_left8((uint8_t)v, c);
    sum = sum * 3 + (v << (c & 63)) + (v >> (c & 63)) + (uint64_t)(signed_v >> (c & 63));
    sum = sum * 3 + ((uint32_t)v << (c & 31)) + ((uint32_t)v >> (c & 31)) + (uint32_t)((int32_t)v >> (c & 31));
    sum = sum * 3 + (uint16_t)((uint16_t)v << (c & 15)) + (uint64_t)(int64_t)(int16_t)((int16_t)v >> (c & 15));
    if (count < 8) {
      printf("rot %2u %016llx: rol64 %016llx ror32 %08x rol8 %02x sar %016llx\n", c, (unsigned long long)v,
             (unsigned long long)rotate_left64(v, c), rotate_right32((uint32_t)v, c), rotate_left8((uint8_t)v, c),
             (unsigned long long)(signed_v >> c));
    }
  }
  printf("shift checksum %016llx\n", (unsigned long long)sum);
}

static void extensions_and_tricks(void) {
  uint64_t sum = 0;
  seed_random(1234);
  for (int i = 0; i < 3000; i++) {
    uint64_t v = next_random();
    int8_t b = (int8_t)v;
    int16_t w = (int16_t)(v >> 8);
    int32_t d = (int32_t)(v >> 16);
    sum += (uint64_t)(int64_t)b + (uint64_t)(int64_t)w + (uint64_t)(int64_t)d;
    sum ^= (uint64_t)(uint8_t)b << 7 | (uint64_t)(uint16_t)w << 21 | (uint64_t)(uint32_t)d << 29;
    uint64_t lowest = v & -v;              /* isolate lowest set bit */
    uint64_t cleared = v & (v - 1);        /* clear it */
    int64_t absolute = ((int64_t)v ^ ((int64_t)v >> 63)) - ((int64_t)v >> 63);
    int64_t other = (int64_t)next_random();
    int64_t minimum = other ^ (((int64_t)v ^ other) & -(int64_t)((int64_t)v < other));
    sum = sum * 1099511628211ULL + lowest + cleared + (uint64_t)absolute + (uint64_t)minimum + reverse_bits64(v);
    sum += (v > (uint64_t)other) + ((int64_t)v > other) * 2 + ((uint32_t)v >= (uint32_t)other) * 4;
  }
  printf("extension checksum %016llx\n", (unsigned long long)sum);
  printf("reverse %016llx %016llx\n", (unsigned long long)reverse_bits64(1), (unsigned long long)reverse_bits64(0x0123456789abcdefULL));
}

int main(void) {
  counting_builtins();
  rotates_and_shifts();
  extensions_and_tricks();
  return 0;
}
