/**
 * S3 or DynamoDB throttling past the SDK's retries is a 503 with Retry-After at the HTTP edge (the
 * client should come back), not a 500 (the service broke); every other error keeps its status.
 */
import {
  ConditionalCheckFailedException,
  InternalServerError,
  ProvisionedThroughputExceededException,
  ThrottlingException,
} from '@aws-sdk/client-dynamodb';
import { S3ServiceException } from '@aws-sdk/client-s3';
import type { MiddlewareObj } from '@middy/core';
import { describe, expect, it } from 'vitest';
import { storageUnavailable } from '../../functions/adapters/aws-clients';
import type { HttpEvent, HttpResult } from '../../functions/common/http';
import { problemMiddleware } from '../../functions/common/problem';
import { StorageUnavailableError } from '../../functions/core/errors';
import { silentLog } from '../../functions/core/ports';

const meta = (httpStatusCode: number) => ({ $metadata: { httpStatusCode } });

describe('storage throttling at the HTTP edge', () => {
  it.each([
    ['DynamoDB ThrottlingException', new ThrottlingException({ message: 'Rate exceeded', ...meta(400) })],
    [
      'DynamoDB ProvisionedThroughputExceededException',
      new ProvisionedThroughputExceededException({ message: 'Throughput exceeded', ...meta(400) }),
    ],
    ['DynamoDB InternalServerError', new InternalServerError({ message: 'Internal', ...meta(500) })],
    [
      'S3 SlowDown',
      new S3ServiceException({
        name: 'SlowDown',
        $fault: 'server',
        message: 'Reduce your rate',
        ...meta(503),
      }),
    ],
    ['a connection reset', Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' })],
  ])('makes %s a StorageUnavailableError with the SDK error as its cause', (_, err) => {
    const out = storageUnavailable(err);
    expect(out).toBeInstanceOf(StorageUnavailableError);
    expect((out as StorageUnavailableError).cause).toBe(err);
    expect((out as StorageUnavailableError).extras.retryAfter).toBe(1);
  });

  it('leaves a conditional check failure, a bug and a domain error as they are', () => {
    const errors = [
      new ConditionalCheckFailedException({ message: 'The conditional request failed', ...meta(400) }),
      new TypeError('x is undefined'),
      new StorageUnavailableError('already one'),
      'not even an Error',
    ];
    for (const err of errors) expect(storageUnavailable(err)).toBe(err);
  });

  it('answers 503 with Retry-After and exposes no SDK message', async () => {
    type OnError = NonNullable<MiddlewareObj<HttpEvent, HttpResult>['onError']>;
    const edge = problemMiddleware(silentLog, storageUnavailable);
    const request = {
      error: new ThrottlingException({
        message: 'Rate of requests exceeds the allowed throughput',
        ...meta(400),
      }),
      event: { requestContext: { requestId: 'req-1' } },
      response: undefined as HttpResult | undefined,
    };
    await (edge.onError as OnError)(request as unknown as Parameters<OnError>[0]);
    const res = request.response as HttpResult & { body: string };
    expect(res.statusCode).toBe(503);
    expect(res.headers?.['retry-after']).toBe('1');
    const body = JSON.parse(res.body) as Record<string, unknown>;
    expect(body.type).toBe('https://vicinity.dev/problems/storage-unavailable');
    expect(res.body).not.toContain('allowed throughput');
  });

  it('without the translation the same error is a 500', async () => {
    type OnError = NonNullable<MiddlewareObj<HttpEvent, HttpResult>['onError']>;
    const edge = problemMiddleware(silentLog);
    const request = {
      error: new ThrottlingException({ message: 'Rate exceeded', ...meta(400) }),
      event: { requestContext: { requestId: 'req-1' } },
      response: undefined as HttpResult | undefined,
    };
    await (edge.onError as OnError)(request as unknown as Parameters<OnError>[0]);
    expect((request.response as HttpResult).statusCode).toBe(500);
  });
});
