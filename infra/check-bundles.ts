/**
 * Runs after `cdk synth` (part of `npm run synth`): checks what would be deployed, offline.
 *
 * For every Node.js function in cdk.out:
 * - the bundle is ESM (index.mjs, and the chunks/ it loads) with a source map next to each file;
 * - its only imports left to the runtime are Node built-ins and (unless bundled) @aws-sdk/* —
 *   an `import 'hnswlib-node'` would fail on Lambda, where ESM ignores NODE_PATH;
 * - it initialises the way Lambda initialises it: copied to a directory outside the repository (like
 *   /var/task), the runtime's SDK beside it, NODE_PATH at the staged layer's nodejs/node_modules,
 *   the function's environment from the template; then `handler` must be a function;
 * - its init stays within 3× the figure `npm run bench:cold` recorded for it (bench/results/cold.json),
 *   median of 3 fresh processes: a re-added eager import (the SDK left to the runtime, a Parquet
 *   reader or an SDK client loaded at import) fails here instead of going unnoticed. The bound is on
 *   CPU time (user + system to `handler` ready, Node's own start-up subtracted), which moves far less
 *   than wall time when the machine is shared; the wall figure is printed next to it.
 * And the staged layer passes the Amazon Linux 2023 symbol check.
 *
 * Usage: tsx infra/check-bundles.ts [cdk.out]
 */
import { existsSync, readFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { join, resolve } from 'node:path';
import { checkFile, formatReport } from '../layers/hnswlib/check-symbols';
import { externalImports, listChunks, measureInit, readSynthesized, stageFunction } from './bundle-init';
import { PROJECT_ROOT } from './paths';

const outDir = resolve(process.argv[2] ?? join(PROJECT_ROOT, 'cdk.out'));
/** Init figures of `npm run bench:cold`, per label (`bundled-sdk`, `runtime-sdk`). */
const BENCH_RESULTS = join(PROJECT_ROOT, 'bench', 'results', 'cold.json');
/** How far past the benchmark's figure an init may go before the check fails. */
const INIT_BOUND_FACTOR = 3;
/** Fresh processes per bundle for the init check. */
const INIT_RUNS = 3;

let failures = 0;
const fail = (msg: string): void => {
  failures++;
  console.log(`FAIL ${msg}`);
};

function isBuiltin(spec: string): boolean {
  return spec.startsWith('node:') || builtinModules.includes(spec);
}

interface BenchInit {
  initMs: number;
  cpuMs: number;
}

/** The benchmark's init figure for a function, from the run of the same SDK choice. */
function benchFigure(name: string, sdk: 'bundled' | 'runtime'): BenchInit | undefined {
  if (!existsSync(BENCH_RESULTS)) return undefined;
  const all = JSON.parse(readFileSync(BENCH_RESULTS, 'utf8')) as Record<
    string,
    { init?: Record<string, BenchInit & { sdk: string }> }
  >;
  for (const run of Object.values(all)) {
    const f = run.init?.[name];
    if (f && f.sdk === sdk) return f;
  }
  return undefined;
}

async function main(): Promise<void> {
  const { functions, layerModules } = readSynthesized(outDir);
  for (const mods of layerModules) {
    const addon = join(mods, 'hnswlib-node', 'build', 'Release', 'addon.node');
    if (!existsSync(addon)) {
      fail(`staged layer has no ${addon}`);
      continue;
    }
    const report = checkFile(addon, true);
    console.log(formatReport(addon, report));
    if (!report.ok) fail('staged layer fails the symbol check');
  }

  for (const fn of functions) {
    const { id } = fn;
    const entry = join(fn.dir, 'index.mjs');
    if (!existsSync(entry)) {
      fail(`${id}: no index.mjs in ${fn.dir} (expected an ESM bundle)`);
      continue;
    }
    for (const f of [entry, ...listChunks(fn.dir)])
      if (!existsSync(`${f}.map`)) fail(`${id}: no source map next to ${f.slice(fn.dir.length + 1)}`);

    const externals = await externalImports(entry);
    const unexpected = externals.filter((s) => !isBuiltin(s) && !s.startsWith('@aws-sdk/'));
    if (unexpected.length > 0)
      fail(`${id}: imports left to the runtime that it does not have: ${unexpected}`);
    const sdkExternal = externals.some((s) => s.startsWith('@aws-sdk/'));

    const staged = stageFunction(fn, layerModules, sdkExternal);
    try {
      let m: Awaited<ReturnType<typeof measureInit>>;
      try {
        m = await measureInit(staged, INIT_RUNS);
      } catch (err) {
        fail(`${id}: initialising the bundle failed: ${(err as Error).message}`);
        continue;
      }
      const figure = `init ${m.initMs.toFixed(0)} ms wall, ${m.cpuMs.toFixed(0)} ms CPU (median of ${INIT_RUNS})`;
      const bench = benchFigure(fn.name, sdkExternal ? 'runtime' : 'bundled');
      let bound = 'no benchmark figure: run npm run bench:cold';
      if (bench) {
        const limit = INIT_BOUND_FACTOR * bench.cpuMs;
        bound = `bound ${limit.toFixed(0)} ms CPU = ${INIT_BOUND_FACTOR} × bench:cold's ${bench.cpuMs} ms`;
        if (m.cpuMs > limit)
          fail(
            `${id} (${fn.name}): ${figure} is past ${bound}; something heavy is loaded at import again (docs/performance.md, "Cold start")`,
          );
      }
      console.log(
        `ok   ${id}: ESM bundle initialises, ${figure}; ${bound}; runtime imports: ${externals.join(', ') || '-'}`,
      );
    } finally {
      staged.dispose();
    }
  }
  if (failures > 0) {
    console.log(`${failures} bundle check(s) failed`);
    process.exit(1);
  }
}

await main();
