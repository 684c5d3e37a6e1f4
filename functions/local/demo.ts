import type { BlobStore } from '../core/ports';
import { clusteredVectors, jsonlRows, mulberry32 } from './synthetic';

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
  const prefix = `incoming/${space}/${release}/`;
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
