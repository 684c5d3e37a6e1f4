import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { AlsOptions } from '../examples/als/als';
import { LASTFM_DEMO_OPTIONS, LASTFM_DIR, loadLastfmDemo, writeAlsRelease } from '../examples/als/train-als';
import { KEY_PREFIX } from '../functions/contract';
import type { BlobStore } from '../functions/core/ports';
import { clusteredVectors, jsonlRows, mulberry32 } from './synthetic';

/** The demo's ids: Radiohead in artists.dat, and user 2, who plays 80s synth-pop and trip-hop (Duran Duran, Air, Depeche Mode…). */
export const DEMO_ARTIST = '154';
export const DEMO_USER = '2';

export interface MusicDemoOptions {
  /** Where the trained release folder is written (kept, so it can be looked at or published again). */
  workDir: string;
  space?: string;
  release?: string;
  dataDir?: string;
  options?: AlsOptions;
}

export interface MusicDemo {
  space: string;
  release: string;
  dir: string;
  users: number;
  artists: number;
  trainMs: number;
  writeMs: number;
  uploadMs: number;
}

/**
 * The first-start demo: trains implicit ALS on the Last.fm plays (fixed seed, so the same neighbours
 * every time) and publishes space `music` with `users` (metadata `seen`: artists played, the
 * release's seenField) and `artists` (name, tags, plays, listeners), collection files first and
 * release.json last, as a producer does.
 */
export async function publishMusicDemo(store: BlobStore, opts: MusicDemoOptions): Promise<MusicDemo> {
  const space = opts.space ?? 'music';
  const t0 = performance.now();
  const { release, dir, summary } = await trainMusicDemo(opts);
  const t1 = performance.now();
  await uploadMusicDemo(store, { dir, space, release });
  return {
    space,
    release,
    dir,
    users: summary.users,
    artists: summary.items,
    trainMs: summary.trainMs,
    writeMs: t1 - t0 - summary.trainMs,
    uploadMs: performance.now() - t1,
  };
}

/**
 * Uploads a trained demo folder (trainMusicDemo's `dir`) as release `release` of `space`: the collection
 * files its release.json names first, release.json last, as a producer does (and as publishMusicDemo does).
 */
export async function uploadMusicDemo(
  store: BlobStore,
  opts: { dir: string; space: string; release: string },
): Promise<void> {
  const releasePath = join(opts.dir, 'release.json');
  const manifest = JSON.parse(await readFile(releasePath, 'utf8')) as {
    collections: Record<string, { file: string }>;
  };
  const prefix = `${KEY_PREFIX.incoming}${opts.space}/${opts.release}/`;
  await Promise.all(
    Object.values(manifest.collections).map((c) =>
      store.putFile(prefix + c.file, join(opts.dir, c.file), 'application/x-ndjson'),
    ),
  );
  await store.putFile(`${prefix}release.json`, releasePath, 'application/json');
}

/** Trains the demo's ALS release into `workDir/<release>` (the folder publishMusicDemo uploads). */
export async function trainMusicDemo(opts: MusicDemoOptions) {
  const release = opts.release ?? 'lastfm-als';
  const dir = join(opts.workDir, release);
  const data = await loadLastfmDemo(opts.dataDir ?? LASTFM_DIR);
  const summary = await writeAlsRelease({
    interactions: data.interactions,
    outDir: dir,
    itemsCollection: 'artists',
    itemNames: data.itemNames,
    itemTags: data.itemTags,
    // The loss is only reported; skipping it saves a pass per iteration and changes no factor.
    options: { ...LASTFM_DEMO_OPTIONS, computeLoss: false, ...opts.options },
  });
  return { release, dir, summary };
}

/** `VICINITY_DEMO=sharded`: the music demo again, as this space, with its artists sharded. */
export const SHARDED_MUSIC_SPACE = 'music-sharded';
export const SHARDED_MUSIC_ARTIST_SHARDS = 4;

/**
 * The music demo's release published a second time, as space `music-sharded` with `"shards": 4` on
 * `artists` (users stay one collection): the same neighbours, served by scatter-gather over the shard
 * slots. Reuses the trained folder in `workDir` when the music demo left one there, else trains it.
 * Data files first, release.json last.
 */
export async function publishShardedMusicDemo(
  store: BlobStore,
  opts: MusicDemoOptions & { shards?: number },
): Promise<{ space: string; release: string; shards: number }> {
  const space = opts.space ?? SHARDED_MUSIC_SPACE;
  const shards = opts.shards ?? SHARDED_MUSIC_ARTIST_SHARDS;
  let release = opts.release ?? 'lastfm-als';
  let dir = join(opts.workDir, release);
  if (!existsSync(join(dir, 'release.json'))) ({ release, dir } = await trainMusicDemo(opts));
  const manifest = JSON.parse(await readFile(join(dir, 'release.json'), 'utf8')) as {
    collections: Record<string, { file: string; shards?: number }>;
  };
  const artists = manifest.collections.artists;
  if (!artists) throw new Error(`${dir}/release.json has no artists collection`);
  artists.shards = shards;
  const prefix = `${KEY_PREFIX.incoming}${space}/${release}/`;
  await Promise.all(
    Object.values(manifest.collections).map((c) =>
      store.putFile(prefix + c.file, join(dir, c.file), 'application/x-ndjson'),
    ),
  );
  await store.putText(`${prefix}release.json`, `${JSON.stringify(manifest, null, 2)}\n`, 'application/json');
  return { space, release, shards };
}

const GENRES = ['rock', 'jazz', 'electronic', 'hip-hop', 'classical', 'folk', 'metal', 'pop'];

/**
 * A small synthetic release of space `demo` (users and tracks from one "model"), uploaded the way a
 * producer does: the collection files first, release.json last.
 */
export async function publishSyntheticDemo(
  store: BlobStore,
  space = 'demo',
  release = 'synthetic-1',
  seed = 7,
) {
  const dims = 32;
  const tracks = clusteredVectors(4000, dims, GENRES.length * 4, seed);
  const users = clusteredVectors(1000, dims, GENRES.length * 4, seed + 1);
  const rand = mulberry32(seed + 2);
  const trackIds = Array.from({ length: 4000 }, (_, i) => `t${i + 1}`);
  const userIds = Array.from({ length: 1000 }, (_, i) => `u${i + 1}`);
  const prefix = `${KEY_PREFIX.incoming}${space}/${release}/`;
  await store.putText(
    `${prefix}tracks.jsonl`,
    jsonlRows(trackIds, tracks.vectors, dims, (i) => ({
      title: `Track ${i + 1}`,
      genre: GENRES[(tracks.cluster[i] as number) % GENRES.length],
      year: 1970 + Math.floor(rand() * 55),
    })),
    'application/x-ndjson',
  );
  await store.putText(
    `${prefix}users.jsonl`,
    jsonlRows(userIds, users.vectors, dims, () => ({
      seen: Array.from({ length: 5 }, () => trackIds[Math.floor(rand() * trackIds.length)]),
    })),
    'application/x-ndjson',
  );
  await store.putText(
    `${prefix}release.json`,
    JSON.stringify({
      collections: {
        users: { file: 'users.jsonl', metric: 'cosine' },
        tracks: { file: 'tracks.jsonl', metric: 'cosine' },
      },
      activate: true,
      seenField: 'seen',
    }),
  );
  return { space, release };
}
