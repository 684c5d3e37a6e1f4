/**
 * Benchmarks' shared setup: the cached index of a bench dataset (bench/query-data.ts) published as a
 * real snapshot in the local stack's S3 stand-in, with a READY version (activated unless told not to).
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { DynamoRegistry } from '../functions/adapters/dynamo-registry';
import { S3Store } from '../functions/adapters/s3-store';
import { activateVersion } from '../functions/core/activation';
import { digestFile } from '../functions/snapshot/digest';
import type { CollectionManifest, Manifest, SnapshotFile } from '../functions/snapshot/manifest';
import type { LocalStack } from '../local/stack';
import { type Dataset, EF_CONSTRUCTION, M } from './query-data';

export const SPACE = 'bench';
export const collectionName = (d: Dataset) =>
  d.n >= 1_000_000 ? 'd1m' : d.n >= 200_000 ? `d${d.n / 1000}k` : 'd100k';
const log = (s: string) => process.stderr.write(`${s}\n`);

async function uploadFile(store: S3Store, key: string, path: string): Promise<SnapshotFile> {
  const d = await digestFile(path);
  await store.putFile(key, path);
  return { key, bytes: d.bytes, sha256: d.sha256, parts: d.parts };
}

export async function publishSnapshot(
  stack: LocalStack,
  datasets: Dataset[],
  opts: { release?: string; sequencer?: string; activate?: boolean } = {},
): Promise<string> {
  const release = opts.release ?? 'bench';
  const sequencer = opts.sequencer ?? '1';
  const store = new S3Store(stack.deps.s3, stack.info.bucket);
  const registry = new DynamoRegistry(stack.deps.dynamo, stack.info.table);
  const now = new Date();
  const { version } = await registry.claimRelease(
    { space: SPACE, release, key: `incoming/${SPACE}/${release}/release.json`, sequencer },
    now,
  );
  const number = Number(version.slice(1));
  await registry.ensureVersion({
    space: SPACE,
    version,
    number,
    status: 'BUILDING',
    release,
    releaseKey: `incoming/${SPACE}/${release}/release.json`,
    sequencer,
    createdAt: now.toISOString(),
  });
  await registry.acquireLease(SPACE, version, 'bench', Date.now() + 3_600_000, Date.now());
  const collections: Record<string, CollectionManifest> = {};
  for (const d of datasets) {
    const name = collectionName(d);
    const prefix = `snapshots/${SPACE}/${version}/${name}/seg-0/`;
    const idsPath = join(d.dir, 'ids.json');
    const metaPath = join(d.dir, 'meta.json');
    await writeFile(idsPath, JSON.stringify(d.ids));
    await writeFile(metaPath, JSON.stringify(d.meta));
    log(`uploading ${name} to the S3 stand-in`);
    const [index, ids, meta] = await Promise.all([
      uploadFile(store, `${prefix}index.hnsw`, d.indexPath),
      uploadFile(store, `${prefix}ids.json`, idsPath),
      uploadFile(store, `${prefix}meta.json`, metaPath),
    ]);
    collections[name] = {
      metric: 'cosine',
      dims: d.dims,
      count: d.n,
      M,
      efConstruction: EF_CONSTRUCTION,
      ef: 80,
      metadataFields: ['b'],
      segments: [{ count: d.n, files: { index, ids, meta } }],
    };
  }
  const manifest: Manifest = {
    format: 1,
    space: SPACE,
    version,
    createdAt: now.toISOString(),
    release,
    collections,
  };
  await store.putText(`snapshots/${SPACE}/${version}/manifest.json`, JSON.stringify(manifest));
  await registry.finishVersion(SPACE, version, 'bench', {
    status: 'READY',
    finishedAt: new Date().toISOString(),
    collections: Object.fromEntries(
      Object.entries(collections).map(([k, c]) => [
        k,
        {
          count: c.count,
          dims: c.dims,
          metric: c.metric,
          M,
          efConstruction: EF_CONSTRUCTION,
          ef: c.ef,
          segments: 1,
        },
      ]),
    ),
  });
  await registry.registerSpace(SPACE, now);
  if (opts.activate !== false) {
    const pointer = await registry.getPointer(SPACE);
    await activateVersion(registry, {
      space: SPACE,
      version,
      expectedGeneration: pointer.generation,
      by: 'cli',
    });
  }
  return version;
}
