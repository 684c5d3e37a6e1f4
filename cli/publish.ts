/**
 * `vicinity publish <space> <dir|files…>`: uploads a release the way the contract asks — the
 * collection files first (multipart, with a progress bar), `release.json` last — then follows the
 * build until the version is READY or FAILED and prints its report.
 */
import { createReadStream } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { basename, dirname, join, relative, resolve } from 'node:path';
import { KEY_PREFIX } from '../functions/contract';
import { formatProblem, ReleaseInvalidError } from '../functions/core/errors';
import { isValidName, parseVersion } from '../functions/core/names';
import { formatFromFile, METRICS, parseRelease } from '../functions/core/release';
import type { VersionRecord } from '../functions/core/version';
import type { CliContext, PointerView, VersionSummary } from './context';
import { bytes, duration, reportTable, when } from './format';
import { CliError, type Io } from './io';
import { Progress, StatusLine } from './progress';
import { validateRelease } from './validate';

export interface PublishOptions {
  release?: string;
  activate: boolean;
  wait: boolean;
  progress: boolean;
  validate: boolean;
  metric?: string;
  /** Seconds to wait for the build. */
  timeout: number;
  /** Poll interval while following the build. */
  pollMs?: number;
  json?: boolean;
}

interface UploadPlan {
  /** Where release-relative names resolve. */
  root: string;
  /** Release-relative name → local path. */
  files: { name: string; path: string; bytes: number }[];
  releaseText: string;
}

/** A default release name: the UTC time, e.g. 20261125-204512. */
export function defaultReleaseName(now = new Date()): string {
  return now.toISOString().replace(/[-:]/g, '').replace('T', '-').replace(/\..*$/, '').toLowerCase();
}

function stemName(file: string): string {
  return basename(file)
    .replace(/\.(jsonl|ndjson)(\.gz)?$|\.parquet$/, '')
    .toLowerCase()
    .replace(/[^a-z0-9_-]+/g, '-')
    .replace(/^[^a-z0-9]+/, '')
    .slice(0, 63);
}

async function isDir(path: string): Promise<boolean> {
  return (await stat(path).catch(() => undefined))?.isDirectory() ?? false;
}

/** Works out what to upload: a release folder with its release.json, or files (release.json given or generated). */
export async function planUpload(
  inputs: string[],
  cwd: string,
  opts: Pick<PublishOptions, 'metric' | 'activate'>,
): Promise<UploadPlan> {
  const paths = inputs.map((p) => resolve(cwd, p));
  let root: string;
  let releaseText: string;
  let given: Map<string, string> | undefined;
  if (paths.length === 1 && (await isDir(paths[0] as string))) {
    root = paths[0] as string;
    const releasePath = join(root, 'release.json');
    const text = await readFile(releasePath, 'utf8').catch(() => undefined);
    if (text === undefined) {
      throw new CliError(
        `${relative(cwd, releasePath) || releasePath} not found`,
        'a release folder needs a release.json naming its collections (see README "Publishing a release"), or pass the data files and --metric',
      );
    }
    releaseText = text;
  } else {
    for (const p of paths) {
      if (!(await stat(p).catch(() => undefined))?.isFile())
        throw new CliError(`${relative(cwd, p)} is not a file`, 'pass one release folder, or data files');
    }
    const releasePath = paths.find((p) => basename(p) === 'release.json');
    root = dirname(releasePath ?? (paths[0] as string));
    given = new Map(paths.filter((p) => p !== releasePath).map((p) => [basename(p), p]));
    if (releasePath) {
      releaseText = await readFile(releasePath, 'utf8');
    } else {
      const metric = opts.metric ?? 'cosine';
      if (!(METRICS as readonly string[]).includes(metric))
        throw new CliError(`unknown metric ${metric}`, `use one of ${METRICS.join(', ')}`);
      const collections: Record<string, { file: string; metric: string }> = {};
      for (const name of given.keys()) {
        const c = stemName(name);
        if (!formatFromFile(name) || !isValidName(c)) {
          throw new CliError(
            `cannot make a collection of ${name}`,
            'data files end in .jsonl, .jsonl.gz or .parquet and are named after their collection (users.jsonl); or write a release.json',
          );
        }
        collections[c] = { file: name, metric };
      }
      releaseText = JSON.stringify({ collections }, null, 2);
    }
  }

  let spec: Awaited<ReturnType<typeof parseRelease>>;
  try {
    spec = await parseRelease(releaseText);
  } catch (err) {
    if (err instanceof ReleaseInvalidError) {
      throw new CliError(
        'release.json is not valid',
        'fix it and run `vicinity validate <dir>`',
        err.problems.map(formatProblem),
      );
    }
    throw err;
  }
  // --no-activate travels in release.json, which the build reads.
  if (!opts.activate) {
    const raw = JSON.parse(releaseText) as Record<string, unknown>;
    raw.activate = false;
    releaseText = `${JSON.stringify(raw, null, 2)}\n`;
  }

  const files: UploadPlan['files'] = [];
  const problems: string[] = [];
  for (const name of new Set(spec.collections.flatMap((c) => c.files))) {
    const path = given ? given.get(name) : join(root, name);
    const s = path ? await stat(path).catch(() => undefined) : undefined;
    if (!path || !s?.isFile()) {
      problems.push(
        `${name}: named in release.json but ${given ? 'not among the files given' : 'not in the folder'}`,
      );
      continue;
    }
    if (s.size === 0) problems.push(`${name}: the file is empty`);
    files.push({ name, path, bytes: s.size });
  }
  if (problems.length) {
    throw new CliError(
      `the release is incomplete (${problems.length} problem${problems.length > 1 ? 's' : ''})`,
      'nothing was uploaded; fix the files, or release.json',
      problems,
    );
  }
  return { root, files, releaseText };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function uploadAll(
  ctx: CliContext,
  io: Io,
  space: string,
  release: string,
  plan: UploadPlan,
  bar: boolean,
) {
  const s3 = await ctx.s3();
  const [{ PutObjectCommand }, { Upload }] = await Promise.all([
    import('@aws-sdk/client-s3'),
    import('@aws-sdk/lib-storage'),
  ]);
  const bucket = ctx.bucket as string;
  const prefix = `${KEY_PREFIX.incoming}${space}/${release}/`;
  const total = plan.files.reduce((a, f) => a + f.bytes, 0);
  io.err(
    `Uploading ${plan.files.length} file${plan.files.length > 1 ? 's' : ''} (${bytes(total)}) to s3://${bucket}/${prefix}`,
  );
  const progress = new Progress(io, { label: 'upload', total, unit: 'bytes', bar });
  let done = 0;
  try {
    for (const f of plan.files) {
      const upload = new Upload({
        client: s3,
        params: {
          Bucket: bucket,
          Key: prefix + f.name,
          Body: createReadStream(f.path),
          ContentType: contentType(f.name),
        },
        partSize: 8 * 1024 * 1024,
        queueSize: 4,
      });
      upload.on('httpUploadProgress', (p) => progress.update(done + (p.loaded ?? 0), f.name));
      await upload.done();
      done += f.bytes;
      progress.update(done, f.name);
      if (!bar || !io.isTTY) io.err(`  ${f.name}  ${bytes(f.bytes)}  uploaded`);
    }
  } catch (err) {
    progress.abort();
    throw ctx.fail(err, `the bucket ${bucket}`);
  }
  const ms = progress.elapsedMs;
  progress.done(
    `Uploaded ${bytes(total)} in ${duration(ms)} (${bytes(ms > 0 ? (total * 1000) / ms : total)}/s)`,
  );
  // release.json last: its creation is what starts the build.
  try {
    await s3.send(
      new PutObjectCommand({
        Bucket: bucket,
        Key: `${prefix}release.json`,
        Body: plan.releaseText,
        ContentType: 'application/json',
      }),
    );
  } catch (err) {
    throw ctx.fail(err, `the bucket ${bucket}`);
  }
  io.err(`Wrote ${prefix}release.json — the build starts now`);
}

function contentType(name: string): string {
  if (name.endsWith('.jsonl') || name.endsWith('.ndjson')) return 'application/x-ndjson';
  if (name.endsWith('.gz')) return 'application/gzip';
  if (name.endsWith('.json')) return 'application/json';
  return 'application/octet-stream';
}

async function releaseVersions(ctx: CliContext, space: string, release: string): Promise<Set<string>> {
  try {
    return new Set(
      (await ctx.versions(space, 100)).filter((v) => v.release === release).map((v) => v.version),
    );
  } catch (err) {
    if ((err as { status?: number }).status === 404) return new Set();
    throw err;
  }
}

/** Follows the build of the release just uploaded: the version it was given, BUILDING → READY/FAILED. */
async function follow(
  ctx: CliContext,
  io: Io,
  space: string,
  release: string,
  before: Set<string>,
  opts: PublishOptions,
): Promise<VersionRecord> {
  const deadline = Date.now() + opts.timeout * 1000;
  const poll = opts.pollMs ?? (ctx.mode === 'local' ? 300 : 2000);
  const status = new StatusLine(io, opts.progress && io.isTTY);
  const started = Date.now();
  let mine: VersionSummary | undefined;
  try {
    while (!mine) {
      if (Date.now() > deadline) {
        throw new CliError(
          `no version of release ${release} appeared within ${opts.timeout} s`,
          ctx.mode === 'local'
            ? 'is the local stack still running? Builds run one at a time; check its log'
            : "check that the bucket's notification reaches the build function (docs/deploy.md)",
        );
      }
      const versions = await ctx.versions(space, 20).catch((err) => {
        if ((err as { status?: number }).status === 404) return [] as VersionSummary[];
        throw err;
      });
      mine = versions.find((v) => v.release === release && !before.has(v.version));
      if (!mine) {
        status.set(
          `waiting for the build to start… ${Math.round((Date.now() - started) / 1000)} s`,
          'waiting',
        );
        await sleep(poll);
      }
    }
    const version = mine.version;
    for (;;) {
      const record = await ctx.version(space, version);
      if (record && record.status !== 'BUILDING') {
        status.end();
        return record;
      }
      if (Date.now() > deadline) {
        throw new CliError(
          `${version} is still BUILDING after ${opts.timeout} s`,
          `follow it with \`vicinity status ${space}\`, or wait longer with --timeout`,
        );
      }
      status.set(
        `${version} BUILDING… ${Math.round((Date.now() - started) / 1000)} s`,
        `${version} BUILDING`,
      );
      await sleep(poll);
    }
  } finally {
    status.end();
  }
}

/** After READY: did the pointer move to it? Activation follows READY by a moment. */
async function activationOf(
  ctx: CliContext,
  space: string,
  version: string,
  expect: boolean,
): Promise<PointerView> {
  const n = parseVersion(version) ?? 0;
  const until = Date.now() + (expect ? 10_000 : 0);
  for (;;) {
    const { pointer } = await ctx.space(space, 1);
    if (!expect || pointer.version === version || Date.now() > until) return pointer;
    const high = (pointer as { highWater?: number }).highWater;
    if (high !== undefined && high > n) return pointer;
    await sleep(200);
  }
}

export async function publish(
  ctx: CliContext,
  io: Io,
  space: string,
  inputs: string[],
  opts: PublishOptions,
): Promise<VersionRecord | undefined> {
  if (!isValidName(space))
    throw new CliError(
      `invalid space name ${JSON.stringify(space)}`,
      'use lower-case letters, digits, - and _ (e.g. music)',
    );
  const release = opts.release ?? defaultReleaseName();
  if (!isValidName(release))
    throw new CliError(
      `invalid release name ${JSON.stringify(release)}`,
      'use lower-case letters, digits, - and _ (e.g. 2026-11-25)',
    );
  if (inputs.length === 0) throw new CliError('nothing to publish', 'pass a release folder or data files');
  const plan = await planUpload(inputs, io.cwd, opts);

  if (opts.validate) {
    const result = await validateRelease(plan.root, io, {
      progress: opts.progress,
      releaseText: plan.releaseText,
    });
    if (result.problemCount > 0) {
      throw new CliError(
        `validation found ${result.problemCount} problem${result.problemCount > 1 ? 's' : ''}; nothing was uploaded`,
        'fix the lines above and publish again',
      );
    }
  }

  const before = opts.wait ? await releaseVersions(ctx, space, release) : new Set<string>();
  await uploadAll(ctx, io, space, release, plan, opts.progress);
  if (!opts.wait) {
    io.out(`Published release ${release} of ${space}; follow it with \`vicinity status ${space}\``);
    return undefined;
  }

  const record = await follow(ctx, io, space, release, before, opts);
  const took = record.timings?.totalMs;
  if (record.status === 'FAILED') {
    if (opts.json) io.out(JSON.stringify(record, null, 2));
    throw new CliError(
      `${record.version} (release ${release}) FAILED: ${record.reason ?? 'no reason recorded'}`,
      'check the files locally with `vicinity validate <dir>`, fix them and publish again; the active version keeps serving',
      (record.problems ?? []).map(formatProblem),
    );
  }
  if (record.status !== 'READY') {
    throw new CliError(`${record.version} ended ${record.status}`, `see \`vicinity status ${space}\``);
  }
  const pointer = await activationOf(
    ctx,
    space,
    record.version,
    opts.activate && record.autoActivate !== false,
  );
  if (opts.json) {
    io.out(JSON.stringify({ ...record, active: pointer.version === record.version, pointer }, null, 2));
    return record;
  }
  io.out(
    `${record.version} READY (release ${release}${took !== undefined ? `, built in ${duration(took)}` : ''})`,
  );
  io.out(reportTable(record));
  if (pointer.version === record.version) {
    io.out(
      `Active: ${space} now serves ${record.version} (generation ${pointer.generation}, previous ${pointer.previous ?? 'none'})`,
    );
  } else if (!opts.activate || record.autoActivate === false) {
    io.out(
      `Not activated (--no-activate). Serving: ${pointer.version ?? 'nothing'}. Compare, then switch:\n` +
        `  vicinity diff ${space} ${pointer.version ?? '<active>'} ${record.version}\n` +
        `  vicinity activate ${space} ${record.version}`,
    );
  } else {
    io.out(
      `Not activated: ${space} serves ${pointer.version ?? 'nothing'} (changed by ${pointer.changedBy ?? '-'} at ${when(pointer.changedAt)}); ` +
        `a build only activates versions above the highest ever activated. Switch explicitly: vicinity activate ${space} ${record.version}`,
    );
  }
  return record;
}
