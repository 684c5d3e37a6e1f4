import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { S3Client } from '@aws-sdk/client-s3';
import middy from '@middy/core';
import type { Context } from 'aws-lambda';
import { createDynamoClient, createS3Client } from '../adapters/aws-clients';
import { DynamoRegistry } from '../adapters/dynamo-registry';
import { EventBridgePublisher } from '../adapters/event-bus';
import { S3Store } from '../adapters/s3-store';
import { type Log, noEvents, silentLog } from '../core/ports';
import { type Config, loadConfig } from './config';
import { corsMiddleware, type HttpEvent, type HttpResult } from './http';
import { asLog, type Observability, observe } from './observability';
import { problemMiddleware } from './problem';

/** What every handler is built from; tests hand in clients pointed at the stand-ins. */
export interface HandlerDeps {
  config: Config;
  s3: S3Client;
  dynamo: DynamoDBClient;
  obs?: Observability;
}

/** Dependencies from the environment, built once per cold start. */
export function depsFromEnv(): HandlerDeps {
  const config = loadConfig();
  return { config, s3: createS3Client(config), dynamo: createDynamoClient(config) };
}

export function adapters(deps: HandlerDeps, log: Log = silentLog) {
  return {
    store: new S3Store(deps.s3, deps.config.bucket),
    registry: new DynamoRegistry(deps.dynamo, deps.config.table),
    // No bus configured (the local stack) means no lifecycle events. The client is loaded on the first event.
    events: deps.config.eventBusName
      ? new EventBridgePublisher(deps.config.region, deps.config.eventBusName, log)
      : noEvents,
  };
}

/** Middy wiring shared by the HTTP handlers: context in logs, EMF metrics, access log, CORS, problem+json. */
export function httpHandler(
  obs: Observability,
  config: Config,
  route: (e: HttpEvent) => Promise<HttpResult>,
) {
  return middy<HttpEvent, HttpResult>()
    .use(observe(obs))
    .use(corsMiddleware(config.corsOrigins))
    .use(problemMiddleware(asLog(obs.logger)))
    .handler(async (event: HttpEvent) => route(event));
}

export type LambdaFn<E, R> = (event: E, context: Context) => Promise<R>;

/** Defers building dependencies to the first invocation, then keeps them for the instance's life. */
export function lazyHandler<E, R>(make: () => LambdaFn<E, R>): LambdaFn<E, R> {
  let fn: LambdaFn<E, R> | undefined;
  return (event, context) => {
    fn ??= make();
    return fn(event, context);
  };
}
