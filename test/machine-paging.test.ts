/**
 * The page-table walker against hand-built page tables: every paging mode and page size, every
 * #PF error-code bit, reserved bits, accessed/dirty updates and the permission summary a TLB
 * caches. Expected values come from the Intel SDM Vol. 3 ch. 4 (4.3-4.8) and the AMD APM
 * Vol. 2 ch. 5. The tests build entries with BigInt for clarity; the walker itself never does.
 */
import { beforeEach, describe, expect, test } from 'vitest';
import { CpuException, PfErr, Vec } from '../src/cpu/exceptions.js';
import { Access, loadPdptes, MAXPHYADDR, Perm, PagingMode, pagingMode, translationServes, walk, WalkResult, type PagingContext } from '../src/machine/paging.js';

// Entry bits.
const P = 1n;
const RW = 2n;
const US = 4n;
const A = 0x20n;
const D = 0x40n;
const PS = 0x80n;
const G = 0x100n;
const XD = 1n << 63n;

const CR0_PG = 1 << 31;
const CR0_WP = 1 << 16;
const CR4_PSE = 1 << 4;
const CR4_PAE = 1 << 5;
const CR4_PGE = 1 << 7;
const CR4_LA57 = 1 << 12;
const CR4_SMEP = 1 << 20;
const CR4_SMAP = 1 << 21;
const EFER_LME = 1 << 8;
const EFER_LMA = 1 << 10;
const EFER_NXE = 1 << 11;

const RAM_BYTES = 1 << 20;
// Table locations for the long-mode and PAE builders.
const PML5 = 0x5000;
const PML4 = 0x1000;
const PDPT = 0x2000;
const PD = 0x3000;
const PT = 0x4000;

let ram: DataView;
const out = new WalkResult();

beforeEach(() => {
  ram = new DataView(new ArrayBuffer(RAM_BYTES));
});

const entry = (addr: number) => ram.getBigUint64(addr, true);
const setEntry = (addr: number, v: bigint) => ram.setBigUint64(addr, v, true);
const setEntry32 = (addr: number, v: number) => ram.setUint32(addr, v >>> 0, true);
const index = (va: bigint, shift: number) => Number((va >> BigInt(shift)) & 511n);
/** The JS number the CPU passes for a 64-bit address: the signed value. */
const vaNum = (va: bigint) => Number(BigInt.asIntN(64, va));

function longCtx(extra: Partial<PagingContext> = {}): PagingContext {
  return { cr0: CR0_PG | CR0_WP | 1, cr3: PML4, cr4: CR4_PAE, efer: EFER_LME | EFER_LMA | EFER_NXE, ac: false, pdptes: new Uint32Array(8), ...extra };
}

interface Path {
  pml4e: number;
  pdpte: number;
  pde: number;
  pte: number;
}

/** Map `va` in the 4-level tables at PML4..PT: leaf flags `leaf`, every upper entry `upper`. */
function mapLong(va: bigint, phys: bigint, size: '4k' | '2m' | '1g', leaf = P | RW | US, upper = P | RW | US): Path {
  const path: Path = { pml4e: PML4 + index(va, 39) * 8, pdpte: PDPT + index(va, 30) * 8, pde: PD + index(va, 21) * 8, pte: PT + index(va, 12) * 8 };
  setEntry(path.pml4e, BigInt(PDPT) | upper);
  if (size === '1g') {
    setEntry(path.pdpte, phys | leaf | PS);
    return path;
  }
  setEntry(path.pdpte, BigInt(PD) | upper);
  if (size === '2m') {
    setEntry(path.pde, phys | leaf | PS);
    return path;
  }
  setEntry(path.pde, BigInt(PT) | upper);
  setEntry(path.pte, phys | leaf);
  return path;
}

/** The #PF error code `fn` raises (and a check that CR2 would get `va`). */
function pfCode(fn: () => void, va: number): number {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(CpuException);
    const ex = e as CpuException;
    expect(ex.vector).toBe(Vec.PF);
    expect(ex.address).toBe(va);
    return ex.errorCode;
  }
  throw new Error('expected a #PF');
}

describe('modes', () => {
  test('paging off: identity on the low 32 bits, everything allowed', () => {
    const ctx = longCtx({ cr0: 1, cr4: CR4_SMEP | CR4_SMAP, efer: 0 });
    expect(pagingMode(ctx)).toBe(PagingMode.NONE);
    walk(ram, ctx, 0x12345678, Access.WRITE | Access.USER, out);
    expect(out).toMatchObject({ phys: 0x12345678, pageBase: 0x12345000, pageSize: 4096 });
    walk(ram, ctx, -1, Access.FETCH, out);
    expect(out.phys).toBe(0xffffffff);
    expect(translationServes(out.perms, Access.FETCH, ctx)).toBe(true);
    expect(translationServes(out.perms, Access.WRITE, ctx)).toBe(true);
  });

  test('32-bit paging, 4 KiB page: PDE and PTE, accessed bits on both', () => {
    const ctx = longCtx({ cr0: CR0_PG | 1, cr3: 0x1000 | 0x18 /* PWT|PCD ignored */, cr4: 0, efer: 0 });
    expect(pagingMode(ctx)).toBe(PagingMode.LEGACY32);
    const va = 0xc0403abc;
    setEntry32(0x1000 + (va >>> 22) * 4, 0x2000 | 0x7);
    setEntry32(0x2000 + ((va >>> 12) & 0x3ff) * 4, 0xabcde000 | 0x7);
    walk(ram, ctx, va, Access.USER, out);
    expect(out).toMatchObject({ phys: 0xabcdeabc, pageBase: 0xabcde000, pageSize: 4096 });
    expect(ram.getUint32(0x1000 + (va >>> 22) * 4, true)).toBe(0x2000 | 0x27);
    expect(ram.getUint32(0x2000 + ((va >>> 12) & 0x3ff) * 4, true)).toBe((0xabcde000 | 0x27) >>> 0);
  });

  test('32-bit paging, 4 MiB page with CR4.PSE and PSE-36 address bits; PS ignored without PSE', () => {
    const va = 0x80123456;
    const pdeAddr = 0x1000 + (va >>> 22) * 4;
    // Physical bits 39:32 = 0x5a in PDE bits 20:13.
    setEntry32(pdeAddr, 0x7fc00000 | (0x5a << 13) | 0x83);
    walk(ram, longCtx({ cr0: CR0_PG, cr3: 0x1000, cr4: CR4_PSE, efer: 0 }), va, Access.WRITE, out);
    expect(out.pageSize).toBe(4 << 20);
    expect(out.pageBase).toBe(0x5a * 2 ** 32 + 0x7fc00000);
    expect(out.phys).toBe(0x5a * 2 ** 32 + 0x7fc00000 + 0x123456);
    expect(ram.getUint32(pdeAddr, true) & 0x60).toBe(0x60); // A and D on the leaf PDE

    // Without CR4.PSE the same PDE points at a page table (address 0x7fc0a000, beyond RAM: all
    // ones, a present PTE mapping 0xfffff000).
    walk(ram, longCtx({ cr0: CR0_PG, cr3: 0x1000, cr4: 0, efer: 0 }), va, 0, out);
    expect(out).toMatchObject({ pageSize: 4096, pageBase: 0xfffff000 });
  });

  test('PAE paging: PDPTEs come from the registers, 4 KiB and 2 MiB pages', () => {
    const cr3 = 0x1fe0; // 32-byte aligned PDPT
    setEntry(cr3 + 3 * 8, BigInt(PD) | P);
    const ctx = longCtx({ cr3, efer: EFER_NXE });
    expect(pagingMode(ctx)).toBe(PagingMode.PAE);
    expect(loadPdptes(ram, cr3, ctx.pdptes)).toBe(true);
    // A later change to the PDPT in memory is not seen until the registers are reloaded.
    setEntry(cr3 + 3 * 8, 0n);

    const va4k = 0xc0201234;
    setEntry(PD + ((va4k >>> 21) & 511) * 8, BigInt(PT) | P | RW);
    setEntry(PT + ((va4k >>> 12) & 511) * 8, 0x12_3456_7000n | P | RW);
    walk(ram, ctx, va4k, 0, out);
    expect(out).toMatchObject({ phys: 0x12_3456_7234, pageBase: 0x12_3456_7000, pageSize: 4096 });

    const va2m = 0xc0456789;
    setEntry(PD + ((va2m >>> 21) & 511) * 8, 0x8_0040_0000n | P | PS);
    walk(ram, ctx, va2m, 0, out);
    expect(out).toMatchObject({ phys: 0x8_0040_0000 + 0x56789, pageBase: 0x8_0040_0000, pageSize: 2 << 20 });
    // No accessed bit is written into the in-memory PDPT.
    expect(entry(cr3 + 3 * 8)).toBe(0n);

    ctx.pdptes.fill(0);
    expect(pfCode(() => walk(ram, ctx, va4k, Access.WRITE, out), va4k)).toBe(PfErr.W);
  });

  test('PAE PDPTE reserved bits: loadPdptes reports them and the walk faults with RSVD', () => {
    const ctx = longCtx({ cr3: 0x1000, efer: 0 });
    for (const bad of [RW, US, 1n << 5n, 1n << 8n, 1n << 52n, XD, 1n << BigInt(MAXPHYADDR)]) {
      setEntry(0x1000, BigInt(PD) | P | bad);
      expect(loadPdptes(ram, 0x1000, ctx.pdptes)).toBe(false);
      expect(pfCode(() => walk(ram, ctx, 0x1000, 0, out), 0x1000)).toBe(PfErr.P | PfErr.RSVD);
    }
    // Reserved bits in a PDPTE that is not present do not matter.
    setEntry(0x1000, 0xfffn << 52n);
    expect(loadPdptes(ram, 0x1000, ctx.pdptes)).toBe(true);
  });

  test('PAE PDE/PTE: bits 62:52 and (without NXE) XD are reserved', () => {
    const ctx = longCtx({ cr3: 0x1000, efer: 0 });
    setEntry(0x1000, BigInt(PD) | P);
    loadPdptes(ram, 0x1000, ctx.pdptes);
    setEntry(PD, BigInt(PT) | P | RW);
    setEntry(PT + 8, 0x5000n | P | RW | (1n << 60n));
    expect(pfCode(() => walk(ram, ctx, 0x1000, Access.WRITE, out), 0x1000)).toBe(PfErr.P | PfErr.RSVD | PfErr.W);
    setEntry(PT + 8, 0x5000n | P | RW | XD);
    expect(pfCode(() => walk(ram, ctx, 0x1000, 0, out), 0x1000)).toBe(PfErr.P | PfErr.RSVD);
    ctx.efer = EFER_NXE;
    walk(ram, ctx, 0x1000, 0, out);
    expect(out.perms & Perm.EXEC).toBe(0);
    expect(pfCode(() => walk(ram, ctx, 0x1000, Access.FETCH, out), 0x1000)).toBe(PfErr.P | PfErr.I);
  });

  test('4-level paging: 4 KiB, 2 MiB and 1 GiB pages', () => {
    const ctx = longCtx();
    expect(pagingMode(ctx)).toBe(PagingMode.LONG4);
    mapLong(0x40_0000_1000n, 0x1234_5678_9000n, '4k');
    walk(ram, ctx, 0x40_0000_1abc, 0, out);
    expect(out).toMatchObject({ phys: 0x1234_5678_9abc, pageBase: 0x1234_5678_9000, pageSize: 4096 });

    mapLong(0x7f_8060_0000n, 0xfff_ffe0_0000n, '2m');
    walk(ram, ctx, 0x7f_806f_edcb, 0, out);
    expect(out).toMatchObject({ phys: 0xfff_ffe0_0000 + 0xfedcb, pageBase: 0xfff_ffe0_0000, pageSize: 2 << 20 });

    mapLong(0x1_c000_0000n, 0xabc_4000_0000n, '1g');
    walk(ram, ctx, 0x1_e123_4567, 0, out);
    expect(out).toMatchObject({ phys: 0xabc_4000_0000 + 0x2123_4567, pageBase: 0xabc_4000_0000, pageSize: 2 ** 30 });
  });

  test('4-level paging: kernel-half addresses index the tables by their low 48 bits; PCID bits of CR3 are not address bits', () => {
    const va = 0xffff_ff80_1234_5678n; // PML4 index 511, PDPT index 0, ...
    const path = mapLong(va & ~0xfffn, 0x9000n, '4k');
    expect(path.pml4e).toBe(PML4 + 511 * 8);
    const ctx = longCtx({ cr3: PML4 | 0x123, cr4: CR4_PAE | (1 << 17) });
    walk(ram, ctx, vaNum(va), 0, out);
    expect(out.phys).toBe(0x9678);

    const va2 = 0xffff_8000_4020_3000n; // index 256 / 1 / 1 / 3
    const path2 = mapLong(va2, 0xa000n, '4k');
    expect([path2.pml4e, path2.pdpte, path2.pde, path2.pte]).toEqual([PML4 + 256 * 8, PDPT + 8, PD + 8, PT + 3 * 8]);
    walk(ram, ctx, vaNum(va2), 0, out);
    expect(out.phys).toBe(0xa000);
  });

  test('5-level paging (CR4.LA57): bits 56:48 select the PML5 entry', () => {
    const va = 0x01_2345_0000_0000n | 0x1000n; // PML5 index 0x123, PML4 index 0x8a
    setEntry(PML5 + index(va, 48) * 8, BigInt(PML4) | P | RW | US);
    mapLong(va, 0x7000n, '4k');
    const ctx = longCtx({ cr3: PML5, cr4: CR4_PAE | CR4_LA57 });
    expect(pagingMode(ctx)).toBe(PagingMode.LONG5);
    walk(ram, ctx, vaNum(va), Access.WRITE, out);
    expect(out.phys).toBe(0x7000);
    expect(entry(PML5 + index(va, 48) * 8) & A).toBe(A);
  });
});

describe('reserved bits (4-level)', () => {
  const va = 0x40_0000_0000n;

  test('PS in a PML4E or PML5E', () => {
    const path = mapLong(va, 0x9000n, '4k');
    // Address 0 in the entry, so only PS itself can be the reserved bit.
    setEntry(path.pml4e, P | RW | US | PS);
    expect(pfCode(() => walk(ram, longCtx(), vaNum(va), 0, out), vaNum(va))).toBe(PfErr.P | PfErr.RSVD);
    setEntry(path.pml4e, BigInt(PDPT) | P | RW | US);
    setEntry(PML5, P | RW | US | PS);
    expect(pfCode(() => walk(ram, longCtx({ cr3: PML5, cr4: CR4_PAE | CR4_LA57 }), vaNum(va), 0, out), vaNum(va))).toBe(PfErr.P | PfErr.RSVD);
    setEntry(PML5, BigInt(PML4) | P | RW | US);
    walk(ram, longCtx({ cr3: PML5, cr4: CR4_PAE | CR4_LA57 }), vaNum(va), 0, out);
    expect(out.phys).toBe(0x9000);
  });

  test('1 GiB page: bits 29:13; 2 MiB page: bits 20:13; bit 12 (PAT) is allowed', () => {
    const path = mapLong(va, 0x4000_0000n, '1g');
    setEntry(path.pdpte, entry(path.pdpte) | (1n << 12n));
    walk(ram, longCtx(), vaNum(va), 0, out);
    setEntry(path.pdpte, entry(path.pdpte) | (1n << 29n));
    expect(pfCode(() => walk(ram, longCtx(), vaNum(va), Access.USER, out), vaNum(va))).toBe(PfErr.P | PfErr.RSVD | PfErr.U);

    const path2 = mapLong(va, 0x20_0000n, '2m');
    setEntry(path2.pde, entry(path2.pde) | (1n << 12n));
    walk(ram, longCtx(), vaNum(va), 0, out);
    setEntry(path2.pde, entry(path2.pde) | (1n << 13n));
    expect(pfCode(() => walk(ram, longCtx(), vaNum(va), 0, out), vaNum(va))).toBe(PfErr.P | PfErr.RSVD);
  });

  test('address bits at and above MAXPHYADDR, at every level', () => {
    for (const level of ['pml4e', 'pdpte', 'pde', 'pte'] as const) {
      const path = mapLong(va, 0x9000n, '4k');
      setEntry(path[level], entry(path[level]) | (1n << BigInt(MAXPHYADDR)));
      expect(pfCode(() => walk(ram, longCtx(), vaNum(va), Access.WRITE, out), vaNum(va))).toBe(PfErr.P | PfErr.RSVD | PfErr.W);
    }
  });

  test('XD is reserved without EFER.NXE; bits 62:52 are ignored in long mode', () => {
    const path = mapLong(va, 0x9000n, '4k');
    setEntry(path.pde, entry(path.pde) | XD);
    expect(pfCode(() => walk(ram, longCtx({ efer: EFER_LMA }), vaNum(va), 0, out), vaNum(va))).toBe(PfErr.P | PfErr.RSVD);
    setEntry(path.pde, entry(path.pde) & ~XD);
    setEntry(path.pte, entry(path.pte) | (0x7ffn << 52n));
    walk(ram, longCtx({ efer: EFER_LMA }), vaNum(va), 0, out);
    expect(out.phys).toBe(0x9000);
  });

  test('a not-present entry wins over reserved bits below it, and a reserved bit above wins over not-present below', () => {
    const path = mapLong(va, 0x9000n, '4k');
    setEntry(path.pte, 0xfffn << 48n); // not present, garbage
    expect(pfCode(() => walk(ram, longCtx(), vaNum(va), 0, out), vaNum(va))).toBe(0);
    setEntry(path.pdpte, entry(path.pdpte) | (1n << 51n));
    expect(pfCode(() => walk(ram, longCtx(), vaNum(va), 0, out), vaNum(va))).toBe(PfErr.P | PfErr.RSVD);
  });

  test('tables beyond RAM read as all ones and fault as reserved', () => {
    const path = mapLong(va, 0x9000n, '4k');
    setEntry(path.pdpte, 0x8000_0000n | P | RW);
    expect(pfCode(() => walk(ram, longCtx(), vaNum(va), 0, out), vaNum(va))).toBe(PfErr.P | PfErr.RSVD);
  });
});

describe('permissions and the #PF error code', () => {
  const va = 0x40_0020_3000n;
  const v = vaNum(va);
  const code = (ctx: PagingContext, access: number) => pfCode(() => walk(ram, ctx, v, access, out), v);
  const ok = (ctx: PagingContext, access: number) => {
    walk(ram, ctx, v, access, out);
    return out.phys;
  };

  test('not present: P=0 with W, U and I describing the access', () => {
    const path = mapLong(va, 0x9000n, '4k');
    setEntry(path.pte, 0n);
    const ctx = longCtx();
    expect(code(ctx, 0)).toBe(0);
    expect(code(ctx, Access.WRITE)).toBe(PfErr.W);
    expect(code(ctx, Access.USER)).toBe(PfErr.U);
    expect(code(ctx, Access.USER | Access.WRITE)).toBe(PfErr.U | PfErr.W);
    expect(code(ctx, Access.FETCH)).toBe(PfErr.I);
    expect(code(ctx, Access.USER | Access.FETCH)).toBe(PfErr.U | PfErr.I);
    // A descriptor-table access made for CPL 3 is a supervisor access: no U.
    expect(code(ctx, Access.USER | Access.IMPLICIT_SUPERVISOR | Access.WRITE)).toBe(PfErr.W);
  });

  test('I/D is reported only with NXE (PAE-format paging) or SMEP', () => {
    const path = mapLong(va, 0x9000n, '4k');
    setEntry(path.pte, 0n);
    expect(code(longCtx({ efer: EFER_LMA }), Access.FETCH)).toBe(0);
    expect(code(longCtx({ efer: EFER_LMA, cr4: CR4_PAE | CR4_SMEP }), Access.FETCH)).toBe(PfErr.I);
    // 32-bit paging has no NX: NXE alone does not report I/D there, SMEP does.
    const legacy = longCtx({ cr3: 0x1000, cr4: 0, efer: EFER_NXE });
    expect(pfCode(() => walk(ram, legacy, 0x400000, Access.FETCH, out), 0x400000)).toBe(0);
    legacy.cr4 = CR4_SMEP;
    expect(pfCode(() => walk(ram, legacy, 0x400000, Access.FETCH, out), 0x400000)).toBe(PfErr.I);
  });

  test('R/W: user writes need R/W everywhere; supervisor writes only with CR0.WP', () => {
    const path = mapLong(va, 0x9000n, '4k');
    setEntry(path.pdpte, entry(path.pdpte) & ~RW); // read-only at one upper level only
    const wp = longCtx();
    expect(ok(wp, Access.USER)).toBe(0x9000);
    expect(code(wp, Access.USER | Access.WRITE)).toBe(PfErr.P | PfErr.W | PfErr.U);
    expect(code(wp, Access.WRITE)).toBe(PfErr.P | PfErr.W);
    const noWp = longCtx({ cr0: CR0_PG | 1 });
    expect(code(noWp, Access.USER | Access.WRITE)).toBe(PfErr.P | PfErr.W | PfErr.U);
    expect(ok(noWp, Access.WRITE)).toBe(0x9000);
    expect(entry(path.pte) & D).toBe(D);
  });

  test('U/S: a supervisor entry anywhere on the path keeps CPL 3 out', () => {
    const path = mapLong(va, 0x20_0000n, '2m');
    setEntry(path.pml4e, entry(path.pml4e) & ~US);
    const ctx = longCtx();
    expect(code(ctx, Access.USER)).toBe(PfErr.P | PfErr.U);
    expect(code(ctx, Access.USER | Access.FETCH)).toBe(PfErr.P | PfErr.U | PfErr.I);
    expect(ok(ctx, 0)).toBe(0x20_3000);
    expect(ok(ctx, Access.USER | Access.IMPLICIT_SUPERVISOR)).toBe(0x20_3000);
  });

  test('NX: XD at any level stops fetches (user and supervisor) but not data accesses', () => {
    const path = mapLong(va, 0x9000n, '4k');
    setEntry(path.pml4e, entry(path.pml4e) | XD);
    const ctx = longCtx();
    expect(ok(ctx, Access.USER | Access.WRITE)).toBe(0x9000);
    expect(code(ctx, Access.FETCH)).toBe(PfErr.P | PfErr.I);
    expect(code(ctx, Access.FETCH | Access.USER)).toBe(PfErr.P | PfErr.I | PfErr.U);
  });

  test('SMEP: supervisor fetches from user pages fault; supervisor pages and user fetches do not', () => {
    const path = mapLong(va, 0x9000n, '4k');
    const smep = longCtx({ cr4: CR4_PAE | CR4_SMEP });
    expect(code(smep, Access.FETCH)).toBe(PfErr.P | PfErr.I);
    expect(ok(smep, Access.FETCH | Access.USER)).toBe(0x9000);
    expect(ok(longCtx(), Access.FETCH)).toBe(0x9000);
    setEntry(path.pde, entry(path.pde) & ~US);
    expect(ok(smep, Access.FETCH)).toBe(0x9000);
  });

  test('SMAP: supervisor data accesses to user pages need RFLAGS.AC, implicit ones are refused regardless', () => {
    mapLong(va, 0x9000n, '4k');
    const smap = longCtx({ cr4: CR4_PAE | CR4_SMAP });
    expect(code(smap, 0)).toBe(PfErr.P);
    expect(code(smap, Access.WRITE)).toBe(PfErr.P | PfErr.W);
    expect(ok(smap, Access.USER)).toBe(0x9000); // CPL 3 itself is unaffected
    smap.ac = true;
    expect(ok(smap, Access.WRITE)).toBe(0x9000);
    expect(code(smap, Access.USER | Access.IMPLICIT_SUPERVISOR)).toBe(PfErr.P);
    expect(code(smap, Access.IMPLICIT_SUPERVISOR | Access.WRITE)).toBe(PfErr.P | PfErr.W);
    // Fetches are SMEP's business, not SMAP's.
    expect(ok(smap, Access.FETCH)).toBe(0x9000);
  });

  test('SMAP with CR0.WP=0: an explicit supervisor write with AC=1 reaches a read-only user page', () => {
    mapLong(va, 0x9000n, '4k', P | US);
    expect(ok(longCtx({ cr0: CR0_PG | 1, cr4: CR4_PAE | CR4_SMAP, ac: true }), Access.WRITE)).toBe(0x9000);
    expect(code(longCtx({ cr4: CR4_PAE | CR4_SMAP, ac: true }), Access.WRITE)).toBe(PfErr.P | PfErr.W);
  });

  test('32-bit paging applies the same R/W and U/S rules', () => {
    const ctx = longCtx({ cr0: CR0_PG | CR0_WP, cr3: 0x1000, cr4: CR4_PSE, efer: 0 });
    setEntry32(0x1000 + 4, 0x400000 | 0x85); // 4 MiB, present, user, read-only
    walk(ram, ctx, 0x400000, Access.USER, out);
    expect(pfCode(() => walk(ram, ctx, 0x400000, Access.USER | Access.WRITE, out), 0x400000)).toBe(PfErr.P | PfErr.W | PfErr.U);
    expect(pfCode(() => walk(ram, ctx, 0x400000, Access.WRITE, out), 0x400000)).toBe(PfErr.P | PfErr.W);
    setEntry32(0x1000 + 4, 0x400000 | 0x200000 | 0x81); // 4 MiB with bit 21 set: reserved
    expect(pfCode(() => walk(ram, ctx, 0x400000, 0, out), 0x400000)).toBe(PfErr.P | PfErr.RSVD);
  });
});

describe('accessed and dirty bits', () => {
  const va = 0x40_0000_5000n;
  const v = vaNum(va);

  test('a read sets A at every level and leaves D clear; a write sets D on the leaf only', () => {
    const path = mapLong(va, 0x9000n, '4k');
    walk(ram, longCtx(), v, 0, out);
    for (const a of [path.pml4e, path.pdpte, path.pde, path.pte]) expect(entry(a) & (A | D)).toBe(A);
    walk(ram, longCtx(), v, Access.WRITE, out);
    for (const a of [path.pml4e, path.pdpte, path.pde]) expect(entry(a) & (A | D)).toBe(A);
    expect(entry(path.pte) & (A | D)).toBe(A | D);
  });

  test('D goes on the large-page leaf', () => {
    const path = mapLong(va, 0x4000_0000n, '1g');
    walk(ram, longCtx(), v, Access.WRITE, out);
    expect(entry(path.pdpte) & (A | D)).toBe(A | D);
    expect(entry(path.pml4e) & (A | D)).toBe(A);
  });

  test('a faulting walk changes no entry', () => {
    const path = mapLong(va, 0x9000n, '4k', P | US);
    const before = [path.pml4e, path.pdpte, path.pde, path.pte].map(entry);
    expect(pfCode(() => walk(ram, longCtx(), v, Access.WRITE, out), v)).toBe(PfErr.P | PfErr.W);
    expect([path.pml4e, path.pdpte, path.pde, path.pte].map(entry)).toEqual(before);
    setEntry(path.pte, 0n);
    expect(pfCode(() => walk(ram, longCtx(), v, 0, out), v)).toBe(0);
    expect([path.pml4e, path.pdpte, path.pde].map(entry)).toEqual(before.slice(0, 3));
  });
});

describe('the permission summary a TLB caches', () => {
  const va = 0x40_0000_5000n;
  const v = vaNum(va);

  test('rights of the whole path, global with CR4.PGE, dirty after a write', () => {
    const path = mapLong(va, 0x9000n, '4k', P | RW | US | G);
    walk(ram, longCtx(), v, 0, out);
    expect(out.perms).toBe(Perm.WRITE | Perm.USER | Perm.EXEC);
    walk(ram, longCtx({ cr4: CR4_PAE | CR4_PGE }), v, 0, out);
    expect(out.perms).toBe(Perm.WRITE | Perm.USER | Perm.EXEC | Perm.GLOBAL);
    walk(ram, longCtx(), v, Access.WRITE, out);
    expect(out.perms).toBe(Perm.WRITE | Perm.USER | Perm.EXEC | Perm.DIRTY);
    setEntry(path.pdpte, (entry(path.pdpte) & ~(RW | US)) | XD);
    walk(ram, longCtx(), v, 0, out);
    expect(out.perms).toBe(Perm.DIRTY);
    // A G bit in a non-leaf entry means nothing.
    const path2 = mapLong(va, 0x9000n, '4k', P | RW, P | RW | G);
    expect(path2.pte).toBe(path.pte);
    walk(ram, longCtx({ cr4: CR4_PAE | CR4_PGE }), v, 0, out);
    expect(out.perms & Perm.GLOBAL).toBe(0);
  });

  test('a write after a read re-walks to set D; other kinds hit or re-walk to the right fault', () => {
    const path = mapLong(va, 0x9000n, '4k', P | RW | US);
    const ctx = longCtx({ cr4: CR4_PAE | CR4_SMAP | CR4_SMEP });
    walk(ram, ctx, v, Access.USER, out);
    const cached = out.perms;
    expect(translationServes(cached, Access.USER, ctx)).toBe(true);
    expect(translationServes(cached, Access.USER | Access.FETCH, ctx)).toBe(true);
    expect(translationServes(cached, Access.USER | Access.WRITE, ctx)).toBe(false); // D is clear
    walk(ram, ctx, v, Access.USER | Access.WRITE, out);
    expect(entry(path.pte) & D).toBe(D);
    expect(translationServes(out.perms, Access.USER | Access.WRITE, ctx)).toBe(true);

    // Supervisor accesses to this user page: SMEP and SMAP refuse them, and the walk agrees.
    expect(translationServes(cached, Access.FETCH, ctx)).toBe(false);
    expect(pfCode(() => walk(ram, ctx, v, Access.FETCH, out), v)).toBe(PfErr.P | PfErr.I);
    expect(translationServes(cached, 0, ctx)).toBe(false);
    ctx.ac = true; // STAC: no flush needed, the next check sees it
    expect(translationServes(cached, 0, ctx)).toBe(true);
    expect(translationServes(cached, Access.IMPLICIT_SUPERVISOR, ctx)).toBe(false);
  });
});
