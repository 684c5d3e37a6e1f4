import * as z from 'zod';
import { BadRequestError } from './errors';
import { itemIdProblem, NAME_PATTERN, parseVersion } from './names';

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

const filterSchema = z
  .unknown()
  .superRefine((v, ctx) => {
    for (const p of filterProblems(v)) ctx.addIssue({ code: 'custom', message: p.message, path: p.path });
  })
  .transform((v) => v as Filter);

const itemId = z.string().superRefine((id, ctx) => {
  const p = itemIdProblem(id);
  if (p) ctx.addIssue({ code: 'custom', message: p });
});

const name = z.string().regex(NAME_PATTERN, { message: `must match ${NAME_PATTERN.source}` });
const version = z
  .string()
  .refine((v) => parseVersion(v) !== undefined, { message: 'must be "v" + a positive integer' });

/** The search fields shared by every search request (and by each entry of a batch). */
const searchFields = {
  k: z.number().int().min(1).max(MAX_K).default(10),
  ef: z.number().int().min(1).max(MAX_EF).optional(),
  target: name.optional(),
  exclude: z.array(itemId).max(MAX_EXCLUDE_POST).default([]),
  excludeSeen: z.boolean().default(false),
  filter: filterSchema.optional(),
  includeMetadata: z.boolean().default(true),
};

const versionFields = {
  version: version.optional(),
  consistency: z.enum(['eventual', 'strong']).default('eventual'),
};

/**
 * Search parameters in a JSON body (POST similar, query). Strict: a misspelt field ("exlude") is a 400
 * naming it rather than a silently ignored exclusion.
 */
export const searchBodySchema = z.object({ ...searchFields, ...versionFields }).strict();

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

/**
 * A vector: numbers that are finite *as float32* (JSON has no NaN, but 1e999 parses to Infinity and
 * 1e39 is a finite double that becomes Infinity in float32).
 */
export const vectorSchema = z
  .array(z.number({ message: 'must be a finite number' }), {
    message: 'vector must be an array of numbers',
  })
  .min(1, { message: 'vector is empty' })
  .max(MAX_VECTOR_DIMS, { message: `vector has more than ${MAX_VECTOR_DIMS} values` })
  .superRefine((v, ctx) => {
    const bad = vectorProblem(v);
    if (bad) ctx.addIssue({ code: 'custom', message: bad.message, path: [bad.index] });
  });

export const queryBodySchema = z.object({ vector: vectorSchema, ...searchFields, ...versionFields }).strict();

/** One entry of a batch: an item's neighbours (`item`) or a vector's (`vector`); version is the batch's. */
export const batchEntrySchema = z
  .object({ collection: name, item: itemId.optional(), vector: vectorSchema.optional(), ...searchFields })
  .strict()
  .superRefine((e, ctx) => {
    if ((e.item === undefined) === (e.vector === undefined))
      ctx.addIssue({ code: 'custom', message: 'give exactly one of "item" and "vector"', path: [] });
  });

export const batchBodySchema = z
  .object({
    queries: z
      .array(z.unknown(), { message: 'queries must be an array' })
      .min(1, { message: 'a batch needs at least one query' })
      .max(MAX_BATCH_QUERIES, { message: `a batch holds at most ${MAX_BATCH_QUERIES} queries` }),
    ...versionFields,
  })
  .strict();

export type BatchEntry = z.infer<typeof batchEntrySchema>;

/** `filter.genre.in[0]`, `vector[3]`: a path as a person writes it. */
function pathText(path: readonly PropertyKey[]): string {
  return path.map((p, i) => (typeof p === 'number' ? `[${p}]` : `${i ? '.' : ''}${String(p)}`)).join('');
}

/** A readable one-line account of a zod error, each issue named by its path (`filter.genre.eq: …`). */
export function zodDetail(error: z.ZodError, where = 'request'): string {
  const text = error.issues.slice(0, 5).map((i) => {
    const at = i.path.length ? pathText(i.path) : where;
    if (i.code === 'unrecognized_keys') {
      const keys = i.keys.map((k) => JSON.stringify(k)).join(', ');
      return `${at}: unknown field${i.keys.length > 1 ? 's' : ''} ${keys}`;
    }
    // A message that names its own place (`vector[3] is not …`) is not prefixed again.
    return i.message.startsWith(`${at} `) ? i.message : `${at}: ${i.message}`;
  });
  const more = error.issues.length > 5 ? ` (and ${error.issues.length - 5} more)` : '';
  return text.join('; ') + more;
}

/** Problem extras for a zod error: each issue's path and message, nothing of the input echoed back. */
export function zodErrors(error: z.ZodError): { path: (string | number)[]; message: string }[] {
  return error.issues.slice(0, 20).map((i) => ({
    path: i.path.map((p) => (typeof p === 'symbol' ? String(p) : p)),
    message: i.message,
  }));
}

export function parseWith<T>(schema: z.ZodType<T>, raw: unknown, where: string): T {
  const r = schema.safeParse(raw);
  if (!r.success)
    throw new BadRequestError(zodDetail(r.error, where), { extras: { errors: zodErrors(r.error) } });
  return r.data;
}

/** Search parameters from a JSON body; an absent body means every default. */
export function parseSearchBody(body: unknown): SearchParams {
  return parseWith(searchBodySchema, body ?? {}, 'body');
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
