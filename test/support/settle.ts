/**
 * Waiting for a sharded build: `publish` settles when the S3-triggered build returns, which for a
 * sharded collection is when its tasks are dispatched; the version settles when the last task finishes.
 */
import type { TestStack } from './local';

/** Resolves once the space's pointer names `version`; throws at the deadline. */
export async function pointerAt(s: TestStack, space: string, version: string, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    const r = await s.get(`/v1/spaces/${space}`);
    if ((r.body.active as { version?: string } | null)?.version === version) return;
    if (Date.now() > deadline)
      throw new Error(`${space}: pointer still at ${JSON.stringify(r.body.active)}, not ${version}`);
    await new Promise((ok) => setTimeout(ok, 100));
  }
}

/**
 * Polls the version record until it leaves BUILDING and returns it. A READY version that activates
 * (`activates`, the default) is also waited on until the pointer names it: READY is written just before
 * the activation that follows it.
 */
export async function versionSettled(
  s: TestStack,
  space: string,
  version: string,
  opts: { ms?: number; activates?: boolean } = {},
): Promise<Record<string, unknown>> {
  const ms = opts.ms ?? 120_000;
  const deadline = Date.now() + ms;
  for (;;) {
    const r = await s.get(`/v1/spaces/${space}/versions/${version}`);
    if (r.status === 200 && r.body.status !== 'BUILDING') {
      if (r.body.status === 'READY' && opts.activates !== false)
        await pointerAt(s, space, version, Math.min(30_000, ms));
      return r.body;
    }
    if (Date.now() > deadline)
      throw new Error(`${space} ${version} still BUILDING: ${JSON.stringify(r.body)}`);
    await new Promise((ok) => setTimeout(ok, 200));
  }
}
