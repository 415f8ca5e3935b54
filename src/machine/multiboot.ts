/**
 * The multiboot v1 loader of `svmjit boot`: puts a kernel image, its command line and the
 * initrd module into guest-physical memory and builds the multiboot information structure,
 * so a kernel built for `qemu-system-x86_64 -kernel` boots unchanged.
 *
 * It follows the Multiboot 0.6.96 specification and reproduces what QEMU's hw/i386/multiboot.c
 * and its multiboot option ROM hand the kernel: the memory map at 0x9000 and the information
 * structure at 0x9500; the module list, the strings and then the modules page-aligned after
 * the kernel; the command line as "<image path> <append>"; flags MEM, BOOTDEV, CMDLINE, MODS,
 * MMAP and LOADER_NAME. Where QEMU is silent or lax the loader refuses with one line
 * (MultibootError) rather than boot a kernel into memory that is not there or that the boot
 * information overwrites. Unlike QEMU it also loads ELF64 images (at p_paddr, like ELF32),
 * since a 64-bit kernel with a 32-bit entry stub is a common shape for test programs.
 *
 * The machine then enters the kernel at `entry` in 32-bit protected mode with paging off,
 * flat 4 GiB code and data segments, interrupts disabled, EAX = 0x2BADB002 and EBX = the
 * information structure (spec 3.2); that part belongs to the caller.
 */
import { ElfType, LoadError, Pt } from '../linux/elf.js';

/** A multiboot load failure: `message` is one line for the user. */
export class MultibootError extends LoadError {}

export const MULTIBOOT_HEADER_MAGIC = 0x1badb002;
/** What EAX holds when the kernel starts. */
export const MULTIBOOT_BOOTLOADER_MAGIC = 0x2badb002;

export interface MultibootOptions {
  /** The image's path as given on the command line: the first word of the kernel's command line. */
  imagePath: string;
  /** `--append`'s text. */
  append?: string;
  /** The one module (`--initrd`): its path becomes the module's string. */
  initrd?: { path: string; data: Uint8Array };
  /** Guest RAM size; the PC splits it around the PCI hole as pcRamLayout says. */
  ramBytes: number;
  writePhys(addr: number, bytes: Uint8Array): void;
}

export interface MultibootBoot {
  entry: number;
  eax: typeof MULTIBOOT_BOOTLOADER_MAGIC;
  /** Physical address of the multiboot information structure. */
  ebx: number;
  /** Things the user should hear about that do not stop the boot (QEMU prints them too). */
  warnings: string[];
}

/** Where the pc machine puts guest RAM: [0, belowFourGiB) and [4 GiB, 4 GiB + aboveFourGiB). */
export interface PcRamLayout {
  belowFourGiB: number;
  aboveFourGiB: number;
}

export const HIGH_RAM_BASE = 2 ** 32;

/**
 * QEMU's pc machine (i440FX) keeps the PCI hole below 4 GiB: with 3.5 GiB of RAM or more, the
 * first 3 GiB stay low and the rest moves to 4 GiB; smaller RAM lies entirely below the hole.
 */
export function pcRamLayout(ramBytes: number): PcRamLayout {
  const below = ramBytes >= 0xe0000000 ? 0xc0000000 : ramBytes;
  return { belowFourGiB: below, aboveFourGiB: ramBytes - below };
}

// Header flags (spec 3.1.2). Bits 0-15 are requirements: a loader must refuse those it does not know.
const HEADER_MODS_PAGE_ALIGNED = 1 << 0;
const HEADER_WANTS_MEMORY_INFO = 1 << 1;
const HEADER_WANTS_VIDEO_MODE = 1 << 2;
const HEADER_HAS_ADDRESS_FIELDS = 1 << 16;
const HEADER_REQUIREMENT_BITS = 0xffff;
const HEADER_KNOWN_REQUIREMENTS = HEADER_MODS_PAGE_ALIGNED | HEADER_WANTS_MEMORY_INFO | HEADER_WANTS_VIDEO_MODE;
/** The header must lie within the image's first 8 KiB. */
const HEADER_SEARCH_BYTES = 8192;
const HEADER_MIN_BYTES = 12;
const HEADER_WITH_ADDRESSES_BYTES = 32;

// Information structure (spec 3.3).
const INFO_MEMORY = 1 << 0;
const INFO_BOOT_DEVICE = 1 << 1;
const INFO_CMDLINE = 1 << 2;
const INFO_MODS = 1 << 3;
const INFO_MMAP = 1 << 6;
const INFO_LOADER_NAME = 1 << 9;
const enum InfoOffset {
  FLAGS = 0,
  MEM_LOWER = 4,
  MEM_UPPER = 8,
  BOOT_DEVICE = 12,
  CMDLINE = 16,
  MODS_COUNT = 20,
  MODS_ADDR = 24,
  MMAP_LENGTH = 44,
  MMAP_ADDR = 48,
  LOADER_NAME = 64,
}
/** QEMU's structure size: everything up to the VBE fields. */
const INFO_BYTES = 88;
const MODULE_ENTRY_BYTES = 16;
/** size (u32, not counting itself), base_addr (u64), length (u64), type (u32). */
const MMAP_ENTRY_BYTES = 24;
const MMAP_AVAILABLE = 1;
const MMAP_RESERVED = 2;
/** BIOS drive 0x80 (first hard disk), no partition: QEMU's fixed value. */
const BOOT_DEVICE_FIRST_DISK = 0x8000ffff;
const LOADER_NAME = 'svmjit';

// Where QEMU's option ROM builds the memory map and the information structure.
const MMAP_ADDR = 0x9000;
const INFO_ADDR = 0x9500;
const LOW_AREA_END = INFO_ADDR + INFO_BYTES;
/** Start of the EBDA that SeaBIOS reserves at the top of conventional memory. */
const EBDA_START = 0x9fc00;
const BIOS_ROM_START = 0xf0000;
const ONE_MIB = 0x100000;
/** INT 12h's answer under SeaBIOS (the KiB below the EBDA), which QEMU's option ROM stores as mem_lower. */
const MEM_LOWER_KIB = EBDA_START / 1024;
const PAGE = 4096;

/** Guest-physical ranges no part of the kernel may occupy, with the reason given to the user. */
const FORBIDDEN_RANGES: readonly { start: number; end: number; what: string }[] = [
  { start: 0, end: PAGE, what: 'the first page' },
  { start: MMAP_ADDR, end: LOW_AREA_END, what: `the multiboot information at ${hex(MMAP_ADDR)}` },
  { start: EBDA_START, end: ONE_MIB, what: `the EBDA, VGA and BIOS area [${hex(EBDA_START)}, ${hex(ONE_MIB)})` },
];

/** One piece of the kernel: fileSize bytes from fileOffset, then zeros up to memSize. */
interface KernelSegment {
  addr: number;
  fileOffset: number;
  fileSize: number;
  memSize: number;
}

interface KernelLayout {
  segments: KernelSegment[];
  entry: number;
}

type Fail = (why: string) => never;

export function loadMultiboot(image: Uint8Array, opts: MultibootOptions): MultibootBoot {
  const fail: Fail = (why) => {
    throw new MultibootError(`${opts.imagePath}: ${why}`);
  };
  const dv = new DataView(image.buffer, image.byteOffset, image.byteLength);
  const ram = pcRamLayout(opts.ramBytes);
  if (ram.belowFourGiB <= ONE_MIB) fail(`needs more than 1 MiB of RAM (got ${opts.ramBytes} bytes)`);

  const headerOffset = findHeader(image, dv, fail);
  const flags = dv.getUint32(headerOffset + 4, true);
  const unknown = flags & HEADER_REQUIREMENT_BITS & ~HEADER_KNOWN_REQUIREMENTS;
  if (unknown) fail(`the multiboot header requires features svmjit does not know (flags ${hex(unknown)})`);
  const warnings: string[] = [];
  // QEMU boots such kernels without setting a mode and says so; so do we.
  if (flags & HEADER_WANTS_VIDEO_MODE) warnings.push(`${opts.imagePath}: the multiboot header asks for a video mode; svmjit has no display and sets none`);

  const kernel = flags & HEADER_HAS_ADDRESS_FIELDS ? addressFieldsLayout(image, dv, headerOffset, fail) : elfLayout(image, dv, fail);
  let kernelEnd = 0;
  for (const seg of kernel.segments) {
    checkPlacement('kernel range', seg.addr, seg.addr + seg.memSize, ram, fail);
    kernelEnd = Math.max(kernelEnd, seg.addr + seg.memSize);
  }

  // After the kernel, as QEMU lays it out: module list, module string, kernel command line,
  // loader name; then the module, page-aligned.
  const encoder = new TextEncoder();
  const cString = (s: string) => encoder.encode(`${s}\0`);
  const moduleCount = opts.initrd ? 1 : 0;
  const moduleString = opts.initrd ? cString(opts.initrd.path) : new Uint8Array(0);
  // QEMU formats "%s %s" even when there is no --append: the kernel sees "<path> ".
  const cmdline = cString(`${opts.imagePath} ${opts.append ?? ''}`);
  const loaderName = cString(LOADER_NAME);
  const modsAddr = alignUp(kernelEnd, PAGE);
  const moduleStringAddr = modsAddr + moduleCount * MODULE_ENTRY_BYTES;
  const cmdlineAddr = moduleStringAddr + moduleString.length;
  const loaderNameAddr = cmdlineAddr + cmdline.length;
  const stringsEnd = loaderNameAddr + loaderName.length;
  const moduleStart = alignUp(stringsEnd, PAGE);
  const bootDataEnd = opts.initrd ? moduleStart + opts.initrd.data.length : stringsEnd;
  checkPlacement(opts.initrd ? `the initrd ${opts.initrd.path} (${opts.initrd.data.length} bytes) after the kernel at` : 'the command line after the kernel at', modsAddr, bootDataEnd, ram, fail);

  for (const seg of kernel.segments) {
    opts.writePhys(seg.addr, image.subarray(seg.fileOffset, seg.fileOffset + seg.fileSize));
    writeZeros(opts, seg.addr + seg.fileSize, seg.memSize - seg.fileSize);
  }

  const bootData = new Uint8Array(stringsEnd - modsAddr);
  const bootView = new DataView(bootData.buffer);
  if (opts.initrd) {
    bootView.setUint32(0, moduleStart, true);
    bootView.setUint32(4, bootDataEnd, true);
    bootView.setUint32(8, moduleStringAddr, true);
  }
  bootData.set(moduleString, moduleStringAddr - modsAddr);
  bootData.set(cmdline, cmdlineAddr - modsAddr);
  bootData.set(loaderName, loaderNameAddr - modsAddr);
  opts.writePhys(modsAddr, bootData);
  if (opts.initrd) opts.writePhys(moduleStart, opts.initrd.data);

  const low = new Uint8Array(LOW_AREA_END - MMAP_ADDR);
  const lowView = new DataView(low.buffer);
  const mmapLength = writeMemoryMap(lowView, ram);
  const info = INFO_ADDR - MMAP_ADDR;
  lowView.setUint32(info + InfoOffset.FLAGS, INFO_MEMORY | INFO_BOOT_DEVICE | INFO_CMDLINE | INFO_MODS | INFO_MMAP | INFO_LOADER_NAME, true);
  lowView.setUint32(info + InfoOffset.MEM_LOWER, MEM_LOWER_KIB, true);
  // The KiB from 1 MiB to the first hole: in this map, the end of low RAM.
  lowView.setUint32(info + InfoOffset.MEM_UPPER, Math.floor((ram.belowFourGiB - ONE_MIB) / 1024), true);
  lowView.setUint32(info + InfoOffset.BOOT_DEVICE, BOOT_DEVICE_FIRST_DISK, true);
  lowView.setUint32(info + InfoOffset.CMDLINE, cmdlineAddr, true);
  lowView.setUint32(info + InfoOffset.MODS_COUNT, moduleCount, true);
  lowView.setUint32(info + InfoOffset.MODS_ADDR, modsAddr, true);
  lowView.setUint32(info + InfoOffset.MMAP_LENGTH, mmapLength, true);
  lowView.setUint32(info + InfoOffset.MMAP_ADDR, MMAP_ADDR, true);
  lowView.setUint32(info + InfoOffset.LOADER_NAME, loaderNameAddr, true);
  opts.writePhys(MMAP_ADDR, low);

  return { entry: kernel.entry, eax: MULTIBOOT_BOOTLOADER_MAGIC, ebx: INFO_ADDR, warnings };
}

/** Offset of the first 4-aligned header with a valid checksum in the first 8 KiB. */
function findHeader(image: Uint8Array, dv: DataView, fail: Fail): number {
  const limit = Math.min(image.length, HEADER_SEARCH_BYTES) - HEADER_MIN_BYTES;
  let badChecksumAt = -1;
  for (let off = 0; off <= limit; off += 4) {
    if (dv.getUint32(off, true) !== MULTIBOOT_HEADER_MAGIC) continue;
    // magic + flags + checksum must be 0 modulo 2^32.
    if (((MULTIBOOT_HEADER_MAGIC + dv.getUint32(off + 4, true) + dv.getUint32(off + 8, true)) | 0) === 0) return off;
    if (badChecksumAt < 0) badChecksumAt = off;
  }
  if (badChecksumAt >= 0) fail(`the multiboot header at offset ${hex(badChecksumAt)} has a bad checksum`);
  return fail(`no multiboot header (magic ${hex(MULTIBOOT_HEADER_MAGIC)}) in the first ${HEADER_SEARCH_BYTES} bytes`);
}

/** Flag 16 (the "a.out kludge"): the header's own address fields say what to load where. */
function addressFieldsLayout(image: Uint8Array, dv: DataView, off: number, fail: Fail): KernelLayout {
  if (off + HEADER_WITH_ADDRESSES_BYTES > image.length) fail('the multiboot header is cut off before its address fields');
  const headerAddr = dv.getUint32(off + 12, true);
  const loadAddr = dv.getUint32(off + 16, true);
  const loadEndAddr = dv.getUint32(off + 20, true);
  const bssEndAddr = dv.getUint32(off + 24, true);
  const entry = dv.getUint32(off + 28, true);
  // The header sits at header_addr in memory and at `off` in the file: that fixes where load_addr's byte is in the file.
  if (headerAddr < loadAddr || headerAddr - loadAddr > off) fail(`multiboot header_addr ${hex(headerAddr)} and load_addr ${hex(loadAddr)} do not match the header's file offset ${hex(off)}`);
  const fileOffset = off - (headerAddr - loadAddr);
  // load_end_addr 0: the text and data run to the end of the file.
  const loadEnd = loadEndAddr === 0 ? loadAddr + (image.length - fileOffset) : loadEndAddr;
  if (loadEnd < loadAddr) fail(`multiboot load_end_addr ${hex(loadEnd)} is below load_addr ${hex(loadAddr)}`);
  if (fileOffset + (loadEnd - loadAddr) > image.length) fail(`truncated image: multiboot load_end_addr ${hex(loadEnd)} lies beyond the end of the file`);
  // bss_end_addr 0: no bss.
  const bssEnd = bssEndAddr === 0 ? loadEnd : bssEndAddr;
  if (bssEnd < loadEnd) fail(`multiboot bss_end_addr ${hex(bssEnd)} is below load_end_addr ${hex(loadEnd)}`);
  return { segments: [{ addr: loadAddr, fileOffset, fileSize: loadEnd - loadAddr, memSize: bssEnd - loadAddr }], entry };
}

const EM_386 = 3;
const EM_X86_64 = 62;

/**
 * An ELF32 or ELF64 x86 executable: its PT_LOAD segments go to their physical addresses
 * (p_paddr), as QEMU loads multiboot ELF kernels. user-mode's parseElf is not reused: it
 * accepts only ELF64, places segments at p_vaddr and checks user address-space limits.
 */
function elfLayout(image: Uint8Array, dv: DataView, fail: Fail): KernelLayout {
  if (image.length < 4 || image[0] !== 0x7f || image[1] !== 0x45 || image[2] !== 0x4c || image[3] !== 0x46) {
    fail('not an ELF file, and its multiboot header has no address fields (flag 16)');
  }
  const wide = image[4] === 2;
  if (!wide && image[4] !== 1) fail(`bad ELF class ${image[4]}`);
  if (image.length < (wide ? 64 : 52)) fail('truncated ELF file (header)');
  if (image[5] !== 1) fail('not a little-endian ELF file');
  const machine = dv.getUint16(18, true);
  if (machine !== (wide ? EM_X86_64 : EM_386)) fail(`not an x86 ELF file (machine ${machine} in an ELF${wide ? 64 : 32} file)`);
  if (dv.getUint16(16, true) !== ElfType.EXEC) fail(`not an executable ELF file (type ${dv.getUint16(16, true)})`);
  // An ELF64 field as a JS number: exact below 2^53, and anything larger fails the range checks anyway.
  const word = (o: number) => (wide ? dv.getUint32(o + 4, true) * 2 ** 32 + dv.getUint32(o, true) : dv.getUint32(o, true));
  const entry = word(24);
  const phoff = word(wide ? 32 : 28);
  const phentsize = dv.getUint16(wide ? 54 : 42, true);
  const phnum = dv.getUint16(wide ? 56 : 44, true);
  if (phentsize !== (wide ? 56 : 32)) fail(`bad ELF program header size ${phentsize}`);
  if (phoff + phnum * phentsize > image.length) fail('truncated ELF file (program headers lie outside the file)');
  if (entry >= 2 ** 32) fail(`entry point ${hex(entry)} is above 4 GiB, out of reach of the 32-bit entry multiboot makes`);

  const segments: KernelSegment[] = [];
  for (let i = 0; i < phnum; i++) {
    const ph = phoff + i * phentsize;
    if (dv.getUint32(ph, true) !== Pt.LOAD) continue;
    const seg: KernelSegment = wide
      ? { fileOffset: word(ph + 8), addr: word(ph + 24), fileSize: word(ph + 32), memSize: word(ph + 40) }
      : { fileOffset: word(ph + 4), addr: word(ph + 12), fileSize: word(ph + 16), memSize: word(ph + 20) };
    if (seg.memSize === 0) continue;
    if (seg.fileOffset + seg.fileSize > image.length) fail(`truncated ELF file (segment ${i} at ${hex(seg.addr)} extends past the end of the file)`);
    if (seg.fileSize > seg.memSize) fail(`ELF segment ${i} at ${hex(seg.addr)} has a file size larger than its memory size`);
    segments.push(seg);
  }
  if (segments.length === 0) fail('no loadable ELF segments');
  return { segments, entry };
}

/** What the loader places (`what` names it) must lie in low RAM, clear of the first page, the boot information and the BIOS areas. */
function checkPlacement(what: string, start: number, end: number, ram: PcRamLayout, fail: Fail): void {
  const range = `${what} [${hex(start)}, ${hex(end)})`;
  if (end > ram.belowFourGiB) fail(`${range} lies outside RAM (RAM below 4 GiB ends at ${hex(ram.belowFourGiB)})`);
  for (const f of FORBIDDEN_RANGES) if (start < f.end && end > f.start) fail(`${range} overlaps ${f.what}`);
}

/** The memory map of a pc machine under SeaBIOS, as its E820 table reports it; returns its length in bytes. */
function writeMemoryMap(view: DataView, ram: PcRamLayout): number {
  const regions: [base: number, length: number, type: number][] = [
    [0, EBDA_START, MMAP_AVAILABLE],
    [EBDA_START, 0xa0000 - EBDA_START, MMAP_RESERVED],
    [BIOS_ROM_START, ONE_MIB - BIOS_ROM_START, MMAP_RESERVED],
    [ONE_MIB, ram.belowFourGiB - ONE_MIB, MMAP_AVAILABLE],
  ];
  if (ram.aboveFourGiB > 0) regions.push([HIGH_RAM_BASE, ram.aboveFourGiB, MMAP_AVAILABLE]);
  regions.forEach(([base, length, type], i) => {
    const o = i * MMAP_ENTRY_BYTES;
    view.setUint32(o, MMAP_ENTRY_BYTES - 4, true);
    setU64(view, o + 4, base);
    setU64(view, o + 12, length);
    view.setUint32(o + 20, type, true);
  });
  return regions.length * MMAP_ENTRY_BYTES;
}

function setU64(view: DataView, offset: number, value: number): void {
  view.setUint32(offset, value % 2 ** 32, true);
  view.setUint32(offset + 4, Math.floor(value / 2 ** 32), true);
}

/** Zero guest memory in bounded chunks, so a large bss does not need an equally large buffer. */
function writeZeros(opts: MultibootOptions, addr: number, length: number): void {
  if (length <= 0) return;
  const zeros = new Uint8Array(Math.min(length, ONE_MIB));
  for (let done = 0; done < length; done += zeros.length) opts.writePhys(addr + done, zeros.subarray(0, Math.min(zeros.length, length - done)));
}

function alignUp(n: number, to: number): number {
  return Math.ceil(n / to) * to;
}

function hex(n: number): string {
  return `0x${n.toString(16)}`;
}
