/**
 * A release's inputs once its build has ended (READY or FAILED): kept, unless deletion was asked —
 * by the release's release.json (`deleteInputsAfterBuild: true|false`, which decides for that release
 * when present) or else by the space's setting (PUT /v1/spaces/{space}/settings, default false). Then
 * every object under `incoming/{space}/{release}/` is deleted, release.json last (so a crash leaves a
 * folder that still says what it was). Read loosely: a release refused for any other reason still has
 * the wish honoured; a release.json that does not parse leaves the decision to the space setting.
 * Never throws: the build has settled; a failure is logged and the inputs stay.
 */
import { KEY_PREFIX } from '../contract';
import type { BlobStore, Log, Registry } from '../core/ports';

const RELEASE_JSON = 'release.json';

/** release.json's own answer: true/false when it says, undefined when absent, unparsable or silent. */
function releaseWish(text: string | undefined): boolean | undefined {
  if (text === undefined) return undefined;
  try {
    const v = (JSON.parse(text) as { deleteInputsAfterBuild?: unknown })?.deleteInputsAfterBuild;
    return typeof v === 'boolean' ? v : undefined;
  } catch {
    return undefined;
  }
}

export async function deleteInputsIfAsked(
  deps: { store: BlobStore; log: Log; registry: Pick<Registry, 'getSpaceSettings'> },
  space: string,
  release: string,
): Promise<number> {
  const prefix = `${KEY_PREFIX.incoming}${space}/${release}/`;
  try {
    const wish = releaseWish(await deps.store.getText(prefix + RELEASE_JSON));
    const asked = wish ?? (await deps.registry.getSpaceSettings(space)).deleteInputsAfterBuild;
    if (!asked) return 0;
    const keys = (await deps.store.list(prefix)).map((o) => o.key);
    const last = prefix + RELEASE_JSON;
    await deps.store.deleteKeys(keys.filter((k) => k !== last));
    if (keys.includes(last)) await deps.store.deleteKeys([last]);
    deps.log.info('release inputs deleted after the build (deleteInputsAfterBuild)', {
      space,
      release,
      objects: keys.length,
      by: wish === undefined ? 'space setting' : 'release.json',
    });
    return keys.length;
  } catch (err) {
    deps.log.warn('could not delete the release inputs; they stay', { space, release, error: String(err) });
    return 0;
  }
}
