/**
 * The guest's file descriptors: a table from guest fd numbers to open file descriptions,
 * which wrap host file descriptors (node:fs) or in-process pipes.
 *
 * Node has no dup() and no lseek(), so the emulation owns both: dup'ed guest fds share one
 * OpenFile (and its host fd, closed when the last guest fd goes), and files the guest opens
 * keep their offset here and use positioned reads and writes. Descriptors inherited from the
 * host (0, 1, 2) use the host kernel's offset (`pos === null`) so shell redirections such as
 * `>>` behave; an lseek on one reads the current offset from /proc/self/fdinfo and switches it
 * to our own tracking. O_APPEND and O_NONBLOCK are emulated here so F_SETFL can change them.
 */
import fs from 'node:fs';
import tty from 'node:tty';
import { E, Errno, hostErrno } from './errno.js';

export const O_ACCMODE = 3;
export const O_WRONLY = 1;
export const O_RDWR = 2;
export const O_CREAT = 0x40;
export const O_APPEND = 0x400;
export const O_NONBLOCK = 0x800;
export const O_DIRECTORY = 0x10000;
export const O_CLOEXEC = 0x80000;
export const O_PATH = 0x200000;
export const MAX_FDS = 1024;

/** An in-process pipe: unbounded, since a single-threaded guest could never drain a full one. */
export class Pipe {
  chunks: Uint8Array[] = [];
  size = 0;
  readers = 0;
  writers = 0;

  take(max: number): Uint8Array {
    const out = new Uint8Array(Math.min(max, this.size));
    for (let n = 0; n < out.length; ) {
      const c = this.chunks[0];
      const k = Math.min(c.length, out.length - n);
      out.set(c.subarray(0, k), n);
      n += k;
      if (k === c.length) this.chunks.shift();
      else this.chunks[0] = c.subarray(k);
    }
    this.size -= out.length;
    return out;
  }
}

export const enum FileKind {
  HOST = 0,
  DIR = 1,
  PIPE_READ = 2,
  PIPE_WRITE = 3,
}

export interface DirEntry {
  name: string;
  ino: bigint;
  type: number;
}

/** An open file description (what dup shares). */
export class OpenFile {
  refs = 0;
  /** Byte offset, or null to use the host kernel's offset (inherited descriptors). */
  pos: number | null = 0;
  dirEntries: DirEntry[] | null = null;
  constructor(
    readonly kind: FileKind,
    readonly hostFd: number,
    /** Absolute path at open time ('' when unknown): base for *at() calls, /proc/self/fd. */
    readonly path: string,
    /** Guest-visible status flags (O_ACCMODE | O_APPEND | O_NONBLOCK | …). */
    public flags: number,
    readonly seekable: boolean,
    readonly tty: boolean,
    readonly pipe: Pipe | null = null,
  ) {}

  release(): void {
    if (--this.refs > 0) return;
    if (this.pipe) {
      if (this.kind === FileKind.PIPE_READ) this.pipe.readers--;
      else this.pipe.writers--;
    } else if (this.hostFd > 2) {
      try {
        fs.closeSync(this.hostFd);
      } catch {
        /* already gone: nothing the guest could do about it */
      }
    }
  }
}

interface FdSlot {
  file: OpenFile;
  cloexec: boolean;
}

/** The host's current offset of an fd, from /proc/self/fdinfo (Linux hosts). */
export function hostOffset(hostFd: number): number {
  try {
    const m = /^pos:\s*(\d+)/m.exec(fs.readFileSync(`/proc/self/fdinfo/${hostFd}`, 'utf8'));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

/** The host's status flags of an fd, from /proc/self/fdinfo. */
function hostFlags(hostFd: number): number {
  try {
    const m = /^flags:\s*([0-7]+)/m.exec(fs.readFileSync(`/proc/self/fdinfo/${hostFd}`, 'utf8'));
    // The guest did not ask for O_NONBLOCK even if the host set it: writes must still look blocking.
    return m ? parseInt(m[1], 8) & ~(O_CLOEXEC | O_NONBLOCK) : O_RDWR;
  } catch {
    return O_RDWR;
  }
}

export class FdTable {
  private readonly slots: (FdSlot | undefined)[] = [];

  /** Guest 0, 1, 2 are the host's 0, 1, 2 (those that are open). */
  inheritStdio(): void {
    for (let fd = 0; fd <= 2; fd++) {
      let st: fs.Stats;
      try {
        st = fs.fstatSync(fd);
      } catch {
        continue;
      }
      const file = new OpenFile(FileKind.HOST, fd, '', hostFlags(fd), st.isFile() || st.isBlockDevice(), isattySafe(fd));
      file.pos = null;
      this.install(fd, file, false);
    }
  }

  get(fd: number): OpenFile {
    const slot = fd >= 0 ? this.slots[fd] : undefined;
    if (!slot) throw new Errno(E.BADF);
    return slot.file;
  }

  has(fd: number): boolean {
    return fd >= 0 && this.slots[fd] !== undefined;
  }

  cloexec(fd: number): boolean {
    this.get(fd);
    return this.slots[fd]!.cloexec;
  }

  setCloexec(fd: number, on: boolean): void {
    this.get(fd);
    this.slots[fd]!.cloexec = on;
  }

  /** Lowest free fd >= min. */
  alloc(file: OpenFile, cloexec: boolean, min = 0): number {
    for (let fd = min; fd < MAX_FDS; fd++) {
      if (!this.slots[fd]) {
        this.install(fd, file, cloexec);
        return fd;
      }
    }
    throw new Errno(E.MFILE);
  }

  /** Put file at fd, closing what was there (dup2). */
  install(fd: number, file: OpenFile, cloexec: boolean): void {
    if (fd < 0 || fd >= MAX_FDS) throw new Errno(E.BADF);
    file.refs++;
    this.slots[fd]?.file.release();
    this.slots[fd] = { file, cloexec };
  }

  close(fd: number): void {
    this.get(fd).release();
    this.slots[fd] = undefined;
  }
}

export function isattySafe(fd: number): boolean {
  try {
    return tty.isatty(fd);
  } catch {
    return false;
  }
}

/** Sleep without returning to the event loop (the emulator is synchronous). */
const sleeper = new Int32Array(new SharedArrayBuffer(4));
export function sleepMs(ms: number): void {
  if (ms > 0) Atomics.wait(sleeper, 0, 0, ms);
}

/** Read from a host fd; EAGAIN is retried unless the guest asked for non-blocking I/O. */
export function hostRead(file: OpenFile, buf: Uint8Array): number {
  for (;;) {
    try {
      const pos = file.seekable && file.pos !== null ? file.pos : null;
      const n = fs.readSync(file.hostFd, buf, 0, buf.length, pos);
      if (file.pos !== null && file.seekable) file.pos += n;
      return n;
    } catch (e) {
      const err = hostErrno(e);
      if (err === -E.AGAIN && !(file.flags & O_NONBLOCK)) {
        sleepMs(1);
        continue;
      }
      throw e;
    }
  }
}

/** Write all of data to a host fd (partial writes looped, EAGAIN retried), honouring O_APPEND. */
export function hostWrite(file: OpenFile, data: Uint8Array, at: number | null = null): number {
  let done = 0;
  if (at === null && file.pos !== null && file.seekable && file.flags & O_APPEND) file.pos = fs.fstatSync(file.hostFd).size;
  while (done < data.length) {
    try {
      const pos = at !== null ? at + done : file.seekable && file.pos !== null ? file.pos : null;
      const n = fs.writeSync(file.hostFd, data, done, data.length - done, pos);
      done += n;
      if (at === null && file.pos !== null && file.seekable) file.pos += n;
    } catch (e) {
      if (hostErrno(e) === -E.AGAIN) {
        if (file.flags & O_NONBLOCK) {
          if (done) return done;
          throw e;
        }
        sleepMs(1);
        continue;
      }
      if (done) return done;
      throw e;
    }
  }
  return done;
}
