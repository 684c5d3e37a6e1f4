/**
 * Query strings → typed requests: the edge's half of validation (integers, booleans, JSON in a
 * parameter, lists, unknown names). Ranges and shapes are then checked by the core's schemas.
 */
import { DIFF_DEFAULTS, DIFF_LIMITS } from '../core/diff';
import { BadRequestError } from '../core/errors';
import { assertVersion } from '../core/names';
import {
  MAX_EF,
  MAX_EXCLUDE_GET,
  MAX_EXCLUDE_POST,
  MAX_K,
  parseSearchFields,
  type SearchParams,
} from '../core/query';

export type QueryString = Record<string, string | undefined>;

const clip = (s: string) => JSON.stringify(s.slice(0, 40));

/** A misspelt parameter (`exlude`) is a 400 naming it, never silently ignored. */
export function rejectUnknownParams(q: QueryString, known: Iterable<string>): void {
  const names = [...known];
  const unknown = Object.keys(q).filter((key) => !names.includes(key));
  if (unknown.length) {
    throw new BadRequestError(
      `unknown query parameter${unknown.length > 1 ? 's' : ''} ${unknown.slice(0, 5).map(clip).join(', ')}; ${names.length ? `this route takes: ${names.join(', ')}` : 'this route takes none'}`,
    );
  }
}

/** An integer parameter for the search routes: absent is undefined; says what it got when it is not one. */
export function intParam(q: QueryString, key: string, min: number, max: number): number | undefined {
  const raw = q[key];
  if (raw === undefined) return undefined;
  if (!/^-?\d+$/.test(raw.trim())) throw new BadRequestError(`${key}: expected an integer, got ${clip(raw)}`);
  const n = Number(raw);
  if (n < min || n > max) throw new BadRequestError(`${key}: must be between ${min} and ${max}, got ${n}`);
  return n;
}

/** An integer parameter with a default (explore and listing routes). */
export function intOr(raw: string | undefined, name: string, min: number, max: number, dflt: number): number {
  if (raw === undefined) return dflt;
  const v = Number(raw);
  if (raw.trim() === '' || !Number.isInteger(v) || v < min || v > max)
    throw new BadRequestError(`${name}: an integer ${min}–${max}`);
  return v;
}

/** `true`/`1`, `false`/`0`; empty or absent is the fallback. */
export function boolParam(q: QueryString, key: string, fallback: boolean): boolean {
  const raw = q[key];
  if (raw === undefined || raw === '') return fallback;
  if (raw === 'true' || raw === '1') return true;
  if (raw === 'false' || raw === '0') return false;
  throw new BadRequestError(`${key}: expected true or false, got ${clip(raw)}`);
}

/** A comma-separated list; empty items dropped. */
export function listParam(raw: string | undefined): string[] {
  return raw ? raw.split(',').filter((s) => s.length > 0) : [];
}

export function consistencyParam(q: QueryString): 'eventual' | 'strong' {
  const consistency = q.consistency ?? 'eventual';
  if (consistency !== 'eventual' && consistency !== 'strong')
    throw new BadRequestError(`consistency: must be "strong" or "eventual", got ${clip(consistency)}`);
  return consistency;
}

/** `version` and `consistency`, the two parameters that choose which version a read route answers from. */
export function versionParams(q: QueryString): { version?: string; consistency: 'eventual' | 'strong' } {
  const consistency = consistencyParam(q);
  return { ...(q.version !== undefined ? { version: assertVersion(q.version) } : {}), consistency };
}

export const SEARCH_QUERY_KEYS: ReadonlySet<string> = new Set([
  'k',
  'ef',
  'target',
  'exclude',
  'excludeSeen',
  'filter',
  'includeMetadata',
  'allowPartial',
  'version',
  'consistency',
]);

/** Search parameters from a query string (GET similar); then the same schema as a body checks them. */
export async function parseSearchQuery(
  q: QueryString,
  allowed: ReadonlySet<string> = SEARCH_QUERY_KEYS,
): Promise<SearchParams> {
  rejectUnknownParams(q, allowed);
  const exclude = listParam(q.exclude);
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
  const consistency = consistencyParam(q);
  return parseSearchFields(
    {
      k: intParam(q, 'k', 1, MAX_K),
      ef: intParam(q, 'ef', 1, MAX_EF),
      target: q.target,
      exclude,
      excludeSeen: boolParam(q, 'excludeSeen', false),
      filter,
      includeMetadata: boolParam(q, 'includeMetadata', true),
      allowPartial: boolParam(q, 'allowPartial', false),
      version: q.version,
      consistency,
    },
    'query',
  );
}

export const DIFF_QUERY_KEYS = ['from', 'to', 'sample', 'k', 'top', 'collection', 'target'] as const;

export interface DiffParams {
  from?: string;
  to: string;
  sample: number;
  k: number;
  top: number;
  collection?: string;
  target?: string;
}

/** Reads `from`, `to`, `sample`, `k`, `top`, `collection`, `target` from a query string. */
export function parseDiffQuery(q: Record<string, string | undefined>): DiffParams {
  rejectUnknownParams(q, DIFF_QUERY_KEYS);
  const int = (key: 'sample' | 'k' | 'top', min: number): number => {
    const raw = q[key];
    if (raw === undefined || raw === '') return DIFF_DEFAULTS[key];
    if (!/^\d+$/.test(raw.trim()))
      throw new BadRequestError(`${key}: expected an integer, got ${JSON.stringify(raw.slice(0, 40))}`);
    const n = Number(raw);
    const max = DIFF_LIMITS[key];
    if (n < min || n > max) throw new BadRequestError(`${key}: must be between ${min} and ${max}, got ${n}`);
    return n;
  };
  if (!q.to) throw new BadRequestError('to: required (the candidate version, e.g. to=v2)');
  if (q.target !== undefined && q.collection === undefined)
    throw new BadRequestError('target: needs collection (compare collection → target neighbours)');
  return {
    ...(q.from ? { from: q.from } : {}),
    to: q.to,
    sample: int('sample', 1),
    k: int('k', 1),
    top: int('top', 0),
    ...(q.collection !== undefined ? { collection: q.collection } : {}),
    ...(q.target !== undefined ? { target: q.target } : {}),
  };
}
