#!/usr/bin/env node
/**
 * The svmjit command line. `svmjit run <elf> [args…]` runs a static x86-64 Linux program;
 * `svmjit boot <image>` boots a bare-metal multiboot image on the emulated PC;
 * `svmjit demo` (what `npm start` runs) boots the bundled L1 hypervisor (demo/hypervisor.flat) with
 * its L2 guest and prints the exit statistics; `svmjit demo user` runs the user-mode demo program.
 * Flags follow qemu-user and Blink where they overlap (-d, -D, -E, -U, --strace, --one-insn-per-tb).
 * Every user-facing failure is one line on stderr and a status, never a JS stack trace.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os, { constants as osConstants } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { DEFAULT_JIT_THRESHOLD } from '../runtime/engine.js';
import { bootImage, parseBootArgs } from './boot.js';
import { runProgram, type RunOptions } from './run.js';

const USAGE = `usage: svmjit run [options] <elf> [args...]
       svmjit profile [options] <elf> [args...]   (run with --profile)
       svmjit boot [options] <image>               (bare-metal multiboot image; svmjit boot --help)
       svmjit demo [hypervisor|user]               (the bundled demos: an L1 hypervisor with its guest, or a Linux program)
options:
  --no-jit              interpret the IR only (the reference interpreter)
  --one-insn-per-tb     translate one guest instruction per block
  --max-insns N         stop after N guest instructions (non-zero exit)
  --memory MiB          guest memory limit (default 1024)
  --strace              print each system call as strace would
  -d LIST               log categories: in_asm,ir,js,exec,strace (comma-separated)
  -D FILE               write logs to FILE instead of stderr
  -E VAR=VALUE          set a variable in the guest environment
  -U VAR                remove a variable from the guest environment
  --stats[=json]        print run statistics on exit (to the log)
  --jit-threshold N     executions before a block is compiled (default ${DEFAULT_JIT_THRESHOLD})
  --verify-js           re-parse every emitted block with acorn (debug)
  --profile             sample the guest: write <prog>.svmjit.{folded,cpuprofile,svg}
  --profile-dir DIR     where profiles go (default: the current directory)
  --perfmap             write /tmp/perf-<pid>.map so Linux perf names compiled guest code`;

function fail(msg: string, status = 127): never {
  process.stderr.write(`svmjit: ${msg}\n`);
  process.exit(status);
}

export function parseRunArgs(argv: string[]): { opts: RunOptions; prog: string; args: string[] } {
  // Options end at the program path: everything after it belongs to the guest.
  const firstPositional = findProgramIndex(argv);
  // A bare --stats means text statistics; parseArgs needs the value spelled out.
  const ours = (firstPositional < 0 ? argv : argv.slice(0, firstPositional)).map((a) => (a === '--stats' ? '--stats=text' : a));
  let parsed;
  try {
    parsed = parseArgs({
    args: ours,
    allowPositionals: false,
    options: {
      'no-jit': { type: 'boolean' },
      'one-insn-per-tb': { type: 'boolean' },
      'max-insns': { type: 'string' },
      memory: { type: 'string' },
      strace: { type: 'boolean' },
      d: { type: 'string', multiple: true },
      D: { type: 'string' },
      E: { type: 'string', multiple: true },
      U: { type: 'string', multiple: true },
      stats: { type: 'string' },
      'jit-threshold': { type: 'string' },
      'verify-js': { type: 'boolean' },
      profile: { type: 'boolean' },
      'profile-dir': { type: 'string' },
      perfmap: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  } catch (e) {
    fail(`${(e as Error).message}\n${USAGE}`, 2);
  }
  const { values } = parsed;
  if (values.help) {
    process.stdout.write(USAGE + '\n');
    process.exit(0);
  }
  if (firstPositional < 0) fail('no program given\n' + USAGE, 2);
  const num = (v: string | undefined, name: string, def: number): number => {
    if (v === undefined) return def;
    const n = Number(v);
    if (!Number.isFinite(n) || n < 0) fail(`${name} takes a non-negative number, not '${v}'`, 2);
    return n;
  };
  const debug = new Set((values.d ?? []).flatMap((s) => s.split(',')).filter(Boolean));
  const known = ['in_asm', 'ir', 'js', 'exec', 'strace'];
  for (const d of debug) if (!known.includes(d)) fail(`unknown -d category '${d}' (known: ${known.join(',')})`, 2);
  const env = new Map<string, string>();
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined) env.set(k, v);
  for (const e of values.E ?? []) {
    const eq = e.indexOf('=');
    if (eq <= 0) fail(`-E takes VAR=VALUE, not '${e}'`, 2);
    env.set(e.slice(0, eq), e.slice(eq + 1));
  }
  for (const u of values.U ?? []) env.delete(u);
  if (values.stats !== undefined && values.stats !== 'text' && values.stats !== 'json') fail(`--stats takes text or json, not '${values.stats}'`, 2);
  const stats = values.stats ?? '';
  return {
    prog: argv[firstPositional],
    args: argv.slice(firstPositional + 1),
    opts: {
      mode: values['no-jit'] ? 'interp' : values['one-insn-per-tb'] ? 'one-insn' : 'jit',
      maxInsns: num(values['max-insns'], '--max-insns', 0),
      memoryMiB: num(values.memory, '--memory', 1024),
      strace: !!values.strace || debug.has('strace'),
      debug,
      logFile: values.D,
      env: [...env].map(([k, v]) => `${k}=${v}`),
      stats: stats as RunOptions['stats'],
      jitThreshold: num(values['jit-threshold'], '--jit-threshold', DEFAULT_JIT_THRESHOLD),
      verify: !!values['verify-js'],
      profileDir: values.profile || values['profile-dir'] ? values['profile-dir'] ?? '.' : '',
    },
  };
}

/** Index of the program path: the first argument that is not an option or an option's value. */
function findProgramIndex(argv: string[]): number {
  const takesValue = new Set(['--max-insns', '--memory', '-d', '-D', '-E', '-U', '--jit-threshold', '--profile-dir']);
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--') return i + 1 < argv.length ? i + 1 : -1;
    if (takesValue.has(a)) {
      i++;
      continue;
    }
    if (a.startsWith('-')) continue;
    return i;
  }
  return -1;
}

/** The folder of svmjit's package.json, above this module (dist/src/cli/main.js) or the bundle (dist/svmjit.mjs). */
function packageRoot(): string {
  const here = path.dirname(fileURLToPath(import.meta.url));
  for (let dir = here; ; dir = path.dirname(dir)) {
    if (fs.existsSync(path.join(dir, 'package.json'))) return dir;
    if (path.dirname(dir) === dir) return fail(`no package.json above ${here}`);
  }
}

/**
 * The bundled demos, both with statistics: by default the L1 hypervisor of demo/hypervisor.c
 * booted exactly as `svmjit boot --stats demo/hypervisor.flat` would boot it, so what the user
 * sees is what the documented command gives; `user` the user-mode program of demo/demo.c.
 */
async function runDemo(args: string[]): Promise<number> {
  const which = args[0] ?? 'hypervisor';
  if (args.length > 1 || (which !== 'hypervisor' && which !== 'user')) fail(`demo takes 'hypervisor' (the default) or 'user', not '${args.join(' ')}'\n${USAGE}`, 2);
  const file = path.join(packageRoot(), 'demo', which === 'user' ? 'demo.elf' : 'hypervisor.flat');
  if (!fs.existsSync(file)) fail(`demo image not found at ${file}`);
  const shown = path.relative(process.cwd(), file);
  if (which === 'user') {
    process.stdout.write(`svmjit demo: running ${shown} (a static x86-64 musl program built from demo/demo.c) through the block JIT\n\n`);
    const { opts } = parseRunArgs([file]);
    opts.stats = 'text';
    return runProgram(file, [], opts);
  }
  process.stdout.write(
    `svmjit demo: svmjit boot --stats ${shown}\n` +
      'An L1 hypervisor of our own (demo/hypervisor.c) enables AMD SVM and runs an L2 guest with VMRUN. Lines marked\n' +
      '"L2 |" are the guest\'s, printed through an I/O port the hypervisor intercepts; then come the hypervisor\'s\n' +
      '#VMEXIT counts and svmjit\'s own statistics. (`svmjit demo user` runs the user-mode demo.)\n\n',
  );
  return boot(['--stats', file]);
}

/**
 * `svmjit boot`. Imported statically: in the one-file build a dynamic import made esbuild wrap
 * every module it shares with `run` in a lazy initialiser, and start-up is the same without.
 */
async function boot(args: string[]): Promise<number> {
  return bootImage(parseBootArgs(args, fail));
}

async function main(): Promise<void> {
  const [cmd, ...rest] = process.argv.slice(2);
  if (cmd === 'run' || cmd === 'profile') {
    const { opts, prog, args } = parseRunArgs(rest);
    const programAt = findProgramIndex(rest);
    if (rest.slice(0, programAt < 0 ? rest.length : programAt).includes('--perfmap')) {
      // V8 writes /tmp/perf-<pid>.map itself under --perf-basic-prof, naming each compiled unit
      // by its function (blk_<symbol>_<offset> / rgn_…) and script (guest://…): run again under it.
      if (!process.execArgv.includes('--perf-basic-prof')) {
        // The flag also makes V8 keep an isolate log; send it to a temporary file, not the cwd.
        const v8log = path.join(os.tmpdir(), `svmjit-v8-${process.pid}.log`);
        const flags = ['--perf-basic-prof', `--logfile=${v8log}`, '--no-logfile-per-isolate'];
        const child = spawnSync(process.execPath, [...flags, ...process.execArgv, process.argv[1], cmd, ...rest], { stdio: 'inherit' });
        fs.rmSync(v8log, { force: true });
        process.exit(child.status ?? 128 + (child.signal ? osConstants.signals[child.signal] : 0));
      }
      process.on('exit', () => process.stderr.write(`svmjit: perf map /tmp/perf-${process.pid}.map\n`));
    }
    if (cmd === 'profile' && !opts.profileDir) opts.profileDir = '.';
    process.exitCode = runProgram(prog, args, opts);
    return;
  }
  if (cmd === 'boot') {
    process.exitCode = await boot(rest);
    return;
  }
  if (cmd === 'demo') {
    process.exitCode = await runDemo(rest);
    return;
  }
  if (cmd === undefined || cmd === '--help' || cmd === '-h' || cmd === 'help') {
    process.stdout.write(USAGE + '\n');
    process.exit(cmd === undefined ? 2 : 0);
  }
  fail(`unknown command '${cmd}'\n${USAGE}`, 2);
}

await main();
