import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { S3Client } from '@aws-sdk/client-s3';
import middy from '@middy/core';
import type { Context } from 'aws-lambda';
import { createDynamoClient, createS3Client, storageUnavailable } from '../adapters/aws-clients';
import { DynamoRegistry } from '../adapters/dynamo-registry';
import { EventBridgePublisher } from '../adapters/event-bus';
import { type Log, noEvents, silentLog } from '../core/ports';
import { type Config, loadConfig } from './config';
import { executionModeWithoutSignal } from './execution';
import { corsMiddleware, type HttpEvent, type HttpResult } from './http';
import { asLog, type Observability, observe } from './observability';
import { problemMiddleware } from './problem';

/**
 * What a handler that needs only the registry is built from (the admin function: no S3 client, so
 * its bundle neither loads nor evaluates @aws-sdk/client-s3 at a cold start).
 */
export interface RegistryDeps {
  config: Config;
  dynamo: DynamoDBClient;
  obs?: Observability;
}

/** What every other handler is built from; tests hand in clients pointed at the stand-ins. */
export interface HandlerDeps extends RegistryDeps {
  s3: S3Client;
}

/** Dependencies from the environment, built once per cold start (by the first invocation). */
export function depsFromEnv(): HandlerDeps {
  const config = loadConfig();
  return { config, s3: createS3Client(config), dynamo: createDynamoClient(config) };
}

/** The same without the S3 client. */
export function registryDepsFromEnv(): RegistryDeps {
  const config = loadConfig();
  return { config, dynamo: createDynamoClient(config) };
}

/** The registry and the lifecycle events (no S3). */
export function registryAdapters(deps: RegistryDeps, log: Log = silentLog) {
  return {
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
  return (
    middy<HttpEvent, HttpResult>({ executionMode: executionModeWithoutSignal })
      .use(observe(obs))
      .use(corsMiddleware(config.corsOrigins))
      .use(problemMiddleware(asLog(obs.logger), storageUnavailable))
      // The route's own promise, not one more async wrapper around it.
      .handler((event: HttpEvent) => route(event))
  );
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
