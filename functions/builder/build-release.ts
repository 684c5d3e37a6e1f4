import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { EVENT_DETAIL_TYPE } from '../contract';
import { ReleaseInvalidError } from '../core/errors';
import type { ReleaseEvent, VersionRecord } from '../core/version';
import { manifestKey } from '../snapshot/manifest';
import { activateBuilt } from './activate-built';
import { buildSnapshot } from './build-snapshot';
import { claimVersion, type Lease, takeLease } from './claim';
import type { BuildContext, BuildDeps, BuildOutcome } from './deps';
import { applyRetention } from './retention';
import { startShardedBuild } from './sharded/plan';

export type { BuildDeps, BuildOutcome } from './deps';
export { segmentCount } from './index-build';
export { sampleRows } from './quality-gate';

/** Turns one `release.json` event into one version: claim, build under a lease, READY or FAILED, then activate. */
export async function buildRelease(deps: BuildDeps, event: ReleaseEvent): Promise<BuildOutcome> {
  const now = deps.now ?? (() => new Date());
  const { registry, log } = deps;
  const record = await claimVersion(registry, event, now());
  const { version } = record;
  const ctx: BuildContext = { space: event.space, version, release: event.release };

  if (record.status === 'READY') {
    // A redelivered event after a crash between READY and activation: finish the activation only.
    log.info('version already READY; completing activation', ctx);
    const activation =
      record.autoActivate === false ? undefined : await activateBuilt(deps, event.space, version);
    return { status: 'READY', version, activation, built: false };
  }
  if (record.status !== 'BUILDING') {
    return { status: 'SKIPPED', version, reason: `version is ${record.status}` };
  }

  const lease = await takeLease(deps, ctx);
  if (!lease) {
    log.info('another builder holds the lease', ctx);
    return { status: 'BUSY', version };
  }

  const workDir = join(deps.config.cacheDir, 'build', `${event.space}-${version}-${process.pid}`);
  try {
    // A release with a sharded collection is built by build tasks (builder/sharded/); this build plans them.
    const dispatched = await startShardedBuild(deps, event, ctx, lease, workDir);
    if (dispatched) return dispatched;
    const started = Date.now();
    const result = await buildSnapshot(deps, event, ctx, workDir, lease.lost);
    await deps.beforeReady?.(version);
    const finished = await registry.finishVersion(event.space, version, deps.owner, {
      status: 'READY',
      finishedAt: now().toISOString(),
      manifestKey: manifestKey(event.space, version),
      collections: result.collections,
      timings: { ...result.timings, totalMs: Date.now() - started },
      quality: result.quality,
      autoActivate: result.spec.activate,
    });
    if (!finished) {
      log.warn('lost the build lease before READY; another builder owns this version now', ctx);
      return { status: 'BUSY', version };
    }
    log.info('version READY', { ...ctx, timings: result.timings });
    await deps.events.publish(EVENT_DETAIL_TYPE.versionReady, { ...ctx, collections: result.collections });
    await deps.beforeActivate?.(version);
    const activation = result.spec.activate ? await activateBuilt(deps, event.space, version) : undefined;
    await applyRetention(
      { ...deps, keep: deps.config.retainVersions, graceMs: deps.config.retentionGraceMs },
      event.space,
    ).catch((err) =>
      log.warn('retention failed; will run again after the next build', { ...ctx, error: String(err) }),
    );
    return { status: 'READY', version, activation, built: true };
  } catch (err) {
    return await failed(deps, ctx, lease, err);
  } finally {
    lease.stop();
    await rm(workDir, { recursive: true, force: true }).catch((err) =>
      log.warn('could not remove the build work dir; it stays in /tmp until the instance goes', {
        ...ctx,
        workDir,
        error: String(err),
      }),
    );
  }
}

/** A refused release is FAILED at once; any other error is retried, and FAILED after the third attempt. */
async function failed(deps: BuildDeps, ctx: BuildContext, lease: Lease, err: unknown): Promise<BuildOutcome> {
  const { registry, log } = deps;
  const { space, version } = ctx;
  const finishedAt = (deps.now ?? (() => new Date()))().toISOString();
  if (err instanceof ReleaseInvalidError) {
    await registry.finishVersion(space, version, deps.owner, {
      status: 'FAILED',
      finishedAt,
      reason: err.message,
      problems: err.problems,
      problemCount: err.problemCount,
    });
    log.warn('release refused', { ...ctx, reason: err.message });
    await deps.events.publish(EVENT_DETAIL_TYPE.versionFailed, { ...ctx, reason: err.message });
    return { status: 'FAILED', version, reason: err.message };
  }
  if (lease.attempts >= 3) {
    const reason = `build failed ${lease.attempts} times; last error: ${(err as Error).message}`;
    await registry.finishVersion(space, version, deps.owner, { status: 'FAILED', finishedAt, reason });
    log.error('build failed for good', { ...ctx, error: String(err) });
    await deps.events.publish(EVENT_DETAIL_TYPE.versionFailed, { ...ctx, reason });
    return { status: 'FAILED', version, reason };
  }
  // Let the platform retry (Lambda async retries, or redelivery): release the lease for the next attempt.
  await lease.release();
  log.error('build attempt failed; will be retried', {
    ...ctx,
    attempts: lease.attempts,
    error: String(err),
  });
  throw err;
}

export type { VersionRecord };
