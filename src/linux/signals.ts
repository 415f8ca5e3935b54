/**
 * POSIX signals for the single-threaded guest: dispositions (rt_sigaction), the blocked
 * mask, pending signals, the alternate stack, the x86-64 rt_sigframe the kernel builds on
 * delivery and tears down in rt_sigreturn, and how CPU exceptions become signals.
 *
 * The frame is byte-for-byte the kernel's (arch/x86/kernel/signal.c): return address
 * (sa_restorer), ucontext with the sigcontext registers in the kernel's order and a pointer to
 * a 512-byte FXSAVE image, then siginfo. Handlers such as JIT runtimes, GC write barriers and
 * crash reporters read and rewrite it, so rt_sigreturn restores whatever the handler left
 * there. Masks are bigints: signals are rare, and sixty-four bits read plainly that way.
 */
import type { Cpu } from '../cpu/cpu.js';
import { type CpuException, PfErr, Unimplemented, Vec } from '../cpu/exceptions.js';
import { Prot } from '../cpu/memory.js';
import { getRflags, setRflags } from '../cpu/flags.js';
import { F, Reg, S } from '../cpu/state.js';
import { E, Errno } from './errno.js';
import { ProcessExit } from './exit.js';
import { FXSAVE_SIZE, resetFpu, restoreFxsave, saveFxsave } from './fpstate.js';
import { hex, signalName } from './strace.js';
import type { AddressSpace } from './vm.js';

export const enum Sig {
  HUP = 1, INT = 2, QUIT = 3, ILL = 4, TRAP = 5, ABRT = 6, BUS = 7, FPE = 8, KILL = 9, USR1 = 10, SEGV = 11, USR2 = 12,
  PIPE = 13, ALRM = 14, TERM = 15, CHLD = 17, CONT = 18, STOP = 19, TSTP = 20, TTIN = 21, TTOU = 22, URG = 23, WINCH = 28,
}

export const SA_SIGINFO = 4;
export const SA_RESTORER = 0x04000000;
export const SA_ONSTACK = 0x08000000;
export const SA_NODEFER = 0x40000000;
export const SA_RESETHAND = 0x80000000;
const SIG_DFL = 0;
const SIG_IGN = 1;
const SS_ONSTACK = 1;
const SS_DISABLE = 2;
const SS_AUTODISARM = 0x80000000;
export const MINSIGSTKSZ = 2048;

/** si_code values. */
const SI_USER = 0;
const SI_KERNEL = 0x80;
const SI_TKILL = -6;
const SEGV_MAPERR = 1;
const SEGV_ACCERR = 2;
const ILL_ILLOPN = 2;
const FPE_INTDIV = 1;
const FPE_FLTDIV = 3;
const FPE_FLTOVF = 4;
const FPE_FLTUND = 5;
const FPE_FLTRES = 6;
const FPE_FLTINV = 7;
const BUS_ADRALN = 1;

/** Byte offsets inside the rt_sigframe (the frame starts with the return address). */
const enum Frame {
  UC_FLAGS = 8,
  UC_LINK = 16,
  UC_STACK = 24,
  MCONTEXT = 48,
  /** After the 16 general registers: rip, eflags, cs/gs/fs/ss, err, trapno, oldmask, cr2, fpstate. */
  RIP = MCONTEXT + 16 * 8,
  EFLAGS = RIP + 8,
  CSGSFSSS = RIP + 16,
  ERR = RIP + 24,
  TRAPNO = RIP + 32,
  OLDMASK = RIP + 40,
  CR2 = RIP + 48,
  FPSTATE = RIP + 56,
  SIGMASK = 304,
  SIGINFO = 312,
  SIZE = 440,
}

/** sigcontext's register order (r8 … r15, rdi, rsi, rbp, rbx, rdx, rax, rcx, rsp) as Reg numbers. */
const GREG_ORDER = [Reg.R8, Reg.R9, Reg.R10, Reg.R11, Reg.R12, Reg.R13, Reg.R14, Reg.R15, Reg.RDI, Reg.RSI, Reg.RBP, Reg.RBX, Reg.RDX, Reg.RAX, Reg.RCX, Reg.RSP];
/** EFLAGS bits a signal handler may change through the frame (the kernel's FIX_EFLAGS). */
const FIX_EFLAGS = 0x40000 | 0x10000 | F.OF | F.DF | F.TF | F.SF | F.ZF | F.AF | F.PF | F.CF;
const RED_ZONE = 128;
/** Largest frame: the red zone, FXSAVE area and its alignment, the frame and its alignment. */
export const SIGFRAME_MAX = RED_ZONE + FXSAVE_SIZE + 64 + Frame.SIZE + 16 + 8;

const bit = (sig: number) => 1n << BigInt(sig - 1);
const UNBLOCKABLE = bit(Sig.KILL) | bit(Sig.STOP);
const ALL = (1n << 64n) - 1n;

export interface SigAction {
  handler: number;
  flags: number;
  restorer: number;
  mask: bigint;
}

export interface SigInfo {
  signo: number;
  code: number;
  /** si_addr for faults. */
  addr?: number;
  /** si_pid/si_uid for kill. */
  pid?: number;
  uid?: number;
  /** Trap details for the sigcontext. */
  trapno?: number;
  err?: number;
  cr2?: number;
}

const enum Default {
  TERM,
  CORE,
  IGNORE,
  STOP,
}

function defaultAction(sig: number): Default {
  switch (sig) {
    case Sig.CHLD: case Sig.CONT: case Sig.URG: case Sig.WINCH:
      return Default.IGNORE;
    case Sig.STOP: case Sig.TSTP: case Sig.TTIN: case Sig.TTOU:
      return Default.STOP;
    case Sig.QUIT: case Sig.ILL: case Sig.TRAP: case Sig.ABRT: case Sig.BUS: case Sig.FPE: case Sig.SEGV: case 24: case 25: case 31:
      return Default.CORE;
  }
  return Default.TERM;
}

const SI_CODE_NAMES: Record<number, Record<number, string>> = {
  [Sig.SEGV]: { 1: 'SEGV_MAPERR', 2: 'SEGV_ACCERR' },
  [Sig.ILL]: { 2: 'ILL_ILLOPN' },
  [Sig.FPE]: { 1: 'FPE_INTDIV', 3: 'FPE_FLTDIV', 4: 'FPE_FLTOVF', 5: 'FPE_FLTUND', 6: 'FPE_FLTRES', 7: 'FPE_FLTINV' },
  [Sig.BUS]: { 1: 'BUS_ADRALN' },
};

/** strace's "--- SIGSEGV {…} ---" rendering of a siginfo. */
export function formatSigInfo(info: SigInfo): string {
  const name = signalName(info.signo);
  const generic: Record<number, string> = { 0: 'SI_USER', 0x80: 'SI_KERNEL', [-6]: 'SI_TKILL' };
  const code = SI_CODE_NAMES[info.signo]?.[info.code] ?? generic[info.code] ?? String(info.code);
  const rest = info.pid !== undefined ? `, si_pid=${info.pid}, si_uid=${info.uid}` : info.addr !== undefined ? `, si_addr=${info.addr ? hex(info.addr) : 'NULL'}` : '';
  return `--- ${name} {si_signo=${name}, si_code=${code}${rest}} ---`;
}

/** What signal delivery needs from the process. */
export interface SignalHost {
  cpu: Cpu;
  as: AddressSpace;
  pid: number;
  uid: number;
  trace(line: string): void;
  warn(line: string): void;
}

export class Signals {
  readonly actions: SigAction[] = Array.from({ length: 65 }, () => ({ handler: SIG_DFL, flags: 0, restorer: 0, mask: 0n }));
  blocked = 0n;
  pending = 0n;
  private readonly pendingInfo = new Map<number, SigInfo>();
  altStack = { sp: 0, size: 0, flags: SS_DISABLE };

  constructor(private readonly host: SignalHost) {}

  /** Queue a signal for delivery when the current syscall returns (kill to self, SIGPIPE). */
  raise(sig: number, info?: SigInfo): void {
    if (this.pending & bit(sig)) return; // standard signals do not queue
    this.pending |= bit(sig);
    this.pendingInfo.set(sig, info ?? { signo: sig, code: SI_KERNEL });
  }

  /** Deliver every pending, unblocked signal (handlers' frames stack up as the kernel's do). */
  deliverPending(): void {
    for (;;) {
      const ready = this.pending & ~this.blocked;
      if (ready === 0n) return;
      let sig = 1;
      while (!(ready & bit(sig))) sig++;
      this.pending &= ~bit(sig);
      const info = this.pendingInfo.get(sig)!;
      this.pendingInfo.delete(sig);
      this.deliver(info);
    }
  }

  /** Deliver a synchronous fault now: blocked or ignored faults kill, as force_sig does. */
  forceFault(info: SigInfo): void {
    const act = this.actions[info.signo];
    if (this.blocked & bit(info.signo) || act.handler === SIG_IGN) {
      act.handler = SIG_DFL;
      this.blocked &= ~bit(info.signo);
    }
    this.deliver(info);
  }

  /** A CPU exception: page in lazily populated memory, or turn the fault into a signal. */
  onException(e: CpuException): void {
    const s = this.host.cpu.s;
    const rip = this.host.cpu.st.rip;
    const base = { trapno: e.vector, err: e.errorCode < 0 ? 0 : e.errorCode };
    switch (e.vector) {
      case Vec.PF: {
        const access = e.errorCode & PfErr.I ? Prot.EXEC : e.errorCode & PfErr.W ? Prot.WRITE : Prot.READ;
        if (!(e.errorCode & PfErr.P) && this.host.as.populate(e.address, access)) return;
        const code = this.host.as.find(e.address) ? SEGV_ACCERR : SEGV_MAPERR;
        return this.forceFault({ signo: Sig.SEGV, code, addr: e.address, ...base, cr2: e.address });
      }
      case Vec.UD:
        if (e instanceof Unimplemented && (this.actions[Sig.ILL].handler === SIG_DFL || this.blocked & bit(Sig.ILL))) {
          this.host.warn(`svmjit: ${e.what}`);
          this.host.trace(formatSigInfo({ signo: Sig.ILL, code: ILL_ILLOPN, addr: rip }));
          this.die(Sig.ILL);
        }
        return this.forceFault({ signo: Sig.ILL, code: ILL_ILLOPN, addr: rip, ...base });
      case Vec.DE:
        return this.forceFault({ signo: Sig.FPE, code: FPE_INTDIV, addr: rip, ...base });
      case Vec.MF:
        return this.forceFault({ signo: Sig.FPE, code: fpeCode(s[S.FPU_SW] & ~(s[S.FPU_CW] & 0x3f)), addr: rip, ...base });
      case Vec.XM:
        return this.forceFault({ signo: Sig.FPE, code: fpeCode(s[S.MXCSR] & ~((s[S.MXCSR] >> 7) & 0x3f)), addr: rip, ...base });
      case Vec.BP:
      case Vec.DB:
        return this.forceFault({ signo: Sig.TRAP, code: SI_KERNEL, ...base });
      case Vec.AC:
        return this.forceFault({ signo: Sig.BUS, code: BUS_ADRALN, addr: rip, ...base });
      case Vec.SS:
        return this.forceFault({ signo: Sig.BUS, code: SI_KERNEL, addr: 0, ...base });
      default: // #GP, #NP, #TS and friends: the kernel's SIGSEGV with SI_KERNEL and no address
        return this.forceFault({ signo: Sig.SEGV, code: SI_KERNEL, addr: 0, ...base });
    }
  }

  private die(sig: number): never {
    this.host.trace(`+++ killed by ${signalName(sig)} +++`);
    throw new ProcessExit(128 + sig, sig);
  }

  private deliver(info: SigInfo): void {
    const sig = info.signo;
    const act = this.actions[sig];
    this.host.trace(formatSigInfo(info));
    if (act.handler === SIG_IGN && sig !== Sig.KILL && sig !== Sig.STOP) return;
    if (act.handler === SIG_DFL || sig === Sig.KILL || sig === Sig.STOP) {
      const d = defaultAction(sig);
      if (d === Default.IGNORE || d === Default.STOP) return; // a stopped process would simply be continued later
      this.die(sig);
    }
    if (!(act.flags & SA_RESTORER)) {
      // x86-64 has no kernel-provided trampoline: delivery fails and the process gets SIGSEGV.
      if (sig === Sig.SEGV) this.die(Sig.SEGV);
      return this.forceFault({ signo: Sig.SEGV, code: SI_KERNEL, addr: 0 });
    }
    try {
      this.buildFrame(info, act);
    } catch (e) {
      if (!(e instanceof Errno)) throw e;
      this.die(Sig.SEGV); // no room for the frame: the kernel's force_sigsegv
    }
    if (act.flags & SA_RESETHAND) {
      act.handler = SIG_DFL;
      act.flags &= ~SA_SIGINFO;
    }
  }

  private onAltStack(sp: number): boolean {
    const a = this.altStack;
    return !(a.flags & SS_DISABLE) && sp > a.sp && sp <= a.sp + a.size;
  }

  /** Push the rt_sigframe and enter the handler. */
  private buildFrame(info: SigInfo, act: SigAction): void {
    const { cpu, as } = this.host;
    const st = cpu.st;
    const rsp = st.reg(Reg.RSP);
    let sp = rsp - RED_ZONE;
    const alt = this.altStack;
    const stackFlags = this.onAltStack(rsp) ? SS_ONSTACK : alt.flags & SS_DISABLE ? SS_DISABLE : 0;
    if (act.flags & SA_ONSTACK && !(alt.flags & SS_DISABLE) && !this.onAltStack(rsp)) sp = alt.sp + alt.size;
    const fpstate = Math.floor((sp - FXSAVE_SIZE) / 64) * 64;
    const frame = Math.floor((fpstate - Frame.SIZE) / 16) * 16 - 8;

    const b = Buffer.alloc(Frame.SIZE);
    const u64 = (off: number, v: number) => {
      b.writeInt32LE(v | 0, off);
      b.writeInt32LE(Math.floor(v / 4294967296) | 0, off + 4);
    };
    const s = cpu.s;
    u64(0, act.restorer);
    u64(Frame.UC_FLAGS, 0x2 | 0x4); // UC_SIGCONTEXT_SS | UC_STRICT_RESTORE_SS
    u64(Frame.UC_LINK, 0);
    u64(Frame.UC_STACK, alt.sp);
    b.writeInt32LE(stackFlags, Frame.UC_STACK + 8);
    u64(Frame.UC_STACK + 16, alt.size);
    GREG_ORDER.forEach((r, i) => {
      b.writeInt32LE(s[2 * r], Frame.MCONTEXT + 8 * i);
      b.writeInt32LE(s[2 * r + 1], Frame.MCONTEXT + 8 * i + 4);
    });
    b.writeInt32LE(s[S.RIP_LO], Frame.RIP);
    b.writeInt32LE(s[S.RIP_HI], Frame.RIP + 4);
    u64(Frame.EFLAGS, getRflags(cpu) >>> 0);
    b.writeUInt16LE(0x33, Frame.CSGSFSSS);
    b.writeUInt16LE(0x2b, Frame.CSGSFSSS + 6);
    u64(Frame.ERR, info.err ?? 0);
    u64(Frame.TRAPNO, info.trapno ?? 0);
    u64(Frame.OLDMASK, Number(this.blocked & 0xffffffffn));
    u64(Frame.CR2, info.cr2 ?? 0);
    u64(Frame.FPSTATE, fpstate);
    b.writeBigUInt64LE(this.blocked, Frame.SIGMASK);
    b.writeInt32LE(info.signo, Frame.SIGINFO);
    b.writeInt32LE(info.code, Frame.SIGINFO + 8);
    if (info.pid !== undefined) {
      b.writeInt32LE(info.pid, Frame.SIGINFO + 16);
      b.writeUInt32LE(info.uid ?? 0, Frame.SIGINFO + 20);
    } else u64(Frame.SIGINFO + 16, info.addr ?? 0);

    as.touch(frame, sp - frame, Prot.WRITE);
    as.write(fpstate, saveFxsave(cpu));
    as.write(frame, b);

    this.blocked |= act.mask | (act.flags & SA_NODEFER ? 0n : bit(info.signo));
    this.blocked &= ~UNBLOCKABLE;
    st.rip = act.handler;
    st.setReg(Reg.RSP, frame);
    st.setReg(Reg.RDI, info.signo);
    st.setReg(Reg.RSI, frame + Frame.SIGINFO);
    st.setReg(Reg.RDX, frame + Frame.UC_FLAGS);
    st.setReg(Reg.RAX, 0);
    setRflags(cpu, getRflags(cpu) & ~(F.DF | F.TF | 0x10000));
    resetFpu(cpu);
  }

  /** rt_sigreturn: restore everything from the frame at RSP-8; returns the restored RAX. */
  sigreturn(): number {
    const { cpu, as } = this.host;
    const st = cpu.st;
    const s = cpu.s;
    const frame = st.reg(Reg.RSP) - 8;
    let b: Uint8Array;
    try {
      b = as.read(frame, Frame.SIZE);
    } catch (e) {
      if (!(e instanceof Errno)) throw e;
      this.die(Sig.SEGV);
    }
    const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
    const u64 = (off: number) => dv.getInt32(off + 4, true) * 4294967296 + dv.getUint32(off, true);
    const fp = u64(Frame.FPSTATE);
    if (fp) {
      try {
        restoreFxsave(cpu, as.read(fp, FXSAVE_SIZE));
      } catch (e) {
        if (!(e instanceof Errno)) throw e;
        this.die(Sig.SEGV);
      }
    } else resetFpu(cpu);
    GREG_ORDER.forEach((r, i) => {
      s[2 * r] = dv.getInt32(Frame.MCONTEXT + 8 * i, true);
      s[2 * r + 1] = dv.getInt32(Frame.MCONTEXT + 8 * i + 4, true);
    });
    s[S.RIP_LO] = dv.getInt32(Frame.RIP, true);
    s[S.RIP_HI] = dv.getInt32(Frame.RIP + 4, true);
    setRflags(cpu, (getRflags(cpu) & ~FIX_EFLAGS) | (dv.getInt32(Frame.EFLAGS, true) & FIX_EFLAGS));
    this.blocked = dv.getBigUint64(Frame.SIGMASK, true) & ~UNBLOCKABLE;
    // restore_altstack: a handler may have changed uc_stack; invalid settings are ignored.
    try {
      this.setAltStack(u64(Frame.UC_STACK), dv.getInt32(Frame.UC_STACK + 8, true), u64(Frame.UC_STACK + 16));
    } catch (e) {
      if (!(e instanceof Errno)) throw e;
    }
    return st.reg(Reg.RAX);
  }

  private setAltStack(sp: number, flags: number, size: number): void {
    if (this.onAltStack(this.host.cpu.st.reg(Reg.RSP))) throw new Errno(E.PERM);
    const mode = flags & ~SS_AUTODISARM;
    if (mode !== 0 && mode !== SS_DISABLE && mode !== SS_ONSTACK) throw new Errno(E.INVAL);
    if (mode === SS_DISABLE) {
      this.altStack = { sp: 0, size: 0, flags: SS_DISABLE };
      return;
    }
    if (size < MINSIGSTKSZ) throw new Errno(E.NOMEM);
    this.altStack = { sp, size, flags: flags & SS_AUTODISARM };
  }

  // ---- system calls ----

  rtSigaction(sig: number, actAddr: number, oldAddr: number, setsize: number): number {
    if (setsize !== 8 || sig < 1 || sig > 64) throw new Errno(E.INVAL);
    const as = this.host.as;
    let next: SigAction | null = null;
    if (actAddr) {
      if (sig === Sig.KILL || sig === Sig.STOP) throw new Errno(E.INVAL);
      const raw = as.read(actAddr, 32);
      const dv = new DataView(raw.buffer, raw.byteOffset, 32);
      const u64 = (off: number) => dv.getUint32(off + 4, true) * 4294967296 + dv.getUint32(off, true);
      next = { handler: u64(0), flags: dv.getUint32(8, true), restorer: u64(16), mask: dv.getBigUint64(24, true) & ~UNBLOCKABLE };
    }
    if (oldAddr) {
      const old = this.actions[sig];
      const out = Buffer.alloc(32);
      out.writeBigUInt64LE(BigInt(old.handler), 0);
      out.writeBigUInt64LE(BigInt(old.flags >>> 0), 8);
      out.writeBigUInt64LE(BigInt(old.restorer), 16);
      out.writeBigUInt64LE(old.mask, 24);
      as.write(oldAddr, out);
    }
    if (next) {
      this.actions[sig] = next;
      // Setting SIG_IGN (or SIG_DFL for a default-ignored signal) discards a pending one.
      if (next.handler === SIG_IGN || (next.handler === SIG_DFL && defaultAction(sig) === Default.IGNORE)) {
        this.pending &= ~bit(sig);
        this.pendingInfo.delete(sig);
      }
    }
    return 0;
  }

  rtSigprocmask(how: number, setAddr: number, oldAddr: number, setsize: number): number {
    if (setsize !== 8) throw new Errno(E.INVAL);
    const as = this.host.as;
    let set: bigint | null = null;
    if (setAddr) {
      if (how < 0 || how > 2) throw new Errno(E.INVAL);
      const raw = as.read(setAddr, 8);
      set = new DataView(raw.buffer, raw.byteOffset, 8).getBigUint64(0, true);
    }
    if (oldAddr) {
      const out = Buffer.alloc(8);
      out.writeBigUInt64LE(this.blocked);
      as.write(oldAddr, out);
    }
    if (set !== null) {
      if (how === 0) this.blocked |= set;
      else if (how === 1) this.blocked &= ~set;
      else this.blocked = set;
      this.blocked &= ALL & ~UNBLOCKABLE;
    }
    return 0;
  }

  sigaltstack(ssAddr: number, oldAddr: number): number {
    const as = this.host.as;
    let next: [number, number, number] | null = null;
    if (ssAddr) {
      const raw = as.read(ssAddr, 24);
      const dv = new DataView(raw.buffer, raw.byteOffset, 24);
      next = [dv.getUint32(4, true) * 4294967296 + dv.getUint32(0, true), dv.getInt32(8, true), dv.getUint32(20, true) * 4294967296 + dv.getUint32(16, true)];
    }
    if (oldAddr) {
      const a = this.altStack;
      const out = Buffer.alloc(24);
      out.writeBigUInt64LE(BigInt(a.sp), 0);
      out.writeInt32LE(this.onAltStack(this.host.cpu.st.reg(Reg.RSP)) ? SS_ONSTACK : a.flags, 8);
      out.writeBigUInt64LE(BigInt(a.size), 16);
      as.write(oldAddr, out);
    }
    if (next) this.setAltStack(...next);
    return 0;
  }

  rtSigpending(addr: number, setsize: number): number {
    if (setsize > 8) throw new Errno(E.INVAL);
    const out = Buffer.alloc(8);
    out.writeBigUInt64LE(this.pending & this.blocked);
    this.host.as.write(addr, out.subarray(0, setsize));
    return 0;
  }

  /** kill/tgkill/tkill aimed at this process. */
  kill(pid: number, sig: number, code: number): number {
    if (sig < 0 || sig > 64) throw new Errno(E.INVAL);
    if (pid !== this.host.pid && pid !== 0 && pid !== -1 && pid !== -this.host.pid) throw new Errno(E.SRCH);
    if (sig === 0) return 0;
    this.raise(sig, { signo: sig, code, pid: this.host.pid, uid: this.host.uid });
    return 0;
  }

  tgkill(tgid: number, tid: number, sig: number): number {
    if (tgid <= 0 || tid <= 0) throw new Errno(E.INVAL);
    if (tgid !== this.host.pid || tid !== this.host.pid) throw new Errno(E.SRCH);
    return this.kill(tid, sig, SI_TKILL);
  }

  /** sigset_t for strace: [USR1 SEGV]. */
  static formatSet(set: bigint): string {
    const names: string[] = [];
    for (let sig = 1; sig <= 64; sig++) if (set & bit(sig)) names.push(signalName(sig).replace(/^SIG/, ''));
    return `[${names.join(' ')}]`;
  }
}

export const SI = { USER: SI_USER, TKILL: SI_TKILL };

/** si_code for a floating-point exception from the unmasked exception flags. */
function fpeCode(flags: number): number {
  if (flags & 1) return FPE_FLTINV;
  if (flags & 4) return FPE_FLTDIV;
  if (flags & 8) return FPE_FLTOVF;
  if (flags & 0x12) return FPE_FLTUND;
  if (flags & 0x20) return FPE_FLTRES;
  return 0;
}
