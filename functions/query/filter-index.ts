import type { Condition, Filter, Range, Scalar } from '../core/query';
import { type LoadedSegment, segmentDerived } from '../snapshot/cache';

type Meta = (Record<string, unknown> | null)[] | undefined;

interface FieldPostings {
  /** value → labels whose field equals it (or, for a list-valued field, contains it), ascending. */
  eq: Map<Scalar, Int32Array>;
  /** Labels whose field is a number, sorted by that number, for ranges. */
  numValues: Float64Array;
  numLabels: Int32Array;
  bytes: number;
}

/** The labels a filter may allow, from the most selective of its conditions; every one still needs the full predicate. */
export interface Candidates {
  /** How many labels the chosen condition allows (an upper bound for the whole filter). */
  count: number;
  labels(): Int32Array;
}

const lowerBound = (a: Float64Array, x: number) => {
  let lo = 0;
  let hi = a.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((a[mid] as number) < x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
};
const upperBound = (a: Float64Array, x: number) => {
  let lo = 0;
  let hi = a.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((a[mid] as number) <= x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
};

/**
 * Per-field postings over one segment's metadata, built lazily the first time a filter names the
 * field (one pass over the segment). They give a filter's selectivity exactly and at once — which
 * decides between HNSW with a filter callback and an exact scan — and the candidate labels for the scan.
 */
export class FilterIndex {
  private readonly fields = new Map<string, FieldPostings>();

  constructor(
    private readonly meta: Meta,
    private readonly count: number,
  ) {}

  get bytes(): number {
    let b = 0;
    for (const f of this.fields.values()) b += f.bytes;
    return b;
  }

  private postings(field: string): FieldPostings {
    let p = this.fields.get(field);
    if (p) return p;
    const lists = new Map<Scalar, number[]>();
    const nums: { v: number; l: number }[] = [];
    const add = (value: unknown, label: number) => {
      if (value !== null && typeof value === 'object') return;
      if (value === undefined || (typeof value === 'number' && !Number.isFinite(value))) return;
      const key = value as Scalar;
      const list = lists.get(key);
      if (!list) lists.set(key, [label]);
      else if (list[list.length - 1] !== label) list.push(label);
    };
    for (let label = 0; label < this.count; label++) {
      const v = this.meta?.[label]?.[field];
      if (v === undefined) continue;
      if (Array.isArray(v)) for (const x of v) add(x, label);
      else {
        add(v, label);
        if (typeof v === 'number' && Number.isFinite(v)) nums.push({ v, l: label });
      }
    }
    nums.sort((a, b) => a.v - b.v);
    const eq = new Map<Scalar, Int32Array>();
    let bytes = 0;
    for (const [k, list] of lists) {
      const arr = Int32Array.from(list);
      eq.set(k, arr);
      bytes += arr.byteLength + 64;
    }
    const numValues = Float64Array.from(nums, (n) => n.v);
    const numLabels = Int32Array.from(nums, (n) => n.l);
    bytes += numValues.byteLength + numLabels.byteLength;
    p = { eq, numValues, numLabels, bytes };
    this.fields.set(field, p);
    return p;
  }

  private candidatesFor(field: string, cond: Condition): Candidates {
    const p = this.postings(field);
    if (cond === null || typeof cond !== 'object') {
      const list = p.eq.get(cond) ?? new Int32Array(0);
      return { count: list.length, labels: () => list };
    }
    if ('in' in cond) {
      const lists = [...new Set(cond.in)].map((v) => p.eq.get(v)).filter((l): l is Int32Array => !!l);
      const count = lists.reduce((a, l) => a + l.length, 0);
      return {
        count,
        labels: () => {
          if (lists.length === 1) return lists[0] as Int32Array;
          // A list-valued field can put one label under several wanted values: dedupe.
          const all = new Int32Array(count);
          let o = 0;
          for (const l of lists) {
            all.set(l, o);
            o += l.length;
          }
          all.sort();
          let w = 0;
          for (let i = 0; i < all.length; i++)
            if (i === 0 || all[i] !== all[i - 1]) all[w++] = all[i] as number;
          return all.subarray(0, w);
        },
      };
    }
    const r = cond as Range;
    const lo = r.gte === undefined ? 0 : lowerBound(p.numValues, r.gte);
    const hi = r.lte === undefined ? p.numValues.length : upperBound(p.numValues, r.lte);
    const count = Math.max(0, hi - lo);
    return { count, labels: () => p.numLabels.subarray(lo, lo + count) };
  }

  /** The candidates of the filter's most selective condition. */
  candidates(filter: Filter): Candidates {
    let best: Candidates | undefined;
    for (const [field, cond] of Object.entries(filter)) {
      const c = this.candidatesFor(field, cond);
      if (!best || c.count < best.count) best = c;
      if (best.count === 0) break;
    }
    return best ?? { count: this.count, labels: () => Int32Array.from({ length: this.count }, (_, i) => i) };
  }
}

/** The segment's filter postings, built on first use and counted in the snapshot cache's memory budget. */
export function segmentFilters(seg: LoadedSegment): FilterIndex {
  return segmentDerived(seg, 'filters', () => new FilterIndex(seg.meta, seg.ids.length));
}
