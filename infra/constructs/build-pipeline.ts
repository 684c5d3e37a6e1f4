import { Duration } from 'aws-cdk-lib';
import type { Table } from 'aws-cdk-lib/aws-dynamodb';
import type { IEventBus } from 'aws-cdk-lib/aws-events';
import type { IKey } from 'aws-cdk-lib/aws-kms';
import type { ILayerVersion } from 'aws-cdk-lib/aws-lambda';
import { SqsDestination } from 'aws-cdk-lib/aws-lambda-destinations';
import type { RetentionDays } from 'aws-cdk-lib/aws-logs';
import { type Bucket, EventType } from 'aws-cdk-lib/aws-s3';
import { LambdaDestination } from 'aws-cdk-lib/aws-s3-notifications';
import { Queue, QueueEncryption } from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { ENV, SERVICE_NAME } from '../../functions/contract';
import type { FunctionSizing } from '../config';
import { acknowledge, NAG_REASON } from '../nag';
import { allowKey, allowList, allowObjects, allowTable } from './grants';
import { PREFIX } from './storage';
import { VicinityFunction } from './vicinity-function';

/** The object whose creation starts a build (CONTRACT.md: uploaded last). */
export const RELEASE_MANIFEST = 'release.json';

export interface BuildPipelineProps {
  readonly bucket: Bucket;
  readonly table: Table;
  readonly key?: IKey;
  readonly eventBus: IEventBus;
  readonly layer: ILayerVersion;
  readonly sizing: FunctionSizing;
  /** The query function's memory (MB): the build shards, or refuses, a collection it could not load whole. */
  readonly queryMemoryMb: number;
  readonly reservedConcurrency?: number;
  readonly retryAttempts: number;
  readonly retainVersions: number;
  readonly logRetention: RetentionDays;
  readonly bundleAwsSdk: boolean;
}

/**
 * release.json created under incoming/ → S3 notification → build function (asynchronous invoke).
 * An invocation that still fails after Lambda's retries lands, with its event, in the failed-builds
 * queue (an on-failure destination), so no release event is silently lost.
 */
export class BuildPipeline extends Construct {
  readonly fn: VicinityFunction;
  readonly failedBuilds: Queue;

  constructor(scope: Construct, id: string, props: BuildPipelineProps) {
    super(scope, id);

    this.failedBuilds = new Queue(this, 'FailedBuilds', {
      retentionPeriod: Duration.days(14),
      encryption: QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
    });
    acknowledge(this.failedBuilds, 'AwsSolutions-SQS3', NAG_REASON.failedBuildsRedrive);
    acknowledge(this.failedBuilds, 'Serverless-SQSRedrivePolicy', NAG_REASON.failedBuildsRedrive);

    this.fn = new VicinityFunction(this, 'Build', {
      entry: 'functions/builder/handler.ts',
      description: 'Vicinity: builds a release (incoming/…/release.json) into an HNSW snapshot version',
      sizing: props.sizing,
      layer: props.layer,
      serviceName: SERVICE_NAME.build,
      logRetention: props.logRetention,
      bundleAwsSdk: props.bundleAwsSdk,
      reservedConcurrentExecutions: props.reservedConcurrency,
      environment: {
        [ENV.bucket]: props.bucket.bucketName,
        [ENV.table]: props.table.tableName,
        [ENV.eventBusName]: props.eventBus.eventBusName,
        [ENV.retainVersions]: String(props.retainVersions),
        [ENV.queryMemoryMb]: String(props.queryMemoryMb),
      },
    });
    const fn = this.fn.fn;

    fn.configureAsyncInvoke({
      retryAttempts: props.retryAttempts,
      maxEventAge: Duration.hours(6),
      onFailure: new SqsDestination(this.failedBuilds),
    });
    acknowledge(fn, 'Serverless-LambdaDLQ', NAG_REASON.buildDlq);

    // Reads the release, reads the previous snapshot (overlap check), writes and (retention) deletes snapshots.
    allowObjects(fn, props.bucket, [PREFIX.incoming, PREFIX.snapshots], ['GetObject']);
    allowObjects(fn, props.bucket, [PREFIX.snapshots], ['PutObject', 'AbortMultipartUpload', 'DeleteObject']);
    allowList(fn, props.bucket, [PREFIX.incoming, PREFIX.snapshots]);
    allowKey(fn, props.key, true);
    allowTable(fn, props.table, ['GetItem', 'PutItem', 'UpdateItem', 'Query']);
    props.eventBus.grantPutEventsTo(fn);

    props.bucket.addEventNotification(EventType.OBJECT_CREATED, new LambdaDestination(fn), {
      prefix: PREFIX.incoming,
      suffix: RELEASE_MANIFEST,
    });
  }
}
