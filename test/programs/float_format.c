/*
 * Floating-point formatting and parsing: printf of float/double/long double through %f %e %g %a
 * at many precisions, on values chosen for their awkward decimal expansions (0.1, 1/3, halfway
 * cases), extremes (1e300, DBL_MAX, the smallest subnormal 5e-324) and specials (nan, inf, -0.0).
 * glibc converts with multi-precision integers while musl leans on long double (x87) arithmetic,
 * so the two builds stress different instructions while printing the same digits. strtod/strtold
 * round-trip the printed text back, bit for bit.
 */
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const double doubles[] = {0.0, -0.0, 0.1, 0.5, 1.0 / 3.0, 2.5, 3.5, 1e-5, 123456.789, 1e15, 1e16, 9007199254740993.0,
                                 1e300, -1e300, DBL_MAX, DBL_MIN, 5e-324, 2.2250738585072009e-308, 1.5e-310, 0.30000000000000004,
                                 -273.15, 6.02214076e23};

static void print_doubles(void) {
  const char *formats[] = {"%f", "%.0f", "%.1f", "%.3f", "%.17f", "%e", "%.0e", "%.3e", "%.16e", "%g", "%.1g", "%.6g",
                           "%.17g", "%#g", "%a", "%.3a", "%A", "%15.4e", "%-+12.2f|", "%010.3g"};
  char out[400];
  for (unsigned v = 0; v < sizeof doubles / sizeof doubles[0]; v++) {
    printf("double %u:", v);
    for (unsigned f = 0; f < sizeof formats / sizeof formats[0]; f++) {
      /* %f of 1e300 is 301 digits: still printed, it is the interesting case */
      snprintf(out, sizeof out, formats[f], doubles[v]);
      printf(" %s", out);
    }
    printf("\n");
  }
  const double specials[] = {INFINITY, -INFINITY, NAN, -NAN};
  for (unsigned v = 0; v < 4; v++)
    printf("special: %f %e %g %a %5.2f %-6F| %E %G\n", specials[v], specials[v], specials[v], specials[v], specials[v], specials[v],
           specials[v], specials[v]);
}

static void print_floats(void) {
  const float floats[] = {0.1f, 1.0f / 3.0f, 16777217.0f, FLT_MAX, FLT_MIN, 1e-45f, -0.0f, 3.14159265f};
  for (unsigned v = 0; v < sizeof floats / sizeof floats[0]; v++)
    printf("float %u: %.9g %e %a %.10f\n", v, floats[v], floats[v], floats[v], floats[v]);
}

static void print_long_doubles(void) {
  const long double values[] = {0.1L, 1.0L / 3.0L, -2.5L, 1e4000L, 1e-4000L, LDBL_MAX, LDBL_MIN, 3.6451995318824746025e-4951L,
                                18446744073709551615.0L, 0.0L, -0.0L, 12345678901234567890.123L};
  const char *formats[] = {"%Lf", "%.3Lf", "%Le", "%.20Le", "%Lg", "%.21Lg", "%La", "%.5La"};
  char out[5100];
  for (unsigned v = 0; v < sizeof values / sizeof values[0]; v++) {
    printf("long double %u:", v);
    for (unsigned f = 0; f < sizeof formats / sizeof formats[0]; f++) {
      /* fixed notation of huge and tiny values costs millions of instructions in glibc; one case below */
      if (formats[f][strlen(formats[f]) - 1] == 'f' && (fabsl(values[v]) > 1e30L || (values[v] != 0 && fabsl(values[v]) < 1e-30L))) continue;
      snprintf(out, sizeof out, formats[f], values[v]);
      if (strlen(out) > 80) printf(" %.40s...(%zu chars)", out, strlen(out));
      else printf(" %s", out);
    }
    printf("\n");
  }
  snprintf(out, sizeof out, "%.0Lf", LDBL_MAX);
  printf("LDBL_MAX in full: %zu digits, starting %.30s, ending %s\n", strlen(out), out, out + strlen(out) - 30);
  printf("long double specials: %Lf %Le %Lg %La\n", (long double)INFINITY, -(long double)INFINITY, (long double)NAN, (long double)INFINITY);
}

static uint64_t bits_of(double d) {
  uint64_t bits;
  memcpy(&bits, &d, sizeof bits);
  return bits;
}

static void round_trips(void) {
  char text[64];
  int exact = 0;
  for (unsigned v = 0; v < sizeof doubles / sizeof doubles[0]; v++) {
    snprintf(text, sizeof text, "%.17g", doubles[v]);
    double back = strtod(text, NULL);
    exact += bits_of(back) == bits_of(doubles[v]);
  }
  printf("strtod round trips: %d of %zu\n", exact, sizeof doubles / sizeof doubles[0]);
  const char *inputs[] = {"0.1", "1e-400", "4.9406564584124654e-324", "2.4703282292062328e-324", "1.7976931348623158e308",
                          "1.7976931348623159e308", "0x1.fffffffffffffp+1023", "-0x1p-1074", "inf", "-nan", "  +3.25e+2xyz",
                          "9007199254740993", "1e23"};
  for (unsigned i = 0; i < sizeof inputs / sizeof inputs[0]; i++) {
    char *end;
    double d = strtod(inputs[i], &end);
    float f = strtof(inputs[i], NULL);
    long double ld = strtold(inputs[i], NULL);
    printf("parse '%s': %a (%ld chars) float %a long %La\n", inputs[i], d, (long)(end - inputs[i]), (double)f, ld);
  }
  double sum = 0;
  for (int i = 1; i <= 1000; i++) sum += 1.0 / i;
  printf("harmonic(1000) = %.15f\n", sum);
  long double lsum = 0;
  for (int i = 1; i <= 1000; i++) lsum += 1.0L / i;
  printf("harmonic(1000) long = %.19Lf\n", lsum);
}

int main(void) {
  print_doubles();
  print_floats();
  print_long_doubles();
  round_trips();
  return 0;
}
