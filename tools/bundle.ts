/**
 * Bundles the command line (dist/src/cli/main.js and every module it imports) into one file,
 * dist/svmjit.mjs, which is what `svmjit` and `npm start` run. Node 20 loads ES modules one by
 * one (resolve, read, compile each of ~60 files) and has no compile cache for them: one file
 * starts `svmjit run` of a hello-world program in 130 ms instead of 156 (medians of 15). The
 * tests import the modules themselves and test/bundle.test.ts holds the bundle to the same
 * output.
 *
 * acorn and astring stay outside: the JIT loads them at its first compile (jit/js.ts), so a
 * short run never parses them.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const dist = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

await build({
  entryPoints: [path.join(dist, 'src/cli/main.js')],
  outfile: path.join(dist, 'svmjit.mjs'),
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  external: ['acorn', 'astring'],
  logLevel: 'warning',
});
