import { EVENT_DETAIL_TYPE } from '../contract';
import { parseVersion } from '../core/names';
import type { ReleaseEvent } from '../core/version';
import type { BuildDeps, BuildOutcome } from './deps';

/**
 * A release.json in a valid space under a folder name the contract refuses: recorded as a FAILED
 * version with the reason (and a VersionFailed event), so the upload is visible in the API and the
 * CLI instead of vanishing. Idempotent like a build: the same event maps to the same version.
 */
export async function refuseRelease(
  deps: Pick<BuildDeps, 'registry' | 'log' | 'events' | 'now'>,
  event: ReleaseEvent,
  reason: string,
): Promise<BuildOutcome> {
  const now = (deps.now ?? (() => new Date()))();
  const { version } = await deps.registry.claimRelease(event, now);
  const record = await deps.registry.ensureVersion({
    space: event.space,
    version,
    number: parseVersion(version) as number,
    status: 'FAILED',
    release: event.release,
    releaseKey: event.key,
    releaseEtag: event.etag,
    sequencer: event.sequencer,
    createdAt: now.toISOString(),
    finishedAt: now.toISOString(),
    reason,
    problems: [{ file: 'release.json', message: reason }],
    problemCount: 1,
  });
  if (record.status !== 'FAILED')
    return { status: 'SKIPPED', version, reason: `version is ${record.status}` };
  const ctx = { space: event.space, version, release: event.release, key: event.key };
  deps.log.error('release refused', { ...ctx, reason: record.reason });
  await deps.events.publish(EVENT_DETAIL_TYPE.versionFailed, { ...ctx, reason: record.reason });
  return { status: 'FAILED', version, reason: record.reason ?? reason };
}
