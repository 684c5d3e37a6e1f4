import { readFile, rm } from 'node:fs/promises';
import { type ChecksumError, fetchVerified, localPathFor, mapLimit } from '../common/snapshot-files';
import { SnapshotUnavailableError } from '../core/errors';
import { type CollectionManifest, type Manifest, manifestKey, snapshotPrefix } from '../core/manifest';
import type { BlobStore, IndexEngine, Log, VectorIndex } from '../core/ports';

export interface LoadedSegment {
  index: VectorIndex;
  ids: string[];
  meta?: (Record<string, unknown> | null)[];
}

export interface ItemRef {
  segment: number;
  label: number;
}

export interface LoadedCollection {
  space: string;
  version: string;
  name: string;
  manifest: CollectionManifest;
  segments: LoadedSegment[];
  bytes: number;
  lookup(id: string): ItemRef | undefined;
}

export interface LoadReport {
  cached: boolean;
  bytes?: number;
  downloadMs?: number;
  readIndexMs?: number;
  parseMs?: number;
}

interface Entry {
  promise: Promise<LoadedCollection>;
  bytes: number;
  lastUsed: number;
  loaded: boolean;
}

const FAILURE_HOLD_MS = 15_000;

function buildLookup(segments: LoadedSegment[]): (id: string) => ItemRef | undefined {
  const map = new Map<string, number>();
  // Packs segment and label into one number so a 1M-item map stays small.
  segments.forEach((s, seg) => {
    for (let label = 0; label < s.ids.length; label++) map.set(s.ids[label] as string, seg * 2 ** 32 + label);
  });
  return (id) => {
    const v = map.get(id);
    return v === undefined ? undefined : { segment: Math.floor(v / 2 ** 32), label: v % 2 ** 32 };
  };
}

/**
 * What an instance has loaded: manifests and collections by (space, version), fetched lazily per
 * collection, sha256-verified before any readIndex, evicted least-recently-used over the memory budget.
 * A collection that failed to verify or load is never served; asking for it is a 503 for a while.
 */
export class SnapshotCache {
  private readonly manifests = new Map<string, Promise<Manifest>>();
  private readonly entries = new Map<string, Entry>();
  private readonly failures = new Map<string, { message: string; until: number }>();

  constructor(
    private readonly store: BlobStore,
    private readonly engine: IndexEngine,
    private readonly opts: { cacheDir: string; memoryBudgetBytes: number; log: Log },
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
      p.catch(() => this.manifests.delete(key));
      this.manifests.set(key, p);
    }
    return p;
  }

  /** The collection, loading it if needed; `report` tells what the load cost (for logs and Server-Timing). */
  async collection(
    space: string,
    version: string,
    name: string,
  ): Promise<{ collection: LoadedCollection; report: LoadReport }> {
    const key = `${space}/${version}/${name}`;
    const failed = this.failures.get(key);
    if (failed && failed.until > Date.now()) {
      throw new SnapshotUnavailableError(failed.message, { extras: { version } });
    }
    const hit = this.entries.get(key);
    if (hit) {
      hit.lastUsed = Date.now();
      return { collection: await hit.promise, report: { cached: hit.loaded } };
    }
    const report: LoadReport = { cached: false };
    const entry: Entry = {
      promise: this.load(space, version, name, report),
      bytes: 0,
      lastUsed: Date.now(),
      loaded: false,
    };
    this.entries.set(key, entry);
    try {
      const c = await entry.promise;
      entry.bytes = c.bytes;
      entry.loaded = true;
      this.evict(key);
      return { collection: c, report };
    } catch (err) {
      this.entries.delete(key);
      if (err instanceof SnapshotUnavailableError) throw err;
      const message = `The snapshot of ${space} ${version} collection ${name} could not be loaded`;
      this.opts.log.error('snapshot load failed', { space, version, collection: name, error: String(err) });
      this.failures.set(key, { message, until: Date.now() + FAILURE_HOLD_MS });
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
    const t0 = Date.now();
    const files = cm.segments.flatMap((s) => [
      s.files.index,
      s.files.ids,
      ...(s.files.meta ? [s.files.meta] : []),
    ]);
    try {
      await mapLimit(files, 4, (f) => fetchVerified(this.store, f, this.opts.cacheDir));
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
    const t1 = Date.now();
    let readIndexMs = 0;
    let parseMs = 0;
    const segments = await Promise.all(
      cm.segments.map(async (s) => {
        const r0 = Date.now();
        const index = await this.engine.load(
          localPathFor(this.opts.cacheDir, s.files.index.key),
          cm.metric,
          cm.dims,
          s.count,
          cm.M,
          cm.ef,
        );
        readIndexMs += Date.now() - r0;
        const p0 = Date.now();
        const ids = JSON.parse(
          await readFile(localPathFor(this.opts.cacheDir, s.files.ids.key), 'utf8'),
        ) as string[];
        const meta = s.files.meta
          ? (JSON.parse(
              await readFile(localPathFor(this.opts.cacheDir, s.files.meta.key), 'utf8'),
            ) as (Record<string, unknown> | null)[])
          : undefined;
        parseMs += Date.now() - p0;
        return { index, ids, ...(meta ? { meta } : {}) };
      }),
    );
    const bytes = files.reduce((a, f) => a + f.bytes, 0);
    Object.assign(report, { bytes, downloadMs: t1 - t0, readIndexMs, parseMs });
    this.opts.log.info('collection loaded', { space, version, collection: name, ...report });
    return { space, version, name, manifest: cm, segments, bytes, lookup: buildLookup(segments) };
  }

  /** Drops least-recently-used collections over the budget (never `keep`); requests holding one finish on it. */
  private evict(keep: string): void {
    let total = 0;
    for (const e of this.entries.values()) total += e.bytes;
    if (total <= this.opts.memoryBudgetBytes) return;
    const victims = [...this.entries.entries()]
      .filter(([k, e]) => k !== keep && e.loaded)
      .sort((a, b) => a[1].lastUsed - b[1].lastUsed);
    for (const [k, e] of victims) {
      if (total <= this.opts.memoryBudgetBytes) break;
      this.entries.delete(k);
      total -= e.bytes;
      this.opts.log.info('collection evicted', { key: k, bytes: e.bytes });
    }
  }

  /** Frees the memory of a version's loaded collections; requests still holding them finish on them. */
  drop(space: string, version: string): void {
    for (const [k, e] of [...this.entries]) {
      if (k.startsWith(`${space}/${version}/`) && e.loaded) this.entries.delete(k);
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
