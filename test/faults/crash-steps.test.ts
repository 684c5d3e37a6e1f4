/**
 * A build SIGKILLed at each step (in its own process, as Lambda kills a builder), then redelivered
 * from the persisted event by the local event queue: READY and active exactly once, while the
 * previously active version answers every query.
 */
import { spawn } from 'node:child_process';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { S3Event } from 'aws-lambda';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BuildOutcome } from '../../functions/builder/build-release';
import { createBuildHandler } from '../../functions/builder/handler';
import { fakeContext } from '../../local/http-adapter';
import type { CrashPoint } from '../support/crash-points';
import { type TestStack, testStack } from '../support/local';
import {
  clientStream,
  directRegistry,
  expectHealthy,
  expectNothingStuck,
  expectServedThrough,
  FAULT_CONFIG,
  itemsRelease,
  LEASE_MS,
  RETRY_DELAYS_MS,
  report,
  summarize,
} from './helpers';

const POINTS: CrashPoint[] = ['afterClaim', 'midIndex', 'afterSnapshotUpload', 'beforeActivate'];

describe('a build SIGKILLed at each step, then redelivered from the persisted event', () => {
  let s: TestStack;
  let db: ReturnType<typeof directRegistry>;
  /** release.json key → where its first build attempt dies. */
  const crashPlan = new Map<string, CrashPoint>();
  const crashedAt = new Map<string, number>();

  /** The first attempt of a planned key runs in a child process that SIGKILLs itself; retries run here. */
  const deliver = async (event: S3Event, attempt: number): Promise<BuildOutcome[]> => {
    const key = event.Records[0]?.s3.object.key ?? '';
    const point = attempt === 1 ? crashPlan.get(key) : undefined;
    if (!point) return createBuildHandler(s.deps)(event, fakeContext('vicinity-build', `retry-${attempt}`));
    const { info } = s;
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', 'test/support/crash-build.ts', JSON.stringify(event), point],
      {
        env: {
          ...process.env,
          VICINITY_BUCKET: info.bucket,
          VICINITY_TABLE: info.table,
          AWS_REGION: info.region,
          AWS_ENDPOINT_URL_S3: info.s3Endpoint,
          AWS_ENDPOINT_URL_DYNAMODB: info.dynamodbEndpoint,
          AWS_ACCESS_KEY_ID: info.accessKeyId,
          AWS_SECRET_ACCESS_KEY: info.secretAccessKey,
          VICINITY_CACHE_DIR: join(s.home, 'cache-crash'),
          VICINITY_LEASE_MS: String(LEASE_MS),
          VICINITY_FILE_WAIT_MS: '2000',
          VICINITY_QUALITY_SAMPLE: '50',
          POWERTOOLS_LOG_LEVEL: 'CRITICAL',
        },
        stdio: ['ignore', 'ignore', 'pipe'],
      },
    );
    let stderr = '';
    child.stderr.on('data', (d) => {
      stderr = (stderr + String(d)).slice(-4000);
    });
    const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((ok) =>
      child.once('exit', (c, sig) => ok([c, sig])),
    );
    crashedAt.set(key, Date.now());
    if (signal === 'SIGKILL') throw new Error(`the build process was SIGKILLed at ${point}`);
    throw new Error(`the crash build ended with code ${code} instead of dying at ${point}: ${stderr}`);
  };

  beforeAll(async () => {
    s = await testStack(FAULT_CONFIG, undefined, { deliver, delivery: { retryDelaysMs: RETRY_DELAYS_MS } });
    db = directRegistry(s.info);
  });
  afterAll(async () => {
    db?.close();
    await s?.dispose();
  });

  // One space, one release per crash point: each starts from whatever the previous one left active.
  const space = 'crashes';
  let seed = 1;

  it.each(POINTS)(
    'died %s: READY and active exactly once, the previous version served throughout',
    async (point) => {
      const before = (await db.registry.getPointer(space)).version;
      let releaseOf: Record<string, string> = {};
      if (!before) {
        const r0 = itemsRelease('r0', 0, 1500);
        expect(await s.publish(space, 'r0', r0.files, r0.json)).toMatchObject([
          { status: 'READY', version: 'v1' },
        ]);
      }
      const prev = (await db.registry.getPointer(space)) as { version: string; generation: number };
      const prevRecord = await db.registry.getVersion(space, prev.version);
      releaseOf[prev.version] = prevRecord?.release as string;
      const release = `r${seed++}-${point.toLowerCase()}`;
      const r2 = itemsRelease(release, seed, 1500);
      const stream = clientStream(s.info.apiUrl, space);
      await stream.servedBy(prev.version);

      const key = `incoming/${space}/${release}/release.json`;
      crashPlan.set(key, point);
      const outcomes = await s.publish(space, release, r2.files, r2.json);
      const recovered = Date.now();
      const answers = await stream.stop();

      const next = outcomes[0]?.version as string;
      releaseOf = { ...releaseOf, [next]: release };
      expect(outcomes).toMatchObject([{ status: 'READY' }]);
      // A crash after READY leaves nothing to build: the redelivery only activates.
      expect((outcomes[0] as { built: boolean }).built).toBe(point !== 'beforeActivate');
      expect(crashedAt.has(key)).toBe(true);
      expect(await db.registry.getPointer(space)).toMatchObject({
        version: next,
        generation: prev.generation + 1,
      });
      const history = await db.registry.listHistory(space, 50);
      expect(history.filter((h) => h.to === next)).toHaveLength(1);
      expect(history[0]).toMatchObject({ from: prev.version, to: next, generation: prev.generation + 1 });
      const versions = await expectNothingStuck(db.registry, space, answers);
      expect(versions.every((v) => v.status === 'READY')).toBe(true);
      expectServedThrough(answers, releaseOf, prev.version, next);
      expect(await readdir(join(s.home, 'events/pending'))).toEqual([]);
      expect(await readdir(join(s.home, 'events/failed'))).toEqual([]);
      await expectHealthy(s.info.apiUrl);
      report({
        fault: `build SIGKILLed ${point}`,
        client: summarize(answers),
        after: `${next} READY, activated once`,
        recoverMs: recovered - (crashedAt.get(key) ?? recovered),
      });
    },
  );
});
