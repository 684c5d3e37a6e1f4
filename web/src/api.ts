/**
 * A typed client for the public HTTP API (docs/contract.md). The page talks to nothing else. The
 * types come from docs/openapi.json through api-types.gen.ts (`npm run gen:api-types`); this file
 * only names the ones the page uses and holds the fetch helpers.
 */
import type { components, operations } from './api-types.gen';

type Schemas = components['schemas'];
/** The operations that answer data with a 200 (OPTIONS answers 204, the admin erasure routes 202). */
type DataOp = {
  [Op in keyof operations]: operations[Op]['responses'] extends {
    200: { content: { 'application/json': unknown } };
  }
    ? Op
    : never;
}[keyof operations];
/** The JSON body of an operation's 200 answer. */
type Ok<Op extends DataOp> = operations[Op]['responses'][200]['content']['application/json'];
/** An operation's query parameters. */
type Query<Op extends keyof operations> = NonNullable<operations[Op]['parameters']['query']>;

export type ChangedBy = Schemas['ChangedBy'];
export type Status = Schemas['VersionStatus'];
export type Pointer = Schemas['Pointer'];
/**
 * The build also writes `overlapWith` (functions/core/version.ts), which docs/openapi.json's
 * CollectionReport does not list yet; the page shows it when present.
 */
export type CollectionReport = Schemas['CollectionReport'] & { overlapWith?: string };
export type VersionSummary = Omit<Schemas['VersionSummary'], 'collections'> & {
  collections?: Record<string, CollectionReport>;
};
export type SpaceDetail = Omit<Ok<'getSpace'>, 'versions'> & { versions: VersionSummary[] };
export type HistoryEntry = Ok<'history'>['history'][number];
export type Metadata = Schemas['Metadata'];
export type Result = Schemas['Result'];
export type SearchAnswer = Ok<'similar'>;
export type Item = Ok<'getItem'>;
export type PrefixAnswer = Ok<'itemsByPrefix'>;
export type Point = Schemas['ProjectedPoint'];
export type Projection = Ok<'projection'>;
export type Diff = Ok<'diff'>;
export type DiffCollection = Diff['collections'][number];
export type DiffItem = DiffCollection['mostChanged'][number];
export type Problem = Schemas['Problem'];
export type Erasure = Schemas['Erasure'];

/** An answer that is not 2xx, with its problem+json body. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    /** Problem details as sent; a body that was not JSON arrives as `{ detail }`. */
    readonly problem: Partial<Problem> & { [k: string]: unknown },
  ) {
    super(problem.detail ?? problem.title ?? `HTTP ${status}`);
  }
}

const enc = encodeURIComponent;

/** A query string from an operation's parameters: the spec names what the page may send. */
function qs<Op extends keyof operations>(params: Query<Op>): string {
  const parts = Object.entries(params as Record<string, string | number | boolean | undefined>)
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => `${enc(k)}=${enc(String(v))}`);
  return parts.length ? `?${parts.join('&')}` : '';
}

async function call<T>(
  method: 'GET' | 'POST',
  path: string,
  body?: unknown,
  signal?: AbortSignal,
): Promise<T> {
  const res = await fetch(path, {
    method,
    headers: body === undefined ? { accept: 'application/json' } : { 'content-type': 'application/json' },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    ...(signal ? { signal } : {}),
  });
  const text = await res.text();
  let parsed: unknown;
  try {
    parsed = text ? JSON.parse(text) : {};
  } catch {
    parsed = { detail: text.slice(0, 200) };
  }
  if (!res.ok) throw new ApiError(res.status, parsed as ApiError['problem']);
  return parsed as T;
}

const space = (s: string) => `/v1/spaces/${enc(s)}`;
const coll = (s: string, c: string) => `${space(s)}/collections/${enc(c)}`;

export const api = {
  spaces: () => call<Ok<'listSpaces'>>('GET', '/v1/spaces'),
  space: (s: string) => call<SpaceDetail>('GET', space(s)),
  history: (s: string) => call<Ok<'history'>>('GET', `${space(s)}/history`),
  erasures: (s: string) => call<Ok<'listErasures'>>('GET', `${space(s)}/erasures`),
  item: (s: string, c: string, id: string, version?: string) =>
    call<Item>('GET', `${coll(s, c)}/items/${enc(id)}${qs<'getItem'>({ version })}`),
  similar: (
    s: string,
    c: string,
    id: string,
    p: { k: number; version?: string; target?: string; excludeSeen?: boolean },
    signal?: AbortSignal,
  ) =>
    call<SearchAnswer>(
      'GET',
      `${coll(s, c)}/items/${enc(id)}/similar${qs<'similar'>({
        k: p.k,
        version: p.version,
        target: p.target,
        excludeSeen: p.excludeSeen ? true : undefined,
      })}`,
      undefined,
      signal,
    ),
  prefix: (s: string, c: string, prefix: string, field: string, signal?: AbortSignal) =>
    call<PrefixAnswer>(
      'GET',
      `${coll(s, c)}/items${qs<'itemsByPrefix'>({ prefix, field, limit: 12 })}`,
      undefined,
      signal,
    ),
  projection: (
    s: string,
    c: string,
    p: { sample?: number; fields?: string[]; ids?: string[]; points?: boolean; version?: string },
  ) =>
    call<Projection>(
      'GET',
      `${coll(s, c)}/projection${qs<'projection'>({
        sample: p.sample,
        fields: p.fields?.join(','),
        ids: p.ids?.length ? p.ids.join(',') : undefined,
        points: p.points === false ? false : undefined,
        version: p.version,
      })}`,
    ),
  diff: (s: string, p: { from?: string; to: string; k: number; sample: number; collection?: string }) =>
    call<Diff>('GET', `${space(s)}/diff${qs<'diff'>(p)}`),
  activate: (s: string, version: string, expectedGeneration: number, force = false) =>
    call<Ok<'activate'>>('POST', `${space(s)}/activate`, {
      version,
      expectedGeneration,
      by: 'page',
      ...(force ? { force: true } : {}),
    } satisfies Schemas['ActivateBody']),
  rollback: (s: string, expectedGeneration: number) =>
    call<Ok<'rollback'>>('POST', `${space(s)}/rollback`, {
      expectedGeneration,
      by: 'page',
    } satisfies Schemas['RollbackBody']),
};

/** A short human label from metadata: the first of name, title, label that is a string (as the CLI does). */
export function labelOf(metadata: Metadata | undefined): string | undefined {
  if (!metadata) return undefined;
  for (const f of ['name', 'title', 'label']) {
    const v = metadata[f];
    if (typeof v === 'string' && v !== '') return v;
  }
  return undefined;
}

/** Overlap@k exactly as the API computes it (functions/core/search.ts overlapAt): shared / min(k, longer list). */
export function overlapAt(a: readonly string[], b: readonly string[], k: number): number {
  if (k === 0) return 1;
  const inA = new Set(a.slice(0, k));
  let hit = 0;
  for (const id of b.slice(0, k)) if (inA.has(id)) hit++;
  return hit / Math.min(k, Math.max(a.length, b.length, 1));
}
