/*
 * Reference results from this machine's real x87, for test/softfloat80.test.ts.
 *
 * Reads one case per line on stdin: "op cw ase ahi alo bse bhi blo" (hex). The FPU is reset,
 * loaded with ST0 = a, ST1 = b (80-bit loads, which never signal), the control word set to cw,
 * the status word cleared, and op executed; the line written back is
 * "sw r0se r0hi r0lo r1se r1hi r1lo ilo ihi w8" (hex): the status word right after the op, ST0
 * and ST1 afterwards (stored raw), and any integer/float32/float64 memory result (FBSTP's
 * 10-byte result is ilo, ihi and the 16-bit w8). For the loads (fld m32/m64, fild m64, fbld)
 * the memory operand is a's bits.
 * A line "m bits" instead runs musl fmt_fp's long double digit loop on the double `bits`.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

struct ext {
  uint32_t lo, hi;
  uint16_t se;
} __attribute__((packed));

#define PRE "fninit\n\tfldcw %[cw]\n\tfldt %[b]\n\tfldt %[a]\n\tfnclex\n\t"
#define POST "\n\tfnstsw %[sw]\n\tfstpt %[r0]\n\tfstpt %[r1]\n\tfninit\n\t"
#define RUN(body)                                                                                    \
  __asm__ volatile(PRE body POST                                                                     \
                   : [sw] "=m"(sw), [r0] "=m"(r0), [r1] "=m"(r1), [m] "+m"(mem), [t] "+m"(m80)       \
                   : [cw] "m"(cw), [a] "m"(a), [b] "m"(b)                                             \
                   : "memory", "cc", "eax")

int main(void) {
  char line[256];
  unsigned op, cw16, ase, ahi, alo, bse, bhi, blo;
  setvbuf(stdout, NULL, _IOFBF, 1 << 20);
  while (fgets(line, sizeof line, stdin)) {
    if (line[0] == 'm') {
      /* "m bits": musl fmt_fp's digit loop (up to 8 groups) on the double `bits`·2^28/3, in
         long double. Prints the 9-digit groups it produces, then the final long double's bits. */
      unsigned long long bits;
      if (sscanf(line + 1, "%llx", &bits) != 1) continue;
      double d;
      memcpy(&d, &bits, sizeof d);
      volatile long double three = 3; /* a division so that every step rounds */
      long double y = (long double)d * 0x1p28L / three;
      for (int i = 0; i < 8 && y != 0; i++) {
        uint32_t z = (uint32_t)y;
        printf("%x ", z);
        y = 1000000000 * (y - z);
      }
      struct ext yy;
      memcpy(&yy, &y, sizeof yy);
      printf("| %x %x %x\n", yy.se, yy.hi, yy.lo);
      continue;
    }
    if (sscanf(line, "%x %x %x %x %x %x %x %x", &op, &cw16, &ase, &ahi, &alo, &bse, &bhi, &blo) != 8) continue;
    struct ext a = {alo, ahi, (uint16_t)ase}, b = {blo, bhi, (uint16_t)bse}, r0, r1;
    uint16_t cw = (uint16_t)cw16, sw = 0;
    uint64_t mem = ((uint64_t)ahi << 32) | alo;
    struct ext m80 = {alo, ahi, (uint16_t)ase}; /* FBLD source / FBSTP destination */
    memset(&r0, 0, sizeof r0);
    memset(&r1, 0, sizeof r1);
    switch (op) {
      case 0: RUN("fadd %%st(1), %%st"); break;
      case 1: RUN("fsub %%st(1), %%st"); break;
      case 2: RUN("fmul %%st(1), %%st"); break;
      case 3: RUN("fdiv %%st(1), %%st"); break;
      case 4: RUN("fsqrt"); break;
      case 5: RUN("fcom %%st(1)"); break;
      case 6: RUN("fucom %%st(1)"); break;
      case 7: RUN("frndint"); break;
      case 8: RUN("fscale"); break;
      case 9: RUN("fxtract"); break;
      case 10: RUN("fprem"); break;
      case 11: RUN("fprem1"); break;
      case 12: mem = 0; RUN("fsts %[m]"); break;
      case 13: mem = 0; RUN("fstl %[m]"); break;
      case 14: RUN("flds %[m]"); break;
      case 15: RUN("fldl %[m]"); break;
      case 16: mem = 0; RUN("fists %[m]"); break;
      case 17: mem = 0; RUN("fistl %[m]"); break;
      case 18: mem = 0; RUN("fistpll %[m]"); break;
      case 19: mem = 0; RUN("fisttps %[m]"); break;
      case 20: mem = 0; RUN("fisttpl %[m]"); break;
      case 21: mem = 0; RUN("fisttpll %[m]"); break;
      case 22: RUN("fxam"); break;
      case 23: RUN("ftst"); break;
      case 24: RUN("fld1"); break;
      case 25: RUN("fldl2t"); break;
      case 26: RUN("fldl2e"); break;
      case 27: RUN("fldpi"); break;
      case 28: RUN("fldlg2"); break;
      case 29: RUN("fldln2"); break;
      case 30: RUN("fldz"); break;
      case 31: RUN("fildll %[m]"); break;
      case 32: RUN("fbld %[t]"); break;
      case 33: memset(&m80, 0, sizeof m80); RUN("fbstp %[t]"); mem = ((uint64_t)m80.hi << 32) | m80.lo; break;
      default: continue;
    }
    printf("%x %x %x %x %x %x %x %x %x %x\n", sw, r0.se, r0.hi, r0.lo, r1.se, r1.hi, r1.lo, (uint32_t)mem,
           (uint32_t)(mem >> 32), m80.se);
  }
  return 0;
}
