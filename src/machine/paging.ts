/**
 * The x86 page-table walker of machine mode: linear → physical translation for 32-bit, PAE,
 * 4-level and 5-level paging, with the permission rules, reserved-bit checks, accessed/dirty
 * updates and #PF error codes of the Intel SDM Vol. 3 ch. 4 and the AMD APM Vol. 2 ch. 5.
 *
 * It runs on every software-TLB miss, so a walk allocates nothing and uses no BigInt: 64-bit
 * entries are read as two 32-bit halves, the walk's bookkeeping lives in module-level scratch,
 * and the result goes into a caller-owned WalkResult.
 *
 * The result is shaped for a TLB: besides the physical page it carries the rights of the
 * whole path (Perm), independent of the access that caused the walk. `translationServes`
 * tells whether a cached translation may serve a later access of another kind; when it says
 * no (a write to a page whose D bit is still clear, or an access the rights refuse), the TLB
 * walks again, which sets D or raises the #PF with its exact error code, as hardware does.
 * The live controls (CR0.WP, CR4.SMEP/SMAP, RFLAGS.AC) are read from the context at check
 * time, so a STAC/CLAC needs no TLB flush; CR0/CR4/EFER writes that change paging flush it.
 *
 * Nested paging (SVM NPT, spec/svm.md §7) is the same walk run twice over: when the context
 * carries a NestedContext, every guest table entry address and the final address are
 * guest-physical, and each goes through the nested tables (walked by the very same code, in
 * the format of L1's paging mode) before it is used. The guest walk's scratch is set aside
 * while a nested walk runs, so nothing is allocated either way; without a NestedContext the
 * walk does what it always did, at the cost of a null test per level.
 */
import { CpuException, PfErr, Vec } from '../cpu/exceptions.js';

/** Physical-address width the walker enforces (CPUID 0x8000_0008 EAX[7:0] must agree). */
export const MAXPHYADDR = 48;

/** What kind of access is being translated: bit flags, combined. */
export const enum Access {
  /** A data write (absent: a read, or a fetch with FETCH). */
  WRITE = 1,
  /** A CPL-3 access (user-mode access unless IMPLICIT_SUPERVISOR is also set). */
  USER = 2,
  /** An instruction fetch. */
  FETCH = 4,
  /** A system-structure access (GDT/LDT/IDT/TSS) made on behalf of CPL 3: a supervisor access that ignores RFLAGS.AC. */
  IMPLICIT_SUPERVISOR = 8,
}

/** The rights of a translation, accumulated over every entry of its path. */
export const enum Perm {
  /** R/W = 1 at every level. */
  WRITE = 1,
  /** U/S = 1 at every level: a user-mode address. */
  USER = 2,
  /** No XD bit on the path (or EFER.NXE = 0). */
  EXEC = 4,
  /** The leaf's G bit with CR4.PGE = 1: survives CR3 loads. */
  GLOBAL = 8,
  /**
   * A write needs no walk: the leaf's D bit is set (and, under nested paging, the nested
   * path allows writes and its leaf is dirty too).
   */
  DIRTY = 16,
}

/** Which translation structure is in use, from CR0.PG, CR4.PAE, EFER.LMA and CR4.LA57. */
export const enum PagingMode {
  /** CR0.PG = 0: linear = physical (32-bit). */
  NONE = 0,
  /** 32-bit paging, with 4 MiB pages under CR4.PSE. */
  LEGACY32 = 1,
  /** PAE paging through the four PDPTE registers. */
  PAE = 2,
  /** 4-level paging (long mode). */
  LONG4 = 3,
  /** 5-level paging (long mode with CR4.LA57). */
  LONG5 = 4,
}

/** The system state a walk depends on. */
export interface PagingContext {
  /** CR0 (signed or unsigned 32-bit value). */
  cr0: number;
  /** CR3 as a JS number (physical table address, plus PCID or PWT/PCD in bits 11:0). */
  cr3: number;
  cr4: number;
  /** EFER's low 32 bits (NXE, LMA). */
  efer: number;
  /** RFLAGS.AC: with CR4.SMAP, explicit supervisor data accesses reach user pages only when set. */
  ac: boolean;
  /** PAE paging's PDPTE registers (see loadPdptes): entry i has its low half at [2i], high half at [2i+1]. */
  pdptes: Uint32Array;
  /**
   * Nested paging for an SVM guest (null or absent: none). With it, the walk's table entries
   * and its result are guest-physical addresses, translated through these nested tables, and
   * PAE paging reads its PDPTEs from guest memory at each walk instead of from `pdptes`.
   */
  nested?: NestedContext | null;
}

/** The nested tables of an SVM guest (spec/svm.md §7.2) and how their faults are reported. */
export interface NestedContext {
  /**
   * The nested tables as a paging context: cr3 = N_CR3, cr0/cr4/efer = L1's at VMRUN with
   * CR0.PG set (they choose the format, NX and the fault's I/D bit). Its own `nested` is null:
   * nested tables hold host-physical addresses.
   */
  readonly tables: PagingContext;
  /**
   * Raise the nested-page fault; never returns. `cause` is 0 (not present), PfErr.P or
   * PfErr.P | PfErr.RSVD; `access` the Access bits of the nested access (USER always, WRITE
   * for guest table accesses); `gpa` the guest-physical address whose translation failed;
   * `guestTable` whether it was the address of a guest table entry (else the final address).
   */
  fault(cause: number, access: number, gpa: number, guestTable: boolean): never;
}

/** A successful translation; the caller owns one and passes it to every walk (a faulting walk leaves it alone). */
export class WalkResult {
  /** Physical address of the translated byte. */
  phys = 0;
  /** Physical address of the start of the page (4 KiB, 2 MiB, 4 MiB or 1 GiB). */
  pageBase = 0;
  pageSize = 0;
  /** Perm bits of the whole path. */
  perms = 0;
}

const CR0_WP = 1 << 16;
const CR0_PG = 1 << 31;
const CR4_PSE = 1 << 4;
const CR4_PAE = 1 << 5;
const CR4_PGE = 1 << 7;
const CR4_LA57 = 1 << 12;
const CR4_SMEP = 1 << 20;
const CR4_SMAP = 1 << 21;
const EFER_LMA = 1 << 10;
const EFER_NXE = 1 << 11;

// Entry bits (low half).
const PTE_P = 1 << 0;
const PTE_RW = 1 << 1;
const PTE_US = 1 << 2;
const PTE_A = 1 << 5;
const PTE_D = 1 << 6;
const PTE_PS = 1 << 7;
const PTE_G = 1 << 8;
/** XD is bit 63: bit 31 of the high half. */
const PTE_XD_HI = 0x80000000;

const TWO32 = 2 ** 32;
const PAGE = 4096;
/** Clears the offset bits of a 32-bit value (as int32: `>>> 0` makes it unsigned again). */
const PAGE_MASK = -PAGE;
/** Address bits MAXPHYADDR-1:32 of an entry, in its high half. */
const PHYS_HI_MASK = 2 ** (MAXPHYADDR - 32) - 1;
/** Bits 51:MAXPHYADDR (high half): reserved in every PAE and long-mode entry. */
const PHYS_RESERVED_HI = (2 ** (52 - 32) - 1) & ~PHYS_HI_MASK;
/** Bits 62:52 (high half): ignored in long mode but reserved in PAE paging. */
const PAE_HIGH_RESERVED_HI = 0x7ff00000;
/** PAE PDPTE: bits 2:1 and 8:5 are reserved (low half), and so is everything from MAXPHYADDR to 63. */
const PDPTE_RESERVED_LO = 0x1e6;
const PDPTE_RESERVED_HI = (PAE_HIGH_RESERVED_HI | PTE_XD_HI | PHYS_RESERVED_HI) >>> 0;
/** 1 GiB page: bits 29:13 (bit 12 is PAT). */
const HUGE_1G_RESERVED_LO = 0x3fffe000;
/** 2 MiB page: bits 20:13. */
const HUGE_2M_RESERVED_LO = 0x1fe000;
/** 32-bit paging's 4 MiB page: bit 21 (bits 20:13 are physical bits 39:32, PSE-36 as widened to 40 bits). */
const PSE_4M_RESERVED_LO = 0x200000;

// ---- scratch of the walk in progress (one walk at a time; nothing allocated per walk) ----

/** Physical addresses of the entries the walk used, root first. */
const visited = new Float64Array(5);
let visitedCount = 0;
/** AND of the low halves of the path's entries: R/W and U/S survive only if set everywhere. */
let pathLo = 0;
/** OR of the high halves: an XD bit anywhere stops execution. */
let pathHi = 0;
// The `let`s hold only int32 bit patterns, which V8 stores without boxing.
/** The high half (as int32) of the entry readEntry last returned. */
let entryHi = 0;
/** The leaf entry's low half (as int32). */
let leafLo = 0;
/**
 * The walk's doubles. Kept here rather than in `let`s or arguments: V8 boxes a double stored
 * into a module variable or passed to a call it does not inline, and the walk's helpers
 * otherwise deal in small integers (the address's halves go as int32 bit patterns).
 */
const scratch = new Float64Array(4);
/** The address being walked, for the #PF's CR2. */
const FAULT_ADDRESS = 0;
/** The physical start and the size of the page the leaf maps. */
const LEAF_BASE = 1;
const LEAF_SIZE = 2;
/** scratch[RAM_END] = ramOfRamEnd.byteLength: reading byteLength of a DataView is slow in Node 20, so it is read once per RAM. */
const RAM_END = 3;
let ramOfRamEnd: DataView | undefined;

// ---- nested paging: the state of a nested walk, and the guest walk's scratch set aside meanwhile ----

/** Which address a nested walk translates: fault reports and PDPTE reads depend on it. */
const enum Stage {
  /** No nested walk in progress (the guest walk, or plain paging). */
  NONE = 0,
  /** The final guest-physical address of the access. */
  FINAL = 1,
  /** The guest-physical address of a guest table entry (or PDPTE). */
  TABLE = 2,
}
let stage: Stage = Stage.NONE;
/** The NestedContext whose tables the nested walk in progress uses (for its fault report). */
let activeNested: NestedContext | null = null;
/** The nested walk's result. */
const nestedOut = new WalkResult();
/** The guest walk's visited[] (0-4) and doubles (5-7: fault address, leaf base, leaf size) during a nested walk. */
const savedScratch = new Float64Array(8);
let savedVisitedCount = 0;
let savedPathLo = 0;
let savedPathHi = 0;
let savedLeafLo = 0;
/** The nested rights a guest page-table access needs: guest walks may write A/D bits, and nested accesses are user accesses (§7.2). */
const TABLE_ACCESS = Access.USER | Access.WRITE;

export function pagingMode(ctx: PagingContext): PagingMode {
  if ((ctx.cr0 & CR0_PG) === 0) return PagingMode.NONE;
  if ((ctx.cr4 & CR4_PAE) === 0) return PagingMode.LEGACY32;
  if ((ctx.efer & EFER_LMA) === 0) return PagingMode.PAE;
  return ctx.cr4 & CR4_LA57 ? PagingMode.LONG5 : PagingMode.LONG4;
}

/**
 * Read the four PDPTEs at CR3 into `pdptes` (the MOV to CR3/CR0/CR4 that enters or stays in
 * PAE paging does this). Returns false when a present PDPTE has a reserved bit set: Intel
 * raises #GP(0) there and keeps the old registers; an emulator that loads them anyway gets
 * the #PF with RSVD from the walk instead, as QEMU does.
 */
export function loadPdptes(ram: DataView, cr3: number, pdptes: Uint32Array): boolean {
  const table = (cr3 & ~31) >>> 0;
  noteRam(ram);
  let valid = true;
  for (let i = 0; i < 4; i++) {
    const lo = readEntry(ram, table + i * 8);
    pdptes[2 * i] = lo;
    pdptes[2 * i + 1] = entryHi;
    if (lo & PTE_P && (lo & PDPTE_RESERVED_LO || entryHi & PDPTE_RESERVED_HI)) valid = false;
  }
  return valid;
}

/**
 * Translate `va` for an `access` (Access bits) and fill `out`, setting accessed bits along
 * the path and the dirty bit for a write; or throw the #PF the access raises, leaving
 * memory untouched. `va` is the signed 64-bit value as a JS number (canonical: the caller
 * checks); outside long mode only its low 32 bits count. `ram` is indexed by physical
 * address; entries beyond it read as all ones (an unbacked bus), which fault as reserved.
 * A/D bits are stored straight into `ram`, past any code-write tracking: page tables are not
 * expected to share a 64-byte granule with translated code.
 */
export function walk(ram: DataView, ctx: PagingContext, va: number, access: number, out: WalkResult): void {
  const vaHi = Math.floor(va / TWO32) | 0;
  const vaLo = (va - Math.floor(va / TWO32) * TWO32) | 0;
  scratch[FAULT_ADDRESS] = va;
  noteRam(ram);
  const mode = pagingMode(ctx);
  if (mode === PagingMode.NONE) {
    // Real mode or paging off: linear = (guest-)physical; under nested paging that address
    // is the only one to translate (§7.1).
    if (ctx.nested) return finishUnpagedNested(ram, ctx.nested, vaLo >>> 0, access, out);
    out.phys = vaLo >>> 0;
    out.pageBase = (vaLo & PAGE_MASK) >>> 0;
    out.pageSize = PAGE;
    out.perms = Perm.WRITE | Perm.USER | Perm.EXEC | Perm.DIRTY;
    return;
  }
  walkTables(ram, ctx, mode, vaLo, vaHi, access);
  finish(ram, ctx, vaLo, access, out);
}

/** Walk the tables of a paging `mode` down to the leaf, leaving the path in the scratch. */
function walkTables(ram: DataView, ctx: PagingContext, mode: PagingMode, vaLo: number, vaHi: number, access: number): void {
  visitedCount = 0;
  pathLo = PTE_RW | PTE_US;
  pathHi = 0;
  switch (mode) {
    case PagingMode.LEGACY32:
      walkLegacy32(ram, ctx, vaLo, access);
      break;
    case PagingMode.PAE: {
      const i = vaLo >>> 30;
      let lo: number;
      let hi: number;
      if (ctx.nested || stage !== Stage.NONE) {
        // Nested paging keeps no PDPTE registers, for the guest or for its own PAE-format
        // tables: the PDPTE is read from memory when a walk needs it (§7.2; KUT svm_pae_test
        // shows only the PDPTE a walk goes through matters).
        lo = readPdpte(ram, ctx, i);
        hi = entryHi;
      } else {
        lo = ctx.pdptes[2 * i];
        hi = ctx.pdptes[2 * i + 1];
      }
      if ((lo & PTE_P) === 0) pageFault(ctx, access, 0);
      if (lo & PDPTE_RESERVED_LO || hi & PDPTE_RESERVED_HI) pageFault(ctx, access, PfErr.P | PfErr.RSVD);
      // The PDPTE has no R/W, U/S or XD bits and, being a register, no accessed bit to set.
      descend(ram, ctx, vaLo, vaHi, access, tableAddress(lo, hi), 21, PAE_HIGH_RESERVED_HI);
      break;
    }
    case PagingMode.LONG4:
      descend(ram, ctx, vaLo, vaHi, access, cr3Table(ctx.cr3), 39, 0);
      break;
    case PagingMode.LONG5:
      descend(ram, ctx, vaLo, vaHi, access, cr3Table(ctx.cr3), 48, 0);
      break;
  }
}

/**
 * Whether an access of kind `access` may use a cached translation with rights `perms` now,
 * without a walk: the access is permitted and, for a write, the page is already dirty.
 */
export function translationServes(perms: number, access: number, ctx: PagingContext): boolean {
  return accessPermitted(perms, access, ctx) && ((access & Access.WRITE) === 0 || (perms & Perm.DIRTY) !== 0);
}

/** The page-level protection rules (SDM 4.6, APM 5.6) for an access to a translation with rights `perms`. */
export function accessPermitted(perms: number, access: number, ctx: PagingContext): boolean {
  // Without paging there are no page-level rights (CR4.SMEP/SMAP may be set but do nothing);
  // only nested paging can take EXEC away from such a translation.
  if ((ctx.cr0 & CR0_PG) === 0) return (access & Access.FETCH) === 0 || (perms & Perm.EXEC) !== 0;
  const userAccess = (access & (Access.USER | Access.IMPLICIT_SUPERVISOR)) === Access.USER;
  const userPage = (perms & Perm.USER) !== 0;
  if (access & Access.FETCH) {
    if ((perms & Perm.EXEC) === 0) return false;
    return userAccess ? userPage : !(userPage && ctx.cr4 & CR4_SMEP);
  }
  if (userAccess) return userPage && ((access & Access.WRITE) === 0 || (perms & Perm.WRITE) !== 0);
  // Supervisor data access: SMAP keeps it off user pages unless RFLAGS.AC allows an explicit one.
  if (userPage && ctx.cr4 & CR4_SMAP && (access & Access.IMPLICIT_SUPERVISOR || !ctx.ac)) return false;
  return (access & Access.WRITE) === 0 || (perms & Perm.WRITE) !== 0 || (ctx.cr0 & CR0_WP) === 0;
}

// ---- the walks ----

function walkLegacy32(ram: DataView, ctx: PagingContext, vaLo: number, access: number): void {
  const pdeAddr = ((ctx.cr3 & PAGE_MASK) >>> 0) + (vaLo >>> 22) * 4;
  const pde = readLegacyEntry(ram, ctx, access, pdeAddr);
  if (pde & PTE_PS && ctx.cr4 & CR4_PSE) {
    if (pde & PSE_4M_RESERVED_LO) pageFault(ctx, access, PfErr.P | PfErr.RSVD);
    const size = 4 << 20;
    setLeaf(pde, ((pde >>> 13) & 0xff) * TWO32 + ((pde & -size) >>> 0), size);
    return;
  }
  const pteAddr = ((pde & PAGE_MASK) >>> 0) + ((vaLo >>> 12) & 0x3ff) * 4;
  const pte = readLegacyEntry(ram, ctx, access, pteAddr);
  setLeaf(pte, (pte & PAGE_MASK) >>> 0, PAGE);
}

/**
 * The 64-bit-entry levels of PAE and long-mode paging, from the table that `shift` (the
 * lowest address bit it translates: 48, 39, 30, 21) indexes down to the leaf.
 */
function descend(ram: DataView, ctx: PagingContext, vaLo: number, vaHi: number, access: number, table: number, shift: number, modeReservedHi: number): void {
  const reservedHi = modeReservedHi | PHYS_RESERVED_HI | (ctx.efer & EFER_NXE ? 0 : PTE_XD_HI);
  for (;; shift -= 9) {
    const lo = readPathEntry(ram, ctx, access, table + indexAt(shift, vaLo, vaHi) * 8, reservedHi);
    const hi = entryHi;
    if (shift === 12) {
      setLeaf(lo, tableAddress(lo, hi), PAGE);
      return;
    }
    if (lo & PTE_PS) {
      // PS maps a page at the PDPTE (1 GiB) and PDE (2 MiB) levels; above them it is reserved.
      if (shift > 30 || lo & (shift === 30 ? HUGE_1G_RESERVED_LO : HUGE_2M_RESERVED_LO)) pageFault(ctx, access, PfErr.P | PfErr.RSVD);
      const size = 1 << shift;
      setLeaf(lo, (hi & PHYS_HI_MASK) * TWO32 + ((lo & -size) >>> 0), size);
      return;
    }
    table = tableAddress(lo, hi);
  }
}

/** The 9-bit table index of `va` at the level whose lowest translated bit is `shift`. */
function indexAt(shift: number, vaLo: number, vaHi: number): number {
  if (shift >= 32) return (vaHi >>> (shift - 32)) & 0x1ff;
  if (shift + 9 > 32) return ((vaLo >>> shift) | (vaHi << (32 - shift))) & 0x1ff;
  return (vaLo >>> shift) & 0x1ff;
}

/** Physical address of the 4 KiB-aligned table or page an entry points to. */
function tableAddress(lo: number, hi: number): number {
  return (hi & PHYS_HI_MASK) * TWO32 + ((lo & PAGE_MASK) >>> 0);
}

/** The root table from CR3: bits 11:0 hold PCID or PWT/PCD, bits at and above MAXPHYADDR are not an address. */
function cr3Table(cr3: number): number {
  const hi = Math.floor(cr3 / TWO32);
  return tableAddress(cr3 - hi * TWO32, hi);
}

/** Make scratch[RAM_END] the size of `ram`, which readEntry and setEntryBits bound their accesses by. */
function noteRam(ram: DataView): void {
  if (ram === ramOfRamEnd) return;
  ramOfRamEnd = ram;
  scratch[RAM_END] = ram.byteLength;
}

/** Read an 8-byte entry: returns the low half (unsigned), leaves the high half in entryHi. */
function readEntry(ram: DataView, addr: number): number {
  if (addr + 8 > scratch[RAM_END]) {
    entryHi = -1;
    return 0xffffffff;
  }
  entryHi = ram.getInt32(addr + 4, true);
  return ram.getUint32(addr, true);
}

/** Read one entry of a PAE/long-mode path: present and reserved-bit checks, then bookkeeping. */
function readPathEntry(ram: DataView, ctx: PagingContext, access: number, addr: number, reservedHi: number): number {
  if (ctx.nested) addr = nestedTranslate(ram, ctx.nested, addr, TABLE_ACCESS, Stage.TABLE);
  const lo = readEntry(ram, addr);
  if ((lo & PTE_P) === 0) pageFault(ctx, access, 0);
  if (entryHi & reservedHi) pageFault(ctx, access, PfErr.P | PfErr.RSVD);
  visited[visitedCount++] = addr;
  pathLo &= lo;
  pathHi |= entryHi;
  return lo;
}

/** Read one 4-byte entry of a 32-bit paging path. */
function readLegacyEntry(ram: DataView, ctx: PagingContext, access: number, addr: number): number {
  if (ctx.nested) addr = nestedTranslate(ram, ctx.nested, addr, TABLE_ACCESS, Stage.TABLE);
  const lo = addr + 4 > scratch[RAM_END] ? 0xffffffff : ram.getUint32(addr, true);
  if ((lo & PTE_P) === 0) pageFault(ctx, access, 0);
  visited[visitedCount++] = addr;
  pathLo &= lo;
  return lo;
}

function setLeaf(lo: number, pageBase: number, pageSize: number): void {
  leafLo = lo | 0;
  scratch[LEAF_BASE] = pageBase;
  scratch[LEAF_SIZE] = pageSize;
}

/** Permission check on the completed path, then the A/D updates hardware makes, then the result. */
function finish(ram: DataView, ctx: PagingContext, vaLo: number, access: number, out: WalkResult): void {
  let perms = 0;
  if (pathLo & PTE_RW) perms |= Perm.WRITE;
  if (pathLo & PTE_US) perms |= Perm.USER;
  if ((ctx.efer & EFER_NXE) === 0 || (pathHi & PTE_XD_HI) === 0) perms |= Perm.EXEC;
  if (leafLo & PTE_G && ctx.cr4 & CR4_PGE) perms |= Perm.GLOBAL;
  if (!accessPermitted(perms, access, ctx)) pageFault(ctx, access, PfErr.P);
  if (ctx.nested) return finishNested(ram, ctx.nested, vaLo, access, perms, out);
  perms |= setAccessedDirty(ram, access);
  const pageBase = scratch[LEAF_BASE];
  const pageSize = scratch[LEAF_SIZE];
  out.pageBase = pageBase;
  out.pageSize = pageSize;
  // Page sizes are powers of two up to 2^30, so the offset is a mask of the low half.
  out.phys = pageBase + (vaLo & (pageSize - 1));
  out.perms = perms;
}

/** Set A along the path and D on the leaf for a write; returns Perm.DIRTY when the leaf is (now) dirty. */
function setAccessedDirty(ram: DataView, access: number): number {
  // A and D live in byte 0 of every entry format; entries beyond RAM have nothing to update.
  for (let i = 0; i < visitedCount; i++) setEntryBits(ram, visited[i], PTE_A);
  if (leafLo & PTE_D) return Perm.DIRTY;
  if ((access & Access.WRITE) === 0) return 0;
  setEntryBits(ram, visited[visitedCount - 1], PTE_D);
  return Perm.DIRTY;
}

// ---- nested paging ----

/**
 * The end of a guest walk under nested paging: the guest's checks have passed; the final
 * guest-physical address goes through the nested tables before any guest A/D bit changes
 * (KVM's walker orders it so, and an NPF there leaves the guest tables as they were).
 */
function finishNested(ram: DataView, n: NestedContext, vaLo: number, access: number, perms: number, out: WalkResult): void {
  const pageBase = scratch[LEAF_BASE];
  const pageSize = scratch[LEAF_SIZE];
  const phys = nestedTranslate(ram, n, pageBase + (vaLo & (pageSize - 1)), nestedAccess(access), Stage.FINAL);
  perms = withNestedRights(perms | setAccessedDirty(ram, access));
  // The combined page is the smaller of the two; both are aligned powers of two.
  const size = Math.min(pageSize, nestedOut.pageSize);
  out.phys = phys;
  out.pageBase = phys - (vaLo & (size - 1));
  out.pageSize = size;
  out.perms = perms;
}

/** Paging off under nested paging: the address is guest-physical, and only the nested walk applies. */
function finishUnpagedNested(ram: DataView, n: NestedContext, gpa: number, access: number, out: WalkResult): void {
  visitedCount = 0; // no guest path to set aside
  out.phys = nestedTranslate(ram, n, gpa, nestedAccess(access), Stage.FINAL);
  out.pageBase = nestedOut.pageBase;
  out.pageSize = nestedOut.pageSize;
  out.perms = withNestedRights(Perm.WRITE | Perm.USER | Perm.EXEC | Perm.DIRTY);
}

/** The nested access for a guest access: of the same kind, and always a user access (§7.2). */
function nestedAccess(access: number): number {
  return Access.USER | (access & (Access.WRITE | Access.FETCH));
}

/**
 * A guest translation's rights narrowed by the nested walk just made (in nestedOut), for the
 * TLB: no EXEC without nested EXEC, and a write may skip the walk only if the nested path is
 * writable and its leaf dirty. Nested U/S needs no bit: a nested walk succeeds only with it.
 */
function withNestedRights(perms: number): number {
  const nested = nestedOut.perms;
  if ((nested & Perm.EXEC) === 0) perms &= ~Perm.EXEC;
  if ((nested & (Perm.WRITE | Perm.DIRTY)) !== (Perm.WRITE | Perm.DIRTY)) perms &= ~Perm.DIRTY;
  return perms;
}

/**
 * Translate the guest-physical `gpa` through the nested tables for an `access` (Access bits,
 * USER set) and return the host-physical address; the nested walk's result stays in nestedOut.
 * The guest walk in progress keeps its scratch: it is set aside here and put back after. A
 * fault throws through `n.fault` and abandons both walks.
 */
function nestedTranslate(ram: DataView, n: NestedContext, gpa: number, access: number, at: Stage): number {
  const count = visitedCount;
  for (let i = 0; i < count; i++) savedScratch[i] = visited[i];
  savedScratch[5] = scratch[FAULT_ADDRESS];
  savedScratch[6] = scratch[LEAF_BASE];
  savedScratch[7] = scratch[LEAF_SIZE];
  savedVisitedCount = count;
  savedPathLo = pathLo;
  savedPathHi = pathHi;
  savedLeafLo = leafLo;

  const tables = n.tables;
  const gpaHi = Math.floor(gpa / TWO32) | 0;
  const gpaLo = (gpa - Math.floor(gpa / TWO32) * TWO32) | 0;
  scratch[FAULT_ADDRESS] = gpa;
  stage = at;
  activeNested = n;
  walkTables(ram, tables, pagingMode(tables), gpaLo, gpaHi, access);
  finish(ram, tables, gpaLo, access, nestedOut);
  stage = Stage.NONE;
  activeNested = null;

  visitedCount = savedVisitedCount;
  for (let i = 0; i < visitedCount; i++) visited[i] = savedScratch[i];
  scratch[FAULT_ADDRESS] = savedScratch[5];
  scratch[LEAF_BASE] = savedScratch[6];
  scratch[LEAF_SIZE] = savedScratch[7];
  pathLo = savedPathLo;
  pathHi = savedPathHi;
  leafLo = savedLeafLo;
  return nestedOut.phys;
}

/**
 * PDPTE `i` read from memory (nested paging has no PDPTE registers): through the nested
 * tables for a guest's PAE tables, straight from N_CR3's table for nested PAE tables. Like
 * loadPdptes, the table is 32-byte aligned (CR3 bits 4:0 are ignored). Leaves the high half
 * in entryHi.
 */
function readPdpte(ram: DataView, ctx: PagingContext, i: number): number {
  let addr = ((ctx.cr3 & ~31) >>> 0) + i * 8;
  if (ctx.nested) addr = nestedTranslate(ram, ctx.nested, addr, TABLE_ACCESS, Stage.TABLE);
  return readEntry(ram, addr);
}

function setEntryBits(ram: DataView, addr: number, bits: number): void {
  if (addr >= scratch[RAM_END]) return;
  const byte = ram.getUint8(addr);
  if ((byte & bits) !== bits) ram.setUint8(addr, byte | bits);
}

/**
 * Throw the #PF for `access` at the address being walked. `cause` is 0 (not present), P
 * (protection) or P|RSVD; the access adds W, U (a CPL-3 access that is not an implicit
 * supervisor one) and I/D, which the manuals report only when SMEP is on or NX is in force
 * (PAE-format paging with NXE).
 */
function pageFault(ctx: PagingContext, access: number, cause: number): never {
  if (stage !== Stage.NONE) nestedFault(access, cause);
  let code = cause;
  if (access & Access.WRITE) code |= PfErr.W;
  if ((access & (Access.USER | Access.IMPLICIT_SUPERVISOR)) === Access.USER) code |= PfErr.U;
  if (access & Access.FETCH && (ctx.cr4 & CR4_SMEP || (ctx.cr4 & CR4_PAE && ctx.efer & EFER_NXE))) code |= PfErr.I;
  throw new CpuException(Vec.PF, code, scratch[FAULT_ADDRESS]);
}

/** A fault in a nested walk: reset the nested state (the walk is over) and report it as the NestedContext says. */
function nestedFault(access: number, cause: number): never {
  const n = activeNested!;
  const guestTable = stage === Stage.TABLE;
  stage = Stage.NONE;
  activeNested = null;
  return n.fault(cause, access, scratch[FAULT_ADDRESS], guestTable);
}
