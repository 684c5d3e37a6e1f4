/** Prefix search over ids or a metadata field: case-, accent- and width-insensitive, word starts too. */
import type { LoadedCollection } from '../../snapshot/cache';
import { flatOf, refOf } from './sampling';

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

/** Prefix indexes per loaded collection and field, built on first use and gone with the collection. */
export class PrefixIndexes {
  private readonly byCollection = new WeakMap<LoadedCollection, Map<string, PrefixIndex>>();

  /** The index of `field` ('id' or a metadata field); `builtMs` when this call had to build it. */
  of(c: LoadedCollection, field: string): { index: PrefixIndex; builtMs?: number } {
    let byField = this.byCollection.get(c);
    if (!byField) {
      byField = new Map();
      this.byCollection.set(c, byField);
    }
    const had = byField.get(field);
    if (had) return { index: had };
    const t0 = performance.now();
    const flat = flatOf(c);
    const index = new PrefixIndex(
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
    return { index, builtMs: performance.now() - t0 };
  }
}
