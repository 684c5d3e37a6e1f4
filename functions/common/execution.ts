/**
 * The HTTP handlers' middy execution mode: middy's standard mode (before middlewares, handler, after
 * middlewares; onError middlewares on a throw; an early response from any of them ends the chain; the
 * early timeout answering through the onError middlewares `timeoutEarlyInMillis` before Lambda's
 * deadline) without the AbortController middy creates for every request (~3 µs of CPU per request
 * for an AbortSignal these handlers never read; their routes do not pass a signal on).
 */
import type { PluginExecutionMode } from '@middy/core';

// biome-ignore lint/suspicious/noExplicitAny: middy's request and hooks are untyped here, as in middy itself.
type Hook = (request: any) => unknown;
interface Plugin {
  timeoutEarly: boolean;
  timeoutEarlyInMillis: number;
  timeoutEarlyResponse: () => unknown;
  requestStart: Hook;
  requestEnd: Hook;
  beforeHandler: () => void;
  afterHandler: () => void;
  beforeMiddleware?: (name: string) => void;
  afterMiddleware?: (name: string) => void;
}
interface MiddyRequest {
  event: unknown;
  context: {
    getRemainingTimeInMillis?: () => number;
    lambdaContext?: { getRemainingTimeInMillis?: () => number };
  };
  response: unknown;
  error: unknown;
  earlyResponse?: unknown;
}
type LambdaHandler = (event: unknown, context: unknown) => unknown;

/**
 * Runs one chain of middlewares; true when one of them answered early (the chain stops there). Without
 * a wait while the hooks answer synchronously: the first hook that returns a promise hands the rest of
 * the chain to `runChainFrom`, which awaits it (the same order, the same early response).
 */
function runChain(chain: Hook[], request: MiddyRequest, plugin: Plugin): boolean | Promise<boolean> {
  for (let i = 0, len = chain.length; i < len; i++) {
    const next = chain[i] as Hook;
    plugin.beforeMiddleware?.(next.name);
    const res = next(request);
    if (res instanceof Promise) return runChainFrom(chain, i, res, request, plugin);
    if (settle(res, next, request, plugin)) return true;
  }
  return false;
}

/** After hook `i` answered `pending`: awaits it, then runs the rest of the chain as runChain did. */
async function runChainFrom(
  chain: Hook[],
  i: number,
  pending: Promise<unknown>,
  request: MiddyRequest,
  plugin: Plugin,
): Promise<boolean> {
  if (settle(await pending, chain[i] as Hook, request, plugin)) return true;
  for (let j = i + 1, len = chain.length; j < len; j++) {
    const next = chain[j] as Hook;
    plugin.beforeMiddleware?.(next.name);
    let res = next(request);
    if (res instanceof Promise) res = await res;
    if (settle(res, next, request, plugin)) return true;
  }
  return false;
}

/** A hook's answer: an early response ends the chain (true). */
function settle(res: unknown, hook: Hook, request: MiddyRequest, plugin: Plugin): boolean {
  plugin.afterMiddleware?.(hook.name);
  if (res !== undefined) request.earlyResponse = res;
  if ('earlyResponse' in request) {
    request.response = request.earlyResponse;
    return true;
  }
  return false;
}

async function runRequest(
  request: MiddyRequest,
  before: Hook[],
  lambdaHandler: LambdaHandler,
  after: Hook[],
  onError: Hook[],
  plugin: Plugin,
): Promise<unknown> {
  let timeoutID: ReturnType<typeof setTimeout> | undefined;
  const remaining =
    request.context.getRemainingTimeInMillis ?? request.context.lambdaContext?.getRemainingTimeInMillis;
  try {
    let early = runChain(before, request, plugin);
    if (early instanceof Promise) early = await early;
    if (!early) {
      plugin.beforeHandler();
      const result = lambdaHandler(request.event, request.context);
      if (result instanceof Promise && plugin.timeoutEarly && remaining) {
        const timeout = new Promise((resolve, reject) => {
          timeoutID = setTimeout(
            () => {
              try {
                resolve(plugin.timeoutEarlyResponse());
              } catch (err) {
                reject(err);
              }
            },
            Math.max(0, remaining() - plugin.timeoutEarlyInMillis),
          );
        });
        request.response = await Promise.race([result, timeout]);
      } else request.response = await result;
      if (timeoutID) clearTimeout(timeoutID);
      plugin.afterHandler();
      const done = runChain(after, request, plugin);
      if (done instanceof Promise) await done;
    }
  } catch (err) {
    if (timeoutID) clearTimeout(timeoutID);
    request.response = undefined;
    delete request.earlyResponse;
    request.error = err;
    try {
      const done = runChain(onError, request, plugin);
      if (done instanceof Promise) await done;
    } catch (e) {
      // An onError middleware that throws: its error goes out, with the one it was handling as cause.
      if (e !== request.error && typeof e === 'object' && e !== null) {
        const o = e as { originalError?: unknown; cause?: unknown };
        o.originalError = request.error;
        o.cause ??= request.error;
      }
      request.error = e;
      throw e;
    }
    if (request.response === undefined) throw request.error;
  }
  return request.response;
}

/** middy's `executionMode` option: what `middy({ executionMode: executionModeWithoutSignal })` runs per request. */
export const executionModeWithoutSignal = ((
  { middyRequest }: { middyRequest: (event: unknown, context: unknown) => MiddyRequest },
  before: Hook[],
  handler: LambdaHandler,
  after: Hook[],
  onError: Hook[],
  plugin: Plugin,
) => {
  let lambdaHandler = handler;
  const run = async (event: unknown, context: unknown) => {
    const request = middyRequest(event, context);
    plugin.requestStart(request);
    let failure: unknown;
    let failed = false;
    let response: unknown;
    try {
      response = await runRequest(request, before, lambdaHandler, after, onError, plugin);
    } catch (err) {
      failure = err;
      failed = true;
    }
    try {
      const end = plugin.requestEnd(request);
      if (end instanceof Promise) await end;
    } catch (hookErr) {
      if (!failed) throw hookErr;
      if (typeof failure === 'object' && failure !== null) (failure as { cause?: unknown }).cause ??= hookErr;
    }
    if (failed) throw failure;
    return response;
  };
  return Object.assign(run, {
    handler: (replacement: LambdaHandler) => {
      lambdaHandler = replacement;
      return run;
    },
  });
}) as unknown as PluginExecutionMode;
