/**
 * The stack's Node.js functions as the template declares them (asset, Handler, Timeout, MemorySize,
 * Environment, Layers, Role) and what each bundle reads from the environment (ENV names of
 * functions/contract.ts found in the minified bundle), compared with the template's Environment.
 */
import { existsSync, readFileSync } from 'node:fs';
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

/**
 * What a bundle reads from the environment. esbuild keeps the contract's ENV object as one frozen
 * literal (`X=Object.freeze({bucket:"VICINITY_BUCKET",…})`); its property reads (`X.table`) are the
 * names read, and calls of the config's `required` helper (kept by name) the ones with no default.
 */
export function envReads(bundle: string): EnvReads {
  const byKey = new Map(Object.entries(ENV));
  const objects = [...bundle.matchAll(/([\w$]+)=Object\.freeze\(\{bucket:"VICINITY_BUCKET"/g)].map(
    (m) => m[1] as string,
  );
  if (objects.length === 0) {
    // Not minified that way: fall back to the names that appear as string literals.
    const reads = Object.values(ENV).filter((n) => bundle.includes(`"${n}"`) || bundle.includes(`'${n}'`));
    return { reads, required: [] };
  }
  const reads = new Set<string>();
  const required = new Set<string>();
  const helpers = [...bundle.matchAll(/[\w$]+\(([\w$]+),"required"\)/g)].map((m) => m[1] as string);
  for (const obj of objects) {
    for (const m of bundle.matchAll(new RegExp(`(?<![\\w$.])${escapeRe(obj)}\\.(\\w+)`, 'g'))) {
      const name = byKey.get(m[1] as string);
      if (name) reads.add(name);
    }
    for (const h of helpers) {
      const re = new RegExp(`(?<![\\w$.])${escapeRe(h)}\\([\\w$]+,${escapeRe(obj)}\\.(\\w+)\\)`, 'g');
      for (const m of bundle.matchAll(re)) {
        const name = byKey.get(m[1] as string);
        if (name) required.add(name);
      }
    }
  }
  return { reads: [...reads].sort(), required: [...required].sort() };
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
  const { reads, required } = envReads(readFileSync(file, 'utf8'));
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
