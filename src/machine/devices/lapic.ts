/**
 * The local APIC of one CPU: xAPIC registers in the 4 KiB window at 0xFEE00000, the same
 * registers as x2APIC MSRs 0x800-0x8FF, IA32_APIC_BASE, the timer (one-shot, periodic and
 * TSC-deadline) and interrupt acceptance (IRR/ISR/TMR, TPR/PPR, EOI), following the Intel SDM
 * Vol. 3 chapter on the APIC.
 *
 * The register file is one table indexed by `offset >> 4` (which is also `msr - 0x800`), read
 * and written by one pair of functions that take the mode; the differences between the two
 * interfaces are the SDM's: in x2APIC mode the ID is the 32-bit x2APIC ID and read-only, LDR
 * is derived from it, DFR and the ICR high half do not exist, ICR is one 64-bit MSR, SELF IPI
 * exists, and every misuse (a read-only register written, a write-only one read, a reserved
 * register or reserved bit, a non-zero EOI or ESR write, upper MSR halves) is a #GP, which
 * `readMsr`/`writeMsr` report as `undefined`/`false` for the CPU to raise. In xAPIC mode bad
 * accesses never fault: reserved registers read 0 and set ESR's illegal-register-address bit
 * (as QEMU does), reserved bits are dropped, and accesses that are not whole aligned 32-bit
 * writes are ignored. Version is QEMU's: 0x14 with six LVT entries (no CMCI) and no
 * EOI-broadcast suppression.
 *
 * Software disable (SVR bit 8 clear) masks every LVT entry and refuses to unmask them, holds
 * IRR/ISR and delivers no fixed interrupts, while INIT, SIPI and NMI still arrive, as the SDM
 * says (QEMU does not mask the LVTs; KVM does, and so do we). Global disable through
 * IA32_APIC_BASE resets the registers, drops all messages, and hides the MMIO window, which
 * then reads all ones like unbacked memory; x2APIC mode hides it too.
 *
 * Timers are computed, not stepped: the countdown remembers the APIC bus tick it started at
 * (the bus runs at 1 GHz by default, QEMU's rate, divided by the DCR), and the TSC deadline is
 * kept in TSC units and compared with the CPU's TSC. An expiry is acted on by `update()` (the
 * machine calls it at `nextDeadline()`) or by any register access that depends on the timer,
 * which first settles expiries that have passed; a masked timer reports no deadline, since
 * its expiries change nothing that settling later cannot reproduce.
 */
import type { AccessSize, Clock, MmioDevice } from '../bus.js';
import { type ApicBus, DeliveryMode, Shorthand } from './apic-bus.js';
import { nsAtTicks, ticksAt } from './ticks.js';

export const APIC_DEFAULT_BASE = 0xfee00000;
export const APIC_WINDOW_SIZE = 0x1000;
export const IA32_APIC_BASE = 0x1b;
export const IA32_TSC_DEADLINE = 0x6e0;
export const X2APIC_MSR_FIRST = 0x800;
export const X2APIC_MSR_LAST = 0x8ff;
/** QEMU's APIC timer input: one bus tick per nanosecond. */
export const DEFAULT_APIC_BUS_HZ = 1e9;

/** Version 0x14, maximum LVT entry 5 (timer, thermal, performance, LINT0, LINT1, error). */
const VERSION = 0x00050014;

/** IA32_APIC_BASE bits. */
const enum ApicBaseMsr {
  Bsp = 0x100,
  X2apicEnable = 0x400,
  GlobalEnable = 0x800,
  /** Bits 0-7 and 9 of the low half. */
  ReservedLow = 0x2ff,
  BaseLowMask = 0xfffff000,
}

/** Register index: MMIO offset >> 4, or x2APIC MSR - 0x800. */
const enum Reg {
  Id = 0x02,
  Version = 0x03,
  Tpr = 0x08,
  Apr = 0x09,
  Ppr = 0x0a,
  Eoi = 0x0b,
  Rrd = 0x0c,
  Ldr = 0x0d,
  Dfr = 0x0e,
  Svr = 0x0f,
  Isr = 0x10,
  Tmr = 0x18,
  Irr = 0x20,
  Esr = 0x28,
  IcrLow = 0x30,
  IcrHigh = 0x31,
  LvtTimer = 0x32,
  LvtError = 0x37,
  InitialCount = 0x38,
  CurrentCount = 0x39,
  DivideConfig = 0x3e,
  SelfIpi = 0x3f,
}

/** LVT entries in register order from LvtTimer. */
const enum Lvt {
  Timer = 0,
  Thermal = 1,
  Performance = 2,
  Lint0 = 3,
  Lint1 = 4,
  Error = 5,
}

const enum LvtBit {
  DeliveryStatus = 0x1000,
  RemoteIrr = 0x4000,
  LevelTriggered = 0x8000,
  Masked = 0x10000,
}

/** Every defined field of each LVT entry (vector, delivery mode, status, polarity, remote IRR, trigger, mask, timer mode). */
const LVT_FIELDS = [0x710ff, 0x117ff, 0x117ff, 0x1f7ff, 0x1f7ff, 0x110ff];
const LVT_READ_ONLY = LvtBit.DeliveryStatus | LvtBit.RemoteIrr;

const enum TimerMode {
  OneShot = 0,
  Periodic = 1,
  TscDeadline = 2,
}

const enum Svr {
  SoftwareEnable = 0x100,
  /** Vector, enable, focus checking. EOI-broadcast suppression (bit 12) is not offered. */
  Fields = 0x3ff,
}

const enum Esr {
  SendIllegalVector = 0x20,
  ReceiveIllegalVector = 0x40,
  IllegalRegisterAddress = 0x80,
}

/** ICR low fields: vector, delivery mode, destination mode, level, trigger, shorthand. */
const ICR_LOW_FIELDS = 0xccfff;
const enum Icr {
  Logical = 0x800,
  Assert = 0x4000,
  LevelTriggered = 0x8000,
}

const DIVIDE_FIELDS = 0xb;

export interface MsrValue {
  lo: number;
  hi: number;
}

export interface LocalApicOptions {
  /** The CPU's index, as the bus reports it in onInit/onSipi/onNmi/onKick. */
  index: number;
  /** Initial (x2)APIC ID; defaults to the index, as QEMU numbers its CPUs. */
  apicId?: number;
  bsp: boolean;
  bus: ApicBus;
  clock: Clock;
  /** The TSC rate, for the TSC-deadline timer. */
  tscHz: number;
  /** The CPU's TSC now; defaults to the virtual clock scaled to tscHz. */
  readTsc?: () => number;
  /** APIC timer input clock; defaults to QEMU's 1 GHz. */
  busHz?: number;
  /** Whether IA32_APIC_BASE accepts the x2APIC enable bit (CPUID.1:ECX.x2APIC); default true. */
  x2apic?: boolean;
  /** MAXPHYADDR, bounding the APIC base address; default 40 (QEMU's TCG default). */
  physAddrBits?: number;
}

function highestBit(bits: Uint32Array): number {
  for (let word = 7; word >= 0; word--) if (bits[word] !== 0) return word * 32 + 31 - Math.clz32(bits[word]);
  return -1;
}

function setBit(bits: Uint32Array, bit: number): void {
  bits[bit >>> 5] |= 1 << (bit & 31);
}

function clearBit(bits: Uint32Array, bit: number): void {
  bits[bit >>> 5] &= ~(1 << (bit & 31));
}

function testBit(bits: Uint32Array, bit: number): boolean {
  return (bits[bit >>> 5] & (1 << (bit & 31))) !== 0;
}

function allOnes(size: AccessSize): number {
  return size >= 4 ? -1 : (1 << (size * 8)) - 1;
}

export class LocalApic {
  readonly index: number;
  /** The x2APIC ID, fixed by hardware; its low byte is the xAPIC ID at reset. */
  readonly initialApicId: number;
  private readonly bus: ApicBus;
  private readonly clock: Clock;
  private readonly busHz: number;
  private readonly tscHz: number;
  private readonly readTsc: () => number;
  private readonly x2apicSupported: boolean;
  private readonly baseHighLimit: number;

  private bsp: boolean;
  private baseLow = APIC_DEFAULT_BASE;
  private baseHigh = 0;
  private globallyEnabled = true;
  private x2apicMode = false;

  private xapicId = 0;
  private tpr = 0;
  private svr = 0xff;
  private ldr = 0;
  private dfr = -1;
  private esr = 0;
  /** Errors detected since the last ESR write; a write moves them into ESR. */
  private errorsSinceEsrWrite = 0;
  private icrLow = 0;
  private icrHigh = 0;
  private readonly lvt = new Uint32Array(6);
  private readonly irr = new Uint32Array(8);
  private readonly isr = new Uint32Array(8);
  private readonly tmr = new Uint32Array(8);
  /** Input levels of LINT0 and LINT1. */
  private readonly lintLevels = [false, false];

  private initialCount = 0;
  private divideConfig = 0;
  /** Bus tick at which the current countdown period started. */
  private countdownStartTick = 0;
  /** Bus tick of the countdown's next expiry, Infinity when it will not expire. */
  private countdownExpiryTick = Infinity;
  private tscDeadline: MsrValue = { lo: 0, hi: 0 };

  constructor(options: LocalApicOptions) {
    this.index = options.index;
    this.initialApicId = options.apicId ?? options.index;
    this.bsp = options.bsp;
    this.bus = options.bus;
    this.clock = options.clock;
    this.busHz = options.busHz ?? DEFAULT_APIC_BUS_HZ;
    this.tscHz = options.tscHz;
    this.readTsc = options.readTsc ?? (() => ticksAt(this.clock.now(), this.tscHz));
    this.x2apicSupported = options.x2apic ?? true;
    this.baseHighLimit = 2 ** ((options.physAddrBits ?? 40) - 32);
    this.reset();
    this.bus.attach(this);
  }

  /** Power-on/RESET state: enabled in xAPIC mode at the default base, ID from hardware. */
  reset(): void {
    this.baseLow = APIC_DEFAULT_BASE;
    this.baseHigh = 0;
    this.globallyEnabled = true;
    this.x2apicMode = false;
    this.xapicId = this.initialApicId & 0xff;
    this.resetRegisters();
  }

  /** The APIC part of an INIT: every register but the ID and IA32_APIC_BASE returns to its reset value. */
  initReset(): void {
    this.resetRegisters();
  }

  private resetRegisters(): void {
    this.tpr = 0;
    this.svr = 0xff;
    this.ldr = 0;
    this.dfr = -1;
    this.esr = 0;
    this.errorsSinceEsrWrite = 0;
    this.icrLow = 0;
    this.icrHigh = 0;
    this.lvt.fill(LvtBit.Masked);
    this.irr.fill(0);
    this.isr.fill(0);
    this.tmr.fill(0);
    this.initialCount = 0;
    this.divideConfig = 0;
    this.countdownExpiryTick = Infinity;
    this.tscDeadline = { lo: 0, hi: 0 };
  }

  get hardwareEnabled(): boolean {
    return this.globallyEnabled;
  }

  get x2apicEnabled(): boolean {
    return this.x2apicMode;
  }

  get softwareEnabled(): boolean {
    return (this.svr & Svr.SoftwareEnable) !== 0;
  }

  /** Whether fixed and lowest-priority messages are taken (globally and software enabled). */
  get acceptsVectors(): boolean {
    return this.globallyEnabled && this.softwareEnabled;
  }

  /** The ID other APICs address this one by: the x2APIC ID in x2APIC mode, else the 8-bit xAPIC ID. */
  get apicId(): number {
    return this.x2apicMode ? this.initialApicId : this.xapicId;
  }

  /** Whether the 8259's INT reaches the CPU through LINT0 (unmasked, ExtINT delivery). */
  get lint0PassesExtInt(): boolean {
    const entry = this.lvt[Lvt.Lint0];
    return !(entry & LvtBit.Masked) && ((entry >>> 8) & 7) === DeliveryMode.ExtInt;
  }

  // ---- Interrupt acceptance -------------------------------------------------------------

  /** The vector the CPU would take now, or -1: the highest IRR vector whose priority class is above PPR's. */
  pendingVector(): number {
    if (!this.globallyEnabled || !this.softwareEnabled) return -1;
    const vector = highestBit(this.irr);
    if (vector < 0 || (vector & 0xf0) <= (this.processorPriority() & 0xf0)) return -1;
    return vector;
  }

  /** The CPU takes the pending interrupt: IRR→ISR and its vector, or the spurious vector if none is deliverable. */
  acknowledge(): number {
    const vector = this.pendingVector();
    if (vector < 0) return this.svr & 0xff;
    clearBit(this.irr, vector);
    setBit(this.isr, vector);
    return vector;
  }

  processorPriority(): number {
    const inService = Math.max(highestBit(this.isr), 0);
    return this.tpr >>> 4 >= inService >>> 4 ? this.tpr : inService & 0xf0;
  }

  /** APR (SDM "Arbitration Priority"), which lowest-priority delivery minimises. */
  arbitrationPriority(): number {
    const requested = Math.max(highestBit(this.irr), 0);
    const inService = Math.max(highestBit(this.isr), 0);
    if (this.tpr >>> 4 >= requested >>> 4 && this.tpr >>> 4 > inService >>> 4) return this.tpr;
    return Math.max(this.tpr & 0xf0, inService & 0xf0, requested & 0xf0);
  }

  getCr8(): number {
    return this.tpr >>> 4;
  }

  setCr8(value: number): void {
    this.tpr = (value & 0xf) << 4;
    this.bus.kick(this.index);
  }

  /** A message from the APIC bus addressed to this APIC. */
  receive(mode: DeliveryMode, vector: number, levelTriggered: boolean): void {
    if (!this.globallyEnabled) return;
    switch (mode) {
      case DeliveryMode.Fixed:
      case DeliveryMode.LowestPriority:
        // A software-disabled APIC takes only NMI, INIT and SIPI messages (as KVM has it).
        if (this.acceptsVectors) this.acceptVector(vector, levelTriggered);
        break;
      case DeliveryMode.Nmi:
        this.bus.nmi(this.index);
        break;
      case DeliveryMode.Init:
        this.bus.init(this.index);
        break;
      case DeliveryMode.StartUp:
        this.bus.sipi(this.index, vector & 0xff);
        break;
      default:
      // SMI (no SMM here) and ExtINT (not a message an APIC accepts) are dropped.
    }
  }

  private acceptVector(vector: number, levelTriggered: boolean): void {
    if (vector < 16) {
      this.recordError(Esr.ReceiveIllegalVector);
      return;
    }
    setBit(this.irr, vector);
    if (levelTriggered) setBit(this.tmr, vector);
    else clearBit(this.tmr, vector);
    this.bus.kick(this.index);
  }

  matchesDestination(destination: number, logical: boolean, broadcast: boolean): boolean {
    if (broadcast) return true;
    if (!logical) return (destination >>> 0) === this.apicId;
    if (this.x2apicMode) {
      const ldr = this.logicalDestination();
      return destination >>> 16 === ldr >>> 16 && (destination & ldr & 0xffff) !== 0;
    }
    const ownBits = this.ldr >>> 24;
    if (this.dfr >>> 28 === 0xf) return (destination & ownBits & 0xff) !== 0;
    // Cluster model: high nibble is the cluster (0xF addresses all), low nibble a member mask.
    const cluster = (destination >>> 4) & 0xf;
    return (cluster === 0xf || cluster === ownBits >>> 4) && (destination & ownBits & 0xf) !== 0;
  }

  /** x2APIC LDR: cluster (ID bits 4-19) in the high half, one bit for ID bits 0-3 in the low half. */
  private logicalDestination(): number {
    return this.x2apicMode ? (((this.initialApicId >>> 4) << 16) | (1 << (this.initialApicId & 0xf))) >>> 0 : this.ldr;
  }

  private endOfInterrupt(): void {
    const vector = highestBit(this.isr);
    if (vector < 0) return;
    clearBit(this.isr, vector);
    if (testBit(this.tmr, vector)) {
      for (const lint of [Lvt.Lint0, Lvt.Lint1] as const) {
        if ((this.lvt[lint] & 0xff) === vector && this.lvt[lint] & LvtBit.RemoteIrr) {
          this.lvt[lint] &= ~LvtBit.RemoteIrr;
          this.redeliverLint(lint);
        }
      }
      this.bus.broadcastEoi(vector);
    }
    this.bus.kick(this.index);
  }

  private recordError(bits: number): void {
    const fresh = bits & ~this.errorsSinceEsrWrite;
    this.errorsSinceEsrWrite |= bits;
    // Only a new error raises the error interrupt, so an illegal error vector cannot loop.
    if (fresh) this.deliverLocal(Lvt.Error);
  }

  /** Deliver a local vector source (timer, error) as a fixed edge interrupt unless masked. */
  private deliverLocal(entryIndex: Lvt): void {
    const entry = this.lvt[entryIndex];
    if (!(entry & LvtBit.Masked)) this.acceptVector(entry & 0xff, false);
  }

  // ---- LINT0/LINT1 ----------------------------------------------------------------------

  /** The level on LINT0, where a PC wires the 8259's INT. */
  setLint0(level: boolean): void {
    this.driveLint(Lvt.Lint0, level);
  }

  private driveLint(lint: Lvt.Lint0 | Lvt.Lint1, level: boolean): void {
    const wasHigh = this.lintLevels[lint - Lvt.Lint0];
    this.lintLevels[lint - Lvt.Lint0] = level;
    const entry = this.lvt[lint];
    if (!this.globallyEnabled || entry & LvtBit.Masked || !level) return;
    const mode = (entry >>> 8) & 7;
    if (mode === DeliveryMode.Fixed && entry & LvtBit.LevelTriggered) {
      // Level-triggered: accepted again only after the EOI clears remote IRR.
      if (entry & LvtBit.RemoteIrr) return;
      this.lvt[lint] |= LvtBit.RemoteIrr;
      this.acceptVector(entry & 0xff, true);
      return;
    }
    if (wasHigh) return;
    if (mode === DeliveryMode.Fixed) this.acceptVector(entry & 0xff, false);
    else if (mode === DeliveryMode.Nmi) this.bus.nmi(this.index);
    else if (mode === DeliveryMode.Init) this.bus.init(this.index);
    // ExtINT needs nothing here: the CPU asks the 8259 for the vector (see CpuInterrupts).
  }

  private redeliverLint(lint: Lvt.Lint0 | Lvt.Lint1): void {
    if (this.lintLevels[lint - Lvt.Lint0]) this.driveLint(lint, true);
  }

  // ---- Timer ------------------------------------------------------------------------------

  private timerMode(): TimerMode {
    const mode = (this.lvt[Lvt.Timer] >>> 17) & 3;
    // Mode 3 is reserved; it counts like one-shot.
    return mode === 3 ? TimerMode.OneShot : mode;
  }

  private divisor(): number {
    const code = (this.divideConfig & 3) | ((this.divideConfig >>> 1) & 4);
    return 1 << ((code + 1) & 7);
  }

  private nowTick(): number {
    return ticksAt(this.clock.now(), this.busHz);
  }

  private tscDeadlineValue(): number {
    return this.tscDeadline.hi * 2 ** 32 + this.tscDeadline.lo;
  }

  /** Virtual ns of the next timer interrupt, Infinity if none is coming. */
  nextDeadline(): number {
    if (!this.globallyEnabled || this.lvt[Lvt.Timer] & LvtBit.Masked) return Infinity;
    if (this.timerMode() !== TimerMode.TscDeadline) return nsAtTicks(this.countdownExpiryTick, this.busHz);
    const deadline = this.tscDeadlineValue();
    if (deadline === 0) return Infinity;
    const now = Math.floor(this.clock.now());
    const tscNow = this.readTsc();
    if (tscNow >= deadline) return now;
    // At least 1 ns ahead: the TSC may be scaled or offset so that our estimate lands early.
    return now + Math.max(nsAtTicks(deadline - tscNow, this.tscHz), 1);
  }

  /** Act on a timer expiry that is due. */
  update(): void {
    this.settleTimer();
  }

  private settleTimer(): void {
    if (!this.globallyEnabled) return;
    if (this.timerMode() === TimerMode.TscDeadline) {
      const deadline = this.tscDeadlineValue();
      if (deadline === 0 || this.readTsc() < deadline) return;
      this.tscDeadline = { lo: 0, hi: 0 };
      this.deliverLocal(Lvt.Timer);
      return;
    }
    const tick = this.nowTick();
    if (tick < this.countdownExpiryTick) return;
    if (this.timerMode() === TimerMode.Periodic) {
      const period = this.initialCount * this.divisor();
      this.countdownStartTick += Math.floor((tick - this.countdownStartTick) / period) * period;
      this.countdownExpiryTick = this.countdownStartTick + period;
    } else {
      this.countdownExpiryTick = Infinity;
    }
    this.deliverLocal(Lvt.Timer);
  }

  private startCountdown(): void {
    this.countdownStartTick = this.nowTick();
    this.countdownExpiryTick = this.initialCount === 0 ? Infinity : this.countdownStartTick + this.initialCount * this.divisor();
  }

  private currentCount(): number {
    if (this.timerMode() === TimerMode.TscDeadline || this.initialCount === 0) return 0;
    const counted = Math.floor((this.nowTick() - this.countdownStartTick) / this.divisor());
    if (this.timerMode() === TimerMode.Periodic) return this.initialCount - (counted % this.initialCount);
    return counted >= this.initialCount ? 0 : this.initialCount - counted;
  }

  /** A new divide value applies from now on: the count reached so far is kept and counting continues at the new rate. */
  private setDivideConfig(value: number): void {
    const running = this.countdownExpiryTick !== Infinity;
    const remaining = this.currentCount();
    this.divideConfig = value & DIVIDE_FIELDS;
    if (!running) return;
    const divisor = this.divisor();
    this.countdownStartTick = this.nowTick() - (this.initialCount - remaining) * divisor;
    this.countdownExpiryTick = this.countdownStartTick + this.initialCount * divisor;
  }

  private writeTimerLvt(value: number): void {
    const oldMode = this.timerMode();
    this.lvt[Lvt.Timer] = value;
    const newMode = this.timerMode();
    if ((oldMode === TimerMode.TscDeadline) !== (newMode === TimerMode.TscDeadline)) {
      // Switching into or out of TSC-deadline mode disarms the timer (SDM 10.5.4.1).
      this.initialCount = 0;
      this.countdownExpiryTick = Infinity;
      this.tscDeadline = { lo: 0, hi: 0 };
    } else if (newMode !== oldMode && this.countdownExpiryTick !== Infinity) {
      // One-shot <-> periodic: the current period runs out under the new mode.
      const period = this.initialCount * this.divisor();
      this.countdownStartTick += Math.floor((this.nowTick() - this.countdownStartTick) / period) * period;
    }
  }

  // ---- Register file ----------------------------------------------------------------------

  /** A register's value, or undefined if it does not exist (or is write-only) in the current mode. */
  private readRegister(index: number, x2: boolean): number | undefined {
    if (index >= Reg.Isr && index < Reg.Isr + 8) return this.isr[index - Reg.Isr];
    if (index >= Reg.Tmr && index < Reg.Tmr + 8) return this.tmr[index - Reg.Tmr];
    if (index >= Reg.Irr && index < Reg.Irr + 8) return this.irr[index - Reg.Irr];
    if (index >= Reg.LvtTimer && index <= Reg.LvtError) return this.lvt[index - Reg.LvtTimer];
    switch (index) {
      case Reg.Id:
        return x2 ? this.initialApicId : this.xapicId << 24;
      case Reg.Version:
        return VERSION;
      case Reg.Tpr:
        return this.tpr;
      case Reg.Apr:
        return x2 ? undefined : this.arbitrationPriority();
      case Reg.Ppr:
        return this.processorPriority();
      case Reg.Eoi:
      case Reg.Rrd:
        // Write-only EOI and the obsolete remote read register read 0 over MMIO.
        return x2 ? undefined : 0;
      case Reg.Ldr:
        return this.logicalDestination();
      case Reg.Dfr:
        return x2 ? undefined : this.dfr;
      case Reg.Svr:
        return this.svr;
      case Reg.Esr:
        return this.esr;
      case Reg.IcrLow:
        return this.icrLow;
      case Reg.IcrHigh:
        return x2 ? undefined : this.icrHigh;
      case Reg.InitialCount:
        return this.initialCount;
      case Reg.CurrentCount:
        return this.currentCount();
      case Reg.DivideConfig:
        return this.divideConfig;
      default:
        return undefined;
    }
  }

  /**
   * Write a register. False means the access is invalid: a #GP in x2APIC mode (read-only or
   * missing register, reserved bits set), an illegal register address in xAPIC mode.
   */
  private writeRegister(index: number, value: number, x2: boolean): boolean {
    const reservedSet = (fields: number) => x2 && (value & ~fields) !== 0;
    if (index >= Reg.LvtTimer && index <= Reg.LvtError) {
      const entry = (index - Reg.LvtTimer) as Lvt;
      if (reservedSet(LVT_FIELDS[entry])) return false;
      let written = (value & LVT_FIELDS[entry] & ~LVT_READ_ONLY) | (this.lvt[entry] & LVT_READ_ONLY);
      if (!this.softwareEnabled) written |= LvtBit.Masked;
      if (entry === Lvt.Timer) this.writeTimerLvt(written);
      else this.lvt[entry] = written;
      if (entry === Lvt.Lint0 || entry === Lvt.Lint1) this.redeliverLint(entry);
      return true;
    }
    const readOnly = (index >= Reg.Isr && index < Reg.Irr + 8) || index === Reg.Version || index === Reg.Ppr || index === Reg.CurrentCount;
    if (readOnly) return !x2;
    switch (index) {
      case Reg.Id:
        if (x2) return false;
        this.xapicId = value >>> 24;
        return true;
      case Reg.Tpr:
        if (reservedSet(0xff)) return false;
        this.tpr = value & 0xff;
        this.bus.kick(this.index);
        return true;
      case Reg.Apr:
      case Reg.Rrd:
        return !x2;
      case Reg.Eoi:
        if (x2 && value !== 0) return false;
        this.endOfInterrupt();
        return true;
      case Reg.Ldr:
        if (x2) return false;
        this.ldr = value & 0xff000000;
        return true;
      case Reg.Dfr:
        if (x2) return false;
        this.dfr = value | 0x0fffffff;
        return true;
      case Reg.Svr:
        if (reservedSet(Svr.Fields)) return false;
        this.svr = value & Svr.Fields;
        if (!this.softwareEnabled) for (let i = 0; i < this.lvt.length; i++) this.lvt[i] |= LvtBit.Masked;
        this.bus.kick(this.index);
        return true;
      case Reg.Esr:
        if (x2 && value !== 0) return false;
        this.esr = this.errorsSinceEsrWrite;
        this.errorsSinceEsrWrite = 0;
        return true;
      case Reg.IcrLow:
        // In x2APIC mode ICR is written whole through writeMsr.
        if (x2) return false;
        this.icrLow = value & ICR_LOW_FIELDS;
        this.sendIpi();
        return true;
      case Reg.IcrHigh:
        if (x2) return false;
        this.icrHigh = value & 0xff000000;
        return true;
      case Reg.InitialCount:
        if (this.timerMode() === TimerMode.TscDeadline) return true;
        this.initialCount = value >>> 0;
        this.startCountdown();
        return true;
      case Reg.DivideConfig:
        if (reservedSet(DIVIDE_FIELDS)) return false;
        this.setDivideConfig(value);
        return true;
      case Reg.SelfIpi:
        if (!x2 || reservedSet(0xff)) return false;
        this.sendMessage(DeliveryMode.Fixed, value & 0xff, false, Shorthand.Self, 0, false);
        return true;
      default:
        return false;
    }
  }

  private sendIpi(): void {
    const low = this.icrLow;
    const mode = ((low >>> 8) & 7) as DeliveryMode;
    // INIT level de-assert only resynchronises arbitration IDs; nothing is reset.
    if (mode === DeliveryMode.Init && !(low & Icr.Assert) && low & Icr.LevelTriggered) return;
    const destination = this.x2apicMode ? this.icrHigh >>> 0 : this.icrHigh >>> 24;
    this.sendMessage(mode, low & 0xff, (low & Icr.LevelTriggered) !== 0, ((low >>> 18) & 3) as Shorthand, destination, (low & Icr.Logical) !== 0);
  }

  private sendMessage(mode: DeliveryMode, vector: number, levelTriggered: boolean, shorthand: Shorthand, destination: number, logical: boolean): void {
    if ((mode === DeliveryMode.Fixed || mode === DeliveryMode.LowestPriority) && vector < 16) {
      this.recordError(Esr.SendIllegalVector);
      return;
    }
    const broadcast = this.x2apicMode ? destination === 0xffffffff : !logical && destination === 0xff;
    this.bus.send({ deliveryMode: mode, vector, levelTriggered, destination, logical, broadcast }, shorthand, this);
  }

  // ---- xAPIC MMIO -----------------------------------------------------------------------

  /** Whether the MMIO window belongs to this APIC now: enabled, xAPIC mode, at the default base. */
  private get mmioVisible(): boolean {
    return this.globallyEnabled && !this.x2apicMode && this.baseLow === APIC_DEFAULT_BASE && this.baseHigh === 0;
  }

  mmioRead(offset: number, size: AccessSize): number {
    if (!this.mmioVisible) return allOnes(size);
    const byteInRegister = offset & 0xf;
    // Registers are 32 bits on 16-byte boundaries; the other 12 bytes read as 0.
    if (byteInRegister >= 4) return 0;
    this.settleTimer();
    let value = this.readRegister(offset >>> 4, false);
    if (value === undefined) {
      this.recordError(Esr.IllegalRegisterAddress);
      value = 0;
    }
    value >>>= byteInRegister * 8;
    return size >= 4 ? value | 0 : value & allOnes(size);
  }

  mmioWrite(offset: number, size: AccessSize, value: number): void {
    if (!this.mmioVisible || offset & 0xf || size < 4) return;
    this.settleTimer();
    if (!this.writeRegister(offset >>> 4, value >>> 0, false)) this.recordError(Esr.IllegalRegisterAddress);
  }

  // ---- MSRs -------------------------------------------------------------------------------

  /** Whether `msr` is one the local APIC answers (the CPU sends these to readMsr/writeMsr). */
  static ownsMsr(msr: number): boolean {
    return msr === IA32_APIC_BASE || msr === IA32_TSC_DEADLINE || (msr >= X2APIC_MSR_FIRST && msr <= X2APIC_MSR_LAST);
  }

  /** RDMSR of an APIC MSR; undefined means #GP. */
  readMsr(msr: number): MsrValue | undefined {
    if (msr === IA32_APIC_BASE) {
      const lo = this.baseLow | (this.bsp ? ApicBaseMsr.Bsp : 0) | (this.x2apicMode ? ApicBaseMsr.X2apicEnable : 0) | (this.globallyEnabled ? ApicBaseMsr.GlobalEnable : 0);
      return { lo: lo >>> 0, hi: this.baseHigh };
    }
    if (msr === IA32_TSC_DEADLINE) {
      this.settleTimer();
      // Reads 0 outside TSC-deadline mode (writes are ignored there).
      return this.timerMode() === TimerMode.TscDeadline ? { ...this.tscDeadline } : { lo: 0, hi: 0 };
    }
    if (msr < X2APIC_MSR_FIRST || msr > X2APIC_MSR_LAST || !this.x2apicMode) return undefined;
    const index = msr - X2APIC_MSR_FIRST;
    if (index === Reg.IcrLow) return { lo: this.icrLow, hi: this.icrHigh };
    this.settleTimer();
    const value = this.readRegister(index, true);
    return value === undefined ? undefined : { lo: value >>> 0, hi: 0 };
  }

  /** WRMSR of an APIC MSR; false means #GP. */
  writeMsr(msr: number, lo: number, hi: number): boolean {
    lo >>>= 0;
    hi >>>= 0;
    if (msr === IA32_APIC_BASE) return this.writeApicBase(lo, hi);
    if (msr === IA32_TSC_DEADLINE) {
      this.settleTimer();
      if (this.globallyEnabled && this.timerMode() === TimerMode.TscDeadline) {
        this.tscDeadline = { lo, hi };
        this.settleTimer();
      }
      return true;
    }
    if (msr < X2APIC_MSR_FIRST || msr > X2APIC_MSR_LAST || !this.x2apicMode) return false;
    const index = msr - X2APIC_MSR_FIRST;
    this.settleTimer();
    if (index === Reg.IcrLow) {
      if (lo & ~ICR_LOW_FIELDS) return false;
      this.icrLow = lo;
      this.icrHigh = hi;
      this.sendIpi();
      return true;
    }
    // Only ICR has an upper half.
    if (hi !== 0) return false;
    return this.writeRegister(index, lo, true);
  }

  /** IA32_APIC_BASE with the SDM's mode transitions: disabled <-> xAPIC -> x2APIC -> disabled. */
  private writeApicBase(lo: number, hi: number): boolean {
    const reserved = ApicBaseMsr.ReservedLow | (this.x2apicSupported ? 0 : ApicBaseMsr.X2apicEnable);
    if (lo & reserved || hi >= this.baseHighLimit) return false;
    const enable = (lo & ApicBaseMsr.GlobalEnable) !== 0;
    const x2 = (lo & ApicBaseMsr.X2apicEnable) !== 0;
    if (x2 && !enable) return false;
    if (this.x2apicMode && enable && !x2) return false;
    if (!this.globallyEnabled && x2) return false;
    this.settleTimer();
    this.bsp = (lo & ApicBaseMsr.Bsp) !== 0;
    this.baseLow = (lo & ApicBaseMsr.BaseLowMask) >>> 0;
    this.baseHigh = hi;
    if (!enable && this.globallyEnabled) {
      this.globallyEnabled = false;
      this.x2apicMode = false;
      this.resetRegisters();
    } else if (enable) {
      this.globallyEnabled = true;
      this.x2apicMode = x2;
    }
    this.bus.kick(this.index);
    return true;
  }
}

/**
 * The 4 KiB window at 0xFEE00000, shared by all CPUs on the MMIO bus: each access goes to the
 * local APIC of the CPU making it, which the machine names through `currentCpu`.
 */
export class LocalApicWindow implements MmioDevice {
  constructor(
    private readonly lapics: readonly LocalApic[],
    private readonly currentCpu: () => number,
  ) {}

  read(offset: number, size: AccessSize): number {
    const lapic = this.lapics[this.currentCpu()];
    return lapic ? lapic.mmioRead(offset, size) : allOnes(size);
  }

  write(offset: number, size: AccessSize, value: number): void {
    this.lapics[this.currentCpu()]?.mmioWrite(offset, size, value);
  }
}
