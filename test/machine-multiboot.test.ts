/**
 * The multiboot v1 loader against small images built here (ELF32, ELF64 and the a.out-kludge
 * form): where segments land, bss zeroing, the entry point, the information structure QEMU
 * hands a kernel (flags, mem_lower/upper, command line, module, memory map for small and
 * large RAM) and the one-line refusals of bad images.
 */
import { describe, expect, test } from 'vitest';
import { LoadError } from '../src/linux/elf.js';
import { loadMultiboot, MULTIBOOT_BOOTLOADER_MAGIC, MultibootError, type MultibootOptions, pcRamLayout } from '../src/machine/multiboot.js';

const MiB = 2 ** 20;
const GiB = 2 ** 30;
const INFO = 0x9500;

/** Guest-physical memory that only stores what is written (a 5 GiB guest costs nothing). */
class SparseRam {
  private readonly pages = new Map<number, Uint8Array>();
  readonly writes: [addr: number, length: number][] = [];

  write(addr: number, bytes: Uint8Array, record = true): void {
    if (record) this.writes.push([addr, bytes.length]);
    for (let i = 0; i < bytes.length; i++) this.page(addr + i)[(addr + i) % 4096] = bytes[i];
  }

  bytes(addr: number, length: number): Uint8Array {
    const out = new Uint8Array(length);
    for (let i = 0; i < length; i++) out[i] = this.page(addr + i)[(addr + i) % 4096];
    return out;
  }

  u32(addr: number): number {
    return new DataView(this.bytes(addr, 4).buffer).getUint32(0, true);
  }

  u64(addr: number): number {
    return this.u32(addr) + this.u32(addr + 4) * 2 ** 32;
  }

  cString(addr: number): string {
    let end = addr;
    while (this.bytes(end, 1)[0] !== 0) end++;
    return new TextDecoder().decode(this.bytes(addr, end - addr));
  }

  private page(addr: number): Uint8Array {
    const n = Math.floor(addr / 4096);
    let p = this.pages.get(n);
    if (!p) this.pages.set(n, (p = new Uint8Array(4096)));
    return p;
  }
}

// ---- image builders ----

const MAGIC = 0x1badb002;

/** A multiboot header; with `addresses` (header, load, load_end, bss_end, entry) it is the 32-byte form. */
function mbHeader(flags: number, addresses?: number[], checksumDelta = 0): Uint8Array {
  const h = new Uint8Array(addresses ? 32 : 12);
  const dv = new DataView(h.buffer);
  dv.setUint32(0, MAGIC, true);
  dv.setUint32(4, flags, true);
  dv.setUint32(8, (-(MAGIC + flags) + checksumDelta) >>> 0, true);
  addresses?.forEach((a, i) => dv.setUint32(12 + 4 * i, a, true));
  return h;
}

interface Seg {
  paddr: number;
  vaddr?: number;
  data: Uint8Array;
  memsz?: number;
}

/**
 * An x86 ELF executable: header, program headers, the multiboot header (4-aligned), then
 * each segment's bytes. ELF64 when `wide`.
 */
function elf(wide: boolean, segs: Seg[], entry: number, header = mbHeader(3)): Uint8Array {
  const ehsize = wide ? 64 : 52;
  const phentsize = wide ? 56 : 32;
  const headerAt = ehsize + segs.length * phentsize;
  let offset = headerAt + header.length;
  const offsets = segs.map((s) => {
    const o = offset;
    offset += s.data.length;
    return o;
  });
  const file = new Uint8Array(offset);
  const dv = new DataView(file.buffer);
  file.set([0x7f, 0x45, 0x4c, 0x46, wide ? 2 : 1, 1, 1]);
  dv.setUint16(16, 2, true); // ET_EXEC
  dv.setUint16(18, wide ? 62 : 3, true);
  dv.setUint32(20, 1, true);
  const word = (o: number, v: number) => {
    if (wide) dv.setBigUint64(o, BigInt(v), true);
    else dv.setUint32(o, v, true);
  };
  word(24, entry);
  word(wide ? 32 : 28, ehsize);
  dv.setUint16(wide ? 52 : 40, ehsize, true);
  dv.setUint16(wide ? 54 : 42, phentsize, true);
  dv.setUint16(wide ? 56 : 44, segs.length, true);
  segs.forEach((s, i) => {
    const ph = ehsize + i * phentsize;
    const fields = wide ? [8, 16, 24, 32, 40] : [4, 8, 12, 16, 20]; // offset vaddr paddr filesz memsz
    dv.setUint32(ph, 1, true); // PT_LOAD
    [offsets[i], s.vaddr ?? s.paddr, s.paddr, s.data.length, s.memsz ?? s.data.length].forEach((v, k) => word(ph + fields[k], v));
    file.set(s.data, offsets[i]);
  });
  file.set(header, headerAt);
  return file;
}

/** An a.out-kludge image: `pad` bytes, the 32-byte header, then `body`; header_addr follows from load_addr. */
function aout(loadAddr: number, pad: number, body: Uint8Array, fields: { loadEnd?: number; bssEnd?: number; entry: number; flags?: number }): Uint8Array {
  const headerAddr = loadAddr + pad;
  const header = mbHeader(fields.flags ?? 0x10003, [headerAddr, loadAddr, fields.loadEnd ?? 0, fields.bssEnd ?? 0, fields.entry]);
  const file = new Uint8Array(pad + header.length + body.length);
  file.fill(0x90, 0, pad);
  file.set(header, pad);
  file.set(body, pad + header.length);
  return file;
}

const bytes = (n: number, seed: number) => Uint8Array.from({ length: n }, (_, i) => (i * 7 + seed) & 0xff);

function boot(image: Uint8Array, opts: Partial<MultibootOptions> = {}, ram = new SparseRam()) {
  const result = loadMultiboot(image, { imagePath: '/images/kernel.elf', ramBytes: 128 * MiB, writePhys: (a, b) => ram.write(a, b), ...opts });
  return { result, ram };
}

function loadError(image: Uint8Array, opts: Partial<MultibootOptions> = {}): string {
  try {
    boot(image, opts);
  } catch (e) {
    expect(e).toBeInstanceOf(MultibootError);
    expect(e).toBeInstanceOf(LoadError); // the CLI prints LoadErrors as one line
    return (e as Error).message;
  }
  throw new Error('expected a MultibootError');
}

interface MmapEntry {
  base: number;
  length: number;
  type: number;
}

function memoryMap(ram: SparseRam): MmapEntry[] {
  const addr = ram.u32(INFO + 48);
  const end = addr + ram.u32(INFO + 44);
  const entries: MmapEntry[] = [];
  for (let p = addr; p < end; p += 4 + ram.u32(p)) entries.push({ base: ram.u64(p + 4), length: ram.u64(p + 12), type: ram.u32(p + 20) });
  return entries;
}

// ---- tests ----

describe('kernel images', () => {
  test('ELF32: segments at p_paddr, bss zeroed, entry from e_entry', () => {
    const text = bytes(0x1234, 1);
    const data = bytes(0x100, 2);
    const image = elf(false, [
      { paddr: 0x100000, vaddr: 0xc0100000, data: text },
      { paddr: 0x103000, data, memsz: 0x1f80 },
    ], 0x10000c);
    const ram = new SparseRam();
    ram.write(0x103000, new Uint8Array(0x3000).fill(0xaa), false); // stale bytes where the bss goes
    const { result } = boot(image, {}, ram);
    expect(result).toEqual({ entry: 0x10000c, eax: 0x2badb002, ebx: INFO, warnings: [] });
    expect(result.eax).toBe(MULTIBOOT_BOOTLOADER_MAGIC);
    expect(ram.bytes(0x100000, text.length)).toEqual(text);
    expect(ram.bytes(0x103000, data.length)).toEqual(data);
    expect(ram.bytes(0x103100, 0x1e80).every((b) => b === 0)).toBe(true);
    expect(ram.bytes(0x104f80, 0x80).every((b) => b === 0xaa)).toBe(true); // nothing past p_memsz
    expect(ram.bytes(0xc0100000, 4)).toEqual(new Uint8Array(4)); // not at p_vaddr
  });

  test('ELF64: loaded at p_paddr, a 32-bit entry', () => {
    const text = bytes(0x800, 3);
    const image = elf(true, [{ paddr: 0x200000, vaddr: 0xffffffff80200000, data: text, memsz: 0x1800 }], 0x200010);
    const { result, ram } = boot(image);
    expect(result.entry).toBe(0x200010);
    expect(ram.bytes(0x200000, text.length)).toEqual(text);
    expect(ram.bytes(0x200800, 0x1000).every((b) => b === 0)).toBe(true);
  });

  test('a.out kludge: the header fixes the file offset of load_addr; bss up to bss_end_addr is zeroed', () => {
    const body = bytes(0x3000, 4);
    // The header is 0x40 bytes into the file and into the loaded image.
    const image = aout(0x100000, 0x40, body, { loadEnd: 0x100000 + 0x40 + 32 + 0x2000, bssEnd: 0x103f00, entry: 0x100060 });
    const ram = new SparseRam();
    ram.write(0x100000, new Uint8Array(0x5000).fill(0xaa), false);
    const { result } = boot(image, {}, ram);
    expect(result.entry).toBe(0x100060);
    expect(ram.bytes(0x100000, 0x2060)).toEqual(image.subarray(0, 0x2060));
    expect(ram.bytes(0x102060, 0x3f00 - 0x2060).every((b) => b === 0)).toBe(true);
    expect(ram.bytes(0x103f00, 0x100).every((b) => b === 0xaa)).toBe(true);
  });

  test('a.out kludge: load_end_addr 0 loads to the end of the file, bss_end_addr 0 means no bss', () => {
    const body = bytes(0x500, 5);
    // The header sits 0x20 bytes into the file but load_addr's byte is file offset 0x10.
    const file = aout(0x100000, 0x20, body, { entry: 0x100000 });
    const view = new DataView(file.buffer);
    view.setUint32(0x20 + 12, 0x100010, true); // header_addr
    view.setUint32(0x20 + 8, (-(MAGIC + 0x10003)) >>> 0, true);
    const { ram } = boot(file);
    expect(ram.bytes(0x100000, file.length - 0x10)).toEqual(file.subarray(0x10));
    const written = ram.writes.filter(([a]) => a >= 0x100000 && a < 0x101000);
    expect(written).toEqual([[0x100000, file.length - 0x10]]);
  });

  test('flag 16 wins over the ELF headers of an ELF file', () => {
    const elfFile = elf(false, [{ paddr: 0x300000, data: bytes(0x100, 6) }], 0x300000, mbHeader(0x10000, [0x200000 + 52 + 32, 0x200000, 0, 0, 0x200004]));
    const { result, ram } = boot(elfFile);
    expect(result.entry).toBe(0x200004);
    expect(ram.bytes(0x200000, elfFile.length)).toEqual(elfFile);
    expect(ram.bytes(0x300000, 4)).toEqual(new Uint8Array(4));
  });

  test('a video-mode request boots with a warning, as under QEMU', () => {
    const { result } = boot(elf(false, [{ paddr: 0x100000, data: bytes(16, 7) }], 0x100000, mbHeader(7)));
    expect(result.warnings).toEqual(['/images/kernel.elf: the multiboot header asks for a video mode; svmjit has no display and sets none']);
  });

  test('the search skips headers with a bad checksum and reaches the last 12 bytes of the first 8 KiB', () => {
    const image = elf(false, [{ paddr: 0x100000, data: bytes(0x2100, 12) }], 0x100004, mbHeader(3, undefined, 1));
    image.set(mbHeader(3), 8180);
    expect(boot(image).result.entry).toBe(0x100004);
    image.fill(0, 8180, 8192);
    image.set(mbHeader(3), 8184);
    expect(loadError(image)).toBe('/images/kernel.elf: the multiboot header at offset 0x54 has a bad checksum');
  });

  test('the header may sit anywhere 4-aligned in the first 8 KiB', () => {
    const body = new Uint8Array(8192 + 0x100);
    body.set(mbHeader(0x10000, [0x100000 + 8160, 0x100000, 0, 0, 0x100000]), 8160);
    expect(boot(body).result.entry).toBe(0x100000);
  });
});

describe('the multiboot information', () => {
  const kernel = () => elf(false, [{ paddr: 0x100000, data: bytes(0x1800, 8), memsz: 0x2100 }], 0x100000);

  test('flags, memory sizes, boot device, loader name, no modules', () => {
    const { ram } = boot(kernel());
    expect(ram.u32(INFO)).toBe(0x24f); // MEM | BOOTDEV | CMDLINE | MODS | MMAP | LOADER_NAME
    expect(ram.u32(INFO + 4)).toBe(639);
    expect(ram.u32(INFO + 8)).toBe(127 * 1024);
    expect(ram.u32(INFO + 12)).toBe(0x8000ffff);
    expect(ram.u32(INFO + 20)).toBe(0);
    // The module list starts at the first page after the kernel's bss, as in QEMU.
    expect(ram.u32(INFO + 24)).toBe(0x103000);
    expect(ram.cString(ram.u32(INFO + 64))).toBe('svmjit');
  });

  test('command line: the image path, a space and the --append text (QEMU keeps the space without --append)', () => {
    const cmdline = (append?: string) => {
      const { ram } = boot(kernel(), { append });
      return ram.cString(ram.u32(INFO + 16));
    };
    expect(cmdline('console=ttyS0 quiet')).toBe('/images/kernel.elf console=ttyS0 quiet');
    expect(cmdline()).toBe('/images/kernel.elf ');
  });

  test('the initrd is the one module, page-aligned after the strings that follow the kernel', () => {
    const data = bytes(5000, 9);
    const { ram } = boot(kernel(), { initrd: { path: '/images/initrd.img', data } });
    expect(ram.u32(INFO + 20)).toBe(1);
    const mods = ram.u32(INFO + 24);
    expect(mods).toBe(0x103000);
    const start = ram.u32(mods);
    const end = ram.u32(mods + 4);
    expect(start).toBe(0x104000);
    expect(end - start).toBe(5000);
    expect(ram.bytes(start, 5000)).toEqual(data);
    expect(ram.cString(ram.u32(mods + 8))).toBe('/images/initrd.img');
    // Strings lie between the module list and the module, clear of the kernel.
    for (const s of [ram.u32(mods + 8), ram.u32(INFO + 16), ram.u32(INFO + 64)]) {
      expect(s).toBeGreaterThanOrEqual(mods + 16);
      expect(s).toBeLessThan(start);
    }
  });

  test('memory map with 128 MiB', () => {
    const { ram } = boot(kernel());
    expect(ram.u32(INFO + 48)).toBe(0x9000);
    expect(memoryMap(ram)).toEqual([
      { base: 0, length: 0x9fc00, type: 1 },
      { base: 0x9fc00, length: 0x400, type: 2 },
      { base: 0xf0000, length: 0x10000, type: 2 },
      { base: 0x100000, length: 127 * MiB, type: 1 },
    ]);
  });

  test('memory map with 5 GiB: 3 GiB below the PCI hole, the rest from 4 GiB', () => {
    const { ram } = boot(kernel(), { ramBytes: 5 * GiB });
    expect(memoryMap(ram).slice(3)).toEqual([
      { base: 0x100000, length: 3 * GiB - MiB, type: 1 },
      { base: 4 * GiB, length: 2 * GiB, type: 1 },
    ]);
    expect(ram.u32(INFO + 8)).toBe((3 * GiB - MiB) / 1024);
  });

  test('the pc split starts at 3.5 GiB of RAM', () => {
    expect(pcRamLayout(128 * MiB)).toEqual({ belowFourGiB: 128 * MiB, aboveFourGiB: 0 });
    expect(pcRamLayout(3.5 * GiB - MiB)).toEqual({ belowFourGiB: 3.5 * GiB - MiB, aboveFourGiB: 0 });
    expect(pcRamLayout(3.5 * GiB)).toEqual({ belowFourGiB: 3 * GiB, aboveFourGiB: 0.5 * GiB });
  });
});

describe('refusals', () => {
  const seg = (paddr: number, n = 0x100) => ({ paddr, data: bytes(n, 10) });
  const P = '/images/kernel.elf: ';

  test('no header, or one beyond the first 8 KiB', () => {
    expect(loadError(new Uint8Array(100))).toBe(`${P}no multiboot header (magic 0x1badb002) in the first 8192 bytes`);
    const late = new Uint8Array(8192 + 64);
    late.set(mbHeader(0x10000, [0x100000 + 8184, 0x100000, 0, 0, 0x100000]), 8184); // ends past 8 KiB
    expect(loadError(late)).toMatch(/no multiboot header/);
  });

  test('bad checksum', () => {
    const image = elf(false, [seg(0x100000)], 0x100000, mbHeader(3, undefined, 1));
    expect(loadError(image)).toBe(`${P}the multiboot header at offset 0x54 has a bad checksum`);
  });

  test('unknown required flags', () => {
    expect(loadError(elf(false, [seg(0x100000)], 0x100000, mbHeader(0x3 | 0x20)))).toBe(`${P}the multiboot header requires features svmjit does not know (flags 0x20)`);
  });

  test('truncated ELF files', () => {
    const image = elf(false, [seg(0x100000, 0x400)], 0x100000);
    expect(loadError(image.subarray(0, image.length - 1))).toBe(`${P}truncated ELF file (segment 0 at 0x100000 extends past the end of the file)`);
    const phdrsCut = elf(false, [seg(0x100000)], 0x100000);
    new DataView(phdrsCut.buffer).setUint16(44, 100, true); // phnum
    expect(loadError(phdrsCut)).toBe(`${P}truncated ELF file (program headers lie outside the file)`);
    // A header too short for ELF64, found by its multiboot header.
    const short = new Uint8Array(60);
    short.set([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1]);
    short.set(mbHeader(3), 44);
    expect(loadError(short)).toBe(`${P}truncated ELF file (header)`);
  });

  test('not ELF and no address fields; wrong machine', () => {
    const raw = new Uint8Array(64);
    raw.set(mbHeader(3), 16);
    expect(loadError(raw)).toBe(`${P}not an ELF file, and its multiboot header has no address fields (flag 16)`);
    const arm = elf(false, [seg(0x100000)], 0x100000);
    new DataView(arm.buffer).setUint16(18, 40, true);
    expect(loadError(arm)).toBe(`${P}not an x86 ELF file (machine 40 in an ELF32 file)`);
  });

  test('segments outside RAM, over the first page, the boot information or the BIOS area', () => {
    expect(loadError(elf(false, [seg(128 * MiB - 0x80)], 0))).toBe(`${P}kernel range [0x7ffff80, 0x8000080) lies outside RAM (RAM below 4 GiB ends at 0x8000000)`);
    // With 5 GiB, RAM below 4 GiB ends at 3 GiB: the PCI hole is not RAM.
    expect(loadError(elf(false, [seg(0xd0000000)], 0), { ramBytes: 5 * GiB })).toMatch(/lies outside RAM \(RAM below 4 GiB ends at 0xc0000000\)$/);
    expect(loadError(elf(false, [seg(0x800)], 0))).toBe(`${P}kernel range [0x800, 0x900) overlaps the first page`);
    expect(loadError(elf(false, [seg(0x8f80)], 0))).toBe(`${P}kernel range [0x8f80, 0x9080) overlaps the multiboot information at 0x9000`);
    expect(loadError(elf(false, [seg(0xb8000)], 0))).toBe(`${P}kernel range [0xb8000, 0xb8100) overlaps the EBDA, VGA and BIOS area [0x9fc00, 0x100000)`);
  });

  test('boot data that would not fit after the kernel', () => {
    expect(loadError(elf(false, [seg(0x100000)], 0x100000), { initrd: { path: 'big.img', data: new Uint8Array(127 * MiB) } })).toBe(
      `${P}the initrd big.img (133169152 bytes) after the kernel at [0x101000, 0x8002000) lies outside RAM (RAM below 4 GiB ends at 0x8000000)`,
    );
    // A kernel just below the information area would put its command line on top of it.
    expect(loadError(elf(false, [seg(0x2000, 0x6fe0)], 0x2000))).toBe(`${P}the command line after the kernel at [0x9000, 0x901b) overlaps the multiboot information at 0x9000`);
  });

  test('ELF64 entry above 4 GiB', () => {
    expect(loadError(elf(true, [seg(0x100000)], 0xffffffff80100000))).toBe(`${P}entry point 0xffffffff80100000 is above 4 GiB, out of reach of the 32-bit entry multiboot makes`);
  });

  test('inconsistent a.out-kludge address fields', () => {
    const body = bytes(0x100, 11);
    const withFields = (f: number[]) => {
      const file = aout(0x100000, 0x40, body, { entry: 0x100000 });
      file.set(mbHeader(0x10003, f), 0x40);
      return file;
    };
    expect(loadError(withFields([0x100040, 0x100080, 0, 0, 0]))).toBe(`${P}multiboot header_addr 0x100040 and load_addr 0x100080 do not match the header's file offset 0x40`);
    expect(loadError(withFields([0x100040, 0x100000, 0xff000, 0, 0]))).toBe(`${P}multiboot load_end_addr 0xff000 is below load_addr 0x100000`);
    expect(loadError(withFields([0x100040, 0x100000, 0x101000, 0, 0]))).toBe(`${P}truncated image: multiboot load_end_addr 0x101000 lies beyond the end of the file`);
    expect(loadError(withFields([0x100040, 0x100000, 0x100100, 0x100080, 0]))).toBe(`${P}multiboot bss_end_addr 0x100080 is below load_end_addr 0x100100`);
    const cut = aout(0x100000, 0, new Uint8Array(0), { entry: 0 }).subarray(0, 20);
    expect(loadError(cut)).toBe(`${P}the multiboot header is cut off before its address fields`);
  });

  test('too little RAM', () => {
    expect(loadError(elf(false, [seg(0x100000)], 0), { ramBytes: MiB })).toBe(`${P}needs more than 1 MiB of RAM (got 1048576 bytes)`);
  });
});
