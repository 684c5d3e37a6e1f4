/**
 * IAM by use: turns a recorded SDK request into (action, resource ARN) as IAM would see it in the
 * stack's account and region (with the condition keys the request carries, e.g. `s3:prefix`), and
 * checks it against the policies the template attaches to a role, Conditions included: a statement
 * whose Condition does not hold for the call does not apply to it, as in IAM.
 */
import { ACCOUNT, REGION, type Stack } from './template';

export interface Call {
  readonly action: string;
  readonly resource: string;
  /** Request-specific condition keys (`s3:prefix`, …), as IAM would see them. */
  readonly context?: Readonly<Record<string, string>>;
}

/** Condition keys every request carries in the rehearsal's account and region. */
export const GLOBAL_CONTEXT: Readonly<Record<string, string>> = Object.freeze({
  'aws:RequestedRegion': REGION,
  'aws:PrincipalAccount': ACCOUNT,
  'aws:SecureTransport': 'true',
});

/** A statement's Condition block: operator → condition key → values. */
export type Conditions = Readonly<Record<string, Readonly<Record<string, readonly string[]>>>>;

export interface Statement {
  /** `PolicyLogicalId[statement index]`. */
  readonly source: string;
  readonly effect: 'Allow' | 'Deny';
  readonly actions?: string[];
  readonly notActions?: string[];
  readonly resources?: string[];
  readonly notResources?: string[];
  readonly hasCondition: boolean;
  readonly conditions?: Conditions;
}

/** Lambda's platform features that use the execution role on the function's behalf. */
export interface PlatformUse {
  readonly action: string;
  readonly resource: string;
  readonly why: string;
}

const list = (v: unknown): string[] | undefined =>
  v === undefined ? undefined : (Array.isArray(v) ? v : [v]).map(String);

function glob(pattern: string, value: string, caseInsensitive: boolean): boolean {
  const re = pattern
    .replace(/[.+^${}()|[\]\\]/g, '\\$&')
    .replace(/\*/g, '.*')
    .replace(/\?/g, '.');
  return new RegExp(`^${re}$`, caseInsensitive ? 'i' : '').test(value);
}

function conditionsOf(raw: unknown): Conditions {
  const out: Record<string, Record<string, string[]>> = {};
  for (const [op, block] of Object.entries((raw ?? {}) as Record<string, Record<string, unknown>>))
    out[op] = Object.fromEntries(
      Object.entries(block ?? {}).map(([k, v]) => [k, (Array.isArray(v) ? v : [v]).map(String)]),
    );
  return out;
}

export function statementsOf(doc: unknown, source: string, stack: Stack): Statement[] {
  const d = stack.resolve(doc, source) as { Statement?: unknown };
  const raw = Array.isArray(d.Statement) ? d.Statement : d.Statement ? [d.Statement] : [];
  return raw.map((s: Record<string, unknown>, i: number) => ({
    source: `${source}[${i}]`,
    effect: s.Effect === 'Deny' ? 'Deny' : 'Allow',
    actions: list(s.Action),
    notActions: list(s.NotAction),
    resources: list(s.Resource),
    notResources: list(s.NotResource),
    hasCondition: s.Condition !== undefined,
    ...(s.Condition !== undefined ? { conditions: conditionsOf(s.Condition) } : {}),
  }));
}

/** Known AWS managed policies a function role may carry (their documents are not in the template). */
const MANAGED: Record<string, Array<{ actions: string[]; resources: string[] }>> = {
  'service-role/AWSLambdaBasicExecutionRole': [
    { actions: ['logs:CreateLogGroup', 'logs:CreateLogStream', 'logs:PutLogEvents'], resources: ['*'] },
  ],
};

/** Every statement the template attaches to the role: inline, AWS::IAM::Policy, ManagedPolicy, AWS managed. */
export function roleStatements(stack: Stack, roleId: string): { statements: Statement[]; unknown: string[] } {
  const out: Statement[] = [];
  const unknown: string[] = [];
  const role = stack.get(roleId);
  const rp = role.Properties ?? {};
  for (const [i, p] of ((rp.Policies as Array<{ PolicyDocument: unknown }>) ?? []).entries())
    out.push(...statementsOf(p.PolicyDocument, `${roleId}.Policies[${i}]`, stack));
  for (const arn of (stack.resolve(rp.ManagedPolicyArns ?? [], `${roleId}.ManagedPolicyArns`) as string[]) ??
    []) {
    const name = /:iam::aws:policy\/(.+)$/.exec(arn)?.[1];
    const known = name ? MANAGED[name] : undefined;
    const local = stack.referencedId(arn, 'AWS::IAM::ManagedPolicy');
    if (local) continue; // attached below through the policy's own Roles or here by ARN
    if (!known) {
      unknown.push(arn);
      continue;
    }
    for (const [j, s] of known.entries())
      out.push({
        source: `${roleId}.ManagedPolicyArns(${name})[${j}]`,
        effect: 'Allow',
        actions: s.actions,
        resources: s.resources,
        hasCondition: false,
      });
  }
  for (const [id, r] of Object.entries(stack.resources)) {
    if (r.Type !== 'AWS::IAM::Policy' && r.Type !== 'AWS::IAM::ManagedPolicy') continue;
    const roles = (r.Properties?.Roles as unknown[]) ?? [];
    const attached =
      roles.some((x) => stack.referencedId(x, 'AWS::IAM::Role') === roleId) ||
      (r.Type === 'AWS::IAM::ManagedPolicy' &&
        ((rp.ManagedPolicyArns as unknown[]) ?? []).some((x) => stack.referencedId(x) === id));
    if (attached)
      out.push(...statementsOf(r.Properties?.PolicyDocument, `${id}.PolicyDocument.Statement`, stack));
  }
  return { statements: out, unknown };
}

function actionMatches(s: Statement, action: string): boolean {
  if (s.actions) return s.actions.some((p) => glob(p, action, true));
  if (s.notActions) return !s.notActions.some((p) => glob(p, action, true));
  return false;
}

function resourceMatches(s: Statement, resource: string): boolean {
  if (s.resources) return s.resources.some((p) => glob(p, resource, false));
  if (s.notResources) return !s.notResources.some((p) => glob(p, resource, false));
  return false;
}

/** Operators the rehearsal evaluates (each also with `IfExists`); any other makes the statement not apply. */
const OPERATORS: Record<string, (pattern: string, value: string) => boolean> = {
  StringEquals: (p, v) => p === v,
  StringNotEquals: (p, v) => p !== v,
  StringEqualsIgnoreCase: (p, v) => p.toLowerCase() === v.toLowerCase(),
  StringNotEqualsIgnoreCase: (p, v) => p.toLowerCase() !== v.toLowerCase(),
  StringLike: (p, v) => glob(p, v, false),
  StringNotLike: (p, v) => !glob(p, v, false),
  ArnEquals: (p, v) => p === v,
  ArnNotEquals: (p, v) => p !== v,
  ArnLike: (p, v) => glob(p, v, false),
  ArnNotLike: (p, v) => !glob(p, v, false),
  Bool: (p, v) => p.toLowerCase() === v.toLowerCase(),
};

/** Why a condition does not hold, or undefined when it does (every operator and key must hold, IAM's AND). */
export function conditionProblem(conditions: Conditions | undefined, call: Call): string | undefined {
  if (!conditions) return undefined;
  const context: Record<string, string> = {};
  for (const [k, v] of Object.entries({ ...GLOBAL_CONTEXT, ...(call.context ?? {}) }))
    context[k.toLowerCase()] = v;
  for (const [rawOp, block] of Object.entries(conditions)) {
    const ifExists = rawOp.endsWith('IfExists');
    const op = ifExists ? rawOp.slice(0, -'IfExists'.length) : rawOp;
    for (const [key, values] of Object.entries(block)) {
      const value = context[key.toLowerCase()];
      if (op === 'Null') {
        const wantsAbsent = values.some((x) => x.toLowerCase() === 'true');
        if ((value === undefined) !== wantsAbsent)
          return `${rawOp} ${key}: the key is ${value === undefined ? 'absent' : `"${value}"`}`;
        continue;
      }
      const test = OPERATORS[op];
      if (!test) return `${rawOp} is an operator the rehearsal does not evaluate`;
      const negated = /Not/.test(op);
      if (value === undefined) {
        // A missing key: IfExists and the negated operators hold, the others do not.
        if (ifExists || negated) continue;
        return `${rawOp} ${key}: the request carries no ${key}`;
      }
      // Several values: any may match (negated operators: none may match).
      const ok = negated ? values.every((p) => test(p, value)) : values.some((p) => test(p, value));
      if (!ok) return `${rawOp} ${key} ${JSON.stringify(values)} does not hold for "${value}"`;
    }
  }
  return undefined;
}

/** The statement that allows the call, `deny` when an explicit Deny applies, undefined when none allows it. */
export function evaluate(statements: readonly Statement[], call: Call): Statement | 'deny' | undefined {
  const matching = statements.filter(
    (s) =>
      actionMatches(s, call.action) &&
      resourceMatches(s, call.resource) &&
      conditionProblem(s.conditions, call) === undefined,
  );
  if (matching.some((s) => s.effect === 'Deny')) return 'deny';
  return matching.find((s) => s.effect === 'Allow');
}

/** Allow statements whose action and resource match the call but whose Condition does not hold. */
export function conditionRefusals(
  statements: readonly Statement[],
  call: Call,
): Array<{ statement: Statement; problem: string }> {
  const out: Array<{ statement: Statement; problem: string }> = [];
  for (const s of statements) {
    if (s.effect !== 'Allow' || !actionMatches(s, call.action) || !resourceMatches(s, call.resource))
      continue;
    const problem = conditionProblem(s.conditions, call);
    if (problem) out.push({ statement: s, problem });
  }
  return out;
}

/** Expands a statement's allowed actions to concrete (action, resource) pairs for the unused report. */
export interface Grant {
  readonly action: string;
  readonly resource: string;
  readonly conditions?: Conditions;
}

/**
 * A statement's grants, one per (action, resource) — and per value of a single-key positive condition
 * (`StringLike s3:prefix` [incoming/*, snapshots/*] → two grants), so a prefix never listed shows up.
 */
export function grantsOf(s: Statement): Grant[] {
  if (s.effect !== 'Allow' || !s.actions) return [];
  const c = s.conditions;
  const ops = c ? Object.keys(c) : [];
  const op = ops[0] as string;
  const keys = c && ops.length === 1 ? Object.keys(c[op] ?? {}) : [];
  const key = keys[0] as string;
  const split =
    c && ops.length === 1 && keys.length === 1 && /^(String|Arn)(Equals|Like)$/.test(op)
      ? (c[op]?.[key] ?? []).map((v): Conditions => ({ [op]: { [key]: [v] } }))
      : [c];
  return s.actions.flatMap((a) =>
    (s.resources ?? ['*']).flatMap((r) =>
      split.map((conditions) => ({ action: a, resource: r, ...(conditions ? { conditions } : {}) })),
    ),
  );
}

/** Was this grant (action pattern, resource pattern, under its Condition) exercised by any of the calls? */
export function grantUsed(grant: Grant, calls: readonly Call[]): boolean {
  return calls.some(
    (c) =>
      glob(grant.action, c.action, true) &&
      glob(grant.resource, c.resource, false) &&
      conditionProblem(grant.conditions, c) === undefined,
  );
}

/** A condition block as one short line (`StringLike s3:prefix=snapshots/*|incoming/*`). */
export function formatConditions(c: Conditions): string {
  return Object.entries(c)
    .flatMap(([op, block]) => Object.entries(block).map(([k, v]) => `${op} ${k}=${v.join('|')}`))
    .join(', ');
}

// --- requests → IAM actions -------------------------------------------------------------------

export interface RecordedRequest {
  readonly service: string;
  readonly method: string;
  /** Path and query as sent. */
  readonly url: string;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly body: Buffer;
}

function s3Calls(req: RecordedRequest): Call[] {
  const u = new URL(req.url, 'http://local');
  const q = u.searchParams;
  const [, bucket = '', ...rest] = u.pathname.split('/');
  const key = rest.map(decodeURIComponent).join('/');
  const bucketArn = `arn:aws:s3:::${decodeURIComponent(bucket)}`;
  const objectArn = `${bucketArn}/${key}`;
  const m = req.method.toUpperCase();
  if (!key) {
    if (m === 'POST' && q.has('delete')) {
      const keys = [...req.body.toString('utf8').matchAll(/<Key>([^<]*)<\/Key>/g)].map((x) =>
        (x[1] ?? '')
          .replace(/&amp;/g, '&')
          .replace(/&lt;/g, '<')
          .replace(/&gt;/g, '>')
          .replace(/&quot;/g, '"'),
      );
      return keys.map((k) => ({ action: 's3:DeleteObject', resource: `${bucketArn}/${k}` }));
    }
    if (m === 'GET' && q.has('uploads'))
      return [{ action: 's3:ListBucketMultipartUploads', resource: bucketArn }];
    if (m === 'GET' && q.has('versions')) return [{ action: 's3:ListBucketVersions', resource: bucketArn }];
    if (m === 'GET' && q.has('location')) return [{ action: 's3:GetBucketLocation', resource: bucketArn }];
    if (m === 'GET' || m === 'HEAD') {
      const context: Record<string, string> = {};
      for (const k of ['prefix', 'delimiter', 'max-keys']) {
        const v = q.get(k);
        if (v !== null) context[`s3:${k}`] = v;
      }
      return [{ action: 's3:ListBucket', resource: bucketArn, context }];
    }
    if (m === 'PUT') return [{ action: 's3:CreateBucket', resource: bucketArn }];
    if (m === 'DELETE') return [{ action: 's3:DeleteBucket', resource: bucketArn }];
    return [{ action: `s3:${m}Bucket?`, resource: bucketArn }];
  }
  if (q.has('tagging'))
    return [{ action: m === 'GET' ? 's3:GetObjectTagging' : 's3:PutObjectTagging', resource: objectArn }];
  if (m === 'GET' && q.has('uploadId'))
    return [{ action: 's3:ListMultipartUploadParts', resource: objectArn }];
  if (m === 'GET' || m === 'HEAD') return [{ action: 's3:GetObject', resource: objectArn }];
  if (m === 'PUT' || m === 'POST') {
    const calls: Call[] = [{ action: 's3:PutObject', resource: objectArn }];
    const src = req.headers['x-amz-copy-source'];
    if (typeof src === 'string') {
      const s = decodeURIComponent(src.replace(/^\//, '').split('?')[0] ?? '');
      calls.push({ action: 's3:GetObject', resource: `arn:aws:s3:::${s}` });
    }
    return calls;
  }
  if (m === 'DELETE')
    return [
      { action: q.has('uploadId') ? 's3:AbortMultipartUpload' : 's3:DeleteObject', resource: objectArn },
    ];
  return [{ action: `s3:${m}Object?`, resource: objectArn }];
}

function jsonBody(req: RecordedRequest): Record<string, unknown> {
  try {
    return JSON.parse(req.body.toString('utf8') || '{}') as Record<string, unknown>;
  } catch {
    return {};
  }
}

function target(req: RecordedRequest): string {
  const t = req.headers['x-amz-target'];
  return typeof t === 'string' ? (t.split('.').pop() ?? '') : '';
}

const tableArn = (name: string) =>
  name.startsWith('arn:') ? name : `arn:aws:dynamodb:${REGION}:${ACCOUNT}:table/${name}`;

function dynamoCalls(req: RecordedRequest): Call[] {
  const op = target(req);
  const b = jsonBody(req);
  const action = `dynamodb:${op}`;
  if (op === 'BatchGetItem' || op === 'BatchWriteItem')
    return Object.keys((b.RequestItems as object) ?? {}).map((t) => ({ action, resource: tableArn(t) }));
  if (op === 'TransactWriteItems' || op === 'TransactGetItems') {
    const items = (b.TransactItems as Array<Record<string, { TableName?: string }>>) ?? [];
    return items.flatMap((item) =>
      Object.entries(item).map(([kind, v]) => ({
        action: `dynamodb:${kind === 'Put' ? 'PutItem' : kind === 'Update' ? 'UpdateItem' : kind === 'Delete' ? 'DeleteItem' : kind === 'Get' ? 'GetItem' : 'ConditionCheckItem'}`,
        resource: tableArn(String(v.TableName)),
      })),
    );
  }
  const table = tableArn(String(b.TableName ?? '*'));
  return [{ action, resource: b.IndexName ? `${table}/index/${String(b.IndexName)}` : table }];
}

const busArn = (name: string | undefined) =>
  name?.startsWith('arn:') ? name : `arn:aws:events:${REGION}:${ACCOUNT}:event-bus/${name || 'default'}`;

function eventsCalls(req: RecordedRequest): Call[] {
  const op = target(req);
  const b = jsonBody(req);
  if (op === 'PutEvents') {
    const entries = (b.Entries as Array<{ EventBusName?: string }>) ?? [];
    const buses = [...new Set(entries.map((e) => busArn(e.EventBusName)))];
    return buses.map((resource) => ({ action: 'events:PutEvents', resource }));
  }
  return [{ action: `events:${op}`, resource: '*' }];
}

export function lambdaFunctionArn(nameOrArn: string): string {
  const n = decodeURIComponent(nameOrArn);
  if (n.startsWith('arn:')) return n.replace(/:(\$LATEST|\d+)$/, '');
  return `arn:aws:lambda:${REGION}:${ACCOUNT}:function:${n.split(':')[0]}`;
}

function lambdaCalls(req: RecordedRequest): Call[] {
  const m = /\/functions\/([^/]+)\/invocations/.exec(req.url);
  if (m) return [{ action: 'lambda:InvokeFunction', resource: lambdaFunctionArn(m[1] as string) }];
  return [{ action: `lambda:${req.method}?`, resource: '*' }];
}

function sqsCalls(req: RecordedRequest): Call[] {
  const op = target(req);
  const b = jsonBody(req);
  const url = String(b.QueueUrl ?? '');
  const name = url.split('/').pop() || String(b.QueueName ?? '*');
  return [{ action: `sqs:${op}`, resource: `arn:aws:sqs:${REGION}:${ACCOUNT}:${name}` }];
}

/** The IAM (action, resource) pairs one SDK request needs. */
export function callsOf(req: RecordedRequest): Call[] {
  switch (req.service) {
    case 's3':
      return s3Calls(req);
    case 'dynamodb':
      return dynamoCalls(req);
    case 'events':
      return eventsCalls(req);
    case 'lambda':
      return lambdaCalls(req);
    case 'sqs':
      return sqsCalls(req);
    default:
      return [{ action: `${req.service}:${target(req) || req.method}`, resource: '*' }];
  }
}

/** The SigV4 credential scope's service (`…/us-east-1/s3/aws4_request`). */
export function serviceOf(headers: Record<string, string | string[] | undefined>): string | undefined {
  const auth = headers.authorization;
  return typeof auth === 'string' ? /Credential=[^/]+\/\d{8}\/[^/]+\/([^/]+)\//.exec(auth)?.[1] : undefined;
}
