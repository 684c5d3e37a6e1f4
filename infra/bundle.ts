/**
 * The functions' bundles: one place for how a handler becomes the code Lambda loads.
 *
 * Two passes, because each tool does one half well:
 * 1. esbuild (`bundleOptions`) resolves, strips types, converts CommonJS, tree-shakes and minifies into
 *    ESM split by `import()`: every dynamically imported module (the EventBridge and Lambda clients,
 *    lib-storage's Upload, the Parquet readers, the explorer's maths, the OpenAPI document, the SDK's
 *    rarely used credential providers) becomes a chunk read on first use only. But esbuild also cuts
 *    what init loads into one chunk per set of importers: 16–18 files at every cold start, and Node's
 *    ESM loader pays resolve, read and link per file (≈ 0.35 ms each on the 2-core machine).
 * 2. Rollup (`mergeInitChunks`) re-chunks esbuild's output without re-resolving anything: everything
 *    loaded at init goes into index.mjs, which the lazy chunks import from; the lazy chunks stay lazy.
 *    The source maps of pass 1 are chained, so a stack still maps to the TypeScript source.
 * And Node built-ins are read through `require` (`builtinsThroughRequire`): an ESM `import` of a
 * built-in makes Node build its ESM facade, which reads every export of the module (`node:fs`'s lazy
 * `ReadStream` getter loads the streams, and so on). Together: −9 to −18 ms of init per function,
 * docs/performance.md "Cold start".
 */
import { mkdirSync, readFileSync, rmSync } from 'node:fs';
import { builtinModules, createRequire } from 'node:module';
import { join } from 'node:path';
import { type BuildOptions, build, type Plugin } from 'esbuild';
import { type Plugin as RollupPlugin, rollup } from 'rollup';
import { PROJECT_ROOT } from './paths';

/** esbuild target matching the functions' runtime (constructs/vicinity-function.ts LAMBDA_RUNTIME). */
export const BUNDLE_TARGET = 'node24';

/**
 * ESM bundles still contain CommonJS dependencies that call `require`; esbuild's shim uses a global
 * `require` when one exists, so define it. The alias keeps it clear of a module's own createRequire.
 */
export const ESM_REQUIRE_BANNER =
  "import { createRequire as __vicinityCreateRequire } from 'node:module';" +
  'const require = __vicinityCreateRequire(import.meta.url);';

/**
 * Left to the runtime: the native addon (the layer) and, with `bundleAwsSdk: false` only, the SDK
 * (Lambda's Node.js 24 runtime ships a v3 of its choosing). Bundled (the default) the SDK is the
 * version package-lock.json pins and the tests ran, tree-shaken into the ESM bundle; left to the
 * runtime it is loaded through `require` from the ESM bundle, and Node's CommonJS loader (its
 * cjs-module-lexer parse of every @aws-sdk/* and @smithy/* file) costs about 100 ms of init
 * (docs/performance.md, "Cold start").
 */
export function externalModules(bundleAwsSdk: boolean): string[] {
  return bundleAwsSdk ? ['hnswlib-node'] : ['@aws-sdk/*', 'hnswlib-node'];
}

const BUILTIN = 'vicinity-builtin';
const builtins = new Set(builtinModules);
const requireHere = createRequire(import.meta.url);

/**
 * Built-ins become a module that `require`s them and exports each of their names as a pure constant,
 * so only the names the bundle uses survive tree-shaking, and only those are read, once, at init. The
 * names are this Node's; a name the code imports that it lacks fails the build (esbuild: "No matching
 * export") rather than being undefined at run time.
 */
export const builtinsThroughRequire: Plugin = {
  name: 'builtins-through-require',
  setup(b) {
    b.onResolve({ filter: /^(node:)?[a-z_/]+$/ }, (a) => {
      const name = a.path.replace(/^node:/, '');
      return a.namespace !== BUILTIN && builtins.has(name) ? { path: name, namespace: BUILTIN } : undefined;
    });
    b.onLoad({ filter: /.*/, namespace: BUILTIN }, (a) => {
      const names = Object.keys(requireHere(a.path) as object).filter(
        (k) => k !== 'default' && /^[A-Za-z_$][\w$]*$/.test(k),
      );
      const contents = [
        `const m = require(${JSON.stringify(`node:${a.path}`)});`,
        'export default m;',
        ...names.map((k) => `export const ${k} = /* @__PURE__ */ (() => m.${k})();`),
      ].join('\n');
      return { contents, loader: 'js' };
    });
  },
};

/**
 * Pass 1, esbuild's options (everything but `outdir`). Minified, with source maps (no sources inside)
 * that Node does not load (no `--enable-source-maps`): the injected functions/common/install-mapped-stacks.ts
 * maps a stack's frames when the stack is formatted, reading a map on the first stack that needs it.
 * No `keepNames` (its `__name` calls cost 4–11 ms of init, docs/performance.md "Cold start"): classes
 * and functions are renamed, so every error class states its `name` (core/errors.ts `errorName`;
 * test/infra/error-names.test.ts), the SDK's `NoOpLogger` gets its name back (the injected
 * functions/common/sdk-class-names.ts) and mapped stacks take function names from the map's `names`.
 * `mainFields: module` picks the SDK's ES builds, which tree-shake.
 */
export function bundleOptions(entry: string, bundleAwsSdk: boolean): BuildOptions {
  return {
    entryPoints: { index: entry },
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: BUNDLE_TARGET,
    splitting: true,
    outExtension: { '.js': '.mjs' },
    chunkNames: 'chunks/[name]-[hash]',
    mainFields: ['module', 'main'],
    banner: { js: ESM_REQUIRE_BANNER },
    inject: [
      join(PROJECT_ROOT, 'functions', 'common', 'install-mapped-stacks.ts'),
      join(PROJECT_ROOT, 'functions', 'common', 'sdk-class-names.ts'),
    ],
    external: externalModules(bundleAwsSdk),
    plugins: [builtinsThroughRequire],
    minify: true,
    keepNames: false,
    sourcemap: true,
    sourcesContent: false,
    absWorkingDir: PROJECT_ROOT,
    logLevel: 'warning',
  };
}

const SOURCE_MAPPING_URL = /\n\/\/# sourceMappingURL=\S+\s*$/;

/** Reads pass 1's files with their maps, so Rollup's maps lead back to the TypeScript sources. */
const withPassOneMaps: RollupPlugin = {
  name: 'pass-one-maps',
  load(id) {
    if (!id.endsWith('.mjs')) return null;
    const code = readFileSync(id, 'utf8').replace(SOURCE_MAPPING_URL, '\n');
    return { code, map: readFileSync(`${id}.map`, 'utf8') };
  },
};

/**
 * Pass 2: `from` (esbuild's split output) re-chunked into `outdir`. Nothing is resolved again: every
 * import pass 1 left is a package or a built-in, external here. No tree-shaking (pass 1 did it), so
 * Rollup only moves code; evaluation order is kept.
 */
export async function mergeInitChunks(from: string, outdir: string): Promise<void> {
  const merged = await rollup({
    input: join(from, 'index.mjs'),
    external: (id) => !id.startsWith('.') && !id.startsWith('/'),
    // The entry may export more than `handler`: what the lazy chunks import from it.
    preserveEntrySignatures: 'allow-extension',
    treeshake: false,
    plugins: [withPassOneMaps],
    onLog(level, log, handler) {
      // Pass 1's chunks import each other both ways (the entry's code and a lazy chunk's): expected.
      if (log.code !== 'CIRCULAR_DEPENDENCY') handler(level, log);
    },
  });
  try {
    await merged.write({
      dir: outdir,
      format: 'es',
      entryFileNames: 'index.mjs',
      chunkFileNames: 'chunks/[name].mjs',
      hoistTransitiveImports: false,
      sourcemap: true,
      sourcemapExcludeSources: true,
    });
  } finally {
    await merged.close();
  }
}

/**
 * A function's bundle, written to `outdir`: index.mjs (everything init loads) and chunks/ (what loads
 * on first use), each with its map (sources relative to the file, as a one-pass bundle has them).
 * Pass 1 works inside `outdir` and is removed before the asset is hashed.
 */
export async function bundleFunction(entry: string, outdir: string, bundleAwsSdk: boolean): Promise<void> {
  const passOne = join(outdir, '.pass-one');
  mkdirSync(passOne, { recursive: true });
  try {
    await build({ ...bundleOptions(entry, bundleAwsSdk), outdir: passOne });
    await mergeInitChunks(passOne, outdir);
  } finally {
    rmSync(passOne, { recursive: true, force: true });
  }
}
