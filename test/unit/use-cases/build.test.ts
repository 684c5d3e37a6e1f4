import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Manifest } from '../../../functions/snapshot/manifest';
import { manifestKey, snapshotPrefix } from '../../../functions/snapshot/manifest';
import { type Harness, harness, jsonl } from '../../support/memory/harness';

const twoCollections = (activate = true) => ({
  collections: {
    users: { file: 'users.jsonl', metric: 'cosine' },
    tracks: { file: 'tracks.jsonl', metric: 'l2' },
  },
  activate,
});
const tracksOnly = (activate = true) => ({
  collections: { tracks: { file: 'tracks.jsonl', metric: 'cosine' } },
  activate,
});

describe('buildRelease on the in-memory ports', () => {
  let h: Harness;
  beforeEach(async () => {
    h = await harness();
  });
  afterEach(async () => h.dispose());

  it('builds a release of two collections into a READY version with the right counts and dims, manifest written last', async () => {
    const event = await h.publish(
      'music',
      'r1',
      { 'users.jsonl': jsonl('u', 30, 1, 8), 'tracks.jsonl': jsonl('t', 60, 2, 4) },
      twoCollections(),
    );
    const outcome = await h.build(event);
    expect(outcome).toMatchObject({ status: 'READY', version: 'v1', built: true });

    const record = await h.registry.getVersion('music', 'v1');
    expect(record?.status).toBe('READY');
    expect(record?.manifestKey).toBe(manifestKey('music', 'v1'));
    expect(record?.collections?.users).toMatchObject({ count: 30, dims: 8, metric: 'cosine', segments: 1 });
    expect(record?.collections?.tracks).toMatchObject({ count: 60, dims: 4, metric: 'l2', segments: 1 });

    const manifest = JSON.parse((await h.store.getText(manifestKey('music', 'v1'))) as string) as Manifest;
    expect(manifest.collections.users).toMatchObject({ count: 30, dims: 8, metric: 'cosine' });
    expect(manifest.collections.tracks).toMatchObject({ count: 60, dims: 4, metric: 'l2' });
    // Every file the manifest names is in the store with the size it records.
    for (const c of Object.values(manifest.collections))
      for (const s of c.segments)
        for (const f of Object.values(s.files)) expect((await h.store.head(f.key))?.bytes).toBe(f.bytes);

    const snapshotWrites = h.store.ops
      .filter((o) => o.op === 'put' && o.key.startsWith(snapshotPrefix('music', 'v1')))
      .map((o) => o.key);
    expect(snapshotWrites.length).toBeGreaterThan(1);
    expect(snapshotWrites.at(-1)).toBe(manifestKey('music', 'v1'));
    expect(snapshotWrites.filter((k) => k.endsWith('manifest.json'))).toHaveLength(1);

    expect(await h.registry.getPointer('music')).toMatchObject({
      version: 'v1',
      generation: 1,
      highWater: 1,
    });
    expect(h.events.map((e) => e.type)).toEqual(['VersionReady', 'PointerMoved']);
  });

  it('records a bad row as FAILED naming its file and line, and leaves the pointer where it was', async () => {
    await h.build(await h.publish('music', 'r1', { 'tracks.jsonl': jsonl('a', 40, 1) }, tracksOnly()));
    const before = await h.registry.getPointer('music');
    expect(before).toMatchObject({ version: 'v1', generation: 1 });

    const lines = jsonl('b', 40, 2).split('\n');
    lines[2] = '{"id":"b2","vector":[0.1,0.2]}'; // line 3: 2 values where the collection has 8
    const outcome = await h.build(
      await h.publish('music', 'r2', { 'tracks.jsonl': lines.join('\n') }, tracksOnly()),
    );

    expect(outcome.status).toBe('FAILED');
    expect(outcome.status === 'FAILED' && outcome.reason).toMatch(/^tracks\.jsonl:3: /);
    const record = await h.registry.getVersion('music', 'v2');
    expect(record?.status).toBe('FAILED');
    expect(record?.problems).toEqual([expect.objectContaining({ file: 'tracks.jsonl', line: 3 })]);
    expect(await h.registry.getPointer('music')).toEqual(before);
    expect(await h.store.getText(manifestKey('music', 'v2'))).toBeUndefined();
    expect(h.events.at(-1)).toMatchObject({ type: 'VersionFailed', detail: { version: 'v2' } });
  });

  it('turns the same release event, delivered twice at once and once more later, into one version built once', async () => {
    const event = await h.publish('music', 'r1', { 'tracks.jsonl': jsonl('a', 40, 1) }, tracksOnly());
    const concurrent = await Promise.all([
      h.build(event, { owner: 'builder-a' }),
      h.build(event, { owner: 'builder-b' }),
    ]);
    expect(concurrent.map((o) => o.version)).toEqual(['v1', 'v1']);
    expect(concurrent.filter((o) => o.status === 'READY' && o.built)).toHaveLength(1);

    const redelivered = await h.build(event, { owner: 'builder-c' });
    expect(redelivered).toMatchObject({ status: 'READY', version: 'v1', built: false });

    const { versions } = await h.registry.listVersions('music', 10);
    expect(versions.map((v) => v.version)).toEqual(['v1']);
    expect(await h.registry.getPointer('music')).toMatchObject({ version: 'v1', generation: 1 });
    expect(await h.registry.listHistory('music', 10)).toHaveLength(1);
  });

  it('activates only forward: an older release that finishes after a newer one leaves the newer active', async () => {
    const older = await h.publish('music', 'r1', { 'tracks.jsonl': jsonl('a', 40, 1) }, tracksOnly());
    const newer = await h.publish('music', 'r2', { 'tracks.jsonl': jsonl('b', 40, 2) }, tracksOnly());
    // r1 is claimed first (v1) but builds slowly: r2 (v2) builds and activates before it.
    await h.registry.claimRelease(older, new Date());
    expect(await h.build(newer)).toMatchObject({ status: 'READY', version: 'v2' });

    const late = await h.build(older);
    expect(late).toMatchObject({ status: 'READY', version: 'v1', activation: { activated: false } });
    expect(await h.registry.getPointer('music')).toMatchObject({
      version: 'v2',
      generation: 1,
      highWater: 2,
    });
    expect((await h.registry.getVersion('music', 'v1'))?.status).toBe('READY');
  });

  it('leaves the pointer alone for a release that asks not to be activated', async () => {
    const outcome = await h.build(
      await h.publish('music', 'r1', { 'tracks.jsonl': jsonl('a', 40, 1) }, tracksOnly(false)),
    );
    expect(outcome).toMatchObject({ status: 'READY', version: 'v1', activation: undefined });
    expect(await h.registry.getPointer('music')).toMatchObject({ version: null, generation: 0 });
  });
});

describe('a collection built whole that the query function could not load', () => {
  let h: Harness;
  // A query function of 5 MB: a 3 MB cache budget. hnswlib's 2.6 MB of locks and 40 items fit; 2,000 do not.
  beforeEach(async () => {
    h = await harness({ queryMemoryMb: 5 });
  });
  afterEach(async () => h.dispose());
  const whole = { collections: { tracks: { file: 'tracks.jsonl', metric: 'cosine', shards: 1 } } };

  it('is refused: FAILED naming release.json and the budget, and the active version keeps serving', async () => {
    const first = await h.build(await h.publish('music', 'r1', { 'tracks.jsonl': jsonl('a', 40, 1) }, whole));
    expect(first.status).toBe('READY');
    const before = await h.registry.getPointer('music');

    const outcome = await h.build(
      await h.publish('music', 'r2', { 'tracks.jsonl': jsonl('b', 2000, 2) }, whole),
    );
    expect(outcome.status).toBe('FAILED');
    expect(outcome.status === 'FAILED' && outcome.reason).toMatch(
      /collection tracks: about \d+ MB once loaded \(2000 rows, 8 dims, M 16\) in one piece, over the query function's memory budget of 3 MB/,
    );
    const record = await h.registry.getVersion('music', 'v2');
    expect(record?.problems).toEqual([expect.objectContaining({ file: 'release.json' })]);
    expect(await h.registry.getPointer('music')).toEqual(before);
    expect(await h.store.getText(manifestKey('music', 'v2'))).toBeUndefined();
  });
});
