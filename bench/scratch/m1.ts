import { hnswEngine } from '../../functions/adapters/hnsw-index';
import { clusteredVectors, mulberry32 } from '../../functions/local/synthetic';
const n = 100_000, dims = 64;
const d = clusteredVectors(n + 200, dims, 100, 1);
const t0 = performance.now();
const b = hnswEngine.create('cosine', dims, n, 16, 200);
for (let i = 0; i < n; i++) b.add(Array.from(d.vectors.subarray(i * dims, (i + 1) * dims)), i);
console.log('build', performance.now() - t0);
await b.write('/tmp/vq/i.hnsw');
const idx = await hnswEngine.load('/tmp/vq/i.hnsw', 'cosine', dims, n, 16, 40);
const rand = mulberry32(5);
const group = Int32Array.from({ length: n }, () => Math.floor(rand() * 1000)); // 0.1% granularity
const qs = Array.from({ length: 200 }, (_, j) => Array.from(d.vectors.subarray((n + j) * dims, (n + j + 1) * dims)));
let t = performance.now();
for (let r = 0; r < 3; r++) for (let i = 0; i < 10000; i++) idx.getVector(i);
console.log('getPoint us', (performance.now() - t) / 30000 * 1000);
for (const sel of [1, 3, 10, 30, 100, 300]) {
  const allow = (l: number) => (group[l] as number) < sel;
  const times: number[] = []; let short = 0;
  for (const q of qs) { const s = performance.now(); const r = idx.search(q, 10, 40, allow); times.push(performance.now() - s); if (r.length < 10) short++; }
  times.sort((a, b) => a - b);
  // exact via getPoint over candidates
  const cand: number[] = []; for (let l = 0; l < n; l++) if ((group[l] as number) < sel) cand.push(l);
  const et: number[] = [];
  for (const q of qs.slice(0, 50)) { const s = performance.now(); let best = 0; for (const l of cand) { const v = idx.getVector(l); let acc = 0; for (let i = 0; i < dims; i++) acc += (v[i] as number) * (q[i] as number); if (acc > best) best = acc; } et.push(performance.now() - s); }
  et.sort((a, b) => a - b);
  console.log(`sel ${sel / 10}% hnsw p50 ${times[100]!.toFixed(3)} ms short ${short}; exact(${cand.length}) p50 ${et[25]!.toFixed(3)} ms`);
}
