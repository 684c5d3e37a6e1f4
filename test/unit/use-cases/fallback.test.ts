import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SnapshotUnavailableError } from '../../../functions/core/errors';
import type { SearchParams } from '../../../functions/core/query';
import { requestContext } from '../../../functions/query/context';
import { QueryService } from '../../../functions/query/service';
import { type Manifest, manifestKey } from '../../../functions/snapshot/manifest';
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

  it('answers unpinned requests from the last good version when the newly active snapshot is broken', async () => {
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
      message: 'active snapshot unavailable; serving the last good version',
    });
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
});
