/**
 * The checking stage: what can be told from the template, the bundles and the recorded calls alone.
 * Every failure names the template resource and property at fault. Run by the rehearsal before and
 * after the story, and by the break tests against edited copies of the template.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ENV } from '../functions/contract';
import { type RuleSpec, ruleSpecs, schedulePeriodMs } from './events';
import { checkEnvironment, type FunctionSpec, functionSpecs } from './functions';
import { type RouteSpec, routeSpecs } from './gateway';
import {
  type Call,
  conditionRefusals,
  evaluate,
  formatConditions,
  grantsOf,
  grantUsed,
  roleStatements,
  type Statement,
  statementsOf,
} from './iam';
import { justification } from './justified';
import { ACCOUNT, type Finding, REGION, ResolveError, type Stack } from './template';

export interface NotificationSpec {
  readonly id: string;
  readonly bucketId?: string;
  readonly bucket: string;
  readonly functionId?: string;
  readonly events: string[];
  readonly prefix: string;
  readonly suffix: string;
}

export interface AsyncConfig {
  readonly retries: number;
  readonly onFailure?: { arn: string; id?: string; type?: string };
}

export interface Model {
  readonly functions: FunctionSpec[];
  readonly routes: RouteSpec[];
  readonly notifications: NotificationSpec[];
  readonly rules: RuleSpec[];
  readonly asyncConfig: Map<string, AsyncConfig>;
  /** Statements of the template's ManagedPolicies attached to no role: what callers are given. */
  readonly callerStatements: Statement[];
  readonly findings: Finding[];
  readonly notes: string[];
}

export function notificationSpecs(stack: Stack, findings: Finding[]): NotificationSpec[] {
  const out: NotificationSpec[] = [];
  const sources: Array<[string, unknown, unknown]> = [
    ...stack
      .ofType('Custom::S3BucketNotifications')
      .map(
        ([id, r]) =>
          [id, r.Properties?.BucketName, r.Properties?.NotificationConfiguration] as [
            string,
            unknown,
            unknown,
          ],
      ),
    ...stack
      .ofType('AWS::S3::Bucket')
      .map(
        ([id, r]) => [id, { Ref: id }, r.Properties?.NotificationConfiguration] as [string, unknown, unknown],
      ),
  ];
  for (const [id, bucketRef, config] of sources) {
    const configs =
      ((config as { LambdaFunctionConfigurations?: Array<Record<string, unknown>> } | undefined)
        ?.LambdaFunctionConfigurations as Array<Record<string, unknown>>) ?? [];
    for (const [i, c] of configs.entries()) {
      const where = `NotificationConfiguration.LambdaFunctionConfigurations[${i}]`;
      const fnRef = c.LambdaFunctionArn ?? c.Function;
      const functionId = stack.referencedId(fnRef, 'AWS::Lambda::Function');
      if (!functionId)
        findings.push({
          resource: id,
          property: `${where}.LambdaFunctionArn`,
          message: 'is not a function of this stack',
        });
      const rules = ((c.Filter as { Key?: { FilterRules?: Array<{ Name: string; Value: string }> } })?.Key
        ?.FilterRules ??
        (c.Filter as { S3Key?: { Rules?: Array<{ Name: string; Value: string }> } })?.S3Key?.Rules ??
        []) as Array<{ Name: string; Value: string }>;
      out.push({
        id,
        bucketId: stack.referencedId(bucketRef, 'AWS::S3::Bucket'),
        bucket: String(stack.resolve(bucketRef, `${id}.BucketName`)),
        functionId,
        events: (c.Events as string[]) ?? (c.Event ? [String(c.Event)] : []),
        prefix: rules.find((r) => r.Name.toLowerCase() === 'prefix')?.Value ?? '',
        suffix: rules.find((r) => r.Name.toLowerCase() === 'suffix')?.Value ?? '',
      });
    }
  }
  return out;
}

/** Does the S3 event name (`ObjectCreated:Put`) match a configured event (`s3:ObjectCreated:*`)? */
export function s3EventMatches(configured: readonly string[], eventName: string): boolean {
  return configured.some((c) => {
    const pattern = c.replace(/^s3:/, '');
    return pattern.endsWith('*') ? eventName.startsWith(pattern.slice(0, -1)) : pattern === eventName;
  });
}

function glob(pattern: string, value: string): boolean {
  const re = pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*');
  return new RegExp(`^${re}$`).test(value);
}

/** Is `principal` allowed to invoke the function from `sourceArn` by an AWS::Lambda::Permission? */
function permitted(stack: Stack, functionId: string, principal: string, sourceArn: string): boolean {
  return stack.ofType('AWS::Lambda::Permission').some(([id, r]) => {
    const p = r.Properties ?? {};
    if (stack.referencedId(p.FunctionName, 'AWS::Lambda::Function') !== functionId) return false;
    if (p.Principal !== principal) return false;
    if (!['lambda:InvokeFunction', 'lambda:*'].includes(String(p.Action))) return false;
    if (p.SourceArn === undefined) return true;
    return glob(String(stack.resolve(p.SourceArn, `${id}.SourceArn`)), sourceArn);
  });
}

interface OpenApiOperation {
  method: string;
  path: string;
  iam: boolean;
}

function openApiOperations(root: string): OpenApiOperation[] {
  const file = join(root, 'docs', 'openapi.json');
  if (!existsSync(file)) return [];
  const doc = JSON.parse(readFileSync(file, 'utf8')) as {
    paths: Record<string, Record<string, { security?: Array<Record<string, unknown>> }>>;
  };
  return Object.entries(doc.paths).flatMap(([path, ops]) =>
    Object.entries(ops)
      .filter(([m]) => ['get', 'post', 'put', 'delete', 'patch'].includes(m))
      .map(([m, op]) => ({
        method: m.toUpperCase(),
        path,
        iam: (op.security ?? []).some((s) => 'iam' in s),
      })),
  );
}

/** Reads the template into the rehearsal's model and runs every static check. */
export function buildModel(stack: Stack, projectRoot: string): Model {
  const findings: Finding[] = [];
  const notes: string[] = [];
  const functions = functionSpecs(stack, findings);
  const byId = new Map(functions.map((f) => [f.id, f]));
  for (const f of functions) {
    const env = checkEnvironment(f);
    findings.push(...env.findings);
    for (const n of env.notes) notes.push(`${f.id}: ${n}`);
    if (!f.roleId)
      findings.push({ resource: f.id, property: 'Role', message: 'names no AWS::IAM::Role of this stack' });
    else {
      try {
        const { unknown } = roleStatements(stack, f.roleId);
        for (const arn of unknown)
          notes.push(
            `${f.id}: role ${f.roleId} has managed policy ${arn}, whose document the rehearsal does not know`,
          );
      } catch (err) {
        if (!(err instanceof ResolveError)) throw err;
        findings.push({ resource: f.roleId, property: 'policies', message: err.message });
      }
    }
  }

  const routes = routeSpecs(stack, findings);
  for (const r of routes) {
    if (r.functionId && !byId.has(r.functionId))
      findings.push({
        resource: r.integrationId ?? r.id,
        property: 'IntegrationUri',
        message: `(${r.routeKey}) targets ${r.functionId}, which is not a rehearsable Node.js function`,
      });
    if (r.functionId && r.apiId) {
      const sample = `arn:aws:execute-api:${REGION}:${ACCOUNT}:${stack.physicalName(r.apiId)}/$default/${r.method === 'ANY' ? 'GET' : r.method}${r.path.replace(/\{[^}]+\}/g, 'x') || '/x'}`;
      if (!permitted(stack, r.functionId, 'apigateway.amazonaws.com', sample))
        findings.push({
          resource: r.functionId,
          property: 'AWS::Lambda::Permission',
          message: `none lets apigateway.amazonaws.com invoke it for route ${r.id} (${r.routeKey})`,
        });
    }
  }
  const apis = stack.ofType('AWS::ApiGatewayV2::Api');
  const api = apis[0]?.[0];
  if (api) {
    for (const op of openApiOperations(projectRoot)) {
      const key = `${op.method} ${op.path}`;
      const route =
        routes.find((r) => r.routeKey === key) ??
        routes.find((r) => r.method === 'ANY' && r.path === op.path);
      if (!route) {
        const fallback = routes.find((r) => r.routeKey === '$default');
        findings.push({
          resource: api,
          property: 'AWS::ApiGatewayV2::Route',
          message: `none has RouteKey "${key}" (docs/openapi.json)${fallback ? `: it would fall to $default (${fallback.id} → ${fallback.functionId})` : ': API Gateway would answer 404'}`,
        });
      } else if (op.iam && route.auth !== 'AWS_IAM') {
        findings.push({
          resource: route.id,
          property: 'AuthorizationType',
          message: `is ${route.auth}; docs/openapi.json requires IAM (SigV4) for ${key}`,
        });
      }
    }
  }

  const notifications = notificationSpecs(stack, findings);
  for (const n of notifications) {
    if (
      n.functionId &&
      n.bucketId &&
      !permitted(stack, n.functionId, 's3.amazonaws.com', stack.arnOf(n.bucketId))
    )
      findings.push({
        resource: n.functionId,
        property: 'AWS::Lambda::Permission',
        message: `none lets s3.amazonaws.com invoke it for bucket ${n.bucketId} (${n.id})`,
      });
  }
  const rules = ruleSpecs(stack, findings);
  for (const rule of rules) {
    for (const t of rule.targets) {
      if (t.functionId && !permitted(stack, t.functionId, 'events.amazonaws.com', stack.arnOf(rule.id)))
        findings.push({
          resource: t.functionId,
          property: 'AWS::Lambda::Permission',
          message: `none lets events.amazonaws.com invoke it for rule ${rule.id}`,
        });
    }
    if (rule.schedule !== undefined && schedulePeriodMs(rule.schedule) === undefined)
      findings.push({
        resource: rule.id,
        property: 'ScheduleExpression',
        message: `"${rule.schedule}" is neither rate(…) nor cron(…)`,
      });
  }
  findings.push(...fanOutFindings(stack, functions));

  const asyncConfig = new Map<string, AsyncConfig>();
  for (const [id, r] of stack.ofType('AWS::Lambda::EventInvokeConfig')) {
    const p = r.Properties ?? {};
    const fn = stack.referencedId(p.FunctionName, 'AWS::Lambda::Function');
    if (!fn) continue;
    const dest = (p.DestinationConfig as { OnFailure?: { Destination?: unknown } } | undefined)?.OnFailure
      ?.Destination;
    const destId = dest === undefined ? undefined : stack.referencedId(dest);
    asyncConfig.set(fn, {
      retries: Number(p.MaximumRetryAttempts ?? 2),
      ...(dest !== undefined
        ? {
            onFailure: {
              arn: String(stack.resolve(dest, `${id}.DestinationConfig.OnFailure.Destination`)),
              id: destId,
              type: destId ? stack.get(destId).Type : undefined,
            },
          }
        : {}),
    });
  }

  const callerStatements: Statement[] = [];
  for (const [id, r] of stack.ofType('AWS::IAM::ManagedPolicy')) {
    const attached = ['Roles', 'Users', 'Groups'].some(
      (k) => ((r.Properties?.[k] as unknown[]) ?? []).length > 0,
    );
    if (attached) continue;
    try {
      callerStatements.push(
        ...statementsOf(r.Properties?.PolicyDocument, `${id}.PolicyDocument.Statement`, stack),
      );
    } catch (err) {
      if (!(err instanceof ResolveError)) throw err;
      findings.push({ resource: id, property: 'PolicyDocument', message: err.message });
    }
  }

  return { functions, routes, notifications, rules, asyncConfig, callerStatements, findings, notes };
}

/**
 * The functions others invoke by a name from their environment: the build's task function
 * (VICINITY_TASK_FUNCTION) and the query function's slots (VICINITY_SLOT_FUNCTION_PREFIX{i},
 * i < VICINITY_SHARD_SLOTS). Each name must be a function of the template, and the caller's role
 * must allow lambda:InvokeFunction on that exact ARN.
 */
export function fanOutFindings(stack: Stack, functions: readonly FunctionSpec[]): Finding[] {
  const findings: Finding[] = [];
  const byName = (n: string) => functions.find((f) => f.name === n || f.arn === n);
  const check = (caller: FunctionSpec, variable: string, name: string) => {
    const target = byName(name);
    if (!target) {
      findings.push({
        resource: caller.id,
        property: `Environment.Variables.${variable}`,
        message: `"${caller.environment[variable]}" makes it invoke "${name}", which is no function of this template (Lambda: 404)`,
      });
      return;
    }
    if (!caller.roleId) return;
    const { statements } = roleStatements(stack, caller.roleId);
    const allowed = evaluate(statements, { action: 'lambda:InvokeFunction', resource: target.arn });
    if (!allowed || allowed === 'deny')
      findings.push({
        resource: `${caller.id} (role ${caller.roleId})`,
        property:
          [...new Set(statements.map((x) => x.source.replace(/\[\d+\]$/, '')))].join(', ') || 'no policy',
        message: `allows no lambda:InvokeFunction on ${target.arn} (${target.id}), which ${variable} names`,
      });
  };
  for (const f of functions) {
    const named = new Set<string>();
    const task = f.environment[ENV.taskFunction];
    if (task) {
      check(f, ENV.taskFunction, task);
      named.add(task);
    }
    const prefix = f.environment[ENV.slotFunctionPrefix];
    const slots = Number(f.environment[ENV.shardSlots] ?? 0);
    if (prefix)
      for (let i = 0; i < slots; i++) {
        check(f, ENV.slotFunctionPrefix, `${prefix}${i}`);
        named.add(`${prefix}${i}`);
      }
    // The other way round: a function its role may invoke that no variable names (a dropped variable).
    if (!f.roleId) continue;
    const { statements } = roleStatements(stack, f.roleId);
    for (const target of functions) {
      if (target.id === f.id || named.has(target.name)) continue;
      const allowed = evaluate(statements, { action: 'lambda:InvokeFunction', resource: target.arn });
      if (allowed && allowed !== 'deny')
        findings.push({
          resource: f.id,
          property: 'Environment.Variables',
          message: `names no function to invoke (${ENV.taskFunction}, ${ENV.slotFunctionPrefix}/${ENV.shardSlots}), yet its role may invoke ${target.id} (${allowed.source}): a variable was dropped, or the grant is unused`,
        });
    }
  }
  return findings;
}

// --- IAM by use -------------------------------------------------------------------------------

export interface PlatformCall extends Call {
  readonly why: string;
}

export interface IamRow {
  readonly action: string;
  readonly resource: string;
  readonly count: number;
  /** The statement that allows it, or undefined (a failure). */
  readonly allowedBy?: string;
  /** The allowing statement's Condition, which held for these calls. */
  readonly condition?: string;
  readonly platform?: string;
  readonly context?: Readonly<Record<string, string>>;
}

export interface IamReport {
  readonly functionId: string;
  readonly roleId?: string;
  readonly used: IamRow[];
  /** Allowed (statement, action, resource) never used by the bundle or the platform. */
  readonly unused: Array<{
    statement: string;
    action: string;
    resource: string;
    platform?: string;
    /** Why the grant stays although the story does not use it (rehearse/justified.ts). */
    justified?: string;
    /** The grant's Condition (one value of a split condition). */
    condition?: string;
  }>;
  readonly findings: Finding[];
}

/** Calls Lambda itself makes with the function's role: logs, traces, async-invoke destinations. */
export function platformGrants(spec: FunctionSpec, model: Model): PlatformCall[] {
  const out: PlatformCall[] = [];
  const logGroup =
    spec.logGroupArn ?? `arn:aws:logs:${REGION}:${ACCOUNT}:log-group:/aws/lambda/${spec.name}:*`;
  for (const a of ['logs:CreateLogStream', 'logs:PutLogEvents'])
    out.push({
      action: a,
      resource: logGroup.replace(/:\*$/, ':log-stream:rehearsal'),
      why: 'the runtime ships the function log',
    });
  if (spec.tracing)
    for (const a of ['xray:PutTraceSegments', 'xray:PutTelemetryRecords'])
      out.push({ action: a, resource: '*', why: 'TracingConfig Active: the runtime sends traces' });
  const dest = model.asyncConfig.get(spec.id)?.onFailure;
  if (dest?.type === 'AWS::SQS::Queue')
    for (const a of ['sqs:SendMessage', 'sqs:GetQueueAttributes', 'sqs:GetQueueUrl'])
      out.push({ action: a, resource: dest.arn, why: 'EventInvokeConfig OnFailure destination' });
  if (dest?.type === 'AWS::Lambda::Function')
    out.push({
      action: 'lambda:InvokeFunction',
      resource: dest.arn,
      why: 'EventInvokeConfig OnFailure destination',
    });
  if (dest?.type === 'AWS::SNS::Topic')
    out.push({ action: 'sns:Publish', resource: dest.arn, why: 'EventInvokeConfig OnFailure destination' });
  return out;
}

/** Checks the calls a function made against its role; lists what its role allows that nothing used. */
export function iamReport(stack: Stack, model: Model, spec: FunctionSpec, calls: readonly Call[]): IamReport {
  const findings: Finding[] = [];
  const statements = spec.roleId ? roleStatements(stack, spec.roleId).statements : [];
  const grouped = new Map<string, { call: Call; count: number }>();
  for (const c of calls) {
    const k = `${c.action} ${c.resource} ${JSON.stringify(c.context ?? {})}`;
    const g = grouped.get(k);
    if (g) g.count++;
    else grouped.set(k, { call: c, count: 1 });
  }
  const used: IamRow[] = [];
  const policyNames =
    [...new Set(statements.map((s) => s.source.replace(/\[\d+\]$/, '')))].join(', ') || 'no policy';
  for (const { call, count } of grouped.values()) {
    const allowed = evaluate(statements, call);
    if (!allowed || allowed === 'deny') {
      const ctx = Object.entries(call.context ?? {})
        .map(([k, v]) => `${k}="${v}"`)
        .join(', ');
      // A statement that would allow it but for its Condition is the property at fault.
      const refused = allowed === 'deny' ? [] : conditionRefusals(statements, call);
      findings.push({
        resource: spec.roleId ? `${spec.id} (role ${spec.roleId})` : spec.id,
        property: refused.length
          ? refused.map((r) => `${r.statement.source}.Condition`).join(', ')
          : policyNames,
        message: `${allowed === 'deny' ? 'explicitly denies' : 'allows no'} ${call.action} on ${call.resource}${ctx ? ` (${ctx})` : ''}, which the bundle called ${count}×${refused.length ? `: ${refused.map((r) => r.problem).join('; ')}` : ''}`,
      });
      used.push({ ...call, count });
    } else
      used.push({
        ...call,
        count,
        allowedBy: allowed.source,
        ...(allowed.conditions ? { condition: formatConditions(allowed.conditions) } : {}),
      });
  }
  const platform = platformGrants(spec, model);
  const unused: IamReport['unused'] = [];
  for (const s of statements) {
    for (const g of grantsOf(s)) {
      if (grantUsed(g, calls)) continue;
      const p = platform.find((pc) => grantUsed(g, [pc]));
      const condition = g.conditions ? formatConditions(g.conditions) : undefined;
      const why = p ? undefined : justification(spec.id, g.action, g.resource, condition);
      unused.push({
        statement: s.source,
        action: g.action,
        resource: g.resource,
        ...(condition ? { condition } : {}),
        ...(p ? { platform: p.why } : {}),
        ...(why ? { justified: why } : {}),
      });
    }
  }
  return {
    functionId: spec.id,
    roleId: spec.roleId,
    used: used.sort((a, b) => a.action.localeCompare(b.action)),
    unused,
    findings,
  };
}

/** Shortens an ARN for the table: the bucket/table names are long, the shape is what matters. */
function short(arn: string): string {
  return arn.replace(/^arn:aws:([a-z0-9-]+):[^:]*:[^:]*:/, '$1:').replace(/^arn:aws:s3:::/, 's3:::');
}

/** Groups object keys by their first two segments, so a table stays readable. */
function shape(resource: string): string {
  const m = /^(arn:aws:s3:::[^/]+\/)([^/]+\/[^/]+\/)?.*$/.exec(resource);
  if (m?.[2]) return `${m[1]}${m[2]}…`;
  return resource;
}

/** An object key (or list prefix) shortened to its first two segments. */
function shapeKey(key: string): string {
  const m = /^([^/]+\/[^/]+\/)./.exec(key);
  return m ? `${m[1]}…` : key;
}

export function formatIamReport(r: IamReport): string {
  const lines: string[] = [`IAM by use — ${r.functionId}${r.roleId ? ` (role ${r.roleId})` : ''}`];
  const rows = new Map<string, { count: number; allowedBy?: string; condition?: string }>();
  for (const u of r.used) {
    const prefix = u.context?.['s3:prefix'];
    const k = `${u.action}  ${short(shape(u.resource))}${prefix !== undefined ? ` s3:prefix=${shapeKey(prefix)}` : ''}`;
    const prev = rows.get(k);
    rows.set(k, {
      count: (prev?.count ?? 0) + u.count,
      allowedBy: prev && !prev.allowedBy ? undefined : u.allowedBy,
      condition: u.condition,
    });
  }
  lines.push('  used (action, resource, calls, allowed by):');
  if (rows.size === 0) lines.push('    (no AWS calls)');
  for (const [k, v] of rows)
    lines.push(
      `    ${v.allowedBy ? 'ok  ' : 'DENY'} ${k}  ×${v.count}  ${v.allowedBy ? `${v.allowedBy.replace(/\.PolicyDocument\.Statement/, '')}${v.condition ? ` (Condition ${v.condition}: held)` : ''}` : 'no statement allows it'}`,
    );
  const over = r.unused.filter((u) => !u.platform);
  const plat = r.unused.filter((u) => u.platform);
  lines.push('  allowed, never used by the bundle:');
  if (over.length === 0 && plat.length === 0) lines.push('    (none)');
  for (const u of over)
    lines.push(
      `    ${u.justified ? 'justified ' : 'OVER-GRANT'} ${u.action}  ${short(u.resource)}${u.condition ? ` ${u.condition}` : ''}  (${u.statement.replace(/\.PolicyDocument\.Statement/, '')})${u.justified ? `: ${u.justified}` : ''}`,
    );
  const platGrouped = new Map<string, string[]>();
  for (const u of plat)
    platGrouped.set(u.platform as string, [...(platGrouped.get(u.platform as string) ?? []), u.action]);
  for (const [why, actions] of platGrouped)
    lines.push(`    platform   ${[...new Set(actions)].join(', ')}  (${why})`);
  return lines.join('\n');
}

/** Grants allowed but unused and not justified: the over-grants to remove. */
export function overGrants(r: IamReport): IamReport['unused'] {
  return r.unused.filter((u) => !u.platform && !u.justified);
}

const md = (s: string) => s.replace(/\|/g, '\\|');

/** A resource as the table shows it: prefixes of keys, no stack names or hashes, slots as slot-{i}. */
function tableResource(arn: string, context?: Readonly<Record<string, string>>): string {
  const noHash = (x: string) => x.replace(/^[A-Za-z0-9]+-(?=[A-Z])/, '').replace(/[A-F0-9]{8}$/, '');
  const s3 = /^arn:aws:s3:::[^/]+(?:\/([^/*]+)?(.*))?$/.exec(arn);
  if (s3) {
    if (s3[1] !== undefined || s3[2]) return `${s3[1] ?? ''}/*`;
    const prefix = context?.['s3:prefix'];
    return prefix !== undefined ? `bucket, s3:prefix ${prefix.split('/')[0]}/…` : 'bucket';
  }
  if (arn.startsWith('arn:aws:dynamodb:')) return 'table';
  if (arn.startsWith('arn:aws:events:')) return `bus ${arn.replace(/^.*event-bus\//, '')}`;
  const fn = /:function:(.+)$/.exec(arn);
  if (fn) return noHash((fn[1] as string).replace(/slot-\d+$/, 'slot-{i}'));
  return arn;
}

/** The IAM-by-use table (markdown) for docs/deploy.md: per function, actions used / allowed / unused. */
export function formatIamTable(reports: readonly IamReport[]): string {
  const lines = [
    '| function | used by the story (calls) | allowed, not used by the story: why kept |',
    '|---|---|---|',
  ];
  // The slot functions are alike: one row for all of them, calls summed.
  const groups = new Map<
    string,
    { label: string; n: number; used: Map<string, number>; unused: Map<string, Set<string>> }
  >();
  for (const r of reports) {
    const label = r.functionId
      .replace(/Slot\d+Function[A-F0-9]{8}$/, 'Slot{i}Function')
      .replace(/[A-F0-9]{8}$/, '');
    const g = groups.get(label) ?? { label, n: 0, used: new Map(), unused: new Map() };
    groups.set(label, g);
    g.n++;
    for (const u of r.used) {
      const k = `\`${u.action}\` ${tableResource(u.resource, u.context)}`;
      g.used.set(k, (g.used.get(k) ?? 0) + u.count);
    }
    for (const u of r.unused) {
      const platform = u.platform ? `\`${u.action.replace(/:.*/, ':…')}\`` : undefined;
      const why = u.platform
        ? 'used by Lambda itself (logs, traces, on-failure destination)'
        : (u.justified ?? '**OVER-GRANT**');
      const set = g.unused.get(why) ?? new Set<string>();
      set.add(
        platform ??
          `\`${u.action}\` ${tableResource(u.resource)}${u.condition ? ` (${u.condition.replace(/^String(Like|Equals) /, '')})` : ''}`,
      );
      g.unused.set(why, set);
    }
  }
  for (const g of groups.values()) {
    const label = g.n > 1 ? `${g.label} (${g.n} functions, calls summed)` : g.label;
    const used = [...g.used.entries()].map(([k, n]) => `${k} ×${n}`).join('<br>') || '(none)';
    const unused =
      [...g.unused.entries()].map(([why, ks]) => `${[...ks].join(', ')}: ${why}`).join('<br>') || '(none)';
    lines.push(`| ${md(label)} | ${md(used)} | ${md(unused)} |`);
  }
  return lines.join('\n');
}

/** Calls recorded by a rehearsal, per function logical ID (written next to the template). */
export type RecordedCalls = Record<string, Call[]>;

export const CALLS_FILE = 'rehearsal-calls.json';

/**
 * The checking stage on its own: the static checks plus, given the calls a rehearsal recorded, IAM
 * by use against this template's policies. What the break tests run against edited copies.
 */
export function checkingStage(
  stack: Stack,
  projectRoot: string,
  calls?: RecordedCalls,
): { model: Model; findings: Finding[] } {
  const model = buildModel(stack, projectRoot);
  const findings = [...model.findings];
  if (calls) {
    for (const spec of model.functions) {
      const c = calls[spec.id];
      if (c) findings.push(...iamReport(stack, model, spec, c).findings);
    }
  }
  return { model, findings };
}
