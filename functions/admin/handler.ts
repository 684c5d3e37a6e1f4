import { z } from 'zod';
import { json, parseJsonBody } from '../common/http';
import { asLog, createObservability, MetricUnit } from '../common/observability';
import { createRouter } from '../common/router';
import { adapters, depsFromEnv, type HandlerDeps, httpHandler, lazyHandler } from '../common/wiring';
import { EVENT_DETAIL_TYPE, METRIC } from '../contract';
import { activateVersion, rollbackSpace } from '../core/activation';
import { BadRequestError } from '../core/errors';
import { assertName } from '../core/names';
import { CHANGED_BY, type Pointer } from '../core/pointer';
import type { Registry } from '../core/ports';
import { zodDetail } from '../core/query';

const activateBody = z.object({
  version: z.string(),
  expectedGeneration: z.number().int().min(0),
  force: z.boolean().optional(),
  by: z.enum(CHANGED_BY).optional(),
});
const rollbackBody = z.object({
  expectedGeneration: z.number().int().min(0),
  force: z.boolean().optional(),
  by: z.enum(CHANGED_BY).optional(),
});

function parse<T>(schema: z.ZodType<T>, body: unknown): T {
  const r = schema.safeParse(body);
  if (!r.success) throw new BadRequestError(zodDetail(r.error, 'body'));
  return r.data;
}

const answer = (pointer: Pointer) =>
  json(200, { pointer }, pointer.version ? { 'vicinity-version': pointer.version } : {});

export function adminRouter(
  registry: Registry,
  moved: (p: Pointer) => Promise<void> = async () => undefined,
) {
  return createRouter([
    {
      method: 'POST',
      path: '/v1/spaces/{space}/activate',
      handler: async ({ params, event }) => {
        const space = assertName('space', params.space);
        const b = parse(activateBody, parseJsonBody(event));
        const pointer = await activateVersion(registry, {
          space,
          version: b.version,
          expectedGeneration: b.expectedGeneration,
          force: b.force,
          by: b.by === 'build' || !b.by ? 'api' : b.by,
        });
        await moved(pointer);
        return answer(pointer);
      },
    },
    {
      method: 'POST',
      path: '/v1/spaces/{space}/rollback',
      handler: async ({ params, event }) => {
        const space = assertName('space', params.space);
        const b = parse(rollbackBody, parseJsonBody(event));
        const pointer = await rollbackSpace(registry, {
          space,
          expectedGeneration: b.expectedGeneration,
          force: b.force,
          by: b.by === 'build' || !b.by ? 'api' : b.by,
        });
        await moved(pointer);
        return answer(pointer);
      },
    },
  ]);
}

/** The state-changing API (IAM-authorised in AWS): activate and roll back with compare-and-swap. */
export function createAdminHandler(deps: HandlerDeps) {
  const obs = deps.obs ?? createObservability('vicinity-admin');
  const log = asLog(obs.logger);
  const { registry, events } = adapters(deps, log);
  const moved = async (pointer: Pointer) => {
    obs.metrics.addMetric(METRIC.pointerMoves, MetricUnit.Count, 1);
    log.info('pointer moved', {
      space: pointer.space,
      version: pointer.version,
      generation: pointer.generation,
    });
    await events.publish(EVENT_DETAIL_TYPE.pointerMoved, {
      space: pointer.space,
      version: pointer.version,
      pointer,
      by: pointer.changedBy,
    });
  };
  return httpHandler(obs, deps.config, adminRouter(registry, moved));
}

export const handler = lazyHandler(() => createAdminHandler(depsFromEnv()));
