/** A whole local stack per test file (own s3rver + dynalite), as `npm start` runs it, on free ports. */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { S3Store } from '../../functions/adapters/s3-store';
import type { Config } from '../../functions/common/config';
import { type LocalStack, type LocalStackOptions, startLocalStack } from '../../local/stack';

process.env.POWERTOOLS_METRICS_DISABLED = 'true';
process.env.POWERTOOLS_LOG_LEVEL = 'CRITICAL';

export interface TestStack extends LocalStack {
  store: S3Store;
  home: string;
  get(path: string): Promise<{ status: number; body: Record<string, unknown>; headers: Headers }>;
  post(
    path: string,
    body: unknown,
  ): Promise<{ status: number; body: Record<string, unknown>; headers: Headers }>;
  publish(
    space: string,
    release: string,
    files: Record<string, string | Buffer>,
    releaseJson: unknown,
  ): Promise<void>;
  dispose(): Promise<void>;
}

export async function testStack(
  config: Partial<Config> = {},
  dynamodbEndpoint?: string,
  options: Pick<LocalStackOptions, 'adminAuth' | 'tasks'> = {},
): Promise<TestStack> {
  const home = await mkdtemp(join(tmpdir(), 'vicinity-stack-'));
  const stack = await startLocalStack({
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
  return Object.assign(stack, {
    store,
    home,
    get: (path: string) => call('GET', path),
    post: (path: string, body: unknown) => call('POST', path, body),
    publish: async (
      space: string,
      release: string,
      files: Record<string, string | Buffer>,
      releaseJson: unknown,
    ) => {
      const prefix = `incoming/${space}/${release}/`;
      for (const [name, content] of Object.entries(files)) {
        await stack.deps.s3.send(
          new PutObjectCommand({ Bucket: stack.info.bucket, Key: prefix + name, Body: content }),
        );
      }
      await store.putText(
        `${prefix}release.json`,
        typeof releaseJson === 'string' ? releaseJson : JSON.stringify(releaseJson),
      );
      await stack.idle();
    },
    dispose: async () => {
      await stack.stop();
      await rm(home, { recursive: true, force: true });
    },
  });
}
