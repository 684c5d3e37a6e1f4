/** The build-task function of sharded collections: sizing, concurrency, failure routing, alarm, IAM. */
import { Match } from 'aws-cdk-lib/assertions';
import { beforeAll, describe, expect, it } from 'vitest';
import { ENV, METRIC, METRICS_NAMESPACE, SERVICE_NAME } from '../../functions/contract';
import { TASK_SIZING } from '../../infra/constructs/build-tasks';
import { actionsOf, type PolicyStatementJson, type Synthesised, statementsOfRole, synth } from './synth';

let s: Synthesised;
beforeAll(() => {
  s = synth();
});

const ids = () => ({
  tasks: s.idOf(s.stack.buildTasks.fn.fn),
  tasksRole: s.idOf(s.stack.buildTasks.fn.role),
  buildRole: s.idOf(s.stack.buildPipeline.fn.fn.role!),
  queue: s.idOf(s.stack.buildPipeline.failedBuilds),
});
const withAction = (st: PolicyStatementJson[], a: string) =>
  st.filter((x) => (Array.isArray(x.Action) ? x.Action : [x.Action]).includes(a));

/** Statements of every policy (default or standalone) attached to a role. */
function allStatementsOfRole(roleId: string): PolicyStatementJson[] {
  return statementsOfRole(s.template, roleId);
}

describe('build tasks function', () => {
  it('runs functions/tasks with its own memory, /tmp and 15-minute timeout, and the env it needs', () => {
    s.template.hasResourceProperties('AWS::Lambda::Function', {
      Description: Match.stringLikeRegexp('build tasks'),
      MemorySize: TASK_SIZING.memoryMb,
      EphemeralStorage: { Size: TASK_SIZING.ephemeralMb },
      Timeout: 900,
      Environment: {
        Variables: Match.objectLike({
          POWERTOOLS_SERVICE_NAME: SERVICE_NAME.tasks,
          [ENV.taskMemoryMb]: String(TASK_SIZING.memoryMb),
          [ENV.bucket]: Match.anyValue(),
          [ENV.table]: Match.anyValue(),
        }),
      },
    });
  });

  it('has a reserved concurrency limit', () => {
    const fn = s.template.findResources('AWS::Lambda::Function')[ids().tasks];
    expect(fn?.Properties.ReservedConcurrentExecutions).toBe(100);
  });

  it('async: two retries, then the failed-builds queue (on-failure destination), which it may send to', () => {
    s.template.hasResourceProperties('AWS::Lambda::EventInvokeConfig', {
      FunctionName: { Ref: ids().tasks },
      MaximumRetryAttempts: 2,
      DestinationConfig: { OnFailure: { Destination: { 'Fn::GetAtt': [ids().queue, 'Arn'] } } },
    });
    const st = allStatementsOfRole(ids().tasksRole);
    expect(withAction(st, 'sqs:SendMessage')[0]?.Resource).toEqual({ 'Fn::GetAtt': [ids().queue, 'Arn'] });
  });

  it('alarms when a task fails its version', () => {
    s.template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      Namespace: METRICS_NAMESPACE,
      MetricName: METRIC.buildTaskFailures,
      Dimensions: [{ Name: 'service', Value: SERVICE_NAME.tasks }],
      Statistic: 'Sum',
      Threshold: 1,
      AlarmActions: Match.anyValue(),
    });
  });

  it('the build may invoke the task function only, and is told its name', () => {
    const st = allStatementsOfRole(ids().buildRole);
    const invoke = withAction(st, 'lambda:InvokeFunction');
    expect(invoke.map((x) => x.Resource)).toEqual([{ 'Fn::GetAtt': [ids().tasks, 'Arn'] }]);
    const build = s.template.findResources('AWS::Lambda::Function')[s.idOf(s.stack.buildPipeline.fn.fn)];
    expect(build?.Properties.Environment.Variables[ENV.taskFunction]).toEqual({ Ref: ids().tasks });
  });

  it('the task function may invoke itself only (partition → shard dispatch), from a policy of its own', () => {
    const st = allStatementsOfRole(ids().tasksRole);
    const invoke = withAction(st, 'lambda:InvokeFunction');
    expect(invoke.map((x) => x.Resource)).toEqual([{ 'Fn::GetAtt': [ids().tasks, 'Arn'] }]);
    expect(actionsOf(st)).toEqual(
      [
        'dynamodb:GetItem',
        'dynamodb:PutItem',
        'dynamodb:Query',
        'dynamodb:UpdateItem',
        'events:PutEvents',
        'lambda:InvokeFunction',
        'logs:CreateLogStream',
        'logs:PutLogEvents',
        's3:AbortMultipartUpload',
        's3:DeleteObject',
        's3:GetObject',
        's3:ListBucket',
        's3:PutObject',
        'sqs:GetQueueAttributes',
        'sqs:GetQueueUrl',
        'sqs:SendMessage',
        'xray:PutTelemetryRecords',
        'xray:PutTraceSegments',
      ].sort(),
    );
  });
});
