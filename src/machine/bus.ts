/**
 * The bare-metal PC's buses: I/O ports and memory-mapped I/O, and the virtual clock that
 * drives every timer.
 *
 * Devices implement PortDevice or MmioDevice and are registered on a range; the CPU's IN/OUT
 * helpers and the MMIO slow path of machine memory look the device up here. Unclaimed ports
 * read as all ones and writes to them are dropped (as on a PC), and each such access is
 * reported through `onUnclaimed` so `-d unimp` can log it.
 *
 * Time is virtual: it advances with retired guest instructions (see Machine), so a run is
 * deterministic whatever the host does. Timers ask the clock for "now" in nanoseconds and
 * report their next deadline so the machine can stop a HLT exactly there.
 */

export type AccessSize = 1 | 2 | 4 | 8;

export interface PortDevice {
  /** Value read from `port` (already masked to `size` bytes by the caller). */
  in(port: number, size: AccessSize): number;
  out(port: number, size: AccessSize, value: number): void;
}

export interface MmioDevice {
  /** Read `size` bytes at `offset` from the start of the device's window (8 returns the low half; the high half in `hi`). */
  read(offset: number, size: AccessSize): number;
  write(offset: number, size: AccessSize, value: number): void;
}

export interface Clock {
  /** Virtual nanoseconds since the machine started. */
  now(): number;
}

const PORTS = 0x10000;

export class IoBus {
  private readonly devs: (PortDevice | undefined)[] = new Array(PORTS);
  /** Called for a port nobody claims: (direction, port, size, value written). */
  onUnclaimed: (dir: 'in' | 'out', port: number, size: AccessSize, value: number) => void = () => {};

  register(first: number, count: number, dev: PortDevice): void {
    for (let p = first; p < first + count; p++) {
      if (this.devs[p]) throw new Error(`I/O port 0x${p.toString(16)} claimed twice`);
      this.devs[p] = dev;
    }
  }

  in(port: number, size: AccessSize): number {
    const d = this.devs[port & 0xffff];
    const mask = size === 4 ? -1 : (1 << (size * 8)) - 1;
    if (!d) {
      this.onUnclaimed('in', port, size, 0);
      return mask;
    }
    return d.in(port & 0xffff, size) & mask;
  }

  out(port: number, size: AccessSize, value: number): void {
    const d = this.devs[port & 0xffff];
    if (!d) {
      this.onUnclaimed('out', port, size, value);
      return;
    }
    d.out(port & 0xffff, size, size === 4 ? value | 0 : value & ((1 << (size * 8)) - 1));
  }
}

export interface MmioWindow {
  base: number;
  len: number;
  dev: MmioDevice;
}

export class MmioBus {
  readonly windows: MmioWindow[] = [];

  register(base: number, len: number, dev: MmioDevice): void {
    for (const w of this.windows) if (base < w.base + w.len && w.base < base + len) throw new Error(`MMIO window at 0x${base.toString(16)} overlaps another`);
    this.windows.push({ base, len, dev });
  }

  /** The window holding physical address `phys`, if any. */
  find(phys: number): MmioWindow | undefined {
    for (const w of this.windows) if (phys >= w.base && phys < w.base + w.len) return w;
    return undefined;
  }
}
