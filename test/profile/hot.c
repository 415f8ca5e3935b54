/* A guest with a known profile: hot_spin does about 90% of the work, warm_up about 10%. */
#include <stdio.h>

__attribute__((noinline)) unsigned long hot_spin(unsigned long n) {
  unsigned long x = 1;
  for (unsigned long i = 0; i < n; i++) x = x * 6364136223846793005UL + (i ^ (x >> 29));
  return x;
}

__attribute__((noinline)) unsigned long warm_up(unsigned long n) {
  unsigned long x = 7;
  for (unsigned long i = 0; i < n; i++) x += (x << 3) ^ i;
  return x;
}

int main(void) {
  unsigned long r = warm_up(3000000);
  r ^= hot_spin(30000000);
  printf("%lx\n", r);
  return 0;
}
