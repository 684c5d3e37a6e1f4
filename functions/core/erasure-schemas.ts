/**
 * The zod schemas of the erasure bodies, loaded on demand by ./erasure (whose hand-written checks answer
 * the well-formed bodies): only a body they do not pass comes here, for exactly this schema's result or 400.
 */
import * as z from 'zod';
import { MAX_ERASE_IDS } from './erasure';
import { parseWith } from './query-schemas';

export const eraseBodySchema = z
  .object({
    reason: z.string().max(1000).optional(),
    by: z.string().min(1).max(200).optional(),
    /** Extra ids of the same collection, so one call can erase many (the path's id is always included). */
    ids: z.array(z.string()).max(MAX_ERASE_IDS).optional(),
  })
  .strict();

export const restoreBodySchema = z
  .object({ reason: z.string().max(1000).optional(), by: z.string().min(1).max(200).optional() })
  .strict();

export const deleteSpaceBodySchema = z
  .object({
    expectedGeneration: z.number().int().min(0),
    includeInputs: z.boolean().optional(),
    by: z.string().min(1).max(200).optional(),
  })
  .strict();

export const parseEraseBodyZod = (raw: unknown) => parseWith(eraseBodySchema, raw, 'body');
export const parseRestoreBodyZod = (raw: unknown) => parseWith(restoreBodySchema, raw, 'body');
export const parseDeleteSpaceBodyZod = (raw: unknown) => parseWith(deleteSpaceBodySchema, raw, 'body');
