// adapters/: one file per outside thing (S3, DynamoDB, EventBridge, hnswlib + its file format, worker threads,
// input readers). Implements core/ports.ts; may import core/ and contract.ts, never a function's folder.
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { S3Client } from '@aws-sdk/client-s3';
import { StorageUnavailableError } from '../core/errors';

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

/** What the SDK raises when S3 or DynamoDB sheds load (its own throttling list, as the retry strategy reads it). */
const THROTTLING = new Set([
  'ThrottlingException',
  'Throttling',
  'ThrottledException',
  'ProvisionedThroughputExceededException',
  'RequestLimitExceeded',
  'RequestThrottled',
  'RequestThrottledException',
  'TooManyRequestsException',
  'SlowDown',
  'BandwidthLimitExceeded',
]);
/** Node's codes for a connection the client could not make or keep (not the handlers' own deadline). */
const NETWORK = new Set(['ECONNRESET', 'ECONNREFUSED', 'EPIPE', 'ETIMEDOUT']);

/**
 * An SDK error that outlived the client's retries because S3 or DynamoDB was throttling, failing (5xx)
 * or unreachable, as the domain's 503 (`StorageUnavailableError`, the SDK error its cause); anything
 * else unchanged. The HTTP handlers' error middleware applies it, so a client is told to retry instead
 * of being answered 500 for a fault that passes.
 */
export function storageUnavailable(err: unknown): unknown {
  if (!(err instanceof Error)) return err;
  const e = err as Error & { code?: string; $metadata?: { httpStatusCode?: number } };
  const status = e.$metadata?.httpStatusCode ?? 0;
  const transient = THROTTLING.has(e.name) || (status >= 500 && status <= 504) || NETWORK.has(e.code ?? '');
  if (!transient) return err;
  return new StorageUnavailableError(
    'Storage (S3 or DynamoDB) is throttling or failing past the retries; retry after Retry-After seconds',
    { cause: err },
  );
}
