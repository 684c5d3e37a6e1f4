import { createReadStream } from 'node:fs';
import type { Readable } from 'node:stream';
import {
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  type S3Client,
} from '@aws-sdk/client-s3';

import { BlobChangedError, type BlobStore, type ReadOptions } from '../core/ports';

function isNotFound(err: unknown): boolean {
  const e = err as { name?: string; $metadata?: { httpStatusCode?: number } };
  return e?.name === 'NoSuchKey' || e?.name === 'NotFound' || e?.$metadata?.httpStatusCode === 404;
}

function isPreconditionFailed(err: unknown): boolean {
  const e = err as { name?: string; $metadata?: { httpStatusCode?: number } };
  return e?.name === 'PreconditionFailed' || e?.$metadata?.httpStatusCode === 412;
}

/**
 * A conditional GET: S3 answers 412 when the ETag differs; stand-ins that ignore If-Match (s3rver
 * does) are caught by comparing the ETag of the response, which S3 sends on every GET, ranged or not.
 */
async function conditionalGet<T extends { ETag?: string }>(
  key: string,
  options: ReadOptions | undefined,
  get: () => Promise<T>,
): Promise<T> {
  let r: T;
  try {
    r = await get();
  } catch (err) {
    if (options?.ifMatch && isPreconditionFailed(err)) throw new BlobChangedError(key, options.ifMatch);
    throw err;
  }
  const etag = r.ETag?.replaceAll('"', '');
  if (options?.ifMatch && etag && etag !== options.ifMatch) {
    (r as { Body?: { destroy?: () => void } }).Body?.destroy?.();
    throw new BlobChangedError(key, options.ifMatch, etag);
  }
  return r;
}

const quoted = (etag: string) => (etag.startsWith('"') ? etag : `"${etag}"`);

/** BlobStore over S3 (or any S3 wire-compatible endpoint). */
export class S3Store implements BlobStore {
  constructor(
    private readonly s3: S3Client,
    readonly bucket: string,
  ) {}

  async head(key: string): Promise<{ bytes: number; etag?: string } | undefined> {
    try {
      const r = await this.s3.send(new HeadObjectCommand({ Bucket: this.bucket, Key: key }));
      return { bytes: r.ContentLength ?? 0, etag: r.ETag?.replaceAll('"', '') };
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  async getText(key: string, options?: ReadOptions): Promise<string | undefined> {
    try {
      const r = await conditionalGet(key, options, () =>
        this.s3.send(
          new GetObjectCommand({
            Bucket: this.bucket,
            Key: key,
            ...(options?.ifMatch ? { IfMatch: quoted(options.ifMatch) } : {}),
          }),
        ),
      );
      return (await r.Body?.transformToString('utf-8')) ?? '';
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  async getStream(
    key: string,
    range?: { offset: number; bytes: number },
    options?: ReadOptions,
  ): Promise<Readable | undefined> {
    try {
      const r = await conditionalGet(key, options, () =>
        this.s3.send(
          new GetObjectCommand({
            Bucket: this.bucket,
            Key: key,
            ...(range ? { Range: `bytes=${range.offset}-${range.offset + range.bytes - 1}` } : {}),
            ...(options?.ifMatch ? { IfMatch: quoted(options.ifMatch) } : {}),
          }),
        ),
      );
      return r.Body as Readable;
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  async putText(key: string, text: string, contentType = 'application/json'): Promise<void> {
    await this.s3.send(
      new PutObjectCommand({ Bucket: this.bucket, Key: key, Body: text, ContentType: contentType }),
    );
  }

  async putFile(key: string, path: string, contentType = 'application/octet-stream'): Promise<void> {
    // Loaded on first use: only the build uploads files, so the query and admin functions never load it.
    const { Upload } = await import('@aws-sdk/lib-storage');
    const upload = new Upload({
      client: this.s3,
      params: { Bucket: this.bucket, Key: key, Body: createReadStream(path), ContentType: contentType },
      partSize: 16 * 1024 * 1024,
      queueSize: 4,
    });
    await upload.done();
  }

  async list(prefix: string): Promise<{ key: string; bytes: number }[]> {
    const out: { key: string; bytes: number }[] = [];
    let token: string | undefined;
    do {
      const r = await this.s3.send(
        new ListObjectsV2Command({ Bucket: this.bucket, Prefix: prefix, ContinuationToken: token }),
      );
      for (const o of r.Contents ?? []) if (o.Key) out.push({ key: o.Key, bytes: o.Size ?? 0 });
      token = r.IsTruncated ? r.NextContinuationToken : undefined;
    } while (token);
    return out;
  }

  async deleteKeys(keys: string[]): Promise<void> {
    for (let i = 0; i < keys.length; i += 1000) {
      const chunk = keys.slice(i, i + 1000);
      await this.s3.send(
        new DeleteObjectsCommand({
          Bucket: this.bucket,
          Delete: { Objects: chunk.map((Key) => ({ Key })), Quiet: true },
        }),
      );
    }
  }
}
