/** SDK clients pointed at the run's stand-ins (started in global-setup.ts). */
import { randomBytes } from 'node:crypto';
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { S3Client } from '@aws-sdk/client-s3';
import { inject } from 'vitest';
import { createDynamoClient, createS3Client } from '../../functions/adapters/aws-clients';
import { ensureTable, LOCAL_CREDENTIALS, LOCAL_REGION } from '../../local/standins/common';

export type DynamoBackend = 'dynalite' | 'dynamodb-local';

export function testS3(): S3Client {
  return createS3Client({
    region: LOCAL_REGION,
    s3Endpoint: inject('s3Endpoint'),
    credentials: LOCAL_CREDENTIALS,
  });
}

export function testDynamo(backend: DynamoBackend): DynamoDBClient {
  const endpoint = backend === 'dynalite' ? inject('dynaliteEndpoint') : inject('dynamoLocalEndpoint');
  return createDynamoClient({
    region: LOCAL_REGION,
    dynamodbEndpoint: endpoint,
    credentials: LOCAL_CREDENTIALS,
  });
}

/**
 * A new single table with a unique name, so tests (and their parallel files) never share state.
 * `prefix` may use letters, digits, `_`, `-` and `.` (DynamoDB's table-name alphabet).
 */
export async function freshTable(ddb: DynamoDBClient, prefix: string): Promise<string> {
  const name = `${prefix}-${Date.now().toString(36)}-${randomBytes(4).toString('hex')}`;
  await ensureTable(ddb, name);
  return name;
}
