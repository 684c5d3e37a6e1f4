/**
 * The zod schemas of the activate and rollback bodies, loaded on demand by ./bodies (whose hand-written
 * checks answer the well-formed bodies): only a body they do not pass comes here, for exactly this
 * schema's result or 400.
 */
import * as z from 'zod';
import { BadRequestError } from '../core/errors';
import { CHANGED_BY } from '../core/pointer';
import { zodDetail } from '../core/query-schemas';

export const activateBody = z.object({
  version: z.string(),
  expectedGeneration: z.number().int().min(0),
  force: z.boolean().optional(),
  by: z.enum(CHANGED_BY).optional(),
});
export const rollbackBody = z.object({
  expectedGeneration: z.number().int().min(0),
  force: z.boolean().optional(),
  by: z.enum(CHANGED_BY).optional(),
});

function parse<T>(schema: z.ZodType<T>, body: unknown): T {
  const r = schema.safeParse(body);
  if (!r.success) throw new BadRequestError(zodDetail(r.error, 'body'));
  return r.data;
}

export const parseActivateBodyZod = (body: unknown) => parse(activateBody, body);
export const parseRollbackBodyZod = (body: unknown) => parse(rollbackBody, body);
