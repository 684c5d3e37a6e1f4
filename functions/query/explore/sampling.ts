/** Which items a projection shows: a hash sample that picks the same ids in every version. */
import type { LoadedCollection } from '../../snapshot/cache';

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

/** Every item of a collection in snapshot order: ids, and where each lives (typed arrays, for 1M-item collections). */
export interface Flat {
  ids: string[];
  segments: Uint16Array;
  labels: Uint32Array;
}

function flatten(c: LoadedCollection): Flat {
  const total = c.segments.reduce((n, s) => n + s.ids.length, 0);
  const ids: string[] = new Array(total);
  const segments = new Uint16Array(total);
  const labels = new Uint32Array(total);
  let i = 0;
  c.segments.forEach((s, segment) => {
    for (let label = 0; label < s.ids.length; label++, i++) {
      ids[i] = s.ids[label] as string;
      segments[i] = segment;
      labels[i] = label;
    }
  });
  return { ids, segments, labels };
}

export const refOf = (f: Flat, i: number) => ({
  segment: f.segments[i] as number,
  label: f.labels[i] as number,
});

const flats = new WeakMap<LoadedCollection, Flat>();

/** The flat view of a loaded collection, built once (versions are immutable) and gone with the collection. */
export function flatOf(c: LoadedCollection): Flat {
  let f = flats.get(c);
  if (!f) {
    f = flatten(c);
    flats.set(c, f);
  }
  return f;
}
