/*
 * Benchmark: integer work in the spirit of CoreMark: linked-list search, reversal and merge sort;
 * a 16-bit matrix multiply with 32-bit accumulators; a character state machine that classifies
 * numbers; and a CRC-16 over every intermediate result. Mostly register arithmetic, short loops
 * and pointer chasing inside the cache. argv[1] scales the work (default 10, about 0.35 s natively);
 * the last line is a checksum the benchmark runner compares with the native run.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

struct node {
  struct node *next;
  int16_t value;
  int16_t index;
};

static uint16_t crc16(uint16_t crc, uint32_t data) {
  for (int bit = 0; bit < 32; bit++) {
    int mix = (crc ^ data) & 1;
    crc >>= 1;
    data >>= 1;
    if (mix) crc ^= 0xa001;
  }
  return crc;
}

static struct node *reverse(struct node *list) {
  struct node *previous = NULL;
  while (list) {
    struct node *next = list->next;
    list->next = previous;
    previous = list;
    list = next;
  }
  return previous;
}

static struct node *merge_sort(struct node *list, int by_value) {
  /* bottom-up merge sort, as CoreMark does, so no recursion */
  for (int width = 1;; width *= 2) {
    struct node *p = list, *tail = NULL;
    list = NULL;
    int merges = 0;
    while (p) {
      merges++;
      struct node *q = p;
      int psize = 0, qsize = width;
      for (int i = 0; i < width && q; i++) psize++, q = q->next;
      while (psize > 0 || (qsize > 0 && q)) {
        struct node *e;
        if (psize == 0) e = q, q = q->next, qsize--;
        else if (qsize == 0 || !q) e = p, p = p->next, psize--;
        else if ((by_value ? p->value - q->value : p->index - q->index) <= 0) e = p, p = p->next, psize--;
        else e = q, q = q->next, qsize--;
        if (tail) tail->next = e;
        else list = e;
        tail = e;
      }
      p = q;
    }
    tail->next = NULL;
    if (merges <= 1) return list;
  }
}

static uint16_t list_work(struct node *nodes, int count, uint16_t crc, int round) {
  struct node *list = NULL;
  for (int i = count - 1; i >= 0; i--) {
    nodes[i].value = (int16_t)((i * 7919 + round * 31) & 0x3fff);
    nodes[i].index = (int16_t)i;
    nodes[i].next = list;
    list = &nodes[i];
  }
  for (int k = 0; k < 8; k++) {
    int16_t wanted = (int16_t)((k * 1013 + round) & 0x3fff);
    int position = 0;
    struct node *p = list;
    while (p && p->value != wanted) p = p->next, position++;
    crc = crc16(crc, p ? (uint32_t)position : 0xffffu);
    list = reverse(list);
  }
  list = merge_sort(list, 1);
  crc = crc16(crc, (uint32_t)(uint16_t)list->value);
  list = merge_sort(list, 0);
  crc = crc16(crc, (uint32_t)(uint16_t)list->next->index);
  return crc;
}

static uint16_t matrix_work(int n, uint16_t crc, int round) {
  static int16_t a[64 * 64], b[64 * 64];
  static int32_t c[64 * 64];
  for (int i = 0; i < n * n; i++) {
    a[i] = (int16_t)((i * 13 + round) % 255 - 127);
    b[i] = (int16_t)((i * 7 + 3 * round) % 199 - 99);
  }
  for (int i = 0; i < n; i++)
    for (int j = 0; j < n; j++) {
      int32_t sum = 0;
      for (int k = 0; k < n; k++) sum += a[i * n + k] * b[k * n + j];
      c[i * n + j] = sum;
    }
  int32_t bits = 0;
  for (int i = 0; i < n * n; i++) bits += (c[i] >> 2) & 0xf;
  return crc16(crc, (uint32_t)bits);
}

enum state { START, INTEGER, FRACTION, EXPONENT_SIGN, EXPONENT, INVALID };

static uint16_t state_machine_work(const char *text, uint16_t crc) {
  int counts[6] = {0};
  const char *p = text;
  while (*p) {
    enum state s = START;
    while (*p && *p != ',') {
      char ch = *p++;
      switch (s) {
      case START: s = (ch >= '0' && ch <= '9') || ch == '-' ? INTEGER : ch == '.' ? FRACTION : INVALID; break;
      case INTEGER: s = ch >= '0' && ch <= '9' ? INTEGER : ch == '.' ? FRACTION : ch == 'e' ? EXPONENT_SIGN : INVALID; break;
      case FRACTION: s = ch >= '0' && ch <= '9' ? FRACTION : ch == 'e' ? EXPONENT_SIGN : INVALID; break;
      case EXPONENT_SIGN: s = ch == '-' || ch == '+' || (ch >= '0' && ch <= '9') ? EXPONENT : INVALID; break;
      case EXPONENT: s = ch >= '0' && ch <= '9' ? EXPONENT : INVALID; break;
      case INVALID: break;
      }
    }
    counts[s]++;
    if (*p) p++;
  }
  for (int i = 0; i < 6; i++) crc = crc16(crc, (uint32_t)counts[i]);
  return crc;
}

int main(int argc, char **argv) {
  int scale = argc > 1 ? atoi(argv[1]) : 10;
  enum { NODES = 600 };
  struct node *nodes = malloc(NODES * sizeof *nodes);
  static char text[8192];
  int length = 0;
  static const char *samples[] = {"123", "-7.25", "1e10", "3.5e-2", "x9", "0.", "42e", "-0", "7..1", "5e+3"};
  while (length < (int)sizeof text - 16) length += snprintf(text + length, sizeof text - (size_t)length, "%s,", samples[(length * 7) % 10]);
  uint16_t crc = 0;
  for (int round = 0; round < scale * 500; round++) {
    crc = list_work(nodes, NODES, crc, round);
    crc = matrix_work(40, crc, round);
    crc = state_machine_work(text, crc);
  }
  free(nodes);
  printf("integer checksum %04x\n", crc);
  return 0;
}
