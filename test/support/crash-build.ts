/**
 * Runs the build handler for one release event in its own process and SIGKILLs itself at a chosen
 * point (crash-points.ts) — a real crash, lease and all, as when Lambda kills a builder.
 * Usage: tsx crash-build.ts EVENT_JSON POINT   (configuration from the environment, as on Lambda)
 * POINT `none`: no crash; prints the outcomes as JSON on stdout and exits 0.
 * Exit 3: the crash point was never reached.
 */
import type { S3Event } from 'aws-lambda';
import { createBuildHandler } from '../../functions/builder/handler';
import { depsFromEnv } from '../../functions/common/wiring';
import { BUILD_TIMEOUT_MS, fakeContext } from '../../local/http-adapter';
import { armCrash, isCrashPoint } from './crash-points';

const [eventJson, point] = process.argv.slice(2) as [string, string];
if (point !== 'none' && !isCrashPoint(point)) throw new Error(`unknown crash point ${point}`);
const deps = depsFromEnv();
const hooks = point === 'none' ? {} : armCrash(point, deps);
const handler = createBuildHandler({ ...deps, ...hooks });
const outcomes = await handler(
  JSON.parse(eventJson) as S3Event,
  fakeContext('crash-build', `crash-${process.pid}`, BUILD_TIMEOUT_MS),
);
if (point === 'none') {
  process.stdout.write(`${JSON.stringify(outcomes)}\n`);
  process.exit(0);
}
// Reaching here means the crash point was never hit.
process.exit(3);
