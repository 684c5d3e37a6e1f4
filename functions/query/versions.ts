import { NotFoundError, SnapshotUnavailableError } from '../core/errors';
import { assertName } from '../core/names';
import type { Pointer } from '../core/pointer';
import type { Log, Registry, SpaceState } from '../core/ports';
import type { SearchParams } from '../core/query';
import type { VersionRecord } from '../core/version';
import { CapacityError } from '../snapshot/cache';
import { type RequestContext, type Resolved, releaseHeld } from './context';
import { ErasureCache, type ErasureState } from './erasures';

export type VersionChoice = Pick<SearchParams, 'version' | 'consistency'>;

/** A pointer move this instance is riding out on the version it had loaded (switchGraceMs). */
interface Switch {
  from: string;
  to: string;
  since: number;
  /** The new version's collections are loaded: requests go to it from now on. */
  done: boolean;
  /** Loading them failed: requests go to it and meet the failure (and its fallback) themselves. */
  failed: boolean;
}

/** What the resolver needs of the snapshot cache to ride out a switch. */
export interface SwitchWarmer {
  /** Names of the version's collections loaded now. */
  loaded(space: string, version: string): string[];
  /** Loads these collections of the version (in the background: nothing waits for it). */
  load(space: string, version: string, names: string[]): Promise<void>;
}

/** The pointer item as an instance trusts it (VersionResolver.spaceState). */
interface PointerState {
  pointer: Pointer;
  /** Trusted from then for pointerTtlMs. */
  at: number;
  /** When the registry last answered for it. */
  readAt: number;
  erasureCounter: number;
  deleting: boolean;
}

/** Version records cached at most this many; past it, expired ones are dropped (hostile pins can't grow it). */
const MAX_CACHED_RECORDS = 1000;

/**
 * While the registry cannot be read (throttled, failing past the SDK's retries), an eventual request is
 * answered from the pointer last read, for up to this long after that read, rather than with a 500: the
 * pointer cannot move without the registry either. A strong request gets the error.
 */
export const STALE_IF_ERROR_MS = 60_000;

/**
 * Which version a request reads: the pointer (cached for pointerTtlMs), a pinned READY version (its
 * record cached for pointerTtlMs too), or — when the active snapshot cannot be served — the pointer's
 * previous version, only while the registry says it is READY.
 */
export class VersionResolver {
  private readonly pointers = new Map<string, PointerState>();
  readonly erasures: ErasureCache;
  private readonly records = new Map<string, { record: VersionRecord | undefined; at: number }>();
  private readonly lastServed = new Map<string, string>();
  private readonly switches = new Map<string, Switch>();
  /**
   * space → what `resolve` last answered for an unpinned request, with the pointer state and erasure list
   * it was built from: while both are still the ones in force, the same (never mutated) answer serves the
   * next eventual request without its awaits, allocations and manifest-key string (`resolvedNow`).
   */
  private readonly hot = new Map<string, { state: PointerState; erasures: ErasureState; r: Resolved }>();

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
      /**
       * How long, after the pointer moves, an instance that has the old version loaded keeps answering
       * eventual, unpinned requests from it while the new one loads in the background (0 or absent: they
       * wait for the load). Each answer names the version it came from; none mixes them.
       */
      switchGraceMs?: number;
      warmer?: SwitchWarmer;
      /** The clock for the TTLs and the grace (default Date.now): tests move it instead of sleeping. */
      now?: () => number;
    },
  ) {
    this.erasures = new ErasureCache(deps.registry);
  }

  private now(): number {
    return this.deps.now?.() ?? Date.now();
  }

  /** The pointer, from a cache trusted for pointerTtlMs; never moves back to a generation older than one seen. */
  async pointer(space: string, strong = false): Promise<Pointer> {
    return (await this.spaceState(space, strong)).pointer;
  }

  /**
   * The pointer item as this instance trusts it: the pointer, the erasure counter (never moving back)
   * and whether the space is being deleted (never unset) — one read, cached like the pointer.
   */
  async spaceState(space: string, strong = false): Promise<PointerState> {
    const cached = this.pointers.get(space);
    if (!strong && cached && this.now() - cached.at < this.deps.pointerTtlMs) return cached;
    let fresh: SpaceState;
    try {
      fresh = await this.deps.registry.getSpaceState(space, strong);
    } catch (err) {
      if (strong || !cached || this.now() - cached.readAt >= STALE_IF_ERROR_MS) throw err;
      // Trusted for another TTL: the next read is tried then, not by every request meanwhile.
      const stale: PointerState = { ...cached, at: this.now() };
      this.pointers.set(space, stale);
      this.deps.log.warn('pointer read failed; serving the pointer last read', {
        space,
        version: cached.pointer.version,
        ageMs: Math.round(this.now() - cached.readAt),
        error: String(err),
      });
      return stale;
    }
    const pointer =
      cached && cached.pointer.generation > fresh.pointer.generation ? cached.pointer : fresh.pointer;
    const now = this.now();
    const state: PointerState = {
      pointer,
      at: now,
      readAt: now,
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
    const now = this.now();
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
    const r: Resolved = {
      space,
      version: p.version,
      generation: p.generation,
      ...(p.previous ? { previous: p.previous } : {}),
      erasures,
      manifestKey: await this.erasures.manifestKey(space, p.version, erasures),
    };
    this.hot.set(space, { state: s, erasures, r });
    return r;
  }

  /**
   * `resolve`'s answer for an eventual, unpinned request, without a wait, when it would be the last one
   * again: the pointer state it was built from is still the cached one and within pointerTtlMs, and the
   * erasure list for its counter is still the one it used (so the manifest key, read once per list, is
   * too). Undefined otherwise: the request then resolves as usual.
   */
  private resolvedNow(space: string, params: VersionChoice): Resolved | undefined {
    if (params.version || params.consistency === 'strong') return undefined;
    const hot = this.hot.get(space);
    if (!hot) return undefined;
    const s = hot.state;
    if (this.pointers.get(space) !== s || !(this.now() - s.at < this.deps.pointerTtlMs)) return undefined;
    return this.erasures.current(space, s.erasureCounter) === hot.erasures ? hot.r : undefined;
  }

  /**
   * The version this instance served last, when the pointer moved past it and the grace applies: the
   * request is eventual and unpinned, this instance has collections of the old version loaded that the
   * new one has not loaded yet, and the switch began less than switchGraceMs ago. The first such
   * request starts loading the new version's collections in the background; once they are loaded (or
   * the load failed, or the grace ran out) requests go to the new version.
   */
  private graceVersion(space: string, r: Resolved, params: VersionChoice): Resolved | undefined {
    const { switchGraceMs: graceMs = 0, warmer } = this.deps;
    if (graceMs <= 0 || !warmer || params.version || params.consistency === 'strong') return undefined;
    const from = this.lastServed.get(space);
    if (!from || from === r.version) {
      this.switches.delete(space);
      return undefined;
    }
    let sw = this.switches.get(space);
    if (!sw || sw.to !== r.version || sw.from !== from) {
      const had = warmer.loaded(space, from);
      if (had.length === 0) return undefined;
      const have = new Set(warmer.loaded(space, r.version));
      const missing = had.filter((n) => !have.has(n));
      if (missing.length === 0) return undefined;
      const s: Switch = { from, to: r.version, since: this.now(), done: false, failed: false };
      sw = s;
      this.switches.set(space, s);
      this.deps.log.info('version switch: serving the loaded version while the new one loads', {
        space,
        version: from,
        next: r.version,
        collections: missing,
        graceMs,
      });
      warmer.load(space, r.version, missing).then(
        () => {
          s.done = true;
        },
        (err) => {
          s.failed = true;
          this.deps.log.warn('version switch: loading the new version failed; requests go to it', {
            space,
            version: r.version,
            error: String(err),
          });
        },
      );
    }
    if (sw.done || sw.failed || this.now() - sw.since >= graceMs) return undefined;
    // The old version must still be in memory (a load may have evicted it): else it is no shortcut.
    if (warmer.loaded(space, from).length === 0) return undefined;
    return { space, version: from };
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
      const r = this.resolvedNow(space, params) ?? (await this.resolve(space, params));
      const old = this.graceVersion(space, r, params);
      if (old) {
        try {
          return await fn(old);
        } catch (err) {
          // The old version could not answer after all: the request goes to the new one.
          if (!(err instanceof SnapshotUnavailableError) || err instanceof CapacityError) throw err;
          releaseHeld(ctx);
          this.switches.delete(space);
        }
      }
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
