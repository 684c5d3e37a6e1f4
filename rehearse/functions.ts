/**
 * The stack's Node.js functions as the template declares them (asset, Handler, Timeout, MemorySize,
 * Environment, Layers, Role) and what each bundle reads from the environment (ENV names of
 * functions/contract.ts found in the minified bundle), compared with the template's Environment.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ENV } from '../functions/contract';
import { type Finding, ResolveError, type Stack } from './template';

export interface FunctionSpec {
  readonly id: string;
  readonly name: string;
  readonly arn: string;
  readonly assetDir: string;
  readonly handler: string;
  readonly timeoutSeconds: number;
  readonly memoryMb: number;
  readonly runtime: string;
  /** Template environment, resolved to local names. */
  readonly environment: Record<string, string>;
  /** Layer asset folders, in template order. */
  readonly layers: string[];
  readonly roleId?: string;
  readonly logGroupArn?: string;
  readonly tracing: boolean;
}

/** Variables Lambda's runtime sets itself, or the rehearsal sets to point at the stand-ins. */
const RUNTIME_PROVIDED = new Set<string>([
  ENV.region,
  ENV.lambdaMemoryMb,
  ENV.s3Endpoint,
  ENV.dynamodbEndpoint,
]);

export function functionSpecs(stack: Stack, findings: Finding[]): FunctionSpec[] {
  const out: FunctionSpec[] = [];
  for (const [id, r] of stack.ofType('AWS::Lambda::Function')) {
    const p = r.Properties ?? {};
    if (!String(p.Runtime ?? '').startsWith('nodejs')) continue;
    const assetDir = stack.assetPath(id);
    if (!assetDir) continue; // inline code: CDK's own custom-resource handlers
    try {
      const vars = (p.Environment as { Variables?: Record<string, unknown> } | undefined)?.Variables ?? {};
      const environment = Object.fromEntries(
        Object.entries(vars).map(([k, v]) => [
          k,
          String(stack.resolve(v, `${id}.Environment.Variables.${k}`)),
        ]),
      );
      const layers: string[] = [];
      for (const [i, l] of ((p.Layers as unknown[]) ?? []).entries()) {
        const layerId = stack.referencedId(l, 'AWS::Lambda::LayerVersion');
        const dir = layerId ? stack.assetPath(layerId) : undefined;
        if (!dir || !existsSync(dir))
          findings.push({
            resource: id,
            property: `Layers[${i}]`,
            message: 'names no layer asset in cdk.out',
          });
        else layers.push(dir);
      }
      const logGroupId = stack.referencedId(
        (p.LoggingConfig as { LogGroup?: unknown } | undefined)?.LogGroup,
        'AWS::Logs::LogGroup',
      );
      out.push({
        id,
        name: stack.physicalName(id),
        arn: stack.arnOf(id),
        assetDir,
        handler: String(p.Handler ?? 'index.handler'),
        timeoutSeconds: Number(p.Timeout ?? 3),
        memoryMb: Number(p.MemorySize ?? 128),
        runtime: String(p.Runtime),
        environment,
        layers,
        roleId: stack.referencedId(p.Role, 'AWS::IAM::Role'),
        logGroupArn: logGroupId ? stack.arnOf(logGroupId) : undefined,
        tracing: (p.TracingConfig as { Mode?: string } | undefined)?.Mode === 'Active',
      });
    } catch (err) {
      if (!(err instanceof ResolveError)) throw err;
      findings.push({ resource: id, property: 'Properties', message: err.message });
    }
  }
  return out;
}

export interface EnvReads {
  /** ENV names the bundle reads. */
  reads: string[];
  /** Of those, the ones it refuses to start without. */
  required: string[];
}

const escapeRe = (s: string) => s.replace(/[$]/g, '\\$');

/** One file of a bundle: its path relative to the asset directory, and its text. */
export interface BundleFile {
  path: string;
  text: string;
}

/** `a as b, c` of an esbuild import/export list → [[a, b], [c, c]]. */
function bindings(list: string): [string, string][] {
  return list
    .split(',')
    .map((b) => b.trim())
    .filter(Boolean)
    .map((b) => {
      const [from, to] = b.split(/\s+as\s+/);
      return [from as string, (to ?? from) as string];
    });
}

/**
 * What a bundle reads from the environment, over its entry and its chunks. esbuild keeps the contract's
 * ENV object as one frozen literal (`X=Object.freeze({bucket:"VICINITY_BUCKET",…})`) in whichever file
 * it puts contract.ts; other files import it under their own names. Its property reads (`X.table`) are
 * the names read, and calls of the config's `required` helper — found by the error it throws, so
 * neither minified names nor `keepNames` matter — the ones with no default.
 */
export function envReads(files: readonly BundleFile[]): EnvReads {
  const byKey = new Map(Object.entries(ENV));
  const base = (path: string) => path.slice(path.lastIndexOf('/') + 1);
  // The files defining the ENV object, and the name each exports it as.
  const exported = new Map<string, string[]>();
  const local = new Map<string, Set<string>>();
  for (const f of files) {
    for (const m of f.text.matchAll(/([\w$]+)=Object\.freeze\(\{bucket:"VICINITY_BUCKET"/g)) {
      const name = m[1] as string;
      local.set(f.path, (local.get(f.path) ?? new Set()).add(name));
      for (const e of f.text.matchAll(/export\s*\{([^}]*)\}/g))
        for (const [from, to] of bindings(e[1] as string))
          if (from === name) exported.set(base(f.path), [...(exported.get(base(f.path)) ?? []), to]);
    }
  }
  if (local.size === 0) {
    // Not minified that way: fall back to the names that appear as string literals.
    const all = files.map((f) => f.text).join('\n');
    const reads = Object.values(ENV).filter((n) => all.includes(`"${n}"`) || all.includes(`'${n}'`));
    return { reads, required: [] };
  }
  // Files importing it: their local names for it.
  for (const f of files)
    for (const m of f.text.matchAll(/import\s*\{([^}]*)\}\s*from\s*"([^"]+)"/g)) {
      const names = exported.get(base(m[2] as string));
      if (!names) continue;
      for (const [from, to] of bindings(m[1] as string))
        if (names.includes(from)) local.set(f.path, (local.get(f.path) ?? new Set()).add(to));
    }
  const reads = new Set<string>();
  const required = new Set<string>();
  for (const f of files) {
    const objects = local.get(f.path);
    if (!objects) continue;
    const helpers = [
      // keepNames on: esbuild names the helper.
      ...[...f.text.matchAll(/[\w$]+\(([\w$]+),"required"\)/g)].map((m) => m[1] as string),
      // Any build: the helper is the function throwing config.ts's "Environment variable … is required".
      ...[
        ...f.text.matchAll(
          /function ([\w$]+)\([\w$]+,[\w$]+\)\{(?:(?!function )[\s\S]){0,200}?Environment variable \$\{[\w$]+\} is required/g,
        ),
      ].map((m) => m[1] as string),
    ];
    for (const obj of objects) {
      for (const m of f.text.matchAll(new RegExp(`(?<![\\w$.])${escapeRe(obj)}\\.(\\w+)`, 'g'))) {
        const name = byKey.get(m[1] as string);
        if (name) reads.add(name);
      }
      for (const h of helpers) {
        const re = new RegExp(`(?<![\\w$.])${escapeRe(h)}\\([\\w$]+,${escapeRe(obj)}\\.(\\w+)\\)`, 'g');
        for (const m of f.text.matchAll(re)) {
          const name = byKey.get(m[1] as string);
          if (name) required.add(name);
        }
      }
    }
  }
  return { reads: [...reads].sort(), required: [...required].sort() };
}

/** The entry and every chunk of a function's asset (a read in a lazily loaded chunk is a read too). */
function bundleFiles(assetDir: string, entry: string): BundleFile[] {
  const files: BundleFile[] = [{ path: entry, text: readFileSync(join(assetDir, entry), 'utf8') }];
  const chunks = join(assetDir, 'chunks');
  if (existsSync(chunks))
    for (const name of readdirSync(chunks)
      .filter((n) => n.endsWith('.mjs'))
      .sort())
      files.push({ path: `chunks/${name}`, text: readFileSync(join(chunks, name), 'utf8') });
  return files;
}

/** Compares what each bundle reads with the template's Environment. */
export function checkEnvironment(spec: FunctionSpec): { findings: Finding[]; notes: string[] } {
  const findings: Finding[] = [];
  const notes: string[] = [];
  const file = join(spec.assetDir, `${spec.handler.slice(0, spec.handler.lastIndexOf('.'))}.mjs`);
  if (!existsSync(file)) {
    findings.push({
      resource: spec.id,
      property: 'Handler',
      message: `${spec.handler}: no ${file} in the asset`,
    });
    return { findings, notes };
  }
  const { reads, required } = envReads(
    bundleFiles(spec.assetDir, `${spec.handler.slice(0, spec.handler.lastIndexOf('.'))}.mjs`),
  );
  for (const name of required) {
    if (RUNTIME_PROVIDED.has(name) || name in spec.environment) continue;
    findings.push({
      resource: spec.id,
      property: 'Environment.Variables',
      message: `lacks ${name} read by the bundle (required: the function cannot start without it)`,
    });
  }
  const optionalMissing = reads.filter(
    (n) => !required.includes(n) && !RUNTIME_PROVIDED.has(n) && !(n in spec.environment),
  );
  if (optionalMissing.length)
    notes.push(`reads with defaults, not set by the template: ${optionalMissing.join(', ')}`);
  const contractNames = new Set<string>(Object.values(ENV));
  const unread = Object.keys(spec.environment).filter((k) => contractNames.has(k) && !reads.includes(k));
  if (unread.length) notes.push(`set by the template but not read by the bundle: ${unread.join(', ')}`);
  return { findings, notes };
}
