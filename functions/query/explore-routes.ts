/**
 * Read routes the explorer page needs (contract: "Explore routes"): a 2-D PCA projection of a
 * deterministic sample of a collection, and a prefix search over ids or a metadata field.
 * Both read one version, resolved once, and answer with it like every other data route.
 */

import { type HttpResult, json, type Route, serverTiming } from '../common/http';
import { BadRequestError } from '../core/errors';
import { assertItemId, assertName, assertVersion } from '../core/names';
import type { Registry } from '../core/ports';
import { mulberry32 } from '../core/random';
import type { LoadedCollection } from '../snapshot/cache';
import {
  type QueryService,
  type RequestContext,
  type Resolved,
  requestContext,
  type Timings,
} from './service';

export const PROJECTION_DEFAULT_SAMPLE = 3000;
export const PROJECTION_MAX_SAMPLE = 10_000;
/** The sample is cut so that sample × dims stays under this many numbers (a 4096-d space gets ~2,000 points). */
export const PROJECTION_MAX_CELLS = 8_000_000;
export const PROJECTION_MAX_IDS = 100;
export const PREFIX_DEFAULT_LIMIT = 20;
export const PREFIX_MAX_LIMIT = 100;
/** Longest string value a projection point carries per metadata field. */
const MAX_VALUE_CHARS = 120;
const MAX_ARRAY_VALUES = 5;

// ---------------------------------------------------------------------------------------------
// Sampling and PCA (pure; exported for tests)

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

export interface Pca2 {
  dims: number;
  mean: Float64Array;
  /** Two unit vectors of `dims`, the first two principal axes. */
  axes: [Float64Array, Float64Array];
  /** Share of the sample's total variance along each axis. */
  explained: [number, number];
}

/** Modified Gram–Schmidt on the `l` columns (each of length `len`, stored one after another). */
function orthonormalise(cols: Float64Array, len: number, l: number): void {
  for (let j = 0; j < l; j++) {
    const cj = cols.subarray(j * len, (j + 1) * len);
    for (let p = 0; p < j; p++) {
      const cp = cols.subarray(p * len, (p + 1) * len);
      let dot = 0;
      for (let i = 0; i < len; i++) dot += (cj[i] as number) * (cp[i] as number);
      for (let i = 0; i < len; i++) cj[i] = (cj[i] as number) - dot * (cp[i] as number);
    }
    let norm = 0;
    for (let i = 0; i < len; i++) norm += (cj[i] as number) ** 2;
    norm = Math.sqrt(norm);
    if (norm < 1e-12) {
      // A degenerate direction: replace it by a unit vector, re-orthogonalised on the next pass.
      cj.fill(0);
      cj[j % len] = 1;
      continue;
    }
    for (let i = 0; i < len; i++) cj[i] = (cj[i] as number) / norm;
  }
}

/** Eigen-decomposition of a small symmetric matrix (cyclic Jacobi): values descending, vectors as columns. */
export function symmetricEigen(a: Float64Array, m: number): { values: number[]; vectors: Float64Array } {
  const A = Float64Array.from(a);
  const V = new Float64Array(m * m);
  for (let i = 0; i < m; i++) V[i * m + i] = 1;
  for (let sweep = 0; sweep < 100; sweep++) {
    let off = 0;
    for (let p = 0; p < m; p++) for (let q = p + 1; q < m; q++) off += (A[p * m + q] as number) ** 2;
    if (off < 1e-22) break;
    for (let p = 0; p < m; p++) {
      for (let q = p + 1; q < m; q++) {
        const apq = A[p * m + q] as number;
        if (Math.abs(apq) < 1e-300) continue;
        const app = A[p * m + p] as number;
        const aqq = A[q * m + q] as number;
        const theta = (aqq - app) / (2 * apq);
        const t = Math.sign(theta || 1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
        const c = 1 / Math.sqrt(t * t + 1);
        const s = t * c;
        for (let k = 0; k < m; k++) {
          const akp = A[k * m + p] as number;
          const akq = A[k * m + q] as number;
          A[k * m + p] = c * akp - s * akq;
          A[k * m + q] = s * akp + c * akq;
        }
        for (let k = 0; k < m; k++) {
          const apk = A[p * m + k] as number;
          const aqk = A[q * m + k] as number;
          A[p * m + k] = c * apk - s * aqk;
          A[q * m + k] = s * apk + c * aqk;
        }
        for (let k = 0; k < m; k++) {
          const vkp = V[k * m + p] as number;
          const vkq = V[k * m + q] as number;
          V[k * m + p] = c * vkp - s * vkq;
          V[k * m + q] = s * vkp + c * vkq;
        }
      }
    }
  }
  const order = Array.from({ length: m }, (_, i) => i).sort(
    (x, y) => (A[y * m + y] as number) - (A[x * m + x] as number),
  );
  const vectors = new Float64Array(m * m);
  order.forEach((src, dst) => {
    for (let k = 0; k < m; k++) vectors[k * m + dst] = V[k * m + src] as number;
  });
  return { values: order.map((i) => A[i * m + i] as number), vectors };
}

/**
 * The first two principal axes of `n` rows of `dims` (row-major), by randomised subspace iteration
 * (Halko et al.) with a fixed seed: O(n·dims) per pass, no dims×dims covariance, deterministic.
 */
export function pca2(rows: Float64Array, n: number, dims: number, iterations = 12): Pca2 {
  if (n < 1 || dims < 1) throw new Error('pca2 needs at least one row and one dimension');
  const mean = new Float64Array(dims);
  for (let r = 0; r < n; r++)
    for (let d = 0; d < dims; d++) mean[d] = (mean[d] as number) + (rows[r * dims + d] as number);
  for (let d = 0; d < dims; d++) mean[d] = (mean[d] as number) / n;
  const X = new Float64Array(n * dims);
  let total = 0;
  for (let r = 0; r < n; r++) {
    for (let d = 0; d < dims; d++) {
      const v = (rows[r * dims + d] as number) - (mean[d] as number);
      X[r * dims + d] = v;
      total += v * v;
    }
  }
  const l = Math.min(dims, n, 8);
  const rand = mulberry32(0x5eed);
  // Z: dims × l (columns stored one after another), a random start.
  const Z = new Float64Array(l * dims);
  for (let i = 0; i < Z.length; i++) Z[i] = rand() - 0.5;
  orthonormalise(Z, dims, l);
  const Y = new Float64Array(l * n);
  const multiplyXZ = () => {
    // Y = X · Z  (n × l)
    for (let j = 0; j < l; j++) {
      const zj = Z.subarray(j * dims, (j + 1) * dims);
      for (let r = 0; r < n; r++) {
        let s = 0;
        const off = r * dims;
        for (let d = 0; d < dims; d++) s += (X[off + d] as number) * (zj[d] as number);
        Y[j * n + r] = s;
      }
    }
  };
  const multiplyXtY = () => {
    // Z = Xᵀ · Y  (dims × l)
    Z.fill(0);
    for (let j = 0; j < l; j++) {
      const zj = Z.subarray(j * dims, (j + 1) * dims);
      for (let r = 0; r < n; r++) {
        const y = Y[j * n + r] as number;
        if (y === 0) continue;
        const off = r * dims;
        for (let d = 0; d < dims; d++) zj[d] = (zj[d] as number) + y * (X[off + d] as number);
      }
    }
  };
  for (let it = 0; it < iterations; it++) {
    multiplyXZ();
    orthonormalise(Y, n, l);
    multiplyXtY();
    orthonormalise(Z, dims, l);
  }
  // Rayleigh–Ritz in the subspace spanned by Z: the l×l matrix Zᵀ XᵀX Z, from W = X Z.
  multiplyXZ();
  const G = new Float64Array(l * l);
  for (let a = 0; a < l; a++) {
    for (let b = a; b < l; b++) {
      let s = 0;
      for (let r = 0; r < n; r++) s += (Y[a * n + r] as number) * (Y[b * n + r] as number);
      G[a * l + b] = s;
      G[b * l + a] = s;
    }
  }
  const { values, vectors } = symmetricEigen(G, l);
  const axis = (k: number): Float64Array => {
    const out = new Float64Array(dims);
    if (k >= l) return out;
    for (let j = 0; j < l; j++) {
      const w = vectors[j * l + k] as number;
      const zj = Z.subarray(j * dims, (j + 1) * dims);
      for (let d = 0; d < dims; d++) out[d] = (out[d] as number) + w * (zj[d] as number);
    }
    // A fixed sign: the largest loading is positive, so the picture does not flip between calls.
    let big = 0;
    for (let d = 0; d < dims; d++) if (Math.abs(out[d] as number) > Math.abs(out[big] as number)) big = d;
    if ((out[big] as number) < 0) for (let d = 0; d < dims; d++) out[d] = -(out[d] as number);
    return out;
  };
  const share = (k: number) =>
    total > 0 && k < values.length ? Math.max(0, values[k] as number) / total : 0;
  return { dims, mean, axes: [axis(0), axis(1)], explained: [share(0), share(1)] };
}

/** Coordinates of one vector on the two axes. */
export function project(p: Pca2, v: ArrayLike<number>): [number, number] {
  let x = 0;
  let y = 0;
  for (let d = 0; d < p.dims; d++) {
    const c = (v[d] as number) - (p.mean[d] as number);
    x += c * (p.axes[0][d] as number);
    y += c * (p.axes[1][d] as number);
  }
  return [x, y];
}

function unitIfCosine(v: number[], cosine: boolean): number[] {
  if (!cosine) return v;
  let n = 0;
  for (const x of v) n += x * x;
  n = Math.sqrt(n);
  return n > 0 ? v.map((x) => x / n) : v;
}

// ---------------------------------------------------------------------------------------------
// Prefix search (pure; exported for tests)

/** Case-, accent- and width-insensitive form used for prefix matching ("Sigur Rós" → "sigur ros"). */
export function foldText(s: string): string {
  return s.normalize('NFKD').replace(/\p{M}/gu, '').toLowerCase();
}

/** Word starts after the first: "the beatles" → ["beatles"]; "ac/dc" → ["dc"]. */
function laterWords(folded: string): string[] {
  const out: string[] = [];
  const re = /[\p{L}\p{N}]+/gu;
  let first = true;
  for (let m = re.exec(folded); m; m = re.exec(folded)) {
    if (first && m.index === 0) {
      first = false;
      continue;
    }
    first = false;
    out.push(folded.slice(m.index));
  }
  return out;
}

export interface PrefixHit {
  /** Position of the item in the indexed list. */
  item: number;
  /** The original value that matched. */
  value: string;
  /** 0: the value starts with the prefix; 1: a later word does. */
  rank: number;
}

/**
 * A sorted index of folded values (and the suffixes starting at each later word), searched by binary
 * search: built once per collection, version and field, then each lookup is O(log n + matches).
 */
export class PrefixIndex {
  private readonly keys: string[];
  private readonly items: Int32Array;
  private readonly ranks: Uint8Array;
  private readonly values: string[];

  constructor(values: readonly (string | readonly string[] | undefined)[]) {
    // Parallel arrays, sorted through a permutation: no object per entry (1M items make ~3M entries).
    const keys: string[] = [];
    const items: number[] = [];
    const ranks: number[] = [];
    const vals: string[] = [];
    const add = (key: string, item: number, rank: number, value: string) => {
      keys.push(key);
      items.push(item);
      ranks.push(rank);
      vals.push(value);
    };
    values.forEach((v, item) => {
      if (v === undefined) return;
      for (const one of typeof v === 'string' ? [v] : v) {
        const folded = foldText(one);
        add(folded, item, 0, one);
        for (const w of laterWords(folded)) add(w, item, 1, one);
      }
    });
    const order = Uint32Array.from(keys, (_, i) => i).sort((x, y) => {
      const a = keys[x] as string;
      const b = keys[y] as string;
      return a < b ? -1 : a > b ? 1 : (items[x] as number) - (items[y] as number);
    });
    this.keys = Array.from(order, (i) => keys[i] as string);
    this.items = Int32Array.from(order, (i) => items[i] as number);
    this.ranks = Uint8Array.from(order, (i) => ranks[i] as number);
    this.values = Array.from(order, (i) => vals[i] as string);
  }

  get size(): number {
    return this.keys.length;
  }

  /**
   * Items whose value, or a later word of it, starts with `prefix` (folded): whole-value matches
   * first, then by value length, then alphabetically; each item once, at most `limit`.
   */
  search(prefix: string, limit: number, scanCap = 200_000): { hits: PrefixHit[]; more: boolean } {
    const p = foldText(prefix);
    let lo = 0;
    let hi = this.keys.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((this.keys[mid] as string) < p) lo = mid + 1;
      else hi = mid;
    }
    const best = new Map<number, PrefixHit>();
    let scanned = 0;
    for (let i = lo; i < this.keys.length && (this.keys[i] as string).startsWith(p); i++) {
      if (++scanned > scanCap) break;
      const item = this.items[i] as number;
      const rank = this.ranks[i] as number;
      const value = this.values[i] as string;
      const had = best.get(item);
      if (!had || rank < had.rank || (rank === had.rank && value.length < had.value.length))
        best.set(item, { item, value, rank });
    }
    const hits = [...best.values()].sort(
      (a, b) =>
        a.rank - b.rank ||
        a.value.length - b.value.length ||
        (a.value < b.value ? -1 : a.value > b.value ? 1 : a.item - b.item),
    );
    return { hits: hits.slice(0, limit), more: hits.length > limit };
  }
}

// ---------------------------------------------------------------------------------------------
// Routes

interface Fitted {
  pca: Pca2;
  /** Collection items in the sample: segment and label. */
  refs: { segment: number; label: number; id: string }[];
  coords: Float32Array;
  sampled: number;
  requested: number;
  ms: number;
}

/** Every item of a collection in snapshot order: ids, and where each lives (typed arrays, for 1M-item collections). */
interface Flat {
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

const refOf = (f: Flat, i: number) => ({ segment: f.segments[i] as number, label: f.labels[i] as number });

function rejectUnknown(query: Record<string, string | undefined>, known: readonly string[]): void {
  const unknown = Object.keys(query).filter((k) => !known.includes(k));
  if (unknown.length) {
    throw new BadRequestError(
      `unknown query parameter${unknown.length > 1 ? 's' : ''} ${unknown.map((u) => JSON.stringify(u.slice(0, 40))).join(', ')}; known: ${known.join(', ')}`,
    );
  }
}

function intParam(raw: string | undefined, name: string, min: number, max: number, dflt: number): number {
  if (raw === undefined) return dflt;
  const v = Number(raw);
  if (raw.trim() === '' || !Number.isInteger(v) || v < min || v > max)
    throw new BadRequestError(`${name}: an integer ${min}–${max}`);
  return v;
}

function readParams(query: Record<string, string | undefined>): {
  version?: string;
  consistency: 'eventual' | 'strong';
} {
  const consistency = query.consistency ?? 'eventual';
  if (consistency !== 'eventual' && consistency !== 'strong')
    throw new BadRequestError('consistency: must be "strong" or "eventual"');
  return {
    ...(query.version !== undefined ? { version: assertVersion(query.version) } : {}),
    consistency,
  };
}

/** Metadata restricted to `fields`: long strings cut, arrays cut to their first few values. */
function pickFields(
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
function scalarFields(c: LoadedCollection): string[] {
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

function answer(
  body: { version: string } & Record<string, unknown>,
  timings: Timings,
  t0: number,
): HttpResult {
  timings.total = performance.now() - t0;
  return json(200, body, { 'vicinity-version': body.version, 'server-timing': serverTiming(timings) });
}

/**
 * The explore routes, spread into queryRoutes. Fitted projections and prefix indexes are kept per
 * loaded collection (versions are immutable, so they never go stale) and go with it when evicted.
 */
export function exploreRoutes(service: QueryService, _registry: Registry): Route[] {
  const base = '/v1/spaces/{space}/collections/{collection}';
  const fits = new WeakMap<LoadedCollection, Map<number, Fitted>>();
  const prefixIndexes = new WeakMap<LoadedCollection, Map<string, PrefixIndex>>();
  const flats = new WeakMap<LoadedCollection, Flat>();

  const flatOf = (c: LoadedCollection) => {
    let f = flats.get(c);
    if (!f) {
      f = flatten(c);
      flats.set(c, f);
    }
    return f;
  };

  const open = async (
    params: Record<string, string>,
    query: Record<string, string | undefined>,
    ctx: RequestContext,
  ): Promise<{ r: Resolved; c: LoadedCollection }> => {
    const space = assertName('space', params.space);
    const collection = assertName('collection', params.collection);
    const r = await service.resolve(space, readParams(query));
    const c = await service.collection(r, collection, ctx);
    return { r, c };
  };

  /** Runs a handler with a request context whose held collections are released at the end. */
  const withContext =
    (
      fn: (ctx: RequestContext, p: Parameters<Route['handler']>[0]) => Promise<HttpResult>,
    ): Route['handler'] =>
    async (p) => {
      const ctx = requestContext();
      try {
        return await fn(ctx, p);
      } finally {
        for (const release of ctx.held.splice(0)) release();
      }
    };

  const fitProjection = (c: LoadedCollection, requested: number): Fitted => {
    let byN = fits.get(c);
    if (!byN) {
      byN = new Map();
      fits.set(c, byN);
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
  };

  const round = (v: number) => Math.round(v * 1e5) / 1e5;

  return [
    {
      method: 'GET',
      path: `${base}/projection`,
      handler: withContext(async (ctx, { params, query }) => {
        const t0 = performance.now();
        const timings = ctx.timings;
        rejectUnknown(query, ['sample', 'fields', 'ids', 'points', 'version', 'consistency']);
        const sample = intParam(query.sample, 'sample', 1, PROJECTION_MAX_SAMPLE, PROJECTION_DEFAULT_SAMPLE);
        const points = query.points === undefined ? true : query.points === 'true';
        if (query.points !== undefined && query.points !== 'true' && query.points !== 'false')
          throw new BadRequestError('points: true or false');
        const ids = query.ids ? query.ids.split(',').filter((s) => s.length > 0) : [];
        if (ids.length > PROJECTION_MAX_IDS)
          throw new BadRequestError(`ids: at most ${PROJECTION_MAX_IDS} (got ${ids.length})`);
        for (const id of ids) assertItemId(id);
        const { r, c } = await open(params, query, ctx);
        const known = c.manifest.metadataFields ?? [];
        let fields: string[];
        if (query.fields === undefined) fields = scalarFields(c);
        else {
          fields = query.fields.split(',').filter((s) => s.length > 0);
          const unknown = fields.filter((f) => !known.includes(f));
          if (unknown.length)
            throw new BadRequestError(
              `fields: ${unknown.map((u) => JSON.stringify(u)).join(', ')} never occur in ${c.name} (it has ${known.join(', ') || 'no metadata'})`,
            );
        }
        const tf = performance.now();
        const f = fitProjection(c, sample);
        timings.fit = performance.now() - tf;
        const metaOf = (segment: number, label: number) => c.segments[segment]?.meta?.[label];
        const point = (id: string, x: number, y: number, segment: number, label: number) => {
          const m = pickFields(metaOf(segment, label), fields);
          return { id, x: round(x), y: round(y), ...(m ? { metadata: m } : {}) };
        };
        const extra: ReturnType<typeof point>[] = [];
        const missing: string[] = [];
        const cosine = c.manifest.metric === 'cosine';
        for (const id of ids) {
          const ref = c.lookup(id);
          if (!ref) {
            missing.push(id);
            continue;
          }
          const v = unitIfCosine(c.segments[ref.segment]!.index.getVector(ref.label), cosine);
          const [x, y] = project(f.pca, v);
          extra.push(point(id, x, y, ref.segment, ref.label));
        }
        return answer(
          {
            space: r.space,
            version: r.version,
            collection: c.name,
            metric: c.manifest.metric,
            dims: c.manifest.dims,
            count: c.manifest.count,
            sample: f.sampled,
            method: 'pca',
            explained: f.pca.explained.map(round),
            metadataFields: known,
            fields,
            ...(points
              ? {
                  points: f.refs.map((ref, i) =>
                    point(
                      ref.id,
                      f.coords[i * 2] as number,
                      f.coords[i * 2 + 1] as number,
                      ref.segment,
                      ref.label,
                    ),
                  ),
                }
              : {}),
            ...(ids.length ? { extra, missing } : {}),
          },
          timings,
          t0,
        );
      }),
    },
    {
      method: 'GET',
      path: `${base}/items`,
      handler: withContext(async (ctx, { params, query }) => {
        const t0 = performance.now();
        const timings = ctx.timings;
        rejectUnknown(query, ['prefix', 'field', 'limit', 'version', 'consistency']);
        if (query.prefix === undefined) throw new BadRequestError('prefix: required (it may be empty)');
        if (query.prefix.length > 256) throw new BadRequestError('prefix: at most 256 characters');
        const limit = intParam(query.limit, 'limit', 1, PREFIX_MAX_LIMIT, PREFIX_DEFAULT_LIMIT);
        const field = query.field ?? 'id';
        const { r, c } = await open(params, query, ctx);
        const known = c.manifest.metadataFields ?? [];
        if (field !== 'id' && !known.includes(field))
          throw new BadRequestError(
            `field: ${JSON.stringify(field)} never occurs in ${c.name} (it has id${known.length ? `, ${known.join(', ')}` : ''})`,
          );
        let byField = prefixIndexes.get(c);
        if (!byField) {
          byField = new Map();
          prefixIndexes.set(c, byField);
        }
        let index = byField.get(field);
        const flat = flatOf(c);
        if (!index) {
          const ti = performance.now();
          index = new PrefixIndex(
            field === 'id'
              ? flat.ids
              : flat.ids.map((_, i) => {
                  const { segment, label } = refOf(flat, i);
                  const v = c.segments[segment]?.meta?.[label]?.[field];
                  if (typeof v === 'string') return v;
                  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
                  if (Array.isArray(v))
                    return v.filter((x) => typeof x === 'string' || typeof x === 'number').map(String);
                  return undefined;
                }),
          );
          byField.set(field, index);
          timings.index = performance.now() - ti;
        }
        const ts = performance.now();
        const { hits, more } = index.search(query.prefix, limit);
        timings.search = performance.now() - ts;
        return answer(
          {
            space: r.space,
            version: r.version,
            collection: c.name,
            field,
            prefix: query.prefix,
            metadataFields: known,
            results: hits.map((h) => {
              const ref = refOf(flat, h.item);
              return {
                id: flat.ids[h.item] as string,
                value: h.value,
                metadata: c.segments[ref.segment]?.meta?.[ref.label] ?? null,
              };
            }),
            more,
          },
          timings,
          t0,
        );
      }),
    },
  ];
}
