/**
 * Opcode table rows: general-purpose forms that exist only outside 64-bit mode (syntax:
 * ../table.ts). AMD64 freed these opcodes: 40-4F became REX prefixes, 63 became MOVSXD, C4/C5
 * and 62 became VEX and EVEX escapes, and the rest raise #UD. Every row here is `i64`, so the
 * 64-bit decoder never sees them. Far transfers (9A, EA) are in system.ts with the other far
 * forms.
 */
export const LEGACY_ROWS: string[] = [
  // one-byte INC/DEC of a register: REX prefixes in 64-bit mode
  '40+r | inc | Zv | i64',
  '48+r | dec | Zv | i64',
  // segment register pushes and pops (POP CS does not exist: 0F is the escape byte)
  '06 | push | ES | i64',
  '07 | pop | ES | i64',
  '0E | push | CS | i64',
  '16 | push | SS | i64',
  // like MOV SS, POP SS holds off interrupts for one instruction and may change the stack size
  '17 | pop | SS | i64,end',
  '1E | push | DS | i64',
  '1F | pop | DS | i64',
  // decimal arithmetic
  '27 | daa | | i64,undef=OF',
  '2F | das | | i64,undef=OF',
  '37 | aaa | | i64,undef=OF.SF.ZF.PF',
  '3F | aas | | i64,undef=OF.SF.ZF.PF',
  // the immediate is the number base (0A for decimal); other bases work as well
  'D4 | aam | Ib | i64,undef=OF.AF.CF',
  'D5 | aad | Ib | i64,undef=OF.AF.CF',
  // stack, bounds, privilege level
  '60 | pusha | | i64',
  '61 | popa | | i64',
  '62 /r !m | bound | Gv,Ma | i64',
  '63 /r | arpl | Ew,Gw | i64',
  // far pointer loads into DS/ES (the register forms of C4/C5 are VEX prefixes)
  'C4 /r !m | les | Gv,Mp | i64',
  'C5 /r !m | lds | Gv,Mp | i64',
  'CE | into | | i64,end',
];
