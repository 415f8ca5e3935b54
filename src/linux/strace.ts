/**
 * `--strace`: one line per system call in strace's own format, so the output can be compared
 * with `strace -f` on the host. Each syscall declares its argument formats once in the
 * syscall table (syscalls.ts, e.g. "fd,wbuf,u" for write); this file renders them: flag sets
 * decoded to their names, strings escaped and cut at 32 bytes like strace's default `-s 32`,
 * paths in full, errors as "-1 ENOENT (No such file or directory)".
 */
import type { AddressSpace } from './vm.js';
import { errnoText } from './errno.js';

/** A named bit set: [value, name] pairs matched in order; leftovers printed in hex. */
type FlagTable = readonly (readonly [number, string])[];

const OPEN_FLAGS: FlagTable = [
  [0x40, 'O_CREAT'], [0x80, 'O_EXCL'], [0x100, 'O_NOCTTY'], [0x200, 'O_TRUNC'], [0x400, 'O_APPEND'], [0x800, 'O_NONBLOCK'],
  [0x101000, 'O_SYNC'], [0x1000, 'O_DSYNC'], [0x2000, 'O_ASYNC'], [0x4000, 'O_DIRECT'], [0x8000, 'O_LARGEFILE'], [0x410000, 'O_TMPFILE'],
  [0x10000, 'O_DIRECTORY'], [0x20000, 'O_NOFOLLOW'], [0x40000, 'O_NOATIME'], [0x80000, 'O_CLOEXEC'], [0x200000, 'O_PATH'],
];
const PROT_FLAGS: FlagTable = [[1, 'PROT_READ'], [2, 'PROT_WRITE'], [4, 'PROT_EXEC'], [0x1000000, 'PROT_GROWSDOWN'], [0x2000000, 'PROT_GROWSUP']];
const MAP_FLAGS: FlagTable = [
  [0x10, 'MAP_FIXED'], [0x20, 'MAP_ANONYMOUS'], [0x40, 'MAP_32BIT'], [0x100, 'MAP_GROWSDOWN'], [0x800, 'MAP_DENYWRITE'], [0x1000, 'MAP_EXECUTABLE'],
  [0x2000, 'MAP_LOCKED'], [0x4000, 'MAP_NORESERVE'], [0x8000, 'MAP_POPULATE'], [0x10000, 'MAP_NONBLOCK'], [0x20000, 'MAP_STACK'],
  [0x40000, 'MAP_HUGETLB'], [0x100000, 'MAP_FIXED_NOREPLACE'],
];
const AT_FLAGS: FlagTable = [[0x100, 'AT_SYMLINK_NOFOLLOW'], [0x200, 'AT_REMOVEDIR'], [0x400, 'AT_SYMLINK_FOLLOW'], [0x800, 'AT_NO_AUTOMOUNT'], [0x1000, 'AT_EMPTY_PATH']];
const MREMAP_FLAGS: FlagTable = [[1, 'MREMAP_MAYMOVE'], [2, 'MREMAP_FIXED'], [4, 'MREMAP_DONTUNMAP']];
const ACCESS_MODES: FlagTable = [[4, 'R_OK'], [2, 'W_OK'], [1, 'X_OK']];
const SA_FLAGS: FlagTable = [
  [1, 'SA_NOCLDSTOP'], [2, 'SA_NOCLDWAIT'], [4, 'SA_SIGINFO'], [0x04000000, 'SA_RESTORER'], [0x08000000, 'SA_ONSTACK'],
  [0x10000000, 'SA_RESTART'], [0x40000000, 'SA_NODEFER'], [0x80000000, 'SA_RESETHAND'],
];

const WHENCE = ['SEEK_SET', 'SEEK_CUR', 'SEEK_END', 'SEEK_DATA', 'SEEK_HOLE'];
const CLOCKS = ['CLOCK_REALTIME', 'CLOCK_MONOTONIC', 'CLOCK_PROCESS_CPUTIME_ID', 'CLOCK_THREAD_CPUTIME_ID', 'CLOCK_MONOTONIC_RAW', 'CLOCK_REALTIME_COARSE', 'CLOCK_MONOTONIC_COARSE', 'CLOCK_BOOTTIME'];
const SIG_HOW = ['SIG_BLOCK', 'SIG_UNBLOCK', 'SIG_SETMASK'];
const FUTEX_OPS: Record<number, string> = { 0: 'FUTEX_WAIT', 1: 'FUTEX_WAKE', 3: 'FUTEX_REQUEUE', 4: 'FUTEX_CMP_REQUEUE', 5: 'FUTEX_WAKE_OP', 9: 'FUTEX_WAIT_BITSET', 10: 'FUTEX_WAKE_BITSET' };
const ARCH_PRCTL: Record<number, string> = { 0x1001: 'ARCH_SET_GS', 0x1002: 'ARCH_SET_FS', 0x1003: 'ARCH_GET_FS', 0x1004: 'ARCH_GET_GS' };
const MADVICE: Record<number, string> = { 0: 'MADV_NORMAL', 1: 'MADV_RANDOM', 2: 'MADV_SEQUENTIAL', 3: 'MADV_WILLNEED', 4: 'MADV_DONTNEED', 8: 'MADV_FREE', 14: 'MADV_HUGEPAGE', 15: 'MADV_NOHUGEPAGE' };
const IOCTLS: Record<number, string> = { 0x5401: 'TCGETS', 0x5402: 'TCSETS', 0x5403: 'TCSETSW', 0x5404: 'TCSETSF', 0x540f: 'TIOCGPGRP', 0x5413: 'TIOCGWINSZ', 0x5414: 'TIOCSWINSZ', 0x541b: 'FIONREAD', 0x5421: 'FIONBIO' };
const FCNTLS: Record<number, string> = { 0: 'F_DUPFD', 1: 'F_GETFD', 2: 'F_SETFD', 3: 'F_GETFL', 4: 'F_SETFL', 5: 'F_GETLK', 6: 'F_SETLK', 7: 'F_SETLKW', 1030: 'F_DUPFD_CLOEXEC' };
const RLIMITS = ['RLIMIT_CPU', 'RLIMIT_FSIZE', 'RLIMIT_DATA', 'RLIMIT_STACK', 'RLIMIT_CORE', 'RLIMIT_RSS', 'RLIMIT_NPROC', 'RLIMIT_NOFILE', 'RLIMIT_MEMLOCK', 'RLIMIT_AS'];

export const SIGNAL_NAMES = [
  '0', 'SIGHUP', 'SIGINT', 'SIGQUIT', 'SIGILL', 'SIGTRAP', 'SIGABRT', 'SIGBUS', 'SIGFPE', 'SIGKILL', 'SIGUSR1', 'SIGSEGV', 'SIGUSR2',
  'SIGPIPE', 'SIGALRM', 'SIGTERM', 'SIGSTKFLT', 'SIGCHLD', 'SIGCONT', 'SIGSTOP', 'SIGTSTP', 'SIGTTIN', 'SIGTTOU', 'SIGURG', 'SIGXCPU',
  'SIGXFSZ', 'SIGVTALRM', 'SIGPROF', 'SIGWINCH', 'SIGIO', 'SIGPWR', 'SIGSYS',
];

export function signalName(sig: number): string {
  return sig > 0 && sig < SIGNAL_NAMES.length ? SIGNAL_NAMES[sig] : sig >= 32 && sig <= 64 ? `SIGRT_${sig - 32}` : String(sig);
}

export function hex(n: number): string {
  return n < 0 ? `-0x${(-n).toString(16)}` : `0x${n.toString(16)}`;
}

function flags(v: number, table: FlagTable, zero = '0'): string {
  const parts: string[] = [];
  let rest = v >>> 0;
  for (const [bit, name] of table) {
    if ((rest & bit) >>> 0 === bit) {
      parts.push(name);
      rest = (rest & ~bit) >>> 0;
    }
  }
  if (rest) parts.push(hex(rest));
  return parts.length ? parts.join('|') : zero;
}

function named(v: number, names: Record<number, string> | readonly string[]): string {
  return (names as Record<number, string>)[v] ?? String(v);
}

/** strace's quoting: C escapes, octal for other non-printables, cut at max with "..." after the quote. */
export function quote(bytes: Uint8Array | null, max = 32, truncated = false): string {
  if (!bytes) return 'NULL';
  let s = '"';
  const n = Math.min(bytes.length, max);
  for (let i = 0; i < n; i++) {
    const c = bytes[i];
    if (c === 0x22) s += '\\"';
    else if (c === 0x5c) s += '\\\\';
    else if (c === 0x0a) s += '\\n';
    else if (c === 0x09) s += '\\t';
    else if (c === 0x0d) s += '\\r';
    else if (c === 0x0b) s += '\\v';
    else if (c === 0x0c) s += '\\f';
    else if (c >= 0x20 && c < 0x7f) s += String.fromCharCode(c);
    else {
      const next = i + 1 < n ? bytes[i + 1] : -1;
      s += '\\' + (next >= 0x30 && next <= 0x37 ? c.toString(8).padStart(3, '0') : c.toString(8));
    }
  }
  return s + '"' + (bytes.length > max || truncated ? '...' : '');
}

const ptr = (v: number) => (v === 0 ? 'NULL' : hex(v));

/** What the formatter needs from the process: guest memory and, for struct summaries, a hook. */
export interface TraceContext {
  as: AddressSpace;
  /** Extra rendering for struct arguments (stat, timespec, …), or undefined to print the pointer. */
  describe?(kind: string, addr: number, args: readonly number[], ret: number): string | undefined;
}

/** Render one argument of a syscall after it returned. */
export function formatArg(kind: string, i: number, args: readonly number[], ret: number, ctx: TraceContext): string {
  const v = args[i];
  const i32 = v | 0;
  switch (kind) {
    case 'd':
    case 'fd':
      return String(i32);
    case 'ld':
      return String(v);
    case 'u':
      return String(v < 0 ? v + 2 ** 64 : v);
    case 'x':
      return ptr(v);
    case 'off':
      return v === 0 ? '0' : hex(v);
    case 'dirfd':
      return i32 === -100 ? 'AT_FDCWD' : String(i32);
    case 'path':
    {
      const b = v === 0 ? null : ctx.as.peekCString(v, 4096);
      return b ? quote(b, 4096) : ptr(v);
    }
    case 'str': {
      const b = ctx.as.peekCString(v, 33);
      return b ? quote(b, 32) : ptr(v);
    }
    case 'wbuf':
      return quote(ctx.as.peek(v, Math.min(Math.max(args[i + 1], 0), 33)), 32, args[i + 1] > 33);
    case 'rbuf':
      return ret >= 0 ? quote(ctx.as.peek(v, Math.min(ret, 33)), 32, ret > 33) : ptr(v);
    case 'oflags': {
      const acc = ['O_RDONLY', 'O_WRONLY', 'O_RDWR', 'O_ACCMODE'][i32 & 3];
      const rest = flags(i32 & ~3, OPEN_FLAGS, '');
      return rest ? `${acc}|${rest}` : acc;
    }
    case 'mode':
    case 'cmode':
      return '0' + (i32 >>> 0).toString(8).padStart(3, '0');
    case 'prot':
      return flags(i32, PROT_FLAGS, 'PROT_NONE');
    case 'mflags': {
      const type = ['0', 'MAP_SHARED', 'MAP_PRIVATE', 'MAP_SHARED_VALIDATE'][i32 & 3];
      const rest = flags(i32 & ~3, MAP_FLAGS, '');
      return rest ? `${type}|${rest}` : type;
    }
    case 'fdflags':
      return flags(i32, OPEN_FLAGS);
    case 'atflags':
      return flags(i32, AT_FLAGS);
    case 'mremap':
      return flags(i32, MREMAP_FLAGS);
    case 'amode':
      return i32 === 0 ? 'F_OK' : flags(i32, ACCESS_MODES);
    case 'whence':
      return named(i32, WHENCE);
    case 'clock':
      return named(i32, CLOCKS);
    case 'sig':
      return signalName(i32);
    case 'sighow':
      return named(i32, SIG_HOW);
    case 'futexop': {
      const base = named(i32 & 0x7f, FUTEX_OPS);
      return base + (i32 & 128 ? '_PRIVATE' : '') + (i32 & 256 ? '|FUTEX_CLOCK_REALTIME' : '');
    }
    case 'arch':
      return named(i32, ARCH_PRCTL);
    case 'madv':
      return named(i32, MADVICE);
    case 'ioctl':
      return IOCTLS[i32] ?? hex(i32 >>> 0);
    case 'fcntl':
      return named(i32, FCNTLS);
    case 'rlimit':
      return named(i32, RLIMITS);
    case 'saflags':
      return flags(i32, SA_FLAGS);
    default:
      return ctx.describe?.(kind, v, args, ret) ?? ptr(v);
  }
}

/** The result column: decimal, hex for addresses, or the errno text. */
export function formatResult(ret: number, kind: string): string {
  if (ret < 0 && ret > -4096) return errnoText(-ret);
  if (kind === 'x') return hex(ret);
  if (kind === 'o') return '0' + ret.toString(8).padStart(3, '0');
  return String(ret);
}

/** One strace line: name(arg, …) = result. */
export function formatCall(name: string, argKinds: readonly string[], args: readonly number[], ret: number, retKind: string, ctx: TraceContext): string {
  // open's mode is only shown when O_CREAT or O_TMPFILE makes it meaningful, as strace does.
  const shown = argKinds
    .map((k, i) => (k === 'cmode' && !(args[i - 1] & 0x40) && (args[i - 1] & 0x410000) !== 0x410000 ? null : formatArg(k, i, args, ret, ctx)))
    .filter((s) => s !== null);
  return `${name}(${shown.join(', ')}) = ${formatResult(ret, retKind)}`;
}
