import { describe, expect, it } from 'vitest';
import {
  fnv1a64,
  fnv1a64Reference,
  indexBytesPerItem,
  planShards,
  shardIndexBudget,
  shardOf,
  taskKey,
} from '../../functions/core/shard';
import { MemoryRegistry } from '../support/memory/registry';

describe('FNV-1a 64 (item → shard)', () => {
  it.each([
    ['', 0xcbf29ce484222325n],
    ['a', 0xaf63dc4c8601ec8cn],
    ['b', 0xaf63df4c8601f1a5n],
    ['foobar', 0x85944171f73967e8n],
  ])('%j → known vector', (s, h) => {
    expect(fnv1a64(s)).toBe(h);
    expect(fnv1a64Reference(s)).toBe(h);
  });

  it('hashes UTF-8 bytes, and the fast form equals the BigInt reference', () => {
    expect(fnv1a64('é')).toBe(fnv1a64Reference('é'));
    for (let i = 0; i < 2000; i++) {
      const id = `id-${i}-${'ü☃'.repeat(i % 5)}`;
      expect(fnv1a64(id)).toBe(fnv1a64Reference(id));
    }
  });

  it('shard = hash mod N, stable, and spreads ids evenly', () => {
    expect(shardOf('a', 12)).toBe(Number(0xaf63dc4c8601ec8cn % 12n));
    expect(shardOf('anything', 1)).toBe(0);
    const counts = new Array(8).fill(0);
    for (let i = 0; i < 8000; i++) counts[shardOf(`item-${i}`, 8)]++;
    for (const c of counts) expect(c).toBeGreaterThan(800);
  });

  it('task keys', () => {
    expect(taskKey({ kind: 'partition', collection: 'c', index: 3 })).toBe('p:c:3');
    expect(taskKey({ kind: 'shard', collection: 'c', index: 0 })).toBe('s:c:0');
  });
});

describe('shard planning', () => {
  const base = { dims: 128, M: 16, maxShardItems: 2_000_000, taskMemoryMb: 10_240 };
  it('keeps an explicit count (clamped to 1–256)', () => {
    expect(planShards({ ...base, requested: 12, rows: 10 })).toBe(12);
    expect(planShards({ ...base, requested: 999, rows: 10 })).toBe(256);
  });
  it('auto: one shard while it fits items and memory', () => {
    expect(planShards({ ...base, requested: 'auto', rows: 0 })).toBe(1);
    expect(planShards({ ...base, requested: 'auto', rows: 2_000_000 })).toBe(1);
  });
  it('auto: the fewest shards that fit maxShardItems', () => {
    expect(planShards({ ...base, requested: 'auto', rows: 2_000_001 })).toBe(2);
    expect(planShards({ ...base, requested: 'auto', rows: 100_000_000 })).toBe(50);
  });
  it('auto: the index-bytes budget of the task memory binds first on a small function', () => {
    const small = { ...base, taskMemoryMb: 1024 };
    const perShard = Math.floor(shardIndexBudget(1024) / indexBytesPerItem(128, 16));
    expect(planShards({ ...small, requested: 'auto', rows: perShard })).toBe(1);
    expect(planShards({ ...small, requested: 'auto', rows: perShard + 1 })).toBe(2);
    expect(planShards({ ...small, requested: 'auto', rows: 1_000_000 })).toBe(
      Math.ceil(1_000_000 / perShard),
    );
  });
});

describe('fan-in on the version record (in-memory registry, DynamoRegistry semantics)', () => {
  async function building(r: MemoryRegistry) {
    const event = { space: 's', release: 'r', key: 'incoming/s/r/release.json', sequencer: '1' };
    const { version } = await r.claimRelease(event, new Date());
    await r.ensureVersion({
      space: 's',
      version,
      number: 1,
      status: 'BUILDING',
      release: 'r',
      releaseKey: event.key,
      sequencer: '1',
      createdAt: new Date().toISOString(),
    });
    await r.acquireLease('s', version, 'builder', Date.now() + 60_000, Date.now());
    return version;
  }

  it('hands the lease to the task phase once; counts each task once; exactly one completer', async () => {
    const r = new MemoryRegistry();
    const v = await building(r);
    expect(
      await r.startTasks('s', v, 'someone-else', 'tasks:v1', Date.now() + 1e6, { partitions: 2, shards: 3 }),
    ).toBe(false);
    expect(
      await r.startTasks('s', v, 'builder', 'tasks:v1', Date.now() + 1e6, { partitions: 2, shards: 3 }),
    ).toBe(true);
    // A redelivered event cannot take the lease the tasks hold.
    expect(await r.acquireLease('s', v, 'builder-2', Date.now() + 1e6, Date.now())).toBeUndefined();

    expect((await r.beginTask('s', v, 'p:c:0'))?.attempts).toBe(1);
    expect((await r.beginTask('s', v, 'p:c:0'))?.attempts).toBe(2);
    const a = await r.completeTask('s', v, 'p:c:0', 10);
    const again = await r.completeTask('s', v, 'p:c:0', 10);
    expect(a?.recorded).toBe(true);
    expect(again?.recorded).toBe(false);
    expect(again?.record.tasks).toMatchObject({ partitionsDone: 1, rows: 10 });

    const shards = await Promise.all(
      ['s:c:0', 's:c:1', 's:c:2', 's:c:1'].map((k) => r.completeTask('s', v, k, 5)),
    );
    const completers = shards.filter((x) => x?.recorded && x.record.tasks?.shardsDone === 3);
    expect(completers).toHaveLength(1);
    expect(shards.filter((x) => x?.recorded)).toHaveLength(3);

    expect(await r.finishVersion('s', v, 'tasks:v1', { status: 'READY' })).toBe(true);
    expect(await r.beginTask('s', v, 's:c:0')).toBeUndefined();
    expect(await r.completeTask('s', v, 'p:c:1', 1)).toBeUndefined();
  });
});
