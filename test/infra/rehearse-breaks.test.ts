/**
 * The rehearsal's checking stage against deliberately broken copies of the synthesized template: a
 * dropped route, a dropped environment variable, a dropped policy statement, a policy Condition that no
 * longer holds, a fan-out name (task function, slot prefix) naming no function or not invokable must
 * each fail, naming the resource and property at fault. Reuses cdk.out (npm run synth) and, when
 * present, the calls the last rehearsal recorded; skipped without cdk.out unless REHEARSE_REQUIRED=1 (.ci/run sets it after synth + rehearse).
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CALLS_FILE, checkingStage, type RecordedCalls } from '../../rehearse/checks';
import { matches } from '../../rehearse/events';
import { pickRoute, type RouteSpec } from '../../rehearse/gateway';
import { type Call, callsOf, conditionProblem, evaluate, type Statement } from '../../rehearse/iam';
import { type CfnTemplate, findTemplate, formatFinding, Stack } from '../../rehearse/template';

const ROOT = resolve(import.meta.dirname, '../..');
const OUT = join(ROOT, 'cdk.out');
const haveOut =
  existsSync(OUT) &&
  (() => {
    try {
      findTemplate(OUT);
      return true;
    } catch {
      return false;
    }
  })();
if (!haveOut && process.env.REHEARSE_REQUIRED === '1') throw new Error('no cdk.out: run npm run synth first');

const scratch = mkdtempSync(join(tmpdir(), 'rehearse-breaks-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

function original(): { path: string; template: CfnTemplate } {
  const path = findTemplate(OUT);
  return { path, template: JSON.parse(readFileSync(path, 'utf8')) as CfnTemplate };
}

/** Writes an edited copy (same file name, so local names match the recorded calls) and loads it. */
function copyWith(edit: (t: CfnTemplate) => void): Stack {
  const { path, template } = original();
  edit(template);
  const dir = mkdtempSync(join(scratch, 'copy-'));
  const copy = join(dir, path.replace(/^.*\//, ''));
  writeFileSync(copy, JSON.stringify(template));
  return Stack.load(copy, OUT);
}

function idOf(t: CfnTemplate, type: string, test: (p: Record<string, unknown>) => boolean): string {
  const e = Object.entries(t.Resources).find(([, r]) => r.Type === type && test(r.Properties ?? {}));
  if (!e) throw new Error(`no ${type} in the template`);
  return e[0];
}

const queryFunction = (t: CfnTemplate) =>
  idOf(t, 'AWS::Lambda::Function', (p) => String(p.Description ?? '').includes('read routes'));

/** The calls the last rehearsal recorded, or the one call every query needs. */
function recordedCalls(stack: Stack): RecordedCalls {
  const file = join(OUT, CALLS_FILE);
  if (existsSync(file)) return JSON.parse(readFileSync(file, 'utf8')) as RecordedCalls;
  const fn = queryFunction(stack.template);
  const bucket = stack.physicalName(
    idOf(
      stack.template,
      'AWS::S3::Bucket',
      (p) => p.NotificationConfiguration === undefined && p.LoggingConfiguration !== undefined,
    ),
  );
  return {
    [fn]: [{ action: 's3:GetObject', resource: `arn:aws:s3:::${bucket}/snapshots/s/v1/manifest.json` }],
  };
}

describe.skipIf(!haveOut)('rehearsal checking stage on broken copies of the template', () => {
  it('passes the template as synthesized', () => {
    const stack = copyWith(() => undefined);
    const { findings } = checkingStage(stack, ROOT, recordedCalls(stack));
    expect(findings.map(formatFinding)).toEqual([]);
  });

  it('fails a dropped route, naming the API and the RouteKey', () => {
    let api = '';
    const stack = copyWith((t) => {
      api = idOf(t, 'AWS::ApiGatewayV2::Api', () => true);
      delete t.Resources[
        idOf(t, 'AWS::ApiGatewayV2::Route', (p) => p.RouteKey === 'POST /v1/spaces/{space}/activate')
      ];
    });
    const lines = checkingStage(stack, ROOT).findings.map(formatFinding);
    expect(lines).toContainEqual(
      expect.stringMatching(
        new RegExp(
          `^${api}: AWS::ApiGatewayV2::Route none has RouteKey "POST /v1/spaces/\\{space\\}/activate"`,
        ),
      ),
    );
  });

  it('fails a dropped environment variable, naming the function and the variable', () => {
    let fn = '';
    const stack = copyWith((t) => {
      fn = queryFunction(t);
      const vars = (t.Resources[fn]!.Properties!.Environment as { Variables: Record<string, unknown> })
        .Variables;
      delete vars.VICINITY_TABLE;
    });
    const lines = checkingStage(stack, ROOT).findings.map(formatFinding);
    expect(lines).toContainEqual(
      `${fn}: Environment.Variables lacks VICINITY_TABLE read by the bundle (required: the function cannot start without it)`,
    );
  });

  it('fails a dropped policy statement, naming the function, its role, the policy and the call', () => {
    let fn = '';
    let policy = '';
    const stack = copyWith((t) => {
      fn = queryFunction(t);
      const role = (t.Resources[fn]!.Properties!.Role as { 'Fn::GetAtt': string[] })['Fn::GetAtt'][0];
      policy = idOf(t, 'AWS::IAM::Policy', (p) => JSON.stringify(p.Roles).includes(`"${role}"`));
      const doc = t.Resources[policy]!.Properties!.PolicyDocument as {
        Statement: Array<{ Action: unknown }>;
      };
      doc.Statement = doc.Statement.filter((s) => JSON.stringify(s.Action) !== '"s3:GetObject"');
    });
    const lines = checkingStage(stack, ROOT, recordedCalls(stack)).findings.map(formatFinding);
    expect(lines).toContainEqual(
      expect.stringMatching(
        new RegExp(
          `^${fn} \\(role \\w+\\): ${policy}\\S* allows no s3:GetObject on arn:aws:s3:::[^ ]+/snapshots/`,
        ),
      ),
    );
  });

  it('fails a slot prefix that names no function, naming the query function and the variable', () => {
    let fn = '';
    const stack = copyWith((t) => {
      fn = queryFunction(t);
      const vars = (t.Resources[fn]!.Properties!.Environment as { Variables: Record<string, unknown> })
        .Variables;
      vars.VICINITY_SLOT_FUNCTION_PREFIX = 'Vicinity-slots-';
    });
    const lines = checkingStage(stack, ROOT).findings.map(formatFinding);
    expect(lines).toContainEqual(
      `${fn}: Environment.Variables.VICINITY_SLOT_FUNCTION_PREFIX "Vicinity-slots-" makes it invoke "Vicinity-slots-0", which is no function of this template (Lambda: 404)`,
    );
  });

  it('fails a dropped task-function variable, naming the build function and what its role may invoke', () => {
    let fn = '';
    const stack = copyWith((t) => {
      fn = idOf(t, 'AWS::Lambda::Function', (p) =>
        JSON.stringify(p.Environment ?? {}).includes('VICINITY_TASK_FUNCTION'),
      );
      const vars = (t.Resources[fn]!.Properties!.Environment as { Variables: Record<string, unknown> })
        .Variables;
      delete vars.VICINITY_TASK_FUNCTION;
    });
    const lines = checkingStage(stack, ROOT).findings.map(formatFinding);
    expect(lines).toContainEqual(
      expect.stringMatching(
        new RegExp(
          `^${fn}: Environment.Variables names no function to invoke .* yet its role may invoke BuildTasksFunction`,
        ),
      ),
    );
  });

  it('fails a build role that may not invoke the task function its environment names', () => {
    let fn = '';
    let policy = '';
    const stack = copyWith((t) => {
      fn = idOf(t, 'AWS::Lambda::Function', (p) =>
        JSON.stringify(p.Environment ?? {}).includes('VICINITY_TASK_FUNCTION'),
      );
      const role = (t.Resources[fn]!.Properties!.Role as { 'Fn::GetAtt': string[] })['Fn::GetAtt'][0];
      policy = idOf(t, 'AWS::IAM::Policy', (p) => JSON.stringify(p.Roles).includes(`"${role}"`));
      const doc = t.Resources[policy]!.Properties!.PolicyDocument as {
        Statement: Array<{ Action: unknown }>;
      };
      doc.Statement = doc.Statement.filter((s) => s.Action !== 'lambda:InvokeFunction');
    });
    const lines = checkingStage(stack, ROOT).findings.map(formatFinding);
    expect(lines).toContainEqual(
      expect.stringMatching(
        new RegExp(
          `^${fn} \\(role \\w+\\): ${policy}\\S* allows no lambda:InvokeFunction on arn:aws:lambda:us-east-1:123456789012:function:\\S+ \\(BuildTasksFunction\\w+\\), which VICINITY_TASK_FUNCTION names`,
        ),
      ),
    );
  });

  it('fails a policy Condition that no longer holds for a recorded call, naming the statement', () => {
    // A recorded s3:ListBucket with its s3:prefix (the last rehearsal's, or one the query function makes).
    const base = copyWith(() => undefined);
    const calls = recordedCalls(base);
    let fn = Object.keys(calls).find((f) =>
      calls[f]?.some((c) => c.action === 's3:ListBucket' && c.context?.['s3:prefix']),
    );
    if (!fn) {
      fn = queryFunction(base.template);
      const bucket = stack0Bucket(base);
      calls[fn] = [
        ...(calls[fn] ?? []),
        {
          action: 's3:ListBucket',
          resource: `arn:aws:s3:::${bucket}`,
          context: { 's3:prefix': 'snapshots/s/v1/' },
        },
      ];
    }
    const listed = calls[fn]?.find((c) => c.action === 's3:ListBucket' && c.context?.['s3:prefix']) as Call;
    let policy = '';
    let index = -1;
    const stack = copyWith((t) => {
      const role = (t.Resources[fn]!.Properties!.Role as { 'Fn::GetAtt': string[] })['Fn::GetAtt'][0];
      policy = idOf(t, 'AWS::IAM::Policy', (p) => JSON.stringify(p.Roles).includes(`"${role}"`));
      const doc = t.Resources[policy]!.Properties!.PolicyDocument as {
        Statement: Array<{ Action: unknown; Condition?: Record<string, Record<string, unknown>> }>;
      };
      index = doc.Statement.findIndex((s) => s.Action === 's3:ListBucket' && s.Condition);
      // The prefixes narrowed to one the call's does not start with.
      doc.Statement[index]!.Condition = { StringLike: { 's3:prefix': ['nothing-here/*'] } };
    });
    expect(index).toBeGreaterThanOrEqual(0);
    expect(checkingStage(base, ROOT, calls).findings.map(formatFinding)).toEqual([]);
    const lines = checkingStage(stack, ROOT, calls).findings.map(formatFinding);
    // The finding lists every statement whose Condition refuses the call (a role may have several
    // ListBucket statements, e.g. snapshots/ and staging/); the narrowed one must be among them.
    const role = (stack.template.Resources[fn]!.Properties!.Role as { 'Fn::GetAtt': string[] })[
      'Fn::GetAtt'
    ][0];
    const finding = lines.find(
      (l) =>
        l.startsWith(`${fn} (role ${role}): `) &&
        l.includes(
          ` allows no s3:ListBucket on ${listed.resource} (s3:prefix="${listed.context?.['s3:prefix']}")`,
        ),
    );
    expect(finding, lines.join('\n')).toBeDefined();
    const statements = (finding as string).slice(`${fn} (role ${role}): `.length).split(' allows no ')[0];
    expect(statements?.split(', ')).toContain(`${policy}.PolicyDocument.Statement[${index}].Condition`);
  });
});

function stack0Bucket(stack: Stack): string {
  return stack.physicalName(
    idOf(
      stack.template,
      'AWS::S3::Bucket',
      (p) => p.NotificationConfiguration === undefined && p.LoggingConfiguration !== undefined,
    ),
  );
}

describe('IAM conditions in the rehearsal', () => {
  const list = (prefix?: string): Call => ({
    action: 's3:ListBucket',
    resource: 'arn:aws:s3:::b',
    ...(prefix === undefined ? {} : { context: { 's3:prefix': prefix } }),
  });
  const allow = (conditions?: Statement['conditions']): Statement => ({
    source: 'P[0]',
    effect: 'Allow',
    actions: ['s3:ListBucket'],
    resources: ['arn:aws:s3:::b'],
    hasCondition: conditions !== undefined,
    ...(conditions ? { conditions } : {}),
  });

  it('applies a StringLike s3:prefix only to requests whose prefix matches', () => {
    const s = allow({ StringLike: { 's3:prefix': ['snapshots/*', 'incoming/*'] } });
    expect(evaluate([s], list('snapshots/s/v1/'))).toBe(s);
    expect(evaluate([s], list('staging/x'))).toBeUndefined();
    expect(conditionProblem(s.conditions, list('staging/x'))).toMatch(/StringLike s3:prefix .* "staging\/x"/);
    // No prefix at all (a whole-bucket list): the key is missing, so StringLike does not hold.
    expect(evaluate([s], list())).toBeUndefined();
    expect(evaluate([allow({ StringLikeIfExists: { 's3:prefix': ['snapshots/*'] } })], list())).toBeDefined();
  });

  it('evaluates StringEquals, ArnLike, Null and global keys, and refuses operators it does not know', () => {
    expect(conditionProblem({ StringEquals: { 's3:prefix': ['a/'] } }, list('a/'))).toBeUndefined();
    expect(conditionProblem({ StringEquals: { 's3:prefix': ['a/'] } }, list('a/b'))).toBeDefined();
    expect(conditionProblem({ StringNotEquals: { 's3:prefix': ['a/'] } }, list())).toBeUndefined();
    const invoke: Call = {
      action: 'lambda:InvokeFunction',
      resource: 'arn:aws:lambda:us-east-1:123456789012:function:f',
      context: { 'aws:SourceArn': 'arn:aws:events:us-east-1:123456789012:rule/r' },
    };
    expect(
      conditionProblem({ ArnLike: { 'aws:SourceArn': ['arn:aws:events:*:*:rule/*'] } }, invoke),
    ).toBeUndefined();
    expect(conditionProblem({ ArnLike: { 'aws:SourceArn': ['arn:aws:s3:::*'] } }, invoke)).toBeDefined();
    expect(conditionProblem({ Null: { 's3:prefix': ['true'] } }, list())).toBeUndefined();
    expect(conditionProblem({ Null: { 's3:prefix': ['true'] } }, list('a'))).toBeDefined();
    expect(
      conditionProblem({ StringEquals: { 'aws:RequestedRegion': ['us-east-1'] } }, list()),
    ).toBeUndefined();
    expect(
      conditionProblem({ StringEquals: { 'aws:RequestedRegion': ['eu-west-1'] } }, list()),
    ).toBeDefined();
    expect(conditionProblem({ NumericLessThan: { 's3:max-keys': ['10'] } }, list('a'))).toMatch(
      /does not evaluate/,
    );
  });

  it('lets a Deny apply only where its Condition holds', () => {
    const deny: Statement = {
      ...allow({ StringLike: { 's3:prefix': ['secret/*'] } }),
      source: 'P[1]',
      effect: 'Deny',
    };
    const open = allow();
    expect(evaluate([open, deny], list('secret/x'))).toBe('deny');
    expect(evaluate([open, deny], list('public/x'))).toBe(open);
  });
});

describe('rehearsal request and route mapping', () => {
  const req = (method: string, url: string, body = '', headers: Record<string, string> = {}) => ({
    service: 's3',
    method,
    url,
    headers,
    body: Buffer.from(body),
  });

  it('maps S3 REST requests to IAM actions and ARNs', () => {
    expect(callsOf(req('GET', '/b/snapshots/s/v1/manifest.json'))).toEqual([
      { action: 's3:GetObject', resource: 'arn:aws:s3:::b/snapshots/s/v1/manifest.json' },
    ]);
    expect(callsOf(req('GET', '/b?list-type=2&prefix=snapshots/'))).toEqual([
      { action: 's3:ListBucket', resource: 'arn:aws:s3:::b', context: { 's3:prefix': 'snapshots/' } },
    ]);
    expect(callsOf(req('PUT', '/b/k?partNumber=1&uploadId=u'))[0]?.action).toBe('s3:PutObject');
    expect(callsOf(req('DELETE', '/b/k?uploadId=u'))[0]?.action).toBe('s3:AbortMultipartUpload');
    expect(
      callsOf(
        req(
          'POST',
          '/b?delete',
          '<Delete><Object><Key>a/1</Key></Object><Object><Key>a/2</Key></Object></Delete>',
        ),
      ),
    ).toEqual([
      { action: 's3:DeleteObject', resource: 'arn:aws:s3:::b/a/1' },
      { action: 's3:DeleteObject', resource: 'arn:aws:s3:::b/a/2' },
    ]);
    const ddb = {
      ...req('POST', '/', '{"TableName":"t"}', { 'x-amz-target': 'DynamoDB_20120810.UpdateItem' }),
      service: 'dynamodb',
    };
    expect(callsOf(ddb)).toEqual([
      { action: 'dynamodb:UpdateItem', resource: 'arn:aws:dynamodb:us-east-1:123456789012:table/t' },
    ]);
  });

  it('picks the most specific route, then $default', () => {
    const r = (routeKey: string): RouteSpec => {
      const [method = 'ANY', path = ''] = routeKey === '$default' ? [] : routeKey.split(' ');
      return { id: routeKey, apiId: 'a', routeKey, method, path, auth: 'AWS_IAM', payloadVersion: '2.0' };
    };
    const routes = [
      r('GET /v1/spaces/{space}'),
      r('GET /v1/spaces/{space}/versions'),
      r('ANY /v1/{proxy+}'),
      r('$default'),
    ];
    expect(pickRoute(routes, 'GET', '/v1/spaces/s/versions')?.route.id).toBe(
      'GET /v1/spaces/{space}/versions',
    );
    expect(pickRoute(routes, 'GET', '/v1/spaces/s')?.pathParameters).toEqual({ space: 's' });
    expect(pickRoute(routes, 'POST', '/v1/x/y')?.route.id).toBe('ANY /v1/{proxy+}');
    expect(pickRoute(routes, 'GET', '/other')?.route.id).toBe('$default');
  });

  it('matches EventBridge patterns', () => {
    const e = {
      source: 'vicinity',
      'detail-type': 'PointerMoved',
      detail: { space: 'music', version: 'v3' },
    };
    expect(matches({ source: ['vicinity'], 'detail-type': ['PointerMoved'] }, e)).toBe(true);
    expect(matches({ detail: { space: [{ prefix: 'mu' }] } }, e)).toBe(true);
    expect(matches({ detail: { version: [{ 'anything-but': 'v3' }] } }, e)).toBe(false);
    expect(matches({ detail: { erased: [{ exists: false }] } }, e)).toBe(true);
  });
});
