/**
 * The shard-slot protocol: what the query router (functions/query/shards/router.ts) sends a slot function
 * (functions/slot/handler.ts) by synchronous Lambda Invoke, and what it answers. Pure: no AWS, no cache.
 *
 * Shard j of every sharded collection is served by slot `j mod shardSlots`; a slot loads only the
 * segments of its own shards (slotManifest), of exactly the version it is asked for.
 */
import { BudgetExceededError, LIMITS } from '../../core/budget';
import { type ErrorKind, VicinityError } from '../../core/errors';
import type { Filter } from '../../core/query';
import type { CollectionManifest, Manifest } from '../../snapshot/manifest';

/** One search of the slot's shards of a collection: its own top k (ties by id), distances as hnswlib gives them. */
export interface SlotSearchOp {
  op: 'search';
  collection: string;
  /** As the caller sent it (a slot normalises for cosine exactly as the unsharded planner does). */
  vector: number[];
  k: number;
  ef?: number;
  filter?: Filter;
  /** Only ids of this slot's shards (the router splits the request's exclusions by shard). */
  exclude?: string[];
  includeMetadata: boolean;
}

/** One item of the slot's shards: its indexed vector, metadata and (for excludeSeen) its seen list. */
export interface SlotItemOp {
  op: 'item';
  collection: string;
  id: string;
  /** The release's seenField, when the caller wants the item's seen list. */
  seenField?: string;
}

/** Load the slot's shards of a collection and answer nothing (prewarm after a pointer move). */
export interface SlotWarmOp {
  op: 'warm';
  collection: string;
}

/**
 * A hash sample of the slot's shards of a collection (explorer projection, diff): the `n` ids with the
 * smallest idHash (ties by id), so the router's merge of every slot's sample is the collection's sample.
 */
export interface SlotSampleOp {
  op: 'sample';
  collection: string;
  n: number;
  /**
   * Diff: only ids also in this other version's same collection (same shard count, so an id's shard —
   * and slot — is the same in both versions); `count` is then how many are in both.
   */
  alsoIn?: { version: string; pinned?: boolean; manifestKey?: string };
  /** Ids left out of the sample and the count (the router's erased ids). */
  exclude?: string[];
  /**
   * Only ids after this (hash, id) in (idHash, id) order: the next page of the slot's ids in hash order
   * (a diff between versions sharded differently walks both versions' ids this way).
   */
  after?: { hash: number; id: string };
  /** Return each sampled id's display label (name, title or label metadata). */
  labels?: boolean;
}

/** A prefix search of ids or a metadata field over the slot's shards (explorer). */
export interface SlotPrefixOp {
  op: 'prefix';
  collection: string;
  field: string;
  prefix: string;
  limit: number;
}

export type SlotOp = SlotSearchOp | SlotItemOp | SlotWarmOp | SlotSampleOp | SlotPrefixOp;

export interface SlotSample {
  /** Items of the slot's shards (in both versions with alsoIn), erased ones left out. */
  count: number;
  ids: string[];
  hashes: number[];
  labels?: (string | null)[];
}

export interface SlotPrefixHit {
  id: string;
  value: string;
  rank: number;
  metadata: Record<string, unknown> | null;
}

export interface SlotRequest {
  vicinity: 'slot';
  /** The slot the router means: a function configured as another slot refuses it. */
  slot: number;
  shardSlots: number;
  space: string;
  /** The one version the request reads: the slot loads it or errors, never answers from another. */
  version: string;
  /** The request pinned this version (?version=): the slot's pin cap applies. */
  pinned?: boolean;
  /**
   * The manifest the version is served from (the version record's `manifestKey`, which a purge of
   * erased ids moves); absent: the version's default manifest. The router sends what it resolved, so
   * router and slots read the same manifest and the slot needs no registry read.
   */
  manifestKey?: string;
  /**
   * Work units this call may spend (core/budget.ts): the router splits the request's budget over the
   * calls it makes, so a fanned-out request does no more work in all than one request may. Absent: a
   * whole request's budget.
   */
  budget?: number;
  ops: SlotOp[];
}

export interface SlotHit {
  id: string;
  distance: number;
  metadata?: Record<string, unknown> | null;
}

export interface WireProblem {
  kind: ErrorKind;
  type: string;
  title: string;
  detail: string;
  extras?: Record<string, unknown>;
}

export type SlotOpResult =
  | { ok: true; hits: SlotHit[] }
  | {
      ok: true;
      item: { vector: number[]; metadata: Record<string, unknown> | null; seen?: string[] };
    }
  | { ok: true; sample: SlotSample }
  | { ok: true; prefix: { hits: SlotPrefixHit[]; more: boolean } }
  | { ok: false; problem: WireProblem };

export type SlotResponse =
  | {
      slot: number;
      version: string;
      results: SlotOpResult[];
      /** Work units the call spent (the router adds them to the request's budget). */
      used?: number;
      /**
       * The answer would have exceeded the slot's response limit (Lambda's 6 MB synchronous payload):
       * `results` answers only the first ops; the router sends the rest again in another call.
       */
      cut?: boolean;
    }
  /** The whole call failed in a way the caller may be told (a DELETED version: 404; out of room: 503). */
  | { slot: number; version: string; problem: WireProblem };

export function isSlotRequest(e: unknown): e is SlotRequest {
  const r = e as Partial<SlotRequest> | null;
  return (
    !!r &&
    r.vicinity === 'slot' &&
    typeof r.space === 'string' &&
    typeof r.version === 'string' &&
    Array.isArray(r.ops)
  );
}

/** The slot that serves shard j. */
export function slotOf(shard: number, shardSlots: number): number {
  return shard % shardSlots;
}

/** The name of slot i's function. */
export function slotFunctionName(prefix: string, slot: number): string {
  return `${prefix}${slot}`;
}

/** The shards of a collection of `shards` shards that slot `slot` serves. */
export function shardsOfSlot(slot: number, shards: number, shardSlots: number): number[] {
  const out: number[] = [];
  for (let j = slot; j < shards; j += shardSlots) out.push(j);
  return out;
}

/**
 * What slot `slot` sees of a manifest: each sharded collection keeps only its own shards' segments (and
 * counts only their items, so the memory estimate and every budget follow); unsharded ones are unchanged.
 */
export function slotManifest(m: Manifest, slot: number, shardSlots: number): Manifest {
  const collections: Record<string, CollectionManifest> = {};
  for (const [name, c] of Object.entries(m.collections)) {
    if (!c.sharding) {
      collections[name] = c;
      continue;
    }
    const mine = c.sharding.layout.filter((l) => slotOf(l.shard, shardSlots) === slot);
    const segments = mine.flatMap((l) => l.segments.map((i) => c.segments[i])).filter((s) => s !== undefined);
    let next = 0;
    const layout = mine.map((l) => ({
      shard: l.shard,
      count: l.count,
      segments: l.segments.map(() => next++),
    }));
    collections[name] = {
      ...c,
      count: mine.reduce((a, l) => a + l.count, 0),
      segments,
      sharding: { ...c.sharding, layout },
    };
  }
  return { ...m, collections };
}

export function toWire(err: VicinityError): WireProblem {
  return { kind: err.kind, type: err.type, title: err.title, detail: err.message, extras: err.extras };
}

/** The error a slot reported, as the router's own (a work-budget 400 stays a BudgetExceededError). */
export function fromWire(p: WireProblem): VicinityError {
  const limit = p.extras?.limit;
  if (p.kind === 'bad-request' && typeof limit === 'string' && limit in LIMITS)
    return new BudgetExceededError(limit as keyof typeof LIMITS, p.detail);
  return new VicinityError(p.kind, p.type, p.title, p.detail, { extras: p.extras ?? {} });
}
