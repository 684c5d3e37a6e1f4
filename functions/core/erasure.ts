/**
 * Erasure (the right to be forgotten): an id erased from a collection of a space is left out of every
 * answer of every version from the moment the erasure is recorded (query/erasures.ts), and purged from
 * every retained snapshot within `purgeWithinHours` (sweeper/purge.ts). Pure rules and shapes only.
 */
import { BadRequestError, NotFoundError } from './errors';
import { assertItemId, assertName } from './names';
import { bool, checkObject, FAIL, int, type ObjectSpec, str } from './shape';

export const ERASURE_STATUSES = ['ERASED', 'PURGED', 'RESTORED'] as const;
export type ErasureStatus = (typeof ERASURE_STATUSES)[number];

/** Default bound on the time between an erasure and the last stored snapshot holding the id. */
export const DEFAULT_PURGE_WITHIN_HOURS = 24;
/** Ids one erase request may carry (the CLI batches larger lists). */
export const MAX_ERASE_IDS = 500;
/** Old snapshot objects replaced by a purge are deleted this long after the switch (requests in flight). */
export const DEFAULT_PURGE_GRACE_MS = 60_000;

export interface ErasureRecord {
  space: string;
  collection: string;
  id: string;
  status: ErasureStatus;
  erasedAt: string;
  by: string;
  reason?: string;
  purgedAt?: string;
  restoredAt?: string;
  restoredBy?: string;
  restoreReason?: string;
  /** Release folders under incoming/ that may still hold the id (Vicinity never edits uploads). */
  incomingReleases?: string[];
  /** Purge attempts in a row that made no progress (counted when one starts; 0 after progress). */
  purgeAttempts?: number;
  /** When the last purge attempt started. */
  purgeAttemptAt?: string;
  /** While ERASED: why the purge is stalled (MAX_PURGE_ATTEMPTS attempts without progress); cleared by progress. */
  purgeError?: string;
}

/** An erasure update: `null` removes the field. */
export type ErasurePatch = { [K in keyof ErasureRecord]?: ErasureRecord[K] | null };

/** An erasure is in force (left out of answers and of new builds) unless it was restored. */
export function inForce(r: Pick<ErasureRecord, 'status'>): boolean {
  return r.status !== 'RESTORED';
}

/** collection → ids in force. */
export type ErasedIds = Map<string, Set<string>>;

export function erasedIds(records: readonly ErasureRecord[]): ErasedIds {
  const out: ErasedIds = new Map();
  for (const r of records) {
    if (!inForce(r)) continue;
    const s = out.get(r.collection) ?? new Set<string>();
    out.set(r.collection, s);
    s.add(r.id);
  }
  return out;
}

/** Every id erased in any collection (for stripping them from metadata such as the seen field). */
export function allErased(ids: ErasedIds): Set<string> {
  const out = new Set<string>();
  for (const s of ids.values()) for (const id of s) out.add(id);
  return out;
}

/** The erasure bodies' zod schemas (./erasure-schemas), loaded by the first body the checks here do not pass. */
const loadErasureSchemas = () => import('./erasure-schemas');

const reasonBy = { reason: { check: str(0, 1000) }, by: { check: str(1, 200) } };
const idsCheck = (v: unknown) =>
  Array.isArray(v) && v.length <= MAX_ERASE_IDS && v.every((id) => typeof id === 'string') ? v.slice() : FAIL;
const ERASE_BODY: ObjectSpec = { ...reasonBy, ids: { check: idsCheck } };
const RESTORE_BODY: ObjectSpec = reasonBy;
const DELETE_SPACE_BODY: ObjectSpec = {
  expectedGeneration: { check: int(0), required: true },
  includeInputs: { check: bool },
  by: { check: str(1, 200) },
};

export interface EraseBody {
  reason?: string | undefined;
  by?: string | undefined;
  /** Extra ids of the same collection, so one call can erase many (the path's id is always included). */
  ids?: string[] | undefined;
}
export type RestoreBody = Omit<EraseBody, 'ids'>;
export interface DeleteSpaceBody {
  expectedGeneration: number;
  includeInputs?: boolean | undefined;
  by?: string | undefined;
}

/** An erase body as eraseBodySchema answers it (a hand-written check first); a 400 names what is wrong. */
export async function parseEraseBody(raw: unknown): Promise<EraseBody> {
  const fast = checkObject(raw, ERASE_BODY, true);
  return fast ? (fast as EraseBody) : (await loadErasureSchemas()).parseEraseBodyZod(raw);
}

/** A restore body as restoreBodySchema answers it. */
export async function parseRestoreBody(raw: unknown): Promise<RestoreBody> {
  const fast = checkObject(raw, RESTORE_BODY, true);
  return fast ? (fast as RestoreBody) : (await loadErasureSchemas()).parseRestoreBodyZod(raw);
}

/** A space deletion body as deleteSpaceBodySchema answers it. */
export async function parseDeleteSpaceBody(raw: unknown): Promise<DeleteSpaceBody> {
  const fast = checkObject(raw, DELETE_SPACE_BODY, true);
  return fast
    ? (fast as unknown as DeleteSpaceBody)
    : (await loadErasureSchemas()).parseDeleteSpaceBodyZod(raw);
}

/** The checked target of an erasure: names valid, ids valid and distinct. */
export function erasureTarget(space: string, collection: string, ids: readonly string[]) {
  assertName('space', space);
  assertName('collection', collection);
  if (ids.length === 0) throw new BadRequestError('ids: at least one id');
  if (ids.length > MAX_ERASE_IDS + 1)
    throw new BadRequestError(`ids: at most ${MAX_ERASE_IDS} per request (batch them)`);
  return { space, collection, ids: [...new Set(ids.map((id) => assertItemId(id)))] };
}

/** A space marked for deletion is a 404 on every route from the moment the mark is written. */
export function assertNotDeleting(space: string, state: { deletion?: SpaceDeletion | undefined }): void {
  if (state.deletion) throw new NotFoundError(`Unknown space ${space} (it is being deleted)`);
}

/** A space being deleted: it answers nothing (404) while the sweeper removes what it stored. */
export interface SpaceDeletion {
  space: string;
  requestedAt: string;
  by: string;
  includeInputs: boolean;
  /** The pointer generation the caller saw. */
  generation: number;
}
