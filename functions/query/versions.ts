import { NotFoundError, SnapshotUnavailableError } from '../core/errors';
import { assertName } from '../core/names';
import type { Pointer } from '../core/pointer';
import type { Log, Registry } from '../core/ports';
import type { SearchParams } from '../core/query';
import type { VersionRecord } from '../core/version';
import { CapacityError } from '../snapshot/cache';
import { type RequestContext, type Resolved, releaseHeld } from './context';
import { ErasureCache } from './erasures';

export type VersionChoice = Pick<SearchParams, 'version' | 'consistency'>;

/** Version records cached at most this many; past it, expired ones are dropped (hostile pins can't grow it). */
const MAX_CACHED_RECORDS = 1000;

/**
 * Which version a request reads: the pointer (cached for pointerTtlMs), a pinned READY version (its
 * record cached for pointerTtlMs too), or — when the active snapshot cannot be served — the pointer's
 * previous version, only while the registry says it is READY.
 */
export class VersionResolver {
  private readonly pointers = new Map<
    string,
    { pointer: Pointer; at: number; erasureCounter: number; deleting: boolean }
  >();
  readonly erasures: ErasureCache;
  private readonly records = new Map<string, { record: VersionRecord | undefined; at: number }>();
  private readonly lastServed = new Map<string, string>();

  constructor(
    private readonly deps: {
      registry: Registry;
      pointerTtlMs: number;
      log: Log;
      /** The pointer moved on and the new version serves: the old version's memory may go. */
      superseded: (space: string, version: string) => void;
      /** Told the pointer's active and previous version each time the pointer is read. */
      roles?: (space: string, active: string | undefined, previous: string | undefined) => void;
      /** The registry says the version is DELETED (or has no record): nothing of it may serve again. */
      gone?: (space: string, version: string) => void;
    },
  ) {
    this.erasures = new ErasureCache(deps.registry);
  }

  /** The pointer, from a cache trusted for pointerTtlMs; never moves back to a generation older than one seen. */
  async pointer(space: string, strong = false): Promise<Pointer> {
    return (await this.spaceState(space, strong)).pointer;
  }

  /**
   * The pointer item as this instance trusts it: the pointer, the erasure counter (never moving back)
   * and whether the space is being deleted (never unset) — one read, cached like the pointer.
   */
  async spaceState(space: string, strong = false) {
    const cached = this.pointers.get(space);
    if (!strong && cached && Date.now() - cached.at < this.deps.pointerTtlMs) return cached;
    const fresh = await this.deps.registry.getSpaceState(space, strong);
    const pointer =
      cached && cached.pointer.generation > fresh.pointer.generation ? cached.pointer : fresh.pointer;
    const state = {
      pointer,
      at: Date.now(),
      erasureCounter: Math.max(fresh.erasureCounter, cached?.erasureCounter ?? 0),
      deleting: fresh.deletion !== undefined,
    };
    this.pointers.set(space, state);
    this.deps.roles?.(space, pointer.version ?? undefined, pointer.previous ?? undefined);
    return state;
  }

  /** A version's record, from a cache trusted for pointerTtlMs (fresh when `strong`). */
  async record(space: string, version: string, strong = false): Promise<VersionRecord | undefined> {
    const key = `${space}/${version}`;
    const now = Date.now();
    const cached = this.records.get(key);
    if (!strong && cached && now - cached.at < this.deps.pointerTtlMs) return cached.record;
    const record = await this.deps.registry.getVersion(space, version);
    if (this.records.size >= MAX_CACHED_RECORDS) {
      for (const [k, c] of this.records) if (now - c.at >= this.deps.pointerTtlMs) this.records.delete(k);
    }
    if (this.records.size < MAX_CACHED_RECORDS) this.records.set(key, { record, at: now });
    if (!record || record.status === 'DELETED') this.deps.gone?.(space, version);
    return record;
  }

  /** Resolves the one version a request will read, once, with the space's erasure list and the version's manifest. */
  async resolve(space: string, params: VersionChoice): Promise<Resolved> {
    assertName('space', space);
    const strong = params.consistency === 'strong';
    if (params.version) {
      const [v, s] = await Promise.all([
        this.record(space, params.version, strong),
        this.spaceState(space, strong),
      ]);
      const p = s.pointer;
      if (s.deleting) throw new NotFoundError(`Unknown space ${space} (it is being deleted)`);
      if (!v || v.status === 'DELETED') {
        throw new NotFoundError(
          `Space ${space} has no version ${params.version}${v ? ' (its snapshot was deleted)' : ''}`,
        );
      }
      if (v.status !== 'READY')
        throw new NotFoundError(`Version ${params.version} of space ${space} is ${v.status}, not READY`);
      const erasures = await this.erasures.state(space, s.erasureCounter);
      return {
        space,
        version: v.version,
        pinned: v.version !== p.version && v.version !== p.previous,
        erasures,
        manifestKey: await this.erasures.manifestKey(space, v.version, erasures, v),
      };
    }
    const s = await this.spaceState(space, strong);
    const p = s.pointer;
    if (s.deleting) throw new NotFoundError(`Unknown space ${space} (it is being deleted)`);
    if (!p.version) {
      const any = await this.deps.registry.listVersions(space, 1);
      throw new NotFoundError(
        any.versions.length ? `Space ${space} has no active version yet` : `Unknown space ${space}`,
      );
    }
    const erasures = await this.erasures.state(space, s.erasureCounter);
    return {
      space,
      version: p.version,
      generation: p.generation,
      ...(p.previous ? { previous: p.previous } : {}),
      erasures,
      manifestKey: await this.erasures.manifestKey(space, p.version, erasures),
    };
  }

  /**
   * Runs `fn` on the one version the request resolves to. When the active version's snapshot cannot be
   * served (checksum or load failure) an unpinned request is answered from the pointer's previous
   * version — only while the registry says it is READY, never a mix — and the broken one is a 503 for
   * pinned requests. An instance out of room (CapacityError) answers 503 and falls back to nothing.
   */
  async onVersion<T>(
    space: string,
    params: VersionChoice,
    ctx: RequestContext,
    fn: (r: Resolved) => Promise<T>,
  ): Promise<T> {
    try {
      const r = await this.resolve(space, params);
      try {
        const out = await fn(r);
        if (!params.version) {
          const before = this.lastServed.get(space);
          this.lastServed.set(space, r.version);
          // Its files stay for a rollback; only its memory goes.
          if (before && before !== r.version) this.deps.superseded(space, before);
        }
        return out;
      } catch (err) {
        const fallback = r.previous;
        if (
          !(err instanceof SnapshotUnavailableError) ||
          err instanceof CapacityError ||
          params.version ||
          !fallback ||
          fallback === r.version
        )
          throw err;
        const record = await this.record(space, fallback);
        if (record?.status !== 'READY') {
          this.deps.log.warn('active snapshot unavailable and the previous version is not READY', {
            space,
            broken: r.version,
            previous: fallback,
            status: record?.status ?? 'absent',
          });
          throw err;
        }
        this.deps.log.warn("active snapshot unavailable; serving the pointer's previous version", {
          space,
          version: fallback,
          broken: r.version,
        });
        // What the failed attempt held may go before the previous version loads.
        releaseHeld(ctx);
        const erasures = r.erasures;
        return await fn({
          space,
          version: fallback,
          ...(erasures
            ? { erasures, manifestKey: await this.erasures.manifestKey(space, fallback, erasures, record) }
            : {}),
        });
      }
    } finally {
      releaseHeld(ctx);
    }
  }
}
