import { join } from 'node:path';
import { type LoadedCollection, SnapshotCache } from '../snapshot/cache';
import { type Manifest, servedManifestKey } from '../snapshot/manifest';
import type { BuildContext, BuildDeps } from './deps';

/** A collection of the version serving now, to compare the new one with — or why there is none. */
export type PreviousCollection =
  | { version: string; collection: LoadedCollection }
  /** `failed`: the previous snapshot exists but could not be read — not a normal case, always reported. */
  | { version?: string; skipped: string; failed: boolean };

export interface PreviousVersion {
  collection(name: string, dims: number): Promise<PreviousCollection>;
}

const causeOf = (err: unknown): string => {
  const e = err as Error;
  return e.cause instanceof Error ? `${e.message}: ${e.cause.message}` : String(e?.message ?? err);
};

/**
 * The version the pointer names now (to measure how much the model changed), read through the
 * snapshot module, verified like any load, its collections loaded lazily into the build's work dir.
 */
export async function previousVersion(
  deps: Pick<BuildDeps, 'registry' | 'store' | 'engine' | 'log'>,
  ctx: BuildContext,
  workDir: string,
): Promise<PreviousVersion> {
  const pointer = await deps.registry.getPointer(ctx.space);
  const prev = pointer.version;
  if (!prev || prev === ctx.version) {
    return {
      collection: async () => ({ skipped: 'no other version is active to compare with', failed: false }),
    };
  }
  const cache = new SnapshotCache(deps.store, deps.engine, {
    // Inside the build's work dir, so its files go with it instead of filling /tmp build after build.
    cacheDir: join(workDir, 'previous'),
    memoryBudgetBytes: Number.MAX_SAFE_INTEGER,
    log: deps.log,
  });
  let manifest: Manifest | undefined;
  let unreadable = '';
  // The manifest the version is served from: a purge of erased ids switches it to a new key.
  let key: string | undefined;
  try {
    const record = await deps.registry.getVersion(ctx.space, prev);
    key = servedManifestKey(record ?? { space: ctx.space, version: prev });
    manifest = await cache.manifest(ctx.space, prev, key);
  } catch (err) {
    unreadable = `the snapshot of ${prev} could not be read (${causeOf(err)})`;
  }
  return {
    async collection(name, dims) {
      if (!manifest) return { version: prev, skipped: unreadable, failed: true };
      const cm = manifest.collections[name];
      if (!cm) return { version: prev, skipped: `${prev} has no collection ${name}`, failed: false };
      if (cm.dims !== dims) {
        return { version: prev, skipped: `${prev} has ${cm.dims} dims, this release ${dims}`, failed: false };
      }
      try {
        // Held for the build's life: this cache has no budget to evict under and goes with the work dir.
        const held = await cache.collection(ctx.space, prev, name, key ? { manifestKey: key } : {});
        return { version: prev, collection: held.collection };
      } catch (err) {
        return {
          version: prev,
          skipped: `the snapshot of ${prev} collection ${name} could not be read (${causeOf(err)})`,
          failed: true,
        };
      }
    },
  };
}
