// adapters/: one file per outside thing (S3, DynamoDB, EventBridge, hnswlib + its file format, worker threads,
// input readers). Implements core/ports.ts; may import core/ and contract.ts, never a function's folder.
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { S3Client } from '@aws-sdk/client-s3';

export interface ClientConfig {
  region: string;
  s3Endpoint?: string;
  dynamodbEndpoint?: string;
  credentials?: { accessKeyId: string; secretAccessKey: string };
}

/**
 * The one S3 client factory. Checksums only when required: s3rver 3.7.1 silently corrupts streamed
 * uploads sent with the SDK's default checksums (KNOWN-TRAPS), and S3 itself still verifies MD5/ETag.
 */
export function createS3Client(c: ClientConfig): S3Client {
  return new S3Client({
    region: c.region,
    ...(c.s3Endpoint ? { endpoint: c.s3Endpoint, forcePathStyle: true } : {}),
    ...(c.credentials ? { credentials: c.credentials } : {}),
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    maxAttempts: 4,
  });
}

export function createDynamoClient(c: ClientConfig): DynamoDBClient {
  return new DynamoDBClient({
    region: c.region,
    ...(c.dynamodbEndpoint ? { endpoint: c.dynamodbEndpoint } : {}),
    ...(c.credentials ? { credentials: c.credentials } : {}),
    maxAttempts: 4,
  });
}
