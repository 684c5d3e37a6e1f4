import { randomUUID } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join, resolve } from 'node:path';
import type { S3Event } from 'aws-lambda';
import { createDynamoClient, createS3Client } from '../functions/adapters/aws-clients';
import { createAdminHandler } from '../functions/admin/handler';
import type { BuildDeps, BuildOutcome } from '../functions/builder/build-release';
import { BUILD_ABORT_MARGIN_MS, createBuildHandler } from '../functions/builder/handler';
import { type Config, loadConfig } from '../functions/common/config';
import type { HandlerDeps } from '../functions/common/wiring';
import { ENV } from '../functions/contract';
import { createQueryHandler } from '../functions/query/handler';
import { createSweepHandler } from '../functions/sweeper/handler';
import { DEFAULT_CONFIG } from '../infra/config';
import { type LocalTasksOptions, startLocalTasks } from './build-tasks';
import { answerClientErrors, MAX_HEADER_BYTES } from './client-errors';
import { EventQueue, type EventQueueOptions, releaseRecord, type SettledOptions } from './event-queue';
import { BUILD_TIMEOUT_MS, fakeContext, type HttpLambda, lambdaRequestListener } from './http-adapter';
import { type AdminAuth, LOCAL_INFO_FILE, type LocalInfo } from './info';
import { type LocalSlotsOptions, localSlots } from './shard-slots';
import { forbidden, signatureProblem } from './sigv4-verifier';
import {
  ensureBucket,
  ensureTable,
  LOCAL_CREDENTIALS,
  LOCAL_REGION,
  startDynalite,
  startS3,
} from './standins';
import type { LambdaStandIn } from './standins/lambda';
import { UploadTracker } from './upload-tracker';

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
  /**
   * `iam`: the read routes too (a default AWS deploy's `readAuth: iam`), CORS preflights excepted.
   * Default `none`: the local explorer and curl work unsigned.
   */
  readAuth?: AdminAuth;
  /** Serves the explorer page and anything else outside /v1. */
  staticHandler?: Parameters<typeof lambdaRequestListener>[1];
  /** The sweeper's period (ENV.sweepMs, default 60 s; 0: no sweeper). On AWS a 5-minute schedule. */
  sweepMs?: number;
  log?: (line: string) => void;
  /** Retries of the persisted event queue (defaults: 3 attempts, 60 s then 120 s apart, as Lambda's async queue). */
  delivery?: Pick<EventQueueOptions, 'maxAttempts' | 'retryDelaysMs'>;
  /** Test hooks handed to the build handler (e.g. to crash at a step). */
  buildHooks?: Partial<Pick<BuildDeps, 'beforeReady' | 'beforeActivate'>>;
  /** The build function's timeout (its Lambda context deadline); default 15 minutes. */
  buildTimeoutMs?: number;
  /** Runs a build instead of the in-process handler (tests: a build in a child process that may die). */
  deliver?: (event: S3Event, attempt: number) => Promise<BuildOutcome[]>;
  /**
   * Puts something between the handlers and a stand-in (tests: a fault proxy); returns the endpoint
   * the query, admin and build functions use. Bucket and table setup still go straight to the stand-in.
   */
  interpose?: (service: 's3' | 'dynamodb', endpoint: string) => Promise<string>;
  /** The Lambda Invoke stand-in running the build-task function (sharded collections). */
  tasks?: LocalTasksOptions;
  /** Shard-slot functions on the same stand-in; the query function then scatter-gathers sharded collections. */
  slots?: LocalSlotsOptions;
}

export interface LocalStack {
  info: LocalInfo;
  deps: HandlerDeps;
  query: ReturnType<typeof createQueryHandler>;
  /** The persisted S3 event queue (VICINITY_HOME/events). */
  events: EventQueue;
  /**
   * Resolves with the build outcomes of `key`'s release event once it was delivered and handled
   * (`etag`: the ETag PutObject returned; `after`: `events.cursor()` taken before the upload); rejects
   * with the build's error once its attempts are exhausted, or with a timeout error naming the key.
   */
  settled(key: string, opts?: SettledOptions): Promise<BuildOutcome[]>;
  /**
   * Resolves when every release.json uploaded through `deps.s3` has had its S3 event, and no event is
   * pending or building. Real state, no fixed waits; rejects after `timeoutMs` naming what is missing.
   */
  idle(timeoutMs?: number): Promise<void>;
  /** Builds finished so far, in order. */
  outcomes: BuildOutcome[];
  onBuild(cb: (o: BuildOutcome) => void): void;
  /** The Lambda Invoke stand-in (AWS_ENDPOINT_URL_LAMBDA) running the build tasks. */
  lambda: LambdaStandIn;
  stop(): Promise<void>;
}

/** The routes the CDK stack puts behind HttpIamAuthorizer (ADMIN_ROUTES in infra/constructs/query-api.ts). */
const ADMIN_ROUTE = /^\/v1\/spaces\/[^/]+\/(activate|rollback)\/?$/;
/** Erasure and space deletion (admin/erasure.ts): also behind IAM in AWS. */
const ERASURE_ROUTE: Record<string, RegExp> = {
  DELETE: /^\/v1\/spaces\/[^/]+(\/collections\/[^/]+\/items\/[^/]+)?\/?$/,
  POST: /^\/v1\/spaces\/[^/]+\/collections\/[^/]+\/items\/[^/]+\/restore\/?$/,
  GET: /^\/v1\/spaces\/[^/]+\/erasures\/?$/,
  /** A space's settings (admin/settings.ts). */
  PUT: /^\/v1\/spaces\/[^/]+\/settings\/?$/,
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

  // The handlers reach the stand-ins through `interpose` when given (a fault proxy in tests).
  const s3Endpoint = opts.interpose ? await opts.interpose('s3', s3Standin.endpoint) : s3Standin.endpoint;
  const dynamodbEndpoint = opts.interpose
    ? await opts.interpose('dynamodb', dynamo.endpoint)
    : dynamo.endpoint;
  const slots = localSlots(opts.slots);
  const tasks = await startLocalTasks(opts.tasks ?? {}, log, slots.defs);
  const env = {
    // The query function's /tmp as a default deploy sizes it (infra/config.ts; Lambda's own default is
    // 512 MB): the disk budget follows, so what fits deployed fits here. The environment may say otherwise.
    [ENV.ephemeralStorageMb]: String(DEFAULT_CONFIG.query.ephemeralMb),
    // The build learns the query function's memory as deployed: it shards or refuses what it could not load.
    [ENV.queryMemoryMb]: String(DEFAULT_CONFIG.query.memoryMb),
    ...process.env,
    AWS_ENDPOINT_URL_LAMBDA: tasks.lambda.endpoint,
    VICINITY_BUCKET: bucket,
    VICINITY_TABLE: table,
    AWS_REGION: LOCAL_REGION,
    AWS_ENDPOINT_URL_S3: s3Endpoint,
    AWS_ENDPOINT_URL_DYNAMODB: dynamodbEndpoint,
    VICINITY_CACHE_DIR: join(home, 'cache'),
    ...slots.routerEnv,
  };
  const config = loadConfig(env, opts.config ?? {});
  tasks.configure(config, env);
  slots.configure(config, env, tasks.lambda.endpoint);
  const credentials = { ...LOCAL_CREDENTIALS };
  const deps: HandlerDeps = {
    config,
    s3: createS3Client({ region: LOCAL_REGION, s3Endpoint, dynamodbEndpoint, credentials }),
    dynamo: createDynamoClient({ region: LOCAL_REGION, s3Endpoint, dynamodbEndpoint, credentials }),
  };
  const setup = {
    region: LOCAL_REGION,
    s3Endpoint: s3Standin.endpoint,
    dynamodbEndpoint: dynamo.endpoint,
    credentials,
  };
  const setupS3 = createS3Client(setup);
  const setupDynamo = createDynamoClient(setup);
  try {
    await ensureBucket(setupS3, bucket);
    await ensureTable(setupDynamo, table);
  } finally {
    setupS3.destroy();
    setupDynamo.destroy();
  }

  const query = createQueryHandler(deps);
  const adminHandler = createAdminHandler(deps) as HttpLambda;
  // What API Gateway's IAM authorizer does before the function runs: no valid signature, 403.
  const behindIam =
    (fn: HttpLambda): HttpLambda =>
    async (event, context) => {
      if (event.requestContext.http.method === 'OPTIONS') return fn(event, context);
      const problem = await signatureProblem(event, { credentials: LOCAL_CREDENTIALS, region: LOCAL_REGION });
      return problem ? forbidden(problem, event.requestContext.requestId) : fn(event, context);
    };
  const admin: HttpLambda = opts.adminAuth === 'iam' ? behindIam(adminHandler) : adminHandler;
  const reads: HttpLambda = opts.readAuth === 'iam' ? behindIam(query as HttpLambda) : (query as HttpLambda);
  // A short test deadline gets a proportionally short abort margin (Lambda's 15 minutes keep 10 s).
  const buildHandler = createBuildHandler({
    ...deps,
    ...opts.buildHooks,
    ...(opts.buildTimeoutMs
      ? { abortMarginMs: Math.min(BUILD_ABORT_MARGIN_MS, opts.buildTimeoutMs / 4) }
      : {}),
  });
  const deliver =
    opts.deliver ??
    ((event: S3Event) =>
      buildHandler(
        event,
        fakeContext('vicinity-build', `build-${randomUUID()}`, opts.buildTimeoutMs ?? BUILD_TIMEOUT_MS),
      ));
  const sweepMs = opts.sweepMs ?? Number(process.env[ENV.sweepMs] || 60_000);
  const sweeper = createSweepHandler(deps);
  let sweeping: Promise<unknown> | undefined;
  const sweepTimer =
    sweepMs > 0
      ? setInterval(() => {
          // One sweep at a time, like the reserved-concurrency-1 function on AWS.
          // Its deadline is the sweeper's AWS timeout (900 s, like the build's): purges stop before it.
          sweeping ??= sweeper({}, fakeContext('vicinity-sweeper', `sweep-${Date.now()}`, BUILD_TIMEOUT_MS))
            .catch((err) => log(`sweep error: ${(err as Error).message}`))
            .finally(() => {
              sweeping = undefined;
            });
        }, sweepMs).unref()
      : undefined;

  // Builds run one at a time, in event order, like a reserved-concurrency-1 build function; every
  // event is on disk (VICINITY_HOME/events) before its build starts and until it settled.
  const outcomes: BuildOutcome[] = [];
  const listeners: ((o: BuildOutcome) => void)[] = [];
  const queue = await EventQueue.open({
    dir: join(home, 'events'),
    ...opts.delivery,
    log,
    deliver: async (event, attempt) => {
      const results = await deliver(event, attempt);
      for (const o of results ?? []) {
        outcomes.push(o);
        for (const l of listeners) l(o);
      }
      return results ?? [];
    },
  });
  const uploads = new UploadTracker();
  uploads.watch(deps.s3);
  s3Standin.onEvent((event) => {
    for (const raw of event.Records ?? []) {
      const record = releaseRecord(raw);
      if (!record) continue;
      uploads.received(record.key, record.s3.object.eTag);
      queue
        .enqueue(record)
        .catch((err) => log(`could not persist the event of ${record.key}: ${(err as Error).message}`));
    }
  });

  const pick = (method: string, path: string): { name: string; fn: HttpLambda } | undefined => {
    if (method === 'POST' && ADMIN_ROUTE.test(path)) return { name: 'vicinity-admin', fn: admin };
    if (ERASURE_ROUTE[method]?.test(path)) return { name: 'vicinity-admin', fn: admin };
    if (path === '/v1' || path.startsWith('/v1/')) return { name: 'vicinity-query', fn: reads };
    return undefined;
  };
  const server: Server = createServer(
    { maxHeaderSize: MAX_HEADER_BYTES },
    lambdaRequestListener(pick, opts.staticHandler),
  );
  answerClientErrors(server);
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
    readAuth: opts.readAuth ?? 'none',
  };
  await writeFile(join(home, LOCAL_INFO_FILE), `${JSON.stringify(info, null, 2)}\n`);

  return {
    info,
    deps,
    query,
    outcomes,
    events: queue,
    settled: (key, o) => queue.settled(key, o),
    idle: async (timeoutMs = 60_000) => {
      await uploads.allReceived(timeoutMs);
      await queue.idle();
      // A sharded release goes on in build tasks: idle once they are done too.
      await tasks.lambda.idle();
    },
    onBuild: (cb) => listeners.push(cb),
    lambda: tasks.lambda,
    stop: async () => {
      clearInterval(sweepTimer);
      await sweeping;
      await new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      });
      await queue.stop();
      await tasks.lambda.stop();
      deps.s3.destroy();
      deps.dynamo.destroy();
      await s3Standin.stop();
      await dynamo.stop();
    },
  };
}
