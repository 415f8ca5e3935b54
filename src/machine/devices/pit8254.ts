/**
 * The 8254 programmable interval timer at 0x40-0x43, with channel 0 driving IRQ 0, and the
 * PC's system control port B at 0x61 that gates channel 2 and reads its output (the way
 * kernels calibrate the TSC against the PIT).
 *
 * Counters are not stepped: each channel remembers the tick (of the 1.193182 MHz input clock,
 * counted from virtual time 0) at which its current count started, and its count value and
 * OUT level at any later tick follow from the mode's datasheet waveform. Every access first
 * brings the device up to "now" (`sync`): rising edges of channel 0's OUT since the last sync
 * become an IRQ 0 pulse (low then high, so an edge-triggered input latches it however late
 * the sync is), and a count written to a running mode 2/3 counter takes over at the end of the
 * current period, as the datasheet says, by being applied when that boundary is passed.
 *
 * Modes 0-5 are all here because they differ only in those formulas: 0 interrupt on terminal
 * count, 1 hardware one-shot, 2 rate generator, 3 square wave, 4 software strobe, 5 hardware
 * strobe. Gates follow the datasheet (low stops modes 0/2/3/4 and forces OUT high in 2/3; a
 * rising gate starts 1/5 and restarts 2/3); channels 0 and 1 have their gates tied high, so
 * modes 1 and 5 never trigger there. The counter latch command, read-back (status and count)
 * and BCD counting are supported. Power-on state is QEMU's: every channel in mode 3 counting
 * 65536, channel 2's gate low.
 */
import type { AccessSize, Clock, PortDevice } from '../bus.js';
import { readBytewise, writeBytewise } from './byte-ports.js';
import { nsAtTicks, ticksAt } from './ticks.js';

export const PIT_PORT = 0x40;
export const PIT_HZ = 1193182;
export const SYSTEM_CONTROL_B_PORT = 0x61;
const CONTROL_PORT = 0x43;
/** DRAM refresh requests toggle port 0x61 bit 4 every 15.085 µs on a PC. */
const REFRESH_TOGGLE_NS = 15085;

/** Read/write access selected by control word bits 5-4. */
const enum Access {
  /** Only after power-on, before any control word: counter reads and writes do nothing. */
  None = 0,
  Low = 1,
  High = 2,
  LowThenHigh = 3,
}

const enum Status {
  Output = 0x80,
  NullCount = 0x40,
}

const enum PortB {
  Gate2 = 0x01,
  SpeakerData = 0x02,
  Refresh = 0x10,
  Out2 = 0x20,
}

class PitChannel {
  mode = 3;
  bcd = false;
  access = Access.None;
  gate: boolean;
  /** N, 1..65536 (10000 in BCD), loaded into the counter. */
  count = 0x10000;
  /** Whether a count has been written since the last control word (a gate trigger needs one). */
  private countWritten = true;
  /** Tick at which the current count started; undefined while not counting. */
  private startTick: number | undefined;
  /** Elapsed ticks frozen while a low gate holds mode 0 or 4. */
  private pausedElapsed: number | undefined;
  /** A count written to a running mode 2/3 counter, and the period boundary where it takes over. */
  private pendingCount: number | undefined;
  private pendingAtTick = 0;
  private nullCount = false;
  /** OUT while no count runs: low after a mode 0 control word, high otherwise. */
  private idleOutput = true;
  /** The value the counter shows while it does not count. */
  private frozenValue = 0;
  private lowByteWritten: number | undefined;
  private readHighNext = false;
  private latchedBytes: number[] = [];
  private latchedStatus: number | undefined;

  constructor(gate: boolean) {
    this.gate = gate;
    // Power-on as QEMU has it: mode 3 counting 65536 from time 0 wherever the gate allows.
    this.startTick = gate ? 0 : undefined;
  }

  private get modulus(): number {
    return this.bcd ? 10000 : 0x10000;
  }

  private elapsed(tick: number): number {
    return this.pausedElapsed ?? tick - (this.startTick as number);
  }

  /** Load a pending mode 2/3 count whose period boundary `tick` has reached. */
  settle(tick: number): void {
    if (this.pendingCount === undefined || this.startTick === undefined || tick < this.pendingAtTick) return;
    this.startTick = this.pendingAtTick;
    this.count = this.pendingCount;
    this.pendingCount = undefined;
    this.nullCount = false;
  }

  /** First period boundary (reload) after `tick` of a counting mode 2/3 channel. */
  private nextReload(tick: number): number {
    const start = this.startTick as number;
    return start + (Math.floor(Math.max(tick - start, 0) / this.count) + 1) * this.count;
  }

  output(tick: number): boolean {
    if (this.startTick === undefined) return this.idleOutput;
    const d = this.elapsed(tick);
    const n = this.count;
    switch (this.mode) {
      case 0:
      case 1:
        return d >= n;
      case 2:
        return d % n !== n - 1;
      case 3:
        return d % n < Math.ceil(n / 2);
      default:
        return d !== n;
    }
  }

  value(tick: number): number {
    if (this.startTick === undefined) return this.frozenValue;
    const d = this.elapsed(tick);
    const n = this.count;
    switch (this.mode) {
      case 2:
        return (n - (d % n)) % this.modulus;
      case 3: {
        // Mode 3 counts down by two, through each half of the period in turn.
        const highTicks = Math.ceil(n / 2);
        const phase = d % n;
        const step = phase < highTicks ? phase : phase - highTicks;
        return ((n & ~1) - 2 * step + this.modulus) % this.modulus;
      }
      default:
        // Modes 0, 1, 4, 5 keep counting down past zero, wrapping.
        return (((n - d) % this.modulus) + this.modulus) % this.modulus;
    }
  }

  /** First tick after `tick` at which OUT rises, Infinity if it will not without new input. */
  nextRisingEdge(tick: number): number {
    if (this.startTick === undefined || this.pausedElapsed !== undefined) return Infinity;
    const n = this.count;
    switch (this.mode) {
      case 0:
      case 1:
        return this.startTick + n > tick ? this.startTick + n : Infinity;
      case 2:
      case 3:
        return this.nextReload(tick);
      default:
        // The strobe: low for the one tick at terminal count, rising after it.
        return this.startTick + n + 1 > tick ? this.startTick + n + 1 : Infinity;
    }
  }

  writeControl(mode: number, access: Access, bcd: boolean, tick: number): void {
    this.frozenValue = this.value(tick);
    // Modes 6 and 7 are aliases of 2 and 3.
    this.mode = mode > 5 ? mode - 4 : mode;
    this.access = access;
    this.bcd = bcd;
    this.countWritten = false;
    this.startTick = undefined;
    this.pausedElapsed = undefined;
    this.pendingCount = undefined;
    this.nullCount = true;
    this.idleOutput = this.mode !== 0;
    this.lowByteWritten = undefined;
    this.readHighNext = false;
    this.latchedBytes = [];
    this.latchedStatus = undefined;
  }

  writeCounter(byte: number, tick: number): void {
    let raw: number;
    switch (this.access) {
      case Access.Low:
        raw = byte;
        break;
      case Access.High:
        raw = byte << 8;
        break;
      case Access.LowThenHigh:
        if (this.lowByteWritten === undefined) {
          this.lowByteWritten = byte;
          // Writing the first byte of a mode 0 count stops the count and drops OUT.
          if (this.mode === 0) {
            this.frozenValue = this.value(tick);
            this.startTick = undefined;
            this.pausedElapsed = undefined;
            this.idleOutput = false;
          }
          return;
        }
        raw = this.lowByteWritten | (byte << 8);
        this.lowByteWritten = undefined;
        break;
      default:
        return;
    }
    this.load(this.decode(raw), tick);
  }

  private decode(raw: number): number {
    const n = this.bcd ? (raw >>> 12) * 1000 + ((raw >>> 8) & 15) * 100 + ((raw >>> 4) & 15) * 10 + (raw & 15) : raw;
    return n === 0 ? this.modulus : n;
  }

  private load(n: number, tick: number): void {
    this.countWritten = true;
    this.nullCount = true;
    switch (this.mode) {
      case 2:
      case 3:
        if (this.startTick !== undefined) {
          // A running rate generator finishes its period with the old count.
          this.pendingCount = n;
          this.pendingAtTick = this.nextReload(tick);
        } else {
          this.count = n;
          if (this.gate) this.start(tick);
        }
        return;
      case 1:
      case 5:
        // Loaded by the next gate trigger.
        this.count = n;
        return;
      default:
        this.count = n;
        this.start(tick);
        if (!this.gate) this.pausedElapsed = 0;
    }
  }

  private start(tick: number): void {
    this.startTick = tick;
    this.pausedElapsed = undefined;
    this.nullCount = false;
  }

  setGate(gate: boolean, tick: number): void {
    if (gate === this.gate) return;
    this.gate = gate;
    switch (this.mode) {
      case 0:
      case 4:
        // The gate suspends counting and resumes it where it stood.
        if (this.startTick === undefined) return;
        if (!gate) this.pausedElapsed = tick - this.startTick;
        else if (this.pausedElapsed !== undefined) {
          this.startTick = tick - this.pausedElapsed;
          this.pausedElapsed = undefined;
        }
        return;
      case 1:
      case 5:
        if (gate && this.countWritten) this.start(tick);
        return;
      default:
        if (gate) {
          // A rising gate reloads the latest count and starts a new period.
          if (!this.countWritten) return;
          if (this.pendingCount !== undefined) this.count = this.pendingCount;
          this.pendingCount = undefined;
          this.start(tick);
        } else if (this.startTick !== undefined) {
          // A low gate stops the count and holds OUT high.
          this.frozenValue = this.value(tick);
          this.startTick = undefined;
          this.idleOutput = true;
        }
    }
  }

  latchCount(tick: number): void {
    if (this.latchedBytes.length > 0) return;
    const value = this.bcd ? encodeBcd(this.value(tick)) : this.value(tick);
    if (this.access === Access.Low) this.latchedBytes = [value & 0xff];
    else if (this.access === Access.High) this.latchedBytes = [value >>> 8];
    else this.latchedBytes = [value & 0xff, value >>> 8];
  }

  latchStatus(tick: number): void {
    if (this.latchedStatus !== undefined) return;
    this.latchedStatus = (this.output(tick) ? Status.Output : 0) | (this.nullCount ? Status.NullCount : 0) | (this.access << 4) | (this.mode << 1) | (this.bcd ? 1 : 0);
  }

  readCounter(tick: number): number {
    if (this.latchedStatus !== undefined) {
      const status = this.latchedStatus;
      this.latchedStatus = undefined;
      return status;
    }
    if (this.latchedBytes.length > 0) return this.latchedBytes.shift()!;
    const value = this.bcd ? encodeBcd(this.value(tick)) : this.value(tick);
    switch (this.access) {
      case Access.Low:
        return value & 0xff;
      case Access.High:
        return value >>> 8;
      case Access.LowThenHigh: {
        const high = this.readHighNext;
        this.readHighNext = !high;
        return high ? value >>> 8 : value & 0xff;
      }
      default:
        return 0;
    }
  }
}

function encodeBcd(value: number): number {
  return ((Math.floor(value / 1000) % 10) << 12) | ((Math.floor(value / 100) % 10) << 8) | ((Math.floor(value / 10) % 10) << 4) | (value % 10);
}

export interface PitOptions {
  clock: Clock;
  /** IRQ 0's new level (channel 0's OUT). */
  setIrq0: (level: boolean) => void;
}

export class Pit8254 implements PortDevice {
  readonly channels = [new PitChannel(true), new PitChannel(true), new PitChannel(false)];
  private readonly clock: Clock;
  private readonly setIrq0: (level: boolean) => void;
  private syncedTick = 0;
  private irqLevel = false;
  private speakerData = false;
  private readonly owns = (port: number) => (port >= PIT_PORT && port <= CONTROL_PORT) || port === SYSTEM_CONTROL_B_PORT;

  constructor(options: PitOptions) {
    this.clock = options.clock;
    this.setIrq0 = options.setIrq0;
    // OUT0 is high from power-on (mode 3, first half): say so before anyone listens for edges.
    this.syncedTick = ticksAt(this.clock.now(), PIT_HZ);
    this.setIrqLevel(this.channels[0].output(this.syncedTick));
  }

  /** Virtual ns of channel 0's next rising edge (the next IRQ 0), Infinity if none is coming. */
  nextDeadline(): number {
    return nsAtTicks(this.channels[0].nextRisingEdge(this.syncedTick), PIT_HZ);
  }

  /** Deliver the IRQ 0 edges that are due. */
  update(): void {
    this.sync();
  }

  in(port: number, size: AccessSize): number {
    return readBytewise(port, size, this.owns, (p) => this.readByte(p));
  }

  out(port: number, size: AccessSize, value: number): void {
    writeBytewise(port, size, value, this.owns, (p, byte) => this.writeByte(p, byte));
  }

  private readByte(port: number): number {
    const tick = this.sync();
    if (port === SYSTEM_CONTROL_B_PORT) {
      const channel2 = this.channels[2];
      const refresh = Math.floor(this.clock.now() / REFRESH_TOGGLE_NS) & 1;
      return (channel2.gate ? PortB.Gate2 : 0) | (this.speakerData ? PortB.SpeakerData : 0) | (refresh ? PortB.Refresh : 0) | (channel2.output(tick) ? PortB.Out2 : 0);
    }
    if (port === CONTROL_PORT) return 0xff;
    return this.channels[port - PIT_PORT].readCounter(tick);
  }

  private writeByte(port: number, value: number): void {
    const tick = this.sync();
    if (port === SYSTEM_CONTROL_B_PORT) {
      this.channels[2].setGate((value & PortB.Gate2) !== 0, tick);
      this.speakerData = (value & PortB.SpeakerData) !== 0;
    } else if (port === CONTROL_PORT) {
      this.writeControl(value, tick);
    } else {
      this.channels[port - PIT_PORT].writeCounter(value, tick);
    }
    this.sync();
  }

  private writeControl(value: number, tick: number): void {
    const select = value >>> 6;
    if (select === 3) {
      // Read-back: bit 5 clear latches counts, bit 4 clear latches status, bits 1-3 pick channels.
      for (let i = 0; i < 3; i++) {
        if (!(value & (2 << i))) continue;
        if (!(value & 0x10)) this.channels[i].latchStatus(tick);
        if (!(value & 0x20)) this.channels[i].latchCount(tick);
      }
      return;
    }
    const access = ((value >>> 4) & 3) as Access;
    if (access === Access.None) this.channels[select].latchCount(tick);
    else this.channels[select].writeControl((value >>> 1) & 7, access, (value & 1) !== 0, tick);
  }

  /** Bring every channel to now, pulse IRQ 0 for edges passed since the last sync, and return the current tick. */
  private sync(): number {
    const tick = ticksAt(this.clock.now(), PIT_HZ);
    const channel0 = this.channels[0];
    const edgeDue = channel0.nextRisingEdge(this.syncedTick) <= tick;
    for (const channel of this.channels) channel.settle(tick);
    this.syncedTick = tick;
    if (edgeDue) {
      this.setIrqLevel(false);
      this.setIrqLevel(true);
    }
    this.setIrqLevel(channel0.output(tick));
    return tick;
  }

  private setIrqLevel(level: boolean): void {
    if (level === this.irqLevel) return;
    this.irqLevel = level;
    this.setIrq0(level);
  }
}
