import * as z from 'zod';
const s = z.object({ a: z.string(), b: z.number().int().min(1), c: z.array(z.string()).default([]), d: z.enum(['x','y']).optional() });
export const handler = (x: unknown) => s.safeParse(x);
