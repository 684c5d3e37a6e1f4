/**
 * The zod schemas of the search requests, and zod errors as 400s. Loaded on demand (`loadQuerySchemas`
 * in ./query): the hand-written checks there answer the common well-formed requests, and only a request
 * they do not pass comes here, for exactly the result or the 400 this schema gives. Nothing on a
 * function's init path imports this module statically (test/infra/init-closure.test.ts).
 */
import * as z from 'zod';
import { BadRequestError } from './errors';
import { itemIdProblem, NAME_PATTERN, parseVersion } from './names';
import {
  type Filter,
  filterProblems,
  MAX_BATCH_QUERIES,
  MAX_EF,
  MAX_EXCLUDE_POST,
  MAX_K,
  MAX_VECTOR_DIMS,
  vectorProblem,
} from './query';

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
  /** Sharded collections: answer from the shards that answered, naming the missing ones (default: 503). */
  allowPartial: z.boolean().default(false),
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
