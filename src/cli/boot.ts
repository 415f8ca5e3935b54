/**
 * `svmjit boot <image>`: the bare-metal PC in the style of `qemu-system-x86_64 -kernel`. Loads
 * a multiboot v1 image, connects COM1 to stdout/stdin and isa-debug-exit to the exit status,
 * runs the machine, and turns every way a run can end into a status and at most one line.
 *
 * Statuses: isa-debug-exit's (value << 1) | 1; 2 for a shutdown (triple fault, a HLT nothing
 * will wake); 124 past --max-insns; 127 for an image that cannot be loaded; 70 for an
 * internal error (with the guest RIP).
 */
import fs from 'node:fs';
import { parseArgs } from 'node:util';
import { DEFAULT_JIT_THRESHOLD, InsnLimit, type ExecMode } from '../runtime/engine.js';
import { Machine } from '../machine/machine.js';
import { loadMultiboot } from '../machine/multiboot.js';
import { attachPcDevices } from '../machine/pc.js';
import { LoadError } from '../linux/process.js';
import { makeLog, reportStats } from './run.js';

export const BOOT_USAGE = `usage: svmjit boot [options] <image>
options:
  --append TEXT         kernel command line (after the image path, as QEMU gives it)
  --initrd FILE         load FILE as the one multiboot module
  -m SIZE               RAM size (default 128M; suffixes K, M, G)
  -smp N                number of CPUs (default 1)
  --no-jit, --one-insn-per-tb, --max-insns N, --jit-threshold N, --verify-js   as for run
  -d LIST               log categories: in_asm,ir,js,exec,int,cpu,unimp,svm
  -D FILE               write logs to FILE instead of stderr
  --stats[=json]        print run statistics on exit`;

/** RAM from which the pc machine would split it around the PCI hole (multiboot.ts pcRamLayout). */
const MAX_RAM = 3.5 * 1024 * 1024 * 1024;

const DEBUG_CATEGORIES = ['in_asm', 'ir', 'js', 'exec', 'int', 'cpu', 'unimp', 'svm'];

export interface BootOptions {
  image: string;
  append?: string;
  initrd?: string;
  ramBytes: number;
  cpus: number;
  mode: ExecMode;
  maxInsns: number;
  jitThreshold: number;
  verify: boolean;
  debug: Set<string>;
  logFile?: string;
  stats: '' | 'text' | 'json';
}

/** A size like 128M, 1G, 65536K or plain bytes. */
export function parseSize(text: string): number {
  const m = /^(\d+)([KMGT]?)i?B?$/i.exec(text.trim());
  if (!m) return NaN;
  const unit = { '': 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3, T: 1024 ** 4 }[m[2].toUpperCase() as '' | 'K' | 'M' | 'G' | 'T'];
  // A bare number means MiB, as for qemu's -m.
  return Number(m[1]) * (m[2] ? unit : 1024 * 1024);
}

export function parseBootArgs(argv: string[], fail: (msg: string, status?: number) => never): BootOptions {
  // qemu spells -smp and -m with one dash; parseArgs only knows --long or -x.
  const args = argv.map((a) => (a === '-smp' ? '--smp' : a === '--stats' ? '--stats=text' : a));
  let parsed;
  try {
    parsed = parseArgs({
      args,
      allowPositionals: true,
      options: {
        append: { type: 'string' },
        initrd: { type: 'string' },
        m: { type: 'string' },
        smp: { type: 'string' },
        'no-jit': { type: 'boolean' },
        'one-insn-per-tb': { type: 'boolean' },
        'max-insns': { type: 'string' },
        'jit-threshold': { type: 'string' },
        'verify-js': { type: 'boolean' },
        d: { type: 'string', multiple: true },
        D: { type: 'string' },
        stats: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (e) {
    fail(`${(e as Error).message}\n${BOOT_USAGE}`, 2);
  }
  const { values, positionals } = parsed;
  if (values.help) {
    process.stdout.write(BOOT_USAGE + '\n');
    process.exit(0);
  }
  if (positionals.length !== 1) fail(`boot takes one image\n${BOOT_USAGE}`, 2);
  const num = (v: string | undefined, name: string, def: number): number => {
    if (v === undefined) return def;
    const n = Number(v);
    if (!Number.isInteger(n) || n < 0) fail(`${name} takes a non-negative integer, not '${v}'`, 2);
    return n;
  };
  const ramBytes = values.m === undefined ? 128 * 1024 * 1024 : parseSize(values.m);
  if (!Number.isFinite(ramBytes) || ramBytes < 2 * 1024 * 1024) fail(`-m takes a size of at least 2M (like 128M or 1G), not '${values.m}'`, 2);
  // From 3.5 GiB the PC puts RAM above the 4 GiB PCI hole, which needs guest RAM in more than
  // one buffer (a typed array stops at 4 GiB): not there yet.
  if (ramBytes >= MAX_RAM) fail(`-m ${values.m}: at most ${MAX_RAM / 1024 / 1024 - 1}M (RAM above the 4 GiB PCI hole is not supported yet)`, 2);
  const cpus = num(values.smp, '-smp', 1);
  if (cpus < 1 || cpus > 255) fail(`-smp takes 1 to 255 CPUs, not '${values.smp}'`, 2);
  const debug = new Set((values.d ?? []).flatMap((s) => s.split(',')).filter(Boolean));
  for (const d of debug) if (!DEBUG_CATEGORIES.includes(d)) fail(`unknown -d category '${d}' (known: ${DEBUG_CATEGORIES.join(',')})`, 2);
  if (values.stats !== undefined && values.stats !== 'text' && values.stats !== 'json') fail(`--stats takes text or json, not '${values.stats}'`, 2);
  const mode: ExecMode = values['no-jit'] ? 'interp' : values['one-insn-per-tb'] ? 'one-insn' : 'jit';
  return {
    image: positionals[0], append: values.append, initrd: values.initrd, ramBytes, cpus, mode,
    maxInsns: num(values['max-insns'], '--max-insns', 0), jitThreshold: num(values['jit-threshold'], '--jit-threshold', DEFAULT_JIT_THRESHOLD),
    verify: !!values['verify-js'], debug, logFile: values.D, stats: (values.stats ?? '') as BootOptions['stats'],
  };
}

export function bootImage(o: BootOptions): number {
  const log = makeLog(o.logFile);
  const say = (msg: string) => process.stderr.write(`svmjit: ${msg}\n`);
  const t0 = performance.now();
  let image: Uint8Array, initrd: Uint8Array | undefined;
  try {
    image = fs.readFileSync(o.image);
    if (o.initrd) initrd = fs.readFileSync(o.initrd);
  } catch (e) {
    say(`cannot read ${(e as NodeJS.ErrnoException).path ?? o.image}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    return 127;
  }
  let machine: Machine;
  try {
    machine = new Machine({
      ramBytes: o.ramBytes, mode: o.mode, maxInsns: o.maxInsns,
      jitThreshold: o.mode === 'interp' ? Infinity : o.mode === 'one-insn' ? 1 : o.jitThreshold,
      debug: o.debug, log, verify: o.verify, cpus: o.cpus,
    });
  } catch {
    say(`cannot allocate ${o.ramBytes} bytes of guest RAM`);
    return 127;
  }
  attachPcDevices(machine, { output: (bytes) => writeOut(bytes) });
  for (const v of machine.vcpus) v.svm.timeSwitches = !!o.stats;
  try {
    const boot = loadMultiboot(image, {
      imagePath: o.image, append: o.append, ramBytes: o.ramBytes, writePhys: (a, b) => machine.mem.writePhys(a, b),
      initrd: initrd && o.initrd ? { path: o.initrd, data: initrd } : undefined,
    });
    for (const w of boot.warnings) say(w);
    machine.enterMultiboot(boot.entry, boot.eax, boot.ebx);
  } catch (e) {
    if (e instanceof LoadError) {
      say(e.message);
      return 127;
    }
    throw e;
  }
  let status: number;
  try {
    const stop = machine.run();
    if (stop.message) say(stop.message);
    status = stop.status;
  } catch (e) {
    if (e instanceof InsnLimit) {
      say(e.message);
      status = 124;
    } else {
      say(`internal error at guest RIP 0x${machine.cpu.st.rip.toString(16)}: ${(e as Error).message}`);
      if (process.env.SVMJIT_DEBUG) process.stderr.write(String((e as Error).stack) + '\n');
      status = 70;
    }
  }
  if (o.stats) {
    const m = machine.stats;
    const vmruns = machine.vcpus.reduce((n, v) => n + v.svm.stats.vmruns, 0);
    const vmexits: Record<string, number> = {};
    let exits = 0;
    let switchMs = 0;
    for (const v of machine.vcpus) switchMs += v.svm.stats.switchMs;
    for (const v of machine.vcpus)
      for (const [code, n] of v.svm.stats.vmexits) {
        const key = code === -1 ? 'INVALID' : `0x${code.toString(16)}`;
        vmexits[key] = (vmexits[key] ?? 0) + n;
        exits += n;
      }
    reportStats(o.stats, log, o.mode, machine.engineStats(), machine.icount, performance.now() - t0, status, {
      interrupts: m.interrupts, exceptions: m.exceptions, halts: m.halts, vmruns, vmexits,
      // A world switch here is one VMRUN plus its #VMEXIT.
      worldSwitchUs: exits ? +((switchMs * 1000) / exits).toFixed(2) : 0,
    });
  }
  return status;
}

/** Serial output goes straight to stdout (synchronously, so it interleaves with stderr as the guest wrote it). */
function writeOut(bytes: Uint8Array): void {
  for (let off = 0; off < bytes.length; ) {
    try {
      off += fs.writeSync(1, bytes, off);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EAGAIN') throw e;
    }
  }
}
