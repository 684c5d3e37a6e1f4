/**
 * Secure by default: read routes behind IAM, a loud and explicit readAuth=none, tracing, on-failure
 * destinations, the newest runtime, and cdk-nag's AWS Solutions and Serverless packs with zero
 * unacknowledged findings, each acknowledgement carrying its reason.
 */

import { App, Stack, Validations } from 'aws-cdk-lib';
import { Annotations, Match } from 'aws-cdk-lib/assertions';
import { Runtime } from 'aws-cdk-lib/aws-lambda';
import { Queue } from 'aws-cdk-lib/aws-sqs';
import type { IConstruct } from 'constructs';
import { beforeAll, describe, expect, it } from 'vitest';
import { ENV } from '../../functions/contract';
import { configFromContext, DEFAULT_CONFIG } from '../../infra/config';
import { ADMIN_ROUTES, PUBLIC_READS_WARNING_ID, readRouteKeys } from '../../infra/constructs/query-api';
import { SLOT_DLQ_REASON } from '../../infra/constructs/shard-slots';
import { LAMBDA_RUNTIME } from '../../infra/constructs/vicinity-function';
import { addNagChecks, MIN_REASON_LENGTH, NAG_REASON, nagPacks } from '../../infra/nag';
import { BUCKET_NOTIFICATIONS_HANDLER_ID, VicinityStack } from '../../infra/stacks/vicinity-stack';
import { type Synthesised, statementsOfRole, synth } from './synth';

const adminKeys = ADMIN_ROUTES.map((r) => `${r.method} ${r.path}`);

/** Route key → AuthorizationType of every route in the template. */
function routeAuth(s: Synthesised): Record<string, string> {
  return Object.fromEntries(
    Object.values(s.template.findResources('AWS::ApiGatewayV2::Route')).map((r) => [
      r.Properties.RouteKey as string,
      r.Properties.AuthorizationType as string,
    ]),
  );
}

function expectedAuth(read: string): Record<string, string> {
  return Object.fromEntries([
    ...readRouteKeys().map((k) => [k, read]),
    ...adminKeys.map((k) => [k, 'AWS_IAM']),
  ]);
}

/** Every unacknowledged cdk-nag finding (both packs) on the stack: `severity rule path`. */
function nagFindings(stack: Stack): string[] {
  return nagPacks().flatMap((pack) =>
    pack
      .validateScope(stack)
      .violations.flatMap((v) =>
        v.violatingResources.map((r) => `${v.severity} ${v.ruleName} ${r.constructPath}`),
      ),
  );
}

/** Every acknowledgement recorded in the stack: `path rule` → reason. */
function acknowledgements(root: IConstruct): Map<string, string> {
  const acks = new Map<string, string>();
  for (const c of root.node.findAll()) {
    for (const m of c.node.metadata) {
      if (m.type !== Validations.ACKNOWLEDGED_RULES_METADATA_KEY) continue;
      for (const [id, reason] of Object.entries(m.data as Record<string, string>)) {
        acks.set(`${c.node.path} ${id.replace(/^annotation::/i, '')}`, reason);
      }
    }
  }
  return acks;
}

const OPTION_VARIANTS: Record<string, Record<string, unknown>> = {
  defaults: {},
  'every option': {
    'vicinity:encryption': 'kms',
    'vicinity:warmUpInvocations': '3',
    'vicinity:buildReservedConcurrency': '2',
    'vicinity:retainData': 'false',
    'vicinity:tableDeletionProtection': 'false',
    'vicinity:corsOrigins': 'https://app.example',
    'vicinity:alarmEmail': 'ops@example.com',
    'vicinity:eventBusName': 'vicinity-events',
    'vicinity:bundleAwsSdk': 'true',
  },
  'readAuth=jwt': {
    'vicinity:readAuth': 'jwt',
    'vicinity:jwtIssuer': 'https://issuer.example',
    'vicinity:jwtAudience': 'vicinity',
  },
  'readAuth=none (explicit)': { 'vicinity:readAuth': 'none', 'vicinity:warmUpInvocations': '1' },
};

describe('read authorisation', () => {
  it('defaults to iam', () => {
    expect(DEFAULT_CONFIG.readAuth).toBe('iam');
    expect(configFromContext(() => undefined).readAuth).toBe('iam');
  });

  it('by default every read route and $default carries the IAM authorizer', () => {
    const s = synth();
    expect(routeAuth(s)).toEqual(expectedAuth('AWS_IAM'));
    expect(Object.keys(routeAuth(s))).toHaveLength(readRouteKeys().length + adminKeys.length);
    const env =
      s.template.toJSON().Resources[s.idOf(s.stack.queryApi.query.fn)].Properties.Environment.Variables;
    expect(env[ENV.publicReads]).toBeUndefined();
    expect(env[ENV.publicMetadataFields]).toBeUndefined();
    Annotations.fromStack(s.stack).hasNoWarning('*', Match.stringLikeRegexp('readAuth=none'));
  });

  it('by default a read-invoke policy allows exactly the read routes (no admin route)', () => {
    const s = synth();
    const policy = s.template.toJSON().Resources[s.idOf(s.stack.queryApi.readInvokePolicy!)];
    const statements = policy.Properties.PolicyDocument.Statement as {
      Action: string;
      Resource: { 'Fn::Join': [string, unknown[]] }[];
    }[];
    expect(statements).toHaveLength(1);
    expect(statements[0]?.Action).toBe('execute-api:Invoke');
    const tails = statements[0]?.Resource.map((r) => r['Fn::Join'][1].at(-1));
    expect(tails).toEqual(
      readRouteKeys()
        .filter((k) => k !== '$default')
        .map((k) => `/*/${k.replace(' ', '').replace(/\{[^}]+\}/g, '*')}`),
    );
    s.template.hasOutput('ReadInvokePolicyArn', {});
  });

  it('readAuth=none: public read routes, a synth warning naming each one, the function told', () => {
    const s = synth({ 'vicinity:readAuth': 'none', 'vicinity:publicMetadataFields': 'title,genre' });
    expect(routeAuth(s)).toEqual(expectedAuth('NONE'));
    const warnings = Annotations.fromStack(s.stack).findWarning('*', Match.stringLikeRegexp('readAuth=none'));
    expect(warnings).toHaveLength(1);
    const text = String(warnings[0]?.entry.data);
    for (const key of readRouteKeys()) expect(text).toContain(key);
    for (const key of adminKeys) expect(text).not.toContain(key);
    expect(text).toContain('include=vector');
    expect(text).toContain('title, genre');
    expect(warnings[0]?.entry.data).toContain(`[ack: ${PUBLIC_READS_WARNING_ID}]`);
    const env =
      s.template.toJSON().Resources[s.idOf(s.stack.queryApi.query.fn)].Properties.Environment.Variables;
    expect(env[ENV.publicReads]).toBe('true');
    expect(env[ENV.publicMetadataFields]).toBe('title,genre');
    expect(s.stack.queryApi.readInvokePolicy).toBeUndefined();
  });

  it('publicMetadataFields is refused unless readAuth=none', () => {
    expect(() => configFromContext((k) => ({ 'vicinity:publicMetadataFields': 'title' })[k])).toThrow(
      /readAuth=none/,
    );
  });
});

describe('functions', () => {
  let s: Synthesised;
  beforeAll(() => {
    s = synth();
  });
  const fns = () => [s.stack.queryApi.query, s.stack.queryApi.admin, s.stack.buildPipeline.fn];

  it('run the newest Node.js runtime aws-cdk-lib knows (nodejs24.x), the layer too', () => {
    const newest = Runtime.ALL.filter((r) => /^nodejs\d+/.test(r.name))
      .map((r) => r.name)
      .sort((a, b) => a.localeCompare(b, undefined, { numeric: true }))
      .at(-1);
    expect(LAMBDA_RUNTIME.name).toBe('nodejs24.x');
    expect(LAMBDA_RUNTIME.name).toBe(newest);
    for (const f of fns()) {
      expect(s.template.toJSON().Resources[s.idOf(f.fn)].Properties.Runtime).toBe('nodejs24.x');
    }
    s.template.hasResourceProperties('AWS::Lambda::LayerVersion', { CompatibleRuntimes: ['nodejs24.x'] });
  });

  it('trace actively with X-Ray, and their roles may send traces', () => {
    for (const f of fns()) {
      expect(s.template.toJSON().Resources[s.idOf(f.fn)].Properties.TracingConfig).toEqual({
        Mode: 'Active',
      });
      const xray = statementsOfRole(s.template, s.idOf(f.role)).filter((st) =>
        String(st.Action).includes('xray:'),
      );
      expect(xray).toEqual([
        {
          Effect: 'Allow',
          Action: ['xray:PutTraceSegments', 'xray:PutTelemetryRecords'],
          Resource: '*',
        },
      ]);
    }
  });

  it('use their own roles: no AWS managed policy, logs to their own log group only', () => {
    for (const f of fns()) {
      const role = s.template.toJSON().Resources[s.idOf(f.role)].Properties;
      expect(role.ManagedPolicyArns).toBeUndefined();
      const logs = statementsOfRole(s.template, s.idOf(f.role)).filter((st) =>
        String(st.Action).includes('logs:'),
      );
      expect(logs).toEqual([
        {
          Effect: 'Allow',
          Action: ['logs:CreateLogStream', 'logs:PutLogEvents'],
          Resource: { 'Fn::GetAtt': [s.idOf(f.logGroup), 'Arn'] },
        },
      ]);
    }
  });

  it('the asynchronously invoked build function has an on-failure destination: the failed-builds queue', () => {
    const configs = Object.values(s.template.findResources('AWS::Lambda::EventInvokeConfig')).filter(
      // The sweeper's schedule invokes it asynchronously too; its config is asserted in sweeper.test.ts.
      (c) => c.Properties.FunctionName.Ref !== s.idOf(s.stack.sweeper.fn.fn),
    );
    expect(configs.map((c) => c.Properties)).toEqual([
      {
        FunctionName: { Ref: s.idOf(s.stack.buildPipeline.fn.fn) },
        Qualifier: '$LATEST',
        MaximumRetryAttempts: 2,
        MaximumEventAgeInSeconds: 6 * 3600,
        DestinationConfig: {
          OnFailure: { Destination: { 'Fn::GetAtt': [s.idOf(s.stack.buildPipeline.failedBuilds), 'Arn'] } },
        },
      },
      {
        FunctionName: { Ref: s.idOf(s.stack.buildTasks.fn.fn) },
        Qualifier: '$LATEST',
        MaximumRetryAttempts: 2,
        MaximumEventAgeInSeconds: 6 * 3600,
        DestinationConfig: {
          OnFailure: { Destination: { 'Fn::GetAtt': [s.idOf(s.stack.buildPipeline.failedBuilds), 'Arn'] } },
        },
      },
    ]);
  });

  it('warm-up invocations of the query function are never retried by Lambda', () => {
    const w = synth({ 'vicinity:warmUpInvocations': '2' });
    w.template.hasResourceProperties('AWS::Lambda::EventInvokeConfig', {
      FunctionName: { Ref: w.idOf(w.stack.queryApi.query.fn) },
      Qualifier: '$LATEST',
      MaximumRetryAttempts: 0,
      MaximumEventAgeInSeconds: 300,
    });
  });
});

describe('server access logs', () => {
  it('the data bucket logs to an SSE-S3 log bucket that expires logs after the log retention', () => {
    const s = synth();
    const logs = s.idOf(s.stack.storage.accessLogs);
    const data = s.template.toJSON().Resources[s.idOf(s.stack.storage.bucket)].Properties;
    expect(data.LoggingConfiguration).toEqual({
      DestinationBucketName: { Ref: logs },
      LogFilePrefix: 'data/',
    });
    const logBucket = s.template.toJSON().Resources[logs].Properties;
    expect(logBucket.BucketEncryption).toEqual({
      ServerSideEncryptionConfiguration: [{ ServerSideEncryptionByDefault: { SSEAlgorithm: 'AES256' } }],
    });
    expect(logBucket.LifecycleConfiguration).toEqual({
      Rules: [{ Id: 'expire-access-logs', ExpirationInDays: 30, Status: 'Enabled' }],
    });
    expect(logBucket.LoggingConfiguration).toBeUndefined();
  });
});

describe('cdk-nag: AWS Solutions and Serverless packs', () => {
  for (const [name, context] of Object.entries(OPTION_VARIANTS)) {
    it(`${name}: zero unacknowledged errors and warnings`, () => {
      expect(nagFindings(synth(context).stack)).toEqual([]);
    });
  }

  it('the packs fail a synth on an unacknowledged finding', () => {
    const app = new App({
      context: { 'aws:cdk:bundling-stacks': [] },
      builtinCloudFormationValidation: false,
    });
    const stack = new VicinityStack(app, 'Nagged', { config: DEFAULT_CONFIG });
    new Queue(stack, 'Unacknowledged'); // SQS3, SQS4, SQSRedrivePolicy
    addNagChecks(app);
    expect(() => app.synth()).toThrow(/AwsSolutions-SQS3/);
  });

  it('the packs let a synth with readAuth=none through (its warning is a warning, not a failure)', () => {
    const app = new App({
      context: { 'aws:cdk:bundling-stacks': [], 'vicinity:readAuth': 'none' },
      builtinCloudFormationValidation: false,
    });
    const config = configFromContext((k) => app.node.tryGetContext(k));
    new VicinityStack(app, 'Public', { config });
    addNagChecks(app);
    expect(() => app.synth()).not.toThrow();
  });

  // Every acknowledgement the default stack makes: where, which finding, and why.
  const bucket = '<StorageBucket5CB7C8EA.Arn>';
  const api = 'arn:<AWS::Partition>:execute-api:<AWS::Region>:<AWS::AccountId>:<QueryApi98BB9989>/*/';
  const routeArn = (key: string) =>
    `AwsSolutions-IAM5[Resource::${api}${key.replace(' ', '').replace(/\{[^}]+\}/g, '*')}]`;
  const EXPECTED: [path: string, rule: string, reason: string][] = [
    ['Test/Storage/AccessLogs', 'AwsSolutions-S1', NAG_REASON.accessLogBucket],
    ['Test/Sweeper/Schedule', 'Serverless-EventBusDLQ', NAG_REASON.sweeperDlq],
    ['Test/Sweeper/Sweeper/Function', 'Serverless-LambdaAsyncFailureDestination', NAG_REASON.sweeperDlq],
    ['Test/Sweeper/Sweeper/Function', 'Serverless-LambdaDLQ', NAG_REASON.sweeperDlq],
    ['Test/Sweeper/Sweeper/Role', 'AwsSolutions-IAM5[Resource::*]', NAG_REASON.xray],
    [
      'Test/Sweeper/Sweeper/Role',
      `AwsSolutions-IAM5[Resource::${bucket}/snapshots/*]`,
      NAG_REASON.prefixObjects,
    ],
    [
      'Test/Sweeper/Sweeper/Role',
      `AwsSolutions-IAM5[Resource::${bucket}/incoming/*]`,
      NAG_REASON.prefixObjects,
    ],
    [
      'Test/Sweeper/Sweeper/Role',
      `AwsSolutions-IAM5[Resource::${bucket}/staging/*]`,
      NAG_REASON.prefixObjects,
    ],
    ['Test/BuildPipeline/FailedBuilds', 'AwsSolutions-SQS3', NAG_REASON.failedBuildsRedrive],
    ['Test/BuildPipeline/FailedBuilds', 'Serverless-SQSRedrivePolicy', NAG_REASON.failedBuildsRedrive],
    ['Test/BuildPipeline/Build/Function', 'Serverless-LambdaDLQ', NAG_REASON.buildDlq],
    ['Test/BuildTasks/Tasks/Function', 'Serverless-LambdaDLQ', NAG_REASON.buildDlq],
    ['Test/BuildTasks/Tasks/Role', 'AwsSolutions-IAM5[Resource::*]', NAG_REASON.xray],
    ...['incoming', 'snapshots', 'staging'].map((p): [string, string, string] => [
      'Test/BuildTasks/Tasks/Role',
      `AwsSolutions-IAM5[Resource::${bucket}/${p}/*]`,
      NAG_REASON.prefixObjects,
    ]),
    [
      'Test/BuildPipeline/Build/Role',
      `AwsSolutions-IAM5[Resource::${bucket}/staging/*]`,
      NAG_REASON.prefixObjects,
    ],
    ['Test/QueryApi/Query/Function', 'Serverless-LambdaDLQ', NAG_REASON.queryDlq],
    ['Test/QueryApi/Admin/Function', 'Serverless-LambdaDLQ', NAG_REASON.apiOnlyDlq],
    ...['Build', 'Query', 'Admin'].map((fn): [string, string, string] => [
      `Test/${fn === 'Build' ? 'BuildPipeline' : 'QueryApi'}/${fn}/Role`,
      'AwsSolutions-IAM5[Resource::*]',
      NAG_REASON.xray,
    ]),
    [
      'Test/BuildPipeline/Build/Role',
      `AwsSolutions-IAM5[Resource::${bucket}/incoming/*]`,
      NAG_REASON.prefixObjects,
    ],
    [
      'Test/BuildPipeline/Build/Role',
      `AwsSolutions-IAM5[Resource::${bucket}/snapshots/*]`,
      NAG_REASON.prefixObjects,
    ],
    [
      'Test/QueryApi/Query/Role',
      `AwsSolutions-IAM5[Resource::${bucket}/snapshots/*]`,
      NAG_REASON.prefixObjects,
    ],
    [
      `Test/${BUCKET_NOTIFICATIONS_HANDLER_ID}`,
      'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]',
      NAG_REASON.notificationsHandler,
    ],
    ...adminKeys.map((k): [string, string, string] => [
      'Test/QueryApi/AdminInvokePolicy',
      routeArn(k),
      NAG_REASON.executeApi,
    ]),
    ...readRouteKeys()
      .filter((k) => k !== '$default')
      .map((k): [string, string, string] => [
        'Test/QueryApi/ReadInvokePolicy',
        routeArn(k),
        NAG_REASON.executeApi,
      ]),
    ...Array.from({ length: 8 }, (_, i): [string, string, string][] => [
      [`Test/ShardSlots/Slot${i}/Function`, 'Serverless-LambdaDLQ', SLOT_DLQ_REASON],
      [`Test/ShardSlots/Slot${i}/Role`, 'AwsSolutions-IAM5[Resource::*]', NAG_REASON.xray],
      [
        `Test/ShardSlots/Slot${i}/Role`,
        `AwsSolutions-IAM5[Resource::${bucket}/snapshots/*]`,
        NAG_REASON.prefixObjects,
      ],
    ]).flat(),
  ];

  let defaultAcks: Map<string, string> | undefined;
  const acksOfDefault = () => {
    defaultAcks ??= acknowledgements(synth().stack);
    return defaultAcks;
  };

  it('the default stack acknowledges exactly the expected findings, nothing else', () => {
    const acks = acksOfDefault();
    expect([...acks.keys()].sort()).toEqual(EXPECTED.map(([p, r]) => `${p} ${r}`).sort());
  });

  it.each(EXPECTED)('%s acknowledges %s with its reason', (path, rule, reason) => {
    const acks = acksOfDefault();
    expect(reason.length).toBeGreaterThanOrEqual(MIN_REASON_LENGTH);
    expect(acks.get(`${path} ${rule}`)).toBe(reason);
  });

  it('readAuth=none acknowledges APIG4 on exactly the read routes and $default, with its reason', () => {
    const s = synth({ 'vicinity:readAuth': 'none' });
    const apig4 = [...acknowledgements(s.stack)].filter(([k]) => k.endsWith(' AwsSolutions-APIG4'));
    expect(apig4).toHaveLength(readRouteKeys().length);
    for (const [, reason] of apig4) expect(reason).toBe(NAG_REASON.publicRead);
  });

  it('an acknowledgement without a real reason is refused', async () => {
    const { acknowledge } = await import('../../infra/nag');
    const stack = new Stack(new App(), 'X');
    expect(() => acknowledge(stack, 'AwsSolutions-S1', '')).toThrow(/needs a reason/);
    expect(() => acknowledge(stack, 'AwsSolutions-S1', 'ok')).toThrow(/needs a reason/);
  });
});
