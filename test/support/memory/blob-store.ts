/**
 * An in-memory BlobStore for unit tests: the semantics of S3Store (functions/adapters/s3-store.ts)
 * without a bucket. Tests only; never wired into a function.
 *
 * Mirrors S3 as S3Store exposes it: missing keys read as undefined; ETags are the MD5 of the bytes
 * (the `md5(md5(part)…)-N` form for files putFile would send multipart); ranged reads follow HTTP
 * `Range: bytes=a-b` (the end clamped to the object, a start past it is an error); list returns every
 * key under a prefix in S3's order (UTF-8 byte order); deleting a missing key is not an error. Every
 * read hands out a copy, so a test changing an object later never changes a stream already returned.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { BlobChangedError, type BlobStore, type ReadOptions } from '../../../functions/core/ports';

/** S3Store.putFile's multipart part size (lib-storage Upload): larger files get a multipart ETag. */
const PART_BYTES = 16 * 1024 * 1024;
/** Streams hand bytes out in chunks of this size, as a socket would, so readers see chunk boundaries. */
const CHUNK_BYTES = 64 * 1024;

export interface StoredObject {
  bytes: Buffer;
  etag: string;
  contentType: string;
}

export type BlobOp = { op: 'put' | 'delete'; key: string };

function md5(b: Buffer): string {
  return createHash('md5').update(b).digest('hex');
}

function multipartEtag(b: Buffer): string {
  const parts: Buffer[] = [];
  for (let i = 0; i < b.length; i += PART_BYTES)
    parts.push(
      createHash('md5')
        .update(b.subarray(i, i + PART_BYTES))
        .digest(),
    );
  return `${md5(Buffer.concat(parts))}-${parts.length}`;
}

/** S3's InvalidRange (HTTP 416), as the SDK would throw it. */
class InvalidRangeError extends Error {
  readonly $metadata = { httpStatusCode: 416 };
  constructor(key: string, offset: number, size: number) {
    super(`The requested range bytes=${offset}- is not satisfiable for ${key} (${size} bytes)`);
    this.name = 'InvalidRange';
  }
}

export class MemoryBlobStore implements BlobStore {
  private readonly objects = new Map<string, StoredObject>();
  /** Every write and delete in the order it happened (e.g. "the manifest goes last"). */
  readonly ops: BlobOp[] = [];

  constructor(readonly bucket = 'memory-bucket') {}

  async head(key: string): Promise<{ bytes: number; etag?: string } | undefined> {
    const o = this.objects.get(key);
    return o ? { bytes: o.bytes.length, etag: o.etag } : undefined;
  }

  async getText(key: string, options?: ReadOptions): Promise<string | undefined> {
    const o = this.objects.get(key);
    if (o && options?.ifMatch && o.etag !== options.ifMatch)
      throw new BlobChangedError(key, options.ifMatch, o.etag);
    return o?.bytes.toString('utf8');
  }

  async getStream(
    key: string,
    range?: { offset: number; bytes: number },
    options?: ReadOptions,
  ): Promise<Readable | undefined> {
    const o = this.objects.get(key);
    if (!o) return undefined;
    // S3 answers If-Match with 412 PreconditionFailed, which S3Store turns into BlobChangedError.
    if (options?.ifMatch && o.etag !== options.ifMatch)
      throw new BlobChangedError(key, options.ifMatch, o.etag);
    let bytes = o.bytes;
    // S3Store sends `Range: bytes=offset-(offset+bytes-1)`. A range ending before it starts is not a
    // valid byte-range-spec: HTTP (and S3) ignore it and send the whole object.
    if (range && range.bytes > 0) {
      if (range.offset >= bytes.length) throw new InvalidRangeError(key, range.offset, bytes.length);
      bytes = bytes.subarray(range.offset, Math.min(bytes.length, range.offset + range.bytes));
    }
    const copy = Buffer.from(bytes);
    const chunks: Buffer[] = [];
    for (let i = 0; i < copy.length; i += CHUNK_BYTES) chunks.push(copy.subarray(i, i + CHUNK_BYTES));
    return Readable.from(chunks, { objectMode: false });
  }

  async putText(key: string, text: string, contentType = 'application/json'): Promise<void> {
    this.set(key, Buffer.from(text, 'utf8'), contentType);
  }

  async putFile(key: string, path: string, contentType = 'application/octet-stream'): Promise<void> {
    const bytes = await readFile(path);
    this.set(key, bytes, contentType, bytes.length > PART_BYTES ? multipartEtag(bytes) : md5(bytes));
  }

  async list(prefix: string): Promise<{ key: string; bytes: number }[]> {
    return [...this.objects.entries()]
      .filter(([key]) => key.startsWith(prefix))
      .sort(([a], [b]) => Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8')))
      .map(([key, o]) => ({ key, bytes: o.bytes.length }));
  }

  async deleteKeys(keys: string[]): Promise<void> {
    for (const key of keys) {
      this.objects.delete(key);
      this.ops.push({ op: 'delete', key });
    }
  }

  // ---- Test helpers (not part of the port) ----

  /** Puts raw bytes, as an upload of any other tool would. */
  putBytes(key: string, bytes: Buffer | Uint8Array | string, contentType = 'application/octet-stream'): void {
    this.set(key, Buffer.from(bytes), contentType);
  }

  /** The stored object (a copy), or undefined. */
  object(key: string): StoredObject | undefined {
    const o = this.objects.get(key);
    return o ? { ...o, bytes: Buffer.from(o.bytes) } : undefined;
  }

  /** Every key, sorted. */
  keys(prefix = ''): string[] {
    return [...this.objects.keys()].filter((k) => k.startsWith(prefix)).sort();
  }

  /** Flips one byte of a stored object in place (a corrupted upload or a bad disk), keeping its size. */
  corrupt(key: string, at = 0): void {
    const o = this.objects.get(key);
    if (!o) throw new Error(`no object ${key} to corrupt`);
    const bytes = Buffer.from(o.bytes);
    bytes[at] = (bytes[at] ?? 0) ^ 0xff;
    this.objects.set(key, { ...o, bytes, etag: md5(bytes) });
  }

  private set(key: string, bytes: Buffer, contentType: string, etag = md5(bytes)): void {
    this.objects.set(key, { bytes: Buffer.from(bytes), etag, contentType });
    this.ops.push({ op: 'put', key });
  }
}
