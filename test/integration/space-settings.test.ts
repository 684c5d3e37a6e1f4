/**
 * A space's settings (PUT /v1/spaces/{space}/settings, admin) on one local stack with build tasks, each
 * test on its own spaces (any order):
 * - `deleteInputsAfterBuild` on the space deletes a release's inputs once its build ends, READY or
 *   FAILED, plain or sharded; off (the default) they stay; release.json's own field decides for its release;
 * - a settings write that races the space's deletion is taken back;
 * - GET /v1/spaces stops listing a space once DELETE /v1/spaces/{space} is accepted.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDynamoClient } from '../../functions/adapters/aws-clients';
import { DynamoRegistry } from '../../functions/adapters/dynamo-registry';
import { settingsRoutes } from '../../functions/admin/settings';
import { NotFoundError } from '../../functions/core/errors';
import { silentLog } from '../../functions/core/ports';
import type { SpaceSettings } from '../../functions/core/space-settings';
import { httpEvent } from '../../local/http-adapter';
import { LOCAL_CREDENTIALS, LOCAL_REGION } from '../../local/standins';
import { clusteredVectors, jsonlRows } from '../../local/synthetic';
import { type TestStack, testStack } from '../support/local';
import { versionSettled } from '../support/settle';

const DIMS = 8;
const range = (n: number) => Array.from({ length: n }, (_, i) => `i${i}`);

function release(extra: Record<string, unknown> = {}, shards?: number) {
  const ids = range(60);
  const v = clusteredVectors(ids.length, DIMS, 3, 5);
  return {
    files: { 'items.jsonl': jsonlRows(ids, v.vectors, DIMS) },
    json: {
      collections: { items: { file: 'items.jsonl', metric: 'cosine', ...(shards ? { shards } : {}) } },
      activate: true,
      ...extra,
    },
  };
}

describe('space settings', () => {
  let s: TestStack;
  const call = async (method: string, path: string, body?: unknown) => {
    const { status, body: answer } = await s.call(method, path, body);
    return { status, body: answer };
  };
  const inputs = async (space: string, rel: string) =>
    (await s.store.list(`incoming/${space}/${rel}/`)).map((o) =>
      o.key.slice(`incoming/${space}/${rel}/`.length),
    );
  beforeAll(async () => {
    s = await testStack({ qualitySample: 20 }, undefined, { tasks: { concurrency: 2, retryDelayMs: 100 } });
  }, 60_000);
  afterAll(async () => {
    await s?.dispose();
  });

  it('deletes every release input after READY and FAILED with the space setting on, keeps them off', async () => {
    // Off by default: the inputs stay, and the space shows its settings.
    const off = release();
    expect((await s.publish('set', 'r-off', off.files, off.json))[0]?.status).toBe('READY');
    expect((await inputs('set', 'r-off')).sort()).toEqual(['items.jsonl', 'release.json']);
    expect((await s.get('/v1/spaces/set')).body.settings).toEqual({ deleteInputsAfterBuild: false });

    expect((await call('PUT', '/v1/spaces/set/settings', { deleteInputsAfterBuild: 'yes' })).status).toBe(
      400,
    );
    const put = await call('PUT', '/v1/spaces/set/settings', { deleteInputsAfterBuild: true });
    expect(put).toEqual({ status: 200, body: { space: 'set', settings: { deleteInputsAfterBuild: true } } });
    expect((await s.get('/v1/spaces/set')).body.settings).toEqual({ deleteInputsAfterBuild: true });

    const ready = release();
    expect((await s.publish('set', 'r-ready', ready.files, ready.json))[0]?.status).toBe('READY');
    expect(await inputs('set', 'r-ready')).toEqual([]);

    const failed = release();
    failed.files['items.jsonl'] += '{"id":"bad","vector":[1,2]}\n';
    expect((await s.publish('set', 'r-failed', failed.files, failed.json))[0]?.status).toBe('FAILED');
    expect(await inputs('set', 'r-failed')).toEqual([]);

    // release.json's own false decides for its release.
    const kept = release({ deleteInputsAfterBuild: false });
    expect((await s.publish('set', 'r-kept', kept.files, kept.json))[0]?.status).toBe('READY');
    expect((await inputs('set', 'r-kept')).sort()).toEqual(['items.jsonl', 'release.json']);

    // The sharded path (partition and shard tasks, then the fan-in) follows the space setting too.
    const sharded = release({}, 2);
    await s.publish('set', 'r-sharded', sharded.files, sharded.json);
    expect(await versionSettled(s, 'set', 'v5')).toMatchObject({ status: 'READY', release: 'r-sharded' });
    // The sharded path deletes inputs in its last task, after READY: wait for the tasks to be done.
    await s.idle();
    expect(await inputs('set', 'r-sharded')).toEqual([]);

    // Off again: the next release keeps its inputs; the earlier ones, kept, are untouched.
    expect((await call('PUT', '/v1/spaces/set/settings', { deleteInputsAfterBuild: false })).status).toBe(
      200,
    );
    const later = release();
    expect((await s.publish('set', 'r-later', later.files, later.json))[0]?.status).toBe('READY');
    expect((await inputs('set', 'r-later')).sort()).toEqual(['items.jsonl', 'release.json']);
    expect((await inputs('set', 'r-off')).sort()).toEqual(['items.jsonl', 'release.json']);
  }, 180_000);

  it('a space configured before its first release deletes that release inputs; a space being deleted refuses settings', async () => {
    expect((await call('PUT', '/v1/spaces/fresh/settings', { deleteInputsAfterBuild: true })).status).toBe(
      200,
    );
    const first = release();
    expect((await s.publish('fresh', 'r1', first.files, first.json))[0]?.status).toBe('READY');
    expect(await inputs('fresh', 'r1')).toEqual([]);

    const pointer = (await s.get('/v1/spaces/fresh')).body.pointer as { generation: number };
    expect(
      (await call('DELETE', '/v1/spaces/fresh', { expectedGeneration: pointer.generation })).status,
    ).toBe(202);
    expect((await call('PUT', '/v1/spaces/fresh/settings', { deleteInputsAfterBuild: false })).status).toBe(
      404,
    );
  }, 120_000);

  it('takes a settings write back when the space’s deletion is accepted between its check and its write', async () => {
    const r = release();
    expect((await s.publish('racing', 'r1', r.files, r.json))[0]?.status).toBe('READY');
    const dynamo = createDynamoClient({
      region: LOCAL_REGION,
      dynamodbEndpoint: s.info.dynamodbEndpoint,
      credentials: LOCAL_CREDENTIALS,
    });
    // The deletion lands after the route's check, just before its write.
    class Racing extends DynamoRegistry {
      override async putSpaceSettings(space: string, settings: SpaceSettings): Promise<void> {
        const { generation } = await this.getPointer(space);
        await this.markSpaceDeleting({
          space,
          requestedAt: new Date().toISOString(),
          by: 'test',
          includeInputs: false,
          generation,
        });
        await super.putSpaceSettings(space, settings);
      }
    }
    try {
      const registry = new Racing(dynamo, s.info.table);
      const [route] = settingsRoutes(registry, silentLog);
      const event = httpEvent({
        method: 'PUT',
        path: '/v1/spaces/racing/settings',
        requestId: 'race-1',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ deleteInputsAfterBuild: true }),
      });
      await expect(route?.handler({ event, params: { space: 'racing' }, query: {} })).rejects.toBeInstanceOf(
        NotFoundError,
      );
      // No settings item is left for a later space of that name.
      expect(await registry.getSpaceSettings('racing')).toEqual({ deleteInputsAfterBuild: false });
    } finally {
      dynamo.destroy();
    }
  }, 120_000);

  it('GET /v1/spaces leaves a space out once its deletion is accepted', async () => {
    const r = release();
    await s.publish('gone', 'r1', r.files, r.json);
    await s.publish('stays', 'r1', r.files, r.json);
    const listed = async () =>
      ((await s.get('/v1/spaces')).body.spaces as { space: string; active: unknown }[]).map((x) => x.space);
    expect(await listed()).toEqual(expect.arrayContaining(['gone', 'stays']));

    const pointer = (await s.get('/v1/spaces/gone')).body.pointer as { generation: number };
    expect((await call('DELETE', '/v1/spaces/gone', { expectedGeneration: pointer.generation })).status).toBe(
      202,
    );
    const after = await listed();
    expect(after).toContain('stays');
    expect(after).not.toContain('gone');
  }, 120_000);
});
