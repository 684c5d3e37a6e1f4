import { App } from 'aws-cdk-lib';
import { Match } from 'aws-cdk-lib/assertions';
import { beforeAll, describe, expect, it } from 'vitest';
import { ENV, EVENT_DETAIL_TYPE, EVENT_SOURCE } from '../../functions/contract';
import { BUNDLE_TARGET, ESM_REQUIRE_BANNER, externalModules } from '../../infra/bundle';
import { ConfigError, configFromContext, DEFAULT_CONFIG } from '../../infra/config';
import { ADMIN_ROUTES } from '../../infra/constructs/query-api';
import { LAMBDA_RUNTIME } from '../../infra/constructs/vicinity-function';
import { retentionFor, VicinityStack } from '../../infra/stacks/vicinity-stack';
import { actionsOf, type Synthesised, statementsOfRole, synth } from './synth';

describe('configuration from context', () => {
  const ctx = (values: Record<string, unknown>) => (key: string) => values[key];

  it('defaults when nothing is set', () => {
    expect(configFromContext(ctx({}))).toEqual(DEFAULT_CONFIG);
  });

  it('parses strings from -c like JSON values from cdk.json', () => {
    const c = configFromContext(
      ctx({
        'vicinity:buildMemoryMb': '10240',
        'vicinity:retainData': 'false',
        'vicinity:corsOrigins': 'https://a.example, https://b.example',
        'vicinity:queryTimeoutSeconds': 20,
        'vicinity:jwtAudience': ['x'],
      }),
    );
    expect(c.build.memoryMb).toBe(10240);
    expect(c.build.timeoutSeconds).toBe(900);
    expect(c.retainData).toBe(false);
    expect(c.corsOrigins).toEqual(['https://a.example', 'https://b.example']);
    expect(c.query.timeoutSeconds).toBe(20);
    expect(c.jwtAudience).toEqual(['x']);
  });

  it('rejects values that would fail at deploy time or at runtime', () => {
    const bad: Record<string, unknown>[] = [
      { 'vicinity:queryTimeoutSeconds': '29' }, // API Gateway ends the request first
      { 'vicinity:adminTimeoutSeconds': '60' },
      { 'vicinity:buildMemoryMb': '20000' },
      { 'vicinity:buildTimeoutSeconds': '901' },
      { 'vicinity:queryEphemeralMb': '256' },
      { 'vicinity:encryption': 'aes' },
      { 'vicinity:readAuth': 'jwt' }, // without issuer and audience
      { 'vicinity:retainData': 'yes' },
      { 'vicinity:warmUpInvocations': '6' },
      { 'vicinity:buildRetryAttempts': '3' },
      { 'vicinity:switchGraceMs': '-1' },
      { 'vicinity:switchGraceMs': '1.5' },
    ];
    for (const values of bad) {
      expect(() => configFromContext(ctx(values)), JSON.stringify(values)).toThrow(ConfigError);
    }
  });

  it('log retention rounds up to an allowed CloudWatch value', () => {
    expect(retentionFor(30)).toBe(30);
    expect(retentionFor(31)).toBe(60);
    expect(retentionFor(1)).toBe(1);
  });
});

describe('bundling settings', () => {
  it('bundles the SDK by default; the native addon is always left to the layer', () => {
    expect(DEFAULT_CONFIG.bundleAwsSdk).toBe(true);
    expect(externalModules(true)).toEqual(['hnswlib-node']);
    // -c vicinity:bundleAwsSdk=false: the runtime's copy of the SDK.
    expect(externalModules(false)).toEqual(['@aws-sdk/*', 'hnswlib-node']);
    expect(configFromContext((k) => ({ 'vicinity:bundleAwsSdk': 'false' })[k]).bundleAwsSdk).toBe(false);
  });

  it('compiles for the runtime the functions run on', () => {
    expect(BUNDLE_TARGET).toBe(LAMBDA_RUNTIME.name.replace(/^nodejs(\d+)\.x$/, 'node$1'));
  });

  it('defines require for CommonJS dependencies inside the ESM bundle', () => {
    expect(ESM_REQUIRE_BANNER).toContain("from 'node:module'");
    expect(ESM_REQUIRE_BANNER).toMatch(/const require = \w+\(import\.meta\.url\);$/);
  });
});

describe('a synth that bundles refuses to go on without the built layer', () => {
  it('throws with the command to run', () => {
    const app = new App({
      context: { 'vicinity:layerPath': '/nonexistent/layer' },
      builtinCloudFormationValidation: false,
    });
    const config = configFromContext((k) => app.node.tryGetContext(k));
    expect(() => new VicinityStack(app, 'NoLayer', { config })).toThrow(/npm run build:layer/);
  });
});

describe('a synth that skips bundling (these tests) needs no built layer', () => {
  it('uses the layer sources as a stand-in asset', () => {
    const s = synth({ 'vicinity:layerPath': '/nonexistent/layer' });
    s.template.resourceCountIs('AWS::Lambda::LayerVersion', 1);
  });
});

describe('options', () => {
  let s: Synthesised;
  beforeAll(() => {
    s = synth({
      'vicinity:encryption': 'kms',
      'vicinity:readAuth': 'iam',
      'vicinity:warmUpInvocations': '3',
      'vicinity:buildReservedConcurrency': '2',
      'vicinity:buildMemoryMb': '10240',
      'vicinity:retainData': 'false',
      'vicinity:tableDeletionProtection': 'false',
      'vicinity:corsOrigins': 'https://app.example',
      'vicinity:alarmEmail': 'ops@example.com',
      'vicinity:eventBusName': 'vicinity-events',
      'vicinity:incomingExpirationDays': '3',
      'vicinity:throttleRateLimit': '50',
      'vicinity:throttleBurstLimit': '100',
      'vicinity:switchGraceMs': '0',
    });
  });

  it('KMS: the bucket uses a rotating customer managed key with a bucket key', () => {
    const key = s.idOf(s.stack.storage.key!);
    s.template.hasResourceProperties('AWS::KMS::Key', { EnableKeyRotation: true });
    s.template.hasResourceProperties('AWS::S3::Bucket', {
      BucketEncryption: {
        ServerSideEncryptionConfiguration: [
          {
            BucketKeyEnabled: true,
            ServerSideEncryptionByDefault: {
              SSEAlgorithm: 'aws:kms',
              KMSMasterKeyID: { 'Fn::GetAtt': [key, 'Arn'] },
            },
          },
        ],
      },
    });
    const query = actionsOf(statementsOfRole(s.template, s.idOf(s.stack.queryApi.query.fn.role!)));
    expect(query.filter((a) => a.startsWith('kms:'))).toEqual(['kms:Decrypt']);
    const build = actionsOf(statementsOfRole(s.template, s.idOf(s.stack.buildPipeline.fn.fn.role!)));
    expect(build.filter((a) => a.startsWith('kms:'))).toEqual(['kms:Decrypt', 'kms:GenerateDataKey']);
  });

  it('read auth IAM: every route requires SigV4', () => {
    const routes = Object.values(s.template.findResources('AWS::ApiGatewayV2::Route'));
    expect(routes.length).toBeGreaterThan(10);
    for (const r of routes) expect(r.Properties.AuthorizationType, r.Properties.RouteKey).toBe('AWS_IAM');
  });

  it('warm-up: a rule on PointerMoved events invokes the query function 3 times', () => {
    const queryArn = { 'Fn::GetAtt': [s.idOf(s.stack.queryApi.query.fn), 'Arn'] };
    s.template.hasResourceProperties('AWS::Events::Rule', {
      EventBusName: 'vicinity-events',
      EventPattern: { source: [EVENT_SOURCE], 'detail-type': [EVENT_DETAIL_TYPE.pointerMoved] },
      Targets: [0, 1, 2].map((slot) =>
        Match.objectLike({
          Arn: queryArn,
          RetryPolicy: { MaximumRetryAttempts: 0 },
          InputTransformer: Match.objectLike({
            InputPathsMap: { 'detail-space': '$.detail.space', 'detail-version': '$.detail.version' },
            InputTemplate: Match.stringLikeRegexp(`"vicinity":"warm-up","slot":${slot}`),
          }),
        }),
      ),
    });
    s.template.resourcePropertiesCountIs(
      'AWS::Lambda::Permission',
      { FunctionName: queryArn, Principal: 'events.amazonaws.com' },
      1,
    );
  });

  it('sizes, reserved concurrency, removal and protection follow the context', () => {
    s.template.hasResourceProperties('AWS::Lambda::Function', {
      MemorySize: 10240,
      ReservedConcurrentExecutions: 2,
      Timeout: 900,
    });
    s.template.hasResource('AWS::S3::Bucket', { DeletionPolicy: 'Delete' });
    s.template.resourceCountIs('Custom::S3AutoDeleteObjects', 2); // data and access-log buckets
    s.template.hasResource('AWS::DynamoDB::Table', {
      DeletionPolicy: 'Delete',
      Properties: Match.objectLike({ DeletionProtectionEnabled: false }),
    });
    s.template.hasResourceProperties('AWS::S3::Bucket', {
      LifecycleConfiguration: {
        Rules: Match.arrayWith([Match.objectLike({ Prefix: 'incoming/', ExpirationInDays: 3 })]),
      },
    });
    s.template.hasResourceProperties('AWS::ApiGatewayV2::Stage', {
      DefaultRouteSettings: { ThrottlingRateLimit: 50, ThrottlingBurstLimit: 100 },
    });
  });

  it('a switch grace of 0 (requests wait for the new version) reaches the query function as "0"', () => {
    const query = s.template.toJSON().Resources[s.idOf(s.stack.queryApi.query.fn)];
    expect(query.Properties.Environment.Variables[ENV.switchGraceMs]).toBe('0');
  });

  it('CORS, event bus and alarm email reach the API, the functions and the topic', () => {
    s.template.hasResourceProperties('AWS::ApiGatewayV2::Api', {
      CorsConfiguration: Match.objectLike({
        AllowOrigins: ['https://app.example'],
        ExposeHeaders: Match.arrayWith(['vicinity-version']),
      }),
    });
    const query = s.template.toJSON().Resources[s.idOf(s.stack.queryApi.query.fn)];
    expect(query.Properties.Environment.Variables).toMatchObject({
      [ENV.corsOrigins]: 'https://app.example',
      [ENV.eventBusName]: 'vicinity-events',
    });
    s.template.hasResourceProperties('AWS::SNS::Subscription', {
      Protocol: 'email',
      Endpoint: 'ops@example.com',
    });
    const build = statementsOfRole(s.template, s.idOf(s.stack.buildPipeline.fn.fn.role!));
    expect(JSON.stringify(build.find((st) => st.Action === 'events:PutEvents')?.Resource)).toContain(
      ':event-bus/vicinity-events',
    );
  });
});

describe('read auth JWT', () => {
  it('read routes use the JWT authorizer, admin routes stay IAM', () => {
    const s = synth({
      'vicinity:readAuth': 'jwt',
      'vicinity:jwtIssuer': 'https://issuer.example',
      'vicinity:jwtAudience': 'vicinity',
    });
    s.template.hasResourceProperties('AWS::ApiGatewayV2::Authorizer', {
      AuthorizerType: 'JWT',
      JwtConfiguration: { Issuer: 'https://issuer.example', Audience: ['vicinity'] },
    });
    const routes = Object.values(s.template.findResources('AWS::ApiGatewayV2::Route'));
    for (const r of routes) {
      const admin = ADMIN_ROUTES.some((a) => `${a.method} ${a.path}` === r.Properties.RouteKey);
      expect(r.Properties.AuthorizationType, r.Properties.RouteKey).toBe(admin ? 'AWS_IAM' : 'JWT');
    }
  });
});
