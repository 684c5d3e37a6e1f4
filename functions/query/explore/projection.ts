/** A 2-D PCA map of a collection: fitting on a hash sample, and the metadata each point carries. */
import type { LoadedCollection } from '../../snapshot/cache';
import { PROJECTION_MAX_CELLS } from './limits';
import { type Pca2, pca2, project, unitIfCosine } from './pca';
import { flatOf, refOf, sampleByHash } from './sampling';

export {
  PROJECTION_DEFAULT_SAMPLE,
  PROJECTION_MAX_CELLS,
  PROJECTION_MAX_IDS,
  PROJECTION_MAX_SAMPLE,
} from './limits';

/** Longest string value a projection point carries per metadata field. */
const MAX_VALUE_CHARS = 120;
const MAX_ARRAY_VALUES = 5;

export interface Fitted {
  pca: Pca2;
  /** Collection items in the sample: segment and label. */
  refs: { segment: number; label: number; id: string }[];
  coords: Float32Array;
  sampled: number;
  requested: number;
  ms: number;
}

/** Fitted projections per loaded collection (versions are immutable, so they never go stale). */
export class Projections {
  private readonly fits = new WeakMap<LoadedCollection, Map<number, Fitted>>();

  fit(c: LoadedCollection, requested: number): Fitted {
    let byN = this.fits.get(c);
    if (!byN) {
      byN = new Map();
      this.fits.set(c, byN);
    }
    const cached = byN.get(requested);
    if (cached) return cached;
    const t0 = performance.now();
    const dims = c.manifest.dims;
    const n = Math.max(1, Math.min(requested, Math.floor(PROJECTION_MAX_CELLS / dims)));
    const flat = flatOf(c);
    const picked = sampleByHash(flat.ids, n);
    const cosine = c.manifest.metric === 'cosine';
    const rows = new Float64Array(picked.length * dims);
    const refs = picked.map((i, row) => {
      const ref = refOf(flat, i);
      const v = unitIfCosine(c.segments[ref.segment]!.index.getVector(ref.label), cosine);
      rows.set(v, row * dims);
      return { ...ref, id: flat.ids[i] as string };
    });
    const pca = pca2(rows, picked.length, dims);
    const coords = new Float32Array(picked.length * 2);
    for (let i = 0; i < picked.length; i++) {
      const [x, y] = project(pca, rows.subarray(i * dims, (i + 1) * dims));
      coords[i * 2] = x;
      coords[i * 2 + 1] = y;
    }
    const f: Fitted = { pca, refs, coords, sampled: picked.length, requested, ms: performance.now() - t0 };
    byN.set(requested, f);
    // A handful of sample sizes per collection at most; the oldest goes first.
    if (byN.size > 4) byN.delete(byN.keys().next().value as number);
    return f;
  }
}

/** Metadata restricted to `fields`: long strings cut, arrays cut to their first few values. */
export function pickFields(
  meta: Record<string, unknown> | null | undefined,
  fields: readonly string[],
): Record<string, unknown> | undefined {
  if (!meta || fields.length === 0) return undefined;
  const out: Record<string, unknown> = {};
  for (const f of fields) {
    const v = meta[f];
    if (v === undefined) continue;
    if (typeof v === 'string') out[f] = v.length > MAX_VALUE_CHARS ? `${v.slice(0, MAX_VALUE_CHARS)}…` : v;
    else if (Array.isArray(v)) out[f] = v.slice(0, MAX_ARRAY_VALUES);
    else if (v === null || typeof v === 'number' || typeof v === 'boolean') out[f] = v;
  }
  return out;
}

/** The fields a projection carries when the caller names none: those whose values are scalars. */
export function scalarFields(c: LoadedCollection): string[] {
  const fields = c.manifest.metadataFields ?? [];
  const seen = new Map<string, boolean>();
  let looked = 0;
  for (const s of c.segments) {
    for (const m of s.meta ?? []) {
      if (!m) continue;
      for (const f of fields) {
        const v = m[f];
        if (v === undefined) continue;
        const scalar = v === null || ['string', 'number', 'boolean'].includes(typeof v);
        seen.set(f, (seen.get(f) ?? true) && scalar);
      }
      if (++looked >= 500) break;
    }
    if (looked >= 500) break;
  }
  return fields.filter((f) => seen.get(f) === true);
}
