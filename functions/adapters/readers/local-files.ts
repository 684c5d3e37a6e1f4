/** ReleaseFiles over a local folder: the CLI's `validate` command and the tests use it. */
import { open, stat } from 'node:fs/promises';
import { isAbsolute, relative, resolve } from 'node:path';
import type { Readable } from 'node:stream';
import type { ReleaseFiles } from './types';

const STREAM_CHUNK = 1 << 20;

function isMissing(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return code === 'ENOENT' || code === 'ENOTDIR';
}

export function localReleaseFiles(dir: string): ReleaseFiles {
  const root = resolve(dir);
  const pathOf = (file: string): string => {
    const full = resolve(root, file);
    const rel = relative(root, full);
    if (rel === '' || rel.startsWith('..') || isAbsolute(rel)) {
      throw new Error(`${JSON.stringify(file)} is not a path inside the release folder`);
    }
    return full;
  };

  return {
    async size(file: string): Promise<number | undefined> {
      try {
        const s = await stat(pathOf(file));
        return s.isFile() ? s.size : undefined;
      } catch (err) {
        if (isMissing(err)) return undefined;
        throw err;
      }
    },

    async stream(file: string, range?: { offset: number; bytes: number }): Promise<Readable> {
      // Open first so a missing file rejects here rather than as a later stream error.
      const handle = await open(pathOf(file), 'r');
      return handle.createReadStream({
        highWaterMark: STREAM_CHUNK,
        autoClose: true,
        ...(range ? { start: range.offset, end: range.offset + range.bytes - 1 } : {}),
      });
    },

    async range(file: string, offset: number, bytes: number): Promise<Uint8Array> {
      const handle = await open(pathOf(file), 'r');
      try {
        const out = new Uint8Array(bytes);
        let filled = 0;
        while (filled < bytes) {
          const { bytesRead } = await handle.read(out, filled, bytes - filled, offset + filled);
          if (bytesRead === 0) break;
          filled += bytesRead;
        }
        return filled === bytes ? out : out.subarray(0, filled);
      } finally {
        await handle.close();
      }
    },
  };
}
