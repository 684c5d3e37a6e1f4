/**
 * The synthesized functions in cdk.out and their cold start, shared by `infra/check-bundles.ts` (part
 * of `npm run synth`) and `bench/cold.ts` (`npm run bench:cold`).
 *
 * A bundle is started the way Lambda starts it: copied to a directory outside the repository (like
 * /var/task), the runtime's SDK beside it when the bundle leaves @aws-sdk/* external, NODE_PATH at the
 * staged layer's nodejs/node_modules, the function's environment from the template (NODE_OPTIONS
 * included when the template sets it), and `import()`ed by a small runner in a fresh Node process.
 */
import { spawn } from 'node:child_process';
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { build } from 'esbuild';
import { PROJECT_ROOT } from './paths';

interface CfnResource {
  readonly Type: string;
  readonly Properties?: Record<string, unknown>;
  readonly Metadata?: Record<string, unknown>;
}

export interface BundledFunction {
  /** Logical ID in the template. */
  readonly id: string;
  readonly template: string;
  /** POWERTOOLS_SERVICE_NAME (vicinity-query, vicinity-admin, vicinity-build), else the logical ID. */
  readonly name: string;
  /** The asset directory holding index.mjs. */
  readonly dir: string;
  readonly memoryMb: number;
  /** The template's environment; values CloudFormation resolves at deploy time become placeholders. */
  readonly environment: Record<string, string>;
}

export interface Synthesized {
  readonly functions: BundledFunction[];
  /** nodejs/node_modules of every staged layer (NODE_PATH, as /opt/nodejs/node_modules on Lambda). */
  readonly layerModules: string[];
}

function assetPath(outDir: string, r: CfnResource): string | undefined {
  const p = r.Metadata?.['aws:asset:path'];
  return typeof p === 'string' ? join(outDir, p) : undefined;
}

function environmentOf(r: CfnResource): Record<string, string> {
  const env =
    (r.Properties?.Environment as { Variables?: Record<string, unknown> } | undefined)?.Variables ?? {};
  return Object.fromEntries(
    Object.entries(env).map(([k, v]) => [k, typeof v === 'string' ? v : `placeholder-${k.toLowerCase()}`]),
  );
}

/** Every Node.js function with a bundled asset, and the layers, of every template in `outDir`. */
export function readSynthesized(out: string): Synthesized {
  const outDir = resolve(out);
  const templates = readdirSync(outDir).filter((f) => f.endsWith('.template.json'));
  if (templates.length === 0) throw new Error(`no templates in ${outDir}: run cdk synth first`);
  const functions: BundledFunction[] = [];
  const layerModules: string[] = [];
  for (const t of templates) {
    const resources = Object.entries(
      (JSON.parse(readFileSync(join(outDir, t), 'utf8')) as { Resources: Record<string, CfnResource> })
        .Resources,
    );
    for (const [, r] of resources) {
      if (r.Type !== 'AWS::Lambda::LayerVersion') continue;
      const p = assetPath(outDir, r);
      if (p) layerModules.push(join(p, 'nodejs', 'node_modules'));
    }
    for (const [id, r] of resources) {
      if (r.Type !== 'AWS::Lambda::Function' || !String(r.Properties?.Runtime ?? '').startsWith('nodejs'))
        continue;
      const dir = assetPath(outDir, r);
      if (!dir) continue; // inline code (CDK's own custom resources)
      const environment = environmentOf(r);
      functions.push({
        id,
        template: t,
        name: environment.POWERTOOLS_SERVICE_NAME ?? id,
        dir,
        memoryMb: Number(r.Properties?.MemorySize ?? 128),
        environment,
      });
    }
  }
  return { functions, layerModules };
}

/** A copy of the function's asset outside the repository, as Lambda's /var/task; `dispose` removes it. */
export interface StagedFunction {
  readonly fn: BundledFunction;
  readonly task: string;
  readonly entry: string;
  /** Environment of the function's process (fresh: nothing inherited but PATH). */
  readonly env: Record<string, string>;
  dispose(): void;
}

/** The runner: imports the module named on the command line and prints when `handler` was ready. */
const RUNNER = `const t0 = performance.now();
const m = await import(process.argv[2]);
const t1 = performance.now();
if (process.argv[3] !== 'empty' && typeof m.handler !== 'function') {
  console.error('handler is ' + typeof m.handler);
  process.exit(3);
}
const cpu = process.cpuUsage();
process.stdout.write(JSON.stringify({ importMs: t1 - t0, readyMs: t1, cpuMs: (cpu.user + cpu.system) / 1000 }) + '\\n');
`;

export function stageFunction(
  fn: BundledFunction,
  layerModules: readonly string[],
  sdkExternal: boolean,
  extraEnv: Record<string, string> = {},
): StagedFunction {
  const task = mkdtempSync(join(tmpdir(), 'vicinity-task-'));
  cpSync(fn.dir, task, { recursive: true });
  if (sdkExternal) {
    // Stands in for the runtime's SDK (Lambda resolves it for ESM handlers).
    mkdirSync(join(task, 'node_modules'));
    symlinkSync(join(PROJECT_ROOT, 'node_modules', '@aws-sdk'), join(task, 'node_modules', '@aws-sdk'));
  }
  writeFileSync(join(task, 'runner.mjs'), RUNNER);
  writeFileSync(join(task, 'empty.mjs'), '');
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    NODE_PATH: layerModules.join(':'),
    AWS_REGION: 'us-east-1',
    AWS_ACCESS_KEY_ID: 'AKIDCHECKBUNDLES',
    AWS_SECRET_ACCESS_KEY: 'check-bundles',
    AWS_EC2_METADATA_DISABLED: 'true',
    // Lambda runs Node.js 24; the SDK's notice for this repository's Node.js 20 is not Lambda's work.
    AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
    AWS_LAMBDA_FUNCTION_MEMORY_SIZE: String(fn.memoryMb),
    ...fn.environment,
    ...extraEnv,
  };
  return {
    fn,
    task,
    entry: join(task, 'index.mjs'),
    env,
    dispose: () => rmSync(task, { recursive: true, force: true }),
  };
}

export interface InitSample {
  /** Duration of the `import()` of the bundle. */
  importMs: number;
  /** performance.now() when `handler` was ready: time since the process started. */
  readyMs: number;
  /** CPU time (user + system, all threads) of the process when `handler` was ready. */
  cpuMs: number;
}

/** Runs `node [args] file` in a fresh process; resolves with stdout, rejects with stderr on failure. */
export function runNode(
  args: string[],
  opts: { cwd: string; env: Record<string, string>; timeoutMs?: number },
): Promise<string> {
  return new Promise((done, reject) => {
    const child = spawn(process.execPath, args, {
      cwd: opts.cwd,
      env: opts.env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => {
      out += d;
    });
    child.stderr.on('data', (d) => {
      err += d;
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 60_000);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) done(out);
      else reject(new Error(`exit ${code ?? signal}: ${err.trim()}`));
    });
  });
}

/** One fresh process importing the staged bundle (or, with `empty`, an empty module: the baseline). */
export async function sampleInit(s: StagedFunction, empty = false): Promise<InitSample> {
  const target = `file://${empty ? join(s.task, 'empty.mjs') : s.entry}`;
  const out = await runNode([join(s.task, 'runner.mjs'), target, empty ? 'empty' : 'bundle'], {
    cwd: s.task,
    env: s.env,
  });
  const last = out.trim().split('\n').pop() ?? '';
  return JSON.parse(last) as InitSample;
}

export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
}

export interface InitFigure {
  /** Median of `runs` fresh processes: handler ready − the same runner's ready with an empty module. */
  initMs: number;
  /** Median duration of the bundle's import() alone. */
  importMs: number;
  /** Median ready time of the runner with an empty module (Node's own start-up, subtracted). */
  baselineMs: number;
  samples: number[];
  /** Median CPU time (user + system) to handler ready, minus the baseline's: less sensitive to a busy machine. */
  cpuMs: number;
  /** Median CPU time of the empty-module runner (subtracted from cpuMs). */
  baselineCpuMs: number;
}

/**
 * The bundle's init: `runs` fresh processes each for the bundle and for the empty-module baseline,
 * interleaved so a burst of load on a shared machine hits both alike.
 */
export async function measureInit(s: StagedFunction, runs: number): Promise<InitFigure> {
  return (await measureInits([s], runs))[0] as InitFigure;
}

/**
 * `measureInit` for several bundles at once, round-robin: each round starts one empty-module process
 * and one process per bundle, so a slow minute of a shared machine lands on every bundle alike instead
 * of on whichever was being measured then.
 */
export async function measureInits(staged: readonly StagedFunction[], runs: number): Promise<InitFigure[]> {
  // One unmeasured run each: the first read of the copied files from disk is not Lambda's case either.
  for (const s of staged) await sampleInit(s);
  const base: number[] = [];
  const baseCpu: number[] = [];
  const per = staged.map(() => ({ ready: [] as number[], imports: [] as number[], cpu: [] as number[] }));
  for (let i = 0; i < runs; i++) {
    const e = await sampleInit(staged[0] as StagedFunction, true);
    base.push(e.readyMs);
    baseCpu.push(e.cpuMs);
    for (let j = 0; j < staged.length; j++) {
      const b = await sampleInit(staged[j] as StagedFunction);
      const p = per[j] as (typeof per)[number];
      p.ready.push(b.readyMs);
      p.imports.push(b.importMs);
      p.cpu.push(b.cpuMs);
    }
  }
  const baselineMs = median(base);
  const baselineCpuMs = median(baseCpu);
  return per.map((p) => ({
    initMs: median(p.ready) - baselineMs,
    cpuMs: median(p.cpu) - baselineCpuMs,
    baselineCpuMs,
    importMs: median(p.imports),
    baselineMs,
    samples: p.ready.map((r) => r - baselineMs),
  }));
}

/**
 * Imports the bundle leaves unresolved (esbuild metafile): every package import, of the entry and of
 * the chunks it loads (relative imports, static or `import()`, are followed and must exist).
 */
export async function externalImports(file: string): Promise<string[]> {
  const result = await build({
    entryPoints: [file],
    bundle: true,
    write: false,
    metafile: true,
    platform: 'node',
    format: 'esm',
    logLevel: 'silent',
    packages: 'external',
  });
  const imports = Object.values(result.metafile.inputs).flatMap((i) => i.imports);
  return [...new Set(imports.filter((i) => i.external).map((i) => i.path))];
}

/** Sizes of a split bundle (entry + chunks/): what init reads and parses, and all of it. */
export interface BundleBytes {
  /** index.mjs alone. */
  entry: number;
  /** index.mjs and the chunks it imports statically, transitively: what a cold start loads. */
  atInit: number;
  /** Every .mjs of the bundle, the chunks only `import()`ed on first use included. */
  total: number;
}

const STATIC_IMPORT = /(?:\bfrom|\bimport)\s*["'](\.{1,2}\/[^"']+\.mjs)["']/g;

export function bundleBytes(dir: string): BundleBytes {
  const entry = join(dir, 'index.mjs');
  const seen = new Set<string>();
  const visit = (file: string): void => {
    if (seen.has(file)) return;
    seen.add(file);
    for (const m of readFileSync(file, 'utf8').matchAll(STATIC_IMPORT))
      visit(resolve(dirname(file), m[1] as string));
  };
  visit(entry);
  const all = [entry, ...listChunks(dir)];
  const size = (f: string) => statSync(f).size;
  return {
    entry: size(entry),
    atInit: [...seen].reduce((a, f) => a + size(f), 0),
    total: all.reduce((a, f) => a + size(f), 0),
  };
}

/** The chunk files of a split bundle (chunks/*.mjs), none for a one-file bundle. */
export function listChunks(dir: string): string[] {
  const chunks = join(dir, 'chunks');
  return existsSync(chunks)
    ? readdirSync(chunks)
        .filter((f) => f.endsWith('.mjs'))
        .map((f) => join(chunks, f))
    : [];
}

/** Whether the bundle leaves @aws-sdk/* to the runtime (an import of it survives bundling). */
export async function leavesSdkExternal(entry: string): Promise<boolean> {
  return (await externalImports(entry)).some((s) => s.startsWith('@aws-sdk/'));
}
