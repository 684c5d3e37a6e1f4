import { Match } from 'aws-cdk-lib/assertions';
import { beforeAll, describe, expect, it } from 'vitest';
import { ENV, METRIC, METRICS_NAMESPACE, SERVICE_NAME } from '../../functions/contract';
import { DEFAULT_CONFIG } from '../../infra/config';
import { ADMIN_ROUTES, READ_ROUTES } from '../../infra/constructs/query-api';
import { actionsOf, type PolicyStatementJson, type Synthesised, statementsOfRole, synth } from './synth';

let s: Synthesised;
beforeAll(() => {
  s = synth();
});

const fnIds = () => ({
  query: s.idOf(s.stack.queryApi.query.fn),
  admin: s.idOf(s.stack.queryApi.admin.fn),
  build: s.idOf(s.stack.buildPipeline.fn.fn),
});
const roleIds = () => ({
  query: s.idOf(s.stack.queryApi.query.fn.role!),
  admin: s.idOf(s.stack.queryApi.admin.fn.role!),
  build: s.idOf(s.stack.buildPipeline.fn.fn.role!),
});
const bucketArn = () => ({ 'Fn::GetAtt': [s.idOf(s.stack.storage.bucket), 'Arn'] });
const objectsArn = (prefix: string) => ({ 'Fn::Join': ['', [bucketArn(), `/${prefix}*`]] });
const tableArn = () => ({ 'Fn::GetAtt': [s.idOf(s.stack.storage.table), 'Arn'] });

function statementsWith(statements: PolicyStatementJson[], action: string): PolicyStatementJson[] {
  return statements.filter((st) => (Array.isArray(st.Action) ? st.Action : [st.Action]).includes(action));
}

describe('bucket', () => {
  it('blocks all public access, is S3-encrypted, owner-enforced and unversioned', () => {
    s.template.hasResourceProperties('AWS::S3::Bucket', {
      PublicAccessBlockConfiguration: {
        BlockPublicAcls: true,
        BlockPublicPolicy: true,
        IgnorePublicAcls: true,
        RestrictPublicBuckets: true,
      },
      BucketEncryption: {
        ServerSideEncryptionConfiguration: [{ ServerSideEncryptionByDefault: { SSEAlgorithm: 'AES256' } }],
      },
      OwnershipControls: { Rules: [{ ObjectOwnership: 'BucketOwnerEnforced' }] },
      VersioningConfiguration: Match.absent(),
    });
  });

  it('expires incoming/ after the configured days and aborts stale multipart uploads', () => {
    s.template.hasResourceProperties('AWS::S3::Bucket', {
      LifecycleConfiguration: {
        Rules: Match.arrayWith([
          Match.objectLike({ Prefix: 'incoming/', ExpirationInDays: 7, Status: 'Enabled' }),
          Match.objectLike({ AbortIncompleteMultipartUpload: { DaysAfterInitiation: 1 }, Status: 'Enabled' }),
        ]),
      },
    });
    // Nothing else expires: snapshots are removed by the builder's retention, not by S3.
    const bucket = s.template.toJSON().Resources[s.idOf(s.stack.storage.bucket)];
    const rules = bucket?.Properties.LifecycleConfiguration.Rules as {
      ExpirationInDays?: number;
      Prefix?: string;
    }[];
    expect(rules.filter((r) => r.ExpirationInDays !== undefined).map((r) => r.Prefix)).toEqual(['incoming/']);
  });

  it('is retained when the stack is deleted', () => {
    s.template.hasResource('AWS::S3::Bucket', { DeletionPolicy: 'Retain', UpdateReplacePolicy: 'Retain' });
    s.template.resourcePropertiesCountIs('Custom::S3AutoDeleteObjects', {}, 0);
  });

  it('policy denies requests without TLS (and below TLS 1.2)', () => {
    s.template.hasResourceProperties('AWS::S3::BucketPolicy', {
      Bucket: { Ref: s.idOf(s.stack.storage.bucket) },
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({
            Effect: 'Deny',
            Principal: { AWS: '*' },
            Action: 's3:*',
            Condition: { Bool: { 'aws:SecureTransport': 'false' } },
            Resource: [bucketArn(), { 'Fn::Join': ['', [bucketArn(), '/*']] }],
          }),
          Match.objectLike({
            Effect: 'Deny',
            Condition: { NumericLessThan: { 's3:TlsVersion': 1.2 } },
          }),
        ]),
      },
    });
  });

  it('policy allows nothing: access is granted to the function roles only', () => {
    const policies = Object.values(s.template.findResources('AWS::S3::BucketPolicy')).filter(
      (p) => p.Properties.Bucket.Ref === s.idOf(s.stack.storage.bucket),
    );
    expect(policies).toHaveLength(1);
    const statements = policies[0]?.Properties.PolicyDocument.Statement as PolicyStatementJson[];
    expect(statements.every((st) => st.Effect === 'Deny')).toBe(true);
  });
});

describe('table', () => {
  it('is pk/sk strings, on-demand, with point-in-time recovery and deletion protection', () => {
    s.template.resourceCountIs('AWS::DynamoDB::Table', 1);
    s.template.hasResourceProperties('AWS::DynamoDB::Table', {
      KeySchema: [
        { AttributeName: 'pk', KeyType: 'HASH' },
        { AttributeName: 'sk', KeyType: 'RANGE' },
      ],
      AttributeDefinitions: [
        { AttributeName: 'pk', AttributeType: 'S' },
        { AttributeName: 'sk', AttributeType: 'S' },
      ],
      BillingMode: 'PAY_PER_REQUEST',
      PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
      DeletionProtectionEnabled: true,
      GlobalSecondaryIndexes: Match.absent(),
    });
    s.template.hasResource('AWS::DynamoDB::Table', {
      DeletionPolicy: 'Retain',
      UpdateReplacePolicy: 'Retain',
    });
  });
});

describe('functions', () => {
  it('are Node.js 24 on x86_64 with the hnswlib layer, ESM bundle handler, X-Ray tracing', () => {
    const layer = { Ref: s.idOf(s.stack.node.findChild('Hnswlib').node.findChild('Layer')) };
    for (const id of Object.values(fnIds())) {
      const fn = s.template.toJSON().Resources[id];
      expect(fn.Properties).toMatchObject({
        Runtime: 'nodejs24.x',
        Architectures: ['x86_64'],
        Handler: 'index.handler',
        Layers: [layer],
        TracingConfig: { Mode: 'Active' },
      });
      // Source maps are read when a stack is formatted (functions/common/mapped-stacks.ts), not by Node
      // at every cold start.
      expect(fn.Properties.Environment.Variables.NODE_OPTIONS).toBeUndefined();
      expect(fn.Properties.Environment.Variables).toMatchObject({
        POWERTOOLS_METRICS_NAMESPACE: METRICS_NAMESPACE,
        [ENV.bucket]: { Ref: s.idOf(s.stack.storage.bucket) },
        [ENV.table]: { Ref: s.idOf(s.stack.storage.table) },
        [ENV.eventBusName]: 'default',
      });
      // Real AWS endpoints: the stand-in overrides must never reach Lambda.
      expect(fn.Properties.Environment.Variables[ENV.s3Endpoint]).toBeUndefined();
      expect(fn.Properties.Environment.Variables[ENV.dynamodbEndpoint]).toBeUndefined();
      expect(fn.Properties.Environment.Variables.NODE_PATH).toBeUndefined();
    }
  });

  it('query: 2048 MB, 2 GB /tmp, timeout below API Gateway’s 29 s', () => {
    const fn = s.template.toJSON().Resources[fnIds().query];
    expect(fn.Properties).toMatchObject({
      MemorySize: 2048,
      EphemeralStorage: { Size: 2048 },
      Timeout: DEFAULT_CONFIG.query.timeoutSeconds,
    });
    expect(fn.Properties.Timeout).toBeLessThan(29);
    expect(fn.Properties.Environment.Variables).toMatchObject({
      POWERTOOLS_SERVICE_NAME: SERVICE_NAME.query,
      [ENV.pointerTtlMs]: '1000',
      // The grace the query function reads (functions/common/config.ts), set explicitly by infra.
      [ENV.switchGraceMs]: '30000',
    });
    // Only the query function resolves versions for requests: no other function carries it.
    for (const id of [fnIds().admin, fnIds().build]) {
      const other = s.template.toJSON().Resources[id];
      expect(other.Properties.Environment.Variables[ENV.switchGraceMs]).toBeUndefined();
    }
  });

  it('admin: timeout below 29 s', () => {
    const fn = s.template.toJSON().Resources[fnIds().admin];
    expect(fn.Properties.Timeout).toBeLessThan(29);
    expect(fn.Properties.Environment.Variables.POWERTOOLS_SERVICE_NAME).toBe(SERVICE_NAME.admin);
  });

  it('build: 3008 MB, 10 GB /tmp, 15 min, no reserved concurrency by default', () => {
    const fn = s.template.toJSON().Resources[fnIds().build];
    expect(fn.Properties).toMatchObject({
      MemorySize: 3008,
      EphemeralStorage: { Size: 10240 },
      Timeout: 900,
    });
    expect(fn.Properties.ReservedConcurrentExecutions).toBeUndefined();
    expect(fn.Properties.Environment.Variables).toMatchObject({
      POWERTOOLS_SERVICE_NAME: SERVICE_NAME.build,
      [ENV.retainVersions]: '5',
    });
  });

  it('each logs to its own log group with a retention', () => {
    for (const id of Object.values(fnIds())) {
      const fn = s.template.toJSON().Resources[id];
      const groupId = fn.Properties.LoggingConfig.LogGroup.Ref as string;
      expect(s.template.toJSON().Resources[groupId].Properties.RetentionInDays).toBe(30);
    }
  });
});

describe('build pipeline', () => {
  it('S3 notifies the build function of created objects under incoming/ ending in release.json', () => {
    s.template.resourceCountIs('Custom::S3BucketNotifications', 1);
    s.template.hasResourceProperties('Custom::S3BucketNotifications', {
      BucketName: { Ref: s.idOf(s.stack.storage.bucket) },
      NotificationConfiguration: {
        LambdaFunctionConfigurations: [
          {
            Events: ['s3:ObjectCreated:*'],
            Filter: {
              Key: {
                FilterRules: Match.arrayEquals([
                  { Name: 'suffix', Value: 'release.json' },
                  { Name: 'prefix', Value: 'incoming/' },
                ]),
              },
            },
            LambdaFunctionArn: { 'Fn::GetAtt': [fnIds().build, 'Arn'] },
          },
        ],
        QueueConfigurations: Match.absent(),
        TopicConfigurations: Match.absent(),
      },
    });
    s.template.hasResourceProperties('AWS::Lambda::Permission', {
      Action: 'lambda:InvokeFunction',
      FunctionName: { 'Fn::GetAtt': [fnIds().build, 'Arn'] },
      Principal: 's3.amazonaws.com',
      SourceArn: bucketArn(),
    });
  });

  it('a build invocation that fails after retries goes to the failed-builds queue', () => {
    const queue = s.idOf(s.stack.buildPipeline.failedBuilds);
    s.template.hasResourceProperties('AWS::Lambda::EventInvokeConfig', {
      FunctionName: { Ref: fnIds().build },
      Qualifier: '$LATEST',
      MaximumRetryAttempts: 2,
      DestinationConfig: { OnFailure: { Destination: { 'Fn::GetAtt': [queue, 'Arn'] } } },
    });
    s.template.hasResourceProperties('AWS::SQS::Queue', {
      MessageRetentionPeriod: 14 * 24 * 3600,
      SqsManagedSseEnabled: true,
    });
    const build = statementsOfRole(s.template, roleIds().build);
    expect(statementsWith(build, 'sqs:SendMessage')[0]?.Resource).toEqual({ 'Fn::GetAtt': [queue, 'Arn'] });
  });
});

describe('IAM, least privilege', () => {
  // Every function also writes its own log group and sends X-Ray traces.
  const base = [
    'logs:CreateLogStream',
    'logs:PutLogEvents',
    'xray:PutTelemetryRecords',
    'xray:PutTraceSegments',
  ];
  const allowed = {
    query: [
      'dynamodb:BatchGetItem',
      'dynamodb:GetItem',
      'dynamodb:Query',
      ...base,
      // Scatter-gather: the shard-slot functions only (test/infra/shard-slots.test.ts).
      'lambda:InvokeFunction',
      's3:GetObject',
      's3:ListBucket',
    ],
    admin: [
      'dynamodb:BatchWriteItem',
      'dynamodb:GetItem',
      'dynamodb:PutItem',
      'dynamodb:Query',
      'dynamodb:UpdateItem',
      'events:PutEvents',
      ...base,
    ],
    build: [
      'dynamodb:GetItem',
      'dynamodb:PutItem',
      'dynamodb:Query',
      'dynamodb:UpdateItem',
      'events:PutEvents',
      'lambda:InvokeFunction',
      ...base,
      's3:AbortMultipartUpload',
      's3:DeleteObject',
      's3:GetObject',
      's3:ListBucket',
      's3:PutObject',
      'sqs:GetQueueAttributes',
      'sqs:GetQueueUrl',
      'sqs:SendMessage',
    ],
  };

  it('each function role holds exactly the actions it calls', () => {
    const roles = roleIds();
    for (const fn of ['query', 'admin', 'build'] as const) {
      expect(actionsOf(statementsOfRole(s.template, roles[fn])), fn).toEqual([...allowed[fn]].sort());
    }
  });

  it('the query function cannot write anything', () => {
    const actions = actionsOf(statementsOfRole(s.template, roleIds().query));
    for (const write of [
      's3:PutObject',
      's3:DeleteObject',
      'dynamodb:PutItem',
      'dynamodb:UpdateItem',
      'dynamodb:DeleteItem',
      'dynamodb:BatchWriteItem',
      'events:PutEvents',
    ]) {
      expect(actions).not.toContain(write);
    }
  });

  it('no wildcard actions, "*" resources only for X-Ray (which has no resource-level permissions)', () => {
    for (const [fn, role] of Object.entries(roleIds())) {
      for (const st of statementsOfRole(s.template, role)) {
        const actions = Array.isArray(st.Action) ? st.Action : [st.Action];
        expect(
          actions.filter((a) => a.includes('*')),
          fn,
        ).toEqual([]);
        // `"*"` alone or inside a list (`["*"]`, `["arn:…", "*"]`): either grants every resource.
        const resources = Array.isArray(st.Resource) ? st.Resource : [st.Resource];
        if (resources.some((r: unknown) => r === '*')) {
          expect(actions, fn).toEqual(['xray:PutTraceSegments', 'xray:PutTelemetryRecords']);
        }
      }
      // No managed policy (not even AWSLambdaBasicExecutionRole): logs go to the function's own group only.
      const roleProps = s.template.toJSON().Resources[role].Properties;
      expect(roleProps.ManagedPolicyArns).toBeUndefined();
    }
  });

  it('query: GetObject under snapshots/ only, ListBucket limited to the snapshots/ prefix', () => {
    const st = statementsOfRole(s.template, roleIds().query);
    expect(statementsWith(st, 's3:GetObject').map((x) => x.Resource)).toEqual([objectsArn('snapshots/')]);
    expect(statementsWith(st, 's3:ListBucket')).toEqual([
      {
        Effect: 'Allow',
        Action: 's3:ListBucket',
        Resource: bucketArn(),
        Condition: { StringLike: { 's3:prefix': ['snapshots/*'] } },
      },
    ]);
    expect(statementsWith(st, 'dynamodb:GetItem').map((x) => x.Resource)).toEqual([tableArn()]);
  });

  it('build: reads incoming/ and snapshots/, writes and deletes snapshots/, writes staging/ (the sharded plan) and deletes it (a FAILED version)', () => {
    const st = statementsOfRole(s.template, roleIds().build);
    expect(statementsWith(st, 's3:GetObject').map((x) => x.Resource)).toEqual([
      [objectsArn('incoming/'), objectsArn('snapshots/')],
    ]);
    expect(statementsWith(st, 's3:AbortMultipartUpload').map((x) => x.Resource)).toEqual([
      objectsArn('snapshots/'),
    ]);
    expect(statementsWith(st, 's3:DeleteObject').map((x) => x.Resource)).toEqual([
      objectsArn('snapshots/'),
      objectsArn('staging/'),
    ]);
    expect(statementsWith(st, 's3:PutObject').map((x) => x.Resource)).toEqual([
      objectsArn('snapshots/'),
      objectsArn('staging/'),
    ]);
    expect(statementsWith(st, 's3:ListBucket').map((x) => x.Condition)).toEqual([
      { StringLike: { 's3:prefix': ['incoming/*', 'snapshots/*'] } },
      { StringLike: { 's3:prefix': ['staging/*'] } },
    ]);
    expect(statementsWith(st, 'events:PutEvents')[0]?.Resource).toEqual({
      'Fn::Join': [
        '',
        [
          'arn:',
          { Ref: 'AWS::Partition' },
          ':events:',
          { Ref: 'AWS::Region' },
          ':',
          { Ref: 'AWS::AccountId' },
          ':event-bus/default',
        ],
      ],
    });
  });

  it('admin: updates the table and touches no S3 object (the deploy rehearsal found no S3 call)', () => {
    const st = statementsOfRole(s.template, roleIds().admin);
    expect(statementsWith(st, 'dynamodb:PutItem').map((x) => x.Resource)).toEqual([tableArn()]);
    expect(actionsOf(st).filter((a) => a.startsWith('s3:'))).toEqual([]);
  });
});

describe('HTTP API', () => {
  const routeKey = (r: { method: string; path: string }) => `${r.method} ${r.path}`;

  it('admin routes (activate, rollback) require IAM and reach the admin function', () => {
    const adminIntegrations = Object.entries(s.template.findResources('AWS::ApiGatewayV2::Integration'))
      .filter(([, r]) => r.Properties.IntegrationUri['Fn::GetAtt']?.[0] === fnIds().admin)
      .map(([id]) => id);
    expect(adminIntegrations).toHaveLength(1);
    expect(ADMIN_ROUTES.map(routeKey)).toEqual([
      'POST /v1/spaces/{space}/activate',
      'POST /v1/spaces/{space}/rollback',
      'DELETE /v1/spaces/{space}/collections/{collection}/items/{id}',
      'POST /v1/spaces/{space}/collections/{collection}/items/{id}/restore',
      'GET /v1/spaces/{space}/erasures',
      'DELETE /v1/spaces/{space}',
      'PUT /v1/spaces/{space}/settings',
    ]);
    for (const r of ADMIN_ROUTES) {
      s.template.hasResourceProperties('AWS::ApiGatewayV2::Route', {
        RouteKey: routeKey(r),
        AuthorizationType: 'AWS_IAM',
        Target: { 'Fn::Join': ['', ['integrations/', { Ref: adminIntegrations[0] }]] },
      });
    }
  });

  it('read routes and $default require IAM by default and reach the query function', () => {
    const routes = Object.values(s.template.findResources('AWS::ApiGatewayV2::Route'));
    expect(routes).toHaveLength(READ_ROUTES.length + ADMIN_ROUTES.length + 1);
    for (const key of [...READ_ROUTES.map(routeKey), '$default']) {
      s.template.hasResourceProperties('AWS::ApiGatewayV2::Route', {
        RouteKey: key,
        AuthorizationType: 'AWS_IAM',
      });
    }
    // Nothing is public.
    expect(routes.filter((r) => r.Properties.AuthorizationType !== 'AWS_IAM')).toEqual([]);
    s.template.hasResourceProperties('AWS::ApiGatewayV2::Integration', {
      IntegrationType: 'AWS_PROXY',
      PayloadFormatVersion: '2.0',
      IntegrationUri: { 'Fn::GetAtt': [fnIds().query, 'Arn'] },
    });
  });

  it('one $default stage, auto-deployed, throttled, with JSON access logs', () => {
    s.template.resourceCountIs('AWS::ApiGatewayV2::Stage', 1);
    s.template.hasResourceProperties('AWS::ApiGatewayV2::Stage', {
      StageName: '$default',
      AutoDeploy: true,
      DefaultRouteSettings: { ThrottlingRateLimit: 500, ThrottlingBurstLimit: 1000 },
      AccessLogSettings: {
        DestinationArn: { 'Fn::GetAtt': [s.idOf(s.stack.queryApi.accessLogs), 'Arn'] },
        Format: Match.stringLikeRegexp('"requestId":"\\$context.requestId"'),
      },
    });
    s.template.hasResourceProperties('AWS::ApiGatewayV2::Api', {
      ProtocolType: 'HTTP',
      CorsConfiguration: Match.absent(),
    });
  });

  it('API Gateway may invoke each function (one permission per function, not per route)', () => {
    for (const id of [fnIds().query, fnIds().admin]) {
      s.template.resourcePropertiesCountIs(
        'AWS::Lambda::Permission',
        { FunctionName: { 'Fn::GetAtt': [id, 'Arn'] }, Principal: 'apigateway.amazonaws.com' },
        1,
      );
    }
  });

  it('a managed policy grants execute-api:Invoke on the admin routes only', () => {
    const route = (method: string, path: string) =>
      Match.objectLike({
        'Fn::Join': ['', Match.arrayWith([Match.stringLikeRegexp(`/\\*/${method}${path}$`)])],
      });
    s.template.hasResourceProperties('AWS::IAM::ManagedPolicy', {
      PolicyDocument: {
        Statement: [
          {
            Effect: 'Allow',
            Action: 'execute-api:Invoke',
            Resource: [
              route('POST', '/v1/spaces/\\*/activate'),
              route('POST', '/v1/spaces/\\*/rollback'),
              route('DELETE', '/v1/spaces/\\*/collections/\\*/items/\\*'),
              route('POST', '/v1/spaces/\\*/collections/\\*/items/\\*/restore'),
              route('GET', '/v1/spaces/\\*/erasures'),
              route('DELETE', '/v1/spaces/\\*'),
              route('PUT', '/v1/spaces/\\*/settings'),
            ],
          },
        ],
      },
    });
  });
});

describe('monitoring', () => {
  it('alarms on errors and throttles of every function', () => {
    for (const id of Object.values(fnIds())) {
      for (const metric of ['Errors', 'Throttles']) {
        s.template.hasResourceProperties('AWS::CloudWatch::Alarm', {
          Namespace: 'AWS/Lambda',
          MetricName: metric,
          Dimensions: [{ Name: 'FunctionName', Value: { Ref: id } }],
          Statistic: 'Sum',
          Threshold: 1,
          ComparisonOperator: 'GreaterThanOrEqualToThreshold',
        });
      }
    }
  });

  it('alarms on failed builds, failed-build queue depth, failed loads, p99 latency and 5xx', () => {
    s.template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      Namespace: METRICS_NAMESPACE,
      MetricName: METRIC.buildFailures,
      Dimensions: [{ Name: 'service', Value: SERVICE_NAME.build }],
      Statistic: 'Sum',
      Threshold: 1,
    });
    s.template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      Namespace: 'AWS/SQS',
      MetricName: 'ApproximateNumberOfMessagesVisible',
      Dimensions: [
        {
          Name: 'QueueName',
          Value: { 'Fn::GetAtt': [s.idOf(s.stack.buildPipeline.failedBuilds), 'QueueName'] },
        },
      ],
      Threshold: 1,
    });
    s.template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      Namespace: METRICS_NAMESPACE,
      MetricName: METRIC.snapshotLoadFailures,
      Dimensions: [{ Name: 'service', Value: SERVICE_NAME.query }],
    });
    s.template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      Namespace: 'AWS/ApiGateway',
      MetricName: 'Latency',
      ExtendedStatistic: 'p99',
      Threshold: 1000,
      Dimensions: [{ Name: 'ApiId', Value: { Ref: s.idOf(s.stack.queryApi.api) } }],
    });
    s.template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      Namespace: 'AWS/ApiGateway',
      MetricName: '5xx',
    });
    // 11 + the failed-build-tasks alarm (test/infra/build-tasks.test.ts) + the sweeper's stalled-purges
    // and errors alarms (test/infra/sweeper.test.ts).
    s.template.resourceCountIs('AWS::CloudWatch::Alarm', 14);
  });

  it('every alarm notifies the alarm topic and treats missing data as OK', () => {
    const topic = { Ref: s.idOf(s.stack.monitoring.topic) };
    for (const alarm of Object.values(s.template.findResources('AWS::CloudWatch::Alarm'))) {
      expect(alarm.Properties.AlarmActions).toEqual([topic]);
      expect(alarm.Properties.TreatMissingData).toBe('notBreaching');
    }
    s.template.resourceCountIs('AWS::SNS::Subscription', 0);
  });

  it('a dashboard shows latency, snapshot loads, builds and pointer moves', () => {
    s.template.resourceCountIs('AWS::CloudWatch::Dashboard', 1);
    const body = JSON.stringify(
      Object.values(s.template.findResources('AWS::CloudWatch::Dashboard'))[0]?.Properties.DashboardBody,
    );
    for (const needle of [
      'Latency',
      METRIC.snapshotLoads,
      METRIC.snapshotReadIndexMs,
      METRIC.buildsReady,
      METRIC.buildFailures,
      METRIC.pointerMoves,
    ]) {
      expect(body).toContain(needle);
    }
  });
});

describe('layer and events', () => {
  it('the hnswlib layer targets Node.js 24 on x86_64', () => {
    s.template.resourceCountIs('AWS::Lambda::LayerVersion', 1);
    s.template.hasResourceProperties('AWS::Lambda::LayerVersion', {
      CompatibleRuntimes: ['nodejs24.x'],
      CompatibleArchitectures: ['x86_64'],
    });
  });

  it('no warm-up rule unless asked for (the only rule is the sweeper schedule)', () => {
    const rules = Object.values(s.template.findResources('AWS::Events::Rule'));
    expect(rules.map((r) => r.Properties.ScheduleExpression)).toEqual(['rate(5 minutes)']);
  });

  it('outputs the API URL, bucket and admin policy', () => {
    for (const out of [
      'ApiUrl',
      'BucketName',
      'TableName',
      'AdminInvokePolicyArn',
      'ReadInvokePolicyArn',
      'FailedBuildsQueueUrl',
      'BuildFunctionName',
    ]) {
      s.template.hasOutput(out, {});
    }
  });
});
