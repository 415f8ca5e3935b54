/**
 * Wide port accesses to devices whose registers are one byte wide.
 *
 * The 8250/16550, the 8259 and the 8254 have 8-bit data buses. QEMU declares them with a
 * one-byte implementation size, so an `outw`/`inw`/`outl` to them is split into consecutive
 * byte accesses, lowest port first (an `outw 0x20` writes the low byte to 0x20 and the high
 * byte to 0x21). These helpers do the same split for our PortDevice interface; a byte that
 * falls on a port the device does not own reads as 0xFF and is not written, as on an
 * undecoded ISA address.
 */
import type { AccessSize } from '../bus.js';

export function readBytewise(port: number, size: AccessSize, owns: (port: number) => boolean, readByte: (port: number) => number): number {
  let value = 0;
  for (let i = 0; i < Math.min(size, 4); i++) {
    const p = (port + i) & 0xffff;
    const byte = owns(p) ? readByte(p) & 0xff : 0xff;
    value |= byte << (8 * i);
  }
  return value;
}

export function writeBytewise(port: number, size: AccessSize, value: number, owns: (port: number) => boolean, writeByte: (port: number, byte: number) => void): void {
  for (let i = 0; i < Math.min(size, 4); i++) {
    const p = (port + i) & 0xffff;
    if (owns(p)) writeByte(p, (value >>> (8 * i)) & 0xff);
  }
}
