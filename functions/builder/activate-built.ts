import { pointerNotifier } from '../common/pointer-notifier';
import { type AutoActivation, autoActivate } from '../core/activation';
import type { BuildDeps } from './deps';

/** Activation after a READY build: only forward (above highWater); the move is told like any other. */
export async function activateBuilt(
  deps: BuildDeps,
  space: string,
  version: string,
): Promise<AutoActivation> {
  const moves = deps.moves ?? pointerNotifier({ log: deps.log, events: deps.events });
  const now = (deps.now ?? (() => new Date()))();
  const activation = await autoActivate(deps.registry, space, version, now, moves);
  if (!activation.activated) deps.log.info('not activated', { space, version, reason: activation.reason });
  return activation;
}
