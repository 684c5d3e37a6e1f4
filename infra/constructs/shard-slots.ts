import { Stack } from 'aws-cdk-lib';
import type { Table } from 'aws-cdk-lib/aws-dynamodb';
import { Effect, PolicyStatement } from 'aws-cdk-lib/aws-iam';
import type { IKey } from 'aws-cdk-lib/aws-kms';
import type { ILayerVersion, Function as LambdaFunction } from 'aws-cdk-lib/aws-lambda';
import type { RetentionDays } from 'aws-cdk-lib/aws-logs';
import type { Bucket } from 'aws-cdk-lib/aws-s3';
import { Construct } from 'constructs';
import { ENV } from '../../functions/contract';
import { slotFunctionName } from '../../functions/query/shards/protocol';
import type { FunctionSizing } from '../config';
import { acknowledge } from '../nag';
import { allowKey, allowList, allowObjects, allowTable } from './grants';
import { PREFIX } from './storage';
import { VicinityFunction } from './vicinity-function';

export const SLOT_SERVICE_NAME = 'vicinity-query-slot';
export const MAX_SHARD_SLOTS = 64;

/** Why a slot function has no dead-letter queue. */
export const SLOT_DLQ_REASON =
  'Invoked only synchronously (RequestResponse) by the query function, which retries once and answers the caller a 503 naming the shard: there is no asynchronous event to dead-letter.';

export interface ShardSlotsProps {
  readonly bucket: Bucket;
  readonly table: Table;
  readonly key?: IKey;
  readonly layer: ILayerVersion;
  /** The query function (router): it may invoke exactly these functions, and is told their names. */
  readonly query: LambdaFunction;
  /** The build function: told the slot count and memory, it refuses releases whose busiest slot would not fit. */
  readonly build?: LambdaFunction;
  /** How many slots (default 8, at most 64). */
  readonly shardSlots: number;
  /** How long the router waits for a slot call (ENV.slotDeadlineMs); default: its timeout less 3 s. */
  readonly deadlineMs?: number;
  /** The query function's timeout (s), from which the default deadline is derived. */
  readonly queryTimeoutSeconds: number;
  /** Each slot's sizing (default: the query function's). */
  readonly sizing: FunctionSizing;
  readonly logRetention: RetentionDays;
  readonly bundleAwsSdk: boolean;
}

/**
 * The query-shard slot functions (functions/slot/handler.ts): slot i serves shard j of every sharded
 * collection for j mod shardSlots = i, invoked synchronously by the query function only. Named
 * `{stack}-slot-{i}` so the router finds them by prefix (64 ARNs would not fit its environment).
 */
export class ShardSlots extends Construct {
  readonly slots: VicinityFunction[] = [];
  readonly prefix: string;

  constructor(scope: Construct, id: string, props: ShardSlotsProps) {
    super(scope, id);
    const n = props.shardSlots;
    if (!Number.isInteger(n) || n < 1 || n > MAX_SHARD_SLOTS)
      throw new Error(`shardSlots must be an integer from 1 to ${MAX_SHARD_SLOTS} (got ${n})`);
    // Lambda names: at most 64 characters, letters, digits, - and _.
    this.prefix = `${Stack.of(this)
      .stackName.replace(/[^A-Za-z0-9_-]/g, '-')
      .slice(0, 50)}-slot-`;
    for (let i = 0; i < n; i++) {
      const slot = new VicinityFunction(this, `Slot${i}`, {
        entry: 'functions/slot/handler.ts',
        description: `Vicinity: query-shard slot ${i} of ${n} (shards j ≡ ${i} mod ${n} of sharded collections)`,
        sizing: props.sizing,
        layer: props.layer,
        serviceName: SLOT_SERVICE_NAME,
        logRetention: props.logRetention,
        bundleAwsSdk: props.bundleAwsSdk,
        functionName: slotFunctionName(this.prefix, i),
        environment: {
          [ENV.bucket]: props.bucket.bucketName,
          [ENV.table]: props.table.tableName,
          [ENV.slot]: String(i),
          [ENV.shardSlots]: String(n),
          [ENV.ephemeralStorageMb]: String(props.sizing.ephemeralMb),
        },
      });
      acknowledge(slot.fn, 'Serverless-LambdaDLQ', SLOT_DLQ_REASON);
      // Reads snapshots and version records only (a version's DELETED status: 404, not a broken snapshot).
      allowObjects(slot.fn, props.bucket, [PREFIX.snapshots], ['GetObject']);
      allowList(slot.fn, props.bucket, [PREFIX.snapshots]);
      allowKey(slot.fn, props.key, false);
      allowTable(slot.fn, props.table, ['GetItem']);
      this.slots.push(slot);
    }
    props.query.addToRolePolicy(
      new PolicyStatement({
        effect: Effect.ALLOW,
        actions: ['lambda:InvokeFunction'],
        resources: this.slots.map((s) => s.fn.functionArn),
      }),
    );
    props.query.addEnvironment(ENV.slotFunctionPrefix, this.prefix);
    props.query.addEnvironment(ENV.shardSlots, String(n));
    props.query.addEnvironment(
      ENV.slotDeadlineMs,
      String(props.deadlineMs ?? Math.max(1000, props.queryTimeoutSeconds * 1000 - 3000)),
    );
    props.build?.addEnvironment(ENV.shardSlots, String(n));
    props.build?.addEnvironment(ENV.slotMemoryMb, String(props.sizing.memoryMb));
  }
}
