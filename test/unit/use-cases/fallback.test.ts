import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { hnswEngine } from '../../../functions/adapters/hnsw-index';
import { NotFoundError, SnapshotUnavailableError } from '../../../functions/core/errors';
import type { SearchParams } from '../../../functions/core/query';
import { requestContext } from '../../../functions/query/context';
import { QueryService } from '../../../functions/query/service';
import { STALE_IF_ERROR_MS } from '../../../functions/query/versions';
import { SnapshotCache } from '../../../functions/snapshot/cache';
import { type Manifest, manifestKey, snapshotPrefix } from '../../../functions/snapshot/manifest';
import { manualClock } from '../../support/clock';
import { DIMS, type Harness, harness, jsonl, recordingLog } from '../../support/memory/harness';

const SPACE = 'music';
const tracksOnly = { collections: { tracks: { file: 'tracks.jsonl', metric: 'cosine' } } };
const params: SearchParams = {
  k: 3,
  exclude: [],
  excludeSeen: false,
  includeMetadata: false,
  consistency: 'eventual',
};
const vector = Array.from({ length: DIMS }, (_, i) => (i === 0 ? 1 : 0));

describe('version fallback on the in-memory ports', () => {
  let h: Harness;
  beforeEach(async () => {
    h = await harness();
  });
  afterEach(async () => h.dispose());

  const publishAndBuild = async (release: string, prefix: string, seed: number) =>
    h.build(await h.publish(SPACE, release, { 'tracks.jsonl': jsonl(prefix, 40, seed) }, tracksOnly));

  /** Flips a byte inside v's index file: its sha256 no longer matches the manifest. */
  async function breakSnapshot(version: string): Promise<void> {
    const manifest = JSON.parse((await h.store.getText(manifestKey(SPACE, version))) as string) as Manifest;
    const index = manifest.collections.tracks?.segments[0]?.files.index;
    if (!index) throw new Error('no index file in the manifest');
    h.store.corrupt(index.key, Math.floor(index.bytes / 2));
  }

  async function service(log = recordingLog()) {
    return new QueryService({
      registry: h.registry,
      cache: await h.snapshotCache(log),
      pointerTtlMs: 0,
      log,
    });
  }

  /** A cache wired as the query handler wires it: it asks the registry whether a missing version is gone. */
  function wiredCache(dir = join(h.cacheDir, 'wired')) {
    return new SnapshotCache(h.store, hnswEngine, {
      cacheDir: dir,
      memoryBudgetBytes: 1 << 30,
      log: recordingLog(),
      versionGone: async (space, version) => {
        const r = await h.registry.getVersion(space, version);
        return !r || r.status === 'DELETED';
      },
    });
  }

  /** What retention does: the record goes DELETED, then the snapshot's objects go. */
  async function retire(version: string, objects = true): Promise<void> {
    expect(await h.registry.transitionStatus(SPACE, version, 'READY', 'DELETED')).toBe(true);
    if (objects)
      await h.store.deleteKeys((await h.store.list(snapshotPrefix(SPACE, version))).map((o) => o.key));
  }

  it("answers unpinned requests from the pointer's previous version when the newly active snapshot is broken", async () => {
    await publishAndBuild('r1', 'a', 1);
    const log = recordingLog();
    const query = await service(log);
    expect((await query.query(SPACE, 'tracks', vector, params, requestContext())).version).toBe('v1');

    expect(await publishAndBuild('r2', 'b', 2)).toMatchObject({
      version: 'v2',
      activation: { activated: true },
    });
    await breakSnapshot('v2');

    const answer = await query.query(SPACE, 'tracks', vector, params, requestContext());
    expect(answer.version).toBe('v1');
    expect(answer.results).toHaveLength(3);
    expect(answer.results.every((r) => r.id.startsWith('a'))).toBe(true);
    expect(log.lines).toContainEqual({
      level: 'warn',
      message: "active snapshot unavailable; serving the pointer's previous version",
    });
  });

  it("falls back to the pointer's previous version, not to the last version this instance served", async () => {
    await publishAndBuild('r1', 'a', 1);
    const query = await service();
    expect((await query.query(SPACE, 'tracks', vector, params, requestContext())).version).toBe('v1');
    // The pointer moves on twice while this instance serves nothing: v3 active, v2 previous.
    await publishAndBuild('r2', 'b', 2);
    await publishAndBuild('r3', 'c', 3);
    await breakSnapshot('v3');
    const answer = await query.query(SPACE, 'tracks', vector, params, requestContext());
    expect(answer.version).toBe('v2');
    expect(answer.results.every((r) => r.id.startsWith('b'))).toBe(true);
  });

  it('answers 503 rather than from a previous version the registry no longer calls READY', async () => {
    await publishAndBuild('r1', 'a', 1);
    await publishAndBuild('r2', 'b', 2);
    const query = await service();
    expect((await query.query(SPACE, 'tracks', vector, params, requestContext())).version).toBe('v2');
    await publishAndBuild('r3', 'c', 3);
    await breakSnapshot('v3');
    expect((await query.query(SPACE, 'tracks', vector, params, requestContext())).version).toBe('v2');
    // Retention (or an operator) marks the previous version DELETED: nothing may answer from it.
    await retire('v2', false);
    const after = query.query(SPACE, 'tracks', vector, params, requestContext());
    await expect(after).rejects.toBeInstanceOf(SnapshotUnavailableError);
    await expect(after).rejects.toMatchObject({ kind: 'unavailable' });
  });

  it('answers 404, never a cached 503, to a pinned request racing retention', async () => {
    await publishAndBuild('r1', 'a', 1);
    await publishAndBuild('r2', 'b', 2);
    const cache = wiredCache();
    // The resolver read v1 READY just before retention ran (a cached record, or a read racing it).
    const stale = await h.registry.getVersion(SPACE, 'v1');
    const registry = Object.create(h.registry) as typeof h.registry;
    registry.getVersion = async (space, version) =>
      version === 'v1' ? stale : h.registry.getVersion(space, version);
    const query = new QueryService({ registry, cache, pointerTtlMs: 0, log: recordingLog() });
    const pinned = { ...params, version: 'v1' };
    await expect(query.query(SPACE, 'nope', vector, pinned, requestContext())).rejects.toBeInstanceOf(
      NotFoundError,
    );
    await retire('v1');
    // The files are gone and the registry says DELETED: 404, first through the download...
    const first = query.query(SPACE, 'tracks', vector, pinned, requestContext());
    await expect(first).rejects.toBeInstanceOf(NotFoundError);
    await expect(first).rejects.toMatchObject({ kind: 'not-found', message: /deleted/ });
    // ...then through the manifest; and nothing was cached as a broken snapshot.
    const again = query.query(SPACE, 'tracks', vector, pinned, requestContext());
    await expect(again).rejects.toBeInstanceOf(NotFoundError);
    expect(cache.loaded()).toEqual([]);
    expect((await query.query(SPACE, 'tracks', vector, params, requestContext())).version).toBe('v2');
  });

  it('stops answering from a version held in memory once the registry marks it DELETED', async () => {
    await publishAndBuild('r1', 'a', 1);
    await publishAndBuild('r2', 'b', 2);
    const dir = join(h.cacheDir, 'held');
    const cache = wiredCache(dir);
    const clock = manualClock();
    const query = new QueryService({
      registry: h.registry,
      cache,
      pointerTtlMs: 50,
      log: recordingLog(),
      now: clock.now,
    });
    const pinned = { ...params, version: 'v1' };
    expect((await query.query(SPACE, 'tracks', vector, pinned, requestContext())).version).toBe('v1');
    expect(cache.loaded()).toEqual([`${SPACE}/v1/tracks`]);
    // Marked DELETED, its objects still in the bucket (retention's grace): within the TTL it is a 404.
    await retire('v1', false);
    clock.advance(51);
    await expect(query.query(SPACE, 'tracks', vector, pinned, requestContext())).rejects.toBeInstanceOf(
      NotFoundError,
    );
    // And the instance let go of it: memory at once, local files as soon as rm is done.
    expect(cache.loaded()).toEqual([]);
    await vi.waitFor(() =>
      expect(existsSync(join(dir, ...snapshotPrefix(SPACE, 'v1').split('/')))).toBe(false),
    );
  });

  it("falls back to the pointer's previous version on an instance that has served nothing yet", async () => {
    await publishAndBuild('r1', 'a', 1);
    await publishAndBuild('r2', 'b', 2);
    await breakSnapshot('v2');
    const answer = await (await service()).query(SPACE, 'tracks', vector, params, requestContext());
    expect(answer.version).toBe('v1');
  });

  it('answers a request pinned to the broken version with the unavailable error (503), not with another version', async () => {
    await publishAndBuild('r1', 'a', 1);
    await publishAndBuild('r2', 'b', 2);
    await breakSnapshot('v2');
    const query = await service();
    const pinned = query.query(SPACE, 'tracks', vector, { ...params, version: 'v2' }, requestContext());
    await expect(pinned).rejects.toBeInstanceOf(SnapshotUnavailableError);
    await expect(pinned).rejects.toMatchObject({ kind: 'unavailable', type: 'snapshot-unavailable' });
    // Pinned to the good version, it answers from that version.
    const good = await query.query(SPACE, 'tracks', vector, { ...params, version: 'v1' }, requestContext());
    expect(good.version).toBe('v1');
  });
  it('answers from the pointer last read while the registry cannot be read, for a bounded time; a strong read gets the error', async () => {
    await publishAndBuild('r1', 'a', 1);
    const log = recordingLog();
    const clock = manualClock();
    const query = new QueryService({
      registry: h.registry,
      cache: await h.snapshotCache(log),
      pointerTtlMs: 1000,
      log,
      now: clock.now,
    });
    const ask = (consistency: SearchParams['consistency'] = 'eventual') =>
      query.query(SPACE, 'tracks', vector, { ...params, consistency }, requestContext());
    expect((await ask()).version).toBe('v1');

    // DynamoDB throttled past the SDK's retries.
    const read = vi
      .spyOn(h.registry, 'getSpaceState')
      .mockRejectedValue(new Error('ThrottlingException: Rate of requests exceeds the allowed throughput'));
    clock.advance(1500);
    expect((await ask()).version).toBe('v1');
    expect(
      log.lines.filter((l) => l.message === 'pointer read failed; serving the pointer last read'),
    ).toHaveLength(1);
    // Trusted for another TTL: the requests meanwhile do not try the registry again.
    const tries = read.mock.calls.length;
    expect((await ask()).version).toBe('v1');
    expect(read.mock.calls.length).toBe(tries);
    await expect(ask('strong')).rejects.toThrow(/ThrottlingException/);

    clock.advance(STALE_IF_ERROR_MS);
    await expect(ask()).rejects.toThrow(/ThrottlingException/);

    read.mockRestore();
    expect((await ask()).version).toBe('v1');
  });
});
