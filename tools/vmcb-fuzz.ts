/**
 * VMCB fuzzer (issue 5): bad VMCB contents must never crash svmjit. Every iteration writes a
 * random-but-plausible VMCB — a valid baseline for one of nine L2 modes, then random control
 * fields, intercept words, EVENTINJ and save-area fields — into guest RAM, lets a small L1
 * hypervisor execute VMRUN on it, and judges the outcome against spec/svm.md:
 *
 *   - the VMRUN verdict (L1 exception / VMEXIT_INVALID / entered L2) is predicted here,
 *     independently of src/svm, from the §5.1/§5.2 pre-checks and the §5.3 table, with the
 *     CPU's reserved bits derived from its own CPUID; a disagreement is a failure;
 *   - after VMEXIT_INVALID (§5.4): only EXITCODE/EXITINFO1/EXITINFO2/EVENTINJ written, GIF = 0,
 *     L1's state intact;
 *   - after a #VMEXIT (§5.6): an exit code L1 intercepted and the CPU can produce, exit
 *     information of the right class (§4.2, §4.3), NRIP (§3.11), EVENTINJ consumed, nothing
 *     written outside the fields #VMEXIT writes, int_ctl bits preserved, host state restored,
 *     DR7 = 0x400, GIF = 0, the #UD/#GP checks that precede an intercept (§5.1, §6.9) respected;
 *   - an L2 that loops, halts with HLT not intercepted or triple-faults without the SHUTDOWN
 *     intercept is a defined outcome (the instruction budget ends the first).
 * Anything else — a JS exception, a JS-level hang (a watchdog thread), a wrong verdict or a
 * broken postcondition — is a failure, printed with seed, iteration and the VMCB fields that
 * differ from the baseline.
 *
 *   npm run fuzz-vmcb -- --seconds N [--seed S]        (exit status 1 when something failed)
 *   npm run fuzz-vmcb -- --seed S --iteration I [--from B]   (replay one iteration)
 *
 * Shape: everything runs in-process on a Machine without devices. L1 is a handcrafted image
 * (64-bit long mode, or 32-bit protected mode without paging) that the tool writes into RAM:
 * `vmrun; out 0xE0, al; jmp $` plus one stub per IDT vector. The port handlers snapshot L1's
 * state at the instant the `out` executes, so the comparison sees registers exactly as the
 * world switch left them. A machine is reused for consecutive iterations (the JIT caches, TLBs
 * and SVM state carry over, as in a real hypervisor) until an iteration ends anywhere but in
 * L1, then a fresh one is made; a failure names the first iteration of its machine so the
 * replay covers the whole history, and is also retried alone.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { getRflags, setRflags } from '../src/cpu/flags.js';
import { S, SegReg } from '../src/cpu/state.js';
import { decode } from '../src/frontend/decoder.js';
import { disassemble } from '../src/frontend/disasm.js';
import { Machine, type Vcpu } from '../src/machine/machine.js';
import { setSegCache } from '../src/machine/segments.js';
import type { ExecMode } from '../src/runtime/engine.js';

// ---------------------------------------------------------------------------------------------
// Physical memory layout (RAM_BYTES of RAM; everything is identity-mapped for L1 and for L2).

const RAM_BYTES = 4 << 20;
const PAGE = 0x1000;
// L2's world, rewritten at every iteration.
const L2_PML4 = 0x1000;
const L2_PDPT = 0x2000;
const L2_PD = 0x3000;
const L2_PD32 = 0x4000;
/** One page of 32-byte legacy-PAE PDPTs: slot 0 is the good one, the others the generator's. */
const L2_PAE_PDPT = 0x5000;
const L2_PAE_PD = 0x6000;
const L2_IDT64 = 0x8000;
const L2_IDT32 = 0x9000;
const L2_IVT = 0xa000;
const L2_GDT = 0xb000;
const L2_TSS32 = 0xc000;
const L2_CODE = 0x10000;
const L2_HANDLER_HLT = L2_CODE + 0xc00;
const L2_HANDLER_VMMCALL = L2_CODE + 0xc10;
const L2_DATA = 0x11000;
const L2_RSP0 = 0x1e000;
const L2_STACK_TOP = 0x1f000;
const IOPM_PA = 0x20000;
const MSRPM_PA = 0x24000;
/** Where L2's own VMLOAD/VMSAVE point (never the VMCB: that would blur the "not written" checks). */
const L2_SAVE = 0x30000;
/** Nested page tables (when NP is advertised): identity map of the first GiB, user, writable. */
const NPT_PML4 = 0x40000;
const NPT_PDPT = 0x41000;
const NPT_PD = 0x42000;
// L1's world, written once per machine and checked for clobbering after every iteration.
const L1_CODE = 0x100000;
const L1_GDT = 0x101000;
const L1_IDT64 = 0x102000;
const L1_IDT32 = 0x103000;
const L1_PML4 = 0x104000;
const L1_PDPT = 0x105000;
const L1_TSS64 = 0x106000;
const L1_TSS32 = 0x106100;
const L1_IMAGE_END = 0x107000;
const L1_STACK_TOP = 0x108000;
const HSAVE_PA = 0x110000;
const VMCB_PA = 0x200000;
/** L1's code: VMRUN at L1_CODE, then `out DONE_PORT, al; jmp $`; the IDT stubs after it. */
const L1_AFTER_VMRUN = L1_CODE + 3;
const L1_STUBS = L1_CODE + 0x100;
const STUB_SIZE = 8;
const DONE_PORT = 0xe0;
const EXC_SNAP_PORT = 0xe1;
const EXC_VECTOR_PORT = 0xe2;

const TWO32 = 4294967296;
const M64 = (1n << 64n) - 1n;

// ---------------------------------------------------------------------------------------------
// Random numbers: xoshiro128** seeded through splitmix32, one stream per (seed, iteration).

function splitmix32(x: number): number {
  x = (x + 0x9e3779b9) | 0;
  let z = x;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  return (z ^ (z >>> 16)) >>> 0;
}

export class Rng {
  private a: number;
  private b: number;
  private c: number;
  private d: number;
  constructor(seed: number, stream = 0) {
    let x = splitmix32(seed ^ Math.imul(stream + 1, 0x27d4eb2d));
    this.a = x = splitmix32(x);
    this.b = x = splitmix32(x ^ stream);
    this.c = x = splitmix32(x);
    this.d = splitmix32(x) | 1;
  }
  u32(): number {
    const r = Math.imul(rotl(Math.imul(this.b, 5), 7), 9) >>> 0;
    const t = this.b << 9;
    this.c ^= this.a;
    this.d ^= this.b;
    this.b ^= this.c;
    this.a ^= this.d;
    this.c ^= t;
    this.d = rotl(this.d, 11);
    return r;
  }
  below(n: number): number {
    return Math.floor((this.u32() / TWO32) * n);
  }
  chance(p: number): boolean {
    return this.u32() / TWO32 < p;
  }
  pick<T>(xs: readonly T[]): T {
    return xs[this.below(xs.length)];
  }
  /** One entry of [weight, value] pairs. */
  weighted<T>(xs: readonly (readonly [number, T])[]): T {
    let total = 0;
    for (const [w] of xs) total += w;
    let r = (this.u32() / TWO32) * total;
    for (const [w, v] of xs) if ((r -= w) < 0) return v;
    return xs[xs.length - 1][1];
  }
  u64(): bigint {
    return (BigInt(this.u32()) << 32n) | BigInt(this.u32());
  }
  /** A 64-bit value with 1-3 random bits set. */
  sparse64(): bigint {
    let v = 0n;
    for (let n = 1 + this.below(3); n > 0; n--) v |= 1n << BigInt(this.below(64));
    return v;
  }
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}

// ---------------------------------------------------------------------------------------------
// The VMCB, transcribed from spec/svm.md §3.1/§3.2 (independently of src/svm/vmcb.ts).

/** Named fields: [name, offset, size]. Bytes not covered are reserved. */
const FIELDS: readonly (readonly [string, number, number])[] = (() => {
  const f: [string, number, number][] = [
    ['intercept_cr', 0x000, 4], ['intercept_dr', 0x004, 4], ['intercept_exceptions', 0x008, 4], ['intercept_word3', 0x00c, 4],
    ['intercept_word4', 0x010, 4], ['intercept_word5', 0x014, 4], ['pause_filter_threshold', 0x03c, 2], ['pause_filter_count', 0x03e, 2],
    ['iopm_base_pa', 0x040, 8], ['msrpm_base_pa', 0x048, 8], ['tsc_offset', 0x050, 8], ['guest_asid', 0x058, 4], ['tlb_control', 0x05c, 1],
    ['erap_control', 0x05d, 1], ['int_ctl', 0x060, 4], ['int_vector', 0x064, 4], ['int_state', 0x068, 4], ['exitcode', 0x070, 8],
    ['exitinfo1', 0x078, 8], ['exitinfo2', 0x080, 8], ['exitintinfo', 0x088, 4], ['exitintinfo_err', 0x08c, 4], ['misc_ctl', 0x090, 8],
    ['avic_apic_bar', 0x098, 8], ['ghcb_gpa', 0x0a0, 8], ['eventinj', 0x0a8, 4], ['eventinj_err', 0x0ac, 4], ['n_cr3', 0x0b0, 8],
    ['misc_ctl2', 0x0b8, 8], ['vmcb_clean', 0x0c0, 4], ['nrip', 0x0c8, 8], ['insn_len', 0x0d0, 1], ['insn_bytes', 0x0d1, 15],
    ['avic_backing_page', 0x0e0, 8], ['avic_logical_table', 0x0f0, 8], ['avic_physical_table', 0x0f8, 8], ['vmsa_pa', 0x108, 8],
    ['bus_lock_counter', 0x120, 2], ['allowed_sev_features', 0x138, 8], ['guest_sev_features', 0x140, 8],
  ];
  const segs = ['es', 'cs', 'ss', 'ds', 'fs', 'gs', 'gdtr', 'ldtr', 'idtr', 'tr'];
  segs.forEach((n, i) => {
    const o = 0x400 + 16 * i;
    f.push([`${n}.sel`, o, 2], [`${n}.attrib`, o + 2, 2], [`${n}.limit`, o + 4, 4], [`${n}.base`, o + 8, 8]);
  });
  f.push(
    ['vmpl', 0x4ca, 1], ['cpl', 0x4cb, 1], ['efer', 0x4d0, 8], ['cr4', 0x548, 8], ['cr3', 0x550, 8], ['cr0', 0x558, 8], ['dr7', 0x560, 8],
    ['dr6', 0x568, 8], ['rflags', 0x570, 8], ['rip', 0x578, 8], ['rsp', 0x5d8, 8], ['s_cet', 0x5e0, 8], ['ssp', 0x5e8, 8],
    ['isst_addr', 0x5f0, 8], ['rax', 0x5f8, 8], ['star', 0x600, 8], ['lstar', 0x608, 8], ['cstar', 0x610, 8], ['sfmask', 0x618, 8],
    ['kernel_gs_base', 0x620, 8], ['sysenter_cs', 0x628, 8], ['sysenter_esp', 0x630, 8], ['sysenter_eip', 0x638, 8], ['cr2', 0x640, 8],
    ['g_pat', 0x668, 8], ['dbgctl', 0x670, 8], ['br_from', 0x678, 8], ['br_to', 0x680, 8], ['lastexcpfrom', 0x688, 8],
    ['lastexcpto', 0x690, 8], ['spec_ctrl', 0x6e0, 8],
  );
  return f.sort((x, y) => x[1] - y[1]);
})();

/** Reserved byte ranges [start, end) of the VMCB page, for the junk mutations. */
const RESERVED: readonly (readonly [number, number])[] = (() => {
  const out: [number, number][] = [];
  let at = 0;
  for (const [, o, n] of FIELDS) {
    if (o > at) out.push([at, o]);
    at = Math.max(at, o + n);
  }
  if (at < PAGE) out.push([at, PAGE]);
  return out;
})();

const V = {
  INTERCEPT_CR: 0x000, INTERCEPT_DR: 0x004, INTERCEPT_EXC: 0x008, WORD3: 0x00c, WORD4: 0x010, WORD5: 0x014,
  PAUSE_THRESHOLD: 0x03c, PAUSE_COUNT: 0x03e, IOPM: 0x040, MSRPM: 0x048, TSC_OFFSET: 0x050, ASID: 0x058, TLB_CONTROL: 0x05c,
  INT_CTL: 0x060, INT_VECTOR: 0x064, INT_STATE: 0x068, EXITCODE: 0x070, EXITINFO1: 0x078, EXITINFO2: 0x080, EXITINTINFO: 0x088,
  EXITINTINFO_ERR: 0x08c, MISC_CTL: 0x090, AVIC_BAR: 0x098, GHCB: 0x0a0, EVENTINJ: 0x0a8, EVENTINJ_ERR: 0x0ac, N_CR3: 0x0b0,
  MISC_CTL2: 0x0b8, CLEAN: 0x0c0, NRIP: 0x0c8, INSN_LEN: 0x0d0, INSN_BYTES: 0x0d1,
  ES: 0x400, CS: 0x410, SS: 0x420, DS: 0x430, FS: 0x440, GS: 0x450, GDTR: 0x460, LDTR: 0x470, IDTR: 0x480, TR: 0x490,
  CPL: 0x4cb, EFER: 0x4d0, CR4: 0x548, CR3: 0x550, CR0: 0x558, DR7: 0x560, DR6: 0x568, RFLAGS: 0x570, RIP: 0x578, RSP: 0x5d8,
  S_CET: 0x5e0, RAX: 0x5f8, STAR: 0x600, CR2: 0x640, G_PAT: 0x668, DBGCTL: 0x670,
} as const;

const SEG_FIELDS = [V.ES, V.CS, V.SS, V.DS] as const;

/** A 4 KiB VMCB image with typed accessors (64-bit fields as BigInt: this is not a hot path). */
export class VmcbBuf {
  readonly dv: DataView;
  constructor(readonly b: Uint8Array = new Uint8Array(PAGE)) {
    this.dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  }
  u8(o: number): number {
    return this.b[o];
  }
  u16(o: number): number {
    return this.dv.getUint16(o, true);
  }
  u32(o: number): number {
    return this.dv.getUint32(o, true);
  }
  u64(o: number): bigint {
    return this.dv.getBigUint64(o, true);
  }
  set8(o: number, v: number): void {
    this.b[o] = v;
  }
  set16(o: number, v: number): void {
    this.dv.setUint16(o, v, true);
  }
  set32(o: number, v: number): void {
    this.dv.setUint32(o, v >>> 0, true);
  }
  set64(o: number, v: bigint): void {
    this.dv.setBigUint64(o, BigInt.asUintN(64, v), true);
  }
  seg(o: number, sel: number, attrib: number, limit: number, base: bigint): void {
    this.set16(o, sel);
    this.set16(o + 2, attrib);
    this.set32(o + 4, limit);
    this.set64(o + 8, base);
  }
  clone(): VmcbBuf {
    return new VmcbBuf(this.b.slice());
  }
}

// ---------------------------------------------------------------------------------------------
// What the emulated CPU advertises (read through its own CPUID hook).

export interface Features {
  maxPhyAddr: number;
  /** Fn8000_000A EDX. */
  svmEdx: number;
  np: boolean;
  lbrv: boolean;
  nrips: boolean;
  decodeAssists: boolean;
  vgif: boolean;
  vnmi: boolean;
  shstk: boolean;
  cr4Valid: bigint;
  eferValid: bigint;
  /** Exit codes the CPU can never produce because the instruction is not advertised (§2.1). */
  unadvertisedExits: Map<number, string>;
}

function cpuidOf(vcpu: Vcpu, leaf: number, sub = 0): [number, number, number, number] {
  const cpu = vcpu.cpu;
  const s = cpu.s;
  const saved = s.slice(0, 16);
  s[0] = leaf | 0;
  s[1] = 0;
  s[2] = sub;
  s[3] = 0;
  cpu.hooks.cpuid(cpu);
  const r: [number, number, number, number] = [s[0] >>> 0, s[6] >>> 0, s[2] >>> 0, s[4] >>> 0];
  s.set(saved, 0);
  return r;
}

export function probeFeatures(vcpu: Vcpu): Features {
  const maxExt = cpuidOf(vcpu, 0x80000000)[0];
  const ext = (leaf: number) => (leaf <= maxExt ? cpuidOf(vcpu, leaf) : [0, 0, 0, 0]);
  const maxStd = cpuidOf(vcpu, 0)[0];
  const std = (leaf: number, sub = 0) => (leaf <= maxStd ? cpuidOf(vcpu, leaf, sub) : [0, 0, 0, 0]);
  const [, , l1c] = std(1);
  const [, l7b, l7c, l7d] = std(7);
  const [, , e1c, e1d] = ext(0x80000001);
  const [e8a, e8b] = ext(0x80000008);
  const svmEdx = ext(0x8000000a)[3];
  const [e21a] = ext(0x80000021);
  const bit = (v: number, n: number) => ((v >>> n) & 1) === 1;
  const shstk = bit(l7c, 7);
  // CR4 (§5.3 C5 = the MOV-to-CR4 rule): bits 0-10 always, the rest by their CPUID feature.
  let cr4 = 0x7ffn;
  if (bit(l7c, 2)) cr4 |= 1n << 11n; // UMIP
  if (bit(l7c, 16)) cr4 |= 1n << 12n; // LA57
  if (bit(l7b, 0)) cr4 |= 1n << 16n; // FSGSBASE
  if (bit(l1c, 17)) cr4 |= 1n << 17n; // PCIDE
  if (bit(l1c, 26)) cr4 |= 1n << 18n; // OSXSAVE
  if (bit(l7b, 7)) cr4 |= 1n << 20n; // SMEP
  if (bit(l7b, 20)) cr4 |= 1n << 21n; // SMAP
  if (bit(l7c, 3)) cr4 |= 1n << 22n; // PKE
  if (shstk || bit(l7d, 20)) cr4 |= 1n << 23n; // CET
  // EFER (§5.3 C8, §2.2): SCE always; the others by feature.
  let efer = 1n;
  if (bit(e1d, 29)) efer |= 0x500n; // LME, LMA
  if (bit(e1d, 20)) efer |= 0x800n; // NXE
  if (bit(e1c, 2)) efer |= 0x1000n; // SVME
  if (bit(e1d, 25)) efer |= 0x4000n; // FFXSR
  if (bit(e1c, 17)) efer |= 0x8000n; // TCE
  if (bit(e21a, 8)) efer |= 1n << 21n; // AutoIBRS
  const un = new Map<number, string>();
  if (!bit(e1c, 12)) un.set(0x86, 'SKINIT is not advertised (Fn8000_0001 ECX[12])');
  if (!bit(e1d, 27)) un.set(0x87, 'RDTSCP is not advertised (Fn8000_0001 EDX[27])');
  if (!bit(l1c, 3) && !bit(e1c, 29)) for (const c of [0x8a, 0x8b, 0x8c]) un.set(c, 'MONITOR/MWAIT are not advertised (Fn1 ECX[3], Fn8000_0001 ECX[29])');
  if (!bit(l1c, 26)) un.set(0x8d, 'XSETBV: XSAVE is not advertised (Fn1 ECX[26])');
  if (!bit(e8b, 4)) un.set(0x8e, 'RDPRU is not advertised (Fn8000_0008 EBX[4])');
  if (!bit(e8b, 3)) for (const c of [0xa0, 0xa1, 0xa4]) un.set(c, 'INVLPGB/TLBSYNC are not advertised (Fn8000_0008 EBX[3])');
  if (!bit(l7b, 10)) un.set(0xa2, 'INVPCID is not advertised (Fn7 EBX[10])');
  if (!bit(e8b, 8)) un.set(0xa3, 'MCOMMIT is not advertised (Fn8000_0008 EBX[8])');
  if (!bit(svmEdx, 29)) un.set(0xa5, 'bus-lock threshold is not advertised (Fn8000_000A EDX[29])');
  if (!bit(svmEdx, 30)) un.set(0xa6, 'IDLE_HLT is not advertised (Fn8000_000A EDX[30])');
  return {
    maxPhyAddr: e8a & 0xff || 36,
    svmEdx,
    np: bit(svmEdx, 0),
    lbrv: bit(svmEdx, 1),
    nrips: bit(svmEdx, 3),
    decodeAssists: bit(svmEdx, 7),
    vgif: bit(svmEdx, 16),
    vnmi: bit(svmEdx, 25),
    shstk,
    cr4Valid: cr4,
    eferValid: efer,
    unadvertisedExits: un,
  };
}

// ---------------------------------------------------------------------------------------------
// One iteration's plan: the VMCB, L1's registers, and L2's memory.

type L1Mode = 'long' | 'pm32';
type CodeSize = 16 | 32 | 64;

export interface Plan {
  seed: number;
  index: number;
  profile: string;
  vmcbPa: number;
  vmcb: VmcbBuf;
  baseline: VmcbBuf;
  l1: {
    mode: L1Mode;
    /** RAX at VMRUN (the VMRUN operand). */
    rax: bigint;
    hsave: number;
    svme: boolean;
    rflags: number;
    dr7: number;
    /** DR0-DR3 (shared by L1 and L2). */
    dr: bigint[];
    /** RBX, RCX, RDX, RSI, RDI, RBP, R8-R15 (shared by L1 and L2): index = register number. */
    gprs: bigint[];
  };
  writes: { addr: number; bytes: Uint8Array }[];
  code: Uint8Array;
  codeSize: CodeSize;
  codeItems: string[];
  /** The L2 instructions one item at a time (the shrinker drops items). */
  codeParts: number[][];
  notes: string[];
}

const CR0_PE = 1n, CR0_MP = 2n, CR0_ET = 0x10n, CR0_NE = 0x20n, CR0_WP = 0x10000n;
const CR0_NW = 0x20000000n, CR0_CD = 0x40000000n, CR0_PG = 0x80000000n;
const CR4_PSE = 0x10n, CR4_PAE = 0x20n, CR4_OSFXSR = 0x200n, CR4_OSXMMEXCPT = 0x400n;
const EFER_SCE = 1n, EFER_LME = 0x100n, EFER_LMA = 0x400n, EFER_NXE = 0x800n, EFER_SVME = 0x1000n;
const RF_VM = 0x20000;
const RF_RF = 0x10000;
const RF_TF = 0x100;
const RF_IF = 0x200;

interface Profile {
  name: string;
  weight: number;
  code: CodeSize;
  build(v: VmcbBuf): void;
}

/** Descriptor-style attribs (§3.4): 64-bit code, data, 32-bit code, 16-bit code/data, v86. */
const A_CODE64 = 0xa9b, A_DATA = 0xc93, A_CODE32 = 0xc9b, A_CODE16 = 0x09b, A_DATA16 = 0x093, A_V86 = 0x0f3;
const DPL3 = 0x60;

function flatSegs(v: VmcbBuf, cs: number, csAttr: number, ds: number, dsAttr: number): void {
  v.seg(V.CS, cs, csAttr, 0xffffffff, 0n);
  for (const o of [V.ES, V.SS, V.DS]) v.seg(o, ds, dsAttr, 0xffffffff, 0n);
}

function seg16(v: VmcbBuf, sel: number, csAttr: number, dsAttr: number, base: number): void {
  v.seg(V.CS, sel, csAttr, 0xffff, BigInt(base));
  for (const o of [V.ES, V.SS, V.DS]) v.seg(o, sel, dsAttr, 0xffff, BigInt(base));
}

const PROFILES: Profile[] = [
  {
    name: 'long64', weight: 30, code: 64, build(v) {
      v.set64(V.EFER, EFER_SCE | EFER_LME | EFER_LMA | EFER_NXE | EFER_SVME);
      v.set64(V.CR0, CR0_PE | CR0_MP | CR0_ET | CR0_NE | CR0_WP | CR0_PG);
      v.set64(V.CR4, CR4_PAE | CR4_OSFXSR | CR4_OSXMMEXCPT);
      v.set64(V.CR3, BigInt(L2_PML4));
      flatSegs(v, 0x08, A_CODE64, 0x10, A_DATA);
      idt(v, L2_IDT64, 0xfff);
    },
  },
  {
    name: 'long64-cpl3', weight: 8, code: 64, build(v) {
      PROFILES[0].build(v);
      flatSegs(v, 0x43, A_CODE64 | DPL3, 0x4b, A_DATA | DPL3);
      v.set8(V.CPL, 3);
    },
  },
  {
    name: 'compat32', weight: 5, code: 32, build(v) {
      PROFILES[0].build(v);
      flatSegs(v, 0x18, A_CODE32, 0x10, A_DATA);
    },
  },
  {
    name: 'pm32', weight: 10, code: 32, build(v) {
      v.set64(V.EFER, EFER_SVME);
      v.set64(V.CR0, CR0_PE | CR0_ET | CR0_NE);
      flatSegs(v, 0x18, A_CODE32, 0x10, A_DATA);
      idt(v, L2_IDT32, 0x7ff);
    },
  },
  {
    name: 'pm32-cpl3', weight: 4, code: 32, build(v) {
      PROFILES[3].build(v);
      flatSegs(v, 0x53, A_CODE32 | DPL3, 0x4b, A_DATA | DPL3);
      v.set8(V.CPL, 3);
    },
  },
  {
    name: 'pm32-paging', weight: 5, code: 32, build(v) {
      PROFILES[3].build(v);
      v.set64(V.CR0, CR0_PE | CR0_ET | CR0_NE | CR0_WP | CR0_PG);
      v.set64(V.CR4, CR4_PSE);
      v.set64(V.CR3, BigInt(L2_PD32));
    },
  },
  {
    name: 'pae32', weight: 8, code: 32, build(v) {
      PROFILES[3].build(v);
      v.set64(V.EFER, EFER_SVME | EFER_NXE);
      v.set64(V.CR0, CR0_PE | CR0_ET | CR0_NE | CR0_WP | CR0_PG);
      v.set64(V.CR4, CR4_PAE | CR4_OSFXSR);
      v.set64(V.CR3, BigInt(L2_PAE_PDPT));
    },
  },
  {
    name: 'pm16', weight: 4, code: 16, build(v) {
      PROFILES[3].build(v);
      v.seg(V.CS, 0x20, A_CODE16, 0xffff, BigInt(L2_CODE));
      for (const o of [V.ES, V.SS, V.DS]) v.seg(o, 0x28, A_DATA16, 0xffff, BigInt(L2_CODE));
      v.set64(V.RIP, 0n);
      v.set64(V.RSP, BigInt(L2_STACK_TOP - L2_CODE));
    },
  },
  {
    name: 'real', weight: 8, code: 16, build(v) {
      v.set64(V.EFER, EFER_SVME);
      v.set64(V.CR0, CR0_ET);
      seg16(v, L2_CODE >> 4, A_CODE16, A_DATA16, L2_CODE);
      idt(v, L2_IVT, 0x3ff);
      v.set64(V.RIP, 0n);
      v.set64(V.RSP, BigInt(L2_STACK_TOP - L2_CODE));
    },
  },
  {
    name: 'vm86', weight: 4, code: 16, build(v) {
      v.set64(V.EFER, EFER_SVME);
      v.set64(V.CR0, CR0_PE | CR0_ET | CR0_NE);
      seg16(v, L2_CODE >> 4, A_V86, A_V86, L2_CODE);
      idt(v, L2_IDT32, 0x7ff);
      v.set64(V.RFLAGS, BigInt(2 | RF_VM | 0x3000));
      v.set8(V.CPL, 3);
      v.set64(V.RIP, 0n);
      v.set64(V.RSP, BigInt(L2_STACK_TOP - L2_CODE));
    },
  },
];

function idt(v: VmcbBuf, base: number, limit: number): void {
  v.set32(V.IDTR + 4, limit);
  v.set64(V.IDTR + 8, BigInt(base));
}

/** The valid baseline every profile starts from (§8.0-like): VMRUN, VMMCALL, HLT, SHUTDOWN intercepted. */
function baselineVmcb(p: Profile): VmcbBuf {
  const v = new VmcbBuf();
  v.set32(V.WORD3, (1 << 24) | (1 << 31));
  v.set32(V.WORD4, 0b11);
  v.set64(V.IOPM, BigInt(IOPM_PA));
  v.set64(V.MSRPM, BigInt(MSRPM_PA));
  v.set32(V.ASID, 1);
  v.set32(V.GDTR + 4, 0x5f);
  v.set64(V.GDTR + 8, BigInt(L2_GDT));
  v.set64(V.DR7, 0x400n);
  v.set64(V.DR6, 0xffff0ff0n);
  v.set64(V.RFLAGS, 2n);
  v.set64(V.RIP, BigInt(L2_CODE));
  v.set64(V.RSP, BigInt(L2_STACK_TOP));
  v.set64(V.G_PAT, 0x0007040600070406n);
  p.build(v);
  return v;
}

// ---- value pools ----

function interesting64(rng: Rng, f: Features): bigint {
  const top = 1n << BigInt(f.maxPhyAddr);
  return rng.pick<() => bigint>([
    () => 0n, () => 1n, () => 0xfffn, () => 0x1000n, () => 0x7fffffffn, () => 0x80000000n, () => 0xffffffffn, () => 0x100000000n,
    () => (1n << 47n) - 1n, () => 1n << 47n, () => 0xffff800000000000n, () => M64, () => top - 1n, () => top, () => 1n << 52n,
    () => 1n << 63n, () => rng.u64(), () => BigInt(rng.u32()), () => rng.sparse64(), () => BigInt(rng.below(RAM_BYTES)),
  ])();
}

/** IOPM/MSRPM bases around the interesting edges: RAM's end, 2^MAXPHYADDR, bit 63, junk low bits. */
function bitmapBase(rng: Rng, f: Features, def: number): bigint {
  const top = 1n << BigInt(f.maxPhyAddr);
  const ram = BigInt(RAM_BYTES);
  return rng.pick<() => bigint>([
    () => BigInt(def) | BigInt(rng.below(PAGE)), () => ram - 0x1000n, () => ram - 0x2000n, () => ram - 0x3000n, () => ram,
    () => ram + BigInt(rng.below(1 << 20)) * 0x1000n, () => top - 0x1000n, () => top - 0x2000n, () => top - 0x3000n,
    () => top - 0x4000n, () => top - 0x2001n, () => top, () => 1n << 63n, () => M64, () => BigInt(rng.below(RAM_BYTES / PAGE)) * 0x1000n,
    () => BigInt(L1_CODE), () => BigInt(VMCB_PA), () => rng.u64(), () => 0n,
  ])();
}

const VALID_EXC_BASE = [0, 1, 3, 4, 5, 6, 7, 8, 10, 11, 12, 13, 14, 16, 17, 18, 19, 28, 30];
const INVALID_EXC = [2, 9, 15, 20, 21, 22, 23, 24, 25, 26, 27, 29, 31, 32, 0x80, 0xff];

function eventInj(rng: Rng): [number, number] {
  const type = rng.weighted([[3, 0], [2, 2], [6, 3], [3, 4], [1, 1], [1, 5], [1, 6], [1, 7]] as const);
  let vector: number;
  if (type === 3) vector = rng.chance(0.7) ? rng.pick(VALID_EXC_BASE) : rng.pick(INVALID_EXC);
  else vector = rng.chance(0.5) ? rng.below(256) : rng.below(40);
  let e = (vector & 0xff) | (type << 8);
  if (rng.chance(type === 3 ? 0.5 : 0.15)) e |= 1 << 11;
  if (rng.chance(0.9)) e |= 1 << 31;
  if (rng.chance(0.08)) e |= (rng.u32() & 0x7ffff) << 12;
  const err = rng.chance(0.5) ? 0 : rng.u32();
  return [e >>> 0, err];
}

// ---- VMCB mutations (each returns nothing: the failure dump diffs against the baseline) ----

type Mutation = (v: VmcbBuf, rng: Rng, f: Features) => void;

function interceptWord(rng: Rng, base: number): number {
  return rng.weighted<() => number>([
    [3, () => rng.u32()], [2, () => 0], [2, () => 0xffffffff], [4, () => (1 << rng.below(32)) | (rng.chance(0.5) ? 1 << rng.below(32) : 0)],
    [3, () => base ^ (1 << rng.below(32))], [2, () => base | rng.u32()],
  ])() >>> 0;
}

const MUTATIONS: readonly (readonly [number, Mutation])[] = [
  // ---- control area ----
  [6, (v, r) => v.set32(V.INTERCEPT_CR, interceptWord(r, v.u32(V.INTERCEPT_CR)))],
  [4, (v, r) => v.set32(V.INTERCEPT_DR, interceptWord(r, v.u32(V.INTERCEPT_DR)))],
  [8, (v, r) => v.set32(V.INTERCEPT_EXC, interceptWord(r, v.u32(V.INTERCEPT_EXC)))],
  [10, (v, r) => v.set32(V.WORD3, interceptWord(r, v.u32(V.WORD3)))],
  [8, (v, r) => v.set32(V.WORD4, interceptWord(r, v.u32(V.WORD4)) | (r.chance(0.8) ? 1 : 0))],
  [2, (v, r) => v.set32(V.WORD5, interceptWord(r, 0))],
  [1, (v, r) => v.set32(V.PAUSE_THRESHOLD, r.u32())],
  [4, (v, r, f) => v.set64(V.IOPM, bitmapBase(r, f, IOPM_PA))],
  [4, (v, r, f) => v.set64(V.MSRPM, bitmapBase(r, f, MSRPM_PA))],
  [1, (v, r, f) => v.set64(V.TSC_OFFSET, interesting64(r, f))],
  [3, (v, r) => v.set32(V.ASID, r.pick([0, 0, 2, 7, 8, 0xffffffff, r.u32()]))],
  [2, (v, r) => v.set32(V.TLB_CONTROL, r.chance(0.5) ? r.pick([1, 3, 7, 0xff]) : r.u32())],
  [4, (v, r) => v.set32(V.INT_CTL, r.chance(0.5) ? r.u32() : Number(r.sparse64() & 0xffffffffn) || 1 << 24)],
  [3, (v, r) => v.set32(V.INT_CTL, 0x100 | (r.below(16) << 16) | r.below(16) | (r.chance(0.5) ? 1 << 20 : 0) | (r.chance(0.5) ? 1 << 24 : 0))],
  [2, (v, r) => v.set32(V.INT_VECTOR, r.chance(0.7) ? r.below(256) : r.u32())],
  [2, (v, r) => v.set32(V.INT_STATE, r.chance(0.7) ? r.below(4) : r.u32())],
  [2, (v, r) => {
    v.set64(V.EXITCODE, r.u64());
    v.set64(V.EXITINFO1, r.u64());
    v.set64(V.EXITINFO2, r.u64());
    v.set32(V.EXITINTINFO, r.u32());
    v.set32(V.EXITINTINFO_ERR, r.u32());
  }],
  [3, (v, r) => v.set64(V.MISC_CTL, r.chance(0.5) ? BigInt(r.below(16)) : r.u64())],
  [2, (v, r, f) => v.set64(V.N_CR3, interesting64(r, f))],
  [1, (v, r) => {
    v.set64(V.AVIC_BAR, r.u64());
    v.set64(V.GHCB, r.u64());
    v.set64(0x0e0, r.u64());
    v.set64(0x0f0, r.u64());
    v.set64(0x0f8, r.u64());
    v.set64(0x108, r.u64());
  }],
  [14, (v, r) => {
    const [e, err] = eventInj(r);
    v.set32(V.EVENTINJ, e);
    v.set32(V.EVENTINJ_ERR, err);
  }],
  [2, (v, r) => v.set64(V.MISC_CTL2, r.chance(0.5) ? BigInt(r.below(4)) : r.u64())],
  [2, (v, r) => v.set32(V.CLEAN, r.u32())],
  [3, (v, r, f) => v.set64(V.NRIP, r.chance(0.6) ? v.u64(V.RIP) + BigInt(r.below(16)) : interesting64(r, f))],
  [1, (v, r) => {
    v.set8(V.INSN_LEN, r.below(256));
    for (let i = 0; i < 15; i++) v.set8(V.INSN_BYTES + i, r.below(256));
  }],
  [4, (v, r) => {
    // Junk in the reserved areas (never read by VMRUN, never written by #VMEXIT).
    for (let n = 1 + r.below(4); n > 0; n--) {
      const [a, b] = r.pick(RESERVED);
      const len = 1 + r.below(Math.min(32, b - a));
      const at = a + r.below(b - a - len + 1);
      for (let i = 0; i < len; i++) v.set8(at + i, r.below(256));
    }
  }],
  // ---- state-save area ----
  [10, (v, r) => {
    const o = r.pick(SEG_FIELDS);
    const attr = v.u16(o + 2);
    v.set16(o + 2, r.weighted<() => number>([[4, () => attr ^ (1 << r.below(12))], [2, () => r.below(0x1000)], [1, () => r.below(0x10000)], [1, () => 0]])());
  }],
  [3, (v, r) => v.set16(r.pick(SEG_FIELDS), r.below(0x10000))],
  [3, (v, r) => v.set32(r.pick(SEG_FIELDS) + 4, r.pick([0, 0xffff, 0xfffff, 0xffffffff, r.u32()]))],
  [3, (v, r, f) => v.set64(r.pick(SEG_FIELDS) + 8, interesting64(r, f))],
  [2, (v, r, f) => {
    const o = r.pick([V.FS, V.GS, V.LDTR, V.TR]);
    v.seg(o, r.below(0x10000), r.below(0x10000), r.u32(), interesting64(r, f));
  }],
  [4, (v, r, f) => {
    const o = r.pick([V.GDTR, V.IDTR]);
    if (r.chance(0.5)) v.set32(o + 4, r.chance(0.5) ? r.below(0x10000) : r.u32());
    else v.set64(o + 8, interesting64(r, f));
    if (r.chance(0.2)) v.set32(o, r.u32()); // selector/attrib of GDTR/IDTR: reserved
  }],
  [4, (v, r) => v.set8(V.CPL, r.chance(0.8) ? r.below(4) : r.below(256))],
  [8, (v, r) => v.set64(V.EFER, v.u64(V.EFER) ^ (1n << BigInt(r.chance(0.6) ? r.pick([0, 8, 9, 10, 11, 12, 13, 14, 15]) : r.below(64))))],
  [10, (v, r) => v.set64(V.CR0, v.u64(V.CR0) ^ (1n << BigInt(r.chance(0.8) ? r.pick([0, 1, 2, 3, 4, 5, 16, 18, 29, 30, 31]) : r.below(64))))],
  [3, (v, r) => v.set64(V.CR0, v.u64(V.CR0) | CR0_CD | (r.chance(0.5) ? CR0_NW : 0n))],
  [8, (v, r, f) => {
    const choices: bigint[] = [BigInt(L2_PML4), BigInt(L2_PD32), BigInt(L2_PAE_PDPT), BigInt(L2_PAE_PDPT + 32 * (1 + r.below(7))), BigInt(r.below(RAM_BYTES))];
    v.set64(V.CR3, r.weighted<() => bigint>([[4, () => r.pick(choices)], [2, () => v.u64(V.CR3) | BigInt(r.below(PAGE))], [2, () => v.u64(V.CR3) | (1n << BigInt(32 + r.below(32)))], [1, () => interesting64(r, f)]])());
  }],
  [10, (v, r) => v.set64(V.CR4, v.u64(V.CR4) ^ (1n << BigInt(r.chance(0.8) ? r.below(24) : r.below(64))))],
  [4, (v, r) => {
    v.set64(V.DR7, r.chance(0.6) ? BigInt(0x400 | (r.u32() & 0xffff2fff)) : r.u64());
  }],
  [3, (v, r) => v.set64(V.DR6, r.chance(0.6) ? BigInt(r.u32()) : r.u64())],
  [8, (v, r) => {
    const bits = [0, 1, 3, 5, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 31, 40, 63];
    v.set64(V.RFLAGS, r.chance(0.8) ? v.u64(V.RFLAGS) ^ (1n << BigInt(r.pick(bits))) : r.u64());
  }],
  [5, (v, r, f) => v.set64(V.RIP, r.weighted<() => bigint>([[3, () => v.u64(V.RIP) + BigInt(r.below(64))], [1, () => v.u64(V.RIP) + 0xc00n], [2, () => interesting64(r, f)]])())],
  [5, (v, r, f) => v.set64(V.RSP, r.chance(0.5) ? BigInt(r.pick([0, 2, 4, 6, 8, 0x10, 0xfff0, L2_STACK_TOP + 3, L2_RSP0])) : interesting64(r, f))],
  [4, (v, r, f) => v.set64(V.RAX, r.chance(0.5) ? BigInt(r.pick([L2_DATA, L2_SAVE, L2_SAVE + 1, 0])) : interesting64(r, f))],
  [2, (v, r, f) => v.set64(V.CR2, interesting64(r, f))],
  [2, (v, r) => v.set64(V.G_PAT, r.chance(0.5) ? r.u64() : 0x0007040600070406n ^ (1n << BigInt(r.below(64))))],
  [2, (v, r) => {
    for (let o = V.DBGCTL; o < V.DBGCTL + 0x28; o += 8) v.set64(o, r.u64());
  }],
  [2, (v, r) => {
    for (let o = V.STAR; o < V.STAR + 0x40; o += 8) v.set64(o, r.u64());
  }],
  [1, (v, r) => {
    for (let o = V.S_CET; o < V.S_CET + 0x18; o += 8) v.set64(o, r.u64());
    v.set64(0x6e0, r.u64());
    v.set8(0x4ca, r.below(256));
  }],
];

// ---- L2 code ----

function le32(v: number): number[] {
  return [v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, (v >>> 24) & 0xff];
}

const MSRS = [
  0x10, 0x1b, 0x174, 0x175, 0x176, 0x277, 0x2ff, 0xc0000080, 0xc0000081, 0xc0000082, 0xc0000100, 0xc0000101, 0xc0000102, 0xc0000103,
  0xc0000104, 0xc0010114, 0xc0010117, 0x2000, 0xc0002000, 0xc0012000, 0xbfffffff, 0x1fff, 0xc0001fff, 0xc0011fff,
];
const PORTS = [0x3f8, 0x80, 0x60, 0xcf8, 0xcfc, 0xffff, 0xfffe, 0xfffd, 0x7, 0x8, 0x0, 0x510, 0xe9];

type Item = readonly [number, string, (r: Rng, m: CodeSize) => number[]];

function codeItems(): Item[] {
  const o32 = (m: CodeSize) => (m === 16 ? [0x66] : []);
  const mov = (m: CodeSize, reg: number, v: number) => [...o32(m), 0xb8 + reg, ...le32(v)];
  const mem = (m: CodeSize, reg: number) => (m === 16 ? (reg << 3) | 7 : (reg << 3) | 3);
  const msr = (r: Rng) => (r.chance(0.85) ? r.pick(MSRS) : r.u32());
  const port = (r: Rng) => (r.chance(0.8) ? r.pick(PORTS) : r.below(0x10000));
  const crVal = (r: Rng, n: number) =>
    n === 0 ? (r.pick([0x80010033, 0x31, 0x11, 0x60000011, 0x80000011, 0x20000031, 0x80050033]) ^ (r.chance(0.3) ? 1 << r.below(32) : 0)) >>> 0
      : n === 3 ? r.pick([L2_PML4, L2_PD32, L2_PAE_PDPT, r.u32()])
        : n === 4 ? r.pick([0x20, 0x620, 0x6a0, 0x10, 0, 0x800, 0x10000, 0x40000, 1 << r.below(32)])
          : r.below(32);
  const svm = (op: number) => (r: Rng, m: CodeSize) => [...mov(m, 0, r.pick([L2_SAVE, L2_SAVE, L2_SAVE + 8, 0, r.u32()])), 0x0f, 0x01, op];
  return [
    [4, 'cpuid', (r, m) => [...mov(m, 0, r.pick([0, 1, 7, 0xd, 0x80000001, 0x80000008, 0x8000000a, r.u32()])), 0x0f, 0xa2]],
    [2, 'rdtsc', () => [0x0f, 0x31]],
    [2, 'rdtscp', () => [0x0f, 0x01, 0xf9]],
    [2, 'rdpmc', (r, m) => [...mov(m, 1, r.pick([0, 1, 3, 4, 0x40000000, r.u32()])), 0x0f, 0x33]],
    [2, 'pushf', () => [0x9c]],
    [3, 'popf', (r, m) => [...o32(m), 0x68, ...le32((2 | (r.u32() & 0x3f7fd5)) >>> 0), ...o32(m), 0x9d]],
    [3, 'hlt', () => [0xf4]],
    [2, 'pause', () => [0xf3, 0x90]],
    [2, 'invd', () => [0x0f, 0x08]],
    [2, 'wbinvd', () => [0x0f, 0x09]],
    [2, 'int3', () => [0xcc]],
    [1, 'into', () => [0xce]],
    [3, 'int n', (r) => [0xcd, r.chance(0.5) ? r.below(32) : r.below(256)]],
    [2, 'icebp', () => [0xf1]],
    [2, 'ud2', () => [0x0f, 0x0b]],
    [2, 'in imm', (r) => [0xe4, r.pick([0x80, 0x60, 0x70, 0xf4, 0xe9, r.below(256)])]],
    [2, 'out imm', (r) => [0xe6, r.pick([0x80, 0x60, 0x70, 0xf4, 0xe9, r.below(256)])]],
    [3, 'in dx', (r, m) => [...mov(m, 2, port(r)), ...r.pick([[0xec], [0xed], [0x66, 0xed]])]],
    [3, 'out dx', (r, m) => [...mov(m, 2, port(r)), ...r.pick([[0xee], [0xef], [0x66, 0xef]])]],
    [2, 'ins/outs', (r, m) => [...mov(m, 2, port(r)), ...(r.chance(0.5) ? [...mov(m, 1, 1 + r.below(4)), 0xf3] : []), r.pick([0x6c, 0x6e, 0x6d, 0x6f])]],
    [4, 'rdmsr', (r, m) => [...mov(m, 1, msr(r)), 0x0f, 0x32]],
    [3, 'wrmsr', (r, m) => [...mov(m, 1, msr(r)), ...mov(m, 0, r.u32()), ...mov(m, 2, r.chance(0.7) ? 0 : r.u32()), 0x0f, 0x30]],
    [4, 'mov r, crN', (r, m) => {
      const n = r.pick([0, 2, 3, 4, 8, 1, 5]);
      if (n === 8) return m === 64 ? [0x44, 0x0f, 0x20, 0xc0] : [0xf0, 0x0f, 0x20, 0xc0];
      return [0x0f, 0x20, 0xc0 | (n << 3)];
    }],
    [4, 'mov crN, r', (r, m) => {
      const n = r.pick([0, 0, 3, 4, 4, 8, 2]);
      const v = crVal(r, n);
      if (n === 8) return [...mov(m, 0, v), ...(m === 64 ? [0x44, 0x0f, 0x22, 0xc0] : [0xf0, 0x0f, 0x22, 0xc0])];
      return [...mov(m, 0, v), 0x0f, 0x22, 0xc0 | (n << 3)];
    }],
    [2, 'mov r, drN', (r) => [0x0f, 0x21, 0xc0 | (r.below(8) << 3)]],
    [3, 'mov drN, r', (r, m) => {
      const n = r.below(8);
      const v = n === 7 ? (0x400 | (r.u32() & 0xffff00ff)) >>> 0 : r.chance(0.5) ? L2_CODE + r.below(32) : r.u32();
      return [...mov(m, 0, v), 0x0f, 0x23, 0xc0 | (n << 3)];
    }],
    [2, 'lmsw', (r, m) => [...mov(m, 0, r.below(0x10000)), 0x0f, 0x01, 0xf0]],
    [2, 'clts', () => [0x0f, 0x06]],
    [2, 'smsw', () => [0x0f, 0x01, 0xe0]],
    [2, 'sidt/sgdt', (r, m) => [0x0f, 0x01, mem(m, r.below(2))]],
    [2, 'lidt/lgdt', (r, m) => [0x0f, 0x01, mem(m, 2 + r.below(2))]],
    [2, 'sldt/str', (r) => [0x0f, 0x00, r.pick([0xc0, 0xc8])]],
    [2, 'lldt/ltr', (r, m) => [...mov(m, 0, r.pick([0, 0x30, 0x38, 0x10, 0x20, r.below(0x10000)])), 0x0f, 0x00, r.pick([0xd0, 0xd8])]],
    [2, 'invlpg', (_r, m) => [0x0f, 0x01, mem(m, 7)]],
    [2, 'invlpga', (_r, m) => [...mov(m, 0, L2_DATA), 0x0f, 0x01, 0xdf]],
    [2, 'vmrun', svm(0xd8)],
    [3, 'vmmcall', () => [0x0f, 0x01, 0xd9]],
    [2, 'vmload', svm(0xda)],
    [2, 'vmsave', svm(0xdb)],
    [2, 'stgi', () => [0x0f, 0x01, 0xdc]],
    [2, 'clgi', () => [0x0f, 0x01, 0xdd]],
    [1, 'skinit', () => [0x0f, 0x01, 0xde]],
    [1, 'monitor', () => [0x0f, 0x01, 0xc8]],
    [1, 'mwait', () => [0x0f, 0x01, 0xc9]],
    [1, 'xsetbv', (r, m) => [...mov(m, 1, 0), ...mov(m, 0, r.pick([1, 3, 7])), ...mov(m, 2, 0), 0x0f, 0x01, 0xd1]],
    [1, 'rdpru', () => [0x0f, 0x01, 0xfd]],
    [1, 'xgetbv', () => [0x0f, 0x01, 0xd0]],
    [1, 'swapgs', () => [0x0f, 0x01, 0xf8]],
    [1, 'rdfsbase', () => [0xf3, 0x0f, 0xae, 0xc0]],
    [1, 'invpcid', (_r, m) => [0x66, 0x0f, 0x38, 0x82, mem(m, 0)]],
    [2, 'iret', (_r, m) => (m === 64 ? [0x48, 0xcf] : [0xcf])],
    [2, 'sti', () => [0xfb]],
    [1, 'cli', () => [0xfa]],
    [2, 'div by zero', (_r, m) => [...mov(m, 1, 0), 0xf7, 0xf1]],
    [1, 'syscall/sysenter/sysret', (r) => r.pick([[0x0f, 0x05], [0x0f, 0x34], [0x0f, 0x07], [0x0f, 0x35]])],
    [2, 'far jmp/call via TSS', (r, m) => [0xff, mem(m, r.pick([3, 5]))]],
    [1, 'mov ss/ds', (r, m) => [...mov(m, 0, r.pick([0x10, 0x4b, 0x28, 0, 0x1000, r.below(0x10000)])), 0x8e, r.pick([0xd0, 0xd8])]],
    [2, 'store', (_r, m) => [0x89, mem(m, 0)]],
    [1, 'inc mem', (_r, m) => [0xff, mem(m, 0)]],
    [1, 'push/pop', (r) => [r.pick([0x50, 0x58])]],
    [1, 'jmp $', () => [0xeb, 0xfe]],
    [1, 'x87/sse', (r) => r.pick([[0xdb, 0xe3], [0xd9, 0xe8], [0x0f, 0x58, 0xc0], [0x0f, 0xae, 0x03], [0x9b]])],
    [1, 'lar/lsl/verr', (r) => r.pick([[0x0f, 0x02, 0xc0], [0x0f, 0x03, 0xc0], [0x0f, 0x00, 0xe0]])],
    [4, 'random bytes', (r) => Array.from({ length: 1 + r.below(6) }, () => r.below(256))],
  ];
}
const ITEMS = codeItems();

function l2Code(rng: Rng, m: CodeSize): { parts: number[][]; names: string[] } {
  const parts: number[][] = [];
  const names: string[] = [];
  for (let n = 1 + rng.below(6); n > 0; n--) {
    const item = rng.weighted(ITEMS.map((it) => [it[0], it] as const));
    names.push(item[1]);
    parts.push(item[2](rng, m));
  }
  if (rng.chance(0.7)) {
    names.push('vmmcall');
    parts.push([0x0f, 0x01, 0xd9]);
  }
  return { parts, names };
}

/** The plan with L2 code made of `parts` (the code page rewritten accordingly). */
function withCode(plan: Plan, parts: number[][], names: string[]): Plan {
  const code = parts.flat();
  const page = new Uint8Array(PAGE).fill(0xf4);
  page.set(code.slice(0, 0xc00));
  page.set([0xf4, 0xeb, 0xfd], L2_HANDLER_HLT - L2_CODE);
  page.set([0x0f, 0x01, 0xd9, 0xf4, 0xeb, 0xfd], L2_HANDLER_VMMCALL - L2_CODE);
  const writes = plan.writes.filter((w) => w.addr !== L2_CODE);
  writes.push({ addr: L2_CODE, bytes: page });
  return { ...plan, writes, code: Uint8Array.from(code), codeParts: parts, codeItems: names };
}

// ---- L2 tables ----

function gdtEntry(base: number, limit: number, accessByte: number, flags: number): bigint {
  return (
    BigInt(limit & 0xffff) | (BigInt(base & 0xffffff) << 16n) | (BigInt(accessByte) << 40n) | (BigInt(((limit >>> 16) & 0xf) | (flags << 4)) << 48n) |
    (BigInt((base >>> 24) & 0xff) << 56n)
  );
}

function l2Tables(rng: Rng, plan: Plan): void {
  const w = (addr: number, bytes: Uint8Array) => plan.writes.push({ addr, bytes });
  const page = () => new Uint8Array(PAGE);
  const q = (b: Uint8Array, i: number, v: bigint) => new DataView(b.buffer).setBigUint64(i * 8, BigInt.asUintN(64, v), true);
  // 4-level: PML4 -> PDPT -> PD of 2 MiB pages covering 1 GiB (user, writable).
  const pml4 = page(), pdpt = page(), pd = page();
  q(pml4, 0, BigInt(L2_PDPT) | 0x27n);
  q(pdpt, 0, BigInt(L2_PD) | 0x27n);
  for (let i = 0; i < 512; i++) q(pd, i, (BigInt(i) << 21n) | 0xe7n);
  w(L2_PML4, pml4);
  w(L2_PDPT, pdpt);
  w(L2_PD, pd);
  // 32-bit: PD of 4 MiB pages (needs CR4.PSE).
  const pd32 = page();
  const dv32 = new DataView(pd32.buffer);
  for (let i = 0; i < 256; i++) dv32.setUint32(i * 4, ((i << 22) | 0xe7) >>> 0, true);
  w(L2_PD32, pd32);
  // Legacy PAE: slot 0 valid; slots 1-7 random variations (reserved bits, not present).
  const pdpts = page();
  const paePd = page();
  for (let i = 0; i < 512; i++) q(paePd, i, (BigInt(i) << 21n) | 0xe7n);
  for (let slot = 0; slot < 8; slot++)
    for (let e = 0; e < 4; e++) {
      let v = e === 0 ? BigInt(L2_PAE_PD) | 1n : 0n;
      if (slot > 0 && rng.chance(0.4)) {
        v = rng.chance(0.5) ? BigInt(L2_PAE_PD) | 1n : BigInt(rng.below(RAM_BYTES / PAGE)) << 12n;
        if (rng.chance(0.7)) v |= 1n << BigInt(rng.pick([1, 2, 5, 6, 7, 8, 48, 51, 52, 62, 63, rng.below(64)]));
        if (rng.chance(0.7)) v |= 1n;
      }
      if (slot === 0 && plan.profile === 'pae32' && rng.chance(0.1)) {
        v |= 1n << BigInt(rng.pick([1, 2, 5, 8, 52, 63]));
        plan.notes.push(`PAE PDPTE ${e} of the baseline PDPT gets a reserved bit`);
      }
      q(pdpts, slot * 4 + e, v);
    }
  w(L2_PAE_PDPT, pdpts);
  w(L2_PAE_PD, paePd);
  // IDTs: every vector to one of two handlers; a few gates broken on purpose.
  const idt64 = page(), idt32 = page(), ivt = page();
  const d64 = new DataView(idt64.buffer), d32 = new DataView(idt32.buffer), div = new DataView(ivt.buffer);
  const broken = rng.chance(0.15);
  for (let vec = 0; vec < 256; vec++) {
    const h = rng.chance(0.5) ? L2_HANDLER_HLT : L2_HANDLER_VMMCALL;
    let type = 0xee; // present, DPL3, interrupt gate
    let sel64 = 0x08, sel32 = 0x18;
    if (broken && rng.chance(0.1)) {
      type = rng.pick([0x6e, 0x8e, 0xe5, 0xef, 0xe0, rng.below(256)]);
      sel64 = sel32 = rng.pick([0, 0x10, 0x43, 0x30, rng.below(0x10000)]);
    }
    d64.setUint32(vec * 16, (h & 0xffff) | (sel64 << 16), true);
    d64.setUint32(vec * 16 + 4, (h & 0xffff0000) | (type << 8), true);
    d32.setUint32(vec * 8, (h & 0xffff) | (sel32 << 16), true);
    d32.setUint32(vec * 8 + 4, ((h & 0xffff0000) | (type << 8)) >>> 0, true);
    div.setUint16(vec * 4, h - L2_CODE, true);
    div.setUint16(vec * 4 + 2, L2_CODE >> 4, true);
  }
  if (broken) plan.notes.push('some L2 IDT gates are broken (type/selector)');
  w(L2_IDT64, idt64);
  w(L2_IDT32, idt32);
  w(L2_IVT, ivt);
  // GDT: the selectors the profiles use, a TSS (task-switch target) and an LDT.
  const gdt = page();
  const entries: [number, bigint][] = [
    [0x08, gdtEntry(0, 0xfffff, 0x9b, 0xa)], [0x10, gdtEntry(0, 0xfffff, 0x93, 0xc)], [0x18, gdtEntry(0, 0xfffff, 0x9b, 0xc)],
    [0x20, gdtEntry(L2_CODE, 0xffff, 0x9b, 0)], [0x28, gdtEntry(L2_CODE, 0xffff, 0x93, 0)], [0x30, gdtEntry(L2_TSS32, 0x67, 0x89, 0)],
    [0x38, gdtEntry(L2_GDT + 0x800, 0x17, 0x82, 0)], [0x40, gdtEntry(0, 0xfffff, 0xfb, 0xa)], [0x48, gdtEntry(0, 0xfffff, 0xf3, 0xc)],
    [0x50, gdtEntry(0, 0xfffff, 0xfb, 0xc)],
  ];
  for (const [sel, e] of entries) q(gdt, sel / 8, e);
  w(L2_GDT, gdt);
  const tss = page();
  const dt = new DataView(tss.buffer);
  dt.setUint32(4, L2_RSP0, true); // ESP0
  dt.setUint32(8, 0x10, true); // SS0
  dt.setUint32(0x1c, L2_PD32, true); // CR3
  dt.setUint32(0x20, L2_HANDLER_HLT, true); // EIP
  dt.setUint32(0x24, 2, true); // EFLAGS
  dt.setUint32(0x38, L2_STACK_TOP, true); // ESP
  for (const o of [0x48, 0x50, 0x54, 0x58, 0x5c]) dt.setUint32(o, 0x10, true); // ES SS DS FS GS
  dt.setUint32(0x4c, 0x18, true); // CS
  dt.setUint16(0x66, 0x68, true);
  w(L2_TSS32, tss);
  // Data page: a far pointer to the TSS selector at [rbx] (for far jmp/call), then junk.
  const data = page();
  for (let i = 8; i < PAGE; i++) data[i] = rng.below(256);
  data.set([0, 0, 0, 0, 0x30, 0, 0, 0]);
  w(L2_DATA, data);
  // IOPM (12 KiB) and MSRPM (8 KiB): empty, full or random, with the interesting ports/MSRs flipped.
  const fill = (n: number) => {
    const b = new Uint8Array(n);
    const kind = rng.pick(['zero', 'ones', 'random', 'sparse']);
    for (let i = 0; i < n; i++) b[i] = kind === 'ones' ? 0xff : kind === 'random' ? rng.below(256) : kind === 'sparse' && rng.chance(0.02) ? 1 << rng.below(8) : 0;
    return b;
  };
  w(IOPM_PA, fill(3 * PAGE));
  w(MSRPM_PA, fill(2 * PAGE));
}

function nestedTables(edit: [number, bigint] | null): { addr: number; bytes: Uint8Array }[] {
  const pml4 = new Uint8Array(PAGE), pdpt = new Uint8Array(PAGE), pd = new Uint8Array(PAGE);
  const q = (b: Uint8Array, i: number, v: bigint) => new DataView(b.buffer).setBigUint64(i * 8, BigInt.asUintN(64, v), true);
  q(pml4, 0, BigInt(NPT_PDPT) | 0x67n);
  q(pdpt, 0, BigInt(NPT_PD) | 0x67n);
  for (let i = 0; i < 512; i++) q(pd, i, (BigInt(i) << 21n) | 0xe7n);
  if (edit) {
    const [at, x] = edit;
    const b = at < NPT_PDPT ? pml4 : at < NPT_PD ? pdpt : pd;
    const dv = new DataView(b.buffer);
    dv.setBigUint64(at % PAGE, dv.getBigUint64(at % PAGE, true) ^ x, true);
  }
  return [{ addr: NPT_PML4, bytes: pml4 }, { addr: NPT_PDPT, bytes: pdpt }, { addr: NPT_PD, bytes: pd }];
}

// ---- the plan ----

export function generate(seed: number, index: number, f: Features): Plan {
  const rng = new Rng(seed, index);
  const profile = rng.weighted(PROFILES.map((p) => [p.weight, p] as const));
  const baseline = baselineVmcb(profile);
  const vmcb = baseline.clone();
  // How much L1 intercepts: as the baseline, everything, random words, or nothing but VMRUN.
  const style = rng.weighted([[5, 'baseline'], [2, 'all'], [2, 'random'], [1, 'none']] as const);
  if (style !== 'baseline')
    for (let k = 0; k < 6; k++) vmcb.set32(V.INTERCEPT_CR + 4 * k, style === 'all' ? (k === 5 ? 0 : 0xffffffff) : style === 'random' ? rng.u32() : 0);
  if (style !== 'baseline') vmcb.set32(V.WORD4, vmcb.u32(V.WORD4) | 1);
  const nMut = rng.weighted([[1, 0], [3, 1], [3, 2], [2, 3], [2, 4], [1, 6], [1, 9], [1, 14]] as const);
  for (let i = 0; i < nMut; i++) rng.weighted(MUTATIONS)(vmcb, rng, f);
  const notes: string[] = [];
  // Nested paging (when advertised): an identity nested map, sometimes with a broken entry.
  let nptEdit: [number, bigint] | null = null;
  if (f.np && rng.chance(0.3)) {
    vmcb.set64(V.MISC_CTL, vmcb.u64(V.MISC_CTL) | 1n);
    vmcb.set64(V.N_CR3, BigInt(NPT_PML4) | (rng.chance(0.1) ? BigInt(rng.below(PAGE)) : 0n));
    if (rng.chance(0.3)) {
      const at = rng.pick([NPT_PML4, NPT_PDPT, NPT_PD + 8 * (L2_CODE >> 21), NPT_PD + 8 * rng.below(8), NPT_PD + 8 * rng.below(512)]);
      nptEdit = [at, rng.pick([0n, 1n, 2n, 4n, 0x80n, 1n << 63n, 1n << 51n, 1n << 52n, 0x100000n, BigInt(rng.u32())])];
      notes.push(`nested page-table entry at 0x${at.toString(16)} XOR 0x${nptEdit[1].toString(16)}`);
    }
  }
  // L1: mode, VMRUN operand, host flags, debug registers, shared GPRs.
  const mode: L1Mode = rng.chance(0.2) ? 'pm32' : 'long';
  let vmcbPa = VMCB_PA;
  if (rng.chance(0.05)) vmcbPa = RAM_BYTES - PAGE;
  let rax = BigInt(vmcbPa);
  if (rng.chance(0.08)) {
    rax = rng.pick<() => bigint>([
      () => BigInt(vmcbPa + 1 + rng.below(PAGE - 1)), () => BigInt(RAM_BYTES), () => BigInt(RAM_BYTES) + BigInt(rng.below(1000)) * 0x1000n,
      () => 0xfee00000n, () => 1n << BigInt(f.maxPhyAddr), () => (1n << 63n) | BigInt(vmcbPa), () => BigInt(vmcbPa) | (1n << 32n), () => rng.u64(),
    ])();
    notes.push(`VMRUN operand rAX = 0x${rax.toString(16)}`);
  }
  if (mode === 'pm32' && rax >> 32n !== 0n) notes.push('L1 is in 32-bit mode: VMRUN uses EAX only');
  let hsave = HSAVE_PA;
  if (rng.chance(0.02)) {
    hsave = 0;
    notes.push('VM_HSAVE_PA = 0');
  }
  const svme = !rng.chance(0.01);
  if (!svme) notes.push("L1's EFER.SVME = 0");
  let rflags = 2 | (rng.u32() & 0x8d5) | (rng.chance(0.3) ? RF_IF : 0) | (rng.chance(0.1) ? 0x400 : 0);
  if (rng.chance(0.04)) {
    rflags |= RF_TF;
    notes.push('host RFLAGS.TF = 1');
  }
  const dr = [0, 1, 2, 3].map(() => BigInt(rng.chance(0.7) ? L2_CODE + rng.below(48) : rng.pick([L2_HANDLER_HLT, L2_HANDLER_VMMCALL, L2_DATA, L1_CODE, rng.u32()])));
  let dr7 = 0x400;
  if (rng.chance(0.03)) {
    dr[0] = BigInt(L1_CODE);
    dr7 = 0x401;
    if (rng.chance(0.3)) rflags |= RF_RF;
    notes.push(`L1 DR7 arms an instruction breakpoint on its VMRUN${rflags & RF_RF ? ' (host RFLAGS.RF = 1)' : ''}`);
  }
  const gprs: bigint[] = new Array(16).fill(0n);
  gprs[3] = BigInt(L2_DATA);
  gprs[6] = BigInt(L2_DATA + 0x100);
  gprs[7] = BigInt(L2_DATA + 0x200);
  gprs[5] = BigInt(L2_DATA + 0x300);
  for (const r of [1, 2, 8, 9, 10, 11, 12, 13, 14, 15]) gprs[r] = rng.chance(0.5) ? BigInt(rng.below(16)) : rng.chance(0.5) ? BigInt(rng.u32()) : rng.u64();
  const plan: Plan = {
    seed, index, profile: profile.name, vmcbPa, vmcb, baseline, writes: [], code: new Uint8Array(0), codeSize: profile.code, codeItems: [], codeParts: [],
    notes, l1: { mode, rax, hsave, svme, rflags, dr7, dr, gprs },
  };
  l2Tables(rng, plan);
  if (f.np) plan.writes.push(...nestedTables(nptEdit));
  // L2 code page: instructions at the start, handlers at +0xC00, HLT everywhere else.
  const { parts, names } = l2Code(rng, profile.code);
  return withCode(plan, parts, names);
}

// ---------------------------------------------------------------------------------------------
// The independent verdict: what VMRUN must do with this plan (spec §5.1, §5.2, §5.3).

export type Verdict =
  | { kind: 'l1-exception'; vector: number; why: string }
  | { kind: 'invalid'; why: string[] }
  | { kind: 'valid' }
  | { kind: 'either'; why: string[] };

const VALID_EXC = new Set(VALID_EXC_BASE);

/** The VMRUN operand as the CPU uses it (EAX outside 64-bit mode). */
function operand(plan: Plan): bigint {
  return plan.l1.mode === 'pm32' ? plan.l1.rax & 0xffffffffn : plan.l1.rax;
}

/** The page VMRUN reads as its VMCB, when the operand passes the §5.1/§5.2 address checks. */
export function effectiveVmcbPa(plan: Plan, f: Features): number | null {
  const a = operand(plan);
  if (a & 0xfffn || a >= 1n << BigInt(f.maxPhyAddr) || a + 0x1000n > BigInt(RAM_BYTES)) return null;
  return Number(a);
}

export function predict(plan: Plan, f: Features, readPhys: (addr: number, len: number) => Uint8Array | null): Verdict {
  const l1 = plan.l1;
  const top = 1n << BigInt(f.maxPhyAddr);
  // §6.8: an instruction breakpoint on VMRUN is the first fault-like exception.
  if (l1.dr7 & 3 && l1.dr[0] === BigInt(L1_CODE) && !(l1.rflags & RF_RF)) return { kind: 'l1-exception', vector: 1, why: 'instruction breakpoint (DR0) on VMRUN (§6.8)' };
  if (!l1.svme) return { kind: 'l1-exception', vector: 6, why: "#UD: L1's EFER.SVME = 0 (§5.1 step 1)" };
  const rax = operand(plan);
  if (rax & 0xfffn) return { kind: 'l1-exception', vector: 13, why: '#GP(0): rAX not 4 KiB aligned (§5.1 step 3)' };
  if (rax >= top) return { kind: 'l1-exception', vector: 13, why: '#GP(0): rAX beyond MAXPHYADDR (§5.1 step 3)' };
  if (l1.hsave === 0) return { kind: 'l1-exception', vector: 13, why: '#GP(0): VM_HSAVE_PA = 0 (§5.2 step 2)' };
  if (rax + 0x1000n > BigInt(RAM_BYTES)) return { kind: 'l1-exception', vector: 13, why: '#GP(0): the VMCB page is not RAM (§5.2 step 4)' };
  // The VMCB as VMRUN will read it: normally the plan's, but a truncated operand may point elsewhere.
  const v = Number(rax) === plan.vmcbPa ? plan.vmcb : new VmcbBuf(readPhys(Number(rax), PAGE) ?? new Uint8Array(PAGE));
  const fail: string[] = [];
  const maybe: string[] = [];
  const efer = v.u64(V.EFER), cr0 = v.u64(V.CR0), cr3 = v.u64(V.CR3), cr4 = v.u64(V.CR4);
  const csAttr = v.u16(V.CS + 2);
  if (!(efer & EFER_SVME)) fail.push('C1 EFER.SVME = 0');
  if (!(cr0 & CR0_CD) && cr0 & CR0_NW) fail.push('C2 CR0.CD = 0 and CR0.NW = 1');
  if (cr0 >> 32n) fail.push('C3 CR0[63:32] != 0');
  if (cr3 >> BigInt(f.maxPhyAddr)) fail.push('C4 CR3 has a bit at or above MAXPHYADDR');
  if (cr4 & ~f.cr4Valid & M64) fail.push(`C5 CR4 reserved bits 0x${(cr4 & ~f.cr4Valid & M64).toString(16)} (by CPUID)`);
  if (v.u64(V.DR6) >> 32n) fail.push('C6 DR6[63:32] != 0');
  if (v.u64(V.DR7) >> 32n) fail.push('C7 DR7[63:32] != 0');
  if (efer & ~f.eferValid & M64) fail.push(`C8 EFER reserved bits 0x${(efer & ~f.eferValid & M64).toString(16)} (by CPUID)`);
  const lmePg = (efer & EFER_LME) !== 0n && (cr0 & CR0_PG) !== 0n;
  if (lmePg && !(cr4 & CR4_PAE)) fail.push('C9 EFER.LME, CR0.PG and CR4.PAE = 0');
  if (lmePg && !(cr0 & CR0_PE)) fail.push('C10 EFER.LME, CR0.PG and CR0.PE = 0');
  if (lmePg && cr4 & CR4_PAE && csAttr & 0x200 && csAttr & 0x400) fail.push('C11 long mode with CS.L = CS.D = 1');
  if (!(v.u32(V.WORD4) & 1)) fail.push('C12 VMRUN intercept clear');
  if (v.u32(V.ASID) === 0) fail.push('C13 ASID = 0');
  const msrpm = v.u64(V.MSRPM) & ~0xfffn;
  const iopm = v.u64(V.IOPM) & ~0xfffn;
  if (msrpm >= top - 0x2000n) fail.push('C14 MSRPM beyond the physical-address limit');
  if (iopm >= top - 0x2001n) fail.push('C15 IOPM beyond the physical-address limit');
  const inj = v.u32(V.EVENTINJ);
  if (inj & 0x80000000) {
    const type = (inj >>> 8) & 7;
    const vec = inj & 0xff;
    if (type === 1 || type >= 5) fail.push(`C16 EVENTINJ type ${type}`);
    else if (type === 3 && !(VALID_EXC.has(vec) || (vec === 21 && f.shstk))) fail.push(`C16 EVENTINJ exception vector ${vec}`);
  }
  const npOn = f.np && (v.u64(V.MISC_CTL) & 1n) !== 0n;
  if (npOn) {
    if (v.u64(V.N_CR3) >> BigInt(f.maxPhyAddr)) fail.push('C17 N_CR3 not a legal physical address');
    if (l1.mode === 'pm32') fail.push("C18 NP_ENABLE with L1's CR0.PG = 0");
    const pat = v.u64(V.G_PAT);
    for (let i = 0n; i < 8n; i++) if (![0n, 1n, 4n, 5n, 6n, 7n].includes((pat >> (8n * i)) & 0xffn)) {
      fail.push('C19 G_PAT has an invalid memory type');
      break;
    }
  }
  if (f.vnmi && v.u32(V.INT_CTL) & (1 << 26) && !(v.u32(V.WORD3) & 2)) fail.push('C20 V_NMI_ENABLE without the NMI intercept');
  if (!npOn && cr0 & CR0_PG && cr4 & CR4_PAE && !(efer & EFER_LME)) {
    if (cr3 >= 1n << 32n) maybe.push('C21 legacy-PAE CR3 above 4 GiB (which bits locate the PDPT is not specified)');
    else {
      const at = Number(cr3 & 0xffffffe0n);
      const bytes = readPhys(at, 32);
      const rsvd = ((M64 << BigInt(f.maxPhyAddr)) & M64) | 0x1e6n;
      const dv = bytes ? new DataView(bytes.buffer, bytes.byteOffset, 32) : null;
      for (let i = 0; i < 4; i++) {
        const e = dv ? dv.getBigUint64(i * 8, true) : M64; // outside RAM reads as all ones
        if (e & 1n && e & rsvd) {
          fail.push(`C21 PDPTE ${i} = 0x${e.toString(16)} has reserved bits${dv ? '' : ' (not RAM)'}`);
          break;
        }
      }
    }
  }
  if (v.u32(V.WORD3) & (1 << 28) && msrpm < top - 0x2000n) {
    if (msrpm >= BigInt(RAM_BYTES)) fail.push('C22 MSR_PROT with the MSRPM outside RAM');
    else if (msrpm + 0x2000n > BigInt(RAM_BYTES)) maybe.push('C22 MSR_PROT with the MSRPM straddling the end of RAM');
  }
  if (fail.length) return { kind: 'invalid', why: fail };
  if (maybe.length) return { kind: 'either', why: maybe };
  return { kind: 'valid' };
}

// ---------------------------------------------------------------------------------------------
// The rig: a Machine with the L1 image, run one plan at a time.

interface Snapshot {
  s: Int32Array;
  rflags: number;
  gif: boolean;
  guest: boolean;
}

export interface Observation {
  end: 'done' | 'l1-exception' | 'halted-guest' | 'halted-host' | 'budget' | 'shutdown' | 'exit' | 'js-exception' | null;
  /** Where the machine was when it stopped (budget, shutdown). */
  inGuest: boolean;
  enteredGuest: boolean;
  snap: Snapshot | null;
  vector: number;
  message: string;
  error: unknown;
  pre: Int32Array;
  preRflags: number;
  vmcbBefore: Uint8Array;
  vmcbAfter: Uint8Array;
  l1Clobbered: boolean;
  icount: number;
  /** Instructions L2 retired between VMRUN and #VMEXIT (-1: no #VMEXIT seen). */
  l2Retired: number;
  vmrunIcount: number;
  /** Events (exceptions, interrupts) delivered through L2's IDT before the #VMEXIT. */
  l2Deliveries: number;
  /** n when the bytes at the saved CS.base + RIP (read physically) are INT n (CD nn), else null. */
  intAtRip: number | null;
  /** The frame of an L1 exception: RIP, RFLAGS and the error code if the vector pushes one. */
  l1Frame: { rip: bigint; rflags: bigint; err: bigint | null } | null;
}

export class Rig {
  readonly machine: Machine;
  readonly vcpu: Vcpu;
  private readonly templates: Record<L1Mode, Int32Array>;
  private readonly l1Image: Uint8Array;
  private obs: Observation | null = null;
  used = 0;

  constructor(readonly mode: ExecMode) {
    this.machine = new Machine({ ramBytes: RAM_BYTES, mode, maxInsns: 0, jitThreshold: mode === 'interp' ? Infinity : mode === 'one-insn' ? 1 : 2, debug: new Set(), log: () => {}, verify: false, cpus: 1 });
    this.vcpu = this.machine.vcpus[0];
    const m = this.machine;
    m.io.register(DONE_PORT, 3, {
      in: () => 0,
      out: (port, _size, value) => this.port(port, value),
    });
    const shutdown = m.shutdown.bind(m);
    m.shutdown = (status, message) => {
      const o = this.obs;
      if (o && !o.end) {
        o.end = 'shutdown';
        o.message = message;
        o.inGuest = this.vcpu.svm.guest;
      }
      return shutdown(status, message);
    };
    const exit = m.exit.bind(m);
    m.exit = (status) => {
      const o = this.obs;
      if (o && !o.end) {
        o.end = 'exit';
        o.message = `exit status ${status}`;
      }
      exit(status);
    };
    // Count the instructions L2 retires: VMRUN's own is added when its block ends (after the call).
    const svm = this.vcpu.svm;
    const cpu = this.vcpu.cpu;
    const vmrun = svm.vmrun.bind(svm);
    svm.vmrun = (pa, next) => {
      if (this.obs && !svm.guest) this.obs.vmrunIcount = cpu.st.icount;
      vmrun(pa, next);
    };
    const vmexit = svm.vmexit.bind(svm);
    svm.vmexit = (code, info1, info2, nrip) => {
      const o = this.obs;
      if (o && o.vmrunIcount >= 0 && o.l2Retired < 0) o.l2Retired = cpu.st.icount - o.vmrunIcount - 1;
      vmexit(code, info1, info2, nrip);
    };
    const deliver = this.vcpu.deliverEvent.bind(this.vcpu);
    this.vcpu.deliverEvent = (...args) => {
      const o = this.obs;
      if (o && svm.guest && o.l2Retired < 0) o.l2Deliveries++;
      deliver(...args);
    };
    this.l1Image = buildL1Image();
    m.mem.writePhys(L1_CODE, this.l1Image);
    this.templates = { long: this.l1Template('long'), pm32: this.l1Template('pm32') };
  }

  private port(port: number, value: number): void {
    const o = this.obs;
    const svm = this.vcpu.svm;
    if (!o || o.end || svm.guest) return; // L2 poking the ports is nothing special
    const cpu = this.vcpu.cpu;
    if (port === DONE_PORT || port === EXC_SNAP_PORT) o.snap = { s: cpu.s.slice(), rflags: getRflags(cpu), gif: svm.gif, guest: svm.guest };
    if (port === DONE_PORT) o.end = 'done';
    if (port === EXC_VECTOR_PORT) {
      o.end = 'l1-exception';
      o.vector = value & 0xff;
    }
    if (o.end) this.vcpu.engine.yieldAt = 0;
  }

  private l1Template(mode: L1Mode): Int32Array {
    const cpu = this.vcpu.cpu;
    const s = cpu.s;
    const keep = cpu.st.icount;
    s.fill(0);
    cpu.st.icount = keep;
    s[S.MXCSR] = 0x1f80;
    s[S.FPU_CW] = 0x037f;
    s[S.DR6] = 0xffff0ff0 | 0;
    s[S.DR7] = 0x400;
    if (mode === 'long') {
      s[S.CR0] = 0x80010033 | 0;
      s[S.CR4] = 0x6a0;
      s[S.EFER] = 0x1d01;
      s[S.CR3_LO] = L1_PML4;
      setSegCache(cpu, SegReg.CS, 0x08, A_CODE64, 0xffffffff, 0);
      for (const sr of [SegReg.ES, SegReg.SS, SegReg.DS, SegReg.FS, SegReg.GS]) setSegCache(cpu, sr, 0x10, A_DATA, 0xffffffff, 0);
      setSegCache(cpu, SegReg.TR, 0x20, 0x8b, 0x67, L1_TSS64);
      s[S.IDTR_BASE_LO] = L1_IDT64;
      s[S.IDTR_LIMIT] = 0xfff;
    } else {
      s[S.CR0] = 0x31;
      s[S.EFER] = 0x1000;
      setSegCache(cpu, SegReg.CS, 0x18, A_CODE32, 0xffffffff, 0);
      for (const sr of [SegReg.ES, SegReg.SS, SegReg.DS, SegReg.FS, SegReg.GS]) setSegCache(cpu, sr, 0x10, A_DATA, 0xffffffff, 0);
      setSegCache(cpu, SegReg.TR, 0x30, 0x8b, 0x67, L1_TSS32);
      s[S.IDTR_BASE_LO] = L1_IDT32;
      s[S.IDTR_LIMIT] = 0x7ff;
    }
    setSegCache(cpu, SegReg.LDTR, 0, 0x82, 0, 0);
    s[S.GDTR_BASE_LO] = L1_GDT;
    s[S.GDTR_LIMIT] = 0x3f;
    setRflags(cpu, 2);
    return s.slice();
  }

  /** Write the plan's memory and VMCB and set L1's registers (then `predict` may read RAM). */
  prepare(plan: Plan): void {
    const vcpu = this.vcpu;
    const cpu = vcpu.cpu;
    const mem = this.machine.mem;
    const svm = vcpu.svm;
    const s = cpu.s;
    this.used++;
    for (const w of plan.writes) mem.writePhys(w.addr, w.bytes);
    mem.writePhys(plan.vmcbPa, plan.vmcb.b);
    const keep = cpu.st.icount;
    s.set(this.templates[plan.l1.mode]);
    cpu.st.icount = keep;
    const l1 = plan.l1;
    for (let r = 0; r < 16; r++) set64(s, 2 * r, l1.gprs[r]);
    set64(s, 0, l1.rax);
    set64(s, 8, BigInt(L1_STACK_TOP));
    for (let n = 0; n < 4; n++) set64(s, S.DR0 + 2 * n, l1.dr[n]);
    s[S.DR7] = l1.dr7;
    if (!l1.svme) s[S.EFER] &= ~0x1000;
    setRflags(cpu, l1.rflags);
    cpu.st.rip = L1_CODE;
    svm.hsavePa = l1.hsave;
    svm.vmcr = 0; // an L2 WRMSR may have changed the (shared) VM_CR
    svm.gif = true;
    vcpu.shadow = vcpu.nmiPending = vcpu.nmiBlocked = false;
    vcpu.systemChanged(true);
  }

  /** Run the prepared plan; the observation holds everything the judge needs. */
  execute(plan: Plan, budget: number, f: Features): Observation {
    const vcpu = this.vcpu;
    const cpu = vcpu.cpu;
    const mem = this.machine.mem;
    const svm = vcpu.svm;
    const s = cpu.s;
    const obs: Observation = {
      end: null, inGuest: false, enteredGuest: false, snap: null, vector: -1, message: '', error: null, pre: s.slice(), preRflags: getRflags(cpu),
      vmcbBefore: new Uint8Array(0), vmcbAfter: new Uint8Array(0), l1Clobbered: false, icount: 0, l1Frame: null, l2Retired: -1, vmrunIcount: -1, l2Deliveries: 0, intAtRip: null,
    };
    const vmcbAt = effectiveVmcbPa(plan, f) ?? plan.vmcbPa;
    obs.vmcbBefore = mem.u8.slice(vmcbAt, vmcbAt + PAGE);
    this.obs = obs;
    const start = cpu.st.icount;
    let turns = 0;
    try {
      while (!obs.end) {
        if (svm.guest) obs.enteredGuest = true;
        if (!vcpu.runnable) {
          obs.end = svm.guest ? 'halted-guest' : 'halted-host';
          break;
        }
        const used = cpu.st.icount - start;
        if (used >= budget || turns >= budget) {
          obs.end = 'budget';
          obs.inGuest = svm.guest;
          break;
        }
        vcpu.turn(Math.max(1, Math.min(budget - used, 4096)));
        turns++;
      }
    } catch (e) {
      obs.end = 'js-exception';
      obs.error = e;
      obs.inGuest = svm.guest;
    }
    if (svm.guest) obs.enteredGuest = true;
    this.obs = null;
    obs.icount = cpu.st.icount - start;
    obs.vmcbAfter = mem.u8.slice(vmcbAt, vmcbAt + PAGE);
    {
      const a = new VmcbBuf(obs.vmcbAfter.slice());
      const lin = a.u64(V.CS + 8) + a.u64(V.RIP);
      if (lin + 2n <= BigInt(RAM_BYTES) && mem.u8[Number(lin)] === 0xcd) obs.intAtRip = mem.u8[Number(lin) + 1];
    }
    if (obs.end === 'l1-exception' && obs.snap) {
      // The frame the CPU pushed: [error code,] RIP, CS, RFLAGS (…) in 8- or 4-byte slots.
      const n = plan.l1.mode === 'long' ? 8 : 4;
      let at = Number(get64(obs.snap.s, 8) & 0xffffffffn);
      const slot = (): bigint => {
        const v = at + n <= RAM_BYTES ? (n === 8 ? mem.dv.getBigUint64(at, true) : BigInt(mem.dv.getUint32(at, true))) : 0n;
        at += n;
        return v;
      };
      const err = ERROR_CODE_VECTORS.has(obs.vector) ? slot() : null;
      const rip = slot();
      slot();
      obs.l1Frame = { rip, rflags: slot(), err };
    }
    const now = mem.u8.subarray(L1_CODE, L1_IMAGE_END);
    for (let i = 0; i < now.length; i++)
      if (now[i] !== this.l1Image[i]) {
        obs.l1Clobbered = true;
        break;
      }
    return obs;
  }

  /** Can the next iteration run on this machine? (L1 finished cleanly and is intact.) */
  reusable(o: Observation): boolean {
    return (o.end === 'done' || o.end === 'l1-exception') && !o.l1Clobbered && !this.vcpu.svm.guest && this.used < 64;
  }
}

function set64(s: Int32Array, lo: number, v: bigint): void {
  const u = BigInt.asUintN(64, v);
  s[lo] = Number(u & 0xffffffffn) | 0;
  s[lo + 1] = Number(u >> 32n) | 0;
}

function get64(s: Int32Array, lo: number): bigint {
  return (BigInt(s[lo + 1] >>> 0) << 32n) | BigInt(s[lo] >>> 0);
}

/** L1: code, GDT, both IDTs, page tables (identity 4 GiB, 1 GiB pages, A/D preset), TSSs. */
function buildL1Image(): Uint8Array {
  const img = new Uint8Array(L1_IMAGE_END - L1_CODE);
  const dv = new DataView(img.buffer);
  const at = (pa: number) => pa - L1_CODE;
  img.set([0x0f, 0x01, 0xd8, 0xe6, DONE_PORT, 0xeb, 0xfe], at(L1_CODE));
  // Stub v: out EXC_SNAP_PORT, al (snapshot with RAX intact); mov al, v; out EXC_VECTOR_PORT, al; jmp $.
  for (let vec = 0; vec < 256; vec++) img.set([0xe6, EXC_SNAP_PORT, 0xb0, vec, 0xe6, EXC_VECTOR_PORT, 0xeb, 0xfe], at(L1_STUBS + vec * STUB_SIZE));
  const gdt = [0n, gdtEntry(0, 0xfffff, 0x9b, 0xa), gdtEntry(0, 0xfffff, 0x93, 0xc), gdtEntry(0, 0xfffff, 0x9b, 0xc)];
  gdt.forEach((e, i) => dv.setBigUint64(at(L1_GDT) + 8 * i, e, true));
  dv.setBigUint64(at(L1_GDT) + 0x20, gdtEntry(L1_TSS64, 0x67, 0x8b, 0), true); // busy 64-bit TSS (+ upper half 0)
  dv.setBigUint64(at(L1_GDT) + 0x30, gdtEntry(L1_TSS32, 0x67, 0x8b, 0), true);
  for (let vec = 0; vec < 256; vec++) {
    const h = L1_STUBS + vec * STUB_SIZE;
    dv.setUint32(at(L1_IDT64) + vec * 16, (h & 0xffff) | (0x08 << 16), true);
    dv.setUint32(at(L1_IDT64) + vec * 16 + 4, (h & 0xffff0000) | 0x8e00, true);
    dv.setUint32(at(L1_IDT32) + vec * 8, (h & 0xffff) | (0x18 << 16), true);
    dv.setUint32(at(L1_IDT32) + vec * 8 + 4, (h & 0xffff0000) | 0x8e00, true);
  }
  dv.setBigUint64(at(L1_PML4), BigInt(L1_PDPT) | 0x23n, true);
  for (let i = 0; i < 4; i++) dv.setBigUint64(at(L1_PDPT) + 8 * i, (BigInt(i) << 30n) | 0xe3n, true);
  // The TSSs' ring-0 stacks are L2's (a CPL3 L2 uses L1's TR: TR is not switched by VMRUN).
  dv.setBigUint64(at(L1_TSS64) + 4, BigInt(L2_RSP0), true);
  dv.setUint16(at(L1_TSS64) + 0x66, 0x68, true);
  dv.setUint32(at(L1_TSS32) + 4, L2_RSP0, true);
  dv.setUint32(at(L1_TSS32) + 8, 0x10, true);
  dv.setUint16(at(L1_TSS32) + 0x66, 0x68, true);
  return img;
}

// ---------------------------------------------------------------------------------------------
// Judging an observation.

const EXIT_NAMES: Record<number, string> = {
  0x60: 'INTR', 0x61: 'NMI', 0x62: 'SMI', 0x63: 'INIT', 0x64: 'VINTR', 0x65: 'CR0_SEL_WRITE', 0x66: 'IDTR_READ', 0x67: 'GDTR_READ', 0x68: 'LDTR_READ',
  0x69: 'TR_READ', 0x6a: 'IDTR_WRITE', 0x6b: 'GDTR_WRITE', 0x6c: 'LDTR_WRITE', 0x6d: 'TR_WRITE', 0x6e: 'RDTSC', 0x6f: 'RDPMC', 0x70: 'PUSHF',
  0x71: 'POPF', 0x72: 'CPUID', 0x73: 'RSM', 0x74: 'IRET', 0x75: 'SWINT', 0x76: 'INVD', 0x77: 'PAUSE', 0x78: 'HLT', 0x79: 'INVLPG', 0x7a: 'INVLPGA',
  0x7b: 'IOIO', 0x7c: 'MSR', 0x7d: 'TASK_SWITCH', 0x7e: 'FERR_FREEZE', 0x7f: 'SHUTDOWN', 0x80: 'VMRUN', 0x81: 'VMMCALL', 0x82: 'VMLOAD', 0x83: 'VMSAVE',
  0x84: 'STGI', 0x85: 'CLGI', 0x86: 'SKINIT', 0x87: 'RDTSCP', 0x88: 'ICEBP', 0x89: 'WBINVD', 0x8a: 'MONITOR', 0x8b: 'MWAIT', 0x8c: 'MWAIT_COND',
  0x8d: 'XSETBV', 0x8e: 'RDPRU', 0x400: 'NPF',
};
const EXC_NAMES = ['#DE', '#DB', 'NMI', '#BP', '#OF', '#BR', '#UD', '#NM', '#DF', '9', '#TS', '#NP', '#SS', '#GP', '#PF', '15', '#MF', '#AC', '#MC', '#XM', '#VE', '#CP'];

export function exitName(code: bigint): string {
  if (code === M64) return 'VMEXIT_INVALID';
  const c = Number(code);
  if (code > 0xfffn) return `0x${code.toString(16)}`;
  if (c < 0x10) return `READ_CR${c}`;
  if (c < 0x20) return `WRITE_CR${c - 0x10}`;
  if (c < 0x30) return `READ_DR${c - 0x20}`;
  if (c < 0x40) return `WRITE_DR${c - 0x30}`;
  if (c < 0x60) return `EXCP ${EXC_NAMES[c - 0x40] ?? c - 0x40}`;
  return EXIT_NAMES[c] ?? `0x${c.toString(16)}`;
}

const ERROR_CODE_VECTORS = new Set([8, 10, 11, 12, 13, 14, 17, 21, 29, 30]);
/** Exceptions the CPU never raises by itself (so never an exception exit): only INT n could name them. */
const NEVER_RAISED = new Set([2, 9, 15, 20, 22, 23, 24, 25, 26, 27, 28, 29, 31]);
/** Exit codes of instruction intercepts: NRIP is the next instruction (§3.11). */
function isInsnExit(c: number): boolean {
  return c < 0x40 || (c >= 0x65 && c <= 0x7c) || (c >= 0x80 && c <= 0x8e);
}
/** Instruction exits that require CPL 0 (the #GP(0) for CPL > 0 comes first, §5.1, §6.9). */
function needsCpl0(c: number): boolean {
  return (c >= 0x02 && c < 0x40) || c === 0x65 || (c >= 0x6a && c <= 0x6d) || c === 0x76 || c === 0x78 || c === 0x79 || c === 0x7a || c === 0x7c || c === 0x89 || (c >= 0x80 && c <= 0x85 && c !== 0x81);
}

/** VMCB byte ranges a #VMEXIT may write (§5.6 steps 2-3). */
function exitWritable(f: Features, vmcbBefore: VmcbBuf): Uint8Array {
  const w = new Uint8Array(PAGE);
  const mark = (o: number, n: number) => w.fill(1, o, o + n);
  for (const o of SEG_FIELDS) mark(o, 16);
  mark(V.GDTR + 4, 12);
  mark(V.IDTR + 4, 12);
  mark(V.CPL, 1);
  mark(V.EFER, 8);
  mark(V.CR4, 0x580 - V.CR4); // CR4 CR3 CR0 DR7 DR6 RFLAGS RIP
  mark(V.RSP, 8);
  mark(V.RAX, 8);
  mark(V.CR2, 8);
  if (f.np && vmcbBefore.u64(V.MISC_CTL) & 1n) mark(V.G_PAT, 8);
  if (f.lbrv && vmcbBefore.u64(V.MISC_CTL2) & 1n) mark(V.DBGCTL, 0x28);
  if (f.shstk) mark(V.S_CET, 0x18);
  mark(V.INT_CTL, 4); // bit-checked separately
  mark(V.INT_STATE, 4);
  mark(V.EXITCODE, 0x20);
  mark(V.EVENTINJ, 8);
  mark(V.NRIP, 8);
  // The guest-instruction-bytes count is written (0 without DecodeAssists); the bytes only with it.
  mark(V.INSN_LEN, f.decodeAssists ? 16 : 1);
  return w;
}

const SEG_IDX = [SegReg.ES, SegReg.CS, SegReg.SS, SegReg.DS, SegReg.FS, SegReg.GS, SegReg.LDTR, SegReg.TR];
const SEG_NAMES = ['ES', 'CS', 'SS', 'DS', 'FS', 'GS', 'LDTR', 'TR'];

/** Compare L1 state slots; `which` lists [name, index] pairs. */
function diffState(pre: Int32Array, post: Int32Array, which: [string, number][], out: string[], what: string): void {
  for (const [n, i] of which) if (pre[i] !== post[i]) out.push(`${what}: ${n} 0x${(pre[i] >>> 0).toString(16)} became 0x${(post[i] >>> 0).toString(16)}`);
}

function segSlots(segs: number[]): [string, number][] {
  const out: [string, number][] = [];
  for (const sr of segs) {
    const b = S.SEG + 6 * sr;
    const n = SEG_NAMES[SEG_IDX.indexOf(sr)];
    out.push([`${n}.sel`, b], [`${n}.attr`, b + 1], [`${n}.limit`, b + 2], [`${n}.base.lo`, b + 4], [`${n}.base.hi`, b + 5]);
  }
  return out;
}

const GPR_SLOTS: [string, number][] = Array.from({ length: 32 }, (_, i) => [`${['rax', 'rcx', 'rdx', 'rbx', 'rsp', 'rbp', 'rsi', 'rdi', 'r8', 'r9', 'r10', 'r11', 'r12', 'r13', 'r14', 'r15'][i >> 1]}.${i & 1 ? 'hi' : 'lo'}`, i]);
const SYS_SLOTS: [string, number][] = [
  ['GDTR.base.lo', S.GDTR_BASE_LO], ['GDTR.base.hi', S.GDTR_BASE_HI], ['GDTR.limit', S.GDTR_LIMIT], ['IDTR.base.lo', S.IDTR_BASE_LO],
  ['IDTR.base.hi', S.IDTR_BASE_HI], ['IDTR.limit', S.IDTR_LIMIT], ['CR3.lo', S.CR3_LO], ['CR3.hi', S.CR3_HI], ['CR4', S.CR4], ['EFER', S.EFER],
];

export interface Judgement {
  label: string;
  failures: string[];
}

export function judge(plan: Plan, verdict: Verdict, o: Observation, f: Features): Judgement {
  const fails: string[] = [];
  const before = new VmcbBuf(o.vmcbBefore);
  const after = new VmcbBuf(o.vmcbAfter.slice());
  if (o.end === 'js-exception') {
    const e = o.error as Error;
    return { label: 'JS EXCEPTION', failures: [`JS exception ${o.inGuest ? 'in L2' : 'in L1'}: ${e && e.stack ? e.stack.split('\n').slice(0, 6).join('\n      ') : String(e)}`] };
  }
  if (o.end === 'exit') return { label: 'machine exit', failures: [`the machine asked to exit (${o.message}): nothing here may do that`] };
  if (o.end === 'halted-host') return { label: 'L1 halted', failures: o.l1Clobbered ? [] : ['L1 halted: it never executes HLT'] };
  if (verdict.kind === 'l1-exception') {
    const label = `L1 ${EXC_NAMES[verdict.vector]} (${verdict.why.replace(/ \(§.*\)$/, '')})`;
    if (o.end !== 'l1-exception' || o.vector !== verdict.vector) fails.push(`expected ${verdict.why} in L1, got ${describe(o, after)}`);
    else {
      if (!bytesEqual(o.vmcbBefore, o.vmcbAfter)) fails.push(`VMRUN faulted in L1 but wrote the VMCB: ${diffVmcb(before, after).join('; ')}`);
      const rip = o.l1Frame?.rip;
      if (rip !== undefined && rip !== BigInt(L1_CODE)) fails.push(`the L1 fault's RIP is 0x${rip.toString(16)}, expected VMRUN at 0x${L1_CODE.toString(16)}`);
      if (o.snap && !o.snap.gif) fails.push('GIF changed by a VMRUN that faulted');
    }
    return { label, failures: fails };
  }
  return judgeRun(plan, verdict, o, f, before, after, fails);
}

function describe(o: Observation, after: VmcbBuf): string {
  switch (o.end) {
    case 'done':
      return `VMRUN completing with EXITCODE ${exitName(after.u64(V.EXITCODE))}`;
    case 'l1-exception':
      return `L1 exception ${EXC_NAMES[o.vector] ?? o.vector}`;
    case 'halted-guest':
      return 'L2 halted';
    case 'budget':
      return `instruction budget exhausted in ${o.inGuest ? 'L2' : 'L1'}`;
    case 'shutdown':
      return `shutdown in ${o.inGuest ? 'L2' : 'L1'} (${o.message})`;
    default:
      return String(o.end);
  }
}

function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function judgeRun(plan: Plan, verdict: Verdict, o: Observation, f: Features, before: VmcbBuf, after: VmcbBuf, fails: string[]): Judgement {
  const l1 = plan.l1;
  const hostTf = (l1.rflags & RF_TF) !== 0;
  // Outcomes inside L2: the guest was entered, so VMRUN must have been valid.
  if (o.end === 'halted-guest' || o.end === 'budget' || o.end === 'shutdown') {
    const where = o.end === 'halted-guest' ? 'L2 halted' : o.end === 'budget' ? `timeout in ${o.inGuest ? 'L2' : 'L1'}` : `shutdown in ${o.inGuest ? 'L2' : 'L1'}`;
    if (o.end !== 'halted-guest' && !o.inGuest) {
      if (!o.l1Clobbered) fails.push(`${where}: L1 cannot loop or triple-fault after VMRUN (${o.message || 'budget'})`);
      return { label: where, failures: fails };
    }
    if (verdict.kind === 'invalid') fails.push(`VMRUN entered L2 although: ${verdict.why.join('; ')}`);
    const w3 = before.u32(V.WORD3);
    if (o.end === 'halted-guest' && w3 & (1 << 24)) fails.push('L2 halted although HLT is intercepted (word 3 bit 24)');
    if (o.end === 'shutdown' && w3 & (1 << 31)) fails.push(`L2 shut the machine down although SHUTDOWN is intercepted (word 3 bit 31): ${o.message}`);
    return { label: where, failures: fails };
  }
  if (o.end !== 'done' && o.end !== 'l1-exception') return { label: String(o.end), failures: [`unclassified end ${o.end}`] };
  const snap = o.snap!;
  const code = after.u64(V.EXITCODE);
  const invalid = code === M64;
  const label = invalid ? 'VMEXIT_INVALID' : `#VMEXIT ${exitName(code)}`;
  // The single-step trap owed to L1 (§5.2 "Debug behaviour", §5.4 step 6, §5.6 step 7).
  let expectRsp = get64(o.pre, 8);
  let expectDr6Bs = 0;
  if (o.end === 'l1-exception') {
    if (!(hostTf && o.vector === 1)) {
      if (!o.l1Clobbered) fails.push(`L1 took ${EXC_NAMES[o.vector] ?? `vector ${o.vector}`} after VMRUN (${invalid ? 'VMEXIT_INVALID' : `#VMEXIT ${exitName(code)}`}); expected none`);
      return { label: `${label}, then L1 ${EXC_NAMES[o.vector] ?? o.vector}`, failures: fails };
    }
    const fr = o.l1Frame;
    if (fr && fr.rip !== BigInt(L1_AFTER_VMRUN)) fails.push(`host TF: the #DB in L1 reports RIP 0x${fr.rip.toString(16)}, expected 0x${L1_AFTER_VMRUN.toString(16)} (after VMRUN)`);
    if (fr && (Number(fr.rflags) & ~RF_RF) !== (o.preRflags & ~RF_RF)) fails.push(`host TF: RFLAGS in the #DB frame 0x${fr.rflags.toString(16)}, expected 0x${(o.preRflags & ~RF_RF).toString(16)}`);
    expectRsp -= BigInt(l1.mode === 'long' ? 40 : 12);
    expectDr6Bs = 1 << 14;
  } else if (hostTf) fails.push('host RFLAGS.TF = 1 but no single-step #DB reached L1 after the VMRUN (§5.2, §5.4 step 6, §5.6 step 7)');
  if (!invalid && verdict.kind === 'invalid') fails.push(`VMRUN entered L2 although: ${verdict.why.join('; ')}`);
  if (invalid && verdict.kind === 'valid') fails.push('VMEXIT_INVALID but no check of §5.3 fails');
  if (snap.gif) fails.push('GIF = 1 after the #VMEXIT (must be 0: §5.4 step 3, §5.6 step 1)');
  if (snap.guest) fails.push('still in guest mode after the #VMEXIT');
  const s = snap.s;
  const pre = o.pre;
  const state: string[] = [];
  if (get64(s, 8) !== expectRsp) state.push(`RSP 0x${get64(pre, 8).toString(16)} became 0x${get64(s, 8).toString(16)}`);
  if (get64(s, 0) !== get64(pre, 0)) state.push(`RAX 0x${get64(pre, 0).toString(16)} became 0x${get64(s, 0).toString(16)} (host RAX is the VMCB address)`);
  diffState(pre, s, segSlots([SegReg.ES, SegReg.CS, SegReg.SS, SegReg.DS]), state, 'L1');
  diffState(pre, s, SYS_SLOTS, state, 'L1');
  if (s[S.CPL] !== 0) state.push(`CPL ${s[S.CPL]}`);
  if (o.end === 'done' && (snap.rflags & ~0) !== (o.preRflags & ~(RF_RF | RF_VM))) state.push(`RFLAGS 0x${o.preRflags.toString(16)} became 0x${snap.rflags.toString(16)} (expected RF and VM clear, the rest kept)`);
  if (invalid) {
    // §5.4: nothing but EXITCODE/EXITINFO1/EXITINFO2/EVENTINJ written; L1's state intact.
    const allowed = new Uint8Array(PAGE);
    allowed.fill(1, V.EXITCODE, V.EXITCODE + 24);
    allowed.fill(1, V.EVENTINJ, V.EVENTINJ + 8);
    const wrote = diffVmcb(before, after, allowed);
    if (wrote.length) fails.push(`VMEXIT_INVALID wrote fields it must not (§5.4 step 2): ${wrote.join('; ')}`);
    if (after.u64(V.EXITINFO1) !== 0n || after.u64(V.EXITINFO2) !== 0n) fails.push(`VMEXIT_INVALID with EXITINFO1/2 = 0x${after.u64(V.EXITINFO1).toString(16)}/0x${after.u64(V.EXITINFO2).toString(16)}`);
    if (after.u64(V.EVENTINJ) !== 0n) fails.push(`VMEXIT_INVALID left EVENTINJ = 0x${after.u64(V.EVENTINJ).toString(16)} (§5.4 step 2)`);
    diffState(pre, s, GPR_SLOTS.filter(([, i]) => i !== 8 && i !== 9 && i > 1), state, 'L1');
    diffState(pre, s, segSlots([SegReg.FS, SegReg.GS, SegReg.LDTR, SegReg.TR]), state, 'L1');
    diffState(pre, s, [['CR0', S.CR0], ['CR2.lo', S.CR2_LO], ['CR2.hi', S.CR2_HI], ['DR7', S.DR7]], state, 'L1');
    if ((s[S.DR6] | 0) !== (pre[S.DR6] | expectDr6Bs)) state.push(`DR6 0x${(pre[S.DR6] >>> 0).toString(16)} became 0x${(s[S.DR6] >>> 0).toString(16)}`);
    if (state.length) fails.push(`L1 state after VMEXIT_INVALID (§5.4 step 4): ${state.join('; ')}`);
    return { label, failures: o.l1Clobbered ? [] : fails };
  }
  // ---- a real #VMEXIT (§5.6) ----
  const c = Number(code);
  const w = (k: number) => before.u32(V.INTERCEPT_CR + 4 * k);
  const intercepted = (x: number): boolean => {
    if (x < 0x20) return ((w(0) >>> x) & 1) === 1;
    if (x < 0x40) return ((w(1) >>> (x - 0x20)) & 1) === 1;
    if (x < 0x60) return ((w(2) >>> (x - 0x40)) & 1) === 1;
    if (x < 0xc0) return ((w(3 + ((x - 0x60) >> 5)) >>> ((x - 0x60) & 31)) & 1) === 1;
    return false;
  };
  const info1 = after.u64(V.EXITINFO1), info2 = after.u64(V.EXITINFO2);
  const nrip = after.u64(V.NRIP), rip = after.u64(V.RIP);
  const savedCpl = after.u8(V.CPL) & 3;
  const savedEfer = after.u64(V.EFER), savedCr0 = after.u64(V.CR0), savedRflags = after.u64(V.RFLAGS);
  if (code > 0xfffn) fails.push(`EXITCODE 0x${code.toString(16)}: no such exit code (§4.1)`);
  else if (c === 0x400) {
    if (!(f.np && before.u64(V.MISC_CTL) & 1n)) fails.push('#VMEXIT(NPF) without nested paging');
    // §7.4: US always, exactly one of bits 32 (final GPA) / 33 (guest page-table access), RW for the latter.
    const e = info1;
    if (!(e & 4n) || ((e >> 32n) & 3n) === 0n || ((e >> 32n) & 3n) === 3n || (e & (1n << 33n) && !(e & 2n)) || e & ~0x3_0000_005fn)
      fails.push(`NPF EXITINFO1 0x${e.toString(16)} is malformed (§7.4)`);
    if (info2 >> BigInt(f.maxPhyAddr + 4)) fails.push(`NPF EXITINFO2 0x${info2.toString(16)} is not a guest-physical address`);
  } else if (c >= 0xc0) fails.push(`EXITCODE 0x${c.toString(16)} cannot happen here (§4.1)`);
  else {
    if (!intercepted(c)) fails.push(`#VMEXIT ${exitName(code)} although L1 did not intercept it`);
    const un = f.unadvertisedExits.get(c);
    if (un) fails.push(`#VMEXIT ${exitName(code)}: ${un}, so the instruction must #UD (§2.1)`);
    if ([0x60, 0x61, 0x62, 0x63, 0x7e].includes(c) || (c >= 0x8f && c < 0xa0)) fails.push(`#VMEXIT ${exitName(code)}: nothing in this machine raises that event`);
    if (c === 0x64 && !(before.u32(V.INT_CTL) & 0x100)) fails.push('#VMEXIT VINTR without V_IRQ');
    if ((c < 0x10 && [1, 5, 6, 7, 9, 10, 11, 12, 13, 14, 15].includes(c)) || (c >= 0x10 && c < 0x20 && [1, 5, 6, 7, 9, 10, 11, 12, 13, 14, 15].includes(c - 0x10))) fails.push(`#VMEXIT ${exitName(code)}: there is no such control register (#UD comes first, §6.9)`);
    if ((c >= 0x28 && c < 0x30) || (c >= 0x38 && c < 0x40)) fails.push(`#VMEXIT ${exitName(code)}: there is no such debug register (#UD comes first)`);
    if (c >= 0x40 && c < 0x60 && NEVER_RAISED.has(c - 0x40) && !(c === 0x55 && f.shstk)) fails.push(`#VMEXIT ${exitName(code)}: the CPU never raises exception ${c - 0x40} (INT n is not an exception, §6.7)`);
    // INT n is a software interrupt, not an exception: it exits only through SWINT (§3.3, §6.7).
    if (c >= 0x40 && o.intAtRip !== null && c === 0x40 + o.intAtRip && ![1, 13, 14].includes(o.intAtRip) && !(after.u32(V.EXITINTINFO) & 0x80000000))
      fails.push(`#VMEXIT ${exitName(code)} at an INT 0x${o.intAtRip.toString(16)} instruction: INT n is not exception ${o.intAtRip} (its intercept is SWINT 0x075, §6.7)`);
    // Exit information (§4.2, §4.3).
    if (c >= 0x40 && c < 0x60) {
      const vec = c - 0x40;
      if (!ERROR_CODE_VECTORS.has(vec) && info1 !== 0n) fails.push(`EXITINFO1 = 0x${info1.toString(16)} for ${exitName(code)} (no error code: 0)`);
      if (vec !== 14 && info2 !== 0n) fails.push(`EXITINFO2 = 0x${info2.toString(16)} for ${exitName(code)} (0)`);
      if (ERROR_CODE_VECTORS.has(vec) && info1 >> 32n) fails.push(`EXITINFO1 = 0x${info1.toString(16)}: an error code is 32 bits`);
    } else if (c === 0x7b) {
      const i = Number(info1 & 0xffffffffn);
      if (info1 >> 32n || i & 0xe002 || ![0x10, 0x20, 0x40].includes(i & 0x70) || ![0x80, 0x100, 0x200].includes(i & 0x380) || (i & 0x1c00 && !f.decodeAssists)) fails.push(`IOIO EXITINFO1 0x${info1.toString(16)} is malformed (§4.3)`);
      if (info2 !== nrip) fails.push(`IOIO EXITINFO2 0x${info2.toString(16)} != NRIP 0x${nrip.toString(16)} (the next RIP, §4.2)`);
    } else if (c === 0x7c) {
      if (info1 > 1n || info2 !== 0n) fails.push(`MSR exit with EXITINFO1/2 = 0x${info1.toString(16)}/0x${info2.toString(16)} (0 or 1 / 0)`);
    } else if (c === 0x7d) {
      if (info1 >> 16n) fails.push(`TASK_SWITCH EXITINFO1 0x${info1.toString(16)}: bits 63:16 must be 0 (selector only)`);
    } else if (!((c === 0x79 || c === 0x7a || c === 0x75 || c < 0x40) && f.decodeAssists)) {
      if (info1 !== 0n || info2 !== 0n) fails.push(`${exitName(code)} with EXITINFO1/2 = 0x${info1.toString(16)}/0x${info2.toString(16)} (both 0, §4.2)`);
    }
    // NRIP (§3.11) for instruction intercepts, when CS.base = 0 makes RIP and linear RIP agree.
    if (f.nrips && isInsnExit(c) && after.u64(V.CS + 8) === 0n && rip < 0xfffffff0n) {
      const d = nrip - rip;
      if (d < 1n || d > 15n) fails.push(`NRIP 0x${nrip.toString(16)} is not the next instruction after RIP 0x${rip.toString(16)} (§3.11)`);
    }
    // The checks that come before an intercept (§5.1, §6.9).
    if (needsCpl0(c) && savedCpl !== 0) fails.push(`${exitName(code)} from CPL ${savedCpl}: #GP(0) for CPL > 0 precedes the intercept (§6.9)`);
    const v86 = (savedCr0 & CR0_PE) !== 0n && (savedRflags & BigInt(RF_VM)) !== 0n;
    if (needsCpl0(c) && v86) fails.push(`${exitName(code)} from virtual-8086 mode: #GP precedes the intercept (§6.9)`);
    if ((c >= 0x80 && c <= 0x85 && c !== 0x81) || c === 0x7a) {
      if (!(savedEfer & EFER_SVME)) fails.push(`${exitName(code)} with L2's EFER.SVME = 0: #UD precedes the intercept (§5.1 step 1)`);
      if (!(savedCr0 & CR0_PE) || v86) fails.push(`${exitName(code)} outside protected mode: #UD precedes the intercept (§5.1 step 1)`);
    }
    if ([0x68, 0x69, 0x6c, 0x6d].includes(c) && (!(savedCr0 & CR0_PE) || v86)) fails.push(`${exitName(code)} outside protected mode: #UD precedes the intercept (§6.9)`);
    const savedCr4 = after.u64(V.CR4);
    if ((c === 0x6e || c === 0x87) && savedCpl > 0 && savedCr4 & 4n) fails.push(`${exitName(code)} at CPL ${savedCpl} with CR4.TSD: #GP precedes the intercept (§6.9)`);
    if (c === 0x6f && savedCpl > 0 && !(savedCr4 & 0x100n)) fails.push(`RDPMC at CPL ${savedCpl} with CR4.PCE = 0: #GP precedes the intercept (§6.9)`);
    if ((c === 0x80 || c === 0x82 || c === 0x83) && after.u64(V.RAX) & 0xfffn) fails.push(`${exitName(code)} with rAX 0x${after.u64(V.RAX).toString(16)} not page aligned: #GP(0) precedes the intercept (S0, §5.1 step 3)`);
  }
  // EVENTINJ consumed, EXITINTINFO well-formed (§3.6, §5.5, §5.6).
  if (after.u64(V.EVENTINJ) !== 0n) fails.push(`EVENTINJ = 0x${after.u64(V.EVENTINJ).toString(16)} after the #VMEXIT (must be 0, §5.6 step 3)`);
  const eii = after.u32(V.EXITINTINFO);
  if (eii & 0x80000000) {
    const t = (eii >>> 8) & 7;
    // EV goes with exceptions, unless the event is L1's own EVENTINJ echoed back (§5.5).
    const inj = before.u32(V.EVENTINJ);
    const echoed = (eii & 0x80000f00) === (inj & 0x80000f00) && (t === 2 || (eii & 0xff) === (inj & 0xff));
    if (![0, 2, 3, 4].includes(t) || eii & 0x7ffff000 || (eii & 0x800 && t !== 3 && !echoed)) fails.push(`EXITINTINFO 0x${eii.toString(16)} is malformed (§3.6)`);
    // Nothing ran in L2, so an event in delivery with the injected vector is L1's EVENTINJ: same
    // TYPE (#BP/#OF stay 3, §6.7). (A different vector is a later event: the injected one was
    // delivered and the handler's first instruction faulted, its own delivery failing.)
    const injected = before.u32(V.EVENTINJ);
    if (o.l2Retired === 0 && injected & 0x80000000 && (eii & 0xff) === (injected & 0xff) && ((eii >>> 8) & 7) !== ((injected >>> 8) & 7))
      fails.push(`EXITINTINFO 0x${eii.toString(16)} reports the injected event 0x${injected.toString(16)} with TYPE ${(eii >>> 8) & 7} instead of ${(injected >>> 8) & 7} (§6.7)`);
  } else if (eii !== 0 || after.u32(V.EXITINTINFO_ERR) !== 0) {
    // V = 0: nothing was being delivered; the rest of the field should be clean too.
    if (eii !== 0) fails.push(`EXITINTINFO 0x${eii.toString(16)} without V`);
  }
  // Nothing ran in L2: what #VMEXIT saved must be what VMRUN loaded (§5.2 step 11, §5.6 step 2).
  if (o.l2Retired === 0 && o.l2Deliveries === 0 && !(before.u32(V.EVENTINJ) & 0x80000000) && !(eii & 0x80000000) && ![0x41, 0x7d, 0x7f].includes(c) && rip === before.u64(V.RIP)) {
    const rt = roundTrip(before, after);
    if (rt.length) fails.push(`the state #VMEXIT saved differs from what VMRUN loaded, though L2 retired no instruction (§5.2 step 11, §5.6 step 2): ${rt.join('; ')}`);
  }
  // Only the fields #VMEXIT writes changed; int_ctl keeps L1's bits but V_TPR/V_IRQ (§3.5).
  const wrote = diffVmcb(before, after, exitWritable(f, before));
  if (wrote.length) fails.push(`#VMEXIT wrote fields it must not (§5.6): ${wrote.join('; ')}`);
  let dyn = 0xff | 0x100;
  if (f.vgif && before.u32(V.INT_CTL) & (1 << 25)) dyn |= 0x200;
  if (f.vnmi && before.u32(V.INT_CTL) & (1 << 26)) dyn |= 0x1800;
  const ic0 = before.u32(V.INT_CTL), ic1 = after.u32(V.INT_CTL);
  if ((ic0 ^ ic1) & ~dyn) fails.push(`int_ctl 0x${ic0.toString(16)} became 0x${ic1.toString(16)}: only V_TPR/V_IRQ may change (§3.5)`);
  if (!(ic0 & 0x100) && ic1 & 0x100) fails.push('V_IRQ set by the #VMEXIT although L1 did not request a virtual interrupt');
  if (!f.decodeAssists && after.u8(V.INSN_LEN) !== 0) fails.push(`guest instruction byte count ${after.u8(V.INSN_LEN)} without DecodeAssists (§3.13: 0)`);
  // Saved state sanity.
  if (!(after.u64(V.DR7) & 0x400n)) fails.push(`saved DR7 0x${after.u64(V.DR7).toString(16)} lacks bit 10`);
  if (!(savedRflags & 2n)) fails.push(`saved RFLAGS 0x${savedRflags.toString(16)} lacks bit 1`);
  // Host state (§5.6 step 5).
  if ((s[S.CR0] | 0) !== (pre[S.CR0] | 1)) state.push(`CR0 0x${(pre[S.CR0] >>> 0).toString(16)} became 0x${(s[S.CR0] >>> 0).toString(16)}`);
  if (s[S.DR7] !== 0x400) state.push(`DR7 = 0x${(s[S.DR7] >>> 0).toString(16)} (0x400 after #VMEXIT)`);
  if (BigInt(s[S.CR2_LO] >>> 0) + (BigInt(s[S.CR2_HI] >>> 0) << 32n) !== after.u64(V.CR2)) state.push("CR2 is not L2's last CR2 (host CR2 is not restored, §5.6 step 5)");
  if ((s[S.DR6] >>> 0) !== (Number(after.u64(V.DR6) & 0xffffffffn) | expectDr6Bs) >>> 0) state.push(`DR6 0x${(s[S.DR6] >>> 0).toString(16)} is not L2's DR6 0x${after.u64(V.DR6).toString(16)} (§5.6 step 5)`);
  if (state.length) fails.push(`L1 state after #VMEXIT (§5.6 step 5): ${state.join('; ')}`);
  // Host TF must not leak into L2 as a single-step trap before the first L2 instruction (§5.2).
  if (hostTf && c === 0x41 && rip === before.u64(V.RIP) && !(before.u64(V.RFLAGS) & BigInt(RF_TF)) && after.u64(V.DR6) & 0x4000n && !(before.u32(V.EVENTINJ) & 0x80000000))
    fails.push("host RFLAGS.TF produced a single-step #DB in L2 at its first instruction (the trap belongs to L1 after the #VMEXIT, §5.2)");
  return { label, failures: o.l1Clobbered ? fails.filter((x) => !x.startsWith('L1 state')) : fails };
}

function canonical48(v: bigint): bigint {
  return BigInt.asUintN(64, BigInt.asIntN(48, v));
}

/** Loaded vs saved state when L2 did nothing in between (forced bits and canonical bases applied). */
function roundTrip(lv: VmcbBuf, sv: VmcbBuf): string[] {
  const out: string[] = [];
  const cmp = (name: string, want: bigint, got: bigint) => {
    if (want !== got) out.push(`${name}: loaded 0x${want.toString(16)}, saved 0x${got.toString(16)}`);
  };
  const efer = lv.u64(V.EFER), cr0 = lv.u64(V.CR0);
  const long = (efer & EFER_LME) !== 0n && (cr0 & CR0_PG) !== 0n && (lv.u16(V.CS + 2) & 0x200) !== 0;
  for (const [name, off] of [['RAX', V.RAX], ['RSP', V.RSP], ['RIP', V.RIP]] as const) {
    const x = lv.u64(off);
    if (long || x >> 32n === 0n) cmp(name, x, sv.u64(off));
  }
  cmp('CR2', lv.u64(V.CR2), sv.u64(V.CR2));
  cmp('CR3', lv.u64(V.CR3), sv.u64(V.CR3));
  cmp('CR4', lv.u64(V.CR4), sv.u64(V.CR4));
  cmp('CR0 (but ET)', cr0 & ~CR0_ET, sv.u64(V.CR0) & ~CR0_ET);
  cmp('EFER (but LMA)', efer & ~EFER_LMA, sv.u64(V.EFER) & ~EFER_LMA);
  cmp('DR6', (lv.u64(V.DR6) | 0xffff0ff0n) & 0xffffffffn, sv.u64(V.DR6));
  cmp('DR7', lv.u64(V.DR7) | 0x400n, sv.u64(V.DR7));
  cmp('RFLAGS (defined bits)', (lv.u64(V.RFLAGS) | 2n) & 0x3f7fd7n, sv.u64(V.RFLAGS) & 0x3f7fd7n);
  const rfl = lv.u64(V.RFLAGS);
  const cpl = !(cr0 & CR0_PE) ? 0 : rfl & BigInt(RF_VM) ? 3 : lv.u8(V.CPL) & 3;
  cmp('CPL', BigInt(cpl), BigInt(sv.u8(V.CPL)));
  ['ES', 'CS', 'SS', 'DS'].forEach((n, i) => {
    const o = SEG_FIELDS[i];
    cmp(`${n}.sel`, BigInt(lv.u16(o)), BigInt(sv.u16(o)));
    cmp(`${n}.attrib`, BigInt(lv.u16(o + 2) & 0xfff), BigInt(sv.u16(o + 2) & 0xfff));
    cmp(`${n}.limit`, BigInt(lv.u32(o + 4)), BigInt(sv.u32(o + 4)));
    cmp(`${n}.base (canonical)`, canonical48(lv.u64(o + 8)), sv.u64(o + 8));
  });
  for (const [n, o] of [['GDTR', V.GDTR], ['IDTR', V.IDTR]] as const) {
    cmp(`${n}.limit`, BigInt(lv.u32(o + 4) & 0xffff), BigInt(sv.u32(o + 4) & 0xffff));
    cmp(`${n}.base (canonical)`, canonical48(lv.u64(o + 8)), sv.u64(o + 8));
  }
  cmp('int_state.INTERRUPT_SHADOW', BigInt(lv.u32(V.INT_STATE) & 1), BigInt(sv.u32(V.INT_STATE) & 1));
  return out;
}

/** Differences between two VMCB images, by field, outside `allowed` (all when omitted). */
function diffVmcb(a: VmcbBuf, b: VmcbBuf, allowed?: Uint8Array): string[] {
  const out: string[] = [];
  for (const [name, o, n] of FIELDS) {
    let differs = false;
    for (let i = o; i < o + n; i++) if (a.b[i] !== b.b[i] && !(allowed && allowed[i])) differs = true;
    if (differs) out.push(`${name}@0x${o.toString(16)} ${hex(a.b, o, n)} -> ${hex(b.b, o, n)}`);
  }
  for (const [s, e] of RESERVED) {
    for (let i = s; i < e; i++) {
      if (a.b[i] === b.b[i] || (allowed && allowed[i])) continue;
      let j = i;
      while (j < e && a.b[j] !== b.b[j]) j++;
      out.push(`reserved@0x${i.toString(16)}..0x${(j - 1).toString(16)} ${bytesHex(a.b, i, j)} -> ${bytesHex(b.b, i, j)}`);
      i = j;
    }
  }
  return out;
}

function hex(b: Uint8Array, o: number, n: number): string {
  if (n > 8) return bytesHex(b, o, o + n);
  let v = 0n;
  for (let i = n - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[o + i]);
  return `0x${v.toString(16)}`;
}

function bytesHex(b: Uint8Array, s: number, e: number): string {
  return Array.from(b.subarray(s, e), (x) => x.toString(16).padStart(2, '0')).join('');
}

// ---------------------------------------------------------------------------------------------
// Reports.

function disasm(code: Uint8Array, size: CodeSize): string[] {
  const out: string[] = [];
  for (let off = 0; off < code.length && out.length < 48; ) {
    let len = 1;
    let text: string;
    try {
      const insn = decode((a) => code[a] ?? 0xf4, off, size);
      len = Math.max(1, insn.len);
      text = disassemble(insn);
    } catch (e) {
      text = `(no instruction: ${String(e)})`;
    }
    out.push(`${bytesHex(code, off, Math.min(code.length, off + len)).padEnd(24)} ${text}`);
    off += len;
  }
  return out;
}

function describeVerdict(v: Verdict): string {
  switch (v.kind) {
    case 'l1-exception':
      return `L1 ${EXC_NAMES[v.vector]}: ${v.why}`;
    case 'invalid':
      return `VMEXIT_INVALID: ${v.why.join('; ')}`;
    case 'either':
      return `VMRUN may fail or succeed: ${v.why.join('; ')}`;
    default:
      return 'VMRUN succeeds (no check of §5.3 applies)';
  }
}

export function formatPlan(plan: Plan, verdict: Verdict | null): string[] {
  const l1 = plan.l1;
  const lines: string[] = [];
  if (verdict) lines.push(`  predicted: ${describeVerdict(verdict)}`);
  const diff = diffVmcb(plan.baseline, plan.vmcb);
  const op = operand(plan);
  if (op !== BigInt(plan.vmcbPa)) lines.push(`  note: VMRUN's operand as used is 0x${op.toString(16)}, not the page the VMCB below was written to`);
  lines.push(`  VMCB at 0x${plan.vmcbPa.toString(16)}: ${diff.length ? `fields that differ from the '${plan.profile}' baseline (baseline -> value):` : `the '${plan.profile}' baseline unchanged`}`);
  for (const d of diff) lines.push(`    ${d}`);
  lines.push(
    `  L1: ${l1.mode === 'long' ? '64-bit long mode' : '32-bit protected mode, no paging'}; VMRUN rAX 0x${l1.rax.toString(16)}; RFLAGS 0x${l1.rflags.toString(16)}; ` +
      `VM_HSAVE_PA 0x${l1.hsave.toString(16)}; DR7 0x${l1.dr7.toString(16)}; DR0-3 ${l1.dr.map((x) => `0x${x.toString(16)}`).join(' ')}`,
  );
  lines.push(`  shared GPRs: ${[1, 2, 3, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15].map((r) => `${GPR_SLOTS[2 * r][0].split('.')[0]}=0x${l1.gprs[r].toString(16)}`).join(' ')}`);
  for (const n of plan.notes) lines.push(`  note: ${n}`);
  lines.push(`  L2 code (${plan.codeSize}-bit, at physical 0x${L2_CODE.toString(16)}; ${plan.codeItems.join(', ')}; then HLT to the end of the page):`);
  for (const d of disasm(plan.code, plan.codeSize)) lines.push(`    ${d}`);
  return lines;
}

function formatOutcome(o: Observation): string[] {
  const a = new VmcbBuf(o.vmcbAfter.length ? o.vmcbAfter : new Uint8Array(PAGE));
  const lines = [`  outcome: ${describe(o, a)}${o.l1Clobbered ? ' (L2 overwrote L1 memory)' : ''}, ${o.icount} instructions`];
  if (o.end === 'done' || (o.end === 'l1-exception' && o.vmcbAfter.length)) {
    const f = (n: string, off: number, w = 8) => `${n} 0x${(w === 8 ? a.u64(off) : BigInt(a.u32(off))).toString(16)}`;
    lines.push(`  VMCB after: ${[f('EXITCODE', V.EXITCODE), f('EXITINFO1', V.EXITINFO1), f('EXITINFO2', V.EXITINFO2), f('EXITINTINFO', V.EXITINTINFO, 4), f('RIP', V.RIP), f('NRIP', V.NRIP), f('RSP', V.RSP), f('CR0', V.CR0), f('EFER', V.EFER), `CPL ${a.u8(V.CPL)}`].join(', ')}`);
  }
  if (o.l1Frame) lines.push(`  L1 exception frame: RIP 0x${o.l1Frame.rip.toString(16)}, RFLAGS 0x${o.l1Frame.rflags.toString(16)}${o.l1Frame.err !== null ? `, error code 0x${o.l1Frame.err.toString(16)}` : ''}`);
  return lines;
}

// ---------------------------------------------------------------------------------------------
// The driver.

export interface FuzzOptions {
  seed: number;
  /** Stop after this many iterations (Infinity: only the time limit). */
  iterations: number;
  seconds: number;
  /** Guest instructions per iteration before it counts as "timeout in L2". */
  budget: number;
  mode: ExecMode | 'mix';
  /** First iteration (a replay starts here, on a fresh machine). */
  from: number;
  /** Replay: run iterations from..only and report `only` in full. */
  only?: number;
  keepGoing: boolean;
  verbose: boolean;
  /** Shrink each new kind of failure to the VMCB fields, L1 settings and L2 instructions that matter. */
  shrink: boolean;
  log: (line: string) => void;
  /** Progress for the watchdog: [current iteration, its machine's first iteration, iterations done]. */
  heartbeat?: Int32Array;
}

export interface FuzzFailure {
  index: number;
  from: number;
  mode: ExecMode;
  signature: string;
  failures: string[];
}

export interface FuzzResult {
  iterations: number;
  histogram: Map<string, number>;
  verdicts: Map<string, number>;
  failures: FuzzFailure[];
  /** Failures whose signature was seen before (not printed again). */
  repeats: number;
  machines: number;
  ms: number;
}

/** one-insn compiles every instruction it meets (a vm.Script each): slow, so chosen less often. */
const MODES: readonly (readonly [number, ExecMode])[] = [[4, 'jit'], [3, 'interp'], [1, 'one-insn']];

export function modeFor(seed: number, from: number, mode: ExecMode | 'mix'): ExecMode {
  return mode === 'mix' ? new Rng(seed ^ 0x6d6f6465, from).weighted(MODES) : mode;
}

/** One iteration on `rig`: plan, predict, run, judge. */
export function iterate(rig: Rig, seed: number, index: number, f: Features, budget: number): { plan: Plan; verdict: Verdict; obs: Observation; judgement: Judgement } {
  const plan = generate(seed, index, f);
  return { plan, ...runPlan(rig, plan, f, budget) };
}

export function runPlan(rig: Rig, plan: Plan, f: Features, budget: number): { verdict: Verdict; obs: Observation; judgement: Judgement } {
  rig.prepare(plan);
  const mem = rig.machine.mem;
  const verdict = predict(plan, f, (a, n) => (a >= 0 && a + n <= RAM_BYTES ? mem.u8.slice(a, a + n) : null));
  const obs = rig.execute(plan, budget, f);
  return { verdict, obs, judgement: judge(plan, verdict, obs, f) };
}

/** The first failure's text with numbers and details stripped: what a shrunk plan must keep failing with. */
function kindOf(failure: string): string {
  const n = failure.replace(/(0x[0-9a-f]+|\b\d+\b)/gi, 'N');
  const head = n.replace(/:.*$/s, '');
  // Keep what tells kinds apart: the §5.3 checks named, the fields that differ.
  if (failure.startsWith('VMRUN entered L2') || failure.startsWith('VMEXIT_INVALID but')) return `${head}: ${[...failure.matchAll(/\bC\d+\b/g)].map((m) => m[0]).join(' ')}`;
  if (failure.startsWith('the state #VMEXIT saved')) return `${head}: ${[...failure.matchAll(/([A-Za-z_.0-9 ()]+): loaded/g)].map((m) => m[1].trim()).join(' ')}`;
  if (failure.startsWith('expected ')) return n.replace(/, got .*$/s, '');
  return head;
}

/**
 * The smallest plan found that still fails the same way on a fresh machine: each VMCB field
 * that differs from the baseline is put back, each L1 deviation undone and each L2
 * instruction dropped, one at a time, keeping every step after which the failure remains.
 */
export function shrink(plan: Plan, f: Features, mode: ExecMode, budget: number, failure: string, tick: () => void = () => {}): Plan {
  const want = kindOf(failure);
  const fails = (p: Plan) => {
    tick();
    try {
      return runPlan(new Rig(mode), p, f, budget).judgement.failures.some((x) => kindOf(x) === want);
    } catch {
      return false;
    }
  };
  let best = plan;
  const ranges: (readonly [number, number])[] = [...FIELDS.map(([, o, n]) => [o, o + n] as const), ...RESERVED];
  for (const [a, b] of ranges) {
    if (bytesEqual(best.vmcb.b.subarray(a, b), best.baseline.b.subarray(a, b))) continue;
    const v = best.vmcb.clone();
    v.b.set(best.baseline.b.subarray(a, b), a);
    const cand = { ...best, vmcb: v };
    if (fails(cand)) best = cand;
  }
  const l1Defaults: Partial<Plan['l1']>[] = [{ mode: 'long' }, { rax: BigInt(best.vmcbPa) }, { hsave: HSAVE_PA }, { svme: true }, { rflags: 2 }, { dr7: 0x400 }];
  for (const d of l1Defaults) {
    const cand = { ...best, l1: { ...best.l1, ...d } };
    if (JSON.stringify(cand.l1, (_, x) => (typeof x === 'bigint' ? x.toString() : x)) === JSON.stringify(best.l1, (_, x) => (typeof x === 'bigint' ? x.toString() : x))) continue;
    if (fails(cand)) best = cand;
  }
  for (let k = 0; k < best.codeParts.length; ) {
    const cand = withCode(best, best.codeParts.filter((_, i) => i !== k), best.codeItems.filter((_, i) => i !== k));
    if (fails(cand)) best = cand;
    else k++;
  }
  return best;
}

function signatureOf(failures: string[]): string {
  return failures.map(kindOf).sort().join(' | ');
}

export function runFuzz(o: FuzzOptions): FuzzResult {
  const t0 = Date.now();
  const res: FuzzResult = { iterations: 0, histogram: new Map(), verdicts: new Map(), failures: [], repeats: 0, machines: 0, ms: 0 };
  const seen = new Set<string>();
  let rig: Rig | null = null;
  let from = o.from;
  let f: Features | null = null;
  const last = o.only ?? Infinity;
  const deadline = o.only !== undefined ? Infinity : t0 + o.seconds * 1000;
  for (let i = o.from; i <= last && res.iterations < o.iterations && Date.now() < deadline; i++) {
    if (!rig) {
      from = i;
      rig = new Rig(modeFor(o.seed, from, o.mode));
      res.machines++;
      f ??= probeFeatures(rig.vcpu);
    }
    if (o.heartbeat) {
      Atomics.store(o.heartbeat, 0, i);
      Atomics.store(o.heartbeat, 1, from);
    }
    const feat: Features = f!;
    const { plan, verdict, obs, judgement: j } = iterate(rig, o.seed, i, feat, o.budget);
    res.iterations++;
    if (o.heartbeat) Atomics.add(o.heartbeat, 2, 1);
    res.histogram.set(j.label, (res.histogram.get(j.label) ?? 0) + 1);
    res.verdicts.set(verdict.kind, (res.verdicts.get(verdict.kind) ?? 0) + 1);
    if (o.verbose || i === o.only) o.log(`#${i} ${plan.profile}: ${j.label}${j.failures.length ? ' FAIL' : ''}`);
    if (i === o.only && !j.failures.length) for (const line of [...formatPlan(plan, verdict), ...formatOutcome(obs)]) o.log(line);
    if (j.failures.length) {
      const sig = signatureOf(j.failures);
      const mode = rig.mode;
      res.failures.push({ index: i, from, mode, signature: sig, failures: j.failures });
      if (seen.has(sig)) res.repeats++;
      else {
        seen.add(sig);
        o.log(`vmcb-fuzz: FAIL at iteration ${i} (seed ${o.seed}; machine since iteration ${from}, mode ${mode}, profile ${plan.profile})`);
        for (const x of j.failures) o.log(`  - ${x}`);
        for (const line of [...formatOutcome(obs), ...formatPlan(plan, verdict)]) o.log(line);
        let alone = from === i;
        if (!alone) {
          if (o.heartbeat) Atomics.add(o.heartbeat, 2, 1);
          const again = iterate(new Rig(mode), o.seed, i, feat, o.budget).judgement;
          alone = again.failures.length > 0;
        }
        o.log(
          `  reproduce: npm run fuzz-vmcb -- --seed ${o.seed} --iteration ${i} --mode ${mode}` +
            (alone ? '' : ` --from ${from}   (needs the machine's history: alone on a fresh machine it passes)`),
        );
        if (alone && o.shrink) {
          const small = shrink(plan, feat, mode, o.budget, j.failures[0], () => o.heartbeat && Atomics.add(o.heartbeat, 2, 1));
          o.log(`  shrunk (what still fails with "${j.failures[0].slice(0, 100)}" when everything else is baseline):`);
          for (const line of formatPlan(small, null).slice(0)) o.log(`  ${line}`);
        }
      }
      if (!o.keepGoing) break;
    }
    if (!rig.reusable(obs)) rig = null;
  }
  res.ms = Date.now() - t0;
  return res;
}

export function formatSummary(o: FuzzOptions, r: FuzzResult): string[] {
  const lines = [
    `vmcb-fuzz: seed ${o.seed}: ${r.iterations} iterations in ${(r.ms / 1000).toFixed(1)} s (${((r.iterations * 1000) / Math.max(1, r.ms)).toFixed(0)}/s, ${r.machines} machines), ` +
      `${r.failures.length} failing (${r.failures.length - r.repeats} distinct)`,
    `  predicted verdicts: ${[...r.verdicts].map(([k, n]) => `${k} ${n}`).join(', ')}`,
    '  outcomes:',
  ];
  for (const [k, n] of [...r.histogram].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))) lines.push(`    ${String(n).padStart(8)}  ${k}`);
  if (r.failures.length) {
    const bySig = new Map<string, FuzzFailure[]>();
    for (const x of r.failures) bySig.set(x.signature, [...(bySig.get(x.signature) ?? []), x]);
    lines.push('  failures by kind:');
    for (const [, xs] of bySig) lines.push(`    ${String(xs.length).padStart(8)}  ${xs[0].failures[0].slice(0, 150)} (first: iteration ${xs[0].index})`);
  }
  return lines;
}

// ---------------------------------------------------------------------------------------------
// Command line, and the watchdog thread that turns a JS-level hang into a failure.

const USAGE = `usage: npm run fuzz-vmcb -- [options]
  --seconds N       run for N seconds (default 10 unless --iterations is given)
  --iterations N    stop after N iterations
  --seed S          seed (default: time-based; printed)
  --iteration I     replay iteration I (with --from B: iterations B..I on one machine)
  --from B          first iteration (default 0)
  --mode M          jit, interp, one-insn or mix (default mix: chosen per machine)
  --budget N        guest instructions per iteration before "timeout in L2" (default 20000)
  --keep-going      do not stop at the first failure; print each kind of failure once
  --hang-seconds N  no progress for this long is a JS-level hang (default 15; an iteration takes milliseconds)
  --no-worker       run in the main thread (no hang watchdog)
  --no-shrink       print failures as generated, without the shrunk reproducer
  -v, --verbose     one line per iteration`;

function parseCli(argv: string[]): FuzzOptions & { hangSeconds: number; worker: boolean } {
  const { values } = parseArgs({
    args: argv,
    options: {
      seconds: { type: 'string' }, iterations: { type: 'string' }, seed: { type: 'string' }, iteration: { type: 'string' }, from: { type: 'string' },
      mode: { type: 'string' }, budget: { type: 'string' }, 'keep-going': { type: 'boolean' }, 'hang-seconds': { type: 'string' },
      'no-worker': { type: 'boolean' }, 'no-shrink': { type: 'boolean' }, verbose: { type: 'boolean', short: 'v' }, help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    console.log(USAGE);
    process.exit(0);
  }
  const num = (v: string | undefined, name: string, def: number) => {
    if (v === undefined) return def;
    const n = Number(v);
    if (!Number.isFinite(n) || n < 0) {
      console.error(`vmcb-fuzz: ${name} takes a non-negative number, not '${v}'\n${USAGE}`);
      process.exit(2);
    }
    return n;
  };
  const mode = values.mode ?? 'mix';
  if (!['jit', 'interp', 'one-insn', 'mix'].includes(mode)) {
    console.error(`vmcb-fuzz: --mode takes jit, interp, one-insn or mix\n${USAGE}`);
    process.exit(2);
  }
  const only = values.iteration !== undefined ? num(values.iteration, '--iteration', 0) : undefined;
  const iterations = num(values.iterations, '--iterations', Infinity);
  return {
    seed: num(values.seed, '--seed', Date.now() % 1000000),
    iterations,
    seconds: num(values.seconds, '--seconds', values.iterations !== undefined ? Infinity : 10),
    budget: num(values.budget, '--budget', 20000),
    mode: mode as ExecMode | 'mix',
    from: num(values.from, '--from', only ?? 0),
    only,
    keepGoing: !!values['keep-going'],
    verbose: !!values.verbose,
    shrink: !values['no-shrink'],
    log: (line) => console.log(line),
    hangSeconds: num(values['hang-seconds'], '--hang-seconds', 15),
    worker: !values['no-worker'] && only === undefined,
  };
}

function serialisable(r: FuzzResult): unknown {
  return { ...r, histogram: [...r.histogram], verdicts: [...r.verdicts] };
}

type WireResult = Omit<FuzzResult, 'histogram' | 'verdicts'> & { histogram: [string, number][]; verdicts: [string, number][] };

function main(): void {
  const o = parseCli(process.argv.slice(2));
  console.log(`vmcb-fuzz: seed ${o.seed}, ${o.only !== undefined ? `replaying iteration ${o.only} from ${o.from}` : `${Number.isFinite(o.seconds) ? `${o.seconds} s` : 'no time limit'}${Number.isFinite(o.iterations) ? `, ${o.iterations} iterations` : ''}`}, mode ${o.mode}, budget ${o.budget} instructions`);
  if (!o.worker) {
    const r = runFuzz(o);
    for (const line of formatSummary(o, r)) console.log(line);
    process.exitCode = r.failures.length ? 1 : 0;
    return;
  }
  // The fuzzing runs in a worker; this thread watches its progress counter. A worker that stops
  // making progress is a JS-level hang: it is reported, terminated and (with --keep-going)
  // replaced by a fresh one that continues after the hanging iteration.
  const total: FuzzResult = { iterations: 0, histogram: new Map(), verdicts: new Map(), failures: [], repeats: 0, machines: 0, ms: 0 };
  const t0 = Date.now();
  const finish = () => {
    total.ms = Date.now() - t0;
    for (const line of formatSummary(o, total)) console.log(line);
    process.exitCode = total.failures.length ? 1 : 0;
  };
  const start = (from: number) => {
    const hb = new Int32Array(new SharedArrayBuffer(12));
    Atomics.store(hb, 0, from);
    Atomics.store(hb, 1, from);
    const { log: _log, ...rest } = o;
    void _log;
    const data = { ...rest, from, iterations: o.iterations - total.iterations, seconds: Math.max(0, o.seconds - (Date.now() - t0) / 1000) };
    const worker = new Worker(new URL(import.meta.url), { workerData: { vmcbFuzz: data, hb } });
    let lastDone = -1;
    let lastChange = Date.now();
    let settled = false;
    const timer = setInterval(() => {
      const done = Atomics.load(hb, 2);
      if (done !== lastDone) {
        lastDone = done;
        lastChange = Date.now();
        return;
      }
      if (Date.now() - lastChange < o.hangSeconds * 1000) return;
      clearInterval(timer);
      settled = true;
      const i = Atomics.load(hb, 0), mfrom = Atomics.load(hb, 1);
      void worker.terminate();
      const mode = modeFor(o.seed, mfrom, o.mode);
      console.log(`vmcb-fuzz: FAIL at iteration ${i}: JS-level hang — no progress for ${o.hangSeconds} s (seed ${o.seed}; machine since iteration ${mfrom}, mode ${mode})`);
      const plan = generate(o.seed, i, probeFeatures(new Rig('interp').vcpu));
      for (const line of formatPlan(plan, null)) console.log(line);
      console.log(`  reproduce: npm run fuzz-vmcb -- --seed ${o.seed} --iteration ${i} --from ${mfrom} --mode ${mode}`);
      total.iterations += i - from;
      total.histogram.set('JS-LEVEL HANG', (total.histogram.get('JS-LEVEL HANG') ?? 0) + 1);
      total.failures.push({ index: i, from: mfrom, mode, signature: 'JS-level hang', failures: ['JS-level hang'] });
      if (o.keepGoing && total.iterations + 1 < o.iterations && Date.now() - t0 < o.seconds * 1000) {
        total.iterations++;
        start(i + 1);
      } else finish();
    }, 1000);
    worker.on('message', (m: { type: string; text?: string; result?: WireResult }) => {
      if (m.type === 'log') console.log(m.text);
      else if (m.type === 'done' && m.result) {
        settled = true;
        clearInterval(timer);
        const r = m.result;
        total.iterations += r.iterations;
        total.machines += r.machines;
        total.repeats += r.repeats;
        total.failures.push(...r.failures);
        for (const [k, n] of r.histogram) total.histogram.set(k, (total.histogram.get(k) ?? 0) + n);
        for (const [k, n] of r.verdicts) total.verdicts.set(k, (total.verdicts.get(k) ?? 0) + n);
        finish();
      }
    });
    worker.on('error', (e) => {
      if (settled) return;
      settled = true;
      clearInterval(timer);
      console.log(`vmcb-fuzz: FAIL: the fuzzing thread died: ${e.stack ?? e}`);
      total.failures.push({ index: Atomics.load(hb, 0), from: Atomics.load(hb, 1), mode: modeFor(o.seed, Atomics.load(hb, 1), o.mode), signature: 'fuzzer died', failures: [String(e)] });
      finish();
    });
    worker.on('exit', () => {
      if (settled) return;
      settled = true;
      clearInterval(timer);
      console.log('vmcb-fuzz: the fuzzing thread exited without a result');
      process.exitCode = 1;
    });
  };
  start(o.from);
}

if (!isMainThread && (workerData as { vmcbFuzz?: unknown } | null)?.vmcbFuzz) {
  const { vmcbFuzz, hb } = workerData as { vmcbFuzz: Omit<FuzzOptions, 'log'>; hb: Int32Array };
  const post = (text: string) => parentPort!.postMessage({ type: 'log', text });
  const r = runFuzz({ ...vmcbFuzz, iterations: vmcbFuzz.iterations ?? Infinity, seconds: vmcbFuzz.seconds ?? Infinity, log: post, heartbeat: hb });
  parentPort!.postMessage({ type: 'done', result: serialisable(r) });
} else if (isMainThread && process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main();
}
