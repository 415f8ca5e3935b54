/**
 * Opcode table rows: general-purpose integer instructions (syntax: ../table.ts). Most exist in
 * every mode; the forms that 64-bit mode dropped or reassigned are in legacy.ts, and system
 * instructions (privileged state, I/O, far transfers, SVM) in system.ts.
 */
const ALU = ['add', 'or', 'adc', 'sbb', 'and', 'sub', 'xor', 'cmp'];
const SHIFT = ['rol', 'ror', 'rcl', 'rcr', 'shl', 'shr', 'sal', 'sar'];
// OF is defined only for counts of one; a shift (not a rotate) leaves AF undefined for any
// non-zero count, while rotates do not touch SF/ZF/AF/PF at all.
const shiftUndef = (m: string, byOne: boolean) => (m.startsWith('ro') || m.startsWith('rc') ? (byOne ? '' : 'undef=OF') : byOne ? 'undef=AF' : 'undef=OF.AF');

function aluRows(): string[] {
  const rows: string[] = [];
  ALU.forEach((m, i) => {
    const lock = m === 'cmp' ? '' : 'lock';
    const b = (i * 8).toString(16).padStart(2, '0').toUpperCase();
    const h = (n: number) => (i * 8 + n).toString(16).padStart(2, '0').toUpperCase();
    rows.push(
      `${b} /r | ${m} | Eb,Gb | ${lock}`,
      `${h(1)} /r | ${m} | Ev,Gv | ${lock}`,
      `${h(2)} /r | ${m} | Gb,Eb |`,
      `${h(3)} /r | ${m} | Gv,Ev |`,
      `${h(4)} | ${m} | AL,Ib |`,
      `${h(5)} | ${m} | rAX,Iz |`,
      `80 /${i} | ${m} | Eb,Ib | ${lock}`,
      `81 /${i} | ${m} | Ev,Iz | ${lock}`,
      `83 /${i} | ${m} | Ev,Is | ${lock}`,
      // 82 is an alias of 80 that 64-bit mode dropped.
      `82 /${i} | ${m} | Eb,Ib | ${[lock, 'i64'].filter(Boolean).join(',')}`,
    );
  });
  return rows;
}

function shiftRows(): string[] {
  const rows: string[] = [];
  SHIFT.forEach((m, i) => {
    const name = m === 'sal' ? 'shl' : m;
    rows.push(
      `C0 /${i} | ${name} | Eb,Ib | ${shiftUndef(m, false)}`,
      `C1 /${i} | ${name} | Ev,Ib | ${shiftUndef(m, false)}`,
      `D0 /${i} | ${name} | Eb,1 | ${shiftUndef(m, true)}`,
      `D1 /${i} | ${name} | Ev,1 | ${shiftUndef(m, true)}`,
      `D2 /${i} | ${name} | Eb,CL | ${shiftUndef(m, false)}`,
      `D3 /${i} | ${name} | Ev,CL | ${shiftUndef(m, false)}`,
    );
  });
  return rows;
}

export const BASE_ROWS: string[] = [
  ...aluRows(),
  ...shiftRows(),
  // data movement
  '88 /r | mov | Eb,Gb |',
  '89 /r | mov | Ev,Gv |',
  '8A /r | mov | Gb,Eb |',
  '8B /r | mov | Gv,Ev |',
  '8C /r !m | mov | Mw,Sw |',
  '8C /r !r | mov | Rv,Sw |',
  '8E /r | mov | Sw,Ew |',
  // MOV SS holds off interrupts for one instruction and may change the stack size.
  '8E /2 | mov | Sw,Ew | end',
  '8D /r !m | lea | Gv,M |',
  'B0+r | mov | Zb,Ib |',
  'B8+r | mov | Zv,Iv |',
  'C6 /0 | mov | Eb,Ib |',
  'C7 /0 | mov | Ev,Iz |',
  'A0 | mov | AL,Ob |',
  'A1 | mov | rAX,Ov |',
  'A2 | mov | Ob,AL |',
  'A3 | mov | Ov,rAX |',
  '0F B6 /r | movzx | Gv,Eb |',
  '0F B7 /r | movzx | Gv,Ew |',
  '0F BE /r | movsx | Gv,Eb |',
  '0F BF /r | movsx | Gv,Ew |',
  '63 /r | movsxd | Gv,Ed | only64',
  '86 /r | xchg | Eb,Gb | lock',
  '87 /r | xchg | Ev,Gv | lock',
  '90+r | xchg | Zv,rAX |',
  '0F 40+cc /r | cmovcc | Gv,Ev |',
  '0F 90+cc /r | setcc | Eb |',
  // arithmetic
  'F6 /0 | test | Eb,Ib |',
  'F6 /1 | test | Eb,Ib |',
  'F7 /0 | test | Ev,Iz |',
  'F7 /1 | test | Ev,Iz |',
  '84 /r | test | Eb,Gb |',
  '85 /r | test | Ev,Gv |',
  'A8 | test | AL,Ib |',
  'A9 | test | rAX,Iz |',
  'F6 /2 | not | Eb | lock',
  'F7 /2 | not | Ev | lock',
  'F6 /3 | neg | Eb | lock',
  'F7 /3 | neg | Ev | lock',
  'F6 /4 | mul | Eb | undef=SF.ZF.AF.PF',
  'F7 /4 | mul | Ev | undef=SF.ZF.AF.PF',
  'F6 /5 | imul1 | Eb | undef=SF.ZF.AF.PF',
  'F7 /5 | imul1 | Ev | undef=SF.ZF.AF.PF',
  'F6 /6 | div | Eb | undef=CF.OF.SF.ZF.AF.PF',
  'F7 /6 | div | Ev | undef=CF.OF.SF.ZF.AF.PF',
  'F6 /7 | idiv | Eb | undef=CF.OF.SF.ZF.AF.PF',
  'F7 /7 | idiv | Ev | undef=CF.OF.SF.ZF.AF.PF',
  '0F AF /r | imul | Gv,Ev | undef=SF.ZF.AF.PF',
  '69 /r | imul3 | Gv,Ev,Iz | undef=SF.ZF.AF.PF',
  '6B /r | imul3 | Gv,Ev,Is | undef=SF.ZF.AF.PF',
  'FE /0 | inc | Eb | lock',
  'FE /1 | dec | Eb | lock',
  'FF /0 | inc | Ev | lock',
  'FF /1 | dec | Ev | lock',
  '98 | cbw | |',
  '99 | cwd | |',
  '0F A4 /r | shld | Ev,Gv,Ib | undef=OF.AF',
  '0F A5 /r | shld | Ev,Gv,CL | undef=OF.AF',
  '0F AC /r | shrd | Ev,Gv,Ib | undef=OF.AF',
  '0F AD /r | shrd | Ev,Gv,CL | undef=OF.AF',
  '0F C0 /r | xadd | Eb,Gb | lock',
  '0F C1 /r | xadd | Ev,Gv | lock',
  '0F B0 /r | cmpxchg | Eb,Gb | lock',
  '0F B1 /r | cmpxchg | Ev,Gv | lock',
  '0F C7 /1 !m | cmpxchg8b | M | lock',
  // bit operations
  '0F A3 /r | bt | Ev,Gv | undef=OF.SF.AF.PF',
  '0F AB /r | bts | Ev,Gv | lock,undef=OF.SF.AF.PF',
  '0F B3 /r | btr | Ev,Gv | lock,undef=OF.SF.AF.PF',
  '0F BB /r | btc | Ev,Gv | lock,undef=OF.SF.AF.PF',
  '0F BA /4 | bt | Ev,Ib | undef=OF.SF.AF.PF',
  '0F BA /5 | bts | Ev,Ib | lock,undef=OF.SF.AF.PF',
  '0F BA /6 | btr | Ev,Ib | lock,undef=OF.SF.AF.PF',
  '0F BA /7 | btc | Ev,Ib | lock,undef=OF.SF.AF.PF',
  '0F BC /r | bsf | Gv,Ev | undef=CF.OF.SF.AF.PF',
  '0F BD /r | bsr | Gv,Ev | undef=CF.OF.SF.AF.PF',
  'F3 0F BC /r | tzcnt | Gv,Ev | undef=OF.SF.AF.PF',
  'F3 0F BD /r | lzcnt | Gv,Ev | undef=OF.SF.AF.PF',
  'F3 0F B8 /r | popcnt | Gv,Ev |',
  '0F C8+r | bswap | Zv |',
  // stack
  '50+r | push | Zv | o64',
  '58+r | pop | Zv | o64',
  'FF /6 | push | Ev | o64',
  '8F /0 | pop | Ev | o64',
  '6A | push | Is | o64',
  '68 | push | Iz | o64',
  '9C | pushf | | o64',
  '9D | popf | | o64,end',
  'C9 | leave | | o64',
  'C8 | enter | Iw,Ib | o64',
  '0F A0 | push | FS | o64',
  '0F A1 | pop | FS | o64',
  '0F A8 | push | GS | o64',
  '0F A9 | pop | GS | o64',
  // control transfer
  '70+cc | jcc | Jb | end',
  '0F 80+cc | jcc | Jz | end',
  'EB | jmp | Jb | end',
  'E9 | jmp | Jz | end',
  'FF /4 | jmp | Ev | f64,end',
  'E8 | call | Jz | f64,end',
  'FF /2 | call | Ev | f64,end',
  'C3 | ret | | f64,end',
  'C2 | ret | Iw | f64,end',
  'E3 | jrcxz | Jb | end',
  'E2 | loop | Jb | end',
  'E1 | loope | Jb | end',
  'E0 | loopne | Jb | end',
  // strings
  'A4 | movs | Yb,Xb | rep',
  'A5 | movs | Yv,Xv | rep',
  'A6 | cmps | Xb,Yb | rep',
  'A7 | cmps | Xv,Yv | rep',
  'AA | stos | Yb,AL | rep',
  'AB | stos | Yv,rAX | rep',
  'AC | lods | AL,Xb | rep',
  'AD | lods | rAX,Xv | rep',
  'AE | scas | AL,Yb | rep',
  'AF | scas | rAX,Yv | rep',
  // flags
  'F5 | cmc | |',
  'F8 | clc | |',
  'F9 | stc | |',
  'FC | cld | |',
  'FD | std | |',
  '9E | sahf | |',
  '9F | lahf | |',
  // miscellany
  '0F 0B | ud2 | | end',
  '90 | nop | |',
  'F3 90 | pause | |',
  '0F 1F /0 | nop | Ev |',
  '0F 18 /0 !m | prefetchnta | M |',
  '0F 18 /1 !m | prefetcht0 | M |',
  '0F 18 /2 !m | prefetcht1 | M |',
  '0F 18 /3 !m | prefetcht2 | M |',
  '0F 0D /1 !m | prefetchw | M |',
  'F3 0F 1E /=FA | endbr64 | |',
  'F3 0F 1E /=FB | endbr32 | |',
  '0F AE /=E8 | lfence | | np',
  '0F AE /=F0 | mfence | | np',
  '0F AE /=F8 | sfence | | np',
  '0F AE /2 !m | ldmxcsr | Md | np',
  '0F AE /3 !m | stmxcsr | Md | np',
  '0F AE /0 !m | fxsave | M | np',
  '0F AE /1 !m | fxrstor | M | np',
  '0F AE /4 !m | xsave | M | np',
  '0F AE /5 !m | xrstor | M | np',
  'F3 0F AE /0 !r | rdfsbase | Ry | only64',
  'F3 0F AE /1 !r | rdgsbase | Ry | only64',
  'F3 0F AE /2 !r | wrfsbase | Ry | only64',
  'F3 0F AE /3 !r | wrgsbase | Ry | only64',
];
