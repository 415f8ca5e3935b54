/**
 * Opcode table rows: SSE and SSE2 (the legacy, non-VEX encodings; syntax: ../table.ts).
 *
 * Only the xmm forms are listed: the same opcodes without a 66 prefix are MMX instructions,
 * which we do not implement, so they decode to #UD. Families whose members differ only by an
 * opcode byte (the packed-integer block 66 0F D1-FE, the FP arithmetic block 0F 58-5F) are
 * generated from lists so that the row and the mnemonic cannot drift apart. Every mnemonic here
 * has an interpreter helper in src/cpu/helpers/sse.ts (test/sse.test.ts checks that).
 */

/** Packed-integer instructions "66 0F xx /r | mnem | Vx,Wx" by opcode byte. */
const PACKED_INT: Record<number, string> = {
  0x60: 'punpcklbw', 0x61: 'punpcklwd', 0x62: 'punpckldq', 0x63: 'packsswb',
  0x64: 'pcmpgtb', 0x65: 'pcmpgtw', 0x66: 'pcmpgtd', 0x67: 'packuswb',
  0x68: 'punpckhbw', 0x69: 'punpckhwd', 0x6a: 'punpckhdq', 0x6b: 'packssdw',
  0x6c: 'punpcklqdq', 0x6d: 'punpckhqdq',
  0x74: 'pcmpeqb', 0x75: 'pcmpeqw', 0x76: 'pcmpeqd',
  0xd1: 'psrlw', 0xd2: 'psrld', 0xd3: 'psrlq', 0xd4: 'paddq', 0xd5: 'pmullw',
  0xd8: 'psubusb', 0xd9: 'psubusw', 0xda: 'pminub', 0xdb: 'pand',
  0xdc: 'paddusb', 0xdd: 'paddusw', 0xde: 'pmaxub', 0xdf: 'pandn',
  0xe0: 'pavgb', 0xe1: 'psraw', 0xe2: 'psrad', 0xe3: 'pavgw', 0xe4: 'pmulhuw', 0xe5: 'pmulhw',
  0xe8: 'psubsb', 0xe9: 'psubsw', 0xea: 'pminsw', 0xeb: 'por',
  0xec: 'paddsb', 0xed: 'paddsw', 0xee: 'pmaxsw', 0xef: 'pxor',
  0xf1: 'psllw', 0xf2: 'pslld', 0xf3: 'psllq', 0xf4: 'pmuludq', 0xf5: 'pmaddwd', 0xf6: 'psadbw',
  0xf8: 'psubb', 0xf9: 'psubw', 0xfa: 'psubd', 0xfb: 'psubq', 0xfc: 'paddb', 0xfd: 'paddw', 0xfe: 'paddd',
};

/** FP arithmetic 0F 51-5F: one opcode, four forms (ps, pd, ss, sd) by mandatory prefix. */
const FP_ARITH: Record<number, string> = {
  0x51: 'sqrt', 0x58: 'add', 0x59: 'mul', 0x5c: 'sub', 0x5d: 'min', 0x5e: 'div', 0x5f: 'max',
};

/** FP bitwise 0F 54-57: ps (no prefix) and pd (66) forms. */
const FP_LOGIC: Record<number, string> = { 0x54: 'and', 0x55: 'andn', 0x56: 'or', 0x57: 'xor' };

/** Shift-by-immediate groups 66 0F 71/72/73 /n: [opcode, ModRM.reg, mnemonic]. */
const SHIFT_IMM: [number, number, string][] = [
  [0x71, 2, 'psrlw'], [0x71, 4, 'psraw'], [0x71, 6, 'psllw'],
  [0x72, 2, 'psrld'], [0x72, 4, 'psrad'], [0x72, 6, 'pslld'],
  [0x73, 2, 'psrlq'], [0x73, 3, 'psrldq'], [0x73, 6, 'psllq'], [0x73, 7, 'pslldq'],
];

const hex = (n: number) => n.toString(16).toUpperCase().padStart(2, '0');

function generated(): string[] {
  const rows: string[] = [];
  for (const [op, m] of Object.entries(PACKED_INT)) rows.push(`66 0F ${hex(+op)} /r | ${m} | Vx,Wx |`);
  for (const [op, m] of Object.entries(FP_ARITH)) {
    rows.push(
      `0F ${hex(+op)} /r | ${m}ps | Vps,Wps |`,
      `66 0F ${hex(+op)} /r | ${m}pd | Vpd,Wpd |`,
      `F3 0F ${hex(+op)} /r | ${m}ss | Vss,Wss |`,
      `F2 0F ${hex(+op)} /r | ${m}sd | Vsd,Wsd |`,
    );
  }
  for (const [op, m] of Object.entries(FP_LOGIC)) rows.push(`0F ${hex(+op)} /r | ${m}ps | Vps,Wps |`, `66 0F ${hex(+op)} /r | ${m}pd | Vpd,Wpd |`);
  for (const [op, ext, m] of SHIFT_IMM) rows.push(`66 0F ${hex(op)} /${ext} !r | ${m} | Ux,Ib |`);
  return rows;
}

export const SSE_ROWS: string[] = [
  ...generated(),
  // whole-register moves (the "a" forms fault on a misaligned memory operand)
  '0F 10 /r | movups | Vps,Wps |',
  '0F 11 /r | movups | Wps,Vps |',
  '66 0F 10 /r | movupd | Vpd,Wpd |',
  '66 0F 11 /r | movupd | Wpd,Vpd |',
  '0F 28 /r | movaps | Vps,Wps |',
  '0F 29 /r | movaps | Wps,Vps |',
  '66 0F 28 /r | movapd | Vpd,Wpd |',
  '66 0F 29 /r | movapd | Wpd,Vpd |',
  '66 0F 6F /r | movdqa | Vx,Wx |',
  '66 0F 7F /r | movdqa | Wx,Vx |',
  'F3 0F 6F /r | movdqu | Vx,Wx |',
  'F3 0F 7F /r | movdqu | Wx,Vx |',
  '0F 2B /r !m | movntps | Mps,Vps |',
  '66 0F 2B /r !m | movntpd | Mpd,Vpd |',
  '66 0F E7 /r !m | movntdq | Mx,Vx |',
  '0F C3 /r !m | movnti | My,Gy | np',
  // scalar and partial moves
  'F3 0F 10 /r | movss | Vss,Wss |',
  'F3 0F 11 /r | movss | Wss,Vss |',
  'F2 0F 10 /r | movsd | Vsd,Wsd |',
  'F2 0F 11 /r | movsd | Wsd,Vsd |',
  '66 0F 6E /r | movd | Vy,Ey |',
  '66 0F 7E /r | movd | Ey,Vy |',
  'F3 0F 7E /r | movq | Vq,Wq |',
  '66 0F D6 /r | movq | Wq,Vq |',
  '0F 12 /r !m | movlps | Vq,Mq |',
  '0F 12 /r !r | movhlps | Vq,Uq |',
  '0F 13 /r !m | movlps | Mq,Vq |',
  '66 0F 12 /r !m | movlpd | Vq,Mq |',
  '66 0F 13 /r !m | movlpd | Mq,Vq |',
  '0F 16 /r !m | movhps | Vq,Mq |',
  '0F 16 /r !r | movlhps | Vq,Uq |',
  '0F 17 /r !m | movhps | Mq,Vq |',
  '66 0F 16 /r !m | movhpd | Vq,Mq |',
  '66 0F 17 /r !m | movhpd | Mq,Vq |',
  '0F 50 /r !r | movmskps | Gy,Ups |',
  '66 0F 50 /r !r | movmskpd | Gy,Upd |',
  '66 0F D7 /r !r | pmovmskb | Gy,Ux |',
  // shuffles and word insert/extract
  '66 0F 70 /r | pshufd | Vx,Wx,Ib |',
  'F2 0F 70 /r | pshuflw | Vx,Wx,Ib |',
  'F3 0F 70 /r | pshufhw | Vx,Wx,Ib |',
  '0F C6 /r | shufps | Vps,Wps,Ib |',
  '66 0F C6 /r | shufpd | Vpd,Wpd,Ib |',
  '0F 14 /r | unpcklps | Vps,Wps |',
  '0F 15 /r | unpckhps | Vps,Wps |',
  '66 0F 14 /r | unpcklpd | Vpd,Wpd |',
  '66 0F 15 /r | unpckhpd | Vpd,Wpd |',
  '66 0F C4 /r !r | pinsrw | Vx,Rd,Ib |',
  '66 0F C4 /r !m | pinsrw | Vx,Mw,Ib |',
  '66 0F C5 /r !r | pextrw | Gd,Ux,Ib |',
  // FP approximations, compares
  '0F 52 /r | rsqrtps | Vps,Wps | np',
  'F3 0F 52 /r | rsqrtss | Vss,Wss |',
  '0F 53 /r | rcpps | Vps,Wps | np',
  'F3 0F 53 /r | rcpss | Vss,Wss |',
  '0F C2 /r | cmpps | Vps,Wps,Ib |',
  '66 0F C2 /r | cmppd | Vpd,Wpd,Ib |',
  'F3 0F C2 /r | cmpss | Vss,Wss,Ib |',
  'F2 0F C2 /r | cmpsd | Vsd,Wsd,Ib |',
  '0F 2E /r | ucomiss | Vss,Wss |',
  '66 0F 2E /r | ucomisd | Vsd,Wsd |',
  '0F 2F /r | comiss | Vss,Wss |',
  '66 0F 2F /r | comisd | Vsd,Wsd |',
  // conversions
  'F3 0F 2A /r | cvtsi2ss | Vss,Ey |',
  'F2 0F 2A /r | cvtsi2sd | Vsd,Ey |',
  'F3 0F 2C /r | cvttss2si | Gy,Wss |',
  'F2 0F 2C /r | cvttsd2si | Gy,Wsd |',
  'F3 0F 2D /r | cvtss2si | Gy,Wss |',
  'F2 0F 2D /r | cvtsd2si | Gy,Wsd |',
  '0F 5A /r | cvtps2pd | Vpd,Wq |',
  '66 0F 5A /r | cvtpd2ps | Vps,Wpd |',
  'F3 0F 5A /r | cvtss2sd | Vsd,Wss |',
  'F2 0F 5A /r | cvtsd2ss | Vss,Wsd |',
  '0F 5B /r | cvtdq2ps | Vps,Wx |',
  '66 0F 5B /r | cvtps2dq | Vx,Wps |',
  'F3 0F 5B /r | cvttps2dq | Vx,Wps |',
  'F3 0F E6 /r | cvtdq2pd | Vpd,Wq |',
  'F2 0F E6 /r | cvtpd2dq | Vx,Wpd |',
  '66 0F E6 /r | cvttpd2dq | Vx,Wpd |',
];
