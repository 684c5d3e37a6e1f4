/**
 * The query side of erasure (invariant 9): every instance keeps each space's erasure list, read again
 * only when the counter on the pointer item moves (the pointer read brings it, so a request costs no
 * extra DynamoDB read), and applies it to every collection a request opens — whatever the version:
 * - `lookup` of an erased id finds nothing (item, similar and batch sources are a 404; diff and the
 *   explorer never see it), and
 * - every search excludes the erased ids present in the collection, inside the search, so widening and
 *   the exact fallback still return k results when k others qualify.
 * Per request that is a Map lookup and, only while the snapshot still holds erased ids (until the purge
 * rewrites it), one Set insert per such id.
 */
import { allErased, type ErasedIds, type ErasureRecord, erasedIds } from '../core/erasure';
import type { Registry } from '../core/ports';
import type { LoadedCollection } from '../snapshot/cache';
import { manifestKey } from '../snapshot/manifest';

export interface ErasureState {
  counter: number;
  ids: ErasedIds;
  /** version → its manifest key, as read from the registry under this counter (purges move it). */
  manifests: Map<string, Promise<string>>;
  /** Every id in force, of any collection: what seen lists must not show (made on first use). */
  all?: Set<string>;
}

const EMPTY: ErasedIds = new Map();

/** A collection seen through an erasure list: erased ids are neither found nor returned. */
export interface ErasedView extends LoadedCollection {
  /** Erased ids this collection's snapshot still holds (searches exclude them). */
  erased: readonly string[];
  /** The collection itself: a search maps its exclusions to labels through the unfiltered lookup. */
  base: LoadedCollection;
}

export class ErasureCache {
  private readonly states = new Map<string, ErasureState>();
  private readonly loading = new Map<string, { counter: number; promise: Promise<ErasureState> }>();
  /** Views per loaded collection and list: built once per counter, so explorer caches keyed on them hold. */
  private readonly views = new WeakMap<LoadedCollection, { state: ErasureState; view: LoadedCollection }>();

  constructor(private readonly registry: Registry) {}

  /** The cached list when it is the one for `counter` (what `state` would answer at once), else undefined. */
  current(space: string, counter: number): ErasureState | undefined {
    const have = this.states.get(space);
    return have && have.counter === counter ? have : undefined;
  }

  /** The list for `counter`: the cached one, or read once (concurrent requests share the read). */
  async state(space: string, counter: number): Promise<ErasureState> {
    const have = this.states.get(space);
    if (have && have.counter === counter) return have;
    if (counter === 0 && !have) {
      const empty: ErasureState = { counter: 0, ids: EMPTY, manifests: new Map() };
      this.states.set(space, empty);
      return empty;
    }
    const busy = this.loading.get(space);
    if (busy && busy.counter === counter) return busy.promise;
    const promise = this.registry.listErasures(space).then((records: ErasureRecord[]) => {
      const state: ErasureState = { counter, ids: erasedIds(records), manifests: new Map() };
      const now = this.states.get(space);
      // Never replace a list read under a larger counter with an older one.
      if (!now || now.counter <= counter) this.states.set(space, state);
      return state;
    });
    this.loading.set(space, { counter, promise });
    try {
      return await promise;
    } finally {
      if (this.loading.get(space)?.promise === promise) this.loading.delete(space);
    }
  }

  /**
   * The manifest a version is served from: the default key unless a purge switched it. Read from the
   * version record once per erasure counter (a purge moves the counter after switching).
   */
  manifestKey(
    space: string,
    version: string,
    state: ErasureState,
    known?: { manifestKey?: string; manifestGeneration?: number },
  ): Promise<string> {
    if (known)
      return Promise.resolve(
        known.manifestGeneration ? (known.manifestKey as string) : manifestKey(space, version),
      );
    if (state.counter === 0) return Promise.resolve(manifestKey(space, version));
    let p = state.manifests.get(version);
    if (!p) {
      p = this.registry
        .getVersion(space, version)
        .then((v) => (v?.manifestGeneration && v.manifestKey ? v.manifestKey : manifestKey(space, version)));
      p.catch(() => state.manifests.delete(version));
      state.manifests.set(version, p);
    }
    return p;
  }

  /** `c` as the request may see it under `state`. */
  view(c: LoadedCollection, state: ErasureState | undefined): LoadedCollection {
    const erased = state?.ids.get(c.name);
    if (!state || !erased || erased.size === 0) return c;
    const cached = this.views.get(c);
    if (cached && cached.state === state) return cached.view;
    const present: string[] = [];
    for (const id of erased) if (c.lookup(id)) present.push(id);
    const view: LoadedCollection =
      present.length === 0
        ? c
        : ({
            ...c,
            erased: present,
            base: c,
            lookup: (id: string) => (erased.has(id) ? undefined : c.lookup(id)),
          } as ErasedView);
    this.views.set(c, { state, view });
    return view;
  }
}

/** The erased ids a search of `c` must exclude (none when `c` is not a view or holds none). */
export function erasedIn(c: LoadedCollection): readonly string[] {
  return (c as Partial<ErasedView>).erased ?? [];
}

/** What a search of `c` runs on: the unfiltered collection (its exclusions then include the erased ids). */
export function searchable(c: LoadedCollection): LoadedCollection {
  return (c as Partial<ErasedView>).base ?? c;
}

/** `exclude` plus the erased ids `c` holds (a new set only when there are any). */
export function withErased(exclude: Set<string>, c: LoadedCollection): Set<string> {
  const e = erasedIn(c);
  if (e.length === 0) return exclude;
  const out = new Set(exclude);
  for (const id of e) out.add(id);
  return out;
}

/** Whether `id` is hidden in the (view of the) collection: for routes that list ids from segments. */
export function isHidden(c: LoadedCollection, id: string): boolean {
  return erasedIn(c).length > 0 && c.lookup(id) === undefined;
}

type Metadata = Record<string, unknown> | null;

/**
 * What answers may show of an item's metadata under `state`: the release's seen list (`seenField`)
 * without erased ids — of any collection, since a user's seen list names artists. Until the purge
 * rewrites the metadata files, this is what keeps an erased id out of `metadata` in answers (items,
 * `includeMetadata` results, prefix search). Undefined when there is nothing to strip, so the common
 * path costs nothing.
 */
export function seenFilter(
  state: ErasureState | undefined,
  seenField: string | undefined,
): ((m: Metadata | undefined) => Metadata | undefined) | undefined {
  if (!state || !seenField || state.ids.size === 0) return undefined;
  state.all ??= allErased(state.ids);
  const all = state.all;
  if (all.size === 0) return undefined;
  return (m) => {
    const seen = m?.[seenField];
    if (!m || !Array.isArray(seen) || !seen.some((s) => all.has(String(s)))) return m;
    return { ...m, [seenField]: seen.filter((s) => !all.has(String(s))) };
  };
}

/** `results` with their metadata through `filter` (the same array when there is none). */
export function withVisibleMetadata<T extends { metadata?: Metadata }>(
  results: T[],
  filter: ((m: Metadata | undefined) => Metadata | undefined) | undefined,
): T[] {
  if (!filter) return results;
  return results.map((r) => (r.metadata ? { ...r, metadata: filter(r.metadata) as Metadata } : r));
}
