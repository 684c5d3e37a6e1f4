/**
 * Scatter-gather over the shard slots: the query function's side of a sharded collection. The version was
 * resolved once (context.ts `Resolved`) and goes with every slot call; each slot answers its own top k
 * over its shards; the router merges them with the unsharded rule (mergeNeighbours: distance, then id),
 * so ids, order and scores are those of one instance holding every segment.
 *
 * Faults: a slot call that errors, or has not answered after that slot's observed p95 (a fixed bound
 * until enough calls were seen), gets one hedged retry; still failing, the request is a 503 naming the
 * missing shards — or, with `allowPartial`, an answer from the other shards that names them.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { BadRequestError, NotFoundError, UnprocessableError, VicinityError } from '../../core/errors';
import type { Log } from '../../core/ports';
import type { BatchEntry, SearchParams } from '../../core/query';
import { mergeNeighbours, type ScoredResult, scoreOf } from '../../core/search';
import { shardOf } from '../../core/shard';
import type { CollectionManifest, Manifest } from '../../snapshot/manifest';
import { type RequestContext, type Resolved, requestContext } from '../context';
import type { SearchOptions } from '../search-plan';
import {
  fromWire,
  type SlotHit,
  type SlotOp,
  type SlotOpResult,
  type SlotPrefixHit,
  type SlotRequest,
  type SlotResponse,
  shardsOfSlot,
  slotOf,
} from './protocol';

/** A shard no slot answered for. */
export interface MissingShard {
  collection: string;
  shard: number;
  slot: number;
}

/** Shards that could not be reached after the hedged retry: 503, naming them. */
export class ShardsUnavailableError extends VicinityError {
  static override readonly errorName: string = 'ShardsUnavailableError';
  constructor(missing: MissingShard[], version: string) {
    super(
      'unavailable',
      'shards-unavailable',
      'Shards unavailable',
      `No answer from ${describe(missing)} of version ${version} after a retry; the answer would be partial (send allowPartial=true to accept one that names the missing shards)`,
      { extras: { retryAfter: 2, version, missingShards: missing } },
    );
  }
}

function describe(missing: MissingShard[]): string {
  const by = new Map<string, number[]>();
  for (const m of missing) by.set(m.collection, [...(by.get(m.collection) ?? []), m.shard]);
  return [...by].map(([c, s]) => `${c} shard${s.length > 1 ? 's' : ''} ${s.join(', ')}`).join('; ');
}

/** The item a similar query starts from. */
export interface ItemVector {
  vector: number[];
  metadata: Record<string, unknown> | null;
  seen?: string[];
}

/** What the router asks of the in-process path for an unsharded collection on the other side of a query. */
export interface LocalSide {
  item(
    r: Resolved,
    collection: string,
    id: string,
    seenField: string | undefined,
    ctx: RequestContext,
  ): Promise<ItemVector>;
  search(
    r: Resolved,
    collection: string,
    vector: number[],
    params: SearchOptions,
    exclude: Set<string>,
    ctx: RequestContext,
  ): Promise<ScoredResult[]>;
}

export interface ShardRouterDeps {
  shardSlots: number;
  /** One synchronous invoke of a slot function (the Lambda adapter; tests: anything). */
  invoke(slot: number, req: SlotRequest): Promise<SlotResponse>;
  /** The version's manifest at `key` (the resolved `manifestKey`; default: the version's own). */
  manifest(space: string, version: string, key?: string): Promise<Manifest>;
  /** Hedge after this long until a slot has enough observed calls for its own p95. */
  hedgeMs: number;
  /** A slot call (both attempts) gives up after this long. */
  deadlineMs?: number;
  /** Request payload per slot call (default MAX_PAYLOAD_BYTES, under Lambda's 6 MB). */
  maxPayloadBytes?: number;
  log: Log;
}

export interface ShardedAnswer {
  results: ScoredResult[];
  missingShards?: MissingShard[];
}

type CallOutcome = { ok: true; results: SlotOpResult[] } | { ok: false; error: string };

/** A search of one collection, planned for the scatter. */
interface SearchJob {
  collection: string;
  cm: CollectionManifest;
  vector: number[];
  params: SearchOptions;
  exclude: Set<string>;
  /** slot → index of this job's op in that slot's ops. */
  at: Map<number, number>;
}

/** Under Lambda's 6 MB synchronous request payload, with room for the request's envelope. */
export const MAX_PAYLOAD_BYTES = 5 * 1024 * 1024;

/** Ops in consecutive groups of at most `max` bytes of JSON (an op larger than that goes alone). */
export function splitOps(ops: SlotOp[], max: number): SlotOp[][] {
  const out: SlotOp[][] = [];
  let cur: SlotOp[] = [];
  let bytes = 0;
  for (const op of ops) {
    const b = Buffer.byteLength(JSON.stringify(op)) + 1;
    if (cur.length && bytes + b > max) {
      out.push(cur);
      cur = [];
      bytes = 0;
    }
    cur.push(op);
    bytes += b;
  }
  if (cur.length) out.push(cur);
  return out;
}

/** A slot call's deadline when none is configured (ENV.slotDeadlineMs). */
export const DEFAULT_DEADLINE_MS = 25_000;
/** What the router keeps of its own remaining time to answer once slot calls gave up. */
export const ANSWER_MARGIN_MS = 1_000;
const MIN_DEADLINE_MS = 100;
/** The current request's end (epoch ms), when the handler knows it (Lambda's remaining time). */
const requestDeadline = new AsyncLocalStorage<number>();

const SAMPLES = 64;
const MIN_SAMPLES = 20;

export class ShardRouter {
  private readonly latencies = new Map<number, number[]>();

  constructor(private readonly deps: ShardRouterDeps) {}

  /** Whether a collection of this version is answered by the slots. */
  sharded(m: Manifest, collection: string | undefined): boolean {
    return collection !== undefined && !!m.collections[collection]?.sharding;
  }

  /** A vector query of a sharded collection. */
  async query(
    r: Resolved,
    collection: string,
    vector: number[],
    params: SearchOptions & { allowPartial?: boolean },
    ctx: RequestContext,
  ): Promise<ShardedAnswer> {
    const m = await this.deps.manifest(r.space, r.version, r.manifestKey);
    const cm = m.collections[collection] as CollectionManifest;
    if (vector.length !== cm.dims) {
      throw new BadRequestError(
        `vector has ${vector.length} values, collection ${collection} has ${cm.dims} dims`,
      );
    }
    const [out] = await this.searchMany(
      r,
      [{ collection, vector, params, exclude: new Set(params.exclude) }],
      ctx,
    );
    return unwrap(out as SearchOutcome, r, params.allowPartial);
  }

  /** Neighbours of an item: its vector from its own shard's slot (or in-process), then the fan-out. */
  async similar(
    r: Resolved,
    collection: string,
    id: string,
    params: SearchOptions & { allowPartial?: boolean },
    ctx: RequestContext,
    local: LocalSide,
  ): Promise<ShardedAnswer> {
    const [out] = await this.similarMany(r, [{ collection, id, params }], ctx, local);
    return unwrap(out as SearchOutcome, r, params.allowPartial);
  }

  /**
   * Prewarm after a pointer move: every slot that serves a shard of a sharded collection of the version
   * loads its shards. Best effort: returns the sharded collections and the slots that did not answer.
   */
  async prewarm(
    space: string,
    version: string,
    manifestKey?: string,
  ): Promise<{ collections: string[]; failedSlots: number[] }> {
    const m = await this.deps.manifest(space, version, manifestKey);
    const calls = new Map<number, SlotOp[]>();
    const collections: string[] = [];
    for (const [name, c] of Object.entries(m.collections)) {
      if (!c.sharding) continue;
      collections.push(name);
      for (let slot = 0; slot < Math.min(c.sharding.shards, this.deps.shardSlots); slot++)
        calls.set(slot, [...(calls.get(slot) ?? []), { op: 'warm', collection: name }]);
    }
    const ctx = requestContext();
    const out = await this.scatter({ space, version, ...(manifestKey ? { manifestKey } : {}) }, calls, ctx);
    return { collections, failedSlots: [...out].filter(([, o]) => !o.ok).map(([slot]) => slot) };
  }

  /** One item of a sharded collection (GET …/items/{id}), from its shard's slot. */
  async item(r: Resolved, collection: string, id: string, ctx: RequestContext): Promise<ItemVector> {
    const m = await this.deps.manifest(r.space, r.version, r.manifestKey);
    const cm = m.collections[collection] as CollectionManifest;
    const shard = shardOf(id, cm.sharding?.shards ?? 1);
    const slot = slotOf(shard, this.deps.shardSlots);
    const a = (await this.scatter(r, new Map([[slot, [{ op: 'item', collection, id } as SlotOp]]]), ctx)).get(
      slot,
    ) as CallOutcome;
    if (!a.ok) throw new ShardsUnavailableError([{ collection, shard, slot }], r.version);
    const res = a.results[0] as SlotOpResult;
    if (!res.ok) throw fromWire(res.problem);
    if (!('item' in res)) throw new Error(`slot ${slot} answered an item lookup with hits`);
    return res.item;
  }

  /** The slots serving a shard of a collection of `shards` shards, with `op` each; a failed slot is a 503. */
  private async everySlot(
    r: Resolved,
    collection: string,
    shards: number,
    op: SlotOp,
    ctx: RequestContext,
  ): Promise<SlotOpResult[]> {
    const calls = new Map<number, SlotOp[]>();
    for (let slot = 0; slot < Math.min(shards, this.deps.shardSlots); slot++) calls.set(slot, [op]);
    const answers = await this.scatter(r, calls, ctx);
    const missing: MissingShard[] = [];
    const results: SlotOpResult[] = [];
    for (const [slot, a] of answers) {
      if (!a.ok) {
        for (const shard of shardsOfSlot(slot, shards, this.deps.shardSlots))
          missing.push({ collection, shard, slot });
        continue;
      }
      const res = a.results[0] as SlotOpResult;
      if (!res.ok) throw fromWire(res.problem);
      results.push(res);
    }
    if (missing.length) throw new ShardsUnavailableError(missing, r.version);
    return results;
  }

  /**
   * The collection's hash sample (explore/sampling.ts): each slot samples its shards, the merge keeps
   * the `n` smallest hashes (ties by id) — the same ids one instance holding every shard would pick.
   * With `alsoIn`, only ids in both versions (a diff; the same shard count in both); with `after`, only
   * ids after that (hash, id): the next page of the collection's ids in hash order.
   */
  async sample(
    r: Resolved,
    collection: string,
    n: number,
    opts: {
      alsoIn?: Resolved;
      exclude?: readonly string[];
      labels?: boolean;
      after?: { hash: number; id: string };
    },
    ctx: RequestContext,
  ): Promise<{ count: number; ids: string[]; hashes: number[]; labels: Map<string, string> }> {
    const m = await this.deps.manifest(r.space, r.version, r.manifestKey);
    const cm = m.collections[collection] as CollectionManifest;
    const op: SlotOp = {
      op: 'sample',
      collection,
      n,
      ...(opts.alsoIn
        ? {
            alsoIn: {
              version: opts.alsoIn.version,
              ...(opts.alsoIn.pinned ? { pinned: true } : {}),
              ...(opts.alsoIn.manifestKey ? { manifestKey: opts.alsoIn.manifestKey } : {}),
            },
          }
        : {}),
      ...(opts.exclude?.length ? { exclude: [...opts.exclude] } : {}),
      ...(opts.labels ? { labels: true } : {}),
      ...(opts.after ? { after: opts.after } : {}),
    };
    const all: { id: string; hash: number; label: string | null }[] = [];
    let count = 0;
    for (const res of await this.everySlot(r, collection, cm.sharding?.shards ?? 1, op, ctx)) {
      if (!('sample' in res)) throw new Error('a slot answered a sample with something else');
      count += res.sample.count;
      for (const [i, id] of res.sample.ids.entries())
        all.push({ id, hash: res.sample.hashes[i] as number, label: res.sample.labels?.[i] ?? null });
    }
    all.sort((a, b) => a.hash - b.hash || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    const picked = all.slice(0, n);
    const labels = new Map<string, string>();
    for (const p of picked) if (p.label !== null) labels.set(p.id, p.label);
    return { count, ids: picked.map((p) => p.id), hashes: picked.map((p) => p.hash), labels };
  }

  /** Items of a sharded collection by id (vector, metadata), one call per slot; unknown ids are absent. */
  async items(r: Resolved, collection: string, ids: readonly string[], ctx: RequestContext) {
    const m = await this.deps.manifest(r.space, r.version, r.manifestKey);
    const cm = m.collections[collection] as CollectionManifest;
    const shards = cm.sharding?.shards ?? 1;
    const calls = new Map<number, SlotOp[]>();
    const where = new Map<string, { slot: number; at: number }>();
    for (const id of new Set(ids)) {
      const slot = slotOf(shardOf(id, shards), this.deps.shardSlots);
      const ops = calls.get(slot) ?? [];
      ops.push({ op: 'item', collection, id });
      calls.set(slot, ops);
      where.set(id, { slot, at: ops.length - 1 });
    }
    const answers = await this.scatter(r, calls, ctx);
    const out = new Map<string, ItemVector>();
    const missing: MissingShard[] = [];
    for (const [id, w] of where) {
      const a = answers.get(w.slot) as CallOutcome;
      if (!a.ok) {
        missing.push({ collection, shard: shardOf(id, shards), slot: w.slot });
        continue;
      }
      const res = a.results[w.at] as SlotOpResult;
      if (res.ok && 'item' in res) out.set(id, res.item);
      else if (!res.ok && res.problem.kind !== 'not-found') throw fromWire(res.problem);
    }
    if (missing.length) throw new ShardsUnavailableError(dedupe(missing), r.version);
    return out;
  }

  /**
   * A prefix search over a sharded collection: each slot's best `limit`, merged by rank, value length,
   * value, then id (one instance breaks the last tie by snapshot order).
   */
  async prefix(
    r: Resolved,
    collection: string,
    q: { field: string; prefix: string; limit: number },
    ctx: RequestContext,
  ): Promise<{ hits: SlotPrefixHit[]; more: boolean }> {
    const m = await this.deps.manifest(r.space, r.version, r.manifestKey);
    const cm = m.collections[collection] as CollectionManifest;
    const op: SlotOp = { op: 'prefix', collection, ...q };
    const hits: SlotPrefixHit[] = [];
    let more = false;
    for (const res of await this.everySlot(r, collection, cm.sharding?.shards ?? 1, op, ctx)) {
      if (!('prefix' in res)) throw new Error('a slot answered a prefix search with something else');
      hits.push(...res.prefix.hits);
      more ||= res.prefix.more;
    }
    hits.sort(
      (a, b) =>
        a.rank - b.rank ||
        a.value.length - b.value.length ||
        (a.value < b.value ? -1 : a.value > b.value ? 1 : a.id < b.id ? -1 : a.id > b.id ? 1 : 0),
    );
    return { hits: hits.slice(0, q.limit), more: more || hits.length > q.limit };
  }

  /**
   * A batch's entries, in order: one call per slot for every item lookup, then one call per slot for
   * every search (at most two rounds whatever the batch holds). Each entry has its own outcome.
   */
  async batch(
    r: Resolved,
    entries: BatchEntry[],
    ctx: RequestContext,
    local: LocalSide,
  ): Promise<({ ok: true; answer: ShardedAnswer } | { ok: false; error: VicinityError })[]> {
    const m = await this.deps.manifest(r.space, r.version, r.manifestKey);
    const outcomes: ({ ok: true; answer: ShardedAnswer } | { ok: false; error: VicinityError })[] = [];
    const items: { i: number; collection: string; id: string; params: BatchEntry }[] = [];
    const vectors: { i: number; collection: string; vector: number[]; params: BatchEntry }[] = [];
    for (const [i, e] of entries.entries()) {
      if (e.item !== undefined) items.push({ i, collection: e.collection, id: e.item, params: e });
      else {
        const cm = m.collections[e.collection];
        if (e.target !== undefined) {
          outcomes[i] = {
            ok: false,
            error: new BadRequestError(
              `target: applies to item queries; a vector query searches the collection it is sent to (${e.collection})`,
            ),
          };
        } else if (!cm) outcomes[i] = { ok: false, error: noCollection(r, m, e.collection) };
        else if ((e.vector as number[]).length !== cm.dims)
          outcomes[i] = {
            ok: false,
            error: new BadRequestError(
              `vector has ${(e.vector as number[]).length} values, collection ${e.collection} has ${cm.dims} dims`,
            ),
          };
        else vectors.push({ i, collection: e.collection, vector: e.vector as number[], params: e });
      }
    }
    const [sim, vec] = await Promise.all([
      this.similarMany(r, items, ctx, local),
      this.searchMany(
        r,
        vectors.map((v) => ({ ...v, exclude: new Set(v.params.exclude) })),
        ctx,
      ),
    ]);
    const put = (i: number, o: SearchOutcome, allowPartial: boolean) => {
      try {
        outcomes[i] = { ok: true, answer: unwrap(o, r, allowPartial) };
      } catch (err) {
        if (!(err instanceof VicinityError)) throw err;
        outcomes[i] = { ok: false, error: err };
      }
    };
    for (const [j, x] of items.entries()) put(x.i, sim[j] as SearchOutcome, x.params.allowPartial);
    for (const [j, x] of vectors.entries()) put(x.i, vec[j] as SearchOutcome, x.params.allowPartial);
    return outcomes;
  }

  private async similarMany(
    r: Resolved,
    queries: { collection: string; id: string; params: SearchOptions }[],
    ctx: RequestContext,
    local: LocalSide,
  ): Promise<SearchOutcome[]> {
    if (queries.length === 0) return [];
    const m = await this.deps.manifest(r.space, r.version, r.manifestKey);
    const out: SearchOutcome[] = [];
    // Round 1: the items' vectors, one call per slot.
    const calls = new Map<number, SlotOp[]>();
    const where: ({ slot: number; at: number } | undefined)[] = [];
    const localItems: (Promise<ItemVector> | undefined)[] = [];
    for (const [i, q] of queries.entries()) {
      const source = m.collections[q.collection];
      const target = q.params.target ?? q.collection;
      const tm = m.collections[target];
      if (!source || !tm) {
        out[i] = { error: noCollection(r, m, source ? target : q.collection) };
        continue;
      }
      if (tm.dims !== source.dims) {
        out[i] = {
          error: new UnprocessableError(
            `Collection ${target} has ${tm.dims} dims, ${q.collection} has ${source.dims}: they cannot be compared`,
            { extras: { version: r.version } },
          ),
        };
        continue;
      }
      if (q.params.excludeSeen && !m.seenField) {
        out[i] = {
          error: new BadRequestError(
            `excludeSeen: release ${r.version} of ${r.space} names no seenField, so there is nothing to exclude`,
          ),
        };
        continue;
      }
      const seenField = q.params.excludeSeen ? m.seenField : undefined;
      if (!source.sharding) {
        const p = local.item(r, q.collection, q.id, seenField, ctx);
        p.catch(() => undefined);
        localItems[i] = p;
        continue;
      }
      const slot = slotOf(shardOf(q.id, source.sharding.shards), this.deps.shardSlots);
      const ops = calls.get(slot) ?? [];
      ops.push({ op: 'item', collection: q.collection, id: q.id, ...(seenField ? { seenField } : {}) });
      calls.set(slot, ops);
      where[i] = { slot, at: ops.length - 1 };
    }
    const answers = await this.scatter(r, calls, ctx);
    // Round 2: the searches, one call per slot for all of them.
    const searches: (SearchInput & { i: number })[] = [];
    for (const [i, q] of queries.entries()) {
      if (out[i]) continue;
      let item: ItemVector;
      try {
        const w = where[i];
        if (w) {
          const a = answers.get(w.slot) as CallOutcome;
          if (!a.ok) {
            const source = m.collections[q.collection] as CollectionManifest;
            const shard = shardOf(q.id, source.sharding?.shards ?? 1);
            // Without the item's own shard there is nothing to search from: 503 even with allowPartial.
            throw new ShardsUnavailableError([{ collection: q.collection, shard, slot: w.slot }], r.version);
          }
          const res = a.results[w.at] as SlotOpResult;
          if (!res.ok) throw fromWire(res.problem);
          if (!('item' in res)) throw new Error(`slot ${w.slot} answered an item lookup with hits`);
          item = res.item;
        } else item = await (localItems[i] as Promise<ItemVector>);
      } catch (err) {
        if (!(err instanceof VicinityError)) throw err;
        out[i] = { error: err };
        continue;
      }
      const target = q.params.target ?? q.collection;
      const exclude = new Set(q.params.exclude);
      if (target === q.collection) exclude.add(q.id);
      for (const s of item.seen ?? []) exclude.add(s);
      searches.push({ i, collection: target, vector: item.vector, params: q.params, exclude });
    }
    const sharded = searches.filter((s) => m.collections[s.collection]?.sharding);
    const found = await this.searchMany(r, sharded, ctx);
    sharded.forEach((s, j) => {
      out[s.i] = found[j] as SearchOutcome;
    });
    for (const s of searches.filter((x) => !m.collections[x.collection]?.sharding)) {
      try {
        out[s.i] = { results: await local.search(r, s.collection, s.vector, s.params, s.exclude, ctx) };
      } catch (err) {
        if (!(err instanceof VicinityError)) throw err;
        out[s.i] = { error: err };
      }
    }
    return out;
  }

  /** Searches of sharded collections, one call per slot for all of them, each merged to its top k. */
  private async searchMany(
    r: Resolved,
    inputs: SearchInput[],
    ctx: RequestContext,
  ): Promise<SearchOutcome[]> {
    if (inputs.length === 0) return [];
    const m = await this.deps.manifest(r.space, r.version, r.manifestKey);
    const calls = new Map<number, SlotOp[]>();
    const jobs: SearchJob[] = inputs.map((s) => {
      const cm = m.collections[s.collection] as CollectionManifest;
      const shards = cm.sharding?.shards ?? 1;
      const slots = Math.min(shards, this.deps.shardSlots);
      // Each slot gets only the exclusions that live in its shards.
      const excludeBySlot = new Map<number, string[]>();
      for (const id of s.exclude) {
        const slot = slotOf(shardOf(id, shards), this.deps.shardSlots);
        excludeBySlot.set(slot, [...(excludeBySlot.get(slot) ?? []), id]);
      }
      const at = new Map<number, number>();
      for (let slot = 0; slot < slots; slot++) {
        const ops = calls.get(slot) ?? [];
        const ex = excludeBySlot.get(slot);
        ops.push({
          op: 'search',
          collection: s.collection,
          vector: s.vector,
          k: s.params.k,
          ...(s.params.ef !== undefined ? { ef: s.params.ef } : {}),
          ...(s.params.filter !== undefined ? { filter: s.params.filter } : {}),
          ...(ex ? { exclude: ex } : {}),
          includeMetadata: s.params.includeMetadata,
        });
        calls.set(slot, ops);
        at.set(slot, ops.length - 1);
      }
      return { ...s, cm, at };
    });
    const answers = await this.scatter(r, calls, ctx);
    return jobs.map((job): SearchOutcome => {
      const lists: SlotHit[][] = [];
      const missing: MissingShard[] = [];
      const shards = job.cm.sharding?.shards ?? 1;
      for (const [slot, at] of job.at) {
        const a = answers.get(slot) as CallOutcome;
        if (!a.ok) {
          for (const shard of shardsOfSlot(slot, shards, this.deps.shardSlots))
            missing.push({ collection: job.collection, shard, slot });
          continue;
        }
        const res = a.results[at] as SlotOpResult;
        if (!res.ok) return { error: fromWire(res.problem) };
        if (!('hits' in res)) return { error: new Error(`slot ${slot} answered a search with an item`) };
        lists.push(res.hits);
      }
      const metric = job.cm.metric;
      const results = mergeNeighbours(lists, job.params.k).map((h) => {
        const out: ScoredResult = { id: h.id, score: scoreOf(metric, h.distance), distance: h.distance };
        if (job.params.includeMetadata) out.metadata = h.metadata ?? null;
        return out;
      });
      return missing.length ? { results, missing } : { results };
    });
  }

  /**
   * One call per slot, in parallel, each with its hedged retry. The request's remaining work budget is
   * split evenly over the calls (a slot's share split again over its payload parts), and what the
   * slots spent is charged to it. A slot whose answer would exceed its response limit answers the
   * first ops with `cut`: the rest go to it again, until every op is answered.
   */
  private async scatter(
    r: Resolved,
    calls: Map<number, SlotOp[]>,
    ctx: RequestContext,
  ): Promise<Map<number, CallOutcome>> {
    const out = new Map<number, CallOutcome>();
    if (calls.size === 0) return out;
    const t0 = performance.now();
    const remaining = Math.max(0, ctx.budget.limit - ctx.budget.used);
    // Each call's share of the budget follows the shard searches it runs (a slot holding two shards
    // of a collection searches both); calls without searches share evenly.
    const weights = await this.searchWeights(r, calls);
    const total = [...weights.values()].reduce((a, w) => a + w, 0);
    let spent = 0;
    await Promise.all(
      [...calls].map(async ([slot, ops]) => {
        const share = Math.floor(
          total > 0 ? (remaining * (weights.get(slot) ?? 0)) / total : remaining / calls.size,
        );
        const base = {
          vicinity: 'slot' as const,
          slot,
          shardSlots: this.deps.shardSlots,
          space: r.space,
          version: r.version,
          ...(r.pinned ? { pinned: true } : {}),
          ...(r.manifestKey ? { manifestKey: r.manifestKey } : {}),
        };
        try {
          // Lambda takes at most 6 MB of request payload: a large batch goes to a slot in several calls.
          const groups = splitOps(ops, this.deps.maxPayloadBytes ?? MAX_PAYLOAD_BYTES);
          const parts = await Promise.all(
            groups.map(async (group) => {
              let budget = Math.floor(share / groups.length);
              const results: SlotOpResult[] = [];
              while (results.length < group.length) {
                const part = group.slice(results.length);
                const res = await this.call(slot, { ...base, budget, ops: part });
                if (res.version !== r.version || res.slot !== slot)
                  throw new Error(
                    `slot ${slot} answered for slot ${res.slot} version ${res.version}, not ${r.version}`,
                  );
                // A version the slot may not serve (DELETED: 404) is the caller's answer, not a missing shard.
                if ('problem' in res) throw fromWire(res.problem);
                spent += res.used ?? 0;
                budget = Math.max(0, budget - (res.used ?? 0));
                const whole = res.results.length === part.length;
                if (!whole && !(res.cut && res.results.length > 0 && res.results.length < part.length))
                  throw new Error(`slot ${slot} answered ${res.results.length} of ${part.length} operations`);
                results.push(...res.results);
              }
              return results;
            }),
          );
          out.set(slot, { ok: true, results: parts.flat() });
        } catch (err) {
          if (err instanceof VicinityError && err.kind !== 'unavailable') throw err;
          this.deps.log.warn('shard slot unavailable', {
            space: r.space,
            version: r.version,
            slot,
            error: (err as Error).message,
          });
          out.set(slot, { ok: false, error: (err as Error).message });
        }
      }),
    );
    ctx.budget.used += spent;
    ctx.timings.shards = (ctx.timings.shards ?? 0) + performance.now() - t0;
    return out;
  }

  /** Per slot: how many shard searches its ops run (search ops × the slot's shards of their collection). */
  private async searchWeights(r: Resolved, calls: Map<number, SlotOp[]>): Promise<Map<number, number>> {
    const weights = new Map<number, number>();
    if (![...calls.values()].some((ops) => ops.some((o) => o.op === 'search'))) return weights;
    const m = await this.deps.manifest(r.space, r.version, r.manifestKey);
    for (const [slot, ops] of calls) {
      let w = 0;
      for (const op of ops) {
        if (op.op !== 'search') continue;
        const shards = m.collections[op.collection]?.sharding?.shards ?? 1;
        w += shardsOfSlot(slot, shards, this.deps.shardSlots).length;
      }
      weights.set(slot, w);
    }
    return weights;
  }

  /**
   * Runs `fn` (one request) knowing when the router's own invocation ends (Lambda's remaining time):
   * slot calls then give up in time for the router to answer its 503.
   */
  withDeadline<T>(remainingMs: number | undefined, fn: () => T): T {
    if (remainingMs === undefined || !Number.isFinite(remainingMs)) return fn();
    return requestDeadline.run(Date.now() + remainingMs, fn);
  }

  /** A slot call's deadline now: the configured one, or less when the router's invocation ends sooner. */
  deadlineMs(): number {
    const configured = this.deps.deadlineMs ?? DEFAULT_DEADLINE_MS;
    const end = requestDeadline.getStore();
    if (end === undefined) return configured;
    return Math.max(MIN_DEADLINE_MS, Math.min(configured, end - Date.now() - ANSWER_MARGIN_MS));
  }

  /** When a call to this slot gets its hedged retry: its p95 once known, the fixed bound before. */
  hedgeAfter(slot: number): number {
    const l = this.latencies.get(slot);
    if (!l || l.length < MIN_SAMPLES) return this.deps.hedgeMs;
    const sorted = [...l].sort((a, b) => a - b);
    return Math.max(20, sorted[Math.floor(sorted.length * 0.95)] as number);
  }

  private observe(slot: number, ms: number): void {
    const l = this.latencies.get(slot) ?? [];
    l.push(ms);
    if (l.length > SAMPLES) l.shift();
    this.latencies.set(slot, l);
  }

  /**
   * A slot call with one hedged retry: the second attempt starts when the first fails, or has not
   * answered after hedgeAfter(slot); the first success wins. A slot's own 'unavailable' answer (out
   * of room, a snapshot it could not verify) counts as a failure.
   */
  private call(slot: number, req: SlotRequest): Promise<SlotResponse> {
    const started = performance.now();
    const deadlineMs = this.deadlineMs();
    return new Promise((resolve, reject) => {
      let launched = 0;
      let failed = 0;
      let done = false;
      const errors: string[] = [];
      const finish = () => {
        done = true;
        clearTimeout(hedge);
        clearTimeout(deadline);
      };
      const launch = () => {
        launched++;
        this.deps
          .invoke(slot, req)
          .then((res) => {
            if ('problem' in res && res.problem.kind === 'unavailable') throw fromWire(res.problem);
            if (done) return;
            finish();
            this.observe(slot, performance.now() - started);
            resolve(res);
          })
          .catch((err: unknown) => {
            errors.push((err as Error).message);
            failed++;
            if (done) return;
            if (launched < 2) {
              clearTimeout(hedge);
              launch();
            } else if (failed >= 2) {
              finish();
              reject(new Error(`slot ${slot}: ${errors.join('; ')}`));
            }
          });
      };
      const hedge = setTimeout(() => {
        if (!done && launched < 2) launch();
      }, this.hedgeAfter(slot));
      const deadline = setTimeout(() => {
        if (done) return;
        finish();
        reject(new Error(`slot ${slot}: no answer within ${deadlineMs} ms`));
      }, deadlineMs);
      launch();
    });
  }
}

interface SearchInput {
  collection: string;
  vector: number[];
  params: SearchOptions;
  exclude: Set<string>;
}

type SearchOutcome = { results: ScoredResult[]; missing?: MissingShard[] } | { error: Error };

function unwrap(o: SearchOutcome, r: Resolved, allowPartial = false): ShardedAnswer {
  if ('error' in o) throw o.error;
  if (o.missing?.length) {
    if (!allowPartial) throw new ShardsUnavailableError(o.missing, r.version);
    return { results: o.results, missingShards: o.missing };
  }
  return { results: o.results };
}

function dedupe(missing: MissingShard[]): MissingShard[] {
  const seen = new Map<string, MissingShard>();
  for (const m of missing) seen.set(`${m.collection}/${m.shard}`, m);
  return [...seen.values()];
}

function noCollection(r: Resolved, m: Manifest, name: string): NotFoundError {
  return new NotFoundError(
    `Space ${r.space} version ${r.version} has no collection ${name} (it has ${Object.keys(m.collections).join(', ')})`,
    { extras: { version: r.version } },
  );
}

export type { SearchParams };
