/*
 * The string and formatting half of libc. glibc picks SSE2/AVX2 string routines by CPUID and
 * musl uses word-at-a-time C, so lengths and alignments are swept (0..63 offsets, lengths that
 * straddle 16/32/64-byte vectors and page-sized buffers) rather than tested at one size.
 * snprintf is driven through the flag/width/precision/length combinations programs really use.
 */
#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "common.h"

static char buffer[8192 + 128];
static char other[8192 + 128];

static void sweep_lengths(void) {
  uint64_t hash = 0;
  for (int offset = 0; offset < 64; offset++) {
    for (int length = 0; length < 140; length += 1 + length / 16) {
      char *s = buffer + offset;
      memset(buffer, 'x', 300);
      s[length] = '\0';
      s[length + 1] = 'y';
      size_t measured = strlen(s);
      char *nul = memchr(s, 0, 300);
      char *found = strchr(s, 'x');
      char *last = strrchr(s, 'x');
      hash = checksum_bytes(hash, &measured, sizeof measured);
      uint64_t facts[4] = {(uint64_t)(nul - s), found ? (uint64_t)(found - s) : 999, last ? (uint64_t)(last - s) : 999,
                           (uint64_t)strnlen(s, 17)};
      hash = checksum_bytes(hash, facts, sizeof facts);
      /* same contents at a different alignment must compare equal; one changed byte must not */
      char *t = other + (offset * 7) % 61;
      memcpy(t, s, (size_t)length + 1);
      int equal = strcmp(s, t);
      if (length > 0) t[length - 1] = 'w';
      int after = strcmp(s, t), limited = length > 0 ? strncmp(s, t, (size_t)length - 1) : 0;
      int bytes = memcmp(s, t, (size_t)length);
      int signs[4] = {equal, after > 0 ? 1 : after < 0 ? -1 : 0, limited, bytes > 0 ? 1 : bytes < 0 ? -1 : 0};
      hash = checksum_bytes(hash, signs, sizeof signs);
    }
  }
  printf("length sweep %016llx\n", (unsigned long long)hash);
}

static void copies(void) {
  uint64_t hash = 0;
  seed_random(5);
  for (int round = 0; round < 100; round++) {
    for (int i = 0; i < 8192; i += 8) {
      uint64_t r = next_random();
      memcpy(buffer + i, &r, 8);
    }
    size_t length = (size_t)(next_random() % 4096);
    size_t from = (size_t)(next_random() % 2048), to = (size_t)(next_random() % 2048);
    if (round % 3 == 0) memcpy(other + to, buffer + from, length);
    else memmove(buffer + to, buffer + from, length); /* overlapping in both directions */
    hash = checksum_bytes(hash, round % 3 == 0 ? other : buffer, 6200);
    if (round % 20 == 0) {
      memset(buffer + from, round & 0xff, length);
      hash = checksum_bytes(hash, buffer, 6200);
    }
  }
  printf("copy checksum %016llx\n", (unsigned long long)hash);
}

static void searching(void) {
  const char *haystack = "the quick brown fox jumps over the lazy dog; the end of the quick story";
  const char *needles[] = {"the", "quick", "dog;", "story", "", "q", "fox jumps over", "absent", "end of the quick story!"};
  for (unsigned i = 0; i < sizeof needles / sizeof needles[0]; i++) {
    const char *hit = strstr(haystack, needles[i]);
    printf("strstr '%s' -> %ld\n", needles[i], hit ? (long)(hit - haystack) : -1L);
  }
  printf("strspn %zu strcspn %zu strpbrk %ld\n", strspn(haystack, "the qu"), strcspn(haystack, ";"),
         (long)(strpbrk(haystack, "xyz") - haystack));
  char line[] = "alpha, beta;;gamma , ,delta;epsilon";
  int index = 0;
  for (char *token = strtok(line, ",; "); token; token = strtok(NULL, ",; ")) printf("token %d '%s'\n", index++, token);
  char *copy = strdup("MiXeD Case 123");
  for (char *p = copy; *p; p++) *p = (char)(isupper((unsigned char)*p) ? tolower((unsigned char)*p) : toupper((unsigned char)*p));
  printf("swapped case '%s'\n", copy);
  free(copy);
  char joined[64] = "start";
  strcat(joined, "+middle");
  strncat(joined, "+end-and-more", 4);
  printf("joined '%s' (%zu)\n", joined, strlen(joined));
}

static void conversions(void) {
  const char *numbers[] = {"0", "-17", "+42", "0x1F", "077", "9223372036854775807", "-9223372036854775808",
                           "99999999999999999999", "  12abc", "junk"};
  for (unsigned i = 0; i < sizeof numbers / sizeof numbers[0]; i++) {
    char *end;
    long as_decimal = strtol(numbers[i], &end, 10);
    long parsed_prefix = (long)(end - numbers[i]);
    long as_auto = strtol(numbers[i], NULL, 0);
    unsigned long as_unsigned = strtoul(numbers[i], NULL, 16);
    printf("strtol '%s': %ld (%ld chars) auto %ld hex %lu atoi %d\n", numbers[i], as_decimal, parsed_prefix, as_auto,
           as_unsigned, atoi(numbers[i]));
  }
  int a = 0, b = 0;
  char word[16] = "";
  unsigned hex = 0;
  int fields = sscanf("  12 -34 word ff", "%d %d %15s %x", &a, &b, word, &hex);
  printf("sscanf %d: %d %d %s %u\n", fields, a, b, word, hex);
}

static void formatting(void) {
  char out[256];
  const int ints[] = {0, 1, -1, 42, -42, 2147483647, -2147483647 - 1};
  const char *int_formats[] = {"%d", "%5d", "%-5d|", "%05d", "%+d", "% d", "%x", "%#X", "%o", "%#o", "%.3d", "%8.3d", "%u", "%hhd", "%hd", "%c"};
  for (unsigned f = 0; f < sizeof int_formats / sizeof int_formats[0]; f++) {
    int length = 0;
    out[0] = '\0';
    for (unsigned i = 0; i < sizeof ints / sizeof ints[0]; i++) {
      int value = (f == sizeof int_formats / sizeof int_formats[0] - 1) ? 'A' + (int)i : ints[i];
      length += snprintf(out + strlen(out), sizeof out - strlen(out), int_formats[f], value);
      strcat(out, " ");
    }
    printf("fmt %-6s [%s] %d\n", int_formats[f], out, length);
  }
  snprintf(out, sizeof out, "%lld %llx %zu %zd %jd %lu %ld", -1234567890123456789LL, 0xfedcba9876543210ULL, (size_t)123,
           (ssize_t)-5, (intmax_t)77, 18446744073709551615UL, -9223372036854775807L - 1);
  printf("wide: %s\n", out);
  snprintf(out, sizeof out, "[%s] [%10s] [%-10s] [%.3s] [%10.2s] [%*d] [%-*d] [%.*s] [%%] [%p]", "str", "right", "left", "truncate",
           "ab", 6, 42, 6, 42, 4, "precision", (void *)0x1234);
  printf("strings: %s\n", out);
  char small[8];
  int wanted = snprintf(small, sizeof small, "%s-%d", "overflowing", 12345);
  printf("truncated '%s' wanted %d\n", small, wanted);
  wanted = snprintf(NULL, 0, "%d %s", 1234567, "counted");
  printf("measured %d\n", wanted);
}

int main(void) {
  sweep_lengths();
  copies();
  searching();
  conversions();
  formatting();
  return 0;
}
