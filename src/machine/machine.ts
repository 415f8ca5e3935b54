/**
 * The bare-metal PC: CPUs in machine mode over one RAM with MMIO, the PC devices, and the run
 * loop that turns the engine's exits and exceptions into architectural behaviour — IDT
 * delivery with the double-fault rules, external interrupts and NMIs when RFLAGS.IF, the
 * interrupt shadow and NMI blocking allow, HLT waiting for the next timer deadline, the debug
 * registers, INIT/SIPI, and shutdown.
 *
 * Each CPU (Vcpu) has its own state, TLB, paging context and translation cache; they share
 * RAM (a store by one invalidates what any of them translated there) and the devices. CPUs
 * run in turns of at most SLICE instructions, always the CPU furthest behind next, so a run is
 * deterministic on one host thread.
 *
 * Time is virtual: the clock advances by one nanosecond per instruction retired by any CPU
 * plus whatever an all-CPUs HLT skips, so every run is deterministic and a halted guest
 * waiting for a timer costs nothing. The engine yields at the next timer deadline so
 * interrupts arrive on time even inside a tight loop.
 */
import { Cpu, CpuMode, is64BitCode } from '../cpu/cpu.js';
import { cpuidMachine } from '../cpu/cpuid.js';
import { CpuException, RepPause, Unimplemented, Vec } from '../cpu/exceptions.js';
import { F, S, SegReg } from '../cpu/state.js';
import { Engine, type EngineOptions, type EngineStats } from '../runtime/engine.js';
import { IoBus, MmioBus, type Clock } from './bus.js';
import { deliver, EventKind, hasErrorCode, isDoubleFault, RF } from './interrupts.js';
import { MachineMemory } from './mmu.js';
import { MsrFile } from './msr.js';
import { computeMode, CR0_AM, setSegCache } from './segments.js';
import { SoftwareInterrupt } from './system.js';
import { VmExit } from '../svm/intercept.js';
import { Svm } from '../svm/svm.js';
import { EventInj, ExitCode } from '../svm/vmcb.js';

/** DR6.BS: the #DB is a single-step trap. */
const DR6_BS = 1 << 14;

/** svmjit's hypercall numbers (VMMCALL from L1 with the number in RAX). */
export const enum Hypercall {
  /** Write RCX bytes at linear address RBX to the console; RAX = bytes written. */
  WRITE = 1,
  /** End the run with exit status RBX & 0xFF. */
  EXIT = 2,
  /** RAX = the time-stamp counter (virtual cycles). */
  CYCLES = 3,
}

/** An event in EVENTINJ/EXITINTINFO format (§3.6). */
function eventInfo(vector: number, errorCode: number, kind: EventKind): number {
  // INT3/INTO are exceptions (type 3), only INT n is a software interrupt (type 4): §6.7.
  const type = kind === EventKind.EXTERNAL ? (vector === Vec.NMI ? EventInj.TYPE_NMI : EventInj.TYPE_INTR) : kind === EventKind.SOFTWARE ? EventInj.TYPE_SOFT : EventInj.TYPE_EXCEPTION;
  return (EventInj.V | (type << EventInj.TYPE_SHIFT) | (errorCode >= 0 ? EventInj.EV : 0) | (vector & 0xff)) | 0;
}
/** Nanoseconds of virtual time per retired instruction. */
const NS_PER_INSN = 1;
/** Longest stretch one CPU runs before the others get a turn (instructions). */
const SLICE_1CPU = 1_000_000;
const SLICE_SMP = 10_000;

/** The machine-wide devices the run loop needs to see (created by the PC device set). */
export interface MachineDevices {
  /** Virtual ns of the next timer event, Infinity when none. */
  nextDeadline(): number;
  /** Raise the interrupts whose time has come. */
  update(): void;
}

/** Ends a run: the exit status and, for abnormal ends, the one line that says why. */
export class MachineStop {
  constructor(
    readonly status: number,
    readonly message: string | null,
  ) {}
}

export interface MachineOptions extends EngineOptions {
  ramBytes: number;
  /** CPUs (default 1); the first is the bootstrap processor, the others wait for INIT/SIPI. */
  cpus?: number;
}

/** Per-CPU devices the run loop talks to (the local APIC's interrupt output and CR8). */
export interface CpuDevices {
  interruptPending(): boolean;
  acknowledge(): number;
  readTpr(): number;
  writeTpr(v: number): void;
}

/** What a CPU is doing. */
const enum RunState {
  RUNNING,
  HALTED,
  /** An application processor after reset or INIT: nothing runs until a SIPI. */
  WAIT_FOR_SIPI,
}

/** One CPU: its state, memory view and engine, and the run-loop state that belongs to it. */
export class Vcpu {
  readonly mem: MachineMemory;
  readonly cpu: Cpu;
  readonly engine: Engine;
  readonly msrs: MsrFile;
  readonly svm: Svm;
  state = RunState.RUNNING;
  nmiPending = false;
  /** An INIT IPI waiting to be taken (GIF = 0 holds it; in guest mode it may be intercepted). */
  initPending = false;
  /** Resets this CPU's local APIC when the CPU takes an INIT (set by the PC). */
  onInitReset: () => void = () => {};
  /** An NMI handler is running: further NMIs wait for its IRET. */
  nmiBlocked = false;
  shadow = false;
  tscOffset = 0;
  devices: CpuDevices | null = null;
  /** While a debug step runs: the I/O breakpoint port of DR0-DR3 (-1 = none), and the DR6 bits hit. */
  ioWatch: number[] | null = null;
  ioHits = 0;

  constructor(
    readonly machine: Machine,
    readonly index: number,
    shareRamWith?: MachineMemory,
  ) {
    const opts = machine.opts;
    this.mem = new MachineMemory(opts.ramBytes, machine.mmio, shareRamWith);
    this.cpu = new Cpu(this.mem);
    this.mem.cpu = this.cpu;
    this.cpu.machine = true;
    this.cpu.hooks = { cpuid: (cpu) => cpuidMachine(cpu, index), rdtsc: () => this.tsc() };
    this.msrs = new MsrFile(
      () => this.tsc(),
      (_cpu, v) => (this.tscOffset = v - machine.now()),
      null,
    );
    this.cpu.sys = {
      portIn: (port, size) => {
        this.noteIo(port, size);
        return machine.io.in(port, size);
      },
      portOut: (port, size, v) => {
        this.noteIo(port, size);
        machine.io.out(port, size, v);
      },
      readMsr: (cpu, msr) => this.msrs.read(cpu, msr),
      writeMsr: (cpu, msr, lo, hi) => this.msrs.write(cpu, msr, lo, hi, () => this.systemChanged(true)),
      systemChanged: (_cpu, flush) => this.systemChanged(flush),
      invalidatePage: (_cpu, va) => this.mem.invalidatePage(va),
      halt: () => {
        this.state = RunState.HALTED;
      },
      interruptShadow: () => {
        this.shadow = true;
      },
      iretExecuted: () => {
        this.nmiBlocked = false;
      },
      // With V_INTR_MASKING, L2's CR8 is int_ctl.V_TPR, not the APIC's TPR (§6.3).
      readCr8: () => (this.svm.guest && this.svm.intrMasking ? this.svm.vTpr : (this.devices?.readTpr() ?? 0)),
      writeCr8: (_cpu, v) => (this.svm.guest && this.svm.intrMasking ? (this.svm.vTpr = v) : this.devices?.writeTpr(v)),
      hypercall: () => this.hypercall(),
    };
    this.svm = new Svm(this.cpu, {
      mem: this.mem,
      systemChanged: () => this.systemChanged(true, true),
      setShadow: (on) => {
        const was = this.shadow;
        this.shadow = on;
        return was;
      },
      log: opts.debug.has('svm') ? (line) => opts.log(`${line} (cpu ${index})`) : null,
      msrs: this.msrs,
    });
    this.cpu.svm = this.svm;
    this.msrs.svm = this.svm;
    this.engine = new Engine(this.cpu, opts);
    this.mem.onUnclaimedMmio = (phys, write) => {
      if (opts.debug.has('unimp')) opts.log(`unimp: ${write ? 'write' : 'read'} of unclaimed physical address 0x${phys.toString(16)}`);
    };
    if (index > 0) this.state = RunState.WAIT_FOR_SIPI;
  }

  /** I/O breakpoints (DR7 R/W = 10 with CR4.DE) hit by an access of ports [port, port+size). */
  private noteIo(port: number, size: number): void {
    const w = this.ioWatch;
    if (!w) return;
    for (let n = 0; n < 4; n++) if (w[n] >= 0 && w[n] < port + size && port < w[n] + 1) this.ioHits |= 1 << n;
  }

  /** The TSC this CPU reads now: L2 sees L1's plus vmcb12's TSC_OFFSET (spec §5.2 step 12). */
  tsc(): number {
    return Math.floor(this.machine.now()) + this.tscOffset + (this.svm?.guest ? this.svm.tscOffset : 0);
  }

  /**
   * CR0/CR3/CR4/EFER or CS/SS changed: new CPU mode, and a fresh TLB when paging changed (at an
   * SVM world switch, the entered world's kept TLB when it still applies: MachineMemory.syncPaging).
   */
  systemChanged(flushTlb: boolean, worldSwitch = false): void {
    const cpu = this.cpu;
    cpu.mode = computeMode(cpu) | (this.svm?.guest ? CpuMode.GUEST : 0);
    if (flushTlb) this.mem.syncPaging(cpu, worldSwitch);
  }

  /** Could this CPU do something now (run, or take an event that ends its HLT)? */
  get runnable(): boolean {
    if (this.state === RunState.RUNNING) return true;
    if (this.initPending && this.svm.gif) return true;
    if (this.state === RunState.WAIT_FOR_SIPI) return false;
    const svm = this.svm;
    if (svm.guest && svm.virtualInterruptReady(false)) return true;
    if (this.nmiPending && svm.gif && (!this.nmiBlocked || (svm.guest && svm.intercepted(ExitCode.NMI)))) return true;
    if (!svm.interruptsEnabled() || !this.devices?.interruptPending()) return false;
    return (svm.guest && svm.intercepted(ExitCode.INTR)) || !!(this.cpu.s[S.FLAGS] & F.IF);
  }

  /**
   * INIT: the CPU resets (registers as after RESET, except that caches and MSRs like EFER
   * are cleared too) and, for an application processor, waits for a SIPI.
   */
  init(): void {
    const cpu = this.cpu;
    const keep = cpu.st.icount;
    cpu.s.fill(0);
    cpu.st.icount = keep;
    cpu.s[S.MXCSR] = 0x1f80;
    cpu.s[S.FPU_CW] = 0x037f;
    cpu.s[S.CR0] = 0x60000010; // CD, NW, ET
    cpu.s[S.DR6] = 0xffff0ff0 | 0;
    cpu.s[S.DR7] = 0x400;
    cpu.s[S.FLAGS] = F.FIXED;
    cpu.s[S.IDTR_LIMIT] = 0xffff;
    cpu.s[S.GDTR_LIMIT] = 0xffff;
    for (const seg of [SegReg.ES, SegReg.SS, SegReg.DS, SegReg.FS, SegReg.GS]) setSegCache(cpu, seg, 0, 0x93, 0xffff, 0);
    setSegCache(cpu, SegReg.CS, 0xf000, 0x9b, 0xffff, 0xffff0000);
    setSegCache(cpu, SegReg.LDTR, 0, 0x82, 0xffff, 0);
    setSegCache(cpu, SegReg.TR, 0, 0x8b, 0xffff, 0);
    cpu.st.rip = 0xfff0;
    this.nmiPending = this.nmiBlocked = this.shadow = false;
    this.state = this.index === 0 ? RunState.RUNNING : RunState.WAIT_FOR_SIPI;
    this.systemChanged(true);
  }

  /** An INIT arrives for this CPU: taken at the next boundary where GIF allows (§6.6). */
  requestInit(): void {
    this.initPending = true;
    this.engine.yieldAt = 0;
  }

  /** SIPI with vector v: a waiting processor starts in real mode at v × 4096. */
  sipi(vector: number): void {
    if (this.state !== RunState.WAIT_FOR_SIPI) return;
    setSegCache(this.cpu, SegReg.CS, vector << 8, 0x9b, 0xffff, vector << 12);
    this.cpu.st.rip = 0;
    this.state = RunState.RUNNING;
    this.systemChanged(false);
  }

  /** Perform a #VMEXIT (two-phase exits: the helper or event recorded it, this switches worlds). */
  worldSwitch(exitCode: number, info1 = 0, info2 = 0, nrip = 0): void {
    const m = this.machine;
    if (m.opts.debug.has('svm')) m.opts.log(`svm: cpu ${this.index} #VMEXIT 0x${(exitCode >>> 0).toString(16)} info1 0x${info1.toString(16)} info2 0x${info2.toString(16)} rip 0x${this.cpu.st.rip.toString(16)}`);
    this.svm.vmexit(exitCode, info1, info2, nrip);
    this.state = RunState.RUNNING;
    // Host RFLAGS.TF at VMRUN: the single-step trap lands in L1 after the #VMEXIT (§5.6 step 7).
    if (this.svm.hostTrap) {
      this.cpu.s[S.DR6] |= DR6_BS;
      this.deliverEvent(Vec.DB, -1, EventKind.EXCEPTION);
    }
  }

  /**
   * A pending virtual interrupt (int_ctl.V_IRQ) taken at this boundary when GIF, L2's IF, no
   * interrupt shadow and the priority allow (§6.4): #VMEXIT(VINTR) when intercepted, else its
   * vector delivered through L2's IDT. Returns whether something happened.
   */
  private virtualInterrupt(): boolean {
    const svm = this.svm;
    if (!svm.virtualInterruptReady(this.shadow)) return false;
    if (svm.intercepted(ExitCode.VINTR)) {
      this.worldSwitch(ExitCode.VINTR);
      return true;
    }
    const vector = svm.takeVirtualInterrupt();
    this.state = RunState.RUNNING;
    this.deliverEvent(vector, -1, EventKind.EXTERNAL);
    return true;
  }

  /** EVENTINJ: deliver the event through L2's IDT before its first instruction (§5.5). */
  private injectEvent(): void {
    const svm = this.svm;
    const inj = svm.injectEvent;
    svm.injectEvent = 0;
    const type = (inj >>> EventInj.TYPE_SHIFT) & 7;
    const vector = type === EventInj.TYPE_NMI ? Vec.NMI : inj & 0xff;
    const error = inj & EventInj.EV ? svm.injectError : -1;
    const soft = type === EventInj.TYPE_SOFT || (type === EventInj.TYPE_EXCEPTION && (vector === Vec.BP || vector === Vec.OF));
    const kind = type === EventInj.TYPE_EXCEPTION ? (soft ? EventKind.SOFT_EXCEPTION : EventKind.EXCEPTION) : type === EventInj.TYPE_SOFT ? EventKind.SOFTWARE : EventKind.EXTERNAL;
    if (type === EventInj.TYPE_NMI) this.nmiBlocked = true;
    svm.deliveringEvent = inj & (EventInj.V | EventInj.TYPE_MASK | EventInj.EV | 0xff);
    svm.deliveringError = Math.max(0, error);
    this.deliverEvent(vector, error, kind, soft ? svm.injectNrip : this.cpu.st.rip, type === EventInj.TYPE_EXCEPTION && !soft);
    svm.deliveringEvent = 0;
    svm.deliveringError = 0;
  }

  /**
   * VMMCALL from L1: svmjit's hypercalls (README "Hypercalls"). Number in RAX, arguments in RBX,
   * RCX, RDX; the result replaces RAX. CPL > 0 gets -1 and unknown numbers -1000, as KVM answers.
   */
  private hypercall(): void {
    const cpu = this.cpu;
    const s = cpu.s;
    const m = this.machine;
    const arg = (r: number) => (is64BitCode(cpu.mode) ? s[2 * r + 1] * 4294967296 + (s[2 * r] >>> 0) : s[2 * r] >>> 0);
    const ret = (v: number) => {
      s[0] = v | 0;
      s[1] = is64BitCode(cpu.mode) ? Math.floor(v / 4294967296) | 0 : 0;
    };
    if (s[S.CPL] !== 0) return ret(-1);
    switch (arg(0)) {
      case Hypercall.WRITE: {
        const len = Math.min(arg(1), 1 << 20);
        m.hypercallOutput(cpu.mem.readBytes(arg(3), len));
        return ret(len);
      }
      case Hypercall.EXIT:
        m.exit(arg(3) & 0xff);
        return ret(0);
      case Hypercall.CYCLES:
        return ret(this.tsc());
      default:
        return ret(-1000);
    }
  }

  /** An NMI arrives (LINT1, an NMI IPI): taken at the next boundary unless one is being handled. */
  raiseNmi(): void {
    this.nmiPending = true;
    this.engine.yieldAt = 0;
  }

  /**
   * Take a pending NMI or interrupt if the CPU can, else run up to `slice` instructions.
   * Returns false when the CPU is halted with nothing to take.
   */
  turn(slice: number): void {
    const m = this.machine;
    const cpu = this.cpu;
    const s = cpu.s;
    const svm = this.svm;
    if (svm.injectEvent) {
      this.injectEvent();
      return;
    }
    if (this.initPending && svm.gif) {
      // Intercepted in L2: #VMEXIT(INIT), the INIT staying pending for L1 (§6.2 row 1).
      if (svm.guest && svm.intercepted(ExitCode.INIT)) return this.worldSwitch(ExitCode.INIT);
      this.initPending = false;
      svm.abandonGuest();
      this.init();
      this.onInitReset();
      return;
    }
    // GIF = 0 holds NMIs and interrupts pending (§5.8); in guest mode an intercepted one exits
    // to L1 without being acknowledged, whatever L2's blocking (§6.2 rows 4-5).
    if (this.nmiPending && svm.gif && svm.guest && svm.intercepted(ExitCode.NMI)) return this.worldSwitch(ExitCode.NMI);
    if (this.nmiPending && svm.gif && !this.nmiBlocked && !this.shadow) {
      this.nmiPending = false;
      this.nmiBlocked = true;
      this.state = RunState.RUNNING;
      this.deliverEvent(Vec.NMI, -1, EventKind.EXTERNAL);
      return;
    }
    const dev = this.devices;
    const intr = dev !== null && svm.interruptsEnabled() && dev.interruptPending();
    // Like KVM, the interrupt shadow (after STI, MOV SS) holds even an intercepted INTR back.
    if (intr && !this.shadow && svm.guest && svm.intercepted(ExitCode.INTR)) return this.worldSwitch(ExitCode.INTR);
    if (intr && !this.shadow && s[S.FLAGS] & F.IF) {
      this.state = RunState.RUNNING;
      const vector = dev!.acknowledge();
      m.stats.interrupts++;
      if (m.opts.debug.has('int')) m.opts.log(`int: cpu ${this.index} external vector ${vector} at 0x${cpu.st.rip.toString(16)}`);
      this.deliverEvent(vector, -1, EventKind.EXTERNAL);
      return;
    }
    if (svm.guest && this.virtualInterrupt()) return;
    if (this.state !== RunState.RUNNING) return;
    // Alignment checking (CPL 3, CR0.AM, RFLAGS.AC) runs every access through the MMU's slow path.
    const ac = s[S.CPL] === 3 && (s[S.CR0] & CR0_AM) !== 0 && (s[S.FLAGS] & F.AC) !== 0;
    if (ac !== this.mem.alignCheck) {
      this.mem.alignCheck = ac;
      this.mem.flushTlb();
    }
    this.engine.yieldAt = cpu.st.icount + slice;
    try {
      if ((s[S.DR7] & 0xff) !== 0 || s[S.FLAGS] & (F.TF | RF)) this.debugStep();
      else if (this.shadow) {
        // STI / MOV SS: one more instruction runs before any interrupt is taken. If that
        // instruction exits to L1, the VMCB records that L2 was still in the shadow.
        this.shadow = false;
        try {
          this.engine.step();
        } catch (e) {
          // Not retired: the shadow still covers it (an exit records it; a delivery ends it).
          if (e instanceof CpuException) this.shadow = true;
          throw e;
        }
        if (svm.exitRecorded) this.shadow = true;
      } else this.engine.run();
    } catch (e) {
      if (!(e instanceof CpuException)) throw e;
      this.exception(e);
    }
    if (svm.exitRecorded) this.takeRecordedExit();
    if ((this.state as RunState) === RunState.HALTED) m.stats.halts++;
  }


  /**
   * The second phase of an instruction intercept its helper recorded instead of throwing
   * (svm/intercept.ts recordInterceptAtEnd). The block counted the instruction, which did not
   * retire: the count goes back, as when a fault unwinds a block.
   */
  private takeRecordedExit(): void {
    const svm = this.svm;
    svm.exitRecorded = false;
    this.cpu.st.icount--;
    this.worldSwitch(svm.recordedExitCode, 0, 0, svm.recordedNrip);
  }

  /**
   * One instruction with the debug machinery of SDM Vol 3 §17.3 and spec/svm.md §6.8: the
   * instruction breakpoints of DR0-DR3 are checked first (unless RF), then the instruction runs
   * with data and I/O breakpoints watched, and the traps it earned (data, I/O, single-step) are
   * delivered as one #DB with the DR6 bits. Only runs while DR7 enables a breakpoint or TF/RF is
   * set, so code without breakpoints pays nothing.
   */
  debugStep(): void {
    const cpu = this.cpu;
    const s = cpu.s;
    const flags = s[S.FLAGS];
    const dr7 = s[S.DR7];
    if (!(flags & RF)) {
      const lin = this.engine.linearRip();
      let hits = 0;
      for (let n = 0; n < 4; n++) {
        const enabled = (dr7 >>> (2 * n)) & 3;
        const rw = (dr7 >>> (16 + 4 * n)) & 3;
        if (enabled && rw === 0 && s[S.DR0 + 2 * n + 1] * 4294967296 + (s[S.DR0 + 2 * n] >>> 0) === lin) hits |= 1 << n;
      }
      if (hits) {
        s[S.DR6] |= hits;
        this.debugException();
        return;
      }
    }
    const watch: { start: number; end: number; reads: boolean }[] = [];
    this.ioWatch = [];
    for (let n = 0; n < 4; n++) {
      const enabled = (dr7 >>> (2 * n)) & 3;
      const rw = (dr7 >>> (16 + 4 * n)) & 3;
      const len = [1, 2, 8, 4][(dr7 >>> (18 + 4 * n)) & 3];
      const at = s[S.DR0 + 2 * n + 1] * 4294967296 + (s[S.DR0 + 2 * n] >>> 0);
      // Breakpoint addresses are aligned down to their length (SDM 17.2.5).
      const start = at - (((at % len) + len) % len);
      const on = enabled && (rw === 1 || rw === 3);
      watch.push({ start, end: on ? start + len : start, reads: rw === 3 });
      this.ioWatch.push(enabled && rw === 2 && s[S.CR4] & 8 ? at & 0xffff : -1);
    }
    const watching = watch.some((w) => w.end > w.start);
    if (watching) this.mem.flushTlb();
    this.mem.watch = watching ? watch : null;
    this.mem.watchHits = 0;
    this.ioHits = 0;
    const ripBefore = cpu.st.rip;
    const wasGuest = this.svm.guest;
    try {
      this.engine.step();
    } catch (e) {
      this.mem.watch = null;
      if (!(e instanceof CpuException)) throw e;
      this.exception(e);
      return;
    } finally {
      this.ioWatch = null;
    }
    this.mem.watch = null;
    // An intercepted instruction that recorded its exit did not complete: no trap; turn takes the exit.
    if (this.svm.exitRecorded) return;
    // A VMRUN that entered L2 loaded L2's RF and TF: host TF traps in L1 after the #VMEXIT
    // instead (spec/svm.md §5.2 "Debug behaviour around VMRUN"), and L2's RF is L2's to use.
    if (!wasGuest && this.svm.guest) return;
    // RF lasts one instruction: the one that just completed clears it, unless it loaded it (IRET).
    if (flags & RF && !this.engine.isIretAt(ripBefore)) s[S.FLAGS] &= ~RF;
    const traps = this.mem.watchHits | this.ioHits | (flags & F.TF ? DR6_BS : 0);
    if (traps) {
      s[S.DR6] |= traps;
      this.debugException();
    }
  }

  /** A #DB from the debug machinery: an exit when L2 runs with the #DB intercept (§6.8 rule 4), else delivered. */
  private debugException(): void {
    if (this.svm.guest && this.svm.intercepted(ExitCode.EXCP_BASE + Vec.DB)) return this.worldSwitch(ExitCode.EXCP_BASE + Vec.DB);
    this.deliverEvent(Vec.DB, -1, EventKind.EXCEPTION);
  }

  exception(e: CpuException): void {
    const cpu = this.cpu;
    if (e instanceof RepPause) return; // a long REP instruction continues at its next turn
    if (e instanceof VmExit) return this.worldSwitch(e.exitCode, e.info1, e.info2, e.nrip);
    this.machine.stats.exceptions++;
    // An exception in L2 that vmcb12 intercepts exits to L1 instead of being delivered (§6.7).
    if (this.svm.guest && (!(e instanceof SoftwareInterrupt) || e.isException) && this.svm.intercepted(ExitCode.EXCP_BASE + e.vector)) {
      const soft = e instanceof SoftwareInterrupt;
      const info1 = hasErrorCode(e.vector) ? Math.max(0, e.errorCode) : 0;
      return this.worldSwitch(ExitCode.EXCP_BASE + e.vector, info1, e.vector === Vec.PF ? e.address : 0, soft ? e.nextRip : 0);
    }
    if (e instanceof SoftwareInterrupt) {
      this.deliverEvent(e.vector, -1, e.kind, e.nextRip);
      return;
    }
    if (e instanceof Unimplemented) {
      this.machine.lastUnimplemented = e.what;
      if (this.machine.opts.debug.has('unimp')) this.machine.opts.log(`unimp: ${e.what}`);
    }
    if (e.vector === Vec.PF) {
      cpu.s[S.CR2_LO] = e.address | 0;
      cpu.s[S.CR2_HI] = Math.floor(e.address / 4294967296) | 0;
    }
    this.deliverEvent(e.vector, hasErrorCode(e.vector) ? Math.max(0, e.errorCode) : -1, EventKind.EXCEPTION, cpu.st.rip, true);
  }

  /** Deliver an event; a fault during delivery follows the double-fault rules, a fault delivering #DF shuts down. */
  /**
   * `returnRip` is the address the frame holds (after the instruction for INT n); a fault
   * while delivering leaves RIP at the instruction, where that fault belongs.
   */
  deliverEvent(vector: number, errorCode: number, kind: EventKind, returnRip = this.cpu.st.rip, fault = false): void {
    const cpu = this.cpu;
    const faultRip = cpu.st.rip;
    if (this.machine.opts.debug.has('int')) this.machine.opts.log(`int: vector ${vector}${errorCode >= 0 ? ` error 0x${errorCode.toString(16)}` : ''} at 0x${faultRip.toString(16)}`);
    try {
      cpu.st.rip = returnRip;
      deliver(cpu, vector, errorCode, kind, fault);
      this.shadow = false; // the handler's first instruction is not in a shadow
      this.systemChanged(false);
    } catch (e) {
      if (!(e instanceof CpuException)) throw e;
      cpu.st.rip = faultRip;
      if (e instanceof VmExit) {
        // A nested page fault while delivering an event: the event goes to EXITINTINFO (§7.5, §6.7).
        if (!this.svm.deliveringEvent) {
          this.svm.deliveringEvent = eventInfo(vector, errorCode, kind);
          this.svm.deliveringError = Math.max(0, errorCode);
        }
        return this.worldSwitch(e.exitCode, e.info1, e.info2, e.nrip);
      }
      if (vector === Vec.DF) {
        if (this.svm.guest && this.svm.intercepted(ExitCode.SHUTDOWN)) return this.worldSwitch(ExitCode.SHUTDOWN);
        this.machine.shutdown(2, `triple fault (${e.toString()} while delivering #DF) at 0x${cpu.st.rip.toString(16)}${this.machine.lastUnimplemented ? `; last unimplemented instruction: ${this.machine.lastUnimplemented}` : ''}`);
        return;
      }
      if (e.vector === Vec.PF) {
        cpu.s[S.CR2_LO] = e.address | 0;
        cpu.s[S.CR2_HI] = Math.floor(e.address / 4294967296) | 0;
      }
      // In L2, an intercepted exception raised while delivering an event exits with that event
      // in EXITINTINFO (§6.7).
      if (this.svm.guest && this.svm.intercepted(ExitCode.EXCP_BASE + e.vector)) {
        // An injected event keeps the type EVENTINJ gave it.
        if (!this.svm.deliveringEvent) {
          this.svm.deliveringEvent = eventInfo(vector, errorCode, kind);
          this.svm.deliveringError = Math.max(0, errorCode);
        }
        return this.worldSwitch(ExitCode.EXCP_BASE + e.vector, hasErrorCode(e.vector) ? Math.max(0, e.errorCode) : 0, e.vector === Vec.PF ? e.address : 0);
      }
      // A benign combination is handled serially: the second exception is delivered instead.
      if (isDoubleFault(vector, e.vector)) this.deliverEvent(Vec.DF, 0, EventKind.EXCEPTION, faultRip, true);
      else this.deliverEvent(e.vector, hasErrorCode(e.vector) ? Math.max(0, e.errorCode) : -1, EventKind.EXCEPTION, faultRip, true);
    }
  }
}

export class Machine implements Clock {
  readonly io = new IoBus();
  readonly mmio = new MmioBus();
  readonly vcpus: Vcpu[] = [];
  /** The CPU running now (devices ask, e.g. the local APIC window). */
  current: Vcpu;
  devices: MachineDevices | null = null;
  /** Called once when the run ends (flush device output). */
  onStop: () => void = () => {};
  private stop: MachineStop | null = null;
  /** Virtual ns skipped while every CPU was halted. */
  private skipped = 0;
  /** The last unimplemented instruction, to explain a crash that follows it. */
  lastUnimplemented: string | null = null;
  readonly stats = { interrupts: 0, exceptions: 0, halts: 0 };
  /** Where VMMCALL's console hypercall writes (the serial output by default). */
  hypercallOutput: (bytes: Uint8Array) => void = () => {};

  constructor(readonly opts: MachineOptions) {
    const n = opts.cpus ?? 1;
    for (let i = 0; i < n; i++) this.vcpus.push(new Vcpu(this, i, this.vcpus[0]?.mem));
    this.current = this.vcpus[0];
    this.io.onUnclaimed = (dir, port, size, value) => {
      if (opts.debug.has('unimp')) opts.log(`unimp: ${dir} port 0x${port.toString(16)} size ${size}${dir === 'out' ? ` value 0x${(value >>> 0).toString(16)}` : ''}`);
    };
  }

  /** The bootstrap processor's pieces (what a one-CPU caller needs). */
  get cpu(): Cpu {
    return this.vcpus[0].cpu;
  }
  get mem(): MachineMemory {
    return this.vcpus[0].mem;
  }
  get engine(): Engine {
    return this.vcpus[0].engine;
  }

  /** The translation statistics of all CPUs' engines, summed. */
  engineStats(): EngineStats {
    const sum: EngineStats = { blocksTranslated: 0, blocksCompiled: 0, regionsCompiled: 0, compileMs: 0, cacheHits: 0, cacheMisses: 0, invalidations: 0 };
    for (const v of this.vcpus) for (const k of Object.keys(sum) as (keyof EngineStats)[]) sum[k] += v.engine.stats[k];
    return sum;
  }

  /** Instructions retired by all CPUs. */
  get icount(): number {
    let n = 0;
    for (const v of this.vcpus) n += v.cpu.st.icount;
    return n;
  }

  now(): number {
    return this.icount * NS_PER_INSN + this.skipped;
  }

  /**
   * The state multiboot promises (Multiboot 0.6.96 §3.2): 32-bit protected mode, flat 4 GiB
   * code and data segments, paging off, interrupts off, EAX = magic, EBX = info address.
   */
  enterMultiboot(entry: number, eax: number, ebx: number): void {
    const bsp = this.vcpus[0];
    const cpu = bsp.cpu;
    const s = cpu.s;
    s[S.CR0] = 0x11; // PE, ET
    s[S.EFER] = 0;
    s[S.CPL] = 0;
    setSegCache(cpu, SegReg.CS, 0x10, 0xc9b, 0xffffffff, 0);
    for (const seg of [SegReg.ES, SegReg.SS, SegReg.DS, SegReg.FS, SegReg.GS]) setSegCache(cpu, seg, 0x18, 0xc93, 0xffffffff, 0);
    setSegCache(cpu, SegReg.TR, 0, 0x8b, 0xffff, 0);
    setSegCache(cpu, SegReg.LDTR, 0, 0x82, 0xffff, 0);
    s[S.IDTR_LIMIT] = 0x3ff;
    s[S.FLAGS] = F.FIXED;
    s[0] = eax;
    s[6] = ebx;
    cpu.st.rip = entry;
    bsp.systemChanged(true);
    // Application processors sit in wait-for-SIPI with the reset state's registers.
    for (const v of this.vcpus.slice(1)) v.init();
  }

  /** Run until the guest exits (debug-exit), shuts down, or runs past --max-insns. */
  run(): MachineStop {
    const slice = this.vcpus.length > 1 ? SLICE_SMP : SLICE_1CPU;
    while (!this.stop) {
      const dev = this.devices;
      // Devices act only at their deadlines, which are exact (devices/ticks.ts): before the
      // earliest one an update would find nothing due, so it is skipped (an SVM round trip
      // takes several turns, and updating at each cost it 10%).
      let deadline = dev ? dev.nextDeadline() : Infinity;
      if (dev && this.now() >= deadline) {
        dev.update();
        deadline = dev.nextDeadline();
      }
      // The CPU furthest behind that has something to do runs next (ties: the lower index).
      let next: Vcpu | null = null;
      for (const v of this.vcpus) if (v.runnable && (!next || v.cpu.st.icount < next.cpu.st.icount)) next = v;
      if (!next) {
        if (deadline === Infinity) {
          const bsp = this.vcpus[0].cpu;
          return this.finish(this.shutdown(2, `guest halted with ${bsp.s[S.FLAGS] & F.IF ? 'no timer armed' : 'interrupts disabled'} at 0x${bsp.st.rip.toString(16)}`));
        }
        this.skipped += Math.max(0, deadline - this.now());
        continue;
      }
      this.current = next;
      next.turn(Math.min(slice, Math.max(1, Math.ceil((deadline - this.now()) / NS_PER_INSN))));
    }
    return this.finish(this.stop);
  }

  private finish(stop: MachineStop): MachineStop {
    this.onStop();
    return stop;
  }

  /** isa-debug-exit and the like end the run with a status. */
  exit(status: number): void {
    this.stop ??= new MachineStop(status, null);
    for (const v of this.vcpus) v.engine.yieldAt = 0;
  }

  shutdown(status: number, message: string): MachineStop {
    this.stop ??= new MachineStop(status, message);
    for (const v of this.vcpus) v.engine.yieldAt = 0;
    return this.stop;
  }
}
