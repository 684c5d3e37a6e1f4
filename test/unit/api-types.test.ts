/**
 * The page's API types (web/src/api-types.gen.ts) are generated from docs/openapi.json by
 * `npm run gen:api-types`; this fails when the committed file no longer matches the spec.
 */
import { readFileSync } from 'node:fs';
import openapiTS, { astToString, COMMENT_HEADER } from 'openapi-typescript';
import { describe, expect, it } from 'vitest';

const root = new URL('../../', import.meta.url);
const GENERATED = 'web/src/api-types.gen.ts';
/** The script's flags, as openapiTS options (kept in step with package.json below). */
const COMMAND = `openapi-typescript docs/openapi.json --empty-objects-unknown -o ${GENERATED}`;
const OPTIONS = { emptyObjectsUnknown: true, silent: true };

describe('generated API types', () => {
  it('npm run gen:api-types is the command this test reproduces', () => {
    const pkg = JSON.parse(readFileSync(new URL('package.json', root), 'utf8'));
    expect(pkg.scripts['gen:api-types']).toBe(COMMAND);
  });

  it(`${GENERATED} is up to date with docs/openapi.json (else run npm run gen:api-types)`, async () => {
    const fresh = COMMENT_HEADER + astToString(await openapiTS(new URL('docs/openapi.json', root), OPTIONS));
    const committed = readFileSync(new URL(GENERATED, root), 'utf8');
    expect(committed === fresh, `${GENERATED} is stale: run npm run gen:api-types`).toBe(true);
  });
});
