/**
 * Replays the committed host-CPU vectors (test/vectors/*.json, written by tools/gen-vectors.ts
 * from runs on real hardware) in all three execution modes: registers, flags (less the row's
 * undefined ones), XMM, MXCSR, x87 state, scratch and stack memory, and the fault must match
 * what the hardware did. A mismatch fails unless test/known-differences.json lists it with a
 * reason (and then only what the entry names is relaxed); a listed difference that no longer happens fails too, so the list stays honest.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { initialState, type VectorForm } from '../tools/gen-vectors.js';
import { CODE, MODES, NO_FAULT, SvmjitRunner, diffOutcomes, expectedOutcome } from '../tools/native-runner.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const dir = path.join(here, 'vectors');
const files = fs.existsSync(dir) ? fs.readdirSync(dir).filter((f) => f.endsWith('.json')).sort() : [];

/**
 * A known difference says which form(s) it concerns — by table row text (`row`) or by the
 * form's bytes (`bytes`), optionally one `case` and some `modes` — and what to leave out of the
 * comparison there: RFLAGS bits (`flags`, hex) and/or state columns (`cols`). Everything else is
 * still compared, so a known difference never hides an unrelated one.
 */
interface KnownDifference {
  row?: string;
  bytes?: string;
  case?: number;
  modes?: string[];
  flags?: string;
  cols?: string[];
  /** Compare XMM lanes as floats within this relative error (see CompareOptions). */
  approxRelError?: number;
  reason: string;
}
const known: KnownDifference[] = JSON.parse(fs.readFileSync(path.join(here, 'known-differences.json'), 'utf8'));

function knownFor(form: VectorForm, caseNo: number, mode: string): KnownDifference[] {
  return known.filter(
    (k) => (k.row === undefined || k.row === form.row) && (k.bytes === undefined || k.bytes === form.bytes) && (k.row !== undefined || k.bytes !== undefined) &&
      (k.case === undefined || k.case === caseNo) && (!k.modes || k.modes.includes(mode)),
  );
}
const usedKnown = new Set<KnownDifference>();

/** A 64-bit hex value as the signed JS number svmjit uses for addresses. */
function signedHex(h: string): number {
  const v = parseInt(h, 16);
  return v >= 2 ** 63 ? Number(BigInt.asIntN(64, BigInt('0x' + h))) : v;
}

/** Parse a fault column value "<vector>@<rip>[:<cr2>]" (hex addresses). */
function parseFault(v: string, codeLen: number): [number, number, number] {
  if (!v) return [NO_FAULT, CODE + codeLen, 0];
  const m = /^(\d+)@([0-9a-f]+)(?::([0-9a-f]+))?$/.exec(v);
  if (!m) throw new Error(`bad fault value '${v}'`);
  return [+m[1], signedHex(m[2]), m[3] ? signedHex(m[3]) : 0];
}

describe('host-CPU vectors agree in every execution mode', () => {
  it('has vector files', () => expect(files.length).toBeGreaterThan(0));
  for (const file of files) {
    it(file, () => {
      const data = JSON.parse(fs.readFileSync(path.join(dir, file), 'utf8')) as { forms: VectorForm[] };
      const failures: string[] = [];
      let compared = 0;
      let mismatches = 0;
      const failedForms = new Set<string>();
      for (const form of data.forms) {
        const code = Uint8Array.from(form.bytes.match(/../g)!.map((h) => parseInt(h, 16)));
        const runners = MODES.map((m) => new SvmjitRunner(code, m));
        const nIn = form.in.length;
        const faultCol = form.out.indexOf('fault');
        form.cases.forEach((c, ci) => {
          const inVals = c.slice(0, nIn);
          const outVals = c.slice(nIn);
          let undefFlags = parseInt(form.undefFlags, 16);
          const undefCols: string[] = [];
          const cols: string[] = [];
          const vals: string[] = [];
          form.out.forEach((col, k) => {
            let v = outVals[k];
            if (col === 'fault') return;
            if (v === '?') return void undefCols.push(col);
            if (col === 'flags' && v.includes('/')) {
              const [val, mask] = v.split('/');
              undefFlags |= parseInt(mask, 16);
              v = val;
            }
            cols.push(col);
            vals.push(v);
          });
          const init = initialState(form.base, form.in, inVals);
          const [trap, rip, addr] = parseFault(faultCol >= 0 ? outVals[faultCol] : '', code.length);
          const exp = expectedOutcome(init, cols, vals, trap, rip, addr);
          for (const [k, runner] of runners.entries()) {
            compared++;
            const act = runner.run(init);
            let diffs = diffOutcomes(exp, act, init, { undefFlags, undefCols });
            if (!diffs.length) continue;
            const kds = knownFor(form, ci, MODES[k]);
            if (kds.length) {
              const flags = kds.reduce((f, kd) => f | parseInt(kd.flags ?? '0', 16), undefFlags);
              const approxRelError = Math.max(0, ...kds.map((kd) => kd.approxRelError ?? 0));
              diffs = diffOutcomes(exp, act, init, { undefFlags: flags, undefCols: [...undefCols, ...kds.flatMap((kd) => kd.cols ?? [])], approxRelError });
              for (const kd of kds) usedKnown.add(kd);
              if (!diffs.length) continue;
            }
            mismatches++;
            // The first mismatch of each form, then the form only by name: enough to act on.
            if (failedForms.has(form.bytes)) continue;
            failedForms.add(form.bytes);
            if (failures.length < 60) failures.push(`${form.asm} [${form.bytes}] case ${ci} (${MODES[k]}): in ${JSON.stringify(Object.fromEntries(form.in.map((n, i) => [n, inVals[i]])))}: ${diffs.join('; ')}`);
            else if (failures.length === 60) failures.push('… (more forms)');
          }
        });
      }
      expect(failures, `${mismatches} mismatch(es) in ${compared} runs, ${failedForms.size} form(s)`).toEqual([]);
    });
  }
  it('every known difference still occurs', () => {
    const stale = known.filter((k) => !usedKnown.has(k));
    expect(stale.map((k) => `${k.row ?? k.bytes}: ${k.reason}`)).toEqual([]);
  });
});
