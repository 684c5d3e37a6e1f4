/**
 * A space shaped like the local music demo (`npm start`): `artists` (17,632 items, numeric ids, name,
 * tags, plays) and `users` (1,892 items, `seen` artists), 32-d inner-product vectors — without the
 * minute of ALS training. The contract test and the fuzz run (test/integration/contract.test.ts) use it.
 */
import { clusteredVectors, jsonlRows, mulberry32 } from '../../local/synthetic';
import type { TestStack } from './local';

export const MUSIC_ARTISTS = 17_632;
export const MUSIC_USERS = 1_892;
export const MUSIC_DIMS = 32;
const TAGS = ['rock', 'pop', 'electronic', 'indie', 'metal', 'jazz', 'hip-hop', 'folk'];

export async function publishMusicLike(s: TestStack, space = 'music', seed = 5): Promise<void> {
  const rand = mulberry32(seed);
  const a = clusteredVectors(MUSIC_ARTISTS, MUSIC_DIMS, 40, seed);
  const u = clusteredVectors(MUSIC_USERS, MUSIC_DIMS, 40, seed + 1);
  // ALS factors are not unit length: scale each row so inner products spread like the demo's.
  for (let i = 0; i < a.vectors.length; i++) a.vectors[i] = (a.vectors[i] as number) * (0.5 + (i % 7) / 7);
  const artistIds = Array.from({ length: MUSIC_ARTISTS }, (_, i) => String(i + 1));
  const userIds = Array.from({ length: MUSIC_USERS }, (_, i) => String(i + 2));
  await s.publish(
    space,
    'lastfm-like',
    {
      'artists.jsonl': jsonlRows(artistIds, a.vectors, MUSIC_DIMS, (i) => ({
        name: `Artist ${i + 1}`,
        tags: [TAGS[i % TAGS.length], TAGS[(i * 7) % TAGS.length]],
        plays: Math.floor(rand() * 100_000),
        listeners: 1 + (i % 500),
      })),
      'users.jsonl': jsonlRows(userIds, u.vectors, MUSIC_DIMS, () => ({
        seen: Array.from({ length: 5 }, () => artistIds[Math.floor(rand() * MUSIC_ARTISTS)]),
      })),
    },
    {
      collections: {
        artists: { file: 'artists.jsonl', metric: 'ip' },
        users: { file: 'users.jsonl', metric: 'ip' },
      },
      seenField: 'seen',
      activate: true,
    },
  );
}
