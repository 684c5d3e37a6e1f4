/** The streaming input readers, one per release input format. */
import type { InputFormat } from '../../core/release';
import { readJsonl } from './jsonl';
import { readParquet } from './parquet';
import { readRaw } from './raw';
import type { CollectionReader } from './types';

export { readJsonl } from './jsonl';
export { localReleaseFiles } from './local-files';
export { readParquet } from './parquet';
export { readRaw } from './raw';
export { isSideFile } from './rows';
export type { CollectionReader, ReaderOptions, ReleaseFiles, Row } from './types';
export { ProblemCollector } from './types';

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
