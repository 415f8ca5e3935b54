/**
 * The PC devices of machine mode, driven the way a guest drives them: port I/O through an
 * IoBus, MMIO through the MmioBus windows, MSRs through the local APIC's readMsr/writeMsr, and
 * time through a fake virtual clock the test moves by hand. Expected values come from the
 * datasheets (8250/16550, 8259A, 8254, 82093AA), the Intel SDM's APIC chapter, QEMU's fw_cfg
 * and isa-debug-exit docs, and from a probe image run under qemu-system-x86_64 for the state a
 * -kernel guest finds.
 */
import { describe, expect, it } from 'vitest';
import { type AccessSize, type Clock, IoBus, type MmioBus } from '../src/machine/bus.js';
import { FwCfg } from '../src/machine/devices/fw-cfg.js';
import { createPcDevices, type PcDevices } from '../src/machine/devices/index.js';
import { Pic8259Pair } from '../src/machine/devices/pic8259.js';
import { PIT_HZ, Pit8254 } from '../src/machine/devices/pit8254.js';
import { nsAtTicks, ticksAt } from '../src/machine/devices/ticks.js';
import { Uart16550 } from '../src/machine/devices/uart16550.js';

class FakeClock implements Clock {
  ns = 0;
  now(): number {
    return this.ns;
  }
}

/** Counts rising edges on a line and remembers its level. */
class LineProbe {
  level = false;
  rises = 0;
  readonly set = (level: boolean) => {
    if (level && !this.level) this.rises++;
    this.level = level;
  };
}

const outb = (io: IoBus, port: number, value: number) => io.out(port, 1, value);
const inb = (io: IoBus, port: number) => io.in(port, 1);

function read32(mmio: MmioBus, address: number): number {
  const window = mmio.find(address)!;
  return window.dev.read(address - window.base, 4) >>> 0;
}

function write32(mmio: MmioBus, address: number, value: number): void {
  const window = mmio.find(address)!;
  window.dev.write(address - window.base, 4, value);
}

// ---- UART ---------------------------------------------------------------------------------

const COM1 = 0x3f8;
const enum Com {
  Data = COM1,
  Ier = COM1 + 1,
  Iir = COM1 + 2,
  Lcr = COM1 + 3,
  Mcr = COM1 + 4,
  Lsr = COM1 + 5,
  Msr = COM1 + 6,
  Scr = COM1 + 7,
}

function makeUart() {
  const clock = new FakeClock();
  const irq = new LineProbe();
  const output: number[] = [];
  const uart = new Uart16550({ clock, onOutput: (byte) => output.push(byte), setIrq: irq.set });
  const io = new IoBus();
  io.register(COM1, 8, uart);
  return { clock, irq, output, uart, io };
}

describe('16550 UART', () => {
  it('transmits at once and always shows THRE|TEMT', () => {
    const { io, output } = makeUart();
    expect(inb(io, Com.Lsr)).toBe(0x60);
    for (const ch of 'ok\n') outb(io, Com.Data, ch.charCodeAt(0));
    expect(String.fromCharCode(...output)).toBe('ok\n');
    expect(inb(io, Com.Lsr)).toBe(0x60);
  });

  it('starts as QEMU leaves it: divisor 12, OUT2, no interrupt, idle modem lines', () => {
    const { io } = makeUart();
    expect(inb(io, Com.Iir)).toBe(0x01);
    expect(inb(io, Com.Mcr)).toBe(0x08);
    expect(inb(io, Com.Msr)).toBe(0xb0);
    outb(io, Com.Lcr, 0x80);
    expect([inb(io, Com.Data), inb(io, Com.Ier)]).toEqual([12, 0]);
  });

  it('reads and writes the divisor latch only while DLAB is set', () => {
    const { io, output } = makeUart();
    outb(io, Com.Lcr, 0x83);
    outb(io, Com.Data, 0x01);
    outb(io, Com.Ier, 0x02);
    expect(output).toEqual([]);
    expect([inb(io, Com.Data), inb(io, Com.Ier)]).toEqual([0x01, 0x02]);
    outb(io, Com.Lcr, 0x03);
    expect(inb(io, Com.Ier)).toBe(0);
    outb(io, Com.Lcr, 0x80);
    expect(inb(io, Com.Data) | (inb(io, Com.Ier) << 8)).toBe(0x0201);
    outb(io, Com.Scr, 0x5a);
    expect(inb(io, Com.Scr)).toBe(0x5a);
  });

  it('queues host input, shows DR while bytes wait and interrupts for received data', () => {
    const { io, uart, irq } = makeUart();
    outb(io, Com.Ier, 0x01);
    expect(irq.level).toBe(false);
    uart.pushInput('hi');
    expect(inb(io, Com.Lsr) & 1).toBe(1);
    expect(irq.level).toBe(true);
    expect(inb(io, Com.Iir)).toBe(0x04);
    expect(inb(io, Com.Data)).toBe(0x68);
    // With FIFOs off the RBR holds one byte; the next comes in as soon as it is read.
    expect(inb(io, Com.Lsr) & 1).toBe(1);
    expect(inb(io, Com.Data)).toBe(0x69);
    expect(inb(io, Com.Lsr) & 1).toBe(0);
    expect(irq.level).toBe(false);
    expect(inb(io, Com.Iir)).toBe(0x01);
  });

  it('raises THR empty when enabled, clears it on an IIR read, and pulses it on each THR write', () => {
    const { io, irq } = makeUart();
    outb(io, Com.Ier, 0x02);
    expect(irq.rises).toBe(1);
    expect(inb(io, Com.Iir)).toBe(0x02);
    expect(irq.level).toBe(false);
    expect(inb(io, Com.Iir)).toBe(0x01);
    outb(io, Com.Data, 0x41);
    outb(io, Com.Data, 0x42);
    expect(irq.rises).toBe(3);
    expect(irq.level).toBe(true);
    outb(io, Com.Ier, 0x00);
    expect(irq.level).toBe(false);
  });

  it('gives received data priority over THR empty in IIR', () => {
    const { io, uart } = makeUart();
    outb(io, Com.Ier, 0x03);
    uart.pushInput('x');
    expect(inb(io, Com.Iir)).toBe(0x04);
    inb(io, Com.Data);
    expect(inb(io, Com.Iir)).toBe(0x02);
  });

  it('with FIFOs holds data below the trigger level until the character timeout', () => {
    const { io, uart, clock } = makeUart();
    // 115200 baud 8N1: 10 bits of 8680 ns each; the timeout is four characters.
    outb(io, Com.Lcr, 0x83);
    outb(io, Com.Data, 1);
    outb(io, Com.Ier, 0);
    outb(io, Com.Lcr, 0x03);
    outb(io, Com.Iir, 0xc7);
    outb(io, Com.Ier, 0x01);
    uart.pushInput('abc');
    expect(inb(io, Com.Iir)).toBe(0xc1);
    expect(uart.nextDeadline()).toBe(4 * 86800);
    clock.ns = 4 * 86800 - 1;
    uart.update();
    expect(inb(io, Com.Iir)).toBe(0xc1);
    clock.ns = 4 * 86800;
    uart.update();
    expect(inb(io, Com.Iir)).toBe(0xcc);
    expect(String.fromCharCode(inb(io, Com.Data), inb(io, Com.Data), inb(io, Com.Data))).toBe('abc');
    expect(inb(io, Com.Iir)).toBe(0xc1);
  });

  it('with FIFOs interrupts at the trigger level and takes at most 16 bytes from the host', () => {
    const { io, uart } = makeUart();
    outb(io, Com.Iir, 0x81);
    outb(io, Com.Ier, 0x01);
    uart.pushInput('1234567');
    expect(inb(io, Com.Iir)).toBe(0xc1);
    uart.pushInput('89abcdefghij');
    expect(inb(io, Com.Iir)).toBe(0xc4);
    let text = '';
    while (inb(io, Com.Lsr) & 1) text += String.fromCharCode(inb(io, Com.Data));
    expect(text).toBe('123456789abcdefghij');
  });

  it('loops transmitted bytes and modem lines back in loopback mode, with overrun when full', () => {
    const { io, output } = makeUart();
    outb(io, Com.Mcr, 0x1a);
    // Linux's 8250 probe: loopback with RTS and OUT2 must read CTS and DCD.
    expect(inb(io, Com.Msr) & 0xf0).toBe(0x90);
    outb(io, Com.Data, 0x55);
    expect(output).toEqual([]);
    expect(inb(io, Com.Lsr)).toBe(0x61);
    outb(io, Com.Data, 0x66);
    expect(inb(io, Com.Lsr)).toBe(0x63);
    expect(inb(io, Com.Lsr)).toBe(0x61);
    expect(inb(io, Com.Data)).toBe(0x66);
  });

  it('reports modem status deltas and their interrupt', () => {
    const { io, irq } = makeUart();
    outb(io, Com.Ier, 0x08);
    outb(io, Com.Mcr, 0x10);
    expect(irq.level).toBe(true);
    expect(inb(io, Com.Iir)).toBe(0x00);
    expect(inb(io, Com.Msr)).toBe(0x0b);
    expect(irq.level).toBe(false);
    outb(io, Com.Mcr, 0x15);
    expect(inb(io, Com.Msr)).toBe(0x62);
    outb(io, Com.Mcr, 0x11);
    // Ring indicator reports its trailing edge only.
    expect(inb(io, Com.Msr)).toBe(0x24);
  });

  it('keeps host input waiting while in loopback', () => {
    const { io, uart } = makeUart();
    outb(io, Com.Mcr, 0x10);
    uart.pushInput('z');
    expect(inb(io, Com.Lsr) & 1).toBe(0);
    outb(io, Com.Mcr, 0x08);
    expect(inb(io, Com.Data)).toBe(0x7a);
  });
});

// ---- isa-debug-exit and fw_cfg ------------------------------------------------------------

function makePc(overrides: Partial<Parameters<typeof createPcDevices>[0]> = {}) {
  const clock = new FakeClock();
  const events: string[] = [];
  const output: number[] = [];
  let cpu = 0;
  const devices = createPcDevices({
    ramBytes: 128 << 20,
    cpus: 2,
    clock,
    tscHz: 2e9,
    currentCpu: () => cpu,
    onOutput: (byte) => output.push(byte),
    onExit: (status) => events.push(`exit ${status}`),
    onInit: (index) => events.push(`init ${index}`),
    onSipi: (index, vector) => events.push(`sipi ${index} ${vector.toString(16)}`),
    onNmi: (index) => events.push(`nmi ${index}`),
    ...overrides,
  });
  return { clock, events, output, devices, setCpu: (index: number) => (cpu = index) };
}

describe('isa-debug-exit', () => {
  it('exits with (value << 1) | 1 for writes of any size anywhere in its window', () => {
    const { devices, events } = makePc();
    devices.io.out(0xf4, 1, 0x10);
    devices.io.out(0xf5, 2, 0x1234);
    devices.io.out(0xf4, 4, 0x80000000);
    expect(events).toEqual(['exit 33', `exit ${0x2469}`, 'exit 1']);
    expect(devices.io.in(0xf4, 1)).toBe(0);
  });
});

describe('fw_cfg', () => {
  const readItem = (io: IoBus, key: number, length: number) => {
    io.out(0x510, 2, key);
    return Array.from({ length }, () => inb(io, 0x511));
  };
  const bytes = (...values: number[]) => values;

  it('answers signature, ID, RAM size, CPU counts and an empty file directory', () => {
    const io = new IoBus();
    io.register(0x510, 2, new FwCfg({ ramBytes: 5 * 2 ** 30, cpus: 3, maxCpus: 4 }));
    expect(String.fromCharCode(...readItem(io, 0x0000, 4))).toBe('QEMU');
    expect(readItem(io, 0x0001, 4)).toEqual(bytes(1, 0, 0, 0));
    expect(readItem(io, 0x0003, 8)).toEqual(bytes(0, 0, 0, 0x40, 1, 0, 0, 0));
    expect(readItem(io, 0x0005, 2)).toEqual(bytes(3, 0));
    expect(readItem(io, 0x000f, 2)).toEqual(bytes(4, 0));
    expect(readItem(io, 0x0019, 4)).toEqual(bytes(0, 0, 0, 0));
  });

  it('reads 0 past an item and for unknown keys, rewinds on select, and ignores data writes', () => {
    const { devices } = makePc();
    const io = devices.io;
    expect(readItem(io, 0x0005, 4)).toEqual(bytes(2, 0, 0, 0));
    expect(readItem(io, 0x0003, 8)).toEqual(bytes(0, 0, 0, 8, 0, 0, 0, 0));
    expect(readItem(io, 0x1234, 2)).toEqual(bytes(0, 0));
    expect(readItem(io, 0x8003, 2)).toEqual(bytes(0, 0));
    // A byte write to the selector is a data write, not a select; a byte read there reads data.
    io.out(0x510, 2, 0x0000);
    io.out(0x510, 1, 0x05);
    expect(inb(io, 0x510)).toBe(0x51);
    expect(io.in(0x510, 2)).toBe(0);
    expect(inb(io, 0x511)).toBe(0x45);
  });
});

// ---- 8259 ---------------------------------------------------------------------------------

function makePic(icw4 = 0x01) {
  const pic = new Pic8259Pair();
  const io = new IoBus();
  io.register(0x20, 2, pic);
  io.register(0xa0, 2, pic);
  io.register(0x4d0, 2, pic);
  const output = new LineProbe();
  pic.onOutputChange = output.set;
  for (const [port, value] of [[0x20, 0x11], [0x21, 0x20], [0x21, 0x04], [0x21, icw4], [0xa0, 0x11], [0xa1, 0x28], [0xa1, 0x02], [0xa1, icw4]]) outb(io, port, value);
  return { pic, io, output };
}

const readIsr = (io: IoBus, commandPort: number) => {
  outb(io, commandPort, 0x0b);
  const isr = inb(io, commandPort);
  outb(io, commandPort, 0x0a);
  return isr;
};

describe('8259 PIC pair', () => {
  it('delivers an IRQ through ICW-programmed vector bases and clears it with a non-specific EOI', () => {
    const { pic, io, output } = makePic();
    expect(inb(io, 0x21)).toBe(0);
    pic.raiseIrq(1);
    expect(output.level).toBe(true);
    expect(inb(io, 0x20)).toBe(0x02);
    expect(pic.acknowledge()).toBe(0x21);
    expect(output.level).toBe(false);
    expect(inb(io, 0x20)).toBe(0);
    expect(readIsr(io, 0x20)).toBe(0x02);
    outb(io, 0x20, 0x20);
    expect(readIsr(io, 0x20)).toBe(0);
  });

  it('masks through OCW1 and keeps an edge latched until unmasked', () => {
    const { pic, io } = makePic();
    outb(io, 0x21, 0x08);
    expect(inb(io, 0x21)).toBe(0x08);
    pic.raiseIrq(3);
    pic.lowerIrq(3);
    expect(pic.pending()).toBe(false);
    outb(io, 0x21, 0x00);
    expect(pic.pending()).toBe(true);
    expect(pic.acknowledge()).toBe(0x23);
  });

  it('resolves priorities: lower IRQ first, and only higher ones nest while one is in service', () => {
    const { pic, io } = makePic();
    pic.raiseIrq(3);
    pic.raiseIrq(1);
    expect(pic.acknowledge()).toBe(0x21);
    expect(pic.pending()).toBe(false);
    pic.raiseIrq(0);
    expect(pic.acknowledge()).toBe(0x20);
    outb(io, 0x20, 0x20);
    expect(readIsr(io, 0x20)).toBe(0x02);
    expect(pic.pending()).toBe(false);
    outb(io, 0x20, 0x61);
    expect(pic.acknowledge()).toBe(0x23);
  });

  it('cascades the slave through IR2 and needs an EOI on both chips', () => {
    const { pic, io } = makePic();
    pic.raiseIrq(12);
    expect(pic.pending()).toBe(true);
    expect(pic.acknowledge()).toBe(0x2c);
    expect(readIsr(io, 0x20)).toBe(0x04);
    expect(readIsr(io, 0xa0)).toBe(0x10);
    pic.raiseIrq(9);
    expect(pic.pending()).toBe(false);
    outb(io, 0xa0, 0x20);
    // The slave asks again, but IR2 is still in service on the master.
    expect(pic.pending()).toBe(false);
    outb(io, 0x20, 0x20);
    expect(pic.acknowledge()).toBe(0x29);
  });

  it('lets a higher slave request through IR2 in special fully nested mode', () => {
    const { pic } = makePic(0x11);
    pic.raiseIrq(12);
    expect(pic.acknowledge()).toBe(0x2c);
    pic.raiseIrq(9);
    expect(pic.acknowledge()).toBe(0x29);
  });

  it('answers spurious IR7 when a level request goes away before the acknowledge', () => {
    const { pic, io } = makePic();
    outb(io, 0x4d0, 0x20);
    outb(io, 0x4d1, 0x04);
    expect([inb(io, 0x4d0), inb(io, 0x4d1)]).toEqual([0x20, 0x04]);
    pic.raiseIrq(5);
    expect(pic.pending()).toBe(true);
    pic.lowerIrq(5);
    expect(pic.acknowledge()).toBe(0x27);
    expect(readIsr(io, 0x20)).toBe(0);
    // On the slave: IR2 latched on the master, the slave's level request gone.
    pic.raiseIrq(10);
    pic.lowerIrq(10);
    expect(pic.pending()).toBe(true);
    expect(pic.acknowledge()).toBe(0x2f);
    expect(readIsr(io, 0xa0)).toBe(0);
    expect(readIsr(io, 0x20)).toBe(0x04);
  });

  it('keeps ELCR bits for IRQ 0-2, 8 and 13 clear', () => {
    const { io } = makePic();
    outb(io, 0x4d0, 0xff);
    outb(io, 0x4d1, 0xff);
    expect([inb(io, 0x4d0), inb(io, 0x4d1)]).toEqual([0xf8, 0xde]);
  });

  it('sets no ISR bit in auto-EOI mode', () => {
    const { pic, io } = makePic(0x03);
    pic.raiseIrq(4);
    expect(pic.acknowledge()).toBe(0x24);
    expect(readIsr(io, 0x20)).toBe(0);
  });

  it('rotates priorities on a rotating EOI and answers poll commands', () => {
    const { pic, io } = makePic();
    pic.raiseIrq(1);
    expect(pic.acknowledge()).toBe(0x21);
    pic.lowerIrq(1);
    outb(io, 0x20, 0xa0);
    pic.raiseIrq(1);
    pic.raiseIrq(3);
    outb(io, 0x20, 0x0c);
    expect(inb(io, 0x20)).toBe(0x83);
    expect(readIsr(io, 0x20)).toBe(0x08);
    // IRQ 1 now ranks below IRQ 3 in service: the poll word says nothing is requesting.
    outb(io, 0x20, 0x0c);
    expect(inb(io, 0x20)).toBe(0x00);
    outb(io, 0x20, 0x20);
    outb(io, 0x20, 0x0c);
    expect(inb(io, 0x20)).toBe(0x81);
  });

  it('splits a word write into the command and data ports', () => {
    const { io } = makePic();
    io.out(0x20, 2, 0xf00b);
    expect(inb(io, 0x21)).toBe(0xf0);
  });
});

// ---- 8254 ---------------------------------------------------------------------------------

function makePit() {
  const clock = new FakeClock();
  const irq0 = new LineProbe();
  const pit = new Pit8254({ clock, setIrq0: irq0.set });
  const io = new IoBus();
  io.register(0x40, 4, pit);
  io.register(0x61, 1, pit);
  // OUT0 starts high (power-on mode 3); count edges from here.
  expect(irq0.level).toBe(true);
  irq0.rises = 0;
  return { clock, irq0, pit, io };
}

const atTick = (ticks: number) => nsAtTicks(ticks, PIT_HZ);

function latchCount(io: IoBus, channel: number): number {
  outb(io, 0x43, channel << 6);
  return inb(io, 0x40 + channel) | (inb(io, 0x40 + channel) << 8);
}

describe('8254 PIT', () => {
  it('converts ticks and nanoseconds so that a deadline is due exactly at its nanosecond', () => {
    for (const ticks of [1, 1193, 65536, 123456789, 2 ** 40]) {
      const ns = nsAtTicks(ticks, PIT_HZ);
      expect(ticksAt(ns, PIT_HZ)).toBe(ticks);
      expect(ticksAt(ns - 1, PIT_HZ)).toBe(ticks - 1);
    }
  });

  it('runs mode 2 as a rate generator with one IRQ 0 edge per period', () => {
    const { clock, irq0, pit, io } = makePit();
    outb(io, 0x43, 0x34);
    outb(io, 0x40, 1193 & 0xff);
    outb(io, 0x40, 1193 >> 8);
    expect(pit.nextDeadline()).toBe(atTick(1193));
    expect(atTick(1193)).toBe(999848);
    clock.ns = atTick(1193) - 1;
    pit.update();
    expect(irq0.rises).toBe(0);
    expect(latchCount(io, 0)).toBe(1);
    clock.ns = atTick(1193);
    pit.update();
    expect(irq0.rises).toBe(1);
    expect(latchCount(io, 0)).toBe(1193);
    expect(pit.nextDeadline()).toBe(atTick(2 * 1193));
    // Several periods late: one edge (they coalesce in the PIC's IRR anyway), deadlines stay on the grid.
    clock.ns = atTick(5 * 1193 + 100);
    pit.update();
    expect(irq0.rises).toBe(2);
    expect(latchCount(io, 0)).toBe(1093);
    expect(pit.nextDeadline()).toBe(atTick(6 * 1193));
  });

  it('fires mode 0 once at terminal count and keeps OUT high until reprogrammed', () => {
    const { clock, irq0, pit, io } = makePit();
    outb(io, 0x43, 0x30);
    expect(irq0.level).toBe(false);
    outb(io, 0x40, 100);
    outb(io, 0x40, 0);
    expect(pit.nextDeadline()).toBe(atTick(100));
    clock.ns = atTick(99);
    pit.update();
    expect(irq0.rises).toBe(0);
    clock.ns = atTick(100);
    pit.update();
    expect(irq0.rises).toBe(1);
    expect(irq0.level).toBe(true);
    expect(pit.nextDeadline()).toBe(Infinity);
    clock.ns = atTick(10000);
    pit.update();
    expect(irq0.rises).toBe(1);
    // The counter wraps on past zero.
    expect(latchCount(io, 0)).toBe((100 - 10000 + 0x10000) & 0xffff);
    outb(io, 0x43, 0x30);
    expect(irq0.level).toBe(false);
  });

  it('holds a latched count while the counter runs on, and latches once until read', () => {
    const { clock, io } = makePit();
    outb(io, 0x43, 0x34);
    outb(io, 0x40, 0x00);
    outb(io, 0x40, 0x10);
    clock.ns = atTick(0x100);
    outb(io, 0x43, 0x00);
    clock.ns = atTick(0x200);
    outb(io, 0x43, 0x00);
    expect(inb(io, 0x40) | (inb(io, 0x40) << 8)).toBe(0x1000 - 0x100);
    expect(inb(io, 0x40) | (inb(io, 0x40) << 8)).toBe(0x1000 - 0x200);
  });

  it('answers read-back with status then count', () => {
    const { clock, io } = makePit();
    outb(io, 0x43, 0xb2);
    expect(inb(io, 0x43)).toBe(0xff);
    outb(io, 0x43, 0xe8);
    expect(inb(io, 0x42)).toBe(0xf2);
    outb(io, 0x42, 0x34);
    outb(io, 0x42, 0x12);
    outb(io, 0x61, 0x01);
    clock.ns = atTick(0x34);
    outb(io, 0x43, 0xc8);
    expect(inb(io, 0x42)).toBe(0x32);
    expect(inb(io, 0x42) | (inb(io, 0x42) << 8)).toBe(0x1200);
  });

  it('uses lobyte-only and hibyte-only access', () => {
    const { io } = makePit();
    outb(io, 0x43, 0x14);
    outb(io, 0x40, 0x80);
    expect(inb(io, 0x40)).toBe(0x80);
    outb(io, 0x43, 0x24);
    outb(io, 0x40, 0x02);
    expect(inb(io, 0x40)).toBe(0x02);
    expect(latchCount(io, 0) & 0xff).toBe(0x02);
  });

  it('loads a count written to a running rate generator at the end of the period', () => {
    const { clock, irq0, pit, io } = makePit();
    outb(io, 0x43, 0x34);
    outb(io, 0x40, 100);
    outb(io, 0x40, 0);
    clock.ns = atTick(30);
    outb(io, 0x40, 50);
    outb(io, 0x40, 0);
    expect(pit.nextDeadline()).toBe(atTick(100));
    clock.ns = atTick(100);
    pit.update();
    expect(irq0.rises).toBe(1);
    expect(pit.nextDeadline()).toBe(atTick(150));
  });

  it('counts BCD', () => {
    const { clock, io } = makePit();
    outb(io, 0x43, 0x31);
    outb(io, 0x40, 0x00);
    outb(io, 0x40, 0x10);
    clock.ns = atTick(1);
    expect(latchCount(io, 0)).toBe(0x0999);
  });

  it('gates channel 2 through port 0x61 and shows its OUT in bit 5 (TSC calibration)', () => {
    const { clock, io } = makePit();
    outb(io, 0x61, 0x00);
    outb(io, 0x43, 0xb0);
    outb(io, 0x42, 0xff);
    outb(io, 0x42, 0xff);
    expect(inb(io, 0x61) & 0x21).toBe(0x00);
    clock.ns = atTick(1000);
    expect(latchCount(io, 2)).toBe(0xffff);
    outb(io, 0x61, 0x01);
    clock.ns = atTick(1000 + 0xffff - 1);
    expect(inb(io, 0x61) & 0x21).toBe(0x01);
    clock.ns = atTick(1000 + 0xffff);
    expect(inb(io, 0x61) & 0x21).toBe(0x21);
  });

  it('makes a mode 3 square wave, high for the first half of each period', () => {
    const { clock, io } = makePit();
    outb(io, 0x61, 0x01);
    outb(io, 0x43, 0xb6);
    outb(io, 0x42, 10);
    outb(io, 0x42, 0);
    const out2 = (tick: number) => {
      clock.ns = atTick(tick);
      return (inb(io, 0x61) >> 5) & 1;
    };
    expect([0, 4, 5, 9, 10, 14, 15].map(out2)).toEqual([1, 1, 0, 0, 1, 1, 0]);
    clock.ns = atTick(12);
    expect(latchCount(io, 2)).toBe(6);
  });

  it('toggles the refresh bit of port 0x61 with virtual time', () => {
    const { clock, io } = makePit();
    const first = inb(io, 0x61) & 0x10;
    clock.ns = 15085;
    expect(inb(io, 0x61) & 0x10).toBe(first ^ 0x10);
  });
});

// ---- Local APIC ---------------------------------------------------------------------------

const APIC = 0xfee00000;
const enum ApicReg {
  Id = APIC + 0x20,
  Version = APIC + 0x30,
  Tpr = APIC + 0x80,
  Ppr = APIC + 0xa0,
  Eoi = APIC + 0xb0,
  Ldr = APIC + 0xd0,
  Dfr = APIC + 0xe0,
  Svr = APIC + 0xf0,
  Isr = APIC + 0x100,
  Irr = APIC + 0x200,
  Esr = APIC + 0x280,
  IcrLow = APIC + 0x300,
  IcrHigh = APIC + 0x310,
  LvtTimer = APIC + 0x320,
  Lint0 = APIC + 0x350,
  LvtError = APIC + 0x370,
  InitialCount = APIC + 0x380,
  CurrentCount = APIC + 0x390,
  DivideConfig = APIC + 0x3e0,
}

const bitIn = (mmio: MmioBus, base: number, vector: number) => (read32(mmio, base + (vector >> 5) * 0x10) >>> (vector & 31)) & 1;

function makeApicPc() {
  const pc = makePc();
  // Quiet the PIT so only the APIC under test makes interrupts.
  pc.devices.io.out(0x43, 1, 0x30);
  return pc;
}

describe('local APIC registers and reset state', () => {
  it('starts the BSP as the firmware leaves it and the AP at reset', () => {
    const { devices, setCpu } = makeApicPc();
    const { mmio, lapics } = devices;
    expect(read32(mmio, ApicReg.Version)).toBe(0x00050014);
    expect(read32(mmio, ApicReg.Svr)).toBe(0x1ff);
    expect(read32(mmio, ApicReg.Lint0)).toBe(0x8700);
    expect(lapics[0].readMsr(0x1b)).toEqual({ lo: 0xfee00900, hi: 0 });
    setCpu(1);
    expect(read32(mmio, ApicReg.Id)).toBe(0x01000000);
    expect(read32(mmio, ApicReg.Svr)).toBe(0xff);
    expect(read32(mmio, ApicReg.Lint0)).toBe(0x10000);
    expect(read32(mmio, ApicReg.Dfr)).toBe(0xffffffff);
    expect(lapics[1].readMsr(0x1b)).toEqual({ lo: 0xfee00800, hi: 0 });
  });

  it('keeps each register to its defined bits', () => {
    const { devices } = makeApicPc();
    const { mmio } = devices;
    write32(mmio, ApicReg.Tpr, 0xffffffff);
    write32(mmio, ApicReg.Ldr, 0xffffffff);
    write32(mmio, ApicReg.Dfr, 0);
    write32(mmio, ApicReg.DivideConfig, 0xffffffff);
    write32(mmio, ApicReg.LvtError, 0xffffffff);
    write32(mmio, ApicReg.IcrHigh, 0xffffffff);
    expect([ApicReg.Tpr, ApicReg.Ldr, ApicReg.Dfr, ApicReg.DivideConfig, ApicReg.LvtError, ApicReg.IcrHigh].map((r) => read32(mmio, r))).toEqual([
      0xff, 0xff000000, 0x0fffffff, 0xb, 0x100ff, 0xff000000,
    ]);
  });

  it('reads reserved registers as 0 and reports an illegal register address in ESR after the next ESR write', () => {
    const { devices } = makeApicPc();
    const { mmio } = devices;
    expect(read32(mmio, APIC + 0x40)).toBe(0);
    expect(read32(mmio, ApicReg.Esr)).toBe(0);
    write32(mmio, ApicReg.Esr, 0);
    expect(read32(mmio, ApicReg.Esr)).toBe(0x80);
    write32(mmio, ApicReg.Esr, 0);
    expect(read32(mmio, ApicReg.Esr)).toBe(0);
  });

  it('masks every LVT on software disable and refuses to unmask them until re-enabled', () => {
    const { devices, events } = makeApicPc();
    const { mmio, lapics } = devices;
    write32(mmio, ApicReg.Svr, 0xff);
    expect(read32(mmio, ApicReg.Lint0)).toBe(0x18700);
    write32(mmio, ApicReg.LvtTimer, 0x40);
    expect(read32(mmio, ApicReg.LvtTimer)).toBe(0x10040);
    // Fixed interrupts are not accepted; NMI still is.
    write32(mmio, ApicReg.IcrLow, 0x44050);
    write32(mmio, ApicReg.IcrLow, 0x44400);
    expect(bitIn(mmio, ApicReg.Irr, 0x50)).toBe(0);
    expect(events).toEqual(['nmi 0']);
    write32(mmio, ApicReg.Svr, 0x1ff);
    write32(mmio, ApicReg.LvtTimer, 0x40);
    expect(read32(mmio, ApicReg.LvtTimer)).toBe(0x40);
    expect(lapics[0].softwareEnabled).toBe(true);
  });
});

describe('local APIC timer', () => {
  const arm = (mmio: MmioBus, lvt: number, divide: number, count: number) => {
    write32(mmio, ApicReg.DivideConfig, divide);
    write32(mmio, ApicReg.LvtTimer, lvt);
    write32(mmio, ApicReg.InitialCount, count);
  };

  it('counts a one-shot down at the bus rate and fires once at zero', () => {
    const { devices, clock } = makeApicPc();
    const { mmio, lapics } = devices;
    arm(mmio, 0x40, 0xb, 1000);
    expect(lapics[0].nextDeadline()).toBe(1000);
    clock.ns = 400;
    expect(read32(mmio, ApicReg.CurrentCount)).toBe(600);
    clock.ns = 999;
    devices.update();
    expect(lapics[0].pendingVector()).toBe(-1);
    clock.ns = 1000;
    devices.update();
    expect(lapics[0].pendingVector()).toBe(0x40);
    expect(read32(mmio, ApicReg.CurrentCount)).toBe(0);
    expect(lapics[0].nextDeadline()).toBe(Infinity);
  });

  it('divides the bus clock by 2, 4, 8, 16, 32, 64, 128 and 1', () => {
    const { devices } = makeApicPc();
    const { mmio, lapics } = devices;
    const divisors: number[] = [];
    for (const code of [0x0, 0x1, 0x2, 0x3, 0x8, 0x9, 0xa, 0xb]) {
      arm(mmio, 0x40, code, 10);
      divisors.push(lapics[0].nextDeadline() / 10);
    }
    expect(divisors).toEqual([2, 4, 8, 16, 32, 64, 128, 1]);
  });

  it('keeps the count reached when the divider changes mid-count', () => {
    const { devices, clock } = makeApicPc();
    const { mmio, lapics } = devices;
    arm(mmio, 0x40, 0xb, 1000);
    clock.ns = 300;
    write32(mmio, ApicReg.DivideConfig, 0x0);
    expect(read32(mmio, ApicReg.CurrentCount)).toBe(700);
    expect(lapics[0].nextDeadline()).toBe(300 + 700 * 2);
  });

  it('reloads in periodic mode, staying on its period grid when serviced late', () => {
    const { devices, clock } = makeApicPc();
    const { mmio, lapics, interrupts } = devices;
    arm(mmio, 0x20041, 0x0, 250);
    expect(lapics[0].nextDeadline()).toBe(500);
    clock.ns = 500;
    devices.update();
    expect(interrupts[0].acknowledge()).toBe(0x41);
    write32(mmio, ApicReg.Eoi, 0);
    expect(lapics[0].nextDeadline()).toBe(1000);
    clock.ns = 1250;
    devices.update();
    expect(lapics[0].pendingVector()).toBe(0x41);
    expect(lapics[0].nextDeadline()).toBe(1500);
    expect(read32(mmio, ApicReg.CurrentCount)).toBe(125);
  });

  it('does not interrupt while masked but keeps counting', () => {
    const { devices, clock } = makeApicPc();
    const { mmio, lapics } = devices;
    arm(mmio, 0x10042, 0xb, 100);
    expect(lapics[0].nextDeadline()).toBe(Infinity);
    clock.ns = 50;
    expect(read32(mmio, ApicReg.CurrentCount)).toBe(50);
    clock.ns = 200;
    devices.update();
    write32(mmio, ApicReg.LvtTimer, 0x42);
    expect(lapics[0].pendingVector()).toBe(-1);
  });

  it('fires in TSC-deadline mode when the TSC reaches IA32_TSC_DEADLINE, then reads it as 0', () => {
    const { devices, clock } = makeApicPc();
    const { mmio, lapics } = devices;
    const lapic = lapics[0];
    // Writes to the deadline are ignored outside TSC-deadline mode.
    expect(lapic.writeMsr(0x6e0, 5000, 0)).toBe(true);
    expect(lapic.readMsr(0x6e0)).toEqual({ lo: 0, hi: 0 });
    write32(mmio, ApicReg.LvtTimer, 0x40043);
    write32(mmio, ApicReg.InitialCount, 10);
    expect(read32(mmio, ApicReg.InitialCount)).toBe(0);
    clock.ns = 1000;
    // tscHz is 2 GHz: TSC 2000 now, deadline 3000 is 500 ns away.
    lapic.writeMsr(0x6e0, 3000, 0);
    expect(lapic.readMsr(0x6e0)).toEqual({ lo: 3000, hi: 0 });
    expect(lapic.nextDeadline()).toBe(1500);
    clock.ns = 1499;
    devices.update();
    expect(lapic.pendingVector()).toBe(-1);
    clock.ns = 1500;
    devices.update();
    expect(lapic.pendingVector()).toBe(0x43);
    expect(lapic.readMsr(0x6e0)).toEqual({ lo: 0, hi: 0 });
    expect(lapic.nextDeadline()).toBe(Infinity);
    // A deadline already passed fires at once; leaving TSC-deadline mode disarms.
    lapic.acknowledge();
    write32(mmio, ApicReg.Eoi, 0);
    lapic.writeMsr(0x6e0, 1, 0);
    expect(lapic.pendingVector()).toBe(0x43);
    lapic.acknowledge();
    write32(mmio, ApicReg.Eoi, 0);
    lapic.writeMsr(0x6e0, 0, 1);
    write32(mmio, ApicReg.LvtTimer, 0x43);
    write32(mmio, ApicReg.LvtTimer, 0x40043);
    expect(lapic.readMsr(0x6e0)).toEqual({ lo: 0, hi: 0 });
  });
});

describe('local APIC interrupt acceptance', () => {
  const selfIpi = (mmio: MmioBus, vector: number) => write32(mmio, ApicReg.IcrLow, 0x44000 | vector);

  it('holds back vectors whose priority class is not above TPR', () => {
    const { devices } = makeApicPc();
    const { mmio, lapics } = devices;
    selfIpi(mmio, 0x51);
    selfIpi(mmio, 0x32);
    write32(mmio, ApicReg.Tpr, 0x50);
    expect(read32(mmio, ApicReg.Ppr)).toBe(0x50);
    expect(lapics[0].pendingVector()).toBe(-1);
    expect(lapics[0].getCr8()).toBe(5);
    lapics[0].setCr8(4);
    expect(read32(mmio, ApicReg.Tpr)).toBe(0x40);
    expect(lapics[0].pendingVector()).toBe(0x51);
    expect(lapics[0].acknowledge()).toBe(0x51);
    write32(mmio, ApicReg.Tpr, 0);
    expect(read32(mmio, ApicReg.Ppr)).toBe(0x50);
    expect(lapics[0].pendingVector()).toBe(-1);
    write32(mmio, ApicReg.Eoi, 0);
    expect(lapics[0].pendingVector()).toBe(0x32);
  });

  it('nests a higher vector and EOIs the highest in-service vector first', () => {
    const { devices } = makeApicPc();
    const { mmio, lapics } = devices;
    selfIpi(mmio, 0x40);
    expect(lapics[0].acknowledge()).toBe(0x40);
    selfIpi(mmio, 0x60);
    selfIpi(mmio, 0x45);
    expect(lapics[0].acknowledge()).toBe(0x60);
    expect([bitIn(mmio, ApicReg.Isr, 0x40), bitIn(mmio, ApicReg.Isr, 0x60)]).toEqual([1, 1]);
    write32(mmio, ApicReg.Eoi, 0);
    expect([bitIn(mmio, ApicReg.Isr, 0x40), bitIn(mmio, ApicReg.Isr, 0x60)]).toEqual([1, 0]);
    expect(lapics[0].pendingVector()).toBe(-1);
    write32(mmio, ApicReg.Eoi, 0);
    expect(lapics[0].acknowledge()).toBe(0x45);
  });

  it('answers the spurious vector when nothing is deliverable', () => {
    const { devices } = makeApicPc();
    write32(devices.mmio, ApicReg.Svr, 0x13f);
    expect(devices.lapics[0].acknowledge()).toBe(0x3f);
  });

  it('rejects vectors below 16 with ESR send/receive illegal vector', () => {
    const { devices } = makeApicPc();
    const { mmio, lapics } = devices;
    selfIpi(mmio, 0x0e);
    write32(mmio, ApicReg.LvtTimer, 0x05);
    write32(mmio, ApicReg.DivideConfig, 0xb);
    write32(mmio, ApicReg.InitialCount, 1);
    devices.update();
    write32(mmio, ApicReg.Esr, 0);
    expect(read32(mmio, ApicReg.Esr)).toBe(0x20);
    expect(lapics[0].pendingVector()).toBe(-1);
  });

  it('raises the error LVT when an error is detected', () => {
    const { devices } = makeApicPc();
    const { mmio, lapics } = devices;
    write32(mmio, ApicReg.LvtError, 0xfe);
    selfIpi(mmio, 0x01);
    expect(lapics[0].pendingVector()).toBe(0xfe);
  });
});

describe('local APIC IPIs', () => {
  it('sends INIT and SIPI to another CPU, and ignores INIT level de-assert', () => {
    const { devices, events } = makeApicPc();
    const { mmio } = devices;
    write32(mmio, ApicReg.IcrHigh, 0x01000000);
    write32(mmio, ApicReg.IcrLow, 0x0000c500);
    write32(mmio, ApicReg.IcrLow, 0x00008500);
    write32(mmio, ApicReg.IcrLow, 0x00000610);
    expect(events).toEqual(['init 1', 'sipi 1 10']);
    expect(read32(mmio, ApicReg.IcrLow)).toBe(0x610);
  });

  it('routes fixed IPIs by physical ID, shorthand and flat logical destination', () => {
    const { devices, setCpu } = makeApicPc();
    const { mmio, lapics } = devices;
    write32(mmio, ApicReg.IcrHigh, 0x01000000);
    write32(mmio, ApicReg.IcrLow, 0x4041);
    expect([lapics[0].pendingVector(), lapics[1].pendingVector()]).toEqual([-1, -1]);
    // The AP accepts once it is software-enabled.
    setCpu(1);
    write32(mmio, ApicReg.Svr, 0x1ff);
    write32(mmio, ApicReg.Ldr, 0x02000000);
    setCpu(0);
    write32(mmio, ApicReg.IcrLow, 0x4041);
    expect([lapics[0].pendingVector(), lapics[1].pendingVector()]).toEqual([-1, 0x41]);
    write32(mmio, ApicReg.IcrLow, 0xc4042);
    expect([lapics[0].pendingVector(), lapics[1].pendingVector()]).toEqual([-1, 0x42]);
    write32(mmio, ApicReg.IcrLow, 0x84043);
    expect([lapics[0].pendingVector(), lapics[1].pendingVector()]).toEqual([0x43, 0x43]);
    write32(mmio, ApicReg.Ldr, 0x01000000);
    write32(mmio, ApicReg.IcrHigh, 0x02000000);
    write32(mmio, ApicReg.IcrLow, 0x4844);
    expect([lapics[0].pendingVector(), lapics[1].pendingVector()]).toEqual([0x43, 0x44]);
    write32(mmio, ApicReg.IcrHigh, 0x03000000);
    write32(mmio, ApicReg.IcrLow, 0x4845);
    expect([lapics[0].pendingVector(), lapics[1].pendingVector()]).toEqual([0x45, 0x45]);
  });

  it('matches cluster-model logical destinations', () => {
    const { devices, setCpu } = makeApicPc();
    const { mmio, lapics } = devices;
    setCpu(1);
    write32(mmio, ApicReg.Svr, 0x1ff);
    write32(mmio, ApicReg.Dfr, 0x0fffffff);
    write32(mmio, ApicReg.Ldr, 0x32000000);
    setCpu(0);
    write32(mmio, ApicReg.IcrHigh, 0x22000000);
    write32(mmio, ApicReg.IcrLow, 0x4850);
    expect(lapics[1].pendingVector()).toBe(-1);
    write32(mmio, ApicReg.IcrHigh, 0x36000000);
    write32(mmio, ApicReg.IcrLow, 0x4850);
    expect(lapics[1].pendingVector()).toBe(0x50);
  });

  it('delivers NMI IPIs to the machine and lowest priority to the least busy CPU', () => {
    const { devices, events, setCpu } = makeApicPc();
    const { mmio, lapics } = devices;
    setCpu(1);
    write32(mmio, ApicReg.Svr, 0x1ff);
    setCpu(0);
    write32(mmio, ApicReg.IcrLow, 0x80400);
    expect(events).toEqual(['nmi 0', 'nmi 1']);
    write32(mmio, ApicReg.IcrLow, 0xc0400);
    expect(events).toEqual(['nmi 0', 'nmi 1', 'nmi 1']);
    write32(mmio, ApicReg.Tpr, 0x20);
    write32(mmio, ApicReg.IcrHigh, 0xff000000);
    write32(mmio, ApicReg.IcrLow, 0x4160);
    expect([lapics[0].pendingVector(), lapics[1].pendingVector()]).toEqual([-1, 0x60]);
  });

  it('drops messages to a globally disabled APIC and hides its window', () => {
    const { devices, events, setCpu } = makeApicPc();
    const { mmio, lapics } = devices;
    expect(lapics[1].writeMsr(0x1b, 0xfee00000, 0)).toBe(true);
    write32(mmio, ApicReg.IcrHigh, 0x01000000);
    write32(mmio, ApicReg.IcrLow, 0x4500);
    expect(events).toEqual([]);
    setCpu(1);
    expect(read32(mmio, ApicReg.Version)).toBe(0xffffffff);
    expect(lapics[1].writeMsr(0x1b, 0xfee00800, 0)).toBe(true);
    expect(read32(mmio, ApicReg.Version)).toBe(0x00050014);
    expect(read32(mmio, ApicReg.Svr)).toBe(0xff);
  });
});

describe('x2APIC', () => {
  const enableX2apic = (pc: PcDevices, cpu: number) => {
    const base = pc.lapics[cpu].readMsr(0x1b)!;
    expect(pc.lapics[cpu].writeMsr(0x1b, base.lo | 0xc00, 0)).toBe(true);
  };

  it('enters from xAPIC mode only, leaves only to disabled, and checks reserved bits', () => {
    const { devices } = makeApicPc();
    const lapic = devices.lapics[0];
    expect(lapic.readMsr(0x802)).toBeUndefined();
    expect(lapic.writeMsr(0x1b, 0xfee00500, 0)).toBe(false);
    expect(lapic.writeMsr(0x1b, 0xfee00901, 0)).toBe(false);
    expect(lapic.writeMsr(0x1b, 0xfee00900, 0x100)).toBe(false);
    enableX2apic(devices, 0);
    expect(lapic.readMsr(0x1b)).toEqual({ lo: 0xfee00d00, hi: 0 });
    expect(lapic.writeMsr(0x1b, 0xfee00900, 0)).toBe(false);
    expect(lapic.writeMsr(0x1b, 0xfee00100, 0)).toBe(true);
    expect(lapic.writeMsr(0x1b, 0xfee00d00, 0)).toBe(false);
    expect(lapic.writeMsr(0x1b, 0xfee00900, 0)).toBe(true);
  });

  it('refuses EXTD when the CPU does not advertise x2APIC', () => {
    const { devices } = makePc({ x2apic: false });
    expect(devices.lapics[0].writeMsr(0x1b, 0xfee00d00, 0)).toBe(false);
  });

  it('reads the 32-bit ID, version and the derived LDR through MSRs, and hides the MMIO window', () => {
    const { devices, setCpu } = makeApicPc();
    enableX2apic(devices, 1);
    const lapic = devices.lapics[1];
    expect(lapic.readMsr(0x802)).toEqual({ lo: 1, hi: 0 });
    expect(lapic.readMsr(0x803)).toEqual({ lo: 0x00050014, hi: 0 });
    expect(lapic.readMsr(0x80d)).toEqual({ lo: 0x00000002, hi: 0 });
    expect(lapic.writeMsr(0x808, 0x30, 0)).toBe(true);
    expect(lapic.readMsr(0x808)).toEqual({ lo: 0x30, hi: 0 });
    setCpu(1);
    expect(read32(devices.mmio, ApicReg.Version)).toBe(0xffffffff);
    write32(devices.mmio, ApicReg.Tpr, 0);
    expect(lapic.readMsr(0x808)).toEqual({ lo: 0x30, hi: 0 });
  });

  it('raises #GP for read-only, write-only, missing registers and reserved bits', () => {
    const { devices } = makeApicPc();
    enableX2apic(devices, 0);
    const lapic = devices.lapics[0];
    expect(lapic.writeMsr(0x802, 5, 0)).toBe(false);
    expect(lapic.writeMsr(0x803, 0, 0)).toBe(false);
    expect(lapic.writeMsr(0x80d, 0, 0)).toBe(false);
    expect(lapic.writeMsr(0x839, 0, 0)).toBe(false);
    expect(lapic.readMsr(0x80b)).toBeUndefined();
    expect(lapic.readMsr(0x83f)).toBeUndefined();
    expect(lapic.readMsr(0x80e)).toBeUndefined();
    expect(lapic.readMsr(0x831)).toBeUndefined();
    expect(lapic.readMsr(0x809)).toBeUndefined();
    expect(lapic.readMsr(0x82f)).toBeUndefined();
    expect(lapic.writeMsr(0x80b, 1, 0)).toBe(false);
    expect(lapic.writeMsr(0x828, 1, 0)).toBe(false);
    expect(lapic.writeMsr(0x808, 0x100, 0)).toBe(false);
    expect(lapic.writeMsr(0x808, 0x10, 1)).toBe(false);
    expect(lapic.writeMsr(0x83e, 0x4, 0)).toBe(false);
    expect(lapic.writeMsr(0x832, 0x80040, 0)).toBe(false);
    expect(lapic.writeMsr(0x83f, 0x140, 0)).toBe(false);
    expect(lapic.writeMsr(0x830, 0x1040, 0)).toBe(false);
    expect(lapic.writeMsr(0x80b, 0, 0)).toBe(true);
    expect(lapic.writeMsr(0x828, 0, 0)).toBe(true);
  });

  it('sends through the 64-bit ICR and SELF IPI', () => {
    const { devices, setCpu } = makeApicPc();
    setCpu(1);
    write32(devices.mmio, ApicReg.Svr, 0x1ff);
    enableX2apic(devices, 0);
    const lapic = devices.lapics[0];
    expect(lapic.writeMsr(0x830, 0x4070, 1)).toBe(true);
    expect(lapic.readMsr(0x830)).toEqual({ lo: 0x4070, hi: 1 });
    expect(devices.lapics[1].pendingVector()).toBe(0x70);
    expect(lapic.writeMsr(0x83f, 0x71, 0)).toBe(true);
    expect(lapic.pendingVector()).toBe(0x71);
    expect(lapic.acknowledge()).toBe(0x71);
    expect(lapic.writeMsr(0x80b, 0, 0)).toBe(true);
    expect(lapic.readMsr(0x810 + (0x71 >> 5))).toEqual({ lo: 0, hi: 0 });
  });
});

// ---- Interrupt routing: PIC through LINT0, I/O APIC ---------------------------------------

describe('CPU interrupt input', () => {
  it('takes the 8259 through the BSP LINT0 virtual wire at the firmware vector base', () => {
    const { devices, clock } = makePc();
    const [bsp, ap] = devices.interrupts;
    const firstTick = devices.pit.nextDeadline();
    expect(firstTick).toBe(nsAtTicks(65536, PIT_HZ));
    clock.ns = firstTick;
    devices.update();
    expect(bsp.pending()).toBe(true);
    expect(ap.pending()).toBe(false);
    expect(bsp.acknowledge()).toBe(0x08);
    expect(bsp.pending()).toBe(false);
  });

  it('takes the local APIC first, and the 8259 straight when the APIC is globally disabled', () => {
    const { devices } = makePc();
    const bsp = devices.interrupts[0];
    devices.setIsaIrq(1, true);
    write32(devices.mmio, ApicReg.IcrLow, 0x44090);
    expect(bsp.acknowledge()).toBe(0x90);
    expect(bsp.acknowledge()).toBe(0x09);
    devices.setIsaIrq(1, false);
    devices.io.out(0x20, 1, 0x20);
    write32(devices.mmio, ApicReg.Lint0, 0x10700);
    devices.setIsaIrq(1, true);
    expect(bsp.pending()).toBe(false);
    devices.lapics[0].writeMsr(0x1b, 0xfee00100, 0);
    expect(bsp.pending()).toBe(true);
    expect(bsp.acknowledge()).toBe(0x09);
  });

  it('turns the 8259 output into a fixed vector or an NMI per the LINT0 delivery mode', () => {
    const { devices, events } = makePc();
    write32(devices.mmio, ApicReg.Lint0, 0x00031);
    devices.setIsaIrq(1, true);
    expect(devices.lapics[0].pendingVector()).toBe(0x31);
    devices.setIsaIrq(1, false);
    devices.pic.acknowledge();
    devices.io.out(0x20, 1, 0x20);
    write32(devices.mmio, ApicReg.Lint0, 0x00400);
    devices.setIsaIrq(1, true);
    expect(events).toEqual(['nmi 0']);
  });
});

describe('I/O APIC', () => {
  const IOAPIC = 0xfec00000;
  const selectAndWrite = (mmio: MmioBus, register: number, value: number) => {
    write32(mmio, IOAPIC, register);
    write32(mmio, IOAPIC + 0x10, value);
  };
  const selectAndRead = (mmio: MmioBus, register: number) => {
    write32(mmio, IOAPIC, register);
    return read32(mmio, IOAPIC + 0x10);
  };

  it('identifies as QEMU version 0x20 with 24 entries, all masked', () => {
    const { devices } = makePc();
    const { mmio } = devices;
    expect(selectAndRead(mmio, 0x01)).toBe(0x00170020);
    expect(selectAndRead(mmio, 0x00)).toBe(0);
    selectAndWrite(mmio, 0x00, 0xffffffff);
    expect(selectAndRead(mmio, 0x00)).toBe(0x0f000000);
    expect(selectAndRead(mmio, 0x02)).toBe(0x0f000000);
    expect(selectAndRead(mmio, 0x10)).toBe(0x10000);
    expect(selectAndRead(mmio, 0x3e)).toBe(0x10000);
    selectAndWrite(mmio, 0x10, 0xffffffff);
    expect(selectAndRead(mmio, 0x10)).toBe(0xffffafff);
    write32(mmio, IOAPIC, 0x1ff);
    expect(read32(mmio, IOAPIC)).toBe(0xff);
  });

  it('routes an edge-triggered ISA IRQ to a LAPIC vector, and ignores it while masked', () => {
    const { devices } = makePc();
    const { mmio, lapics } = devices;
    selectAndWrite(mmio, 0x11 + 2 * 4, 0x00000000);
    selectAndWrite(mmio, 0x10 + 2 * 4, 0x00010034);
    devices.setIsaIrq(4, true);
    devices.setIsaIrq(4, false);
    selectAndWrite(mmio, 0x10 + 2 * 4, 0x00000034);
    expect(lapics[0].pendingVector()).toBe(-1);
    devices.setIsaIrq(4, true);
    expect(lapics[0].pendingVector()).toBe(0x34);
    expect(lapics[0].acknowledge()).toBe(0x34);
    write32(mmio, APIC + 0xb0, 0);
    expect(selectAndRead(mmio, 0x10 + 2 * 4) & 0x4000).toBe(0);
  });

  it('takes the PIT on pin 2 and delivers to the destination APIC ID', () => {
    const { devices, clock, setCpu } = makePc();
    const { mmio, lapics } = devices;
    setCpu(1);
    write32(mmio, ApicReg.Svr, 0x1ff);
    selectAndWrite(mmio, 0x15, 0x01000000);
    selectAndWrite(mmio, 0x14, 0x00000030);
    clock.ns = devices.nextDeadline();
    devices.update();
    expect(lapics[1].pendingVector()).toBe(0x30);
    expect(lapics[0].pendingVector()).toBe(-1);
  });

  it('holds a level-triggered pin in remote IRR until EOI and delivers again if still asserted', () => {
    const { devices } = makePc();
    const { mmio, lapics } = devices;
    const lapic = lapics[0];
    selectAndWrite(mmio, 0x10 + 2 * 9, 0x0000a049);
    devices.setIsaIrq(9, true);
    expect(selectAndRead(mmio, 0x10 + 2 * 9)).toBe(0x0000e049);
    expect(bitIn(mmio, APIC + 0x180, 0x49)).toBe(1);
    expect(lapic.acknowledge()).toBe(0x49);
    expect(lapic.pendingVector()).toBe(-1);
    write32(mmio, APIC + 0xb0, 0);
    expect(lapic.pendingVector()).toBe(0x49);
    expect(lapic.acknowledge()).toBe(0x49);
    devices.setIsaIrq(9, false);
    write32(mmio, APIC + 0xb0, 0);
    expect(selectAndRead(mmio, 0x10 + 2 * 9) & 0x4000).toBe(0);
    expect(lapic.pendingVector()).toBe(-1);
    // The version 0x20 EOI register clears remote IRR the same way.
    devices.setIsaIrq(9, true);
    expect(selectAndRead(mmio, 0x10 + 2 * 9) & 0x4000).toBe(0x4000);
    devices.setIsaIrq(9, false);
    write32(mmio, IOAPIC + 0x40, 0x49);
    expect(selectAndRead(mmio, 0x10 + 2 * 9) & 0x4000).toBe(0);
    // Rewriting a stuck level entry as edge-triggered drops remote IRR (Linux's fallback EOI).
    devices.setIsaIrq(9, true);
    expect(selectAndRead(mmio, 0x10 + 2 * 9) & 0x4000).toBe(0x4000);
    selectAndWrite(mmio, 0x10 + 2 * 9, 0x00012049);
    expect(selectAndRead(mmio, 0x10 + 2 * 9)).toBe(0x00012049);
  });

  it('delivers a level-triggered pin that was asserted while masked when it is unmasked', () => {
    const { devices } = makePc();
    const { mmio, lapics } = devices;
    selectAndWrite(mmio, 0x10 + 2 * 10, 0x0001a04a);
    devices.setIsaIrq(10, true);
    expect(lapics[0].pendingVector()).toBe(-1);
    selectAndWrite(mmio, 0x10 + 2 * 10, 0x0000a04a);
    expect(lapics[0].pendingVector()).toBe(0x4a);
  });
});

// ---- Robustness ---------------------------------------------------------------------------

describe('bad guest input', () => {
  it('never throws for random port, MMIO and MSR accesses', () => {
    const { devices, clock, setCpu } = makePc({ onExit: () => {} });
    let seed = 12345;
    const random = (limit: number) => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return (seed >>> 8) % limit;
    };
    const ports = [0x20, 0x21, 0xa0, 0xa1, 0x4d0, 0x4d1, 0x40, 0x41, 0x42, 0x43, 0x61, 0x80, 0x3f8, 0x3fb, 0x3fc, 0x3fe, 0x3ff, 0x510, 0x511, 0xf4, 0xf7];
    const sizes: AccessSize[] = [1, 2, 4];
    expect(() => {
      for (let i = 0; i < 20000; i++) {
        clock.ns += random(5000);
        setCpu(random(2));
        const value = (random(1 << 16) << 16) | random(1 << 16);
        switch (random(6)) {
          case 0:
            devices.io.out(ports[random(ports.length)] + random(2), sizes[random(3)], value);
            break;
          case 1:
            devices.io.in(ports[random(ports.length)], sizes[random(3)]);
            break;
          case 2: {
            const window = devices.mmio.find([APIC, 0xfec00000][random(2)])!;
            window.dev.write(random(0x1000), sizes[random(3)], value);
            break;
          }
          case 3: {
            const window = devices.mmio.find([APIC, 0xfec00000][random(2)])!;
            window.dev.read(random(0x1000), sizes[random(3)]);
            break;
          }
          case 4:
            devices.lapics[random(2)].writeMsr([0x1b, 0x6e0, 0x800 + random(0x100)][random(3)], value, random(3) === 0 ? value : 0);
            break;
          default:
            devices.update();
            // Acknowledging with nothing pending must answer a spurious vector, not fail.
            for (const cpu of devices.interrupts) if (cpu.pending() || random(4) === 0) cpu.acknowledge();
        }
      }
    }).not.toThrow();
  });
});
