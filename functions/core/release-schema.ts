/**
 * The zod schema of release.json, loaded by the first parseRelease (./release): a build or a sweep
 * reads a release.json long after init, so zod is not on any function's init path.
 */
import * as z from 'zod';
import { FORMATS, METRICS } from './release';

const relativePath = z
  .string()
  .min(1)
  .refine((p) => !p.startsWith('/') && !p.split('/').includes('..') && !p.includes('\\'), {
    message: 'must be a path inside the release folder (no "..", no leading "/")',
  });

const collectionSchema = z
  .object({
    file: relativePath.optional(),
    files: z.array(relativePath).min(1).optional(),
    vectors: relativePath.optional(),
    ids: relativePath.optional(),
    dims: z.number().int().min(1).max(4096).optional(),
    format: z.enum(FORMATS).optional(),
    metric: z.enum(METRICS, { message: `metric must be one of ${METRICS.join(', ')}` }),
    idColumn: z.string().min(1).optional(),
    vectorColumn: z.string().min(1).optional(),
    M: z.number().int().min(2).max(128).optional(),
    efConstruction: z.number().int().min(10).max(2000).optional(),
    ef: z.number().int().min(1).max(10000).optional(),
    /** Overrides the release-wide quality.recallTarget for this collection. */
    recallTarget: z.number().gt(0).max(1).optional(),
    segments: z.number().int().min(1).max(64).optional(),
    /** Shards of the collection: 1–256, or "auto" (default; docs/contract.md). */
    shards: z.union([z.number().int().min(1).max(256), z.literal('auto')]).optional(),
  })
  .strict()
  .superRefine((c, ctx) => {
    const sources = [c.file !== undefined, c.files !== undefined, c.vectors !== undefined].filter(
      Boolean,
    ).length;
    if (sources !== 1) {
      ctx.addIssue({
        code: 'custom',
        message: 'name exactly one of "file", "files", or "vectors"+"ids"+"dims"',
      });
    }
    if (c.vectors !== undefined && (c.ids === undefined || c.dims === undefined)) {
      ctx.addIssue({ code: 'custom', message: 'raw input needs "vectors", "ids" and "dims"' });
    }
  });

export const releaseSchema = z
  .object({
    collections: z.record(z.string(), collectionSchema).refine((c) => Object.keys(c).length > 0, {
      message: 'at least one collection is required',
    }),
    activate: z.boolean().default(true),
    quality: z
      .object({
        minRecall: z.number().min(0).max(1).optional(),
        sample: z.number().int().min(1).max(100000).optional(),
        minOverlap: z.number().min(0).max(1).nullable().optional(),
        recallTarget: z.number().gt(0).max(1).optional(),
      })
      .strict()
      .optional(),
    seenField: z.string().min(1).optional(),
    /** Delete the release's inputs under incoming/ once its build ends (READY or FAILED). */
    deleteInputsAfterBuild: z.boolean().optional(),
    description: z.string().optional(),
  })
  .strict();
