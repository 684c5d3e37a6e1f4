import { spawnSync } from 'node:child_process';
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
import { freshTable, testDynamo, testS3 } from '../support/clients';
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

describe('serving through switches (local HTTP server)', () => {
  let s: TestStack;
  beforeAll(async () => {
    s = await testStack({ pointerTtlMs: 20, retainVersions: 1, retentionGraceMs: 100 });
  });
  afterAll(async () => s?.dispose());

  it('never mixes versions while 4 clients query and the pointer switches back and forth 24 times', async () => {
    await s.publish('mix', 'a', mixing.A, twoCollections());
    await s.publish('mix', 'b', mixing.B, twoCollections());
    const names: Record<string, 'A' | 'B'> = { v1: 'A', v2: 'B' };
    let switching = true;
    const seen = new Set<string>();
    let answers = 0;
    const mixed: string[] = [];
    const client = async (c: number) => {
      for (let n = 0; switching; n++) {
        const u = (c * 7 + n) % 40;
        const r = await s.get(`/v1/spaces/mix/collections/users/items/u${u}/similar?target=tracks&k=10`);
        expect(r.status).toBe(200);
        const version = r.body.version as string;
        expect(r.headers.get('vicinity-version')).toBe(version);
        const ids = (r.body.results as { id: string }[]).map((x) => x.id);
        expect(ids).toHaveLength(10);
        seen.add(version);
        answers++;
        if (!ids.every((id) => mixing.consistent(names[version]!, u, id)))
          mixed.push(`${version} u${u}: ${ids}`);
      }
    };
    const switcher = async () => {
      let generation = ((await s.get('/v1/spaces/mix')).body.active as { generation: number }).generation;
      for (let i = 0; i < 24; i++) {
        const version = generation % 2 === 0 ? 'v1' : 'v2';
        const r = await s.post('/v1/spaces/mix/activate', { version, expectedGeneration: generation });
        expect(r.status).toBe(200);
        generation = (r.body.pointer as { generation: number }).generation;
        await new Promise((ok) => setTimeout(ok, 60));
      }
      switching = false;
    };
    await Promise.all([switcher(), client(0), client(1), client(2), client(3)]);
    expect(mixed).toEqual([]);
    expect([...seen].sort()).toEqual(['v1', 'v2']);
    expect(answers).toBeGreaterThan(100);
  });

  it('keeps answering from the old version when the one switched to has a corrupted file', async () => {
    await s.publish('broken', 'r1', simpleRelease('a', 1), tracksOnly());
    await s.publish('broken', 'r2', simpleRelease('b', 2), tracksOnly(false));
    expect((await s.get('/v1/spaces/broken/collections/tracks/items/a1/similar')).body.version).toBe('v1');
    // Same size, different bytes: only the sha256 can tell.
    const key = 'snapshots/broken/v2/tracks/seg-0/index.hnsw';
    const obj = await s.deps.s3.send(new GetObjectCommand({ Bucket: s.info.bucket, Key: key }));
    const bytes = Buffer.from(await obj.Body!.transformToByteArray());
    for (let i = 200; i < 260; i++) bytes[i] = (bytes[i]! + 1) % 256;
    await s.deps.s3.send(new PutObjectCommand({ Bucket: s.info.bucket, Key: key, Body: bytes }));
    const act = await s.post('/v1/spaces/broken/activate', { version: 'v2', expectedGeneration: 1 });
    expect(act.status).toBe(200);
    await new Promise((ok) => setTimeout(ok, 50));
    const r = await s.get('/v1/spaces/broken/collections/tracks/items/a1/similar?consistency=strong');
    expect(r.status).toBe(200);
    expect(r.body.version).toBe('v1');
    const pinned = await s.get('/v1/spaces/broken/collections/tracks/items/b1/similar?version=v2');
    expect(pinned.status).toBe(503);
    expect(pinned.headers.get('retry-after')).toBeTruthy();
    expect(pinned.headers.get('content-type')).toBe('application/problem+json');
    expect((await s.get('/v1/health')).status).toBe(200);
  });

  it('records a bad release as FAILED with file and line, and the active version keeps serving', async () => {
    await s.publish('bad', 'r1', simpleRelease('a', 1), tracksOnly());
    const rows = simpleRelease('b', 2)['tracks.jsonl'].split('\n');
    rows[4] = JSON.stringify({ id: 'short', vector: [1, 2, 3] });
    await s.publish('bad', 'r2', { 'tracks.jsonl': rows.join('\n') }, tracksOnly());
    const v2 = await s.get('/v1/spaces/bad/versions/v2');
    expect(v2.body.status).toBe('FAILED');
    expect(v2.body.reason).toMatch(/tracks\.jsonl:5/);
    expect((await s.get('/v1/spaces/bad/collections/tracks/items/a1/similar')).body.version).toBe('v1');
    const refused = await s.post('/v1/spaces/bad/activate', { version: 'v2', expectedGeneration: 1 });
    expect(refused.status).toBe(422);
    expect(refused.body.detail).toMatch(/FAILED/);
    const pinned = await s.get('/v1/spaces/bad/collections/tracks/items/b1/similar?version=v2');
    expect(pinned.status).toBe(404);
  });

  it('deletes snapshots beyond retention, keeping the active and previous versions', async () => {
    for (let i = 1; i <= 4; i++) await s.publish('ret', `r${i}`, simpleRelease(`x${i}-`, i), tracksOnly());
    const versions = (await s.get('/v1/spaces/ret/versions')).body.versions as {
      version: string;
      status: string;
    }[];
    expect(Object.fromEntries(versions.map((v) => [v.version, v.status]))).toEqual({
      v4: 'READY',
      v3: 'READY',
      v2: 'DELETED',
      v1: 'DELETED',
    });
    expect(await s.store.list('snapshots/ret/v1/')).toEqual([]);
    expect((await s.store.list('snapshots/ret/v3/')).length).toBeGreaterThan(0);
    expect((await s.get('/v1/spaces/ret/collections/tracks/items/x1-1/similar?version=v1')).status).toBe(404);
    const rollback = await s.post('/v1/spaces/ret/rollback', { expectedGeneration: 4 });
    expect(rollback.status).toBe(200);
    expect(rollback.body.pointer).toMatchObject({ version: 'v3', previous: 'v4' });
    const forward = await s.post('/v1/spaces/ret/rollback', { expectedGeneration: 5 });
    expect(forward.body.pointer).toMatchObject({ version: 'v4', previous: 'v3' });
  });
});

describe('release events, redelivery and crashes (build handler on the stand-ins)', () => {
  let deps: HandlerDeps;
  let registry: DynamoRegistry;
  let store: S3Store;
  let env: Record<string, string>;

  beforeAll(async () => {
    const dynamo = testDynamo('dynalite');
    const table = await freshTable(dynamo, 'atomic');
    env = {
      VICINITY_BUCKET: inject('bucket'),
      VICINITY_TABLE: table,
      AWS_REGION: 'us-east-1',
      AWS_ENDPOINT_URL_S3: inject('s3Endpoint'),
      AWS_ENDPOINT_URL_DYNAMODB: inject('dynaliteEndpoint'),
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
    const event = await upload('dup', 'r1', simpleRelease('a', 1), tracksOnly());
    const outcomes = (await Promise.all([build(event), build(event), build(event)])).flat();
    expect(new Set(outcomes.map((o) => o.version))).toEqual(new Set(['v1']));
    expect(outcomes.filter((o) => o.status === 'READY' && o.built)).toHaveLength(1);
    const again = await build(event);
    expect(again[0]).toMatchObject({ status: 'READY', version: 'v1', built: false });
    const { versions } = await registry.listVersions('dup', 10);
    expect(versions.map((v) => v.version)).toEqual(['v1']);
    const p = await registry.getPointer('dup');
    expect(p).toMatchObject({ version: 'v1', generation: 1 });
  });

  it.each(['beforeReady', 'beforeActivate'])(
    'finishes a build that died %s when the event is redelivered: READY and active exactly once',
    async (point) => {
      const space = `crash-${point.toLowerCase()}`;
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
      // The dead builder's lease (1.5 s) must lapse before a redelivery may take over.
      await new Promise((ok) => setTimeout(ok, 1600));
      const [outcome] = await build(event);
      expect(outcome).toMatchObject({ status: 'READY', version: 'v1' });
      const [again] = await build(event);
      expect(again).toMatchObject({ status: 'READY', version: 'v1', built: false });
      expect(await registry.getPointer(space)).toMatchObject({ version: 'v1', generation: 1 });
      expect((await registry.listHistory(space, 10)).length).toBe(1);
    },
  );

  it('keeps the newer release active when an older one finishes after it', async () => {
    const older = await upload('late', 'r1', simpleRelease('a', 1), tracksOnly());
    const newer = await upload('late', 'r2', simpleRelease('b', 2), tracksOnly());
    // r1 was claimed first (v1) but its build is slow: r2 (v2) builds and activates before it.
    await registry.claimRelease(
      { space: 'late', release: 'r1', key: 'incoming/late/r1/release.json', sequencer: 'r1-seq' },
      new Date(),
    );
    expect((await build(newer))[0]).toMatchObject({ version: 'v2', status: 'READY' });
    const [late] = await build(older);
    expect(late).toMatchObject({ version: 'v1', status: 'READY', activation: { activated: false } });
    expect(await registry.getPointer('late')).toMatchObject({ version: 'v2', generation: 1 });
  });
});
