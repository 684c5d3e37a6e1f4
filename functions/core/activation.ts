import { ConflictError, NotFoundError, PointerConflictError, UnprocessableError } from './errors';
import { assertVersion } from './names';
import { assertActivatable, type ChangedBy, mayAutoActivate, nextPointer, type Pointer } from './pointer';
import { noPointerMoves, type PointerMoveNotifier, type Registry } from './ports';

export interface ActivateInput {
  space: string;
  version: string;
  expectedGeneration: number;
  force?: boolean;
  by: ChangedBy;
  now?: Date;
}

function conflict(space: string, expected: number, pointer: Pointer, cause?: unknown): ConflictError {
  return new ConflictError(
    `Space ${space} is at generation ${pointer.generation} (active ${pointer.version ?? 'none'}, changed by ${pointer.changedBy ?? 'nobody'} at ${pointer.changedAt ?? 'never'}), not ${expected}`,
    { cause, extras: { pointer } },
  );
}

/**
 * Explicit activation: any READY, compatible version, only if the pointer is still where the caller saw it.
 * `notifier` hears of the move once it is written (not of a no-op activation).
 */
export async function activateVersion(
  registry: Registry,
  input: ActivateInput,
  notifier: PointerMoveNotifier = noPointerMoves,
): Promise<Pointer> {
  const { space, expectedGeneration } = input;
  assertVersion(input.version);
  const current = await registry.getPointer(space);
  if (current.generation !== expectedGeneration) throw conflict(space, expectedGeneration, current);
  const target = await registry.getVersion(space, input.version);
  if (!target) throw new NotFoundError(`Space ${space} has no version ${input.version}`);
  // Activating what is already active changes nothing; a retried request should not bump the generation.
  if (current.version === target.version) return current;
  const active = current.version ? await registry.getVersion(space, current.version) : undefined;
  assertActivatable(target, active, input.force ?? false);
  const next = nextPointer(current, target.version, input.by, input.now ?? new Date());
  try {
    await registry.casPointer(current, next);
  } catch (err) {
    if (err instanceof PointerConflictError) {
      throw conflict(space, expectedGeneration, err.extras.pointer as Pointer, err);
    }
    throw err;
  }
  await notifier.onPointerMoved({ space, version: target.version, pointer: next, by: input.by });
  return next;
}

/** Activates the previous version; a second rollback goes forward again. No compatibility check. */
export async function rollbackSpace(
  registry: Registry,
  input: Omit<ActivateInput, 'version'>,
  notifier: PointerMoveNotifier = noPointerMoves,
): Promise<Pointer> {
  const current = await registry.getPointer(input.space);
  if (current.generation !== input.expectedGeneration)
    throw conflict(input.space, input.expectedGeneration, current);
  if (!current.previous) {
    throw new UnprocessableError(`Space ${input.space} has no previous version to roll back to`);
  }
  // The previous version served these clients a moment ago: undoing a switch is never "incompatible".
  return activateVersion(registry, { ...input, version: current.previous, force: true }, notifier);
}

export type AutoActivation =
  | { activated: true; pointer: Pointer }
  | {
      activated: false;
      pointer: Pointer;
      reason: string;
      /**
       * Why, as a code: `not-newest` (not above highWater: a late or redelivered older build),
       * `not-ready` (the version is not READY), `needs-force` (dims or metric differ from the active
       * version: only an explicit activation with `force` may switch).
       */
      code: 'not-newest' | 'not-ready' | 'needs-force';
    };

/**
 * Activation after a build: monotonic, so a late or redelivered older build never takes over from a
 * newer release or undoes an operator's rollback; and it passes the checks of an explicit activation
 * without `force` (READY, same dims and metric as the active version). Retries lost races while it
 * is still the newest. `notifier` hears of the move (by `build`) once it is written.
 */
export async function autoActivate(
  registry: Registry,
  space: string,
  version: string,
  now = new Date(),
  notifier: PointerMoveNotifier = noPointerMoves,
): Promise<AutoActivation> {
  for (let attempt = 0; ; attempt++) {
    const current = await registry.getPointer(space);
    if (!mayAutoActivate(current, version)) {
      return {
        activated: false,
        pointer: current,
        code: 'not-newest',
        reason: `${version} is not above the highest version ever activated (v${current.highWater})`,
      };
    }
    const target = await registry.getVersion(space, version);
    if (!target) throw new NotFoundError(`Space ${space} has no version ${version}`);
    const active = current.version ? await registry.getVersion(space, current.version) : undefined;
    try {
      assertActivatable(target, active, false);
    } catch (err) {
      if (!(err instanceof UnprocessableError)) throw err;
      const code = target.status === 'READY' ? 'needs-force' : 'not-ready';
      return { activated: false, pointer: current, code, reason: err.message };
    }
    const next = nextPointer(current, version, 'build', now);
    try {
      await registry.casPointer(current, next);
    } catch (err) {
      if (!(err instanceof PointerConflictError) || attempt >= 20) throw err;
      continue;
    }
    await notifier.onPointerMoved({ space, version, pointer: next, by: 'build' });
    return { activated: true, pointer: next };
  }
}
