/**
 * Ports a firmware-less PC guest writes for their side effect on real hardware only, which
 * QEMU's pc machine claims and ignores: 0x80, the POST-code port that firmware and Linux's
 * io_delay write to pause for one ISA bus cycle. Claiming it keeps those writes out of the
 * `-d unimp` log. QEMU's handler answers reads with all ones, as an unclaimed port would.
 *
 * Only ports QEMU itself treats as no-ops belong here: ports QEMU gives behaviour (0x92 fast
 * A20/reset, 0xF0 FPU error clear, 0xCF9 reset control, the CMOS at 0x70) are devices, and
 * until we have them an unclaimed access is the honest answer.
 */
import type { AccessSize, PortDevice } from '../bus.js';

export const POST_CODE_PORT = 0x80;

export class IgnoredPort implements PortDevice {
  in(_port: number, size: AccessSize): number {
    return size === 4 ? -1 : (1 << (size * 8)) - 1;
  }

  out(_port: number, _size: AccessSize, _value: number): void {}
}
