/**
 * The guest profiler (`svmjit profile`, `--profile`): samples where the *guest* spends its
 * time, by guest address and guest call stack, in the guest's own symbol names.
 *
 * Sampling: a worker thread raises a flag in shared memory every `intervalMs`; the dispatcher
 * checks the flag between units and charges the unit that just ran (compiled loops return to
 * the dispatcher every few hundred internal jumps while profiling). Call stacks come from
 * CALL/RET tracking: code translated for profiling reports each call (with the call site and
 * the stack pointer after the push) and each return, and the profiler keeps a shadow stack.
 * Frames whose stack pointer lies below the current one were unwound without a RET (longjmp,
 * signal handlers) and are dropped.
 */
import { Worker } from 'node:worker_threads';

const MAX_DEPTH = 2048;

export class GuestProfiler {
  readonly tick = new Int32Array(new SharedArrayBuffer(4));
  private readonly sites = new Float64Array(MAX_DEPTH);
  private readonly rsps = new Float64Array(MAX_DEPTH);
  private depth = 0;
  private worker: Worker | null = null;
  /** Samples in time order: each is the call-site addresses outermost first, then the leaf address. */
  readonly samples: number[][] = [];
  readonly times: number[] = [];

  constructor(readonly intervalMs = 1) {}

  start(): void {
    this.worker = new Worker(
      `const { workerData } = require('node:worker_threads');
       const flag = new Int32Array(workerData.sab);
       setInterval(() => Atomics.store(flag, 0, 1), workerData.ms);`,
      { eval: true, workerData: { sab: this.tick.buffer, ms: this.intervalMs } },
    );
    this.worker.unref();
  }

  stop(): void {
    void this.worker?.terminate();
    this.worker = null;
  }

  /** From compiled code and the interpreter: kind 0 = call (site, RSP after the push), 1 = return (RSP after it). */
  track(kind: number, site: number, rsp: number): void {
    if (kind === 0) {
      this.unwindTo(rsp);
      if (this.depth < MAX_DEPTH) {
        this.sites[this.depth] = site;
        this.rsps[this.depth] = rsp;
        this.depth++;
      }
    } else this.unwindTo(rsp);
  }

  /** Drop frames that no longer exist at stack pointer rsp. */
  private unwindTo(rsp: number): void {
    while (this.depth > 0 && this.rsps[this.depth - 1] < rsp) this.depth--;
  }

  /** Record one sample: the guest was running at `rip` with stack pointer `rsp`. */
  sample(rip: number, rsp: number): void {
    this.unwindTo(rsp);
    const stack = Array.from(this.sites.subarray(0, this.depth));
    stack.push(rip);
    this.samples.push(stack);
    this.times.push(performance.now());
  }
}
