/**
 * Memory-management system calls: mmap (anonymous and private file mappings, MAP_FIXED,
 * MAP_FIXED_NOREPLACE, hints, top-down placement), munmap, mprotect, mremap, brk, madvise.
 *
 * The bookkeeping lives in AddressSpace (vm.ts); this file applies the kernel's argument
 * rules in the kernel's order so programs see the same errors. File mappings are copies
 * taken at mmap time (MAP_SHARED too: a single process cannot observe the difference except
 * through writes to the file, which we do not propagate).
 */
import fs from 'node:fs';
import { PAGE_SIZE, Prot } from '../cpu/memory.js';
import { E, Errno } from './errno.js';
import { FileKind, O_ACCMODE, O_WRONLY } from './files.js';
import type { SysImpl } from './syscalls.js';
import type { LinuxProcess } from './process.js';
import { MMAP_MIN, pageDown, pageUp, STACK_TOP, VmaKind } from './vm.js';

const MAP_SHARED = 1;
const MAP_PRIVATE = 2;
const MAP_SHARED_VALIDATE = 3;
const MAP_FIXED = 0x10;
const MAP_ANONYMOUS = 0x20;
const MAP_POPULATE = 0x8000;
const MAP_FIXED_NOREPLACE = 0x100000;
const MREMAP_MAYMOVE = 1;
const MREMAP_FIXED = 2;
const MADV_DONTNEED = 4;
const PROT_MASK = Prot.READ | Prot.WRITE | Prot.EXEC;
/** The highest user address a mapping may reach. */
const USER_END = STACK_TOP;

const aligned = (a: number) => a % PAGE_SIZE === 0;

function mmap(p: LinuxProcess, addr: number, length: number, prot: number, flags: number, fd: number, offset: number): number {
  const type = flags & 3;
  if (length === 0 || (type !== MAP_SHARED && type !== MAP_PRIVATE && type !== MAP_SHARED_VALIDATE)) throw new Errno(E.INVAL);
  if (!aligned(offset) || offset < 0) throw new Errno(E.INVAL);
  if (prot & ~(PROT_MASK | 0x3000000)) throw new Errno(E.INVAL);
  const len = pageUp(length);
  if (!(len > 0 && len < USER_END)) throw new Errno(E.NOMEM);
  const anon = (flags & MAP_ANONYMOUS) !== 0;
  let data: Uint8Array | null = null;
  if (!anon) {
    const f = p.files.get(fd);
    if (f.pipe || f.kind === FileKind.DIR) throw new Errno(E.NODEV);
    if ((f.flags & O_ACCMODE) === O_WRONLY) throw new Errno(E.ACCES);
    const fileSize = fs.fstatSync(f.hostFd).size;
    const n = Math.max(0, Math.min(length, fileSize - offset));
    data = new Uint8Array(n);
    if (n) fs.readSync(f.hostFd, data, 0, n, offset);
  }
  const fixed = (flags & (MAP_FIXED | MAP_FIXED_NOREPLACE)) !== 0;
  let start: number;
  if (fixed) {
    if (!aligned(addr)) throw new Errno(E.INVAL);
    if (addr < MMAP_MIN || addr + len > USER_END) throw new Errno(flags & MAP_FIXED ? E.PERM : E.NOMEM);
    if (!(flags & MAP_FIXED) && !p.as.isFree(addr, addr + len)) throw new Errno(E.EXIST);
    start = addr;
  } else {
    const hint = pageDown(addr);
    start = hint >= MMAP_MIN && hint + len <= USER_END && p.as.isFree(hint, hint + len) ? hint : p.as.findFree(len);
    if (start < 0) throw new Errno(E.NOMEM);
  }
  p.as.remove(start, start + len);
  p.as.add(start, start + len, prot & PROT_MASK, anon ? VmaKind.ANON : VmaKind.FILE);
  if (data) {
    // File contents go in now (ignoring protection, as the kernel's page cache fill does).
    const pages = pageUp(data.length);
    if (pages) {
      p.as.mem.map(start, pages, hwProt(prot));
      p.as.mem.poke(start, data);
    }
  } else if (flags & MAP_POPULATE && prot & PROT_MASK) {
    p.as.mem.map(start, len, hwProt(prot));
  }
  return start;
}

function hwProt(prot: number): number {
  prot &= PROT_MASK;
  return prot & (Prot.WRITE | Prot.EXEC) ? prot | Prot.READ : prot;
}

function checkRange(addr: number, length: number): number {
  if (!aligned(addr) || addr < 0) throw new Errno(E.INVAL);
  const len = pageUp(length);
  if (addr + len > USER_END || length < 0) throw new Errno(E.INVAL);
  return len;
}

function munmap(p: LinuxProcess, addr: number, length: number): number {
  const len = checkRange(addr, length);
  if (len === 0) throw new Errno(E.INVAL);
  p.as.remove(addr, addr + len);
  return 0;
}

function mprotect(p: LinuxProcess, addr: number, length: number, prot: number): number {
  const len = checkRange(addr, length);
  if (prot & ~(PROT_MASK | 0x3000000)) throw new Errno(E.INVAL);
  if (len && !p.as.protect(addr, addr + len, prot & PROT_MASK)) throw new Errno(E.NOMEM);
  return 0;
}

function mremap(p: LinuxProcess, old: number, oldLength: number, newLength: number, flags: number, newAddr: number): number {
  if (flags & ~(MREMAP_MAYMOVE | MREMAP_FIXED) || (flags & MREMAP_FIXED && !(flags & MREMAP_MAYMOVE))) throw new Errno(E.INVAL);
  if (!aligned(old)) throw new Errno(E.INVAL);
  const oldLen = pageUp(oldLength);
  const newLen = pageUp(newLength);
  if (newLen === 0 || oldLen === 0) throw new Errno(E.INVAL);
  const vma = p.as.find(old);
  if (!vma || vma.end < old + oldLen) throw new Errno(E.FAULT);
  const { prot, kind } = vma;
  if (flags & MREMAP_FIXED) {
    if (!aligned(newAddr) || newAddr < MMAP_MIN || newAddr + newLen > USER_END) throw new Errno(E.INVAL);
    if (newAddr < old + oldLen && old < newAddr + newLen) throw new Errno(E.INVAL);
    p.as.remove(newAddr, newAddr + newLen);
    return moveMapping(p, old, oldLen, newAddr, newLen, prot, kind);
  }
  if (newLen <= oldLen) {
    if (newLen < oldLen) p.as.remove(old + newLen, old + oldLen);
    return old;
  }
  if (old + newLen <= USER_END && p.as.isFree(old + oldLen, old + newLen)) {
    p.as.add(old + oldLen, old + newLen, prot, kind);
    return old;
  }
  if (!(flags & MREMAP_MAYMOVE)) throw new Errno(E.NOMEM);
  const to = p.as.findFree(newLen);
  if (to < 0) throw new Errno(E.NOMEM);
  return moveMapping(p, old, oldLen, to, newLen, prot, kind);
}

/** Move populated frames without copying; the part beyond the old length starts out lazily zero. */
function moveMapping(p: LinuxProcess, old: number, oldLen: number, to: number, newLen: number, prot: number, kind: VmaKind): number {
  const keep = Math.min(oldLen, newLen);
  p.as.add(to, to + newLen, prot, kind);
  p.as.mem.move(old, to, keep);
  p.as.remove(old, old + oldLen);
  return to;
}

function brk(p: LinuxProcess, want: number): number {
  const cur = p.brk;
  if (want < p.brkStart) return cur;
  const oldEnd = pageUp(cur);
  const newEnd = pageUp(want);
  if (newEnd > oldEnd) {
    if (newEnd > USER_END || !p.as.isFree(oldEnd, newEnd)) return cur;
    p.as.add(oldEnd, newEnd, Prot.READ | Prot.WRITE, VmaKind.BRK);
  } else if (newEnd < oldEnd) {
    p.as.remove(newEnd, oldEnd);
  }
  p.brk = want;
  return want;
}

function madvise(p: LinuxProcess, addr: number, length: number, advice: number): number {
  const len = checkRange(addr, length);
  if (advice === MADV_DONTNEED) {
    for (let a = addr; a < addr + len; a += PAGE_SIZE) {
      const v = p.as.find(a);
      if (!v) throw new Errno(E.NOMEM);
      if (v.kind !== VmaKind.FILE && v.kind !== VmaKind.IMAGE) p.as.discard(a, a + PAGE_SIZE);
    }
  }
  return 0;
}

export const MM_SYSCALLS: Record<string, SysImpl> = {
  mmap: (p, a) => mmap(p, a[0], a[1], a[2] | 0, a[3] | 0, a[4] | 0, a[5]),
  munmap: (p, a) => munmap(p, a[0], a[1]),
  mprotect: (p, a) => mprotect(p, a[0], a[1], a[2] | 0),
  mremap: (p, a) => mremap(p, a[0], a[1], a[2], a[3] | 0, a[4]),
  brk: (p, a) => brk(p, a[0]),
  madvise: (p, a) => madvise(p, a[0], a[1], a[2] | 0),
};
