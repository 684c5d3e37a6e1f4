// admin/: the state-changing HTTP API (activate, rollback) as a thin middy handler over core/activation.
// May import core/, common/ and contract.ts; never query/, builder/ or snapshot/.
import { json, parseJsonBody } from '../common/http';
import { asLog, createObservability } from '../common/observability';
import { pointerNotifier } from '../common/pointer-notifier';
import { createRouter, type Route } from '../common/router';
import {
  httpHandler,
  lazyHandler,
  type RegistryDeps,
  registryAdapters,
  registryDepsFromEnv,
} from '../common/wiring';
import { activateVersion, rollbackSpace } from '../core/activation';
import { assertName } from '../core/names';
import type { Pointer } from '../core/pointer';
import { type Log, noPointerMoves, type PointerMoveNotifier, type Registry, silentLog } from '../core/ports';
import { parseActivateBody, parseRollbackBody } from './bodies';
import { erasureRoutes } from './erasure';
import { settingsRoutes } from './settings';

const answer = (pointer: Pointer) =>
  json(200, { pointer }, pointer.version ? { 'vicinity-version': pointer.version } : {});

// Only a build may claim `build`; an HTTP caller is `api` unless it says it is the CLI or the page.
const caller = (by: Pointer['changedBy'] | undefined) => (by === 'build' || !by ? 'api' : by);

/** The admin function's route table (ADMIN_ROUTES in query/routes.ts lists the same routes for 405/OPTIONS). */
export function adminRoutes(
  registry: Registry,
  notifier: PointerMoveNotifier = noPointerMoves,
  log: Log = silentLog,
): Route[] {
  return [
    {
      method: 'POST',
      path: '/v1/spaces/{space}/activate',
      handler: async ({ params, event }) => {
        const space = assertName('space', params.space);
        const b = await parseActivateBody(parseJsonBody(event));
        const pointer = await activateVersion(
          registry,
          {
            space,
            version: b.version,
            expectedGeneration: b.expectedGeneration,
            force: b.force,
            by: caller(b.by),
          },
          notifier,
        );
        return answer(pointer);
      },
    },
    {
      method: 'POST',
      path: '/v1/spaces/{space}/rollback',
      handler: async ({ params, event }) => {
        const space = assertName('space', params.space);
        const b = await parseRollbackBody(parseJsonBody(event));
        const pointer = await rollbackSpace(
          registry,
          { space, expectedGeneration: b.expectedGeneration, force: b.force, by: caller(b.by) },
          notifier,
        );
        return answer(pointer);
      },
    },
    // Erase and restore items, list erasures, delete a space (admin/erasure.ts).
    ...erasureRoutes(registry, log),
    // A space's settings (admin/settings.ts).
    ...settingsRoutes(registry, log),
  ];
}

export function adminRouter(
  registry: Registry,
  notifier: PointerMoveNotifier = noPointerMoves,
  log: Log = silentLog,
) {
  return createRouter(adminRoutes(registry, notifier, log));
}

/** The state-changing API (IAM-authorised in AWS): activate and roll back with compare-and-swap. */
export function createAdminHandler(deps: RegistryDeps) {
  const obs = deps.obs ?? createObservability('vicinity-admin');
  const log = asLog(obs.logger);
  const { registry, events } = registryAdapters(deps, log);
  const notifier = pointerNotifier({ log, events, metrics: obs.metrics });
  return httpHandler(obs, deps.config, adminRouter(registry, notifier, log));
}

export const handler = lazyHandler(() => createAdminHandler(registryDepsFromEnv()));
