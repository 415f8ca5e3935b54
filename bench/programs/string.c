/*
 * Benchmark: libc string routines, the way text-processing programs lean on them. Lines are
 * assembled with memcpy/strcpy/strcat, measured with strlen, scanned with strchr/strrchr/strstr,
 * compared with strcmp/memcmp, split at separators and moved with memmove. musl's routines are
 * word-at-a-time C and rep movs, so this is mostly tight loops over bytes and words. argv[1]
 * scales the work (default 10, about 0.4 s natively); the last line is a checksum.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *words[] = {"alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliet",
                              "kilo", "lima", "mike", "november", "oscar", "papa", "quebec", "romeo", "sierra", "tango"};

int main(int argc, char **argv) {
  int scale = argc > 1 ? atoi(argv[1]) : 10;
  enum { LINES = 512, LINE_BYTES = 256 };
  char (*lines)[LINE_BYTES] = malloc(LINES * LINE_BYTES);
  char *document = malloc(LINES * LINE_BYTES);
  uint64_t checksum = 0;
  unsigned seed = 1;
  for (int round = 0; round < scale * 150; round++) {
    size_t total = 0;
    for (int i = 0; i < LINES; i++) {
      char *line = lines[i];
      strcpy(line, words[(i + round) % 20]);
      int count = 3 + (int)((seed = seed * 1103515245u + 12345u) >> 16) % 12;
      for (int w = 0; w < count; w++) {
        size_t length = strlen(line);
        line[length] = w % 3 ? ' ' : ',';
        memcpy(line + length + 1, words[(seed >> (w % 16)) % 20], strlen(words[(seed >> (w % 16)) % 20]) + 1);
      }
      size_t length = strlen(line);
      memcpy(document + total, line, length);
      document[total + length] = '\n';
      total += length + 1;
    }
    document[total] = '\0';
    /* scanning */
    long commas = 0, spaces = 0, hits = 0;
    for (const char *p = document; (p = strchr(p, ',')) != NULL; p++) commas++;
    for (int i = 0; i < LINES; i++) {
      const char *last = strrchr(lines[i], ' ');
      if (last) spaces += last - lines[i];
      hits += strstr(lines[i], "mike") != NULL;
      hits += strstr(lines[i], "ovember,o") != NULL;
    }
    /* comparing neighbours and moving text around */
    long order = 0;
    for (int i = 1; i < LINES; i++) {
      int c = strcmp(lines[i - 1], lines[i]);
      order += c < 0 ? 1 : c > 0 ? -1 : 0;
      order += memcmp(lines[i - 1], lines[i], 8) < 0;
    }
    memmove(document + 1, document, total / 2);
    memmove(document, document + 3, total / 2);
    size_t document_length = strlen(document);
    checksum = checksum * 1000003 + (uint64_t)commas * 7 + (uint64_t)spaces * 11 + (uint64_t)hits * 13 + (uint64_t)(order + 100000) +
               document_length + (unsigned char)document[total / 3];
  }
  printf("string checksum %016llx\n", (unsigned long long)checksum);
  free(lines);
  free(document);
  return 0;
}
