/**
 * The shape of a function's bundle (infra/bundle.ts) that its init time depends on: one file read at a
 * cold start, the rarely used code in chunks read on first use, and no ESM import of a Node built-in.
 */
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bundleFunction } from '../../infra/bundle';
import { PROJECT_ROOT } from '../../infra/paths';

/** The specifiers of a file's static `import … from '…'` / `import '…'` statements. */
function staticImports(file: string): string[] {
  const code = readFileSync(file, 'utf8');
  return [...code.matchAll(/(?:^|[;\n}])\s*import\s*(?:[\w$*{}\s,]+?\s*from\s*)?["']([^"']+)["']/g)].map(
    (m) => m[1] as string,
  );
}

describe('the query function bundle', () => {
  const out = join(PROJECT_ROOT, 'cdk.out', `bundle-test-${process.pid}`);
  beforeAll(async () => {
    await bundleFunction(join(PROJECT_ROOT, 'functions/query/handler.ts'), out, true);
  }, 60_000);
  afterAll(() => rmSync(out, { recursive: true, force: true }));

  it('loads one file at a cold start: index.mjs imports no chunk statically', () => {
    const imports = staticImports(join(out, 'index.mjs'));
    expect(imports.filter((s) => s.startsWith('.'))).toEqual([]);
  });

  it('keeps what is used rarely in chunks loaded on first use, which share the entry’s modules', () => {
    const chunks = readdirSync(join(out, 'chunks')).filter((f) => f.endsWith('.mjs'));
    expect(chunks.length).toBeGreaterThan(3);
    const index = readFileSync(join(out, 'index.mjs'), 'utf8');
    for (const c of chunks) expect(index.includes(`./chunks/${c}`) || chunkImportsChunk(out, c)).toBe(true);
    // A chunk that needs the entry's modules imports them from the entry: one copy of each module.
    const fromEntry = chunks.filter((c) => staticImports(join(out, 'chunks', c)).includes('../index.mjs'));
    expect(fromEntry.length).toBeGreaterThan(0);
  });

  it('reads Node built-ins through require, not through an ESM import (no ESM facade at init)', () => {
    const builtins = staticImports(join(out, 'index.mjs')).filter((s) => !s.startsWith('.'));
    // node:module only: the banner's createRequire.
    expect(builtins).toEqual(['node:module']);
    // Required instead, through esbuild's require shim (minified name): `x("node:fs")`.
    expect(/[\w$]\("node:fs"\)/.test(readFileSync(join(out, 'index.mjs'), 'utf8'))).toBe(true);
  });

  it('writes a source map next to every file and leaves no working files behind', () => {
    const files = ['index.mjs', ...readdirSync(join(out, 'chunks')).map((f) => `chunks/${f}`)];
    for (const f of files.filter((x) => x.endsWith('.mjs')))
      expect(existsSync(join(out, `${f}.map`)), f).toBe(true);
    expect(readdirSync(out).sort()).toEqual(['chunks', 'index.mjs', 'index.mjs.map']);
  });
});

/** Whether some chunk imports chunk `c` (dynamically or statically): every chunk is reachable. */
function chunkImportsChunk(out: string, c: string): boolean {
  return readdirSync(join(out, 'chunks'))
    .filter((f) => f.endsWith('.mjs') && f !== c)
    .some((f) => readFileSync(join(out, 'chunks', f), 'utf8').includes(`./${c}`));
}
