import type { SearchHit, VectorIndex } from '../core/ports';

/**
 * A segment whose items with identical vectors were indexed once (functions/builder/duplicates.ts).
 * hnswlib's neighbour heuristic collapses among identical points — each keeps one link — so a
 * duplicate-heavy graph strands searches; instead the index holds one representative per distinct
 * vector and the segment's labels are laid out so that a representative's label L is followed by the
 * other members of its group, in id order: the group is [L, next representative's label).
 *
 * Searching finds representatives and expands each into its members (a filter is applied per member;
 * a representative is visited when any member passes), so results, exclusions, filters and k stay exact
 * and ties among identical items come out in id order.
 */
export class GroupedIndex implements VectorIndex {
  /** Representative labels, ascending. */
  private readonly starts: Int32Array;

  constructor(
    private readonly inner: VectorIndex,
    /** Items in the segment (every label), not only the representatives. */
    readonly count: number,
    representatives: ArrayLike<number>,
  ) {
    this.starts = Int32Array.from(representatives).sort();
    if (this.starts.length > 0 && this.starts[0] !== 0)
      throw new Error(`a grouped index must hold label 0; its first label is ${this.starts[0]}`);
    if ((this.starts.at(-1) ?? 0) >= count)
      throw new Error(`a grouped index holds label ${this.starts.at(-1)} beyond its ${count} items`);
  }

  get dims(): number {
    return this.inner.dims;
  }

  /** Index in `starts` of the group holding `label`. */
  private groupOf(label: number): number {
    let lo = 0;
    let hi = this.starts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if ((this.starts[mid] as number) <= label) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  }

  private end(group: number): number {
    return group + 1 < this.starts.length ? (this.starts[group + 1] as number) : this.count;
  }

  search(query: number[], k: number, ef: number, filter?: (label: number) => boolean): SearchHit[] {
    if (k <= 0) return [];
    const visit = filter
      ? (rep: number) => {
          const end = this.end(this.groupOf(rep));
          for (let l = rep; l < end; l++) if (filter(l)) return true;
          return false;
        }
      : undefined;
    const reps = this.inner.search(query, Math.min(k, this.starts.length), ef, visit);
    const out: SearchHit[] = [];
    // Representatives come best first: once k items are in, stop at the first one further than the k-th.
    let kth = Number.POSITIVE_INFINITY;
    for (const r of reps) {
      if (out.length >= k && r.distance > kth) break;
      const end = this.end(this.groupOf(r.label));
      let taken = 0;
      for (let l = r.label; l < end && taken < k; l++) {
        if (filter && !filter(l)) continue;
        out.push({ label: l, distance: r.distance });
        taken++;
      }
      if (out.length >= k && kth === Number.POSITIVE_INFINITY) kth = (out[k - 1] as SearchHit).distance;
    }
    return out;
  }

  getVector(label: number): number[] {
    return this.inner.getVector(this.starts[this.groupOf(label)] as number);
  }
}
