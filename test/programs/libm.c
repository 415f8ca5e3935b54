/*
 * The maths library. Exact operations (sqrt, floor/ceil/round/trunc, fmod, frexp/ldexp, fma,
 * nextafter, conversions) print every bit with %a. Transcendental functions are only correctly
 * rounded to within an ulp or so, and glibc picks FMA or SSE2 variants by CPUID while musl uses
 * x87 for some long double paths, so those print with %.12g / %.15Lg: digits every implementation
 * agrees on, while a wrong instruction still shows up as a different value.
 */
#include <fenv.h>
#include <math.h>
#include <stdio.h>

static const double inputs[] = {0.0, -0.0, 0.5, 1.0, -1.5, 2.0, 2.5, -2.5, 3.75, 10.0, 1e-310, 123.456, -7.0e5, 1e22, 0.1};

static void exact_functions(void) {
  for (unsigned i = 0; i < sizeof inputs / sizeof inputs[0]; i++) {
    double x = inputs[i];
    int exponent;
    double mantissa = frexp(x, &exponent);
    printf("exact %a: sqrt %a fabs %a floor %a ceil %a round %a trunc %a rint %a frexp %a,%d ldexp %a fmod %a remainder %a\n", x,
           sqrt(fabs(x)), fabs(x), floor(x), ceil(x), round(x), trunc(x), rint(x), mantissa, exponent, ldexp(x, -3),
           fmod(x, 0.75), remainder(x, 0.75));
    printf("  float %a: sqrtf %a floorf %a lround %ld llrint %lld nextafter %a copysign %a fma %a\n", (double)(float)x,
           (double)sqrtf(fabsf((float)x)), (double)floorf((float)x), fabs(x) < 1e18 ? lround(x) : 0L,
           fabs(x) < 1e18 ? llrint(x) : 0LL, nextafter(x, 1.0), copysign(3.0, x), fma(x, 0.1, -x));
  }
  printf("specials: sqrt(-1) %f fmod(1,0) %f log(0) %f exp(1000) %f hypot %a\n", sqrt(-1.0), fmod(1.0, 0.0), log(0.0), exp(1000.0),
         hypot(3.0, 4.0));
  printf("classify: %d %d %d %d %d signbit %d isnan %d isinf %d\n", fpclassify(0.0), fpclassify(1e-310), fpclassify(1.0),
         fpclassify(INFINITY), fpclassify(NAN), signbit(-0.0) != 0, isnan(NAN) != 0, isinf(-INFINITY) != 0);
}

static void rounding_modes(void) {
  const int modes[] = {FE_TONEAREST, FE_DOWNWARD, FE_UPWARD, FE_TOWARDZERO};
  const char *names[] = {"nearest", "down", "up", "zero"};
  for (int m = 0; m < 4; m++) {
    fesetround(modes[m]);
    volatile double third = 1.0, three = 3.0, big = 2.5, negative = -2.5;
    printf("mode %-7s: 1/3 %a rint(2.5) %a rint(-2.5) %a nearbyint %a lrint %ld sqrt2 %a\n", names[m], third / three, rint(big),
           rint(negative), nearbyint(big + 1.0), lrint(negative), sqrt(big - 0.5));
  }
  fesetround(FE_TONEAREST);
  feclearexcept(FE_ALL_EXCEPT);
  volatile double zero = 0.0, one = 1.0, tiny = 1e-308;
  volatile double r1 = one / zero;
  int after_divide = fetestexcept(FE_DIVBYZERO) != 0;
  volatile double r2 = tiny * tiny;
  int after_underflow = fetestexcept(FE_UNDERFLOW) != 0;
  volatile double r3 = one / 3.0;
  int after_inexact = fetestexcept(FE_INEXACT) != 0;
  volatile double r4 = zero / zero;
  int after_invalid = fetestexcept(FE_INVALID) != 0;
  printf("exceptions: divbyzero %d underflow %d inexact %d invalid %d (%g %g %g %g)\n", after_divide, after_underflow, after_inexact,
         after_invalid, r1, r2, r3, r4);
}

static void transcendental_functions(void) {
  for (unsigned i = 0; i < sizeof inputs / sizeof inputs[0]; i++) {
    double x = inputs[i];
    if (fabs(x) > 1e6) continue;
    printf("trans %g: exp %.12g log %.12g pow %.12g sin %.12g cos %.12g tan %.12g atan2 %.12g cbrt %.12g tanh %.12g\n", x, exp(x),
           log(fabs(x) + 1), pow(fabs(x) + 0.5, 1.7), sin(x), cos(x), tan(x), atan2(x, 1.5), cbrt(x), tanh(x));
    printf("  single: expf %.6g logf %.6g sinf %.6g powf %.6g\n", (double)expf((float)x), (double)logf((float)fabs(x) + 1),
           (double)sinf((float)x), (double)powf((float)fabs(x) + 0.5f, 1.7f));
  }
  double accumulated = 0;
  for (int i = 1; i <= 200; i++) accumulated += sin(i * 0.1) * exp(-i * 0.01) + log10(i) + atan(1.0 / i);
  printf("series %.10g\n", accumulated);
}

static void long_double_functions(void) {
  const long double values[] = {0.5L, 2.0L, 3.0L, 100.0L, 1e-3L};
  for (unsigned i = 0; i < sizeof values / sizeof values[0]; i++) {
    long double x = values[i];
    int exponent;
    long double mantissa = frexpl(x, &exponent);
    printf("long %Lg: sqrtl %La floorl %La fmodl %La frexpl %La,%d expl %.15Lg logl %.15Lg sinl %.15Lg powl %.15Lg\n", x, sqrtl(x),
           floorl(x * 7.3L), fmodl(x * 7.3L, 1.25L), mantissa, exponent, expl(x), logl(x), sinl(x), powl(x, 1.5L));
  }
}

int main(void) {
  exact_functions();
  rounding_modes();
  transcendental_functions();
  long_double_functions();
  return 0;
}
