/**
 * A 16550A UART at COM1 (ports 0x3F8-0x3FF, IRQ 4): the guest's console.
 *
 * Output is immediate: a byte written to THR goes to `onOutput` at once and the transmitter is
 * empty again before the guest can look, so LSR always shows THRE|TEMT and a THR-empty
 * interrupt follows every write (the line drops and rises again, so an edge-triggered PIC sees
 * each one, as with QEMU). Input from the host waits in an unbounded host-side queue and is
 * moved into the receiver (a 16-byte FIFO, or the single RBR with FIFOs off) only while there
 * is room, the way QEMU's character backend only offers what the UART can take, so the host
 * can never overrun the guest. Overruns still happen in loopback mode, where the guest
 * feeds itself.
 *
 * With FIFOs on, the received-data interrupt waits for the trigger level, and the character
 * timeout interrupt covers the rest after four character times without FIFO activity; the
 * character time follows the divisor and LCR framing on the virtual clock, which is why the
 * UART has a deadline like the timers. The interrupt identification follows the datasheet's
 * priorities (line status, received data/timeout, THR empty, modem status); a THR-empty
 * interrupt is cleared by reading IIR while it is the one shown, or by writing THR.
 *
 * The interrupt output goes straight to IRQ 4 without the PC's MCR.OUT2 gate, because QEMU
 * does not gate it and guests written against QEMU may never set OUT2. `setIrq` is called only
 * when the line's level changes.
 */
import type { AccessSize, Clock, PortDevice } from '../bus.js';
import { readBytewise, writeBytewise } from './byte-ports.js';

export const COM1_PORT = 0x3f8;
export const COM1_IRQ = 4;
const PORT_COUNT = 8;

const FIFO_SIZE = 16;
/** The 1.8432 MHz crystal divided by 16: the baud rate at divisor 1. */
const BAUD_BASE = 115200;

/** Register offsets from the base port. */
const enum Reg {
  /** RBR on read, THR on write; DLL when LCR.DLAB. */
  Data = 0,
  /** IER; DLM when LCR.DLAB. */
  Ier = 1,
  /** IIR on read, FCR on write. */
  IirFcr = 2,
  Lcr = 3,
  Mcr = 4,
  Lsr = 5,
  Msr = 6,
  Scr = 7,
}

const enum Ier {
  ReceivedData = 0x01,
  ThrEmpty = 0x02,
  LineStatus = 0x04,
  ModemStatus = 0x08,
}

/** IIR interrupt identification codes (bits 0-3); bit 0 set means none pending. */
const enum Iir {
  None = 0x01,
  ModemStatus = 0x00,
  ThrEmpty = 0x02,
  ReceivedData = 0x04,
  LineStatus = 0x06,
  CharacterTimeout = 0x0c,
  /** Bits 6-7: FIFOs enabled. */
  FifosEnabled = 0xc0,
}

const enum Fcr {
  Enable = 0x01,
  ClearReceiver = 0x02,
  ClearTransmitter = 0x04,
  /** The bits that stay set: enable, DMA mode, trigger level. */
  Sticky = 0xc9,
}

const enum Lcr {
  ParityEnable = 0x08,
  TwoStopBits = 0x04,
  Dlab = 0x80,
}

const enum Mcr {
  Dtr = 0x01,
  Rts = 0x02,
  Out1 = 0x04,
  Out2 = 0x08,
  Loopback = 0x10,
  Writable = 0x1f,
}

const enum Lsr {
  DataReady = 0x01,
  Overrun = 0x02,
  Parity = 0x04,
  Framing = 0x08,
  Break = 0x10,
  ThrEmpty = 0x20,
  TransmitterEmpty = 0x40,
  /** The error bits that raise a line-status interrupt and clear when LSR is read. */
  Errors = 0x1e,
}

const enum Msr {
  DeltaCts = 0x01,
  DeltaDsr = 0x02,
  TrailingRi = 0x04,
  DeltaDcd = 0x08,
  Cts = 0x10,
  Dsr = 0x20,
  Ri = 0x40,
  Dcd = 0x80,
  Deltas = 0x0f,
}

/** What the modem lines read with nothing attached: QEMU reports carrier, data set ready and clear to send. */
const IDLE_MODEM_INPUTS = Msr.Dcd | Msr.Dsr | Msr.Cts;
const TRIGGER_LEVELS = [1, 4, 8, 14];

export interface UartOptions {
  clock: Clock;
  onOutput: (byte: number) => void;
  /** The IRQ 4 line's new level. */
  setIrq: (level: boolean) => void;
}

export class Uart16550 implements PortDevice {
  private readonly clock: Clock;
  private readonly onOutput: (byte: number) => void;
  private readonly setIrq: (level: boolean) => void;

  /** Bytes from the host not yet taken by the receiver, as chunks consumed from `hostOffset`. */
  private readonly hostQueue: Uint8Array[] = [];
  private hostOffset = 0;
  /** The receiver FIFO (at most one byte with FIFOs off, where it is the RBR). */
  private readonly received: number[] = [];

  private divisor = 12;
  private ier = 0;
  private fcr = 0;
  private lcr = 0;
  private mcr = Mcr.Out2;
  private lineErrors = 0;
  private modemInputs = IDLE_MODEM_INPUTS;
  private modemDeltas = 0;
  private scratch = 0;
  private thrEmptyPending = false;
  private timeoutPending = false;
  private timeoutAtNs = Infinity;
  private characterNs = 0;
  private irqLevel = false;
  private readonly owns = (port: number) => port >= COM1_PORT && port < COM1_PORT + PORT_COUNT;

  constructor(options: UartOptions) {
    this.clock = options.clock;
    this.onOutput = options.onOutput;
    this.setIrq = options.setIrq;
    this.recomputeCharacterTime();
  }

  /** Queue bytes typed on the host; they reach the guest as the receiver has room. */
  pushInput(bytes: Uint8Array | string): void {
    const chunk = typeof bytes === 'string' ? new TextEncoder().encode(bytes) : Uint8Array.from(bytes);
    if (chunk.length === 0) return;
    this.hostQueue.push(chunk);
    this.takeHostInput();
    this.updateIrq();
  }

  /** Virtual ns of the FIFO character timeout, Infinity when none is armed. */
  nextDeadline(): number {
    return this.timeoutAtNs;
  }

  /** Raise the character timeout interrupt if its time has come. */
  update(): void {
    if (this.clock.now() < this.timeoutAtNs) return;
    this.timeoutAtNs = Infinity;
    if (this.received.length > 0) this.timeoutPending = true;
    this.updateIrq();
  }

  in(port: number, size: AccessSize): number {
    return readBytewise(port, size, this.owns, (p) => this.readRegister(p - COM1_PORT));
  }

  out(port: number, size: AccessSize, value: number): void {
    writeBytewise(port, size, value, this.owns, (p, byte) => this.writeRegister(p - COM1_PORT, byte));
  }

  private get fifoEnabled(): boolean {
    return (this.fcr & Fcr.Enable) !== 0;
  }

  private get loopback(): boolean {
    return (this.mcr & Mcr.Loopback) !== 0;
  }

  private readRegister(reg: number): number {
    switch (reg) {
      case Reg.Data:
        return this.lcr & Lcr.Dlab ? this.divisor & 0xff : this.readReceived();
      case Reg.Ier:
        return this.lcr & Lcr.Dlab ? this.divisor >>> 8 : this.ier;
      case Reg.IirFcr: {
        const iir = this.interruptId() | (this.fifoEnabled ? Iir.FifosEnabled : 0);
        if ((iir & 0x0f) === Iir.ThrEmpty) {
          this.thrEmptyPending = false;
          this.updateIrq();
        }
        return iir;
      }
      case Reg.Lcr:
        return this.lcr;
      case Reg.Mcr:
        return this.mcr;
      case Reg.Lsr: {
        const lsr = this.lsr();
        this.lineErrors = 0;
        this.updateIrq();
        return lsr;
      }
      case Reg.Msr: {
        const msr = this.modemInputs | this.modemDeltas;
        this.modemDeltas = 0;
        this.updateIrq();
        return msr;
      }
      default:
        return this.scratch;
    }
  }

  private writeRegister(reg: number, value: number): void {
    switch (reg) {
      case Reg.Data:
        if (this.lcr & Lcr.Dlab) this.setDivisor((this.divisor & 0xff00) | value);
        else this.transmit(value);
        break;
      case Reg.Ier:
        if (this.lcr & Lcr.Dlab) this.setDivisor((this.divisor & 0xff) | (value << 8));
        else this.writeIer(value & 0x0f);
        break;
      case Reg.IirFcr:
        this.writeFcr(value);
        break;
      case Reg.Lcr:
        this.lcr = value;
        this.recomputeCharacterTime();
        break;
      case Reg.Mcr:
        this.writeMcr(value & Mcr.Writable);
        break;
      case Reg.Lsr:
      case Reg.Msr:
        // Writable only in factory test modes; QEMU ignores them too.
        break;
      default:
        this.scratch = value;
    }
  }

  private lsr(): number {
    return (this.received.length > 0 ? Lsr.DataReady : 0) | this.lineErrors | Lsr.ThrEmpty | Lsr.TransmitterEmpty;
  }

  private readReceived(): number {
    const byte = this.received.length > 0 ? this.received.shift()! : 0;
    this.timeoutPending = false;
    this.timeoutAtNs = Infinity;
    this.takeHostInput();
    if (this.fifoEnabled && this.received.length > 0) this.armTimeout();
    this.updateIrq();
    return byte;
  }

  private transmit(byte: number): void {
    // The byte leaves THR at once; the dip of the THR-empty interrupt between the write and
    // the end of transmission is what lets an edge-triggered PIC see one interrupt per byte.
    this.thrEmptyPending = false;
    this.updateIrq();
    if (this.loopback) this.receiveLooped(byte);
    else this.onOutput(byte);
    this.thrEmptyPending = true;
    this.updateIrq();
  }

  private writeIer(value: number): void {
    const changed = this.ier ^ value;
    this.ier = value;
    // Enabling the THR-empty interrupt while THR is empty raises it at once, even if an IIR
    // read had cleared it before (QEMU does this because Windows relies on it).
    if (changed & Ier.ThrEmpty) this.thrEmptyPending = (value & Ier.ThrEmpty) !== 0;
    this.updateIrq();
  }

  private writeFcr(value: number): void {
    let command = value;
    // Switching the FIFOs on or off empties them.
    if ((command ^ this.fcr) & Fcr.Enable) command |= Fcr.ClearReceiver | Fcr.ClearTransmitter;
    if (command & Fcr.ClearReceiver) {
      this.received.length = 0;
      this.timeoutPending = false;
      this.timeoutAtNs = Infinity;
    }
    // The transmitter never holds anything, so clearing it has nothing to do.
    this.fcr = command & Fcr.Sticky;
    this.takeHostInput();
    this.updateIrq();
  }

  private writeMcr(value: number): void {
    this.mcr = value;
    this.setModemInputs(this.loopback ? this.loopedModemInputs() : IDLE_MODEM_INPUTS);
    // Leaving loopback reconnects the host's input.
    this.takeHostInput();
    this.updateIrq();
  }

  /** In loopback the modem outputs feed the inputs: RTS→CTS, DTR→DSR, OUT1→RI, OUT2→DCD. */
  private loopedModemInputs(): number {
    return (this.mcr & Mcr.Rts ? Msr.Cts : 0) | (this.mcr & Mcr.Dtr ? Msr.Dsr : 0) | (this.mcr & Mcr.Out1 ? Msr.Ri : 0) | (this.mcr & Mcr.Out2 ? Msr.Dcd : 0);
  }

  private setModemInputs(inputs: number): void {
    const changed = inputs ^ this.modemInputs;
    if (changed & Msr.Cts) this.modemDeltas |= Msr.DeltaCts;
    if (changed & Msr.Dsr) this.modemDeltas |= Msr.DeltaDsr;
    if (changed & Msr.Dcd) this.modemDeltas |= Msr.DeltaDcd;
    // Ring indicator reports only its trailing edge.
    if (changed & Msr.Ri && !(inputs & Msr.Ri)) this.modemDeltas |= Msr.TrailingRi;
    this.modemInputs = inputs;
  }

  private setDivisor(divisor: number): void {
    this.divisor = divisor;
    this.recomputeCharacterTime();
  }

  /** Nanoseconds one frame takes at the programmed rate; unchanged when the divisor is 0 or gives no rate, as in QEMU. */
  private recomputeCharacterTime(): void {
    if (this.divisor === 0 || this.divisor > BAUD_BASE) {
      if (this.characterNs === 0) this.characterNs = Math.floor(1e9 / 9600) * 10;
      return;
    }
    const dataBits = 5 + (this.lcr & 3);
    const frameBits = 1 + dataBits + (this.lcr & Lcr.ParityEnable ? 1 : 0) + (this.lcr & Lcr.TwoStopBits ? 2 : 1);
    const baud = Math.floor(BAUD_BASE / this.divisor);
    this.characterNs = Math.floor(1e9 / baud) * frameBits;
  }

  private get capacity(): number {
    return this.fifoEnabled ? FIFO_SIZE : 1;
  }

  /** Move host bytes into the receiver while it has room (not in loopback, which disconnects the line). */
  private takeHostInput(): void {
    if (this.loopback) return;
    let took = false;
    while (this.received.length < this.capacity && this.hostQueue.length > 0) {
      const chunk = this.hostQueue[0];
      this.received.push(chunk[this.hostOffset++]);
      took = true;
      if (this.hostOffset === chunk.length) {
        this.hostQueue.shift();
        this.hostOffset = 0;
      }
    }
    if (took && this.fifoEnabled) this.armTimeout();
  }

  /** A byte the guest sent to itself in loopback: a full receiver overruns, keeping the FIFO and replacing a lone RBR. */
  private receiveLooped(byte: number): void {
    if (this.received.length < this.capacity) this.received.push(byte);
    else {
      this.lineErrors |= Lsr.Overrun;
      if (!this.fifoEnabled) this.received[0] = byte;
    }
    if (this.fifoEnabled) this.armTimeout();
  }

  private armTimeout(): void {
    this.timeoutAtNs = Math.floor(this.clock.now()) + 4 * this.characterNs;
  }

  private interruptId(): number {
    if (this.ier & Ier.LineStatus && this.lineErrors & Lsr.Errors) return Iir.LineStatus;
    if (this.ier & Ier.ReceivedData) {
      if (this.timeoutPending) return Iir.CharacterTimeout;
      const level = this.fifoEnabled ? TRIGGER_LEVELS[this.fcr >>> 6] : 1;
      if (this.received.length >= level) return Iir.ReceivedData;
    }
    if (this.ier & Ier.ThrEmpty && this.thrEmptyPending) return Iir.ThrEmpty;
    if (this.ier & Ier.ModemStatus && this.modemDeltas) return Iir.ModemStatus;
    return Iir.None;
  }

  private updateIrq(): void {
    const level = this.interruptId() !== Iir.None;
    if (level === this.irqLevel) return;
    this.irqLevel = level;
    this.setIrq(level);
  }
}
