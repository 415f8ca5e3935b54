/**
 * The I/O APIC at 0xFEC00000, as QEMU's pc machine has it: version 0x20 with 24 redirection
 * entries, an ID register, and the EOI register at offset 0x40 that version 0x20 adds.
 *
 * Registers are reached indirectly: IOREGSEL (offset 0x00, any width) picks one, IOWIN
 * (offset 0x10, 32-bit accesses only) reads or writes it. Each pin's redirection entry turns
 * an input into a message on the APIC bus: fixed or lowest-priority vectors, NMI or INIT, to a
 * physical APIC ID or a logical destination in bits 56-63. Edge-triggered pins deliver on a
 * rising input and ignore edges while masked (82093AA datasheet); level-triggered pins deliver
 * while the input is high and unmasked and remote IRR is clear, set remote IRR, and deliver
 * again after the local APIC's EOI (broadcast for vectors it accepted level-triggered, or
 * written to the EOI register) if the input is still high. Delivery status and remote IRR are
 * read-only; an entry rewritten as edge-triggered drops remote IRR (QEMU does this so Linux's
 * edge/level toggling can clear a stuck level interrupt). The polarity bit is stored but, as
 * in QEMU, inputs are taken as active high. ExtINT entries are ignored: on the PC nothing
 * drives pin 0 (the PIT's IRQ 0 arrives on pin 2), so the PIC's virtual-wire path is LINT0.
 */
import type { AccessSize, MmioDevice } from '../bus.js';
import { type ApicBus, DeliveryMode } from './apic-bus.js';

export const IOAPIC_BASE = 0xfec00000;
export const IOAPIC_WINDOW_SIZE = 0x1000;
export const IOAPIC_PINS = 24;
/** Version 0x20, maximum redirection entry 23. */
const VERSION = 0x00170020;

const enum Offset {
  RegisterSelect = 0x00,
  Window = 0x10,
  Eoi = 0x40,
}

const enum Register {
  Id = 0x00,
  Version = 0x01,
  Arbitration = 0x02,
  RedirectionTable = 0x10,
}

const enum Entry {
  Logical = 0x800,
  DeliveryStatus = 0x1000,
  RemoteIrr = 0x4000,
  LevelTriggered = 0x8000,
  Masked = 0x10000,
}

const READ_ONLY_LOW = Entry.DeliveryStatus | Entry.RemoteIrr;

/** ISA IRQ n arrives on pin n, except IRQ 0 (the PIT), which the PC wires to pin 2. */
export function isaIrqToPin(irq: number): number {
  return irq === 0 ? 2 : irq;
}

export class IoApic implements MmioDevice {
  private select = 0;
  private id = 0;
  private readonly entryLow = new Uint32Array(IOAPIC_PINS).fill(Entry.Masked);
  private readonly entryHigh = new Uint32Array(IOAPIC_PINS);
  /** Input levels, one bit per pin. */
  private inputs = 0;

  constructor(private readonly bus: ApicBus) {
    bus.onEoi((vector) => this.endOfInterrupt(vector));
  }

  /** Drive input pin `pin`. */
  setIrq(pin: number, level: boolean): void {
    if (pin < 0 || pin >= IOAPIC_PINS) return;
    const bit = 1 << pin;
    const wasHigh = (this.inputs & bit) !== 0;
    this.inputs = level ? this.inputs | bit : this.inputs & ~bit;
    if (!level) return;
    if (this.entryLow[pin] & Entry.LevelTriggered || !wasHigh) this.service(pin);
  }

  read(offset: number, size: AccessSize): number {
    switch (offset & 0xff) {
      case Offset.RegisterSelect:
        return this.select;
      case Offset.Window:
        return size === 4 ? this.readRegister(this.select) | 0 : 0;
      default:
        return 0;
    }
  }

  write(offset: number, size: AccessSize, value: number): void {
    switch (offset & 0xff) {
      case Offset.RegisterSelect:
        this.select = value & 0xff;
        break;
      case Offset.Window:
        if (size === 4) this.writeRegister(this.select, value >>> 0);
        break;
      case Offset.Eoi:
        if (size === 4) this.endOfInterrupt(value & 0xff);
        break;
    }
  }

  private readRegister(register: number): number {
    switch (register) {
      case Register.Id:
      case Register.Arbitration:
        // QEMU answers the arbitration ID with the APIC ID.
        return this.id << 24;
      case Register.Version:
        return VERSION;
      default: {
        const pin = (register - Register.RedirectionTable) >> 1;
        if (pin < 0 || pin >= IOAPIC_PINS) return 0;
        return register & 1 ? this.entryHigh[pin] : this.entryLow[pin];
      }
    }
  }

  private writeRegister(register: number, value: number): void {
    if (register === Register.Id) {
      this.id = (value >>> 24) & 0xf;
      return;
    }
    const pin = (register - Register.RedirectionTable) >> 1;
    if (pin < 0 || pin >= IOAPIC_PINS) return;
    if (register & 1) {
      this.entryHigh[pin] = value;
    } else {
      let low = (value & ~READ_ONLY_LOW) | (this.entryLow[pin] & READ_ONLY_LOW);
      if (!(low & Entry.LevelTriggered)) low &= ~Entry.RemoteIrr;
      this.entryLow[pin] = low;
    }
    // An unmasked level input that is high delivers now.
    if (this.entryLow[pin] & Entry.LevelTriggered && this.inputs & (1 << pin)) this.service(pin);
  }

  private service(pin: number): void {
    const low = this.entryLow[pin];
    if (low & Entry.Masked) return;
    const levelTriggered = (low & Entry.LevelTriggered) !== 0;
    if (levelTriggered) {
      if (low & Entry.RemoteIrr) return;
      this.entryLow[pin] = low | Entry.RemoteIrr;
    }
    const mode = ((low >>> 8) & 7) as DeliveryMode;
    if (mode !== DeliveryMode.Fixed && mode !== DeliveryMode.LowestPriority && mode !== DeliveryMode.Nmi && mode !== DeliveryMode.Init) return;
    const destination = this.entryHigh[pin] >>> 24;
    const logical = (low & Entry.Logical) !== 0;
    this.bus.send({ deliveryMode: mode, vector: low & 0xff, levelTriggered, destination, logical, broadcast: !logical && destination === 0xff });
  }

  /** EOI for `vector`: level entries with that vector drop remote IRR and deliver again if still asserted. */
  private endOfInterrupt(vector: number): void {
    for (let pin = 0; pin < IOAPIC_PINS; pin++) {
      const low = this.entryLow[pin];
      if ((low & 0xff) !== vector || !(low & Entry.LevelTriggered) || !(low & Entry.RemoteIrr)) continue;
      this.entryLow[pin] = low & ~Entry.RemoteIrr;
      if (this.inputs & (1 << pin)) this.service(pin);
    }
  }
}
