/**
 * tsx bench/handler-micro.ts [--rounds=N] — the query handler's own work alone, for profiling
 * (`node --cpu-prof --import tsx bench/handler-micro.ts`): the 100k × 128 collection is published and
 * loaded as in bench:query, then each segment's index search is replaced by a lookup of its answer,
 * computed once per query, so every sample of the timed loop is the service's own code. The handler runs
 * as deployed (INFO access lines and metrics on: bench/as-deployed.ts). Prints the p50
 * of each layer (use case, route, middy handler) in µs, and its CPU time per request (the process's
 * user + system time over a round ÷ requests, best round): on a loaded machine wall-clock percentiles
 * include time spent waiting for a core, CPU time much less so. `--profile=FILE` writes a CPU profile
 * of the timed rounds only (node:inspector; no setup, publishing or warm-up in it) to FILE.
 */

import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { Session } from 'node:inspector/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DynamoRegistry } from '../functions/adapters/dynamo-registry';
import type { HttpEvent } from '../functions/common/http';
import type { SearchHit } from '../functions/core/ports';
import { requestContext } from '../functions/query/context';
import { queryRouter } from '../functions/query/routes';
import { fakeContext, httpEvent } from '../local/http-adapter';
import { startLocalStack } from '../local/stack';
import { print } from './as-deployed';
import { collectionName, publishSnapshot, SPACE } from './publish';
import { DATASETS, dataset, percentile } from './query-data';

const arg = (name: string) => process.argv.find((a) => a.startsWith(`--${name}=`))?.split('=')[1];
const rounds = Number(arg('rounds') ?? 20);
const only = arg('layer');
const profile = arg('profile');

function event(path: string, body: string, i: number): HttpEvent {
  return httpEvent({
    method: 'POST',
    path,
    requestId: `bench-${i}`,
    headers: { 'content-type': 'application/json' },
    body,
    apiId: 'bench',
  });
}

const d = await dataset(DATASETS[0] as (typeof DATASETS)[number]);
const home = await mkdtemp(join(tmpdir(), 'vicinity-bench-micro-'));
const stack = await startLocalStack({ home, port: 0 });
try {
  const version = await publishSnapshot(stack, [d]);
  const name = collectionName(d);
  const path = `/v1/spaces/${SPACE}/collections/${name}/query`;
  const bodies = d.queries.map((v) =>
    JSON.stringify({ vector: v.map((x) => Number(x.toPrecision(7))), k: 10, ef: 80 }),
  );
  const vectors = bodies.map((b) => (JSON.parse(b) as { vector: number[] }).vector);
  const held = await stack.query.cache.collection(SPACE, version, name);
  // Answers by the query's first value (the vector the planner passes is a normalised copy).
  for (const seg of held.collection.segments) {
    const inner = seg.index.search.bind(seg.index);
    const answers = new Map<number, SearchHit[]>();
    seg.index.search = (q, k, ef, filter) => {
      const key = Math.fround(q[0] as number) + (q[1] as number);
      let a = answers.get(key);
      if (!a) {
        a = inner(q, k, ef, filter);
        answers.set(key, a);
      }
      return a.map((h) => ({ ...h }));
    };
  }
  const service = stack.query.service;
  const route = queryRouter(service, new DynamoRegistry(stack.deps.dynamo, stack.info.table));
  // One context for the whole run: its deadline far enough that a slow (loaded) run never meets middy's early timeout.
  const ctx = fakeContext('vicinity-query', 'bench', 3_600_000);
  const params = {
    k: 10,
    ef: 80,
    exclude: [],
    excludeSeen: false,
    includeMetadata: true,
    consistency: 'eventual' as const,
  };
  // The API Gateway events are built before the timed rounds: in Lambda the runtime hands the handler
  // its event, so building one is not the service's cost (nothing on the path writes to it).
  const events = bodies.map((b, i) => event(path, b, i));
  const layers: Record<string, (i: number) => Promise<unknown>> = {
    useCase: (i) => service.query(SPACE, name, vectors[i] as number[], params, requestContext()),
    route: (i) => route(events[i] as HttpEvent),
    handler: (i) => stack.query(events[i] as HttpEvent, ctx),
  };
  for (const fn of Object.values(layers)) for (let i = 0; i < bodies.length; i++) await fn(i);
  const lat: Record<string, number[]> = {};
  const cpu: Record<string, number> = {};
  const session = profile ? new Session() : undefined;
  if (session) {
    session.connect();
    await session.post('Profiler.enable');
    await session.post('Profiler.setSamplingInterval', { interval: 100 });
    await session.post('Profiler.start');
  }
  for (let r = 0; r < rounds; r++) {
    for (const [layer, fn] of Object.entries(layers)) {
      if (only && layer !== only) continue;
      lat[layer] ??= [];
      const l = lat[layer];
      const c0 = process.cpuUsage();
      for (let i = 0; i < bodies.length; i++) {
        const t = performance.now();
        await fn(i);
        l.push(performance.now() - t);
      }
      const c = process.cpuUsage(c0);
      cpu[layer] = Math.min(cpu[layer] ?? Number.POSITIVE_INFINITY, (c.user + c.system) / bodies.length);
    }
  }
  if (session && profile) {
    const { profile: p } = await session.post('Profiler.stop');
    await writeFile(profile, JSON.stringify(p));
    session.disconnect();
  }
  held.release();
  const us = (v: number[], p: number) => Math.round(percentile(v, p) * 10_000) / 10;
  for (const [layer, v] of Object.entries(lat))
    print(
      `${layer.padEnd(8)} p50 ${us(v, 50)} µs  p90 ${us(v, 90)} µs  p99 ${us(v, 99)} µs  CPU ${(cpu[layer] as number).toFixed(1)} µs/request\n`,
    );
} finally {
  await stack.stop();
  await rm(home, { recursive: true, force: true });
}
