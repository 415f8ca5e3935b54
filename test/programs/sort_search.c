/*
 * qsort and bsearch over arrays of structs: callbacks through function pointers into the
 * program from libc, comparisons on ints, strings and doubles, and element sizes that are not
 * a power of two (so libc's generic swap paths run). Printed: a checksum of each sorted order,
 * a few elements, and the outcome of lookups for present and absent keys.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "common.h"

struct record {
  int key;
  char name[13]; /* odd size on purpose: sizeof(struct record) is 32 with the double, 24 without */
  double score;
};

struct packed_pair {
  short group;
  char tag[5];
};

#define RECORD_COUNT 700

static struct record records[RECORD_COUNT];

static int by_key(const void *a, const void *b) {
  const struct record *x = a, *y = b;
  return (x->key > y->key) - (x->key < y->key);
}

static int by_name_then_key(const void *a, const void *b) {
  const struct record *x = a, *y = b;
  int order = strcmp(x->name, y->name);
  return order ? order : by_key(a, b);
}

static int by_score_descending(const void *a, const void *b) {
  const struct record *x = a, *y = b;
  return (x->score < y->score) - (x->score > y->score);
}

static int by_group_then_tag(const void *a, const void *b) {
  const struct packed_pair *x = a, *y = b;
  if (x->group != y->group) return x->group - y->group;
  return memcmp(x->tag, y->tag, sizeof x->tag);
}

static uint64_t order_checksum(void) {
  uint64_t hash = 0;
  for (int i = 0; i < RECORD_COUNT; i++) {
    hash = checksum_bytes(hash, &records[i].key, sizeof records[i].key);
    hash = checksum_bytes(hash, records[i].name, strlen(records[i].name));
  }
  return hash;
}

static void show(const char *label) {
  printf("%s: %016llx first {%d %s %.3f} middle {%d %s %.3f} last {%d %s %.3f}\n", label, (unsigned long long)order_checksum(),
         records[0].key, records[0].name, records[0].score, records[RECORD_COUNT / 2].key, records[RECORD_COUNT / 2].name,
         records[RECORD_COUNT / 2].score, records[RECORD_COUNT - 1].key, records[RECORD_COUNT - 1].name,
         records[RECORD_COUNT - 1].score);
}

int main(void) {
  static const char *syllables[] = {"ka", "lo", "mi", "nu", "ra", "se", "ti", "vo"};
  seed_random(2024);
  for (int i = 0; i < RECORD_COUNT; i++) {
    uint64_t r = next_random();
    records[i].key = (int)(r % 1000) - 300; /* duplicates and negatives */
    records[i].name[0] = '\0';
    for (int s = 0; s < 1 + (int)(r >> 60) % 5; s++) strcat(records[i].name, syllables[(r >> (10 + 3 * s)) & 7]);
    records[i].score = (double)(int64_t)(r >> 20) / 1e9;
  }
  qsort(records, RECORD_COUNT, sizeof records[0], by_name_then_key);
  show("by name");
  qsort(records, RECORD_COUNT, sizeof records[0], by_score_descending);
  show("by score");
  qsort(records, RECORD_COUNT, sizeof records[0], by_key);
  int sorted = 1;
  for (int i = 1; i < RECORD_COUNT; i++) sorted &= records[i - 1].key <= records[i].key;
  printf("by key sorted %d first %d last %d\n", sorted, records[0].key, records[RECORD_COUNT - 1].key);
  int found = 0, missing = 0;
  for (int probe = -310; probe < 710; probe += 7) {
    struct record wanted = {.key = probe};
    struct record *hit = bsearch(&wanted, records, RECORD_COUNT, sizeof records[0], by_key);
    if (hit) {
      found++;
      if (hit->key != probe) printf("bsearch returned the wrong record for %d\n", probe);
    } else {
      missing++;
    }
  }
  printf("bsearch found %d missing %d\n", found, missing);

  struct packed_pair pairs[301];
  for (int i = 0; i < 301; i++) {
    uint64_t r = next_random();
    pairs[i].group = (short)(r % 17) - 8;
    for (int c = 0; c < 5; c++) pairs[i].tag[c] = (char)('a' + (r >> (8 + 5 * c)) % 26);
  }
  qsort(pairs, 301, sizeof pairs[0], by_group_then_tag);
  uint64_t hash = checksum_bytes(0, pairs, sizeof pairs);
  printf("pairs (%zu bytes each) %016llx first %d %.5s last %d %.5s\n", sizeof pairs[0], (unsigned long long)hash, pairs[0].group,
         pairs[0].tag, pairs[300].group, pairs[300].tag);
  struct packed_pair key = pairs[150];
  struct packed_pair *hit = bsearch(&key, pairs, 301, sizeof pairs[0], by_group_then_tag);
  printf("pair lookup %s\n", hit && by_group_then_tag(hit, &key) == 0 ? "ok" : "failed");
  return 0;
}
