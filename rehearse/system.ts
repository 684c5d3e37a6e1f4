/**
 * Starts the stack's artifacts on the stand-ins: s3rver (every bucket of the template), dynalite
 * (every table, with the template's key schema), one recording proxy + runtime process per function,
 * the EventBridge bus stand-in, a Lambda Invoke stand-in, an SQS queue stand-in (async-invoke
 * failure destinations), the S3 → Lambda notifications and the HTTP API gateway.
 */
import { createHash, randomUUID } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { CreateTableCommand, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { S3Client } from '@aws-sdk/client-s3';
import { LOCAL_CREDENTIALS, type S3StandIn, startDynalite, startS3 } from '../local/standins';
import { type Model, s3EventMatches } from './checks';
import { EventBusStandIn } from './events';
import { type Gateway, startGateway } from './gateway';
import { lambdaFunctionArn, type RecordedRequest } from './iam';
import { type LocalReply, type RecordedCall, type RecordingProxy, startRecordingProxy } from './proxy';
import { FunctionRuntime, type InvokeResult } from './runtime';
import { REGION, type Stack } from './template';

/** The key pair the rehearsal's API caller signs with (the gateway re-signs to verify). */
export const CALLER_CREDENTIALS = {
  accessKeyId: 'AKIAREHEARSALCALLER',
  secretAccessKey: 'rehearsal-caller-secret',
};

export interface AsyncInvocation {
  functionId: string;
  why: string;
  attempts: InvokeResult[];
  outcome?: 'ok' | 'failed';
}

/** One Lambda Invoke API call a function made (the build fanning out tasks, the router calling slots). */
export interface InvokeRecord {
  readonly caller: string;
  /** FunctionName as the caller sent it. */
  readonly name: string;
  /** The template function it resolved to, or undefined (Lambda would answer 404). */
  readonly functionId?: string;
  readonly type: 'Event' | 'RequestResponse';
  readonly status: number;
  readonly functionError?: boolean;
}

export interface Rehearsal {
  readonly stack: Stack;
  readonly model: Model;
  readonly s3: S3Client;
  readonly s3Endpoint: string;
  readonly gateway: Gateway;
  readonly bus: EventBusStandIn;
  readonly runtimes: Map<string, FunctionRuntime>;
  readonly proxies: Map<string, RecordingProxy>;
  /** Calls Lambda made on a function's behalf (async failure destinations). */
  readonly platformCalls: Map<string, RecordedCall[]>;
  readonly asyncInvocations: AsyncInvocation[];
  readonly invokes: InvokeRecord[];
  readonly queues: Map<string, unknown[]>;
  /** Resolves when no asynchronous invocation is in flight. */
  idle(): Promise<void>;
  stop(): Promise<void>;
}

export interface StartOptions {
  workDir: string;
  sdkDir: string;
  projectRoot: string;
  log: (line: string) => void;
}

export async function startRehearsal(stack: Stack, model: Model, opts: StartOptions): Promise<Rehearsal> {
  const stops: Array<() => Promise<void>> = [];
  const stopAll = async () => {
    for (const s of stops.reverse()) await s().catch(() => undefined);
  };
  try {
    mkdirSync(join(opts.workDir, 's3'), { recursive: true });
    const buckets = stack.ofType('AWS::S3::Bucket').map(([id]) => stack.physicalName(id));
    const s3Standin: S3StandIn = await startS3({ directory: join(opts.workDir, 's3'), buckets });
    stops.push(() => s3Standin.stop());
    const dynamo = await startDynalite({});
    stops.push(() => dynamo.stop());

    const ddb = new DynamoDBClient({
      region: REGION,
      endpoint: dynamo.endpoint,
      credentials: LOCAL_CREDENTIALS,
    });
    for (const [id, r] of stack.ofType('AWS::DynamoDB::Table')) {
      const p = r.Properties ?? {};
      await ddb.send(
        new CreateTableCommand({
          TableName: stack.physicalName(id),
          KeySchema: p.KeySchema as never,
          AttributeDefinitions: p.AttributeDefinitions as never,
          ...(p.GlobalSecondaryIndexes ? { GlobalSecondaryIndexes: p.GlobalSecondaryIndexes as never } : {}),
          ...(p.LocalSecondaryIndexes ? { LocalSecondaryIndexes: p.LocalSecondaryIndexes as never } : {}),
          BillingMode: 'PAY_PER_REQUEST',
        }),
      );
    }
    ddb.destroy();
    const queues = new Map<string, unknown[]>(
      stack.ofType('AWS::SQS::Queue').map(([id]) => [stack.arnOf(id), []]),
    );

    const runtimes = new Map<string, FunctionRuntime>();
    const proxies = new Map<string, RecordingProxy>();
    const platformCalls = new Map<string, RecordedCall[]>();
    const asyncInvocations: AsyncInvocation[] = [];
    const inFlight = new Set<Promise<unknown>>();
    const byArn = new Map(model.functions.map((f) => [f.arn, f.id]));

    const asyncInvoke = (functionId: string, payload: unknown, why: string): void => {
      const runtime = runtimes.get(functionId);
      if (!runtime) return;
      const record: AsyncInvocation = { functionId, why, attempts: [] };
      asyncInvocations.push(record);
      const cfg = model.asyncConfig.get(functionId);
      const retries = cfg?.retries ?? 2;
      const p = (async () => {
        for (let attempt = 0; attempt <= retries; attempt++) {
          const r = await runtime.invoke(payload);
          record.attempts.push(r);
          if (r.ok) {
            record.outcome = 'ok';
            return;
          }
          opts.log(
            `  ${functionId} (${why}) attempt ${attempt + 1} failed: ${r.error.errorType}: ${r.error.errorMessage}`,
          );
        }
        record.outcome = 'failed';
        const dest = cfg?.onFailure;
        if (dest?.type === 'AWS::SQS::Queue') {
          // Lambda sends the failure record with the function's execution role.
          const calls = platformCalls.get(functionId) ?? [];
          calls.push({ service: 'sqs', action: 'sqs:SendMessage', resource: dest.arn });
          platformCalls.set(functionId, calls);
          queues.get(dest.arn)?.push({
            requestContext: { condition: 'RetriesExhausted', functionArn: runtime.spec.arn },
            requestPayload: payload,
          });
        }
      })();
      inFlight.add(p);
      void p.finally(() => inFlight.delete(p));
    };

    const bus = new EventBusStandIn(model.rules, asyncInvoke);

    const invokes: InvokeRecord[] = [];
    const lambdaInvoke = async (req: RecordedRequest, caller: string): Promise<LocalReply> => {
      const m = /\/functions\/([^/]+)\/invocations/.exec(req.url);
      const name = decodeURIComponent(m?.[1] ?? '');
      const fnId = m ? byArn.get(lambdaFunctionArn(m[1] as string)) : undefined;
      const type =
        String(req.headers['x-amz-invocation-type'] ?? '') === 'Event' ? 'Event' : 'RequestResponse';
      if (!fnId) {
        invokes.push({ caller, name, type, status: 404 });
        return {
          status: 404,
          headers: { 'content-type': 'application/json', 'x-amzn-errortype': 'ResourceNotFoundException' },
          body: JSON.stringify({ Type: 'User', message: `Function not found: ${lambdaFunctionArn(name)}` }),
        };
      }
      const payload = JSON.parse(req.body.toString('utf8') || '{}') as unknown;
      if (type === 'Event') {
        invokes.push({ caller, name, functionId: fnId, type, status: 202 });
        asyncInvoke(fnId, payload, `Lambda Invoke (Event) by ${caller}`);
        return { status: 202, body: '' };
      }
      const r = await (runtimes.get(fnId) as FunctionRuntime).invoke(payload);
      invokes.push({ caller, name, functionId: fnId, type, status: 200, functionError: !r.ok });
      return r.ok
        ? { status: 200, headers: { 'x-amz-executed-version': '$LATEST' }, body: JSON.stringify(r.value) }
        : { status: 200, headers: { 'x-amz-function-error': 'Unhandled' }, body: JSON.stringify(r.error) };
    };

    const sqs = (req: RecordedRequest): LocalReply => {
      const op = String(req.headers['x-amz-target'] ?? '')
        .split('.')
        .pop();
      const b = JSON.parse(req.body.toString('utf8') || '{}') as { QueueUrl?: string; MessageBody?: string };
      const json = (status: number, body: unknown): LocalReply => ({
        status,
        headers: { 'content-type': 'application/x-amz-json-1.0' },
        body: JSON.stringify(body),
      });
      const arn = [...queues.keys()].find((a) => a.endsWith(`:${String(b.QueueUrl).split('/').pop()}`));
      if (op === 'SendMessage' && arn) {
        queues.get(arn)?.push(b.MessageBody);
        return json(200, {
          MessageId: randomUUID(),
          MD5OfMessageBody: createHash('md5').update(String(b.MessageBody)).digest('hex'),
        });
      }
      return json(400, {
        __type: 'com.amazonaws.sqs#UnsupportedOperation',
        message: `${op} is not rehearsed`,
      });
    };

    for (const spec of model.functions) {
      const proxy = await startRecordingProxy(spec.id, {
        s3: s3Standin.endpoint,
        dynamodb: dynamo.endpoint,
        local: async (service, req, caller) => {
          if (service === 'events') return bus.handle(req, caller);
          if (service === 'lambda') return lambdaInvoke(req, caller);
          if (service === 'sqs') return sqs(req);
          return undefined;
        },
      });
      stops.push(() => proxy.stop());
      proxies.set(spec.id, proxy);
      const e = proxy.endpoint;
      const runtime = new FunctionRuntime(spec, {
        workDir: opts.workDir,
        sdkDir: join(opts.projectRoot, 'node_modules', '@aws-sdk'),
        extraEnv: {
          AWS_REGION: REGION,
          AWS_DEFAULT_REGION: REGION,
          AWS_ACCESS_KEY_ID: LOCAL_CREDENTIALS.accessKeyId,
          AWS_SECRET_ACCESS_KEY: LOCAL_CREDENTIALS.secretAccessKey,
          AWS_SESSION_TOKEN: '',
          AWS_ENDPOINT_URL: e,
          AWS_ENDPOINT_URL_S3: e,
          AWS_ENDPOINT_URL_DYNAMODB: e,
          AWS_ENDPOINT_URL_EVENTBRIDGE: e,
          AWS_ENDPOINT_URL_LAMBDA: e,
          AWS_ENDPOINT_URL_SQS: e,
        },
      });
      stops.push(() => runtime.stop());
      runtimes.set(spec.id, runtime);
    }

    // S3 → Lambda: each s3rver event record, filtered by the template's notification configuration.
    s3Standin.onEvent((batch) => {
      for (const record of batch.Records as Array<{
        eventName?: string;
        s3?: { bucket?: { name?: string }; object?: { key?: string } };
      }>) {
        const key = decodeURIComponent(String(record.s3?.object?.key ?? '').replace(/\+/g, ' '));
        for (const n of model.notifications) {
          if (n.bucket !== record.s3?.bucket?.name || !n.functionId) continue;
          if (!s3EventMatches(n.events, String(record.eventName))) continue;
          if (!key.startsWith(n.prefix) || !key.endsWith(n.suffix)) continue;
          asyncInvoke(n.functionId, { Records: [record] }, `S3 notification ${n.id} (${key})`);
        }
      }
    });

    const gateway = await startGateway({
      routes: model.routes,
      stack,
      credentials: CALLER_CREDENTIALS,
      callerStatements: model.callerStatements,
      invoke: (fnId, event) => (runtimes.get(fnId) as FunctionRuntime).invoke(event),
    });
    stops.push(() => gateway.stop());

    return {
      stack,
      model,
      s3: new S3Client({
        region: REGION,
        endpoint: s3Standin.endpoint,
        forcePathStyle: true,
        credentials: LOCAL_CREDENTIALS,
        requestChecksumCalculation: 'WHEN_REQUIRED',
        responseChecksumValidation: 'WHEN_REQUIRED',
      }),
      s3Endpoint: s3Standin.endpoint,
      gateway,
      bus,
      runtimes,
      proxies,
      platformCalls,
      asyncInvocations,
      invokes,
      queues,
      idle: async () => {
        // An upload's event arrives shortly after the upload returns; settle until quiet.
        for (let quiet = 0; quiet < 3; ) {
          await new Promise((r) => setTimeout(r, 150));
          if (inFlight.size === 0) quiet++;
          else {
            quiet = 0;
            await Promise.allSettled([...inFlight]);
          }
        }
      },
      stop: stopAll,
    };
  } catch (err) {
    await stopAll();
    throw err;
  }
}
