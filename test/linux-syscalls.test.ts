/**
 * System calls driven directly through LinuxProcess.syscall() with hand-set registers: file
 * I/O on a temporary directory, stat layouts, directories, descriptors and pipes, memory
 * management with lazy population, time and identity calls, and bad pointers.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, test } from 'vitest';
import { CpuException, PfErr, Vec } from '../src/cpu/exceptions.js';
import { Prot } from '../src/cpu/memory.js';
import { S } from '../src/cpu/state.js';
import { ProcessExit } from '../src/linux/process.js';
import { harness, tempDir } from './helpers/linux-harness.js';

const NR = {
  read: 0, write: 1, open: 2, close: 3, stat: 4, fstat: 5, lseek: 8, mmap: 9, mprotect: 10, munmap: 11, brk: 12, ioctl: 16,
  pread64: 17, pwrite64: 18, readv: 19, writev: 20, access: 21, mremap: 25, madvise: 28, dup: 32, dup2: 33, getpid: 39,
  exit: 60, uname: 63, fcntl: 72, getcwd: 79, chdir: 80, rename: 82, mkdir: 83, rmdir: 84, readlink: 89, arch_prctl: 158,
  futex: 202, getdents64: 217, clock_gettime: 228, exit_group: 231, openat: 257, newfstatat: 262, unlinkat: 263,
  pipe2: 293, prlimit64: 302, getrandom: 318, statx: 332, rseq: 334,
};
const AT_FDCWD = -100;
const O_RDONLY = 0, O_WRONLY = 1, O_RDWR = 2, O_CREAT = 0x40, O_TRUNC = 0x200, O_APPEND = 0x400, O_DIRECTORY = 0x10000;
const ENOENT = -2, EBADF = -9, EAGAIN = -11, ENOMEM = -12, EFAULT = -14, EEXIST = -17, ENOTDIR = -20, EINVAL = -22, ENOTTY = -25, ESPIPE = -29, ENOSYS = -38, ETIMEDOUT = -110;
const PROT_RW = 3, MAP_PRIVATE = 2, MAP_ANON = 0x20, MAP_FIXED = 0x10, MAP_FIXED_NOREPLACE = 0x100000;

describe('files', () => {
  test('create, write, seek, read, pread/pwrite, append, fstat', () => {
    const h = harness();
    const dir = tempDir();
    const buf = h.scratch();
    const file = path.join(dir, 'f.txt');
    const fd = h.sys(NR.openat, AT_FDCWD, h.str(file), O_RDWR | O_CREAT | O_TRUNC, 0o644);
    expect(fd).toBe(3);
    h.proc.as.write(buf, Buffer.from('hello, world'));
    expect(h.sys(NR.write, fd, buf, 12)).toBe(12);
    expect(fs.readFileSync(file, 'utf8')).toBe('hello, world');
    expect(h.sys(NR.lseek, fd, 0, 1)).toBe(12);
    expect(h.sys(NR.lseek, fd, 7, 0)).toBe(7);
    expect(h.sys(NR.read, fd, buf + 100, 100)).toBe(5);
    expect(Buffer.from(h.proc.as.read(buf + 100, 5)).toString()).toBe('world');
    expect(h.sys(NR.read, fd, buf + 100, 100)).toBe(0);
    expect(h.sys(NR.lseek, fd, -5, 2)).toBe(7);
    expect(h.sys(NR.lseek, fd, -100, 1)).toBe(EINVAL);
    expect(h.sys(NR.pread64, fd, buf + 200, 5, 0)).toBe(5);
    expect(Buffer.from(h.proc.as.read(buf + 200, 5)).toString()).toBe('hello');
    expect(h.sys(NR.pwrite64, fd, buf, 5, 7)).toBe(5);
    expect(fs.readFileSync(file, 'utf8')).toBe('hello, hello');
    expect(h.sys(NR.lseek, fd, 0, 1)).toBe(7); // pread/pwrite leave the offset alone

    // fstat: the exact x86-64 struct stat.
    expect(h.sys(NR.fstat, fd, buf + 1024)).toBe(0);
    const st = fs.statSync(file, { bigint: true });
    expect(BigInt(h.proc.as.readU64(buf + 1024 + 8))).toBe(st.ino);
    expect(h.proc.as.readU32(buf + 1024 + 24)).toBe(Number(st.mode));
    expect(h.proc.as.readU64(buf + 1024 + 48)).toBe(12);
    expect(h.proc.as.readU64(buf + 1024 + 56)).toBe(Number(st.blksize));
    expect(h.proc.as.readU64(buf + 1024 + 88)).toBe(Number(st.mtimeNs / 1000000000n));
    expect(h.proc.as.readU64(buf + 1024 + 96)).toBe(Number(st.mtimeNs % 1000000000n));
    expect(h.sys(NR.close, fd)).toBe(0);
    expect(h.sys(NR.close, fd)).toBe(EBADF);

    // O_APPEND always writes at the end.
    const afd = h.sys(NR.open, h.str(file), O_WRONLY | O_APPEND);
    expect(h.sys(NR.write, afd, buf, 5)).toBe(5);
    expect(fs.readFileSync(file, 'utf8')).toBe('hello, hellohello');
    expect(h.sys(NR.fcntl, afd, 3, 0) & (O_APPEND | 3)).toBe(O_APPEND | O_WRONLY); // F_GETFL
    expect(h.sys(NR.read, afd, buf, 1)).toBe(EBADF);

    // readv / writev.
    const iov = buf + 2048;
    h.proc.as.write(buf + 300, Buffer.from('abcdef'));
    h.proc.as.writeU64(iov, buf + 300);
    h.proc.as.writeU64(iov + 8, 2);
    h.proc.as.writeU64(iov + 16, buf + 304);
    h.proc.as.writeU64(iov + 24, 2);
    const wfd = h.sys(NR.openat, AT_FDCWD, h.str(path.join(dir, 'v')), O_RDWR | O_CREAT, 0o600);
    expect(h.sys(NR.writev, wfd, iov, 2)).toBe(4);
    expect(fs.readFileSync(path.join(dir, 'v'), 'utf8')).toBe('abef');
    h.sys(NR.lseek, wfd, 0, 0);
    h.proc.as.writeU64(iov + 8, 3);
    h.proc.as.writeU64(iov + 16, buf + 400);
    h.proc.as.writeU64(iov + 24, 10);
    expect(h.sys(NR.readv, wfd, iov, 2)).toBe(4);
    expect(Buffer.from(h.proc.as.read(buf + 300, 3)).toString()).toBe('abe');
    expect(Buffer.from(h.proc.as.read(buf + 400, 1)).toString()).toBe('f');
  });

  test('stat family, statx, access, errors', () => {
    const h = harness();
    const dir = tempDir();
    const buf = h.scratch();
    const file = path.join(dir, 'x');
    fs.writeFileSync(file, 'x'.repeat(1000));
    expect(h.sys(NR.stat, h.str(file), buf)).toBe(0);
    expect(h.proc.as.readU64(buf + 48)).toBe(1000);
    expect(h.sys(NR.newfstatat, AT_FDCWD, h.str(file), buf + 256, 0)).toBe(0);
    expect(Buffer.from(h.proc.as.read(buf + 256, 144))).toEqual(Buffer.from(h.proc.as.read(buf, 144)));
    const fd = h.sys(NR.open, h.str(file), O_RDONLY);
    expect(h.sys(NR.newfstatat, fd, h.str(''), buf + 512, 0x1000)).toBe(0); // AT_EMPTY_PATH
    expect(h.proc.as.readU64(buf + 512 + 48)).toBe(1000);
    expect(h.sys(NR.newfstatat, fd, h.str(''), buf + 512, 0)).toBe(ENOENT);
    expect(h.sys(NR.statx, AT_FDCWD, h.str(file), 0, 0xfff, buf + 1024)).toBe(0);
    const st = fs.statSync(file, { bigint: true });
    expect(h.proc.as.readU32(buf + 1024) & 0x7ff).toBe(0x7ff);
    expect(h.proc.as.readU32(buf + 1024 + 28) & 0xffff).toBe(Number(st.mode));
    expect(BigInt(h.proc.as.readU64(buf + 1024 + 32))).toBe(st.ino);
    expect(h.proc.as.readU64(buf + 1024 + 40)).toBe(1000);
    expect(h.sys(NR.stat, h.str(path.join(dir, 'nope')), buf)).toBe(ENOENT);
    expect(h.sys(NR.access, h.str(file), 4)).toBe(0);
    expect(h.sys(NR.access, h.str(path.join(dir, 'nope')), 0)).toBe(ENOENT);
    expect(h.sys(NR.stat, 0x1234, buf)).toBe(EFAULT);
    expect(h.sys(NR.stat, h.str(file), 0x1000)).toBe(EFAULT);
    expect(h.sys(NR.read, fd, 0xdead0000, 10)).toBe(EFAULT);
    expect(h.sys(NR.fstat, 99, buf)).toBe(EBADF);
    expect(h.sys(NR.lseek, 99, 0, 0)).toBe(EBADF);
  });

  test('directories: mkdir, getdents64, relative paths, chdir/getcwd, rename, unlink, rmdir', () => {
    const h = harness();
    const dir = tempDir();
    const buf = h.scratch();
    expect(h.sys(NR.mkdir, h.str(path.join(dir, 'sub')), 0o755)).toBe(0);
    expect(h.sys(NR.mkdir, h.str(path.join(dir, 'sub')), 0o755)).toBe(EEXIST);
    fs.writeFileSync(path.join(dir, 'sub', 'a'), 'A');
    fs.writeFileSync(path.join(dir, 'sub', 'bb'), 'B');
    const dfd = h.sys(NR.openat, AT_FDCWD, h.str(path.join(dir, 'sub')), O_RDONLY | O_DIRECTORY, 0);
    expect(dfd).toBeGreaterThan(2);
    const n = h.sys(NR.getdents64, dfd, buf, 4096);
    expect(n).toBeGreaterThan(0);
    const entries: { name: string; type: number; ino: number }[] = [];
    for (let off = 0; off < n; ) {
      const reclen = h.mem.read16(buf + off + 16);
      expect(reclen % 8).toBe(0);
      entries.push({ ino: h.proc.as.readU64(buf + off), type: h.mem.read8(buf + off + 18), name: h.proc.as.readCString(buf + off + 19) });
      off += reclen;
    }
    expect(entries.map((e) => e.name).sort()).toEqual(['.', '..', 'a', 'bb']);
    expect(entries.find((e) => e.name === 'a')!.type).toBe(8); // DT_REG
    expect(entries.find((e) => e.name === '.')!.type).toBe(4); // DT_DIR
    expect(entries.find((e) => e.name === 'a')!.ino).toBe(Number(fs.statSync(path.join(dir, 'sub', 'a')).ino));
    expect(h.sys(NR.getdents64, dfd, buf, 4096)).toBe(0); // end of directory
    expect(h.sys(NR.lseek, dfd, 0, 0)).toBe(0); // rewinddir
    expect(h.sys(NR.getdents64, dfd, buf, 4096)).toBe(n);
    h.sys(NR.lseek, dfd, 0, 0);
    expect(h.sys(NR.getdents64, dfd, buf, 8)).toBe(EINVAL); // too small for one entry

    // A path relative to a directory fd, and to the working directory.
    const fd = h.sys(NR.openat, dfd, h.str('bb'), O_RDONLY, 0);
    expect(h.sys(NR.read, fd, buf, 10)).toBe(1);
    expect(h.sys(NR.openat, fd, h.str('bb'), O_RDONLY, 0)).toBe(ENOTDIR);
    expect(h.sys(NR.chdir, h.str(dir))).toBe(0);
    expect(h.sys(NR.getcwd, buf, 4096)).toBe(dir.length + 1);
    expect(h.proc.as.readCString(buf)).toBe(dir);
    expect(h.sys(NR.getcwd, buf, 2)).toBe(-34); // ERANGE
    expect(process.cwd()).not.toBe(dir); // the host's own directory is untouched
    expect(h.sys(NR.rename, h.str('sub/a'), h.str('sub/c'))).toBe(0);
    expect(fs.existsSync(path.join(dir, 'sub', 'c'))).toBe(true);
    expect(h.sys(NR.rmdir, h.str('sub'))).toBe(-39); // ENOTEMPTY
    expect(h.sys(NR.unlinkat, AT_FDCWD, h.str('sub/c'), 0)).toBe(0);
    expect(h.sys(NR.unlinkat, dfd, h.str('bb'), 0)).toBe(0);
    expect(h.sys(NR.unlinkat, AT_FDCWD, h.str('sub'), 0x200)).toBe(0);
    expect(fs.existsSync(path.join(dir, 'sub'))).toBe(false);
    expect(h.sys(NR.chdir, h.str('/nonexistent-dir'))).toBe(ENOENT);
  });

  test('readlink of /proc/self/exe names the guest program', () => {
    const h = harness();
    h.proc.exePath = '/opt/guest/prog';
    const buf = h.scratch();
    expect(h.sys(NR.readlink, h.str('/proc/self/exe'), buf, 100)).toBe(15);
    expect(Buffer.from(h.proc.as.read(buf, 15)).toString()).toBe('/opt/guest/prog');
    expect(h.sys(NR.readlink, h.str('/proc/self/exe'), buf, 4)).toBe(4);
  });

  test('dup shares the offset; dup2, fcntl, pipes', () => {
    const h = harness();
    const dir = tempDir();
    const buf = h.scratch();
    fs.writeFileSync(path.join(dir, 'f'), '0123456789');
    const fd = h.sys(NR.open, h.str(path.join(dir, 'f')), O_RDONLY);
    const d = h.sys(NR.dup, fd);
    expect(d).toBe(fd + 1);
    expect(h.sys(NR.read, fd, buf, 3)).toBe(3);
    expect(h.sys(NR.read, d, buf, 3)).toBe(3);
    expect(h.proc.as.readCString(buf).slice(0, 3)).toBe('345');
    expect(h.sys(NR.dup2, fd, 10)).toBe(10);
    expect(h.sys(NR.close, fd)).toBe(0);
    expect(h.sys(NR.read, 10, buf, 2)).toBe(2);
    expect(h.sys(NR.fcntl, 10, 1, 0)).toBe(0); // F_GETFD
    expect(h.sys(NR.fcntl, 10, 2, 1)).toBe(0); // F_SETFD FD_CLOEXEC
    expect(h.sys(NR.fcntl, 10, 1, 0)).toBe(1);
    expect(h.sys(NR.fcntl, 10, 1030, 20)).toBe(20); // F_DUPFD_CLOEXEC
    expect(h.sys(NR.fcntl, 20, 1, 0)).toBe(1);
    expect(h.sys(NR.ioctl, 10, 0x5401, buf)).toBe(ENOTTY);
    expect(h.sys(NR.lseek, 10, 0, 1)).toBe(8);

    expect(h.sys(NR.pipe2, buf, 0)).toBe(0);
    const [r, w] = [h.proc.as.readI32(buf), h.proc.as.readI32(buf + 4)];
    h.proc.as.write(buf + 64, Buffer.from('through the pipe'));
    expect(h.sys(NR.write, w, buf + 64, 16)).toBe(16);
    expect(h.sys(NR.read, r, buf + 128, 7)).toBe(7);
    expect(h.sys(NR.read, r, buf + 135, 100)).toBe(9);
    expect(h.proc.as.readCString(buf + 128)).toBe('through the pipe');
    expect(h.sys(NR.lseek, r, 0, 0)).toBe(ESPIPE);
    expect(h.sys(NR.fcntl, r, 4, 0x800)).toBe(0); // O_NONBLOCK
    expect(h.sys(NR.read, r, buf, 10)).toBe(EAGAIN);
    expect(h.sys(NR.close, w)).toBe(0);
    expect(h.sys(NR.read, r, buf, 10)).toBe(0); // EOF once no writer is left
  });

  test('reading an empty pipe nobody can fill ends the run with a clear line', () => {
    const h = harness();
    const buf = h.scratch();
    h.sys(NR.pipe2, buf, 0);
    expect(() => h.sys(NR.read, h.proc.as.readI32(buf), buf, 1)).toThrow(ProcessExit);
    expect(h.warnings[0]).toMatch(/^svmjit: read from an empty pipe.*deadlock/);
  });
});

describe('memory', () => {
  test('mmap anonymous: top-down, zeroed, lazily populated, hints, MAP_FIXED, errors', () => {
    const h = harness(16);
    const a = h.sys(NR.mmap, 0, 8192, PROT_RW, MAP_PRIVATE | MAP_ANON, -1, 0);
    const b = h.sys(NR.mmap, 0, 4096, PROT_RW, MAP_PRIVATE | MAP_ANON, -1, 0);
    expect(a % 4096).toBe(0);
    expect(b).toBe(a - 4096); // top-down
    expect(h.mem.isMapped(a)).toBe(false); // nothing populated yet
    expect(h.proc.as.readU64(a + 4088)).toBe(0);
    h.proc.as.writeU64(a + 8, 0x1234);
    expect(h.mem.isMapped(a)).toBe(true);
    // A reservation much larger than guest memory is fine while untouched.
    const big = h.sys(NR.mmap, 0, 1 << 30, 0, MAP_PRIVATE | MAP_ANON | 0x4000, -1, 0);
    expect(big).toBeGreaterThan(0);
    expect(h.sys(NR.munmap, big, 1 << 30)).toBe(0);
    // A free hint is honoured; a taken one is not.
    expect(h.sys(NR.mmap, 0x200000000, 4096, PROT_RW, MAP_PRIVATE | MAP_ANON, -1, 0)).toBe(0x200000000);
    expect(h.sys(NR.mmap, 0x200000000, 4096, PROT_RW, MAP_PRIVATE | MAP_ANON, -1, 0)).not.toBe(0x200000000);
    expect(h.sys(NR.mmap, 0x200000000, 4096, PROT_RW, MAP_PRIVATE | MAP_ANON | MAP_FIXED_NOREPLACE, -1, 0)).toBe(EEXIST);
    // MAP_FIXED replaces: the new page reads zero.
    expect(h.sys(NR.mmap, a, 4096, PROT_RW, MAP_PRIVATE | MAP_ANON | MAP_FIXED, -1, 0)).toBe(a);
    expect(h.proc.as.readU64(a + 8)).toBe(0);
    expect(h.sys(NR.mmap, a + 1, 4096, PROT_RW, MAP_PRIVATE | MAP_ANON | MAP_FIXED, -1, 0)).toBe(EINVAL);
    expect(h.sys(NR.mmap, 0, 0, PROT_RW, MAP_PRIVATE | MAP_ANON, -1, 0)).toBe(EINVAL);
    expect(h.sys(NR.mmap, 0, 4096, PROT_RW, MAP_ANON, -1, 0)).toBe(EINVAL);
    expect(h.sys(NR.mmap, 0, 4096, PROT_RW, MAP_PRIVATE, 55, 0)).toBe(EBADF);
    expect(h.sys(NR.mmap, 0, 2 ** 48, PROT_RW, MAP_PRIVATE | MAP_ANON, -1, 0)).toBe(ENOMEM);
    // munmap: later accesses fault, and a syscall given that address gets EFAULT.
    expect(h.sys(NR.munmap, a, 8192)).toBe(0);
    expect(() => h.mem.read8(a)).toThrow(CpuException);
    expect(h.sys(NR.write, 1, a, 1)).toBe(EFAULT);
    expect(h.sys(NR.munmap, a + 1, 4096)).toBe(EINVAL);
  });

  test('file-backed MAP_PRIVATE mapping', () => {
    const h = harness();
    const dir = tempDir();
    const data = Buffer.alloc(5000);
    for (let i = 0; i < data.length; i++) data[i] = i * 7;
    fs.writeFileSync(path.join(dir, 'm'), data);
    const fd = h.sys(NR.open, h.str(path.join(dir, 'm')), O_RDONLY);
    const a = h.sys(NR.mmap, 0, 5000, 1, MAP_PRIVATE, fd, 0);
    expect(a).toBeGreaterThan(0);
    expect(Buffer.from(h.proc.as.read(a, 5000))).toEqual(data);
    expect(h.mem.read8(a + 5000)).toBe(0); // the rest of the last page is zero
    const b = h.sys(NR.mmap, 0, 4096, PROT_RW, MAP_PRIVATE, fd, 4096);
    expect(h.mem.read8(b)).toBe(data[4096]);
    h.mem.write8(b, 1); // private: the file does not change
    expect(fs.readFileSync(path.join(dir, 'm'))[4096]).toBe(data[4096]);
    expect(h.sys(NR.mmap, 0, 4096, 1, MAP_PRIVATE, fd, 100)).toBe(EINVAL);
  });

  test('mprotect, mremap, madvise, brk', () => {
    const h = harness(16);
    const a = h.sys(NR.mmap, 0, 3 * 4096, PROT_RW, MAP_PRIVATE | MAP_ANON, -1, 0);
    h.proc.as.writeU32(a + 4096, 42);
    expect(h.sys(NR.mprotect, a + 4096, 4096, 1)).toBe(0);
    expect(h.mem.read32(a + 4096)).toBe(42);
    expect(() => h.mem.write32(a + 4096, 1)).toThrow(CpuException);
    h.proc.as.writeU32(a, 1); // neighbours keep their protection
    expect(h.sys(NR.write, 1, a + 4096, 0)).toBe(0);
    expect(h.sys(NR.mprotect, a + 1, 4096, 1)).toBe(EINVAL);
    expect(h.sys(NR.mprotect, 0x300000000, 4096, 1)).toBe(ENOMEM);
    // A fault on a never-touched page of a PROT_NONE reservation is an access error.
    const none = h.sys(NR.mmap, 0, 4096, 0, MAP_PRIVATE | MAP_ANON, -1, 0);
    expect(h.proc.as.populate(none, Prot.READ)).toBe(false);
    expect(h.sys(NR.mprotect, none, 4096, 3)).toBe(0);
    expect(h.proc.as.readU32(none)).toBe(0);

    // mremap grows in place when it can, moves (keeping contents) when it must.
    const m = h.sys(NR.mmap, 0, 4096, PROT_RW, MAP_PRIVATE | MAP_ANON, -1, 0);
    h.proc.as.writeU32(m, 0x5eed);
    h.sys(NR.mmap, m + 4096, 4096, PROT_RW, MAP_PRIVATE | MAP_ANON | MAP_FIXED, -1, 0); // block growth
    expect(h.sys(NR.mremap, m, 4096, 8192, 0, 0)).toBe(ENOMEM);
    const moved = h.sys(NR.mremap, m, 4096, 16384, 1, 0);
    expect(moved).not.toBe(m);
    expect(h.mem.read32(moved)).toBe(0x5eed);
    expect(h.proc.as.readU32(moved + 12288)).toBe(0);
    expect(h.mem.isMapped(m)).toBe(false);
    expect(h.sys(NR.mremap, moved, 16384, 4096, 0, 0)).toBe(moved); // shrink

    // MADV_DONTNEED: anonymous memory reads back as zero.
    h.proc.as.writeU32(a, 77);
    expect(h.sys(NR.madvise, a, 4096, 4)).toBe(0);
    expect(h.proc.as.readU32(a)).toBe(0);

    // brk starts at brkStart, grows lazily, shrinks, and refuses to go below its start.
    h.proc.brkStart = h.proc.brk = 0x1000000;
    expect(h.sys(NR.brk, 0)).toBe(0x1000000);
    expect(h.sys(NR.brk, 0x1000000 + 10000)).toBe(0x1000000 + 10000);
    h.proc.as.writeU32(0x1000000 + 9996, 9);
    expect(h.sys(NR.brk, 0x1000000)).toBe(0x1000000);
    expect(() => h.mem.read8(0x1000000)).toThrow(CpuException);
    expect(h.sys(NR.brk, 0x1000000 + 10000)).toBe(0x1000000 + 10000);
    expect(h.proc.as.readU32(0x1000000 + 9996)).toBe(0);
    expect(h.sys(NR.brk, 0x10)).toBe(0x1000000 + 10000);
  });

  test('a #PF on an untouched page of a mapping populates it instead of signalling', () => {
    const h = harness();
    const a = h.sys(NR.mmap, 0, 4096, PROT_RW, MAP_PRIVATE | MAP_ANON, -1, 0);
    let fault: CpuException | undefined;
    try {
      h.mem.write8(a, 1);
    } catch (e) {
      fault = e as CpuException;
    }
    expect(fault?.vector).toBe(Vec.PF);
    h.proc.onException(fault!);
    h.mem.write8(a, 1);
    expect(h.mem.read8(a)).toBe(1);
    expect(fault!.errorCode & PfErr.P).toBe(0);
  });
});

describe('process, time, identity', () => {
  test('arch_prctl sets and reads FS/GS bases', () => {
    const h = harness();
    const buf = h.scratch();
    expect(h.sys(NR.arch_prctl, 0x1002, 0x7fff12345678)).toBe(0);
    expect(h.cpu.s[S.FS_BASE_LO] >>> 0).toBe(0x12345678);
    expect(h.cpu.s[S.FS_BASE_HI]).toBe(0x7fff);
    expect(h.sys(NR.arch_prctl, 0x1003, buf)).toBe(0);
    expect(h.proc.as.readU64(buf)).toBe(0x7fff12345678);
    expect(h.sys(NR.arch_prctl, 0x1001, 0x1000)).toBe(0);
    expect(h.cpu.s[S.GS_BASE_LO]).toBe(0x1000);
    expect(h.sys(NR.arch_prctl, 0x9999, 0)).toBe(EINVAL);
  });

  test('uname, clock_gettime, getrandom, prlimit64, getpid, rseq, unknown', () => {
    const h = harness();
    const buf = h.scratch();
    expect(h.sys(NR.uname, buf)).toBe(0);
    expect(h.proc.as.readCString(buf)).toBe('Linux');
    expect(h.proc.as.readCString(buf + 2 * 65)).toBe('6.1.0');
    expect(h.proc.as.readCString(buf + 4 * 65)).toBe('x86_64');
    expect(h.sys(NR.clock_gettime, 0, buf)).toBe(0);
    expect(Math.abs(h.proc.as.readU64(buf) - Date.now() / 1000)).toBeLessThan(5);
    expect(h.proc.as.readU64(buf + 8)).toBeLessThan(1e9);
    expect(h.sys(NR.clock_gettime, 1, buf)).toBe(0);
    const t1 = h.proc.as.readU64(buf) * 1e9 + h.proc.as.readU64(buf + 8);
    h.sys(NR.clock_gettime, 1, buf);
    expect(h.proc.as.readU64(buf) * 1e9 + h.proc.as.readU64(buf + 8)).toBeGreaterThanOrEqual(t1);
    expect(h.sys(NR.clock_gettime, 99, buf)).toBe(EINVAL);
    expect(h.sys(NR.getrandom, buf, 64, 0)).toBe(64);
    expect(h.proc.as.read(buf, 64).some((x) => x !== 0)).toBe(true);
    expect(h.sys(NR.prlimit64, 0, 3, 0, buf)).toBe(0); // RLIMIT_STACK
    expect(h.proc.as.readU64(buf)).toBe(8 * 1024 * 1024);
    expect(h.sys(NR.getpid)).toBe(process.pid);
    expect(h.sys(NR.rseq, 0, 32, 0, 0)).toBe(ENOSYS);
    expect(h.sys(1000)).toBe(ENOSYS);
    expect(h.log.at(-1)).toMatch(/^syscall_0x3e8\(.*\) = -1 ENOSYS \(Function not implemented\)$/);
    expect(h.sys(NR.ioctl, 99, 0x5401, buf)).toBe(EBADF);
  });

  test('futex in a single-threaded process', () => {
    const h = harness();
    const buf = h.scratch();
    h.proc.as.writeU32(buf, 5);
    expect(h.sys(NR.futex, buf, 0x81, 1)).toBe(0); // FUTEX_WAKE_PRIVATE
    expect(h.sys(NR.futex, buf, 0x80, 4, 0)).toBe(EAGAIN); // value changed
    h.proc.as.writeU64(buf + 16, 0);
    h.proc.as.writeU64(buf + 24, 1000000); // 1 ms
    expect(h.sys(NR.futex, buf, 0x80, 5, buf + 16)).toBe(ETIMEDOUT);
    expect(() => h.sys(NR.futex, buf, 0x80, 5, 0)).toThrow(ProcessExit);
    expect(h.warnings[0]).toMatch(/^svmjit: futex wait .* deadlock/);
  });

  test('exit and exit_group end the process with status & 255', () => {
    const h = harness();
    let thrown: unknown;
    try {
      h.sys(NR.exit_group, 256 + 7);
    } catch (e) {
      thrown = e;
    }
    expect(thrown).toBeInstanceOf(ProcessExit);
    expect((thrown as ProcessExit).status).toBe(7);
    expect((thrown as ProcessExit).signal).toBe(0);
    expect(h.log.slice(-2)).toEqual(['exit_group(263) = ?', '+++ exited with 7 +++']);
    expect(() => h.sys(NR.exit, 0)).toThrow(ProcessExit);
  });
});
