import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DynamoRegistry } from '../../functions/adapters/dynamo-registry';
import { activateVersion, autoActivate } from '../../functions/core/activation';
import { ConflictError, PointerConflictError } from '../../functions/core/errors';
import { formatVersion } from '../../functions/core/names';
import { nextPointer } from '../../functions/core/pointer';
import type { VersionRecord } from '../../functions/core/version';
import { type DynamoBackend, freshTable, testDynamo } from '../support/clients';

function ready(space: string, n: number, dims = 8): VersionRecord {
  return {
    space,
    version: formatVersion(n),
    number: n,
    status: 'READY',
    release: `r${n}`,
    releaseKey: `incoming/${space}/r${n}/release.json`,
    sequencer: `S${n}`,
    createdAt: new Date().toISOString(),
    collections: {
      items: { count: 1, dims, metric: 'cosine', M: 16, efConstruction: 200, ef: 80, segments: 1 },
    },
  };
}

describe.each<DynamoBackend>(['dynalite', 'dynamodb-local'])('pointer store on %s', (backend) => {
  let ddb: DynamoDBClient;
  let registry: DynamoRegistry;

  beforeAll(async () => {
    ddb = testDynamo(backend);
    registry = new DynamoRegistry(ddb, await freshTable(ddb, `pointer-${backend}`));
  });
  afterAll(() => ddb?.destroy());

  it('creates the pointer only when none exists (generation 0 → 1)', async () => {
    const space = 'first';
    const empty = await registry.getPointer(space);
    expect(empty).toMatchObject({ version: null, generation: 0, highWater: 0 });
    const next = nextPointer(empty, 'v1', 'api', new Date());
    await registry.casPointer(empty, next);
    await expect(
      registry.casPointer(empty, nextPointer(empty, 'v2', 'api', new Date())),
    ).rejects.toBeInstanceOf(PointerConflictError);
    expect(await registry.getPointer(space)).toMatchObject({
      version: 'v1',
      generation: 1,
      highWater: 1,
      previous: null,
    });
  });

  it('lets exactly one of 50 concurrent activations with the same expected generation win, 20 rounds running', async () => {
    const space = 'race';
    for (let n = 1; n <= 50; n++) await registry.ensureVersion(ready(space, n));
    let generation = 0;
    for (let round = 0; round < 20; round++) {
      const attempts = await Promise.allSettled(
        Array.from({ length: 50 }, (_, i) =>
          activateVersion(registry, {
            space,
            version: formatVersion(i + 1),
            expectedGeneration: generation,
            by: 'api',
          }),
        ),
      );
      const won = attempts.filter((a) => a.status === 'fulfilled');
      const lost = attempts.filter((a) => a.status === 'rejected');
      // The already-active version is a no-op success for its own caller, never a second switch.
      const switched = won.filter(
        (a) => (a as PromiseFulfilledResult<{ generation: number }>).value.generation === generation + 1,
      );
      expect(switched).toHaveLength(1);
      for (const l of lost) expect((l as PromiseRejectedResult).reason).toBeInstanceOf(ConflictError);
      expect(won.length + lost.length).toBe(50);
      const p = await registry.getPointer(space);
      expect(p.generation).toBe(generation + 1);
      generation = p.generation;
    }
    const history = await registry.listHistory(space, 100);
    expect(history.map((h) => h.generation)).toEqual(Array.from({ length: 20 }, (_, i) => 20 - i));
  });

  it('resolves the same release event, seen concurrently, to one version', async () => {
    const event = {
      space: 'claims',
      release: 'r1',
      key: 'incoming/claims/r1/release.json',
      sequencer: 'ABC',
    };
    const claims = await Promise.all(
      Array.from({ length: 10 }, () => registry.claimRelease(event, new Date())),
    );
    expect(new Set(claims.map((c) => c.version)).size).toBe(1);
    expect(claims.filter((c) => c.created)).toHaveLength(1);
    const other = await registry.claimRelease({ ...event, sequencer: 'ABD' }, new Date());
    expect(other.version).not.toBe(claims[0]!.version);
    expect(await registry.listSpaces()).toContain('claims');
  });

  it('grants the build lease to one builder until it expires, then to the next', async () => {
    const space = 'lease';
    await registry.ensureVersion({ ...ready(space, 1), status: 'BUILDING' });
    const now = Date.now();
    expect(await registry.acquireLease(space, 'v1', 'a', now + 60_000, now)).toBeDefined();
    expect(await registry.acquireLease(space, 'v1', 'b', now + 60_000, now)).toBeUndefined();
    expect(await registry.acquireLease(space, 'v1', 'b', now + 120_000, now + 61_000)).toBeDefined();
    expect(await registry.finishVersion(space, 'v1', 'a', { status: 'READY' })).toBe(false);
    expect(await registry.finishVersion(space, 'v1', 'b', { status: 'READY' })).toBe(true);
    expect((await registry.getVersion(space, 'v1'))?.status).toBe('READY');
  });

  it('never lets automatic activation move the pointer back below its high-water mark', async () => {
    const space = 'mono';
    for (const n of [1, 2, 3]) await registry.ensureVersion(ready(space, n));
    expect((await autoActivate(registry, space, 'v2')).activated).toBe(true);
    const late = await autoActivate(registry, space, 'v1');
    expect(late.activated).toBe(false);
    // An operator's rollback to v1 is not undone by a redelivered v2 build.
    const p = await registry.getPointer(space);
    await activateVersion(registry, { space, version: 'v1', expectedGeneration: p.generation, by: 'cli' });
    expect((await autoActivate(registry, space, 'v2')).activated).toBe(false);
    expect((await registry.getPointer(space)).version).toBe('v1');
    expect((await autoActivate(registry, space, 'v3')).activated).toBe(true);
  });
});
