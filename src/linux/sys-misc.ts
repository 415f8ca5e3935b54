/**
 * Process, time and identity system calls: exit, arch_prctl (FS/GS bases), the thread
 * bookkeeping glibc does at start-up, resource limits, randomness, clocks and sleeping,
 * uname, ids, CPU affinity and futex.
 *
 * The process is single-threaded, so futex is reduced to its observable single-thread
 * behaviour: a wake finds nobody, a wait on a changed value fails at once, and a wait that
 * nobody could ever end either times out (sleeping for the timeout) or ends the run with a
 * clear message instead of hanging.
 */
import { randomFillSync } from 'node:crypto';
import os from 'node:os';
import { S } from '../cpu/state.js';
import { E, Errno } from './errno.js';
import { ProcessExit } from './exit.js';
import { sleepMs } from './files.js';
import type { SysImpl } from './syscalls.js';
import type { LinuxProcess } from './process.js';

const ARCH_SET_GS = 0x1001;
const ARCH_SET_FS = 0x1002;
const ARCH_GET_FS = 0x1003;
const ARCH_GET_GS = 0x1004;
const RLIM_INFINITY = -1; // all ones when stored as u64
const NSEC = 1e9;
const FUTEX_WAIT = 0;
const FUTEX_WAKE = 1;
const FUTEX_REQUEUE = 3;
const FUTEX_CMP_REQUEUE = 4;
const FUTEX_WAKE_OP = 5;
const FUTEX_WAIT_BITSET = 9;
const FUTEX_WAKE_BITSET = 10;
const TIMER_ABSTIME = 1;

const hrStart = process.hrtime.bigint();
const cpuStart = process.cpuUsage();

/** A clock's current value in nanoseconds (JS number: µs-exact for wall time, ns for the others). */
function clockNs(clock: number): number {
  switch (clock) {
    case 0: // CLOCK_REALTIME
    case 5: // CLOCK_REALTIME_COARSE
      return (performance.timeOrigin + performance.now()) * 1e6;
    case 1: // CLOCK_MONOTONIC
    case 4: // CLOCK_MONOTONIC_RAW
    case 6: // CLOCK_MONOTONIC_COARSE
    case 7: // CLOCK_BOOTTIME
      return Number(process.hrtime.bigint());
    case 2: // CLOCK_PROCESS_CPUTIME_ID
    case 3: {
      const u = process.cpuUsage(cpuStart);
      return (u.user + u.system) * 1000;
    }
  }
  throw new Errno(E.INVAL);
}

function writeTimespec(p: LinuxProcess, addr: number, ns: number): void {
  const sec = Math.floor(ns / NSEC);
  p.as.writeU64(addr, sec);
  p.as.writeU64(addr + 8, Math.floor(ns - sec * NSEC));
}

/** A struct timespec as nanoseconds; EINVAL for an out-of-range tv_nsec. */
export function readTimespec(p: LinuxProcess, addr: number): number {
  const sec = p.as.readI64(addr);
  const nsec = p.as.readI64(addr + 8);
  if (sec < 0 || nsec < 0 || nsec >= NSEC) throw new Errno(E.INVAL);
  return sec * NSEC + nsec;
}

function sleepNs(ns: number): void {
  // Atomics.wait takes milliseconds; long sleeps are split so the argument stays sane.
  for (let left = ns / 1e6; left > 0; left -= 1e9) sleepMs(Math.min(left, 1e9));
}

function clockNanosleep(p: LinuxProcess, clock: number, flags: number, req: number, rem: number): number {
  clockNs(clock);
  let ns = readTimespec(p, req);
  if (flags & TIMER_ABSTIME) ns -= clockNs(clock);
  if (ns > 0) sleepNs(ns);
  if (rem && !(flags & TIMER_ABSTIME)) p.as.touch(rem, 16, 2);
  return 0;
}

const rlimits = new Map<number, [number, number]>([
  [3, [8 * 1024 * 1024, RLIM_INFINITY]], // RLIMIT_STACK
  [7, [1024, 1024]], // RLIMIT_NOFILE (the fd table's size)
  [4, [0, RLIM_INFINITY]], // RLIMIT_CORE
]);

function prlimit(p: LinuxProcess, pid: number, resource: number, newAddr: number, oldAddr: number): number {
  if (pid !== 0 && pid !== p.pid) throw new Errno(E.SRCH);
  if (resource < 0 || resource > 15) throw new Errno(E.INVAL);
  const cur = rlimits.get(resource) ?? [RLIM_INFINITY, RLIM_INFINITY];
  let next: [number, number] | null = null;
  if (newAddr) {
    next = [p.as.readU64(newAddr), p.as.readU64(newAddr + 8)];
    const finite = (v: number) => (v >= 2 ** 63 ? Infinity : v);
    if (finite(next[0]) > finite(next[1])) throw new Errno(E.INVAL);
  }
  if (oldAddr) {
    p.as.writeU64(oldAddr, cur[0]);
    p.as.writeU64(oldAddr + 8, cur[1]);
  }
  if (next) rlimits.set(resource, next);
  return 0;
}

function uname(p: LinuxProcess, addr: number): number {
  const fields = ['Linux', os.hostname(), '6.1.0', '#1 SMP PREEMPT_DYNAMIC svmjit', 'x86_64', '(none)'];
  const buf = Buffer.alloc(65 * 6);
  fields.forEach((f, i) => buf.write(f.slice(0, 64), 65 * i, 'utf8'));
  p.as.write(addr, buf);
  return 0;
}

function futex(p: LinuxProcess, uaddr: number, op: number, val: number, timeout: number): number {
  const cmd = op & 0x7f;
  switch (cmd) {
    case FUTEX_WAIT:
    case FUTEX_WAIT_BITSET: {
      if (uaddr % 4) throw new Errno(E.INVAL);
      if (p.as.readI32(uaddr) !== (val | 0)) throw new Errno(E.AGAIN);
      if (!timeout) p.fatal(`futex wait on 0x${uaddr.toString(16)} that no other thread could ever wake: deadlock`);
      let ns = readTimespec(p, timeout);
      // FUTEX_WAIT takes a relative timeout, FUTEX_WAIT_BITSET an absolute one.
      if (cmd === FUTEX_WAIT_BITSET) ns -= clockNs(op & 256 ? 0 : 1);
      if (ns > 0) sleepNs(ns);
      throw new Errno(E.TIMEDOUT);
    }
    case FUTEX_WAKE:
    case FUTEX_WAKE_BITSET:
    case FUTEX_REQUEUE:
      return 0;
    case FUTEX_CMP_REQUEUE:
      throw new Errno(E.AGAIN);
    case FUTEX_WAKE_OP:
      return 0;
  }
  throw new Errno(E.NOSYS);
}

function archPrctl(p: LinuxProcess, code: number, addr: number): number {
  const s = p.cpu.s;
  switch (code) {
    case ARCH_SET_FS:
    case ARCH_SET_GS: {
      if (addr < 0 || addr >= 0x800000000000) throw new Errno(E.PERM);
      const i = code === ARCH_SET_FS ? S.FS_BASE_LO : S.GS_BASE_LO;
      s[i] = addr | 0;
      s[i + 1] = Math.floor(addr / 4294967296) | 0;
      return 0;
    }
    case ARCH_GET_FS:
    case ARCH_GET_GS: {
      const i = code === ARCH_GET_FS ? S.FS_BASE_LO : S.GS_BASE_LO;
      p.as.writeU64(addr, s[i + 1] * 4294967296 + (s[i] >>> 0));
      return 0;
    }
  }
  throw new Errno(E.INVAL);
}

function exit(p: LinuxProcess, status: number): never {
  throw new ProcessExit(status & 255);
}

export const MISC_SYSCALLS: Record<string, SysImpl> = {
  exit: (p, a) => exit(p, a[0] | 0),
  exit_group: (p, a) => exit(p, a[0] | 0),
  arch_prctl: (p, a) => archPrctl(p, a[0] | 0, a[1]),
  set_tid_address: (p) => p.pid,
  set_robust_list: (p, a) => {
    if (a[1] !== 24) throw new Errno(E.INVAL);
    return 0;
  },
  get_robust_list: () => {
    throw new Errno(E.NOSYS);
  },
  rseq: () => {
    throw new Errno(E.NOSYS);
  },
  prlimit64: (p, a) => prlimit(p, a[0] | 0, a[1] | 0, a[2], a[3]),
  getrlimit: (p, a) => prlimit(p, 0, a[0] | 0, 0, a[1]),
  setrlimit: (p, a) => prlimit(p, 0, a[0] | 0, a[1], 0),
  getrandom: (p, a) => {
    if ((a[2] | 0) & ~7) throw new Errno(E.INVAL);
    const n = Math.max(0, Math.min(a[1], 33554431));
    const buf = new Uint8Array(n);
    randomFillSync(buf);
    p.as.write(a[0], buf);
    return n;
  },
  clock_gettime: (p, a) => (writeTimespec(p, a[1], clockNs(a[0] | 0)), 0),
  clock_getres: (p, a) => {
    const clock = a[0] | 0;
    clockNs(clock);
    if (a[1]) writeTimespec(p, a[1], clock === 5 || clock === 6 ? 4e6 : 1);
    return 0;
  },
  gettimeofday: (p, a) => {
    if (a[0]) {
      const us = Math.floor(clockNs(0) / 1000);
      p.as.writeU64(a[0], Math.floor(us / 1e6));
      p.as.writeU64(a[0] + 8, us % 1e6);
    }
    if (a[1]) p.as.write(a[1], new Uint8Array(8));
    return 0;
  },
  time: (p, a) => {
    const t = Math.floor(clockNs(0) / NSEC);
    if (a[0]) p.as.writeU64(a[0], t);
    return t;
  },
  nanosleep: (p, a) => clockNanosleep(p, 1, 0, a[0], a[1]),
  clock_nanosleep: (p, a) => clockNanosleep(p, a[0] | 0, a[1] | 0, a[2], a[3]),
  uname: (p, a) => uname(p, a[0]),
  getpid: (p) => p.pid,
  gettid: (p) => p.pid,
  getppid: () => process.ppid,
  getuid: (p) => p.uid,
  geteuid: (p) => p.uid,
  getgid: (p) => p.gid,
  getegid: (p) => p.gid,
  getpgrp: (p) => p.pid,
  getpgid: (p) => p.pid,
  getsid: (p) => p.pid,
  sched_getaffinity: (p, a) => {
    const len = a[1];
    if (len < 8 || len % 8) throw new Errno(E.INVAL);
    const mask = new Uint8Array(8);
    mask[0] = 1;
    p.as.write(a[2], mask);
    return 8;
  },
  sched_yield: () => 0,
  futex: (p, a) => futex(p, a[0], a[1] | 0, a[2] | 0, a[3]),
  sysinfo: (p, a) => {
    const info = Buffer.alloc(112);
    info.writeBigInt64LE(BigInt(Math.floor(os.uptime())), 0);
    info.writeBigUInt64LE(BigInt(p.as.mem.physPages * 4096), 32);
    info.writeBigUInt64LE(BigInt((p.as.mem.physPages - p.as.mem.pagesInUse) * 4096), 40);
    info.writeUInt16LE(1, 80);
    info.writeUInt32LE(1, 104);
    p.as.write(a[0], info);
    return 0;
  },
};

/** Nanoseconds since the emulator started (for rdtsc). */
export function monotonicNs(): bigint {
  return process.hrtime.bigint() - hrStart;
}
