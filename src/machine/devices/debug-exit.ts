/**
 * QEMU's isa-debug-exit device, the way test programs end a run and report a status.
 *
 * Configured as QEMU's `-device isa-debug-exit,iobase=0xf4,iosize=0x04`: a write of any size
 * anywhere in the four-port window ends the machine with status `(value << 1) | 1`, so a guest
 * can never produce status 0 and a run that ends some other way is told apart from a pass.
 * The value is the whole written value, not shifted by the port's offset in the window (QEMU
 * ignores the offset too). Reads return 0, as QEMU's device answers them.
 */
import type { AccessSize, PortDevice } from '../bus.js';

export const DEBUG_EXIT_PORT = 0xf4;
export const DEBUG_EXIT_PORT_COUNT = 4;

export class DebugExit implements PortDevice {
  /** `onExit` receives the full 32-bit status; the process exit status is its low byte, as with QEMU's exit(). */
  constructor(private readonly onExit: (status: number) => void) {}

  in(_port: number, _size: AccessSize): number {
    return 0;
  }

  out(_port: number, _size: AccessSize, value: number): void {
    this.onExit(((value << 1) | 1) >>> 0);
  }
}
