/**
 * Segmentation for the bare-metal machine: descriptor-table reads, segment-register loads with
 * the protected-mode checks and their exceptions, and the CPU mode that follows from CS, SS,
 * CR0 and EFER.
 *
 * Segment caches live in the state buffer (S.SEG) in the VMCB's packing — selector, 12-bit
 * attributes, expanded limit, base — so the SVM code can copy them to and from a VMCB as they
 * are and compiled code can add a segment base with one load. Descriptor tables are read
 * through linear addresses with supervisor rights (the CPU's implicit accesses), so they fault
 * like any other access when paging maps them away.
 */
import { type Cpu, CpuMode, is64BitCode } from '../cpu/cpu.js';
import { CpuException, Vec } from '../cpu/exceptions.js';
import { S, SEG_STRIDE, SegField, SegReg } from '../cpu/state.js';

/** Attribute bits in the VMCB packing (descriptor bits 40-47 → 0-7, 52-55 → 8-11). */
export const enum Attr {
  TYPE_ACCESSED = 1 << 0,
  /** Data: writable; code: readable. */
  TYPE_RW = 1 << 1,
  /** Data: expand-down; code: conforming. */
  TYPE_DC = 1 << 2,
  TYPE_CODE = 1 << 3,
  /** Code or data (not a system descriptor). */
  S = 1 << 4,
  DPL_SHIFT = 5,
  P = 1 << 7,
  AVL = 1 << 8,
  L = 1 << 9,
  DB = 1 << 10,
  G = 1 << 11,
}

export const CR0_PE = 1;
export const CR0_MP = 2;
export const CR0_EM = 4;
export const CR0_TS = 8;
export const CR0_ET = 0x10;
export const CR0_NE = 0x20;
export const CR0_WP = 0x10000;
export const CR0_AM = 0x40000;
export const CR0_NW = 0x20000000;
export const CR0_CD = 0x40000000;
export const CR0_PG = 0x80000000 | 0;
export const CR4_OSFXSR = 0x200;
/**
 * CR4 bits MOV to CR4 (#GP) and VMRUN (consistency check C5) accept: bits 0-10 always, as KVM
 * does (VME, PVI and MCE are stored but have no effect here), and none of the later ones, whose
 * features (UMIP, FSGSBASE, PCIDE, OSXSAVE, SMEP, SMAP…) CPUID does not advertise.
 */
export const CR4_VALID = 0x7ff;
export const EFER_SCE = 1;
export const EFER_LME = 0x100;
export const EFER_LMA = 0x400;
export const EFER_NXE = 0x800;
export const EFER_SVME = 0x1000;

export function segAt(seg: number): number {
  return S.SEG + SEG_STRIDE * seg;
}

export function segBaseOf(cpu: Cpu, seg: number): number {
  const at = segAt(seg);
  return cpu.s[at + SegField.BASE_HI] * 4294967296 + (cpu.s[at + SegField.BASE_LO] >>> 0);
}

export function setSegCache(cpu: Cpu, seg: number, sel: number, attr: number, limit: number, base: number): void {
  const at = segAt(seg);
  const s = cpu.s;
  s[at + SegField.SEL] = sel & 0xffff;
  s[at + SegField.ATTR] = attr & 0xfff;
  s[at + SegField.LIMIT] = limit | 0;
  s[at + SegField.BASE_LO] = base | 0;
  s[at + SegField.BASE_HI] = Math.floor(base / 4294967296) | 0;
}

export function inLongMode(cpu: Cpu): boolean {
  return (cpu.s[S.EFER] & EFER_LMA) !== 0;
}

export function protectedMode(cpu: Cpu): boolean {
  return (cpu.s[S.CR0] & CR0_PE) !== 0;
}

/** The CpuMode implied by CR0.PE, EFER.LMA and the CS and SS caches. */
export function computeMode(cpu: Cpu): number {
  const s = cpu.s;
  const cs = s[segAt(SegReg.CS) + SegField.ATTR];
  const ss = s[segAt(SegReg.SS) + SegField.ATTR];
  const cr0 = s[S.CR0];
  const fpu = (cr0 & CR0_TS ? CpuMode.FPU_TS : 0) | (cr0 & CR0_EM ? CpuMode.FPU_EM : 0) | (cr0 & CR0_MP ? CpuMode.FPU_MP : 0) | (s[S.CR4] & CR4_OSFXSR ? 0 : CpuMode.NO_OSFXSR);
  if (inLongMode(cpu) && cs & Attr.L) return CpuMode.LONG64 | fpu;
  const code = cs & Attr.DB ? CpuMode.CODE32 : CpuMode.CODE16;
  return code | (ss & Attr.DB ? CpuMode.STACK32 : 0) | fpu;
}

/** A descriptor's two dwords, read into these slots (no allocation). */
export const desc = new Int32Array(2);

/** Attributes, limit and base of the descriptor in `desc`. */
export function descAttr(): number {
  return ((desc[1] >>> 8) & 0xff) | ((desc[1] >>> 12) & 0xf00);
}
export function descLimit(): number {
  const raw = (desc[0] & 0xffff) | (desc[1] & 0xf0000);
  return desc[1] & (1 << 23) ? ((raw << 12) | 0xfff) >>> 0 : raw;
}
export function descBase(): number {
  return ((desc[0] >>> 16) | ((desc[1] & 0xff) << 16) | (desc[1] & 0xff000000)) >>> 0;
}

/**
 * Read the 8-byte descriptor of selector `sel` from the GDT or LDT into `desc`. Beyond the
 * table's limit: #GP(selector), or the vector given (#TS for task-state loads).
 */
export function readDescriptor(cpu: Cpu, sel: number, vector: number = Vec.GP): number {
  const s = cpu.s;
  const index = sel & 0xfff8;
  let base: number, limit: number;
  if (sel & 4) {
    const ldt = segAt(SegReg.LDTR);
    if ((s[ldt + SegField.SEL] & 0xfffc) === 0) throw new CpuException(vector, sel & 0xfffc);
    base = segBaseOf(cpu, SegReg.LDTR);
    limit = s[ldt + SegField.LIMIT] >>> 0;
  } else {
    base = s[S.GDTR_BASE_HI] * 4294967296 + (s[S.GDTR_BASE_LO] >>> 0);
    limit = s[S.GDTR_LIMIT] & 0xffff;
  }
  if (index + 7 > limit) throw new CpuException(vector, sel & 0xfffc);
  const at = base + index;
  desc[0] = cpu.mem.read32(at);
  desc[1] = cpu.mem.read32(at + 4);
  return at;
}

/** Set the accessed bit of the descriptor at linear `at` (as the CPU does on a load). */
function markAccessed(cpu: Cpu, at: number): void {
  if (!(desc[1] & 0x100)) {
    desc[1] |= 0x100;
    cpu.mem.write32(at + 4, desc[1]);
  }
}

/** The upper 32 bits of a 16-byte system descriptor (long mode LDT/TSS/gates), read after `desc`. */
export function readDescriptorHigh(cpu: Cpu, at: number): number {
  return cpu.mem.read32(at + 8);
}

export function cpl(cpu: Cpu): number {
  return cpu.s[S.CPL];
}

/** Real-mode (and the CR0.PE=0 half of mode switches) segment load: base = selector × 16. */
function loadReal(cpu: Cpu, seg: number, sel: number): void {
  const at = segAt(seg);
  // The limit and attributes stay as they were ("unreal mode" keeps big limits), except that
  // CS loads in real mode make code 16-bit.
  const attr = seg === SegReg.CS ? cpu.s[at + SegField.ATTR] & ~(Attr.DB | Attr.L) : cpu.s[at + SegField.ATTR];
  setSegCache(cpu, seg, sel, attr | Attr.P | Attr.S, cpu.s[at + SegField.LIMIT], (sel & 0xffff) * 16);
}

/**
 * MOV/POP to a data segment register or SS (and LDS/LES…): the checks of the manuals'
 * segment-load pseudo-code, then the cache load. CS is loaded only by far transfers
 * (loadCodeSegment).
 */
export function loadDataSegment(cpu: Cpu, seg: number, sel: number, level = cpl(cpu), long64 = is64BitCode(cpu.mode)): void {
  sel &= 0xffff;
  if (!protectedMode(cpu)) return loadReal(cpu, seg, sel);
  const at = checkDataSegment(cpu, seg, sel, level, long64);
  if (at < 0) {
    setSegCache(cpu, seg, sel, 0, 0, 0);
    return;
  }
  markAccessed(cpu, at);
  setSegCache(cpu, seg, sel, descAttr(), descLimit(), descBase());
}

/**
 * The checks of a data-segment or SS load at privilege `level` (whose code is 64-bit when
 * `long64`), without loading: the descriptor's address (its dwords left in `desc`), or -1 for
 * an acceptable null selector. IRET and RETF check the new SS this way before changing anything.
 */
export function checkDataSegment(cpu: Cpu, seg: number, sel: number, level: number, long64: boolean): number {
  sel &= 0xffff;
  const rpl = sel & 3;
  if ((sel & 0xfffc) === 0) {
    // A null selector: fine for data segments (and for SS in 64-bit mode below CPL 3).
    if (seg === SegReg.SS && !(inLongMode(cpu) && long64 && level < 3)) throw new CpuException(Vec.GP, 0);
    return -1;
  }
  const at = readDescriptor(cpu, sel);
  const attr = descAttr();
  const dpl = (attr >> Attr.DPL_SHIFT) & 3;
  const isCode = (attr & Attr.TYPE_CODE) !== 0;
  if (!(attr & Attr.S)) throw new CpuException(Vec.GP, sel & 0xfffc);
  if (seg === SegReg.SS) {
    if (isCode || !(attr & Attr.TYPE_RW) || rpl !== level || dpl !== level) throw new CpuException(Vec.GP, sel & 0xfffc);
    if (!(attr & Attr.P)) throw new CpuException(Vec.SS, sel & 0xfffc);
  } else {
    // Data, or readable code; non-conforming ones need max(CPL, RPL) <= DPL.
    if (isCode && !(attr & Attr.TYPE_RW)) throw new CpuException(Vec.GP, sel & 0xfffc);
    if ((!isCode || !(attr & Attr.TYPE_DC)) && Math.max(level, rpl) > dpl) throw new CpuException(Vec.GP, sel & 0xfffc);
    if (!(attr & Attr.P)) throw new CpuException(Vec.NP, sel & 0xfffc);
  }
  return at;
}

/**
 * Check and load CS for a far JMP/CALL/RET/IRET or an interrupt to code segment `sel`, ending
 * at privilege `newCpl`. `returning` relaxes the RPL rule the way RETF/IRET need it.
 */
export function loadCodeSegment(cpu: Cpu, sel: number, newCpl: number): void {
  sel &= 0xffff;
  if (!protectedMode(cpu)) {
    loadReal(cpu, SegReg.CS, sel);
    return;
  }
  const at = checkCodeSegment(cpu, sel, newCpl);
  markAccessed(cpu, at);
  setSegCache(cpu, SegReg.CS, (sel & 0xfffc) | newCpl, descAttr(), descLimit(), descBase());
  cpu.s[S.CPL] = newCpl;
}

/** The checks of loadCodeSegment without the load: the descriptor's address (dwords in `desc`). */
export function checkCodeSegment(cpu: Cpu, sel: number, newCpl: number): number {
  sel &= 0xffff;
  if ((sel & 0xfffc) === 0) throw new CpuException(Vec.GP, 0);
  const at = readDescriptor(cpu, sel);
  const attr = descAttr();
  if (!(attr & Attr.S) || !(attr & Attr.TYPE_CODE)) throw new CpuException(Vec.GP, sel & 0xfffc);
  const dpl = (attr >> Attr.DPL_SHIFT) & 3;
  if (attr & Attr.TYPE_DC ? dpl > newCpl : dpl !== newCpl) throw new CpuException(Vec.GP, sel & 0xfffc);
  if (!(attr & Attr.P)) throw new CpuException(Vec.NP, sel & 0xfffc);
  // In long mode a code segment cannot be both 64-bit and 32-bit-default.
  if (inLongMode(cpu) && attr & Attr.L && attr & Attr.DB) throw new CpuException(Vec.GP, sel & 0xfffc);
  return at;
}

/** The DPL of the descriptor of `sel` without loading it (for privilege decisions before the load). */
export function codeDpl(cpu: Cpu, sel: number): number {
  if ((sel & 0xfffc) === 0) throw new CpuException(Vec.GP, 0);
  readDescriptor(cpu, sel);
  const attr = descAttr();
  if (!(attr & Attr.S) || !(attr & Attr.TYPE_CODE)) throw new CpuException(Vec.GP, sel & 0xfffc);
  return attr & Attr.TYPE_DC ? cpl(cpu) : (attr >> Attr.DPL_SHIFT) & 3;
}

/** After a privilege drop, data segments the new level may not use become null (IRET/RETF rule). */
export function nullInaccessibleSegments(cpu: Cpu): void {
  const level = cpl(cpu);
  for (const seg of [SegReg.ES, SegReg.DS, SegReg.FS, SegReg.GS]) {
    const at = segAt(seg);
    const attr = cpu.s[at + SegField.ATTR];
    const dpl = (attr >> Attr.DPL_SHIFT) & 3;
    const conformingCode = (attr & Attr.TYPE_CODE) !== 0 && (attr & Attr.TYPE_DC) !== 0;
    if ((cpu.s[at + SegField.SEL] & 0xfffc) !== 0 && !conformingCode && dpl < level) {
      // 64-bit mode keeps FS/GS bases that software set through MSRs; the selector becomes null.
      cpu.s[at + SegField.SEL] = 0;
      cpu.s[at + SegField.ATTR] = 0;
    }
  }
}

/** LDTR / TR loads: system descriptors (16 bytes in long mode). */
export function loadSystemSegment(cpu: Cpu, seg: SegReg.LDTR | SegReg.TR, sel: number): void {
  sel &= 0xffff;
  if (seg === SegReg.LDTR && (sel & 0xfffc) === 0) {
    setSegCache(cpu, seg, sel, 0, 0, 0);
    return;
  }
  if (sel & 4) throw new CpuException(Vec.GP, sel & 0xfffc);
  const at = readDescriptor(cpu, sel);
  const attr = descAttr();
  const type = attr & 0xf;
  const ok = seg === SegReg.LDTR ? type === 2 : type === 9 || (!inLongMode(cpu) && type === 1);
  if (attr & Attr.S || !ok) throw new CpuException(Vec.GP, sel & 0xfffc);
  if (!(attr & Attr.P)) throw new CpuException(Vec.NP, sel & 0xfffc);
  let base = descBase();
  if (inLongMode(cpu)) base += readDescriptorHigh(cpu, at) * 4294967296;
  const limit = descLimit();
  if (seg === SegReg.TR) {
    // LTR marks the TSS busy.
    desc[1] |= 0x200;
    cpu.mem.write32(at + 4, desc[1]);
  }
  setSegCache(cpu, seg, sel, descAttr(), limit, base);
}
