/**
 * S3 and DynamoDB misbehaving for a while — 500s, throttling (S3 SlowDown 503, DynamoDB
 * ThrottlingException 400), connection resets — through a fault proxy in front of the stand-ins, with
 * the query and build functions pointed at it: a build during the fault ends READY (or FAILED with a
 * reason, never stuck BUILDING), and the active version answers every query meanwhile.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  DYNAMO_INTERNAL,
  DYNAMO_THROTTLING,
  type FaultProxy,
  type FaultRule,
  RESET,
  S3_INTERNAL,
  S3_SLOW_DOWN,
  startFaultProxy,
} from '../support/fault-proxy';
import { type TestStack, testStack } from '../support/local';
import {
  clientStream,
  DIMS,
  directRegistry,
  expectHealthy,
  expectNothingStuck,
  expectServedThrough,
  FAULT_CONFIG,
  itemsRelease,
  RETRY_DELAYS_MS,
  report,
  summarize,
} from './helpers';

type Scenario = {
  name: string;
  s3?: Omit<FaultRule, 'until'>[];
  dynamo?: Omit<FaultRule, 'until'>[];
  forMs?: number;
};

const SCENARIOS: Scenario[] = [
  { name: 'DynamoDB ThrottlingException ×6', dynamo: [{ fault: DYNAMO_THROTTLING, count: 6 }] },
  // More than one read's SDK retries (4 attempts): the query function's pointer read fails outright.
  { name: 'DynamoDB ThrottlingException ×16', dynamo: [{ fault: DYNAMO_THROTTLING, count: 16 }] },
  { name: 'S3 SlowDown 503 ×6', s3: [{ fault: S3_SLOW_DOWN, count: 6 }] },
  {
    name: 'S3 and DynamoDB 500 ×5 each',
    s3: [{ fault: S3_INTERNAL, count: 5 }],
    dynamo: [{ fault: DYNAMO_INTERNAL, count: 5 }],
  },
  {
    name: 'connection resets ×4 on S3 and DynamoDB',
    s3: [{ fault: RESET, count: 4 }],
    dynamo: [{ fault: RESET, count: 4 }],
  },
  {
    name: 'every 3rd DynamoDB request throttled for 2 s',
    dynamo: [{ fault: DYNAMO_THROTTLING, count: Number.POSITIVE_INFINITY, match: everyNth(3) }],
    forMs: 2000,
  },
];

function everyNth(n: number): FaultRule['match'] {
  let i = 0;
  return () => ++i % n === 0;
}

describe('S3 and DynamoDB failing for a while behind a fault proxy', () => {
  let s: TestStack;
  let db: ReturnType<typeof directRegistry>;
  const proxies: Partial<Record<'s3' | 'dynamodb', FaultProxy>> = {};
  const space = 'storage';
  let n = 0;

  beforeAll(async () => {
    s = await testStack(FAULT_CONFIG, undefined, {
      delivery: { retryDelaysMs: RETRY_DELAYS_MS },
      // The sweeper runs all the while, as its schedule may on AWS: between a failed attempt and its
      // retry it must leave the version BUILDING (it once FAILED it, and the retry reported SKIPPED).
      sweepMs: 500,
      ...(process.env.FAULT_DEBUG ? { log: (l: string) => console.error(`[stack] ${Date.now()} ${l}`) } : {}),
      interpose: async (service, endpoint) => {
        const proxy = await startFaultProxy(endpoint);
        proxies[service] = proxy;
        return proxy.url;
      },
    });
    db = directRegistry(s.info);
    const r0 = itemsRelease('r0', 0, 1500);
    expect(await s.publish(space, 'r0', r0.files, r0.json)).toMatchObject([
      { status: 'READY', version: 'v1' },
    ]);
  });
  afterAll(async () => {
    db?.close();
    await s?.dispose();
    await Promise.all(Object.values(proxies).map((p) => p?.close()));
  });

  it.each(SCENARIOS)(
    '$name: READY or FAILED with a reason, the active version answers throughout',
    async (sc) => {
      const prev = await db.registry.getPointer(space);
      const prevRecord = await db.registry.getVersion(space, prev.version as string);
      const release = `r${++n}`;
      const data = itemsRelease(release, n, 1500);
      const stream = clientStream(s.info.apiUrl, space);
      await stream.servedBy(prev.version as string);
      for (const [name, body] of Object.entries(data.files))
        await s.store.putText(`incoming/${space}/${release}/${name}`, body);

      const before = { s3: proxies.s3?.stats.faulted ?? 0, dynamo: proxies.dynamodb?.stats.faulted ?? 0 };
      // The producer's upload is not the functions' traffic: the faults start once release.json is in.
      const put = await s.putRelease(space, release, data.json);
      const started = Date.now();
      const until = sc.forMs ? { until: started + sc.forMs } : {};
      for (const r of sc.s3 ?? []) proxies.s3?.inject({ ...r, ...until });
      for (const r of sc.dynamo ?? []) proxies.dynamodb?.inject({ ...r, ...until });
      let outcomes: Awaited<ReturnType<TestStack['publish']>> = [];
      let error: Error | undefined;
      try {
        outcomes = await s.settled(put.key, { etag: put.etag, after: put.after, timeoutMs: 50_000 });
      } catch (err) {
        error = err as Error;
      }
      const settledAt = Date.now();
      const faulted = {
        s3: (proxies.s3?.stats.faulted ?? 0) - before.s3,
        dynamo: (proxies.dynamodb?.stats.faulted ?? 0) - before.dynamo,
      };
      proxies.s3?.clear();
      proxies.dynamodb?.clear();
      // Let the query function's pointer cache (TTL 1 s) catch up before judging the stream.
      const next = outcomes[0]?.version;
      if (next && outcomes[0]?.status === 'READY') await stream.servedBy(next).catch(() => undefined);
      const answers = await stream.stop();

      expect(faulted.s3 + faulted.dynamo, 'the fault was injected').toBeGreaterThan(0);
      expect(error, error?.stack).toBeUndefined();
      const [outcome] = outcomes;
      expect(
        outcome?.status === 'READY' || (outcome?.status === 'FAILED' && outcome.reason.length > 0),
        JSON.stringify(outcomes),
      ).toBe(true);
      await expectNothingStuck(db.registry, space, answers);
      const releaseOf = {
        [prev.version as string]: prevRecord?.release as string,
        ...(next ? { [next]: release } : {}),
      };
      expectServedThrough(answers, releaseOf, prev.version as string, next ?? (prev.version as string));
      if (outcome?.status === 'READY')
        expect(await db.registry.getPointer(space)).toMatchObject({
          version: next,
          generation: prev.generation + 1,
        });
      else expect(await db.registry.getPointer(space)).toEqual(prev);
      await expectHealthy(s.info.apiUrl);
      report({
        fault: `${sc.name} (${faulted.s3} S3 + ${faulted.dynamo} DynamoDB requests faulted)`,
        client: summarize(answers),
        after: `${outcome?.version} ${outcome?.status}${outcome?.status === 'FAILED' ? `: ${outcome.reason}` : ''}`,
        recoverMs: settledAt - started,
      });
    },
  );

  it('while DynamoDB stays throttled, strong and pinned queries are told to retry (503, Retry-After) and an eventual one is answered', async () => {
    const url = `${s.info.apiUrl}/v1/spaces/${space}/collections/items/query`;
    const vector = Array.from({ length: DIMS }, (_, i) => Math.cos(i + 1));
    const active = (await db.registry.getPointer(space)).version as string;
    const ask = (consistency: 'strong' | 'eventual', version?: string) =>
      fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ vector, k: 3, consistency, ...(version ? { version } : {}) }),
        signal: AbortSignal.timeout(20_000),
      });
    // A fresh pointer read first: the eventual request below may use it for up to 60 s.
    expect((await ask('eventual')).status).toBe(200);
    proxies.dynamodb?.inject({
      fault: DYNAMO_THROTTLING,
      count: Number.POSITIVE_INFINITY,
      until: Date.now() + 30_000,
    });
    try {
      const strong = await ask('strong');
      const problem = (await strong.json()) as { type?: string; status?: number };
      expect(strong.status).toBe(503);
      expect(strong.headers.get('retry-after')).toBe('1');
      expect(problem).toMatchObject({
        type: 'https://vicinity.dev/problems/storage-unavailable',
        status: 503,
      });
      expect((await ask('eventual')).status).toBe(200);
      // A pinned request reads its version's record, which has no stale fallback.
      expect((await ask('eventual', active)).status).toBe(503);
    } finally {
      proxies.dynamodb?.clear();
    }
  });
});
