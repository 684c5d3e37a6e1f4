import { parseVersion } from '../core/names';
import type { ReleaseEvent, VersionRecord } from '../core/version';
import type { BuildContext, BuildDeps } from './deps';

type ClaimDeps = Pick<BuildDeps, 'registry' | 'config' | 'log' | 'owner'>;

/**
 * Maps the release event to its version (the same event, delivered any number of times, to the same
 * one) and creates its BUILDING record if it is new; returns the stored record either way.
 */
export async function claimVersion(
  registry: BuildDeps['registry'],
  event: ReleaseEvent,
  now: Date,
): Promise<VersionRecord> {
  const { version } = await registry.claimRelease(event, now);
  return registry.ensureVersion({
    space: event.space,
    version,
    number: parseVersion(version) as number,
    status: 'BUILDING',
    release: event.release,
    releaseKey: event.key,
    releaseEtag: event.etag,
    sequencer: event.sequencer,
    createdAt: now.toISOString(),
  });
}

/** The build lease while this builder holds it: renewed in the background until stopped. */
export interface Lease {
  /** Build attempts so far, this one included. */
  attempts: number;
  /** True once a renewal found someone else holding it: the build must not write READY. */
  lost(): boolean;
  stop(): void;
  /** Gives the lease up now so a retry need not wait for it to expire. */
  release(): Promise<void>;
}

/** Takes the build lease of a BUILDING version; undefined while another builder holds it. */
export async function takeLease(deps: ClaimDeps, ctx: BuildContext): Promise<Lease | undefined> {
  const { registry, config, log, owner } = deps;
  const { space, version } = ctx;
  const leased = await registry.acquireLease(space, version, owner, Date.now() + config.leaseMs, Date.now());
  if (!leased) return undefined;

  let lost = false;
  const renew = setInterval(
    () => {
      registry
        .renewLease(space, version, owner, Date.now() + config.leaseMs)
        .then((ok) => {
          if (!ok) lost = true;
        })
        // A failed renewal is retried on the next tick; if they all fail the lease expires and
        // finishVersion refuses this builder, so nothing is written twice.
        .catch((err) => log.warn('lease renewal failed', { ...ctx, error: String(err) }));
    },
    Math.max(1000, Math.floor(config.leaseMs / 3)),
  );
  renew.unref();

  return {
    attempts: leased.attempts ?? 1,
    lost: () => lost,
    stop: () => clearInterval(renew),
    async release() {
      try {
        await registry.renewLease(space, version, owner, 0);
      } catch (err) {
        // The retry then waits out the lease (≤ leaseMs) instead of starting at once; nothing else is lost.
        log.warn('could not release the build lease; the retry waits for it to expire', {
          ...ctx,
          error: String(err),
        });
      }
    },
  };
}
