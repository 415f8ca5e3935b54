/**
 * QEMU's fw_cfg interface on x86, the traditional (port I/O, no DMA) flavour: how a guest
 * learns the RAM size and CPU count without firmware tables.
 *
 * A 16-bit write to the selector port (0x510) picks a key and rewinds the read offset; each
 * byte read from the data port (0x511) returns the next byte of that key's item, and 0 past
 * its end or for a key we do not have. As QEMU's combined port pair does, a byte read at
 * 0x510 reads data too, byte writes to either port are data writes (ignored since QEMU 2.4),
 * and other widths are invalid accesses that read 0 and are dropped. The key's bit 14 (the old
 * write channel) is ignored and bit 15 selects the architecture-local table, which is empty
 * here. Items are built once, as byte arrays in the layout QEMU's docs give (integers
 * little-endian, the file directory's count big-endian).
 */
import type { AccessSize, PortDevice } from '../bus.js';

export const FW_CFG_PORT = 0x510;
export const FW_CFG_PORT_COUNT = 2;

/** fw_cfg keys we answer (docs/specs/fw_cfg.rst in QEMU). */
export const enum FwCfgKey {
  /** The four bytes "QEMU". */
  Signature = 0x0000,
  /** Feature bitmap, u32: bit 0 traditional interface, bit 1 DMA. */
  Id = 0x0001,
  /** RAM size in bytes, u64. */
  RamSize = 0x0003,
  /** Number of CPUs present at boot, u16. */
  CpuCount = 0x0005,
  /** Maximum number of CPUs, u16. */
  MaxCpus = 0x000f,
  /** File directory: a big-endian u32 count followed by that many entries. */
  FileDir = 0x0019,
}

const ENTRY_MASK = 0x3fff;
const ARCH_LOCAL = 0x8000;
const FEATURE_TRADITIONAL = 1;

export interface FwCfgOptions {
  ramBytes: number;
  cpus: number;
  /** Defaults to `cpus`, as with QEMU's `-smp n`. */
  maxCpus?: number;
}

function littleEndian(value: number, bytes: number): Uint8Array {
  const out = new Uint8Array(bytes);
  // Division rather than shifts: RAM sizes pass 2^32.
  let rest = value;
  for (let i = 0; i < bytes; i++) {
    out[i] = rest % 256;
    rest = Math.floor(rest / 256);
  }
  return out;
}

export class FwCfg implements PortDevice {
  private readonly items = new Map<number, Uint8Array>();
  private selected: Uint8Array | undefined;
  private offset = 0;

  constructor(options: FwCfgOptions) {
    this.items.set(FwCfgKey.Signature, new TextEncoder().encode('QEMU'));
    this.items.set(FwCfgKey.Id, littleEndian(FEATURE_TRADITIONAL, 4));
    this.items.set(FwCfgKey.RamSize, littleEndian(options.ramBytes, 8));
    this.items.set(FwCfgKey.CpuCount, littleEndian(options.cpus, 2));
    this.items.set(FwCfgKey.MaxCpus, littleEndian(options.maxCpus ?? options.cpus, 2));
    this.items.set(FwCfgKey.FileDir, new Uint8Array(4));
    this.select(FwCfgKey.Signature);
  }

  in(_port: number, size: AccessSize): number {
    if (size !== 1) return 0;
    const item = this.selected;
    if (!item || this.offset >= item.length) return 0;
    return item[this.offset++];
  }

  out(port: number, size: AccessSize, value: number): void {
    if (size === 2 && port === FW_CFG_PORT) this.select(value & 0xffff);
    // Byte writes are data writes, which QEMU has ignored since 2.4; other widths are invalid.
  }

  private select(key: number): void {
    this.selected = key & ARCH_LOCAL ? undefined : this.items.get(key & ENTRY_MASK);
    this.offset = 0;
  }
}
