/**
 * Opcode table rows: system instructions (syntax: ../table.ts): far transfers and interrupts,
 * segment and descriptor-table loads, control and debug registers, MSRs and counters, I/O
 * ports, cache and TLB control, fast system calls and AMD SVM.
 *
 * The `end` attribute marks what compiled code must not run past: anything that changes
 * control flow, CS or the mode, paging or the TLB, the interrupt flag, or state the compiled
 * code was specialised for (CR0/CR3/CR4, debug registers, EFER through WRMSR). Rows without it
 * only read such state or touch memory and ports.
 *
 * Mnemonics name the operation for lifting dispatch, so a far CALL is `callf` (near `call` is
 * another lowering) and MOV to or from a control or debug register is `movcr` / `movdr`; the
 * disassembler prints the manuals' names.
 */

/**
 * Forms whose r/m is a 16-bit selector or word: 16 bits in memory, while a register operand
 * takes the operand size (SLDT, STR and SMSW zero-extend into it; LAR and LSL read its low 16
 * bits). `before` is the operand list ahead of r/m.
 */
function wordOrRegister(opcode: string, mnem: string, before = '', attrs = ''): string[] {
  return [`${opcode} !m | ${mnem} | ${before}Mw | ${attrs}`, `${opcode} !r | ${mnem} | ${before}Rv | ${attrs}`];
}

/**
 * 0F 01 forms named by their whole ModRM byte (register encodings of the group). The `np` ones
 * are other instructions, or reserved, with a 66/F2/F3 prefix (F3 0F 01 CA is ERETU, F3 0F 01
 * D9 VMGEXIT); the other SVM ones, SWAPGS and RDTSCP ignore those prefixes.
 */
const GROUP7_EXACT: [number, string, string][] = [
  [0xc8, 'monitor', 'np'], [0xc9, 'mwait', 'np,end'], [0xca, 'clac', 'np'], [0xcb, 'stac', 'np'],
  [0xd0, 'xgetbv', 'np'], [0xd1, 'xsetbv', 'np,end'],
  // SVM (AMD APM vol. 2 ch. 15): world switches and GIF changes
  [0xd8, 'vmrun', 'end'], [0xd9, 'vmmcall', 'np,end'], [0xda, 'vmload', 'end'], [0xdb, 'vmsave', 'end'],
  [0xdc, 'stgi', 'end'], [0xdd, 'clgi', 'end'], [0xde, 'skinit', 'end'], [0xdf, 'invlpga', 'end'],
  [0xf8, 'swapgs', 'only64,end'], [0xf9, 'rdtscp', ''], [0xfd, 'rdpru', 'np'],
];

export const SYSTEM_ROWS: string[] = [
  // interrupts, halting, fast system calls
  'CC | int3 | | end',
  'CD | int | Ib | end',
  'F1 | int1 | | end',
  'CF | iret | | end',
  'F4 | hlt | | end',
  'FA | cli | | end',
  'FB | sti | | end',
  '0F 05 | syscall | | end',
  '0F 07 | sysret | | end',
  // SYSENTER/SYSEXIT decode everywhere; AMD CPUs raise #UD for them in long mode at run time.
  '0F 34 | sysenter | | end',
  '0F 35 | sysexit | | end',
  '0F AA | rsm | | end',
  // far transfers: direct ptr16:16/32 (not in 64-bit mode) and indirect m16:16/32
  '9A | callf | Ap | i64,end',
  'EA | jmpf | Ap | i64,end',
  'FF /3 !m | callf | Mp | end',
  'FF /5 !m | jmpf | Mp | end',
  'CB | retf | | end',
  'CA | retf | Iw | end',
  // far pointer loads (LDS/LES are in legacy.ts); loading SS may change the stack size
  '0F B2 /r !m | lss | Gv,Mp | end',
  '0F B4 /r !m | lfs | Gv,Mp |',
  '0F B5 /r !m | lgs | Gv,Mp |',
  // descriptor tables and the task register; the table registers' operand is 6 bytes, 10 in 64-bit mode
  ...wordOrRegister('0F 00 /0', 'sldt'),
  ...wordOrRegister('0F 00 /1', 'str'),
  '0F 00 /2 | lldt | Ew | end',
  '0F 00 /3 | ltr | Ew | end',
  '0F 00 /4 | verr | Ew |',
  '0F 00 /5 | verw | Ew |',
  ...wordOrRegister('0F 02 /r', 'lar', 'Gv,'),
  ...wordOrRegister('0F 03 /r', 'lsl', 'Gv,'),
  '0F 01 /0 !m | sgdt | M | f64',
  '0F 01 /1 !m | sidt | M | f64',
  '0F 01 /2 !m | lgdt | M | f64,end',
  '0F 01 /3 !m | lidt | M | f64,end',
  // control and debug registers: always a register operand, 64-bit in 64-bit mode, else 32-bit
  '0F 20 /r | movcr | Ry,Cy | f64,ignmod',
  '0F 22 /r | movcr | Cy,Ry | f64,ignmod,end',
  '0F 21 /r | movdr | Ry,Dy | f64,ignmod',
  '0F 23 /r | movdr | Dy,Ry | f64,ignmod,end',
  ...wordOrRegister('0F 01 /4', 'smsw'),
  '0F 01 /6 | lmsw | Ew | end',
  '0F 06 | clts | | end',
  // caches and TLB; INVPCID's memory operand is its 16-byte descriptor
  '0F 08 | invd | |',
  '0F 09 | wbinvd | |',
  'F3 0F 09 | wbnoinvd | |',
  '0F 01 /7 !m | invlpg | Mb | end',
  '66 0F 38 82 /r !m | invpcid | Gy,M | f64,end',
  // MSRs and counters
  '0F 30 | wrmsr | | end',
  '0F 32 | rdmsr | |',
  '0F 31 | rdtsc | |',
  '0F 33 | rdpmc | |',
  '0F A2 | cpuid | |',
  ...GROUP7_EXACT.map(([modrm, mnem, attrs]) => `0F 01 /=${modrm.toString(16).toUpperCase()} | ${mnem} | | ${attrs}`),
  // I/O ports
  'E4 | in | AL,Ib |',
  'E5 | in | eAX,Ib |',
  'E6 | out | Ib,AL |',
  'E7 | out | Ib,eAX |',
  'EC | in | AL,DX |',
  'ED | in | eAX,DX |',
  'EE | out | DX,AL |',
  'EF | out | DX,eAX |',
  '6C | ins | Yb,DX | rep',
  '6D | ins | Yz,DX | rep',
  '6E | outs | DX,Xb | rep',
  '6F | outs | DX,Xz | rep',
];
