/**
 * One Lambda "instance" of the local Lambda Invoke stand-in (lambda.ts): a child process that loads one
 * function's handler module once and runs the invocations it is sent, one at a time, over IPC.
 * Started by lambda.ts with `--import tsx --max-old-space-size=<memory>` and the function's env.
 */
import { pathToFileURL } from 'node:url';

interface InvokeMessage {
  type: 'invoke';
  id: string;
  requestId: string;
  functionName: string;
  memoryMb: number;
  timeoutMs: number;
  event: unknown;
}

type Handler = (event: unknown, context: unknown) => Promise<unknown>;

const modulePath = process.env.VICINITY_LAMBDA_MODULE as string;
const exportName = process.env.VICINITY_LAMBDA_EXPORT || 'handler';
let handler: Promise<Handler> | undefined;

function load(): Promise<Handler> {
  handler ??= import(pathToFileURL(modulePath).href).then((m) => {
    const fn =
      (m as Record<string, unknown>)[exportName] ??
      (m as { default?: Record<string, unknown> }).default?.[exportName];
    if (typeof fn !== 'function') throw new Error(`${modulePath} exports no function ${exportName}`);
    return fn as Handler;
  });
  return handler;
}

process.on('message', async (m: InvokeMessage) => {
  if (m?.type !== 'invoke') return;
  const deadline = Date.now() + m.timeoutMs;
  const context = {
    callbackWaitsForEmptyEventLoop: false,
    functionName: m.functionName,
    functionVersion: '$LATEST',
    invokedFunctionArn: `arn:aws:lambda:us-east-1:000000000000:function:${m.functionName}`,
    memoryLimitInMB: String(m.memoryMb),
    awsRequestId: m.requestId,
    logGroupName: `/aws/lambda/${m.functionName}`,
    logStreamName: `local/${process.pid}`,
    getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
    done: () => undefined,
    fail: () => undefined,
    succeed: () => undefined,
  };
  try {
    const fn = await load();
    const result = await fn(m.event, context);
    process.send?.({ type: 'result', id: m.id, ok: true, payload: result ?? null });
  } catch (err) {
    const e = err as Error;
    process.send?.({
      type: 'result',
      id: m.id,
      ok: false,
      error: { errorType: e?.name ?? 'Error', errorMessage: e?.message ?? String(err) },
    });
  }
});

process.on('disconnect', () => process.exit(0));
process.send?.({ type: 'ready' });
