/**
 * The IR on its own: every declared op is handled by both back ends, emitted JS re-parses,
 * the passes remove what they should and keep what they must.
 */
import fs from 'node:fs';
import * as acorn from 'acorn';
import { describe, expect, it } from 'vitest';
import { IrBlock, IrBuilder } from '../src/ir/ir.js';
import { OPS, Op, AluOp } from '../src/ir/ops.js';
import { optimize } from '../src/ir/passes.js';
import { CcOp } from '../src/cpu/flags.js';
import { liftBlock } from '../src/ir/lift.js';
import { assemble } from './helpers/asm.js';

describe('IR ops', () => {
  it('are all handled by the interpreter and the code generator', () => {
    const interp = fs.readFileSync('src/ir/interp.ts', 'utf8');
    const codegen = fs.readFileSync('src/jit/codegen.ts', 'utf8');
    const names = fs.readFileSync('src/ir/ops.ts', 'utf8').match(/export const enum Op \{([\s\S]*?)\n\}/)![1];
    const ops = [...names.matchAll(/^\s+([A-Z0-9_]+),/gm)].map((m) => m[1]);
    expect(ops.length).toBe(OPS.length);
    for (const op of ops) {
      expect(interp, `interp handles Op.${op}`).toContain(`case Op.${op}:`);
      expect(codegen, `codegen handles Op.${op}`).toContain(`case Op.${op}:`);
    }
  });
});

describe('passes', () => {
  it('drop flags overwritten before any reader, keep flags a fault could expose', () => {
    const blk = new IrBlock(0x1000);
    const b = new IrBuilder(blk);
    const x = b.const32(1);
    b.flags(CcOp.ADD, 4, x, x); // dead: overwritten below with no reader or fault between
    const y = b.bin(AluOp.ADD, 4, x, x);
    b.flags(CcOp.SUB, 4, y, x); // live: a load that can fault follows before the next flags
    b.load(4, b.ea(-1, -1, 1, 0x2000, 8, -1));
    b.flags(CcOp.LOGIC, 4, y);
    b.jump(0x1004);
    optimize(blk);
    const kinds = blk.code.filter((i) => i.op === Op.FLAGS).map((i) => i.k);
    expect(kinds).toEqual([CcOp.SUB, CcOp.LOGIC]);
  });

  it('fold a cmp+jcc pair into one comparison in the emitted JS', async () => {
    const { compileBlock } = await import('../src/jit/codegen.js');
    const { JitRuntime } = await import('../src/jit/runtime.js');
    const { Cpu } = await import('../src/cpu/cpu.js');
    const { Memory } = await import('../src/cpu/memory.js');
    const code = assemble('cmp eax, ecx\njl 1f\n1:');
    const blk = liftBlock((a) => code[a - 0x1000], 0x1000);
    optimize(blk);
    const rt = new JitRuntime(new Cpu(new Memory(1 << 20)));
    const { source } = compileBlock(blk, rt, 'blk_test', { verify: true });
    expect(() => acorn.parse(source, { ecmaVersion: 2022 })).not.toThrow();
    expect(source).not.toContain('condOf');
    expect(source).toMatch(/t\d+ < t\d+/);
  });
});
