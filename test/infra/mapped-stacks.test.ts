/**
 * Stacks logged by a bundled function read as the source, without `--enable-source-maps` (which made
 * Node load every map at every cold start): the bundle, built as the stack builds it (infra/bundle.ts),
 * maps a stack when it is formatted (functions/common/mapped-stacks.ts).
 */
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { projectPath } from '../../functions/common/mapped-stacks';
import { bundleFunction } from '../../infra/bundle';
import { runNode } from '../../infra/bundle-init';
import { PROJECT_ROOT } from '../../infra/paths';

const FIXTURE = 'test/infra/fixtures/failing-route.ts';
/** The fixture's line that throws (1-based). */
const THROW_LINE =
  readFileSync(join(PROJECT_ROOT, FIXTURE), 'utf8')
    .split('\n')
    .findIndex((l) => l.includes('mapped-stacks: thrown here')) + 1;

// Powertools writes errors to stderr: one stream, one JSON object a line.
const RUNNER = `process.stderr.write = process.stdout.write.bind(process.stdout);
const m = await import('./index.mjs');
await m.failRequest();
try { m.failInvocation(); } catch (e) { console.log(JSON.stringify({ thrown: e.stack })); }
`;

describe('stacks of a bundled function', () => {
  // Inside the project like cdk.out's assets, so the map's sources are what a deployed bundle has.
  const out = join(PROJECT_ROOT, 'cdk.out', `mapped-stacks-test-${process.pid}`);
  let lines: Record<string, unknown>[] = [];
  beforeAll(async () => {
    mkdirSync(out, { recursive: true });
    await bundleFunction(join(PROJECT_ROOT, FIXTURE), out, true);
    writeFileSync(join(out, 'runner.mjs'), RUNNER);
    // As Lambda starts it now: no NODE_OPTIONS, so Node itself maps nothing.
    const stdout = await runNode([join(out, 'runner.mjs')], {
      cwd: out,
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', POWERTOOLS_METRICS_DISABLED: 'true' },
    });
    lines = stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
  });
  afterAll(() => rmSync(out, { recursive: true, force: true }));

  const at = new RegExp(`\\(${FIXTURE.replaceAll('/', '\\/').replace('.', '\\.')}:${THROW_LINE}:\\d+\\)`);

  it('the error edge logs the stack at the source file and line', () => {
    const failed = lines.find((l) => l.message === 'request failed') as { error: { stack: string } };
    expect(failed.error.stack).toMatch(/^Error: the pointer could not be read\n {4}at readPointer /);
    expect(failed.error.stack).toMatch(at);
    expect(failed.error.stack).not.toContain('index.mjs:');
  });

  it('an error thrown out of the handler (what the Lambda runtime logs) is mapped the same way', () => {
    const thrown = (lines.find((l) => 'thrown' in l) as { thrown: string }).thrown;
    expect(thrown).toMatch(at);
    // Function names as in the source, though the bundle is minified without keepNames: from the map's `names`.
    expect(thrown).toMatch(/\n {4}at readPointer \(/);
    expect(thrown).toMatch(/\n {4}at checkPointer \(test\/infra\/fixtures\/failing-route\.ts:\d+:\d+\)/);
    expect(thrown).toMatch(
      /at (?:Module\.)?failInvocation \(test\/infra\/fixtures\/failing-route\.ts:\d+:\d+\)/,
    );
  });

  it('names sources from the project root, packages from node_modules/', () => {
    expect(projectPath('../../functions/query/handler.ts')).toBe('functions/query/handler.ts');
    expect(projectPath('../../../../main/node_modules/@smithy/core/dist-es/x.js')).toBe(
      'node_modules/@smithy/core/dist-es/x.js',
    );
  });
});
