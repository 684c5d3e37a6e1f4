import { mkdir, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join, resolve } from 'node:path';
import type { S3Event } from 'aws-lambda';
import { createDynamoClient, createS3Client } from '../functions/adapters/aws-clients';
import { createAdminHandler } from '../functions/admin/handler';
import type { BuildOutcome } from '../functions/builder/build-release';
import { createBuildHandler } from '../functions/builder/handler';
import { type Config, loadConfig } from '../functions/common/config';
import type { HandlerDeps } from '../functions/common/wiring';
import { ENV } from '../functions/contract';
import { createQueryHandler } from '../functions/query/handler';
import { createSweepHandler } from '../functions/sweeper/handler';
import { BUILD_TIMEOUT_MS, fakeContext, type HttpLambda, lambdaRequestListener } from './http-adapter';
import { type AdminAuth, LOCAL_INFO_FILE, type LocalInfo } from './info';
import { forbidden, signatureProblem } from './sigv4-verifier';
import {
  ensureBucket,
  ensureTable,
  LOCAL_CREDENTIALS,
  LOCAL_REGION,
  startDynalite,
  startS3,
} from './standins';

export interface LocalStackOptions {
  /** Where s3rver files, dynalite's LevelDB and the snapshot cache live (VICINITY_HOME). */
  home: string;
  /** HTTP port; 0 picks a free one. */
  port?: number;
  s3Port?: number;
  dynamoPort?: number;
  /** An existing DynamoDB endpoint to use instead of starting dynalite (e.g. DynamoDB Local in tests). */
  dynamodbEndpoint?: string;
  bucket?: string;
  table?: string;
  config?: Partial<Config>;
  /** `iam`: the admin routes refuse requests without a valid SigV4 signature, as in AWS. Default `none`. */
  adminAuth?: AdminAuth;
  /** Serves the explorer page and anything else outside /v1. */
  staticHandler?: Parameters<typeof lambdaRequestListener>[1];
  /** The sweeper's period (ENV.sweepMs, default 60 s; 0: no sweeper). On AWS a 5-minute schedule. */
  sweepMs?: number;
  log?: (line: string) => void;
}

export interface LocalStack {
  info: LocalInfo;
  deps: HandlerDeps;
  query: ReturnType<typeof createQueryHandler>;
  /** Resolves when every build triggered so far has finished. */
  idle(): Promise<void>;
  /** Builds finished so far, in order. */
  outcomes: BuildOutcome[];
  onBuild(cb: (o: BuildOutcome) => void): void;
  stop(): Promise<void>;
}

/** The routes the CDK stack puts behind HttpIamAuthorizer (ADMIN_ROUTES in infra/constructs/query-api.ts). */
const ADMIN_ROUTE = /^\/v1\/spaces\/[^/]+\/(activate|rollback)\/?$/;
/** Erasure and space deletion (admin/erasure.ts): also behind IAM in AWS. */
const ERASURE_ROUTE: Record<string, RegExp> = {
  DELETE: /^\/v1\/spaces\/[^/]+(\/collections\/[^/]+\/items\/[^/]+)?\/?$/,
  POST: /^\/v1\/spaces\/[^/]+\/collections\/[^/]+\/items\/[^/]+\/restore\/?$/,
  GET: /^\/v1\/spaces\/[^/]+\/erasures\/?$/,
};

/**
 * The embedded default: S3 and DynamoDB stand-ins on loopback, the same handlers Lambda runs, an
 * HTTP server in front of them as API Gateway would be, and S3 events driving the build handler.
 */
export async function startLocalStack(opts: LocalStackOptions): Promise<LocalStack> {
  const home = resolve(opts.home);
  const bucket = opts.bucket ?? 'vicinity-local';
  const table = opts.table ?? 'vicinity';
  const log = opts.log ?? (() => undefined);
  await mkdir(join(home, 's3'), { recursive: true });
  await mkdir(join(home, 'dynamodb'), { recursive: true });

  const s3Standin = await startS3({ directory: join(home, 's3'), port: opts.s3Port ?? 0, buckets: [bucket] });
  const dynamo = opts.dynamodbEndpoint
    ? { endpoint: opts.dynamodbEndpoint, stop: async () => undefined }
    : await startDynalite({ path: join(home, 'dynamodb'), port: opts.dynamoPort ?? 0 });

  const env = {
    ...process.env,
    VICINITY_BUCKET: bucket,
    VICINITY_TABLE: table,
    AWS_REGION: LOCAL_REGION,
    AWS_ENDPOINT_URL_S3: s3Standin.endpoint,
    AWS_ENDPOINT_URL_DYNAMODB: dynamo.endpoint,
    VICINITY_CACHE_DIR: join(home, 'cache'),
  };
  const config = loadConfig(env, opts.config ?? {});
  const clientConfig = {
    region: LOCAL_REGION,
    s3Endpoint: s3Standin.endpoint,
    dynamodbEndpoint: dynamo.endpoint,
    credentials: { ...LOCAL_CREDENTIALS },
  };
  const deps: HandlerDeps = {
    config,
    s3: createS3Client(clientConfig),
    dynamo: createDynamoClient(clientConfig),
  };
  await ensureBucket(deps.s3, bucket);
  await ensureTable(deps.dynamo, table);

  const query = createQueryHandler(deps);
  const adminHandler = createAdminHandler(deps) as HttpLambda;
  const admin: HttpLambda =
    opts.adminAuth === 'iam'
      ? async (event, context) => {
          const problem = await signatureProblem(event, {
            credentials: LOCAL_CREDENTIALS,
            region: LOCAL_REGION,
          });
          return problem ? forbidden(problem, event.requestContext.requestId) : adminHandler(event, context);
        }
      : adminHandler;
  const build = createBuildHandler(deps);
  const sweepMs = opts.sweepMs ?? Number(process.env[ENV.sweepMs] || 60_000);
  const sweeper = createSweepHandler(deps);
  let sweeping: Promise<unknown> | undefined;
  const sweepTimer =
    sweepMs > 0
      ? setInterval(() => {
          // One sweep at a time, like the reserved-concurrency-1 function on AWS.
          sweeping ??= sweeper({}, fakeContext('vicinity-sweeper', `sweep-${Date.now()}`))
            .catch((err) => log(`sweep error: ${(err as Error).message}`))
            .finally(() => {
              sweeping = undefined;
            });
        }, sweepMs).unref()
      : undefined;

  // Builds run one at a time, in event order, like a reserved-concurrency-1 build function.
  let chain: Promise<unknown> = Promise.resolve();
  const outcomes: BuildOutcome[] = [];
  const listeners: ((o: BuildOutcome) => void)[] = [];
  s3Standin.onEvent((event) => {
    const records = (event.Records ?? []) as S3Event['Records'];
    if (
      !records.some(
        (r) => r.s3?.object?.key?.endsWith('release.json') && r.eventName?.startsWith('ObjectCreated'),
      )
    ) {
      return;
    }
    chain = chain
      .then(() =>
        build(event as S3Event, fakeContext('vicinity-build', `build-${Date.now()}`, BUILD_TIMEOUT_MS)),
      )
      .then((results) => {
        for (const o of results ?? []) {
          outcomes.push(o);
          log(`build ${o.status} ${o.version}${'reason' in o ? `: ${o.reason}` : ''}`);
          for (const l of listeners) l(o);
        }
      })
      .catch((err) => log(`build error: ${(err as Error).message}`));
  });

  const pick = (method: string, path: string): { name: string; fn: HttpLambda } | undefined => {
    if (method === 'POST' && ADMIN_ROUTE.test(path)) return { name: 'vicinity-admin', fn: admin };
    if (ERASURE_ROUTE[method]?.test(path)) return { name: 'vicinity-admin', fn: admin };
    if (path === '/v1' || path.startsWith('/v1/')) return { name: 'vicinity-query', fn: query as HttpLambda };
    return undefined;
  };
  const server: Server = createServer(lambdaRequestListener(pick, opts.staticHandler));
  server.keepAliveTimeout = 30_000;
  await new Promise<void>((ok, fail) => {
    server.once('error', fail);
    server.listen(opts.port ?? 0, '127.0.0.1', () => ok());
  });
  const port = (server.address() as AddressInfo).port;

  const info: LocalInfo = {
    apiUrl: `http://127.0.0.1:${port}`,
    s3Endpoint: s3Standin.endpoint,
    dynamodbEndpoint: dynamo.endpoint,
    region: LOCAL_REGION,
    bucket,
    table,
    ...LOCAL_CREDENTIALS,
    adminAuth: opts.adminAuth ?? 'none',
  };
  await writeFile(join(home, LOCAL_INFO_FILE), `${JSON.stringify(info, null, 2)}\n`);

  return {
    info,
    deps,
    query,
    outcomes,
    idle: async () => {
      // Events can arrive just after an upload returns; settle twice.
      for (let i = 0; i < 3; i++) {
        await new Promise((r) => setTimeout(r, 150));
        await chain;
      }
    },
    onBuild: (cb) => listeners.push(cb),
    stop: async () => {
      clearInterval(sweepTimer);
      await sweeping;
      await new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      });
      await chain.catch(() => undefined);
      deps.s3.destroy();
      deps.dynamo.destroy();
      await s3Standin.stop();
      await dynamo.stop();
    },
  };
}
