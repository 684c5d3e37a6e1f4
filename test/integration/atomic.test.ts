import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import type { S3Event } from 'aws-lambda';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { DynamoRegistry } from '../../functions/adapters/dynamo-registry';
import { S3Store } from '../../functions/adapters/s3-store';
import { createBuildHandler } from '../../functions/builder/handler';
import { loadConfig } from '../../functions/common/config';
import type { HandlerDeps } from '../../functions/common/wiring';
import { fakeContext } from '../../local/http-adapter';
import { LOCAL_CREDENTIALS } from '../../local/standins';
import { clusteredVectors, jsonlRows, mulberry32 } from '../../local/synthetic';
import { type DynamoBackend, freshTable, testDynamo, testS3 } from '../support/clients';
import { type TestStack, testStack } from '../support/local';

const DIMS = 8;

/** Rows around unit axis `axis` of 4, with small deterministic noise so there are no ties. */
function around(axis: (i: number) => number, n: number, seed: number): Float32Array {
  const rand = mulberry32(seed);
  const v = new Float32Array(n * DIMS);
  for (let i = 0; i < n; i++) {
    for (let d = 0; d < DIMS; d++) v[i * DIMS + d] = 0.08 * (rand() - 0.5);
    v[i * DIMS + axis(i)] = 1;
  }
  return v;
}

const trackIds = Array.from({ length: 100 }, (_, i) => `t${i}`);
const userIds = Array.from({ length: 40 }, (_, i) => `u${i}`);

/**
 * Two releases with the same ids in which every mix is detectable: in A user u points at tracks with
 * i%4 = u%4; in B at tracks with ⌊i/25⌋ = (u+1)%4. A user vector of one against the tracks of the other
 * lands in a set that neither consistent version answers.
 */
const mixing = {
  A: {
    'users.jsonl': jsonlRows(
      userIds,
      around((u) => u % 4, 40, 1),
      DIMS,
    ),
    'tracks.jsonl': jsonlRows(
      trackIds,
      around((i) => i % 4, 100, 2),
      DIMS,
    ),
  },
  B: {
    'users.jsonl': jsonlRows(
      userIds,
      around((u) => (u + 1) % 4, 40, 3),
      DIMS,
    ),
    'tracks.jsonl': jsonlRows(
      trackIds,
      around((i) => Math.floor(i / 25), 100, 4),
      DIMS,
    ),
  },
  consistent(version: 'A' | 'B', u: number, id: string): boolean {
    const i = Number(id.slice(1));
    return version === 'A' ? i % 4 === u % 4 : Math.floor(i / 25) === (u + 1) % 4;
  },
};

const twoCollections = (activate = true) => ({
  collections: {
    users: { file: 'users.jsonl', metric: 'cosine' },
    tracks: { file: 'tracks.jsonl', metric: 'cosine' },
  },
  activate,
});

function simpleRelease(prefix: string, seed: number) {
  const t = clusteredVectors(200, DIMS, 4, seed);
  return {
    'tracks.jsonl': jsonlRows(
      Array.from({ length: 200 }, (_, i) => `${prefix}${i}`),
      t.vectors,
      DIMS,
    ),
  };
}
const tracksOnly = (activate = true) => ({
  collections: { tracks: { file: 'tracks.jsonl', metric: 'cosine' } },
  activate,
});

const BACKENDS: DynamoBackend[] = ['dynalite', 'dynamodb-local'];

/**
 * A space name no other test (or other file on the shared DynamoDB Local, whose stacks all use the
 * table `vicinity`) can have: each test runs alone, in any order.
 */
const unique = (name: string) => `${name}-${randomBytes(3).toString('hex')}`;

describe.each(BACKENDS)('serving through switches (local HTTP server, pointer on %s)', (backend) => {
  let s: TestStack;
  beforeAll(async () => {
    s = await testStack(
      { pointerTtlMs: 20, retainVersions: 1, retentionGraceMs: 100 },
      backend === 'dynamodb-local' ? inject('dynamoLocalEndpoint') : undefined,
    );
  });
  afterAll(async () => s?.dispose());

  it('never mixes versions while 4 clients query (similar and batch) and the pointer switches back and forth', async () => {
    // Break seen: functions/query/service.ts collection() loading `tracks` always from v1
    // (`cache.collection(r.space, name === 'tracks' ? 'v1' : r.version, name)`) — mixes, fails here.
    const mix = unique('mix');
    await s.publish(mix, 'a', mixing.A, twoCollections());
    await s.publish(mix, 'b', mixing.B, twoCollections());
    const names: Record<string, 'A' | 'B'> = { v1: 'A', v2: 'B' };
    let switching = true;
    const seen = new Set<string>();
    const mixed: string[] = [];
    const check = (version: string, u: number, results: unknown) => {
      const ids = (results as { id: string }[]).map((x) => x.id);
      expect(ids).toHaveLength(10);
      seen.add(version);
      if (!ids.every((id) => mixing.consistent(names[version]!, u, id)))
        mixed.push(`${version} u${u}: ${ids}`);
    };
    const client = async (c: number) => {
      try {
        for (let n = 0; switching; n++) {
          const u = (c * 7 + n) % 40;
          if (n % 2 === 0) {
            const r = await s.get(
              `/v1/spaces/${mix}/collections/users/items/u${u}/similar?target=tracks&k=10`,
            );
            expect(r.status).toBe(200);
            expect(r.headers.get('vicinity-version')).toBe(r.body.version);
            check(r.body.version as string, u, r.body.results);
          } else {
            // A batch: three users, one version for all of them.
            const us = [u, (u + 13) % 40, (u + 26) % 40];
            const r = await s.post(`/v1/spaces/${mix}/batch`, {
              queries: us.map((x) => ({ collection: 'users', item: `u${x}`, target: 'tracks', k: 10 })),
            });
            expect(r.status).toBe(200);
            const version = r.body.version as string;
            expect(r.headers.get('vicinity-version')).toBe(version);
            const entries = r.body.results as { status: number; results: unknown }[];
            expect(entries.map((e) => e.status)).toEqual([200, 200, 200]);
            for (const [i, e] of entries.entries()) check(version, us[i] as number, e.results);
          }
        }
      } finally {
        // A failing client stops the switcher too, so nothing runs on into the next test.
        switching = false;
      }
    };
    const switcher = async () => {
      try {
        let generation = ((await s.get(`/v1/spaces/${mix}`)).body.active as { generation: number })
          .generation;
        for (let i = 0; i < 24 && switching; i++) {
          const version = generation % 2 === 0 ? 'v1' : 'v2';
          const r = await s.post(`/v1/spaces/${mix}/activate`, { version, expectedGeneration: generation });
          expect(r.status).toBe(200);
          generation = (r.body.pointer as { generation: number }).generation;
          await new Promise((ok) => setTimeout(ok, 60));
        }
      } finally {
        // Always ends the clients' loops: a failing switcher must not leave them querying for 60 s.
        switching = false;
      }
    };
    const settled = await Promise.allSettled([switcher(), client(0), client(1), client(2), client(3)]);
    for (const r of settled) if (r.status === 'rejected') throw r.reason;
    expect(mixed).toEqual([]);
    // Both versions served during the run (no throughput asked: a slow machine answers less often).
    expect([...seen].sort()).toEqual(['v1', 'v2']);
  });

  it('keeps answering from the old version when the one switched to has a corrupted file', async () => {
    const broken = unique('broken');
    await s.publish(broken, 'r1', simpleRelease('a', 1), tracksOnly());
    await s.publish(broken, 'r2', simpleRelease('b', 2), tracksOnly(false));
    expect((await s.get(`/v1/spaces/${broken}/collections/tracks/items/a1/similar`)).body.version).toBe('v1');
    // Same size, different bytes: only the sha256 can tell.
    const key = `snapshots/${broken}/v2/tracks/seg-0/index.hnsw`;
    const obj = await s.deps.s3.send(new GetObjectCommand({ Bucket: s.info.bucket, Key: key }));
    const bytes = Buffer.from(await obj.Body!.transformToByteArray());
    for (let i = 200; i < 260; i++) bytes[i] = (bytes[i]! + 1) % 256;
    await s.deps.s3.send(new PutObjectCommand({ Bucket: s.info.bucket, Key: key, Body: bytes }));
    const act = await s.post(`/v1/spaces/${broken}/activate`, { version: 'v2', expectedGeneration: 1 });
    expect(act.status).toBe(200);
    const r = await s.get(`/v1/spaces/${broken}/collections/tracks/items/a1/similar?consistency=strong`);
    expect(r.status).toBe(200);
    expect(r.body.version).toBe('v1');
    const pinned = await s.get(`/v1/spaces/${broken}/collections/tracks/items/b1/similar?version=v2`);
    expect(pinned.status).toBe(503);
    expect(pinned.headers.get('retry-after')).toBeTruthy();
    expect(pinned.headers.get('content-type')).toBe('application/problem+json');
    expect((await s.get('/v1/health')).status).toBe(200);
  });

  it('records a bad release as FAILED with file and line, and the active version keeps serving', async () => {
    const bad = unique('bad');
    await s.publish(bad, 'r1', simpleRelease('a', 1), tracksOnly());
    const rows = simpleRelease('b', 2)['tracks.jsonl'].split('\n');
    rows[4] = JSON.stringify({ id: 'short', vector: [1, 2, 3] });
    await s.publish(bad, 'r2', { 'tracks.jsonl': rows.join('\n') }, tracksOnly());
    const v2 = await s.get(`/v1/spaces/${bad}/versions/v2`);
    expect(v2.body.status).toBe('FAILED');
    expect(v2.body.reason).toMatch(/tracks\.jsonl:5/);
    expect((await s.get(`/v1/spaces/${bad}/collections/tracks/items/a1/similar`)).body.version).toBe('v1');
    const refused = await s.post(`/v1/spaces/${bad}/activate`, { version: 'v2', expectedGeneration: 1 });
    expect(refused.status).toBe(422);
    expect(refused.body.detail).toMatch(/FAILED/);
    const pinned = await s.get(`/v1/spaces/${bad}/collections/tracks/items/b1/similar?version=v2`);
    expect(pinned.status).toBe(404);
  });

  it('deletes snapshots beyond retention, keeping the active and previous versions', async () => {
    const ret = unique('ret');
    for (let i = 1; i <= 4; i++) await s.publish(ret, `r${i}`, simpleRelease(`x${i}-`, i), tracksOnly());
    const versions = (await s.get(`/v1/spaces/${ret}/versions`)).body.versions as {
      version: string;
      status: string;
    }[];
    expect(Object.fromEntries(versions.map((v) => [v.version, v.status]))).toEqual({
      v4: 'READY',
      v3: 'READY',
      v2: 'DELETED',
      v1: 'DELETED',
    });
    expect(await s.store.list(`snapshots/${ret}/v1/`)).toEqual([]);
    expect((await s.store.list(`snapshots/${ret}/v3/`)).length).toBeGreaterThan(0);
    expect((await s.get(`/v1/spaces/${ret}/collections/tracks/items/x1-1/similar?version=v1`)).status).toBe(
      404,
    );
    const rollback = await s.post(`/v1/spaces/${ret}/rollback`, { expectedGeneration: 4 });
    expect(rollback.status).toBe(200);
    expect(rollback.body.pointer).toMatchObject({ version: 'v3', previous: 'v4' });
    const forward = await s.post(`/v1/spaces/${ret}/rollback`, { expectedGeneration: 5 });
    expect(forward.body.pointer).toMatchObject({ version: 'v4', previous: 'v3' });
  });

  it('keeps an old active version and its previous one when newer READY versions pile up', async () => {
    // The active version is not the newest here, so only an explicit "keep the active version" spares it.
    // Break seen: functions/builder/retention.ts `keep` without `pointer.version` — the grace re-check restores
    // v1 to READY, but its statusChangedAt moved: fails here; without `pointer.previous` likewise for v2.
    const ret = unique('old-active');
    await s.publish(ret, 'r1', simpleRelease('o1-', 1), tracksOnly());
    await s.publish(ret, 'r2', simpleRelease('o2-', 2), tracksOnly());
    const back = await s.post(`/v1/spaces/${ret}/activate`, { version: 'v1', expectedGeneration: 2 });
    expect(back.body.pointer).toMatchObject({ version: 'v1', previous: 'v2', generation: 3 });
    const registry = new DynamoRegistry(s.deps.dynamo, s.info.table);
    const changed = async () =>
      Promise.all(
        ['v1', 'v2'].map(async (v) => {
          const r = (await registry.getVersion(ret, v)) as
            | { status?: string; statusChangedAt?: string }
            | undefined;
          return [r?.status, r?.statusChangedAt ?? 'never'];
        }),
      );
    const before = await changed();
    for (let i = 3; i <= 5; i++) await s.publish(ret, `r${i}`, simpleRelease(`o${i}-`, i), tracksOnly(false));
    // Never even marked DELETED for a moment (the grace-period re-check would restore them to READY, but an
    // activation or a pinned read in between would have been refused).
    expect(before.map(([status]) => status)).toEqual(['READY', 'READY']);
    expect(await changed()).toEqual(before);
    const versions = (await s.get(`/v1/spaces/${ret}/versions`)).body.versions as {
      version: string;
      status: string;
    }[];
    // retainVersions 1: the newest READY (v5), plus the active v1 and the previous v2.
    expect(Object.fromEntries(versions.map((v) => [v.version, v.status]))).toEqual({
      v5: 'READY',
      v4: 'DELETED',
      v3: 'DELETED',
      v2: 'READY',
      v1: 'READY',
    });
    expect(await s.store.list(`snapshots/${ret}/v3/`)).toEqual([]);
    expect(await s.store.list(`snapshots/${ret}/v4/`)).toEqual([]);
    for (const v of ['v1', 'v2', 'v5'])
      expect((await s.store.list(`snapshots/${ret}/${v}/`)).length, v).toBeGreaterThan(0);
    // The active version still answers, from its files, as does a pin to the previous one.
    await s.query.cache.forget(ret, 'v1');
    const active = await s.get(`/v1/spaces/${ret}/collections/tracks/items/o1-1/similar?consistency=strong`);
    expect(active.status).toBe(200);
    expect(active.body.version).toBe('v1');
    const previous = await s.get(`/v1/spaces/${ret}/collections/tracks/items/o2-1/similar?version=v2`);
    expect(previous.status).toBe(200);
    expect((await s.get(`/v1/spaces/${ret}/collections/tracks/items/o3-1/similar?version=v3`)).status).toBe(
      404,
    );
  });
});

describe.each(BACKENDS)(
  'release events, redelivery and crashes (build handler, registry on %s)',
  (backend) => {
    let deps: HandlerDeps;
    let registry: DynamoRegistry;
    let store: S3Store;
    let env: Record<string, string>;

    beforeAll(async () => {
      const dynamo = testDynamo(backend);
      const table = await freshTable(dynamo, `atomic-${backend}`);
      env = {
        VICINITY_BUCKET: inject('bucket'),
        VICINITY_TABLE: table,
        AWS_REGION: 'us-east-1',
        AWS_ENDPOINT_URL_S3: inject('s3Endpoint'),
        AWS_ENDPOINT_URL_DYNAMODB: inject(
          backend === 'dynalite' ? 'dynaliteEndpoint' : 'dynamoLocalEndpoint',
        ),
        AWS_ACCESS_KEY_ID: LOCAL_CREDENTIALS.accessKeyId,
        AWS_SECRET_ACCESS_KEY: LOCAL_CREDENTIALS.secretAccessKey,
        VICINITY_LEASE_MS: '1500',
        VICINITY_FILE_WAIT_MS: '1000',
        VICINITY_QUALITY_SAMPLE: '50',
        VICINITY_RETENTION_GRACE_MS: '0',
      };
      deps = { config: loadConfig(env), s3: testS3(), dynamo };
      registry = new DynamoRegistry(dynamo, table);
      store = new S3Store(deps.s3, inject('bucket'));
    });

    async function upload(
      space: string,
      release: string,
      files: Record<string, string>,
      json: unknown,
    ): Promise<S3Event> {
      for (const [name, text] of Object.entries(files))
        await store.putText(`incoming/${space}/${release}/${name}`, text);
      const key = `incoming/${space}/${release}/release.json`;
      await store.putText(key, JSON.stringify(json));
      const etag = (await store.head(key))?.etag;
      return {
        Records: [
          {
            eventName: 'ObjectCreated:Put',
            s3: {
              bucket: { name: inject('bucket') },
              object: { key, sequencer: `${release}-seq`, eTag: etag },
            },
          },
        ],
      } as unknown as S3Event;
    }

    const build = (event: S3Event, extra: Partial<Parameters<typeof createBuildHandler>[0]> = {}) =>
      createBuildHandler({ ...deps, ...extra })(event, fakeContext('build', 'test'));

    it('resolves the same release.json event, delivered twice and concurrently, to one version built once', async () => {
      const dup = unique('dup');
      const event = await upload(dup, 'r1', simpleRelease('a', 1), tracksOnly());
      const outcomes = (await Promise.all([build(event), build(event), build(event)])).flat();
      // One version for all three; which number it gets depends on which claim wins the race (a loser's
      // number is a gap: on DynamoDB Local the first version is often v2).
      const versions = new Set(outcomes.map((o) => o.version));
      expect(versions.size).toBe(1);
      const [version] = [...versions] as [string];
      expect(version).toMatch(/^v[1-3]$/);
      expect(outcomes.filter((o) => o.status === 'READY' && o.built)).toHaveLength(1);
      const again = await build(event);
      expect(again[0]).toMatchObject({ status: 'READY', version, built: false });
      const listed = await registry.listVersions(dup, 10);
      expect(listed.versions.map((v) => v.version)).toEqual([version]);
      const p = await registry.getPointer(dup);
      expect(p).toMatchObject({ version, generation: 1 });
    });

    it.each(['beforeReady', 'beforeActivate'])(
      'finishes a build that died %s when the event is redelivered: READY and active exactly once',
      async (point) => {
        const space = unique(`crash-${point.toLowerCase()}`);
        const event = await upload(space, 'r1', simpleRelease('a', 1), tracksOnly());
        const child = spawnSync(
          process.execPath,
          ['--import', 'tsx', 'test/support/crash-build.ts', JSON.stringify(event), point],
          {
            env: { ...process.env, ...env, POWERTOOLS_LOG_LEVEL: 'CRITICAL' },
            encoding: 'utf8',
            timeout: 60_000,
          },
        );
        expect(child.signal).toBe('SIGKILL');
        const v = await registry.getVersion(space, 'v1');
        expect(v?.status).toBe(point === 'beforeReady' ? 'BUILDING' : 'READY');
        expect((await registry.getPointer(space)).generation).toBe(0);
        // The dead builder's lease (1.5 s) must lapse before a redelivery may take over: the redelivery's
        // clock runs 2 s ahead instead of the test sleeping it out. (Broken by a lease that never lapses.)
        const [outcome] = await build(event, { now: () => new Date(Date.now() + 2_000) });
        expect(outcome).toMatchObject({ status: 'READY', version: 'v1' });
        const [again] = await build(event);
        expect(again).toMatchObject({ status: 'READY', version: 'v1', built: false });
        expect(await registry.getPointer(space)).toMatchObject({ version: 'v1', generation: 1 });
        expect((await registry.listHistory(space, 10)).length).toBe(1);
      },
    );

    it('keeps the newer release active when an older one finishes after it', async () => {
      const space = unique('late');
      const older = await upload(space, 'r1', simpleRelease('a', 1), tracksOnly());
      const newer = await upload(space, 'r2', simpleRelease('b', 2), tracksOnly());
      // r1 was claimed first (v1) but its build is slow: r2 (v2) builds and activates before it.
      await registry.claimRelease(
        { space, release: 'r1', key: `incoming/${space}/r1/release.json`, sequencer: 'r1-seq' },
        new Date(),
      );
      expect((await build(newer))[0]).toMatchObject({ version: 'v2', status: 'READY' });
      const [late] = await build(older);
      expect(late).toMatchObject({ version: 'v1', status: 'READY', activation: { activated: false } });
      expect(await registry.getPointer(space)).toMatchObject({ version: 'v2', generation: 1 });
    });
  },
);
