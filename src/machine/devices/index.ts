/**
 * The PC's devices for machine mode, created and wired as QEMU's pc machine has them:
 * COM1, isa-debug-exit, fw_cfg, port 0x80, the 8259 pair, the 8254 (with port 0x61), one
 * local APIC per CPU behind the shared window at 0xFEE00000, and the I/O APIC at 0xFEC00000.
 *
 * ISA interrupt lines go to both the 8259s and the I/O APIC (IRQ 0 on I/O APIC pin 2, the rest
 * on their own numbers); the 8259's INT goes to every local APIC's LINT0. The CPU side asks
 * its `interrupts[cpu]` at interrupt windows, routes APIC MSRs to `lapics[cpu]`, and keeps
 * `currentCpu` telling the APIC window who is accessing it. Time moves only when the machine
 * moves the clock: it stops a HLT at `nextDeadline()` and calls `update()` to deliver what
 * became due.
 *
 * By default the devices start as a `-kernel` guest finds them under QEMU, that is after
 * SeaBIOS and QEMU's multiboot option ROM have run. We measured this with a probe image under
 * qemu-system-x86_64 7.2 (TCG): the 8259s initialised with vector bases 0x08 and 0x70, IMR
 * 0xB8/0x8E (timer, keyboard, cascade, floppy, RTC, mouse, FPU, primary IDE unmasked), ELCR
 * 0x00/0x0C; PIT channel 0 in mode 2 counting 65536 (18.2 Hz); the BSP's local APIC
 * software-enabled (SVR 0x1FF) with LINT0 ExtINT and LINT1 NMI (both written with the level
 * bit, 0x8700/0x8400); the UART at divisor 12 with OUT2 set; the I/O APIC all masked. The
 * handoff is replayed as the port and register writes the firmware makes, so it goes through
 * the same code as a guest's own writes. `firmwareHandoff: false` leaves power-on state.
 */
import { type Clock, IoBus, MmioBus } from '../bus.js';
import { ApicBus } from './apic-bus.js';
import { CpuInterrupts } from './cpu-interrupts.js';
import { DEBUG_EXIT_PORT, DEBUG_EXIT_PORT_COUNT, DebugExit } from './debug-exit.js';
import { FW_CFG_PORT, FW_CFG_PORT_COUNT, FwCfg } from './fw-cfg.js';
import { IgnoredPort, POST_CODE_PORT } from './ignored-ports.js';
import { IOAPIC_BASE, IOAPIC_WINDOW_SIZE, IoApic, isaIrqToPin } from './ioapic.js';
import { APIC_DEFAULT_BASE, APIC_WINDOW_SIZE, LocalApic, LocalApicWindow } from './lapic.js';
import { ELCR_PORT, PIC_MASTER_PORT, PIC_SLAVE_PORT, Pic8259Pair } from './pic8259.js';
import { PIT_PORT, Pit8254, SYSTEM_CONTROL_B_PORT } from './pit8254.js';
import { COM1_IRQ, COM1_PORT, Uart16550 } from './uart16550.js';

export interface PcDeviceOptions {
  ramBytes: number;
  cpus: number;
  clock: Clock;
  /** TSC rate, for the TSC-deadline timer. */
  tscHz: number;
  /** CPU `cpu`'s TSC now; defaults to the virtual clock scaled to tscHz. */
  readTsc?: (cpu: number) => number;
  /** APIC timer input clock, default 1 GHz as in QEMU. */
  apicBusHz?: number;
  /** Whether the CPUs advertise x2APIC (IA32_APIC_BASE accepts EXTD); default true. */
  x2apic?: boolean;
  /** MAXPHYADDR for the APIC base check; default 40. */
  physAddrBits?: number;
  /** Buses to register on; new ones are made if absent. */
  io?: IoBus;
  mmio?: MmioBus;
  /** The index of the CPU making the current memory access (the APIC window is per CPU); default 0. */
  currentCpu?: () => number;
  onOutput: (byte: number) => void;
  /** isa-debug-exit: the machine ends with this status (its low byte as the process status). */
  onExit: (status: number) => void;
  onInit: (cpu: number) => void;
  onSipi: (cpu: number, vector: number) => void;
  onNmi: (cpu: number) => void;
  /** A CPU may have a new interrupt to take. */
  onKick?: (cpu: number) => void;
  /** Start as QEMU's firmware leaves the devices for a -kernel image (default) or at power-on. */
  firmwareHandoff?: boolean;
}

export interface PcDevices {
  io: IoBus;
  mmio: MmioBus;
  uart: Uart16550;
  debugExit: DebugExit;
  fwCfg: FwCfg;
  pic: Pic8259Pair;
  pit: Pit8254;
  ioapic: IoApic;
  apicBus: ApicBus;
  lapics: LocalApic[];
  /** Per CPU: pending()/acknowledge() over the local APIC and the 8259. */
  interrupts: CpuInterrupts[];
  /** Drive ISA IRQ line `irq` (to the 8259s and the I/O APIC). */
  setIsaIrq(irq: number, level: boolean): void;
  /** Virtual ns of the earliest device event (timer interrupt, UART timeout), Infinity if none. */
  nextDeadline(): number;
  /** Deliver every device event that is due now. */
  update(): void;
}

export function createPcDevices(options: PcDeviceOptions): PcDevices {
  const { clock } = options;
  const io = options.io ?? new IoBus();
  const mmio = options.mmio ?? new MmioBus();

  const apicBus = new ApicBus({ onInit: options.onInit, onSipi: options.onSipi, onNmi: options.onNmi, onKick: options.onKick });
  const lapics: LocalApic[] = [];
  for (let cpu = 0; cpu < options.cpus; cpu++) {
    const readTsc = options.readTsc;
    lapics.push(
      new LocalApic({
        index: cpu,
        bsp: cpu === 0,
        bus: apicBus,
        clock,
        tscHz: options.tscHz,
        readTsc: readTsc ? () => readTsc(cpu) : undefined,
        busHz: options.apicBusHz,
        x2apic: options.x2apic,
        physAddrBits: options.physAddrBits,
      }),
    );
  }
  const ioapic = new IoApic(apicBus);
  const pic = new Pic8259Pair();
  pic.onOutputChange = (level) => {
    for (const lapic of lapics) lapic.setLint0(level);
    if (level) for (const lapic of lapics) apicBus.kick(lapic.index);
  };
  const setIsaIrq = (irq: number, level: boolean) => {
    pic.setIrq(irq, level);
    ioapic.setIrq(isaIrqToPin(irq), level);
  };

  const uart = new Uart16550({ clock, onOutput: options.onOutput, setIrq: (level) => setIsaIrq(COM1_IRQ, level) });
  const pit = new Pit8254({ clock, setIrq0: (level) => setIsaIrq(0, level) });
  const debugExit = new DebugExit(options.onExit);
  const fwCfg = new FwCfg({ ramBytes: options.ramBytes, cpus: options.cpus });

  io.register(COM1_PORT, 8, uart);
  io.register(DEBUG_EXIT_PORT, DEBUG_EXIT_PORT_COUNT, debugExit);
  io.register(FW_CFG_PORT, FW_CFG_PORT_COUNT, fwCfg);
  io.register(POST_CODE_PORT, 1, new IgnoredPort());
  io.register(PIC_MASTER_PORT, 2, pic);
  io.register(PIC_SLAVE_PORT, 2, pic);
  io.register(ELCR_PORT, 2, pic);
  io.register(PIT_PORT, 4, pit);
  io.register(SYSTEM_CONTROL_B_PORT, 1, pit);
  mmio.register(APIC_DEFAULT_BASE, APIC_WINDOW_SIZE, new LocalApicWindow(lapics, options.currentCpu ?? (() => 0)));
  mmio.register(IOAPIC_BASE, IOAPIC_WINDOW_SIZE, ioapic);

  const interrupts = lapics.map((lapic) => new CpuInterrupts(lapic, pic));
  const devices: PcDevices = {
    io,
    mmio,
    uart,
    debugExit,
    fwCfg,
    pic,
    pit,
    ioapic,
    apicBus,
    lapics,
    interrupts,
    setIsaIrq,
    nextDeadline() {
      let earliest = Math.min(uart.nextDeadline(), pit.nextDeadline());
      for (const lapic of lapics) earliest = Math.min(earliest, lapic.nextDeadline());
      return earliest;
    },
    update() {
      uart.update();
      pit.update();
      for (const lapic of lapics) lapic.update();
    },
  };
  if (options.firmwareHandoff ?? true) applyFirmwareHandoff(devices);
  return devices;
}

/** The writes QEMU's SeaBIOS makes that a -kernel guest can observe (see the file comment). */
function applyFirmwareHandoff(devices: PcDevices): void {
  const outb = (port: number, value: number) => devices.io.out(port, 1, value);
  // 8259s: ICW1 edge/cascade/ICW4, ICW2 vector bases, ICW3 cascade on IR2, ICW4 8086 mode, then the masks.
  const picInit: [number, number][] = [
    [0x20, 0x11], [0xa0, 0x11], [0x21, 0x08], [0xa1, 0x70], [0x21, 0x04], [0xa1, 0x02], [0x21, 0x01], [0xa1, 0x01],
    [0x21, 0xb8], [0xa1, 0x8e], [0x4d0, 0x00], [0x4d1, 0x0c],
  ];
  for (const [port, value] of picInit) outb(port, value);
  // PIT channel 0: lobyte/hibyte, mode 2, count 0 (65536).
  outb(0x43, 0x34);
  outb(0x40, 0x00);
  outb(0x40, 0x00);
  // The BSP's APIC: software-enabled, spurious vector 0xFF, virtual-wire LINT0, NMI on LINT1.
  const bsp = devices.lapics[0];
  bsp.mmioWrite(0xf0, 4, 0x1ff);
  bsp.mmioWrite(0x350, 4, 0x8700);
  bsp.mmioWrite(0x360, 4, 0x8400);
}
