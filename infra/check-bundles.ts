/**
 * Runs after `cdk synth` (part of `npm run synth`): checks what would be deployed, offline.
 *
 * For every Node.js function in cdk.out:
 * - the bundle is ESM (index.mjs) with a source map next to it;
 * - its only imports left to the runtime are Node built-ins and (unless bundled) @aws-sdk/* —
 *   an `import 'hnswlib-node'` would fail on Lambda, where ESM ignores NODE_PATH;
 * - it initialises the way Lambda initialises it: copied to a directory outside the repository (like
 *   /var/task), the runtime's SDK beside it, NODE_PATH at the staged layer's nodejs/node_modules,
 *   the function's environment from the template; then `handler` must be a function.
 * And the staged layer passes the Amazon Linux 2023 symbol check.
 *
 * Usage: tsx infra/check-bundles.ts [cdk.out]
 */
import { spawnSync } from 'node:child_process';
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
} from 'node:fs';
import { builtinModules } from 'node:module';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { build } from 'esbuild';
import { checkFile, formatReport } from '../layers/hnswlib/check-symbols';
import { PROJECT_ROOT } from './paths';

interface CfnResource {
  readonly Type: string;
  readonly Properties?: Record<string, unknown>;
  readonly Metadata?: Record<string, unknown>;
}

const outDir = resolve(process.argv[2] ?? join(PROJECT_ROOT, 'cdk.out'));
let failures = 0;
const fail = (msg: string): void => {
  failures++;
  console.log(`FAIL ${msg}`);
};

function assetPath(r: CfnResource): string | undefined {
  const p = r.Metadata?.['aws:asset:path'];
  return typeof p === 'string' ? join(outDir, p) : undefined;
}

/** Imports the bundle leaves unresolved (esbuild metafile, everything external). */
async function externalImports(file: string): Promise<string[]> {
  const result = await build({
    entryPoints: [file],
    bundle: true,
    write: false,
    metafile: true,
    platform: 'node',
    format: 'esm',
    logLevel: 'silent',
    external: ['*'],
  });
  const imports = Object.values(result.metafile.inputs).flatMap((i) => i.imports);
  return [...new Set(imports.filter((i) => i.external).map((i) => i.path))];
}

function isBuiltin(spec: string): boolean {
  return spec.startsWith('node:') || builtinModules.includes(spec);
}

function environmentOf(r: CfnResource): Record<string, string> {
  const env =
    (r.Properties?.Environment as { Variables?: Record<string, unknown> } | undefined)?.Variables ?? {};
  return Object.fromEntries(
    Object.entries(env).map(([k, v]) => [k, typeof v === 'string' ? v : `placeholder-${k.toLowerCase()}`]),
  );
}

async function main(): Promise<void> {
  const templates = readdirSync(outDir).filter((f) => f.endsWith('.template.json'));
  if (templates.length === 0) throw new Error(`no templates in ${outDir}: run cdk synth first`);

  for (const t of templates) {
    const resources = Object.entries(
      (JSON.parse(readFileSync(join(outDir, t), 'utf8')) as { Resources: Record<string, CfnResource> })
        .Resources,
    );
    const layers = resources.filter(([, r]) => r.Type === 'AWS::Lambda::LayerVersion');
    const layerModules = layers
      .map(([, r]) => assetPath(r))
      .filter((p): p is string => p !== undefined)
      .map((p) => join(p, 'nodejs', 'node_modules'));
    for (const mods of layerModules) {
      const addon = join(mods, 'hnswlib-node', 'build', 'Release', 'addon.node');
      if (!existsSync(addon)) {
        fail(`${t}: staged layer has no ${addon}`);
        continue;
      }
      const report = checkFile(addon, true);
      console.log(formatReport(addon, report));
      if (!report.ok) fail(`${t}: staged layer fails the symbol check`);
    }

    const functions = resources.filter(
      ([, r]) =>
        r.Type === 'AWS::Lambda::Function' && String(r.Properties?.Runtime ?? '').startsWith('nodejs'),
    );
    for (const [id, r] of functions) {
      const dir = assetPath(r);
      if (!dir) continue; // inline code (CDK's own custom resources)
      const entry = join(dir, 'index.mjs');
      if (!existsSync(entry)) {
        fail(`${id}: no index.mjs in ${dir} (expected an ESM bundle)`);
        continue;
      }
      if (!existsSync(`${entry}.map`)) fail(`${id}: no source map next to index.mjs`);

      const externals = await externalImports(entry);
      const unexpected = externals.filter((s) => !isBuiltin(s) && !s.startsWith('@aws-sdk/'));
      if (unexpected.length > 0)
        fail(`${id}: imports left to the runtime that it does not have: ${unexpected}`);
      const sdk = externals.filter((s) => s.startsWith('@aws-sdk/'));

      const task = mkdtempSync(join(tmpdir(), 'vicinity-task-'));
      try {
        cpSync(dir, task, { recursive: true });
        if (sdk.length > 0) {
          // Stands in for the runtime's SDK (Lambda resolves it for ESM handlers).
          mkdirSync(join(task, 'node_modules'));
          symlinkSync(join(PROJECT_ROOT, 'node_modules', '@aws-sdk'), join(task, 'node_modules', '@aws-sdk'));
        }
        const t0 = performance.now();
        const child = spawnSync(
          process.execPath,
          [
            '--input-type=module',
            '-e',
            `const m = await import(${JSON.stringify(`file://${join(task, 'index.mjs')}`)});
             if (typeof m.handler !== 'function') { console.error('handler is ' + typeof m.handler); process.exit(3); }`,
          ],
          {
            cwd: task,
            encoding: 'utf8',
            timeout: 60_000,
            env: {
              PATH: process.env.PATH ?? '/usr/bin:/bin',
              NODE_PATH: layerModules.join(':'),
              AWS_REGION: 'us-east-1',
              AWS_ACCESS_KEY_ID: 'AKIDCHECKBUNDLES',
              AWS_SECRET_ACCESS_KEY: 'check-bundles',
              AWS_EC2_METADATA_DISABLED: 'true',
              AWS_LAMBDA_FUNCTION_MEMORY_SIZE: String(r.Properties?.MemorySize ?? 128),
              ...environmentOf(r),
            },
          },
        );
        const ms = Math.round(performance.now() - t0);
        if (child.status !== 0) {
          fail(
            `${id}: initialising the bundle failed (${child.status ?? child.signal}): ${child.stderr.trim()}`,
          );
        } else {
          console.log(
            `ok   ${id}: ESM bundle initialises (${ms} ms), runtime imports: ${externals.join(', ') || '-'}`,
          );
        }
      } finally {
        rmSync(task, { recursive: true, force: true });
      }
    }
  }
  if (failures > 0) {
    console.log(`${failures} bundle check(s) failed`);
    process.exit(1);
  }
}

await main();
