/**
 * The router's per-request limits over the slots, on a fake invoke: the work budget split over the
 * calls of one request (and what they spent charged back), answers cut at the slot's response limit
 * continued in further calls, and the slot-call deadline capped by the router's remaining time.
 */
import { describe, expect, it } from 'vitest';
import { LIMITS } from '../../functions/core/budget';
import { requestContext } from '../../functions/query/context';
import type { SlotRequest, SlotResponse } from '../../functions/query/shards/protocol';
import { ANSWER_MARGIN_MS, ShardRouter, ShardsUnavailableError } from '../../functions/query/shards/router';
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
  version: 'v1',
  createdAt: '',
  release: 'r',
  collections: {
    c: {
      metric: 'l2',
      dims: 2,
      count: 40,
      M: 16,
      efConstruction: 200,
      ef: 50,
      metadataFields: [],
      segments: [seg(10), seg(10), seg(10), seg(10)],
      sharding: {
        hash: 'fnv1a64-utf8-mod',
        shards: 4,
        layout: [0, 1, 2, 3].map((j) => ({ shard: j, count: 10, segments: [j] })),
      },
    },
  },
};

const silent = { debug() {}, info() {}, warn() {}, error() {} };
const r = { space: 's', version: 'v1' };
const params = { k: 2, exclude: [], excludeSeen: false, includeMetadata: false };

function router(invoke: (slot: number, req: SlotRequest) => Promise<SlotResponse>, deadlineMs?: number) {
  return new ShardRouter({
    shardSlots: 4,
    hedgeMs: 10_000,
    invoke,
    manifest: async () => manifest,
    log: silent,
    ...(deadlineMs !== undefined ? { deadlineMs } : {}),
  });
}

const hits = (slot: number, req: SlotRequest) =>
  req.ops.map((_, i) => ({ ok: true as const, hits: [{ id: `s${slot}-${i}`, distance: slot + i / 100 }] }));

describe('shard slots: limits of one request', () => {
  it('splits the request budget over the slots it calls and charges what they spent', async () => {
    const budgets: number[] = [];
    const rt = router(async (slot, req) => {
      budgets.push(req.budget as number);
      return { slot, version: req.version, results: hits(slot, req), used: 100 };
    });
    const ctx = requestContext();
    ctx.budget.used = 2_000;
    await rt.query(r, 'c', [0, 0], params, ctx);
    const share = Math.floor((LIMITS.requestWork - 2_000) / 4);
    expect(budgets).toEqual([share, share, share, share]);
    expect(ctx.budget.used).toBe(2_000 + 4 * 100);
  });

  it('a slot answer cut at its response limit is continued with the remaining queries, none lost', async () => {
    const calls: number[] = [];
    const rt = router(async (slot, req) => {
      calls.push(req.ops.length);
      // Each call answers at most two operations, as a slot whose answer would exceed its limit.
      const results = hits(slot, req).slice(0, 2);
      return { slot, version: req.version, results, ...(req.ops.length > 2 ? { cut: true } : {}) };
    });
    const entries = Array.from({ length: 5 }, (_, i) => ({
      collection: 'c',
      vector: [i, 0],
      k: 2,
      exclude: [],
      excludeSeen: false,
      includeMetadata: false,
      allowPartial: false,
    }));
    const out = await rt.batch(r, entries, requestContext(), {
      item: async () => ({ vector: [], metadata: null }),
      search: async () => [],
    });
    expect(out.every((o) => o.ok)).toBe(true);
    // 5 searches per slot, answered 2 + 2 + 1: three calls per slot, 12 in all.
    expect(calls.sort()).toEqual([1, 1, 1, 1, 3, 3, 3, 3, 5, 5, 5, 5]);
  });

  it('a cut answer with no result is a broken slot, not an endless loop', async () => {
    const rt = router(async (slot, req) => ({ slot, version: req.version, results: [], cut: true }));
    await expect(rt.query(r, 'c', [0, 0], params, requestContext())).rejects.toThrow(
      /Shards unavailable|No answer/,
    );
  });

  it('the slot deadline is the configured one, or the router’s remaining time less its answer margin', async () => {
    const rt = router(async (slot, req) => ({ slot, version: req.version, results: hits(slot, req) }), 9_000);
    expect(rt.deadlineMs()).toBe(9_000);
    rt.withDeadline(4_000, () => {
      const d = rt.deadlineMs();
      expect(d).toBeLessThanOrEqual(4_000 - ANSWER_MARGIN_MS);
      expect(d).toBeGreaterThan(4_000 - ANSWER_MARGIN_MS - 200);
    });
    rt.withDeadline(60_000, () => expect(rt.deadlineMs()).toBe(9_000));
  });

  it('a slot that does not answer before the remaining time gives a 503 in time, not a router timeout', async () => {
    const rt = router(() => new Promise<SlotResponse>(() => undefined), 25_000);
    const t0 = Date.now();
    await expect(
      rt.withDeadline(ANSWER_MARGIN_MS + 300, () => rt.query(r, 'c', [0, 0], params, requestContext())),
    ).rejects.toBeInstanceOf(ShardsUnavailableError);
    expect(Date.now() - t0).toBeLessThan(5_000);
  });
});
