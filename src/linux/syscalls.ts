/**
 * The x86-64 system call table: number → name, strace argument formats, result format and
 * implementation. This is the one place a syscall is declared; the dispatcher
 * (LinuxProcess.syscall), --strace and the unknown-syscall report all read it.
 *
 * Argument formats are the kinds strace.ts renders ("fd", "path", "wbuf" = a buffer whose
 * length is the next argument, "rbuf" = a buffer filled by the call, its length the result,
 * "oflags", "prot", …); struct kinds ("stat", "ts", "sigact", …) are rendered by the process.
 */
import { FS_SYSCALLS } from './sys-fs.js';
import { MM_SYSCALLS } from './sys-mm.js';
import { MISC_SYSCALLS } from './sys-misc.js';
import { SI } from './signals.js';
import { E } from './errno.js';
import type { LinuxProcess } from './process.js';

/** A syscall implementation: arguments as JS numbers (signed 64-bit values); returns the result or throws Errno. */
export type SysImpl = (p: LinuxProcess, args: readonly number[]) => number;

export interface SyscallDef {
  nr: number;
  name: string;
  args: readonly string[];
  /** Result format: 'd' decimal, 'x' hex address, 'o' octal. */
  ret: string;
  impl: SysImpl;
}

const SIGNAL_SYSCALLS: Record<string, SysImpl> = {
  rt_sigaction: (p, a) => p.signals.rtSigaction(a[0] | 0, a[1], a[2], a[3]),
  rt_sigprocmask: (p, a) => p.signals.rtSigprocmask(a[0] | 0, a[1], a[2], a[3]),
  rt_sigreturn: (p) => p.signals.sigreturn(),
  rt_sigpending: (p, a) => p.signals.rtSigpending(a[0], a[1]),
  sigaltstack: (p, a) => p.signals.sigaltstack(a[0], a[1]),
  kill: (p, a) => p.signals.kill(a[0] | 0, a[1] | 0, SI.USER),
  tkill: (p, a) => p.signals.tgkill(p.pid, a[0] | 0, a[1] | 0),
  tgkill: (p, a) => p.signals.tgkill(a[0] | 0, a[1] | 0, a[2] | 0),
};

const IMPLS: Record<string, SysImpl> = { ...FS_SYSCALLS, ...MM_SYSCALLS, ...MISC_SYSCALLS, ...SIGNAL_SYSCALLS };

/** [number, name, argument formats, result format]. */
const DECLS: [number, string, string, string?][] = [
  [0, 'read', 'fd,rbuf,u'], [1, 'write', 'fd,wbuf,u'], [2, 'open', 'path,oflags,cmode'], [3, 'close', 'fd'],
  [4, 'stat', 'path,stat'], [5, 'fstat', 'fd,stat'], [6, 'lstat', 'path,stat'], [8, 'lseek', 'fd,ld,whence'],
  [9, 'mmap', 'x,u,prot,mflags,fd,off', 'x'], [10, 'mprotect', 'x,u,prot'], [11, 'munmap', 'x,u'], [12, 'brk', 'x', 'x'],
  [13, 'rt_sigaction', 'sig,sigact,sigact,u'], [14, 'rt_sigprocmask', 'sighow,sigset,sigset,u'], [15, 'rt_sigreturn', 'sigreturn'],
  [16, 'ioctl', 'fd,ioctl,x'], [17, 'pread64', 'fd,rbuf,u,ld'], [18, 'pwrite64', 'fd,wbuf,u,ld'], [19, 'readv', 'fd,x,d'],
  [20, 'writev', 'fd,iov,d'], [21, 'access', 'path,amode'], [22, 'pipe', 'pipefd'], [24, 'sched_yield', ''],
  [25, 'mremap', 'x,u,u,mremap,x', 'x'], [28, 'madvise', 'x,u,madv'], [32, 'dup', 'fd'], [33, 'dup2', 'fd,fd'],
  [35, 'nanosleep', 'ts,x'], [39, 'getpid', ''], [60, 'exit', 'd'], [62, 'kill', 'd,sig'], [63, 'uname', 'x'],
  [72, 'fcntl', 'fd,fcntl,d'], [74, 'fsync', 'fd'], [75, 'fdatasync', 'fd'], [76, 'truncate', 'path,ld'], [77, 'ftruncate', 'fd,ld'],
  [79, 'getcwd', 'rstr,u'], [80, 'chdir', 'path'], [81, 'fchdir', 'fd'], [82, 'rename', 'path,path'], [83, 'mkdir', 'path,mode'],
  [84, 'rmdir', 'path'], [85, 'creat', 'path,mode'], [87, 'unlink', 'path'], [89, 'readlink', 'path,rbuf,u'], [95, 'umask', 'mode', 'o'],
  [96, 'gettimeofday', 'x,x'], [97, 'getrlimit', 'rlimit,x'], [99, 'sysinfo', 'x'], [102, 'getuid', ''], [104, 'getgid', ''],
  [107, 'geteuid', ''], [108, 'getegid', ''], [110, 'getppid', ''], [111, 'getpgrp', ''], [121, 'getpgid', 'd'], [124, 'getsid', 'd'],
  [127, 'rt_sigpending', 'x,u'], [131, 'sigaltstack', 'x,x'], [158, 'arch_prctl', 'arch,x'], [160, 'setrlimit', 'rlimit,x'],
  [186, 'gettid', ''], [200, 'tkill', 'd,sig'], [201, 'time', 'x'], [202, 'futex', 'x,futexop,d,x'],
  [204, 'sched_getaffinity', 'd,u,x'], [217, 'getdents64', 'fd,x,u'], [218, 'set_tid_address', 'x'],
  [228, 'clock_gettime', 'clock,tsout'], [229, 'clock_getres', 'clock,tsout'], [230, 'clock_nanosleep', 'clock,d,ts,x'],
  [231, 'exit_group', 'd'], [234, 'tgkill', 'd,d,sig'], [257, 'openat', 'dirfd,path,oflags,cmode'], [258, 'mkdirat', 'dirfd,path,mode'],
  [262, 'newfstatat', 'dirfd,path,stat,atflags'], [263, 'unlinkat', 'dirfd,path,atflags'], [264, 'renameat', 'dirfd,path,dirfd,path'],
  [267, 'readlinkat', 'dirfd,path,rbuf,u'], [269, 'faccessat', 'dirfd,path,amode'], [273, 'set_robust_list', 'x,u'],
  [274, 'get_robust_list', 'd,x,x'], [292, 'dup3', 'fd,fd,fdflags'], [293, 'pipe2', 'pipefd,fdflags'], [295, 'preadv', 'fd,x,d,ld'],
  [296, 'pwritev', 'fd,iov,d,ld'], [302, 'prlimit64', 'd,rlimit,x,x'], [316, 'renameat2', 'dirfd,path,dirfd,path,d'],
  [318, 'getrandom', 'rbuf,u,d'], [332, 'statx', 'dirfd,path,atflags,x,x'], [334, 'rseq', 'x,u,d,x'],
  [439, 'faccessat2', 'dirfd,path,amode,atflags'],
];

/** Known calls we do not provide (no processes, sockets or waiting): -ENOSYS, traced by name. */
const UNSUPPORTED: [number, string][] = [
  [7, 'poll'], [23, 'select'], [41, 'socket'], [42, 'connect'], [56, 'clone'], [57, 'fork'], [58, 'vfork'], [59, 'execve'],
  [61, 'wait4'], [270, 'pselect6'], [271, 'ppoll'], [281, 'epoll_pwait'], [290, 'eventfd2'], [291, 'epoll_create1'],
  [322, 'execveat'], [324, 'membarrier'], [435, 'clone3'],
];

function enosys(): number {
  return -E.NOSYS;
}

export const SYSCALLS: (SyscallDef | undefined)[] = [];
for (const [nr, name] of UNSUPPORTED) SYSCALLS[nr] = { nr, name, args: ['x', 'x', 'x'], ret: 'd', impl: enosys };
for (const [nr, name, args, ret] of DECLS) {
  const impl = IMPLS[name];
  if (!impl) throw new Error(`syscall ${name} is declared but has no implementation`);
  SYSCALLS[nr] = { nr, name, args: args ? args.split(',') : [], ret: ret ?? 'd', impl };
}
