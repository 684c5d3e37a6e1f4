/**
 * The one Lambda client adapter: asynchronous (`Event`) and synchronous (`RequestResponse`) Invoke of a
 * function by name, through @aws-sdk/client-lambda — against AWS, or the local Lambda Invoke stand-in
 * (local/standins/lambda.ts) when an endpoint is given (AWS_ENDPOINT_URL_LAMBDA).
 */
import type { LambdaClient } from '@aws-sdk/client-lambda';

type LambdaSdk = typeof import('@aws-sdk/client-lambda');
let sdk: Promise<LambdaSdk> | undefined;
/**
 * The Lambda client is loaded on the first invoke, not at init: only sharded collections use it (the
 * query function's shard slots, the build's tasks), so most cold starts never need it.
 */
const loadSdk = (): Promise<LambdaSdk> => {
  sdk ??= import('@aws-sdk/client-lambda').catch((err) => {
    sdk = undefined;
    throw err;
  });
  return sdk;
};

export interface LambdaClientConfig {
  region: string;
  lambdaEndpoint?: string;
  credentials?: { accessKeyId: string; secretAccessKey: string };
}

export async function createLambdaClient(c: LambdaClientConfig): Promise<LambdaClient> {
  const { LambdaClient } = await loadSdk();
  return new LambdaClient({
    region: c.region,
    ...(c.lambdaEndpoint ? { endpoint: c.lambdaEndpoint } : {}),
    ...(c.credentials ? { credentials: c.credentials } : {}),
    maxAttempts: 4,
  });
}

/** A function error (X-Amz-Function-Error) of a synchronous invoke. */
export class FunctionError extends Error {
  constructor(
    message: string,
    readonly kind: string,
  ) {
    super(message);
    this.name = 'FunctionError';
  }
}

/** One client for `c`, created (its SDK loaded) on the first call; shared by the invokers given it. */
export function lazyLambdaClient(c: LambdaClientConfig): () => Promise<LambdaClient> {
  let client: Promise<LambdaClient> | undefined;
  return () => {
    client ??= createLambdaClient(c).catch((err) => {
      client = undefined;
      throw err;
    });
    return client;
  };
}

export class LambdaInvoker {
  constructor(
    private readonly client: () => Promise<LambdaClient>,
    private readonly functionName: string,
  ) {}

  /** Queues one asynchronous invocation (Lambda retries it twice, then its on-failure destination). */
  async invokeEvent(payload: unknown): Promise<void> {
    const [{ InvokeCommand }, client] = await Promise.all([loadSdk(), this.client()]);
    const r = await client.send(
      new InvokeCommand({
        FunctionName: this.functionName,
        InvocationType: 'Event',
        Payload: Buffer.from(JSON.stringify(payload)),
      }),
    );
    if (r.StatusCode !== 202)
      throw new Error(`async invoke of ${this.functionName} answered ${r.StatusCode}`);
  }

  /** Invokes and waits; a function error is thrown as FunctionError. */
  async invoke<T>(payload: unknown): Promise<T> {
    const [{ InvokeCommand }, client] = await Promise.all([loadSdk(), this.client()]);
    const r = await client.send(
      new InvokeCommand({
        FunctionName: this.functionName,
        InvocationType: 'RequestResponse',
        Payload: Buffer.from(JSON.stringify(payload)),
      }),
    );
    const text = r.Payload ? Buffer.from(r.Payload).toString('utf8') : '';
    if (r.FunctionError) {
      let message = text;
      try {
        message = (JSON.parse(text) as { errorMessage?: string }).errorMessage ?? text;
      } catch {
        // Not JSON: the raw payload is the message.
      }
      throw new FunctionError(message, r.FunctionError);
    }
    return (text ? JSON.parse(text) : undefined) as T;
  }
}
