import { pointerNotifier } from '../common/pointer-notifier';
import { EVENT_DETAIL_TYPE } from '../contract';
import { type AutoActivation, autoActivate } from '../core/activation';
import type { BuildDeps } from './deps';

export type ActivateDeps = Pick<BuildDeps, 'registry' | 'log' | 'events' | 'moves' | 'now'>;

/**
 * Activation after a READY build: only forward (above highWater) and through the checks of an explicit
 * activation without `force`; the move is told like any other. A version that stays inactive says why
 * in its record (`notActivatedReason`) and in a VersionNotActivated event.
 */
export async function activateBuilt(
  deps: ActivateDeps,
  space: string,
  version: string,
): Promise<AutoActivation> {
  const moves = deps.moves ?? pointerNotifier({ log: deps.log, events: deps.events });
  const now = (deps.now ?? (() => new Date()))();
  const activation = await autoActivate(deps.registry, space, version, now, moves);
  if (!activation.activated) {
    const { reason, code } = activation;
    const log = code === 'needs-force' ? deps.log.warn : deps.log.info;
    log.call(deps.log, 'not activated', { space, version, reason, code });
    await deps.registry.setVersionFields(space, version, 'READY', { notActivatedReason: reason });
    await deps.events.publish(EVENT_DETAIL_TYPE.versionNotActivated, { space, version, reason, code });
  }
  return activation;
}
