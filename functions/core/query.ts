import { z } from 'zod';
import { BadRequestError } from './errors';
import { itemIdProblem, NAME_PATTERN, parseVersion } from './names';

export const MAX_K = 1000;
export const MAX_EF = 10_000;
export const MAX_EXCLUDE_GET = 100;
export const MAX_EXCLUDE_POST = 10_000;

export type Scalar = string | number | boolean | null;
export type Condition = Scalar | { in: Scalar[] } | { gte?: number; lte?: number };
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

const scalar = z.union([z.string(), z.number(), z.boolean(), z.null()]);
const condition = z.union([
  scalar,
  z.object({ in: z.array(scalar).min(1).max(1000) }).strict(),
  z
    .object({ gte: z.number().optional(), lte: z.number().optional() })
    .strict()
    .refine((c) => c.gte !== undefined || c.lte !== undefined, { message: 'a range needs gte or lte' }),
]);
export const filterSchema = z.record(z.string().min(1), condition);

const itemId = z.string().superRefine((id, ctx) => {
  const p = itemIdProblem(id);
  if (p) ctx.addIssue({ code: 'custom', message: p });
});

const name = z.string().regex(NAME_PATTERN, { message: `must match ${NAME_PATTERN.source}` });
const version = z
  .string()
  .refine((v) => parseVersion(v) !== undefined, { message: 'must be "v" + a positive integer' });

/** Search parameters in a JSON body (POST similar, query, batch entries). */
export const searchBodySchema = z.object({
  k: z.number().int().min(1).max(MAX_K).default(10),
  ef: z.number().int().min(1).max(MAX_EF).optional(),
  target: name.optional(),
  exclude: z.array(itemId).max(MAX_EXCLUDE_POST).default([]),
  excludeSeen: z.boolean().default(false),
  filter: filterSchema.optional(),
  includeMetadata: z.boolean().default(true),
  version: version.optional(),
  consistency: z.enum(['eventual', 'strong']).default('eventual'),
});

export function zodDetail(error: z.ZodError, where = 'request'): string {
  return error.issues
    .slice(0, 5)
    .map((i) => `${i.path.length ? i.path.join('.') : where}: ${i.message}`)
    .join('; ');
}

export function parseSearchBody(
  body: unknown,
  extra: z.ZodRawShape = {},
): SearchParams & Record<string, unknown> {
  const r = searchBodySchema.extend(extra).safeParse(body ?? {});
  if (!r.success)
    throw new BadRequestError(zodDetail(r.error, 'body'), { extras: { errors: r.error.issues } });
  return r.data as SearchParams & Record<string, unknown>;
}

function intParam(
  q: Record<string, string | undefined>,
  key: string,
  min: number,
  max: number,
): number | undefined {
  const raw = q[key];
  if (raw === undefined) return undefined;
  if (!/^-?\d+$/.test(raw.trim()))
    throw new BadRequestError(`${key}: expected an integer, got ${JSON.stringify(raw)}`);
  const n = Number(raw);
  if (n < min || n > max) throw new BadRequestError(`${key}: must be between ${min} and ${max}, got ${n}`);
  return n;
}

function boolParam(q: Record<string, string | undefined>, key: string, fallback: boolean): boolean {
  const raw = q[key];
  if (raw === undefined || raw === '') return fallback;
  if (raw === 'true' || raw === '1') return true;
  if (raw === 'false' || raw === '0') return false;
  throw new BadRequestError(`${key}: expected true or false, got ${JSON.stringify(raw)}`);
}

/** Search parameters from a query string (GET similar). */
export function parseSearchQuery(q: Record<string, string | undefined>): SearchParams {
  const exclude = q.exclude ? q.exclude.split(',').filter((s) => s.length > 0) : [];
  if (exclude.length > MAX_EXCLUDE_GET) {
    throw new BadRequestError(
      `exclude: at most ${MAX_EXCLUDE_GET} ids in a query string (got ${exclude.length}); POST the request with an "exclude" array for up to ${MAX_EXCLUDE_POST}`,
    );
  }
  let filter: unknown;
  if (q.filter !== undefined) {
    try {
      filter = JSON.parse(q.filter);
    } catch {
      throw new BadRequestError('filter: not valid JSON (URL-encode a JSON object)');
    }
  }
  const consistency = q.consistency ?? 'eventual';
  if (consistency !== 'eventual' && consistency !== 'strong') {
    throw new BadRequestError(
      `consistency: must be "strong" or "eventual", got ${JSON.stringify(consistency)}`,
    );
  }
  return parseSearchBody({
    k: intParam(q, 'k', 1, MAX_K),
    ef: intParam(q, 'ef', 1, MAX_EF),
    target: q.target,
    exclude,
    excludeSeen: boolParam(q, 'excludeSeen', false),
    filter,
    includeMetadata: boolParam(q, 'includeMetadata', true),
    version: q.version,
    consistency,
  });
}

/** Compiles a filter against the fields a collection's metadata ever had; unknown fields or operators are a 400. */
export function compileFilter(
  filter: Filter | undefined,
  knownFields: readonly string[],
): ((meta: Record<string, unknown> | null | undefined) => boolean) | undefined {
  if (!filter || Object.keys(filter).length === 0) return undefined;
  const known = new Set(knownFields);
  const tests: ((m: Record<string, unknown>) => boolean)[] = [];
  for (const [field, cond] of Object.entries(filter)) {
    if (!known.has(field)) {
      throw new BadRequestError(
        `filter: unknown field ${JSON.stringify(field)}; this collection's metadata fields are ${[...known].join(', ') || '(none)'}`,
      );
    }
    const matches = (v: unknown, want: Scalar) => (Array.isArray(v) ? v.includes(want) : v === want);
    if (cond === null || typeof cond !== 'object') {
      tests.push((m) => matches(m[field], cond));
    } else if ('in' in cond) {
      const wanted = cond.in;
      tests.push((m) => wanted.some((w) => matches(m[field], w)));
    } else {
      const { gte, lte } = cond as { gte?: number; lte?: number };
      tests.push((m) => {
        const v = m[field];
        return typeof v === 'number' && (gte === undefined || v >= gte) && (lte === undefined || v <= lte);
      });
    }
  }
  return (meta) => {
    if (!meta) return false;
    for (const t of tests) if (!t(meta)) return false;
    return true;
  };
}
