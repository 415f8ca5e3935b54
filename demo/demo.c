/*
 * The demo guest that `npm start` runs through svmjit: a few seconds of honest work whose
 * output is easy to eyeball. A prime sieve (integer loops and memory), a Mandelbrot set drawn in
 * ASCII (SSE2 double arithmetic and tight branches), a Collatz record search (64-bit division-free
 * integer work) and a checksum over all of it. Results print as integers and characters, so the
 * demo exercises floating point without depending on how libc formats it.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t checksum = 0xcbf29ce484222325ULL;

static void mix(uint64_t value) {
  for (int i = 0; i < 8; i++) checksum = (checksum ^ ((value >> (8 * i)) & 0xff)) * 0x100000001b3ULL;
}

static void sieve(unsigned limit) {
  unsigned char *composite = calloc(limit + 1, 1);
  unsigned count = 0, largest = 0, twin_pairs = 0, previous = 0;
  for (unsigned n = 2; n <= limit; n++) {
    if (composite[n]) continue;
    count++;
    largest = n;
    if (n - previous == 2) twin_pairs++;
    previous = n;
    for (uint64_t multiple = (uint64_t)n * n; multiple <= limit; multiple += n) composite[multiple] = 1;
  }
  free(composite);
  printf("primes below %u: %u (largest %u, %u twin pairs)\n", limit, count, largest, twin_pairs);
  mix(count);
  mix(largest);
}

static void mandelbrot(int width, int height, int max_iterations) {
  static const char shades[] = " .:-=+*#%";
  char row[128];
  long total_iterations = 0;
  for (int y = 0; y < height; y++) {
    double ci = -1.2 + 2.4 * y / (height - 1);
    for (int x = 0; x < width; x++) {
      double cr = -2.2 + 3.0 * x / (width - 1);
      double zr = 0, zi = 0;
      int i = 0;
      while (i < max_iterations && zr * zr + zi * zi <= 4.0) {
        double next = zr * zr - zi * zi + cr;
        zi = 2 * zr * zi + ci;
        zr = next;
        i++;
      }
      total_iterations += i;
      /* escape time grows roughly exponentially towards the set, so shade by its logarithm */
      int band = 31 - __builtin_clz((unsigned)i | 1);
      row[x] = i == max_iterations ? '@' : shades[band < 8 ? band : 8];
    }
    row[width] = '\0';
    printf("  %s\n", row);
  }
  printf("mandelbrot: %ld iterations\n", total_iterations);
  mix((uint64_t)total_iterations);
}

static void collatz(unsigned limit) {
  uint64_t best_start = 1, best_steps = 0, highest = 0;
  for (uint64_t start = 1; start < limit; start++) {
    uint64_t steps = 0;
    for (uint64_t n = start; n != 1; steps++) {
      n = (n & 1) ? 3 * n + 1 : n >> 1;
      if (n > highest) highest = n;
    }
    if (steps > best_steps) best_steps = steps, best_start = start;
  }
  printf("collatz below %u: %llu takes %llu steps; highest value reached %llu\n", limit, (unsigned long long)best_start,
         (unsigned long long)best_steps, (unsigned long long)highest);
  mix(best_start);
  mix(highest);
}

int main(void) {
  printf("svmjit demo: a static x86-64 Linux program, running inside JavaScript\n\n");
  sieve(1000000);
  printf("\n");
  mandelbrot(72, 25, 400);
  printf("\n");
  collatz(20000);
  printf("\nchecksum %016llx\n", (unsigned long long)checksum);
  return 0;
}
