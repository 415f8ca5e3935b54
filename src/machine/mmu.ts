/**
 * Machine-mode memory: guest-physical RAM plus MMIO, reached through the guest's own page
 * tables. It is the user-mode Memory with a different slow path: a TLB miss walks the page
 * tables (paging.ts) instead of the process's page map, and physical addresses beyond RAM go
 * to the MMIO bus.
 *
 * TLB entries are filled for the current privilege level only (the walk's rights are checked
 * for CPL 0 or CPL 3 before an entry is made), so a CPL change flushes the TLB; a read entry
 * needs read rights, a write entry write rights and a dirty page (so the first write still
 * walks and sets D). MMIO pages are never cached, so every device access takes this path.
 *
 * An SVM guest with nested paging (spec/svm.md §7) walks two levels; the TLB then caches the
 * combined linear → host-physical translation, whose rights reflect both levels.
 *
 * An SVM world switch does not flush: the MMU keeps two TLB sets, one live and one holding the
 * other world's translations, each tagged with the paging context it was filled under (CR0,
 * CR3, CR4, EFER, the nested tables and L1's paging registers that give their format, the
 * ASID, the CPL). The ASID is part of the tag because a hypervisor may give a guest a new ASID
 * instead of flushing (as KVM does): the new ASID must start without the old translations.
 * A switch back to the same context swaps the sets — a hypervisor's exit-handling round trip
 * then walks no page table — and a switch to any other context starts the new world empty.
 * This is the ASID tagging spec/svm.md §3.9 and §7.5 allow. Any other flush (INVLPG, INVLPGA,
 * MOV CR3, TLB_CONTROL, a CPL change, …) empties both sets, so the kept set never outlives a
 * flush the current code would have made.
 */
import type { Cpu } from '../cpu/cpu.js';
import { CpuException, NonCanonical, Vec } from '../cpu/exceptions.js';
import { dropWriteEntries, Memory, PAGE_SIZE, Prot, TLB_MASK, TLB_SIZE } from '../cpu/memory.js';
import { S } from '../cpu/state.js';
import type { AccessSize, MmioBus } from './bus.js';
import { Access, loadPdptes, type PagingContext, PagingMode, pagingMode, translationServes, walk, WalkResult } from './paging.js';
import { NestedPaging, type NestedPagingSetup } from '../svm/npt.js';
import { EFER_LMA } from './segments.js';

const TWO32 = 4294967296;

/** A TLB set (its first index in Memory's TLB arrays) and the paging context its entries were made for. */
class TlbSet {
  /** Whether the entries (as the spare set) may be used again for the context below. */
  kept = false;
  cpl = 0;
  asid = 0;
  cr0 = 0;
  cr3 = 0;
  cr4 = 0;
  efer = 0;
  /** Nested paging: on, and its tables' root and format (see NestedPaging.load). */
  nested = false;
  nCr3 = 0;
  nCr0 = 0;
  nCr4 = 0;
  nEfer = 0;
  /** Made with PAE paging's PDPTE registers, which every world switch reloads: never kept. */
  viaPdptes = false;

  constructor(readonly at: number) {}

  /** Record the context now in `c` (and `asid`) as the one these entries are for. */
  tag(c: PagingContext, asid: number): void {
    this.asid = asid;
    this.cr0 = c.cr0;
    this.cr3 = c.cr3;
    this.cr4 = c.cr4;
    this.efer = c.efer;
    const n = c.nested ? (c.nested as NestedPaging).tables : null;
    this.nested = n !== null;
    this.nCr3 = n ? n.cr3 : 0;
    this.nCr0 = n ? n.cr0 : 0;
    this.nCr4 = n ? n.cr4 : 0;
    this.nEfer = n ? n.efer : 0;
    this.viaPdptes = n === null && pagingMode(c) === PagingMode.PAE;
  }

  /** Were these entries made for the context now in `c` and `asid`? */
  isFor(c: PagingContext, asid: number): boolean {
    const n = c.nested ? (c.nested as NestedPaging).tables : null;
    if (this.asid !== asid || this.cr0 !== c.cr0 || this.cr3 !== c.cr3 || this.cr4 !== c.cr4 || this.efer !== c.efer || this.nested !== (n !== null)) return false;
    return n === null || (this.nCr3 === n.cr3 && this.nCr0 === n.cr0 && this.nCr4 === n.cr4 && this.nEfer === n.efer);
  }
}

export class MachineMemory extends Memory {
  cpu: Cpu | null = null;
  readonly ctx: PagingContext = { cr0: 0, cr3: 0, cr4: 0, efer: 0, ac: false, pdptes: new Uint32Array(8), nested: null };
  /** This CPU's nested tables, in ctx.nested while an SVM guest runs with nested paging. */
  private readonly npt = new NestedPaging();
  private readonly result = new WalkResult();
  /** CPL the TLB was filled for. */
  private tlbCpl = 0;
  /** The ASID translations are made for: 0 for the host (L1), vmcb12's GUEST_ASID in guest mode (set by the SVM before syncPaging). */
  asid = 0;
  /** The TLB set in use (at Memory's tlbSet), and the other world's. */
  private live = new TlbSet(0);
  private spare = new TlbSet(TLB_SIZE);
  /** Called with an address no device claims (for -d unimp). */
  onUnclaimedMmio: (phys: number, write: boolean) => void = () => {};

  constructor(
    ramBytes: number,
    readonly mmio: MmioBus,
    shareRamWith?: MachineMemory,
  ) {
    super(ramBytes, shareRamWith);
  }

  /**
   * Re-read CR0/CR3/CR4/EFER after a change and flush the TLB; PAE paging reloads its PDPTE
   * registers (except under nested paging, where the walk reads them from guest memory when it
   * needs them). At an SVM world switch (`worldSwitch`), the TLB set of the world being left is
   * kept, and the other world's is taken back instead of flushing when it was made for the
   * context being entered (see the file comment).
   */
  syncPaging(cpu: Cpu, worldSwitch = false): void {
    const s = cpu.s;
    const c = this.ctx;
    c.cr0 = s[S.CR0];
    c.cr3 = (s[S.CR3_HI] >>> 0) * TWO32 + (s[S.CR3_LO] >>> 0);
    c.cr4 = s[S.CR4];
    c.efer = s[S.EFER];
    if (pagingMode(c) === PagingMode.PAE && !c.nested) loadPdptes(this.dv, c.cr3, c.pdptes);
    if (!worldSwitch) {
      this.flushTlb();
      this.live.tag(c, this.asid);
      return;
    }
    const from = this.live;
    const to = this.spare;
    // Nothing is kept while data breakpoints or #AC checking hold the TLB empty.
    const usable = !this.watch && !this.alignCheck;
    from.kept = usable && !from.viaPdptes;
    from.cpl = this.tlbCpl;
    this.live = to;
    this.spare = from;
    this.tlbSet = to.at;
    if (to.kept && usable && to.isFor(c, this.asid)) {
      this.tlbCpl = to.cpl;
      to.kept = false;
      return;
    }
    to.kept = false;
    to.tag(c, this.asid);
    // The empty set serves the CPL the new world starts at (else its first access would flush
    // again, the kept set with it).
    this.tlbCpl = s[S.CPL];
    super.flushTlb();
  }

  /** Every cached translation goes, the other world's kept set included. */
  override flushTlb(): void {
    this.spare.kept = false;
    super.flushTlb();
  }

  protected override dropWriteTlbFor(ppn: number): void {
    super.dropWriteTlbFor(ppn);
    if (this.spare.kept) dropWriteEntries(this.tlbTagW, this.tlbBaseW, this.spare.at, ppn * PAGE_SIZE);
  }

  /**
   * Nested paging on for the guest VMRUN enters (N_CR3 and L1's CR0/CR4/EFER at VMRUN), or
   * off (null) at #VMEXIT. Call it before syncPaging, which loads the new level's paging
   * registers, knows from it whether PDPTE registers apply, and tags or picks the TLB set.
   */
  setNestedPaging(setup: NestedPagingSetup | null): void {
    this.ctx.nested = setup ? this.npt.load(setup) : null;
  }

  /**
   * Data breakpoints being watched (DR7 R/W = 01 or 11): linear [start, end) and whether reads
   * count, per DRn; null when none. While set, the TLB stays empty so every access comes here.
   */
  watch: { start: number; end: number; reads: boolean }[] | null = null;
  /** DR6.Bn bits of the watched breakpoints the current instruction hit. */
  watchHits = 0;

  /** #AC checking is on (CPL 3, CR0.AM, RFLAGS.AC): no TLB fills, every access checked here. */
  alignCheck = false;

  override translate(va: number, access: number, size = 1): number {
    const cpu = this.cpu!;
    if (this.alignCheck && size > 1 && !(access & Prot.EXEC) && va % size !== 0) throw new CpuException(Vec.AC, 0);
    const level = cpu.s[S.CPL];
    if (level !== this.tlbCpl) {
      this.tlbCpl = level;
      this.flushTlb();
    }
    if (this.ctx.efer & EFER_LMA) {
      if (va >= 2 ** 47 || va < -(2 ** 47)) throw new NonCanonical(va);
    } else va = ((va % TWO32) + TWO32) % TWO32;
    const acc = (access & Prot.WRITE ? Access.WRITE : 0) | (access & Prot.EXEC ? Access.FETCH : 0) | (level === 3 ? Access.USER : 0);
    const r = this.result;
    walk(this.dv, this.ctx, va, acc, r);
    const phys = r.phys;
    if (this.watch) this.noteWatched(this.watch, va, access, size);
    if (this.watch || this.alignCheck) return phys;
    if (phys >= this.ramEnd) return phys;
    const vpn = Math.floor(va / PAGE_SIZE);
    const i = (vpn & TLB_MASK) + this.tlbSet;
    const base = phys - (phys % PAGE_SIZE);
    const user = level === 3 ? Access.USER : 0;
    if (translationServes(r.perms, user, this.ctx)) {
      this.tlbTagR[i] = vpn;
      this.tlbBaseR[i] = base;
    }
    if (translationServes(r.perms, Access.WRITE | user, this.ctx) && !this.codeOnPage(base / PAGE_SIZE)) {
      this.tlbTagW[i] = vpn;
      this.tlbBaseW[i] = base;
    }
    return phys;
  }

  /** Note the watched breakpoints an access of [va, va+size) hits (DR6.Bn bits). */
  private noteWatched(w: { start: number; end: number; reads: boolean }[], va: number, access: number, size: number): void {
    if (access & Prot.EXEC) return;
    for (let i = 0; i < w.length; i++) {
      const b = w[i];
      if (b.end > b.start && va < b.end && b.start < va + size && (access & Prot.WRITE || b.reads)) this.watchHits |= 1 << i;
    }
  }

  /** INVLPG: the whole TLB goes (cheap, and always correct). */
  invalidatePage(_va: number): void {
    this.flushTlb();
  }

  protected override mmioRead(phys: number, size: number): number {
    const w = this.mmio.find(phys);
    if (!w) {
      this.onUnclaimedMmio(phys, false);
      return -1;
    }
    return w.dev.read(phys - w.base, size as AccessSize);
  }

  protected override mmioWrite(phys: number, size: number, value: number): void {
    const w = this.mmio.find(phys);
    if (!w) {
      this.onUnclaimedMmio(phys, true);
      return;
    }
    w.dev.write(phys - w.base, size as AccessSize, value);
  }

  /** Copy bytes into physical memory (the loader), invalidating translated code there. */
  writePhys(addr: number, bytes: Uint8Array): void {
    if (addr + bytes.length > this.ramEnd) throw new CpuException(Vec.GP, 0);
    for (let p = addr; p < addr + bytes.length; p = (Math.floor(p / PAGE_SIZE) + 1) * PAGE_SIZE) {
      const n = Math.min(addr + bytes.length, (Math.floor(p / PAGE_SIZE) + 1) * PAGE_SIZE) - p;
      if (this.codeOnPage(Math.floor(p / PAGE_SIZE))) this.noteStore(p, n);
    }
    this.u8.set(bytes, addr);
  }
}
