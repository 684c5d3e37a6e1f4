/**
 * The contract test: every operation of docs/openapi.json exercised against the running local stack
 * (valid and invalid requests, the hostile cases of docs/contract.md "Requests" and "Work budget"),
 * each answer validated against the document's own schema with ajv (JSON Schema 2020-12, as OpenAPI
 * 3.1 uses), then a property-based run (fast-check, fixed seed) of requests generated from the
 * document: no 5xx, every error problem+json, every answer as documented, none slow, and the server
 * still answering afterwards. `npm test` runs FUZZ_RUNS requests; `npm run fuzz` 5,000.
 */
import { request } from 'node:http';
import { connect } from 'node:net';
import Ajv2020 from 'ajv/dist/2020';
import addFormats from 'ajv-formats';
import fc from 'fast-check';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import openapi from '../../docs/openapi.json';
import { LIMITS } from '../../functions/core/budget';
import { type TestStack, testStack } from '../support/local';
import { MUSIC_ARTISTS, MUSIC_DIMS, publishMusicLike } from '../support/music-like';

const FUZZ_RUNS = Number(process.env.VICINITY_FUZZ_RUNS ?? 300);
const SEED = 20_240_611;
/** Per request on the demo-sized data (one retry absorbs a hiccup of the shared machine). */
const SLOW_MS = 200;
/** The warm reproducer (an exact scan of 17,632 × 32-d) on the quiet 2-core reference machine, with margin. */
const REFERENCE_MS = 6;
const FLOAT32_MAX = 3.4028234663852886e38;

type Json = Record<string, unknown>;
type Operation = {
  operationId: string;
  parameters?: { $ref?: string; name?: string; in?: string }[];
  responses: Record<string, { $ref?: string }>;
  requestBody?: unknown;
};
const doc = openapi as unknown as {
  paths: Record<string, Record<string, Operation>>;
  components: { parameters: Record<string, { name: string; in: string }>; responses: Record<string, Json> };
};

const ajv = new Ajv2020({ strict: false, allErrors: false, validateFormats: true });
addFormats(ajv);
ajv.addSchema(openapi as object, 'doc');
const pointer = (...parts: string[]) =>
  parts.map((p) => p.replace(/~/g, '~0').replace(/\//g, '~1')).join('/');
const validators = new Map<string, ReturnType<typeof ajv.compile>>();
function validatorAt(ptr: string) {
  let v = validators.get(ptr);
  if (!v) {
    v = ajv.compile({ $ref: `doc#/${ptr}` });
    validators.set(ptr, v);
  }
  return v;
}

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  body: unknown;
  ms: number;
}

let apiUrl = '';

/** Sends a request exactly as given (path bytes, method, headers) and times it. */
function send(
  method: string,
  path: string,
  body?: string,
  headers: Record<string, string> = {},
): Promise<Answer> {
  const url = new URL(apiUrl);
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: url.hostname,
        port: url.port,
        method,
        path,
        headers: {
          ...(body === undefined
            ? {}
            : { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) }),
          ...headers,
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let parsed: unknown;
          try {
            parsed = text ? JSON.parse(text) : undefined;
          } catch {
            parsed = undefined;
          }
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            text,
            body: parsed,
            ms: performance.now() - t0,
          });
        });
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

/** Which documented path template a concrete path matches (canonical paths only, as the router). */
function templateOf(path: string): string | undefined {
  const raw = path.split('?')[0] as string;
  if (!raw.startsWith('/')) return undefined;
  const segs = raw.slice(1).split('/');
  for (const t of Object.keys(doc.paths)) {
    const parts = t.slice(1).split('/');
    if (parts.length !== segs.length) continue;
    if (parts.every((p, i) => segs[i] !== '' && (p.startsWith('{') || p === segs[i]))) return t;
  }
  return undefined;
}

const seen = new Set<string>();

/** Checks one answer against the document; returns what is wrong, or undefined. */
function conformance(method: string, path: string, r: Answer): string | undefined {
  const type = String(r.headers['content-type'] ?? '').split(';')[0] ?? '';
  if (r.status >= 500) return `a ${r.status}`;
  if (r.status >= 400 && type !== 'application/problem+json')
    return `error ${r.status} in ${type || 'no content type'}`;
  const template = templateOf(path);
  const m = method.toLowerCase();
  if (!template) {
    // A path the document does not have: 404 problem+json.
    if (r.status !== 404) return `undocumented path answered ${r.status}`;
    const ok = validatorAt(pointer('components', 'schemas', 'Problem'));
    seen.add(`* * 404`);
    return ok(r.body) ? undefined : `404 body: ${ajv.errorsText(ok.errors)}`;
  }
  const item = doc.paths[template] as Record<string, Operation>;
  // A method the path does not serve: 405, or 400 when the path itself is malformed (bad percent-encoding).
  if (!item[m] && r.status === 400) {
    const problem = validatorAt(pointer('components', 'schemas', 'Problem'));
    return problem(r.body) ? undefined : `400 body: ${ajv.errorsText(problem.errors)}`;
  }
  const op = item[m] ?? (r.status === 405 ? Object.values(item)[0] : undefined);
  if (!op) return `${method} ${template} is not documented and answered ${r.status}`;
  const key = String(r.status);
  let resp = op.responses[key] as Json | undefined;
  let ptr = pointer('paths', template, item[m] ? m : (Object.keys(item)[0] as string), 'responses', key);
  if (!resp) return `${method} ${template} does not document ${r.status}: ${r.text.slice(0, 200)}`;
  if (typeof resp.$ref === 'string') {
    const name = resp.$ref.split('/').pop() as string;
    resp = doc.components.responses[name] as Json;
    ptr = pointer('components', 'responses', name);
  }
  seen.add(`${item[m] ? m.toUpperCase() : '*'} ${template} ${r.status}`);
  for (const h of Object.keys((resp.headers ?? {}) as Json)) {
    if (h === 'Allow' && r.headers.allow === undefined) return `${r.status} without Allow`;
  }
  const content = resp.content as Record<string, unknown> | undefined;
  if (!content) return r.text === '' ? undefined : `${r.status} documents no body but has one`;
  if (!content[type]) return `${method} ${template} ${r.status} does not document ${type}`;
  const validate = validatorAt(`${ptr}/content/${pointer(type)}/schema`);
  if (!validate(r.body))
    return `${method} ${path} → ${r.status} breaks its schema: ${ajv.errorsText(validate.errors)} in ${r.text.slice(0, 300)}`;
  return undefined;
}

async function expectConforms(method: string, path: string, body?: string, headers?: Record<string, string>) {
  const r = await send(method, path, body, headers);
  expect(conformance(method, path, r), `${method} ${path.slice(0, 200)}`).toBeUndefined();
  return r;
}

const sp = '/v1/spaces/music';
const artists = `${sp}/collections/artists`;
const zero = Array(MUSIC_DIMS).fill(0);
const v = Array.from({ length: MUSIC_DIMS }, (_, i) => Math.sin(i + 1) / 3);
const j = (x: unknown) => JSON.stringify(x);
const REPRO_QUERY = { vector: zero, k: 18, ef: 9999, exclude: ['8731'] };

describe('the server matches docs/openapi.json, whatever it is sent', () => {
  let s: TestStack;

  beforeAll(async () => {
    s = await testStack();
    apiUrl = s.info.apiUrl;
    await publishMusicLike(s);
    // Warm: load both collections and the exact-scan vectors once.
    await send('POST', `${artists}/query`, j(REPRO_QUERY));
    await send('POST', `${sp}/collections/users/query`, j({ vector: zero, exclude: ['2'], ef: 9999 }));
  }, 240_000);
  afterAll(async () => {
    await s?.dispose();
    checkCoverage();
  });

  it('answers every operation as documented, valid requests and invalid ones', async () => {
    const ok: [string, string, unknown?][] = [
      ['GET', '/v1/health'],
      ['GET', '/v1/openapi.json'],
      ['GET', '/v1/spaces'],
      ['GET', sp],
      ['GET', `${sp}/versions?limit=5`],
      ['GET', `${sp}/versions/v1`],
      ['GET', `${sp}/history`],
      ['GET', `${sp}/diff?to=v1&sample=20`],
      ['GET', `${artists}/items/154?include=vector`],
      ['GET', `${artists}/items/154/similar?k=5&filter=${encodeURIComponent(j({ tags: 'rock' }))}`],
      ['POST', `${artists}/items/154/similar`, { k: 3, exclude: ['1'] }],
      ['POST', `${artists}/query`, { vector: v, k: 4, filter: { plays: { gte: 10, lte: 90_000 } } }],
      [
        'POST',
        `${sp}/batch`,
        {
          queries: [
            { collection: 'artists', item: '154' },
            { collection: 'users', vector: v },
          ],
        },
      ],
      ['GET', `${artists}/projection?sample=200&ids=1,2`],
      ['GET', `${artists}/items?prefix=1&limit=3`],
    ];
    for (const [m, p, b] of ok) {
      const r = await expectConforms(m, p, b === undefined ? undefined : j(b));
      expect(r.status, `${m} ${p}: ${r.text.slice(0, 200)}`).toBe(200);
    }
    const bad: [string, string, number, unknown?][] = [
      ['GET', '/v1/spaces/No!', 400],
      ['GET', '/v1/spaces/nope', 404],
      ['GET', `${sp}/versions?limit=0`, 400],
      ['GET', `${sp}/versions/v99`, 404],
      ['GET', `${sp}/diff`, 400],
      ['GET', `${sp}/diff?to=v99`, 404],
      ['GET', `${artists}/items/nope`, 404],
      ['GET', `${artists}/items/154/similar?k=0`, 400],
      ['POST', `${artists}/items/154/similar`, 400, { k: 'ten' }],
      ['POST', `${artists}/query`, 400, { vector: [1] }],
      ['POST', `${sp}/collections/albums/query`, 404, { vector: v }],
      ['POST', `${sp}/batch`, 400, { queries: [] }],
      ['GET', `${artists}/projection?sample=0`, 400],
      ['GET', `${artists}/items`, 400],
      ['POST', `${sp}/activate`, 400, { version: 'v1' }],
      ['POST', `${sp}/rollback`, 400, {}],
      ['POST', '/v1/spaces/none/rollback', 422, { expectedGeneration: 0 }],
      ['POST', `${sp}/activate`, 404, { version: 'v99', expectedGeneration: 1 }],
      ['POST', `${sp}/activate`, 409, { version: 'v1', expectedGeneration: 99 }],
    ];
    for (const [m, p, status, b] of bad) {
      const r = await expectConforms(m, p, b === undefined ? undefined : j(b));
      expect(r.status, `${m} ${p}: ${r.text.slice(0, 200)}`).toBe(status);
    }
  });

  it('applies one rule per concern on every operation: unknown parameters, slashes, methods, media types', async () => {
    const sample: Record<string, string> = {
      '{space}': 'music',
      '{collection}': 'artists',
      '{id}': '154',
      '{version}': 'v1',
    };
    for (const [template, item] of Object.entries(doc.paths)) {
      const path = template.replace(/\{[a-z]+\}/g, (m) => sample[m] as string);
      // An unknown query parameter: 400 on every operation (GET and POST alike).
      for (const m of Object.keys(item).filter((x) => x !== 'options')) {
        const body = m === 'post' ? '{}' : undefined;
        const r = await expectConforms(
          m.toUpperCase(),
          `${path}?${path.includes('diff') ? 'to=v1&' : ''}bogus=1`,
          body,
        );
        expect(r.status, `${m} ${template}`).toBe(400);
        expect(String((r.body as Json).detail)).toMatch(/unknown query parameter "bogus"/);
      }
      // Trailing and doubled slashes: 404, never the route.
      for (const odd of [`${path}/`, path.replace('/v1/', '//v1//'), `/${path}`]) {
        const r = await expectConforms('GET', odd);
        expect(r.status, odd).toBe(404);
      }
      // OPTIONS: 204 with Allow; a method the path does not serve: 405 with Allow.
      const o = await expectConforms('OPTIONS', path);
      expect(o.status).toBe(204);
      expect(o.headers.allow).toMatch(/OPTIONS/);
      // (DELETE is served on a space and on an item: by the admin function, as erasure.)
      for (const m of ['DELETE', 'PUT', 'PATCH', 'GET'].filter((x) => !item[x.toLowerCase()])) {
        const r = await expectConforms(m, path);
        expect(r.status, `${m} ${template}`).toBe(405);
        expect(r.headers.allow).toBe(o.headers.allow);
      }
      // A body that is not application/json: 415 (refused before anything is read or recorded).
      for (const m of ['POST', 'DELETE', 'PUT'].filter((x) => item[x.toLowerCase()])) {
        for (const type of ['text/plain', 'application/x-www-form-urlencoded']) {
          const r = await expectConforms(m, path, '{"k":1}', { 'content-type': type });
          expect(r.status, `${m} ${template} ${type}`).toBe(415);
        }
      }
    }
    const empty = await expectConforms('GET', `${artists}/items?prefix=`);
    expect(empty.status).toBe(400);
    expect(String((empty.body as Json).detail)).toMatch(/prefix/);
  });

  it('erases, restores, lists erasures and deletes a space: a throwaway one, valid requests and invalid ones', async () => {
    const doomed = '/v1/spaces/doomed';
    await s.publish(
      'doomed',
      'r1',
      { 'a.jsonl': ['a', 'b', 'c'].map((id, i) => j({ id, vector: [1, i, 0, 1] })).join('\n') },
      { collections: { a: { file: 'a.jsonl', metric: 'cosine' } }, activate: true },
    );
    const at = (id: string) => `${doomed}/collections/a/items/${id}`;
    const cases: [string, string, number, unknown?][] = [
      ['DELETE', at('a'), 202, { reason: 'request', by: 'test', ids: ['b'] }],
      ['DELETE', at('c'), 202],
      ['DELETE', at('c'), 400, { ids: 'x' }],
      ['DELETE', at('c'), 400, { bogus: 1 }],
      ['POST', `${at('a')}/restore`, 200, { reason: 're-consent' }],
      ['POST', `${at('zzz')}/restore`, 404, {}],
      ['POST', `${at('a')}/restore`, 400, { by: '' }],
      ['GET', `${doomed}/erasures`, 200],
      ['GET', `${doomed}/erasures?status=ERASED`, 200],
      ['GET', `${doomed}/erasures?status=gone`, 400],
      ['PUT', `${doomed}/settings`, 200, { deleteInputsAfterBuild: true }],
      ['PUT', `${doomed}/settings`, 400, { deleteInputsAfterBuild: 'yes' }],
      ['DELETE', doomed, 400, {}],
      ['DELETE', doomed, 400],
      ['DELETE', doomed, 409, { expectedGeneration: 99 }],
      ['DELETE', '/v1/spaces/none', 404, { expectedGeneration: 0 }],
    ];
    for (const [m, p, status, b] of cases) {
      const r = await expectConforms(m, p, b === undefined ? undefined : j(b));
      expect(r.status, `${m} ${p}: ${r.text.slice(0, 200)}`).toBe(status);
    }
    const list = await expectConforms('GET', `${doomed}/erasures?status=ERASED`);
    expect((list.body as { erasures: { id: string }[] }).erasures.map((x) => x.id).sort()).toEqual([
      'b',
      'c',
    ]);
    const generation = ((await send('GET', doomed)).body as { pointer: { generation: number } }).pointer
      .generation;
    const del = await expectConforms('DELETE', doomed, j({ expectedGeneration: generation }));
    expect(del.status, del.text).toBe(202);
    expect((await expectConforms('GET', `${at('b')}?consistency=strong`)).status).toBe(404);
    expect((await expectConforms('DELETE', at('a'))).status).toBe(404);
  });

  it('refuses vectors that are not finite float32 with a 400 naming the index, and never answers a null score', async () => {
    for (const [vector, index] of [
      [[...zero.slice(1), 1e39], 31],
      [[1e300, ...zero.slice(1)], 0],
      [[0, 0, 0, -3.5e38, ...zero.slice(4)], 3],
    ] as const) {
      const r = await expectConforms('POST', `${artists}/query`, j({ vector }));
      expect(r.status).toBe(400);
      expect(String((r.body as Json).detail)).toContain(`vector[${index}] is not a finite float32`);
    }
    const body = `{"vector":[1e999${',0'.repeat(MUSIC_DIMS - 1)}]}`;
    expect((await expectConforms('POST', `${artists}/query`, body)).status).toBe(400);
    // Every value a finite float32, but the inner products overflow float32: refused, not null.
    const huge = await expectConforms(
      'POST',
      `${artists}/query`,
      j({ vector: Array(MUSIC_DIMS).fill(3.4e38) }),
    );
    expect(huge.status).toBe(400);
    expect(String((huge.body as Json).detail)).toMatch(/overflows float32/);
    const batch = await expectConforms(
      'POST',
      `${sp}/batch`,
      j({ queries: [{ collection: 'artists', vector: [1e39, ...zero.slice(1)] }] }),
    );
    expect((batch.body as { results: { status: number }[] }).results[0]?.status).toBe(400);
    // Tiny and denormal values are finite float32: answered.
    const tiny = await expectConforms(
      'POST',
      `${artists}/query`,
      j({ vector: Array(MUSIC_DIMS).fill(1e-45), k: 3 }),
    );
    expect(tiny.status).toBe(200);
  });

  it('answers the two stalling reproducers fast, the same way every time, ties broken by id', async () => {
    // "Fast" means no stall: the warm reproducer takes ~6 ms on a quiet machine, a stall seconds. On a
    // shared 2-core machine one attempt can wait behind other processes, so up to 20 attempts are made and
    // two of them must come in under FAST_MS — a stall never does, contention does not hold every time.
    const FAST_MS = 100;
    const fastEnough = (xs: number[]) => xs.filter((t) => t < FAST_MS).length >= 2;
    const times: number[] = [];
    let first: unknown;
    for (let i = 0; i < 20 && !(i >= 5 && fastEnough(times)); i++) {
      const r = await expectConforms('POST', `${artists}/query`, j(REPRO_QUERY));
      expect(r.status).toBe(200);
      times.push(r.ms);
      const ids = (r.body as { results: { id: string }[] }).results.map((x) => x.id);
      first ??= ids;
      expect(ids).toEqual(first);
    }
    // All distances tie: the 18 smallest ids by code units, 8731 excluded.
    const want = Array.from({ length: MUSIC_ARTISTS }, (_, i) => String(i + 1))
      .filter((id) => id !== '8731')
      .sort()
      .slice(0, 18);
    expect(first).toEqual(want);
    const batchTimes: number[] = [];
    for (let i = 0; i < 20 && !(i >= 5 && fastEnough(batchTimes)); i++) {
      const r = await expectConforms(
        'POST',
        `${sp}/batch`,
        j({
          queries: [
            { collection: 'artists', ...REPRO_QUERY },
            { collection: 'artists', ...REPRO_QUERY },
          ],
        }),
      );
      expect(r.status).toBe(200);
      batchTimes.push(r.ms);
    }
    console.log(
      `reproducers warm: query ${times.map((t) => t.toFixed(1)).join('/')} ms, batch ${batchTimes.map((t) => t.toFixed(1)).join('/')} ms`,
    );
    expect(fastEnough(times), `query times ${times.join(', ')} ms`).toBe(true);
    expect(fastEnough(batchTimes), `batch times ${batchTimes.join(', ')} ms`).toBe(true);
  });

  it('keeps every request within the work budget: a 400 naming the limit, never a stall', async () => {
    const heavy = {
      collection: 'artists',
      vector: v,
      k: 1000,
      ef: 10_000,
      exclude: Array.from({ length: 300 }, (_, i) => String(i + 1)),
    };
    const r = await expectConforms(
      'POST',
      `${sp}/batch`,
      j({ queries: Array(40).fill({ ...heavy, k: 100 }) }),
    );
    expect(r.status).toBe(400);
    expect(r.body).toMatchObject({ limit: 'requestWork', max: LIMITS.requestWork });
    // Refused once the budget is spent: a fraction of a second even on a loaded machine, not the old 7–20 s.
    expect(r.ms).toBeLessThan(1500);
    const diff = await expectConforms('GET', `${sp}/diff?to=v1&sample=5000&k=100`);
    expect(diff.status).toBe(400);
    expect(String((diff.body as Json).detail)).toMatch(/work budget/);
  });

  it('answers the local server own client errors with problem+json', async () => {
    const url = new URL(apiUrl);
    const raw = (bytes: Buffer) =>
      new Promise<string>((resolve, reject) => {
        const sock = connect(Number(url.port), url.hostname, () => sock.end(bytes));
        const chunks: Buffer[] = [];
        sock.on('data', (c) => chunks.push(c));
        sock.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
        sock.on('error', reject);
      });
    const cases: [string, Buffer, number][] = [
      [
        'raw non-ASCII bytes in the URL',
        Buffer.concat([
          Buffer.from('GET /v1/spaces/'),
          Buffer.from([0xff, 0xfe]),
          Buffer.from(' HTTP/1.1\r\nHost: x\r\n\r\n'),
        ]),
        400,
      ],
      ['an unknown method', Buffer.from('FOO /v1/health HTTP/1.1\r\nHost: x\r\n\r\n'), 400],
      [
        'a URL over 16 KB',
        Buffer.from(`GET /v1/health?${'a'.repeat(17_000)} HTTP/1.1\r\nHost: x\r\n\r\n`),
        431,
      ],
      ['garbage', Buffer.from('\x00\x01\x02 not http\r\n\r\n'), 400],
    ];
    for (const [what, bytes, status] of cases) {
      const text = await raw(bytes);
      const [head, body] = text.split('\r\n\r\n');
      expect(head, what).toMatch(new RegExp(`^HTTP/1.1 ${status} `));
      expect(head, what).toMatch(/content-type: application\/problem\+json/i);
      const problem = JSON.parse(body as string);
      expect(validatorAt(pointer('components', 'schemas', 'Problem'))(problem), what).toBe(true);
      expect(problem.status).toBe(status);
    }
    expect((await send('GET', '/v1/health')).status).toBe(200);
  });

  it(
    `survives ${FUZZ_RUNS} requests generated from the document: no 5xx, all as documented, none slow`,
    async () => {
      const statuses = new Map<number, number>();
      const latencies: number[] = [];
      const slowest: [number, string][] = [];
      let maxSlowdown = 1;
      const failures: string[] = [];
      await fc.assert(
        fc.asyncProperty(requestArb(), async (q) => {
          let r = await send(q.method, q.path, q.body, q.headers);
          // A generous retry: the 2-core machine is shared, so a slow answer is asked again after a pause.
          for (let retry = 0; retry < 2 && r.ms > SLOW_MS; retry++) {
            await new Promise((ok) => setTimeout(ok, 250));
            r = await send(q.method, q.path, q.body, q.headers);
          }
          latencies.push(r.ms);
          slowest.push([r.ms, `${q.method} ${q.path.slice(0, 120)} → ${r.status}`]);
          slowest.sort((a, b) => b[0] - a[0]).splice(5);
          statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1);
          let slow: string | undefined;
          if (r.ms > SLOW_MS) {
            // Still slow: is it this request, or the shared machine? A reference request (the warm exact
            // scan of the reproducer, REFERENCE_MS when the machine is quiet) measures how loaded it is now.
            // Ten in a row, so sustained contention shows (a lone short request slips between time slices).
            let ref = 0;
            for (let i = 0; i < 10; i++) ref += (await send('POST', `${artists}/query`, j(REPRO_QUERY))).ms;
            const slowdown = Math.max(1, ref / (10 * REFERENCE_MS));
            maxSlowdown = Math.max(maxSlowdown, slowdown);
            if (r.ms > SLOW_MS * slowdown)
              slow = `took ${r.ms.toFixed(0)} ms three times (machine slowdown ×${slowdown.toFixed(1)})`;
          }
          const wrong = conformance(q.method, q.path, r) ?? slow;
          if (wrong)
            failures.push(`${q.method} ${q.path.slice(0, 300)} ${q.body?.slice(0, 300) ?? ''}: ${wrong}`);
          if (wrong) throw new Error(wrong);
        }),
        { seed: SEED, numRuns: FUZZ_RUNS, endOnFailure: true },
      );
      latencies.sort((a, b) => a - b);
      const p = (q: number) =>
        (latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] as number).toFixed(1);
      console.log(
        `fuzz: ${latencies.length} requests; statuses ${[...statuses]
          .sort((a, b) => a[0] - b[0])
          .map(([s, n]) => `${s}×${n}`)
          .join(
            ' ',
          )}; latency p50 ${p(0.5)} p99 ${p(0.99)} max ${p(1)} ms; largest machine slowdown seen ×${maxSlowdown.toFixed(1)}`,
      );
      console.log(`slowest: ${slowest.map(([ms, what]) => `${ms.toFixed(0)} ms ${what}`).join('; ')}`);
      expect(failures).toEqual([]);
      expect((await send('GET', '/v1/health')).status).toBe(200);
    },
    120_000 + FUZZ_RUNS * 300,
  );

  // Coverage is a property of the whole file: checked after every test of it ran, in whatever order
  // (shuffled included); a filtered run (`-t`) skips it rather than failing on tests it did not run.
  const ran = new Set<string>();
  let total = 0;
  beforeEach((ctx) => {
    ran.add(ctx.task.name);
    total = ctx.task.suite?.tasks.length ?? 0;
  });
  function checkCoverage(): void {
    if (total === 0 || ran.size < total) return;
    const missing = Object.entries(doc.paths).flatMap(([path, item]) => [
      ...(seen.has(`* ${path} 405`) ? [] : [`${path} 405`]),
      ...Object.entries(item).flatMap(([m, op]) =>
        Object.keys(op.responses)
          // The admin routes' 200s move the pointer: openapi.test.ts provokes them on a space of its own.
          .filter((status) => !(status === '200' && /activate|rollback/.test(path)))
          .filter((status) => /^2/.test(status) || (status === '400' && m !== 'options') || status === '415')
          .filter((status) => !seen.has(`${m.toUpperCase()} ${path} ${status}`))
          .map((status) => `${m.toUpperCase()} ${path} ${status}`),
      ),
    ]);
    // Exercised every operation: an answer, a 400, a 405, and a 415 for each POST.
    expect(missing).toEqual([]);
  }
});

/** Numbers a hostile client sends: ordinary, huge, tiny, at and beyond the float32 edge. */
const numberArb = fc.oneof(
  { weight: 6, arbitrary: fc.double({ min: -2, max: 2, noNaN: true }) },
  {
    weight: 1,
    arbitrary: fc.constantFrom(0, -0, 1e-45, 1e-300, 3.4e38, -3.4e38, FLOAT32_MAX, 1e38, 1e39, -1e300, 1e308),
  },
  { weight: 1, arbitrary: fc.double({ noNaN: true, noDefaultInfinity: true }) },
);
const vectorArb = fc.oneof(
  { weight: 6, arbitrary: fc.array(numberArb, { minLength: MUSIC_DIMS, maxLength: MUSIC_DIMS }) },
  { weight: 1, arbitrary: fc.constant(zero) },
  { weight: 1, arbitrary: fc.array(numberArb, { minLength: 0, maxLength: 40 }) },
);
const intish = (lo: number, hi: number) =>
  fc.oneof(
    { weight: 5, arbitrary: fc.integer({ min: lo, max: hi }) },
    { weight: 1, arbitrary: fc.constantFrom(0, -1, hi + 1, 2.5, 1e9, hi) },
  );
const idArb = fc.oneof(
  { weight: 5, arbitrary: fc.integer({ min: 1, max: MUSIC_ARTISTS + 10 }).map(String) },
  {
    weight: 1,
    arbitrary: fc.constantFrom('', '..', '%2F', 'a/b', 'é', '🎵', 'x'.repeat(600), '%00', '%E0%A4%A', ' '),
  },
  { weight: 1, arbitrary: fc.string({ maxLength: 12 }) },
);
const filterArb = fc.oneof(
  fc.constant({ tags: 'rock' }),
  fc.record({
    plays: fc.record({
      gte: fc.integer({ min: 0, max: 100_000 }),
      lte: fc.integer({ min: 0, max: 100_000 }),
    }),
  }),
  fc.record({
    listeners: fc.record({ in: fc.array(fc.integer({ min: 0, max: 600 }), { minLength: 1, maxLength: 5 }) }),
  }),
  fc.constantFrom({ name: 'Artist 7' }, { listeners: 3 }, { mood: 'sad' }, { plays: { gt: 1 } }, [], 'x', {
    seen: '1',
  }),
);
const searchFieldsArb = fc.record(
  {
    k: intish(1, 1000),
    ef: intish(1, 10_000),
    exclude: fc.array(idArb, { maxLength: 20 }),
    filter: filterArb,
    includeMetadata: fc.boolean(),
    excludeSeen: fc.boolean(),
    target: fc.constantFrom('artists', 'users', 'nope'),
    version: fc.constantFrom('v1', 'v2', 'latest'),
    consistency: fc.constantFrom('eventual', 'strong', 'maybe'),
    bogus: fc.constant(1),
  },
  { requiredKeys: [] },
);

interface Req {
  method: string;
  path: string;
  body?: string;
  headers?: Record<string, string>;
}

const paramValue: Record<string, fc.Arbitrary<string>> = {
  k: intish(1, 100).map(String),
  ef: intish(1, 10_000).map(String),
  limit: intish(1, 100).map(String),
  // Up to the diff's default sample: a larger one is a documented heavier analysis (contract: "Work budget").
  sample: intish(1, 200).map(String),
  top: intish(0, 100).map(String),
  target: fc.constantFrom('artists', 'users', 'nope'),
  collection: fc.constantFrom('artists', 'users', 'nope'),
  exclude: fc.array(idArb, { maxLength: 5 }).map((xs) => xs.map(encodeURIComponent).join(',')),
  filter: filterArb.map((f) => encodeURIComponent(JSON.stringify(f))),
  version: fc.constantFrom('v1', 'v2', 'latest', ''),
  from: fc.constantFrom('v1', 'v2'),
  to: fc.constantFrom('v1', 'v2', ''),
  consistency: fc.constantFrom('eventual', 'strong', 'x'),
  include: fc.constantFrom('vector', 'all', ''),
  includeMetadata: fc.constantFrom('true', 'false', '1', 'x'),
  excludeSeen: fc.constantFrom('true', 'false', 'x'),
  prefix: fc.oneof(idArb.map(encodeURIComponent), fc.constantFrom('', 'Artist%201', '1')),
  field: fc.constantFrom('id', 'name', 'tags', 'nope'),
  fields: fc.constantFrom('name', 'name,plays', 'nope'),
  ids: fc.array(idArb, { maxLength: 4 }).map((xs) => xs.map(encodeURIComponent).join(',')),
  points: fc.constantFrom('true', 'false', 'x'),
  before: fc.constantFrom('v1', 'v2', 'x'),
};

function paramsOf(op: Operation): string[] {
  return (op.parameters ?? [])
    .map(
      (p) =>
        (p.$ref ? doc.components.parameters[p.$ref.split('/').pop() as string] : p) as {
          name: string;
          in: string;
        },
    )
    .filter((p) => p.in === 'query')
    .map((p) => p.name);
}

/** A request generated from the document: an operation, odd path values, documented and stray parameters, odd bodies. */
function requestArb(): fc.Arbitrary<Req> {
  const ops = Object.entries(doc.paths).flatMap(([template, item]) =>
    Object.entries(item).map(([m, op]) => ({ template, method: m.toUpperCase(), op })),
  );
  return fc
    .record({
      op: fc.oneof(
        { weight: 6, arbitrary: fc.constantFrom(...ops.filter((o) => o.method !== 'OPTIONS')) },
        { weight: 1, arbitrary: fc.constantFrom(...ops.filter((o) => o.method === 'OPTIONS')) },
      ),
      space: fc.oneof(
        { weight: 8, arbitrary: fc.constant('music') },
        { weight: 1, arbitrary: fc.constantFrom('nope', 'No!', '..', '') },
      ),
      collection: fc.oneof(
        { weight: 8, arbitrary: fc.constantFrom('artists', 'users') },
        { weight: 1, arbitrary: fc.constantFrom('nope', '', 'A%20B') },
      ),
      id: idArb,
      version: fc.constantFrom('v1', 'v1', 'v2', 'latest', '0'),
      params: fc.dictionary(fc.constantFrom(...Object.keys(paramValue)), fc.constant(true), { maxKeys: 4 }),
      values: fc.record(paramValue),
      stray: fc.oneof(
        { weight: 9, arbitrary: fc.constant('') },
        { weight: 1, arbitrary: fc.constantFrom('bogus=1', 'k=1&k=2', '=x', 'K=3') },
      ),
      method: fc.oneof(
        { weight: 12, arbitrary: fc.constant('') },
        { weight: 1, arbitrary: fc.constantFrom('DELETE', 'PUT', 'PATCH') },
      ),
      slash: fc.oneof(
        { weight: 15, arbitrary: fc.constant('') },
        { weight: 1, arbitrary: fc.constantFrom('trailing', 'double') },
      ),
      body: fc.oneof(
        { weight: 6, arbitrary: searchFieldsArb.chain((f) => vectorArb.map((vector) => ({ ...f, vector }))) },
        {
          weight: 3,
          arbitrary: fc
            .array(
              fc.record(
                {
                  collection: fc.constantFrom('artists', 'users', 'nope'),
                  item: idArb,
                  vector: vectorArb,
                  k: intish(1, 1000),
                  ef: intish(1, 10_000),
                  filter: filterArb,
                },
                { requiredKeys: ['collection'] },
              ),
              { minLength: 0, maxLength: 8 },
            )
            .map((queries) => ({ queries })),
        },
        {
          weight: 1,
          arbitrary: fc.constantFrom('{', 'null', '[]', '"x"', '', `{"vector":[1e999${',1'.repeat(31)}]}`),
        },
      ),
      textType: fc.oneof(
        { weight: 12, arbitrary: fc.constant('') },
        { weight: 1, arbitrary: fc.constantFrom('text/plain', 'application/xml') },
      ),
    })
    .map((g): Req => {
      const method = g.method || g.op.method;
      // What moves a pointer or records an erasure goes to a space no other check reads.
      const admin = /\/(activate|rollback|restore)$/.test(g.op.template) || method === 'DELETE';
      let path = g.op.template
        .replace('{space}', admin ? 'scratch' : g.space)
        .replace('{collection}', g.collection)
        .replace('{id}', g.id.startsWith('%') ? g.id : encodeURIComponent(g.id))
        .replace('{version}', g.version);
      if (g.slash === 'trailing') path += '/';
      if (g.slash === 'double') path = path.replace('/v1/', '/v1//');
      const known = paramsOf(g.op.op);
      const chosen = Object.keys(g.params).filter((p) => known.includes(p));
      const qs = chosen.map((p) => `${p}=${g.values[p]}`);
      if (g.op.template.endsWith('/diff') && !chosen.includes('to')) qs.push('to=v1');
      if (g.stray) qs.push(g.stray);
      if (qs.length) path += `?${qs.join('&')}`;
      if (method !== 'POST' && method !== 'DELETE') return { method, path };
      const body = typeof g.body === 'string' ? g.body : JSON.stringify(g.body);
      return { method, path, body, ...(g.textType ? { headers: { 'content-type': g.textType } } : {}) };
    });
}
