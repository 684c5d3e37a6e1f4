/**
 * What the functions import statically is what every cold start loads. These rules keep the rarely
 * used, heavy modules behind `import()`, which the stack's bundling (code splitting) turns into chunks
 * read on first use; test/infra/init-closure.test.ts checks the bundles themselves, and `npm run synth`
 * bounds each bundle's measured init (infra/check-bundles.ts, 3× `npm run bench:cold`'s figure).
 * No bundling here.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { PROJECT_ROOT } from '../../infra/paths';

const FUNCTIONS = join(PROJECT_ROOT, 'functions');

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? sources(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : [],
  );
}

interface StaticImport {
  file: string;
  spec: string;
  clause: string;
}

/** Static value imports and re-exports (`import type` and `export type` excluded). */
function staticImports(): StaticImport[] {
  const out: StaticImport[] = [];
  const re = /^(?:import|export)\s+(?!type\s)([^;]*?)\s+from\s+'([^']+)';/gms;
  for (const path of sources(FUNCTIONS)) {
    const text = readFileSync(path, 'utf8');
    for (const m of text.matchAll(re)) {
      out.push({ file: relative(PROJECT_ROOT, path), spec: m[2] as string, clause: m[1] as string });
    }
  }
  return out;
}

const imports = staticImports();
const importersOf = (test: (spec: string) => boolean) =>
  imports.filter((i) => test(i.spec)).map((i) => `${i.file} → ${i.spec}`);

describe('heavy, rarely used modules are loaded on first use', () => {
  it('finds the imports it checks', () => {
    expect(imports.length).toBeGreaterThan(100);
  });

  it('the EventBridge client: only on events (adapters/event-bus.ts)', () => {
    expect(importersOf((s) => s === '@aws-sdk/client-eventbridge')).toEqual([]);
  });

  it("lib-storage's Upload: only when the build uploads a file (adapters/s3-store.ts)", () => {
    expect(importersOf((s) => s === '@aws-sdk/lib-storage')).toEqual([]);
  });

  it('hyparquet: only in the Parquet reader, itself loaded by the first Parquet collection', () => {
    expect(importersOf((s) => s.startsWith('hyparquet'))).toEqual([
      'functions/adapters/readers/parquet.ts → hyparquet',
      'functions/adapters/readers/parquet.ts → hyparquet-compressors',
    ]);
    expect(importersOf((s) => /\/parquet$/.test(s))).toEqual([]);
  });

  it("the explorer's maths: only through explore/maths.ts, which routes.ts import()s", () => {
    const maths = /^\.\/(pca|projection|prefix-index|sampling|maths)$/;
    const fromRoutes = imports.filter(
      (i) => i.file === 'functions/query/explore/routes.ts' && maths.test(i.spec),
    );
    expect(fromRoutes).toEqual([]);
    expect(importersOf((s) => /explore\/(pca|projection|prefix-index|sampling|maths)$/.test(s))).toEqual([]);
  });

  it('the OpenAPI document: only when /v1/openapi.json is asked for', () => {
    expect(importersOf((s) => s.endsWith('openapi.json'))).toEqual([]);
  });

  it('zod as a namespace import: `import { z }` also keeps every locale (~370 KB) in the bundle', () => {
    const zod = imports.filter((i) => i.spec === 'zod');
    expect(zod.length).toBeGreaterThan(0);
    expect(zod.filter((i) => i.clause !== '* as z').map((i) => i.file)).toEqual([]);
  });
});
