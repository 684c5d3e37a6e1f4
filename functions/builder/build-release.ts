import { EVENT_DETAIL_TYPE, KEY_PREFIX } from '../contract';
import { ReleaseInvalidError } from '../core/errors';
import { MAX_BUILD_ATTEMPTS, type ReleaseEvent, type VersionRecord } from '../core/version';
import { manifestKey } from '../snapshot/manifest';
import { activateBuilt } from './activate-built';
import { type BuildGuard, buildSnapshot, type SnapshotResult } from './build-snapshot';
import { claimVersion, type Lease, takeLease } from './claim';
import {
  BuildAbortedError,
  BuildBusyError,
  type BuildContext,
  type BuildDeps,
  type BuildOutcome,
} from './deps';
import { changedInput, type InputEtags } from './ingest';
import { deleteInputsIfAsked } from './inputs';
import { applyRetention } from './retention';
import { deleteStaging } from './sharded/layout';
import { startShardedBuild } from './sharded/plan';
import { cleanStaleWorkDirs, newWorkDir, workRoot } from './work-dir';

export type { BuildDeps, BuildOutcome } from './deps';
export { BuildAbortedError, BuildBusyError } from './deps';
export { segmentCount } from './index-build';
export { sampleRows } from './quality-gate';

const DEFAULT_BUSY_WAIT_MS = 20_000;

/**
 * Turns one `release.json` event into one version: claim, build under a lease, READY or FAILED, then
 * activate. Returns for every settled outcome (READY, FAILED, a duplicate of a settled version);
 * throws for what should be retried: a failed attempt under the attempts cap, an invocation that hit
 * its deadline (BuildAbortedError), another attempt holding a live lease (BuildBusyError).
 */
export async function buildRelease(deps: BuildDeps, event: ReleaseEvent): Promise<BuildOutcome> {
  const now = deps.now ?? (() => new Date());
  const { registry, log } = deps;
  const record = await claimVersion(registry, event, now());
  const { version } = record;
  const ctx: BuildContext = { space: event.space, version, release: event.release };

  const lease = await leaseOrSettled(deps, ctx, record);
  if (!('attempts' in lease)) return lease;

  if (lease.attempts > MAX_BUILD_ATTEMPTS) {
    // Earlier attempts ended without a result (deadline, kill, OOM: nothing marked them): give up.
    lease.stop();
    const reason = `gave up after ${lease.attempts - 1} build attempts that ended without a result (error, deadline, kill or out of memory)`;
    return await markFailed(deps, ctx, reason);
  }

  const root = workRoot(deps.config.cacheDir);
  // Before the disk check: files of a killed build must not make this release look too big.
  await cleanStaleWorkDirs(root, deps.config.leaseMs, log);
  const work = await newWorkDir(root, Math.floor(deps.config.leaseMs / 3), log);
  const guard: BuildGuard = {
    check() {
      if (deps.signal?.aborted) throw new BuildAbortedError('the build reached its deadline and stopped');
      if (lease.lost()) throw new Error('lost the build lease while building');
    },
    async confirm() {
      guard.check();
      if (!(await lease.confirm())) throw new Error('lost the build lease while building');
    },
  };
  const started = Date.now();
  let result: SnapshotResult;
  try {
    // A release with a sharded collection is built by build tasks (builder/sharded/); this build plans them.
    // Both paths read the inputs by the ETags recorded when the build first saw them.
    const inputs: InputEtags = {
      recorded: lease.record.inputEtags,
      save: async (inputEtags) => {
        inputs.recorded = inputEtags;
        await registry.setVersionFields(event.space, version, 'BUILDING', { inputEtags });
      },
    };
    const dispatched = await untilAborted(
      startShardedBuild(deps, event, ctx, lease, work.path, inputs),
      deps.signal,
    );
    if (dispatched) return dispatched;
    // Everything up to READY races the deadline: whatever step hangs, the attempt stops in time.
    result = await untilAborted(
      (async () => {
        const r = await buildSnapshot(deps, event, ctx, work.path, guard, inputs);
        await deps.beforeReady?.(version);
        return r;
      })(),
      deps.signal,
    );
    await guard.confirm();
    const finished = await registry.finishVersion(event.space, version, deps.owner, {
      status: 'READY',
      finishedAt: now().toISOString(),
      manifestKey: manifestKey(event.space, version),
      collections: result.collections,
      timings: { ...result.timings, totalMs: Date.now() - started },
      quality: result.quality,
      autoActivate: result.spec.activate,
    });
    if (!finished) throw new Error('lost the build lease before READY');
  } catch (err) {
    return await failed(deps, ctx, lease, err);
  } finally {
    lease.stop();
    await work.dispose();
  }
  log.info('version READY', { ...ctx, timings: result.timings });
  return afterReady(deps, ctx, result.spec.activate, true, result.collections);
}

/**
 * The lease, or the outcome when there is nothing to build: the version is already READY (a redelivery
 * after a crash between READY and activation: finish the activation) or FAILED/DELETED. While another
 * attempt holds a live lease, waits up to busyWaitMs for it to settle (or expire, then takes over),
 * then throws BuildBusyError so the platform delivers the event again.
 */
async function leaseOrSettled(
  deps: BuildDeps,
  ctx: BuildContext,
  record: VersionRecord,
): Promise<Lease | BuildOutcome> {
  const deadline = Date.now() + (deps.busyWaitMs ?? DEFAULT_BUSY_WAIT_MS);
  let current: VersionRecord | undefined = record;
  for (;;) {
    if (current?.status === 'READY') {
      deps.log.info('version already READY; completing activation', ctx);
      return afterReady(deps, ctx, current.autoActivate !== false, false);
    }
    if (current && current.status !== 'BUILDING') {
      return { status: 'SKIPPED', version: ctx.version, reason: `version is ${current.status}` };
    }
    const lease = await takeLease(deps, ctx);
    if (lease) return lease;
    current = await deps.registry.getVersion(ctx.space, ctx.version);
    if (current?.status !== 'BUILDING') continue;
    if (Date.now() >= deadline || deps.signal?.aborted) {
      deps.log.info('another attempt holds the build lease; asking for a retry', ctx);
      throw new BuildBusyError(
        `${ctx.space} ${ctx.version} is being built by another attempt (lease until ${new Date(current.leaseUntil ?? 0).toISOString()}); deliver the event again later`,
      );
    }
    await new Promise((r) => setTimeout(r, Math.min(500, Math.max(10, deadline - Date.now()))));
  }
}

/**
 * Once READY is written nothing marks the version FAILED: the VersionReady event, the activation and
 * retention each run on their own; an error is logged, kept in the record (`afterReadyErrors`) and in
 * the outcome. An activation that did not happen is finished by a redelivery or by the sweeper.
 */
async function afterReady(
  deps: BuildDeps,
  ctx: BuildContext,
  activate: boolean,
  built: boolean,
  collections?: SnapshotResult['collections'],
): Promise<BuildOutcome> {
  const { space, version } = ctx;
  const errors: string[] = [];
  const step = async <T>(name: string, fn: () => Promise<T>): Promise<T | undefined> => {
    try {
      return await fn();
    } catch (err) {
      errors.push(`${name}: ${(err as Error).message ?? String(err)}`);
      deps.log.error(`${name} failed after READY; the version stays READY`, { ...ctx, error: String(err) });
      return undefined;
    }
  };
  if (built) {
    await step('VersionReady event', () =>
      deps.events.publish(EVENT_DETAIL_TYPE.versionReady, { ...ctx, collections }),
    );
  }
  let activation: Awaited<ReturnType<typeof activateBuilt>> | undefined;
  if (activate) {
    activation = await step('activation', async () => {
      await deps.beforeActivate?.(version);
      return activateBuilt(deps, space, version);
    });
  }
  if (built) {
    await step('retention', () =>
      applyRetention(
        { ...deps, keep: deps.config.retainVersions, graceMs: deps.config.retentionGraceMs },
        space,
      ),
    );
    await deleteInputsIfAsked(deps, space, ctx.release);
  }
  if (errors.length) {
    await deps.registry
      .setVersionFields(space, version, 'READY', { afterReadyErrors: errors })
      .catch((err) =>
        deps.log.warn('could not record the errors after READY', { ...ctx, error: String(err) }),
      );
  }
  return { status: 'READY', version, activation, built, ...(errors.length ? { errors } : {}) };
}

/** Races the build against the invocation's deadline; the build itself stops at its next guard check. */
async function untilAborted<T>(work: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return work;
  work.catch(() => undefined);
  let onAbort: () => void = () => undefined;
  const aborted = new Promise<never>((_, reject) => {
    onAbort = () => reject(new BuildAbortedError('the build reached its deadline and stopped'));
    if (signal.aborted) onAbort();
    else signal.addEventListener('abort', onAbort, { once: true });
  });
  try {
    return await Promise.race([work, aborted]);
  } finally {
    signal.removeEventListener('abort', onAbort);
  }
}

async function markFailed(
  deps: BuildDeps,
  ctx: BuildContext,
  reason: string,
  extra: { problems?: ReleaseInvalidError['problems']; problemCount?: number } = {},
): Promise<BuildOutcome> {
  const { space, version } = ctx;
  const finishedAt = (deps.now ?? (() => new Date()))().toISOString();
  const finished = await deps.registry.finishVersion(space, version, deps.owner, {
    status: 'FAILED',
    finishedAt,
    reason,
    ...extra,
  });
  if (!finished) throw new BuildBusyError(`${space} ${version}: lost the build lease before FAILED`);
  deps.log.error('build FAILED', { ...ctx, reason });
  await deps.events.publish(EVENT_DETAIL_TYPE.versionFailed, { ...ctx, reason });
  // A sharded build may have written its plan before it failed: nothing of the version stays.
  await deleteStaging(deps.store, space, version).catch((err) =>
    deps.log.warn('could not delete staging; the sweeper removes it', { ...ctx, error: String(err) }),
  );
  await deleteInputsIfAsked(deps, space, ctx.release);
  return { status: 'FAILED', version, reason };
}

/**
 * A refused release (or one whose files changed under the build) is FAILED at once; any other error,
 * a deadline included, is retried, and FAILED at the attempts cap.
 */
async function failed(deps: BuildDeps, ctx: BuildContext, lease: Lease, err: unknown): Promise<BuildOutcome> {
  const { log } = deps;
  lease.stop();
  const refused = changedInput(err, `${KEY_PREFIX.incoming}${ctx.space}/${ctx.release}/`) ?? err;
  if (refused instanceof ReleaseInvalidError) {
    log.warn('release refused', { ...ctx, reason: refused.message });
    return markFailed(deps, ctx, refused.message, {
      problems: refused.problems,
      problemCount: refused.problemCount,
    });
  }
  const what = err instanceof BuildAbortedError ? 'reached its deadline' : 'failed';
  if (lease.attempts >= MAX_BUILD_ATTEMPTS) {
    return markFailed(
      deps,
      ctx,
      `build ${what} on attempt ${lease.attempts} of ${MAX_BUILD_ATTEMPTS}; last error: ${(err as Error).message}`,
    );
  }
  // Let the platform retry (Lambda async retries, or redelivery): release the lease for the next attempt.
  await lease.release();
  log.error(`build attempt ${what}; will be retried`, {
    ...ctx,
    attempts: lease.attempts,
    error: String(err),
  });
  throw err;
}

export type { VersionRecord };
