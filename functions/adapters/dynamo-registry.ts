import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import {
  BatchGetCommand,
  BatchWriteCommand,
  DeleteCommand,
  DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  QueryCommand,
  UpdateCommand,
} from '@aws-sdk/lib-dynamodb';
import type { ErasurePatch, ErasureRecord, ErasureStatus, SpaceDeletion } from '../core/erasure';
import { PointerConflictError } from '../core/errors';
import { formatVersion, parseVersion } from '../core/names';
import { emptyPointer, type HistoryEntry, historyEntryFor, type Pointer } from '../core/pointer';
import type { ManifestSwitch, Registry, SpaceState, VersionFields, VersionPage } from '../core/ports';
import { type SpaceSettings, withDefaults } from '../core/space-settings';
import type { ReleaseEvent, TaskState, VersionRecord, VersionStatus } from '../core/version';

const pad = (n: number) => String(n).padStart(12, '0');
const spacePk = (space: string) => `SPACE#${space}`;
const POINTER_SK = 'POINTER';
const SEQUENCE_SK = 'SEQUENCE';
const SETTINGS_SK = 'SETTINGS';
const versionSk = (n: number) => `VERSION#${pad(n)}`;
const historySk = (generation: number) => `HISTORY#${pad(generation)}`;
const claimSk = (release: string, sequencer: string) => `RELEASE#${release}#${sequencer}`;
const REGISTRY_PK = 'SPACES';
const erasureSk = (collection: string, id: string) => `ERASURE#${collection}#${id}`;
/** Attributes of the pointer item that are not the pointer (the API shows the pointer alone). */
const STATE_FIELDS = ['erasureCounter', 'erasureAdded', 'deletion'] as const;

function pointerOf(space: string, item: Item | undefined): Pointer {
  if (!item) return emptyPointer(space);
  const rest = strip<Record<string, unknown>>(item);
  for (const f of STATE_FIELDS) delete rest[f];
  return { ...emptyPointer(space), ...(rest as Partial<Pointer>), space };
}

type Item = Record<string, unknown>;

function isConditionFailure(err: unknown): boolean {
  return (err as { name?: string })?.name === 'ConditionalCheckFailedException';
}

function strip<T>(item: Item): T {
  const { pk: _pk, sk: _sk, ...rest } = item;
  return rest as T;
}

function versionNumber(version: string): number {
  const n = parseVersion(version);
  if (n === undefined) throw new Error(`not a version id: ${version}`);
  return n;
}

/**
 * Version records, release claims, pointer and registry in one DynamoDB table (pk/sk strings).
 * Every state change that matters is a single-item conditional write, so DynamoDB, DynamoDB Local
 * and dynalite (no transactions) agree on who won.
 */
export class DynamoRegistry implements Registry {
  private readonly doc: DynamoDBDocumentClient;

  constructor(
    client: DynamoDBClient,
    private readonly table: string,
  ) {
    this.doc = DynamoDBDocumentClient.from(client, {
      marshallOptions: { removeUndefinedValues: true, convertClassInstanceToMap: false },
    });
  }

  async getPointer(space: string, consistent = true): Promise<Pointer> {
    const r = await this.doc.send(
      new GetCommand({
        TableName: this.table,
        Key: { pk: spacePk(space), sk: POINTER_SK },
        ConsistentRead: consistent,
      }),
    );
    return pointerOf(space, r.Item);
  }

  async getSpaceState(space: string, consistent = true): Promise<SpaceState> {
    const r = await this.doc.send(
      new GetCommand({
        TableName: this.table,
        Key: { pk: spacePk(space), sk: POINTER_SK },
        ConsistentRead: consistent,
      }),
    );
    const i = r.Item ?? {};
    return {
      pointer: pointerOf(space, r.Item),
      erasureCounter: Number(i.erasureCounter ?? 0),
      erasureAdded: Number(i.erasureAdded ?? 0),
      ...(i.deletion ? { deletion: i.deletion as SpaceDeletion } : {}),
    };
  }

  async recordErasures(space: string, records: ErasureRecord[]): Promise<{ erasureCounter: number }> {
    // Records first, counters after: an instance that sees the new counter always finds the records.
    for (let i = 0; i < records.length; i += 25) {
      let items: Record<string, unknown>[] | undefined = records.slice(i, i + 25).map((rec) => ({
        PutRequest: { Item: { pk: spacePk(space), sk: erasureSk(rec.collection, rec.id), ...rec } },
      }));
      for (let attempt = 0; items?.length; attempt++) {
        if (attempt >= 10) throw new Error('DynamoDB left erasure writes unprocessed after 10 attempts');
        const r = await this.doc.send(
          new BatchWriteCommand({ RequestItems: { [this.table]: items as never } }),
        );
        items = r.UnprocessedItems?.[this.table] as Record<string, unknown>[] | undefined;
        if (items?.length) await new Promise((ok) => setTimeout(ok, 50 * 2 ** attempt));
      }
    }
    const r = await this.doc.send(
      new UpdateCommand({
        TableName: this.table,
        Key: { pk: spacePk(space), sk: POINTER_SK },
        UpdateExpression: 'ADD erasureCounter :one, erasureAdded :one',
        ExpressionAttributeValues: { ':one': 1 },
        ReturnValues: 'UPDATED_NEW',
      }),
    );
    return { erasureCounter: Number(r.Attributes?.erasureCounter ?? 0) };
  }

  async listErasures(space: string): Promise<ErasureRecord[]> {
    const out: ErasureRecord[] = [];
    let start: Item | undefined;
    do {
      const r = await this.doc.send(
        new QueryCommand({
          TableName: this.table,
          KeyConditionExpression: 'pk = :pk AND begins_with(sk, :e)',
          ExpressionAttributeValues: { ':pk': spacePk(space), ':e': 'ERASURE#' },
          ConsistentRead: true,
          ExclusiveStartKey: start,
        }),
      );
      for (const i of r.Items ?? []) out.push(strip<ErasureRecord>(i));
      start = r.LastEvaluatedKey;
    } while (start);
    return out;
  }

  async updateErasure(
    space: string,
    collection: string,
    id: string,
    from: ErasureStatus | undefined,
    patch: ErasurePatch,
  ): Promise<boolean> {
    const names: Record<string, string> = { '#s': 'status' };
    const values: Record<string, unknown> = {};
    const sets: string[] = [];
    const removes: string[] = [];
    Object.entries(patch).forEach(([k, v], i) => {
      if (v === undefined) return;
      names[`#f${i}`] = k;
      if (v === null) {
        removes.push(`#f${i}`);
        return;
      }
      values[`:v${i}`] = v;
      sets.push(`#f${i} = :v${i}`);
    });
    if (!sets.length && !removes.length) return true;
    if (from) values[':from'] = from;
    try {
      await this.doc.send(
        new UpdateCommand({
          TableName: this.table,
          Key: { pk: spacePk(space), sk: erasureSk(collection, id) },
          UpdateExpression: [
            sets.length ? `SET ${sets.join(', ')}` : '',
            removes.length ? `REMOVE ${removes.join(', ')}` : '',
          ]
            .filter(Boolean)
            .join(' '),
          ConditionExpression: from ? '#s = :from' : 'attribute_exists(pk) AND attribute_exists(#s)',
          ExpressionAttributeNames: names,
          ...(Object.keys(values).length ? { ExpressionAttributeValues: values } : {}),
        }),
      );
      return true;
    } catch (err) {
      if (isConditionFailure(err)) return false;
      throw err;
    }
  }

  async bumpErasureCounter(space: string): Promise<void> {
    await this.doc.send(
      new UpdateCommand({
        TableName: this.table,
        Key: { pk: spacePk(space), sk: POINTER_SK },
        UpdateExpression: 'ADD erasureCounter :one',
        ExpressionAttributeValues: { ':one': 1 },
      }),
    );
  }

  async switchManifest(
    space: string,
    version: string,
    expectedGeneration: number,
    next: ManifestSwitch,
  ): Promise<boolean> {
    try {
      await this.doc.send(
        new UpdateCommand({
          TableName: this.table,
          Key: { pk: spacePk(space), sk: versionSk(versionNumber(version)) },
          UpdateExpression: `SET manifestKey = :k, manifestGeneration = :g, purgedThrough = :p${
            next.purgeSwitchedAt ? ', purgeSwitchedAt = :at' : ''
          }`,
          ConditionExpression: `#s = :ready AND ${
            expectedGeneration === 0
              ? '(attribute_not_exists(manifestGeneration) OR manifestGeneration = :zero)'
              : 'manifestGeneration = :e'
          }`,
          ExpressionAttributeNames: { '#s': 'status' },
          ExpressionAttributeValues: {
            ':k': next.manifestKey,
            ':g': next.manifestGeneration,
            ':p': next.purgedThrough,
            ...(next.purgeSwitchedAt ? { ':at': next.purgeSwitchedAt } : {}),
            ':ready': 'READY',
            ...(expectedGeneration === 0 ? { ':zero': 0 } : { ':e': expectedGeneration }),
          },
        }),
      );
      return true;
    } catch (err) {
      if (isConditionFailure(err)) return false;
      throw err;
    }
  }

  async markSpaceDeleting(deletion: SpaceDeletion): Promise<void> {
    try {
      await this.doc.send(
        new UpdateCommand({
          TableName: this.table,
          Key: { pk: spacePk(deletion.space), sk: POINTER_SK },
          UpdateExpression: 'SET deletion = if_not_exists(deletion, :d)',
          ConditionExpression:
            deletion.generation === 0
              ? 'attribute_not_exists(generation) OR generation = :g'
              : 'generation = :g',
          ExpressionAttributeValues: { ':d': deletion, ':g': deletion.generation },
        }),
      );
    } catch (err) {
      if (!isConditionFailure(err)) throw err;
      const now = await this.getPointer(deletion.space);
      throw new PointerConflictError(
        `The pointer of space ${deletion.space} is at generation ${now.generation}, not ${deletion.generation}`,
        { cause: err, extras: { pointer: now } },
      );
    }
  }

  async deleteSpaceRecords(space: string): Promise<void> {
    const del = async (keys: Item[]) => {
      for (let i = 0; i < keys.length; i += 25) {
        let items: Record<string, unknown>[] | undefined = keys
          .slice(i, i + 25)
          .map((k) => ({ DeleteRequest: { Key: k } }));
        for (let attempt = 0; items?.length; attempt++) {
          if (attempt >= 10) throw new Error('DynamoDB left deletes unprocessed after 10 attempts');
          const r = await this.doc.send(
            new BatchWriteCommand({ RequestItems: { [this.table]: items as never } }),
          );
          items = r.UnprocessedItems?.[this.table] as Record<string, unknown>[] | undefined;
          if (items?.length) await new Promise((ok) => setTimeout(ok, 50 * 2 ** attempt));
        }
      }
    };
    let start: Item | undefined;
    do {
      const r = await this.doc.send(
        new QueryCommand({
          TableName: this.table,
          KeyConditionExpression: 'pk = :pk',
          ExpressionAttributeValues: { ':pk': spacePk(space) },
          ProjectionExpression: 'pk, sk',
          ExclusiveStartKey: start,
        }),
      );
      // The pointer (with the deletion mark) goes last: until then the space stays a 404 and resumable.
      await del((r.Items ?? []).filter((i) => i.sk !== POINTER_SK));
      start = r.LastEvaluatedKey;
    } while (start);
    await del([{ pk: spacePk(space), sk: POINTER_SK }]);
    await del([{ pk: REGISTRY_PK, sk: `SPACE#${space}` }]);
  }

  async casPointer(current: Pointer, next: Pointer): Promise<void> {
    const expectedGeneration = current.generation;
    // Heal history first: if the writer of the current pointer died before its history item, write it now.
    const healed = historyEntryFor(current);
    if (healed) await this.putHistory(next.space, healed);
    try {
      const fields = Object.entries(next).filter(([k, v]) => k !== 'space' && v !== undefined);
      await this.doc.send(
        new UpdateCommand({
          TableName: this.table,
          Key: { pk: spacePk(next.space), sk: POINTER_SK },
          // An update, not a put: the erasure counters and a deletion mark on the item survive a switch.
          UpdateExpression: `SET ${fields.map((_, i) => `#p${i} = :p${i}`).join(', ')}`,
          ConditionExpression: `attribute_not_exists(deletion) AND ${
            expectedGeneration === 0
              ? '(attribute_not_exists(generation) OR generation = :g)'
              : 'generation = :g'
          }`,
          ExpressionAttributeNames: Object.fromEntries(fields.map(([k], i) => [`#p${i}`, k])),
          ExpressionAttributeValues: {
            ':g': expectedGeneration,
            ...Object.fromEntries(fields.map(([, v], i) => [`:p${i}`, v])),
          },
        }),
      );
    } catch (err) {
      if (!isConditionFailure(err)) throw err;
      const now = await this.getPointer(next.space);
      throw new PointerConflictError(
        `The pointer of space ${next.space} is at generation ${now.generation}, not ${expectedGeneration}`,
        { cause: err, extras: { pointer: now } },
      );
    }
    const entry = historyEntryFor(next);
    if (entry) await this.putHistory(next.space, entry);
  }

  private async putHistory(space: string, e: HistoryEntry): Promise<void> {
    try {
      await this.doc.send(
        new PutCommand({
          TableName: this.table,
          Item: { pk: spacePk(space), sk: historySk(e.generation), ...e },
          ConditionExpression: 'attribute_not_exists(pk)',
        }),
      );
    } catch (err) {
      if (!isConditionFailure(err)) throw err;
    }
  }

  async listHistory(space: string, limit: number): Promise<HistoryEntry[]> {
    const [r, pointer] = await Promise.all([
      this.doc.send(
        new QueryCommand({
          TableName: this.table,
          KeyConditionExpression: 'pk = :pk AND begins_with(sk, :h)',
          ExpressionAttributeValues: { ':pk': spacePk(space), ':h': 'HISTORY#' },
          ScanIndexForward: false,
          Limit: limit,
        }),
      ),
      this.getPointer(space),
    ]);
    const entries = (r.Items ?? []).map((i) => strip<HistoryEntry>(i));
    // The newest switch is always recoverable from the pointer itself.
    const latest = historyEntryFor(pointer);
    if (latest && !entries.some((e) => e.generation === latest.generation)) entries.unshift(latest);
    return entries.sort((a, b) => b.generation - a.generation).slice(0, limit);
  }

  async getVersion(space: string, version: string): Promise<VersionRecord | undefined> {
    const n = parseVersion(version);
    if (n === undefined) return undefined;
    const r = await this.doc.send(
      new GetCommand({
        TableName: this.table,
        Key: { pk: spacePk(space), sk: versionSk(n) },
        ConsistentRead: true,
      }),
    );
    return r.Item ? strip<VersionRecord>(r.Item) : undefined;
  }

  async listVersions(space: string, limit: number, before?: string): Promise<VersionPage> {
    const upper = before === undefined ? Number.MAX_SAFE_INTEGER : versionNumber(before) - 1;
    if (upper < 1) return { versions: [] };
    const r = await this.doc.send(
      new QueryCommand({
        TableName: this.table,
        KeyConditionExpression: 'pk = :pk AND sk BETWEEN :lo AND :hi',
        ExpressionAttributeValues: {
          ':pk': spacePk(space),
          ':lo': versionSk(1),
          ':hi': versionSk(Math.min(upper, 999_999_999_999)),
        },
        ScanIndexForward: false,
        Limit: limit,
      }),
    );
    const versions = (r.Items ?? []).map((i) => strip<VersionRecord>(i));
    const last = versions[versions.length - 1];
    return { versions, ...(r.LastEvaluatedKey && last ? { next: last.version } : {}) };
  }

  async claimRelease(event: ReleaseEvent, now: Date): Promise<{ version: string; created: boolean }> {
    const key = { pk: spacePk(event.space), sk: claimSk(event.release, event.sequencer) };
    const existing = await this.doc.send(
      new GetCommand({ TableName: this.table, Key: key, ConsistentRead: true }),
    );
    if (existing.Item) return { version: existing.Item.version as string, created: false };
    const seq = await this.doc.send(
      new UpdateCommand({
        TableName: this.table,
        Key: { pk: spacePk(event.space), sk: SEQUENCE_SK },
        UpdateExpression: 'ADD #n :one',
        ExpressionAttributeNames: { '#n': 'next' },
        ExpressionAttributeValues: { ':one': 1 },
        ReturnValues: 'UPDATED_NEW',
      }),
    );
    const version = formatVersion(Number(seq.Attributes?.next));
    try {
      await this.doc.send(
        new PutCommand({
          TableName: this.table,
          Item: {
            ...key,
            version,
            releaseKey: event.key,
            sequencer: event.sequencer,
            claimedAt: now.toISOString(),
          },
          ConditionExpression: 'attribute_not_exists(pk)',
        }),
      );
    } catch (err) {
      if (!isConditionFailure(err)) throw err;
      // A concurrent delivery of the same event claimed it first; its number wins (ours is a gap).
      const won = await this.doc.send(
        new GetCommand({ TableName: this.table, Key: key, ConsistentRead: true }),
      );
      return { version: won.Item?.version as string, created: false };
    }
    await this.registerSpace(event.space, now);
    return { version, created: true };
  }

  async ensureVersion(record: VersionRecord): Promise<VersionRecord> {
    try {
      await this.doc.send(
        new PutCommand({
          TableName: this.table,
          Item: { pk: spacePk(record.space), sk: versionSk(record.number), ...record },
          ConditionExpression: 'attribute_not_exists(pk)',
        }),
      );
      return record;
    } catch (err) {
      if (!isConditionFailure(err)) throw err;
      return (await this.getVersion(record.space, record.version)) as VersionRecord;
    }
  }

  async acquireLease(
    space: string,
    version: string,
    owner: string,
    until: number,
    now: number,
  ): Promise<VersionRecord | undefined> {
    try {
      const r = await this.doc.send(
        new UpdateCommand({
          TableName: this.table,
          Key: { pk: spacePk(space), sk: versionSk(versionNumber(version)) },
          UpdateExpression:
            'SET leaseOwner = :o, leaseUntil = :u, attempts = if_not_exists(attempts, :zero) + :one',
          ConditionExpression:
            '#s = :building AND (attribute_not_exists(leaseUntil) OR leaseUntil < :now OR leaseOwner = :o)',
          ExpressionAttributeNames: { '#s': 'status' },
          ExpressionAttributeValues: {
            ':o': owner,
            ':u': until,
            ':now': now,
            ':building': 'BUILDING',
            ':zero': 0,
            ':one': 1,
          },
          ReturnValues: 'ALL_NEW',
        }),
      );
      return r.Attributes ? strip<VersionRecord>(r.Attributes) : undefined;
    } catch (err) {
      if (isConditionFailure(err)) return undefined;
      throw err;
    }
  }

  async renewLease(
    space: string,
    version: string,
    owner: string,
    until: number,
    now = Date.now(),
  ): Promise<boolean> {
    try {
      await this.doc.send(
        new UpdateCommand({
          TableName: this.table,
          Key: { pk: spacePk(space), sk: versionSk(versionNumber(version)) },
          UpdateExpression: 'SET leaseUntil = :u',
          // An attempt that wakes after its lease expired (a frozen Lambda environment thawed for the
          // retry) must not take it back from the retry.
          ConditionExpression: '#s = :building AND leaseOwner = :o AND leaseUntil >= :now',
          ExpressionAttributeNames: { '#s': 'status' },
          ExpressionAttributeValues: { ':u': until, ':o': owner, ':building': 'BUILDING', ':now': now },
        }),
      );
      return true;
    } catch (err) {
      if (isConditionFailure(err)) return false;
      throw err;
    }
  }

  async finishVersion(
    space: string,
    version: string,
    owner: string,
    patch: Partial<VersionRecord>,
  ): Promise<boolean> {
    const names: Record<string, string> = { '#s': 'status', '#lu': 'leaseUntil' };
    const values: Record<string, unknown> = { ':o': owner, ':building': 'BUILDING', ':zero': 0 };
    const sets = ['#lu = :zero'];
    Object.entries(patch).forEach(([k, v], i) => {
      if (v === undefined) return;
      names[`#f${i}`] = k;
      values[`:v${i}`] = v;
      sets.push(`#f${i} = :v${i}`);
    });
    try {
      await this.doc.send(
        new UpdateCommand({
          TableName: this.table,
          Key: { pk: spacePk(space), sk: versionSk(versionNumber(version)) },
          UpdateExpression: `SET ${sets.join(', ')}`,
          ConditionExpression: '#s = :building AND leaseOwner = :o',
          ExpressionAttributeNames: names,
          ExpressionAttributeValues: values,
        }),
      );
      return true;
    } catch (err) {
      if (isConditionFailure(err)) return false;
      throw err;
    }
  }

  async failAbandoned(
    space: string,
    version: string,
    now: number,
    seenAttempts: number,
    patch: Pick<VersionRecord, 'reason' | 'finishedAt'>,
  ): Promise<boolean> {
    try {
      await this.doc.send(
        new UpdateCommand({
          TableName: this.table,
          Key: { pk: spacePk(space), sk: versionSk(versionNumber(version)) },
          UpdateExpression: 'SET #s = :failed, reason = :r, finishedAt = :f, leaseUntil = :zero',
          ConditionExpression: `#s = :building AND (attribute_not_exists(leaseUntil) OR leaseUntil < :now) AND ${
            seenAttempts === 0 ? 'attribute_not_exists(attempts)' : 'attempts = :a'
          }`,
          ExpressionAttributeNames: { '#s': 'status' },
          ExpressionAttributeValues: {
            ':failed': 'FAILED',
            ':building': 'BUILDING',
            ':r': patch.reason ?? 'abandoned',
            ':f': patch.finishedAt ?? new Date(now).toISOString(),
            ':zero': 0,
            ':now': now,
            ...(seenAttempts === 0 ? {} : { ':a': seenAttempts }),
          },
        }),
      );
      return true;
    } catch (err) {
      if (isConditionFailure(err)) return false;
      throw err;
    }
  }

  async setVersionFields(
    space: string,
    version: string,
    status: VersionStatus,
    fields: VersionFields,
  ): Promise<boolean> {
    const names: Record<string, string> = { '#s': 'status' };
    const values: Record<string, unknown> = { ':status': status };
    const sets: string[] = [];
    Object.entries(fields).forEach(([k, v], i) => {
      if (v === undefined) return;
      names[`#f${i}`] = k;
      values[`:v${i}`] = v;
      sets.push(`#f${i} = :v${i}`);
    });
    if (!sets.length) return true;
    try {
      await this.doc.send(
        new UpdateCommand({
          TableName: this.table,
          Key: { pk: spacePk(space), sk: versionSk(versionNumber(version)) },
          UpdateExpression: `SET ${sets.join(', ')}`,
          ConditionExpression: '#s = :status',
          ExpressionAttributeNames: names,
          ExpressionAttributeValues: values,
        }),
      );
      return true;
    } catch (err) {
      if (isConditionFailure(err)) return false;
      throw err;
    }
  }

  async transitionStatus(
    space: string,
    version: string,
    from: VersionStatus,
    to: VersionStatus,
  ): Promise<boolean> {
    try {
      await this.doc.send(
        new UpdateCommand({
          TableName: this.table,
          Key: { pk: spacePk(space), sk: versionSk(versionNumber(version)) },
          UpdateExpression: 'SET #s = :to, statusChangedAt = :now',
          ConditionExpression: '#s = :from',
          ExpressionAttributeNames: { '#s': 'status' },
          ExpressionAttributeValues: { ':to': to, ':from': from, ':now': new Date().toISOString() },
        }),
      );
      return true;
    } catch (err) {
      if (isConditionFailure(err)) return false;
      throw err;
    }
  }

  async startTasks(
    space: string,
    version: string,
    owner: string,
    taskOwner: string,
    until: number,
    totals: { partitions: number; shards: number; startedAt?: number },
  ): Promise<boolean> {
    const tasks: TaskState = { ...totals, partitionsDone: 0, shardsDone: 0, rows: 0, done: {}, attempts: {} };
    try {
      await this.doc.send(
        new UpdateCommand({
          TableName: this.table,
          Key: { pk: spacePk(space), sk: versionSk(versionNumber(version)) },
          UpdateExpression: 'SET leaseOwner = :to, leaseUntil = :u, tasks = :t',
          ConditionExpression: '#s = :building AND leaseOwner = :o',
          ExpressionAttributeNames: { '#s': 'status' },
          ExpressionAttributeValues: {
            ':to': taskOwner,
            ':u': until,
            ':t': tasks,
            ':o': owner,
            ':building': 'BUILDING',
          },
        }),
      );
      return true;
    } catch (err) {
      if (isConditionFailure(err)) return false;
      throw err;
    }
  }

  async beginTask(
    space: string,
    version: string,
    key: string,
  ): Promise<{ attempts: number; done: boolean; record: VersionRecord } | undefined> {
    try {
      const r = await this.doc.send(
        new UpdateCommand({
          TableName: this.table,
          Key: { pk: spacePk(space), sk: versionSk(versionNumber(version)) },
          UpdateExpression: 'SET tasks.attempts.#k = if_not_exists(tasks.attempts.#k, :zero) + :one',
          ConditionExpression: '#s = :building AND attribute_exists(tasks)',
          ExpressionAttributeNames: { '#s': 'status', '#k': key },
          ExpressionAttributeValues: { ':building': 'BUILDING', ':zero': 0, ':one': 1 },
          ReturnValues: 'ALL_NEW',
        }),
      );
      const record = strip<VersionRecord>(r.Attributes ?? {});
      const t = record.tasks as TaskState;
      return { attempts: t.attempts[key] ?? 1, done: key in t.done, record };
    } catch (err) {
      if (isConditionFailure(err)) return undefined;
      throw err;
    }
  }

  async completeTask(
    space: string,
    version: string,
    key: string,
    rows: number,
  ): Promise<{ recorded: boolean; record: VersionRecord } | undefined> {
    const counter = key.startsWith('p:') ? 'partitionsDone' : 'shardsDone';
    const addRows = key.startsWith('p:') ? ', tasks.#rows = tasks.#rows + :rows' : '';
    try {
      const r = await this.doc.send(
        new UpdateCommand({
          TableName: this.table,
          Key: { pk: spacePk(space), sk: versionSk(versionNumber(version)) },
          UpdateExpression: `SET tasks.done.#k = :rows, tasks.#c = tasks.#c + :one${addRows}`,
          ConditionExpression:
            '#s = :building AND attribute_exists(tasks) AND attribute_not_exists(tasks.done.#k)',
          ExpressionAttributeNames: {
            '#s': 'status',
            '#k': key,
            '#c': counter,
            ...(addRows ? { '#rows': 'rows' } : {}),
          },
          ExpressionAttributeValues: { ':building': 'BUILDING', ':one': 1, ':rows': rows },
          ReturnValues: 'ALL_NEW',
        }),
      );
      return { recorded: true, record: strip<VersionRecord>(r.Attributes ?? {}) };
    } catch (err) {
      if (!isConditionFailure(err)) throw err;
      const record = await this.getVersion(space, version);
      if (record?.status !== 'BUILDING' || !record.tasks || !(key in record.tasks.done)) return undefined;
      return { recorded: false, record };
    }
  }

  async getSpaceSettings(space: string): Promise<SpaceSettings> {
    const r = await this.doc.send(
      new GetCommand({
        TableName: this.table,
        Key: { pk: spacePk(space), sk: SETTINGS_SK },
        ConsistentRead: true,
      }),
    );
    return withDefaults(r.Item ? strip<Partial<SpaceSettings>>(r.Item) : undefined);
  }

  async putSpaceSettings(space: string, settings: SpaceSettings): Promise<void> {
    await this.doc.send(
      new PutCommand({
        TableName: this.table,
        Item: { pk: spacePk(space), sk: SETTINGS_SK, ...settings },
      }),
    );
  }

  async deleteSpaceSettings(space: string): Promise<void> {
    await this.doc.send(
      new DeleteCommand({ TableName: this.table, Key: { pk: spacePk(space), sk: SETTINGS_SK } }),
    );
  }

  async registerSpace(space: string, now: Date): Promise<void> {
    await this.doc.send(
      new UpdateCommand({
        TableName: this.table,
        Key: { pk: REGISTRY_PK, sk: `SPACE#${space}` },
        UpdateExpression: 'SET #sp = :s, createdAt = if_not_exists(createdAt, :now)',
        ExpressionAttributeNames: { '#sp': 'space' },
        ExpressionAttributeValues: { ':s': space, ':now': now.toISOString() },
      }),
    );
  }

  async listSpaces(): Promise<string[]> {
    const spaces: string[] = [];
    let start: Item | undefined;
    do {
      const r = await this.doc.send(
        new QueryCommand({
          TableName: this.table,
          KeyConditionExpression: 'pk = :pk',
          ExpressionAttributeValues: { ':pk': REGISTRY_PK },
          ExclusiveStartKey: start,
        }),
      );
      for (const i of r.Items ?? []) spaces.push(i.space as string);
      start = r.LastEvaluatedKey;
    } while (start);
    return spaces;
  }

  async getPointers(spaces: string[]): Promise<Pointer[]> {
    const found = new Map<string, Pointer>();
    const deleting = new Set<string>();
    for (let i = 0; i < spaces.length; i += 100) {
      let keys: Item[] | undefined = spaces
        .slice(i, i + 100)
        .map((s) => ({ pk: spacePk(s), sk: POINTER_SK }));
      for (let attempt = 0; keys?.length && attempt < 8; attempt++) {
        const r = await this.doc.send(
          new BatchGetCommand({ RequestItems: { [this.table]: { Keys: keys } } }),
        );
        for (const item of r.Responses?.[this.table] ?? []) {
          const p = pointerOf(String(item.pk).slice('SPACE#'.length), item);
          // A space being deleted is left out (GET /v1/spaces stops listing it once DELETE is accepted).
          if ((item as { deletion?: unknown }).deletion) deleting.add(p.space);
          else found.set(p.space, p);
        }
        keys = r.UnprocessedKeys?.[this.table]?.Keys as Item[] | undefined;
      }
    }
    return spaces
      .filter((s) => !deleting.has(s))
      .map((s) => (found.has(s) ? { ...emptyPointer(s), ...found.get(s) } : emptyPointer(s)));
  }
}
