/**
 * The shard-slot use case: answers a SlotRequest from this slot's shards of exactly the version asked —
 * loaded through the snapshot cache, whose manifest view (slotManifest) holds only this slot's segments.
 * The same search planner as the unsharded path, so each shard plans its own filtered/exact search and
 * the router's merge gives the same top k and scores as one instance holding every segment.
 */
import { LIMITS, WorkBudget } from '../../core/budget';
import { labelOf } from '../../core/diff';
import { BadRequestError, NotFoundError, UnprocessableError, VicinityError } from '../../core/errors';
import type { LoadedCollection, LoadedSegment, SnapshotCache } from '../../snapshot/cache';
import { SearchPlanner } from '../search-plan';
import {
  type SlotItemOp,
  type SlotOpResult,
  type SlotPrefixOp,
  type SlotRequest,
  type SlotResponse,
  type SlotSampleOp,
  type SlotSearchOp,
  toWire,
} from './protocol';

/** Lambda's synchronous response payload limit (6 MB), less room for the runtime's envelope. */
export const MAX_RESPONSE_BYTES = 6 * 1024 * 1024 - 64 * 1024;

export class SlotService {
  private readonly planner: SearchPlanner;
  /** The explorer's maths (sampling, prefix indexes), loaded by the first sample or prefix op. */
  private maths?: Promise<
    typeof import('../explore/maths') & { prefixIndexes: import('../explore/maths').PrefixIndexes }
  >;

  private loadMaths() {
    this.maths ??= import('../explore/maths').then((m) => ({ ...m, prefixIndexes: new m.PrefixIndexes() }));
    return this.maths;
  }

  constructor(
    private readonly deps: {
      cache: SnapshotCache;
      slot: number;
      shardSlots: number;
      /** The answer's JSON stays under this (default MAX_RESPONSE_BYTES): past it, `cut` and the rest later. */
      maxResponseBytes?: number;
    },
  ) {
    this.planner = new SearchPlanner(deps.cache);
  }

  async handle(req: SlotRequest): Promise<SlotResponse> {
    const { slot, shardSlots } = this.deps;
    const base = { slot, version: req.version };
    if (req.slot !== slot || req.shardSlots !== shardSlots) {
      // A misrouted call is the router's bug or a stale deployment: fail loudly, never answer for other shards.
      throw new Error(
        `slot ${slot} of ${shardSlots} was sent a request for slot ${req.slot} of ${req.shardSlots}`,
      );
    }
    const held: (() => void)[] = [];
    const budget = new WorkBudget(req.budget ?? LIMITS.requestWork);
    const maxBytes = this.deps.maxResponseBytes ?? MAX_RESPONSE_BYTES;
    try {
      const collections = new Map<string, Promise<LoadedCollection>>();
      const load = (name: string) => {
        let p = collections.get(name);
        if (!p) {
          p = this.collection(req, name, held);
          collections.set(name, p);
        }
        return p;
      };
      // Loads first: a version this slot cannot load fails the call as a whole (the router retries it).
      try {
        await Promise.all([...new Set(req.ops.map((o) => o.collection))].map(load));
      } catch (err) {
        if (err instanceof VicinityError) return { ...base, problem: toWire(err) };
        throw err;
      }
      const results: SlotOpResult[] = [];
      // The envelope (slot, version, used, cut) and the results array's brackets.
      let bytes = Buffer.byteLength(JSON.stringify({ ...base, results: [], used: budget.limit, cut: true }));
      for (const op of req.ops) {
        let result: SlotOpResult;
        try {
          const c = await load(op.collection);
          if (op.op === 'warm') result = { ok: true, hits: [] };
          else if (op.op === 'search') result = await this.search(c, op, budget);
          else if (op.op === 'item') result = this.item(c, op);
          else if (op.op === 'sample') result = await this.sample(req, c, op, held);
          else result = await this.prefix(c, op);
        } catch (err) {
          if (!(err instanceof VicinityError)) throw err;
          result = { ok: false, problem: toWire(err) };
        }
        const size = Buffer.byteLength(JSON.stringify(result)) + 1;
        if (bytes + size > maxBytes) {
          // Over Lambda's response limit: answer what fits; the router asks again for the rest.
          if (results.length) return { ...base, results, used: budget.used, cut: true };
          // One operation's answer alone is too large: that operation fails, never the call.
          result = {
            ok: false,
            problem: toWire(
              new UnprocessableError(
                `the answer to this ${op.op} of ${op.collection} would be ${size} bytes, over the ${maxBytes}-byte limit of a shard slot's answer; ask for fewer results or less metadata`,
              ),
            ),
          };
        }
        bytes += size;
        results.push(result);
      }
      return { ...base, results, used: budget.used };
    } finally {
      for (const r of held) r();
    }
  }

  private async collection(req: SlotRequest, name: string, held: (() => void)[]): Promise<LoadedCollection> {
    // The manifest the router resolved (a purge moves it): never the default key of a purged version.
    const manifest = await this.deps.cache.manifest(req.space, req.version, req.manifestKey);
    const cm = manifest.collections[name];
    if (!cm) throw new NotFoundError(`Space ${req.space} version ${req.version} has no collection ${name}`);
    if (!cm.sharding)
      throw new BadRequestError(`collection ${name} of ${req.version} is not sharded: the router answers it`);
    const h = await this.deps.cache.collection(req.space, req.version, name, {
      pinned: req.pinned === true,
      ...(req.manifestKey ? { manifestKey: req.manifestKey } : {}),
    });
    held.push(h.release);
    return h.collection;
  }

  private async search(c: LoadedCollection, op: SlotSearchOp, budget: WorkBudget): Promise<SlotOpResult> {
    if (c.segments.length === 0) return { ok: true, hits: [] };
    const results = await this.planner.search(
      c,
      op.vector,
      {
        k: op.k,
        ...(op.ef !== undefined ? { ef: op.ef } : {}),
        ...(op.filter !== undefined ? { filter: op.filter } : {}),
        exclude: [],
        excludeSeen: false,
        includeMetadata: op.includeMetadata,
      },
      new Set(op.exclude ?? []),
      budget,
    );
    return {
      ok: true,
      hits: results.map((r) => ({
        id: r.id,
        distance: r.distance,
        ...(op.includeMetadata ? { metadata: r.metadata ?? null } : {}),
      })),
    };
  }

  /** The slot's hash sample (see SlotSampleOp): with alsoIn, only ids in both versions. */
  private async sample(
    req: SlotRequest,
    c: LoadedCollection,
    op: SlotSampleOp,
    held: (() => void)[],
  ): Promise<SlotOpResult> {
    let other: LoadedCollection | undefined;
    if (op.alsoIn) {
      other = await this.collection(
        {
          ...req,
          version: op.alsoIn.version,
          pinned: op.alsoIn.pinned === true,
          manifestKey: op.alsoIn.manifestKey,
        },
        op.collection,
        held,
      );
      const a = c.manifest.sharding?.shards;
      const b = other.manifest.sharding?.shards;
      if (a !== b)
        throw new UnprocessableError(
          `collection ${op.collection} has ${a} shards in ${req.version} and ${b} in ${op.alsoIn.version}: a sharded diff needs the same shard count`,
        );
    }
    const { flatOf, idHash, sampleByHash } = await this.loadMaths();
    const skip = new Set(op.exclude ?? []);
    const flat = flatOf(c);
    const after = op.after;
    const later = (id: string) => {
      if (!after) return true;
      const h = idHash(id);
      return h > after.hash || (h === after.hash && id > after.id);
    };
    const ids =
      other || skip.size || after
        ? flat.ids.filter((id) => !skip.has(id) && (!other || other.lookup(id) !== undefined) && later(id))
        : flat.ids;
    const picked = sampleByHash(ids, op.n).map((i) => ids[i] as string);
    const labels = op.labels
      ? picked.map((id) => {
          const ref = c.lookup(id);
          return (ref ? labelOf(c.segments[ref.segment]?.meta?.[ref.label]) : undefined) ?? null;
        })
      : undefined;
    return {
      ok: true,
      sample: { count: ids.length, ids: picked, hashes: picked.map(idHash), ...(labels ? { labels } : {}) },
    };
  }

  /** The slot's best `limit` prefix hits (the router merges them by rank, length, value, id). */
  private async prefix(c: LoadedCollection, op: SlotPrefixOp): Promise<SlotOpResult> {
    const { prefixIndexes, flatOf } = await this.loadMaths();
    const { index } = prefixIndexes.of(c, op.field);
    const flat = flatOf(c);
    const found = index.search(op.prefix, op.limit);
    return {
      ok: true,
      prefix: {
        hits: found.hits.map((h) => {
          const id = flat.ids[h.item] as string;
          const ref = c.lookup(id);
          return {
            id,
            value: h.value,
            rank: h.rank,
            metadata: (ref ? c.segments[ref.segment]?.meta?.[ref.label] : undefined) ?? null,
          };
        }),
        more: found.more,
      },
    };
  }

  private item(c: LoadedCollection, op: SlotItemOp): SlotOpResult {
    const ref = c.lookup(op.id);
    if (!ref) {
      throw new NotFoundError(
        `No item ${JSON.stringify(op.id)} in ${c.space}/${c.name} (version ${c.version})`,
        {
          extras: { version: c.version },
        },
      );
    }
    const seg = c.segments[ref.segment] as LoadedSegment;
    const metadata = seg.meta?.[ref.label] ?? null;
    const seen = op.seenField ? metadata?.[op.seenField] : undefined;
    return {
      ok: true,
      item: {
        vector: Array.from(seg.index.getVector(ref.label)),
        metadata,
        ...(Array.isArray(seen) ? { seen: seen.map(String) } : {}),
      },
    };
  }
}
