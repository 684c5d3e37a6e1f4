/**
 * `npm run bench:hostile`: times the two hostile reproducers (docs/contract.md, "Work budget") on a
 * music-like space: an all-tied exact scan (zero vector, exclude, ef 9999) and a batch of two of them.
 */

import { testStack } from '../test/support/local';
import { publishMusicLike } from '../test/support/music-like';

const s = await testStack();
try {
  await publishMusicLike(s);
  const zero = Array(32).fill(0);
  const one = { vector: zero, k: 18, ef: 9999, exclude: ['8731'] };
  const time = async (label: string, path: string, body: unknown) => {
    const ms: number[] = [];
    let status = 0;
    let detail = '';
    for (let i = 0; i < 4; i++) {
      const t0 = performance.now();
      const r = await s.post(path, body);
      ms.push(performance.now() - t0);
      status = r.status;
      detail = String(r.body.detail ?? '');
    }
    console.log(`${label}: ${status} ${ms.map((m) => m.toFixed(1)).join(' / ')} ms ${detail}`);
  };
  await time('query (tied, exclude, ef 9999)', '/v1/spaces/music/collections/artists/query', one);
  await time('batch of two', '/v1/spaces/music/batch', {
    queries: [
      { collection: 'artists', ...one },
      { collection: 'artists', ...one },
    ],
  });
  await time('vector of 1e39', '/v1/spaces/music/collections/artists/query', {
    vector: [1e39, ...zero.slice(1)],
  });
  await time('32 × 3.4e38', '/v1/spaces/music/collections/artists/query', {
    vector: Array(32).fill(3.4e38),
  });
  for (const q of ['to=v1', 'to=v1&k=82', 'to=v1&k=100&sample=100', 'to=v1&collection=artists']) {
    const ms: number[] = [];
    let status = 0;
    for (let i = 0; i < 3; i++) {
      const t0 = performance.now();
      status = (await s.get(`/v1/spaces/music/diff?${q}`)).status;
      ms.push(performance.now() - t0);
    }
    console.log(`diff ${q}: ${status} ${ms.map((m) => m.toFixed(1)).join(' / ')} ms`);
  }
} finally {
  await s.dispose();
}
