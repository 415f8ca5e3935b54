/**
 * Architectural exceptions. Everything that faults — the decoder, memory, helpers, compiled
 * code — throws a CpuException with the vector and error code the manuals give; the runtime
 * that catches it decides what it means (a signal in user mode, IDT delivery in machine mode,
 * a #VMEXIT when intercepted). Throwing is fine: exceptions are rare, and a plain class with
 * no stack capture keeps the cost low.
 */

export const enum Vec {
  DE = 0,
  DB = 1,
  NMI = 2,
  BP = 3,
  OF = 4,
  BR = 5,
  UD = 6,
  NM = 7,
  DF = 8,
  TS = 10,
  NP = 11,
  SS = 12,
  GP = 13,
  PF = 14,
  MF = 16,
  AC = 17,
  MC = 18,
  XM = 19,
}

/** #PF error-code bits. */
export const enum PfErr {
  P = 1,
  W = 2,
  U = 4,
  RSVD = 8,
  I = 16,
}

export class CpuException {
  constructor(
    readonly vector: number,
    /** -1 when the vector pushes no error code. */
    readonly errorCode = -1,
    /** The faulting linear address for #PF (CR2). */
    readonly address = 0,
  ) {}

  toString(): string {
    const names: Record<number, string> = { 0: '#DE', 1: '#DB', 3: '#BP', 6: '#UD', 7: '#NM', 13: '#GP', 14: '#PF', 16: '#MF', 17: '#AC', 19: '#XM' };
    const n = names[this.vector] ?? `vector ${this.vector}`;
    return this.vector === Vec.PF ? `${n} at 0x${this.address.toString(16)} (error ${this.errorCode})` : n;
  }
}

/**
 * A memory access to a non-canonical address: #GP(0), or #SS(0) when the access goes through
 * the stack segment. Memory cannot tell which; the engine decides from the instruction
 * (Engine.run), on this rare path.
 */
export class NonCanonical extends CpuException {
  constructor(address: number) {
    super(Vec.GP, 0, address);
  }
}

/** Thrown by code that the emulator does not implement: the guest sees #UD, the log says why. */
export class Unimplemented extends CpuException {
  constructor(readonly what: string) {
    super(Vec.UD);
  }
}

/**
 * A long REP string instruction pausing part-way, its registers already updated to the point
 * reached (as when an interrupt arrives in the middle of one): the engine returns to its caller,
 * which looks at timers, interrupts and --max-insns, then executes the instruction again to
 * continue. Not an architectural event: nothing is delivered.
 */
export class RepPause extends CpuException {
  constructor() {
    super(-1);
  }
}
