/** The id hash that samples the same ids in every version (explorer projections, diffs). */

/** FNV-1a over UTF-16 code units: a stable per-id hash, so the same ids are sampled in every version. */
export function idHash(id: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < id.length; i++) {
    h ^= id.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  // A final avalanche so that ids differing only in their last characters spread over the range.
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  return h >>> 0;
}

/** Indexes (into `ids`) of the `n` ids with the smallest hashes, in hash order; ties by id. */
export function sampleByHash(ids: readonly string[], n: number): number[] {
  if (n >= ids.length) return ids.map((_, i) => i);
  const hashes = new Float64Array(ids.length);
  for (let i = 0; i < ids.length; i++) hashes[i] = idHash(ids[i] as string);
  const sorted = Float64Array.from(hashes).sort();
  const cut = sorted[n - 1] as number;
  const picked: number[] = [];
  for (let i = 0; i < ids.length; i++) if ((hashes[i] as number) <= cut) picked.push(i);
  picked.sort((a, b) => {
    const d = (hashes[a] as number) - (hashes[b] as number);
    if (d !== 0) return d;
    const x = ids[a] as string;
    const y = ids[b] as string;
    return x < y ? -1 : x > y ? 1 : 0;
  });
  return picked.slice(0, n);
}
