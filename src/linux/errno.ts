/**
 * Linux errno values (x86-64), their names and glibc's strerror texts, and the Errno exception
 * that syscall implementations throw to fail.
 *
 * Why an exception: a syscall touches guest memory and the host filesystem in many places,
 * and each can fail; throwing `new Errno(EFAULT)` from deep inside a helper and turning it
 * into -errno once, in the dispatcher, keeps every implementation a straight line. Host
 * errors from node:fs carry the same numbers (negated) in `err.errno` on Linux, so they pass
 * through unchanged. The texts are glibc's, because strace prints those.
 */

export const enum E {
  PERM = 1, NOENT = 2, SRCH = 3, INTR = 4, IO = 5, NXIO = 6, E2BIG = 7, NOEXEC = 8, BADF = 9, CHILD = 10,
  AGAIN = 11, NOMEM = 12, ACCES = 13, FAULT = 14, BUSY = 16, EXIST = 17, XDEV = 18, NODEV = 19,
  NOTDIR = 20, ISDIR = 21, INVAL = 22, NFILE = 23, MFILE = 24, NOTTY = 25, FBIG = 27, NOSPC = 28,
  SPIPE = 29, ROFS = 30, MLINK = 31, PIPE = 32, RANGE = 34, DEADLK = 35, NAMETOOLONG = 36, NOSYS = 38,
  NOTEMPTY = 39, LOOP = 40, NOTSUP = 95, TIMEDOUT = 110,
}

/** errno -> [name, glibc message]. */
const ERRNO_TEXT: Record<number, [string, string]> = {
  1: ['EPERM', 'Operation not permitted'],
  2: ['ENOENT', 'No such file or directory'],
  3: ['ESRCH', 'No such process'],
  4: ['EINTR', 'Interrupted system call'],
  5: ['EIO', 'Input/output error'],
  6: ['ENXIO', 'No such device or address'],
  7: ['E2BIG', 'Argument list too long'],
  8: ['ENOEXEC', 'Exec format error'],
  9: ['EBADF', 'Bad file descriptor'],
  10: ['ECHILD', 'No child processes'],
  11: ['EAGAIN', 'Resource temporarily unavailable'],
  12: ['ENOMEM', 'Cannot allocate memory'],
  13: ['EACCES', 'Permission denied'],
  14: ['EFAULT', 'Bad address'],
  16: ['EBUSY', 'Device or resource busy'],
  17: ['EEXIST', 'File exists'],
  18: ['EXDEV', 'Invalid cross-device link'],
  19: ['ENODEV', 'No such device'],
  20: ['ENOTDIR', 'Not a directory'],
  21: ['EISDIR', 'Is a directory'],
  22: ['EINVAL', 'Invalid argument'],
  23: ['ENFILE', 'Too many open files in system'],
  24: ['EMFILE', 'Too many open files'],
  25: ['ENOTTY', 'Inappropriate ioctl for device'],
  26: ['ETXTBSY', 'Text file busy'],
  27: ['EFBIG', 'File too large'],
  28: ['ENOSPC', 'No space left on device'],
  29: ['ESPIPE', 'Illegal seek'],
  30: ['EROFS', 'Read-only file system'],
  31: ['EMLINK', 'Too many links'],
  32: ['EPIPE', 'Broken pipe'],
  34: ['ERANGE', 'Numerical result out of range'],
  35: ['EDEADLK', 'Resource deadlock avoided'],
  36: ['ENAMETOOLONG', 'File name too long'],
  38: ['ENOSYS', 'Function not implemented'],
  39: ['ENOTEMPTY', 'Directory not empty'],
  40: ['ELOOP', 'Too many levels of symbolic links'],
  61: ['ENODATA', 'No data available'],
  75: ['EOVERFLOW', 'Value too large for defined data type'],
  95: ['EOPNOTSUPP', 'Operation not supported'],
  110: ['ETIMEDOUT', 'Connection timed out'],
};

/** glibc's strerror text, e.g. "No such file or directory". */
export function errnoMessage(errno: number): string {
  return ERRNO_TEXT[errno]?.[1] ?? `Unknown error ${errno}`;
}

/** strace's rendering of a failed result: "-1 ENOENT (No such file or directory)". */
export function errnoText(errno: number): string {
  const t = ERRNO_TEXT[errno];
  return t ? `-1 ${t[0]} (${t[1]})` : `-1 E${errno} (Unknown error ${errno})`;
}

/** Thrown by syscall implementations; the dispatcher returns -code to the guest. */
export class Errno {
  constructor(readonly code: number) {}
}

/** The -errno a host (node:fs) error stands for, or undefined when it is not an OS error. */
export function hostErrno(e: unknown): number | undefined {
  const n = (e as NodeJS.ErrnoException | null)?.errno;
  return typeof n === 'number' && n < 0 && n > -4096 ? n : undefined;
}
