/**
 * Guest memory: guest-physical RAM is one ArrayBuffer; guest-virtual addresses reach it through
 * a page map and a direct-mapped software TLB whose hit path is a tag compare and a DataView
 * access.
 *
 * Addresses are JS numbers holding the *signed* 64-bit value: every canonical x86-64 address
 * (user and kernel halves alike) is exact in a double, and user-mode code never needs 64-bit
 * integer arithmetic to find its page. A non-canonical address has no page and faults.
 *
 * Self-modifying code: pages that hold translated code get no write-TLB entry, so stores to
 * them take the slow path, which consults a per-64-byte bitmap of code and only calls
 * onCodeWrite (the JIT cache's invalidation) when the store really touches translated bytes.
 * Data that merely shares a page with hot code pays the slow path but never loses the code.
 */
import { CpuException, NonCanonical, PfErr, Vec } from './exceptions.js';

export const PAGE_SIZE = 4096;
const PAGE_SHIFT = 12;
const INV_PAGE = 1 / PAGE_SIZE;
export const TLB_SIZE = 4096;
export const TLB_MASK = TLB_SIZE - 1;
/** TLB sets in the arrays: the machine's MMU keeps the other SVM world's translations in the second. */
export const TLB_SETS = 2;
/** 2^47: canonical addresses lie in [-2^47, 2^47). */
const CANONICAL_LIMIT = 2 ** 47;
/** Code-tracking granule: 64 bytes. */
const GRANULE_SHIFT = 6;

export const enum Prot {
  NONE = 0,
  READ = 1,
  WRITE = 2,
  EXEC = 4,
}

/** Bit-cast scratch for readF64's slow path (little-endian host). */
const F64_VALUE = new Float64Array(1);
const F64_BITS = new Int32Array(F64_VALUE.buffer);

export class Memory {
  readonly ram: ArrayBuffer;
  readonly u8: Uint8Array;
  readonly dv: DataView;
  /** Physical pages in RAM. */
  readonly physPages: number;
  /** Bytes of RAM: physical addresses from here up are MMIO (machine mode). */
  readonly ramEnd: number;
  /** vpn -> ppn * 8 + Prot. */
  readonly pageMap = new Map<number, number>();
  /** Per physical page: how many 64-byte granules hold translated code. */
  readonly codeCount: Uint16Array;
  /** Per physical granule: 1 when translated code was read from it. */
  readonly codeGranule: Uint8Array;
  /** Called with (physical address, length) when a store hits translated code. */
  onCodeWrite: (phys: number, len: number) => void = () => {};
  /** Called after any change of the virtual→physical mapping or of permissions. */
  onMapChange: () => void = () => {};

  // TLBs: tag is the vpn (a double), base the physical byte offset of the page. The arrays hold
  // TLB_SETS sets of TLB_SIZE entries and `tlbSet` is the first index of the one in use (0 but
  // while the machine's MMU has switched sets at an SVM world switch, mmu.ts). Switching sets
  // by offset rather than by replacing the arrays keeps these fields constant, which V8's code
  // for the hit path relies on (replacing them cost the JIT's memory accesses 5-10%).
  // Compiled code tests them inline with the same hit conditions as read8…write64
  // (jit/codegen.ts), so a page that must go through translate() on every access (watched,
  // alignment-checked, holding code, for writes) is simply never entered here.
  readonly tlbTagR = new Float64Array(TLB_SIZE * TLB_SETS).fill(-1);
  readonly tlbBaseR = new Int32Array(TLB_SIZE * TLB_SETS);
  readonly tlbTagW = new Float64Array(TLB_SIZE * TLB_SETS).fill(-1);
  readonly tlbBaseW = new Int32Array(TLB_SIZE * TLB_SETS);
  /** Changes only at a world switch, which ends the running unit: compiled code reads it once per entry. */
  tlbSet = 0;

  private readonly freePages: number[] = [];
  private nextFreshPage = 0;
  /** High half of the last read64. */
  hi = 0;

  /**
   * Memories sharing this one's RAM (itself included): the machine's CPUs each have their own
   * TLB, paging state and translation cache over one RAM, and a store by any of them must
   * reach every cache that translated the bytes it changes.
   */
  readonly peers: Memory[];

  /** `shareRamWith`: another CPU's memory whose RAM this one uses too. */
  constructor(ramBytes: number, shareRamWith?: Memory) {
    this.physPages = Math.floor(ramBytes / PAGE_SIZE);
    this.ramEnd = this.physPages * PAGE_SIZE;
    this.ram = shareRamWith ? shareRamWith.ram : new ArrayBuffer(this.ramEnd);
    this.u8 = new Uint8Array(this.ram);
    this.dv = new DataView(this.ram);
    this.codeCount = new Uint16Array(this.physPages);
    this.codeGranule = new Uint8Array((this.physPages * PAGE_SIZE) >>> GRANULE_SHIFT);
    this.peers = shareRamWith ? shareRamWith.peers : [];
    this.peers.push(this);
  }

  /** Does any peer hold translated code from physical page ppn? */
  codeOnPage(ppn: number): boolean {
    const peers = this.peers;
    for (let i = 0; i < peers.length; i++) if (peers[i].codeCount[ppn]) return true;
    return false;
  }

  /**
   * A store to physical [p, p+len) (within one page) is about to happen: every peer whose
   * translated code it touches invalidates that code. Callers check codeOnPage first.
   */
  noteStore(p: number, len: number): void {
    const ppn = Math.floor(p / PAGE_SIZE);
    const peers = this.peers;
    for (let i = 0; i < peers.length; i++) {
      const m = peers[i];
      if (!m.codeCount[ppn]) continue;
      for (let g = p >>> GRANULE_SHIFT, end = (p + len - 1) >>> GRANULE_SHIFT; g <= end; g++)
        if (m.codeGranule[g]) {
          m.onCodeWrite(p, len);
          break;
        }
    }
  }

  // ---- mapping (the user-mode personality's mmap/munmap/mprotect) ----

  /** Map [va, va+len) with fresh zeroed pages; existing pages in the range are replaced. */
  map(va: number, len: number, prot: number): void {
    for (let vpn = va / PAGE_SIZE, end = (va + len) / PAGE_SIZE; vpn < end; vpn++) {
      const old = this.pageMap.get(vpn);
      if (old !== undefined) this.releasePage(Math.floor(old / 8));
      this.pageMap.set(vpn, this.allocPage() * 8 + prot);
    }
    this.flushTlb();
  }

  unmap(va: number, len: number): void {
    for (let vpn = va / PAGE_SIZE, end = (va + len) / PAGE_SIZE; vpn < end; vpn++) {
      const old = this.pageMap.get(vpn);
      if (old === undefined) continue;
      this.releasePage(Math.floor(old / 8));
      this.pageMap.delete(vpn);
    }
    this.flushTlb();
  }

  /** Returns false when some page in the range is not mapped (mprotect's ENOMEM). */
  protect(va: number, len: number, prot: number): boolean {
    let ok = true;
    for (let vpn = va / PAGE_SIZE, end = (va + len) / PAGE_SIZE; vpn < end; vpn++) {
      const old = this.pageMap.get(vpn);
      if (old === undefined) {
        ok = false;
        continue;
      }
      this.pageMap.set(vpn, Math.floor(old / 8) * 8 + prot);
    }
    this.flushTlb();
    return ok;
  }

  /** Move the pages of [from, from+len) to [to, to+len) without copying (mremap). */
  move(from: number, to: number, len: number): void {
    const entries: number[] = [];
    for (let i = 0; i < len / PAGE_SIZE; i++) {
      const vpn = from / PAGE_SIZE + i;
      entries.push(this.pageMap.get(vpn) ?? -1);
      this.pageMap.delete(vpn);
    }
    for (let i = 0; i < entries.length; i++) if (entries[i] >= 0) this.pageMap.set(to / PAGE_SIZE + i, entries[i]);
    this.flushTlb();
  }

  isMapped(va: number): boolean {
    return this.pageMap.has(Math.floor(va * INV_PAGE));
  }

  protOf(va: number): number {
    const e = this.pageMap.get(Math.floor(va * INV_PAGE));
    return e === undefined ? -1 : e & 7;
  }

  /** Pages in use, for the guest memory bound and statistics. */
  get pagesInUse(): number {
    return this.nextFreshPage - this.freePages.length;
  }

  private allocPage(): number {
    const p = this.freePages.pop();
    if (p !== undefined) {
      this.u8.fill(0, p * PAGE_SIZE, (p + 1) * PAGE_SIZE);
      return p;
    }
    if (this.nextFreshPage >= this.physPages) throw new OutOfGuestMemory();
    return this.nextFreshPage++;
  }

  private releasePage(ppn: number): void {
    if (this.codeCount[ppn]) this.onCodeWrite(ppn * PAGE_SIZE, PAGE_SIZE);
    this.freePages.push(ppn);
  }

  flushTlb(): void {
    this.tlbTagR.fill(-1, this.tlbSet, this.tlbSet + TLB_SIZE);
    this.tlbTagW.fill(-1, this.tlbSet, this.tlbSet + TLB_SIZE);
    this.onMapChange();
  }

  // ---- translation ----

  /**
   * Physical byte offset of va for the access kind, or a #PF. Fills the TLB. `_size` (bytes
   * accessed) matters only to the machine's data breakpoints.
   */
  translate(va: number, access: number, _size = 1): number {
    const vpn = Math.floor(va * INV_PAGE);
    const e = this.pageMap.get(vpn);
    if (e === undefined || (e & access) !== access) {
      // Addresses are 48-bit canonical: bits 63-47 all equal. Anything else never reaches paging.
      if (va >= CANONICAL_LIMIT || va < -CANONICAL_LIMIT) throw new NonCanonical(va);
      const err = PfErr.U | (e === undefined ? 0 : PfErr.P) | (access & Prot.WRITE ? PfErr.W : 0) | (access & Prot.EXEC ? PfErr.I : 0);
      throw new CpuException(Vec.PF, err, va);
    }
    const ppn = Math.floor(e / 8);
    const base = ppn * PAGE_SIZE;
    const i = (vpn & TLB_MASK) + this.tlbSet;
    if (e & Prot.READ) {
      this.tlbTagR[i] = vpn;
      this.tlbBaseR[i] = base;
    }
    if (e & Prot.WRITE && !this.codeOnPage(ppn)) {
      this.tlbTagW[i] = vpn;
      this.tlbBaseW[i] = base;
    }
    return base + (va - vpn * PAGE_SIZE);
  }

  /** Physical address for an instruction fetch (needs PROT_EXEC). */
  translateFetch(va: number): number {
    return this.translate(va, Prot.EXEC);
  }

  /** One byte of code at linear va, for the decoder (code outside RAM reads like data there). */
  fetchByte(va: number): number {
    const p = this.translateFetch(va);
    return p < this.ramEnd ? this.u8[p] : this.mmioRead(p, 1) & 0xff;
  }

  // ---- code tracking ----

  /** Record that translated code was read from physical [phys, phys+len). */
  markCode(phys: number, len: number): void {
    for (let g = phys >>> GRANULE_SHIFT, end = (phys + len - 1) >>> GRANULE_SHIFT; g <= end; g++) {
      if (this.codeGranule[g]) continue;
      this.codeGranule[g] = 1;
      const ppn = g >>> (PAGE_SHIFT - GRANULE_SHIFT);
      if (this.codeCount[ppn]++ === 0) for (const m of this.peers) m.dropWriteTlbFor(ppn);
    }
  }

  /** Forget code tracking for a physical range (its translations were invalidated). */
  unmarkCode(phys: number, len: number): void {
    for (let g = phys >>> GRANULE_SHIFT, end = (phys + len - 1) >>> GRANULE_SHIFT; g <= end; g++) {
      if (!this.codeGranule[g]) continue;
      this.codeGranule[g] = 0;
      this.codeCount[g >>> (PAGE_SHIFT - GRANULE_SHIFT)]--;
    }
  }

  protected dropWriteTlbFor(ppn: number): void {
    dropWriteEntries(this.tlbTagW, this.tlbBaseW, this.tlbSet, ppn * PAGE_SIZE);
  }

  // ---- reads ----

  read8(a: number): number {
    const vpn = Math.floor(a * INV_PAGE);
    const i = (vpn & TLB_MASK) + this.tlbSet;
    if (this.tlbTagR[i] === vpn) return this.u8[this.tlbBaseR[i] + (a - vpn * PAGE_SIZE)];
    const p = this.translate(a, Prot.READ);
    return p < this.ramEnd ? this.u8[p] : this.mmioRead(p, 1) & 0xff;
  }

  read16(a: number): number {
    const vpn = Math.floor(a * INV_PAGE);
    const i = (vpn & TLB_MASK) + this.tlbSet;
    const off = a - vpn * PAGE_SIZE;
    if (this.tlbTagR[i] === vpn && off <= PAGE_SIZE - 2) return this.dv.getUint16(this.tlbBaseR[i] + off, true);
    if (off <= PAGE_SIZE - 2) {
      const p = this.translate(a, Prot.READ, 2);
      return p < this.ramEnd ? this.dv.getUint16(p, true) : this.mmioRead(p, 2) & 0xffff;
    }
    return this.read8(a) | (this.read8(a + 1) << 8);
  }

  /** Signed 32-bit read. */
  read32(a: number): number {
    const vpn = Math.floor(a * INV_PAGE);
    const i = (vpn & TLB_MASK) + this.tlbSet;
    const off = a - vpn * PAGE_SIZE;
    if (this.tlbTagR[i] === vpn && off <= PAGE_SIZE - 4) return this.dv.getInt32(this.tlbBaseR[i] + off, true);
    if (off <= PAGE_SIZE - 4) {
      const p = this.translate(a, Prot.READ, 4);
      return p < this.ramEnd ? this.dv.getInt32(p, true) : this.mmioRead(p, 4) | 0;
    }
    return this.read16(a) | (this.read16(a + 2) << 16);
  }

  /**
   * Physical addresses at or beyond ramEnd are not RAM: the machine's MMIO devices answer
   * there (user mode never translates to them). Reads of nothing return all ones.
   */
  protected mmioRead(_phys: number, _size: number): number {
    return -1;
  }

  protected mmioWrite(_phys: number, _size: number, _value: number): void {}

  /** 64-bit read: returns the low half; the high half is left in this.hi. */
  read64(a: number): number {
    const vpn = Math.floor(a * INV_PAGE);
    const i = (vpn & TLB_MASK) + this.tlbSet;
    const off = a - vpn * PAGE_SIZE;
    if (this.tlbTagR[i] === vpn && off <= PAGE_SIZE - 8) {
      const p = this.tlbBaseR[i] + off;
      this.hi = this.dv.getInt32(p + 4, true);
      return this.dv.getInt32(p, true);
    }
    const lo = this.read32(a);
    this.hi = this.read32(a + 4);
    return lo;
  }

  /**
   * A double-precision read (inline SSE arithmetic). Only for values that are then checked to
   * be numbers: a NaN's payload may not survive the conversion, so exact copies use read64.
   */
  readF64(a: number): number {
    const vpn = Math.floor(a * INV_PAGE);
    const i = (vpn & TLB_MASK) + this.tlbSet;
    const off = a - vpn * PAGE_SIZE;
    if (this.tlbTagR[i] === vpn && off <= PAGE_SIZE - 8) return this.dv.getFloat64(this.tlbBaseR[i] + off, true);
    F64_BITS[0] = this.read64(a);
    F64_BITS[1] = this.hi;
    return F64_VALUE[0];
  }

  /**
   * 16 bytes (an SSE operand) into dst[at … at+3], every byte read before dst changes, so a
   * fault leaves dst as it was. One TLB probe when the bytes lie in one page.
   */
  readVec(a: number, dst: Int32Array, at: number): void {
    const vpn = Math.floor(a * INV_PAGE);
    const i = (vpn & TLB_MASK) + this.tlbSet;
    const off = a - vpn * PAGE_SIZE;
    if (this.tlbTagR[i] === vpn && off <= PAGE_SIZE - 16) {
      const p = this.tlbBaseR[i] + off;
      const dv = this.dv;
      dst[at] = dv.getInt32(p, true);
      dst[at + 1] = dv.getInt32(p + 4, true);
      dst[at + 2] = dv.getInt32(p + 8, true);
      dst[at + 3] = dv.getInt32(p + 12, true);
      return;
    }
    const x0 = this.read32(a), x1 = this.read32(a + 4), x2 = this.read32(a + 8), x3 = this.read32(a + 12);
    dst[at] = x0;
    dst[at + 1] = x1;
    dst[at + 2] = x2;
    dst[at + 3] = x3;
  }

  // ---- writes ----

  write8(a: number, v: number): void {
    const vpn = Math.floor(a * INV_PAGE);
    const i = (vpn & TLB_MASK) + this.tlbSet;
    if (this.tlbTagW[i] === vpn) {
      this.u8[this.tlbBaseW[i] + (a - vpn * PAGE_SIZE)] = v;
      return;
    }
    const p = this.translateWrite(a, 1);
    if (p < this.ramEnd) this.u8[p] = v;
    else this.mmioWrite(p, 1, v & 0xff);
  }

  write16(a: number, v: number): void {
    const vpn = Math.floor(a * INV_PAGE);
    const i = (vpn & TLB_MASK) + this.tlbSet;
    const off = a - vpn * PAGE_SIZE;
    if (this.tlbTagW[i] === vpn && off <= PAGE_SIZE - 2) {
      this.dv.setUint16(this.tlbBaseW[i] + off, v, true);
      return;
    }
    if (off <= PAGE_SIZE - 2) {
      const p = this.translateWrite(a, 2);
      if (p < this.ramEnd) this.dv.setUint16(p, v, true);
      else this.mmioWrite(p, 2, v & 0xffff);
      return;
    }
    this.checkWritable(a, 2);
    this.write8(a, v);
    this.write8(a + 1, v >>> 8);
  }

  write32(a: number, v: number): void {
    const vpn = Math.floor(a * INV_PAGE);
    const i = (vpn & TLB_MASK) + this.tlbSet;
    const off = a - vpn * PAGE_SIZE;
    if (this.tlbTagW[i] === vpn && off <= PAGE_SIZE - 4) {
      this.dv.setInt32(this.tlbBaseW[i] + off, v, true);
      return;
    }
    if (off <= PAGE_SIZE - 4) {
      const p = this.translateWrite(a, 4);
      if (p < this.ramEnd) this.dv.setInt32(p, v, true);
      else this.mmioWrite(p, 4, v | 0);
      return;
    }
    this.checkWritable(a, 4);
    this.write16(a, v);
    this.write16(a + 2, v >>> 16);
  }

  /** 16 bytes from src[at … at+3], faulting (on either page) before any byte is written. */
  writeVec(a: number, src: Int32Array, at: number): void {
    const vpn = Math.floor(a * INV_PAGE);
    const i = (vpn & TLB_MASK) + this.tlbSet;
    const off = a - vpn * PAGE_SIZE;
    if (this.tlbTagW[i] === vpn && off <= PAGE_SIZE - 16) {
      const p = this.tlbBaseW[i] + off;
      const dv = this.dv;
      dv.setInt32(p, src[at], true);
      dv.setInt32(p + 4, src[at + 1], true);
      dv.setInt32(p + 8, src[at + 2], true);
      dv.setInt32(p + 12, src[at + 3], true);
      return;
    }
    if (off > PAGE_SIZE - 16) this.checkWritable(a, 16);
    for (let k = 0; k < 4; k++) this.write32(a + 4 * k, src[at + k]);
  }

  write64(a: number, lo: number, hi: number): void {
    const vpn = Math.floor(a * INV_PAGE);
    const i = (vpn & TLB_MASK) + this.tlbSet;
    const off = a - vpn * PAGE_SIZE;
    if (this.tlbTagW[i] === vpn && off <= PAGE_SIZE - 8) {
      const p = this.tlbBaseW[i] + off;
      this.dv.setInt32(p, lo, true);
      this.dv.setInt32(p + 4, hi, true);
      return;
    }
    this.checkWritable(a, 8);
    this.write32(a, lo);
    this.write32(a + 4, hi);
  }

  /** A store that crosses a page must fault before writing any byte. */
  private checkWritable(a: number, len: number): void {
    this.translate(a, Prot.WRITE);
    this.translate(a + len - 1, Prot.WRITE);
  }

  /** Slow write path for one byte-range inside a page: permission, then code invalidation. */
  private translateWrite(a: number, len: number): number {
    const p = this.translate(a, Prot.WRITE, len);
    if (p < this.ramEnd && this.codeOnPage(Math.floor(p / PAGE_SIZE))) this.noteStore(p, len);
    return p;
  }

  // ---- bulk access for loaders, syscalls and helpers ----

  readBytes(a: number, len: number): Uint8Array {
    const out = new Uint8Array(len);
    for (let i = 0; i < len; ) {
      const p = this.translate(a + i, Prot.READ);
      const n = Math.min(len - i, PAGE_SIZE - (p % PAGE_SIZE));
      out.set(this.u8.subarray(p, p + n), i);
      i += n;
    }
    return out;
  }

  writeBytes(a: number, data: Uint8Array): void {
    for (let i = 0; i < data.length; ) {
      const p = this.translateWrite(a + i, 1);
      const n = Math.min(data.length - i, PAGE_SIZE - (p % PAGE_SIZE));
      if (this.codeOnPage(Math.floor(p / PAGE_SIZE))) this.noteStore(p, n);
      this.u8.set(data.subarray(i, i + n), p);
      i += n;
    }
  }

  /** Write ignoring page protection (the ELF loader fills read-only segments). */
  poke(a: number, data: Uint8Array): void {
    for (let i = 0; i < data.length; ) {
      const vpn = Math.floor((a + i) * INV_PAGE);
      const e = this.pageMap.get(vpn);
      if (e === undefined) throw new CpuException(Vec.PF, PfErr.W, a + i);
      const p = Math.floor(e / 8) * PAGE_SIZE + (a + i - vpn * PAGE_SIZE);
      const n = Math.min(data.length - i, PAGE_SIZE - (p % PAGE_SIZE));
      this.u8.set(data.subarray(i, i + n), p);
      i += n;
    }
  }

  /** A NUL-terminated string (at most max bytes). */
  readCString(a: number, max = 1 << 20): string {
    const bytes: number[] = [];
    for (let i = 0; i < max; i++) {
      const b = this.read8(a + i);
      if (b === 0) break;
      bytes.push(b);
    }
    return Buffer.from(bytes).toString('utf8');
  }
}

/** Drop the write-TLB entries of the set at `set` that map physical page `base` (it now holds code). */
export function dropWriteEntries(tagW: Float64Array, baseW: Int32Array, set: number, base: number): void {
  for (let i = set; i < set + TLB_SIZE; i++) if (tagW[i] >= 0 && baseW[i] === base) tagW[i] = -1;
}

export class OutOfGuestMemory extends Error {
  constructor() {
    super('guest memory limit reached (raise it with --memory MiB)');
  }
}
