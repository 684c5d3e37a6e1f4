/**
 * One set of stand-ins for the whole test run: s3rver (temp directory), in-memory dynalite and
 * DynamoDB Local. Tests reach them through `inject()` (see clients.ts).
 *
 * The global setup of the `integration` project only (vitest.config.ts): vitest calls it when that
 * project has a test queued, so `npm run test:unit` (on the in-memory ports of test/support/memory)
 * and `vitest run test/unit` start no JVM and no s3rver.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';
import { createS3Client } from '../../functions/adapters/aws-clients';
import {
  ensureBucket,
  LOCAL_CREDENTIALS,
  LOCAL_REGION,
  startDynalite,
  startDynamoDbLocal,
  startS3,
} from '../../local/standins';

declare module 'vitest' {
  export interface ProvidedContext {
    s3Endpoint: string;
    dynaliteEndpoint: string;
    dynamoLocalEndpoint: string;
    bucket: string;
  }
}

const BUCKET = 'vicinity-test';

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const directory = await mkdtemp(join(tmpdir(), 'vicinity-test-s3-'));
  // In parallel: DynamoDB Local's JVM start dominates (~2-3 s), the others hide behind it.
  const [s3, dynalite, dynamoLocal] = await Promise.allSettled([
    startS3({ directory, buckets: [BUCKET] }),
    startDynalite({}),
    startDynamoDbLocal(),
  ]);
  const running = [s3, dynalite, dynamoLocal].flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
  const teardown = async () => {
    await Promise.allSettled(running.map((r) => r.stop()));
    await rm(directory, { recursive: true, force: true });
  };

  if (s3.status === 'rejected' || dynalite.status === 'rejected' || dynamoLocal.status === 'rejected') {
    // Stop what did start, or the s3rver child and the JVM would keep the run from exiting.
    await teardown();
    const failures = [
      s3.status === 'rejected' ? `s3rver: ${message(s3.reason)}` : '',
      dynalite.status === 'rejected' ? `dynalite: ${message(dynalite.reason)}` : '',
      dynamoLocal.status === 'rejected'
        ? `DynamoDB Local (needs Java 17+ on PATH; the pointer-store tests run against it): ${message(dynamoLocal.reason)}`
        : '',
    ].filter(Boolean);
    throw new Error(`test stand-ins failed to start:\n${failures.join('\n')}`);
  }

  try {
    // configureBuckets already made it; ensureBucket checks the wire path and credentials once.
    const client = createS3Client({
      region: LOCAL_REGION,
      s3Endpoint: s3.value.endpoint,
      credentials: LOCAL_CREDENTIALS,
    });
    await ensureBucket(client, BUCKET);
    client.destroy();
  } catch (err) {
    await teardown();
    throw err;
  }

  project.provide('s3Endpoint', s3.value.endpoint);
  project.provide('dynaliteEndpoint', dynalite.value.endpoint);
  project.provide('dynamoLocalEndpoint', dynamoLocal.value.endpoint);
  project.provide('bucket', BUCKET);
  return teardown;
}

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
