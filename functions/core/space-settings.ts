/**
 * A space's settings: a small record beside its pointer (PUT /v1/spaces/{space}/settings), read by the
 * builder and shown by GET /v1/spaces/{space}. A space that never set them has the defaults.
 */
import { bool, checkObject } from './shape';

export interface SpaceSettings {
  /**
   * Delete a release's inputs (`incoming/{space}/{release}/`) once its build has ended, READY or FAILED.
   * A release.json's own `deleteInputsAfterBuild`, when present, overrides this for that release.
   */
  deleteInputsAfterBuild: boolean;
}

export const DEFAULT_SPACE_SETTINGS: Readonly<SpaceSettings> = Object.freeze({
  deleteInputsAfterBuild: false,
});

/**
 * The body of PUT /v1/spaces/{space}/settings: the whole record (a PUT replaces it). A hand-written check
 * answers a well-formed body; anything else gets the zod schema's 400, loaded then (zod stays off init).
 */
export async function parseSpaceSettingsBody(body: unknown): Promise<SpaceSettings> {
  const fast = checkObject(body, { deleteInputsAfterBuild: { check: bool, required: true } }, true);
  if (fast) return fast as unknown as SpaceSettings;
  return (await import('./space-settings-schema')).parseSpaceSettingsBodyZod(body);
}

/** The stored settings over the defaults (a record written by an older version may lack a field). */
export function withDefaults(stored: Partial<SpaceSettings> | undefined): SpaceSettings {
  return {
    deleteInputsAfterBuild:
      typeof stored?.deleteInputsAfterBuild === 'boolean'
        ? stored.deleteInputsAfterBuild
        : DEFAULT_SPACE_SETTINGS.deleteInputsAfterBuild,
  };
}
