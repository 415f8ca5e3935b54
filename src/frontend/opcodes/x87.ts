/**
 * Opcode table rows: the x87 FPU, escape opcodes D8-DF and 9B FWAIT (syntax: ../table.ts).
 *
 * Each escape byte's ModRM.reg selects an operation; a memory ModRM gives the memory form
 * (`!m`, operand size in the spec: Md float32/int32, Mq float64/int64, Mw int16, Mt m80), a
 * register ModRM the ST(i) form (`!r`, N = ST(i) from ModRM.rm), and single-instruction
 * register encodings are exact ModRM bytes (`/=E9`). Mnemonics are the Intel ones, one per
 * semantic (fild vs fld, fsubr vs fsub): the helpers in cpu/helpers/x87.ts are keyed by them
 * and read the form from the operands. Note the register forms of DC and DE where the
 * manual's names swap: DC E0+i is FSUBR ST(i),ST0 and DC E8+i is FSUB ST(i),ST0 (likewise
 * DIV/DIVR), so the rows below follow the opcode map, not a naming pattern.
 */

/** The D8/DC/DA/DE ModRM.reg order of the arithmetic family. */
const ARITH = ['fadd', 'fmul', 'fcom', 'fcomp', 'fsub', 'fsubr', 'fdiv', 'fdivr'];
/** Register forms of DC and DE: /4../7 swap SUB/SUBR and DIV/DIVR relative to D8. */
const ARITH_REVERSED = ['fadd', 'fmul', '', '', 'fsubr', 'fsub', 'fdivr', 'fdiv'];

function arithRows(): string[] {
  const rows: string[] = [];
  ARITH.forEach((m, i) => {
    const int = m.replace(/^f/, 'fi');
    rows.push(`D8 /${i} !m | ${m} | Md |`, `DC /${i} !m | ${m} | Mq |`, `DA /${i} !m | ${int} | Md |`, `DE /${i} !m | ${int} | Mw |`);
    // D8 register forms: ST0 = ST0 op ST(i); FCOM/FCOMP compare ST0 with ST(i).
    rows.push(i === 2 || i === 3 ? `D8 /${i} !r | ${m} | N |` : `D8 /${i} !r | ${m} | ST0,N |`);
    const r = ARITH_REVERSED[i];
    if (r) rows.push(`DC /${i} !r | ${r} | N,ST0 |`, `DE /${i} !r | ${r}p | N,ST0 |`);
  });
  return rows;
}

/** D9 E0-FF and the other single-encoding instructions. */
const EXACT: [string, string][] = [
  ['D9 /=D0', 'fnop'],
  ['D9 /=E0', 'fchs'], ['D9 /=E1', 'fabs'], ['D9 /=E4', 'ftst'], ['D9 /=E5', 'fxam'],
  ['D9 /=E8', 'fld1'], ['D9 /=E9', 'fldl2t'], ['D9 /=EA', 'fldl2e'], ['D9 /=EB', 'fldpi'],
  ['D9 /=EC', 'fldlg2'], ['D9 /=ED', 'fldln2'], ['D9 /=EE', 'fldz'],
  ['D9 /=F0', 'f2xm1'], ['D9 /=F1', 'fyl2x'], ['D9 /=F2', 'fptan'], ['D9 /=F3', 'fpatan'],
  ['D9 /=F4', 'fxtract'], ['D9 /=F5', 'fprem1'], ['D9 /=F6', 'fdecstp'], ['D9 /=F7', 'fincstp'],
  ['D9 /=F8', 'fprem'], ['D9 /=F9', 'fyl2xp1'], ['D9 /=FA', 'fsqrt'], ['D9 /=FB', 'fsincos'],
  ['D9 /=FC', 'frndint'], ['D9 /=FD', 'fscale'], ['D9 /=FE', 'fsin'], ['D9 /=FF', 'fcos'],
  ['DA /=E9', 'fucompp'], ['DB /=E2', 'fnclex'], ['DB /=E3', 'fninit'], ['DE /=D9', 'fcompp'],
];

/** FCMOVcc: DA /0-3 (B, E, BE, U) and DB /0-3 (NB, NE, NBE, NU), register forms. */
const FCMOV = ['b', 'e', 'be', 'u'];

export const X87_ROWS: string[] = [
  ...arithRows(),
  ...EXACT.map(([op, m]) => `${op} | ${m} | |`),
  ...FCMOV.flatMap((c, i) => [`DA /${i} !r | fcmov${c} | ST0,N |`, `DB /${i} !r | fcmovn${c} | ST0,N |`]),
  // D9: loads/stores of float32, environment and control word, FLD/FXCH ST(i)
  'D9 /0 !m | fld | Md |',
  'D9 /0 !r | fld | N |',
  'D9 /1 !r | fxch | N |',
  'D9 /2 !m | fst | Md |',
  'D9 /3 !m | fstp | Md |',
  'D9 /4 !m | fldenv | M |',
  'D9 /5 !m | fldcw | Mw |',
  'D9 /6 !m | fnstenv | M |',
  'D9 /7 !m | fnstcw | Mw |',
  // DB: int32 loads/stores, m80, FCOMI/FUCOMI
  'DB /0 !m | fild | Md |',
  'DB /1 !m | fisttp | Md |',
  'DB /2 !m | fist | Md |',
  'DB /3 !m | fistp | Md |',
  'DB /5 !m | fld | Mt |',
  'DB /7 !m | fstp | Mt |',
  'DB /5 !r | fucomi | ST0,N |',
  'DB /6 !r | fcomi | ST0,N |',
  // DD: float64 loads/stores, FNSAVE/FRSTOR/FNSTSW, FFREE, FST(P)/FUCOM(P) ST(i)
  'DD /0 !m | fld | Mq |',
  'DD /1 !m | fisttp | Mq |',
  'DD /2 !m | fst | Mq |',
  'DD /3 !m | fstp | Mq |',
  'DD /4 !m | frstor | M |',
  'DD /6 !m | fnsave | M |',
  'DD /7 !m | fnstsw | Mw |',
  'DD /0 !r | ffree | N |',
  'DD /2 !r | fst | N |',
  'DD /3 !r | fstp | N |',
  'DD /4 !r | fucom | N |',
  'DD /5 !r | fucomp | N |',
  // DF: int16/int64/BCD loads/stores, FNSTSW AX, FCOMIP/FUCOMIP, FFREEP
  'DF /0 !m | fild | Mw |',
  'DF /1 !m | fisttp | Mw |',
  'DF /2 !m | fist | Mw |',
  'DF /3 !m | fistp | Mw |',
  'DF /4 !m | fbld | Mt |',
  'DF /5 !m | fild | Mq |',
  'DF /6 !m | fbstp | Mt |',
  'DF /7 !m | fistp | Mq |',
  'DF /=E0 | fnstsw | AX |',
  'DF /0 !r | ffreep | N |',
  'DF /5 !r | fucomip | ST0,N |',
  'DF /6 !r | fcomip | ST0,N |',
  '9B | fwait | |',
];
