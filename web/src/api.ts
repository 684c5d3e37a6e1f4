/** A typed client for the public HTTP API (docs/contract.md). The page talks to nothing else. */

export type ChangedBy = 'build' | 'api' | 'cli' | 'page';
export type Status = 'BUILDING' | 'READY' | 'FAILED' | 'DELETED';

export interface Pointer {
  space: string;
  version: string | null;
  generation: number;
  previous: string | null;
  highWater: number;
  changedAt: string | null;
  changedBy: ChangedBy | null;
}

export interface CollectionReport {
  count: number;
  dims: number;
  metric: string;
  M: number;
  efConstruction: number;
  ef: number;
  segments?: number;
  recallAt10?: number;
  overlapAt10?: number;
  overlapWith?: string;
}

export interface VersionSummary {
  version: string;
  status: Status;
  release: string;
  createdAt: string;
  finishedAt?: string;
  collections?: Record<string, CollectionReport>;
  buildMs?: number;
  reason?: string;
}

export interface SpaceDetail {
  space: string;
  active: { version: string; generation: number; changedAt: string | null } | null;
  pointer?: Pointer;
  versions: VersionSummary[];
}

export interface HistoryEntry {
  generation: number;
  from: string | null;
  to: string;
  at: string;
  by: ChangedBy;
}

export type Metadata = Record<string, unknown> | null;

export interface Result {
  id: string;
  score: number;
  distance: number;
  metadata?: Metadata;
}

export interface SearchAnswer {
  space: string;
  version: string;
  collection: string;
  target?: string;
  id?: string;
  results: Result[];
}

export interface Item {
  space: string;
  version: string;
  collection: string;
  id: string;
  metadata: Metadata;
}

export interface PrefixAnswer {
  version: string;
  field: string;
  metadataFields: string[];
  results: { id: string; value: string; metadata: Metadata }[];
  more: boolean;
}

export interface Point {
  id: string;
  x: number;
  y: number;
  metadata?: Record<string, unknown>;
}

export interface Projection {
  version: string;
  collection: string;
  count: number;
  sample: number;
  explained: number[];
  metadataFields: string[];
  fields: string[];
  points?: Point[];
  extra?: Point[];
  missing?: string[];
}

export interface DiffItem {
  id: string;
  label?: string;
  overlap: number;
  removed: { id: string; label?: string }[];
  added: { id: string; label?: string }[];
}

export interface DiffCollection {
  collection: string;
  target?: string;
  inBoth: number;
  onlyFrom: number;
  onlyTo: number;
  sampled: number;
  meanOverlap: number;
  medianOverlap: number;
  p10Overlap: number;
  unchanged: number;
  mostlyChanged: number;
  mostChanged: DiffItem[];
  text: string;
}

export interface Diff {
  space: string;
  from: string;
  to: string;
  k: number;
  sample: number;
  compatible: boolean;
  incompatibilities?: string[];
  collections: DiffCollection[];
  summary?: string;
}

/** An answer that is not 2xx, with its problem+json body. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly problem: { title?: string; detail?: string; pointer?: Pointer; [k: string]: unknown },
  ) {
    super(problem.detail ?? problem.title ?? `HTTP ${status}`);
  }
}

const enc = encodeURIComponent;

function qs(params: Record<string, string | number | boolean | undefined>): string {
  const parts = Object.entries(params)
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
  spaces: () =>
    call<{ spaces: { space: string; active: { version: string; generation: number } | null }[] }>(
      'GET',
      '/v1/spaces',
    ),
  space: (s: string) => call<SpaceDetail>('GET', space(s)),
  history: (s: string) => call<{ history: HistoryEntry[] }>('GET', `${space(s)}/history`),
  item: (s: string, c: string, id: string, version?: string) =>
    call<Item>('GET', `${coll(s, c)}/items/${enc(id)}${qs({ version })}`),
  similar: (
    s: string,
    c: string,
    id: string,
    p: { k: number; version?: string; target?: string; excludeSeen?: boolean },
    signal?: AbortSignal,
  ) =>
    call<SearchAnswer>(
      'GET',
      `${coll(s, c)}/items/${enc(id)}/similar${qs({
        k: p.k,
        version: p.version,
        target: p.target,
        excludeSeen: p.excludeSeen ? true : undefined,
      })}`,
      undefined,
      signal,
    ),
  prefix: (s: string, c: string, prefix: string, field: string, signal?: AbortSignal) =>
    call<PrefixAnswer>('GET', `${coll(s, c)}/items${qs({ prefix, field, limit: 12 })}`, undefined, signal),
  projection: (
    s: string,
    c: string,
    p: { sample?: number; fields?: string[]; ids?: string[]; points?: boolean; version?: string },
  ) =>
    call<Projection>(
      'GET',
      `${coll(s, c)}/projection${qs({
        sample: p.sample,
        fields: p.fields?.join(','),
        ids: p.ids?.length ? p.ids.join(',') : undefined,
        points: p.points === false ? false : undefined,
        version: p.version,
      })}`,
    ),
  diff: (s: string, p: { from?: string; to: string; k: number; sample: number; collection?: string }) =>
    call<Diff>('GET', `${space(s)}/diff${qs(p)}`),
  activate: (s: string, version: string, expectedGeneration: number, force = false) =>
    call<{ pointer: Pointer }>('POST', `${space(s)}/activate`, {
      version,
      expectedGeneration,
      by: 'page',
      ...(force ? { force: true } : {}),
    }),
  rollback: (s: string, expectedGeneration: number) =>
    call<{ pointer: Pointer }>('POST', `${space(s)}/rollback`, { expectedGeneration, by: 'page' }),
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
