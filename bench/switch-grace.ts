/**
 * npm run bench:switch-grace [-- --quick] — latency of a steady client stream across a version switch,
 * today (switchGraceMs 0: the first requests after the pointer moves wait for the new version's load)
 * against the switch grace (the instance keeps answering from the version it has loaded while the new
 * one loads in the background). One local stack per setting, the same two snapshots (1M x 64; `--quick`:
 * the 100k x 128 bench collection), one HTTP client with 2 requests in flight, in a worker thread.
 * Writes bench/results/switch-grace.json.
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { DynamoRegistry } from '../functions/adapters/dynamo-registry';
import { activateVersion } from '../functions/core/activation';
import { requestContext } from '../functions/query/context';
import { DEFAULT_CONFIG } from '../infra/config';
import { startLocalStack } from '../local/stack';
import { collectionName, publishSnapshot, SPACE } from './publish';
import { DATASETS, dataset, percentile } from './query-data';

process.env.POWERTOOLS_METRICS_DISABLED = 'true';
process.env.POWERTOOLS_LOG_LEVEL = 'ERROR';
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';

const quick = process.argv.includes('--quick');
const log = (s: string) => process.stderr.write(`${s}\n`);
const r3 = (x: number) => Math.round(x * 1000) / 1000;
/** Stream before the switch and after the new version first answers. */
const BEFORE_MS = 2000;
const AFTER_MS = 2000;

/** A closed-loop client: `concurrency` requests in flight until told to stop; each one's start, latency, version. */
const CLIENT = `
const { parentPort, workerData } = require('node:worker_threads');
const http = require('node:http');
const { host, port, path, bodies, concurrency } = workerData;
const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency });
let stop = false;
parentPort.on('message', (m) => { if (m === 'stop') stop = true; });
const t0 = performance.timeOrigin;
function one(body) {
  return new Promise((resolve, reject) => {
    const start = performance.now();
    const req = http.request({ host, port, path, method: 'POST', agent,
      headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } }, (res) => {
      res.resume();
      res.on('end', () => resolve({ at: t0 + start, ms: performance.now() - start, status: res.statusCode,
        version: res.headers['vicinity-version'] }));
    });
    req.on('error', reject);
    req.end(body);
  });
}
(async () => {
  const out = [];
  let i = 0;
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (!stop) {
      const r = await one(bodies[i++ % bodies.length]);
      out.push(r);
      if (out.length % 20 === 0) parentPort.postMessage({ progress: r });
    }
  }));
  parentPort.postMessage({ done: out });
  agent.destroy();
})().catch((e) => { throw e; });
`;

interface Sample {
  at: number;
  ms: number;
  status: number;
  version?: string;
}

async function run(switchGraceMs: number, spec: (typeof DATASETS)[number]) {
  const d = await dataset(spec);
  const home = await mkdtemp(join(tmpdir(), 'vicinity-bench-grace-'));
  // The deployed query function's /tmp (infra/config.ts), not the local default's 512 MB: two 1M × 64
  // versions (~404 MB each) must fit side by side for the old one to keep answering while the new loads.
  const diskBudgetBytes = Math.floor(DEFAULT_CONFIG.query.ephemeralMb * 0.8) * 1024 * 1024;
  const stack = await startLocalStack({ home, port: 0, config: { switchGraceMs, diskBudgetBytes } });
  try {
    const v1 = await publishSnapshot(stack, [d], { release: 'r1', sequencer: '1' });
    const v2 = await publishSnapshot(stack, [d], { release: 'r2', sequencer: '2', activate: false });
    const url = new URL(stack.info.apiUrl);
    const path = `/v1/spaces/${SPACE}/collections/${collectionName(d)}/query`;
    const bodies = d.queries
      .slice(0, 200)
      .map((v) => JSON.stringify({ vector: v.map((x) => Number(x.toPrecision(7))), k: 10 }));
    // The instance has v1 loaded and warm, as a long-running one would.
    for (let i = 0; i < 50; i++)
      await stack.query.service.query(
        SPACE,
        collectionName(d),
        d.queries[i] as number[],
        { k: 10, exclude: [], excludeSeen: false, includeMetadata: true, consistency: 'eventual' },
        requestContext(),
      );
    const w = new Worker(CLIENT, {
      eval: true,
      workerData: { host: url.hostname, port: Number(url.port), path, bodies, concurrency: 2 },
    });
    let sawNew: number | undefined;
    const done = new Promise<Sample[]>((resolve, reject) => {
      w.on('message', (m: { progress?: Sample; done?: Sample[] }) => {
        if (m.progress?.version === v2) sawNew ??= performance.timeOrigin + performance.now();
        if (m.done) resolve(m.done);
      });
      w.once('error', reject);
    });
    await new Promise((ok) => setTimeout(ok, BEFORE_MS));
    const registry = new DynamoRegistry(stack.deps.dynamo, stack.info.table);
    const pointer = await registry.getPointer(SPACE);
    const switchedAt = performance.timeOrigin + performance.now();
    await activateVersion(registry, {
      space: SPACE,
      version: v2,
      expectedGeneration: pointer.generation,
      by: 'cli',
    });
    while (sawNew === undefined) await new Promise((ok) => setTimeout(ok, 20));
    await new Promise((ok) => setTimeout(ok, AFTER_MS));
    w.postMessage('stop');
    const samples = await done;
    await w.terminate();
    if (samples.some((s) => s.status !== 200)) throw new Error('a request failed');
    const lat = samples.map((s) => s.ms);
    const firstNew = samples.filter((s) => s.version === v2).reduce((a, s) => Math.min(a, s.at), Infinity);
    const lastOld = samples.filter((s) => s.version === v1).reduce((a, s) => Math.max(a, s.at), 0);
    // Requests started within the second after the switch (the pointer cache is trusted for 1 s).
    const window = samples.filter((s) => s.at >= switchedAt && s.at < firstNew + 100).map((s) => s.ms);
    return {
      switchGraceMs,
      requests: samples.length,
      p50: r3(percentile(lat, 50)),
      p99: r3(percentile(lat, 99)),
      max: r3(Math.max(...lat)),
      switchWindow: { requests: window.length, max: r3(Math.max(0, ...window)) },
      newVersionFirstAnsweredMsAfterSwitch: Math.round(firstNew - switchedAt),
      oldVersionLastStartedMsAfterSwitch: Math.round(lastOld - switchedAt),
      overOneSecond: lat.filter((x) => x > 1000).length,
    };
  } finally {
    await stack.stop();
    await rm(home, { recursive: true, force: true });
  }
}

async function main() {
  const spec = quick
    ? (DATASETS[0] as (typeof DATASETS)[number])
    : (DATASETS[1] as (typeof DATASETS)[number]);
  const load = loadavg()
    .map((x) => x.toFixed(1))
    .join(' / ');
  const results = [];
  for (const grace of [0, 30_000]) {
    log(`${spec.name}: switch with switchGraceMs ${grace}`);
    const r = await run(grace, spec);
    log(`  ${JSON.stringify(r)}`);
    results.push(r);
  }
  await mkdir(join('bench', 'results'), { recursive: true });
  const out = { at: new Date().toISOString(), quick, dataset: spec.name, loadAverage: load, results };
  await writeFile(join('bench', 'results', 'switch-grace.json'), `${JSON.stringify(out, null, 2)}\n`);
  process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
}

await main();
