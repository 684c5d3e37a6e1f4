import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { applyRetention } from '../../../functions/builder/retention';
import { activateVersion } from '../../../functions/core/activation';
import { nextPointer } from '../../../functions/core/pointer';
import type { Registry } from '../../../functions/core/ports';
import type { VersionStatus } from '../../../functions/core/version';
import { manifestKey, snapshotPrefix } from '../../../functions/snapshot/manifest';
import { MemoryBlobStore } from '../../support/memory/blob-store';
import { recordingLog } from '../../support/memory/harness';
import { MemoryRegistry } from '../../support/memory/registry';

const SPACE = 'music';
const GRACE_MS = 30_000;

/** Lets every pending in-memory request finish (they are microtasks; setImmediate is not faked). */
const settle = async () => {
  for (let i = 0; i < 5; i++) await new Promise((ok) => setImmediate(ok));
};

describe('retention on the in-memory ports', () => {
  let store: MemoryBlobStore;
  let registry: MemoryRegistry;
  let log: ReturnType<typeof recordingLog>;

  beforeEach(() => {
    // The grace period is a timer: faked, so a test waits out 30 s in no time and sees what happens inside it.
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    store = new MemoryBlobStore();
    registry = new MemoryRegistry();
    log = recordingLog();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  /** READY versions v1…vN, each with a manifest and an index file. */
  async function readyVersions(n: number): Promise<void> {
    for (let i = 1; i <= n; i++) {
      const version = `v${i}`;
      await registry.ensureVersion({
        space: SPACE,
        version,
        number: i,
        status: 'READY',
        release: `r${i}`,
        releaseKey: `incoming/${SPACE}/r${i}/release.json`,
        sequencer: String(i).padStart(16, '0'),
        createdAt: new Date(Date.UTC(2025, 0, i)).toISOString(),
      });
      store.putBytes(`${snapshotPrefix(SPACE, version)}tracks/seg-0/index.hnsw`, `index of ${version}`);
      await store.putText(manifestKey(SPACE, version), `{"version":"${version}"}`);
    }
  }

  /** Moves the pointer through `versions` in order, as activations would. */
  async function activateInOrder(...versions: string[]): Promise<void> {
    for (const v of versions) {
      const current = await registry.getPointer(SPACE);
      await registry.casPointer(current, nextPointer(current, v, 'api', new Date()));
    }
  }

  const statusOf = async (v: string) => (await registry.getVersion(SPACE, v))?.status;
  const statuses = async (n: number) => {
    const out: Record<string, VersionStatus | undefined> = {};
    for (let i = 1; i <= n; i++) out[`v${i}`] = await statusOf(`v${i}`);
    return out;
  };
  const hasFiles = (v: string) => store.keys(snapshotPrefix(SPACE, v)).length > 0;
  const retention = (keep: number) =>
    applyRetention({ store, registry, log, keep, graceMs: GRACE_MS }, SPACE);

  it('keeps the active, the previous and the newest N; marks the others DELETED, and deletes their files only after the grace', async () => {
    await readyVersions(8);
    await activateInOrder('v4', 'v5'); // active v5, previous v4

    const run = retention(2); // newest 2: v8, v7
    await settle();
    expect(await statuses(8)).toEqual({
      v1: 'DELETED',
      v2: 'DELETED',
      v3: 'DELETED',
      v4: 'READY',
      v5: 'READY',
      v6: 'DELETED',
      v7: 'READY',
      v8: 'READY',
    });
    // Inside the grace period nothing is deleted yet: an activation in flight may still land on one.
    for (const v of ['v1', 'v2', 'v3', 'v6']) expect(hasFiles(v)).toBe(true);
    expect(store.ops.filter((o) => o.op === 'delete')).toEqual([]);

    await vi.advanceTimersByTimeAsync(GRACE_MS);
    expect((await run).sort()).toEqual(['v1', 'v2', 'v3', 'v6']);
    for (const v of ['v1', 'v2', 'v3', 'v6']) expect(hasFiles(v)).toBe(false);
    for (const v of ['v4', 'v5', 'v7', 'v8']) expect(hasFiles(v)).toBe(true);
    // Per version, the manifest goes first: a half-deleted snapshot never looks whole.
    for (const v of ['v1', 'v2', 'v3', 'v6']) {
      const deletes = store.ops.filter(
        (o) => o.op === 'delete' && o.key.startsWith(snapshotPrefix(SPACE, v)),
      );
      expect(deletes[0]?.key).toBe(manifestKey(SPACE, v));
    }
  });

  it('keeps an old active version that is not among the newest N', async () => {
    await readyVersions(6);
    await activateInOrder('v1'); // v2…v6 were built with "activate": false

    const run = retention(2);
    await settle();
    await vi.advanceTimersByTimeAsync(GRACE_MS);
    expect((await run).sort()).toEqual(['v2', 'v3', 'v4']);
    expect(await statuses(6)).toEqual({
      v1: 'READY',
      v2: 'DELETED',
      v3: 'DELETED',
      v4: 'DELETED',
      v5: 'READY',
      v6: 'READY',
    });
    expect(hasFiles('v1')).toBe(true);
    expect(await registry.getPointer(SPACE)).toMatchObject({ version: 'v1' });
  });

  it('spares a version that an activation in flight chose during the grace period: READY again, files kept', async () => {
    await readyVersions(5);
    await activateInOrder('v4', 'v5'); // active v5, previous v4; v1-v3 are beyond keep = 1

    // An operator's activation of v2 has read v2 as READY; its pointer write lands late.
    let land!: () => void;
    const landed = new Promise<void>((ok) => {
      land = ok;
    });
    const slow: Registry = new Proxy(registry, {
      get(target, prop) {
        if (prop === 'casPointer')
          return async (...args: Parameters<Registry['casPointer']>) => {
            await landed;
            return target.casPointer(...args);
          };
        const value = Reflect.get(target, prop, target);
        return typeof value === 'function' ? value.bind(target) : value;
      },
    });
    const activation = activateVersion(slow, {
      space: SPACE,
      version: 'v2',
      expectedGeneration: 2,
      by: 'api',
    });
    await settle();

    const run = retention(1);
    await settle();
    expect(await statusOf('v2')).toBe('DELETED');
    land();
    expect(await activation).toMatchObject({ version: 'v2', previous: 'v5', generation: 3 });

    await vi.advanceTimersByTimeAsync(GRACE_MS);
    expect((await run).sort()).toEqual(['v1', 'v3']);
    expect(await statuses(5)).toEqual({
      v1: 'DELETED',
      v2: 'READY',
      v3: 'DELETED',
      v4: 'READY',
      v5: 'READY',
    });
    expect(hasFiles('v2')).toBe(true);
    expect(hasFiles('v1')).toBe(false);
    expect(hasFiles('v3')).toBe(false);
    expect(log.lines).toContainEqual({
      level: 'warn',
      message: 'retention spared a version an activation chose meanwhile',
    });
  });

  it('deletes nothing and waits for nothing when every READY version is kept', async () => {
    await readyVersions(3);
    await activateInOrder('v3');
    // No timer is advanced: a run with nothing to mark must not wait out the grace period.
    expect(await retention(5)).toEqual([]);
    expect(store.ops.filter((o) => o.op === 'delete')).toEqual([]);
  });
});
