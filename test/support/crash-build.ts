/**
 * Runs the build handler for one release event in its own process and SIGKILLs itself at a chosen
 * point — a real crash, lease and all, as when Lambda kills a builder. Usage: tsx crash-build.ts EVENT_JSON POINT
 */
import type { S3Event } from 'aws-lambda';
import { createBuildHandler } from '../../functions/builder/handler';
import { depsFromEnv } from '../../functions/common/wiring';
import { BUILD_TIMEOUT_MS, fakeContext } from '../../local/http-adapter';

const [eventJson, point] = process.argv.slice(2) as [string, 'beforeReady' | 'beforeActivate'];
const die = async () => {
  process.kill(process.pid, 'SIGKILL');
  await new Promise(() => undefined);
};
const handler = createBuildHandler({ ...depsFromEnv(), [point]: die });
await handler(JSON.parse(eventJson) as S3Event, fakeContext('crash-build', 'crash', BUILD_TIMEOUT_MS));
// Reaching here means the crash point was never hit.
process.exit(3);
