/**
 * Whole guest programs through the execution engine and the Linux personality together: a
 * small assembly program (no libc, so it depends on nothing but basic instructions) that
 * writes, takes a kill()-raised signal and a SIGSEGV whose handler skips the faulting
 * instruction through the saved context, and exits with a status.
 */
import { describe, expect, test } from 'vitest';
import { CpuException } from '../src/cpu/exceptions.js';
import { Exit } from '../src/ir/ops.js';
import { ProcessExit } from '../src/linux/process.js';
import { Engine } from '../src/runtime/engine.js';
import { buildC, harness } from './helpers/linux-harness.js';

const SIGNALS_S = `
.intel_syntax noprefix
.globl _start
.text
_start:
  mov eax, 13                 # rt_sigaction(SIGUSR1, &act_usr1, NULL, 8)
  mov edi, 10
  lea rsi, [rip + act_usr1]
  xor edx, edx
  mov r10d, 8
  syscall
  mov eax, 13                 # rt_sigaction(SIGSEGV, &act_segv, NULL, 8)
  mov edi, 11
  lea rsi, [rip + act_segv]
  xor edx, edx
  mov r10d, 8
  syscall
  mov eax, 39                 # getpid
  syscall
  mov edi, eax                # kill(pid, SIGUSR1): the handler runs when the syscall returns
  mov esi, 10
  mov eax, 62
  mov r12, 0x1234
  syscall
  cmp r12, 0x1234
  jne fail
  mov eax, 1
  mov edi, 1
  lea rsi, [rip + msg_back]
  mov edx, 5
  syscall
  mov rax, qword ptr [0]      # 8 bytes; the SIGSEGV handler steps over it
  mov eax, 1
  mov edi, 1
  lea rsi, [rip + msg_after]
  mov edx, 6
  syscall
  mov eax, 231
  mov edi, 42
  syscall
fail:
  mov eax, 231
  mov edi, 1
  syscall
on_usr1:
  mov eax, 1
  mov edi, 1
  lea rsi, [rip + msg_sig]
  mov edx, 4
  syscall
  ret
on_segv:
  add qword ptr [rdx + 168], 8  # uc_mcontext.rip
  mov eax, 1
  mov edi, 1
  lea rsi, [rip + msg_segv]
  mov edx, 5
  syscall
  ret
restorer:
  mov eax, 15
  syscall
.data
act_usr1: .quad on_usr1, 0x04000004, restorer, 0
act_segv: .quad on_segv, 0x04000004, restorer, 0
msg_sig: .ascii "sig\\n"
msg_back: .ascii "back\\n"
msg_segv: .ascii "segv\\n"
msg_after: .ascii "after\\n"
`;

/** Run a loaded process to its end as the CLI does; guest stdout goes to a pipe we read back. */
function run(exe: string, mode: 'interp' | 'jit') {
  const h = harness(64, true);
  const fds = h.scratch(4096);
  h.sys(293, fds, 0);
  h.sys(33, h.proc.as.readI32(fds + 4), 1); // dup2(pipe write end, 1)
  const readEnd = h.proc.as.readI32(fds);
  h.proc.load(exe, [exe], []);
  const engine = new Engine(h.cpu, { mode, maxInsns: 1_000_000, jitThreshold: mode === 'jit' ? 2 : Infinity, debug: new Set(), log: () => {} });
  let status = -1;
  for (;;) {
    try {
      const reason = engine.run();
      if (reason === Exit.SYSCALL) h.proc.syscall();
      h.proc.deliverPendingSignals();
    } catch (e) {
      try {
        if (!(e instanceof CpuException)) throw e;
        h.proc.onException(e);
        h.proc.deliverPendingSignals();
        continue;
      } catch (e2) {
        if (!(e2 instanceof ProcessExit)) throw e2;
        status = e2.status;
        break;
      }
    }
  }
  const file = h.proc.files.get(readEnd);
  const out = Buffer.from(file.pipe!.take(1 << 20)).toString();
  return { status, out, log: h.log };
}

describe('guest programs', () => {
  for (const mode of ['interp', 'jit'] as const) {
    test(`signals round trip in a real program (${mode})`, () => {
      const exe = buildC('signals', SIGNALS_S, ['-nostdlib', '-static'], 'gcc', 's');
      const { status, out, log } = run(exe, mode);
      expect(out).toBe('sig\nback\nsegv\nafter\n');
      expect(status).toBe(42);
      expect(log).toContain('--- SIGSEGV {si_signo=SIGSEGV, si_code=SEGV_MAPERR, si_addr=NULL} ---');
      expect(log.at(-1)).toBe('+++ exited with 42 +++');
    });
  }
});
