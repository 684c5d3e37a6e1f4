/**
 * "Survive every fault at every step" — the build's side, on the in-memory ports: deadlines, leases,
 * attempts, work dirs, errors after READY, inputs changing mid-build, automatic activation's checks,
 * refused release names, and the sweeper that finishes what no event will.
 */
import { mkdir, readdir, utimes } from 'node:fs/promises';
import { join } from 'node:path';
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { S3Client } from '@aws-sdk/client-s3';
import type { Context, S3Event } from 'aws-lambda';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { BuildBusyError } from '../../../functions/builder/build-release';
import { BuildBatchError, createBuildHandler } from '../../../functions/builder/handler';
import { workRoot } from '../../../functions/builder/work-dir';
import { classifyReleaseKey } from '../../../functions/core/release';
import type { ReleaseEvent } from '../../../functions/core/version';
import { manifestKey, snapshotPrefix } from '../../../functions/snapshot/manifest';
import { sweep } from '../../../functions/sweeper/sweep';
import { type Harness, harness, jsonl, recordingLog } from '../../support/memory/harness';

const tracksOnly = (activate = true) => ({
  collections: { tracks: { file: 'tracks.jsonl', metric: 'cosine' } },
  activate,
});

function s3Event(key: string, sequencer: string, eTag?: string): S3Event {
  return {
    Records: [
      {
        eventName: 'ObjectCreated:Put',
        s3: { object: { key: encodeURIComponent(key).replace(/%2F/g, '/'), sequencer, eTag } },
      },
    ],
  } as unknown as S3Event;
}

function lambdaContext(remainingMs: number): Context {
  const deadline = Date.now() + remainingMs;
  return {
    awsRequestId: 'req',
    functionName: 'build',
    getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
  } as unknown as Context;
}

describe('build faults on the in-memory ports', () => {
  let h: Harness;
  beforeEach(async () => {
    h = await harness({ leaseMs: 60_000 });
  });
  afterEach(async () => h.dispose());

  const handler = (
    extra: Parameters<typeof createBuildHandler>[0] extends infer D ? Partial<D> : never = {},
  ) =>
    createBuildHandler({
      config: h.config,
      s3: {} as S3Client,
      dynamo: {} as DynamoDBClient,
      store: h.store,
      registry: h.registry,
      events: h.deps().events,
      ...extra,
    });

  // ---- 1. deadlines, leases, attempts, work dirs ----

  it('stops a build at its deadline, gives the lease up and fails the invocation so Lambda retries it', async () => {
    const event = await h.publish('music', 'r1', { 'tracks.jsonl': jsonl('a', 40, 1) }, tracksOnly());
    const build = handler({
      // Aborted 2 s before the deadline; 1 s of that is the build's to give its lease up and throw.
      abortMarginMs: 2000,
      // Hangs "forever" between the snapshot and READY, as a build at its time limit does.
      beforeReady: () => new Promise((r) => setTimeout(r, 5000)),
    });
    const started = Date.now();
    await expect(build(s3Event(event.key, event.sequencer, event.etag), lambdaContext(2500))).rejects.toThrow(
      /deadline/,
    );
    expect(Date.now() - started).toBeLessThan(4500);
    const v = await h.registry.getVersion('music', 'v1');
    expect(v).toMatchObject({ status: 'BUILDING', attempts: 1 });
    // Given up when it stopped (not at 0, which the sweeper would read as a lease long expired).
    expect(v?.leaseUntil).toBeGreaterThanOrEqual(started);
    expect(v?.leaseUntil).toBeLessThan(Date.now());
    // The retry builds it at once: the lease was given up, not left to expire.
    expect(await h.build(event, { owner: 'retry' })).toMatchObject({ status: 'READY', version: 'v1' });
  });

  it('refuses to renew a lease that has expired (a thawed attempt never takes it back)', async () => {
    const event = await h.publish('music', 'r1', { 'tracks.jsonl': jsonl('a', 40, 1) }, tracksOnly());
    await h.registry.claimRelease(event, new Date());
    await h.registry.ensureVersion({
      space: 'music',
      version: 'v1',
      number: 1,
      status: 'BUILDING',
      release: 'r1',
      releaseKey: event.key,
      sequencer: event.sequencer,
      createdAt: new Date().toISOString(),
    });
    expect(await h.registry.acquireLease('music', 'v1', 'old', 1000, 0)).toBeTruthy();
    expect(await h.registry.renewLease('music', 'v1', 'old', 5000, 999)).toBe(true);
    expect(await h.registry.renewLease('music', 'v1', 'old', 9000, 5001)).toBe(false);
  });

  it('turns a live lease held by another attempt into a retryable error, but a duplicate of a READY version into success', async () => {
    const event = await h.publish('music', 'r1', { 'tracks.jsonl': jsonl('a', 40, 1) }, tracksOnly());
    await h.registry.claimRelease(event, new Date());
    await h.build(event, { owner: 'first', beforeReady: async () => undefined }).catch(() => undefined);
    // Now a version whose lease someone else holds:
    const other = await h.publish('music', 'r2', { 'tracks.jsonl': jsonl('b', 40, 2) }, tracksOnly());
    const { version } = await h.registry.claimRelease(other, new Date());
    await h.registry.ensureVersion({
      space: 'music',
      version,
      number: Number(version.slice(1)),
      status: 'BUILDING',
      release: 'r2',
      releaseKey: other.key,
      sequencer: other.sequencer,
      createdAt: new Date().toISOString(),
    });
    await h.registry.acquireLease('music', version, 'elsewhere', Date.now() + 60_000, Date.now());
    await expect(h.build(other, { owner: 'dup', busyWaitMs: 0 })).rejects.toBeInstanceOf(BuildBusyError);
    // The handler fails the invocation for it (retry, then the failed-builds queue)…
    await expect(
      handler({ busyWaitMs: 0 })(s3Event(other.key, other.sequencer), lambdaContext(60_000)),
    ).rejects.toBeInstanceOf(BuildBatchError);
    // …while a duplicate delivery for a settled version is a success.
    expect(await h.build(event, { owner: 'dup' })).toMatchObject({
      status: 'READY',
      version: 'v1',
      built: false,
    });
  });

  it('marks the version FAILED when the attempts cap is passed, however the earlier attempts ended', async () => {
    const event = await h.publish('music', 'r1', { 'tracks.jsonl': jsonl('a', 40, 1) }, tracksOnly());
    await h.registry.claimRelease(event, new Date());
    await h.registry.ensureVersion({
      space: 'music',
      version: 'v1',
      number: 1,
      status: 'BUILDING',
      release: 'r1',
      releaseKey: event.key,
      sequencer: event.sequencer,
      createdAt: new Date().toISOString(),
    });
    // Three attempts were killed (no error path ran): their leases simply expired.
    h.registry.poke('music', 'v1', { attempts: 3, leaseOwner: 'killed', leaseUntil: 1 });
    const outcome = await h.build(event, { owner: 'fourth' });
    expect(outcome).toMatchObject({ status: 'FAILED', version: 'v1' });
    expect((await h.registry.getVersion('music', 'v1'))?.reason).toMatch(/gave up after 3 build attempts/);
    expect(h.events.at(-1)).toMatchObject({ type: 'VersionFailed' });
  });

  it('keeps a version BUILDING for its retry when the sweeper runs between a failed attempt and the retry', async () => {
    const event = await h.publish('music', 'r1', { 'tracks.jsonl': jsonl('a', 40, 1) }, tracksOnly());
    // The first attempt fails on a transient error: it gives its lease up and asks for a retry.
    const once = vi.fn().mockRejectedValueOnce(new Error('S3: We encountered an internal error'));
    await expect(h.build(event, { owner: 'first', beforeReady: once })).rejects.toThrow(/internal error/);
    expect((await h.registry.getVersion('music', 'v1'))?.status).toBe('BUILDING');
    // The scheduled sweep comes before the retry (Lambda retries an async event 1–3 minutes later).
    const report = await sweep({ ...h.deps(), staleMs: 3_600_000, graceMs: 30_000 });
    expect(report.failed).toEqual([]);
    expect((await h.registry.getVersion('music', 'v1'))?.status).toBe('BUILDING');
    expect(await h.build(event, { owner: 'retry' })).toMatchObject({ status: 'READY', version: 'v1' });
  });

  it('builds in a directory of its own and removes stale ones of dead builds before the disk check', async () => {
    const root = workRoot(h.config.cacheDir);
    const stale = join(root, 'killed-build');
    await mkdir(join(stale, 'tracks'), { recursive: true });
    const old = new Date(Date.now() - 10 * 60_000);
    await utimes(stale, old, old);
    const live = join(root, 'live-build');
    await mkdir(live, { recursive: true });
    const seen: string[] = [];
    const event = await h.publish('music', 'r1', { 'tracks.jsonl': jsonl('a', 40, 1) }, tracksOnly());
    const outcome = await h.build(event, {
      beforeReady: async () => {
        seen.push(...(await readdir(root)));
      },
    });
    expect(outcome.status).toBe('READY');
    expect(seen).not.toContain('killed-build');
    expect(seen).toContain('live-build');
    expect(seen.filter((d) => /^[0-9a-f-]{36}$/.test(d))).toHaveLength(1);
    expect(await readdir(root)).toEqual(['live-build']);
  });

  // ---- 3. errors after READY ----

  it('never reports a READY version as FAILED when what follows READY throws', async () => {
    const event = await h.publish('music', 'r1', { 'tracks.jsonl': jsonl('a', 40, 1) }, tracksOnly());
    const log = recordingLog();
    const outcome = await h.build(event, {
      log,
      events: {
        publish: async (type) => {
          if (type === 'VersionReady') throw new Error('EventBridge is down');
        },
      },
      beforeActivate: async () => {
        throw new Error('DynamoDB throttled the activation');
      },
    });
    expect(outcome).toMatchObject({ status: 'READY', version: 'v1', built: true });
    expect(outcome.status === 'READY' && outcome.errors).toEqual([
      'VersionReady event: EventBridge is down',
      'activation: DynamoDB throttled the activation',
    ]);
    const v = await h.registry.getVersion('music', 'v1');
    expect(v?.status).toBe('READY');
    expect(v?.afterReadyErrors).toHaveLength(2);
    expect(log.lines.filter((l) => l.level === 'error')).toHaveLength(2);
    // The sweeper finishes the lost activation.
    expect(await h.registry.getPointer('music')).toMatchObject({ version: null });
    const report = await sweep({ ...h.deps(), staleMs: 3_600_000, graceMs: 0 });
    expect(report.activated).toEqual([{ space: 'music', version: 'v1' }]);
    expect(await h.registry.getPointer('music')).toMatchObject({ version: 'v1', changedBy: 'build' });
  });

  // ---- 4. inputs read as the event named them ----

  it('fails the build, naming the file, when a data file changes while the build reads it', async () => {
    const event = await h.publish('music', 'r1', { 'tracks.jsonl': jsonl('a', 40, 1) }, tracksOnly());
    const key = 'incoming/music/r1/tracks.jsonl';
    const head = h.store.head.bind(h.store);
    let heads = 0;
    h.store.head = async (k: string) => {
      const r = await head(k);
      // Replaced right after the build took its ETag: an `aws s3 sync` of the next release into this folder.
      if (k === key && ++heads === 2) h.store.putBytes(key, jsonl('z', 40, 9));
      return r;
    };
    const outcome = await h.build(event);
    expect(outcome).toMatchObject({ status: 'FAILED', version: 'v1' });
    expect(outcome.status === 'FAILED' && outcome.reason).toMatch(
      /^tracks\.jsonl: changed while the build read it/,
    );
    const v = await h.registry.getVersion('music', 'v1');
    expect(v?.inputEtags?.['tracks.jsonl']).toBeTruthy();
    expect(v?.inputEtags?.['release.json']).toBe(event.etag);
  });

  it('reads release.json by the ETag the event named, and a retry reads the files the first attempt saw', async () => {
    const event = await h.publish('music', 'r1', { 'tracks.jsonl': jsonl('a', 40, 1) }, tracksOnly());
    await h.store.putText(event.key, JSON.stringify(tracksOnly(false)));
    const outcome = await h.build(event);
    expect(outcome.status === 'FAILED' && outcome.reason).toMatch(
      /release\.json was replaced after this event/,
    );

    const second = await h.publish('music', 'r2', { 'tracks.jsonl': jsonl('b', 40, 2) }, tracksOnly());
    const { version } = await h.registry.claimRelease(second, new Date());
    await h.registry.ensureVersion({
      space: 'music',
      version,
      number: Number(version.slice(1)),
      status: 'BUILDING',
      release: 'r2',
      releaseKey: second.key,
      sequencer: second.sequencer,
      createdAt: new Date().toISOString(),
    });
    h.registry.poke('music', version, { inputEtags: { 'tracks.jsonl': 'etag-the-first-attempt-saw' } });
    const retry = await h.build(second);
    expect(retry.status === 'FAILED' && retry.reason).toMatch(
      /^tracks\.jsonl: changed while the build read it \(first seen/,
    );
  });

  // ---- 5. automatic activation passes the explicit checks ----

  it('does not auto-activate a release whose dims changed: READY, not active, reason and event', async () => {
    await h.build(await h.publish('music', 'r1', { 'tracks.jsonl': jsonl('a', 40, 1, 8) }, tracksOnly()));
    const outcome = await h.build(
      await h.publish('music', 'r2', { 'tracks.jsonl': jsonl('b', 40, 2, 4) }, tracksOnly()),
    );
    expect(outcome).toMatchObject({
      status: 'READY',
      version: 'v2',
      activation: { activated: false, code: 'needs-force' },
    });
    expect(await h.registry.getPointer('music')).toMatchObject({ version: 'v1', generation: 1 });
    const v2 = await h.registry.getVersion('music', 'v2');
    expect(v2?.notActivatedReason).toMatch(/4 dims, active has 8.*force/);
    expect(h.events.at(-1)).toMatchObject({ type: 'VersionNotActivated', detail: { version: 'v2' } });
    // And the sweeper does not activate it behind the operator's back.
    expect((await sweep({ ...h.deps(), staleMs: 3_600_000, graceMs: 0 })).activated).toEqual([]);
  });

  // ---- 6. the manifest is written only under the lease ----

  it('writes no manifest when the lease was taken over while the segments uploaded', async () => {
    const event = await h.publish('music', 'r1', { 'tracks.jsonl': jsonl('a', 40, 1) }, tracksOnly());
    const putFile = h.store.putFile.bind(h.store);
    h.store.putFile = async (key: string, path: string, type?: string) => {
      await putFile(key, path, type);
      // The builder stalled past its lease; another attempt took over.
      h.registry.poke('music', 'v1', { leaseOwner: 'usurper', leaseUntil: Date.now() + 60_000 });
    };
    await expect(h.build(event)).rejects.toThrow(/lost the build lease/);
    expect(await h.store.head(manifestKey('music', 'v1'))).toBeUndefined();
    expect((await h.registry.getVersion('music', 'v1'))?.status).toBe('BUILDING');
  });

  // ---- 7. release names ----

  it('accepts the common release folder names and refuses the rest visibly', async () => {
    for (const name of ['ModelV8', '2026-11-30T10:00:00Z', 'r1.2', '2026-11-30T10:00'])
      expect(classifyReleaseKey(`incoming/music/${name}/release.json`)).toMatchObject({ kind: 'release' });
    expect(classifyReleaseKey('incoming/music/.hidden/release.json')).toMatchObject({
      kind: 'refused-release',
    });
    expect(classifyReleaseKey('incoming/Music/r1/release.json')).toMatchObject({ kind: 'refused' });
    expect(classifyReleaseKey('incoming/music/r1/sub/release.json')).toMatchObject({ kind: 'refused' });
    expect(classifyReleaseKey('incoming/music/r1/tracks.jsonl')).toBeUndefined();

    const good = await h.publish('music', 'ModelV8', { 'tracks.jsonl': jsonl('a', 40, 1) }, tracksOnly());
    expect(await handler()(s3Event(good.key, good.sequencer, good.etag), lambdaContext(60_000))).toEqual([
      expect.objectContaining({ status: 'READY', version: 'v1' }),
    ]);

    const badName = 'incoming/music/my release/release.json';
    await h.store.putText(badName, JSON.stringify(tracksOnly()));
    const [refused] = await handler()(s3Event(badName, '0002'), lambdaContext(60_000));
    expect(refused).toMatchObject({ status: 'FAILED', version: 'v2' });
    expect(await h.registry.getVersion('music', 'v2')).toMatchObject({
      status: 'FAILED',
      release: 'my release',
      reason: expect.stringMatching(/invalid release folder name "my release"/),
    });

    const badSpace = 'incoming/Music Space/r1/release.json';
    await expect(handler()(s3Event(badSpace, '0003'), lambdaContext(60_000))).rejects.toThrow(
      /invalid space name "Music Space"/,
    );
    expect(h.events.at(-1)).toMatchObject({
      type: 'ReleaseRefused',
      detail: { key: badSpace, reason: expect.stringMatching(/invalid space name/) },
    });
  });
});

describe('the sweeper on the in-memory ports', () => {
  let h: Harness;
  const NOW = Date.parse('2026-01-01T12:00:00Z');
  beforeEach(async () => {
    h = await harness();
  });
  afterEach(async () => h.dispose());

  async function building(version: string, patch: Record<string, unknown> = {}): Promise<void> {
    const n = Number(version.slice(1));
    const event: ReleaseEvent = {
      space: 'music',
      release: `r${n}`,
      key: `incoming/music/r${n}/release.json`,
      sequencer: String(n),
    };
    await h.registry.claimRelease(event, new Date(NOW));
    await h.registry.ensureVersion({
      space: 'music',
      version,
      number: n,
      status: 'BUILDING',
      release: event.release,
      releaseKey: event.key,
      sequencer: event.sequencer,
      createdAt: new Date(NOW - 2 * 3_600_000).toISOString(),
    });
    if (Object.keys(patch).length) h.registry.poke('music', version, patch);
  }

  it('fails abandoned builds (past the attempts cap, or never leased) and leaves live ones alone', async () => {
    await building('v1', { attempts: 3, leaseOwner: 'x', leaseUntil: NOW - 1000 }); // three killed attempts
    await building('v2'); // died between ensureVersion and acquireLease, two hours ago
    await building('v3', { attempts: 1, leaseOwner: 'y', leaseUntil: NOW + 30_000 }); // building now
    await building('v4', { attempts: 1, leaseOwner: 'z', leaseUntil: NOW - 60_000 }); // its retry is coming
    const report = await sweep({
      ...h.deps(),
      now: () => new Date(NOW),
      staleMs: 3_600_000,
      graceMs: 30_000,
    });
    expect(report.failed.map((f) => f.version).sort()).toEqual(['v1', 'v2']);
    expect((await h.registry.getVersion('music', 'v1'))?.reason).toMatch(
      /3 build attempts ended without a result/,
    );
    expect((await h.registry.getVersion('music', 'v2'))?.reason).toMatch(/no build attempt took the lease/);
    expect((await h.registry.getVersion('music', 'v3'))?.status).toBe('BUILDING');
    expect((await h.registry.getVersion('music', 'v4'))?.status).toBe('BUILDING');
    expect(h.events.filter((e) => e.type === 'VersionFailed')).toHaveLength(2);
  });

  it('finishes a retention run that died in its grace period, and never leaves the active version DELETED', async () => {
    for (const r of ['r1', 'r2', 'r3'])
      await h.build(await h.publish('music', r, { 'tracks.jsonl': jsonl(r, 40, 1) }, tracksOnly(false)));
    // Retention marked v1 and v2 DELETED, then died in its sleep; meanwhile an activation chose v2.
    await h.registry.transitionStatus('music', 'v1', 'READY', 'DELETED');
    await h.registry.transitionStatus('music', 'v2', 'READY', 'DELETED');
    h.registry.poke('music', 'v2', { status: 'READY' });
    const p = await h.registry.getPointer('music');
    await h.registry.casPointer(p, {
      ...p,
      version: 'v2',
      generation: 1,
      highWater: 2,
      changedAt: 'x',
      changedBy: 'api',
    });
    h.registry.poke('music', 'v2', { status: 'DELETED' });
    const later = () => new Date(Date.now() + 60_000);
    const report = await sweep({ ...h.deps(), now: later, staleMs: 3_600_000, graceMs: 30_000 });
    expect(report.restored).toEqual([{ space: 'music', version: 'v2' }]);
    expect(report.purged).toEqual([{ space: 'music', version: 'v1' }]);
    expect((await h.registry.getVersion('music', 'v2'))?.status).toBe('READY');
    expect(h.store.keys(snapshotPrefix('music', 'v1'))).toEqual([]);
    expect(h.store.keys(snapshotPrefix('music', 'v2')).length).toBeGreaterThan(0);
    expect((await h.registry.getVersion('music', 'v1'))?.filesDeletedAt).toBeTruthy();
    // Within the grace period nothing is touched (a live retention run still owns it).
    await h.registry.transitionStatus('music', 'v3', 'READY', 'DELETED');
    const soon = await sweep({ ...h.deps(), staleMs: 3_600_000, graceMs: 30_000 });
    expect(soon.purged).toEqual([]);
  });
});
