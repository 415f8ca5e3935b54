/**
 * File-system and file-descriptor system calls on real host files through node:fs's
 * synchronous API: open/read/write/seek, stat in its three x86-64 layouts, directories,
 * links and names, dup/fcntl/ioctl and pipes.
 *
 * Paths are resolved here, against the guest's own working directory (chdir never touches
 * the host process, which may be running other work) or the directory an fd was opened on;
 * /proc/self/exe names the guest program, not node. Each implementation returns its result or
 * throws (Errno, or a node:fs error whose errno the dispatcher passes through).
 */
import fs from 'node:fs';
import nodePath from 'node:path';
import { E, Errno } from './errno.js';
import {
  FileKind, hostOffset, hostRead, hostWrite, isattySafe, O_ACCMODE, O_APPEND, O_CLOEXEC, O_CREAT, O_DIRECTORY, O_NONBLOCK, O_PATH, O_WRONLY,
  OpenFile, Pipe,
} from './files.js';
import type { SysImpl } from './syscalls.js';
import type { LinuxProcess } from './process.js';

const AT_FDCWD = -100;
const AT_SYMLINK_NOFOLLOW = 0x100;
const AT_REMOVEDIR = 0x200;
const AT_EMPTY_PATH = 0x1000;
const RENAME_NOREPLACE = 1;
/** One read moves at most this much: bounds host allocations for huge counts (short reads are legal). */
const MAX_IO = 4 * 1024 * 1024;
const SELF_EXE = '/proc/self/exe';

/** Absolute host path for a guest path relative to dirfd. */
export function resolveAt(p: LinuxProcess, dirfd: number, pathAddr: number, allowEmpty = false): string {
  const path = p.as.readCString(pathAddr);
  if (path === '') {
    if (!allowEmpty) throw new Errno(E.NOENT);
    return '';
  }
  if (path === SELF_EXE) return p.exePath;
  if (path.startsWith('/')) return path;
  let base = p.cwd;
  if (dirfd !== AT_FDCWD) {
    const dir = p.files.get(dirfd);
    if (dir.kind !== FileKind.DIR) throw new Errno(E.NOTDIR);
    base = dir.path;
  }
  return nodePath.resolve(base, path);
}

function checkReadable(f: OpenFile): void {
  if ((f.flags & O_ACCMODE) === O_WRONLY || f.flags & O_PATH) throw new Errno(E.BADF);
}

function checkWritable(f: OpenFile): void {
  if ((f.flags & O_ACCMODE) === 0 || f.flags & O_PATH) throw new Errno(E.BADF);
}

/** read(2) on any kind of open file into a host buffer. */
function readFile(p: LinuxProcess, f: OpenFile, count: number, at: number | null): Uint8Array {
  checkReadable(f);
  if (f.kind === FileKind.DIR) throw new Errno(E.ISDIR);
  if (f.kind === FileKind.PIPE_WRITE) throw new Errno(E.BADF);
  const n = Math.max(0, Math.min(count, MAX_IO));
  if (f.pipe) {
    if (f.pipe.size === 0 && n > 0) {
      if (f.pipe.writers === 0) return new Uint8Array(0);
      if (f.flags & O_NONBLOCK) throw new Errno(E.AGAIN);
      p.fatal('read from an empty pipe that only this (single-threaded) process could fill: deadlock');
    }
    return f.pipe.take(n);
  }
  const buf = new Uint8Array(n);
  if (at !== null) return buf.subarray(0, fs.readSync(f.hostFd, buf, 0, n, at));
  return buf.subarray(0, hostRead(f, buf));
}

function writeFile(p: LinuxProcess, f: OpenFile, data: Uint8Array, at: number | null): number {
  checkWritable(f);
  if (f.kind === FileKind.DIR) throw new Errno(E.ISDIR);
  if (f.pipe) {
    if (f.kind !== FileKind.PIPE_WRITE) throw new Errno(E.BADF);
    if (f.pipe.readers === 0) {
      p.signals.raise(13 /* SIGPIPE */);
      throw new Errno(E.PIPE);
    }
    if (data.length) f.pipe.chunks.push(data.slice());
    f.pipe.size += data.length;
    return data.length;
  }
  return hostWrite(f, data, at);
}

/** iovec array → [base, len] pairs (EINVAL for absurd counts). */
function readIovecs(p: LinuxProcess, addr: number, count: number): [number, number][] {
  if (count < 0 || count > 1024) throw new Errno(E.INVAL);
  const out: [number, number][] = [];
  for (let i = 0; i < count; i++) out.push([p.as.readU64(addr + 16 * i), p.as.readU64(addr + 16 * i + 8)]);
  return out;
}

function readv(p: LinuxProcess, fd: number, iov: number, cnt: number, at: number | null): number {
  const f = p.files.get(fd);
  let total = 0;
  for (const [base, len] of readIovecs(p, iov, cnt)) {
    if (len === 0) continue;
    p.as.touch(base, len, 2);
    const data = readFile(p, f, len, at === null ? null : at + total);
    p.as.write(base, data);
    total += data.length;
    if (data.length < len) break;
  }
  return total;
}

function writev(p: LinuxProcess, fd: number, iov: number, cnt: number, at: number | null): number {
  const f = p.files.get(fd);
  const parts = readIovecs(p, iov, cnt).map(([base, len]) => p.as.read(base, len));
  return writeFile(p, f, Buffer.concat(parts), at);
}

/** Host stat of a guest path or fd, following or not following a final symlink. */
function statOf(p: LinuxProcess, dirfd: number, pathAddr: number, flags: number): fs.BigIntStats {
  const path = resolveAt(p, dirfd, pathAddr, (flags & AT_EMPTY_PATH) !== 0);
  if (path === '') return fstatOf(p, dirfd);
  return flags & AT_SYMLINK_NOFOLLOW ? fs.lstatSync(path, { bigint: true }) : fs.statSync(path, { bigint: true });
}

function fstatOf(p: LinuxProcess, fd: number): fs.BigIntStats {
  if (fd === AT_FDCWD) return fs.statSync(p.cwd, { bigint: true });
  const f = p.files.get(fd);
  if (f.pipe) {
    // A FIFO with nothing else to report, as the kernel shows an anonymous pipe.
    const st = fs.statSync('/', { bigint: true });
    return Object.assign(Object.create(Object.getPrototypeOf(st)), st, { mode: 0o10600n, size: BigInt(f.pipe.size), ino: 0n, nlink: 1n, rdev: 0n, blocks: 0n });
  }
  return fs.fstatSync(f.hostFd, { bigint: true });
}

/** struct stat (x86-64, 144 bytes). */
function writeStat(p: LinuxProcess, addr: number, st: fs.BigIntStats): void {
  const b = Buffer.alloc(144);
  b.writeBigUInt64LE(st.dev, 0);
  b.writeBigUInt64LE(st.ino, 8);
  b.writeBigUInt64LE(st.nlink, 16);
  b.writeUInt32LE(Number(st.mode), 24);
  b.writeUInt32LE(Number(st.uid), 28);
  b.writeUInt32LE(Number(st.gid), 32);
  b.writeBigUInt64LE(st.rdev, 40);
  b.writeBigInt64LE(st.size, 48);
  b.writeBigInt64LE(st.blksize, 56);
  b.writeBigInt64LE(st.blocks, 64);
  const times = [st.atimeNs, st.mtimeNs, st.ctimeNs];
  times.forEach((ns, i) => {
    b.writeBigInt64LE(ns / 1000000000n, 72 + 16 * i);
    b.writeBigInt64LE(ns % 1000000000n, 80 + 16 * i);
  });
  p.as.write(addr, b);
}

const major = (dev: bigint) => Number(((dev >> 8n) & 0xfffn) | ((dev >> 32n) & ~0xfffn));
const minor = (dev: bigint) => Number((dev & 0xffn) | ((dev >> 12n) & ~0xffn));

/** struct statx (256 bytes); we always know the basic fields and the birth time. */
function writeStatx(p: LinuxProcess, addr: number, st: fs.BigIntStats): void {
  const b = Buffer.alloc(256);
  b.writeUInt32LE(0xfff, 0); // STATX_BASIC_STATS | STATX_BTIME
  b.writeUInt32LE(Number(st.blksize), 4);
  b.writeUInt32LE(Number(st.nlink), 16);
  b.writeUInt32LE(Number(st.uid), 20);
  b.writeUInt32LE(Number(st.gid), 24);
  b.writeUInt16LE(Number(st.mode), 28);
  b.writeBigUInt64LE(st.ino, 32);
  b.writeBigUInt64LE(st.size, 40);
  b.writeBigUInt64LE(st.blocks, 48);
  [st.atimeNs, st.birthtimeNs, st.ctimeNs, st.mtimeNs].forEach((ns, i) => {
    b.writeBigInt64LE(ns / 1000000000n, 64 + 16 * i);
    b.writeUInt32LE(Number(ns % 1000000000n), 72 + 16 * i);
  });
  b.writeUInt32LE(major(st.rdev), 128);
  b.writeUInt32LE(minor(st.rdev), 132);
  b.writeUInt32LE(major(st.dev), 136);
  b.writeUInt32LE(minor(st.dev), 140);
  p.as.write(addr, b);
}

function openAt(p: LinuxProcess, dirfd: number, pathAddr: number, flags: number, mode: number): number {
  const path = resolveAt(p, dirfd, pathAddr);
  // O_APPEND and O_NONBLOCK are emulated (F_SETFL must be able to change them); node adds O_CLOEXEC.
  const hostFd = fs.openSync(path, flags & ~(O_APPEND | O_NONBLOCK | O_CLOEXEC), mode & 0o7777);
  let st: fs.Stats;
  try {
    st = fs.fstatSync(hostFd);
  } catch (e) {
    fs.closeSync(hostFd);
    throw e;
  }
  const kind = st.isDirectory() ? FileKind.DIR : FileKind.HOST;
  const file = new OpenFile(kind, hostFd, path, flags & ~(O_CLOEXEC | O_CREAT | 0x80 | 0x200), st.isFile() || st.isBlockDevice() || st.isDirectory(), st.isCharacterDevice() && isattySafe(hostFd));
  try {
    return p.files.alloc(file, (flags & O_CLOEXEC) !== 0);
  } catch (e) {
    file.refs = 1;
    file.release();
    throw e;
  }
}

function lseek(p: LinuxProcess, fd: number, off: number, whence: number): number {
  const f = p.files.get(fd);
  if (!f.seekable || f.pipe) throw new Errno(E.SPIPE);
  let base: number;
  if (whence === 0) base = 0;
  else if (whence === 1) base = f.pos ?? hostOffset(f.hostFd);
  else if (whence === 2) base = f.kind === FileKind.DIR ? 0 : fs.fstatSync(f.hostFd).size;
  else throw new Errno(E.INVAL);
  const pos = base + off;
  if (pos < 0) throw new Errno(E.INVAL);
  f.pos = pos;
  return pos;
}

const DT_BY_KIND = (d: fs.Dirent): number =>
  d.isFile() ? 8 : d.isDirectory() ? 4 : d.isSymbolicLink() ? 10 : d.isCharacterDevice() ? 2 : d.isBlockDevice() ? 6 : d.isFIFO() ? 1 : d.isSocket() ? 12 : 0;

function getdents64(p: LinuxProcess, fd: number, addr: number, count: number): number {
  const f = p.files.get(fd);
  if (f.kind !== FileKind.DIR) throw new Errno(E.NOTDIR);
  if (!f.dirEntries || f.pos === 0) {
    const ino = (path: string) => {
      try {
        return fs.lstatSync(path, { bigint: true }).ino;
      } catch {
        return 0n;
      }
    };
    f.dirEntries = [
      { name: '.', ino: ino(f.path), type: 4 },
      { name: '..', ino: ino(nodePath.dirname(f.path)), type: 4 },
      ...fs.readdirSync(f.path, { withFileTypes: true }).map((d) => ({ name: d.name, ino: ino(nodePath.join(f.path, d.name)), type: DT_BY_KIND(d) })),
    ];
  }
  const out = Buffer.alloc(Math.max(0, Math.min(count, MAX_IO)));
  let used = 0;
  let i = f.pos ?? 0;
  for (; i < f.dirEntries.length; i++) {
    const e = f.dirEntries[i];
    const name = Buffer.from(e.name, 'utf8');
    const reclen = (19 + name.length + 1 + 7) & ~7;
    if (used + reclen > out.length) {
      if (used === 0) throw new Errno(E.INVAL);
      break;
    }
    out.writeBigUInt64LE(e.ino, used);
    out.writeBigInt64LE(BigInt(i + 1), used + 8);
    out.writeUInt16LE(reclen, used + 16);
    out[used + 18] = e.type;
    name.copy(out, used + 19);
    used += reclen;
  }
  f.pos = i;
  p.as.write(addr, out.subarray(0, used));
  return used;
}

function readlinkAt(p: LinuxProcess, dirfd: number, pathAddr: number, buf: number, size: number): number {
  if ((size | 0) <= 0) throw new Errno(E.INVAL);
  const path = p.as.readCString(pathAddr);
  let target: string;
  if (path === SELF_EXE) target = p.exePath;
  else {
    const m = /^\/proc\/self\/fd\/(\d+)$/.exec(path);
    target = m ? p.files.get(+m[1]).path || `pipe:[${m[1]}]` : fs.readlinkSync(resolveAt(p, dirfd, pathAddr));
  }
  const bytes = Buffer.from(target, 'utf8').subarray(0, size);
  p.as.write(buf, bytes);
  return bytes.length;
}

function renameAt(p: LinuxProcess, olddir: number, oldp: number, newdir: number, newp: number, flags: number): number {
  if (flags & ~RENAME_NOREPLACE) throw new Errno(E.INVAL);
  const from = resolveAt(p, olddir, oldp);
  const to = resolveAt(p, newdir, newp);
  if (flags & RENAME_NOREPLACE && fs.existsSync(to)) throw new Errno(E.EXIST);
  fs.renameSync(from, to);
  return 0;
}

function unlinkAt(p: LinuxProcess, dirfd: number, pathAddr: number, flags: number): number {
  if (flags & ~AT_REMOVEDIR) throw new Errno(E.INVAL);
  const path = resolveAt(p, dirfd, pathAddr);
  if (flags & AT_REMOVEDIR) fs.rmdirSync(path);
  else fs.unlinkSync(path);
  return 0;
}

function accessAt(p: LinuxProcess, dirfd: number, pathAddr: number, mode: number): number {
  if (mode & ~7) throw new Errno(E.INVAL);
  fs.accessSync(resolveAt(p, dirfd, pathAddr), mode);
  return 0;
}

/** dup2/dup3: newfd becomes a copy of oldfd. */
function dupTo(p: LinuxProcess, oldfd: number, newfd: number, cloexec: boolean): number {
  const f = p.files.get(oldfd);
  if (newfd < 0 || newfd >= 1024) throw new Errno(E.BADF);
  if (oldfd !== newfd) p.files.install(newfd, f, cloexec);
  return newfd;
}

function fcntl(p: LinuxProcess, fd: number, cmd: number, arg: number): number {
  const f = p.files.get(fd);
  switch (cmd) {
    case 0: // F_DUPFD
    case 1030: // F_DUPFD_CLOEXEC
      if (arg < 0 || arg >= 1024) throw new Errno(E.INVAL);
      return p.files.alloc(f, cmd === 1030, arg);
    case 1: // F_GETFD
      return p.files.cloexec(fd) ? 1 : 0;
    case 2: // F_SETFD
      p.files.setCloexec(fd, (arg & 1) !== 0);
      return 0;
    case 3: // F_GETFL
      return f.flags;
    case 4: // F_SETFL: only these status flags can change
      f.flags = (f.flags & ~(O_APPEND | O_NONBLOCK)) | (arg & (O_APPEND | O_NONBLOCK));
      return 0;
    default:
      throw new Errno(E.INVAL);
  }
}

/** Linux's default cooked-mode termios, for TCGETS on a terminal (node cannot read the real one). */
function defaultTermios(): Buffer {
  const t = Buffer.alloc(36);
  t.writeUInt32LE(0o2400 /* ICRNL|IXON */ | 0o40000 /* IUTF8 */, 0);
  t.writeUInt32LE(0o5 /* OPOST|ONLCR */, 4);
  t.writeUInt32LE(0o277 /* B38400|CS8|CREAD|HUPCL */, 8);
  t.writeUInt32LE(0o105073 /* ISIG|ICANON|ECHO|ECHOE|ECHOK|ECHOCTL|ECHOKE|IEXTEN */, 12);
  // c_cc: VINTR ^C, VQUIT ^\, VERASE DEL, VKILL ^U, VEOF ^D, VTIME 0, VMIN 1, …, VSUSP ^Z, …
  Buffer.from([3, 28, 127, 21, 4, 0, 1, 0, 17, 19, 26, 0, 18, 15, 23, 22, 0]).copy(t, 17);
  return t;
}

function ioctl(p: LinuxProcess, fd: number, req: number, arg: number): number {
  const f = p.files.get(fd);
  switch (req) {
    case 0x5421: // FIONBIO
      f.flags = p.as.readI32(arg) ? f.flags | O_NONBLOCK : f.flags & ~O_NONBLOCK;
      return 0;
    case 0x541b: // FIONREAD
      if (!f.pipe) break;
      p.as.writeU32(arg, f.pipe.size);
      return 0;
  }
  if (!f.tty) throw new Errno(E.NOTTY);
  switch (req) {
    case 0x5401: // TCGETS
      p.as.write(arg, defaultTermios());
      return 0;
    case 0x5402: // TCSETS, TCSETSW, TCSETSF: accepted; node cannot change the host terminal's modes
    case 0x5403:
    case 0x5404:
      p.as.read(arg, 36);
      return 0;
    case 0x5413: {
      // TIOCGWINSZ
      const stream = f.hostFd === 2 ? process.stderr : process.stdout;
      const [cols, rows] = stream.isTTY ? stream.getWindowSize() : [80, 24];
      const ws = Buffer.alloc(8);
      ws.writeUInt16LE(rows, 0);
      ws.writeUInt16LE(cols, 2);
      p.as.write(arg, ws);
      return 0;
    }
    case 0x540f: // TIOCGPGRP
      p.as.writeU32(arg, p.pid);
      return 0;
  }
  throw new Errno(E.NOTTY);
}

function pipe2(p: LinuxProcess, addr: number, flags: number): number {
  if (flags & ~(O_CLOEXEC | O_NONBLOCK | 0x4000)) throw new Errno(E.INVAL);
  p.as.touch(addr, 8, 2);
  const pipe = new Pipe();
  const r = new OpenFile(FileKind.PIPE_READ, -1, '', flags & O_NONBLOCK, false, false, pipe);
  const w = new OpenFile(FileKind.PIPE_WRITE, -1, '', O_WRONLY | (flags & O_NONBLOCK), false, false, pipe);
  pipe.readers = pipe.writers = 1;
  const cloexec = (flags & O_CLOEXEC) !== 0;
  const rfd = p.files.alloc(r, cloexec);
  let wfd: number;
  try {
    wfd = p.files.alloc(w, cloexec);
  } catch (e) {
    p.files.close(rfd);
    throw e;
  }
  p.as.writeU32(addr, rfd);
  p.as.writeU32(addr + 4, wfd);
  return 0;
}

function getcwd(p: LinuxProcess, buf: number, size: number): number {
  const bytes = Buffer.from(p.cwd + '\0', 'utf8');
  if (size < bytes.length) throw new Errno(E.RANGE);
  p.as.write(buf, bytes);
  return bytes.length;
}

function chdir(p: LinuxProcess, path: string): number {
  if (!fs.statSync(path).isDirectory()) throw new Errno(E.NOTDIR);
  fs.accessSync(path, fs.constants.X_OK);
  p.cwd = path;
  return 0;
}

const i32 = (v: number) => v | 0;

/** The file-system syscalls, by name (numbers and trace formats are in syscalls.ts). */
export const FS_SYSCALLS: Record<string, SysImpl> = {
  read: (p, a) => {
    const f = p.files.get(i32(a[0]));
    p.as.touch(a[1], Math.min(a[2], MAX_IO), 2); // a bad buffer must not consume input
    const data = readFile(p, f, a[2], null);
    p.as.write(a[1], data);
    return data.length;
  },
  write: (p, a) => writeFile(p, p.files.get(i32(a[0])), p.as.read(a[1], Math.min(a[2], MAX_IO * 16)), null),
  pread64: (p, a) => {
    const f = p.files.get(i32(a[0]));
    if (!f.seekable || f.pipe) throw new Errno(E.SPIPE);
    if (a[3] < 0) throw new Errno(E.INVAL);
    p.as.touch(a[1], Math.min(a[2], MAX_IO), 2);
    const data = readFile(p, f, a[2], a[3]);
    p.as.write(a[1], data);
    return data.length;
  },
  pwrite64: (p, a) => {
    const f = p.files.get(i32(a[0]));
    if (!f.seekable || f.pipe) throw new Errno(E.SPIPE);
    if (a[3] < 0) throw new Errno(E.INVAL);
    return writeFile(p, f, p.as.read(a[1], a[2]), a[3]);
  },
  readv: (p, a) => readv(p, i32(a[0]), a[1], i32(a[2]), null),
  writev: (p, a) => writev(p, i32(a[0]), a[1], i32(a[2]), null),
  preadv: (p, a) => readv(p, i32(a[0]), a[1], i32(a[2]), a[3]),
  pwritev: (p, a) => writev(p, i32(a[0]), a[1], i32(a[2]), a[3]),
  open: (p, a) => openAt(p, AT_FDCWD, a[0], i32(a[1]), i32(a[2])),
  openat: (p, a) => openAt(p, i32(a[0]), a[1], i32(a[2]), i32(a[3])),
  creat: (p, a) => openAt(p, AT_FDCWD, a[0], O_CREAT | O_WRONLY | 0x200, i32(a[1])),
  close: (p, a) => (p.files.close(i32(a[0])), 0),
  lseek: (p, a) => lseek(p, i32(a[0]), a[1], i32(a[2])),
  fstat: (p, a) => (writeStat(p, a[1], fstatOf(p, i32(a[0]))), 0),
  stat: (p, a) => (writeStat(p, a[1], statOf(p, AT_FDCWD, a[0], 0)), 0),
  lstat: (p, a) => (writeStat(p, a[1], statOf(p, AT_FDCWD, a[0], AT_SYMLINK_NOFOLLOW)), 0),
  newfstatat: (p, a) => (writeStat(p, a[2], statOf(p, i32(a[0]), a[1], i32(a[3]))), 0),
  statx: (p, a) => (writeStatx(p, a[4], statOf(p, i32(a[0]), a[1], i32(a[2]))), 0),
  getdents64: (p, a) => getdents64(p, i32(a[0]), a[1], a[2]),
  readlink: (p, a) => readlinkAt(p, AT_FDCWD, a[0], a[1], a[2]),
  readlinkat: (p, a) => readlinkAt(p, i32(a[0]), a[1], a[2], a[3]),
  getcwd: (p, a) => getcwd(p, a[0], a[1]),
  chdir: (p, a) => chdir(p, resolveAt(p, AT_FDCWD, a[0])),
  fchdir: (p, a) => {
    const f = p.files.get(i32(a[0]));
    if (f.kind !== FileKind.DIR) throw new Errno(E.NOTDIR);
    return chdir(p, f.path);
  },
  unlink: (p, a) => unlinkAt(p, AT_FDCWD, a[0], 0),
  unlinkat: (p, a) => unlinkAt(p, i32(a[0]), a[1], i32(a[2])),
  rmdir: (p, a) => unlinkAt(p, AT_FDCWD, a[0], AT_REMOVEDIR),
  mkdir: (p, a) => (fs.mkdirSync(resolveAt(p, AT_FDCWD, a[0]), { mode: i32(a[1]) & 0o7777 }), 0),
  mkdirat: (p, a) => (fs.mkdirSync(resolveAt(p, i32(a[0]), a[1]), { mode: i32(a[2]) & 0o7777 }), 0),
  rename: (p, a) => renameAt(p, AT_FDCWD, a[0], AT_FDCWD, a[1], 0),
  renameat: (p, a) => renameAt(p, i32(a[0]), a[1], i32(a[2]), a[3], 0),
  renameat2: (p, a) => renameAt(p, i32(a[0]), a[1], i32(a[2]), a[3], i32(a[4])),
  access: (p, a) => accessAt(p, AT_FDCWD, a[0], i32(a[1])),
  faccessat: (p, a) => accessAt(p, i32(a[0]), a[1], i32(a[2])),
  faccessat2: (p, a) => accessAt(p, i32(a[0]), a[1], i32(a[2])),
  dup: (p, a) => p.files.alloc(p.files.get(i32(a[0])), false),
  dup2: (p, a) => dupTo(p, i32(a[0]), i32(a[1]), false),
  dup3: (p, a) => {
    if (i32(a[0]) === i32(a[1]) || i32(a[2]) & ~O_CLOEXEC) throw new Errno(E.INVAL);
    return dupTo(p, i32(a[0]), i32(a[1]), (i32(a[2]) & O_CLOEXEC) !== 0);
  },
  fcntl: (p, a) => fcntl(p, i32(a[0]), i32(a[1]), i32(a[2])),
  ioctl: (p, a) => ioctl(p, i32(a[0]), a[1] >>> 0, a[2]),
  pipe: (p, a) => pipe2(p, a[0], 0),
  pipe2: (p, a) => pipe2(p, a[0], i32(a[1])),
  fsync: (p, a) => {
    const f = p.files.get(i32(a[0]));
    if (!f.pipe && f.seekable) fs.fsyncSync(f.hostFd);
    return 0;
  },
  fdatasync: (p, a) => {
    const f = p.files.get(i32(a[0]));
    if (!f.pipe && f.seekable) fs.fdatasyncSync(f.hostFd);
    return 0;
  },
  ftruncate: (p, a) => {
    const f = p.files.get(i32(a[0]));
    if (f.pipe || f.kind === FileKind.DIR) throw new Errno(E.INVAL);
    checkWritable(f);
    fs.ftruncateSync(f.hostFd, a[1]);
    return 0;
  },
  truncate: (p, a) => (fs.truncateSync(resolveAt(p, AT_FDCWD, a[0]), a[1]), 0),
  umask: (p, a) => {
    const old = p.umask;
    p.umask = i32(a[0]) & 0o777;
    return old;
  },
};

