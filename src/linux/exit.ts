/**
 * How a guest process ends: thrown up through the run loop, which exits the host process with
 * `status`. Kept in its own module because the syscall implementations, signal delivery and
 * the process object all throw it.
 */
export class ProcessExit {
  /** status: exit/exit_group's value & 255, or 128 + the signal that killed the process. */
  constructor(
    readonly status: number,
    readonly signal = 0,
  ) {}
}
