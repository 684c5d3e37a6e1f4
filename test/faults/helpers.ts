/** Shared by the fault-injection tests: releases, a client stream that checks every answer, registry checks. */
import { appendFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { expect } from 'vitest';
import { createDynamoClient } from '../../functions/adapters/aws-clients';
import { DynamoRegistry } from '../../functions/adapters/dynamo-registry';
import type { VersionRecord } from '../../functions/core/version';
import type { LocalInfo } from '../../local/info';
import { LOCAL_CREDENTIALS, LOCAL_REGION } from '../../local/standins';
import { clusteredVectors, jsonlRows } from '../../local/synthetic';

export const DIMS = 16;
export const LEASE_MS = 1500;
/** Longer than a dead builder's lease, so the retry after a crash finds it lapsed. */
export const RETRY_DELAYS_MS = [LEASE_MS + 700, LEASE_MS + 700];
/** Fault-test stacks: short lease and file wait, small quality sample. */
export const FAULT_CONFIG = { leaseMs: LEASE_MS, fileWaitMs: 2000, qualitySample: 50, retentionGraceMs: 300 };

/** One collection `items` whose ids carry the release name, so an answer shows which release made it. */
export function itemsRelease(release: string, seed: number, count = 3000) {
  const { vectors } = clusteredVectors(count, DIMS, 8, seed);
  const ids = Array.from({ length: count }, (_, i) => `${release}-i${i}`);
  return {
    files: { 'items.jsonl': jsonlRows(ids, vectors, DIMS) },
    json: { collections: { items: { file: 'items.jsonl', metric: 'cosine' } }, activate: true },
  };
}

/** A registry on a client straight to the DynamoDB stand-in (never through a fault proxy). */
export function directRegistry(info: LocalInfo): { registry: DynamoRegistry; close(): void } {
  const dynamo = createDynamoClient({
    region: LOCAL_REGION,
    dynamodbEndpoint: info.dynamodbEndpoint,
    credentials: LOCAL_CREDENTIALS,
  });
  return { registry: new DynamoRegistry(dynamo, info.table), close: () => dynamo.destroy() };
}

export interface Answer {
  at: number;
  status: number;
  version?: string;
  release?: string;
  error?: string;
}

/**
 * Queries `space` with one vector, 20 ms apart, until stopped, recording each answer: its status, the
 * version it names and the release its result ids come from (checked: all ids from one release).
 */
export function clientStream(apiUrl: string, space: string) {
  const vector = Array.from({ length: DIMS }, (_, i) => Math.sin(i + 1));
  const answers: Answer[] = [];
  let running = true;
  const loop = (async () => {
    while (running) {
      const at = Date.now();
      try {
        const res = await fetch(`${apiUrl}/v1/spaces/${space}/collections/items/query`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ vector, k: 5 }),
          signal: AbortSignal.timeout(10_000),
        });
        const body = (await res.json()) as { version?: string; results?: { id: string }[] };
        const releases = new Set((body.results ?? []).map((r) => r.id.split('-i')[0]));
        answers.push({
          at,
          status: res.status,
          ...(body.version ? { version: body.version } : {}),
          ...(releases.size ? { release: [...releases].join('+') } : {}),
        });
      } catch (err) {
        answers.push({ at, status: 0, error: (err as Error).message });
      }
      await sleep(20);
    }
  })();
  let from: number | undefined;
  return {
    answers,
    /**
     * Resolves once an answer names `version` (the query function trusts its cached pointer for up to
     * its TTL, so a just-activated version shows a moment later); on the first call, the answers
     * before it are dropped.
     */
    async servedBy(version: string, deadlineMs = 10_000): Promise<void> {
      const deadline = Date.now() + deadlineMs;
      for (;;) {
        const i = answers.findIndex((a) => a.version === version);
        if (i >= 0) {
          from ??= i;
          return;
        }
        if (!running || Date.now() > deadline)
          throw new Error(`no answer from ${version} within ${deadlineMs} ms: ${summarize(answers)}`);
        await sleep(20);
      }
    },
    async stop(): Promise<Answer[]> {
      running = false;
      await loop;
      return answers.slice(from ?? 0);
    },
  };
}

/** Polls the version until it leaves BUILDING, failing the test past `deadlineMs`. */
export async function settledVersion(
  registry: DynamoRegistry,
  space: string,
  version: string,
  deadlineMs = 30_000,
): Promise<VersionRecord> {
  const deadline = Date.now() + deadlineMs;
  for (;;) {
    const v = await registry.getVersion(space, version);
    if (v && v.status !== 'BUILDING') return v;
    if (Date.now() > deadline)
      throw new Error(`${space}/${version} still ${v?.status ?? 'missing'} after ${deadlineMs} ms`);
    await sleep(100);
  }
}

/** No version of the space is BUILDING (polling until `deadlineMs`), none answered while DELETED. */
export async function expectNothingStuck(
  registry: DynamoRegistry,
  space: string,
  answers: Answer[],
  deadlineMs = 30_000,
): Promise<VersionRecord[]> {
  const { versions } = await registry.listVersions(space, 50);
  const settled = await Promise.all(
    versions.map((v) => settledVersion(registry, space, v.version, deadlineMs)),
  );
  const deleted = new Set(settled.filter((v) => v.status === 'DELETED').map((v) => v.version));
  expect(answers.filter((a) => a.version && deleted.has(a.version))).toEqual([]);
  return settled;
}

/**
 * Every answer came from `before` until the pointer moved to `after`, then from `after` (never a mix,
 * never back), and each answer's ids come from the release of the version it names.
 */
export function expectServedThrough(
  answers: Answer[],
  releaseOf: Record<string, string>,
  before: string,
  after: string,
): void {
  expect(answers.length).toBeGreaterThan(0);
  for (const a of answers) {
    expect(a, JSON.stringify(a)).toMatchObject({ status: 200 });
    expect([before, after]).toContain(a.version);
    expect(a.release).toBe(releaseOf[a.version as string]);
  }
  const firstAfter = answers.findIndex((a) => a.version === after);
  if (firstAfter >= 0) expect(answers.slice(firstAfter).every((a) => a.version === after)).toBe(true);
}

export async function expectHealthy(apiUrl: string): Promise<void> {
  const res = await fetch(`${apiUrl}/v1/health`);
  expect(res.status).toBe(200);
  expect(await res.json()).toMatchObject({ status: 'ok' });
}

/** One row of the fault report (FAULT_REPORT=path appends JSON lines; always printed). */
export function report(row: { fault: string; client: string; after: string; recoverMs: number }): void {
  const line = JSON.stringify(row);
  console.info(`[fault-report] ${line}`);
  if (process.env.FAULT_REPORT) appendFileSync(process.env.FAULT_REPORT, `${line}\n`);
}

/** "n answers: 200 ×n from v1, v2" */
export function summarize(answers: Answer[]): string {
  const byKey = new Map<string, number>();
  for (const a of answers) {
    const k = a.status === 200 ? `200 ${a.version}` : a.status === 0 ? `error` : `${a.status}`;
    byKey.set(k, (byKey.get(k) ?? 0) + 1);
  }
  return `${answers.length} answers: ${[...byKey].map(([k, n]) => `${k} ×${n}`).join(', ')}`;
}
