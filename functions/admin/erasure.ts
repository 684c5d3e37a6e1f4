/**
 * Admin routes of erasure and space deletion (IAM-authorised in AWS, like activate):
 * - DELETE /v1/spaces/{space}/collections/{c}/items/{id}   body {reason?, by?, ids?} → 202 {erasures}
 * - POST   /v1/spaces/{space}/collections/{c}/items/{id}/restore  body {reason?, by?} → 200 {erasure}
 * - GET    /v1/spaces/{space}/erasures?status                → {space, erasures}
 * - DELETE /v1/spaces/{space}  body {expectedGeneration, includeInputs?, by?} → 202 {space, deletion}
 * Recording is all they do: the query side applies an erasure from the next pointer read (at once for
 * `consistency=strong`), the sweeper purges snapshots and finishes deletions.
 */
import { json, parseJsonBody } from '../common/http';
import type { Route } from '../common/router';
import {
  assertNotDeleting,
  ERASURE_STATUSES,
  type ErasureRecord,
  erasureTarget,
  parseDeleteSpaceBody,
  parseEraseBody,
  parseRestoreBody,
  type SpaceDeletion,
} from '../core/erasure';
import { BadRequestError, NotFoundError } from '../core/errors';
import { assertItemId, assertName } from '../core/names';
import type { Log, Registry } from '../core/ports';

export function erasureRoutes(registry: Registry, log: Log, now: () => Date = () => new Date()): Route[] {
  const item = '/v1/spaces/{space}/collections/{collection}/items/{id}';
  return [
    {
      method: 'DELETE',
      path: item,
      handler: async ({ params, event }) => {
        const body = await parseEraseBody(parseJsonBody(event, false) ?? {});
        const t = erasureTarget(params.space as string, params.collection as string, [
          params.id as string,
          ...(body.ids ?? []),
        ]);
        const state = await registry.getSpaceState(t.space);
        assertNotDeleting(t.space, state);
        const at = now().toISOString();
        const records: ErasureRecord[] = t.ids.map((id) => ({
          space: t.space,
          collection: t.collection,
          id,
          status: 'ERASED',
          erasedAt: at,
          by: body.by ?? 'api',
          ...(body.reason ? { reason: body.reason } : {}),
        }));
        const { erasureCounter } = await registry.recordErasures(t.space, records);
        log.info('erasure recorded', {
          space: t.space,
          collection: t.collection,
          ids: t.ids.length,
          erasureCounter,
        });
        return json(202, {
          space: t.space,
          collection: t.collection,
          erasures: records,
          erasureCounter,
          ...(records.length === 1 ? { erasure: records[0] } : {}),
        });
      },
    },
    {
      method: 'POST',
      path: `${item}/restore`,
      handler: async ({ params, event }) => {
        const space = assertName('space', params.space);
        const collection = assertName('collection', params.collection);
        const id = assertItemId(params.id);
        const body = await parseRestoreBody(parseJsonBody(event, false) ?? {});
        assertNotDeleting(space, await registry.getSpaceState(space));
        const at = now().toISOString();
        const ok = await registry.updateErasure(space, collection, id, undefined, {
          status: 'RESTORED',
          restoredAt: at,
          restoredBy: body.by ?? 'api',
          ...(body.reason ? { restoreReason: body.reason } : {}),
        });
        if (!ok) throw new NotFoundError(`No erasure of ${JSON.stringify(id)} in ${space}/${collection}`);
        await registry.bumpErasureCounter(space);
        const erasure = (await registry.listErasures(space)).find(
          (r) => r.collection === collection && r.id === id,
        );
        log.info('erasure restored', { space, collection });
        return json(200, { space, erasure });
      },
    },
    {
      method: 'GET',
      path: '/v1/spaces/{space}/erasures',
      // The router refuses any other parameter with the same 400 as every route.
      query: ['status'],
      handler: async ({ params, query }) => {
        const space = assertName('space', params.space);
        const status = query.status;
        if (status !== undefined && !(ERASURE_STATUSES as readonly string[]).includes(status))
          throw new BadRequestError(`status: one of ${ERASURE_STATUSES.join(', ')}`);
        const [state, all] = await Promise.all([registry.getSpaceState(space), registry.listErasures(space)]);
        assertNotDeleting(space, state);
        const erasures = all.filter((r) => !status || r.status === status);
        return json(200, { space, erasures });
      },
    },
    {
      method: 'DELETE',
      path: '/v1/spaces/{space}',
      handler: async ({ params, event }) => {
        const space = assertName('space', params.space);
        const body = await parseDeleteSpaceBody(parseJsonBody(event));
        const state = await registry.getSpaceState(space);
        const known =
          state.pointer.version !== null || (await registry.listVersions(space, 1)).versions.length;
        if (!known && !state.deletion) throw new NotFoundError(`Unknown space ${space}`);
        const deletion: SpaceDeletion = state.deletion ?? {
          space,
          requestedAt: now().toISOString(),
          by: body.by ?? 'api',
          includeInputs: body.includeInputs === true,
          generation: body.expectedGeneration,
        };
        if (!state.deletion) await registry.markSpaceDeleting(deletion);
        log.warn('space deletion requested', { space, includeInputs: deletion.includeInputs });
        return json(202, { space, deletion });
      },
    },
  ];
}
