/**
 * Loading a static ELF executable into a fresh address space and building the initial
 * process stack (argc, argv, envp, auxv) exactly as the x86-64 Linux kernel lays it out, so
 * unmodified glibc and musl start-up code finds what it expects.
 *
 * Segments are mapped eagerly with their final permissions (their bytes come from the file
 * anyway); pages shared by two segments get the union of both permissions, as an mmap of the
 * second over the first would leave them writable and executable. The stack is a lazily
 * populated 8 MiB reserve below STACK_TOP.
 */
import { randomFillSync } from 'node:crypto';
import type { Cpu } from '../cpu/cpu.js';
import { PAGE_SIZE, Prot } from '../cpu/memory.js';
import { Reg, S } from '../cpu/state.js';
import { setRflags } from '../cpu/flags.js';
import { ElfType, type ElfImage, type ElfSymbol, LoadError, Pf, Pt } from './elf.js';
import { type AddressSpace, pageDown, pageUp, STACK_RESERVE, STACK_TOP, VmaKind } from './vm.js';

/** Where static-pie executables are placed (the kernel's ELF_ET_DYN_BASE without randomisation). */
export const PIE_BASE = 0x555555554000;

export interface LoadedImage {
  entry: number;
  /** Load bias: 0 for ET_EXEC, PIE_BASE for static-pie. */
  bias: number;
  phdrAddr: number;
  phnum: number;
  /** First byte after the highest segment, page-aligned: where brk starts. */
  brkStart: number;
  symbols: ElfSymbol[];
}

/** Auxiliary vector keys (include/uapi/linux/auxvec.h). */
const enum At {
  NULL = 0, PHDR = 3, PHENT = 4, PHNUM = 5, PAGESZ = 6, BASE = 7, FLAGS = 8, ENTRY = 9, UID = 11, EUID = 12, GID = 13,
  EGID = 14, PLATFORM = 15, HWCAP = 16, CLKTCK = 17, SECURE = 23, RANDOM = 25, HWCAP2 = 26, EXECFN = 31, MINSIGSTKSZ = 51,
}

function segmentProt(flags: number): number {
  return (flags & Pf.R ? Prot.READ : 0) | (flags & Pf.W ? Prot.WRITE : 0) | (flags & Pf.X ? Prot.EXEC : 0);
}

/** Map the PT_LOAD segments of a validated image. */
export function mapImage(as: AddressSpace, file: Uint8Array, img: ElfImage, name: string): LoadedImage {
  if (img.hasInterp) throw new LoadError(`${name}: dynamic executables are not supported yet (link with -static or -static-pie)`);
  const bias = img.type === ElfType.DYN ? PIE_BASE : 0;
  const loads = img.phdrs.filter((p) => p.type === Pt.LOAD && p.memsz > 0);
  const pageProt = new Map<number, number>();
  for (const ph of loads) {
    for (let p = pageDown(bias + ph.vaddr); p < bias + ph.vaddr + ph.memsz; p += PAGE_SIZE) pageProt.set(p, (pageProt.get(p) ?? 0) | segmentProt(ph.flags));
  }
  const limitPages = as.mem.physPages - as.mem.pagesInUse;
  if (pageProt.size + 16 > limitPages) {
    const mib = (n: number) => Math.ceil((n * PAGE_SIZE) / 1048576);
    throw new LoadError(`${name}: its segments need ${mib(pageProt.size)} MiB but the guest memory limit is ${mib(as.mem.physPages)} MiB`);
  }
  // Runs of consecutive pages with equal permissions become one mapping each.
  const pages = [...pageProt.keys()].sort((a, b) => a - b);
  for (let i = 0; i < pages.length; ) {
    let j = i + 1;
    while (j < pages.length && pages[j] === pages[j - 1] + PAGE_SIZE && pageProt.get(pages[j]) === pageProt.get(pages[i])) j++;
    const prot = pageProt.get(pages[i])!;
    const len = pages[j - 1] + PAGE_SIZE - pages[i];
    as.mem.map(pages[i], len, prot & (Prot.WRITE | Prot.EXEC) ? prot | Prot.READ : prot);
    as.add(pages[i], pages[i] + len, prot, VmaKind.IMAGE);
    i = j;
  }
  for (const ph of loads) as.mem.poke(bias + ph.vaddr, file.subarray(ph.offset, ph.offset + ph.filesz));

  const phdrSeg = img.phdrs.find((p) => p.type === Pt.PHDR);
  const holder = loads.find((p) => img.phoff >= p.offset && img.phoff < p.offset + p.filesz);
  const phdrAddr = phdrSeg ? bias + phdrSeg.vaddr : holder ? bias + holder.vaddr + (img.phoff - holder.offset) : 0;
  const end = Math.max(...loads.map((p) => bias + p.vaddr + p.memsz));
  return {
    entry: bias + img.entry,
    bias,
    phdrAddr,
    phnum: img.phdrs.length,
    brkStart: pageUp(end),
    symbols: img.symbols.map((s) => ({ name: s.name, addr: s.addr + bias, size: s.size })),
  };
}

export interface StackInfo {
  hwcap: number;
  minSigStackSize: number;
  uid: number;
  gid: number;
}

/**
 * Build the initial stack and registers. Layout from the top, as fs/binfmt_elf.c makes it:
 * an 8-byte end marker, the exec filename, the argument and environment strings, the platform
 * string and AT_RANDOM bytes, then (16-byte aligned) argc, argv[], NULL, envp[], NULL, auxv.
 */
export function setupInitialStack(cpu: Cpu, as: AddressSpace, image: LoadedImage, argv: string[], envp: string[], execfn: string, info: StackInfo): void {
  as.add(STACK_TOP - STACK_RESERVE, STACK_TOP, Prot.READ | Prot.WRITE, VmaKind.STACK);
  let sp = STACK_TOP - 8;
  const pushBytes = (bytes: Uint8Array): number => {
    sp -= bytes.length;
    as.write(sp, bytes);
    return sp;
  };
  const pushString = (s: string) => pushBytes(Buffer.from(s + '\0', 'utf8'));
  const execfnAddr = pushString(execfn);
  // Pushed last-first so the strings ascend in memory: argv[0] lowest, the environment above.
  const envAddrs = [...envp].reverse().map(pushString).reverse();
  const argAddrs = [...argv].reverse().map(pushString).reverse();
  const platformAddr = pushString('x86_64');
  const random = new Uint8Array(16);
  randomFillSync(random);
  const randomAddr = pushBytes(random);
  sp = Math.floor(sp / 16) * 16;

  const auxv: [number, number][] = [
    [At.PHDR, image.phdrAddr], [At.PHENT, 56], [At.PHNUM, image.phnum], [At.PAGESZ, PAGE_SIZE], [At.BASE, 0], [At.FLAGS, 0],
    [At.ENTRY, image.entry], [At.UID, info.uid], [At.EUID, info.uid], [At.GID, info.gid], [At.EGID, info.gid], [At.SECURE, 0],
    [At.RANDOM, randomAddr], [At.HWCAP, info.hwcap], [At.HWCAP2, 0], [At.CLKTCK, 100], [At.PLATFORM, platformAddr],
    [At.EXECFN, execfnAddr], [At.MINSIGSTKSZ, info.minSigStackSize], [At.NULL, 0],
  ];
  const words = [argv.length, ...argAddrs, 0, ...envAddrs, 0, ...auxv.flat()];
  sp -= words.length * 8;
  if (sp % 16) sp -= 8;
  const block = Buffer.alloc(words.length * 8);
  words.forEach((w, i) => block.writeBigUInt64LE(BigInt(w), i * 8));
  as.write(sp, block);

  cpu.s.fill(0, 0, S.XMM + 64);
  cpu.s.fill(0, S.FPR, S.FPR + 32);
  cpu.st.rip = image.entry;
  cpu.st.setReg(Reg.RSP, sp);
  setRflags(cpu, 0x202);
  cpu.s[S.MXCSR] = 0x1f80;
  cpu.s[S.FPU_CW] = 0x37f;
}
