/**
 * A local stack in its own process, as `npm start` runs it, so a test can SIGKILL the whole of it
 * and start it again on the same VICINITY_HOME. Prints one JSON line `{ info }` on stdout when up.
 * Environment: VICINITY_HOME (required), VICINITY_LEASE_MS, VICINITY_TEST_RETRY_MS ("a,b": the
 * event queue's retry delays), VICINITY_TEST_CRASH_AT (a crash point of crash-points.ts: the stack
 * SIGKILLs itself there during its first build).
 */
import { startLocalStack } from '../../local/stack';
import { armCrash, isCrashPoint } from './crash-points';

process.env.POWERTOOLS_METRICS_DISABLED = 'true';
process.env.POWERTOOLS_LOG_LEVEL ??= 'CRITICAL';
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';

const home = process.env.VICINITY_HOME;
if (!home) throw new Error('VICINITY_HOME is required');
const crashAt = process.env.VICINITY_TEST_CRASH_AT;
const retry = (process.env.VICINITY_TEST_RETRY_MS ?? '').split(',').filter(Boolean).map(Number);

let hooks: ReturnType<typeof armCrash> = {};
const stack = await startLocalStack({
  home,
  port: 0,
  config: { fileWaitMs: 2000, qualitySample: 50 },
  ...(retry.length ? { delivery: { retryDelaysMs: retry } } : {}),
  // Late-bound: the crash is armed on the stack's own clients once they exist.
  buildHooks: {
    beforeReady: (v) => hooks.beforeReady?.(v) ?? Promise.resolve(),
    beforeActivate: (v) => hooks.beforeActivate?.(v) ?? Promise.resolve(),
  },
  log: (line) => process.stderr.write(`[stack] ${line}\n`),
});
if (isCrashPoint(crashAt)) hooks = armCrash(crashAt, stack.deps);
process.stdout.write(`${JSON.stringify({ info: stack.info, pending: stack.events.pendingCount() })}\n`);
const stop = async () => {
  await stack.stop();
  process.exit(0);
};
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
