/**
 * The zod schema of PUT /v1/spaces/{space}/settings, loaded on demand by ./space-settings (whose
 * hand-written check answers well-formed bodies): only a body it refuses comes here, for the 400's detail.
 */
import * as z from 'zod';
import { parseWith } from './query-schemas';
import type { SpaceSettings } from './space-settings';

const spaceSettingsBodySchema = z.object({ deleteInputsAfterBuild: z.boolean() }).strict();

export const parseSpaceSettingsBodyZod = (body: unknown): SpaceSettings =>
  parseWith(spaceSettingsBodySchema, body, 'body');
