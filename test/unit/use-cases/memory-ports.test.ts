/**
 * The in-memory ports keep the promises of the real adapters (S3Store, DynamoRegistry) that the use
 * cases rely on; test/integration/pointer-store.test.ts checks the same promises on the stand-ins.
 */
import { describe, expect, it } from 'vitest';
import { PointerConflictError } from '../../../functions/core/errors';
import { emptyPointer, nextPointer } from '../../../functions/core/pointer';
import type { ReleaseEvent, VersionRecord } from '../../../functions/core/version';
import { MemoryBlobStore } from '../../support/memory/blob-store';
import { MemoryRegistry } from '../../support/memory/registry';

const event = (release: string, sequencer = `${release}-seq`): ReleaseEvent => ({
  space: 's',
  release,
  key: `incoming/s/${release}/release.json`,
  sequencer,
});

const building = (n: number): VersionRecord => ({
  space: 's',
  version: `v${n}`,
  number: n,
  status: 'BUILDING',
  release: `r${n}`,
  releaseKey: `incoming/s/r${n}/release.json`,
  sequencer: `r${n}-seq`,
  createdAt: '2025-01-01T00:00:00.000Z',
});

async function text(s: NodeJS.ReadableStream | undefined): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of s as AsyncIterable<Buffer>) chunks.push(c);
  return Buffer.concat(chunks).toString('utf8');
}

describe('MemoryRegistry', () => {
  it('creates the pointer only when none exists, then only from the stored generation', async () => {
    const r = new MemoryRegistry();
    const at = new Date('2025-01-01T00:00:00Z');
    const first = nextPointer(emptyPointer('s'), 'v1', 'api', at);
    await r.casPointer(emptyPointer('s'), first);
    await expect(r.casPointer(emptyPointer('s'), first)).rejects.toBeInstanceOf(PointerConflictError);
    const stale = r.casPointer({ ...first, generation: 5 }, nextPointer(first, 'v2', 'api', at));
    await expect(stale).rejects.toMatchObject({ extras: { pointer: { generation: 1, version: 'v1' } } });
    await r.casPointer(first, nextPointer(first, 'v2', 'api', at));
    expect(await r.getPointer('s')).toMatchObject({ version: 'v2', generation: 2, previous: 'v1' });
  });

  it('maps one release event, claimed concurrently, to one version; another sequencer is a new version', async () => {
    const r = new MemoryRegistry();
    const claims = await Promise.all([1, 2, 3].map(() => r.claimRelease(event('r1'), new Date())));
    expect(new Set(claims.map((c) => c.version)).size).toBe(1);
    expect(claims.filter((c) => c.created)).toHaveLength(1);
    const again = await r.claimRelease(event('r1', 'later-seq'), new Date());
    expect(again.created).toBe(true);
    expect(again.version).not.toBe(claims[0]?.version);
    expect(await r.listSpaces()).toEqual(['s']);
  });

  it('grants the build lease to one owner until it expires, by the time the caller passes', async () => {
    const r = new MemoryRegistry();
    await r.ensureVersion(building(1));
    expect(await r.acquireLease('s', 'v1', 'a', 1_000, 0)).toMatchObject({ leaseOwner: 'a', attempts: 1 });
    expect(await r.acquireLease('s', 'v1', 'b', 2_000, 999)).toBeUndefined();
    expect(await r.renewLease('s', 'v1', 'b', 5_000)).toBe(false);
    expect(await r.acquireLease('s', 'v1', 'b', 2_000, 1_001)).toMatchObject({
      leaseOwner: 'b',
      attempts: 2,
    });
    expect(await r.finishVersion('s', 'v1', 'a', { status: 'READY' })).toBe(false);
    expect(await r.finishVersion('s', 'v1', 'b', { status: 'READY', reason: undefined })).toBe(true);
    const v = await r.getVersion('s', 'v1');
    expect(v).toMatchObject({ status: 'READY', leaseUntil: 0 });
    expect(v && 'reason' in v).toBe(false);
    // No lease on a version that is no longer BUILDING.
    expect(await r.acquireLease('s', 'v1', 'c', 9_000, 8_000)).toBeUndefined();
  });

  it('moves a status only from the expected one, stamping the injected clock', async () => {
    const r = new MemoryRegistry(() => new Date('2030-01-01T00:00:00Z'));
    await r.ensureVersion({ ...building(1), status: 'READY' });
    expect(await r.transitionStatus('s', 'v1', 'BUILDING', 'FAILED')).toBe(false);
    expect(await r.transitionStatus('s', 'v1', 'READY', 'DELETED')).toBe(true);
    expect(await r.getVersion('s', 'v1')).toMatchObject({
      status: 'DELETED',
      statusChangedAt: '2030-01-01T00:00:00.000Z',
    });
  });

  it('pages versions newest first, and hands out copies', async () => {
    const r = new MemoryRegistry();
    for (let n = 1; n <= 5; n++) await r.ensureVersion(building(n));
    const first = await r.listVersions('s', 2);
    expect(first.versions.map((v) => v.version)).toEqual(['v5', 'v4']);
    const second = await r.listVersions('s', 2, first.next);
    expect(second.versions.map((v) => v.version)).toEqual(['v3', 'v2']);
    const third = await r.listVersions('s', 2, second.next);
    expect(third).toEqual({ versions: [expect.objectContaining({ version: 'v1' })] });
    (first.versions[0] as VersionRecord).status = 'READY';
    expect((await r.getVersion('s', 'v5'))?.status).toBe('BUILDING');
  });
});

describe('MemoryBlobStore', () => {
  it('reads whole objects and byte ranges, lists by prefix in key order, and forgets deleted keys', async () => {
    const s = new MemoryBlobStore();
    await s.putText('a/2', '0123456789');
    await s.putText('a/1', 'x');
    await s.putText('b/1', 'y');
    expect(await s.head('a/2')).toEqual({ bytes: 10, etag: '781e5e245d69b566979b86e28d23f2c7' });
    expect(await text(await s.getStream('a/2', { offset: 3, bytes: 4 }))).toBe('3456');
    expect(await text(await s.getStream('a/2', { offset: 8, bytes: 100 }))).toBe('89');
    await expect(s.getStream('a/2', { offset: 10, bytes: 1 })).rejects.toThrow(/not satisfiable/);
    expect(await s.getStream('missing')).toBeUndefined();
    expect(await s.list('a/')).toEqual([
      { key: 'a/1', bytes: 1 },
      { key: 'a/2', bytes: 10 },
    ]);
    await s.deleteKeys(['a/1', 'never-there']);
    expect(await s.getText('a/1')).toBeUndefined();
    expect(s.keys()).toEqual(['a/2', 'b/1']);
  });
});
