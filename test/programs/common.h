/*
 * Shared by the whole-program test guests (the C files beside it): a fixed pseudo-random sequence
 * and a checksum, so every program derives its inputs and summarises its results the same way.
 * Output must be identical natively and under svmjit, so nothing here reads time, addresses or
 * the environment; everything is a pure function of the seed.
 */
#ifndef PROGTEST_COMMON_H
#define PROGTEST_COMMON_H

#include <stddef.h>
#include <stdint.h>

/* 64-bit LCG (Knuth's MMIX constants); the high half is the better-distributed part. */
static uint64_t progtest_state = 0x853c49e6748fea9bULL;

static inline void seed_random(uint64_t seed) { progtest_state = seed; }

static inline uint64_t next_random(void) {
  progtest_state = progtest_state * 6364136223846793005ULL + 1442695040888963407ULL;
  return progtest_state ^ (progtest_state >> 29);
}

/* FNV-1a over bytes: order-sensitive, cheap, and the same on every libc. */
static inline uint64_t checksum_bytes(uint64_t hash, const void *data, size_t len) {
  const unsigned char *p = (const unsigned char *)data;
  if (hash == 0) hash = 0xcbf29ce484222325ULL;
  for (size_t i = 0; i < len; i++) hash = (hash ^ p[i]) * 0x100000001b3ULL;
  return hash;
}

#endif
