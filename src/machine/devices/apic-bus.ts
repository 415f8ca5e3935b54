/**
 * The APIC bus: how interrupt messages travel between the local APICs and from the I/O APIC.
 *
 * A sender (a local APIC's ICR or SELF IPI register, or an I/O APIC redirection entry) hands
 * the bus a message; the bus finds the destination local APICs (shorthand, physical ID,
 * logical flat/cluster match, broadcast), arbitrates lowest-priority delivery, and each
 * receiver accepts the message by its delivery mode. Vectors land in a receiver's IRR; INIT,
 * start-up and NMI messages are not the APIC's to act on but the processor's, so the bus
 * reports them to the machine (`onInit`, `onSipi`, `onNmi`), which decides when the CPU takes
 * them (a CPU inside an SVM guest may hold an INIT pending, for example). `onKick` tells the
 * machine that a CPU may have a new interrupt to take, so a HLT can end or compiled code can
 * leave at its next check. EOIs of level-triggered vectors are broadcast back to the I/O APICs
 * through `onEoi` listeners.
 *
 * There is one bus per machine and delivery is synchronous: the emulator runs its CPUs
 * interleaved on one thread, so a message is in the receiver's IRR before the sender's next
 * instruction, which is what the architecture's "delivery status idle" can promise anyway.
 */
import type { LocalApic } from './lapic.js';

/** Delivery modes, as encoded in ICR, LVT and redirection entries bits 8-10. */
export const enum DeliveryMode {
  Fixed = 0,
  LowestPriority = 1,
  Smi = 2,
  Nmi = 4,
  Init = 5,
  StartUp = 6,
  ExtInt = 7,
}

/** ICR destination shorthand, bits 18-19. */
export const enum Shorthand {
  None = 0,
  Self = 1,
  AllIncludingSelf = 2,
  AllExcludingSelf = 3,
}

export interface ApicMessage {
  deliveryMode: DeliveryMode;
  vector: number;
  levelTriggered: boolean;
  /** Physical APIC ID or logical destination, in the sender's format. */
  destination: number;
  logical: boolean;
  /**
   * The destination addresses everyone: the physical broadcast ID of the sender's format (0xFF
   * from an xAPIC or the I/O APIC, 0xFFFFFFFF from an x2APIC) or x2APIC logical 0xFFFFFFFF.
   * An xAPIC logical 0xFF is not a broadcast: it reaches the APICs whose LDR shares a bit.
   */
  broadcast: boolean;
}

export interface ApicBusEvents {
  /** An INIT message reached CPU `cpu` (the CPU resets; `LocalApic.initReset` is part of that). */
  onInit(cpu: number): void;
  /** A start-up IPI with its vector reached CPU `cpu` (meaningful only in wait-for-SIPI). */
  onSipi(cpu: number, vector: number): void;
  onNmi(cpu: number): void;
  /** An interrupt may now be pending for CPU `cpu`. */
  onKick?(cpu: number): void;
}

export class ApicBus {
  readonly lapics: LocalApic[] = [];
  private readonly eoiListeners: ((vector: number) => void)[] = [];

  constructor(private readonly events: ApicBusEvents) {}

  attach(lapic: LocalApic): void {
    this.lapics.push(lapic);
  }

  /** Register an I/O APIC's handler for EOIs of level-triggered vectors. */
  onEoi(listener: (vector: number) => void): void {
    this.eoiListeners.push(listener);
  }

  broadcastEoi(vector: number): void {
    for (const listener of this.eoiListeners) listener(vector);
  }

  /** Deliver `message`; `source` is the sending local APIC (needed for the shorthands). */
  send(message: ApicMessage, shorthand: Shorthand = Shorthand.None, source?: LocalApic): void {
    const targets = this.destinations(message, shorthand, source);
    if (targets.length === 0) return;
    if (message.deliveryMode === DeliveryMode.LowestPriority) {
      // Lowest arbitration priority among the APICs that accept vectors wins; the lowest
      // index breaks ties, as a fixed arbitration ID order would.
      const willing = targets.filter((lapic) => lapic.acceptsVectors);
      if (willing.length === 0) return;
      let chosen = willing[0];
      for (const lapic of willing) if (lapic.arbitrationPriority() < chosen.arbitrationPriority()) chosen = lapic;
      chosen.receive(message.deliveryMode, message.vector, message.levelTriggered);
      return;
    }
    for (const lapic of targets) lapic.receive(message.deliveryMode, message.vector, message.levelTriggered);
  }

  private destinations(message: ApicMessage, shorthand: Shorthand, source: LocalApic | undefined): LocalApic[] {
    switch (shorthand) {
      case Shorthand.Self:
        return source ? [source] : [];
      case Shorthand.AllIncludingSelf:
        return this.lapics.slice();
      case Shorthand.AllExcludingSelf:
        return this.lapics.filter((lapic) => lapic !== source);
      default:
        return this.lapics.filter((lapic) => lapic.matchesDestination(message.destination, message.logical, message.broadcast));
    }
  }

  init(cpu: number): void {
    this.events.onInit(cpu);
  }

  sipi(cpu: number, vector: number): void {
    this.events.onSipi(cpu, vector);
  }

  nmi(cpu: number): void {
    this.events.onNmi(cpu);
  }

  kick(cpu: number): void {
    this.events.onKick?.(cpu);
  }
}
