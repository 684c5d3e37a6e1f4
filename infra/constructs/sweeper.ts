import { Duration } from 'aws-cdk-lib';
import { Alarm, ComparisonOperator, TreatMissingData } from 'aws-cdk-lib/aws-cloudwatch';
import type { Table } from 'aws-cdk-lib/aws-dynamodb';
import { type IEventBus, Rule, Schedule } from 'aws-cdk-lib/aws-events';
import { LambdaFunction } from 'aws-cdk-lib/aws-events-targets';
import type { IKey } from 'aws-cdk-lib/aws-kms';
import type { ILayerVersion } from 'aws-cdk-lib/aws-lambda';
import type { RetentionDays } from 'aws-cdk-lib/aws-logs';
import type { Bucket } from 'aws-cdk-lib/aws-s3';
import { Construct } from 'constructs';
import { ENV, METRIC, SERVICE_NAME } from '../../functions/contract';
import { MAX_PURGE_ATTEMPTS } from '../../functions/core/purge-budget';
import { acknowledge, NAG_REASON } from '../nag';
import { allowKey, allowList, allowObjects, allowTable } from './grants';
import { appMetric } from './monitoring';
import { PREFIX } from './storage';
import { VicinityFunction } from './vicinity-function';

/** How often the sweeper runs on AWS. */
export const SWEEP_PERIOD = Duration.minutes(5);

export interface SweeperProps {
  readonly bucket: Bucket;
  readonly table: Table;
  readonly eventBus: IEventBus;
  readonly layer: ILayerVersion;
  readonly logRetention: RetentionDays;
  readonly bundleAwsSdk: boolean;
  /** ENV.sweepStaleMs; unset: the function's default (1 h). */
  readonly staleMs?: number;
  /** The bucket's customer managed key, if any: purges read and write snapshot objects. */
  readonly key?: IKey;
  /** Memory, MB (default 3008): a purge builds one segment piece per vCPU (≈1 vCPU per 1769 MB). */
  readonly memoryMb?: number;
}

/**
 * An EventBridge schedule (every 5 minutes) → the sweeper function: FAILS builds nobody will finish,
 * finishes retention runs that died, and activations lost after READY, purges erased ids from stored
 * snapshots and finishes space deletions (functions/sweeper/). It may read and conditionally update the
 * table (and batch-delete a deleted space's items), read, write, list and delete snapshot files, read,
 * list and delete uploads, and put events — nothing else.
 */
export class Sweeper extends Construct {
  readonly fn: VicinityFunction;
  readonly rule: Rule;
  /** Erasures whose purge made no progress in MAX_PURGE_ATTEMPTS sweeps in a row (PurgesStalled). */
  readonly purgesStalledAlarm: Alarm;
  /** Sweeps that ended in an error or were killed at the deadline, three in a row. */
  readonly errorsAlarm: Alarm;

  constructor(scope: Construct, id: string, props: SweeperProps) {
    super(scope, id);
    this.fn = new VicinityFunction(this, 'Sweeper', {
      entry: 'functions/sweeper/handler.ts',
      description: 'Vicinity: fails abandoned builds, finishes dead retention runs and lost activations',
      // Purges rebuild a segment's index from its vectors (snapshot/purge.ts) as pieces of at most
      // VICINITY_PURGE_SEGMENT_ITEMS, one worker per vCPU, and start none that cannot end within the
      // 900 s: memory buys vCPUs (3008 MB ≈ 1.7; 10240 MB = 6, docs/deploy.md); /tmp holds one
      // segment's index and its pieces (a 1M × 128 segment ≈ 0.7 GB, twice).
      sizing: { memoryMb: props.memoryMb ?? 3008, ephemeralMb: 4096, timeoutSeconds: 900 },
      layer: props.layer,
      serviceName: SERVICE_NAME.sweeper,
      logRetention: props.logRetention,
      bundleAwsSdk: props.bundleAwsSdk,
      // One sweep at a time: a slow sweep is not overtaken by the next schedule.
      reservedConcurrentExecutions: 1,
      environment: {
        [ENV.bucket]: props.bucket.bucketName,
        [ENV.table]: props.table.tableName,
        [ENV.eventBusName]: props.eventBus.eventBusName,
        ...(props.staleMs !== undefined ? { [ENV.sweepStaleMs]: String(props.staleMs) } : {}),
      },
    });
    const fn = this.fn.fn;
    // listSpaces/listVersions (Query), getPointer/getVersion (GetItem), conditional writes (UpdateItem),
    // the pointer CAS of a finished activation (PutItem).
    // BatchWriteItem: a deleted space's records (sweeper/purge.ts).
    allowTable(fn, props.table, ['GetItem', 'Query', 'UpdateItem', 'PutItem', 'BatchWriteItem']);
    // Snapshots: files of DELETED versions, and purges (read a snapshot, write its rewrite, delete what
    // it replaced). Uploads: read to list the releases that still hold an erased id (an erasure's
    // incomingReleases) and the release.json of an abandoned build (deleteInputsAfterBuild); deleted
    // with a space deleted with includeInputs, or after a build when the space asks.
    allowObjects(
      fn,
      props.bucket,
      [PREFIX.snapshots],
      ['GetObject', 'PutObject', 'AbortMultipartUpload', 'DeleteObject'],
    );
    allowObjects(fn, props.bucket, [PREFIX.incoming], ['GetObject', 'DeleteObject']);
    // Staging: what a settled sharded build left (listed, deleted; never read).
    allowObjects(fn, props.bucket, [PREFIX.staging], ['DeleteObject']);
    allowList(fn, props.bucket, [PREFIX.snapshots, PREFIX.incoming, PREFIX.staging]);
    allowKey(fn, props.key, true);
    props.eventBus.grantPutEventsTo(fn);

    // A missed sweep is made up by the next one five minutes later: nothing to retry or keep.
    fn.configureAsyncInvoke({ retryAttempts: 0, maxEventAge: Duration.minutes(5) });
    acknowledge(fn, 'Serverless-LambdaDLQ', NAG_REASON.sweeperDlq);
    acknowledge(fn, 'Serverless-LambdaAsyncFailureDestination', NAG_REASON.sweeperDlq);
    this.rule = new Rule(this, 'Schedule', {
      description: 'Vicinity: run the sweeper',
      schedule: Schedule.rate(SWEEP_PERIOD),
    });
    this.rule.addTarget(new LambdaFunction(fn, { retryAttempts: 0 }));
    acknowledge(this.rule, 'Serverless-EventBusDLQ', NAG_REASON.sweeperDlq);

    // The sweeper emits the metric every sweep (zeros included): a stalled purge keeps it at ≥ 1.
    this.purgesStalledAlarm = new Alarm(this, 'PurgesStalled', {
      alarmDescription: `Erased ids stay in stored snapshots: ${MAX_PURGE_ATTEMPTS} purge attempts in a row made no progress (GET /v1/spaces/{space}/erasures shows purgeError); raise the sweeper's memory or lower VICINITY_PURGE_SEGMENT_ITEMS`,
      metric: appMetric(SERVICE_NAME.sweeper, METRIC.purgesStalled, 'Sum'),
      threshold: 1,
      evaluationPeriods: 1,
      comparisonOperator: ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      treatMissingData: TreatMissingData.NOT_BREACHING,
    });
    // A sweep killed at its deadline flushes no metric: Lambda's Errors counts it (and a failed space).
    this.errorsAlarm = new Alarm(this, 'Errors', {
      alarmDescription:
        'Three sweeps in a row ended in an error or were killed at their deadline (a space could not be swept, or a purge ran out of time); see the sweeper log',
      metric: fn.metricErrors({ period: SWEEP_PERIOD, statistic: 'Sum' }),
      threshold: 1,
      evaluationPeriods: 3,
      datapointsToAlarm: 3,
      comparisonOperator: ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      treatMissingData: TreatMissingData.NOT_BREACHING,
    });
  }
}
