/**
 * A release's inputs once its build has ended (READY or FAILED): kept, unless its release.json asked
 * for `deleteInputsAfterBuild: true` — then every object under `incoming/{space}/{release}/` is
 * deleted, release.json last (so a crash leaves a folder that still says what it was). Read loosely:
 * a release refused for any other reason still has its wish honoured, as long as release.json parses.
 * Never throws: the build has settled; a failure is logged and the inputs stay.
 */
import { KEY_PREFIX } from '../contract';
import type { BlobStore, Log } from '../core/ports';

const RELEASE_JSON = 'release.json';

export async function deleteInputsIfAsked(
  deps: { store: BlobStore; log: Log },
  space: string,
  release: string,
): Promise<number> {
  const prefix = `${KEY_PREFIX.incoming}${space}/${release}/`;
  try {
    const text = await deps.store.getText(prefix + RELEASE_JSON);
    if (text === undefined) return 0;
    let asked = false;
    try {
      asked = (JSON.parse(text) as { deleteInputsAfterBuild?: unknown })?.deleteInputsAfterBuild === true;
    } catch {
      return 0;
    }
    if (!asked) return 0;
    const keys = (await deps.store.list(prefix)).map((o) => o.key);
    const last = prefix + RELEASE_JSON;
    await deps.store.deleteKeys(keys.filter((k) => k !== last));
    await deps.store.deleteKeys([last]);
    deps.log.info('release inputs deleted after the build (deleteInputsAfterBuild)', {
      space,
      release,
      objects: keys.length,
    });
    return keys.length;
  } catch (err) {
    deps.log.warn('could not delete the release inputs; they stay', { space, release, error: String(err) });
    return 0;
  }
}
