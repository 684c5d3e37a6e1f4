/**
 * The activate and rollback bodies: a hand-written check answers a well-formed body; anything else is
 * answered by the zod schemas in ./body-schemas, loaded then, so zod is not on the admin function's init path.
 */
import { CHANGED_BY, type Pointer } from '../core/pointer';
import { bool, checkObject, FAIL, int, type ObjectSpec, oneOf } from '../core/shape';

const loadSchemas = () => import('./body-schemas');

const force = { check: bool };
const by = { check: oneOf(CHANGED_BY) };
const expectedGeneration = { check: int(0), required: true };
// Not strict, as the schemas are not: fields they do not name are dropped.
const ACTIVATE: ObjectSpec = {
  version: { check: (v: unknown) => (typeof v === 'string' ? v : FAIL), required: true },
  expectedGeneration,
  force,
  by,
};
const ROLLBACK: ObjectSpec = { expectedGeneration, force, by };

export interface RollbackBody {
  expectedGeneration: number;
  force?: boolean | undefined;
  by?: Pointer['changedBy'] | undefined;
}
export interface ActivateBody extends RollbackBody {
  version: string;
}

export async function parseActivateBody(body: unknown): Promise<ActivateBody> {
  const fast = checkObject(body, ACTIVATE, false);
  return fast ? (fast as unknown as ActivateBody) : (await loadSchemas()).parseActivateBodyZod(body);
}

export async function parseRollbackBody(body: unknown): Promise<RollbackBody> {
  const fast = checkObject(body, ROLLBACK, false);
  return fast ? (fast as unknown as RollbackBody) : (await loadSchemas()).parseRollbackBodyZod(body);
}
