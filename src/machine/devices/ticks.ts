/**
 * Conversions between the machine's virtual nanoseconds and the counts of the clocks the
 * devices run from: the PIT's 1.193182 MHz crystal, the APIC bus, the TSC.
 *
 * Every timer here decides "is it due?" by comparing tick counts (`ticksAt(now) >= due`) and
 * reports its next deadline as `nsAtTicks(due)`, the first whole nanosecond at which that
 * count is reached. The two functions are exact inverses in that sense, so a machine that stops
 * a HLT at the reported deadline and calls `update()` always finds the event due, never one
 * nanosecond early (which would make it spin). Products like ns × Hz pass 2^53 after a few
 * virtual hours, so both split at whole seconds to keep every product exact at PIT and APIC
 * rates (at GHz TSC rates the remainder product can round in its last bit; callers at such
 * rates guard against a deadline that is not yet due).
 */

const NS_PER_SECOND = 1e9;

/** Whole ticks of a `hz` clock elapsed at virtual time `ns` (ticks counted from time 0). */
export function ticksAt(ns: number, hz: number): number {
  const wholeNs = Math.floor(ns);
  const seconds = Math.floor(wholeNs / NS_PER_SECOND);
  return seconds * hz + Math.floor(((wholeNs - seconds * NS_PER_SECOND) * hz) / NS_PER_SECOND);
}

/** The first whole nanosecond at which `ticks` ticks of a `hz` clock have elapsed. */
export function nsAtTicks(ticks: number, hz: number): number {
  if (ticks === Infinity) return Infinity;
  const seconds = Math.floor(ticks / hz);
  return seconds * NS_PER_SECOND + Math.ceil(((ticks - seconds * hz) * NS_PER_SECOND) / hz);
}
