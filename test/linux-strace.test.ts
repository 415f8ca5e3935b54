/**
 * --strace output: the exact text strace prints for common calls, so logs can be diffed
 * against `strace` on the host.
 */
import path from 'node:path';
import { describe, expect, test } from 'vitest';
import { quote } from '../src/linux/strace.js';
import { harness, tempDir } from './helpers/linux-harness.js';

describe('strace lines', () => {
  test('write, openat, close, errors', () => {
    const h = harness();
    const buf = h.scratch();
    h.sys(293, buf, 0); // pipe2
    const w = h.proc.as.readI32(buf + 4);
    expect(h.log.at(-1)).toBe('pipe2([3, 4], 0) = 0');
    h.proc.as.write(buf + 64, Buffer.from('hello\n'));
    h.sys(1, w, buf + 64, 6);
    expect(h.log.at(-1)).toBe('write(4, "hello\\n", 6) = 6');
    const dir = tempDir();
    const file = path.join(dir, 'x');
    h.sys(257, -100, h.str(file), 0x241, 0o644);
    expect(h.log.at(-1)).toBe(`openat(AT_FDCWD, "${file}", O_WRONLY|O_CREAT|O_TRUNC, 0644) = 5`);
    h.sys(257, -100, h.str(file), 0x80000, 0);
    expect(h.log.at(-1)).toBe(`openat(AT_FDCWD, "${file}", O_RDONLY|O_CLOEXEC) = 6`);
    h.sys(257, -100, h.str('/nonexistent'), 0, 0);
    expect(h.log.at(-1)).toBe('openat(AT_FDCWD, "/nonexistent", O_RDONLY) = -1 ENOENT (No such file or directory)');
    h.sys(3, 77);
    expect(h.log.at(-1)).toBe('close(77) = -1 EBADF (Bad file descriptor)');
    h.sys(0, h.proc.as.readI32(buf), buf + 200, 100);
    expect(h.log.at(-1)).toBe(`read(3, "hello\\n", 100) = 6`);
  });

  test('mmap, munmap, mprotect, brk, arch_prctl', () => {
    const h = harness();
    const a = h.sys(9, 0, 8192, 3, 0x22, -1, 0);
    expect(h.log.at(-1)).toBe(`mmap(NULL, 8192, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0) = 0x${a.toString(16)}`);
    expect(a.toString(16)).toMatch(/^7ff/);
    h.sys(10, a, 4096, 0);
    expect(h.log.at(-1)).toBe(`mprotect(0x${a.toString(16)}, 4096, PROT_NONE) = 0`);
    h.sys(11, a, 8192);
    expect(h.log.at(-1)).toBe(`munmap(0x${a.toString(16)}, 8192) = 0`);
    h.proc.brkStart = h.proc.brk = 0x4c1000;
    h.sys(12, 0);
    expect(h.log.at(-1)).toBe('brk(NULL) = 0x4c1000');
    h.sys(158, 0x1002, 0x4c3380);
    expect(h.log.at(-1)).toBe('arch_prctl(ARCH_SET_FS, 0x4c3380) = 0');
    h.sys(9, 0x10001, 4096, 1, 0x32, -1, 0);
    expect(h.log.at(-1)).toBe('mmap(0x10001, 4096, PROT_READ, MAP_PRIVATE|MAP_FIXED|MAP_ANONYMOUS, -1, 0) = -1 EINVAL (Invalid argument)');
  });

  test('signals and structs', () => {
    const h = harness();
    const buf = h.scratch();
    h.proc.as.writeU64(buf, 0x401000);
    h.proc.as.writeU64(buf + 8, 0x04000004);
    h.proc.as.writeU64(buf + 16, 0x402000);
    h.proc.as.writeU64(buf + 24, (1 << 9) | (1 << 14));
    h.sys(13, 2, buf, 0, 8);
    expect(h.log.at(-1)).toBe('rt_sigaction(SIGINT, {sa_handler=0x401000, sa_mask=[USR1 TERM], sa_flags=SA_SIGINFO|SA_RESTORER, sa_restorer=0x402000}, NULL, 8) = 0');
    h.sys(14, 0, buf + 24, buf + 64, 8);
    expect(h.log.at(-1)).toBe('rt_sigprocmask(SIG_BLOCK, [USR1 TERM], [], 8) = 0');
    h.sys(5, 0x7777, buf);
    expect(h.log.at(-1)).toBe(`fstat(30583, 0x${buf.toString(16)}) = -1 EBADF (Bad file descriptor)`);
    h.sys(228, 1, buf);
    expect(h.log.at(-1)).toMatch(/^clock_gettime\(CLOCK_MONOTONIC, \{tv_sec=\d+, tv_nsec=\d+\}\) = 0$/);
    h.sys(202, buf, 0x81, 1, 0);
    expect(h.log.at(-1)).toBe(`futex(0x${buf.toString(16)}, FUTEX_WAKE_PRIVATE, 1, NULL) = 0`);
  });

  test('string escaping and truncation at 32 bytes', () => {
    expect(quote(Buffer.from('plain'))).toBe('"plain"');
    expect(quote(Buffer.from('a"b\\c\t\r\n'))).toBe('"a\\"b\\\\c\\t\\r\\n"');
    expect(quote(Buffer.from([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1, 0, 0x31]))).toBe('"\\177ELF\\2\\1\\1\\0001"');
    expect(quote(Buffer.from('x'.repeat(40)))).toBe(`"${'x'.repeat(32)}"...`);
    expect(quote(Buffer.from('x'.repeat(32)))).toBe(`"${'x'.repeat(32)}"`);
    const h = harness();
    const buf = h.scratch();
    h.sys(293, buf, 0);
    h.proc.as.write(buf + 64, Buffer.from('0123456789'.repeat(5)));
    h.sys(1, 4, buf + 64, 50);
    expect(h.log.at(-1)).toBe('write(4, "01234567890123456789012345678901"..., 50) = 50');
  });
});
