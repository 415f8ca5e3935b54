/**
 * The PC around the CPUs: the device set of QEMU's pc machine as a `-kernel` guest finds it
 * (devices/index.ts) connected to the machine — COM1 to the host's stdout, isa-debug-exit to
 * the exit status, each local APIC to its CPU's MSRs, CR8 and interrupt window, INIT/SIPI/NMI
 * to the CPUs, the timers to the virtual clock.
 *
 * Serial output is buffered and written a line (or a full buffer) at a time: a system call per
 * guest OUT would dominate the run time of chatty guests.
 */
import { createPcDevices, type PcDevices } from './devices/index.js';
import { LocalApic } from './devices/lapic.js';
import type { Machine } from './machine.js';

export interface PcOptions {
  /** Where COM1's output goes. */
  output: (bytes: Uint8Array) => void;
}

/** Buffers serial output until a newline, a full buffer or an explicit flush. */
class OutputBuffer {
  private readonly buf = new Uint8Array(4096);
  private n = 0;
  constructor(private readonly sink: (bytes: Uint8Array) => void) {}
  put(byte: number): void {
    this.buf[this.n++] = byte;
    if (byte === 10 || this.n === this.buf.length) this.flush();
  }
  flush(): void {
    if (this.n === 0) return;
    this.sink(this.buf.slice(0, this.n));
    this.n = 0;
  }
}

/** The virtual TSC runs at 1 GHz: one tick per virtual nanosecond. */
export const TSC_HZ = 1e9;

export function attachPcDevices(machine: Machine, o: PcOptions): PcDevices {
  const out = new OutputBuffer(o.output);
  const vcpus = machine.vcpus;
  const devices = createPcDevices({
    ramBytes: machine.opts.ramBytes,
    cpus: vcpus.length,
    clock: machine,
    tscHz: TSC_HZ,
    readTsc: (cpu) => vcpus[cpu].tsc(),
    io: machine.io,
    mmio: machine.mmio,
    physAddrBits: 48,
    currentCpu: () => machine.current.index,
    onOutput: (b) => out.put(b),
    onExit: (status) => {
      out.flush();
      machine.exit(status);
    },
    onInit: (cpu) => vcpus[cpu].requestInit(),
    onSipi: (cpu, vector) => vcpus[cpu].sipi(vector),
    onNmi: (cpu) => vcpus[cpu].raiseNmi(),
    // A CPU that may have an interrupt to take stops its slice so the run loop looks.
    onKick: (cpu) => {
      if (vcpus[cpu] !== machine.current) return;
      vcpus[cpu].engine.yieldAt = 0;
    },
  });
  machine.devices = { nextDeadline: () => devices.nextDeadline(), update: () => devices.update() };
  vcpus.forEach((v, i) => {
    const lapic = devices.lapics[i];
    const intr = devices.interrupts[i];
    v.devices = {
      interruptPending: () => intr.pending(),
      acknowledge: () => intr.acknowledge(),
      readTpr: () => lapic.getCr8(),
      writeTpr: (value) => lapic.setCr8(value),
    };
    v.onInitReset = () => lapic.initReset();
    v.msrs.apic = { owns: (msr) => LocalApic.ownsMsr(msr), readMsr: (msr) => lapic.readMsr(msr), writeMsr: (msr, lo, hi) => lapic.writeMsr(msr, lo, hi) };
  });
  machine.hypercallOutput = (bytes) => {
    for (const b of bytes) out.put(b);
  };
  machine.onStop = () => out.flush();
  return devices;
}
