/**
 * The erasure use cases on the in-memory ports: the admin routes (erase, restore, list, delete a
 * space), the purge step (snapshots rewritten, statuses, the uploads still holding the id), a space
 * deletion finished, and a release's inputs deleted after its build when it asks. Each test has its
 * own harness (store, registry, cache directory).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { erasureRoutes } from '../../../functions/admin/erasure';
import { claimVersion } from '../../../functions/builder/claim';
import { deleteInputsIfAsked } from '../../../functions/builder/inputs';
import type { HttpEvent } from '../../../functions/common/http';
import { httpStatus } from '../../../functions/common/problem';
import { createRouter } from '../../../functions/common/router';
import { MAX_ERASE_IDS } from '../../../functions/core/erasure';
import { silentLog } from '../../../functions/core/ports';
import { finishSpaceDeletion, type PurgeReport, purgeSpace } from '../../../functions/sweeper/purge';
import { sweep } from '../../../functions/sweeper/sweep';
import { type Harness, harness, jsonl } from '../../support/memory/harness';

const NOW = new Date('2026-11-30T12:00:00.000Z');

function event(method: string, path: string, body?: unknown, query?: Record<string, string>): HttpEvent {
  return {
    rawPath: path,
    requestContext: { http: { method } },
    ...(query ? { queryStringParameters: query } : {}),
    ...(body === undefined
      ? {}
      : { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } }),
  } as unknown as HttpEvent;
}

const releaseJson = (extra: Record<string, unknown> = {}) => ({
  collections: { items: { file: 'items.jsonl', metric: 'cosine' } },
  activate: true,
  ...extra,
});

describe('erasure use cases (in-memory ports)', () => {
  let h: Harness | undefined;
  let workDir: string | undefined;
  afterEach(async () => {
    await h?.dispose();
    if (workDir) await rm(workDir, { recursive: true, force: true });
    h = undefined;
    workDir = undefined;
  });

  /** The admin routes over the harness registry; a call answers status and body, errors mapped like the edge. */
  const admin = (x: Harness) => {
    const route = createRouter(erasureRoutes(x.registry, silentLog, () => NOW));
    return async (method: string, path: string, body?: unknown, query?: Record<string, string>) => {
      try {
        const r = await route(event(method, path, body, query));
        return { status: r.statusCode, body: JSON.parse(r.body as string) as Record<string, unknown> };
      } catch (err) {
        return { status: httpStatus(err), body: { detail: (err as Error).message } };
      }
    };
  };
  const built = async (space = 'sp') => {
    h = await harness();
    await h.build(await h.publish(space, 'r1', { 'items.jsonl': jsonl('i', 40, 1) }, releaseJson()));
    return h;
  };
  const purge = async (x: Harness, space: string) => {
    workDir ??= await mkdtemp(join(tmpdir(), 'vicinity-unit-purge-'));
    const report: PurgeReport = { rewritten: [], purged: 0, deletedObjects: 0 };
    await purgeSpace(
      { store: x.store, registry: x.registry, log: silentLog, workDir, graceMs: 0, now: () => NOW },
      'sp',
      await x.registry.getSpaceState(space),
      report,
    );
    return report;
  };

  it('records one ERASED erasure per distinct id and moves both counters', async () => {
    const x = await built();
    const call = admin(x);
    const r = await call('DELETE', '/v1/spaces/sp/collections/items/items/i1', {
      by: 'dpo',
      reason: 'GDPR art. 17',
      ids: ['i2', 'i1', 'i2'],
    });
    expect(r.status).toBe(202);
    expect((r.body.erasures as { id: string }[]).map((e) => e.id)).toEqual(['i1', 'i2']);
    const state = await x.registry.getSpaceState('sp');
    expect(state.erasureCounter).toBe(1);
    expect(state.erasureAdded).toBe(1);
    const list = await x.registry.listErasures('sp');
    expect(list.map((e) => [e.id, e.status, e.by, e.reason, e.erasedAt])).toEqual([
      ['i1', 'ERASED', 'dpo', 'GDPR art. 17', NOW.toISOString()],
      ['i2', 'ERASED', 'dpo', 'GDPR art. 17', NOW.toISOString()],
    ]);
  });

  it('refuses more ids than one request may carry, an invalid id and an unknown body field', async () => {
    const x = await built();
    const call = admin(x);
    const many = Array.from({ length: MAX_ERASE_IDS + 1 }, (_, i) => `x${i}`);
    expect((await call('DELETE', '/v1/spaces/sp/collections/items/items/i1', { ids: many })).status).toBe(
      400,
    );
    expect((await call('DELETE', '/v1/spaces/sp/collections/items/items/i1', { why: 'x' })).status).toBe(400);
    expect((await call('DELETE', '/v1/spaces/sp/collections/items/items/i1', { ids: [''] })).status).toBe(
      400,
    );
    expect(await x.registry.listErasures('sp')).toEqual([]);
  });

  it('restores an erasure (recorded, counter moved) and answers 404 for one never made', async () => {
    const x = await built();
    const call = admin(x);
    await call('DELETE', '/v1/spaces/sp/collections/items/items/i1');
    const before = (await x.registry.getSpaceState('sp')).erasureCounter;
    const r = await call('POST', '/v1/spaces/sp/collections/items/items/i1/restore', {
      by: 'dpo',
      reason: 'consent',
    });
    expect(r.status).toBe(200);
    expect(r.body.erasure).toMatchObject({ status: 'RESTORED', restoredBy: 'dpo', restoreReason: 'consent' });
    expect((await x.registry.getSpaceState('sp')).erasureCounter).toBe(before + 1);
    expect((await call('POST', '/v1/spaces/sp/collections/items/items/i9/restore')).status).toBe(404);
  });

  it('lists erasures filtered by status, and refuses an unknown status', async () => {
    const x = await built();
    const call = admin(x);
    await call('DELETE', '/v1/spaces/sp/collections/items/items/i1', { ids: ['i2'] });
    await call('POST', '/v1/spaces/sp/collections/items/items/i2/restore');
    const erased = await call('GET', '/v1/spaces/sp/erasures', undefined, { status: 'ERASED' });
    expect((erased.body.erasures as { id: string }[]).map((e) => e.id)).toEqual(['i1']);
    const all = await call('GET', '/v1/spaces/sp/erasures');
    expect((all.body.erasures as unknown[]).length).toBe(2);
    expect((await call('GET', '/v1/spaces/sp/erasures', undefined, { status: 'GONE' })).status).toBe(400);
  });

  it('deletes a space only at the pointer generation seen; then every route of it is a 404', async () => {
    const x = await built();
    const call = admin(x);
    expect((await call('DELETE', '/v1/spaces/nope', { expectedGeneration: 0 })).status).toBe(404);
    const gen = (await x.registry.getPointer('sp')).generation;
    expect((await call('DELETE', '/v1/spaces/sp', { expectedGeneration: gen + 1 })).status).toBe(409);
    expect((await x.registry.getSpaceState('sp')).deletion).toBeUndefined();
    const del = await call('DELETE', '/v1/spaces/sp', { expectedGeneration: gen, includeInputs: true });
    expect(del.status).toBe(202);
    expect(del.body.deletion).toMatchObject({ space: 'sp', includeInputs: true, generation: gen });
    // Again: the same mark, still 202 (idempotent).
    expect((await call('DELETE', '/v1/spaces/sp', { expectedGeneration: gen })).body.deletion).toEqual(
      del.body.deletion,
    );
    expect((await call('DELETE', '/v1/spaces/sp/collections/items/items/i1')).status).toBe(404);
    expect((await call('POST', '/v1/spaces/sp/collections/items/items/i1/restore')).status).toBe(404);
    expect((await call('GET', '/v1/spaces/sp/erasures')).status).toBe(404);

    const objects = await finishSpaceDeletion(
      { ...x, log: silentLog },
      'sp',
      await x.registry.getSpaceState('sp'),
    );
    expect(objects).toBeGreaterThan(0);
    expect(await x.store.list('snapshots/sp/')).toEqual([]);
    expect(await x.store.list('incoming/sp/')).toEqual([]);
    expect((await x.registry.listVersions('sp', 10)).versions).toEqual([]);
    expect(await x.registry.listSpaces()).not.toContain('sp');
  });

  it('purges: the version switches to a manifest without the id, the erasure is PURGED with the uploads holding it', async () => {
    const x = await built();
    await x.build(await x.publish('sp', 'r2', { 'items.jsonl': jsonl('j', 30, 2) }, releaseJson()));
    await admin(x)('DELETE', '/v1/spaces/sp/collections/items/items/i5', { ids: ['nowhere'] });
    const report = await purge(x, 'sp');
    expect(report.rewritten.map((r) => [r.version, r.removed])).toEqual([['v1', { items: 1 }]]);
    expect(report.purged).toBe(2);
    const v1 = await x.registry.getVersion('sp', 'v1');
    expect(v1?.manifestGeneration).toBe(1);
    const manifest = await x.store.getText(v1?.manifestKey as string);
    expect(manifest).toBeDefined();
    for (const o of await x.store.list('snapshots/sp/v1/'))
      expect(await x.store.getText(o.key), o.key).not.toContain('"i5"');
    const list = await x.registry.listErasures('sp');
    expect(list.map((e) => [e.id, e.status, e.purgedAt, e.incomingReleases])).toEqual([
      ['i5', 'PURGED', NOW.toISOString(), ['r1']],
      ['nowhere', 'PURGED', NOW.toISOString(), []],
    ]);
    // Nothing left: a second purge rewrites nothing.
    expect((await purge(x, 'sp')).rewritten).toEqual([]);
  });

  it('a build after an erasure leaves the id out and counts it; after a restore the next build keeps it', async () => {
    const x = await built();
    const call = admin(x);
    await call('DELETE', '/v1/spaces/sp/collections/items/items/i3');
    await x.build(await x.publish('sp', 'r2', { 'items.jsonl': jsonl('i', 40, 3) }, releaseJson()));
    const v2 = await x.registry.getVersion('sp', 'v2');
    expect(v2?.collections?.items).toMatchObject({ count: 39, erasedDropped: 1 });
    await call('POST', '/v1/spaces/sp/collections/items/items/i3/restore');
    await x.build(await x.publish('sp', 'r3', { 'items.jsonl': jsonl('i', 40, 4) }, releaseJson()));
    expect((await x.registry.getVersion('sp', 'v3'))?.collections?.items?.count).toBe(40);
  });

  it('deletes a release inputs after its build only when release.json asks for it', async () => {
    h = await harness();
    const x = h;
    await x.build(await x.publish('sp', 'keep', { 'items.jsonl': jsonl('i', 30, 1) }, releaseJson()));
    expect((await x.store.list('incoming/sp/keep/')).length).toBe(2);
    await x.build(
      await x.publish(
        'sp',
        'drop',
        { 'items.jsonl': jsonl('i', 30, 1) },
        releaseJson({ deleteInputsAfterBuild: true }),
      ),
    );
    expect(await x.store.list('incoming/sp/drop/')).toEqual([]);
    // FAILED too (a row without a vector), as long as release.json parses.
    const bad = await x.build(
      await x.publish(
        'sp',
        'bad',
        { 'items.jsonl': '{"id":"x"}\n' },
        releaseJson({ deleteInputsAfterBuild: true }),
      ),
    );
    expect(bad.status).toBe('FAILED');
    expect(await x.store.list('incoming/sp/bad/')).toEqual([]);
    // An abandoned build the sweeper FAILS: its build has ended too.
    const lost = await x.publish(
      'sp',
      'lost',
      { 'items.jsonl': jsonl('i', 30, 1) },
      releaseJson({ deleteInputsAfterBuild: true }),
    );
    await claimVersion(x.registry, lost, new Date(NOW.getTime() - 2 * 3_600_000));
    const swept = await sweep({ ...x.deps(), now: () => NOW, staleMs: 3_600_000, graceMs: 0 });
    expect(swept.failed.map((f) => f.version)).toEqual(['v4']);
    expect(await x.store.list('incoming/sp/lost/')).toEqual([]);
    // release.json that is not JSON: the wish cannot be read, the space setting (default off) decides.
    const deps = { store: x.store, log: silentLog, registry: x.registry };
    await x.store.putText('incoming/sp/junk/release.json', '{"deleteInputsAfterBuild": true');
    expect(await deleteInputsIfAsked(deps, 'sp', 'junk')).toBe(0);
    expect((await x.store.list('incoming/sp/junk/')).length).toBe(1);
  });

  it('follows the space setting unless release.json says otherwise for its release', async () => {
    h = await harness();
    const x = h;
    const deps = { store: x.store, log: silentLog, registry: x.registry };
    const put = async (release: string, body: string) => {
      await x.store.putText(`incoming/s2/${release}/items.jsonl`, '{"id":"a"}\n');
      await x.store.putText(`incoming/s2/${release}/release.json`, body);
    };
    await put('silent', '{"dims":2}');
    await put('keep', '{"deleteInputsAfterBuild":false}');
    await put('junk', '{not json');
    // Off (the default): a silent release.json keeps its inputs.
    expect(await deleteInputsIfAsked(deps, 's2', 'silent')).toBe(0);
    await x.registry.putSpaceSettings('s2', { deleteInputsAfterBuild: true });
    expect(await x.registry.getSpaceSettings('s2')).toEqual({ deleteInputsAfterBuild: true });
    // On: release.json's explicit false wins for its release; silence and junk follow the space.
    expect(await deleteInputsIfAsked(deps, 's2', 'keep')).toBe(0);
    expect(await x.store.list('incoming/s2/keep/')).toHaveLength(2);
    expect(await deleteInputsIfAsked(deps, 's2', 'silent')).toBe(2);
    expect(await deleteInputsIfAsked(deps, 's2', 'junk')).toBe(2);
    expect(await x.store.list('incoming/s2/silent/')).toEqual([]);
    expect(await x.store.list('incoming/s2/junk/')).toEqual([]);
  });
});
