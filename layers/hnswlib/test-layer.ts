/**
 * `npm run test:layer`: proves the built layer (layers/hnswlib/build, from `npm run build:layer`)
 *
 * 1. passes the Amazon Linux 2023 symbol check (check-symbols.ts);
 * 2. has the layout Lambda expects (nodejs/node_modules/hnswlib-node + its runtime dependencies);
 * 3. loads the way Lambda loads it: an ES module in a directory with no node_modules above it (like
 *    /var/task/index.mjs), NODE_PATH pointing at the layer's nodejs/node_modules, and
 *    createRequire(import.meta.url)('hnswlib-node') — then builds, writes, reloads into a fresh object
 *    and searches a small index.
 *
 * Exit code 0 when all pass. Set LAYER_DIR to test another layer directory.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { checkFile, formatReport } from './check-symbols';

const here = dirname(fileURLToPath(import.meta.url));
const layerDir = resolve(process.env.LAYER_DIR ?? join(here, 'build'));
const modules = join(layerDir, 'nodejs', 'node_modules');
const addon = join(modules, 'hnswlib-node', 'build', 'Release', 'addon.node');

let failures = 0;
function step(name: string, fn: () => void): void {
  const t0 = performance.now();
  try {
    fn();
    console.log(`ok   ${name} (${Math.round(performance.now() - t0)} ms)`);
  } catch (err) {
    failures++;
    console.log(`FAIL ${name}: ${err instanceof Error ? err.message : String(err)}`);
  }
}

if (!existsSync(addon)) {
  console.error(`No built layer at ${layerDir} (missing ${addon}). Run \`npm run build:layer\` first.`);
  process.exit(1);
}

step('symbol versions fit Amazon Linux 2023 (GLIBC <= 2.34, GLIBCXX <= 3.4.29, static libstdc++)', () => {
  const report = checkFile(addon, true);
  console.log(formatReport(addon, report));
  if (!report.ok) throw new Error(report.problems.join('; '));
});

step('layer layout: nodejs/node_modules/{hnswlib-node,bindings,file-uri-to-path}', () => {
  const pkg = JSON.parse(readFileSync(join(modules, 'hnswlib-node', 'package.json'), 'utf8')) as {
    version?: string;
    main?: string;
  };
  if (pkg.version !== '3.0.0') throw new Error(`hnswlib-node version ${pkg.version}, expected 3.0.0`);
  for (const file of [
    join('hnswlib-node', pkg.main ?? 'lib/index.js'),
    join('bindings', 'bindings.js'),
    join('file-uri-to-path', 'index.js'),
  ]) {
    if (!existsSync(join(modules, file))) throw new Error(`missing ${file}`);
  }
  if (existsSync(join(modules, 'hnswlib-node', 'src'))) throw new Error('sources were copied into the layer');
});

// Runs in a child process, from a directory with no node_modules above it, like /var/task/index.mjs.
const lambdaStyleModule = `
import { createRequire } from 'node:module';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const require = createRequire(import.meta.url);
const resolved = require.resolve('hnswlib-node');
const { HierarchicalNSW } = require('hnswlib-node');

const dim = 16, n = 500;
let seed = 42;
const rand = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648) - 0.5;
const points = Array.from({ length: n }, () => Array.from({ length: dim }, rand));

const index = new HierarchicalNSW('cosine', dim);
index.initIndex({ maxElements: n, m: 16, efConstruction: 100 });
points.forEach((p, i) => index.addPoint(p, i));
index.setEf(50);
let selfHits = 0;
for (let i = 0; i < n; i++) if (index.searchKnn(points[i], 1).neighbors[0] === i) selfHits++;

const dir = mkdtempSync(join(tmpdir(), 'vicinity-layer-index-'));
const file = join(dir, 'index.hnsw');
index.writeIndexSync(file);
const fresh = new HierarchicalNSW('cosine', dim);
fresh.readIndexSync(file);
fresh.setEf(50);
const top = fresh.searchKnn(points[7], 5);
rmSync(dir, { recursive: true, force: true });

console.log(JSON.stringify({
  resolved, node: process.versions.node, napi: process.versions.napi,
  count: fresh.getCurrentCount(), selfHits, top: top.neighbors, distance0: top.distances[0],
}));
`;

step('loads from ESM via NODE_PATH + createRequire and builds/searches an index (child process)', () => {
  const taskDir = mkdtempSync(join(tmpdir(), 'vicinity-var-task-'));
  try {
    const entry = join(taskDir, 'index.mjs');
    writeFileSync(entry, lambdaStyleModule);
    const child = spawnSync(process.execPath, [entry], {
      cwd: taskDir,
      encoding: 'utf8',
      timeout: 60_000,
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', NODE_PATH: modules, LANG: 'C.UTF-8' },
    });
    if (child.status !== 0) {
      throw new Error(
        `child exited ${child.status} (${child.signal ?? 'no signal'}): ${child.stderr.trim()}`,
      );
    }
    const out = JSON.parse(child.stdout.trim().split('\n').pop() ?? '{}') as {
      resolved: string;
      node: string;
      napi: string;
      count: number;
      selfHits: number;
      top: number[];
      distance0: number;
    };
    console.log(`     ${JSON.stringify(out)}`);
    if (!out.resolved.startsWith(modules)) throw new Error(`resolved ${out.resolved}, not from the layer`);
    if (out.count !== 500) throw new Error(`reloaded index holds ${out.count} items, expected 500`);
    if (out.selfHits < 495) throw new Error(`only ${out.selfHits}/500 points found themselves`);
    if (out.top[0] !== 7 || Math.abs(out.distance0) > 1e-5)
      throw new Error(`top hit ${out.top[0]}, expected 7`);
  } finally {
    rmSync(taskDir, { recursive: true, force: true });
  }
});

step(
  'without NODE_PATH the same module cannot find hnswlib-node (the test is not leaking the repo copy)',
  () => {
    const taskDir = mkdtempSync(join(tmpdir(), 'vicinity-var-task-'));
    try {
      const entry = join(taskDir, 'index.mjs');
      writeFileSync(entry, lambdaStyleModule);
      const child = spawnSync(process.execPath, [entry], {
        cwd: taskDir,
        encoding: 'utf8',
        timeout: 30_000,
        env: { PATH: process.env.PATH ?? '/usr/bin:/bin' },
      });
      if (child.status === 0) throw new Error('hnswlib-node resolved without NODE_PATH');
      if (!child.stderr.includes('MODULE_NOT_FOUND'))
        throw new Error(`unexpected failure: ${child.stderr.trim()}`);
    } finally {
      rmSync(taskDir, { recursive: true, force: true });
    }
  },
);

if (failures > 0) {
  console.log(`${failures} layer check(s) failed`);
  process.exit(1);
}
console.log(
  'layer OK (loaded here on Node ' + process.versions.node + '; Lambda runs Node.js 22, same Node-API)',
);
