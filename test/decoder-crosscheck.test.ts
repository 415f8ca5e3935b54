/**
 * The decoder against two independent decoders: GNU objdump and iced-x86 (a dev dependency,
 * used only as an oracle), in 64-, 32- and 16-bit code (objdump -m i386:x86-64, -m i386 and
 * -m i386 -M i8086; iced's bitness). Random byte strings biased towards valid prefixes and
 * opcodes of our table (fixed seed, so the run is deterministic) are decoded by all three. Where svmjit
 * decodes an instruction, both oracles must decode one of the same length, iced must agree
 * on the mnemonic and objdump on mnemonic and operands (after normalising formatting in
 * `normalizeObjdump` / `normalizeSvmjit`). Where svmjit refuses (#UD) nothing is checked: an
 * unimplemented instruction is allowed, decoding something invalid is not.
 *
 * objdump runs once over all cases: each case sits at a 64-byte boundary followed by NOPs, so
 * whatever objdump makes of a case's tail, it is back in step by the next case.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Code, Decoder, DecoderOptions, Formatter, FormatterSyntax, Mnemonic } from 'iced-x86';
import { describe, expect, it } from 'vitest';
import { CpuException } from '../src/cpu/exceptions.js';
import { decode } from '../src/frontend/decoder.js';
import { disassemble, mnemonicOf } from '../src/frontend/disasm.js';
import { type CodeSize, type Insn, OpKind } from '../src/frontend/insn.js';
import { type OpRow, ROWS, rowExists } from '../src/frontend/table.js';
import { Rng } from '../tools/gen-vectors.js';

// SVMJIT_XCHECK_CASES (per mode) / SVMJIT_XCHECK_SEED widen the run by hand (CI uses the fixed default).
const CASES = Number(process.env.SVMJIT_XCHECK_CASES ?? 4000);
const MODES: CodeSize[] = [64, 32, 16];
const SEED = Number(process.env.SVMJIT_XCHECK_SEED ?? 20261123);
const SLOT = 64;
const CASE_BYTES = 16;

/** Random instruction-like bytes: legacy prefixes, maybe REX (64-bit), then the opcode of a row of the mode, or noise. */
function makeCase(rng: Rng, rows: readonly OpRow[], mode: CodeSize): Uint8Array {
  const out: number[] = [];
  const legacy = [0x66, 0x67, 0xf2, 0xf3, 0xf0, 0x26, 0x2e, 0x36, 0x3e, 0x64, 0x65];
  while (rng.chance(0.25)) out.push(rng.pick(legacy));
  if (rng.chance(0.8)) {
    const row = rng.pick(rows);
    if (row.prefix) out.push(row.prefix);
    if (mode === 64 && rng.chance(0.4)) out.push(0x40 | rng.below(16));
    if (row.map >= 1) out.push(0x0f);
    if (row.map === 2) out.push(0x38);
    if (row.map === 3) out.push(0x3a);
    out.push(row.opcode + (row.plusR ? rng.below(8) : 0));
    if (row.modrmExact >= 0) out.push(row.modrmExact);
    else if (row.hasModrm) {
      let mod = rng.below(4);
      if (row.mod === 'mem' && mod === 3) mod = rng.below(3);
      if (row.mod === 'reg' && rng.chance(0.9)) mod = 3;
      const reg = row.ext >= 0 && rng.chance(0.9) ? row.ext : rng.below(8);
      out.push((mod << 6) | (reg << 3) | rng.below(8));
    }
  } else if (rng.chance(0.5)) out.push(0x0f);
  while (out.length < CASE_BYTES) out.push(rng.below(256));
  return Uint8Array.from(out.slice(0, CASE_BYTES));
}

const STRING_OPS = /^(movs|cmps|stos|lods|scas|ins|outs)$/;
const PTR_SUFFIX: Record<string, string> = { byte: 'b', word: 'w', dword: 'd', qword: 'q' };

/**
 * objdump's Intel text → our disassembler's conventions. Each rule is a formatting difference,
 * not a semantic one:
 *  - case and spacing; `# target` comments;
 *  - prefixes objdump prints that change nothing here (data16/32, addr16/32, rex*, segment
 *    prefixes it could not attach to an operand, bnd, notrack, and rep/repz/repnz on
 *    non-string instructions);
 *  - `movabs` is `mov`; `pushw`/`pushq` are `push`;
 *  - `ds:0x…` absolute operands are `[0x…]` (see normalizeSvmjit); `+0x0]` displacements are omitted;
 *  - string instructions are named with their size suffix and no operands (`rep stosd`);
 *  - shifts by the constant one print `1` where we print `0x1`;
 *  - `pushfw`/`popw`/`enterw`/`calld`/`retd`…: objdump marks a non-default operand size in
 *    the mnemonic of stack and near-branch instructions; we print the operand size in the
 *    operands (or nowhere);
 *  - `+riz*N`: objdump's name for "SIB without index";
 *  - `rip+0xffffffff…`: objdump prints negative displacements as 64-bit two's complement;
 *  - `prefetch* byte ptr`: objdump gives prefetches a byte size, we print no size;
 *  - with both F2 and F3 before a string instruction, the last one counts;
 *  - `eiz`, `eip`: the 32-bit-address (67) spellings of riz and rip; `[-0x…]` absolute
 *    addresses are printed unsigned like ours (64-bit in 64-bit mode, else 32-bit);
 *  - `xacquire`/`xrelease` (F2/F3 with LOCK): TSX hints we do not print;
 *  - cmpxchg8b/16b memory size (`qword`/`oword ptr`): our rows use an unsized M operand;
 *  - 64-bit mode ignores DS overrides, so `ds:[…]` there is `[…]`.
 */
function normalizeObjdump(text: string, mode: CodeSize): string {
  let t = text.replace(/\s+#.*$/, '').replace(/<[^>]*>/g, '').trim().toLowerCase().replace(/\s+/g, ' ');
  const words = t.split(' ');
  const prefixes: string[] = [];
  while (words.length > 1 && /^(data16|data32|addr16|addr32|rex(\.[wrxb]+)?|cs|ds|es|ss|bnd|notrack|rep|repz|repnz|repe|repne|lock|fs|gs|xacquire|xrelease)$/.test(words[0])) prefixes.push(words.shift()!);
  let [mn, ...rest] = words;
  let ops = rest.join(' ').replace(/, /g, ',');
  mn = mn.replace(/^(pushf|popf|push|pop|enter|leave|call|jmp|ret)[wdq]$/, '$1');
  const wrap = mode === 64 ? 2n ** 64n : 2n ** 32n;
  ops = ops.replace(/\+[re]iz\*\d/g, '').replace(/\b[re]iz\*\d\+?/g, '').replace(/\beip\b/g, 'rip').replace(/\[-0x([0-9a-f]+)\]/g, (_, h: string) => `[0x${(wrap - BigInt('0x' + h)).toString(16)}]`).replace(/\+0x([89a-f][0-9a-f]{15})\b/g, (_, h: string) => `-0x${(2n ** 64n - BigInt('0x' + h)).toString(16)}`);
  if (mn.startsWith('prefetch')) ops = ops.replace(/^byte ptr /, '');
  if (mn.startsWith('cmpxchg') && mn.endsWith('b')) ops = ops.replace(/^(qword|oword) ptr /, '');
  if (mn === 'movabs') mn = 'mov';
  ops = ops.replace(/(byte|word|dword|fword|qword|tbyte|xmmword) ptr ds:(0x[0-9a-f]+)/g, '$1 ptr [$2]').replace(/ds:(0x[0-9a-f]+)/g, '[$1]');
  ops = ops.replace(/(ptr |^|,)(es|cs|ss|fs|gs):(0x[0-9a-f]+)/g, '$1$2:[$3]');
  ops = ops.replace(/\+0x0\]/g, ']').replace(/ds:\[(0x[0-9a-f]+)\]/, '[$1]');
  if (mode === 64) ops = ops.replace(/\bptr ds:\[/g, 'ptr [');
  let pre = prefixes.includes('lock') ? ['lock'] : []; // a repeated LOCK is one LOCK
  if (STRING_OPS.test(mn)) {
    const size = /(byte|word|dword|qword) ptr/.exec(ops);
    const family = mn;
    mn += size ? PTR_SUFFIX[size[1]] : '';
    ops = '';
    const reps = prefixes.filter((p) => /^(rep|repz|repnz|repe|repne)$/.test(p)).map((p) => (p === 'repe' ? 'repz' : p === 'repne' ? 'repnz' : p));
    const last = reps[reps.length - 1];
    // objdump names F3 by the instruction's family (rep movs, repz cmps); F2 is always repnz.
    const rep = !last ? [] : last === 'repnz' ? ['repnz'] : /^(cmps|scas)$/.test(family) ? ['repz'] : ['rep'];
    pre = [...pre, ...rep];
  }
  if (/^(shl|shr|sar|sal|rol|ror|rcl|rcr)$/.test(mn)) ops = ops.replace(/,1$/, ',0x1');
  if (/^(shl|shr|sar|sal|rol|ror|rcl|rcr)$/.test(mn) && !ops.includes(',')) ops += ',0x1';
  t = [...pre, mn].join(' ') + (ops ? ' ' + ops : '');
  return t;
}

/**
 * Our text, with addresses as objdump prints them: we hold addresses as signed 64-bit JS
 * numbers and print branch targets and moffs below zero as `-0x…`; objdump prints them
 * unsigned. objdump writes `ds:` on every absolute address, so an explicit DS override there
 * cannot show.
 */
function normalizeSvmjit(insn: Insn): string {
  let t = disassemble(insn).trim().replace(/\s+/g, ' ');
  const unsigned = (h: string) => `0x${(2n ** 64n - BigInt('0x' + h)).toString(16)}`;
  if (insn.ops.some((o) => o.kind === OpKind.Rel)) t = t.replace(/ -0x([0-9a-f]+)$/, (_, h: string) => ' ' + unsigned(h));
  t = t.replace(/\[-0x([0-9a-f]+)\]/, (_, h: string) => `[${unsigned(h)}]`);
  return t.replace(/ds:\[(0x[0-9a-f]+)\]/, '[$1]');
}

/** Mnemonics that objdump, iced and we suffix with the operand size in different cases (iretd, pushad, sysexitq, retfq…). */
const SIZED_MNEMONICS = /^(iret|retf|pusha|popa|sysret|sysexit|sgdt|sidt|lgdt|lidt)[wdq]?$/;
/** iced spells a few mnemonics by another alias of the same encoding (sal, wait) or with an operand-size suffix (pushfq). */
const ICED_ALIAS: Record<string, string> = { sal: 'shl', wait: 'fwait', pushfq: 'pushf', popfq: 'popf', pushfw: 'pushf', popfw: 'popf', pushfd: 'pushf', popfd: 'popf' };

function sameMnemonic(ours: string, iced: string): boolean {
  const theirs = ICED_ALIAS[iced] ?? iced;
  if (theirs === ours || (ours === 'nop' && iced === 'xchg') || ours === 'pause') return true;
  const a = SIZED_MNEMONICS.exec(ours);
  const b = SIZED_MNEMONICS.exec(theirs);
  return !!a && !!b && a[1] === b[1];
}

/** iced mnemonic name → ours (iced names string forms with their size and cc forms by alias). */
function icedMnemonic(m: number): string {
  return (Mnemonic[m] as unknown as string).toLowerCase();
}

interface Objdump {
  len: number;
  text: string;
}

const OBJDUMP_MACHINE: Record<CodeSize, string[]> = {
  64: ['-m', 'i386:x86-64', '-M', 'intel'],
  32: ['-m', 'i386', '-M', 'intel'],
  16: ['-m', 'i386', '-M', 'intel,i8086'],
};

function runObjdump(cases: Uint8Array[], mode: CodeSize): Objdump[] {
  const buf = new Uint8Array(cases.length * SLOT).fill(0x90);
  cases.forEach((c, i) => buf.set(c, i * SLOT));
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'svmjit-xcheck-'));
  try {
    const file = path.join(dir, 'cases.bin');
    fs.writeFileSync(file, buf);
    const text = execFileSync('objdump', ['-D', '-b', 'binary', ...OBJDUMP_MACHINE[mode], '--insn-width=16', file], { maxBuffer: 1 << 28 }).toString();
    const res: Objdump[] = new Array(cases.length);
    for (const line of text.split('\n')) {
      const m = /^\s*([0-9a-f]+):\t([0-9a-f ]+?)\s*\t(.*)$/.exec(line) ?? /^\s*([0-9a-f]+):\t([0-9a-f ]+?)\s*$/.exec(line);
      if (!m) continue;
      const addr = parseInt(m[1], 16);
      if (addr % SLOT !== 0) continue;
      res[addr / SLOT] = { len: m[2].trim().split(/\s+/).length, text: (m[3] ?? '').trim() };
    }
    return res;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * Cases where objdump is known to differ from iced or from the manuals, so its text is not
 * compared.
 */
function objdumpNotComparable(insn: Insn, bytes: Uint8Array): boolean {
  const mn = mnemonicOf(insn);
  // 66-prefixed near branches in 64-bit mode: objdump decodes them as AMD does (rel16, IP
  // truncated), iced and we as Intel does (prefix ignored). Vendor-specific.
  if (insn.mode === 64 && bytes.includes(0x66) && /^(jcc|jmp|call|ret|loop|loope|loopne|jrcxz)$/.test(insn.mnem)) return true;
  // objdump folds FWAIT into a following x87 instruction (the fstsw/fnstsw idiom); iced and we decode it alone.
  if (mn === 'fwait') return true;
  // moffs beyond 2^53 are not exact in a JS number (they are non-canonical and fault anyway).
  if (/^a[0-3]$/.test(insn.bytes[insn.len - 9]?.toString(16) ?? '') && Math.abs(insn.disp) >= 2 ** 53) return true;
  // objdump prints wr/rdfsbase with 66 as a 16-bit register; the manuals ignore 66 there (iced agrees with us).
  if (/^(rd|wr)[fg]sbase$/.test(mn) && bytes.includes(0x66)) return true;
  // With 66 and REX.W, objdump sizes x87 environments and far pointers by the 66; REX.W wins
  // over 66 (iced agrees with us), and neither has a 64-bit form.
  if (insn.rex & 8 && bytes.includes(0x66) && /^(fldenv|fnstenv|frstor|fnsave|lss|lfs|lgs)$/.test(mn)) return true;
  return false;
}

/**
 * 3E before an indirect near CALL/JMP is CET's NOTRACK; objdump then prints no segment
 * override on the operand at all, even one from another prefix (iced shows it, as we do).
 */
function withoutSegmentsUnderNotrack(ours: string, objdumpText: string): string {
  return /\bnotrack\b/.test(objdumpText) ? ours.replace(/\b[c-gs]s:\[/, '[') : ours;
}

interface Outcome {
  counts: { decoded: number; refused: number; objdumpTextAgrees: number; oraclesDisagree: number };
  failures: string[];
}

function crossCheck(mode: CodeSize): Outcome {
  const rng = new Rng(SEED + (mode === 64 ? 0 : mode));
  const rows = ROWS.filter((r) => rowExists(r, mode === 64));
  const cases = Array.from({ length: CASES }, () => makeCase(rng, rows, mode));
  const dump = runObjdump(cases, mode);
  const fmt = new Formatter(FormatterSyntax.Intel);
  const failures: string[] = [];
  const counts = { decoded: 0, refused: 0, objdumpTextAgrees: 0, oraclesDisagree: 0 };
  cases.forEach((bytes, i) => {
    const addr = i * SLOT;
    const hex = [...bytes].map((b) => b.toString(16).padStart(2, '0')).join(' ');
    let insn: Insn;
    try {
      insn = decode((a) => (a - addr < bytes.length ? bytes[a - addr] : 0x90), addr, mode);
    } catch (e) {
      if (!(e instanceof CpuException)) throw e;
      counts.refused++;
      return;
    }
    counts.decoded++;
    const ours = normalizeSvmjit(insn);
    const dec = new Decoder(mode, bytes, DecoderOptions.None);
    dec.ip = BigInt(addr);
    const ic = dec.decode();
    const icedText = fmt.format(ic);
    const fail = (why: string) => failures.push(`${mode}-bit ${hex}: ${why} (svmjit '${ours}' len ${insn.len}; iced '${icedText}' len ${ic.length}; objdump '${dump[i]?.text}' len ${dump[i]?.len})`);
    if (ic.code === Code.INVALID) return void fail('iced says invalid');
    if (ic.length !== insn.len) return void fail('length differs from iced');
    const ourMn = mnemonicOf(insn);
    if (!sameMnemonic(ourMn, icedMnemonic(ic.mnemonic))) return void fail(`mnemonic differs from iced`);
    const od = dump[i];
    // Where the two oracles disagree with each other and iced agrees with us (objdump
    // rejects bsf/tzcnt forms with a stray F2, splits REX REX or REX-before-legacy-prefix
    // into a lone "rex" line, prints sreg moves with 32-bit registers), iced decides.
    if (!od || od.text.includes('(bad)') || /(^|\s)rex(\.[A-Z]+)?$/.test(od.text.trim())) {
      counts.oraclesDisagree++;
      return;
    }
    if (objdumpNotComparable(insn, bytes)) return;
    if (od.len !== insn.len) return void fail('length differs from objdump');
    let theirs = normalizeObjdump(od.text, mode);
    // With a 16-bit IP the target wraps at 64K; objdump, disassembling linear addresses, keeps
    // the address bits above the 64K block the instruction is in (and in 32-bit code does not
    // wrap 66-prefixed short branches at all). iced and we give the IP.
    if (insn.ops.some((o) => o.kind === OpKind.Rel && o.size === 2)) theirs = theirs.replace(/ 0x([0-9a-f]+)$/, (_, h: string) => ` 0x${(parseInt(h, 16) & 0xffff).toString(16)}`);
    // 90 stays NOP with 66 or REX.W; objdump prints it as an exchange of the accumulator with itself.
    if (insn.mnem === 'nop' && /^xchg ([re]?ax),\1$/.test(theirs)) theirs = 'nop';
    // objdump prints `mov sreg, r32` where the manuals (and iced) use r16: same encoding.
    if (ourMn === 'mov' && /^mov (es|cs|ss|ds|fs|gs),/.test(ours) && theirs.replace(/,[er]([a-z]{2})$/, ',$1').replace(/,r(\d+)d?$/, ',r$1w') === ours) return void counts.objdumpTextAgrees++;
    if (theirs !== withoutSegmentsUnderNotrack(ours, od.text)) return void fail(`text differs from objdump ('${theirs}')`);
    counts.objdumpTextAgrees++;
  });
  return { counts, failures };
}

describe('decoder cross-check against objdump and iced-x86', () => {
  for (const mode of MODES) {
    it(`agrees on ${CASES} random instructions in ${mode}-bit code`, () => {
      const { counts, failures } = crossCheck(mode);
      console.log(`decoder cross-check, ${mode}-bit: ${CASES} byte strings, svmjit decoded ${counts.decoded} (text agrees with objdump on ${counts.objdumpTextAgrees}), refused ${counts.refused}, oracles disagreeing (iced followed) ${counts.oraclesDisagree}, ${failures.length} disagreement(s)`);
      expect(counts.decoded).toBeGreaterThan(CASES / 4);
      expect(failures.slice(0, 50)).toEqual([]);
    });
  }
});
