import { Duration } from 'aws-cdk-lib';
import type { Table } from 'aws-cdk-lib/aws-dynamodb';
import { type IEventBus, Rule, Schedule } from 'aws-cdk-lib/aws-events';
import { LambdaFunction } from 'aws-cdk-lib/aws-events-targets';
import type { IKey } from 'aws-cdk-lib/aws-kms';
import type { ILayerVersion } from 'aws-cdk-lib/aws-lambda';
import type { RetentionDays } from 'aws-cdk-lib/aws-logs';
import type { Bucket } from 'aws-cdk-lib/aws-s3';
import { Construct } from 'constructs';
import { ENV, SERVICE_NAME } from '../../functions/contract';
import { acknowledge, NAG_REASON } from '../nag';
import { allowKey, allowList, allowObjects, allowTable } from './grants';
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

  constructor(scope: Construct, id: string, props: SweeperProps) {
    super(scope, id);
    this.fn = new VicinityFunction(this, 'Sweeper', {
      entry: 'functions/sweeper/handler.ts',
      description: 'Vicinity: fails abandoned builds, finishes dead retention runs and lost activations',
      // Purges rebuild a segment's index from its vectors (sweeper/purge.ts): memory and /tmp for one
      // segment (≤ 250k vectors) at a time, and up to the Lambda limit to finish it.
      sizing: { memoryMb: 2048, ephemeralMb: 2048, timeoutSeconds: 900 },
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
  }
}
