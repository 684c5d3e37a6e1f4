import { Duration } from 'aws-cdk-lib';
import { Alarm, ComparisonOperator, TreatMissingData } from 'aws-cdk-lib/aws-cloudwatch';
import type { Table } from 'aws-cdk-lib/aws-dynamodb';
import type { IEventBus } from 'aws-cdk-lib/aws-events';
import { Effect, Policy, PolicyStatement } from 'aws-cdk-lib/aws-iam';
import type { IKey } from 'aws-cdk-lib/aws-kms';
import type { ILayerVersion, Function as LambdaFunction } from 'aws-cdk-lib/aws-lambda';
import { SqsDestination } from 'aws-cdk-lib/aws-lambda-destinations';
import type { RetentionDays } from 'aws-cdk-lib/aws-logs';
import type { Bucket } from 'aws-cdk-lib/aws-s3';
import type { IQueue } from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { ENV, METRIC, SERVICE_NAME } from '../../functions/contract';
import type { FunctionSizing } from '../config';
import { acknowledge, NAG_REASON } from '../nag';
import { allowKey, allowList, allowObjects, allowTable } from './grants';
import { appMetric } from './monitoring';
import { PREFIX } from './storage';
import { VicinityFunction } from './vicinity-function';

/** A shard task holds its rows and its index: the most memory Lambda offers, 10 GB of /tmp, 15 minutes. */
export const TASK_SIZING: FunctionSizing = Object.freeze({
  memoryMb: 10_240,
  ephemeralMb: 10_240,
  timeoutSeconds: 900,
});

export interface BuildTasksProps {
  readonly bucket: Bucket;
  readonly table: Table;
  readonly key?: IKey;
  readonly eventBus: IEventBus;
  readonly layer: ILayerVersion;
  /** The build function: it may invoke this function (and nothing else). */
  readonly build: LambdaFunction;
  /** Where task invocations that failed every retry go (the failed-builds queue). */
  readonly failedBuilds: IQueue;
  readonly sizing?: FunctionSizing;
  /** Cap on concurrent tasks (default 100): the build's parallelism, and its share of the account's. */
  readonly reservedConcurrency?: number;
  readonly retainVersions: number;
  readonly logRetention: RetentionDays;
  readonly bundleAwsSdk: boolean;
}

/**
 * The build-task function of sharded collections (functions/tasks/handler.ts): partition, shard and
 * finalize tasks, invoked asynchronously by the build and by itself (partition → shard dispatch),
 * retried twice by Lambda, then sent to the failed-builds queue; an alarm on tasks that failed a version.
 */
export class BuildTasks extends Construct {
  readonly fn: VicinityFunction;
  readonly failedTasksAlarm: Alarm;

  constructor(scope: Construct, id: string, props: BuildTasksProps) {
    super(scope, id);
    const sizing = props.sizing ?? TASK_SIZING;
    this.fn = new VicinityFunction(this, 'Tasks', {
      entry: 'functions/tasks/handler.ts',
      description: 'Vicinity: build tasks of sharded collections (partition, shard, finalize)',
      sizing,
      layer: props.layer,
      serviceName: SERVICE_NAME.tasks,
      logRetention: props.logRetention,
      bundleAwsSdk: props.bundleAwsSdk,
      reservedConcurrentExecutions: props.reservedConcurrency ?? 100,
      environment: {
        [ENV.bucket]: props.bucket.bucketName,
        [ENV.table]: props.table.tableName,
        [ENV.eventBusName]: props.eventBus.eventBusName,
        [ENV.retainVersions]: String(props.retainVersions),
        [ENV.taskMemoryMb]: String(sizing.memoryMb),
        // Its own name comes from AWS_LAMBDA_FUNCTION_NAME (a Ref to itself here would be circular).
      },
    });
    const fn = this.fn.fn;
    fn.configureAsyncInvoke({
      retryAttempts: 2,
      maxEventAge: Duration.hours(6),
      onFailure: new SqsDestination(props.failedBuilds),
    });
    acknowledge(fn, 'Serverless-LambdaDLQ', NAG_REASON.buildDlq);

    // Reads input parts, staging chunks and the previous snapshot (overlap); writes staging and snapshots;
    // deletes staging (settled) and old snapshots (retention, run by the finaliser).
    allowObjects(fn, props.bucket, [PREFIX.incoming, PREFIX.snapshots, PREFIX.staging], ['GetObject']);
    allowObjects(
      fn,
      props.bucket,
      [PREFIX.snapshots, PREFIX.staging],
      ['PutObject', 'AbortMultipartUpload', 'DeleteObject'],
    );
    allowList(fn, props.bucket, [PREFIX.incoming, PREFIX.snapshots, PREFIX.staging]);
    allowKey(fn, props.key, true);
    allowTable(fn, props.table, ['GetItem', 'PutItem', 'UpdateItem', 'Query']);
    props.eventBus.grantPutEventsTo(fn);
    // Self-invoke (the last partition starts the shard tasks) in a policy of its own: on the role's
    // default policy the function would depend on its own ARN.
    new Policy(this, 'InvokeSelf', {
      roles: [this.fn.role],
      statements: [
        new PolicyStatement({
          effect: Effect.ALLOW,
          actions: ['lambda:InvokeFunction'],
          resources: [fn.functionArn],
        }),
      ],
    });

    // The build: plans, writes the plan under staging/, and invokes this function only.
    props.build.addToRolePolicy(
      new PolicyStatement({
        effect: Effect.ALLOW,
        actions: ['lambda:InvokeFunction'],
        resources: [fn.functionArn],
      }),
    );
    // …and deletes the staging of a version it FAILS (a plan written before the failure).
    allowObjects(props.build, props.bucket, [PREFIX.staging], ['PutObject', 'DeleteObject']);
    allowList(props.build, props.bucket, [PREFIX.staging]);
    props.build.addEnvironment(ENV.taskFunction, fn.functionName);
    props.build.addEnvironment(ENV.taskMemoryMb, String(sizing.memoryMb));

    this.failedTasksAlarm = new Alarm(this, 'FailedTasks', {
      alarmDescription: 'A build task (partition, shard or finalize) failed for good and failed its version',
      metric: appMetric(SERVICE_NAME.tasks, METRIC.buildTaskFailures, 'Sum'),
      threshold: 1,
      evaluationPeriods: 1,
      comparisonOperator: ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      treatMissingData: TreatMissingData.NOT_BREACHING,
    });
  }
}
