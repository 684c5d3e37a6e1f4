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
    const { pca, coords } = fitRows(rows, picked.length, dims);
    const f: Fitted = { pca, refs, coords, sampled: picked.length, requested, ms: performance.now() - t0 };
    byN.set(requested, f);
    // A handful of sample sizes per collection at most; the oldest goes first.
    if (byN.size > 4) byN.delete(byN.keys().next().value as number);
    return f;
  }
}

/** The sample size a projection fits: what was asked, cut so that sample × dims stays under the cap. */
export function sampleSize(requested: number, dims: number): number {
  return Math.max(1, Math.min(requested, Math.floor(PROJECTION_MAX_CELLS / dims)));
}

/** PCA of `n` rows of `dims` (row-major) and each row's 2-D coordinates. */
export function fitRows(rows: Float64Array, n: number, dims: number): { pca: Pca2; coords: Float32Array } {
  const pca = pca2(rows, n, dims);
  const coords = new Float32Array(n * 2);
  for (let i = 0; i < n; i++) {
    const [x, y] = project(pca, rows.subarray(i * dims, (i + 1) * dims));
    coords[i * 2] = x;
    coords[i * 2 + 1] = y;
  }
  return { pca, coords };
}

/** A projection fitted from the shard slots' sample (the router holds the sample, no shard). */
export interface SlotFitted {
  pca: Pca2;
  ids: string[];
  metadata: (Record<string, unknown> | null)[];
  coords: Float32Array;
  sampled: number;
}

/** Fits of sharded collections by space/version/collection/sample (versions are immutable), the newest 16. */
export class SlotFits {
  private readonly fits = new Map<string, SlotFitted>();

  get(key: string): SlotFitted | undefined {
    return this.fits.get(key);
  }

  set(key: string, f: SlotFitted): void {
    this.fits.set(key, f);
    if (this.fits.size > 16) this.fits.delete(this.fits.keys().next().value as string);
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
  return scalarFieldsOf(c.manifest.metadataFields ?? [], metadataOf(c));
}

function* metadataOf(c: LoadedCollection): Generator<Record<string, unknown> | null | undefined> {
  for (const s of c.segments) yield* s.meta ?? [];
}

/** scalarFields over the first 500 non-empty metadata records given (a sharded collection: its sample's). */
export function scalarFieldsOf(
  fields: readonly string[],
  metas: Iterable<Record<string, unknown> | null | undefined>,
): string[] {
  const seen = new Map<string, boolean>();
  let looked = 0;
  for (const m of metas) {
    if (!m) continue;
    for (const f of fields) {
      const v = m[f];
      if (v === undefined) continue;
      const scalar = v === null || ['string', 'number', 'boolean'].includes(typeof v);
      seen.set(f, (seen.get(f) ?? true) && scalar);
    }
    if (++looked >= 500) break;
  }
  return fields.filter((f) => seen.get(f) === true);
}
