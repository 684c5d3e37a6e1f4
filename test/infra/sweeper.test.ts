import { Match } from 'aws-cdk-lib/assertions';
import { beforeAll, describe, expect, it } from 'vitest';
import { ENV, METRIC, METRICS_NAMESPACE, SERVICE_NAME } from '../../functions/contract';
import { actionsOf, type Synthesised, statementsOfRole, synth } from './synth';

let s: Synthesised;
beforeAll(() => {
  s = synth();
});

describe('sweeper', () => {
  it('runs the sweeper function on an EventBridge schedule every 5 minutes, one run at a time', () => {
    const fnId = s.idOf(s.stack.sweeper.fn.fn);
    s.template.hasResourceProperties('AWS::Events::Rule', {
      ScheduleExpression: 'rate(5 minutes)',
      State: 'ENABLED',
      Targets: [
        { Arn: { 'Fn::GetAtt': [fnId, 'Arn'] }, Id: 'Target0', RetryPolicy: { MaximumRetryAttempts: 0 } },
      ],
    });
    const fn = s.template.findResources('AWS::Lambda::Function')[fnId];
    expect(fn?.Properties.ReservedConcurrentExecutions).toBe(1);
    const env = fn?.Properties.Environment.Variables as Record<string, unknown>;
    expect(env.POWERTOOLS_SERVICE_NAME).toBe(SERVICE_NAME.sweeper);
    expect(Object.keys(env)).toEqual(expect.arrayContaining([ENV.bucket, ENV.table, ENV.eventBusName]));
    // A missed sweep is made up by the next: Lambda does not retry it.
    s.template.hasResourceProperties('AWS::Lambda::EventInvokeConfig', {
      FunctionName: { Ref: fnId },
      MaximumRetryAttempts: 0,
      MaximumEventAgeInSeconds: 300,
    });
    s.template.hasResourceProperties('AWS::Lambda::Permission', {
      Action: 'lambda:InvokeFunction',
      Principal: 'events.amazonaws.com',
      FunctionName: { 'Fn::GetAtt': [fnId, 'Arn'] },
    });
  });

  it('alarms to the alarm topic when purges of erased ids stall (PurgesStalled ≥ 1 in a sweep)', () => {
    s.template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      Namespace: METRICS_NAMESPACE,
      MetricName: METRIC.purgesStalled,
      Dimensions: [{ Name: 'service', Value: SERVICE_NAME.sweeper }],
      Statistic: 'Sum',
      Threshold: 1,
      ComparisonOperator: 'GreaterThanOrEqualToThreshold',
      AlarmActions: [{ Ref: s.idOf(s.stack.monitoring.topic) }],
      AlarmDescription: Match.stringLikeRegexp('purgeError'),
    });
    // A sweep killed at its deadline emits no metric: Lambda's Errors, three sweeps in a row.
    s.template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      Namespace: 'AWS/Lambda',
      MetricName: 'Errors',
      Dimensions: [{ Name: 'FunctionName', Value: { Ref: s.idOf(s.stack.sweeper.fn.fn) } }],
      EvaluationPeriods: 3,
      DatapointsToAlarm: 3,
      AlarmActions: [{ Ref: s.idOf(s.stack.monitoring.topic) }],
    });
  });

  it('gets 3008 MB (≈1.7 vCPUs for parallel purge pieces) by default, 10240 MB (6 vCPUs) when asked, 900 s', () => {
    const fn = s.template.findResources('AWS::Lambda::Function')[s.idOf(s.stack.sweeper.fn.fn)];
    expect(fn?.Properties.MemorySize).toBe(3008);
    expect(fn?.Properties.Timeout).toBe(900);
    expect(fn?.Properties.EphemeralStorage).toEqual({ Size: 4096 });
    const big = synth({ 'vicinity:sweeperMemoryMb': 10240 });
    const fn2 = big.template.findResources('AWS::Lambda::Function')[big.idOf(big.stack.sweeper.fn.fn)];
    expect(fn2?.Properties.MemorySize).toBe(10240);
  });

  it('may read and update the table, read/write/list/delete snapshots, read/list/delete uploads, list/delete staging, put events — nothing more', () => {
    const roleId = s.idOf(s.stack.sweeper.fn.fn.role!);
    const statements = statementsOfRole(s.template, roleId);
    expect(actionsOf(statements)).toEqual(
      [
        'dynamodb:BatchWriteItem',
        'dynamodb:GetItem',
        'dynamodb:PutItem',
        'dynamodb:Query',
        'dynamodb:UpdateItem',
        'events:PutEvents',
        'logs:CreateLogStream',
        'logs:PutLogEvents',
        's3:AbortMultipartUpload',
        's3:DeleteObject',
        's3:GetObject',
        's3:ListBucket',
        's3:PutObject',
        'xray:PutTelemetryRecords',
        'xray:PutTraceSegments',
      ].sort(),
    );
    const bucketArn = { 'Fn::GetAtt': [s.idOf(s.stack.storage.bucket), 'Arn'] };
    const deletes = statements.filter((st) => [st.Action].flat().includes('s3:DeleteObject'));
    expect(deletes.map((st) => st.Resource)).toEqual([
      { 'Fn::Join': ['', [bucketArn, '/snapshots/*']] },
      { 'Fn::Join': ['', [bucketArn, '/incoming/*']] },
      { 'Fn::Join': ['', [bucketArn, '/staging/*']] },
    ]);
    // Uploads are read (an erasure's incomingReleases; an abandoned build's release.json), never written.
    const reads = statements.filter((st) => [st.Action].flat().includes('s3:GetObject'));
    expect(reads.map((st) => st.Resource)).toEqual([
      { 'Fn::Join': ['', [bucketArn, '/snapshots/*']] },
      { 'Fn::Join': ['', [bucketArn, '/incoming/*']] },
    ]);
    const writes = statements.filter((st) => [st.Action].flat().includes('s3:PutObject'));
    expect(writes.map((st) => st.Resource)).toEqual([{ 'Fn::Join': ['', [bucketArn, '/snapshots/*']] }]);
    const lists = statements.filter((st) => [st.Action].flat().includes('s3:ListBucket'));
    expect(lists.map((st) => st.Condition)).toEqual([
      { StringLike: { 's3:prefix': ['snapshots/*', 'incoming/*', 'staging/*'] } },
    ]);
    const table = statements.filter((st) => [st.Action].flat().some((a) => a.startsWith('dynamodb:')));
    expect(table.map((st) => st.Resource)).toEqual([
      { 'Fn::GetAtt': [s.idOf(s.stack.storage.table), 'Arn'] },
    ]);
  });
});
