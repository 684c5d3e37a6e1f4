import { parseVersion } from '../core/names';
import type { ReleaseEvent, VersionRecord } from '../core/version';
import type { BuildContext, BuildDeps } from './deps';

type ClaimDeps = Pick<BuildDeps, 'registry' | 'config' | 'log' | 'owner' | 'now'>;

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
  /** The version record as the lease was taken (input ETags recorded by earlier attempts). */
  record: VersionRecord;
  /** True once a renewal found the lease gone (taken over, or expired): the build must not write READY. */
  lost(): boolean;
  /** Renews the lease now and says whether it is still held (right before the manifest and READY). */
  confirm(): Promise<boolean>;
  stop(): void;
  /** Gives the lease up now so a retry need not wait for it to expire. */
  release(): Promise<void>;
}

/** Takes the build lease of a BUILDING version; undefined while another builder holds it. */
export async function takeLease(deps: ClaimDeps, ctx: BuildContext): Promise<Lease | undefined> {
  const { registry, config, log, owner } = deps;
  const { space, version } = ctx;
  // The injectable clock decides lease times (tests take a lease over without sleeping out its expiry).
  const nowMs = () => (deps.now ? deps.now().getTime() : Date.now());
  const leased = await registry.acquireLease(space, version, owner, nowMs() + config.leaseMs, nowMs());
  if (!leased) return undefined;

  let lost = false;
  const renewNow = async (): Promise<boolean> => {
    // Conditional on the lease not having expired: an attempt whose timer fires late (a frozen
    // environment thawed) finds it gone instead of taking it back from whoever took over.
    const ok = await registry.renewLease(space, version, owner, nowMs() + config.leaseMs, nowMs());
    if (!ok) lost = true;
    return ok;
  };
  const renew = setInterval(
    () => {
      if (lost) return;
      renewNow()
        // A failed renewal is retried on the next tick; if they all fail the lease expires and
        // finishVersion refuses this builder, so nothing is written twice.
        .catch((err) => log.warn('lease renewal failed', { ...ctx, error: String(err) }));
    },
    Math.max(1000, Math.floor(config.leaseMs / 3)),
  );
  renew.unref();

  return {
    attempts: leased.attempts ?? 1,
    record: leased,
    lost: () => lost,
    confirm: async () => !lost && (await renewNow()),
    stop: () => clearInterval(renew),
    async release() {
      try {
        // Ended now, not at 0: the sweeper waits `staleMs` from here for the retry (Lambda's async
        // retries come 1–3 minutes later) instead of taking an expiry in 1970 for an abandoned build.
        const now = nowMs();
        await registry.renewLease(space, version, owner, now - 1, now);
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
