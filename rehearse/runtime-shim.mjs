// The rehearsal's stand-in for the Lambda Node.js runtime: one per function process. It imports the
// bundled handler named by the template's Handler string from the task directory (cwd) and calls
// handler(event, context) for each `invoke` message from the parent, one at a time, as Lambda does.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

const [taskDir, handlerString, functionName, memoryMb] = process.argv.slice(2);
const send = (m) => process.connected && process.send(m);
process.on('disconnect', () => process.exit(0));

async function load() {
  const dot = handlerString.lastIndexOf('.');
  const modulePath = handlerString.slice(0, dot);
  const exportName = handlerString.slice(dot + 1);
  const file = ['.mjs', '.js', '.cjs'].map((ext) => join(taskDir, modulePath + ext)).find(existsSync);
  if (!file)
    throw new Error(`Runtime.ImportModuleError: no ${modulePath}.mjs/.js/.cjs in the task directory`);
  const mod = await import(pathToFileURL(file).href);
  const handler = mod[exportName] ?? mod.default?.[exportName];
  if (typeof handler !== 'function')
    throw new Error(`Runtime.HandlerNotFound: ${file} does not export ${exportName} as a function`);
  return handler;
}

let handler;
try {
  handler = await load();
  send({ type: 'ready' });
} catch (err) {
  send({ type: 'init-error', message: String(err?.stack ?? err) });
  process.exit(1);
}

process.on('message', async (m) => {
  if (m?.type !== 'invoke') return;
  const deadline = Date.now() + m.timeoutMs;
  const context = {
    callbackWaitsForEmptyEventLoop: true,
    functionName,
    functionVersion: '$LATEST',
    invokedFunctionArn: m.functionArn,
    memoryLimitInMB: memoryMb,
    awsRequestId: m.requestId,
    logGroupName: `/aws/lambda/${functionName}`,
    logStreamName: 'rehearsal',
    getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
    done() {},
    fail() {},
    succeed() {},
  };
  try {
    const value = await handler(m.event, context);
    send({ type: 'result', id: m.id, value: value === undefined ? null : value });
  } catch (err) {
    send({
      type: 'result',
      id: m.id,
      error: {
        errorType: err?.name ?? 'Error',
        errorMessage: String(err?.message ?? err),
        stack: err?.stack,
      },
    });
  }
});
