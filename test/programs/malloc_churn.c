/*
 * The allocator under churn: thousands of malloc/realloc/free calls with sizes from a few bytes
 * to tens of KiB, plus blocks over 1 MiB (both glibc and musl satisfy those with mmap, and grow
 * them with mremap or copy), calloc zeroing, and contents verified after every move. Only
 * checksums and counts are printed, never addresses, since addresses legitimately differ.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "common.h"

#define SLOTS 256

struct slot {
  unsigned char *data;
  size_t size;
  unsigned char fill;
};

/* Sampled: checking every byte would make the run too long under the reference interpreter. */
static int verify(const struct slot *s) {
  for (size_t i = 0; i < s->size; i += 1 + i / 16)
    if (s->data[i] != s->fill) return 0;
  return s->data[s->size - 1] == s->fill;
}

static void fill(struct slot *s, size_t from) {
  memset(s->data + from, s->fill, s->size - from);
}

static void small_churn(void) {
  static struct slot slots[SLOTS];
  unsigned long operations = 0, failures = 0;
  uint64_t hash = 0;
  seed_random(77);
  for (int step = 0; step < 4000; step++) {
    uint64_t r = next_random();
    struct slot *s = &slots[r % SLOTS];
    size_t size = (r >> 8) % ((r >> 40) % 4 == 0 ? 20000 : 300) + 1;
    if (!s->data) {
      s->data = (r >> 20) & 1 ? malloc(size) : calloc(size, 1);
      if (!((r >> 20) & 1))
        for (size_t i = 0; i < size; i += 1 + i / 16) failures += s->data[i] != 0;
      s->size = size;
      s->fill = (unsigned char)(r >> 32);
      fill(s, 0);
    } else if ((r >> 24) % 3 == 0) {
      failures += !verify(s);
      size_t kept = s->size < size ? s->size : size;
      s->data = realloc(s->data, size);
      s->size = kept;
      failures += kept && !verify(s);
      s->size = size;
      fill(s, kept);
    } else {
      failures += !verify(s);
      hash = checksum_bytes(hash, s->data, s->size < 64 ? s->size : 64);
      free(s->data);
      s->data = NULL;
    }
    operations++;
  }
  size_t live = 0, live_bytes = 0;
  for (int i = 0; i < SLOTS; i++) {
    if (!slots[i].data) continue;
    failures += !verify(&slots[i]);
    live++;
    live_bytes += slots[i].size;
    free(slots[i].data);
  }
  printf("small churn: %lu operations, %lu failures, %zu live blocks (%zu bytes) at the end, hash %016llx\n", operations, failures,
         live, live_bytes, (unsigned long long)hash);
}

static void large_blocks(void) {
  const size_t mib = 1024 * 1024;
  unsigned char *a = malloc(2 * mib + 123);
  unsigned char *b = calloc(3 * mib, 1);
  if (!a || !b) {
    printf("large allocation failed\n");
    return;
  }
  for (size_t i = 0; i < 2 * mib + 123; i += 4096) memset(a + i, (int)(i >> 12), 4096 < 2 * mib + 123 - i ? 4096 : 2 * mib + 123 - i);
  size_t nonzero = 0;
  for (size_t i = 0; i < 3 * mib; i += 512) nonzero += b[i] != 0;
  uint64_t before = checksum_bytes(0, a, 4096) ^ checksum_bytes(0, a + 2 * mib - 4096, 4096 + 123);
  a = realloc(a, 5 * mib); /* grows an mmap'd block: mremap on glibc, copy or remap on musl */
  uint64_t after = checksum_bytes(0, a, 4096) ^ checksum_bytes(0, a + 2 * mib - 4096, 4096 + 123);
  memset(a + 2 * mib + 123, 0x5a, 3 * mib - 123);
  a = realloc(a, 1500 * 1024); /* shrink, still over 1 MiB */
  uint64_t shrunk = checksum_bytes(0, a + 1500 * 1024 - 8192, 8192);
  printf("large: calloc nonzero %zu, contents kept over grow %d, shrink checksum %016llx\n", nonzero, before == after,
         (unsigned long long)shrunk);
  free(a);
  free(b);
  unsigned char *blocks[6];
  uint64_t hash = 0;
  for (int round = 0; round < 3; round++) {
    for (int i = 0; i < 6; i++) {
      blocks[i] = malloc((size_t)(i + 1) * mib + (size_t)round * 4096);
      blocks[i][0] = (unsigned char)i;
      blocks[i][(size_t)(i + 1) * mib - 1] = (unsigned char)(round * 16 + i);
    }
    for (int i = 5; i >= 0; i--) {
      hash = hash * 31 + blocks[i][0] + blocks[i][(size_t)(i + 1) * mib - 1];
      free(blocks[i]);
    }
  }
  printf("large rounds hash %llu\n", (unsigned long long)hash);
}

int main(void) {
  small_churn();
  large_blocks();
  return 0;
}
