import { beforeEach, describe, expect, it } from 'vitest';
import { type ActivateInput, activateVersion, rollbackSpace } from '../../../functions/core/activation';
import {
  ConflictError,
  NotFoundError,
  PointerConflictError,
  UnprocessableError,
} from '../../../functions/core/errors';
import type { Pointer } from '../../../functions/core/pointer';
import type { Metric } from '../../../functions/core/release';
import type { VersionRecord, VersionStatus } from '../../../functions/core/version';
import { MemoryRegistry } from '../../support/memory/registry';

const SPACE = 'music';

/** The activation use cases, called in one place so a change of their signature is one edit here. */
const activate = (registry: MemoryRegistry, input: Omit<ActivateInput, 'by'>) =>
  activateVersion(registry, { by: 'api', ...input });
const rollback = (registry: MemoryRegistry, input: Omit<ActivateInput, 'by' | 'version'>) =>
  rollbackSpace(registry, { by: 'api', ...input });

async function seed(
  registry: MemoryRegistry,
  n: number,
  status: VersionStatus = 'READY',
  shape: { dims: number; metric: Metric } = { dims: 8, metric: 'cosine' },
): Promise<VersionRecord> {
  return registry.ensureVersion({
    space: SPACE,
    version: `v${n}`,
    number: n,
    status,
    release: `r${n}`,
    releaseKey: `incoming/${SPACE}/r${n}/release.json`,
    sequencer: String(n).padStart(16, '0'),
    createdAt: new Date(Date.UTC(2025, 0, n)).toISOString(),
    collections: {
      tracks: { count: 10, M: 16, efConstruction: 200, ef: 80, segments: 1, ...shape },
    },
  });
}

async function rejection(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (err) {
    return err as Error;
  }
  throw new Error('expected a rejection');
}

describe('activation on the in-memory registry', () => {
  let registry: MemoryRegistry;
  beforeEach(() => {
    registry = new MemoryRegistry();
  });

  it('activates a READY version at the expected generation: the pointer moves and history records it', async () => {
    await seed(registry, 1);
    await seed(registry, 2);
    const at = new Date('2025-03-01T00:00:00Z');
    const first = await activate(registry, { space: SPACE, version: 'v1', expectedGeneration: 0, now: at });
    expect(first).toEqual({
      space: SPACE,
      version: 'v1',
      generation: 1,
      previous: null,
      highWater: 1,
      changedAt: at.toISOString(),
      changedBy: 'api',
    });
    await activate(registry, { space: SPACE, version: 'v2', expectedGeneration: 1, now: at });
    expect(await registry.getPointer(SPACE)).toMatchObject({
      version: 'v2',
      generation: 2,
      previous: 'v1',
      highWater: 2,
    });
    expect(await registry.listHistory(SPACE, 10)).toEqual([
      { generation: 2, from: 'v1', to: 'v2', at: at.toISOString(), by: 'api' },
      { generation: 1, from: null, to: 'v1', at: at.toISOString(), by: 'api' },
    ]);
  });

  it('refuses a stale expected generation with a conflict carrying the current pointer', async () => {
    await seed(registry, 1);
    await seed(registry, 2);
    const current = await activate(registry, { space: SPACE, version: 'v1', expectedGeneration: 0 });
    const err = await rejection(activate(registry, { space: SPACE, version: 'v2', expectedGeneration: 0 }));
    expect(err).toBeInstanceOf(ConflictError);
    expect((err as ConflictError).kind).toBe('conflict');
    expect((err as ConflictError).extras.pointer).toEqual(current);
    expect(await registry.getPointer(SPACE)).toEqual(current);
  });

  it('lets one of two concurrent activations from the same generation win; the other gets a conflict naming the winner', async () => {
    for (const n of [1, 2, 3]) await seed(registry, n);
    await activate(registry, { space: SPACE, version: 'v1', expectedGeneration: 0 });
    const results = await Promise.allSettled([
      activate(registry, { space: SPACE, version: 'v2', expectedGeneration: 1 }),
      activate(registry, { space: SPACE, version: 'v3', expectedGeneration: 1 }),
    ]);
    const won = results.filter((r) => r.status === 'fulfilled');
    const lost = results.filter((r) => r.status === 'rejected');
    expect(won).toHaveLength(1);
    expect(lost).toHaveLength(1);
    const winner = (won[0] as PromiseFulfilledResult<Pointer>).value;
    const reason = (lost[0] as PromiseRejectedResult).reason as ConflictError;
    expect(reason).toBeInstanceOf(ConflictError);
    // Both passed the generation check: the registry's conditional write decided.
    expect(reason.cause).toBeInstanceOf(PointerConflictError);
    expect(reason.extras.pointer).toMatchObject({ version: winner.version, generation: 2 });
    expect(await registry.getPointer(SPACE)).toEqual(winner);
    expect((await registry.listHistory(SPACE, 10)).map((e) => e.generation)).toEqual([2, 1]);
  });

  it.each<VersionStatus>(['FAILED', 'BUILDING', 'DELETED'])(
    'refuses to activate a %s version and leaves the pointer alone',
    async (status) => {
      await seed(registry, 1);
      await seed(registry, 2, status);
      const current = await activate(registry, { space: SPACE, version: 'v1', expectedGeneration: 0 });
      const err = await rejection(
        activate(registry, { space: SPACE, version: 'v2', expectedGeneration: 1, force: true }),
      );
      expect(err).toBeInstanceOf(UnprocessableError);
      expect((err as UnprocessableError).extras.versionStatus).toBe(status);
      expect(await registry.getPointer(SPACE)).toEqual(current);
    },
  );

  it('refuses a version that does not exist with not-found', async () => {
    const err = await rejection(activate(registry, { space: SPACE, version: 'v9', expectedGeneration: 0 }));
    expect(err).toBeInstanceOf(NotFoundError);
  });

  it('needs force to activate a version whose dims or metric differ from the active one', async () => {
    await seed(registry, 1, 'READY', { dims: 8, metric: 'cosine' });
    await seed(registry, 2, 'READY', { dims: 16, metric: 'cosine' });
    await seed(registry, 3, 'READY', { dims: 8, metric: 'l2' });
    await activate(registry, { space: SPACE, version: 'v1', expectedGeneration: 0 });

    const dims = await rejection(activate(registry, { space: SPACE, version: 'v2', expectedGeneration: 1 }));
    expect(dims).toBeInstanceOf(UnprocessableError);
    expect((dims as UnprocessableError).extras.incompatibilities).toEqual([
      'collection tracks has 16 dims, active has 8',
    ]);
    const metric = await rejection(
      activate(registry, { space: SPACE, version: 'v3', expectedGeneration: 1 }),
    );
    expect((metric as UnprocessableError).extras.incompatibilities).toEqual([
      'collection tracks uses metric l2, active uses cosine',
    ]);
    expect(await registry.getPointer(SPACE)).toMatchObject({ version: 'v1', generation: 1 });

    const forced = await activate(registry, {
      space: SPACE,
      version: 'v2',
      expectedGeneration: 1,
      force: true,
    });
    expect(forced).toMatchObject({ version: 'v2', generation: 2, previous: 'v1' });
  });

  it('rolls back to the previous version without force, even across a dims change', async () => {
    await seed(registry, 1, 'READY', { dims: 8, metric: 'cosine' });
    await seed(registry, 2, 'READY', { dims: 16, metric: 'cosine' });
    await activate(registry, { space: SPACE, version: 'v1', expectedGeneration: 0 });
    await activate(registry, { space: SPACE, version: 'v2', expectedGeneration: 1, force: true });

    const back = await rollback(registry, { space: SPACE, expectedGeneration: 2 });
    expect(back).toMatchObject({ version: 'v1', previous: 'v2', generation: 3, highWater: 2 });
    // A second rollback goes forward again.
    expect(await rollback(registry, { space: SPACE, expectedGeneration: 3 })).toMatchObject({
      version: 'v2',
      previous: 'v1',
      generation: 4,
    });
  });

  it('refuses a rollback with no previous version', async () => {
    await seed(registry, 1);
    await activate(registry, { space: SPACE, version: 'v1', expectedGeneration: 0 });
    const err = await rejection(rollback(registry, { space: SPACE, expectedGeneration: 1 }));
    expect(err).toBeInstanceOf(UnprocessableError);
    expect(await registry.getPointer(SPACE)).toMatchObject({ version: 'v1', generation: 1 });
  });

  it('does not bump the generation when the version asked for is already active', async () => {
    await seed(registry, 1);
    const first = await activate(registry, { space: SPACE, version: 'v1', expectedGeneration: 0 });
    expect(await activate(registry, { space: SPACE, version: 'v1', expectedGeneration: 1 })).toEqual(first);
    expect(await registry.listHistory(SPACE, 10)).toHaveLength(1);
  });
});
