import { gzipSync } from 'node:zlib';
import { DeleteObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import type { S3Event } from 'aws-lambda';
import { parquetWriteBuffer } from 'hyparquet-writer';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { DynamoRegistry } from '../../functions/adapters/dynamo-registry';
import { adminRouter } from '../../functions/admin/handler';
import { createBuildHandler } from '../../functions/builder/handler';
import { loadConfig } from '../../functions/common/config';
import type { HttpEvent } from '../../functions/common/http';
import { pointerNotifier } from '../../functions/common/pointer-notifier';
import type { HandlerDeps } from '../../functions/common/wiring';
import { activateVersion } from '../../functions/core/activation';
import { type EventPublisher, silentLog } from '../../functions/core/ports';
import { BUILD_TIMEOUT_MS, fakeContext } from '../../local/http-adapter';
import { clusteredVectors, jsonlRows, mulberry32 } from '../../local/synthetic';
import { freshTable, testDynamo, testS3 } from '../support/clients';
import { type TestStack, testStack } from '../support/local';
import { exactIds, exactKnn, expectExactNeighbours, parseJsonl } from '../support/oracle';

const DIMS = 12;
const N = 600;
const data = clusteredVectors(N, DIMS, 8, 11);
const ids = Array.from({ length: N }, (_, i) => `id-${i}`);
const rowsOf = (i: number) => Array.from(data.vectors.subarray(i * DIMS, (i + 1) * DIMS));
const goodJsonl = jsonlRows(ids, data.vectors, DIMS, (i) => ({ n: i }));
/** The published rows, as the oracle reads them. */
const good = parseJsonl(goodJsonl);

function parquet(): Buffer {
  const ab = parquetWriteBuffer({
    schema: [
      { name: 'root', num_children: 3 },
      { name: 'id', type: 'BYTE_ARRAY', converted_type: 'UTF8', repetition_type: 'REQUIRED' },
      { name: 'vector', repetition_type: 'OPTIONAL', converted_type: 'LIST', num_children: 1 },
      { name: 'list', repetition_type: 'REPEATED', num_children: 1 },
      { name: 'element', type: 'FLOAT', repetition_type: 'OPTIONAL' },
      { name: 'n', type: 'INT32', repetition_type: 'OPTIONAL' },
    ],
    columnData: [
      { name: 'id', data: ids },
      { name: 'vector', data: ids.map((_, i) => rowsOf(i)) },
      { name: 'n', data: ids.map((_, i) => i) },
    ],
    codec: 'SNAPPY',
  });
  return Buffer.from(ab);
}

describe('build function: formats, refusals and the quality gate', () => {
  let deps: HandlerDeps;
  let registry: DynamoRegistry;
  let seq = 0;
  const published: { type: string; detail: Record<string, unknown> }[] = [];
  const events: EventPublisher = {
    publish: async (type, detail) => {
      published.push({ type, detail });
    },
  };

  beforeAll(async () => {
    const dynamo = testDynamo('dynalite');
    const table = await freshTable(dynamo, 'build');
    deps = {
      config: loadConfig({
        VICINITY_BUCKET: inject('bucket'),
        VICINITY_TABLE: table,
        VICINITY_FILE_WAIT_MS: '1500',
        VICINITY_MAX_LINE_BYTES: '4096',
        VICINITY_QUALITY_SAMPLE: '60',
        VICINITY_RETENTION_GRACE_MS: '0',
      }),
      s3: testS3(),
      dynamo,
    };
    registry = new DynamoRegistry(dynamo, table);
  });

  async function publish(
    space: string,
    files: Record<string, string | Buffer>,
    release: unknown,
    delayed?: Record<string, string>,
  ) {
    const name = `r${++seq}`;
    const prefix = `incoming/${space}/${name}/`;
    const put = (k: string, body: string | Buffer) =>
      deps.s3.send(new PutObjectCommand({ Bucket: inject('bucket'), Key: prefix + k, Body: body }));
    for (const [k, v] of Object.entries(files)) await put(k, v);
    await put('release.json', typeof release === 'string' ? release : JSON.stringify(release));
    const event = {
      Records: [
        {
          eventName: 'ObjectCreated:Put',
          s3: { object: { key: `${prefix}release.json`, sequencer: `s${seq}` } },
        },
      ],
    } as unknown as S3Event;
    // A delayed file is uploaded once the builder has looked for it and not found it (it then waits).
    const s3 = delayed ? testS3() : deps.s3;
    const delayedKeys = new Set(Object.keys(delayed ?? {}).map((k) => prefix + k));
    let sawMissing = () => {};
    const looked = new Promise<void>((ok) => {
      sawMissing = ok;
    });
    if (delayed)
      s3.middlewareStack.add(
        (next, context) => async (args) => {
          try {
            return await next(args);
          } catch (err) {
            const key = (args.input as { Key?: string }).Key ?? '';
            if (context.commandName === 'HeadObjectCommand' && delayedKeys.has(key)) sawMissing();
            throw err;
          }
        },
        { step: 'initialize', name: 'seesDelayedFileMissing' },
      );
    const building = createBuildHandler({ ...deps, s3, events })(
      event,
      fakeContext('build', `t${seq}`, BUILD_TIMEOUT_MS),
    );
    if (delayed) {
      await Promise.race([looked, building]);
      for (const [k, v] of Object.entries(delayed)) await put(k, v);
    }
    const [outcome] = await building.finally(() => {
      if (delayed) s3.destroy();
    });
    return outcome!;
  }

  const jsonl = (extra: Record<string, unknown> = {}) => ({
    collections: { items: { file: 'items.jsonl', metric: 'cosine', ...extra } },
  });

  it('waits for a collection file that arrives after release.json', async () => {
    const o = await publish('late-file', {}, jsonl(), { 'items.jsonl': goodJsonl });
    expect(o).toMatchObject({ status: 'READY', version: 'v1' });
  });

  const lines = goodJsonl.trimEnd().split('\n');
  const withLine = (n: number, text: string) => {
    const copy = [...lines];
    copy[n - 1] = text;
    return `${copy.join('\n')}\n`;
  };
  const vec = (v: unknown[]) => JSON.stringify({ id: 'bad', vector: v });

  it.each<[string, Record<string, string | Buffer>, unknown, RegExp]>([
    [
      'a vector of the wrong length',
      { 'items.jsonl': withLine(7, vec([1, 2, 3])) },
      jsonl(),
      /items\.jsonl:7:.*3 values/,
    ],
    [
      'a non-finite number',
      { 'items.jsonl': withLine(3, vec([...Array(DIMS - 1).fill(1), 'NaN'])) },
      jsonl(),
      /items\.jsonl:3:/,
    ],
    [
      'a duplicate id',
      { 'items.jsonl': withLine(9, JSON.stringify({ id: 'id-0', vector: rowsOf(0) })) },
      jsonl(),
      /items\.jsonl:9:.*duplicate id "id-0".*items\.jsonl:1/,
    ],
    [
      'an empty id',
      { 'items.jsonl': withLine(2, JSON.stringify({ id: '', vector: rowsOf(0) })) },
      jsonl(),
      /items\.jsonl:2:.*empty/,
    ],
    [
      'an over-long id',
      { 'items.jsonl': withLine(2, JSON.stringify({ id: 'x'.repeat(257), vector: rowsOf(0) })) },
      jsonl(),
      /items\.jsonl:2:.*257/,
    ],
    [
      'malformed JSON',
      { 'items.jsonl': withLine(4, '{"id": "a", "vector": [1,') },
      jsonl(),
      /items\.jsonl:4:/,
    ],
    [
      'bad UTF-8',
      {
        'items.jsonl': Buffer.concat([
          Buffer.from(withLine(5, '{"id":"XX","vector":[]}').split('XX')[0]!),
          Buffer.from([0xff, 0xfe]),
          Buffer.from(withLine(5, '{"id":"XX","vector":[]}').split('XX')[1]!),
        ]),
      },
      jsonl(),
      /items\.jsonl:5:.*UTF-8/,
    ],
    [
      'a line over the configured limit',
      {
        'items.jsonl': withLine(
          6,
          JSON.stringify({ id: 'big', vector: rowsOf(0), metadata: { pad: 'x'.repeat(5000) } }),
        ),
      },
      jsonl(),
      /items\.jsonl:6:/,
    ],
    [
      'a zero vector under cosine',
      { 'items.jsonl': withLine(8, vec(Array(DIMS).fill(0))) },
      jsonl(),
      /items\.jsonl:8:.*zero/,
    ],
    ['an empty collection', { 'items.jsonl': '' }, jsonl(), /empty/],
    ['a missing file', {}, jsonl(), /items\.jsonl: named in release\.json but not in the release folder/],
    [
      'an unknown metric',
      { 'items.jsonl': goodJsonl },
      { collections: { items: { file: 'items.jsonl', metric: 'hamming' } } },
      /release\.json: collections\.items\.metric/,
    ],
    [
      'release.json that is not JSON',
      { 'items.jsonl': goodJsonl },
      '{"collections":',
      /release\.json: not valid JSON/,
    ],
    [
      'release.json without collections',
      { 'items.jsonl': goodJsonl },
      { activate: true },
      /release\.json: collections/,
    ],
    [
      'malformed Parquet',
      { 'items.parquet': Buffer.from('PAR1 this is not parquet at all PAR1') },
      { collections: { items: { file: 'items.parquet', metric: 'cosine' } } },
      /items\.parquet/,
    ],
  ])(
    'refuses %s: FAILED with the reason, and the active version stays',
    async (_what, files, release, reason) => {
      const space = `refuse-${++seq}`;
      const first = await publish(space, { 'items.jsonl': goodJsonl }, jsonl());
      expect(first.status).toBe('READY');
      const o = await publish(space, files, release);
      expect(o.status).toBe('FAILED');
      const record = await registry.getVersion(space, o.version);
      expect(record?.status).toBe('FAILED');
      expect(record?.reason).toMatch(reason);
      expect(await registry.getPointer(space)).toMatchObject({ version: 'v1', generation: 1 });
    },
  );

  it('reports the first problems and the count of all of them', async () => {
    const many = lines.map((l, i) => (i % 50 === 10 ? vec([1]) : l)).join('\n');
    const o = await publish('many', { 'items.jsonl': many }, jsonl());
    const record = await registry.getVersion('many', o.version);
    expect(record?.problemCount).toBe(12);
    expect(record?.problems).toHaveLength(10);
    expect(record?.reason).toMatch(/and 2 more problems/);
  });

  it('fails a release whose index parameters cannot reach the recall threshold', async () => {
    const o = await publish('gate', { 'items.jsonl': goodJsonl }, jsonl({ M: 2, efConstruction: 10, ef: 1 }));
    expect(o.status).toBe('FAILED');
    const record = await registry.getVersion('gate', o.version);
    expect(record?.reason).toMatch(/recall@10 0\.\d+ is below the minimum 0\.95.*M=2/);
  });

  it('records recall, and the overlap with the version it replaces', async () => {
    await publish('overlap', { 'items.jsonl': goodJsonl }, jsonl());
    const o = await publish('overlap', { 'items.jsonl': goodJsonl }, jsonl());
    const record = await registry.getVersion('overlap', o.version);
    expect(record?.collections?.items?.recallAt10).toBeGreaterThanOrEqual(0.95);
    // Same vectors, same answers: the model did not change.
    expect(record?.collections?.items?.overlapAt10).toBeGreaterThan(0.95);
    expect(record?.collections?.items?.overlapWith).toBe('v1');
  });

  it('records an overlap below 1, near the exact one, when half the vectors change', async () => {
    // Break seen: functions/builder/quality-gate.ts comparing the new exact lists with themselves
    // (`overlapAt(truth ids, truth ids, k)` instead of the previous version's answers) — overlap 1, fails here.
    const other = clusteredVectors(N, DIMS, 8, 77);
    const changed = Float32Array.from(data.vectors);
    // A random half (not every other row: the build samples rows at a fixed stride, which would see only
    // changed or only unchanged items).
    const rand = mulberry32(78);
    for (let r = 0; r < N; r++)
      if (rand() < 0.5) changed.set(other.vectors.subarray(r * DIMS, (r + 1) * DIMS), r * DIMS);
    const changedJsonl = jsonlRows(ids, changed, DIMS, (i) => ({ n: i }));
    const space = 'overlap-changed';
    await publish(space, { 'items.jsonl': goodJsonl }, jsonl());
    const o = await publish(space, { 'items.jsonl': changedJsonl }, jsonl());
    expect(o).toMatchObject({ status: 'READY', version: 'v2' });
    const items = (await registry.getVersion(space, 'v2'))?.collections?.items;
    expect(items?.overlapWith).toBe('v1');
    // What overlap@10 is over every item, by the oracle: each item's 10 nearest in v1 against those in v2.
    const now = parseJsonl(changedJsonl);
    const top10 = (rows: number[][], i: number) =>
      exactIds('cosine', rows, ids, rows[i] as number[])
        .filter((id) => id !== ids[i])
        .slice(0, 10);
    let sum = 0;
    for (let i = 0; i < N; i++) {
      const before = new Set(top10(good.rows, i));
      sum += top10(now.rows, i).filter((id) => before.has(id)).length / 10;
    }
    const expected = sum / N;
    expect(expected).toBeLessThan(0.8);
    expect(items?.overlapAt10).toBeLessThan(1);
    // The build samples 60 items (VICINITY_QUALITY_SAMPLE): an estimate of the same mean.
    expect(Math.abs((items?.overlapAt10 as number) - expected)).toBeLessThan(0.15);
  });

  it('records a minOverlap gate it could not apply, when the previous snapshot is unreadable', async () => {
    const space = 'overlap-unreadable';
    const first = await publish(space, { 'items.jsonl': goodJsonl }, jsonl());
    expect(first).toMatchObject({ status: 'READY', version: 'v1' });
    // A first version with no minOverlap asked has nothing to report.
    expect((await registry.getVersion(space, 'v1'))?.collections?.items?.overlapSkipped).toBeUndefined();
    await deps.s3.send(
      new DeleteObjectCommand({
        Bucket: inject('bucket'),
        Key: `snapshots/${space}/v1/items/seg-0/index.hnsw`,
      }),
    );
    const o = await publish(
      space,
      { 'items.jsonl': goodJsonl },
      { ...jsonl(), quality: { minOverlap: 0.9 } },
    );
    // The gate is not a reason to refuse the release, but it must not pass silently either.
    expect(o).toMatchObject({ status: 'READY', version: 'v2' });
    const items = (await registry.getVersion(space, o.version))?.collections?.items;
    expect(items?.overlapAt10).toBeUndefined();
    expect(items?.overlapSkipped).toMatch(/snapshot of v1 collection items could not be read.*missing/);
  });

  it('tells every pointer move the same way (build, API, CLI), and a no-op activation not at all', async () => {
    const space = 'moves';
    await publish(space, { 'items.jsonl': goodJsonl }, jsonl());
    await publish(space, { 'items.jsonl': goodJsonl }, jsonl());
    const notifier = pointerNotifier({ log: silentLog, events });
    const admin = adminRouter(registry, notifier);
    const post = (action: string, body: unknown) =>
      admin({
        rawPath: `/v1/spaces/${space}/${action}`,
        requestContext: { http: { method: 'POST' } },
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
      } as unknown as HttpEvent);
    expect((await post('rollback', { expectedGeneration: 2 })).statusCode).toBe(200);
    await activateVersion(registry, { space, version: 'v2', expectedGeneration: 3, by: 'cli' }, notifier);
    // Already active: nothing moved, nothing to tell.
    expect((await post('activate', { version: 'v2', expectedGeneration: 4 })).statusCode).toBe(200);
    const moves = published
      .filter((e) => e.type === 'PointerMoved' && e.detail.space === space)
      .map((e) => [e.detail.version, e.detail.by, (e.detail.pointer as { generation: number }).generation]);
    expect(moves).toEqual([
      ['v1', 'build', 1],
      ['v2', 'build', 2],
      ['v1', 'api', 3],
      ['v2', 'cli', 4],
    ]);
  });
});

describe('build function: every input format gives the same answers', () => {
  let s: TestStack;
  beforeAll(async () => {
    s = await testStack();
    const f32 = Buffer.from(data.vectors.buffer, data.vectors.byteOffset, data.vectors.byteLength);
    await s.publish(
      'fmt-jsonl',
      'r',
      { 'items.jsonl': goodJsonl },
      { collections: { items: { file: 'items.jsonl', metric: 'cosine' } } },
    );
    await s.publish(
      'fmt-gz',
      'r',
      { 'items.jsonl.gz': gzipSync(goodJsonl) },
      { collections: { items: { file: 'items.jsonl.gz', metric: 'cosine' } } },
    );
    await s.publish(
      'fmt-parquet',
      'r',
      { 'part-00000.parquet': parquet(), _SUCCESS: '', '.part-00000.parquet.crc': 'x' },
      { collections: { items: { files: ['part-00000.parquet', '_SUCCESS'], metric: 'cosine' } } },
    );
    await s.publish(
      'fmt-raw',
      'r',
      { 'items.f32': f32, 'items.ids': `${ids.join('\n')}\n` },
      {
        collections: { items: { vectors: 'items.f32', ids: 'items.ids', dims: DIMS, metric: 'cosine' } },
      },
    );
    await s.publish(
      'fmt-segments',
      'r',
      { 'items.jsonl': goodJsonl },
      {
        collections: { items: { file: 'items.jsonl', metric: 'cosine', segments: 3, ef: 300 } },
      },
    );
  });
  afterAll(async () => s?.dispose());

  it('answers identically from JSONL, JSONL.gz, Parquet and raw input', async () => {
    for (const id of ['id-0', 'id-123', 'id-599']) {
      const answers = await Promise.all(
        ['fmt-jsonl', 'fmt-gz', 'fmt-parquet', 'fmt-raw'].map(async (space) => {
          const r = await s.get(
            `/v1/spaces/${space}/collections/items/items/${id}/similar?k=10&includeMetadata=false`,
          );
          expect(r.status).toBe(200);
          return (r.body.results as { id: string; score: number }[]).map(
            (x) => `${x.id}:${x.score.toFixed(5)}`,
          );
        }),
      );
      for (const a of answers.slice(1)) expect(a).toEqual(answers[0]);
    }
  });

  it('searches all segments of a collection and merges them into the exact answer', async () => {
    const record = await s.get('/v1/spaces/fmt-segments/versions/v1');
    expect((record.body.collections as Record<string, { segments: number }>).items!.segments).toBe(3);
    for (const i of [5, 250, 590]) {
      const r = await s.get(`/v1/spaces/fmt-segments/collections/items/items/id-${i}/similar?k=10`);
      const exact = exactKnn('cosine', good.rows, ids, good.rows[i] as number[]).filter(
        (x) => x.id !== `id-${i}`,
      );
      expectExactNeighbours(
        (r.body.results as { id: string }[]).map((x) => x.id),
        exact,
        10,
        1e-5,
      );
    }
  });
});
