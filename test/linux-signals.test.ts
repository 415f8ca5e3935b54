/**
 * Signals: the x86-64 rt_sigframe built on delivery (checked field by field at the kernel's
 * offsets), the rt_sigreturn round trip restoring every register including x87/SSE state,
 * CPU exceptions mapped to signals as Linux maps them, default actions and exit statuses,
 * masks, the alternate stack and the flags that change delivery.
 */
import { describe, expect, test } from 'vitest';
import { CpuException, PfErr, Unimplemented, Vec } from '../src/cpu/exceptions.js';
import { getRflags, setRflags } from '../src/cpu/flags.js';
import { F, Reg, S } from '../src/cpu/state.js';
import { ProcessExit } from '../src/linux/process.js';
import { harness, type Harness } from './helpers/linux-harness.js';

const SIGILL = 4, SIGTRAP = 5, SIGABRT = 6, SIGFPE = 8, SIGUSR1 = 10, SIGSEGV = 11, SIGUSR2 = 12, SIGCHLD = 17;
const SA_SIGINFO = 4, SA_RESTORER = 0x04000000, SA_ONSTACK = 0x08000000, SA_NODEFER = 0x40000000, SA_RESETHAND = 0x80000000;
const HANDLER = 0x500000, RESTORER = 0x500100;
const MCTX = 48; // uc_mcontext inside the frame
const GREG_ORDER = [Reg.R8, Reg.R9, Reg.R10, Reg.R11, Reg.R12, Reg.R13, Reg.R14, Reg.R15, Reg.RDI, Reg.RSI, Reg.RBP, Reg.RBX, Reg.RDX, Reg.RAX, Reg.RCX, Reg.RSP];

/** A process with a mapped stack and a handler for sig. */
function setup(sig: number, flags = SA_SIGINFO | SA_RESTORER, mask = 0n): { h: Harness; stackTop: number } {
  const h = harness();
  const stack = h.scratch(1 << 16);
  const act = h.scratch(4096);
  h.proc.as.writeU64(act, HANDLER);
  h.proc.as.writeU64(act + 8, flags >>> 0);
  h.proc.as.writeU64(act + 16, RESTORER);
  h.proc.as.writeU64(act + 24, Number(mask));
  expect(h.sys(13, sig, act, 0, 8)).toBe(0);
  return { h, stackTop: stack + (1 << 16) };
}

/** Give every register a distinctive value. */
function scramble(h: Harness, rsp: number): void {
  const st = h.cpu.st;
  for (let r = 0; r < 16; r++) st.setReg(r, (r + 1) * 0x10203 + 0x7f0000000000 * (r & 1));
  st.setReg(Reg.RSP, rsp);
  st.rip = 0x401234;
  setRflags(h.cpu, F.CF | F.ZF | F.DF | F.IF | F.OF);
  for (let i = 0; i < 64; i++) h.cpu.s[S.XMM + i] = Math.imul(i + 1, 0x9e3779b9);
  h.cpu.s[S.MXCSR] = 0x1f80 | 0x40 | 0x1; // DAZ and a sticky invalid flag
  h.cpu.s[S.FPU_CW] = 0x27f;
  h.cpu.s[S.FPU_SW] = (5 << 11) | 0x20;
  h.cpu.s[S.FPU_TAG] = 0xe0;
  for (let i = 0; i < 32; i++) h.cpu.s[S.FPR + i] = (i & 3) === 3 ? 0 : (i & 3) === 2 ? 0x4000 + i : i * 0x1234567;
}

function snapshot(h: Harness) {
  const s = h.cpu.s;
  return { regs: Array.from({ length: 16 }, (_, r) => h.cpu.st.reg(r)), rip: h.cpu.st.rip, flags: getRflags(h.cpu), rest: Array.from(s.slice(S.XMM, S.FPR + 32)), fpu: [s[S.MXCSR], s[S.FPU_CW], s[S.FPU_SW], s[S.FPU_TAG]] };
}

describe('delivery and rt_sigreturn', () => {
  test('kill to self: the frame, handler entry, and a full round trip', () => {
    const { h, stackTop } = setup(SIGUSR1, SA_SIGINFO | SA_RESTORER, 1n << BigInt(SIGUSR2 - 1));
    const rsp = stackTop - 0x1008;
    scramble(h, rsp);
    h.cpu.st.setReg(Reg.RAX, 62);
    h.cpu.st.setReg(Reg.RDI, process.pid);
    h.cpu.st.setReg(Reg.RSI, SIGUSR1);
    h.proc.syscall();
    expect(h.cpu.st.reg(Reg.RAX)).toBe(0);
    expect(h.cpu.st.reg(Reg.RCX)).toBe(0x401234); // SYSCALL's return address
    const before = snapshot(h);
    h.proc.deliverPendingSignals();

    // Handler entry.
    const st = h.cpu.st;
    const frame = st.reg(Reg.RSP);
    expect(st.rip).toBe(HANDLER);
    expect((frame + 8) % 16).toBe(0); // as if called
    expect(frame + 440 + 512).toBeLessThanOrEqual(rsp - 128); // below the red zone
    expect(st.reg(Reg.RDI)).toBe(SIGUSR1);
    expect(st.reg(Reg.RSI)).toBe(frame + 312);
    expect(st.reg(Reg.RDX)).toBe(frame + 8);
    expect(st.reg(Reg.RAX)).toBe(0);
    expect(getRflags(h.cpu) & F.DF).toBe(0);
    expect(h.cpu.s[S.MXCSR]).toBe(0x1f80);
    expect(h.cpu.s[S.FPU_CW]).toBe(0x37f);

    // The frame at the kernel's offsets.
    const as = h.proc.as;
    expect(as.readU64(frame)).toBe(RESTORER);
    GREG_ORDER.forEach((r, i) => expect(as.readU64(frame + MCTX + 8 * i)).toBe(before.regs[r]));
    expect(as.readU64(frame + MCTX + 128)).toBe(0x401234); // rip
    expect(as.readU64(frame + MCTX + 136)).toBe(before.flags); // eflags
    expect(h.mem.read16(frame + MCTX + 144)).toBe(0x33); // cs
    expect(as.readU64(frame + 296)).toBe(0); // uc_sigmask: nothing was blocked
    expect(as.readI32(frame + 312)).toBe(SIGUSR1); // si_signo
    expect(as.readI32(frame + 320)).toBe(0); // si_code SI_USER
    expect(as.readI32(frame + 328)).toBe(process.pid); // si_pid
    const fp = as.readU64(frame + MCTX + 184);
    expect(fp % 64).toBe(0);
    expect(fp).toBeGreaterThan(frame);
    expect(h.mem.read16(fp)).toBe(0x27f); // FCW
    expect(h.mem.read16(fp + 2)).toBe((5 << 11) | 0x20); // FSW
    expect(h.mem.read8(fp + 4)).toBe(0xe0); // abridged tag
    expect(as.readU32(fp + 24)).toBe(0x1f80 | 0x41); // MXCSR
    expect(as.readU32(fp + 32)).toBe(before.rest[S.FPR - S.XMM + 4 * 5] >>> 0); // ST(0) is physical register TOP=5
    expect(as.readU32(fp + 160)).toBe(before.rest[0] >>> 0); // XMM0
    // The handler runs with USR1 (itself) and USR2 (sa_mask) blocked.
    const cur = h.scratch(4096);
    h.sys(14, 0, 0, cur, 8);
    expect(as.readU64(cur)).toBe((1 << (SIGUSR1 - 1)) + (1 << (SIGUSR2 - 1)));

    // The handler edits the saved context: RAX and XMM1 lane 0, and sets DF in the saved flags.
    as.writeU64(frame + MCTX + 13 * 8, 0xabcdef);
    as.writeU32(fp + 160 + 16, 0x12345678);
    as.writeU64(frame + MCTX + 136, before.flags & ~F.CF);
    // ret pops the restorer's address; the restorer issues rt_sigreturn.
    st.setReg(Reg.RSP, frame + 8);
    st.rip = RESTORER;
    for (const r of [Reg.RBX, Reg.R12, Reg.RCX, Reg.R11]) st.setReg(r, 0xdead);
    h.cpu.s[S.XMM + 20] = 99;
    expect(h.sys(15)).toBe(0xabcdef);

    const after = snapshot(h);
    const expectRegs = [...before.regs];
    expectRegs[Reg.RAX] = 0xabcdef;
    expect(after.regs).toEqual(expectRegs);
    expect(after.rip).toBe(0x401234);
    expect(after.flags).toBe(before.flags & ~F.CF);
    const expectRest = [...before.rest];
    expectRest[4] = 0x12345678;
    expect(after.rest).toEqual(expectRest);
    expect(after.fpu).toEqual(before.fpu);
    h.sys(14, 0, 0, cur, 8);
    expect(as.readU64(cur)).toBe(0);
  });

  test('blocked signals stay pending until unblocked; SIG_IGN and default-ignore drop them', () => {
    const { h, stackTop } = setup(SIGUSR1);
    const set = h.scratch(4096);
    h.proc.as.writeU64(set, 1 << (SIGUSR1 - 1));
    h.sys(14, 0, set, 0, 8); // block
    h.cpu.st.setReg(Reg.RSP, stackTop - 64);
    h.sys(234, process.pid, process.pid, SIGUSR1); // tgkill
    h.cpu.st.rip = 0x401000;
    h.proc.deliverPendingSignals();
    expect(h.cpu.st.rip).toBe(0x401000);
    h.sys(127, set + 8, 8); // rt_sigpending
    expect(h.proc.as.readU64(set + 8)).toBe(1 << (SIGUSR1 - 1));
    h.sys(14, 1, set, 0, 8); // unblock
    h.proc.deliverPendingSignals();
    expect(h.cpu.st.rip).toBe(HANDLER);
    expect(h.proc.as.readI32(h.cpu.st.reg(Reg.RSI) + 8)).toBe(-6); // SI_TKILL

    const h2 = harness();
    h2.sys(62, process.pid, SIGCHLD); // default action: ignore
    h2.cpu.st.rip = 0x1000;
    h2.proc.deliverPendingSignals();
    expect(h2.cpu.st.rip).toBe(0x1000);
    const act = h2.scratch(4096);
    h2.proc.as.writeU64(act, 1); // SIG_IGN
    h2.sys(13, SIGUSR1, act, 0, 8);
    h2.sys(62, process.pid, SIGUSR1);
    h2.proc.deliverPendingSignals();
    expect(h2.cpu.st.rip).toBe(0x1000);
    expect(h2.sys(62, 12345678, SIGUSR1)).toBe(-3); // ESRCH: only ourselves
    expect(h2.sys(62, process.pid, 0)).toBe(0);
    expect(h2.sys(13, 9, act, 0, 8)).toBe(-22); // SIGKILL cannot be caught
  });

  test('sigaltstack with SA_ONSTACK, SA_RESETHAND, SA_NODEFER', () => {
    const { h, stackTop } = setup(SIGUSR1, SA_RESTORER | SA_ONSTACK | SA_RESETHAND | SA_NODEFER);
    const alt = h.scratch(65536);
    const ss = h.scratch(4096);
    h.proc.as.writeU64(ss, alt);
    h.proc.as.writeU64(ss + 8, 0);
    h.proc.as.writeU64(ss + 16, 65536);
    expect(h.sys(131, ss, 0)).toBe(0);
    h.proc.as.writeU64(ss + 16, 100);
    expect(h.sys(131, ss, 0)).toBe(-12); // ENOMEM: smaller than MINSIGSTKSZ
    h.cpu.st.setReg(Reg.RSP, stackTop - 64);
    h.sys(62, process.pid, SIGUSR1);
    h.proc.deliverPendingSignals();
    const frame = h.cpu.st.reg(Reg.RSP);
    expect(frame).toBeGreaterThan(alt);
    expect(frame).toBeLessThan(alt + 65536);
    expect(h.sys(131, 0, ss + 64)).toBe(0);
    expect(h.proc.as.readI32(ss + 72)).toBe(1); // SS_ONSTACK while running on it
    h.proc.as.writeU64(ss + 16, 65536);
    expect(h.sys(131, ss, 0)).toBe(-1); // EPERM: cannot change it while on it
    h.proc.as.writeU64(ss + 24, 0);
    h.sys(13, SIGUSR1, 0, ss + 24, 8);
    expect(h.proc.as.readU64(ss + 24)).toBe(0); // SA_RESETHAND: back to SIG_DFL
    const cur = ss + 100;
    h.sys(14, 0, 0, cur, 8);
    expect(h.proc.as.readU64(cur)).toBe(0); // SA_NODEFER: not blocked in the handler
  });

  test('a handler without SA_RESTORER cannot be entered: SIGSEGV', () => {
    const { h, stackTop } = setup(SIGUSR1, SA_SIGINFO);
    h.cpu.st.setReg(Reg.RSP, stackTop - 64);
    h.sys(62, process.pid, SIGUSR1);
    expect(() => h.proc.deliverPendingSignals()).toThrow(expect.objectContaining({ status: 139, signal: SIGSEGV }));
  });

  test('no room for the frame: SIGSEGV', () => {
    const { h } = setup(SIGUSR1);
    h.cpu.st.setReg(Reg.RSP, 0x20000);
    h.sys(62, process.pid, SIGUSR1);
    expect(() => h.proc.deliverPendingSignals()).toThrow(expect.objectContaining({ status: 139 }));
  });
});

describe('exceptions become signals', () => {
  test('#PF: SEGV_MAPERR / SEGV_ACCERR with si_addr and the trap details', () => {
    const { h, stackTop } = setup(SIGSEGV);
    h.cpu.st.setReg(Reg.RSP, stackTop - 64);
    h.cpu.st.rip = 0x401000;
    h.proc.onException(new CpuException(Vec.PF, PfErr.U | PfErr.W, 0x10));
    const st = h.cpu.st;
    expect(st.rip).toBe(HANDLER);
    const info = st.reg(Reg.RSI);
    const frame = st.reg(Reg.RSP);
    expect(h.proc.as.readI32(info)).toBe(SIGSEGV);
    expect(h.proc.as.readI32(info + 8)).toBe(1); // SEGV_MAPERR
    expect(h.proc.as.readU64(info + 16)).toBe(0x10);
    expect(h.proc.as.readU64(frame + MCTX + 128)).toBe(0x401000); // the faulting RIP
    expect(h.proc.as.readU64(frame + MCTX + 152)).toBe(PfErr.U | PfErr.W); // err
    expect(h.proc.as.readU64(frame + MCTX + 160)).toBe(14); // trapno
    expect(h.proc.as.readU64(frame + MCTX + 176)).toBe(0x10); // cr2
    expect(h.log.at(-1)).toBe('--- SIGSEGV {si_signo=SIGSEGV, si_code=SEGV_MAPERR, si_addr=0x10} ---');

    // A write to a read-only mapping is an access error.
    const ro = h.sys(9, 0, 4096, 1, 0x22, -1, 0);
    h.proc.as.readU32(ro);
    h.sys(14, 2, h.scratch(4096), 0, 8); // unblock everything again
    h.proc.onException(new CpuException(Vec.PF, PfErr.U | PfErr.W | PfErr.P, ro));
    expect(h.proc.as.readI32(h.cpu.st.reg(Reg.RSI) + 8)).toBe(2); // SEGV_ACCERR
  });

  test('default actions and exit statuses', () => {
    const die = (e: CpuException) => {
      const h = harness();
      try {
        h.proc.onException(e);
      } catch (x) {
        return [(x as ProcessExit).status, (x as ProcessExit).signal, h.warnings.join('|')];
      }
      return [0, 0, ''];
    };
    expect(die(new CpuException(Vec.PF, PfErr.U, 0))).toEqual([139, SIGSEGV, '']);
    expect(die(new CpuException(Vec.GP, 0))).toEqual([139, SIGSEGV, '']);
    expect(die(new CpuException(Vec.DE))).toEqual([136, SIGFPE, '']);
    expect(die(new CpuException(Vec.UD))).toEqual([132, SIGILL, '']);
    expect(die(new CpuException(Vec.BP))).toEqual([133, SIGTRAP, '']);
    expect(die(new CpuException(Vec.XM))).toEqual([136, SIGFPE, '']);
    expect(die(new Unimplemented('unimplemented instruction at 0x401000: 0f 0b'))).toEqual([132, SIGILL, 'svmjit: unimplemented instruction at 0x401000: 0f 0b']);

    // abort(): SIGABRT raised with tgkill and not handled.
    const h = harness();
    h.sys(234, process.pid, process.pid, SIGABRT);
    expect(() => h.proc.deliverPendingSignals()).toThrow(expect.objectContaining({ status: 134, signal: SIGABRT }));
    expect(h.log.at(-1)).toBe('+++ killed by SIGABRT +++');
  });

  test('#DE and #UD with handlers; a blocked fault still kills', () => {
    const { h, stackTop } = setup(SIGFPE);
    h.cpu.st.setReg(Reg.RSP, stackTop - 64);
    h.cpu.st.rip = 0x401111;
    h.proc.onException(new CpuException(Vec.DE));
    expect(h.cpu.st.rip).toBe(HANDLER);
    const info = h.cpu.st.reg(Reg.RSI);
    expect(h.proc.as.readI32(info + 8)).toBe(1); // FPE_INTDIV
    expect(h.proc.as.readU64(info + 16)).toBe(0x401111);
    // SIGFPE is now blocked (we are in its handler): a second #DE kills.
    expect(() => h.proc.onException(new CpuException(Vec.DE))).toThrow(expect.objectContaining({ status: 136 }));

    const s2 = setup(SIGILL);
    s2.h.cpu.st.setReg(Reg.RSP, s2.stackTop - 64);
    s2.h.cpu.st.rip = 0x402222;
    s2.h.proc.onException(new Unimplemented('unimplemented instruction'));
    expect(s2.h.cpu.st.rip).toBe(HANDLER); // a handled SIGILL is delivered, not reported
    expect(s2.h.proc.as.readI32(s2.h.cpu.st.reg(Reg.RSI) + 8)).toBe(2); // ILL_ILLOPN
    expect(s2.h.proc.as.readU64(s2.h.cpu.st.reg(Reg.RSI) + 16)).toBe(0x402222);
    expect(s2.h.warnings).toEqual([]);
  });
});
