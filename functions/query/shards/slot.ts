/**
 * The shard-slot use case: answers a SlotRequest from this slot's shards of exactly the version asked —
 * loaded through the snapshot cache, whose manifest view (slotManifest) holds only this slot's segments.
 * The same search planner as the unsharded path, so each shard plans its own filtered/exact search and
 * the router's merge gives the same top k and scores as one instance holding every segment.
 */
import { WorkBudget } from '../../core/budget';
import { BadRequestError, NotFoundError, VicinityError } from '../../core/errors';
import type { LoadedCollection, LoadedSegment, SnapshotCache } from '../../snapshot/cache';
import { SearchPlanner } from '../search-plan';
import {
  type SlotItemOp,
  type SlotOpResult,
  type SlotRequest,
  type SlotResponse,
  type SlotSearchOp,
  toWire,
} from './protocol';

export class SlotService {
  private readonly planner: SearchPlanner;

  constructor(private readonly deps: { cache: SnapshotCache; slot: number; shardSlots: number }) {
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
    const budget = new WorkBudget();
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
      for (const op of req.ops) {
        try {
          const c = await load(op.collection);
          if (op.op === 'warm') results.push({ ok: true, hits: [] });
          else results.push(op.op === 'search' ? await this.search(c, op, budget) : this.item(c, op));
        } catch (err) {
          if (!(err instanceof VicinityError)) throw err;
          results.push({ ok: false, problem: toWire(err) });
        }
      }
      return { ...base, results };
    } finally {
      for (const r of held) r();
    }
  }

  private async collection(req: SlotRequest, name: string, held: (() => void)[]): Promise<LoadedCollection> {
    const manifest = await this.deps.cache.manifest(req.space, req.version);
    const cm = manifest.collections[name];
    if (!cm) throw new NotFoundError(`Space ${req.space} version ${req.version} has no collection ${name}`);
    if (!cm.sharding)
      throw new BadRequestError(`collection ${name} of ${req.version} is not sharded: the router answers it`);
    const h = await this.deps.cache.collection(req.space, req.version, name, { pinned: req.pinned === true });
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
