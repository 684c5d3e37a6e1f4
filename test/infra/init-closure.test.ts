/**
 * What each function's bundle loads at a cold start: the entry and the chunks it imports statically,
 * from the stack's own first pass (infra/bundle.ts `bundleOptions`, code splitting), not written. The
 * second pass only moves these into index.mjs (test/infra/bundle.test.ts); everything else in the
 * bundle is a chunk read on first use. These are the modules
 * whose parse and evaluation init waits for; `npm run synth` bounds the measured init as a whole.
 */
import { join } from 'node:path';
import { build, type Metafile } from 'esbuild';
import { beforeAll, describe, expect, it } from 'vitest';
import { bundleOptions } from '../../infra/bundle';
import { PROJECT_ROOT } from '../../infra/paths';

/** Source files (relative, node_modules/ shortened to the package path) loaded when the entry loads. */
async function loadedAtInit(entry: string): Promise<{ atInit: string[]; bundled: string[] }> {
  const r = await build({
    ...bundleOptions(join(PROJECT_ROOT, entry), true),
    outdir: join(PROJECT_ROOT, 'cdk.out', 'init-closure-test'),
    write: false,
    metafile: true,
    logLevel: 'silent',
  });
  const outputs = (r.metafile as Metafile).outputs;
  const index = Object.keys(outputs).find((k) => k.endsWith('/index.mjs')) as string;
  const seen = new Set<string>();
  const visit = (k: string): void => {
    if (seen.has(k)) return;
    seen.add(k);
    for (const i of outputs[k]?.imports ?? [])
      if (i.kind === 'import-statement' && !i.external) visit(i.path);
  };
  visit(index);
  const inputs = (keys: Iterable<string>) =>
    [...keys]
      .flatMap((k) => Object.entries(outputs[k]?.inputs ?? {}))
      .filter(([, i]) => i.bytesInOutput > 0)
      .map(([f]) => f.replace(/^.*node_modules\//, ''));
  return { atInit: inputs(seen), bundled: inputs(Object.keys(outputs)) };
}

const has = (files: string[], prefix: string) => files.some((f) => f.startsWith(prefix));

describe('what a cold start loads (the bundles, split as the stack splits them)', () => {
  const fns = {
    query: 'functions/query/handler.ts',
    admin: 'functions/admin/handler.ts',
    build: 'functions/builder/handler.ts',
    tasks: 'functions/tasks/handler.ts',
    sweeper: 'functions/sweeper/handler.ts',
    slot: 'functions/slot/handler.ts',
  };
  const closure: Record<string, { atInit: string[]; bundled: string[] }> = {};
  beforeAll(async () => {
    for (const [name, entry] of Object.entries(fns)) closure[name] = await loadedAtInit(entry);
  });

  it('the admin function loads no S3 client: it only reads and writes the registry', () => {
    const { atInit, bundled } = closure.admin as { atInit: string[]; bundled: string[] };
    expect(has(atInit, '@aws-sdk/client-dynamodb/')).toBe(true);
    expect(atInit.filter((f) => f.startsWith('@aws-sdk/client-s3/') || f.includes('s3-store'))).toEqual([]);
    expect(has(bundled, '@aws-sdk/client-s3/')).toBe(false);
  });

  it('the Lambda client is a chunk, loaded by the first invoke of a shard slot or a build task', () => {
    for (const name of ['query', 'build', 'tasks'] as const) {
      const c = closure[name] as { atInit: string[]; bundled: string[] };
      expect(has(c.bundled, '@aws-sdk/client-lambda/'), name).toBe(true);
      expect(has(c.atInit, '@aws-sdk/client-lambda/'), name).toBe(false);
    }
  });

  it('rarely used modules are chunks: EventBridge, Upload, Parquet, the explorer maths, the OpenAPI document, the SDK credential providers beyond the environment', () => {
    for (const [name, c] of Object.entries(closure)) {
      for (const lazy of [
        '@aws-sdk/client-eventbridge/',
        '@aws-sdk/lib-storage/',
        'hyparquet',
        'functions/query/explore/maths.ts',
        'docs/openapi.json',
        '@aws-sdk/credential-provider-sso/',
        '@aws-sdk/credential-provider-ini/',
        '@aws-sdk/nested-clients/',
      ])
        expect(has(c.atInit, lazy), `${name} loads ${lazy} at init`).toBe(false);
    }
    // ...and they are in the bundles that use them.
    expect(has((closure.query as { bundled: string[] }).bundled, 'docs/openapi.json')).toBe(true);
    expect(has((closure.build as { bundled: string[] }).bundled, 'hyparquet')).toBe(true);
  });

  it('no function loads zod at init: request and release.json checks are hand-written, the schemas a chunk', () => {
    const schemaModules = [
      'functions/core/query-schemas.ts',
      'functions/core/erasure-schemas.ts',
      'functions/core/release-schema.ts',
      'functions/admin/body-schemas.ts',
      'functions/core/space-settings-schema.ts',
    ];
    for (const [name, c] of Object.entries(closure)) {
      expect(
        c.atInit.filter((f) => f.startsWith('zod/')),
        `${name} loads zod at init`,
      ).toEqual([]);
      for (const m of schemaModules) expect(has(c.atInit, m), `${name} loads ${m} at init`).toBe(false);
    }
    // ...and the schemas are in the bundles that answer with them.
    for (const name of ['query', 'admin', 'build', 'sweeper'] as const)
      expect(has((closure[name] as { bundled: string[] }).bundled, 'zod/'), name).toBe(true);
  });
});
