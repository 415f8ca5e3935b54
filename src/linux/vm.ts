/**
 * The guest process's address space: the list of mappings (VMAs) that mmap, munmap,
 * mprotect, mremap, brk and the loader create, and the checked accessors every syscall uses
 * to read and write guest memory.
 *
 * Anonymous memory (the stack reserve, brk, anonymous mmap) is populated lazily, as the kernel
 * does: a mapping only records its range and protection, and a page gets a physical frame on
 * first touch — from guest code through the #PF that LinuxProcess.onException hands to
 * `populate`, and from syscalls through `touch`. A program can therefore reserve far more than
 * the guest memory limit (8 MiB stacks, glibc's arenas) and pay only for what it uses.
 * Accessors throw Errno(EFAULT) for bad pointers, so a syscall never sees a JS exception from
 * a guest address.
 */
import { CpuException } from '../cpu/exceptions.js';
import { type Memory, PAGE_SIZE, Prot } from '../cpu/memory.js';
import { USER_TOP } from './elf.js';
import { E, Errno } from './errno.js';

export const STACK_TOP = 0x7ffffffff000;
export const STACK_RESERVE = 8 * 1024 * 1024;
/** Top-down mmap allocation starts below the stack reserve and a guard gap. */
export const MMAP_TOP = 0x7ffff7fff000;
/** Like the kernel's vm.mmap_min_addr: the first pages stay unmapped so NULL faults. */
export const MMAP_MIN = 0x10000;

export const enum VmaKind {
  ANON = 0,
  FILE = 1,
  STACK = 2,
  BRK = 3,
  IMAGE = 4,
}

export interface Vma {
  start: number;
  end: number;
  prot: number;
  kind: VmaKind;
}

export const pageDown = (a: number) => Math.floor(a / PAGE_SIZE) * PAGE_SIZE;
export const pageUp = (a: number) => Math.ceil(a / PAGE_SIZE) * PAGE_SIZE;

/** x86 pages that are writable or executable are also readable. */
function hwProt(prot: number): number {
  return prot & (Prot.WRITE | Prot.EXEC) ? prot | Prot.READ : prot;
}

export class AddressSpace {
  /** Sorted by start, never overlapping. */
  readonly vmas: Vma[] = [];

  constructor(readonly mem: Memory) {}

  /** Index of the first VMA whose end is above addr. */
  private lowerBound(addr: number): number {
    let lo = 0, hi = this.vmas.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.vmas[mid].end <= addr) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  find(addr: number): Vma | undefined {
    const v = this.vmas[this.lowerBound(addr)];
    return v && v.start <= addr ? v : undefined;
  }

  isFree(start: number, end: number): boolean {
    const v = this.vmas[this.lowerBound(start)];
    return !v || v.start >= end;
  }

  /** Record a mapping of a free range (callers remove what was there first). */
  add(start: number, end: number, prot: number, kind: VmaKind): Vma {
    const vma = { start, end, prot, kind };
    this.vmas.splice(this.lowerBound(start), 0, vma);
    return vma;
  }

  /** Split VMAs so that addr is a boundary. */
  private splitAt(addr: number): void {
    const i = this.lowerBound(addr);
    const v = this.vmas[i];
    if (!v || v.start >= addr) return;
    this.vmas.splice(i + 1, 0, { ...v, start: addr });
    v.end = addr;
  }

  /** Unmap [start, end): VMAs are cut and populated pages released. */
  remove(start: number, end: number): void {
    this.splitAt(start);
    this.splitAt(end);
    const i = this.lowerBound(start);
    let j = i;
    while (j < this.vmas.length && this.vmas[j].start < end) j++;
    for (const v of this.vmas.splice(i, j - i)) this.mem.unmap(v.start, v.end - v.start);
  }

  /** Change protection of [start, end); false (ENOMEM) when part of it is unmapped. */
  protect(start: number, end: number, prot: number): boolean {
    for (let a = start; a < end; ) {
      const v = this.find(a);
      if (!v) return false;
      a = v.end;
    }
    this.splitAt(start);
    this.splitAt(end);
    for (let i = this.lowerBound(start); i < this.vmas.length && this.vmas[i].start < end; i++) this.vmas[i].prot = prot;
    this.mem.protect(start, end - start, hwProt(prot)); // unpopulated pages report false; they get prot when populated
    return true;
  }

  /** Highest free, page-aligned range of len bytes below `below` (top-down like the kernel), or -1. */
  findFree(len: number, below = MMAP_TOP): number {
    let top = below;
    for (let i = this.lowerBound(below - 1); i >= 0; i--) {
      const v = this.vmas[i];
      if (!v || v.start >= top) continue;
      if (v.end <= top - len) return top - len;
      top = Math.min(top, v.start);
    }
    return top - len >= MMAP_MIN ? top - len : -1;
  }

  /**
   * Give the page holding addr a frame if its VMA allows the access and it has none yet.
   * Returns false when the access is a genuine fault.
   */
  populate(addr: number, access: number): boolean {
    const v = this.find(addr);
    if (!v || (hwProt(v.prot) & access) !== access || v.prot === Prot.NONE) return false;
    const page = pageDown(addr);
    if (this.mem.isMapped(page)) return false;
    this.mem.map(page, PAGE_SIZE, hwProt(v.prot));
    return true;
  }

  /** Make [addr, addr+len) accessible for a syscall, or throw Errno(EFAULT). */
  touch(addr: number, len: number, access: number): void {
    if (len <= 0) return;
    if (!(addr >= 0 && addr + len <= USER_TOP)) throw new Errno(E.FAULT);
    for (let p = pageDown(addr); p < addr + len; p += PAGE_SIZE) {
      const prot = this.mem.protOf(p);
      if (prot >= 0 ? (prot & access) !== access : !this.populate(p, access)) throw new Errno(E.FAULT);
    }
  }

  read(addr: number, len: number): Uint8Array {
    this.touch(addr, len, Prot.READ);
    return this.mem.readBytes(addr, len);
  }

  write(addr: number, data: Uint8Array): void {
    this.touch(addr, data.length, Prot.WRITE);
    this.mem.writeBytes(addr, data);
  }

  readU32(addr: number): number {
    this.touch(addr, 4, Prot.READ);
    return this.mem.read32(addr) >>> 0;
  }

  readI32(addr: number): number {
    this.touch(addr, 4, Prot.READ);
    return this.mem.read32(addr);
  }

  /** A u64 as a JS number (exact below 2^53; pointers and sizes always are). */
  readU64(addr: number): number {
    this.touch(addr, 8, Prot.READ);
    const lo = this.mem.read64(addr) >>> 0;
    return (this.mem.hi >>> 0) * 4294967296 + lo;
  }

  /** An i64 as a JS number. */
  readI64(addr: number): number {
    this.touch(addr, 8, Prot.READ);
    const lo = this.mem.read64(addr) >>> 0;
    return this.mem.hi * 4294967296 + lo;
  }

  writeU32(addr: number, v: number): void {
    this.touch(addr, 4, Prot.WRITE);
    this.mem.write32(addr, v | 0);
  }

  /** Store a 64-bit value given as a JS number (negative numbers are two's complement). */
  writeU64(addr: number, v: number): void {
    this.touch(addr, 8, Prot.WRITE);
    this.mem.write64(addr, v | 0, Math.floor(v / 4294967296) | 0);
  }

  /** A NUL-terminated string of at most max bytes (ENAMETOOLONG beyond). */
  readCString(addr: number, max = 4096): string {
    const bytes: number[] = [];
    for (let a = addr; ; a++) {
      if (a === addr || a % PAGE_SIZE === 0) this.touch(a, 1, Prot.READ);
      const b = this.mem.read8(a);
      if (b === 0) break;
      if (bytes.length >= max) throw new Errno(E.NAMETOOLONG);
      bytes.push(b);
    }
    return Buffer.from(bytes).toString('utf8');
  }

  /** Bytes of a NUL-terminated string, for logs: at most max, no errors. */
  peekCString(addr: number, max: number): Uint8Array | null {
    const bytes: number[] = [];
    try {
      for (let a = addr; bytes.length < max; a++) {
        if (a === addr || a % PAGE_SIZE === 0) this.touch(a, 1, Prot.READ);
        const b = this.mem.read8(a);
        if (b === 0) break;
        bytes.push(b);
      }
    } catch (e) {
      if (!(e instanceof Errno || e instanceof CpuException)) throw e;
      if (bytes.length === 0) return null;
    }
    return Uint8Array.from(bytes);
  }

  /** Bytes for a log line: up to len, or null when unreadable. */
  peek(addr: number, len: number): Uint8Array | null {
    try {
      return this.read(addr, len);
    } catch (e) {
      if (e instanceof Errno || e instanceof CpuException) return null;
      throw e;
    }
  }

  /** Release a range's frames but keep the mapping (MADV_DONTNEED on anonymous memory reads back zeros). */
  discard(start: number, end: number): void {
    this.mem.unmap(start, end - start);
  }
}
