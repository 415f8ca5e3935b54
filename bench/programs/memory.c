/*
 * Benchmark: memory-bound work. A pointer chase through a random cyclic permutation of a 16 MiB
 * array (every load misses the cache and depends on the previous one), a streaming sum and
 * strided update over the same array, and an open-addressing hash table of 2^20 slots filled and
 * probed with pseudo-random keys. argv[1] scales the work (default 10, about 0.4 s natively); the
 * last line is a checksum.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

static uint64_t random_state = 0x9e3779b97f4a7c15ULL;
static uint64_t next_random(void) {
  uint64_t z = (random_state += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

struct slot {
  uint64_t key;
  uint64_t value;
};

int main(int argc, char **argv) {
  int scale = argc > 1 ? atoi(argv[1]) : 10;
  enum { WORDS = 1 << 21, TABLE_BITS = 20 };
  uint32_t *next = malloc(WORDS * sizeof *next);
  /* Sattolo's algorithm: a single cycle through every element */
  for (uint32_t i = 0; i < WORDS; i++) next[i] = i;
  for (uint32_t i = WORDS - 1; i > 0; i--) {
    uint32_t j = (uint32_t)(next_random() % i);
    uint32_t t = next[i];
    next[i] = next[j];
    next[j] = t;
  }
  uint64_t checksum = 0;
  uint32_t position = 0;
  for (long step = 0; step < (long)scale * 600000; step++) position = next[position];
  checksum = position;
  for (int pass = 0; pass < scale; pass++) {
    uint64_t sum = 0;
    for (uint32_t i = 0; i < WORDS; i++) sum += next[i] ^ i;
    for (uint32_t i = (uint32_t)pass; i < WORDS; i += 16) next[i] = (next[i] + 1) & (WORDS - 1);
    checksum = checksum * 31 + sum;
  }
  struct slot *table = calloc((size_t)1 << TABLE_BITS, sizeof *table);
  const uint64_t mask = ((uint64_t)1 << TABLE_BITS) - 1;
  long inserted = 0, found = 0, probes = 0;
  for (int round = 0; round < scale; round++) {
    random_state = 12345 + (uint64_t)(round % 3);
    for (int i = 0; i < 50000; i++) {
      uint64_t key = next_random() | 1;
      uint64_t h = (key * 0x9e3779b97f4a7c15ULL) >> (64 - TABLE_BITS);
      while (table[h].key && table[h].key != key) h = (h + 1) & mask, probes++;
      if (!table[h].key) table[h].key = key, inserted++;
      table[h].value += (uint64_t)i;
    }
    random_state = 12345 + (uint64_t)((round + 1) % 3); /* half the probes hit keys inserted earlier */
    for (int i = 0; i < 100000; i++) {
      uint64_t key = next_random() | 1;
      uint64_t h = (key * 0x9e3779b97f4a7c15ULL) >> (64 - TABLE_BITS);
      while (table[h].key && table[h].key != key) h = (h + 1) & mask, probes++;
      if (table[h].key == key) found++, checksum += table[h].value;
    }
  }
  printf("memory checksum %016llx (inserted %ld, found %ld, probes %ld)\n", (unsigned long long)checksum, inserted, found, probes);
  free(next);
  free(table);
  return 0;
}
