/**
 * How much two versions of a space disagree about neighbourhoods: for a sample of items present in
 * both, the overlap@k of their neighbour lists, the items that changed most, and a summary a person
 * reads before activating a candidate. Pure: the query side fetches the lists (diff-route.ts), the
 * CLI and the explorer page show the same numbers.
 */
import { matchNeighbours, type Neighbour, overlapAt } from './search';

export const DIFF_DEFAULTS = Object.freeze({ sample: 200, k: 10, top: 10 });
export const DIFF_LIMITS = Object.freeze({ sample: 5000, k: 100, top: 100 });

/** One sampled item: its k neighbours in each version (best first, the item itself left out). */
export interface NeighbourPair {
  id: string;
  from: readonly string[];
  to: readonly string[];
  /**
   * Each neighbour's distance to the item in its own version, index for index with `from` and `to`.
   * With both, tied neighbours count as shared (core/search.ts matchNeighbours); without, ids alone.
   */
  fromDistances?: readonly number[];
  toDistances?: readonly number[];
}

export interface ItemDiff {
  id: string;
  /** |from ∩ to| / k, a neighbour of `to` tied (same distance within ε) with an unmatched one of `from` counting as shared. */
  overlap: number;
  /** Neighbours in `from` that are gone in `to` (and not matched by a tie), in `from`'s order. */
  removed: string[];
  /** Neighbours in `to` that were not in `from` (and not matched by a tie), in `to`'s order. */
  added: string[];
}

export interface OverlapBucket {
  /** Overlap rounded to a tenth (0, 0.1, …, 1). */
  overlap: number;
  items: number;
}

export interface DiffSummary {
  /** Items whose lists were compared. */
  sampled: number;
  meanOverlap: number;
  medianOverlap: number;
  /** 10th percentile: one item in ten kept at most this share of its neighbours. */
  p10Overlap: number;
  /** Share of sampled items whose k neighbours are the same set in both versions. */
  unchanged: number;
  /** Share of sampled items that kept less than half of their neighbours. */
  mostlyChanged: number;
  histogram: OverlapBucket[];
  /** Lowest overlap first, ties by id. */
  mostChanged: ItemDiff[];
}

/** An item as the diff names it: its id and, when its metadata has one, a human label. */
export interface Labelled {
  id: string;
  label?: string;
}

/** One collection's part of `GET /v1/spaces/{space}/diff` (the CLI and the page read the same). */
export interface CollectionDiff extends Omit<DiffSummary, 'mostChanged'> {
  collection: string;
  target?: string;
  from: { count: number; dims: number; metric: string } | null;
  to: { count: number; dims: number; metric: string } | null;
  inBoth: number;
  onlyFrom: number;
  onlyTo: number;
  mostChanged: (Labelled & { overlap: number; removed: Labelled[]; added: Labelled[] })[];
  text: string;
}

export interface DiffAnswer {
  space: string;
  from: string;
  to: string;
  k: number;
  sample: number;
  compatible: boolean;
  incompatibilities: string[];
  collections: CollectionDiff[];
  summary: string;
}

export function itemDiff(pair: NeighbourPair, k: number): ItemDiff {
  const from = pair.from.slice(0, k);
  const to = pair.to.slice(0, k);
  const fd = pair.fromDistances;
  const td = pair.toDistances;
  if (fd && td && fd.length >= from.length && td.length >= to.length) {
    const a: Neighbour[] = from.map((id, i) => ({ id, distance: fd[i] as number }));
    const b: Neighbour[] = to.map((id, i) => ({ id, distance: td[i] as number }));
    const m = matchNeighbours(a, b);
    return {
      id: pair.id,
      overlap: k === 0 ? 1 : round(m.shared / Math.min(k, Math.max(from.length, to.length, 1)), 4),
      removed: m.onlyA.map((n) => n.id),
      added: m.onlyB.map((n) => n.id),
    };
  }
  const inFrom = new Set(from);
  const inTo = new Set(to);
  return {
    id: pair.id,
    overlap: round(overlapAt(from, to, k), 4),
    removed: from.filter((id) => !inTo.has(id)),
    added: to.filter((id) => !inFrom.has(id)),
  };
}

function round(x: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

/** The q-quantile of ascending values (nearest rank). */
function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return 1;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[i] as number;
}

export function summariseDiff(
  pairs: readonly NeighbourPair[],
  k: number,
  top: number = DIFF_DEFAULTS.top,
): DiffSummary {
  const items = pairs.map((p) => itemDiff(p, k));
  const overlaps = items.map((d) => d.overlap).sort((a, b) => a - b);
  const n = overlaps.length;
  const mean = n === 0 ? 1 : overlaps.reduce((a, b) => a + b, 0) / n;
  const histogram: OverlapBucket[] = Array.from({ length: 11 }, (_, i) => ({ overlap: i / 10, items: 0 }));
  for (const o of overlaps) (histogram[Math.round(o * 10)] as OverlapBucket).items++;
  const mostChanged = [...items]
    .sort((a, b) => a.overlap - b.overlap || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
    .slice(0, top)
    .filter((d) => d.overlap < 1);
  return {
    sampled: n,
    meanOverlap: round(mean, 4),
    medianOverlap: round(quantile(overlaps, 0.5), 4),
    p10Overlap: round(quantile(overlaps, 0.1), 4),
    unchanged: n === 0 ? 1 : round(overlaps.filter((o) => o >= 1).length / n, 4),
    mostlyChanged: n === 0 ? 0 : round(overlaps.filter((o) => o < 0.5).length / n, 4),
    histogram,
    mostChanged,
  };
}

/** A word for the size of a change, from the mean overlap@k (a reading aid, not a gate). */
export function changeLevel(meanOverlap: number): 'none' | 'small' | 'moderate' | 'large' | 'complete' {
  if (meanOverlap >= 0.999) return 'none';
  if (meanOverlap >= 0.8) return 'small';
  if (meanOverlap >= 0.5) return 'moderate';
  if (meanOverlap > 0.05) return 'large';
  return 'complete';
}

const pct = (x: number) => `${Math.round(x * 100)}%`;

/** One sentence per collection, e.g. for the CLI and the page header. */
export function describeDiff(
  collection: string,
  s: Pick<DiffSummary, 'sampled' | 'meanOverlap' | 'medianOverlap' | 'unchanged' | 'mostlyChanged'>,
  k: number,
  inBoth: number,
): string {
  if (s.sampled === 0) return `${collection}: no item is in both versions, nothing to compare`;
  return (
    `${collection}: ${changeLevel(s.meanOverlap)} change — mean overlap@${k} ${s.meanOverlap.toFixed(2)} ` +
    `(median ${s.medianOverlap.toFixed(2)}) over ${s.sampled} of ${inBoth} items in both; ` +
    `${pct(s.unchanged)} kept all ${k} neighbours, ${pct(s.mostlyChanged)} kept fewer than half`
  );
}

/** A short human label from an item's metadata: the first of name, title, label that is a string. */
export function labelOf(metadata: Record<string, unknown> | null | undefined): string | undefined {
  if (!metadata) return undefined;
  for (const f of ['name', 'title', 'label']) {
    const v = metadata[f];
    if (typeof v === 'string' && v !== '') return v;
  }
  return undefined;
}
