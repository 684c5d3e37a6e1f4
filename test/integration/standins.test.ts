import { type ChildProcess, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { ConditionalCheckFailedException, GetItemCommand, PutItemCommand } from '@aws-sdk/client-dynamodb';
import {
  DeleteObjectCommand,
  GetObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { afterAll, afterEach, describe, expect, inject, it } from 'vitest';
import { createDynamoClient, createS3Client } from '../../functions/adapters/aws-clients';
import {
  ensureBucket,
  ensureTable,
  LOCAL_CREDENTIALS,
  LOCAL_REGION,
  type S3EventBatch,
  type S3StandIn,
  startDynalite,
  startDynamoDbLocal,
  startS3,
} from '../../local/standins';
import { freshTable, testDynamo, testS3 } from '../support/clients';

const bucket = inject('bucket');
const cleanups: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  // Stand-ins started by a test must stop even when it fails, or their processes keep the run alive.
  await Promise.allSettled(cleanups.splice(0).map((c) => c()));
});

async function tempDir(prefix: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

async function bodyBytes(body: unknown): Promise<Buffer> {
  if (!(body instanceof Readable)) throw new Error('expected a Node stream body');
  const chunks: Buffer[] = [];
  for await (const chunk of body) chunks.push(Buffer.from(chunk as Uint8Array));
  return Buffer.concat(chunks);
}

/** True when the port can be bound on 127.0.0.1, i.e. nothing listens on it. */
async function canBind(port: number): Promise<boolean> {
  const server = createServer();
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => resolve());
    });
  } catch {
    return false;
  }
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return true;
}

describe('s3rver stand-in', () => {
  const s3 = testS3();
  afterAll(() => s3.destroy());

  it('round-trips a small object byte-exact, with an awkward key', async () => {
    const key = `roundtrip/${Date.now()}/with space+plus/é.bin`;
    const data = randomBytes(64 * 1024);
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: data }));
    const got = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
    expect(Buffer.compare(await bodyBytes(got.Body), data)).toBe(0);
  });

  it('round-trips a streamed PutObject byte-exact (the checksum trap)', async () => {
    // With the SDK's default checksums a stream body goes out aws-chunked with a trailing CRC, and
    // s3rver stores the framing too (this exact upload comes back 56 bytes longer). lib-storage's
    // Upload buffers its parts into Buffers, so only a stream-bodied PutObject/UploadPart exposes it.
    const key = `stream/${Date.now()}/put.bin`;
    const data = randomBytes(12 * 1024 * 1024 + 7);
    await s3.send(
      new PutObjectCommand({
        Bucket: bucket,
        Key: key,
        Body: Readable.from([data.subarray(0, 5_000_000), data.subarray(5_000_000)]),
        ContentLength: data.length,
      }),
    );
    const got = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
    expect(Buffer.compare(await bodyBytes(got.Body), data)).toBe(0);
  });

  it('round-trips a streamed multipart upload of ~12 MB byte-exact', async () => {
    const key = `multipart/${Date.now()}/big.bin`;
    const hash = createHash('sha256');
    let size = 0;
    // Unknown length: lib-storage must stream it in parts, as producers' large files are.
    async function* chunks() {
      for (let i = 0; i < 12; i++) {
        const chunk = randomBytes(i === 11 ? 1024 * 1024 + 12345 : 1024 * 1024);
        hash.update(chunk);
        size += chunk.length;
        yield chunk;
      }
    }
    const upload = new Upload({
      client: s3,
      params: { Bucket: bucket, Key: key, Body: Readable.from(chunks()) },
      partSize: 5 * 1024 * 1024,
      queueSize: 2,
    });
    let maxPart = 0;
    upload.on('httpUploadProgress', (p) => {
      maxPart = Math.max(maxPart, p.part ?? 0);
    });
    await upload.done();
    expect(maxPart).toBe(3);

    const got = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
    const bytes = await bodyBytes(got.Body);
    expect(bytes.length).toBe(size);
    expect(createHash('sha256').update(bytes).digest('hex')).toBe(hash.digest('hex'));
  });

  it('paginates ListObjectsV2 with MaxKeys 2 over 5 keys', async () => {
    const prefix = `list/${Date.now()}/`;
    const keys = ['a', 'b', 'c', 'd', 'e'].map((k) => `${prefix}${k}`);
    await Promise.all(keys.map((Key) => s3.send(new PutObjectCommand({ Bucket: bucket, Key, Body: Key }))));

    const pages: string[][] = [];
    let token: string | undefined;
    do {
      const page = await s3.send(
        new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, MaxKeys: 2, ContinuationToken: token }),
      );
      pages.push((page.Contents ?? []).map((o) => o.Key ?? ''));
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
      expect(pages.length).toBeLessThan(10);
    } while (token);

    expect(pages.map((p) => p.length)).toEqual([2, 2, 1]);
    expect(pages.flat()).toEqual(keys);
  });

  it('ensureBucket is idempotent', async () => {
    // Idempotent: a second call neither fails nor empties the bucket.
    // (An ensureBucket that deleted and recreated an existing bucket would lose `kept`.)
    await ensureBucket(s3, bucket);
    const name = `ensure-${Date.now()}`;
    await ensureBucket(s3, name);
    await s3.send(new PutObjectCommand({ Bucket: name, Key: 'kept', Body: 'still here' }));
    await ensureBucket(s3, name);
    const listed = await s3.send(new ListObjectsV2Command({ Bucket: name }));
    expect((listed.Contents ?? []).map((o) => o.Key)).toEqual(['kept']);
    const kept = await s3.send(new GetObjectCommand({ Bucket: name, Key: 'kept' }));
    expect(await kept.Body?.transformToString()).toBe('still here');
  });
});

interface ObjectEvent {
  eventName: string;
  bucket: string;
  key: string;
}

function objectEvents(batch: S3EventBatch): ObjectEvent[] {
  return batch.Records.flatMap((r) => {
    if (typeof r !== 'object' || r === null || !('eventName' in r) || !('s3' in r)) return [];
    const s3 = r.s3;
    if (typeof s3 !== 'object' || s3 === null || !('bucket' in s3) || !('object' in s3)) return [];
    const b = s3.bucket;
    const o = s3.object;
    const bucketName = typeof b === 'object' && b !== null && 'name' in b ? b.name : undefined;
    const key = typeof o === 'object' && o !== null && 'key' in o ? o.key : undefined;
    if (typeof r.eventName !== 'string' || typeof bucketName !== 'string' || typeof key !== 'string')
      return [];
    return [{ eventName: r.eventName, bucket: bucketName, key }];
  });
}

describe('startS3 (a second, separate stand-in)', () => {
  async function startOwn(buckets: string[]): Promise<S3StandIn> {
    const standIn = await startS3({ directory: await tempDir('vicinity-s3-own-'), buckets });
    cleanups.push(() => standIn.stop());
    return standIn;
  }

  it('forwards ObjectCreated events for uploaded keys, single-part and multipart', async () => {
    const standIn = await startOwn(['events-bucket']);
    const events: ObjectEvent[] = [];
    standIn.onEvent((batch) => events.push(...objectEvents(batch)));
    const client = createS3Client({
      region: LOCAL_REGION,
      s3Endpoint: standIn.endpoint,
      credentials: LOCAL_CREDENTIALS,
    });
    cleanups.push(async () => client.destroy());

    await client.send(
      new PutObjectCommand({ Bucket: 'events-bucket', Key: 'incoming/s/r1/release.json', Body: '{}' }),
    );
    await new Upload({
      client,
      params: {
        Bucket: 'events-bucket',
        Key: 'incoming/s/r1/big.f32',
        Body: Readable.from([randomBytes(5 * 1024 * 1024), randomBytes(1024)]),
      },
      partSize: 5 * 1024 * 1024,
    }).done();

    await expect.poll(() => events.length, { timeout: 5_000 }).toBeGreaterThanOrEqual(2);
    expect(events).toContainEqual({
      eventName: 'ObjectCreated:Put',
      bucket: 'events-bucket',
      key: 'incoming/s/r1/release.json',
    });
    // s3rver names a completed multipart upload ObjectCreated:Post (AWS: CompleteMultipartUpload).
    const multipart = events.find((e) => e.key === 'incoming/s/r1/big.f32');
    expect(multipart?.eventName).toMatch(/^ObjectCreated:/);
  });

  it('survives puts and deletes racing under one prefix, and lists exactly what remains', async () => {
    // Unpatched s3rver removes a key's directory once empty: a put between its mkdir and its open then
    // died with ENOENT on an unhandled stream error and took the whole stand-in down (a build's staging
    // chunks written by some tasks while others clean up — seen as ECONNREFUSED in the sharded tests).
    const standIn = await startOwn(['race-bucket']);
    const client = createS3Client({
      region: LOCAL_REGION,
      s3Endpoint: standIn.endpoint,
      credentials: LOCAL_CREDENTIALS,
    });
    cleanups.push(async () => client.destroy());
    const Bucket = 'race-bucket';
    const put = (Key: string) => client.send(new PutObjectCommand({ Bucket, Key, Body: Key }));
    // Per directory: one key deleted while a sibling is put (the delete sees the directory empty).
    for (let round = 0; round < 25; round++) {
      const dirs = Array.from({ length: 8 }, (_, i) => `staging/v/shard-${round}-${i}/`);
      await Promise.all(dirs.map((d) => put(`${d}old.chunk`)));
      await Promise.all(
        dirs.flatMap((d) => [
          client.send(new DeleteObjectCommand({ Bucket, Key: `${d}old.chunk` })),
          put(`${d}new.chunk`),
        ]),
      );
    }
    const keys: string[] = [];
    let token: string | undefined;
    do {
      const page = await client.send(
        new ListObjectsV2Command({ Bucket, Prefix: 'staging/v/', ContinuationToken: token }),
      );
      keys.push(...(page.Contents ?? []).map((o) => o.Key ?? ''));
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
    expect(keys).toHaveLength(200);
    expect(keys.every((k) => k.endsWith('/new.chunk'))).toBe(true);
  });

  it('frees its port on stop', async () => {
    const standIn = await startOwn([]);
    expect(await canBind(standIn.port)).toBe(false);
    await standIn.stop();
    expect(await canBind(standIn.port)).toBe(true);
    await standIn.stop(); // idempotent
  });

  it('exits when its parent goes away (the IPC channel closes)', async () => {
    const script = fileURLToPath(new URL('../../local/standins/s3rver-process.cjs', import.meta.url));
    const child: ChildProcess = spawn(
      process.execPath,
      [
        '--openssl-legacy-provider',
        script,
        '--port=0',
        `--directory=${await tempDir('vicinity-s3-orphan-')}`,
      ],
      { stdio: ['ignore', 'ignore', 'inherit', 'ipc'] },
    );
    cleanups.push(async () => child.kill('SIGKILL'));
    const [message] = (await once(child, 'message')) as [unknown];
    expect(message).toMatchObject({ type: 'listening' });
    const exit = once(child, 'exit');
    child.disconnect();
    const [code] = (await exit) as [number | null];
    expect(code).toBe(0);
  });
});

describe.each(['dynalite', 'dynamodb-local'] as const)('%s', (backend) => {
  const ddb = testDynamo(backend);
  afterAll(() => ddb.destroy());

  it('has exactly one winner in a 20-way conditional PutItem race', async () => {
    const table = await freshTable(ddb, 'race');
    const results = await Promise.allSettled(
      Array.from({ length: 20 }, (_, i) =>
        ddb.send(
          new PutItemCommand({
            TableName: table,
            Item: { pk: { S: 'SPACE#race' }, sk: { S: 'POINTER' }, writer: { N: String(i) } },
            ConditionExpression: 'attribute_not_exists(pk)',
          }),
        ),
      ),
    );
    const winners = results.flatMap((r, i) => (r.status === 'fulfilled' ? [i] : []));
    const losers = results.flatMap((r) => (r.status === 'rejected' ? [r.reason] : []));
    expect(winners).toHaveLength(1);
    for (const reason of losers) expect(reason).toBeInstanceOf(ConditionalCheckFailedException);

    const item = await ddb.send(
      new GetItemCommand({ TableName: table, Key: { pk: { S: 'SPACE#race' }, sk: { S: 'POINTER' } } }),
    );
    expect(item.Item?.writer?.N).toBe(String(winners[0]));
  });

  it('ensureTable is idempotent', async () => {
    // Idempotent: a second call on an existing table neither fails nor drops its items.
    const table = await freshTable(ddb, 'ensure');
    const key = { pk: { S: 'SPACE#kept' }, sk: { S: 'POINTER' } };
    await ddb.send(new PutItemCommand({ TableName: table, Item: { ...key, n: { N: '1' } } }));
    await ensureTable(ddb, table);
    const item = await ddb.send(new GetItemCommand({ TableName: table, Key: key, ConsistentRead: true }));
    expect(item.Item?.n?.N).toBe('1');
  });
});

describe('startDynalite', () => {
  it('frees its port on stop', async () => {
    const d = await startDynalite({});
    cleanups.push(() => d.stop());
    expect(await canBind(d.port)).toBe(false);
    await d.stop();
    expect(await canBind(d.port)).toBe(true);
  });

  it('persists to a LevelDB path across restarts', async () => {
    const path = join(await tempDir('vicinity-dynalite-'), 'db');
    const key = { pk: { S: 'SPACE#p' }, sk: { S: 'POINTER' } };

    const first = await startDynalite({ path });
    cleanups.push(() => first.stop());
    const c1 = createDynamoClient({
      region: LOCAL_REGION,
      dynamodbEndpoint: first.endpoint,
      credentials: LOCAL_CREDENTIALS,
    });
    await ensureTable(c1, 'persisted');
    await c1.send(new PutItemCommand({ TableName: 'persisted', Item: { ...key, version: { S: 'v1' } } }));
    c1.destroy();
    await first.stop();

    const second = await startDynalite({ path });
    cleanups.push(() => second.stop());
    const c2 = createDynamoClient({
      region: LOCAL_REGION,
      dynamodbEndpoint: second.endpoint,
      credentials: LOCAL_CREDENTIALS,
    });
    const got = await c2.send(new GetItemCommand({ TableName: 'persisted', Key: key }));
    c2.destroy();
    expect(got.Item?.version?.S).toBe('v1');
  });
});

describe('startDynamoDbLocal', () => {
  it('frees its port on stop', async () => {
    const d = await startDynamoDbLocal();
    cleanups.push(() => d.stop());
    expect(await canBind(d.port)).toBe(false);
    await d.stop();
    expect(await canBind(d.port)).toBe(true);
  });

  it('rejects clearly when java is missing', async () => {
    const path = process.env.PATH;
    process.env.PATH = await tempDir('vicinity-empty-path-');
    try {
      await expect(startDynamoDbLocal()).rejects.toThrow(/java/i);
    } finally {
      process.env.PATH = path;
    }
  });
});
