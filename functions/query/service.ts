import { BadRequestError, NotFoundError, SnapshotUnavailableError, UnprocessableError } from '../core/errors';
import { assertItemId, assertName } from '../core/names';
import type { Pointer } from '../core/pointer';
import type { Log, Registry } from '../core/ports';
import { compileFilter, type SearchParams } from '../core/query';
import {
  bruteForce,
  mergeNeighbours,
  type Neighbour,
  normalise,
  type ScoredResult,
  scoreOf,
} from '../core/search';
import type { LoadedCollection, LoadReport, SnapshotCache } from './snapshot-cache';

/** Per-request timing parts, reported in Server-Timing and logs. */
export type Timings = Record<string, number>;

export interface Resolved {
  space: string;
  version: string;
  generation?: number;
}

export interface SearchAnswer {
  space: string;
  version: string;
  collection: string;
  target?: string;
  id?: string;
  results: ScoredResult[];
}

/** Above this many ids to leave out, a filter callback is cheaper than widening k. */
const WIDEN_LIMIT = 256;

export class QueryService {
  private readonly pointers = new Map<string, { pointer: Pointer; at: number }>();
  private readonly lastGood = new Map<string, string>();

  constructor(
    private readonly deps: {
      registry: Registry;
      cache: SnapshotCache;
      pointerTtlMs: number;
      log: Log;
      onLoad?: (what: { space: string; version: string; collection: string } & LoadReport) => void;
    },
  ) {}

  /** The pointer, from a cache trusted for pointerTtlMs; never moves back to a generation older than one seen. */
  async pointer(space: string, strong = false): Promise<Pointer> {
    const cached = this.pointers.get(space);
    if (!strong && cached && Date.now() - cached.at < this.deps.pointerTtlMs) return cached.pointer;
    const fresh = await this.deps.registry.getPointer(space, strong);
    const keep = cached && cached.pointer.generation > fresh.generation ? cached.pointer : fresh;
    this.pointers.set(space, { pointer: keep, at: Date.now() });
    return keep;
  }

  /** Resolves the one version a request will read, once. */
  async resolve(space: string, params: Pick<SearchParams, 'version' | 'consistency'>): Promise<Resolved> {
    assertName('space', space);
    if (params.version) {
      const v = await this.deps.registry.getVersion(space, params.version);
      if (!v || v.status === 'DELETED') {
        throw new NotFoundError(
          `Space ${space} has no version ${params.version}${v ? ' (its snapshot was deleted)' : ''}`,
        );
      }
      if (v.status !== 'READY')
        throw new NotFoundError(`Version ${params.version} of space ${space} is ${v.status}, not READY`);
      return { space, version: v.version };
    }
    const p = await this.pointer(space, params.consistency === 'strong');
    if (!p.version) {
      const any = await this.deps.registry.listVersions(space, 1);
      throw new NotFoundError(
        any.versions.length ? `Space ${space} has no active version yet` : `Unknown space ${space}`,
      );
    }
    return { space, version: p.version, generation: p.generation };
  }

  async collection(r: Resolved, name: string, timings: Timings, label = 'load'): Promise<LoadedCollection> {
    assertName('collection', name);
    const manifest = await this.deps.cache.manifest(r.space, r.version);
    if (!manifest.collections[name]) {
      throw new NotFoundError(
        `Space ${r.space} version ${r.version} has no collection ${name} (it has ${Object.keys(manifest.collections).join(', ')})`,
      );
    }
    const t0 = performance.now();
    const { collection, report } = await this.deps.cache.collection(r.space, r.version, name);
    if (!report.cached) {
      timings[label] = performance.now() - t0;
      this.deps.onLoad?.({ space: r.space, version: r.version, collection: name, ...report });
    }
    return collection;
  }

  /**
   * Runs `fn` on the one version the request resolves to. When the active version's snapshot cannot be
   * served (checksum or load failure) an unpinned request is answered from the last version this
   * instance served for the space — never a mix — and the broken one is only a 503 for pinned requests.
   */
  private async onVersion<T>(
    space: string,
    params: Pick<SearchParams, 'version' | 'consistency'>,
    fn: (r: Resolved) => Promise<T>,
  ): Promise<T> {
    const r = await this.resolve(space, params);
    try {
      const out = await fn(r);
      if (!params.version) {
        const before = this.lastGood.get(space);
        this.lastGood.set(space, r.version);
        // The pointer moved and the new version serves: the old one's memory goes (its files stay for a rollback).
        if (before && before !== r.version) this.deps.cache.drop(space, before);
      }
      return out;
    } catch (err) {
      // A cold instance has served nothing yet: the pointer's previous version is the one that was serving.
      const fallback =
        this.lastGood.get(space) ?? (r.generation ? (await this.pointer(space)).previous : undefined);
      if (!(err instanceof SnapshotUnavailableError) || params.version || !fallback || fallback === r.version)
        throw err;
      this.deps.log.warn('active snapshot unavailable; serving the last good version', {
        space,
        version: fallback,
        broken: r.version,
      });
      return fn({ space, version: fallback });
    }
  }

  async similar(
    space: string,
    collection: string,
    rawId: string,
    params: SearchParams,
    timings: Timings,
  ): Promise<SearchAnswer> {
    const id = assertItemId(rawId);
    return this.onVersion(space, params, async (r) => {
      const source = await this.collection(r, collection, timings);
      const target =
        params.target && params.target !== collection
          ? await this.collection(r, params.target, timings)
          : source;
      const ref = source.lookup(id);
      if (!ref)
        throw new NotFoundError(
          `No item ${JSON.stringify(id)} in ${space}/${collection} (version ${r.version})`,
        );
      if (target.manifest.dims !== source.manifest.dims) {
        throw new UnprocessableError(
          `Collection ${target.name} has ${target.manifest.dims} dims, ${source.name} has ${source.manifest.dims}: they cannot be compared`,
        );
      }
      const seg = source.segments[ref.segment]!;
      const vector = seg.index.getVector(ref.label);
      const exclude = new Set(params.exclude);
      if (target === source) exclude.add(id);
      if (params.excludeSeen) {
        const seenField = (await this.deps.cache.manifest(r.space, r.version)).seenField;
        if (!seenField)
          throw new BadRequestError(`excludeSeen: release ${r.version} of ${space} names no seenField`);
        const seen = seg.meta?.[ref.label]?.[seenField];
        if (Array.isArray(seen)) for (const s of seen) exclude.add(String(s));
      }
      const t0 = performance.now();
      const results = this.search(target, vector, params, exclude);
      timings.search = performance.now() - t0;
      return { space, version: r.version, collection, target: target.name, id, results };
    });
  }

  async query(
    space: string,
    collection: string,
    vector: number[],
    params: SearchParams,
    timings: Timings,
  ): Promise<SearchAnswer> {
    return this.onVersion(space, params, async (r) => {
      const c = await this.collection(r, collection, timings);
      if (vector.length !== c.manifest.dims) {
        throw new BadRequestError(
          `vector has ${vector.length} values, collection ${collection} has ${c.manifest.dims} dims`,
        );
      }
      const t0 = performance.now();
      const results = this.search(c, vector, params, new Set(params.exclude));
      timings.search = performance.now() - t0;
      return { space, version: r.version, collection, results };
    });
  }

  /** k nearest in every segment, merged; widens the search so exclusions and filters still leave k results. */
  search(c: LoadedCollection, vector: number[], params: SearchParams, exclude: Set<string>): ScoredResult[] {
    const { k } = params;
    const ef = params.ef ?? c.manifest.ef;
    const predicate = compileFilter(params.filter, c.manifest.metadataFields);
    const lists: Neighbour[][] = [];
    for (const seg of c.segments) {
      const excludedHere = [...exclude].filter((id) => c.lookup(id)).length;
      let hits: Neighbour[];
      if (!predicate && excludedHere <= WIDEN_LIMIT) {
        const kk = k + excludedHere;
        hits = seg.index
          .search(vector, kk, Math.max(ef, kk))
          .map((h) => ({ id: seg.ids[h.label] as string, distance: h.distance }))
          .filter((n) => !exclude.has(n.id));
      } else {
        const allow = (label: number) =>
          !exclude.has(seg.ids[label] as string) && (!predicate || predicate(seg.meta?.[label]));
        hits = seg.index
          .search(vector, k, Math.max(ef, k), allow)
          .map((h) => ({ id: seg.ids[h.label] as string, distance: h.distance }));
        if (hits.length < Math.min(k, seg.ids.length)) hits = this.exact(c, seg, vector, k, allow);
      }
      lists.push(hits);
    }
    return mergeNeighbours(lists, k).map((n) => {
      const out: ScoredResult = {
        id: n.id,
        score: scoreOf(c.manifest.metric, n.distance),
        distance: n.distance,
      };
      if (params.includeMetadata) out.metadata = this.metadataOf(c, n.id);
      return out;
    });
  }

  /** Exact search over the allowed items of a segment: the fallback when a filter leaves HNSW short. */
  private exact(
    c: LoadedCollection,
    seg: LoadedCollection['segments'][number],
    vector: number[],
    k: number,
    allow: (label: number) => boolean,
  ): Neighbour[] {
    const dims = c.manifest.dims;
    const rows: number[] = [];
    for (let label = 0; label < seg.ids.length; label++) if (allow(label)) rows.push(label);
    const flat = new Float32Array(rows.length * dims);
    const ids: string[] = new Array(rows.length);
    rows.forEach((label, i) => {
      const v = seg.index.getVector(label);
      flat.set(c.manifest.metric === 'cosine' ? normalise(v) : v, i * dims);
      ids[i] = seg.ids[label] as string;
    });
    return bruteForce(c.manifest.metric, dims, flat, ids, vector, k);
  }

  metadataOf(c: LoadedCollection, id: string): Record<string, unknown> | null {
    const ref = c.lookup(id);
    if (!ref) return null;
    return c.segments[ref.segment]?.meta?.[ref.label] ?? null;
  }

  async item(
    space: string,
    collection: string,
    rawId: string,
    includeVector: boolean,
    params: SearchParams,
    timings: Timings,
  ) {
    const id = assertItemId(rawId);
    return this.onVersion(space, params, async (r) => {
      const c = await this.collection(r, collection, timings);
      const ref = c.lookup(id);
      if (!ref)
        throw new NotFoundError(
          `No item ${JSON.stringify(id)} in ${space}/${collection} (version ${r.version})`,
        );
      const seg = c.segments[ref.segment]!;
      return {
        space,
        version: r.version,
        collection,
        id,
        metadata: seg.meta?.[ref.label] ?? null,
        ...(includeVector ? { vector: seg.index.getVector(ref.label) } : {}),
      };
    });
  }
}
