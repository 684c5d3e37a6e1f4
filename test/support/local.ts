/** A whole local stack per test file (own s3rver + dynalite), as `npm start` runs it, on free ports. */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { S3Store } from '../../functions/adapters/s3-store';
import type { BuildOutcome } from '../../functions/builder/build-release';
import type { Config } from '../../functions/common/config';
import { type LocalStack, type LocalStackOptions, startLocalStack } from '../../local/stack';

process.env.POWERTOOLS_METRICS_DISABLED = 'true';
process.env.POWERTOOLS_LOG_LEVEL = 'CRITICAL';

export interface TestStack extends LocalStack {
  store: S3Store;
  home: string;
  /** Any method; a body that is not a string is sent as JSON. */
  call(
    method: string,
    path: string,
    body?: unknown,
  ): Promise<{ status: number; body: Record<string, unknown>; headers: Headers }>;
  get(path: string): Promise<{ status: number; body: Record<string, unknown>; headers: Headers }>;
  post(
    path: string,
    body: unknown,
  ): Promise<{ status: number; body: Record<string, unknown>; headers: Headers }>;
  /**
   * Uploads the files, then release.json (last), and waits until the build of that upload's event has
   * settled: resolves with its outcomes, rejects with the build's error or a timeout naming the key.
   */
  publish(
    space: string,
    release: string,
    files: Record<string, string | Buffer>,
    releaseJson: unknown,
    opts?: { timeoutMs?: number },
  ): Promise<BuildOutcome[]>;
  /** Uploads release.json only and returns what `settled` needs to wait for its build. */
  putRelease(space: string, release: string, releaseJson: unknown): Promise<PutRelease>;
  dispose(): Promise<void>;
}

export interface PutRelease {
  key: string;
  etag: string;
  /** The event cursor before the upload: only a later event counts. */
  after: number;
}

/** Retries of a failed build come quickly in tests (AWS: 1 and 2 minutes). */
export const TEST_RETRY_DELAYS_MS = [200, 400] as const;

export async function testStack(
  config: Partial<Config> = {},
  dynamodbEndpoint?: string,
  /** `home`: an existing VICINITY_HOME (a restart); dispose() then leaves it for the caller. */
  options: Partial<
    Pick<
      LocalStackOptions,
      | 'adminAuth'
      | 'readAuth'
      | 'tasks'
      | 'slots'
      | 'interpose'
      | 'deliver'
      | 'delivery'
      | 'buildHooks'
      | 'buildTimeoutMs'
      | 'log'
      | 'home'
      | 'sweepMs'
    >
  > = {},
): Promise<TestStack> {
  const home = options.home ?? (await mkdtemp(join(tmpdir(), 'vicinity-stack-')));
  const stack = await startLocalStack({
    delivery: { retryDelaysMs: TEST_RETRY_DELAYS_MS },
    ...options,
    home,
    port: 0,
    config: { fileWaitMs: 2000, qualitySample: 50, ...config },
    ...(dynamodbEndpoint ? { dynamodbEndpoint } : {}),
  });
  const store = new S3Store(stack.deps.s3, stack.info.bucket);
  const call = async (method: string, path: string, body?: unknown) => {
    const res = await fetch(stack.info.apiUrl + path, {
      method,
      ...(body === undefined
        ? {}
        : {
            body: typeof body === 'string' ? body : JSON.stringify(body),
            headers: { 'content-type': 'application/json' },
          }),
    });
    const text = await res.text();
    let parsed: Record<string, unknown> = {};
    try {
      parsed = JSON.parse(text);
    } catch {
      parsed = { raw: text };
    }
    return { status: res.status, body: parsed, headers: res.headers };
  };
  const putRelease = async (space: string, release: string, releaseJson: unknown): Promise<PutRelease> => {
    const key = `incoming/${space}/${release}/release.json`;
    const after = stack.events.cursor();
    const out = await stack.deps.s3.send(
      new PutObjectCommand({
        Bucket: stack.info.bucket,
        Key: key,
        Body: typeof releaseJson === 'string' ? releaseJson : JSON.stringify(releaseJson),
        ContentType: 'application/json',
      }),
    );
    return { key, etag: (out.ETag ?? '').replaceAll('"', ''), after };
  };
  return Object.assign(stack, {
    store,
    home,
    call,
    get: (path: string) => call('GET', path),
    post: (path: string, body: unknown) => call('POST', path, body),
    publish: async (
      space: string,
      release: string,
      files: Record<string, string | Buffer>,
      releaseJson: unknown,
      opts?: { timeoutMs?: number },
    ) => {
      const prefix = `incoming/${space}/${release}/`;
      for (const [name, content] of Object.entries(files)) {
        await stack.deps.s3.send(
          new PutObjectCommand({ Bucket: stack.info.bucket, Key: prefix + name, Body: content }),
        );
      }
      const put = await putRelease(space, release, releaseJson);
      return stack.settled(put.key, {
        etag: put.etag,
        after: put.after,
        timeoutMs: opts?.timeoutMs ?? 55_000,
      });
    },
    putRelease,
    dispose: async () => {
      await stack.stop();
      if (!options.home) await rm(home, { recursive: true, force: true });
    },
  });
}
