/**
 * Items with identical vectors (cold-start items sharing a default embedding, re-uploaded copies):
 * found by hashing each row's float32 bits and comparing the rows whose hashes agree, so a hash
 * collision never merges two different vectors. Each segment indexes one representative per group
 * (adapters/grouped-index.ts explains why and how the query side expands it).
 */

export interface DuplicateGroups {
  /** Row → the first row with the identical vector (itself when it is the first). */
  first: Int32Array;
  /** Row → how many rows share its vector (read at the first row of each group). */
  size: Int32Array;
  /** Groups of two or more identical vectors. */
  groups: number;
  /** Rows in the largest group (1 when no two vectors are identical). */
  largest: number;
}

export function findDuplicates(vectors: Float32Array, dims: number, rows: number): DuplicateGroups {
  const bits = new Uint32Array(vectors.buffer, vectors.byteOffset, rows * dims);
  const equal = (a: number, b: number) => {
    const oa = a * dims;
    const ob = b * dims;
    for (let d = 0; d < dims; d++) if (bits[oa + d] !== bits[ob + d]) return false;
    return true;
  };
  const first = new Int32Array(rows);
  const size = new Int32Array(rows);
  const byHash = new Map<number, number>();
  let collided: Map<number, number[]> | undefined;
  for (let r = 0; r < rows; r++) {
    let h = 0x811c9dc5;
    const o = r * dims;
    for (let d = 0; d < dims; d++) h = Math.imul(h ^ (bits[o + d] as number), 0x01000193);
    let f = byHash.get(h);
    if (f === undefined) byHash.set(h, r);
    else if (!equal(f, r)) {
      collided ??= new Map();
      const others = collided.get(h) ?? [];
      f = others.find((x) => equal(x, r));
      if (f === undefined) {
        others.push(r);
        collided.set(h, others);
      }
    }
    const g = f ?? r;
    first[r] = g;
    size[g] = (size[g] as number) + 1;
  }
  let groups = 0;
  let largest = rows > 0 ? 1 : 0;
  for (let r = 0; r < rows; r++) {
    const s = size[r] as number;
    if (s > 1) {
      groups++;
      if (s > largest) largest = s;
    }
  }
  return { first, size, groups, largest };
}

export interface SegmentLayout {
  /** Label → table row. Members of a group are contiguous, in id order, the first one indexed. */
  rows: Int32Array;
  /** Labels that go into the HNSW index (one per distinct vector), ascending. */
  indexed: Int32Array;
}

const byId = (ids: readonly string[]) => (a: number, b: number) => {
  const x = ids[a] as string;
  const y = ids[b] as string;
  return x < y ? -1 : x > y ? 1 : 0;
};

/**
 * The label layout of rows [start, end): in row order, except that a group of identical vectors is
 * gathered at its first row's place, its members sorted by id. Undefined when the segment has no two
 * identical vectors (labels are then rows − start, as always).
 */
export function segmentLayout(
  dup: DuplicateGroups,
  ids: readonly string[],
  start: number,
  end: number,
): SegmentLayout | undefined {
  const members = new Map<number, number[]>();
  for (let r = start; r < end; r++) {
    const g = dup.first[r] as number;
    if ((dup.size[g] as number) < 2) continue;
    const list = members.get(g);
    if (list) list.push(r);
    else members.set(g, [r]);
  }
  for (const [g, list] of members) if (list.length < 2) members.delete(g);
  if (members.size === 0) return undefined;
  const rows = new Int32Array(end - start);
  const indexed: number[] = [];
  const compare = byId(ids);
  const placed = new Set<number>();
  let label = 0;
  for (let r = start; r < end; r++) {
    const g = dup.first[r] as number;
    const list = members.get(g);
    if (!list) {
      indexed.push(label);
      rows[label++] = r;
      continue;
    }
    if (placed.has(g)) continue; // placed with its group
    placed.add(g);
    list.sort(compare);
    indexed.push(label);
    for (const m of list) rows[label++] = m;
  }
  return { rows, indexed: Int32Array.from(indexed) };
}
