/**
 * A small typed builder for the JavaScript the JIT emits. Snippets are written as tagged
 * templates — stmts`${dst} = (${a} + ${b}) | 0;` — parsed once by acorn into ESTree (cached per
 * template) and instantiated by substituting the holes with ESTree nodes, so emitters read like
 * the code they produce while every emitted program is a well-formed tree that astring prints.
 * A hole takes an ESTree node, a string (an identifier) or a number (a numeric literal).
 */
import type * as Acorn from 'acorn';
import type * as Astring from 'astring';
import type * as E from 'estree';
import { createRequire } from 'node:module';

// acorn and astring load on the first compile, not at start-up: a short program that never
// compiles a block (svmjit run of a hello-world) does not pay for them.
const require = createRequire(import.meta.url);
let acorn: typeof Acorn | null = null;
let astring: typeof Astring | null = null;

/** Parse JavaScript source (templates here; whole units under compileUnit's `verify`). */
export function parseScript(src: string): E.Program {
  acorn ??= require('acorn') as typeof Acorn;
  return acorn.parse(src, { ecmaVersion: 2022, sourceType: 'script', allowReturnOutsideFunction: true }) as unknown as E.Program;
}

export type Hole = E.Node | string | number;

const cache = new WeakMap<TemplateStringsArray, E.Node[]>();

function parseTemplate(strings: TemplateStringsArray, wrapExpr: boolean): E.Node[] {
  let hit = cache.get(strings);
  if (hit) return hit;
  let src = strings[0];
  for (let i = 1; i < strings.length; i++) src += `$$${i - 1}` + strings[i];
  if (wrapExpr) src = `(${src});`;
  hit = prepare(parseScript(src).body) as E.Node[];
  cache.set(strings, hit);
  return hit;
}

function toNode(h: Hole): E.Node {
  if (typeof h === 'string') return { type: 'Identifier', name: h };
  if (typeof h === 'number') return num(h);
  return h;
}

export function num(v: number): E.Expression {
  if (v < 0 || Object.is(v, -0)) return { type: 'UnaryExpression', operator: '-', prefix: true, argument: { type: 'Literal', value: -v } };
  return { type: 'Literal', value: v };
}

/** Template nodes (and arrays) with a hole somewhere inside: only these are copied per use. */
const withHoles = new WeakSet<object>();

const isHole = (n: Record<string, unknown>) => n.type === 'Identifier' && typeof n.name === 'string' && n.name.startsWith('$$');

/** A template AST without acorn's position info, its hole-bearing nodes recorded in withHoles. */
function prepare(node: unknown): unknown {
  if (node === null || typeof node !== 'object') return node;
  const out: Record<string, unknown> | unknown[] = Array.isArray(node) ? node.map(prepare) : {};
  if (!Array.isArray(node)) {
    const n = node as Record<string, unknown>;
    for (const k in n) if (k !== 'start' && k !== 'end' && k !== 'loc' && k !== 'range' && k !== 'raw') (out as Record<string, unknown>)[k] = prepare(n[k]);
    if (isHole(n)) withHoles.add(out);
  }
  const values = Array.isArray(out) ? out : Object.values(out);
  if (values.some((v) => v !== null && typeof v === 'object' && withHoles.has(v))) withHoles.add(out);
  return out;
}

/**
 * The template with its holes filled. Subtrees without a hole are shared between all uses
 * (nothing mutates emitted trees; astring only reads them), so only the paths to holes are copied.
 */
function instantiate(node: unknown, holes: Hole[]): unknown {
  if (node === null || typeof node !== 'object' || !withHoles.has(node)) return node;
  if (Array.isArray(node)) return node.map((n) => instantiate(n, holes));
  const n = node as Record<string, unknown>;
  if (isHole(n)) return toNode(holes[+(n.name as string).slice(2)]);
  const out: Record<string, unknown> = {};
  for (const k in n) out[k] = instantiate(n[k], holes);
  return out;
}

/** Statements. */
export function stmts(strings: TemplateStringsArray, ...holes: Hole[]): E.Statement[] {
  // A fresh list: callers append to it.
  return (instantiate(parseTemplate(strings, false), holes) as E.Statement[]).slice();
}

/** One expression. */
export function expr(strings: TemplateStringsArray, ...holes: Hole[]): E.Expression {
  const body = instantiate(parseTemplate(strings, true), holes) as E.ExpressionStatement[];
  return body[0].expression;
}

export function block(body: E.Statement[]): E.BlockStatement {
  return { type: 'BlockStatement', body };
}

export function ifStmt(test: E.Expression, then: E.Statement[], otherwise?: E.Statement[]): E.IfStatement {
  return { type: 'IfStatement', test, consequent: block(then), alternate: otherwise ? block(otherwise) : null };
}

export function letDecl(names: string[]): E.VariableDeclaration {
  return {
    type: 'VariableDeclaration',
    kind: 'let',
    declarations: names.map((name) => ({ type: 'VariableDeclarator', id: { type: 'Identifier', name }, init: num(0) })),
  };
}

export function constDecl(name: string, init: E.Expression): E.VariableDeclaration {
  return { type: 'VariableDeclaration', kind: 'const', declarations: [{ type: 'VariableDeclarator', id: { type: 'Identifier', name }, init }] };
}

export function tryCatch(body: E.Statement[], param: string, handler: E.Statement[]): E.TryStatement {
  return { type: 'TryStatement', block: block(body), handler: { type: 'CatchClause', param: { type: 'Identifier', name: param }, body: block(handler) }, finalizer: null };
}

export function fn(name: string, params: string[], body: E.Statement[]): E.FunctionExpression {
  return { type: 'FunctionExpression', id: { type: 'Identifier', name }, params: params.map((p) => ({ type: 'Identifier', name: p })), body: block(body), generator: false, async: false };
}

/**
 * A statement printed verbatim: jit/vector.ts writes its lane code as source text, which would
 * otherwise be parsed into a tree only to be printed again. (compileUnit's `verify` option
 * re-parses whole units, so a malformed snippet is still caught.)
 */
export function raw(source: string): E.Statement {
  return { type: 'RawStatement', source } as unknown as E.Statement;
}

let printer: typeof Astring.GENERATOR | null = null;

/** The program as JavaScript source. */
export function print(prog: E.Program): string {
  astring ??= require('astring') as typeof Astring;
  printer ??= {
    ...astring.GENERATOR,
    RawStatement(node: { source: string }, state: { write(s: string): void }) {
      state.write(node.source);
    },
  } as typeof Astring.GENERATOR;
  return astring.generate(prog, { generator: printer });
}
