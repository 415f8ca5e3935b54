/**
 * The PC's two cascaded 8259A programmable interrupt controllers: master at 0x20/0x21 with the
 * slave's INT on its IR2, slave at 0xA0/0xA1 carrying IRQ 8-15, and the PIIX edge/level
 * control registers (ELCR) at 0x4D0/0x4D1.
 *
 * Each chip is modelled from the 8259A datasheet: ICW1-ICW4 (vector base, single/cascade,
 * ICW4 auto-EOI and special fully nested mode), OCW1 mask, OCW2 EOI and rotation commands,
 * OCW3 register-read select, poll and special mask mode. Priorities rotate through one number
 * per chip, the IR level that currently has the highest priority. IRR bits latch on a rising
 * input in edge mode and stay latched until the interrupt is acknowledged even if the input
 * falls again (as QEMU models it: a PIT pulse or a UART interrupt the guest clears before the
 * CPU takes it still arrives); in level mode (ELCR bit, or ICW1.LTIM for the whole chip) IRR
 * follows the input.
 *
 * The CPU side is `pending()` (the master's INT output) and `acknowledge()`, the two INTA
 * cycles: they return the vector, move the IRR bit to ISR (unless auto-EOI) and, when the
 * request has gone away meanwhile, answer with the spurious IR7 of the chip asked (the slave's
 * IR7 still marks IR2 in service on the master, as the hardware does). `onOutputChange` lets a
 * local APIC see the INT line for LINT0 modes other than ExtINT.
 */
import type { AccessSize, PortDevice } from '../bus.js';
import { readBytewise, writeBytewise } from './byte-ports.js';

export const PIC_MASTER_PORT = 0x20;
export const PIC_SLAVE_PORT = 0xa0;
export const ELCR_PORT = 0x4d0;
/** The master input the slave's INT output drives. */
export const CASCADE_IRQ = 2;

const enum Icw1 {
  Icw4Needed = 0x01,
  Single = 0x02,
  LevelTriggered = 0x08,
  /** Bit 4 on the command port marks ICW1 (clear means OCW2/OCW3). */
  Marker = 0x10,
}

const enum Icw4 {
  AutoEoi = 0x02,
  SpecialFullyNested = 0x10,
}

const enum Ocw3 {
  ReadIsr = 0x01,
  ReadRegister = 0x02,
  Poll = 0x04,
  /** Bit 3 set (with bit 4 clear) marks OCW3 rather than OCW2. */
  Marker = 0x08,
  SpecialMask = 0x20,
  SetSpecialMask = 0x40,
}

/** OCW2 commands, bits 7-5. */
const enum Ocw2 {
  ClearRotateInAutoEoi = 0,
  NonSpecificEoi = 1,
  NoOperation = 2,
  SpecificEoi = 3,
  SetRotateInAutoEoi = 4,
  RotateOnNonSpecificEoi = 5,
  SetPriority = 6,
  RotateOnSpecificEoi = 7,
}

/** Which initialization word the data port expects next. */
const enum InitStep {
  Ready,
  Icw2,
  Icw3,
  Icw4,
}

const NO_LEVEL = 8;

/** One 8259A. */
class Pic8259 {
  irr = 0;
  isr = 0;
  imr = 0;
  elcr = 0;
  vectorBase = 0;
  /** Input levels last seen, for edge detection. */
  private inputs = 0;
  /** The IR level with the highest priority is `(i + highestPriority) & 7` for i = 0. */
  private highestPriority = 0;
  private initStep = InitStep.Ready;
  private expectIcw4 = false;
  private single = false;
  private levelTriggeredAll = false;
  private autoEoi = false;
  private rotateInAutoEoi = false;
  private specialFullyNested = false;
  private specialMask = false;
  private readIsr = false;
  private pollNext = false;

  constructor(
    readonly isMaster: boolean,
    private readonly elcrWritable: number,
  ) {}

  private levelMask(): number {
    return this.levelTriggeredAll ? 0xff : this.elcr;
  }

  setInput(irq: number, level: boolean): void {
    const bit = 1 << irq;
    if (this.levelMask() & bit) {
      this.irr = level ? this.irr | bit : this.irr & ~bit;
    } else if (level && !(this.inputs & bit)) {
      this.irr |= bit;
    }
    this.inputs = level ? this.inputs | bit : this.inputs & ~bit;
  }

  /** Priority rank (0 highest) of the most important bit in `mask`, NO_LEVEL if none. */
  private rank(mask: number): number {
    for (let i = 0; i < 8; i++) if (mask & (1 << ((i + this.highestPriority) & 7))) return i;
    return NO_LEVEL;
  }

  private levelOfRank(rank: number): number {
    return (rank + this.highestPriority) & 7;
  }

  /** The IR level the chip would interrupt for now, or -1. */
  requested(): number {
    const request = this.rank(this.irr & ~this.imr);
    if (request === NO_LEVEL) return -1;
    let inService = this.isr;
    // Special mask mode lets masked in-service levels stop blocking lower ones.
    if (this.specialMask) inService &= ~this.imr;
    // In special fully nested mode the master lets a higher slave request through while
    // another slave interrupt is in service.
    if (this.specialFullyNested && this.isMaster) inService &= ~(1 << CASCADE_IRQ);
    return request < this.rank(inService) ? this.levelOfRank(request) : -1;
  }

  /** The INTA cycles for `irq`: ISR takes it unless auto-EOI, and an edge request is consumed. */
  acknowledge(irq: number): void {
    const bit = 1 << irq;
    if (this.autoEoi) {
      if (this.rotateInAutoEoi) this.highestPriority = (irq + 1) & 7;
    } else {
      this.isr |= bit;
    }
    if (!(this.levelMask() & bit)) this.irr &= ~bit;
  }

  readCommand(): number {
    if (this.pollNext) {
      this.pollNext = false;
      const irq = this.requested();
      if (irq < 0) return 0;
      this.acknowledge(irq);
      return 0x80 | irq;
    }
    return this.readIsr ? this.isr : this.irr;
  }

  readData(): number {
    return this.imr;
  }

  writeCommand(value: number): void {
    if (value & Icw1.Marker) this.startInitialization(value);
    else if (value & Ocw3.Marker) this.writeOcw3(value);
    else this.writeOcw2(value);
  }

  writeData(value: number): void {
    switch (this.initStep) {
      case InitStep.Icw2:
        this.vectorBase = value & 0xf8;
        this.initStep = !this.single ? InitStep.Icw3 : this.expectIcw4 ? InitStep.Icw4 : InitStep.Ready;
        break;
      case InitStep.Icw3:
        // The PC wiring fixes the cascade on IR2, whatever the guest declares.
        this.initStep = this.expectIcw4 ? InitStep.Icw4 : InitStep.Ready;
        break;
      case InitStep.Icw4:
        this.autoEoi = (value & Icw4.AutoEoi) !== 0;
        this.specialFullyNested = (value & Icw4.SpecialFullyNested) !== 0;
        this.initStep = InitStep.Ready;
        break;
      default:
        this.imr = value;
    }
  }

  private startInitialization(icw1: number): void {
    // ICW1 resets the edge detectors (a request must rise again), clears IMR and ISR, gives
    // IR7 the lowest priority, selects IRR for reads and clears every ICW4 option.
    this.irr &= this.levelMask();
    this.inputs = 0;
    this.imr = 0;
    this.isr = 0;
    this.highestPriority = 0;
    this.vectorBase = 0;
    this.readIsr = false;
    this.pollNext = false;
    this.specialMask = false;
    this.autoEoi = false;
    this.rotateInAutoEoi = false;
    this.specialFullyNested = false;
    this.expectIcw4 = (icw1 & Icw1.Icw4Needed) !== 0;
    this.single = (icw1 & Icw1.Single) !== 0;
    this.levelTriggeredAll = (icw1 & Icw1.LevelTriggered) !== 0;
    this.initStep = InitStep.Icw2;
  }

  private writeOcw2(value: number): void {
    const level = value & 7;
    switch (value >>> 5) {
      case Ocw2.ClearRotateInAutoEoi:
        this.rotateInAutoEoi = false;
        break;
      case Ocw2.SetRotateInAutoEoi:
        this.rotateInAutoEoi = true;
        break;
      case Ocw2.NonSpecificEoi:
      case Ocw2.RotateOnNonSpecificEoi: {
        const rank = this.rank(this.isr);
        if (rank === NO_LEVEL) break;
        const irq = this.levelOfRank(rank);
        this.isr &= ~(1 << irq);
        if (value >>> 5 === Ocw2.RotateOnNonSpecificEoi) this.highestPriority = (irq + 1) & 7;
        break;
      }
      case Ocw2.SpecificEoi:
        this.isr &= ~(1 << level);
        break;
      case Ocw2.RotateOnSpecificEoi:
        this.isr &= ~(1 << level);
        this.highestPriority = (level + 1) & 7;
        break;
      case Ocw2.SetPriority:
        // The named level becomes the lowest priority.
        this.highestPriority = (level + 1) & 7;
        break;
      case Ocw2.NoOperation:
        break;
    }
  }

  private writeOcw3(value: number): void {
    if (value & Ocw3.Poll) this.pollNext = true;
    if (value & Ocw3.ReadRegister) this.readIsr = (value & Ocw3.ReadIsr) !== 0;
    if (value & Ocw3.SetSpecialMask) this.specialMask = (value & Ocw3.SpecialMask) !== 0;
  }

  writeElcr(value: number): void {
    this.elcr = value & this.elcrWritable;
  }
}

export class Pic8259Pair implements PortDevice {
  /** IRQ 0-2 are edge-only on the master, IRQ 8 and 13 on the slave (PIIX ELCR). */
  readonly master = new Pic8259(true, 0xf8);
  readonly slave = new Pic8259(false, 0xde);
  /** Called when the master's INT output changes level. */
  onOutputChange: (level: boolean) => void = () => {};
  private output = false;
  private readonly owns = (port: number) =>
    (port & ~1) === PIC_MASTER_PORT || (port & ~1) === PIC_SLAVE_PORT || (port & ~1) === ELCR_PORT;

  /** Drive ISA IRQ line `irq` (0-15). The cascade input IRQ 2 belongs to the slave and is not an ISA line here. */
  setIrq(irq: number, level: boolean): void {
    if (irq < 0 || irq > 15 || irq === CASCADE_IRQ) return;
    if (irq < 8) this.master.setInput(irq, level);
    else this.slave.setInput(irq - 8, level);
    this.propagate();
  }

  raiseIrq(irq: number): void {
    this.setIrq(irq, true);
  }

  lowerIrq(irq: number): void {
    this.setIrq(irq, false);
  }

  /** The master's INT output: an interrupt the CPU would take if it could. */
  pending(): boolean {
    return this.master.requested() >= 0;
  }

  /** The INTA sequence: the vector for the CPU, with IRR/ISR updated as the chips do. */
  acknowledge(): number {
    const irq = this.master.requested();
    let vector: number;
    if (irq < 0) {
      vector = this.master.vectorBase + 7;
    } else if (irq === CASCADE_IRQ) {
      const slaveIrq = this.slave.requested();
      if (slaveIrq >= 0) this.slave.acknowledge(slaveIrq);
      vector = this.slave.vectorBase + (slaveIrq >= 0 ? slaveIrq : 7);
      this.master.acknowledge(irq);
    } else {
      vector = this.master.vectorBase + irq;
      this.master.acknowledge(irq);
    }
    this.propagate();
    return vector;
  }

  in(port: number, size: AccessSize): number {
    return readBytewise(port, size, this.owns, (p) => this.readByte(p));
  }

  out(port: number, size: AccessSize, value: number): void {
    writeBytewise(port, size, value, this.owns, (p, byte) => this.writeByte(p, byte));
  }

  private chipAt(port: number): Pic8259 {
    return (port & ~1) === PIC_MASTER_PORT ? this.master : this.slave;
  }

  private readByte(port: number): number {
    if ((port & ~1) === ELCR_PORT) return (port & 1 ? this.slave : this.master).elcr;
    const chip = this.chipAt(port);
    const value = port & 1 ? chip.readData() : chip.readCommand();
    // A poll read acknowledges, which can change the outputs.
    this.propagate();
    return value;
  }

  private writeByte(port: number, value: number): void {
    if ((port & ~1) === ELCR_PORT) (port & 1 ? this.slave : this.master).writeElcr(value);
    else if (port & 1) this.chipAt(port).writeData(value);
    else this.chipAt(port).writeCommand(value);
    this.propagate();
  }

  /** Carry the slave's INT to the master's IR2 and report the master's INT when it changes. */
  private propagate(): void {
    this.master.setInput(CASCADE_IRQ, this.slave.requested() >= 0);
    const output = this.master.requested() >= 0;
    if (output === this.output) return;
    this.output = output;
    this.onOutputChange(output);
  }
}
