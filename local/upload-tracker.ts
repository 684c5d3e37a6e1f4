/**
 * Which release.json uploads made through the local stack's own S3 client still wait for their S3
 * event: s3rver sends it over IPC, possibly after the PutObject response. `idle()` waits on this
 * state instead of a fixed wait.
 */
import type { S3Client } from '@aws-sdk/client-s3';
import { releaseRecord } from './event-queue';

const UPLOAD_COMMANDS = new Set(['PutObjectCommand', 'CompleteMultipartUploadCommand']);

const id = (key: string, etag: string | undefined) => `${key}\n${etag?.replaceAll('"', '') ?? ''}`;

export class UploadTracker {
  /** Uploads minus events, per key + ETag: > 0 means an event is still to come. */
  private readonly balance = new Map<string, number>();
  private readonly waiters = new Set<() => void>();

  /** Counts every successful release.json upload sent through `s3`. */
  watch(s3: S3Client): void {
    s3.middlewareStack.add(
      (next, context) => async (args) => {
        const result = await next(args);
        const input = args.input as { Key?: string };
        if (UPLOAD_COMMANDS.has(context.commandName ?? '') && input.Key) {
          const probe = releaseRecord({
            eventName: 'ObjectCreated:Put',
            s3: { object: { key: input.Key } },
          });
          const etag = (result.output as { ETag?: string }).ETag;
          if (probe) this.add(id(probe.key, etag), 1);
        }
        return result;
      },
      { step: 'initialize', name: 'vicinityUploadTracker' },
    );
  }

  received(key: string, etag: string | undefined): void {
    this.add(id(key, etag), -1);
  }

  /** The keys whose upload went through but whose event has not arrived. */
  outstanding(): string[] {
    return [...this.balance].filter(([, n]) => n > 0).map(([k]) => k.split('\n')[0] as string);
  }

  allReceived(timeoutMs: number): Promise<void> {
    if (this.outstanding().length === 0) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const done = () => {
        if (this.outstanding().length > 0) return;
        clearTimeout(timer);
        this.waiters.delete(done);
        resolve();
      };
      const timer = setTimeout(() => {
        this.waiters.delete(done);
        reject(
          new Error(`no S3 event within ${timeoutMs} ms for the upload of ${this.outstanding().join(', ')}`),
        );
      }, timeoutMs);
      this.waiters.add(done);
    });
  }

  private add(k: string, n: number): void {
    const v = (this.balance.get(k) ?? 0) + n;
    if (v === 0) this.balance.delete(k);
    else this.balance.set(k, v);
    for (const w of [...this.waiters]) w();
  }
}
