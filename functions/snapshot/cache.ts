import { readFile, rm } from 'node:fs/promises';
import { SnapshotUnavailableError } from '../core/errors';
import type { BlobStore, IndexEngine, Log } from '../core/ports';
import { type ChecksumError, fetchVerified, localPathFor, mapLimit } from './files';
import { derivedBytes, type LoadedCollection, type LoadedSegment, lazyLookup } from './loaded';
import { type Manifest, manifestKey, snapshotPrefix } from './manifest';

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

interface Entry {
  promise: Promise<LoadedCollection>;
  collection?: LoadedCollection;
  lastUsed: number;
  /** Requests holding it now: eviction never drops an entry in use. */
  inFlight: number;
}

const FAILURE_HOLD_MS = 15_000;

export interface Held {
  collection: LoadedCollection;
  report: LoadReport;
  /** Tells the cache the request is done with it; until then it is never evicted. */
  release(): void;
}

/**
 * What an instance has loaded: manifests and collections by (space, version), fetched lazily per
 * collection, sha256-verified before any readIndex, evicted least-recently-used over the memory budget
 * (never while a request holds them). A collection that failed to verify or load is never served;
 * asking for it is a 503 for a while.
 */
export class SnapshotCache {
  private readonly manifests = new Map<string, Promise<Manifest>>();
  private readonly entries = new Map<string, Entry>();
  private readonly failures = new Map<string, { message: string; until: number }>();

  constructor(
    private readonly store: BlobStore,
    private readonly engine: IndexEngine,
    private readonly opts: {
      cacheDir: string;
      memoryBudgetBytes: number;
      log: Log;
      /** Called once per failed verification or load (the SnapshotLoadFailures metric). */
      onFailure?: (what: { space: string; version: string; collection: string }) => void;
    },
  ) {}

  manifest(space: string, version: string): Promise<Manifest> {
    const key = `${space}/${version}`;
    let p = this.manifests.get(key);
    if (!p) {
      p = this.store.getText(manifestKey(space, version)).then((text) => {
        if (text === undefined) {
          throw new SnapshotUnavailableError(
            `The snapshot of ${space} ${version} has no manifest in the bucket`,
          );
        }
        return JSON.parse(text) as Manifest;
      });
      // The caller sees the rejection through `p`; this only keeps a failed read from being cached.
      p.catch(() => this.manifests.delete(key));
      this.manifests.set(key, p);
    }
    return p;
  }

  /** Bytes held by loaded collections now. */
  memoryBytes(): number {
    let total = 0;
    for (const e of this.entries.values()) total += e.collection?.memoryBytes() ?? 0;
    return total;
  }

  /** Loaded collections, as space/version/name. */
  loaded(): string[] {
    return [...this.entries.entries()].filter(([, e]) => e.collection).map(([k]) => k);
  }

  /** The collection, loading it if needed; `report` tells what the load cost (for logs and Server-Timing). */
  async collection(space: string, version: string, name: string): Promise<Held> {
    const key = `${space}/${version}/${name}`;
    const failed = this.failures.get(key);
    if (failed && failed.until > Date.now()) {
      throw new SnapshotUnavailableError(failed.message, { extras: { version } });
    }
    let entry = this.entries.get(key);
    let report: LoadReport = { cached: true };
    if (!entry) {
      report = { cached: false };
      entry = { promise: this.load(space, version, name, report), lastUsed: Date.now(), inFlight: 0 };
      this.entries.set(key, entry);
    } else if (!entry.collection) {
      // Another request is loading it: this one waited for the load too.
      report = { cached: false };
    }
    entry.lastUsed = Date.now();
    entry.inFlight++;
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      (entry as Entry).inFlight--;
    };
    try {
      const c = await entry.promise;
      if (!entry.collection) {
        entry.collection = c;
        this.evict();
      }
      return { collection: c, report, release };
    } catch (err) {
      release();
      if (this.entries.get(key) === entry) this.entries.delete(key);
      if (err instanceof SnapshotUnavailableError) throw err;
      const message = `The snapshot of ${space} ${version} collection ${name} could not be loaded`;
      if (!this.failures.has(key) || (this.failures.get(key)?.until ?? 0) <= Date.now()) {
        this.opts.log.error('snapshot load failed', { space, version, collection: name, error: String(err) });
        this.opts.onFailure?.({ space, version, collection: name });
        this.failures.set(key, { message, until: Date.now() + FAILURE_HOLD_MS });
      }
      throw new SnapshotUnavailableError(message, { cause: err, extras: { version } });
    }
  }

  private async load(
    space: string,
    version: string,
    name: string,
    report: LoadReport,
  ): Promise<LoadedCollection> {
    const manifest = await this.manifest(space, version);
    const cm = manifest.collections[name];
    if (!cm) throw new Error(`no collection ${name}`);
    const t0 = performance.now();
    const files = cm.segments.flatMap((s) => [
      s.files.index,
      s.files.ids,
      ...(s.files.meta ? [s.files.meta] : []),
    ]);
    let fetched: Awaited<ReturnType<typeof fetchVerified>>[];
    try {
      fetched = await mapLimit(files, 4, (f) => fetchVerified(this.store, f, this.opts.cacheDir));
    } catch (err) {
      const e = err as ChecksumError;
      this.opts.log.error('snapshot verification failed', {
        space,
        version,
        collection: name,
        error: e.message,
      });
      throw err;
    }
    const t1 = performance.now();
    let readIndexMs = 0;
    let parseMs = 0;
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
            metaText === undefined ? undefined : (JSON.parse(metaText) as (Record<string, unknown> | null)[]);
          parseMs += performance.now() - p0;
          return { ids, meta };
        })();
        const r0 = performance.now();
        const index = await this.engine.load(indexPath, cm.metric, cm.dims, s.count, cm.M, cm.ef);
        readIndexMs += performance.now() - r0;
        const { ids, meta } = await parsed;
        if (ids.length !== s.count)
          throw new Error(`ids file lists ${ids.length} ids, manifest says ${s.count}`);
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
    this.opts.log.info('collection loaded', { space, version, collection: name, ...report });
    return {
      space,
      version,
      name,
      manifest: cm,
      segments,
      bytes,
      memoryBytes: () => segments.reduce((a, s) => a + (s.vectorBytes ?? 0) + derivedBytes(s), bytes),
      lookup: lazyLookup(segments),
    };
  }

  /** Drops least-recently-used collections over the budget; never one a request holds, nor one loading. */
  evict(): void {
    let total = this.memoryBytes();
    if (total <= this.opts.memoryBudgetBytes) return;
    const victims = [...this.entries.entries()]
      .filter(([, e]) => e.collection && e.inFlight === 0)
      .sort((a, b) => a[1].lastUsed - b[1].lastUsed);
    for (const [k, e] of victims) {
      if (total <= this.opts.memoryBudgetBytes) break;
      this.entries.delete(k);
      const freed = e.collection?.memoryBytes() ?? 0;
      total -= freed;
      this.opts.log.info('collection evicted', { key: k, bytes: freed });
    }
  }

  /** Frees the memory of a version's loaded collections; requests still holding them finish on them. */
  drop(space: string, version: string): void {
    for (const [k, e] of [...this.entries]) {
      if (k.startsWith(`${space}/${version}/`) && e.collection) this.entries.delete(k);
    }
  }

  /** Forgets a version entirely (memory and local files), e.g. after retention deleted it. */
  async forget(space: string, version: string): Promise<void> {
    for (const k of [...this.entries.keys()])
      if (k.startsWith(`${space}/${version}/`)) this.entries.delete(k);
    this.manifests.delete(`${space}/${version}`);
    await rm(localPathFor(this.opts.cacheDir, snapshotPrefix(space, version)), {
      recursive: true,
      force: true,
    });
  }
}

function round(ms: number): number {
  return Math.round(ms * 100) / 100;
}
