/**
 * Where a test can SIGKILL a build, in build order. Used by crash-build.ts (a build in its own
 * process) and stack-process.ts (a whole local stack, as `npm start` runs it).
 * - afterClaim: the version is claimed and this builder's lease taken (the DynamoDB UpdateItem that
 *   takes it returned). No builder hook exists there: seen at the DynamoDB client.
 * - midIndex: ingest done, the HNSW build under way (its collection directory appeared in the work
 *   dir). No builder hook exists there: seen on disk.
 * - afterSnapshotUpload (= beforeReady): every snapshot file and the manifest are in S3, the version
 *   is still BUILDING (the builder's beforeReady hook runs right after the manifest upload).
 * - beforeActivate: the version is READY, the pointer not yet written (the builder's hook).
 */
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { BuildDeps } from '../../functions/builder/build-release';
import type { HandlerDeps } from '../../functions/common/wiring';

export const CRASH_POINTS = [
  'afterClaim',
  'midIndex',
  'afterSnapshotUpload',
  'beforeReady',
  'beforeActivate',
] as const;
export type CrashPoint = (typeof CRASH_POINTS)[number];

export function isCrashPoint(p: string | undefined): p is CrashPoint {
  return (CRASH_POINTS as readonly string[]).includes(p ?? '');
}

export const die = async (): Promise<void> => {
  process.kill(process.pid, 'SIGKILL');
  await new Promise(() => undefined);
};

/** True when a collection directory exists under a build work dir (`{cacheDir}/build/{work}/{collection}`). */
async function indexing(buildDir: string): Promise<boolean> {
  const works = await readdir(buildDir, { withFileTypes: true }).catch(() => []);
  for (const w of works) {
    if (!w.isDirectory()) continue;
    const inner = await readdir(join(buildDir, w.name), { withFileTypes: true }).catch(() => []);
    if (inner.some((d) => d.isDirectory())) return true;
  }
  return false;
}

/**
 * Arms `point` on the clients of `deps` (the ones the build handler will use) and returns the
 * builder hooks to pass to createBuildHandler.
 */
export function armCrash(
  point: CrashPoint,
  deps: HandlerDeps,
): Partial<Pick<BuildDeps, 'beforeReady' | 'beforeActivate'>> {
  if (point === 'afterClaim') {
    deps.dynamo.middlewareStack.add(
      (next, context) => async (args) => {
        const result = await next(args);
        const update = (args.input as { UpdateExpression?: string }).UpdateExpression ?? '';
        if (
          context.commandName === 'UpdateItemCommand' &&
          /leaseOwner = :o/.test(update) &&
          /attempts/.test(update)
        )
          await die();
        return result;
      },
      { step: 'initialize', name: 'crashAfterClaim' },
    );
  }
  if (point === 'midIndex') {
    const buildDir = join(deps.config.cacheDir, 'build');
    // Polls the disk: the HNSW build runs in worker threads and has no hook of its own.
    const poll = setInterval(() => {
      indexing(buildDir).then((yes) => (yes ? die() : undefined));
    }, 2);
    poll.unref();
  }
  if (point === 'afterSnapshotUpload' || point === 'beforeReady') return { beforeReady: die };
  if (point === 'beforeActivate') return { beforeActivate: die };
  return {};
}
