/**
 * An exact k-nearest-neighbour scan written for the tests, independent of functions/core/search.ts:
 * plain loops over number arrays in float64, the whole list sorted, nothing clever. Distances are the
 * ones docs/contract.md defines (hnswlib's): cosine 1 − cos(a, b), ip 1 − a·b, l2 the squared
 * Euclidean distance. Best first, ties broken by id.
 */
import { expect } from 'vitest';

export type OracleMetric = 'cosine' | 'ip' | 'l2';

export interface Ranked {
  id: string;
  distance: number;
}

/** Row `r` of a flat row-major array, as plain numbers. */
export function row(vectors: ArrayLike<number>, dims: number, r: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < dims; i++) out.push(Number(vectors[r * dims + i]));
  return out;
}

/** Splits a flat row-major array into rows of plain numbers. */
export function rows(vectors: ArrayLike<number>, dims: number): number[][] {
  const out: number[][] = [];
  for (let r = 0; r * dims < vectors.length; r++) out.push(row(vectors, dims, r));
  return out;
}

function dot(a: readonly number[], b: readonly number[]): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += (a[i] as number) * (b[i] as number);
  return s;
}

export function oracleDistance(metric: OracleMetric, a: readonly number[], b: readonly number[]): number {
  if (a.length !== b.length) throw new Error(`oracle: ${a.length} against ${b.length} dims`);
  if (metric === 'l2') {
    let s = 0;
    for (let i = 0; i < a.length; i++) s += ((a[i] as number) - (b[i] as number)) ** 2;
    return s;
  }
  if (metric === 'ip') return 1 - dot(a, b);
  return 1 - dot(a, b) / (Math.sqrt(dot(a, a)) * Math.sqrt(dot(b, b)));
}

/**
 * Every allowed row ranked by distance to `query` (best first, ties by id); the first `k` when given.
 * `allow` sees the row number.
 */
export function exactKnn(
  metric: OracleMetric,
  data: readonly (readonly number[])[],
  ids: readonly string[],
  query: ArrayLike<number>,
  k = Number.POSITIVE_INFINITY,
  allow: (row: number) => boolean = () => true,
): Ranked[] {
  const q = Array.from(query, Number);
  const all: Ranked[] = [];
  for (let r = 0; r < data.length; r++) {
    if (!allow(r)) continue;
    all.push({ id: ids[r] as string, distance: oracleDistance(metric, data[r] as number[], q) });
  }
  all.sort((x, y) => x.distance - y.distance || (x.id < y.id ? -1 : x.id > y.id ? 1 : 0));
  return all.slice(0, k);
}

/** The ids of exactKnn. */
export function exactIds(...args: Parameters<typeof exactKnn>): string[] {
  return exactKnn(...args).map((n) => n.id);
}

/**
 * Asserts that `got` (ids, best first) is the exact top-`k` of `ranked` (the oracle's full or
 * longer ranking), allowing only reorderings among neighbours whose exact distances lie within `tol`
 * of each other (float32 storage and normalisation move distances by ~1e-7). With `tol` 0 the lists
 * must be identical, ties by id included.
 */
export function expectExactNeighbours(
  got: readonly string[],
  ranked: readonly Ranked[],
  k: number,
  tol = 1e-6,
): void {
  expect(got.length, 'as many results as asked for (or as exist)').toBe(Math.min(k, ranked.length));
  expect(new Set(got).size, 'no id twice').toBe(got.length);
  if (tol === 0) {
    expect(got).toEqual(ranked.slice(0, got.length).map((n) => n.id));
    return;
  }
  const at = new Map(ranked.map((n, i) => [n.id, i]));
  for (let i = 0; i < got.length; i++) {
    const j = at.get(got[i] as string);
    expect(j, `result ${i} (${got[i]}) is an allowed item`).toBeDefined();
    const want = (ranked[i] as Ranked).distance;
    const have = (ranked[j as number] as Ranked).distance;
    expect(
      Math.abs(have - want),
      `result ${i}: ${got[i]} at exact distance ${have}, the oracle's ${i}th is ${ranked[i]?.id} at ${want}`,
    ).toBeLessThanOrEqual(tol);
  }
}

/** The rows a JSONL release file holds, read back with JSON.parse: exactly what the service was given. */
export function parseJsonl(text: string): {
  ids: string[];
  rows: number[][];
  metadata: (Record<string, unknown> | undefined)[];
} {
  const parsed = text
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l) as { id: string; vector: number[]; metadata?: Record<string, unknown> });
  return {
    ids: parsed.map((p) => p.id),
    rows: parsed.map((p) => p.vector),
    metadata: parsed.map((p) => p.metadata),
  };
}
