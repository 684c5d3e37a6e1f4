/** What every stand-in shares: the loopback host, the credentials and region clients use, and setup helpers. */
import { setTimeout as sleep } from 'node:timers/promises';
import { CreateTableCommand, DescribeTableCommand, type DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { CreateBucketCommand, type S3Client } from '@aws-sdk/client-s3';

/** s3rver only accepts this pair unless told otherwise; dynalite and DynamoDB Local accept anything. */
export const LOCAL_CREDENTIALS = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' } as const;
export const LOCAL_REGION = 'us-east-1';

export const HOST = '127.0.0.1';

export interface DynamoStandIn {
  endpoint: string;
  port: number;
  stop(): Promise<void>;
}

/** Creates the bucket if it is missing. s3rver answers BucketAlreadyExists for a bucket it already has. */
export async function ensureBucket(s3: S3Client, bucket: string): Promise<void> {
  try {
    await s3.send(new CreateBucketCommand({ Bucket: bucket }));
  } catch (err) {
    if (errorName(err) === 'BucketAlreadyOwnedByYou' || errorName(err) === 'BucketAlreadyExists') return;
    throw err;
  }
}

/** Creates the single table (pk/sk strings, on demand) if missing, and waits until it is ACTIVE. */
export async function ensureTable(ddb: DynamoDBClient, table: string): Promise<void> {
  try {
    await ddb.send(
      new CreateTableCommand({
        TableName: table,
        AttributeDefinitions: [
          { AttributeName: 'pk', AttributeType: 'S' },
          { AttributeName: 'sk', AttributeType: 'S' },
        ],
        KeySchema: [
          { AttributeName: 'pk', KeyType: 'HASH' },
          { AttributeName: 'sk', KeyType: 'RANGE' },
        ],
        BillingMode: 'PAY_PER_REQUEST',
      }),
    );
  } catch (err) {
    if (errorName(err) !== 'ResourceInUseException') throw err;
  }
  // Own loop rather than the SDK waiter, whose 20 s minimum delay would dominate local runs.
  const deadline = Date.now() + 120_000;
  for (let delay = 50; ; delay = Math.min(delay * 2, 2_000)) {
    try {
      const { Table } = await ddb.send(new DescribeTableCommand({ TableName: table }));
      if (Table?.TableStatus === 'ACTIVE') return;
    } catch (err) {
      // Just-created tables can be briefly invisible on AWS.
      if (errorName(err) !== 'ResourceNotFoundException') throw err;
    }
    if (Date.now() > deadline) throw new Error(`table ${table} did not become ACTIVE`);
    await sleep(delay);
  }
}

function errorName(err: unknown): string | undefined {
  return err instanceof Error ? err.name : undefined;
}
