/** The streaming input readers, one per release input format. */
import type { InputFormat } from '../../core/release';
import { readJsonl } from './jsonl';
import { readRaw } from './raw';
import type { CollectionReader } from './types';

export { readJsonl } from './jsonl';
export { localReleaseFiles } from './local-files';
export { readRaw } from './raw';
export { isSideFile } from './rows';
export type { CollectionReader, FilePart, ReaderOptions, ReleaseFiles, Row } from './types';
export { ProblemCollector } from './types';

/**
 * Parquet input, with hyparquet and its compressors (~160 KB bundled) loaded on the first Parquet
 * collection: a build of JSONL or raw inputs never loads them, and no cold start waits for them.
 */
export const readParquet: CollectionReader = async function* (options) {
  const { readParquet: read } = await import('./parquet');
  yield* read(options);
};

/** The reader for a collection's input format. `jsonl` also reads gzip, recognised by name or magic bytes. */
export function readerFor(format: InputFormat): CollectionReader {
  switch (format) {
    case 'jsonl':
    case 'jsonl.gz':
      return readJsonl;
    case 'parquet':
      return readParquet;
    case 'raw':
      return readRaw;
    default: {
      const unknown: never = format;
      throw new Error(`no reader for format ${String(unknown)}`);
    }
  }
}
