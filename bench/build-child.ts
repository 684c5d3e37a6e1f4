/** Runs the build handler for one S3 event in its own process (as Lambda would) and reports its peak RSS. */
import type { S3Event } from 'aws-lambda';
import { createBuildHandler } from '../functions/builder/handler';
import { depsFromEnv } from '../functions/common/wiring';
import { BUILD_TIMEOUT_MS, fakeContext } from '../local/http-adapter';

const event = JSON.parse(process.argv[2] as string) as S3Event;
const started = performance.now();
const outcomes = await createBuildHandler(depsFromEnv())(
  event,
  fakeContext('bench-build', 'bench', BUILD_TIMEOUT_MS),
);
const wallMs = performance.now() - started;
process.stdout.write(
  `${JSON.stringify({ outcomes, wallMs, maxRssMb: process.resourceUsage().maxRSS / 1024 })}\n`,
);
process.exit(0);
