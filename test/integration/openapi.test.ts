import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import openapi from '../../docs/openapi.json';
import { adminRoutes as adminRouteTable } from '../../functions/admin/handler';
import { ADMIN_ROUTES, queryRoutes } from '../../functions/query/routes';
import { clusteredVectors, jsonlRows } from '../../local/synthetic';
import { type Schema, validate } from '../support/json-schema';
import { type TestStack, testStack } from '../support/local';

type Doc = {
  paths: Record<string, Record<string, { responses: Record<string, unknown> }>>;
  components: { responses: Record<string, unknown> };
};
const doc = openapi as unknown as Doc;
/**
 * Documented answers this suite does not provoke: a broken snapshot's 503 (atomic.test.ts covers it), and
 * rollback's 404, which needs a pointer whose previous version record is gone.
 */
const NOT_PROVOKED = (key: string) =>
  key.endsWith(' 503') ||
  key === 'POST /v1/spaces/{space}/rollback 404' ||
  // The rules every route shares (405, 415, OPTIONS, unknown parameters) are contract.test.ts's to provoke.
  / (405|415)$/.test(key) ||
  key.startsWith('OPTIONS ') ||
  /^GET \/v1\/(health|openapi\.json|spaces) 400$/.test(key);

function release(seed: number, broken = false) {
  const t = clusteredVectors(300, 16, 4, seed);
  const u = clusteredVectors(50, 16, 4, seed + 1);
  const sh = clusteredVectors(20, 8, 2, seed + 2);
  const trackIds = Array.from({ length: 300 }, (_, i) => `t${i}`);
  return {
    files: {
      'tracks.jsonl': broken
        ? '{"id":"t0","vector":[1,2]}\n{"id":"t1","vector":"x"}\n'
        : jsonlRows(trackIds, t.vectors, 16, (i) => ({
            genre: i % 2 ? 'rock' : 'jazz',
            year: 1990 + (i % 30),
          })),
      'users.jsonl': jsonlRows(
        Array.from({ length: 50 }, (_, i) => `u${i}`),
        u.vectors,
        16,
        (i) => ({ seen: [trackIds[i], trackIds[i + 1]] }),
      ),
      'short.jsonl': jsonlRows(
        Array.from({ length: 20 }, (_, i) => `s${i}`),
        sh.vectors,
        8,
      ),
    },
    json: {
      collections: {
        tracks: { file: 'tracks.jsonl', metric: 'cosine' },
        users: { file: 'users.jsonl', metric: 'cosine' },
        short: { file: 'short.jsonl', metric: 'cosine' },
      },
      seenField: 'seen',
      activate: seed === 1,
    },
  };
}

describe('the OpenAPI document is true of the running API', () => {
  let s: TestStack;
  const vector = Array(16).fill(0.25);

  /**
   * A checker that calls a route, checks the answer's status, content type and body against the
   * document, and notes `METHOD template status` in `exercised`.
   */
  const checker = (exercised: Set<string>) =>
    async function check(
      method: 'GET' | 'POST' | 'DELETE' | 'PUT',
      template: string,
      path: string,
      body?: unknown,
      want?: number,
    ) {
      const r =
        method === 'GET'
          ? await s.get(path)
          : method === 'POST'
            ? await s.post(path, body)
            : await send(method, path, body);
      if (want !== undefined) expect(r.status, `${method} ${path}: ${JSON.stringify(r.body)}`).toBe(want);
      const op = doc.paths[template]?.[method.toLowerCase()];
      expect(op, `${method} ${template} is documented`).toBeDefined();
      let response = op?.responses[String(r.status)] as {
        $ref?: string;
        content?: Record<string, { schema: Schema }>;
      };
      expect(response, `${method} ${template} documents status ${r.status}`).toBeDefined();
      if (response.$ref)
        response = doc.components.responses[response.$ref.split('/').pop() as string] as typeof response;
      const type = r.headers.get('content-type') ?? '';
      const media = response.content?.[type];
      expect(media, `${method} ${template} ${r.status} documents ${type}`).toBeDefined();
      const errors = validate(media?.schema as Schema, r.body, doc);
      expect(errors, `${method} ${path} → ${r.status}: ${JSON.stringify(r.body).slice(0, 300)}`).toEqual([]);
      exercised.add(`${method} ${template} ${r.status}`);
      return r;
    };

  /** A space of its own: v1 active, v2 READY, v3 FAILED — for the checks that move the pointer. */
  let spaces = 0;
  async function threeVersions(name: string): Promise<string> {
    const space = `${name}-${++spaces}`;
    for (const [n, r] of [release(1), release(2), release(3, true)].entries())
      await s.publish(space, `r${n + 1}`, r.files, r.json);
    return space;
  }

  beforeAll(async () => {
    s = await testStack();
    // `o` never moves: only the admin checks switch, and they run on a space of their own.
    const r1 = release(1);
    const r2 = release(2);
    const r3 = release(3, true);
    await s.publish('o', 'r1', r1.files, r1.json);
    await s.publish('o', 'r2', r2.files, r2.json);
    await s.publish('o', 'r3', r3.files, r3.json);
  });
  afterAll(async () => s?.dispose());

  /** A DELETE (the admin erasure routes), its body JSON when there is one. */
  async function send(method: 'DELETE' | 'PUT', path: string, body?: unknown) {
    const res = await fetch(s.info.apiUrl + path, {
      method,
      ...(body === undefined
        ? {}
        : { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } }),
    });
    return { status: res.status, body: (await res.json()) as Record<string, unknown>, headers: res.headers };
  }

  it('documents exactly the routes the handlers serve', () => {
    const key = (r: { method: string; path: string }) => `${r.method} ${r.path}`;
    const served = queryRoutes(undefined as never, undefined as never).map(key);
    const admin = adminRouteTable(undefined as never).map(key);
    // The read router's list of the admin function's routes (for 405/OPTIONS) is the admin route table.
    expect(ADMIN_ROUTES.map(key).sort()).toEqual([...admin].sort());
    expect(
      Object.fromEntries(ADMIN_ROUTES.map((r) => [key(r), r.query ?? []])),
      'ADMIN_ROUTES declares the query parameters the admin routes take',
    ).toEqual(Object.fromEntries(adminRouteTable(undefined as never).map((r) => [key(r), r.query ?? []])));
    const documented = Object.entries(doc.paths).flatMap(([path, ops]) =>
      Object.keys(ops)
        .filter((m) => m !== 'options')
        .map((m) => `${m.toUpperCase()} ${path}`),
    );
    // OPTIONS is documented on every path, and the router answers it on every path.
    for (const ops of Object.values(doc.paths)) expect(Object.keys(ops)).toContain('options');
    expect(documented.sort()).toEqual([...served, ...admin].sort());
  });

  it('serves the document itself at /v1/openapi.json', async () => {
    const r = await checker(new Set())('GET', '/v1/openapi.json', '/v1/openapi.json', undefined, 200);
    expect(r.body).toEqual(openapi);
  });

  async function readRoutes(exercised: Set<string>) {
    const check = checker(exercised);
    await check('GET', '/v1/openapi.json', '/v1/openapi.json', undefined, 200);
    await check('GET', '/v1/health', '/v1/health', undefined, 200);
    await check('GET', '/v1/spaces', '/v1/spaces', undefined, 200);
    const sp = '/v1/spaces/{space}';
    await check('GET', sp, '/v1/spaces/o', undefined, 200);
    await check('GET', sp, '/v1/spaces/nope', undefined, 404);
    await check('GET', sp, '/v1/spaces/No!', undefined, 400);
    await check('GET', `${sp}/versions`, '/v1/spaces/o/versions?limit=2', undefined, 200);
    await check('GET', `${sp}/versions`, '/v1/spaces/o/versions?limit=0', undefined, 400);
    const failed = await check('GET', `${sp}/versions/{version}`, '/v1/spaces/o/versions/v3', undefined, 200);
    expect(failed.body.status).toBe('FAILED');
    await check('GET', `${sp}/versions/{version}`, '/v1/spaces/o/versions/v1', undefined, 200);
    await check('GET', `${sp}/versions/{version}`, '/v1/spaces/o/versions/v99', undefined, 404);
    await check('GET', `${sp}/versions/{version}`, '/v1/spaces/o/versions/latest', undefined, 400);
    await check('GET', `${sp}/history`, '/v1/spaces/o/history', undefined, 200);
    await check('GET', `${sp}/history`, '/v1/spaces/O/history', undefined, 400);
    await check('GET', `${sp}/diff`, '/v1/spaces/o/diff?to=v2&sample=20', undefined, 200);
    await check('GET', `${sp}/diff`, '/v1/spaces/o/diff', undefined, 400);
    await check('GET', `${sp}/diff`, '/v1/spaces/o/diff?to=v99', undefined, 404);
    await check('GET', `${sp}/diff`, '/v1/spaces/o/diff?to=v2&collection=users&target=short', undefined, 422);
  }

  async function searchRoutes(exercised: Set<string>) {
    const check = checker(exercised);
    const c = '/v1/spaces/{space}/collections/{collection}';
    const item = `${c}/items/{id}`;
    await check('GET', item, '/v1/spaces/o/collections/tracks/items/t1', undefined, 200);
    await check('GET', item, '/v1/spaces/o/collections/tracks/items/t1?include=vector', undefined, 200);
    await check('GET', item, '/v1/spaces/o/collections/tracks/items/zzz', undefined, 404);
    await check('GET', item, '/v1/spaces/o/collections/tracks/items/t1?include=all', undefined, 400);
    const prefix = `${c}/items`;
    await check('GET', prefix, '/v1/spaces/o/collections/tracks/items?prefix=t1&limit=3', undefined, 200);
    await check('GET', prefix, '/v1/spaces/o/collections/tracks/items', undefined, 400);
    await check('GET', prefix, '/v1/spaces/o/collections/albums/items?prefix=t', undefined, 404);
    const projection = `${c}/projection`;
    await check(
      'GET',
      projection,
      '/v1/spaces/o/collections/tracks/projection?sample=50&ids=t1',
      undefined,
      200,
    );
    await check('GET', projection, '/v1/spaces/o/collections/tracks/projection?sample=0', undefined, 400);
    await check('GET', projection, '/v1/spaces/o/collections/albums/projection', undefined, 404);
    const similar = `${item}/similar`;
    await check(
      'GET',
      similar,
      '/v1/spaces/o/collections/users/items/u1/similar?target=tracks&excludeSeen=true',
      undefined,
      200,
    );
    await check(
      'GET',
      similar,
      '/v1/spaces/o/collections/tracks/items/t1/similar?includeMetadata=false',
      undefined,
      200,
    );
    await check('GET', similar, '/v1/spaces/o/collections/tracks/items/t1/similar?k=0', undefined, 400);
    await check(
      'GET',
      similar,
      '/v1/spaces/o/collections/tracks/items/t1/similar?target=nope',
      undefined,
      404,
    );
    await check(
      'GET',
      similar,
      '/v1/spaces/o/collections/users/items/u1/similar?target=short',
      undefined,
      422,
    );
    await check(
      'POST',
      similar,
      '/v1/spaces/o/collections/tracks/items/t1/similar',
      { k: 3, filter: { genre: 'rock' } },
      200,
    );
    await check('POST', similar, '/v1/spaces/o/collections/tracks/items/t1/similar', { k: 'ten' }, 400);
    await check(
      'POST',
      similar,
      '/v1/spaces/o/collections/tracks/items/t1/similar',
      { pad: 'x'.repeat(1_100_000) },
      413,
    );
    await check('POST', similar, '/v1/spaces/o/collections/tracks/items/nope/similar', {}, 404);
    await check('POST', similar, '/v1/spaces/o/collections/users/items/u1/similar', { target: 'short' }, 422);
    const query = `${c}/query`;
    await check('POST', query, '/v1/spaces/o/collections/tracks/query', { vector, k: 5 }, 200);
    await check('POST', query, '/v1/spaces/o/collections/tracks/query', { vector: [1] }, 400);
    await check('POST', query, '/v1/spaces/o/collections/albums/query', { vector }, 404);
    await check(
      'POST',
      query,
      '/v1/spaces/o/collections/tracks/query',
      { vector, pad: 'x'.repeat(1_100_000) },
      413,
    );
    const batch = '/v1/spaces/{space}/batch';
    const b = await check(
      'POST',
      batch,
      '/v1/spaces/o/batch',
      {
        queries: [
          { collection: 'tracks', item: 't1', k: 2 },
          { collection: 'tracks', vector, k: 2 },
          { collection: 'tracks', item: 'nope' },
          { collection: 'tracks' },
        ],
      },
      200,
    );
    expect((b.body.results as { status: number }[]).map((r) => r.status)).toEqual([200, 200, 404, 400]);
    await check('POST', batch, '/v1/spaces/o/batch', { queries: [] }, 400);
    await check(
      'POST',
      batch,
      '/v1/spaces/none/batch',
      { queries: [{ collection: 'tracks', item: 't1' }] },
      404,
    );
    await check(
      'POST',
      batch,
      '/v1/spaces/o/batch',
      { queries: [{ collection: 'tracks', vector: Array(150_000).fill(0.123456) }] },
      413,
    );
  }

  async function adminRoutes(exercised: Set<string>) {
    const check = checker(exercised);
    const o = await threeVersions('admin');
    const act = '/v1/spaces/{space}/activate';
    const rb = '/v1/spaces/{space}/rollback';
    await check('POST', act, `/v1/spaces/${o}/activate`, { version: 'v2', expectedGeneration: 1 }, 200);
    await check('POST', act, `/v1/spaces/${o}/activate`, { version: 'v1', expectedGeneration: 1 }, 409);
    await check('POST', act, `/v1/spaces/${o}/activate`, { version: 'v99', expectedGeneration: 2 }, 404);
    await check('POST', act, `/v1/spaces/${o}/activate`, { version: 'v3', expectedGeneration: 2 }, 422);
    await check('POST', act, `/v1/spaces/${o}/activate`, { version: 'v1' }, 400);
    await check(
      'POST',
      act,
      `/v1/spaces/${o}/activate`,
      { version: 'v1', expectedGeneration: 2, pad: 'x'.repeat(1_100_000) },
      413,
    );
    await check('POST', rb, `/v1/spaces/${o}/rollback`, { expectedGeneration: 2 }, 200);
    await check('POST', rb, `/v1/spaces/${o}/rollback`, { expectedGeneration: 2 }, 409);
    await check('POST', rb, `/v1/spaces/${o}/rollback`, {}, 400);
    await check(
      'POST',
      rb,
      `/v1/spaces/${o}/rollback`,
      { expectedGeneration: 3, pad: 'x'.repeat(1_100_000) },
      413,
    );
    await check('POST', rb, '/v1/spaces/none/rollback', { expectedGeneration: 0 }, 422);
    const pointer = await s.get(`/v1/spaces/${o}`);
    expect(pointer.body.active).toMatchObject({ version: 'v1', generation: 3 });
  }

  /** Erasure, restore, the erasure list and space deletion, on a space of its own (deleted at the end). */
  async function erasureRoutes(exercised: Set<string>) {
    const check = checker(exercised);
    const e = `erase-${++spaces}`;
    const r = release(1);
    await s.publish(e, 'r1', r.files, r.json);
    const item = '/v1/spaces/{space}/collections/{collection}/items/{id}';
    const at = (id: string) => `/v1/spaces/${e}/collections/tracks/items/${id}`;
    const pad = 'x'.repeat(1_100_000);
    const erased = await check('DELETE', item, at('t1'), { reason: 'request', by: 'test', ids: ['t2'] }, 202);
    expect((erased.body.erasures as { id: string }[]).map((x) => x.id)).toEqual(['t1', 't2']);
    await check('DELETE', item, at('t3'), undefined, 202);
    await check('DELETE', item, at('t4'), { ids: 't5' }, 400);
    await check('DELETE', item, at('t4'), { bogus: 1 }, 400);
    await check('DELETE', item, at('t4'), { reason: pad }, 413);
    const restore = `${item}/restore`;
    await check('POST', restore, `${at('t1')}/restore`, { reason: 're-consent' }, 200);
    await check('POST', restore, `${at('t9')}/restore`, {}, 404);
    await check('POST', restore, `${at('t2')}/restore`, { bogus: 1 }, 400);
    await check('POST', restore, `${at('t2')}/restore`, { reason: pad }, 413);
    const list = '/v1/spaces/{space}/erasures';
    const all = await check('GET', list, `/v1/spaces/${e}/erasures`, undefined, 200);
    expect((all.body.erasures as unknown[]).length).toBe(3);
    await check('GET', list, `/v1/spaces/${e}/erasures?status=RESTORED`, undefined, 200);
    await check('GET', list, `/v1/spaces/${e}/erasures?status=gone`, undefined, 400);
    const sp = '/v1/spaces/{space}';
    const settings = `${sp}/settings`;
    const put = await check(
      'PUT',
      settings,
      `/v1/spaces/${e}/settings`,
      { deleteInputsAfterBuild: true },
      200,
    );
    expect(put.body.settings).toEqual({ deleteInputsAfterBuild: true });
    await check('PUT', settings, `/v1/spaces/${e}/settings`, { deleteInputsAfterBuild: 1 }, 400);
    await check('PUT', settings, `/v1/spaces/${e}/settings`, { deleteInputsAfterBuild: true, pad }, 413);
    const generation = ((await s.get(`/v1/spaces/${e}`)).body.pointer as { generation: number }).generation;
    await check('DELETE', sp, `/v1/spaces/${e}`, { expectedGeneration: generation + 1 }, 409);
    await check('DELETE', sp, `/v1/spaces/${e}`, {}, 400);
    await check('DELETE', sp, `/v1/spaces/${e}`, { expectedGeneration: generation, pad }, 413);
    await check('DELETE', sp, '/v1/spaces/none', { expectedGeneration: 0 }, 404);
    await check('DELETE', sp, `/v1/spaces/${e}`, { expectedGeneration: generation }, 202);
    expect((await s.get(`${at('t7')}?consistency=strong`)).status).toBe(404);
    // A space being deleted takes no more erasures, and its registry reads are a 404 at once.
    await check('DELETE', item, at('t6'), undefined, 404);
    await check('GET', list, `/v1/spaces/${e}/erasures`, undefined, 404);
    await check('PUT', settings, `/v1/spaces/${e}/settings`, { deleteInputsAfterBuild: false }, 404);
    await check('GET', `${sp}/versions`, `/v1/spaces/${e}/versions`, undefined, 404);
    await check('GET', `${sp}/history`, `/v1/spaces/${e}/history`, undefined, 404);
  }

  it('matches the read routes of spaces, versions and history', async () => {
    await readRoutes(new Set());
  });

  it('matches items, similar, vector queries and batches, answers and problems', async () => {
    await searchRoutes(new Set());
  });

  it('matches the admin routes: activate and rollback, with their conflicts', async () => {
    await adminRoutes(new Set());
  });

  it('matches the erasure routes: erase, restore, list, delete a space, with their refusals', async () => {
    await erasureRoutes(new Set());
  });

  it('provoked every documented status of every route (but the 503 of a broken snapshot)', async () => {
    // Provokes them itself (not through the tests above), so it holds whichever tests run, in any order.
    const exercised = new Set<string>();
    await readRoutes(exercised);
    await searchRoutes(exercised);
    await adminRoutes(exercised);
    await erasureRoutes(exercised);
    const missing = Object.entries(doc.paths).flatMap(([path, ops]) =>
      Object.entries(ops).flatMap(([m, op]) =>
        Object.keys(op.responses)
          .map((status) => `${m.toUpperCase()} ${path} ${status}`)
          .filter((key) => !exercised.has(key) && !NOT_PROVOKED(key)),
      ),
    );
    expect(missing).toEqual([]);
  });
});
