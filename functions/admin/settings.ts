/**
 * Admin route of a space's settings (IAM-authorised in AWS, like activate):
 * - PUT /v1/spaces/{space}/settings  body {deleteInputsAfterBuild} → 200 {space, settings}
 * A space may be configured before its first release (so that release already follows it); a space
 * being deleted is a 404. The read side shows the settings in GET /v1/spaces/{space}.
 */
import { json, parseJsonBody } from '../common/http';
import type { Route } from '../common/router';
import { assertNotDeleting } from '../core/erasure';
import { NotFoundError } from '../core/errors';
import { assertName } from '../core/names';
import type { Log, Registry } from '../core/ports';
import { parseSpaceSettingsBody } from '../core/space-settings';

export function settingsRoutes(registry: Registry, log: Log): Route[] {
  return [
    {
      method: 'PUT',
      path: '/v1/spaces/{space}/settings',
      handler: async ({ params, event }) => {
        const space = assertName('space', params.space);
        const settings = await parseSpaceSettingsBody(parseJsonBody(event));
        const before = await registry.getSpaceState(space);
        assertNotDeleting(space, before);
        await registry.putSpaceSettings(space, settings);
        // A deletion accepted between the check and the write would leave the item behind for a later
        // space of that name (one item cannot be conditioned on another without a transaction, which
        // dynalite lacks): look again, and take the write back.
        const after = await registry.getSpaceState(space);
        if (after.deletion || after.pointer.generation < before.pointer.generation) {
          await registry.deleteSpaceSettings(space);
          throw new NotFoundError(`Unknown space ${space} (it was deleted while its settings were written)`);
        }
        log.info('space settings written', { space, ...settings });
        return json(200, { space, settings: await registry.getSpaceSettings(space) });
      },
    },
  ];
}
