/** The scatter-gather router on a fake invoke: merge rule, exclusions by shard, hedged retry, 503 / allowPartial. */
import { describe, expect, it } from 'vitest';
import { slotCapacityProblem } from '../../functions/core/serving-capacity';
import { requestContext } from '../../functions/query/context';
import {
  type SlotRequest,
  type SlotResponse,
  type SlotSearchOp,
  shardsOfSlot,
  slotManifest,
} from '../../functions/query/shards/protocol';
import { ShardRouter, ShardsUnavailableError } from '../../functions/query/shards/router';
import type { Manifest } from '../../functions/snapshot/manifest';

const seg = (n: number) => ({
  count: n,
  files: {
    index: { key: `i${n}`, bytes: 1, sha256: '', parts: [] },
    ids: { key: `d${n}`, bytes: 1, sha256: '', parts: [] },
  },
});

const manifest: Manifest = {
  format: 1,
  space: 's',
  version: 'v3',
  createdAt: '',
  release: 'r',
  collections: {
    c: {
      metric: 'l2',
      dims: 2,
      count: 60,
      M: 16,
      efConstruction: 200,
      ef: 50,
      metadataFields: [],
      segments: [seg(10), seg(11), seg(12), seg(13), seg(14)],
      sharding: {
        hash: 'fnv1a64-utf8-mod',
        shards: 5,
        layout: [0, 1, 2, 3, 4].map((j) => ({ shard: j, count: 10 + j, segments: [j] })),
      },
    },
  },
};

const silent = { debug() {}, info() {}, warn() {}, error() {} };
const r = { space: 's', version: 'v3' };
const params = { k: 3, exclude: [], excludeSeen: false, includeMetadata: false };

function router(invoke: (slot: number, req: SlotRequest) => Promise<SlotResponse>, hedgeMs = 50) {
  return new ShardRouter({
    shardSlots: 3,
    hedgeMs,
    invoke,
    manifest: async () => manifest,
    log: silent,
  });
}

/** Each slot answers two hits named after it; ties across slots settle by id. */
const answer = (slot: number, req: SlotRequest): SlotResponse => ({
  slot,
  version: req.version,
  results: req.ops.map(() => ({
    ok: true as const,
    hits: [
      { id: `s${slot}-a`, distance: slot === 2 ? 0.5 : 1 },
      { id: `s${slot}-b`, distance: 2 },
    ],
  })),
});

describe('shard slots: protocol', () => {
  it('a slot sees only its shards (j mod slots), counted and re-indexed', () => {
    const v = slotManifest(manifest, 1, 3).collections.c;
    expect(shardsOfSlot(1, 5, 3)).toEqual([1, 4]);
    expect(v?.segments.map((s) => s.count)).toEqual([11, 14]);
    expect(v?.count).toBe(25);
    expect(v?.sharding?.layout).toEqual([
      { shard: 1, count: 11, segments: [0] },
      { shard: 4, count: 14, segments: [1] },
    ]);
  });
});

describe('shard slots: router', () => {
  it('merges the slots’ top k by distance then id, and sends every slot the one version', async () => {
    const seen: SlotRequest[] = [];
    const q = router(async (slot, req) => {
      seen.push(req);
      return answer(slot, req);
    });
    const a = await q.query(r, 'c', [0, 0], params, requestContext());
    expect(a.results.map((x) => x.id)).toEqual(['s2-a', 's0-a', 's1-a']);
    expect(a.results[0]?.score).toBe(-0.5);
    expect(new Set(seen.map((x) => x.version))).toEqual(new Set(['v3']));
    expect(seen.map((x) => x.slot).sort()).toEqual([0, 1, 2]);
  });

  it('sends each exclusion only to the slot of its shard', async () => {
    const seen = new Map<number, string[]>();
    const q = router(async (slot, req) => {
      seen.set(slot, (req.ops[0] as SlotSearchOp).exclude ?? []);
      return answer(slot, req);
    });
    const ids = Array.from({ length: 30 }, (_, i) => `x${i}`);
    await q.query(r, 'c', [0, 0], { ...params, exclude: ids }, requestContext());
    const all = [...seen.values()].flat().sort();
    expect(all).toEqual([...ids].sort());
  });

  it('a slow slot gets a hedged retry and the first answer wins', async () => {
    const calls: number[] = [];
    const q = router(async (slot, req) => {
      calls.push(slot);
      if (slot === 1 && calls.filter((s) => s === 1).length === 1)
        await new Promise((ok) => setTimeout(ok, 2000));
      return answer(slot, req);
    }, 30);
    const t0 = Date.now();
    const a = await q.query(r, 'c', [0, 0], params, requestContext());
    expect(Date.now() - t0).toBeLessThan(1500);
    expect(calls.filter((s) => s === 1)).toHaveLength(2);
    expect(a.results).toHaveLength(3);
  });

  it('a slot failing twice: 503 naming its shards, or with allowPartial an answer naming them', async () => {
    const q = router(async (slot, req) => {
      if (slot === 1) throw new Error('Runtime exited');
      return answer(slot, req);
    });
    const err = await q.query(r, 'c', [0, 0], params, requestContext()).catch((e) => e);
    expect(err).toBeInstanceOf(ShardsUnavailableError);
    expect(err.extras.missingShards).toEqual([
      { collection: 'c', shard: 1, slot: 1 },
      { collection: 'c', shard: 4, slot: 1 },
    ]);
    const partial = await q.query(r, 'c', [0, 0], { ...params, allowPartial: true }, requestContext());
    expect(partial.missingShards).toHaveLength(2);
    expect(partial.results.map((x) => x.id)).toEqual(['s2-a', 's0-a', 's0-b']);
  });

  it('a batch too large for one invoke payload goes to a slot in several calls, answers in order', async () => {
    const sizes: number[] = [];
    const q = new ShardRouter({
      shardSlots: 3,
      hedgeMs: 50,
      maxPayloadBytes: 400,
      invoke: async (slot, req) => {
        sizes.push(req.ops.length);
        return {
          slot,
          version: req.version,
          results: req.ops.map((op) => ({
            ok: true as const,
            hits: [{ id: `k${(op as SlotSearchOp).k}-s${slot}`, distance: slot }],
          })),
        };
      },
      manifest: async () => manifest,
      log: silent,
    });
    const entries = Array.from({ length: 12 }, (_, i) => ({
      collection: 'c',
      vector: [i, i],
      k: i + 1,
      exclude: [],
      excludeSeen: false,
      includeMetadata: false,
      allowPartial: false,
    }));
    const out = await q.batch(r, entries, requestContext(), {} as never);
    expect(out.map((o) => (o.ok ? o.answer.results[0]?.id : 'error'))).toEqual(
      entries.map((e) => `k${e.k}-s0`),
    );
    expect(sizes.length).toBeGreaterThan(3);
    expect(Math.max(...sizes)).toBeLessThan(12);
  });

  it('prewarm asks every slot holding shards to load them', async () => {
    const seen: SlotRequest[] = [];
    const q = router(async (slot, req) => {
      seen.push(req);
      return { slot, version: req.version, results: req.ops.map(() => ({ ok: true as const, hits: [] })) };
    });
    expect(await q.prewarm('s', 'v3')).toEqual({ collections: ['c'], failedSlots: [] });
    expect(seen.map((x) => [x.slot, x.ops]).sort()).toEqual([
      [0, [{ op: 'warm', collection: 'c' }]],
      [1, [{ op: 'warm', collection: 'c' }]],
      [2, [{ op: 'warm', collection: 'c' }]],
    ]);
  });

  it('a slot answering for another version is never merged', async () => {
    const q = router(async (slot, req) => ({
      ...answer(slot, req),
      version: slot === 0 ? 'v2' : req.version,
    }));
    await expect(q.query(r, 'c', [0, 0], params, requestContext())).rejects.toBeInstanceOf(
      ShardsUnavailableError,
    );
  });
});

describe('shard slots: capacity at build time', () => {
  const base = { collection: 'c', dims: 128, M: 16, slotBudgetBytes: 1228 * 1024 * 1024 };
  it('passes when the busiest slot fits, refuses naming the numbers when it does not', () => {
    // 2M rows, 8 shards on 8 slots: 250k × 692 B ≈ 165 MB per slot.
    const fits = { ...base, rows: 2_000_000, shards: 8, shardSlots: 8, shardBytes: 250_000 * 692 };
    expect(slotCapacityProblem(fits)).toBeUndefined();
    // 20M rows, 16 shards on 8 slots: 2 shards of 1.25M × 692 B ≈ 1.65 GB in one slot.
    const over = { ...base, rows: 20_000_000, shards: 16, shardSlots: 8, shardBytes: 1_250_000 * 692 };
    const p = slotCapacityProblem(over);
    expect(p).toMatch(/collection c: 16 shards over 8 shard slots put 2 shard\(s\) of about 825 MB each/);
    expect(p).toMatch(/1650 MB, over a slot's memory budget of 1228 MB/);
    expect(slotCapacityProblem({ ...over, shards: 1 })).toBeUndefined();
  });
});
