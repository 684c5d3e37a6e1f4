/** Which items a projection shows: a hash sample that picks the same ids in every version. */
import type { LoadedCollection } from '../../snapshot/cache';

export { idHash, sampleByHash } from '../../core/id-hash';

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
