import { BadRequestError } from './errors';
import { itemIdProblem, NAME_PATTERN, parseVersion } from './names';
import { bool, checkObject, FAIL, type FieldSpec, int, type ObjectSpec, oneOf } from './shape';

export const MAX_K = 1000;
export const MAX_EF = 10_000;
/** A query string's `exclude` is capped lower than a body's: URLs have lengths. */
export const MAX_EXCLUDE_GET = 100;
export const MAX_EXCLUDE_POST = 10_000;
export const MAX_BATCH_QUERIES = 100;
export const MAX_BATCH_RESULTS = 10_000;
export const MAX_VECTOR_DIMS = 4096;
export const MAX_IN_VALUES = 1000;

export type Scalar = string | number | boolean | null;
export type Range = { gte?: number; lte?: number };
export type Condition = Scalar | { in: Scalar[] } | Range;
export type Filter = Record<string, Condition>;

export interface SearchParams {
  k: number;
  ef?: number;
  target?: string;
  exclude: string[];
  excludeSeen: boolean;
  filter?: Filter;
  includeMetadata: boolean;
  /** Sharded collections only: accept an answer that names the shards that did not answer. */
  allowPartial?: boolean;
  version?: string;
  consistency: 'eventual' | 'strong';
}

const OPERATORS = ['in', 'gte', 'lte'] as const;

function isScalar(v: unknown): v is Scalar {
  return (
    v === null ||
    typeof v === 'string' ||
    typeof v === 'boolean' ||
    (typeof v === 'number' && Number.isFinite(v))
  );
}

const describe = (v: unknown) => (Array.isArray(v) ? 'an array' : v === null ? 'null' : typeof v);

/**
 * What is wrong with a filter, each problem named by its field and operator. Written by hand rather
 * than as a zod union because a union's error ("Invalid input") does not say which operator was wrong.
 */
export function filterProblems(raw: unknown): { path: (string | number)[]; message: string }[] {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    return [{ path: [], message: `must be an object of field: condition, got ${describe(raw)}` }];
  }
  const out: { path: (string | number)[]; message: string }[] = [];
  for (const [field, cond] of Object.entries(raw)) {
    if (field.length === 0) out.push({ path: [field], message: 'a field name cannot be empty' });
    if (isScalar(cond)) continue;
    if (typeof cond !== 'object' || cond === null || Array.isArray(cond)) {
      out.push({
        path: [field],
        message: `a condition is a string, number, boolean or null (equality), {"in":[…]} or {"gte":x,"lte":y}; got ${describe(cond)}`,
      });
      continue;
    }
    const ops = Object.keys(cond);
    const unknown = ops.filter((o) => !(OPERATORS as readonly string[]).includes(o));
    if (unknown.length) {
      out.push({
        path: [field, unknown[0] as string],
        message: `unknown operator ${JSON.stringify(unknown[0])}; the operators are "in", "gte" and "lte" (a plain value means equality)`,
      });
      continue;
    }
    if (ops.length === 0) {
      out.push({ path: [field], message: 'an empty condition; use {"in":[…]} or {"gte":x,"lte":y}' });
      continue;
    }
    const c = cond as Record<string, unknown>;
    if ('in' in c) {
      if (ops.length > 1) {
        out.push({ path: [field], message: '"in" cannot be combined with "gte"/"lte" in one condition' });
        continue;
      }
      const list = c.in;
      if (!Array.isArray(list) || list.length === 0 || list.length > MAX_IN_VALUES) {
        out.push({ path: [field, 'in'], message: `must be an array of 1–${MAX_IN_VALUES} values` });
      } else {
        const bad = list.findIndex((v) => !isScalar(v));
        if (bad >= 0)
          out.push({
            path: [field, 'in', bad],
            message: `values must be strings, finite numbers, booleans or null; got ${describe(list[bad])}`,
          });
      }
      continue;
    }
    for (const op of ['gte', 'lte'] as const) {
      if (op in c && (typeof c[op] !== 'number' || !Number.isFinite(c[op]))) {
        out.push({ path: [field, op], message: `must be a finite number, got ${describe(c[op])}` });
      }
    }
  }
  return out;
}

/** The largest finite float32: vectors are stored, and HNSW compares them, in float32. */
export const FLOAT32_MAX = 3.4028234663852886e38;

/** What is wrong with the first value of a vector that is not a finite float32, or undefined. */
export function vectorProblem(v: readonly number[]): { index: number; message: string } | undefined {
  for (let i = 0; i < v.length; i++) {
    // |x| ≤ FLOAT32_MAX exactly as the document's schema says (NaN and ±Infinity fail it too).
    if (!(Math.abs(v[i] as number) <= FLOAT32_MAX))
      return {
        index: i,
        message: `vector[${i}] is not a finite float32 (values must lie within ±${FLOAT32_MAX.toPrecision(8)})`,
      };
  }
  return undefined;
}

/** The zod schemas of these requests (./query-schemas), loaded by the first request the checks here do not pass. */
export const loadQuerySchemas = () => import('./query-schemas');

/** One entry of a batch: an item's neighbours (`item`) or a vector's (`vector`); version is the batch's. */
export interface BatchEntry {
  collection: string;
  item?: string | undefined;
  vector?: number[] | undefined;
  k: number;
  ef?: number | undefined;
  target?: string | undefined;
  exclude: string[];
  excludeSeen: boolean;
  filter?: Filter | undefined;
  includeMetadata: boolean;
  allowPartial: boolean;
}

// The hand-written twins of the schemas in ./query-schemas: same fields, same order, same defaults.
const nameCheck = (v: unknown) => (typeof v === 'string' && NAME_PATTERN.test(v) ? v : FAIL);
const itemIdCheck = (v: unknown) => (itemIdProblem(v) === undefined ? v : FAIL);
const excludeCheck = (v: unknown) => {
  if (!Array.isArray(v) || v.length > MAX_EXCLUDE_POST) return FAIL;
  for (const id of v) if (itemIdProblem(id) !== undefined) return FAIL;
  return v.slice();
};
const filterCheck = (v: unknown) => (filterProblems(v).length === 0 ? v : FAIL);
/** A vector of 1–MAX_VECTOR_DIMS numbers, each finite as float32 (kept as given, not copied). */
const vectorCheck = (v: unknown) => {
  if (!Array.isArray(v) || v.length < 1 || v.length > MAX_VECTOR_DIMS) return FAIL;
  for (let i = 0; i < v.length; i++) {
    const x = v[i];
    if (!(typeof x === 'number' && Math.abs(x) <= FLOAT32_MAX)) return FAIL;
  }
  return v;
};
const searchFieldSpec: Record<string, FieldSpec> = {
  k: { check: int(1, MAX_K), dflt: () => 10 },
  ef: { check: int(1, MAX_EF) },
  target: { check: nameCheck },
  exclude: { check: excludeCheck, dflt: () => [] },
  excludeSeen: { check: bool, dflt: () => false },
  filter: { check: filterCheck },
  includeMetadata: { check: bool, dflt: () => true },
  allowPartial: { check: bool, dflt: () => false },
};
const versionFieldSpec: Record<string, FieldSpec> = {
  version: { check: (v) => (typeof v === 'string' && parseVersion(v) !== undefined ? v : FAIL) },
  consistency: { check: oneOf(['eventual', 'strong']), dflt: () => 'eventual' },
};
const SEARCH_BODY: ObjectSpec = { ...searchFieldSpec, ...versionFieldSpec };
const QUERY_BODY: ObjectSpec = { vector: { check: vectorCheck, required: true }, ...SEARCH_BODY };
const BATCH_ENTRY: ObjectSpec = {
  collection: { check: nameCheck, required: true },
  item: { check: itemIdCheck },
  vector: { check: (v) => (vectorCheck(v) === FAIL ? FAIL : (v as number[]).slice()) },
  ...searchFieldSpec,
};
const BATCH_BODY: ObjectSpec = {
  queries: {
    check: (v) => (Array.isArray(v) && v.length >= 1 && v.length <= MAX_BATCH_QUERIES ? v.slice() : FAIL),
    required: true,
  },
  ...versionFieldSpec,
};

/** searchBodySchema's answer for a body the hand-written check passes, else undefined. */
export function fastSearchBody(raw: unknown): SearchParams | undefined {
  return checkObject(raw, SEARCH_BODY, true) as SearchParams | undefined;
}

/** queryBodySchema's answer for a body the hand-written check passes (the vector not copied), else undefined. */
export function fastQueryBody(raw: unknown): (SearchParams & { vector: number[] }) | undefined {
  return checkObject(raw, QUERY_BODY, true) as (SearchParams & { vector: number[] }) | undefined;
}

/** batchEntrySchema's answer for an entry the hand-written check passes, else undefined. */
export function fastBatchEntry(raw: unknown): BatchEntry | undefined {
  const e = checkObject(raw, BATCH_ENTRY, true) as BatchEntry | undefined;
  return e && (e.item === undefined) !== (e.vector === undefined) ? e : undefined;
}

export interface BatchBody {
  queries: unknown[];
  version?: string | undefined;
  consistency: 'eventual' | 'strong';
}

/** batchBodySchema's answer for a body the hand-written check passes, else undefined. */
export function fastBatchBody(raw: unknown): BatchBody | undefined {
  return checkObject(raw, BATCH_BODY, true) as BatchBody | undefined;
}

/** Search parameters as searchBodySchema answers them; a 400 names its places from `where` ('body', 'query'). */
export async function parseSearchFields(raw: unknown, where: string): Promise<SearchParams> {
  const fast = fastSearchBody(raw);
  if (fast) return fast;
  const s = await loadQuerySchemas();
  return s.parseWith(s.searchBodySchema, raw, where);
}

/** Search parameters from a JSON body; an absent body means every default. */
export function parseSearchBody(body: unknown): Promise<SearchParams> {
  return parseSearchFields(body ?? {}, 'body');
}

/** A query body (vector + search parameters), as queryBodySchema answers it. */
export async function parseQueryBody(raw: unknown): Promise<SearchParams & { vector: number[] }> {
  const fast = fastQueryBody(raw);
  if (fast) return fast;
  const s = await loadQuerySchemas();
  return s.parseWith(s.queryBodySchema, raw, 'body');
}

/**
 * A query body as the vector and the search parameters apart: what `parseQueryBody` answers, split
 * (`{ vector, ...params }`). The common well-formed body is checked by hand straight into the two parts
 * (no object rest copy) and answered without a wait; anything else goes to queryBodySchema, so every
 * 400 is its own.
 */
export function parseQueryRequest(raw: unknown): QueryRequest | Promise<QueryRequest> {
  return fastQueryRequest(raw) ?? schemaQueryRequest(raw);
}

export interface QueryRequest {
  vector: number[];
  params: SearchParams;
}

async function schemaQueryRequest(raw: unknown): Promise<QueryRequest> {
  const s = await loadQuerySchemas();
  const { vector, ...params } = s.parseWith(s.queryBodySchema, raw, 'body');
  return { vector, params };
}

/** fastQueryBody's answer split into the vector and the rest (same keys, same order), else undefined. */
export function fastQueryRequest(raw: unknown): QueryRequest | undefined {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return undefined;
  const r = raw as Record<string, unknown>;
  for (const key of Object.keys(r)) if (!Object.hasOwn(QUERY_BODY, key)) return undefined;
  const v = Object.hasOwn(r, 'vector') ? r.vector : undefined;
  if (v === undefined || vectorCheck(v) === FAIL) return undefined;
  const params = checkObject(r, SEARCH_BODY, false) as SearchParams | undefined;
  return params && { vector: v as number[], params };
}

/** A batch body, as batchBodySchema answers it (entries are checked one by one: `parseBatchEntries`). */
export async function parseBatchBody(raw: unknown): Promise<BatchBody> {
  const fast = fastBatchBody(raw);
  if (fast) return fast;
  const s = await loadQuerySchemas();
  return s.parseWith(s.batchBodySchema, raw, 'body');
}

/** Each entry of a batch checked on its own: the entry, or its own 400 as batchEntrySchema gives it. */
export async function parseBatchEntries(
  queries: readonly unknown[],
): Promise<({ entry: BatchEntry } | { error: BadRequestError })[]> {
  const fast = queries.map(fastBatchEntry);
  const s = fast.includes(undefined) ? await loadQuerySchemas() : undefined;
  return queries.map((q, i) => {
    const e = fast[i];
    if (e) return { entry: e };
    const r = (s as Awaited<ReturnType<typeof loadQuerySchemas>>).batchEntrySchema.safeParse(q);
    return r.success
      ? { entry: r.data as BatchEntry }
      : {
          error: new BadRequestError(s?.zodDetail(r.error, 'query') ?? '', {
            extras: { errors: s?.zodErrors(r.error) ?? [] },
          }),
        };
  });
}

export type Predicate = (meta: Record<string, unknown> | null | undefined) => boolean;

/** Equality on a metadata value: a list-valued field matches when any element does. */
export function matchesValue(v: unknown, want: Scalar): boolean {
  return Array.isArray(v) ? v.includes(want) : v === want;
}

export function inRange(v: unknown, r: Range): boolean {
  return typeof v === 'number' && (r.gte === undefined || v >= r.gte) && (r.lte === undefined || v <= r.lte);
}

/** Checks a filter's fields against those the collection's metadata ever had; unknown fields are a 400. */
export function assertFilterFields(filter: Filter, knownFields: readonly string[]): void {
  const known = new Set(knownFields);
  for (const field of Object.keys(filter)) {
    if (!known.has(field)) {
      throw new BadRequestError(
        `filter: unknown field ${JSON.stringify(field)}; this collection's metadata fields are ${[...known].map((f) => JSON.stringify(f)).join(', ') || '(none)'}`,
        { extras: { field } },
      );
    }
  }
}

/** Compiles a filter against the fields a collection's metadata ever had; unknown fields or operators are a 400. */
export function compileFilter(
  filter: Filter | undefined,
  knownFields: readonly string[],
): Predicate | undefined {
  if (!filter || Object.keys(filter).length === 0) return undefined;
  const problems = filterProblems(filter);
  if (problems.length) {
    const p = problems[0] as { path: (string | number)[]; message: string };
    throw new BadRequestError(`filter.${p.path.join('.')}: ${p.message}`);
  }
  assertFilterFields(filter, knownFields);
  const tests: ((m: Record<string, unknown>) => boolean)[] = [];
  for (const [field, cond] of Object.entries(filter)) {
    if (cond === null || typeof cond !== 'object') {
      tests.push((m) => matchesValue(m[field], cond));
    } else if ('in' in cond) {
      const wanted = cond.in;
      tests.push((m) => wanted.some((w) => matchesValue(m[field], w)));
    } else {
      const range = cond as Range;
      tests.push((m) => inRange(m[field], range));
    }
  }
  return (meta) => {
    if (!meta) return false;
    for (const t of tests) if (!t(meta)) return false;
    return true;
  };
}
