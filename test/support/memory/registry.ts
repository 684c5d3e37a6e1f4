/**
 * An in-memory Registry for unit tests: the semantics of DynamoRegistry
 * (functions/adapters/dynamo-registry.ts) without a table. Tests only; never wired into a function.
 *
 * Each method does what the DynamoDB request(s) of DynamoRegistry do, in the same order, with the same
 * conditions: a failed condition is a PointerConflictError carrying the stored pointer (casPointer),
 * `undefined` (acquireLease) or `false` (renewLease, finishVersion, transitionStatus), exactly as
 * there. Methods that make several requests there yield between them here (one microtask per
 * request), so concurrent callers interleave the way they would against DynamoDB: two deliveries of
 * one release event both allocate a number and one claim wins. Stored items are copied in and out
 * with undefined attributes dropped (the document client's removeUndefinedValues), so a caller
 * mutating what it got back never changes the store.
 *
 * Lease expiry is decided by the `now` the caller passes (the port's contract); the injectable
 * `clock` stamps what DynamoRegistry stamps with the wall clock (`statusChangedAt`).
 */

import type {
  ErasurePatch,
  ErasureRecord,
  ErasureStatus,
  SpaceDeletion,
} from '../../../functions/core/erasure';
import { PointerConflictError } from '../../../functions/core/errors';
import { formatVersion, parseVersion } from '../../../functions/core/names';
import {
  emptyPointer,
  type HistoryEntry,
  historyEntryFor,
  type Pointer,
} from '../../../functions/core/pointer';
import type {
  ManifestSwitch,
  Registry,
  SpaceState,
  VersionFields,
  VersionPage,
} from '../../../functions/core/ports';
import { type SpaceSettings, withDefaults } from '../../../functions/core/space-settings';
import type { ReleaseEvent, TaskState, VersionRecord, VersionStatus } from '../../../functions/core/version';

/** The largest version number DynamoRegistry's 12-digit sort keys can hold. */
const MAX_VERSION = 999_999_999_999;

interface Claim {
  version: string;
  releaseKey: string;
  sequencer: string;
  claimedAt: string;
}

interface SpaceItems {
  pointer?: Pointer;
  history: Map<number, HistoryEntry>;
  versions: Map<number, VersionRecord>;
  /** `${release}#${sequencer}` → claim: the claim is keyed by release and sequencer, not by object key. */
  claims: Map<string, Claim>;
  sequence: number;
  /** `${collection}#${id}` → erasure record (sk ERASURE#…). */
  erasures: Map<string, ErasureRecord>;
  /** Attributes of the pointer item besides the pointer. */
  erasureCounter: number;
  erasureAdded: number;
  deletion?: SpaceDeletion;
  /** The settings item (sk SETTINGS), when written. */
  settings?: SpaceSettings;
}

/** DynamoDB's answer to a failed ConditionExpression, as the SDK names it. */
class ConditionalCheckFailedException extends Error {
  constructor() {
    super('The conditional request failed');
    this.name = 'ConditionalCheckFailedException';
  }
}

/** A copy without undefined attributes, as the document client (removeUndefinedValues) stores it. */
function stored<T>(value: T): T {
  return JSON.parse(JSON.stringify(value)) as T;
}

function versionNumber(version: string): number {
  const n = parseVersion(version);
  if (n === undefined) throw new Error(`not a version id: ${version}`);
  return n;
}

/** One request's round trip: lets other callers' requests run in between, as they would over the wire. */
const request = () => Promise.resolve();

export class MemoryRegistry implements Registry {
  private readonly spaces = new Map<string, SpaceItems>();
  /** The registry of spaces (pk SPACES): space → createdAt. */
  private readonly registered = new Map<string, string>();

  constructor(private readonly clock: () => Date = () => new Date()) {}

  private items(space: string): SpaceItems {
    let s = this.spaces.get(space);
    if (!s) {
      s = {
        history: new Map(),
        versions: new Map(),
        claims: new Map(),
        sequence: 0,
        erasures: new Map(),
        erasureCounter: 0,
        erasureAdded: 0,
      };
      this.spaces.set(space, s);
    }
    return s;
  }

  async getPointer(space: string, _consistent = true): Promise<Pointer> {
    await request();
    const item = this.spaces.get(space)?.pointer;
    return item ? { ...emptyPointer(space), ...stored(item), space } : emptyPointer(space);
  }

  async casPointer(current: Pointer, next: Pointer): Promise<void> {
    const expectedGeneration = current.generation;
    // Heal history first: if the writer of the current pointer died before its history item, write it now.
    const healed = historyEntryFor(current);
    if (healed) await this.putHistory(next.space, healed);
    await request();
    const s = this.items(next.space);
    const ok =
      s.deletion === undefined &&
      (expectedGeneration === 0 ? s.pointer === undefined : s.pointer?.generation === expectedGeneration);
    if (!ok) {
      const now = await this.getPointer(next.space);
      throw new PointerConflictError(
        `The pointer of space ${next.space} is at generation ${now.generation}, not ${expectedGeneration}`,
        { cause: new ConditionalCheckFailedException(), extras: { pointer: now } },
      );
    }
    s.pointer = stored(next);
    const entry = historyEntryFor(next);
    if (entry) await this.putHistory(next.space, entry);
  }

  private async putHistory(space: string, e: HistoryEntry): Promise<void> {
    await request();
    const h = this.items(space).history;
    // attribute_not_exists: the first writer of a generation's entry wins; later ones are ignored.
    if (!h.has(e.generation)) h.set(e.generation, stored(e));
  }

  async listHistory(space: string, limit: number): Promise<HistoryEntry[]> {
    await request();
    const entries = [...(this.spaces.get(space)?.history.values() ?? [])]
      .sort((a, b) => b.generation - a.generation)
      .slice(0, limit)
      .map((e) => stored(e));
    const pointer = await this.getPointer(space);
    // The newest switch is always recoverable from the pointer itself.
    const latest = historyEntryFor(pointer);
    if (latest && !entries.some((e) => e.generation === latest.generation)) entries.unshift(latest);
    return entries.sort((a, b) => b.generation - a.generation).slice(0, limit);
  }

  async getVersion(space: string, version: string): Promise<VersionRecord | undefined> {
    const n = parseVersion(version);
    if (n === undefined) return undefined;
    await request();
    const v = this.spaces.get(space)?.versions.get(n);
    return v ? stored(v) : undefined;
  }

  async listVersions(space: string, limit: number, before?: string): Promise<VersionPage> {
    const upper = before === undefined ? Number.MAX_SAFE_INTEGER : versionNumber(before) - 1;
    if (upper < 1) return { versions: [] };
    await request();
    const hi = Math.min(upper, MAX_VERSION);
    const matching = [...(this.spaces.get(space)?.versions.entries() ?? [])]
      .filter(([n]) => n >= 1 && n <= hi)
      .sort(([a], [b]) => b - a);
    const versions = matching.slice(0, limit).map(([, v]) => stored(v));
    const last = versions[versions.length - 1];
    // DynamoDB returns LastEvaluatedKey whenever a Query stops at its Limit, even if nothing follows.
    const stoppedAtLimit = matching.length >= limit;
    return { versions, ...(stoppedAtLimit && last ? { next: last.version } : {}) };
  }

  async claimRelease(event: ReleaseEvent, now: Date): Promise<{ version: string; created: boolean }> {
    const claimKey = `${event.release}#${event.sequencer}`;
    await request();
    const existing = this.spaces.get(event.space)?.claims.get(claimKey);
    if (existing) return { version: existing.version, created: false };
    await request();
    const s = this.items(event.space);
    s.sequence += 1;
    const version = formatVersion(s.sequence);
    await request();
    const won = s.claims.get(claimKey);
    if (won) {
      // A concurrent delivery of the same event claimed it first; its number wins (ours is a gap).
      await request();
      return { version: won.version, created: false };
    }
    s.claims.set(claimKey, {
      version,
      releaseKey: event.key,
      sequencer: event.sequencer,
      claimedAt: now.toISOString(),
    });
    await this.registerSpace(event.space, now);
    return { version, created: true };
  }

  async ensureVersion(record: VersionRecord): Promise<VersionRecord> {
    await request();
    const versions = this.items(record.space).versions;
    const existing = versions.get(record.number);
    if (!existing) {
      versions.set(record.number, stored(record));
      return record;
    }
    return (await this.getVersion(record.space, record.version)) as VersionRecord;
  }

  async acquireLease(
    space: string,
    version: string,
    owner: string,
    until: number,
    now: number,
  ): Promise<VersionRecord | undefined> {
    const n = versionNumber(version);
    await request();
    const v = this.spaces.get(space)?.versions.get(n);
    const free = v?.leaseUntil === undefined || v.leaseUntil < now || v.leaseOwner === owner;
    if (v?.status !== 'BUILDING' || !free) return undefined;
    v.leaseOwner = owner;
    v.leaseUntil = until;
    v.attempts = (v.attempts ?? 0) + 1;
    return stored(v);
  }

  async renewLease(
    space: string,
    version: string,
    owner: string,
    until: number,
    now = this.clock().getTime(),
  ): Promise<boolean> {
    const n = versionNumber(version);
    await request();
    const v = this.spaces.get(space)?.versions.get(n);
    // `leaseUntil >= :now`: a missing leaseUntil fails the comparison, as in DynamoDB.
    if (v?.status !== 'BUILDING' || v.leaseOwner !== owner) return false;
    if (v.leaseUntil === undefined || v.leaseUntil < now) return false;
    v.leaseUntil = until;
    return true;
  }

  async finishVersion(
    space: string,
    version: string,
    owner: string,
    patch: Partial<VersionRecord>,
  ): Promise<boolean> {
    const n = versionNumber(version);
    const fields = Object.entries(patch).filter(([, value]) => value !== undefined);
    if (fields.some(([k]) => k === 'leaseUntil')) {
      // DynamoDB refuses an UpdateExpression that sets one attribute twice.
      throw new Error('Invalid UpdateExpression: Two document paths overlap with each other (leaseUntil)');
    }
    await request();
    const v = this.spaces.get(space)?.versions.get(n);
    if (v?.status !== 'BUILDING' || v.leaseOwner !== owner) return false;
    const updated: Record<string, unknown> = { ...v, leaseUntil: 0 };
    for (const [k, value] of fields) updated[k] = stored(value);
    this.items(space).versions.set(n, updated as unknown as VersionRecord);
    return true;
  }

  async failAbandoned(
    space: string,
    version: string,
    now: number,
    seenAttempts: number,
    patch: Pick<VersionRecord, 'reason' | 'finishedAt'>,
  ): Promise<boolean> {
    const n = versionNumber(version);
    await request();
    const v = this.spaces.get(space)?.versions.get(n);
    if (v?.status !== 'BUILDING') return false;
    if (v.leaseUntil !== undefined && !(v.leaseUntil < now)) return false;
    if (seenAttempts === 0 ? v.attempts !== undefined : v.attempts !== seenAttempts) return false;
    const updated: VersionRecord = {
      ...v,
      status: 'FAILED',
      reason: patch.reason ?? 'abandoned',
      finishedAt: patch.finishedAt ?? new Date(now).toISOString(),
      leaseUntil: 0,
    };
    this.items(space).versions.set(n, stored(updated));
    return true;
  }

  async setVersionFields(
    space: string,
    version: string,
    status: VersionStatus,
    fields: VersionFields,
  ): Promise<boolean> {
    const n = versionNumber(version);
    const set = Object.entries(fields).filter(([, value]) => value !== undefined);
    if (!set.length) return true;
    await request();
    const v = this.spaces.get(space)?.versions.get(n);
    if (v?.status !== status) return false;
    const updated: Record<string, unknown> = { ...v };
    for (const [k, value] of set) updated[k] = stored(value);
    this.items(space).versions.set(n, updated as unknown as VersionRecord);
    return true;
  }

  async getSpaceState(space: string, _consistent = true): Promise<SpaceState> {
    const pointer = await this.getPointer(space);
    const s = this.spaces.get(space);
    return {
      pointer,
      erasureCounter: s?.erasureCounter ?? 0,
      erasureAdded: s?.erasureAdded ?? 0,
      ...(s?.deletion ? { deletion: stored(s.deletion) } : {}),
    };
  }

  async recordErasures(space: string, records: ErasureRecord[]): Promise<{ erasureCounter: number }> {
    const s = this.items(space);
    for (let i = 0; i < records.length; i += 25) {
      await request();
      for (const r of records.slice(i, i + 25)) s.erasures.set(`${r.collection}#${r.id}`, stored(r));
    }
    await request();
    s.erasureCounter += 1;
    s.erasureAdded += 1;
    return { erasureCounter: s.erasureCounter };
  }

  async listErasures(space: string): Promise<ErasureRecord[]> {
    await request();
    return [...(this.spaces.get(space)?.erasures.entries() ?? [])]
      .sort(([a], [b]) => Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8')))
      .map(([, r]) => stored(r));
  }

  async updateErasure(
    space: string,
    collection: string,
    id: string,
    from: ErasureStatus | undefined,
    patch: ErasurePatch,
  ): Promise<boolean> {
    await request();
    const e = this.spaces.get(space)?.erasures;
    const r = e?.get(`${collection}#${id}`);
    if (!r || (from !== undefined && r.status !== from)) return false;
    const next: Record<string, unknown> = { ...r, ...patch };
    for (const [k, v] of Object.entries(patch)) if (v === null) delete next[k];
    e?.set(`${collection}#${id}`, stored(next as unknown as ErasureRecord));
    return true;
  }

  async bumpErasureCounter(space: string): Promise<void> {
    await request();
    this.items(space).erasureCounter += 1;
  }

  async switchManifest(
    space: string,
    version: string,
    expectedGeneration: number,
    next: ManifestSwitch,
  ): Promise<boolean> {
    const n = versionNumber(version);
    await request();
    const v = this.spaces.get(space)?.versions.get(n);
    if (v?.status !== 'READY' || (v.manifestGeneration ?? 0) !== expectedGeneration) return false;
    this.items(space).versions.set(n, stored({ ...v, ...next }));
    return true;
  }

  async markSpaceDeleting(deletion: SpaceDeletion): Promise<void> {
    await request();
    const s = this.items(deletion.space);
    const generation = s.pointer?.generation ?? 0;
    if (generation !== deletion.generation) {
      const now = await this.getPointer(deletion.space);
      throw new PointerConflictError(
        `The pointer of space ${deletion.space} is at generation ${now.generation}, not ${deletion.generation}`,
        { cause: new ConditionalCheckFailedException(), extras: { pointer: now } },
      );
    }
    s.deletion ??= stored(deletion);
  }

  async deleteSpaceRecords(space: string): Promise<void> {
    await request();
    const s = this.spaces.get(space);
    if (s) {
      s.versions.clear();
      s.history.clear();
      s.claims.clear();
      s.erasures.clear();
      s.sequence = 0;
    }
    await request();
    this.spaces.delete(space);
    await request();
    this.registered.delete(space);
  }

  // ---- Test helpers (not part of the port) ----

  /** Changes a stored version as a crashed or foreign writer would have left it. */
  poke(space: string, version: string, patch: Partial<VersionRecord>): void {
    const n = versionNumber(version);
    const v = this.spaces.get(space)?.versions.get(n);
    if (!v) throw new Error(`no version ${space}/${version}`);
    this.items(space).versions.set(n, stored({ ...v, ...patch }));
  }

  async startTasks(
    space: string,
    version: string,
    owner: string,
    taskOwner: string,
    until: number,
    totals: { partitions: number; shards: number; startedAt?: number },
  ): Promise<boolean> {
    await request();
    const n = versionNumber(version);
    const v = this.spaces.get(space)?.versions.get(n);
    if (v?.status !== 'BUILDING' || v.leaseOwner !== owner) return false;
    const tasks: TaskState = { ...totals, partitionsDone: 0, shardsDone: 0, rows: 0, done: {}, attempts: {} };
    this.items(space).versions.set(n, stored({ ...v, leaseOwner: taskOwner, leaseUntil: until, tasks }));
    return true;
  }

  async beginTask(
    space: string,
    version: string,
    key: string,
  ): Promise<{ attempts: number; done: boolean; record: VersionRecord } | undefined> {
    await request();
    const n = versionNumber(version);
    const v = this.spaces.get(space)?.versions.get(n);
    if (v?.status !== 'BUILDING' || !v.tasks) return undefined;
    const attempts = (v.tasks.attempts[key] ?? 0) + 1;
    const updated = stored({
      ...v,
      tasks: { ...v.tasks, attempts: { ...v.tasks.attempts, [key]: attempts } },
    });
    this.items(space).versions.set(n, updated);
    return { attempts, done: key in updated.tasks.done, record: stored(updated) };
  }

  async completeTask(
    space: string,
    version: string,
    key: string,
    rows: number,
  ): Promise<{ recorded: boolean; record: VersionRecord } | undefined> {
    await request();
    const n = versionNumber(version);
    const v = this.spaces.get(space)?.versions.get(n);
    if (v?.status !== 'BUILDING' || !v.tasks) return undefined;
    if (key in v.tasks.done) return { recorded: false, record: stored(v) };
    const t = { ...v.tasks, done: { ...v.tasks.done, [key]: rows } };
    if (key.startsWith('p:')) {
      t.partitionsDone++;
      t.rows += rows;
    } else t.shardsDone++;
    const updated = stored({ ...v, tasks: t });
    this.items(space).versions.set(n, updated);
    return { recorded: true, record: stored(updated) };
  }

  async transitionStatus(
    space: string,
    version: string,
    from: VersionStatus,
    to: VersionStatus,
  ): Promise<boolean> {
    const n = versionNumber(version);
    await request();
    const v = this.spaces.get(space)?.versions.get(n);
    if (!v || v.status !== from) return false;
    const updated = { ...v, status: to, statusChangedAt: this.clock().toISOString() };
    this.items(space).versions.set(n, updated as VersionRecord);
    return true;
  }

  async getSpaceSettings(space: string): Promise<SpaceSettings> {
    await request();
    return withDefaults(this.spaces.get(space)?.settings);
  }

  async putSpaceSettings(space: string, settings: SpaceSettings): Promise<void> {
    await request();
    this.items(space).settings = stored(settings);
  }

  async deleteSpaceSettings(space: string): Promise<void> {
    await request();
    const items = this.spaces.get(space);
    if (items) items.settings = undefined;
  }

  async registerSpace(space: string, now: Date): Promise<void> {
    await request();
    if (!this.registered.has(space)) this.registered.set(space, now.toISOString());
  }

  async listSpaces(): Promise<string[]> {
    await request();
    // A Query on pk SPACES returns items in sort-key order (`SPACE#${space}`, byte order).
    return [...this.registered.keys()].sort((a, b) =>
      Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8')),
    );
  }

  async getPointers(spaces: string[]): Promise<Pointer[]> {
    for (let i = 0; i < spaces.length; i += 100) {
      const chunk = spaces.slice(i, i + 100);
      if (new Set(chunk).size !== chunk.length) {
        // BatchGetItem refuses a request naming one key twice.
        throw new Error('ValidationException: Provided list of item keys contains duplicates');
      }
      await request();
    }
    return spaces
      .filter((s) => !this.spaces.get(s)?.deletion)
      .map((s) => {
        const p = this.spaces.get(s)?.pointer;
        return p ? { ...emptyPointer(s), ...stored(p) } : emptyPointer(s);
      });
  }
}
