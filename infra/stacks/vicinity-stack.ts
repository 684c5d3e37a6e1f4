import { CfnOutput, Stack, type StackProps } from 'aws-cdk-lib';
import { SnsAction } from 'aws-cdk-lib/aws-cloudwatch-actions';
import { RetentionDays } from 'aws-cdk-lib/aws-logs';
import type { Construct } from 'constructs';
import { DEFAULT_CONFIG, type VicinityConfig, validateConfig } from '../config';
import { BuildPipeline } from '../constructs/build-pipeline';
import { BuildTasks } from '../constructs/build-tasks';
import { resolveEventBus, WarmUp } from '../constructs/events';
import { HnswlibLayer } from '../constructs/hnswlib-layer';
import { Monitoring } from '../constructs/monitoring';
import { QueryApi } from '../constructs/query-api';
import { ShardSlots } from '../constructs/shard-slots';
import { Storage } from '../constructs/storage';
import { Sweeper } from '../constructs/sweeper';
import { acknowledge, NAG_REASON } from '../nag';

/** Construct ID of CDK's singleton custom resource that sets S3 bucket notifications. */
export const BUCKET_NOTIFICATIONS_HANDLER_ID = 'BucketNotificationsHandler050a0587b7544547bf325f094a3db834';

export interface VicinityStackProps extends StackProps {
  /** Defaults to DEFAULT_CONFIG; infra/app.ts reads it from CDK context. */
  readonly config?: VicinityConfig;
}

/** Log retention in days → the nearest allowed CloudWatch Logs retention at or above it. */
export function retentionFor(days: number): RetentionDays {
  const allowed = Object.values(RetentionDays)
    .filter((v): v is RetentionDays => typeof v === 'number' && v > 0)
    .sort((a, b) => a - b);
  return allowed.find((d) => d >= days) ?? RetentionDays.TEN_YEARS;
}

/** Everything `npm start` runs locally, on AWS: storage, build pipeline, query API, monitoring. */
export class VicinityStack extends Stack {
  readonly storage: Storage;
  readonly buildPipeline: BuildPipeline;
  readonly buildTasks: BuildTasks;
  readonly shardSlots: ShardSlots;
  readonly queryApi: QueryApi;
  readonly monitoring: Monitoring;
  readonly sweeper: Sweeper;
  readonly warmUp?: WarmUp;

  constructor(scope: Construct, id: string, props: VicinityStackProps = {}) {
    super(scope, id, props);
    const config = props.config ?? DEFAULT_CONFIG;
    validateConfig(config);
    const logRetention = retentionFor(config.logRetentionDays);

    this.storage = new Storage(this, 'Storage', {
      bucketName: config.bucketName,
      encryption: config.encryption,
      incomingExpirationDays: config.incomingExpirationDays,
      retainData: config.retainData,
      tableDeletionProtection: config.tableDeletionProtection,
      accessLogExpirationDays: config.logRetentionDays,
    });
    const { layer } = new HnswlibLayer(this, 'Hnswlib', { layerPath: config.layerPath });
    const eventBus = resolveEventBus(this, config.eventBusName);

    this.buildPipeline = new BuildPipeline(this, 'BuildPipeline', {
      bucket: this.storage.bucket,
      table: this.storage.table,
      key: this.storage.key,
      eventBus,
      layer,
      sizing: config.build,
      queryMemoryMb: config.query.memoryMb,
      reservedConcurrency: config.buildReservedConcurrency,
      retryAttempts: config.buildRetryAttempts,
      retainVersions: config.retainVersions,
      logRetention,
      bundleAwsSdk: config.bundleAwsSdk,
    });

    this.sweeper = new Sweeper(this, 'Sweeper', {
      bucket: this.storage.bucket,
      table: this.storage.table,
      key: this.storage.key,
      eventBus,
      layer,
      logRetention,
      bundleAwsSdk: config.bundleAwsSdk,
      memoryMb: config.sweeperMemoryMb,
    });

    this.buildTasks = new BuildTasks(this, 'BuildTasks', {
      bucket: this.storage.bucket,
      table: this.storage.table,
      key: this.storage.key,
      eventBus,
      layer,
      build: this.buildPipeline.fn.fn,
      failedBuilds: this.buildPipeline.failedBuilds,
      retainVersions: config.retainVersions,
      logRetention,
      bundleAwsSdk: config.bundleAwsSdk,
    });

    this.queryApi = new QueryApi(this, 'QueryApi', {
      bucket: this.storage.bucket,
      table: this.storage.table,
      key: this.storage.key,
      eventBus,
      layer,
      querySizing: config.query,
      adminSizing: config.admin,
      pointerTtlMs: config.pointerTtlMs,
      switchGraceMs: config.switchGraceMs,
      readAuth: config.readAuth,
      publicMetadataFields: config.publicMetadataFields,
      jwtIssuer: config.jwtIssuer,
      jwtAudience: config.jwtAudience,
      throttleRateLimit: config.throttleRateLimit,
      throttleBurstLimit: config.throttleBurstLimit,
      corsOrigins: config.corsOrigins,
      logRetention,
      bundleAwsSdk: config.bundleAwsSdk,
    });

    this.shardSlots = new ShardSlots(this, 'ShardSlots', {
      bucket: this.storage.bucket,
      table: this.storage.table,
      key: this.storage.key,
      layer,
      query: this.queryApi.query.fn,
      build: this.buildPipeline.fn.fn,
      shardSlots: config.shardSlots,
      queryTimeoutSeconds: config.query.timeoutSeconds,
      ...(config.slotDeadlineMs !== undefined ? { deadlineMs: config.slotDeadlineMs } : {}),
      sizing: config.query,
      logRetention,
      bundleAwsSdk: config.bundleAwsSdk,
    });

    const notificationsHandler = this.node.tryFindChild(BUCKET_NOTIFICATIONS_HANDLER_ID);
    if (!notificationsHandler) throw new Error(`no ${BUCKET_NOTIFICATIONS_HANDLER_ID} in the stack`);
    acknowledge(
      notificationsHandler,
      'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]',
      NAG_REASON.notificationsHandler,
    );

    if (config.warmUpInvocations > 0) {
      this.warmUp = new WarmUp(this, 'WarmUp', {
        eventBus,
        queryFunction: this.queryApi.query.fn,
        invocations: config.warmUpInvocations,
      });
    }

    this.monitoring = new Monitoring(this, 'Monitoring', {
      api: this.queryApi.api,
      queryFunction: this.queryApi.query.fn,
      adminFunction: this.queryApi.admin.fn,
      buildFunction: this.buildPipeline.fn.fn,
      failedBuilds: this.buildPipeline.failedBuilds,
      queryP99AlarmMs: config.queryP99AlarmMs,
      alarmEmail: config.alarmEmail,
    });

    this.buildTasks.failedTasksAlarm.addAlarmAction(new SnsAction(this.monitoring.topic));
    this.sweeper.purgesStalledAlarm.addAlarmAction(new SnsAction(this.monitoring.topic));
    this.sweeper.errorsAlarm.addAlarmAction(new SnsAction(this.monitoring.topic));

    new CfnOutput(this, 'ApiUrl', {
      value: this.queryApi.url,
      description: 'Base URL; routes start with /v1',
    });
    new CfnOutput(this, 'BucketName', {
      value: this.storage.bucket.bucketName,
      description: 'Publish releases to s3://BUCKET/incoming/SPACE/RELEASE/ (release.json last)',
    });
    new CfnOutput(this, 'TableName', { value: this.storage.table.tableName });
    new CfnOutput(this, 'FailedBuildsQueueUrl', { value: this.buildPipeline.failedBuilds.queueUrl });
    new CfnOutput(this, 'BuildFunctionName', { value: this.buildPipeline.fn.fn.functionName });
    new CfnOutput(this, 'BuildTasksFunctionName', { value: this.buildTasks.fn.fn.functionName });
    new CfnOutput(this, 'QueryFunctionName', { value: this.queryApi.query.fn.functionName });
    new CfnOutput(this, 'AdminInvokePolicyArn', {
      value: this.queryApi.adminInvokePolicy.managedPolicyArn,
      description: 'Attach to the IAM users/roles that may activate and roll back',
    });
    if (this.queryApi.readInvokePolicy) {
      new CfnOutput(this, 'ReadInvokePolicyArn', {
        value: this.queryApi.readInvokePolicy.managedPolicyArn,
        description: 'Attach to the IAM users/roles of services that may call the read routes (SigV4)',
      });
    }
    new CfnOutput(this, 'AlarmTopicArn', { value: this.monitoring.topic.topicArn });
    new CfnOutput(this, 'DashboardName', { value: this.monitoring.dashboard.dashboardName });
  }
}
