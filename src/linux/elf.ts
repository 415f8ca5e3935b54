/**
 * ELF64 parsing and validation for the user-mode loader: the file header, program headers and
 * (for symbolised profiles and logs) the function symbols of .symtab.
 *
 * Everything a loader trusts is checked here, before any guest memory is touched, and each
 * problem becomes one user-facing line (LoadError): a truncated download, a 32-bit or ARM
 * binary, or a dynamic executable should say so rather than crash the emulator. Section
 * headers are only needed for symbols, so damage there is tolerated (the kernel ignores them
 * too) and merely yields no symbols.
 */

/** A loader failure: `message` is one line for the user, printed without a stack. */
export class LoadError extends Error {}

export const enum Pt {
  LOAD = 1,
  DYNAMIC = 2,
  INTERP = 3,
  PHDR = 6,
  TLS = 7,
  GNU_STACK = 0x6474e551,
}

/** p_flags bits. */
export const enum Pf {
  X = 1,
  W = 2,
  R = 4,
}

export const enum ElfType {
  EXEC = 2,
  DYN = 3,
}

export interface ProgramHeader {
  type: number;
  flags: number;
  offset: number;
  vaddr: number;
  filesz: number;
  memsz: number;
  align: number;
}

export interface ElfSymbol {
  name: string;
  addr: number;
  size: number;
}

export interface ElfImage {
  type: ElfType;
  entry: number;
  phoff: number;
  phentsize: number;
  phdrs: ProgramHeader[];
  hasInterp: boolean;
  /** Function symbols, addresses relative to the link-time base (add the load bias). */
  symbols: ElfSymbol[];
}

const EM_X86_64 = 62;
const EHDR_SIZE = 64;
const PHDR_SIZE = 56;
const SHDR_SIZE = 64;
const SHT_SYMTAB = 2;
const STT_FUNC = 2;
const STT_GNU_IFUNC = 10;
/** The user half of the address space: nothing may be loaded at or above it. */
export const USER_TOP = 0x800000000000;
const PAGE = 4096;

/** A u64 field as a JS number; values above 2^53 (only possible in garbage) become Infinity so range checks reject them. */
function u64(dv: DataView, off: number): number {
  const hi = dv.getUint32(off + 4, true);
  return hi >= 0x200000 ? Infinity : hi * 4294967296 + dv.getUint32(off, true);
}

const isPowerOfTwo = (n: number) => Number.isFinite(n) && 2 ** Math.round(Math.log2(n)) === n;
const hex = (n: number) => `0x${n.toString(16)}`;

export function parseElf(file: Uint8Array, name: string): ElfImage {
  const fail = (why: string): never => {
    throw new LoadError(`${name}: ${why}`);
  };
  if (file.length < 4 || file[0] !== 0x7f || file[1] !== 0x45 || file[2] !== 0x4c || file[3] !== 0x46) fail('not an ELF file');
  if (file.length < EHDR_SIZE) fail('truncated ELF header');
  if (file[4] !== 2) fail(file[4] === 1 ? 'not a 64-bit ELF file (32-bit programs are not supported)' : `bad ELF class ${file[4]}`);
  if (file[5] !== 1) fail('not a little-endian ELF file');
  if (file[6] !== 1) fail(`unsupported ELF version ${file[6]}`);
  const dv = new DataView(file.buffer, file.byteOffset, file.byteLength);
  const type = dv.getUint16(16, true);
  const machine = dv.getUint16(18, true);
  if (machine !== EM_X86_64) fail(`not an x86-64 ELF file (machine ${machine})`);
  if (type !== ElfType.EXEC && type !== ElfType.DYN) fail(type === 1 ? 'a relocatable object file (.o), not an executable' : type === 4 ? 'a core dump, not an executable' : `unsupported ELF type ${type}`);
  const entry = u64(dv, 24);
  const phoff = u64(dv, 32);
  const shoff = u64(dv, 40);
  const phentsize = dv.getUint16(54, true);
  const phnum = dv.getUint16(56, true);
  if (phnum === 0) fail('no program headers');
  if (phnum === 0xffff) fail('too many program headers');
  if (phentsize !== PHDR_SIZE) fail(`bad program header size ${phentsize}`);
  if (phoff + phnum * PHDR_SIZE > file.length) fail('truncated ELF file (program headers lie outside the file)');

  const phdrs: ProgramHeader[] = [];
  let hasInterp = false;
  for (let i = 0; i < phnum; i++) {
    const o = phoff + i * PHDR_SIZE;
    const ph: ProgramHeader = {
      type: dv.getUint32(o, true),
      flags: dv.getUint32(o + 4, true),
      offset: u64(dv, o + 8),
      vaddr: u64(dv, o + 16),
      filesz: u64(dv, o + 32),
      memsz: u64(dv, o + 40),
      align: u64(dv, o + 48),
    };
    phdrs.push(ph);
    if (ph.type === Pt.INTERP) hasInterp = true;
    if (ph.type !== Pt.LOAD) continue;
    const what = `segment ${i} (vaddr ${hex(ph.vaddr)})`;
    if (ph.offset + ph.filesz > file.length) fail(`truncated ELF file (${what} extends past the end of the file)`);
    if (ph.filesz > ph.memsz) fail(`${what} has a file size larger than its memory size`);
    if (ph.align > 1 && !isPowerOfTwo(ph.align)) fail(`${what} has an alignment that is not a power of two`);
    if ((ph.vaddr - ph.offset) % PAGE !== 0) fail(`${what} has a file offset and address that disagree modulo the page size`);
    if (ph.vaddr + ph.memsz > USER_TOP) fail(`${what} lies outside the user address space`);
  }
  const loads = phdrs.filter((p) => p.type === Pt.LOAD && p.memsz > 0).sort((a, b) => a.vaddr - b.vaddr);
  if (loads.length === 0) fail('no loadable segments');
  for (let i = 1; i < loads.length; i++) {
    const prev = loads[i - 1];
    if (loads[i].vaddr < prev.vaddr + prev.memsz) fail(`segments at ${hex(prev.vaddr)} and ${hex(loads[i].vaddr)} overlap`);
  }
  if (!hasInterp && !loads.some((p) => entry >= p.vaddr && entry < p.vaddr + p.memsz)) fail(`entry point ${hex(entry)} is outside the loaded segments`);
  return { type, entry, phoff, phentsize, phdrs, hasInterp, symbols: parseSymbols(file, dv, shoff) };
}

/** Function symbols from .symtab, sorted by address; [] for stripped or damaged files. */
function parseSymbols(file: Uint8Array, dv: DataView, shoff: number): ElfSymbol[] {
  const shentsize = dv.getUint16(58, true);
  const shnum = dv.getUint16(60, true);
  if (shoff === 0 || shnum === 0 || shentsize !== SHDR_SIZE || shoff + shnum * SHDR_SIZE > file.length) return [];
  const section = (i: number) => {
    const o = shoff + i * SHDR_SIZE;
    return { type: dv.getUint32(o + 4, true), offset: u64(dv, o + 24), size: u64(dv, o + 32), link: dv.getUint32(o + 40, true), entsize: u64(dv, o + 56) };
  };
  const out: ElfSymbol[] = [];
  const decoder = new TextDecoder();
  for (let i = 0; i < shnum; i++) {
    const sh = section(i);
    if (sh.type !== SHT_SYMTAB || sh.entsize !== 24 || sh.offset + sh.size > file.length || sh.link >= shnum) continue;
    const strtab = section(sh.link);
    if (strtab.offset + strtab.size > file.length) continue;
    for (let o = sh.offset; o + 24 <= sh.offset + sh.size; o += 24) {
      const kind = file[o + 4] & 0xf;
      if (kind !== STT_FUNC && kind !== STT_GNU_IFUNC) continue;
      const value = u64(dv, o + 8);
      const nameOff = dv.getUint32(o, true);
      if (value === 0 || nameOff >= strtab.size) continue;
      const start = strtab.offset + nameOff;
      let end = start;
      while (end < strtab.offset + strtab.size && file[end] !== 0) end++;
      out.push({ name: decoder.decode(file.subarray(start, end)), addr: value, size: u64(dv, o + 16) });
    }
  }
  return out.sort((a, b) => a.addr - b.addr);
}
