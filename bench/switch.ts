/**
 * npm run bench:switch — how fast a switch is, on the local stack with its default settings:
 * the conditional write's round trip (DynamoDB stand-in), the time from `release.json` upload to the
 * first answer, and how long after a switch the HTTP server first answers with the new version.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DynamoRegistry } from '../functions/adapters/dynamo-registry';
import { S3Store } from '../functions/adapters/s3-store';
import { activateVersion } from '../functions/core/activation';
import { publishSyntheticDemo } from '../local/demo';
import { startLocalStack } from '../local/stack';

process.env.POWERTOOLS_METRICS_DISABLED = 'true';
process.env.POWERTOOLS_LOG_LEVEL = 'ERROR';
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] as number;
};

async function main() {
  const home = await mkdtemp(join(tmpdir(), 'vicinity-bench-switch-'));
  const stack = await startLocalStack({ home, port: 0 });
  const store = new S3Store(stack.deps.s3, stack.info.bucket);
  const registry = new DynamoRegistry(stack.deps.dynamo, stack.info.table);
  const url = `${stack.info.apiUrl}/v1/spaces/demo/collections/tracks/items/t1/similar?k=10`;
  try {
    const t0 = performance.now();
    await publishSyntheticDemo(store, 'demo', 'r1', 7);
    let first: number | undefined;
    while (first === undefined) {
      const r = await fetch(url);
      if (r.status === 200) first = performance.now() - t0;
      else await new Promise((ok) => setTimeout(ok, 20));
    }
    await publishSyntheticDemo(store, 'demo', 'r2', 8);
    await stack.idle();
    // Warm both versions on this instance, as a long-running one would be.
    await fetch(`${url}&version=v1`);

    const cas: number[] = [];
    const visible: number[] = [];
    let pointer = await registry.getPointer('demo');
    for (let i = 0; i < 20; i++) {
      const target = pointer.version === 'v2' ? 'v1' : 'v2';
      const s = performance.now();
      pointer = await activateVersion(registry, {
        space: 'demo',
        version: target,
        expectedGeneration: pointer.generation,
        by: 'cli',
      });
      const switched = performance.now();
      cas.push(switched - s);
      for (;;) {
        const r = await fetch(url);
        if (r.headers.get('vicinity-version') === target) break;
        await new Promise((ok) => setTimeout(ok, 5));
      }
      visible.push(performance.now() - switched);
    }
    const result = {
      uploadToFirstAnswerMs: Number(first.toFixed(0)),
      casRoundTripMs: { p50: pct(cas, 50), p99: pct(cas, 99), max: Math.max(...cas) },
      switchToVisibleMs: {
        p50: pct(visible, 50),
        max: Math.max(...visible),
        pointerTtlMs: stack.deps.config.pointerTtlMs,
      },
    };
    const round = (o: Record<string, number>) =>
      Object.fromEntries(Object.entries(o).map(([k, v]) => [k, Number(v.toFixed(2))]));
    console.log('| measure | value |\n|---|---|');
    console.log(
      `| release.json upload → first answer (demo: 1,000 users + 4,000 tracks, d=32) | ${result.uploadToFirstAnswerMs} ms |`,
    );
    console.log(
      `| activate (read + conditional write) round trip, p50 / p99 | ${round(result.casRoundTripMs).p50} / ${round(result.casRoundTripMs).p99} ms |`,
    );
    console.log(
      `| switch → first HTTP answer with the new version, p50 / max (pointer TTL ${result.switchToVisibleMs.pointerTtlMs} ms) | ${round(result.switchToVisibleMs).p50} / ${round(result.switchToVisibleMs).max} ms |`,
    );
    await writeFile(join('bench', 'results', 'switch.json'), `${JSON.stringify(result, null, 2)}\n`);
  } finally {
    await stack.stop();
    await rm(home, { recursive: true, force: true });
  }
}

await main();
