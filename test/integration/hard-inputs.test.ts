import { request } from 'node:http';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { clusteredVectors, jsonlRows } from '../../local/synthetic';
import { type TestStack, testStack } from '../support/local';

const DIMS = 8;
const LONG_ID = 'é'.repeat(256);
const ODD_IDS = ['a/b', '..', '%2F', 'ü🎵 x', LONG_ID, 'plain', 'q?x=1#y'];

/** A request with the path sent byte for byte (fetch would resolve `..` and re-encode). */
function raw(
  base: string,
  method: string,
  path: string,
  body?: string | Buffer,
): Promise<{ status: number; type: string; body: Record<string, unknown> }> {
  const url = new URL(base);
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: url.hostname,
        port: url.port,
        method,
        path,
        headers:
          body === undefined
            ? {}
            : { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let parsed: Record<string, unknown>;
          try {
            parsed = JSON.parse(text);
          } catch {
            parsed = { raw: text };
          }
          resolve({ status: res.statusCode ?? 0, type: String(res.headers['content-type']), body: parsed });
        });
      },
    );
    // The server may answer 413 before reading a huge body: that is fine.
    req.on('error', reject);
    req.end(body);
  });
}

describe('hard inputs: every one a 4xx problem+json, and the server keeps answering', () => {
  let s: TestStack;
  const t = clusteredVectors(200, DIMS, 3, 31);
  const trackIds = Array.from({ length: 200 }, (_, i) =>
    i < ODD_IDS.length ? (ODD_IDS[i] as string) : `t${i}`,
  );
  const wide = clusteredVectors(20, 16, 2, 32);
  const vector = Array.from(t.vectors.subarray(0, DIMS));
  const base = '/v1/spaces/h/collections';
  const call = (method: string, path: string, body?: string | Buffer) =>
    raw(s.info.apiUrl, method, path, body);

  beforeAll(async () => {
    s = await testStack();
    await s.publish(
      'h',
      'r1',
      {
        'tracks.jsonl': jsonlRows(trackIds, t.vectors, DIMS, (i) => ({
          genre: i % 2 ? 'a' : 'b',
          year: 2000 + i,
        })),
        'wide.jsonl': jsonlRows(
          Array.from({ length: 20 }, (_, i) => `w${i}`),
          wide.vectors,
          16,
        ),
      },
      {
        collections: {
          tracks: { file: 'tracks.jsonl', metric: 'cosine' },
          wide: { file: 'wide.jsonl', metric: 'cosine' },
        },
      },
    );
  });
  afterAll(async () => s?.dispose());
  afterEach(async () => {
    // Whatever the last request was, the next one is answered.
    const r = await call('POST', `${base}/tracks/query`, JSON.stringify({ vector, k: 1 }));
    expect(r.status).toBe(200);
  });

  const q = `${base}/tracks/query`;
  const sim = `${base}/tracks/items/t10/similar`;
  const json = (v: unknown) => JSON.stringify(v);
  const cases: [string, string, string, string | Buffer | undefined, number][] = [
    ['a vector of the wrong length', 'POST', q, json({ vector: [1, 2, 3] }), 400],
    ['a vector too long for any collection', 'POST', q, json({ vector: Array(5000).fill(1) }), 400],
    ['NaN in the vector (not JSON)', 'POST', q, `{"vector":[NaN,${Array(DIMS - 1).fill(1)}]}`, 400],
    ['"NaN" as a string', 'POST', q, json({ vector: ['NaN', ...Array(DIMS - 1).fill(1)] }), 400],
    ['Infinity (1e999)', 'POST', q, `{"vector":[1e999,${Array(DIMS - 1).fill(1)}]}`, 400],
    ['-Infinity (-1e999)', 'POST', q, `{"vector":[${Array(DIMS - 1).fill(1)},-1e999]}`, 400],
    ['strings in the vector', 'POST', q, json({ vector: Array(DIMS).fill('1') }), 400],
    ['nulls in the vector', 'POST', q, json({ vector: Array(DIMS).fill(null) }), 400],
    ['a vector that is an object', 'POST', q, json({ vector: { 0: 1 } }), 400],
    ['k=0', 'GET', `${sim}?k=0`, undefined, 400],
    ['k=1001', 'GET', `${sim}?k=1001`, undefined, 400],
    ['k=ten', 'GET', `${sim}?k=ten`, undefined, 400],
    ['k given twice', 'GET', `${sim}?k=1&k=2`, undefined, 400],
    ['k=0 in a body', 'POST', q, json({ vector, k: 0 }), 400],
    ['k=1001 in a body', 'POST', q, json({ vector, k: 1001 }), 400],
    ['k="ten" in a body', 'POST', q, json({ vector, k: 'ten' }), 400],
    ['k=2.5 in a body', 'POST', q, json({ vector, k: 2.5 }), 400],
    ['ef=0', 'GET', `${sim}?ef=0`, undefined, 400],
    [
      'an exclude of 10,001 ids',
      'POST',
      sim,
      json({ exclude: Array.from({ length: 10_001 }, (_, i) => `x${i}`) }),
      400,
    ],
    [
      'an exclude of 101 ids in a query string',
      'GET',
      `${sim}?exclude=${Array(101).fill('x').join(',')}`,
      undefined,
      400,
    ],
    ['an exclude id of 2,000 characters', 'POST', sim, json({ exclude: ['x'.repeat(2000)] }), 400],
    ['an unknown filter field', 'POST', q, json({ vector, filter: { mood: 'sad' } }), 400],
    ['an unknown filter operator', 'POST', q, json({ vector, filter: { year: { gt: 1 } } }), 400],
    ['a filter that is not JSON', 'GET', `${sim}?filter=%7Bnope`, undefined, 400],
    ['a filter that is a list', 'GET', `${sim}?filter=${encodeURIComponent('[1]')}`, undefined, 400],
    ['a target not in this version', 'GET', `${sim}?target=elsewhere`, undefined, 404],
    ['a target with other dims', 'GET', `${sim}?target=wide`, undefined, 422],
    ['a target that is not a name', 'GET', `${sim}?target=..%2Fx`, undefined, 400],
    ['an id of 2,000 characters', 'GET', `${base}/tracks/items/${'x'.repeat(2000)}/similar`, undefined, 400],
    ['an id with a control character', 'GET', `${base}/tracks/items/a%00b`, undefined, 400],
    [
      'an id that is not valid percent-encoding',
      'GET',
      `${base}/tracks/items/%E0%A4%A/similar`,
      undefined,
      400,
    ],
    ['an id that is a lone surrogate', 'GET', `${base}/tracks/items/%ED%A0%80`, undefined, 400],
    ['an unknown id with %2F', 'GET', `${base}/tracks/items/no%2Fsuch/similar`, undefined, 404],
    ['a space name with ..', 'GET', '/v1/spaces/../collections/tracks/items/t1', undefined, 400],
    ['a body of 6 MB', 'POST', q, Buffer.alloc(6 * 1024 * 1024, 0x20), 413],
    ['a body of 7 MB', 'POST', q, Buffer.alloc(7 * 1024 * 1024, 0x20), 413],
    ['a body just over 1 MB', 'POST', q, json({ vector, pad: 'x'.repeat(1024 * 1024) }), 413],
    ['an empty body', 'POST', q, '', 400],
    ['a body that is not JSON', 'POST', q, '{"vector": [1,2', 400],
    ['a body that is binary', 'POST', q, Buffer.from([0xff, 0xfe, 0x00, 0x01]), 400],
    ['a body that is JSON null', 'POST', q, 'null', 400],
    ['a body that is a JSON array', 'POST', q, '[1,2,3]', 400],
    ['a deeply nested body', 'POST', q, `${'['.repeat(200_000)}${']'.repeat(200_000)}`, 400],
    ['an unknown body field', 'POST', q, json({ vector, kk: 3 }), 400],
    ['a batch that is not a list', 'POST', '/v1/spaces/h/batch', json({ queries: 'all' }), 400],
    [
      'a batch of 101 queries',
      'POST',
      '/v1/spaces/h/batch',
      json({ queries: Array(101).fill({ collection: 'tracks', item: 't1' }) }),
      400,
    ],
    [
      'a batch asking for 10,001 results',
      'POST',
      '/v1/spaces/h/batch',
      json({
        queries: [
          ...Array(10).fill({ collection: 'tracks', item: 't1', k: 1000 }),
          { collection: 'tracks', item: 't1', k: 1 },
        ],
      }),
      400,
    ],
    ['a wrong method', 'DELETE', sim, undefined, 405],
    ['an include other than vector', 'GET', `${base}/tracks/items/t1?include=secrets`, undefined, 400],
    ['a pinned version that does not exist', 'GET', `${sim}?version=v99`, undefined, 404],
    ['a pinned version that is not a version', 'GET', `${sim}?version=latest`, undefined, 400],
  ];

  it.each(cases)('answers %s with a problem+json (%s %s)', async (_what, method, path, body, status) => {
    const r = await call(method, path, body);
    expect(r.status).toBe(status);
    expect(r.type).toBe('application/problem+json');
    expect(r.body).toMatchObject({ status, title: expect.any(String), detail: expect.any(String) });
  });

  it.each(ODD_IDS)('serves an item whose id is %j, sent percent-encoded as one path segment', async (id) => {
    const path = `${base}/tracks/items/${encodeURIComponent(id)}`;
    // encodeURIComponent leaves "." alone: ".." goes as a literal segment, which fetch would have resolved away.
    const item = await call('GET', path);
    expect(item.status).toBe(200);
    expect(item.body.id).toBe(id);
    const similar = await call('GET', `${path}/similar?k=3`);
    expect(similar.status).toBe(200);
    expect((similar.body.results as { id: string }[]).map((x) => x.id)).not.toContain(id);
    const excluded = await call(
      'POST',
      `${base}/tracks/items/t10/similar`,
      JSON.stringify({ exclude: [id], k: 199 }),
    );
    expect((excluded.body.results as { id: string }[]).map((x) => x.id)).not.toContain(id);
  });
});
