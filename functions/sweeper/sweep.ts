// sweeper/: what no event will finish — abandoned builds, retention runs that died, activations lost after READY.
// May import core/, builder/ (its use cases), snapshot/, common/ and contract.ts; never query/ or admin/.
import { activateBuilt } from '../builder/activate-built';
import { deleteInputsIfAsked } from '../builder/inputs';
import { allVersions, deleteSnapshotFiles } from '../builder/retention';
import { deleteStaging } from '../builder/sharded/layout';
import { EVENT_DETAIL_TYPE } from '../contract';
import type { BlobStore, EventPublisher, Log, PointerMoveNotifier, Registry } from '../core/ports';
import { MAX_BUILD_ATTEMPTS, type VersionRecord } from '../core/version';
import { finishSpaceDeletion, type PurgeReport, purgeSpace } from './purge';

export interface SweepDeps {
  store: BlobStore;
  registry: Registry;
  log: Log;
  events: EventPublisher;
  moves?: PointerMoveNotifier;
  now?: () => Date;
  /**
   * A BUILDING version under the attempts cap whose lease expired this long ago, or that never got a
   * lease this long after its claim, has no retry coming: FAILED (ENV.sweepStaleMs; default 1 h).
   */
  staleMs: number;
  /**
   * A sharded build that handed its lease to the task phase this long ago without recording that it
   * dispatched the tasks died in between (no task will come): FAILED (ENV.taskStartMs; default 15 min).
   */
  taskStartMs?: number;
  /** Retention's grace period: a DELETED version older than this whose files remain is finished. */
  graceMs: number;
  /** Scratch directory for purges (downloads, rebuilt segments); without it erasures are not purged. */
  workDir?: string;
  /**
   * After a version settles, a build task that began before may still write to its staging this long
   * (default DEFAULT_STAGING_QUIET_MS): until then the sweeper keeps deleting what appears there.
   */
  stagingQuietMs?: number;
  /** Epoch ms the invocation is killed at (Lambda's remaining time): purges start no rebuild past it. */
  deadlineMs?: number;
  /** VICINITY_PURGE_SEGMENT_ITEMS: the most items one rebuilt segment piece holds. */
  pieceItems?: number;
}

export const DEFAULT_SWEEP_STALE_MS = 3_600_000;
export const DEFAULT_TASK_START_MS = 15 * 60_000;
/** The longest a build or build-task invocation runs (Lambda's 15-minute limit): the staging quiet period. */
export const DEFAULT_STAGING_QUIET_MS = 15 * 60_000;
/** Settled versions whose staging prefix one sweep lists, per space (newest first): bounded work per sweep. */
export const STAGING_VERSIONS_PER_SWEEP = 25;

export interface SweepReport {
  /** BUILDING versions marked FAILED, with the reason. */
  failed: { space: string; version: string; reason: string }[];
  /** DELETED versions the pointer names (active or previous), restored to READY. */
  restored: { space: string; version: string }[];
  /** DELETED versions whose files a dead retention run left, now deleted. */
  purged: { space: string; version: string }[];
  /** READY versions whose automatic activation was lost after READY, now activated. */
  activated: { space: string; version: string }[];
  /** Spaces the sweep could not finish (it goes on with the others; the next sweep tries again). */
  errors: { space: string; error: string }[];
  /** Erasures purged from stored snapshots (sweeper/purge.ts). */
  erasure: PurgeReport;
  /** Spaces whose deletion this sweep finished. */
  spacesDeleted: string[];
  /** Settled (FAILED, READY, DELETED) sharded builds whose staging objects this sweep deleted, and how many. */
  staging: { space: string; version: string; status: string; objects: number }[];
}

/**
 * One pass over every space. Idempotent and safe next to builds, retention and activations: every
 * change is a conditional write that loses to anyone who moved first.
 */
export async function sweep(deps: SweepDeps): Promise<SweepReport> {
  const report: SweepReport = {
    failed: [],
    restored: [],
    purged: [],
    activated: [],
    errors: [],
    erasure: { rewritten: [], purged: 0, deletedObjects: 0 },
    spacesDeleted: [],
    staging: [],
  };
  const spaces = await deps.registry.listSpaces();
  for (const space of spaces) {
    try {
      await sweepSpace(deps, space, report);
    } catch (err) {
      deps.log.error('sweep of a space failed; the next sweep tries again', { space, error: String(err) });
      report.errors.push({ space, error: String(err) });
    }
  }
  // Erased ids out of every retained snapshot (invariant 9): after every space's cheap duties, so a
  // long purge (bounded by the deadline) never starves them.
  const workDir = deps.workDir;
  if (workDir)
    for (const space of spaces) {
      if (report.errors.some((e) => e.space === space) || report.spacesDeleted.includes(space)) continue;
      try {
        const state = await deps.registry.getSpaceState(space);
        if (state.deletion) continue;
        await purgeSpace({ ...deps, workDir }, space, state, report.erasure);
      } catch (err) {
        deps.log.error('purge of a space failed; the next sweep tries again', { space, error: String(err) });
        report.errors.push({ space, error: String(err) });
      }
    }
  return report;
}

/**
 * Why a sharded build's task phase will never start, or undefined: the build handed the version's lease
 * to the tasks (4 h by default) and died before recording that every partition task was dispatched, so
 * the lease would hold the version BUILDING for hours with nothing running.
 */
export function undispatchedReason(v: VersionRecord, now: number, taskStartMs: number): string | undefined {
  const t = v.tasks;
  if (!t || t.startedAt === undefined || v.tasksDispatchedAt !== undefined) return undefined;
  if (now - t.startedAt < taskStartMs) return undefined;
  return `the build handed the version to its tasks at ${new Date(t.startedAt).toISOString()} but never recorded dispatching them within ${Math.round(taskStartMs / 1000)} s (the build died between the hand-off and the dispatch); upload release.json again to rebuild`;
}

/** Why a BUILDING version is abandoned at `now`, or undefined while a build may still finish it. */
export function abandonedReason(v: VersionRecord, now: number, staleMs: number): string | undefined {
  const attempts = v.attempts ?? 0;
  const leaseUntil = v.leaseUntil;
  if (leaseUntil !== undefined && leaseUntil >= now) return undefined;
  if (attempts === 0) {
    const created = Date.parse(v.createdAt);
    if (now - created < staleMs) return undefined;
    return `no build attempt took the lease within ${Math.round(staleMs / 1000)} s of the claim (the builder died between claiming and leasing)`;
  }
  const expired = new Date(leaseUntil ?? 0).toISOString();
  if (attempts >= MAX_BUILD_ATTEMPTS) {
    return `${attempts} build attempts ended without a result (deadline, kill or out of memory); the last lease expired at ${expired}`;
  }
  if (now - (leaseUntil ?? 0) < staleMs) return undefined;
  return `attempt ${attempts} ended without a result and no retry came within ${Math.round(staleMs / 1000)} s (lease expired at ${expired})`;
}

async function sweepSpace(deps: SweepDeps, space: string, report: SweepReport): Promise<void> {
  const { registry, log } = deps;
  const clock = deps.now ?? (() => new Date());
  const now = clock();
  const state = await registry.getSpaceState(space);
  if (state.deletion) {
    // A space being deleted: finish it (resumable: a crash leaves the mark for the next sweep).
    await finishSpaceDeletion(deps, space, state);
    report.spacesDeleted.push(space);
    return;
  }
  const versions = await allVersions(registry, space);
  const pointer = await registry.getPointer(space);

  for (const v of versions.filter((x) => x.status === 'BUILDING')) {
    const undispatched = undispatchedReason(v, now.getTime(), deps.taskStartMs ?? DEFAULT_TASK_START_MS);
    const reason = undispatched ?? abandonedReason(v, now.getTime(), deps.staleMs);
    if (!reason) continue;
    const patch = { reason, finishedAt: now.toISOString() };
    // Undispatched: the task phase's owner still holds a live lease; only that owner's FAILED is accepted.
    const failed =
      undispatched && v.leaseOwner
        ? await registry.finishVersion(space, v.version, v.leaseOwner, { status: 'FAILED', ...patch })
        : await registry.failAbandoned(space, v.version, now.getTime(), v.attempts ?? 0, patch);
    if (!failed) continue;
    log.error('sweeper FAILED an abandoned build', { space, version: v.version, reason });
    report.failed.push({ space, version: v.version, reason });
    await deps.events.publish(EVENT_DETAIL_TYPE.versionFailed, {
      space,
      version: v.version,
      release: v.release,
      reason,
    });
    // Nothing of a half-built version stays: its staging goes now (a task still writing deletes its
    // own outputs when it finds the version settled; what a killed one leaves, a later sweep deletes).
    await cleanStaging(deps, report, space, v.version, 'FAILED').catch((err) =>
      log.warn('could not delete staging; the next sweep tries again', {
        space,
        version: v.version,
        error: String(err),
      }),
    );
    // Its build has ended: the release's inputs go if it asked (deleteInputsAfterBuild).
    await deleteInputsIfAsked(deps, space, v.release);
  }

  for (const v of versions.filter((x) => x.status === 'DELETED' && !x.filesDeletedAt)) {
    if (v.version === pointer.version || v.version === pointer.previous) {
      // A retention run died after marking it, and an activation chose it meanwhile: never leave the
      // active or previous version DELETED.
      if (await registry.transitionStatus(space, v.version, 'DELETED', 'READY')) {
        log.warn('sweeper restored a version the pointer names to READY', { space, version: v.version });
        report.restored.push({ space, version: v.version });
      }
      continue;
    }
    const since = Date.parse(v.statusChangedAt ?? v.finishedAt ?? v.createdAt);
    if (now.getTime() - since < deps.graceMs) continue; // a live retention run is still in its grace period
    const fresh = await registry.getPointer(space);
    if (v.version === fresh.version || v.version === fresh.previous) continue; // next sweep restores it
    await deleteSnapshotFiles(deps, space, v.version, now);
    log.warn('sweeper finished a retention run that died', { space, version: v.version });
    report.purged.push({ space, version: v.version });
  }

  // An activation lost after READY (the build threw or died there): the newest READY version that asked
  // for it, is above highWater, was never declined, and settled within staleMs.
  const candidate = versions
    .filter(
      (v) =>
        v.status === 'READY' &&
        v.autoActivate !== false &&
        v.notActivatedReason === undefined &&
        v.number > pointer.highWater &&
        now.getTime() - Date.parse(v.finishedAt ?? v.createdAt) < deps.staleMs,
    )
    .sort((a, b) => b.number - a.number)[0];
  if (candidate) {
    const activation = await activateBuilt({ ...deps, now: clock }, space, candidate.version);
    if (activation.activated) {
      log.warn('sweeper finished an activation lost after READY', { space, version: candidate.version });
      report.activated.push({ space, version: candidate.version });
    }
  }

  // Staging a settled build left behind (the path that settled it died or could not delete it, or a
  // task that began before it settled wrote after): deleted on every sweep; once the quiet period after
  // settling has passed, the version is marked (stagingDeletedAt) and never listed again. BUILDING
  // versions are never looked at. FAILED versions of any kind (a build may die after writing its plan
  // and before the hand-off); READY and DELETED ones only if sharded (`tasks`).
  const quietMs = deps.stagingQuietMs ?? DEFAULT_STAGING_QUIET_MS;
  const settled = versions
    .filter(
      (v) =>
        v.stagingDeletedAt === undefined &&
        (v.status === 'FAILED' || ((v.status === 'READY' || v.status === 'DELETED') && v.tasks)),
    )
    .sort((a, b) => b.number - a.number)
    .slice(0, STAGING_VERSIONS_PER_SWEEP);
  for (const v of settled) {
    try {
      await cleanStaging(deps, report, space, v.version, v.status);
      const since = Date.parse(v.finishedAt ?? v.statusChangedAt ?? v.createdAt);
      if (now.getTime() - since >= quietMs)
        await registry.setVersionFields(space, v.version, v.status, { stagingDeletedAt: now.toISOString() });
    } catch (err) {
      // The rest of the sweep goes on; the next sweep lists this version again.
      log.warn('could not delete staging; the next sweep tries again', {
        space,
        version: v.version,
        error: String(err),
      });
    }
  }
}

/** Deletes a settled version's staging objects; a trace (WARN + report) when there were any. */
async function cleanStaging(
  deps: SweepDeps,
  report: SweepReport,
  space: string,
  version: string,
  status: string,
): Promise<void> {
  const objects = await deleteStaging(deps.store, space, version);
  if (!objects) return;
  deps.log.warn('sweeper deleted the staging objects a settled build left', {
    space,
    version,
    status,
    objects,
  });
  report.staging.push({ space, version, status, objects });
}
