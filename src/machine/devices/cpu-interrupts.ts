/**
 * The maskable-interrupt input of one CPU: what the CPU asks at an interrupt window ("is
 * something pending?", "give me its vector") without knowing which controller answers.
 *
 * On a PC the 8259's INT output is wired to every CPU's LINT0. With the local APIC globally
 * disabled (IA32_APIC_BASE.EN clear) LINT0 is a plain INTR pin and the 8259 talks to the CPU
 * directly; with it enabled, the 8259 gets through only while LINT0 is unmasked in ExtINT mode
 * (the "virtual wire" the firmware sets up, and that a -kernel guest finds). ExtINT delivery
 * bypasses TPR/PPR, and the vector comes from the 8259's own INTA cycle. The local APIC's
 * vectors are asked first, as QEMU does. A software-disabled APIC has LINT0 masked, so it
 * passes nothing from the 8259 either (SDM 10.4.7.2).
 */
import type { LocalApic } from './lapic.js';
import type { Pic8259Pair } from './pic8259.js';

export class CpuInterrupts {
  constructor(
    readonly lapic: LocalApic,
    private readonly pic: Pic8259Pair,
  ) {}

  private get picReachesCpu(): boolean {
    return !this.lapic.hardwareEnabled || this.lapic.lint0PassesExtInt;
  }

  /** Whether a maskable interrupt is waiting for this CPU (to be taken when RFLAGS.IF allows). */
  pending(): boolean {
    return this.lapic.pendingVector() >= 0 || (this.picReachesCpu && this.pic.pending());
  }

  /**
   * Take the interrupt: its vector, with the controller's in-service state updated. Called
   * with nothing pending it answers as the hardware would: the 8259's spurious IR7 vector when
   * it is the connected controller, else the local APIC's spurious vector.
   */
  acknowledge(): number {
    if (this.lapic.pendingVector() >= 0) return this.lapic.acknowledge();
    if (this.picReachesCpu) return this.pic.acknowledge();
    return this.lapic.acknowledge();
  }
}
