/**
 * CPUID as a user-mode guest sees it: the identity and feature bits of the virtual CPU.
 *
 * Why it is shaped so: programs (above all glibc's ifunc resolvers and its cache and string
 * tuning) pick code paths from these bits, so the CPU must claim exactly the instructions
 * svmjit executes and nothing more — a claimed SSE4.2 would send strlen into code we cannot
 * run. The leaves are a small table of constants; everything not listed reads as zero.
 *
 * What is reported (bit: meaning):
 *
 *   leaf 0           EAX = 0xD (highest standard leaf); EBX,EDX,ECX = "AuthenticAMD"
 *   leaf 1   EAX     0x00830F10: family 17h (base 0xF + extended 0x8), model 31h, stepping 0
 *                    (an EPYC "Rome"-class part)
 *            EBX     15:8 CLFLUSH line size = 8 (×8 = 64 bytes); 23:16 logical processors = 1;
 *                    31:24 initial APIC ID = 0
 *            ECX     13 CX16 (CMPXCHG16B), 23 POPCNT — and no SSE3, SSSE3, SSE4.x, AVX, FMA,
 *                    MOVBE, AES, XSAVE or OSXSAVE, none of which is implemented
 *            EDX     0 FPU, 2 DE, 3 PSE, 4 TSC, 5 MSR, 6 PAE, 8 CX8, 9 APIC, 13 PGE, 15 CMOV, 16 PAT,
 *                    24 FXSR, 25 SSE, 26 SSE2 (the paging bits describe the machine and cost a
 *                    user program nothing); MMX (23) is clear: no MMX instructions exist here
 *   leaf 7           all zero: no BMI, AVX2, ERMS, FSGSBASE, … (subleaf count 0)
 *   leaf 0x80000000  EAX = 0x80000008; EBX,EDX,ECX = "AuthenticAMD"
 *   leaf 0x80000001  EAX = leaf 1's signature; ECX: 0 LAHF/SAHF in 64-bit mode, 5 ABM (LZCNT);
 *                    EDX: 11 SYSCALL, 20 NX, 26 Page1GB, 27 RDTSCP, 29 LM
 *   0x80000002-4     brand string "svmjit virtual CPU", NUL-padded to 48 bytes
 *   leaf 0x80000008  EAX = 0x3030: 48 physical and 48 linear address bits
 *   everything else  zero (including leaves 2-6, 0xD and the cache leaves 0x80000005/6)
 */
import type { Cpu } from './cpu.js';

const MAX_STANDARD_LEAF = 0xd;
/** Extended leaves as the int32 values EAX holds in the state. */
const EXT = 0x80000000 | 0;
const MAX_EXTENDED_LEAF = EXT + 8;

/** "AuthenticAMD" as CPUID returns it: EBX, EDX, ECX hold 4 characters each, little-endian. */
const VENDOR_EBX = 0x68747541; // "Auth"
const VENDOR_EDX = 0x69746e65; // "enti"
const VENDOR_ECX = 0x444d4163; // "cAMD"

const SIGNATURE = 0x00830f10;

const enum Leaf1Ecx {
  CX16 = 1 << 13,
  POPCNT = 1 << 23,
}

const enum Leaf1Edx {
  FPU = 1 << 0,
  /** Debugging extensions: CR4.DE (DR4/DR5 no longer alias DR6/DR7; I/O breakpoints). */
  DE = 1 << 2,
  PSE = 1 << 3,
  TSC = 1 << 4,
  MSR = 1 << 5,
  PAE = 1 << 6,
  CX8 = 1 << 8,
  APIC = 1 << 9,
  PGE = 1 << 13,
  CMOV = 1 << 15,
  PAT = 1 << 16,
  FXSR = 1 << 24,
  SSE = 1 << 25,
  SSE2 = 1 << 26,
}

const enum ExtEcx {
  /** LAHF/SAHF are valid in 64-bit mode. */
  LAHF_LM = 1 << 0,
  /** Advanced bit manipulation: LZCNT (POPCNT is reported in leaf 1). */
  ABM = 1 << 5,
}

const enum ExtEdx {
  SYSCALL = 1 << 11,
  NX = 1 << 20,
  /** 1 GiB pages in 4-level paging (the machine's page walker has them). */
  PAGE1GB = 1 << 26,
  RDTSCP = 1 << 27,
  LM = 1 << 29,
}

const LEAF1_EBX = (8 << 8) | (1 << 16);
const LEAF1_ECX = Leaf1Ecx.CX16 | Leaf1Ecx.POPCNT;
const LEAF1_EDX =
  Leaf1Edx.FPU | Leaf1Edx.DE | Leaf1Edx.PSE | Leaf1Edx.TSC | Leaf1Edx.MSR | Leaf1Edx.PAE | Leaf1Edx.CX8 | Leaf1Edx.APIC | Leaf1Edx.PGE |
  Leaf1Edx.CMOV | Leaf1Edx.PAT | Leaf1Edx.FXSR | Leaf1Edx.SSE | Leaf1Edx.SSE2;

/** The brand string as the twelve dwords of leaves 0x80000002-4 (EAX, EBX, ECX, EDX each). */
const BRAND = (() => {
  const bytes = new Uint8Array(48);
  bytes.set(new TextEncoder().encode('svmjit virtual CPU'));
  return new Int32Array(bytes.buffer);
})();

/** EAX, EBX, ECX, EDX of a leaf, filled per call (no allocation). */
const out = new Int32Array(4);

function leafValues(leaf: number): void {
  out.fill(0);
  switch (leaf) {
    case 0:
      (out[0] = MAX_STANDARD_LEAF), (out[1] = VENDOR_EBX), (out[2] = VENDOR_ECX), (out[3] = VENDOR_EDX);
      return;
    case 1:
      (out[0] = SIGNATURE), (out[1] = LEAF1_EBX), (out[2] = LEAF1_ECX), (out[3] = LEAF1_EDX);
      return;
    case EXT:
      (out[0] = MAX_EXTENDED_LEAF), (out[1] = VENDOR_EBX), (out[2] = VENDOR_ECX), (out[3] = VENDOR_EDX);
      return;
    case EXT + 1:
      (out[0] = SIGNATURE), (out[2] = ExtEcx.LAHF_LM | ExtEcx.ABM), (out[3] = ExtEdx.SYSCALL | ExtEdx.NX | ExtEdx.PAGE1GB | ExtEdx.RDTSCP | ExtEdx.LM);
      return;
    case EXT + 2:
    case EXT + 3:
    case EXT + 4:
      for (let i = 0; i < 4; i++) out[i] = BRAND[4 * (leaf - EXT - 2) + i];
      return;
    case MAX_EXTENDED_LEAF:
      out[0] = 48 | (48 << 8);
      return;
  }
  // Leaf 7 and every other leaf (any subleaf): zero.
}

/** The cpuid hook of the user-mode personality: leaf in EAX (subleaf in ECX is irrelevant: every subleaf we answer is zero). */
export function cpuidUserMode(cpu: Cpu): void {
  const s = cpu.s;
  leafValues(s[0]);
  // EAX, EBX, ECX, EDX are registers 0, 3, 1, 2; writing the 32-bit halves clears the high ones.
  (s[0] = out[0]), (s[6] = out[1]), (s[2] = out[2]), (s[4] = out[3]);
  (s[1] = 0), (s[7] = 0), (s[3] = 0), (s[5] = 0);
}

/**
 * The machine's CPUID: the user-mode leaves plus what the bare-metal PC has beyond them —
 * leaf 1 ECX bit 21 x2APIC and bit 24 TSC-deadline (the local APIC implements both), the
 * initial APIC ID in leaf 1 EBX[31:24] (the CPU's index), and SVM: Fn8000_0001 ECX bit 2 and
 * the SVM leaf Fn8000_000A (whose EAX of 0x8000_0000 becomes the highest extended leaf).
 */
export function cpuidMachine(cpu: Cpu, apicId: number): void {
  const s = cpu.s;
  const leaf = s[0];
  cpuidUserMode(cpu);
  if (leaf === 1) {
    s[2] |= X2APIC | TSC_DEADLINE;
    s[6] = (s[6] & 0xffffff) | (apicId << 24);
  } else if (leaf === EXT) s[0] = SVM_LEAF;
  else if (leaf === EXT + 1) s[2] |= SVM;
  else if (leaf === SVM_LEAF) {
    // Fn8000_000A (spec/svm.md §2.1): revision 1, 8 ASIDs, NP, NRIPS, VmcbClean, SVME_ADDR_CHK.
    (s[0] = 1), (s[6] = 8), (s[2] = 0), (s[4] = NP | NRIPS | VMCB_CLEAN | SVME_ADDR_CHK);
  }
}

/** The machine reports extended leaves up to the SVM leaf. */
const SVM_LEAF = EXT + 0xa;
const SVM = 1 << 2;
const NP = 1 << 0;
const NRIPS = 1 << 3;
const VMCB_CLEAN = 1 << 5;
const SVME_ADDR_CHK = 1 << 28;

const X2APIC = 1 << 21;
const TSC_DEADLINE = 1 << 24;
