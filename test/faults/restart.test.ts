/**
 * "Survive every fault": the whole local stack (as `npm start` runs it) SIGKILLed while it builds a
 * release, started again on the same VICINITY_HOME: the persisted event is redelivered and the version
 * goes READY and active, without a re-upload.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { afterAll, describe, expect, it } from 'vitest';
import { createS3Client } from '../../functions/adapters/aws-clients';
import type { LocalInfo } from '../../local/info';
import { LOCAL_CREDENTIALS } from '../../local/standins';
import {
  directRegistry,
  expectHealthy,
  itemsRelease,
  LEASE_MS,
  RETRY_DELAYS_MS,
  report,
  settledVersion,
} from './helpers';

interface Running {
  child: ChildProcess;
  info: LocalInfo;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  stderr(): string;
}

async function startStackProcess(home: string, crashAt?: string): Promise<Running> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'test/support/stack-process.ts'], {
    env: {
      ...process.env,
      VICINITY_HOME: home,
      VICINITY_LEASE_MS: String(LEASE_MS),
      VICINITY_TEST_RETRY_MS: RETRY_DELAYS_MS.join(','),
      ...(crashAt ? { VICINITY_TEST_CRASH_AT: crashAt } : {}),
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let err = '';
  child.stderr?.on('data', (d) => {
    err = (err + String(d)).slice(-8000);
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((ok) =>
    child.once('exit', (code, signal) => ok({ code, signal })),
  );
  const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
  const first = await Promise.race([
    new Promise<string>((ok) => lines.once('line', ok)),
    exited.then((e) => {
      throw new Error(`the stack process exited (${e.code ?? e.signal}) before it was up: ${err}`);
    }),
  ]);
  return { child, info: (JSON.parse(first) as { info: LocalInfo }).info, exited, stderr: () => err };
}

describe('the local stack SIGKILLed mid-build and started again on the same home', () => {
  const running: Running[] = [];
  let home = '';
  afterAll(async () => {
    for (const r of running) {
      r.child.kill('SIGTERM');
      await r.exited;
    }
    if (home) await rm(home, { recursive: true, force: true });
  });

  it('redelivers the persisted event: READY and active without a re-upload', async () => {
    home = await mkdtemp(join(tmpdir(), 'vicinity-restart-'));
    const first = await startStackProcess(home, 'midIndex');
    running.push(first);
    const s3 = createS3Client({
      region: first.info.region,
      s3Endpoint: first.info.s3Endpoint,
      credentials: LOCAL_CREDENTIALS,
    });
    const r1 = itemsRelease('r1', 1);
    for (const [name, body] of Object.entries(r1.files))
      await s3.send(
        new PutObjectCommand({ Bucket: first.info.bucket, Key: `incoming/music/r1/${name}`, Body: body }),
      );
    await s3.send(
      new PutObjectCommand({
        Bucket: first.info.bucket,
        Key: 'incoming/music/r1/release.json',
        Body: JSON.stringify(r1.json),
      }),
    );
    s3.destroy();
    // The stack kills itself mid-index (crash-points.ts): the whole process, s3rver child included.
    expect(await first.exited, first.stderr()).toMatchObject({ signal: 'SIGKILL' });
    const killedAt = Date.now();
    running.splice(running.indexOf(first), 1);
    const pending = await readdir(join(home, 'events/pending'));
    expect(pending).toHaveLength(1);

    const second = await startStackProcess(home);
    running.push(second);
    const db = directRegistry(second.info);
    try {
      const v1 = await settledVersion(db.registry, 'music', 'v1', 40_000);
      expect(v1, second.stderr()).toMatchObject({ status: 'READY', release: 'r1' });
      // Activation follows READY in the same delivery: wait for the event to leave pending/.
      const deadline = Date.now() + 20_000;
      while ((await readdir(join(home, 'events/pending'))).length > 0 && Date.now() < deadline)
        await new Promise((ok) => setTimeout(ok, 100));
      expect(await readdir(join(home, 'events/pending'))).toEqual([]);
      expect(await readdir(join(home, 'events/failed'))).toEqual([]);
      expect(await db.registry.getPointer('music')).toMatchObject({ version: 'v1', generation: 1 });
      const { versions } = await db.registry.listVersions('music', 10);
      expect(versions.map((v) => [v.version, v.status])).toEqual([['v1', 'READY']]);
      await expectHealthy(second.info.apiUrl);
      const res = await fetch(
        `${second.info.apiUrl}/v1/spaces/music/collections/items/items/r1-i0/similar?k=3`,
      );
      expect(res.status).toBe(200);
      expect(await res.json()).toMatchObject({ version: 'v1' });
      report({
        fault: 'whole stack SIGKILLed midIndex, restarted on the same home',
        client: 'no server between kill and restart (connection refused); v1 answers after',
        after: 'v1 READY and active (generation 1), pending/ and failed/ empty',
        recoverMs: Date.now() - killedAt,
      });
    } finally {
      db.close();
    }
  });
});
