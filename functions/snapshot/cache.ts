import { mkdir, readdir, readFile, rm, stat, statfs, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { NotFoundError, SnapshotUnavailableError, VicinityError } from '../core/errors';
import type { BlobStore, IndexEngine, Log, VectorIndex } from '../core/ports';
import {
  CapacityError,
  estimateCollectionBytes,
  isNoSpace,
  mb,
  measureHeapBytes,
  nativeIndexBytes,
} from './budget';
import { fetchVerified, localPathFor, mapLimit, ObjectMissingError } from './files';
import { derivedBytes, type LoadedCollection, type LoadedSegment, lazyLookup } from './loaded';
import { allFiles, type Manifest, manifestKey, snapshotPrefix } from './manifest';

// The loaded-collection types and helpers live in loaded.ts; the query side imports them from here.
export type { Derived, ItemRef, LoadedCollection, LoadedSegment } from './loaded';
export { segmentDerived, segmentVectors } from './loaded';

export interface LoadReport {
  cached: boolean;
  bytes?: number;
  /** Files fetched from the bucket (the others were already verified in the local cache). */
  downloaded?: number;
  reused?: number;
  downloadMs?: number;
  /** CPU time hashing parts as they landed: part of downloadMs, overlapped with it. */
  verifyMs?: number;
  readIndexMs?: number;
  parseMs?: number;
}

export { CapacityError, type CapacityReason } from './budget';

interface Entry {
  space: string;
  version: string;
  promise: Promise<LoadedCollection>;
  collection?: LoadedCollection;
  lastUsed: number;
  /** Requests holding it now: eviction never drops an entry in use. */
  inFlight: number;
  /** Bytes reserved in the memory budget while it loads (0 once loaded: then memoryBytes() counts). */
  reserved: number;
}

const FAILURE_HOLD_MS = 15_000;

/** The `manifests` key of a version's manifest: the version's own, or `#` + a purge's manifest key. */
function manifestsKey(space: string, version: string, key: string): string {
  const vkey = `${space}/${version}`;
  return key === manifestKey(space, version) ? vkey : `${vkey}#${key}`;
}

/** The report of a collection that was already in memory (shared: nobody writes to it). */
const CACHED: LoadReport = Object.freeze({ cached: true });

export interface Held {
  collection: LoadedCollection;
  report: LoadReport;
  /** Tells the cache the request is done with it; until then it is never evicted. */
  release(): void;
}

export interface SnapshotCacheOptions {
  cacheDir: string;
  /** Bytes loaded collections may take: native indexes, parsed ids and metadata, what readers derive. */
  memoryBudgetBytes: number;
  /** Bytes of snapshot files the cache directory may hold (default: no budget, only free space). */
  diskBudgetBytes?: number;
  /** Versions, besides each space's active and previous one, that pinned requests may keep loaded at once. */
  maxPinnedVersions?: number;
  /** How long a pinned request protects its version from eviction and counts it against maxPinnedVersions. */
  pinWindowMs?: number;
  log: Log;
  /** Called once per failed verification or load (the SnapshotLoadFailures metric). */
  onFailure?: (what: { space: string; version: string; collection: string }) => void;
  /**
   * Whether the registry says the version is gone (DELETED, or no record): its objects missing from the
   * bucket then mean "no such version" (404), not a broken snapshot. Without it, missing means broken.
   */
  versionGone?: (space: string, version: string) => Promise<boolean>;
  /**
   * What this instance sees of a manifest (a shard slot: only its own shards' segments of each sharded
   * collection), applied once as the manifest is read; every load and budget then follows the view.
   */
  view?: (manifest: Manifest) => Manifest;
  /** Free bytes on the cache directory's file system (default: statfs). */
  freeBytes?: (dir: string) => Promise<number>;
  /** The clock for pin windows, failure holds and LRU (default Date.now): tests move it instead of sleeping. */
  now?: () => number;
}

export interface CollectionOptions {
  /** The request named this version with `?version=`: the pin cap and the pin window apply. */
  pinned?: boolean;
  /**
   * The manifest to load from when a purge switched the version to a rewritten one (the version
   * record's `manifestKey`); default `manifestKey(space, version)`. Collections are cached per manifest,
   * so a request reads one manifest's files only, and loading a newer one drops the older's memory.
   */
  manifestKey?: string;
}

/** How much a version is worth keeping: a load may evict only what ranks below it (or ranks 0). */
const RANK = { other: 0, pinned: 1, previous: 2, active: 3 } as const;

/**
 * Whether a load of `loadRank` may evict an unheld collection of `victimRank` (besides those of its own
 * version): anything unprotected, anything ranking below it, and — for active and previous versions,
 * which may belong to other spaces — their peers. A pinned load never evicts another recent pin.
 */
function mayEvict(victimRank: number, loadRank: number): boolean {
  return (
    victimRank === RANK.other ||
    victimRank < loadRank ||
    (loadRank >= RANK.previous && victimRank <= loadRank)
  );
}

/**
 * What an instance has loaded: manifests and collections by (space, version), fetched lazily per
 * collection, sha256-verified before any readIndex, within two budgets:
 * - memory: each load reserves its estimate (native hnswlib bytes from the manifest's count, dims and
 *   M; heap from the files' sizes) before anything is downloaded, evicting unheld collections that rank
 *   below it, or is refused with a CapacityError (503) — it never loads past the budget;
 * - disk: before a download the missing bytes must fit the budget and the file system's free space,
 *   evicting the files (and memory) of versions no request holds, chosen as for memory (a version's
 *   download may take the room of those ranking below it: the active one's, the previous version's),
 *   then of the version's other collections no request holds;
 *   running out (ENOSPC) is a 503 for that request, not a fault of the version.
 * A collection that failed to verify or load is never served; asking for it is a 503 for a while. A
 * version whose objects are gone and which the registry calls DELETED is a 404, never cached.
 */
export class SnapshotCache {
  private readonly manifests = new Map<string, Promise<Manifest>>();
  /** The manifests read, by the promise `manifests` holds for them (forgotten with it). */
  private readonly readManifests = new WeakMap<Promise<Manifest>, Manifest>();
  private readonly entries = new Map<string, Entry>();
  private readonly failures = new Map<string, { message: string; until: number }>();
  /** space → the pointer's active and previous version, as the query side last read them. */
  private readonly roles = new Map<string, { active?: string; previous?: string }>();
  /** space/version → when a pinned request last used it. */
  private readonly pins = new Map<string, number>();
  /** space/version → bytes of its verified files in the cache directory, and when it was last used. */
  private readonly disk = new Map<string, { bytes: number; lastUsed: number }>();
  /** Dropped while requests still held them: their memory is still there until the last one lets go. */
  private readonly draining = new Set<Entry>();
  private memReserved = 0;
  private diskReserved = 0;
  private scanned?: Promise<void>;
  /** Disk reservations run one at a time: check, evict and reserve must not interleave. */
  private diskLock: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly store: BlobStore,
    private readonly engine: IndexEngine,
    private readonly opts: SnapshotCacheOptions,
  ) {}

  private now(): number {
    return this.opts.now?.() ?? Date.now();
  }

  private get pinWindowMs(): number {
    return this.opts.pinWindowMs ?? 300_000;
  }

  manifest(space: string, version: string, key = manifestKey(space, version)): Promise<Manifest> {
    const mkey = manifestsKey(space, version, key);
    let p = this.manifests.get(mkey);
    if (!p) {
      const read = this.store.getText(key).then(async (text) => {
        if (text === undefined) {
          if (await this.gone(space, version)) throw this.goneError(space, version);
          throw new SnapshotUnavailableError(
            `The snapshot of ${space} ${version} has no manifest in the bucket`,
          );
        }
        const m = JSON.parse(text) as Manifest;
        const seen = this.opts.view ? this.opts.view(m) : m;
        // Read without a wait from now on (manifestNow), while this promise is the cached one.
        if (this.manifests.get(mkey) === read) this.readManifests.set(read, seen);
        return seen;
      });
      p = read;
      // The caller sees the rejection through `p`; this only keeps a failed read from being cached.
      p.catch(() => this.manifests.delete(mkey));
      this.manifests.set(mkey, p);
    }
    return p;
  }

  /** `manifest`'s answer when it has been read already (the same object), else undefined: no wait. */
  manifestNow(space: string, version: string, key = manifestKey(space, version)): Manifest | undefined {
    const p = this.manifests.get(manifestsKey(space, version, key));
    return p && this.readManifests.get(p);
  }

  /** Forgets every manifest of a version (the default one and any purge's). */
  private forgetManifests(vkey: string): void {
    for (const k of [...this.manifests.keys()])
      if (k === vkey || k.startsWith(`${vkey}#`)) this.manifests.delete(k);
  }

  /** The pointer's roles in a space: the active and previous versions are kept over any other. */
  setRoles(space: string, active: string | undefined, previous: string | undefined): void {
    this.roles.set(space, { active, previous });
  }

  /** Bytes held by loaded collections now. */
  memoryBytes(): number {
    let total = 0;
    for (const e of this.entries.values()) total += e.collection?.memoryBytes() ?? 0;
    for (const e of this.draining) total += e.collection?.memoryBytes() ?? 0;
    return total;
  }

  /** Bytes of verified snapshot files in the cache directory, as this cache counts them. */
  diskBytes(): number {
    let total = 0;
    for (const d of this.disk.values()) total += d.bytes;
    return total;
  }

  /** Loaded collections, as space/version/name. */
  loaded(): string[] {
    return [...this.entries.entries()].filter(([, e]) => e.collection).map(([k]) => k);
  }

  /** Names of a version's collections loaded now (loads in flight not counted). */
  loadedNames(space: string, version: string): string[] {
    const out: string[] = [];
    for (const [k, e] of this.entries)
      if (e.collection && e.space === space && e.version === version)
        out.push(k.slice(space.length + version.length + 2));
    return out;
  }

  /** Versions pinned within the pin window that are neither active nor previous, as space/version. */
  pinnedVersions(): string[] {
    const now = this.now();
    return [...this.pins.entries()]
      .filter(([k, at]) => at + this.pinWindowMs > now && !this.hasRole(k))
      .map(([k]) => k);
  }

  /**
   * `collection` when the collection is loaded now and nothing stands in its way: the same hold (LRU,
   * pin and disk use, in-flight count, release), answered without a wait; else undefined, and the
   * caller asks `collection` (which loads it, waits for a load in progress, or refuses).
   */
  collectionNow(
    space: string,
    version: string,
    name: string,
    options: CollectionOptions = {},
  ): Held | undefined {
    const key = this.entryKey(space, version, name, options.manifestKey);
    const entry = this.entries.get(key);
    const c = entry?.collection;
    if (!entry || !c) return undefined;
    const failed = this.failures.get(key);
    if (failed && failed.until > this.now()) return undefined;
    return { collection: c, report: CACHED, release: this.hold(entry, space, version, options) };
  }

  /** The entries' key of a collection as served from a manifest (the default one unless a purge moved it). */
  private entryKey(space: string, version: string, name: string, key: string | undefined): string {
    const base = `${space}/${version}/${name}`;
    return key !== undefined && key !== manifestKey(space, version) ? `${base}#${key}` : base;
  }

  /** Counts a request's use of `entry` (LRU, pin window, disk LRU, in flight) and answers its release. */
  private hold(entry: Entry, space: string, version: string, options: CollectionOptions): () => void {
    const vkey = `${space}/${version}`;
    const now = this.now();
    if (options.pinned) this.pins.set(vkey, now);
    const d = this.disk.get(vkey);
    if (d) d.lastUsed = now;
    entry.lastUsed = now;
    entry.inFlight++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      entry.inFlight--;
      // Dropped while this request still used it: its native memory goes now that nobody does.
      if (entry.inFlight === 0 && this.draining.delete(entry) && entry.collection)
        freeNative(entry.collection);
    };
  }

  /** The collection, loading it if needed; `report` tells what the load cost (for logs and Server-Timing). */
  async collection(
    space: string,
    version: string,
    name: string,
    options: CollectionOptions = {},
  ): Promise<Held> {
    const base = `${space}/${version}/${name}`;
    const key = this.entryKey(space, version, name, options.manifestKey);
    const failed = this.failures.get(key);
    if (failed && failed.until > this.now()) {
      throw new SnapshotUnavailableError(failed.message, { extras: { version } });
    }
    let entry = this.entries.get(key);
    let report: LoadReport = CACHED;
    if (!entry) {
      if (options.pinned) this.admitPin(space, version);
      report = { cached: false };
      const e: Entry = {
        space,
        version,
        promise: Promise.resolve(undefined as never),
        lastUsed: this.now(),
        inFlight: 0,
        reserved: 0,
      };
      e.promise = this.load(space, version, name, report, e, options.manifestKey);
      entry = e;
      this.entries.set(key, entry);
      // Another manifest of this collection (before or after a purge) stops being served here: requests
      // holding it finish on it, and its memory goes when they let go.
      for (const [k, other] of [...this.entries])
        if (k !== key && (k === base || k.startsWith(`${base}#`))) this.dropEntry(k, other);
    } else if (!entry.collection) {
      // Another request is loading it: this one waited for the load too.
      report = { cached: false };
    }
    const release = this.hold(entry, space, version, options);
    try {
      const c = await entry.promise;
      return { collection: c, report, release };
    } catch (err) {
      release();
      if (this.entries.get(key) === entry) this.entries.delete(key);
      // Capacity (503), a deleted version (404), an unreadable manifest: not a fault of these files.
      if (err instanceof VicinityError) throw err;
      const message = `The snapshot of ${space} ${version} collection ${name} could not be loaded`;
      if (!this.failures.has(key) || (this.failures.get(key)?.until ?? 0) <= this.now()) {
        this.opts.log.error('snapshot load failed', { space, version, collection: name, error: String(err) });
        this.opts.onFailure?.({ space, version, collection: name });
        this.failures.set(key, { message, until: this.now() + FAILURE_HOLD_MS });
      }
      throw new SnapshotUnavailableError(message, { cause: err, extras: { version } });
    }
  }

  private async load(
    space: string,
    version: string,
    name: string,
    report: LoadReport,
    entry: Entry,
    key?: string,
  ): Promise<LoadedCollection> {
    const manifest = await this.manifest(space, version, key);
    const cm = manifest.collections[name];
    if (!cm) throw new Error(`no collection ${name}`);
    // Reserve before any byte is downloaded: a load that cannot fit is refused here, not OOM-killed later.
    this.reserveMemory(entry, name, estimateCollectionBytes(cm));
    const opened: VectorIndex[] = [];
    try {
      const t0 = performance.now();
      const files = cm.segments.flatMap((s) => [
        s.files.index,
        s.files.ids,
        ...(s.files.meta ? [s.files.meta] : []),
      ]);
      let needed = 0;
      for (const f of files) {
        const st = await stat(localPathFor(this.opts.cacheDir, f.key)).catch(() => undefined);
        if (st?.size !== f.bytes) needed += f.bytes;
      }
      await this.reserveDisk(space, version, name, needed);
      let fetched: Awaited<ReturnType<typeof fetchVerified>>[];
      try {
        fetched = await mapLimit(files, 4, (f) => fetchVerified(this.store, f, this.opts.cacheDir));
      } catch (err) {
        if (isNoSpace(err)) {
          this.opts.log.warn('snapshot download ran out of disk', { space, version, collection: name });
          throw new CapacityError(
            'disk-full',
            `This instance ran out of local disk downloading ${space} ${version} collection ${name} (${mb(needed)}); the version is fine, retry shortly`,
            5,
            { version },
          );
        }
        if (err instanceof ObjectMissingError && (await this.gone(space, version))) {
          throw this.goneError(space, version);
        }
        this.opts.log.error('snapshot verification failed', {
          space,
          version,
          collection: name,
          error: (err as Error).message,
        });
        throw err;
      } finally {
        this.diskReserved -= needed;
        await this.recount(space, version);
      }
      const t1 = performance.now();
      let readIndexMs = 0;
      let parseMs = 0;
      let heapBytes = 0;
      const segments = await Promise.all(
        cm.segments.map(async (s): Promise<LoadedSegment> => {
          const indexPath = localPathFor(this.opts.cacheDir, s.files.index.key);
          // ids and metadata parse while readIndex runs on libuv's pool.
          const parsed = (async () => {
            const [idsText, metaText] = await Promise.all([
              readFile(localPathFor(this.opts.cacheDir, s.files.ids.key), 'utf8'),
              s.files.meta ? readFile(localPathFor(this.opts.cacheDir, s.files.meta.key), 'utf8') : undefined,
            ]);
            const p0 = performance.now();
            const ids = JSON.parse(idsText) as string[];
            const meta =
              metaText === undefined
                ? undefined
                : (JSON.parse(metaText) as (Record<string, unknown> | null)[]);
            parseMs += performance.now() - p0;
            return { ids, meta };
          })();
          const r0 = performance.now();
          const index = await this.engine.load(indexPath, cm.metric, cm.dims, s.count, cm.M, cm.ef);
          opened.push(index);
          readIndexMs += performance.now() - r0;
          const { ids, meta } = await parsed;
          if (ids.length !== s.count)
            throw new Error(`ids file lists ${ids.length} ids, manifest says ${s.count}`);
          // Measured once per load: what the parsed ids and metadata take on the heap.
          heapBytes += measureHeapBytes(ids, meta);
          return { index, ids, indexPath, ...(meta ? { meta } : {}) };
        }),
      );
      const bytes = files.reduce((a, f) => a + f.bytes, 0);
      Object.assign(report, {
        bytes,
        downloaded: fetched.filter((f) => f.downloaded).length,
        reused: fetched.filter((f) => !f.downloaded).length,
        downloadMs: round(t1 - t0),
        verifyMs: round(fetched.reduce((a, f) => a + f.verifyMs, 0)),
        readIndexMs: round(readIndexMs),
        parseMs: round(parseMs),
      } satisfies Partial<LoadReport>);
      const native = cm.segments.reduce((a, s) => a + nativeIndexBytes(s.count, cm.dims, cm.M), 0);
      const lookup = lazyLookup(segments);
      const collection: LoadedCollection = {
        space,
        version,
        name,
        manifest: cm,
        segments,
        bytes,
        memoryBytes: () =>
          segments.reduce(
            (a, s) => a + (s.vectorBytes ?? 0) + derivedBytes(s),
            native + heapBytes + lookup.bytes(),
          ),
        lookup,
      };
      this.opts.log.info('collection loaded', {
        space,
        version,
        collection: name,
        ...report,
        memoryBytes: collection.memoryBytes(),
      });
      // Set in the same turn the reservation ends, so no other load sees neither.
      entry.collection = collection;
      return collection;
    } catch (err) {
      for (const index of opened) index.release?.();
      throw err;
    } finally {
      this.memReserved -= entry.reserved;
      entry.reserved = 0;
      if (entry.collection) this.evict();
    }
  }

  private hasRole(vkey: string): boolean {
    const slash = vkey.indexOf('/');
    const r = this.roles.get(vkey.slice(0, slash));
    const version = vkey.slice(slash + 1);
    return r?.active === version || r?.previous === version;
  }

  private rank(space: string, version: string, now = this.now()): number {
    const r = this.roles.get(space);
    if (r?.active === version) return RANK.active;
    if (r?.previous === version) return RANK.previous;
    const at = this.pins.get(`${space}/${version}`);
    return at !== undefined && at + this.pinWindowMs > now ? RANK.pinned : RANK.other;
  }

  /** A pinned request for a version not loaded yet: refused when the instance already holds its share of pins. */
  private admitPin(space: string, version: string): void {
    const now = this.now();
    for (const [k, at] of this.pins) if (at + this.pinWindowMs <= now) this.pins.delete(k);
    if (this.rank(space, version, now) !== RANK.other) return;
    const max = this.opts.maxPinnedVersions ?? Number.POSITIVE_INFINITY;
    const others = [...this.pins.entries()].filter(([k]) => !this.hasRole(k));
    if (others.length < max) return;
    const oldest = Math.min(...others.map(([, at]) => at));
    throw new CapacityError(
      'pinned-versions',
      `This instance already serves ${others.length} pinned versions (${others.map(([k]) => k).join(', ')}) besides the active and previous ones, its limit; ${space} ${version} cannot be loaded until one has gone unused for ${Math.round(this.pinWindowMs / 1000)} s`,
      (oldest + this.pinWindowMs - now) / 1000,
      { version },
    );
  }

  /** Evicts unheld collections ranking below the load until `bytes` fit, or refuses without evicting anything. */
  private reserveMemory(entry: Entry, name: string, bytes: number): void {
    const budget = this.opts.memoryBudgetBytes;
    const { space, version } = entry;
    const what = `${space} ${version} collection ${name} needs about ${mb(bytes)} of memory`;
    if (bytes > budget) {
      throw new CapacityError(
        'memory-budget',
        `${what}, more than this instance's whole budget of ${mb(budget)}`,
        60,
        {
          version,
        },
      );
    }
    const now = this.now();
    const loadRank = this.rank(space, version, now);
    const used = this.memoryBytes() + this.memReserved;
    if (used + bytes > budget) {
      const victims = [...this.entries.entries()]
        .filter(([, e]) => e.collection && e.inFlight === 0)
        .map(([k, e]) => ({
          k,
          e,
          rank: this.rank(e.space, e.version, now),
          size: e.collection?.memoryBytes() ?? 0,
        }))
        .filter((v) => mayEvict(v.rank, loadRank) || (v.e.space === space && v.e.version === version))
        .sort((a, b) => a.rank - b.rank || a.e.lastUsed - b.e.lastUsed);
      const freeable = victims.reduce((a, v) => a + v.size, 0);
      if (used - freeable + bytes > budget) {
        const heldNow = [...this.entries.values()].some((e) => e.inFlight > 0 || !e.collection);
        const pinExpiry = [...this.pins.values()]
          .map((at) => at + this.pinWindowMs - now)
          .filter((ms) => ms > 0);
        const retryAfter = heldNow ? 2 : pinExpiry.length ? Math.min(...pinExpiry) / 1000 : 30;
        throw new CapacityError(
          'memory-budget',
          `${what}; this instance's budget is ${mb(budget)} and ${mb(used - freeable)} of it is held by collections it may not evict now (in use by requests, or of the active, previous or recently pinned versions)`,
          retryAfter,
          { version },
        );
      }
      let total = used;
      for (const v of victims) {
        if (total + bytes <= budget) break;
        this.dropEntry(v.k, v.e);
        total -= v.size;
        this.opts.log.info('collection evicted', {
          key: v.k,
          bytes: v.size,
          for: `${space}/${version}/${name}`,
        });
      }
    }
    entry.reserved = bytes;
    this.memReserved += bytes;
  }

  /** Makes room for `needed` bytes of downloads within the disk budget and the file system's free space. */
  private reserveDisk(space: string, version: string, name: string, needed: number): Promise<void> {
    const run = this.diskLock.then(async () => {
      await this.scan();
      if (needed === 0) return;
      const vkey = `${space}/${version}`;
      const budget = this.opts.diskBudgetBytes ?? Number.POSITIVE_INFINITY;
      const what = `${space} ${version} collection ${name} needs ${mb(needed)} of local disk`;
      if (needed > budget) {
        throw new CapacityError(
          'disk-budget',
          `${what}, more than this instance's disk budget of ${mb(budget)}`,
          60,
          {
            version,
          },
        );
      }
      while (this.diskBytes() + this.diskReserved + needed > budget) {
        const victim = this.diskVictim(vkey);
        if (!victim && (await this.evictSibling(space, version, name))) continue;
        if (!victim) {
          throw new CapacityError(
            'disk-budget',
            `${what}; ${mb(this.diskBytes() + this.diskReserved)} of this instance's ${mb(budget)} disk budget holds versions it may not evict now (active, previous, pinned in the last ${Math.round(this.pinWindowMs / 1000)} s, or in use)`,
            5,
            { version },
          );
        }
        await this.evictFiles(victim);
      }
      // What the budget cannot see: other files, or a /tmp smaller than configured.
      let free = await this.freeBytes();
      while (free < needed + this.diskReserved) {
        const victim = this.diskVictim(vkey);
        if (!victim && (await this.evictSibling(space, version, name))) {
          free = await this.freeBytes();
          continue;
        }
        if (!victim) {
          throw new CapacityError(
            'disk-full',
            `${what}; only ${mb(free)} is free in the cache directory and nothing there may be evicted now`,
            5,
            { version },
          );
        }
        await this.evictFiles(victim);
        free = await this.freeBytes();
      }
      this.diskReserved += needed;
    });
    this.diskLock = run.catch(() => undefined);
    return run;
  }

  private async freeBytes(): Promise<number> {
    await mkdir(this.opts.cacheDir, { recursive: true });
    if (this.opts.freeBytes) return this.opts.freeBytes(this.opts.cacheDir);
    const s = await statfs(this.opts.cacheDir);
    return s.bavail * s.bsize;
  }

  /**
   * The version whose files go first to make room for a download of `except` (a version key): as the
   * memory budget chooses (`mayEvict`), never one a request is using or loading; the lowest rank, then
   * the least recently used. So the active version's download may take the previous version's room —
   * else a release over half the disk budget could never load on a warm instance after a switch.
   */
  private diskVictim(except: string): string | undefined {
    const now = this.now();
    const rankOf = (vkey: string) => {
      const slash = vkey.indexOf('/');
      return this.rank(vkey.slice(0, slash), vkey.slice(slash + 1), now);
    };
    const loadRank = rankOf(except);
    const busy = new Set<string>();
    for (const e of this.entries.values())
      if (e.inFlight > 0 || !e.collection) busy.add(`${e.space}/${e.version}`);
    let best: string | undefined;
    let bestRank = Number.POSITIVE_INFINITY;
    let bestAt = Number.POSITIVE_INFINITY;
    for (const [k, d] of this.disk) {
      if (k === except || busy.has(k)) continue;
      const rank = rankOf(k);
      if (!mayEvict(rank, loadRank)) continue;
      if (rank < bestRank || (rank === bestRank && d.lastUsed < bestAt)) {
        best = k;
        bestRank = rank;
        bestAt = d.lastUsed;
      }
    }
    return best;
  }

  /** Deletes a version's files (and its unheld collections: exact scans read vectors from the files). */
  private async evictFiles(vkey: string): Promise<void> {
    const slash = vkey.indexOf('/');
    const space = vkey.slice(0, slash);
    const version = vkey.slice(slash + 1);
    const bytes = this.disk.get(vkey)?.bytes ?? 0;
    for (const [k, e] of [...this.entries])
      if (e.space === space && e.version === version) this.dropEntry(k, e);
    this.forgetManifests(vkey);
    this.disk.delete(vkey);
    await rm(localPathFor(this.opts.cacheDir, snapshotPrefix(space, version)), {
      recursive: true,
      force: true,
    });
    this.opts.log.info('snapshot files evicted', { space, version, bytes });
  }

  /**
   * When no other version's files may go: frees the files of another collection of the version being
   * loaded, so a release whose collections together outgrow the disk budget still serves each of them
   * (the memory budget, too, evicts collections, not versions). Only a collection no request uses or
   * loads: one not in memory first, then the least recently used. False when there is none.
   */
  private async evictSibling(space: string, version: string, except: string): Promise<boolean> {
    const vkey = `${space}/${version}`;
    type Sibling = { keys: Set<string>; entries: [string, Entry][]; busy: boolean; lastUsed: number };
    const siblings = new Map<string, Sibling>();
    for (const [mkey, read] of this.manifests) {
      const m = (mkey === vkey || mkey.startsWith(`${vkey}#`)) && this.readManifests.get(read);
      if (!m) continue;
      for (const name of Object.keys(m.collections)) {
        if (name === except) continue;
        const s = siblings.get(name) ?? { keys: new Set(), entries: [], busy: false, lastUsed: -1 };
        for (const f of allFiles(m, name)) s.keys.add(f.key);
        siblings.set(name, s);
      }
    }
    for (const [k, e] of this.entries) {
      const s =
        e.space === space &&
        e.version === version &&
        siblings.get(k.slice(vkey.length + 1).split('#')[0] ?? '');
      if (!s) continue;
      s.entries.push([k, e]);
      s.busy ||= e.inFlight > 0 || !e.collection;
      s.lastUsed = Math.max(s.lastUsed, e.lastUsed);
    }
    const paths = (s: Sibling) => [...s.keys].map((key) => localPathFor(this.opts.cacheDir, key));
    const onDisk = async (s: Sibling) => {
      let bytes = 0;
      for (const path of paths(s)) bytes += (await stat(path).catch(() => undefined))?.size ?? 0;
      return bytes;
    };
    let best: { name: string; s: Sibling; bytes: number } | undefined;
    for (const [name, s] of siblings) {
      if (s.busy || (best && best.s.lastUsed <= s.lastUsed)) continue;
      const bytes = await onDisk(s);
      if (bytes > 0) best = { name, s, bytes };
    }
    if (!best) return false;
    for (const [k, e] of best.s.entries) this.dropEntry(k, e);
    await Promise.all(paths(best.s).map((path) => rm(path, { force: true })));
    await this.recount(space, version);
    this.opts.log.info('collection files evicted', {
      space,
      version,
      collection: best.name,
      bytes: best.bytes,
      for: `${space}/${version}/${except}`,
    });
    return true;
  }

  /** Counts what is in the cache directory once (a warm instance's /tmp outlives the process). */
  private scan(): Promise<void> {
    this.scanned ??= (async () => {
      const root = join(this.opts.cacheDir, 'snapshots');
      for (const space of await readdir(root).catch(() => [] as string[])) {
        for (const version of await readdir(join(root, space)).catch(() => [] as string[])) {
          const vkey = `${space}/${version}`;
          if (this.disk.has(vkey)) continue;
          const bytes = await dirBytes(join(root, space, version), true);
          if (bytes > 0) this.disk.set(vkey, { bytes, lastUsed: 0 });
        }
      }
    })();
    return this.scanned;
  }

  /** Re-counts a version's verified files after a download (complete or not). */
  private async recount(space: string, version: string): Promise<void> {
    const vkey = `${space}/${version}`;
    const bytes = await dirBytes(localPathFor(this.opts.cacheDir, snapshotPrefix(space, version)), false);
    if (bytes > 0) this.disk.set(vkey, { bytes, lastUsed: this.now() });
    else this.disk.delete(vkey);
  }

  private async gone(space: string, version: string): Promise<boolean> {
    if (!this.opts.versionGone) return false;
    try {
      return await this.opts.versionGone(space, version);
    } catch (err) {
      // Not knowing is not "broken": a 503 for this request, nothing cached.
      throw new SnapshotUnavailableError(`Could not read the status of ${space} ${version}`, {
        cause: err,
        extras: { version },
      });
    }
  }

  private goneError(space: string, version: string): NotFoundError {
    this.opts.log.info('version gone from the bucket and the registry', { space, version });
    void this.retire(space, version);
    return new NotFoundError(`Space ${space} has no version ${version} (its snapshot was deleted)`, {
      extras: { version },
    });
  }

  /** A deleted version: drops what no request holds; its files go once nothing of it is held. */
  async retire(space: string, version: string): Promise<void> {
    const vkey = `${space}/${version}`;
    let busy = false;
    for (const [k, e] of [...this.entries]) {
      if (e.space !== space || e.version !== version) continue;
      if (e.inFlight === 0 && e.collection) this.dropEntry(k, e);
      else busy = true;
    }
    this.forgetManifests(vkey);
    this.pins.delete(vkey);
    if (!busy && this.disk.has(vkey)) await this.evictFiles(vkey);
  }

  /** Removes an entry; its native memory goes now if no request holds it, else when the last one lets go. */
  private dropEntry(key: string, e: Entry): void {
    if (this.entries.get(key) === e) this.entries.delete(key);
    if (!e.collection) return;
    if (e.inFlight === 0) freeNative(e.collection);
    else this.draining.add(e);
  }

  /**
   * Drops least-recently-used collections over the budget — unpinned ones first, then pinned, then the
   * previous versions', then the active ones' — never one a request holds, nor one loading.
   */
  evict(): void {
    let total = this.memoryBytes() + this.memReserved;
    if (total <= this.opts.memoryBudgetBytes) return;
    const now = this.now();
    const victims = [...this.entries.entries()]
      .filter(([, e]) => e.collection && e.inFlight === 0)
      .map(([k, e]) => ({ k, e, rank: this.rank(e.space, e.version, now) }))
      .sort((a, b) => a.rank - b.rank || a.e.lastUsed - b.e.lastUsed);
    for (const { k, e } of victims) {
      if (total <= this.opts.memoryBudgetBytes) break;
      const freed = e.collection?.memoryBytes() ?? 0;
      this.dropEntry(k, e);
      total -= freed;
      this.opts.log.info('collection evicted', { key: k, bytes: freed });
    }
  }

  /** Frees the memory of a version's loaded collections; requests still holding them finish on them. */
  drop(space: string, version: string): void {
    for (const [k, e] of [...this.entries]) {
      if (e.space === space && e.version === version && e.collection) this.dropEntry(k, e);
    }
  }

  /** Forgets a version entirely (memory and local files), e.g. after retention deleted it. */
  async forget(space: string, version: string): Promise<void> {
    for (const [k, e] of [...this.entries])
      if (e.space === space && e.version === version) this.dropEntry(k, e);
    this.forgetManifests(`${space}/${version}`);
    this.disk.delete(`${space}/${version}`);
    await rm(localPathFor(this.opts.cacheDir, snapshotPrefix(space, version)), {
      recursive: true,
      force: true,
    });
  }
}

/** Releases the native indexes of a collection nobody holds (see VectorIndex.release). */
function freeNative(c: LoadedCollection): void {
  for (const s of c.segments) s.index.release?.();
}

/** Bytes of the files under `dir` (not `.part` downloads); `cleanStale` deletes other processes' `.part` files. */
async function dirBytes(dir: string, cleanStale: boolean): Promise<number> {
  let total = 0;
  const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
  for (const e of entries) {
    const path = join(dir, e.name);
    if (e.isDirectory()) total += await dirBytes(path, cleanStale);
    else if (e.name.endsWith('.part')) {
      // `${name}.${pid}.${random}.part`: one of a process that died mid-download is never read again.
      const pid = e.name.split('.').at(-3);
      if (cleanStale && pid !== String(process.pid)) await unlink(path).catch(() => undefined);
    } else total += (await stat(path).catch(() => undefined))?.size ?? 0;
  }
  return total;
}

function round(ms: number): number {
  return Math.round(ms * 100) / 100;
}
