/**
 * Nested paging (SVM NPT) against hand-built guest and nested tables: the two-dimensional walk
 * of spec/svm.md §7.1-7.3, the #VMEXIT(NPF) exit information of §7.4 (every kvm-unit-tests
 * svm_npt.c value that applies to a walker), A/D bits in nested entries, L2 in real mode and in
 * PAE mode through the nested tables, 2 MiB and 1 GiB nested pages, nested tables in L1's PAE
 * and 32-bit formats, the TLB's combined translation and the translations each world keeps across
 * world switches, and VMRUN's checks C17-C19 (§5.3).
 *
 * Layout (L1-physical RAM of 8 MiB): nested tables from 0x10000; guest-physical [0, 2 MiB)
 * holds L2's tables and lives at L1-physical [2 MiB, 4 MiB); guest-physical [2 MiB, 4 MiB)
 * holds L2's data and code and lives at [4 MiB, 6 MiB). Both regions use 4 KiB nested pages
 * under separate nested PDEs, so a nested PDE can be broken for data alone (as KUT's code page
 * is away from its page tables). Entries are built with BigInt for clarity.
 */
import { beforeEach, describe, expect, test } from 'vitest';
import { Cpu } from '../src/cpu/cpu.js';
import { CpuException, PfErr, Vec } from '../src/cpu/exceptions.js';
import { S } from '../src/cpu/state.js';
import { MmioBus } from '../src/machine/bus.js';
import { MachineMemory } from '../src/machine/mmu.js';
import { Access, Perm, translationServes, walk, WalkResult, type PagingContext } from '../src/machine/paging.js';
import { VmExit } from '../src/svm/intercept.js';
import { NestedPaging, nestedPagingConsistent, validPat } from '../src/svm/npt.js';

const P = 1n;
const RW = 2n;
const US = 4n;
const A = 0x20n;
const D = 0x40n;
const PS = 0x80n;
const NX = 1n << 63n;
const ALL = P | RW | US;
/** A bit at MAXPHYADDR (48) .. 51: reserved in every PAE/long-mode entry. */
const RSVD51 = 1n << 51n;

const CR0_PE = 1;
const CR0_WP = 1 << 16;
const CR0_PG = 1 << 31;
const CR4_PSE = 1 << 4;
const CR4_PAE = 1 << 5;
const CR4_SMEP = 1 << 20;
const EFER_LME = 1 << 8;
const EFER_LMA = 1 << 10;
const EFER_NXE = 1 << 11;
const EFER_SVME = 1 << 12;

const MiB = 1 << 20;
const RAM_BYTES = 8 * MiB;
/** Where guest-physical [0, 2 MiB) (L2's tables) and [2 MiB, 4 MiB) (L2's data) live in L1-physical RAM. */
const TABLES_HOST = 2 * MiB;
const DATA_HOST_DELTA = 2 * MiB;

/** L2's root table (a GPA) and the pages it maps. */
const L2_CR3 = 0x1000;
const DATA_VA = 0x40_0000;
const DATA_GPA = 0x28_0000;
const CODE_VA = 0x60_0000;
const CODE_GPA = 0x30_0000;
/** Nested tables start here (L1-physical). */
const NPT_ROOT = 0x10000;

/** L1 in long mode with NX (KUT's setup); L2 in long mode without NX (KUT npt_nx). */
const L1 = { cr0: CR0_PG | CR0_WP | CR0_PE, cr4: CR4_PAE, efer: EFER_LME | EFER_LMA | EFER_NXE | EFER_SVME };
const L2 = { cr0: CR0_PG | CR0_WP | CR0_PE, cr4: CR4_PAE, efer: EFER_LME | EFER_LMA };

let ram: DataView;
const out = new WalkResult();

const entry = (addr: number) => ram.getBigUint64(addr, true);
const setEntry = (addr: number, v: bigint) => ram.setBigUint64(addr, v, true);
const orEntry = (addr: number, bits: bigint) => setEntry(addr, entry(addr) | bits);
const clearEntry = (addr: number, bits: bigint) => setEntry(addr, entry(addr) & ~bits);

/** A table allocator: fresh zeroed 4 KiB tables from `next` up (addresses as entries hold them). */
function allocator(next: number): () => number {
  return () => {
    const t = next;
    next += 0x1000;
    return t;
  };
}

/**
 * Map `va` to `pa` in 4-level tables rooted at `root`, with a leaf of `size` bytes. `place`
 * turns a table address (as the entries hold it) into its RAM offset: identity for nested
 * tables, the nested mapping for guest tables. Missing tables come from `alloc`.
 */
function map4(root: number, va: number, pa: number, size: number, leaf: bigint, upper: bigint, alloc: () => number, place: (a: number) => number): void {
  let table = root;
  for (let shift = 39; ; shift -= 9) {
    const e = place(table) + (Math.floor(va / 2 ** shift) % 512) * 8;
    if (2 ** shift === size) {
      setEntry(e, BigInt(pa) | leaf | (shift > 12 ? PS : 0n));
      return;
    }
    if ((entry(e) & P) === 0n) setEntry(e, BigInt(alloc()) | upper);
    table = Number(entry(e) & 0xf_ffff_ffff_f000n);
  }
}

/** RAM offsets of the 4-level entries that translate `va`, root first, down to the leaf. */
function path4(root: number, va: number, place: (a: number) => number): number[] {
  const found: number[] = [];
  let table = root;
  for (let shift = 39; shift >= 12; shift -= 9) {
    const e = place(table) + (Math.floor(va / 2 ** shift) % 512) * 8;
    found.push(e);
    const v = entry(e);
    if (shift === 12 || v & PS) break;
    table = Number(v & 0xf_ffff_ffff_f000n);
  }
  return found;
}

const nestedPlace = (a: number) => a;
const guestPlace = (gpa: number) => gpa + TABLES_HOST;
/** The nested entries translating a GPA, root first. */
const nestedPath = (gpa: number) => path4(NPT_ROOT, gpa, nestedPlace);
/** The nested leaf of a GPA. */
const nestedLeaf = (gpa: number) => nestedPath(gpa).at(-1)!;
/** L2's entries translating a VA (at their L1-physical places), root first. */
const guestPath = (va: number) => path4(L2_CR3, va, guestPlace);

let nestedAlloc: () => number;
let guestAlloc: () => number;

/** The standard nested tables: GPA [0, 4 MiB) in 4 KiB pages, GPA x at L1-PA x + 2 MiB, all user/writable. */
function buildNested(): void {
  nestedAlloc = allocator(NPT_ROOT + 0x1000);
  for (let gpa = 0; gpa < 4 * MiB; gpa += 0x1000) map4(NPT_ROOT, gpa, gpa + TABLES_HOST, 0x1000, ALL, ALL, nestedAlloc, nestedPlace);
}

/** L2's tables: DATA_VA → DATA_GPA and CODE_VA → CODE_GPA, 4 KiB, all user/writable. */
function buildGuest(): void {
  guestAlloc = allocator(L2_CR3 + 0x1000);
  map4(L2_CR3, DATA_VA, DATA_GPA, 0x1000, ALL, ALL, guestAlloc, guestPlace);
  map4(L2_CR3, CODE_VA, CODE_GPA, 0x1000, ALL, ALL, guestAlloc, guestPlace);
}

function nestedPaging(l1: { cr0: number; cr4: number; efer: number } = L1, nCr3 = NPT_ROOT): NestedPaging {
  return new NestedPaging().load({ nCr3, ...l1 });
}

function l2Ctx(extra: Partial<PagingContext> = {}): PagingContext {
  return { ...L2, cr3: L2_CR3, ac: false, pdptes: new Uint32Array(8), nested: nestedPaging(), ...extra };
}

/** The #VMEXIT(NPF) `fn` raises: [EXITINFO1, EXITINFO2]. */
function npf(fn: () => void): [number, number] {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(VmExit);
    const x = e as VmExit;
    expect(x.exitCode).toBe(0x400);
    return [x.info1, x.info2];
  }
  throw new Error('expected #VMEXIT(NPF)');
}

/** The #PF (for L2) `fn` raises: its error code. */
function pf(fn: () => void, va: number): number {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(CpuException);
    expect(e).not.toBeInstanceOf(VmExit);
    const x = e as CpuException;
    expect(x.vector).toBe(Vec.PF);
    expect(x.address).toBe(va);
    return x.errorCode;
  }
  throw new Error('expected a #PF');
}

beforeEach(() => {
  ram = new DataView(new ArrayBuffer(RAM_BYTES));
  buildNested();
  buildGuest();
});

describe('two-dimensional translation (§7.1-7.3)', () => {
  test('a guest VA goes through the guest tables (at GPAs) and then the nested tables', () => {
    const ctx = l2Ctx();
    walk(ram, ctx, DATA_VA + 0x123, 0, out);
    expect(out.phys).toBe(DATA_GPA + DATA_HOST_DELTA + 0x123);
    expect(out.pageBase).toBe(DATA_GPA + DATA_HOST_DELTA);
    expect(out.pageSize).toBe(0x1000);
    expect(out.perms).toBe(Perm.WRITE | Perm.USER | Perm.EXEC);
    // The guest's accessed bits were written at the L1-physical places of its tables.
    for (const e of guestPath(DATA_VA)) expect(entry(e) & (A | D)).toBe(A);
  });

  test('A/D in nested entries: guest table pages are written (D), a read sets only A on the data page, a write sets D', () => {
    const ctx = l2Ctx();
    walk(ram, ctx, DATA_VA, Access.USER, out);
    // Every page holding an L2 table entry of the path was accessed as a write (§7.2).
    for (const tableGpa of [L2_CR3, ...guestPath(DATA_VA).slice(0, 3).map((e) => Number(entry(e) & 0xf_ffff_f000n))]) {
      const leaf = nestedLeaf(tableGpa);
      expect(entry(leaf) & (A | D)).toBe(A | D);
      for (const e of nestedPath(tableGpa).slice(0, -1)) expect(entry(e) & (A | D)).toBe(A);
    }
    expect(entry(nestedLeaf(DATA_GPA)) & (A | D)).toBe(A);
    expect(entry(guestPath(DATA_VA)[3]) & D).toBe(0n);
    // The nested leaf is clean, so a later write may not use this translation without a walk.
    expect(out.perms & Perm.DIRTY).toBe(0);
    expect(translationServes(out.perms, Access.USER | Access.WRITE, ctx)).toBe(false);
    walk(ram, ctx, DATA_VA, Access.USER | Access.WRITE, out);
    expect(entry(nestedLeaf(DATA_GPA)) & (A | D)).toBe(A | D);
    expect(entry(guestPath(DATA_VA)[3]) & D).toBe(D);
    expect(translationServes(out.perms, Access.USER | Access.WRITE, ctx)).toBe(true);
  });

  test('a guest #PF comes from the guest walk, and no nested fault of a later step preempts it', () => {
    const ctx = l2Ctx();
    clearEntry(nestedLeaf(DATA_GPA), P); // the final GPA would fault ...
    clearEntry(guestPath(DATA_VA)[2], P); // ... but the guest PDE is not present first
    expect(pf(() => walk(ram, ctx, DATA_VA, Access.WRITE, out), DATA_VA)).toBe(PfErr.W);
    // A guest protection fault (user access to a supervisor page) is also decided before the final GPA's translation.
    orEntry(guestPath(DATA_VA)[2], P);
    clearEntry(guestPath(DATA_VA)[3], US);
    expect(pf(() => walk(ram, ctx, DATA_VA, Access.USER, out), DATA_VA)).toBe(PfErr.P | PfErr.U);
  });

  test('a nested fault on a guest table comes before the guest fault that entry would give; an NPF leaves the guest tables alone', () => {
    const ctx = l2Ctx();
    const [, , pde, pte] = guestPath(DATA_VA);
    const ptGpa = Number(entry(pde) & 0xf_ffff_f000n);
    setEntry(pte, 0n); // guest PTE not present
    clearEntry(nestedLeaf(ptGpa), P); // and the page holding it not mapped in the nested tables
    expect(npf(() => walk(ram, ctx, DATA_VA, 0, out))).toEqual([0x2_0000_0006, ptGpa + (pte - guestPlace(ptGpa))]);
    // The final-GPA fault leaves the guest's A bits unset (the walk is repeated after L1 fixes it).
    orEntry(nestedLeaf(ptGpa), P);
    setEntry(pte, BigInt(DATA_GPA) | ALL);
    for (const e of guestPath(DATA_VA)) clearEntry(e, A);
    clearEntry(nestedLeaf(DATA_GPA), P);
    npf(() => walk(ram, ctx, DATA_VA, 0, out));
    for (const e of guestPath(DATA_VA)) expect(entry(e) & A).toBe(0n);
  });

  test('without a NestedContext (null or absent) the walk is the plain one', () => {
    const at = (nested: PagingContext['nested']): PagingContext => ({ ...L2, cr3: NPT_ROOT, ac: false, pdptes: new Uint32Array(8), nested });
    // The nested tables read as ordinary 4-level tables map GPA x to x + 2 MiB.
    for (const ctx of [at(null), at(undefined)]) {
      walk(ram, ctx, 0x12_3456, Access.WRITE, out);
      expect(out).toMatchObject({ phys: 0x32_3456, pageBase: 0x32_3000, pageSize: 0x1000, perms: Perm.WRITE | Perm.USER | Perm.EXEC | Perm.DIRTY });
      walk(ram, { ...ctx, cr0: 0 }, 0x12_3456, 0, out);
      expect(out.phys).toBe(0x12_3456);
    }
  });

  test('after an NPF, plain paging reports its own faults as #PF again', () => {
    const ctx = l2Ctx();
    clearEntry(nestedLeaf(L2_CR3), P);
    npf(() => walk(ram, ctx, DATA_VA, 0, out));
    const plain: PagingContext = { ...L2, cr3: 0x5000, ac: false, pdptes: new Uint32Array(8), nested: null };
    expect(pf(() => walk(ram, plain, 0x1000, 0, out), 0x1000)).toBe(0);
  });
});

describe('NPF exit information (§7.4, KUT svm_npt.c)', () => {
  test('npt_np: nested PTE of a data page not present, L2 reads it: 0x1_0000_0004, EXITINFO2 = the GPA', () => {
    clearEntry(nestedLeaf(DATA_GPA), P);
    expect(npf(() => walk(ram, l2Ctx(), DATA_VA + 0x10, 0, out))).toEqual([0x1_0000_0004, DATA_GPA + 0x10]);
  });

  test('npt_nx: NX in the nested PTE of the code page, L1 EFER.NXE = 1, L2 EFER.NXE = 0: 0x1_0000_0015', () => {
    orEntry(nestedLeaf(CODE_GPA), NX);
    const ctx = l2Ctx();
    expect(ctx.efer & EFER_NXE).toBe(0);
    expect(npf(() => walk(ram, ctx, CODE_VA, Access.FETCH, out))).toEqual([0x1_0000_0015, CODE_GPA]);
    // Data accesses to the page are fine, and the TLB summary refuses fetches.
    walk(ram, ctx, CODE_VA, 0, out);
    expect(out.perms & Perm.EXEC).toBe(0);
    expect(translationServes(out.perms, Access.FETCH, ctx)).toBe(false);
    // Without L1 EFER.NXE, bit 63 is reserved in nested entries, and the fetch is not reported as one.
    const noNx = l2Ctx({ nested: nestedPaging({ ...L1, efer: EFER_LME | EFER_LMA }) });
    expect(npf(() => walk(ram, noNx, CODE_VA, Access.FETCH, out))).toEqual([0x1_0000_000d, CODE_GPA]);
  });

  test('npt_us: U/S = 0 in the nested PTE, L2 reads (even at CPL 0): 0x1_0000_0005', () => {
    clearEntry(nestedLeaf(DATA_GPA), US);
    expect(npf(() => walk(ram, l2Ctx(), DATA_VA, 0, out))).toEqual([0x1_0000_0005, DATA_GPA]);
  });

  test('U/S = 0 in a nested PDE shared with the guest tables: the first guest table access faults, as a write (0x2_0000_0007)', () => {
    clearEntry(nestedPath(L2_CR3)[2], US);
    // The guest's PML4 entry for DATA_VA is index 0: its GPA is CR3 itself.
    expect(npf(() => walk(ram, l2Ctx(), DATA_VA, 0, out))).toEqual([0x2_0000_0007, L2_CR3]);
  });

  test('npt_rw: R/W = 0 in the nested PTE of the page, L2 writes it: 0x1_0000_0007; reads still work', () => {
    clearEntry(nestedLeaf(DATA_GPA), RW);
    const ctx = l2Ctx();
    expect(npf(() => walk(ram, ctx, DATA_VA + 8, Access.WRITE, out))).toEqual([0x1_0000_0007, DATA_GPA + 8]);
    walk(ram, ctx, DATA_VA + 8, 0, out);
    expect(out.phys).toBe(DATA_GPA + DATA_HOST_DELTA + 8);
    // Neither CR0.WP = 0 in L2 nor a supervisor access lets the cached translation serve a write.
    const noWp = l2Ctx({ cr0: CR0_PG | CR0_PE });
    walk(ram, noWp, DATA_VA, 0, out);
    expect(translationServes(out.perms, Access.WRITE, noWp)).toBe(false);
    expect(npf(() => walk(ram, noWp, DATA_VA, Access.WRITE, out))).toEqual([0x1_0000_0007, DATA_GPA]);
  });

  test('npt_rw_pfwalk: R/W = 0 in the nested PTE of the page holding L2\'s top-level table: 0x2_0000_0007, EXITINFO2 = L2\'s CR3', () => {
    clearEntry(nestedLeaf(L2_CR3), RW);
    expect(npf(() => walk(ram, l2Ctx(), DATA_VA, 0, out))).toEqual([0x2_0000_0007, L2_CR3]);
    expect(entry(nestedLeaf(L2_CR3)) & D).toBe(0n);
  });

  test('reserved bits in the nested PTE or PDE of the code page: 0x1_0000_000D, plus 0x10 with L1 EFER.NXE or CR4.SMEP', () => {
    const noNx = { ...L1, efer: EFER_LME | EFER_LMA };
    for (const level of [3, 2]) {
      const e = nestedPath(CODE_GPA)[level];
      orEntry(e, RSVD51);
      expect(npf(() => walk(ram, l2Ctx({ nested: nestedPaging(noNx) }), CODE_VA, Access.FETCH, out))).toEqual([0x1_0000_000d, CODE_GPA]);
      expect(npf(() => walk(ram, l2Ctx(), CODE_VA, Access.FETCH, out))).toEqual([0x1_0000_001d, CODE_GPA]);
      expect(npf(() => walk(ram, l2Ctx({ nested: nestedPaging({ ...noNx, cr4: CR4_PAE | CR4_SMEP }) }), CODE_VA, Access.FETCH, out))).toEqual([0x1_0000_001d, CODE_GPA]);
      clearEntry(e, RSVD51);
    }
  });

  test('reserved bits in the nested PDPE or PML4E: the guest table access hits them first, 0x2_0000_000F', () => {
    for (const level of [1, 0]) {
      const e = nestedPath(CODE_GPA)[level];
      orEntry(e, RSVD51);
      expect(npf(() => walk(ram, l2Ctx(), CODE_VA, Access.FETCH, out))).toEqual([0x2_0000_000f, L2_CR3]);
      clearEntry(e, RSVD51);
    }
  });

  test('a not-present fetch reports I/D only with L1 EFER.NXE or CR4.SMEP', () => {
    clearEntry(nestedLeaf(CODE_GPA), P);
    const noNx = { ...L1, efer: EFER_LME | EFER_LMA };
    expect(npf(() => walk(ram, l2Ctx({ nested: nestedPaging(noNx) }), CODE_VA, Access.FETCH, out))[0]).toBe(0x1_0000_0004);
    expect(npf(() => walk(ram, l2Ctx({ nested: nestedPaging({ ...noNx, cr4: CR4_PAE | CR4_SMEP }) }), CODE_VA, Access.FETCH, out))[0]).toBe(0x1_0000_0014);
    expect(npf(() => walk(ram, l2Ctx(), CODE_VA, Access.FETCH | Access.USER, out))[0]).toBe(0x1_0000_0014);
  });
});

describe('L2 paging modes through the nested tables', () => {
  test('L2 in real mode: only the nested translation applies', () => {
    const real = l2Ctx({ cr0: 0, cr4: 0, efer: 0, cr3: 0 });
    walk(ram, real, 0x8123, Access.WRITE, out);
    expect(out).toMatchObject({ phys: 0x8123 + TABLES_HOST, pageBase: 0x8000 + TABLES_HOST, pageSize: 0x1000 });
    expect(entry(nestedLeaf(0x8000)) & (A | D)).toBe(A | D);
    expect(translationServes(out.perms, Access.WRITE, real)).toBe(true);
    clearEntry(nestedLeaf(0x9000), P);
    expect(npf(() => walk(ram, real, 0x9ffe, 0, out))).toEqual([0x1_0000_0004, 0x9ffe]);
    orEntry(nestedLeaf(0x9000), P | NX);
    expect(npf(() => walk(ram, real, 0x9000, Access.FETCH, out))).toEqual([0x1_0000_0015, 0x9000]);
    walk(ram, real, 0x9000, 0, out);
    expect(translationServes(out.perms, Access.FETCH, real)).toBe(false);
    clearEntry(nestedLeaf(0xa000), RW);
    walk(ram, real, 0xa000, 0, out);
    expect(translationServes(out.perms, Access.WRITE, real)).toBe(false);
  });

  test('L2 in PAE mode: its PDPTEs are read through the nested tables when a walk needs them', () => {
    const cr3 = 0x7000 + 0x20; // a 32-byte aligned PDPT at a GPA
    const pd = 0x8000;
    const pt = 0x9000;
    const va = 0xc040_5000; // PDPTE 3, PDE 2, PTE 5
    setEntry(guestPlace(cr3) + 3 * 8, BigInt(pd) | P);
    setEntry(guestPlace(pd) + 2 * 8, BigInt(pt) | ALL);
    setEntry(guestPlace(pt) + 5 * 8, BigInt(DATA_GPA) | ALL);
    const ctx = l2Ctx({ cr3, efer: 0 });
    walk(ram, ctx, va + 4, 0, out);
    expect(out.phys).toBe(DATA_GPA + DATA_HOST_DELTA + 4);
    expect(ctx.pdptes.every((x) => x === 0)).toBe(true); // no PDPTE registers were involved
    // The PDPT read is a guest table access: a nested fault there is 0x2_..._7 at the PDPTE's GPA.
    clearEntry(nestedLeaf(0x7000), RW);
    expect(npf(() => walk(ram, ctx, va, 0, out))).toEqual([0x2_0000_0007, cr3 + 3 * 8]);
    orEntry(nestedLeaf(0x7000), RW);
    // Reserved bits in the PDPTE this walk uses give L2 a #PF; in the others they do not matter.
    orEntry(guestPlace(cr3), P | (1n << 5n));
    walk(ram, ctx, va, 0, out);
    orEntry(guestPlace(cr3) + 3 * 8, 1n << 5n);
    expect(pf(() => walk(ram, ctx, va, 0, out), va)).toBe(PfErr.P | PfErr.RSVD);
  });

  test('L2 with 32-bit paging', () => {
    const pd = 0x7000;
    const pt = 0x8000;
    const va = 0x0040_3000;
    ram.setUint32(guestPlace(pd) + (va >>> 22) * 4, pt | 0x7, true);
    ram.setUint32(guestPlace(pt) + ((va >>> 12) & 0x3ff) * 4, DATA_GPA | 0x7, true);
    const ctx = l2Ctx({ cr3: pd, cr4: 0, efer: 0 });
    walk(ram, ctx, va + 0x10, Access.WRITE, out);
    expect(out.phys).toBe(DATA_GPA + DATA_HOST_DELTA + 0x10);
    expect(ram.getUint32(guestPlace(pt) + ((va >>> 12) & 0x3ff) * 4, true) & 0x60).toBe(0x60);
    clearEntry(nestedLeaf(pt), P);
    expect(npf(() => walk(ram, ctx, va, 0, out))).toEqual([0x2_0000_0006, pt + ((va >>> 12) & 0x3ff) * 4]);
  });

  test('a guest 2 MiB page over 4 KiB nested pages: the combined translation is 4 KiB', () => {
    const va = 0x80_0000;
    map4(L2_CR3, va, 2 * MiB, 2 * MiB, ALL, ALL, guestAlloc, guestPlace);
    walk(ram, l2Ctx(), va + 0x1_2345, 0, out);
    expect(out).toMatchObject({ phys: 2 * MiB + DATA_HOST_DELTA + 0x1_2345, pageBase: 2 * MiB + DATA_HOST_DELTA + 0x1_2000, pageSize: 0x1000 });
  });
});

describe('nested page sizes and formats (§7.2)', () => {
  test('2 MiB nested pages', () => {
    // GPA [2 MiB, 4 MiB) becomes one 2 MiB nested page at L1-PA 6 MiB.
    setEntry(nestedPath(DATA_GPA)[2], BigInt(6 * MiB) | ALL | PS);
    walk(ram, l2Ctx(), DATA_VA + 0x42, Access.WRITE, out);
    expect(out.phys).toBe(6 * MiB + (DATA_GPA - 2 * MiB) + 0x42);
    expect(out.pageSize).toBe(0x1000);
    expect(entry(nestedPath(DATA_GPA)[2]) & (A | D)).toBe(A | D);
    // With a guest 2 MiB page on top, the combined page is 2 MiB.
    map4(L2_CR3, 0x80_0000, 2 * MiB, 2 * MiB, ALL, ALL, guestAlloc, guestPlace);
    walk(ram, l2Ctx(), 0x80_0000 + 0x1_2345, 0, out);
    expect(out).toMatchObject({ phys: 6 * MiB + 0x1_2345, pageBase: 6 * MiB, pageSize: 2 * MiB });
    // Bits 20:13 of a 2 MiB nested leaf are reserved.
    orEntry(nestedPath(DATA_GPA)[2], 1n << 13n);
    expect(npf(() => walk(ram, l2Ctx(), DATA_VA, 0, out))).toEqual([0x1_0000_000d, DATA_GPA]);
  });

  test('1 GiB nested pages: identity GPA [0, 1 GiB) = L1-PA', () => {
    const root = 0x7_0000;
    const pdpt = 0x7_1000;
    setEntry(root, BigInt(pdpt) | ALL);
    setEntry(pdpt, ALL | PS); // GPA 0 → L1-PA 0, 1 GiB
    // Guest tables at their GPAs = L1-PAs this time.
    const alloc = allocator(0x2_0000);
    const gcr3 = 0x1_f000;
    map4(gcr3, DATA_VA, DATA_GPA, 0x1000, ALL, ALL, alloc, nestedPlace);
    const ctx = l2Ctx({ cr3: gcr3, nested: nestedPaging(L1, root) });
    walk(ram, ctx, DATA_VA + 0x77, Access.WRITE, out);
    expect(out).toMatchObject({ phys: DATA_GPA + 0x77, pageBase: DATA_GPA, pageSize: 0x1000 });
    expect(entry(pdpt) & (A | D)).toBe(A | D);
    expect(entry(root) & (A | D)).toBe(A);
    walk(ram, l2Ctx({ cr0: 0, cr4: 0, efer: 0, nested: nestedPaging(L1, root) }), 0x3456_7890, 0, out);
    expect(out).toMatchObject({ phys: 0x3456_7890, pageBase: 0, pageSize: 2 ** 30 });
    // Bits 29:13 of a 1 GiB nested leaf are reserved: the first guest table access meets them.
    orEntry(pdpt, 1n << 20n);
    expect(npf(() => walk(ram, ctx, DATA_VA, 0, out))).toEqual([0x2_0000_000f, gcr3]);
  });

  test('L1 in PAE mode: 3-level nested tables, nested PDPTEs read from N_CR3 (bits 4:0 ignored) when needed', () => {
    const nCr3 = 0x7_0000 + 0x40;
    const npd = 0x7_1000;
    const npt = 0x7_2000;
    setEntry(nCr3, BigInt(npd) | P); // nested PDPTE 0: GPA [0, 1 GiB)
    setEntry(npd + 0 * 8, BigInt(TABLES_HOST) | ALL | PS); // GPA [0, 2 MiB) → L1-PA [2 MiB, 4 MiB), as in the standard map
    setEntry(npd + 1 * 8, BigInt(npt) | ALL);
    setEntry(npt + ((DATA_GPA >>> 12) & 511) * 8, BigInt(DATA_GPA + DATA_HOST_DELTA) | ALL);
    const l1Pae = { cr0: CR0_PG | CR0_PE, cr4: CR4_PAE, efer: EFER_NXE | EFER_SVME };
    const ctx = l2Ctx({ nested: nestedPaging(l1Pae, nCr3 + 0x1f) });
    walk(ram, ctx, DATA_VA + 0x99, Access.WRITE, out);
    expect(out.phys).toBe(DATA_GPA + DATA_HOST_DELTA + 0x99);
    expect(entry(npt + ((DATA_GPA >>> 12) & 511) * 8) & (A | D)).toBe(A | D);
    expect(entry(nCr3) & A).toBe(0n); // PDPTEs have no accessed bit
    // Nested PAE entries have no bits 62:52; a nested PDPTE with a reserved bit faults as reserved.
    setEntry(npt + ((DATA_GPA >>> 12) & 511) * 8, BigInt(DATA_GPA + DATA_HOST_DELTA) | ALL | (1n << 55n));
    expect(npf(() => walk(ram, ctx, DATA_VA, 0, out))).toEqual([0x1_0000_000d, DATA_GPA]);
    orEntry(nCr3, RW);
    expect(npf(() => walk(ram, ctx, DATA_VA, 0, out))).toEqual([0x2_0000_000f, L2_CR3]);
  });

  test('L1 with 32-bit paging: 2-level nested tables with 4 MiB pages under L1 CR4.PSE', () => {
    const npd = 0x7_0000;
    // GPA [0, 4 MiB) → L1-PA [4 MiB, 8 MiB) (a 4 MiB page is 4 MiB aligned), with L2's tables copied there.
    ram.setUint32(npd, (4 * MiB) | 0x87, true);
    new Uint8Array(ram.buffer).copyWithin(4 * MiB, TABLES_HOST, TABLES_HOST + 2 * MiB);
    const l1Legacy = { cr0: CR0_PG | CR0_PE, cr4: CR4_PSE, efer: EFER_SVME };
    const ctx = l2Ctx({ nested: nestedPaging(l1Legacy, npd) });
    walk(ram, ctx, DATA_VA + 5, 0, out);
    expect(out.phys).toBe(4 * MiB + DATA_GPA + 5);
    expect(ram.getUint32(npd, true) & 0x60).toBe(0x60); // the guest table accesses were writes
    ram.setUint32(npd, (4 * MiB) | 0x83, true); // supervisor: every nested access is a user access
    expect(npf(() => walk(ram, ctx, DATA_VA, 0, out))).toEqual([0x2_0000_0007, L2_CR3]);
  });
});

describe('MachineMemory: switching nested paging, the combined TLB entry', () => {
  function machine(): { mem: MachineMemory; cpu: Cpu } {
    const mem = new MachineMemory(RAM_BYTES, new MmioBus());
    const cpu = new Cpu(mem);
    mem.cpu = cpu;
    new Uint8Array(mem.ram).set(new Uint8Array(ram.buffer));
    return { mem, cpu };
  }
  function enterL2(cpu: Cpu, mem: MachineMemory, np: boolean): void {
    if (np) mem.setNestedPaging({ nCr3: NPT_ROOT, ...L1 });
    const s = cpu.s;
    s[S.CR0] = L2.cr0;
    s[S.CR4] = L2.cr4;
    s[S.EFER] = L2.efer;
    s[S.CR3_LO] = L2_CR3;
    s[S.CR3_HI] = 0;
    mem.syncPaging(cpu);
  }
  const nestedLeafIn = (mem: MachineMemory, gpa: number) => mem.dv.getBigUint64(nestedLeaf(gpa), true);

  test('reads and writes land at the L1-physical address; writes re-walk until the nested leaf is dirty', () => {
    const { mem, cpu } = machine();
    mem.dv.setUint32(DATA_GPA + DATA_HOST_DELTA + 0x10, 0x1234_5678, true);
    enterL2(cpu, mem, true);
    expect(mem.read32(DATA_VA + 0x10)).toBe(0x1234_5678);
    expect(nestedLeafIn(mem, DATA_GPA) & D).toBe(0n);
    mem.write32(DATA_VA + 0x14, 0x0bad_cafe);
    expect(mem.dv.getUint32(DATA_GPA + DATA_HOST_DELTA + 0x14, true)).toBe(0x0bad_cafe);
    expect(nestedLeafIn(mem, DATA_GPA) & D).toBe(D);
  });

  test('a cached read translation does not let a write past a read-only nested PTE', () => {
    const { mem, cpu } = machine();
    mem.dv.setBigUint64(nestedLeaf(DATA_GPA), mem.dv.getBigUint64(nestedLeaf(DATA_GPA), true) & ~RW, true);
    enterL2(cpu, mem, true);
    mem.read32(DATA_VA);
    expect(npf(() => mem.write32(DATA_VA, 1))).toEqual([0x1_0000_0007, DATA_GPA]);
  });

  test('switching nested paging on or off flushes the TLB, even when the world switch keeps same-context translations', () => {
    // A plain mapping too: L2's CR3 read as an L1-PA maps DATA_VA to L1-PA 6 MiB.
    map4(L2_CR3, DATA_VA, 6 * MiB, 0x1000, ALL, ALL, allocator(0x2000), nestedPlace);
    ram.setUint32(6 * MiB, 55, true);
    ram.setUint32(DATA_GPA + DATA_HOST_DELTA, 77, true);
    const { mem, cpu } = machine();
    enterL2(cpu, mem, false);
    expect(mem.ctx.nested).toBe(null);
    expect(mem.read32(DATA_VA)).toBe(55);
    mem.setNestedPaging({ nCr3: NPT_ROOT, ...L1 });
    mem.syncPaging(cpu, true); // same CR0/CR3/CR4/EFER: syncPaging alone would keep the TLB
    expect(mem.read32(DATA_VA)).toBe(77);
    mem.setNestedPaging(null);
    mem.syncPaging(cpu, true);
    expect(mem.read32(DATA_VA)).toBe(55);
  });

  /**
   * World switches between a plain context (L2's tables read as L1-physical: DATA_VA at L1-PA
   * 6 MiB) and the nested one (DATA_VA at DATA_GPA + 2 MiB), as VMRUN and #VMEXIT make them.
   * Changing a mapping without a flush shows whether a world's translations were kept (a TLB
   * need not notice a page-table write): the stale one is still used until a flush.
   */
  describe('the TLB set each world keeps across world switches (spec/svm.md §3.9, §7.5)', () => {
    const toPlain = (cpu: Cpu, mem: MachineMemory) => {
      mem.setNestedPaging(null);
      mem.asid = 0;
      mem.syncPaging(cpu, true);
    };
    const toNested = (cpu: Cpu, mem: MachineMemory, asid = 1, nCr3 = NPT_ROOT) => {
      mem.setNestedPaging({ nCr3, ...L1 });
      mem.asid = asid;
      mem.syncPaging(cpu, true);
    };
    function setup(): { mem: MachineMemory; cpu: Cpu; plainLeaf: number } {
      map4(L2_CR3, DATA_VA, 6 * MiB, 0x1000, ALL, ALL, allocator(0x2000), nestedPlace);
      const plainLeaf = path4(L2_CR3, DATA_VA, nestedPlace).at(-1)!;
      ram.setUint32(6 * MiB, 55, true);
      ram.setUint32(6 * MiB + 0x1000, 66, true);
      ram.setUint32(DATA_GPA + DATA_HOST_DELTA, 77, true);
      ram.setUint32(DATA_GPA + DATA_HOST_DELTA + 0x1000, 88, true);
      const { mem, cpu } = machine();
      enterL2(cpu, mem, false);
      expect(mem.read32(DATA_VA)).toBe(55);
      toNested(cpu, mem);
      expect(mem.read32(DATA_VA)).toBe(77);
      return { mem, cpu, plainLeaf };
    }
    /** Point the plain mapping of DATA_VA at L1-PA 6 MiB + 4 KiB (66), without a flush. */
    const remapPlain = (mem: MachineMemory, leaf: number) => mem.dv.setBigUint64(leaf, BigInt(6 * MiB + 0x1000) | ALL | A | D, true);
    /** Point the nested mapping of DATA_GPA one page on (88), without a flush. */
    const remapNested = (mem: MachineMemory) => mem.dv.setBigUint64(nestedLeaf(DATA_GPA), BigInt(DATA_GPA + DATA_HOST_DELTA + 0x1000) | ALL | A | D, true);

    test('switching back to an unchanged context takes its translations back; a flush then drops them', () => {
      const { mem, cpu, plainLeaf } = setup();
      remapPlain(mem, plainLeaf);
      toPlain(cpu, mem);
      expect(mem.read32(DATA_VA)).toBe(55);
      mem.flushTlb(); // INVLPG, MOV CR3, …
      expect(mem.read32(DATA_VA)).toBe(66);
    });

    test('a guest at another CPL does not cost the host its kept translations', () => {
      const { mem, cpu, plainLeaf } = setup();
      toPlain(cpu, mem);
      cpu.s[S.CPL] = 3;
      mem.flushTlb(); // a fresh start: nothing kept on either side
      cpu.s[S.CPL] = 0;
      expect(mem.read32(DATA_VA)).toBe(55);
      cpu.s[S.CPL] = 3;
      toNested(cpu, mem);
      expect(mem.read32(DATA_VA)).toBe(77);
      remapPlain(mem, plainLeaf);
      cpu.s[S.CPL] = 0;
      toPlain(cpu, mem);
      expect(mem.read32(DATA_VA)).toBe(55);
    });

    test('a flush in one world drops the other world\'s kept translations too', () => {
      const { mem, cpu, plainLeaf } = setup();
      remapPlain(mem, plainLeaf);
      mem.flushTlb(); // in L2
      toPlain(cpu, mem);
      expect(mem.read32(DATA_VA)).toBe(66);
    });

    test('the guest keeps its translations for the same ASID and nested tables, not for a new ASID or N_CR3', () => {
      const { mem, cpu } = setup();
      toPlain(cpu, mem);
      remapNested(mem);
      toNested(cpu, mem, 1);
      expect(mem.read32(DATA_VA)).toBe(77);
      toPlain(cpu, mem);
      toNested(cpu, mem, 2);
      expect(mem.read32(DATA_VA)).toBe(88);
      // Back to ASID 2 with an other N_CR3 (the same tables copied elsewhere): a fresh walk.
      mem.dv.setBigUint64(nestedLeaf(DATA_GPA), BigInt(DATA_GPA + DATA_HOST_DELTA) | ALL | A | D, true);
      toPlain(cpu, mem);
      new Uint8Array(mem.ram).copyWithin(NPT_ROOT + 0x100000, NPT_ROOT, NPT_ROOT + 0x1000);
      toNested(cpu, mem, 2, NPT_ROOT + 0x100000);
      expect(mem.read32(DATA_VA)).toBe(77);
    });
  });

  test('PAE L2 under nested paging: no PDPTE registers are loaded from L1-physical CR3', () => {
    const { mem, cpu } = machine();
    mem.dv.setBigUint64(L2_CR3, 0xffffn, true); // garbage at L1-PA = the GPA of L2's CR3
    mem.setNestedPaging({ nCr3: NPT_ROOT, ...L1 });
    cpu.s[S.CR0] = CR0_PG | CR0_PE;
    cpu.s[S.CR4] = CR4_PAE;
    cpu.s[S.EFER] = 0;
    cpu.s[S.CR3_LO] = L2_CR3;
    mem.syncPaging(cpu);
    expect(mem.ctx.pdptes.every((x) => x === 0)).toBe(true);
  });
});

describe('VMRUN checks C17-C19 (§5.3, §7.5, §7.6)', () => {
  const PAT_DEFAULT = [0x0007_0406, 0x0007_0406] as const;

  test('C17: N_CR3 must be a legal physical address', () => {
    expect(nestedPagingConsistent(0x10000, 0, L1.cr0, ...PAT_DEFAULT)).toBe(true);
    expect(nestedPagingConsistent(0x10000, 0xffff, L1.cr0, ...PAT_DEFAULT)).toBe(true); // bit 47
    expect(nestedPagingConsistent(0x10000, 0x1_0000, L1.cr0, ...PAT_DEFAULT)).toBe(false); // bit 48
    expect(nestedPagingConsistent(0x10000, 0x8000_0000 | 0, L1.cr0, ...PAT_DEFAULT)).toBe(false); // bit 63
    expect(nestedPagingConsistent(0x10fff, 0, L1.cr0, ...PAT_DEFAULT)).toBe(true); // low bits are not checked
  });

  test('C18: L1 must have paging on', () => {
    expect(nestedPagingConsistent(0x10000, 0, CR0_PE, ...PAT_DEFAULT)).toBe(false);
  });

  test('C19: every G_PAT byte must be a valid memory type (0, 1, 4, 5, 6, 7)', () => {
    expect(validPat(0x0706_0504, 0x0100_0706)).toBe(true);
    for (const bad of [2, 3, 8, 0xff]) {
      for (let byte = 0; byte < 8; byte++) {
        const lo = byte < 4 ? bad << (8 * byte) : 0;
        const hi = byte >= 4 ? bad << (8 * (byte - 4)) : 0;
        expect(validPat(lo, hi)).toBe(false);
        expect(nestedPagingConsistent(0x10000, 0, L1.cr0, lo, hi)).toBe(false);
      }
    }
  });
});
