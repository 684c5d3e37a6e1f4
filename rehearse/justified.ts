/**
 * Grants the rehearsal's story does not exercise, each kept on purpose: the code path that needs it
 * is named. An allowed-but-unused grant that matches none of these is an OVER-GRANT (remove it from
 * infra/, or add it here with the reason, and to the table in docs/deploy.md).
 */

export interface Justification {
  /** The function, by its logical ID's construct prefix (`SweeperFunction…`, `ShardSlotsSlot3Function…`). */
  readonly fn: RegExp;
  readonly action: string;
  /** The granted resource pattern, as in the template (object ARNs end in `/<prefix>/*`). */
  readonly resource: RegExp;
  /** The grant's condition, when the justification is for one value (`StringLike s3:prefix=incoming/*`). */
  readonly condition?: RegExp;
  readonly why: string;
}

const MULTIPART =
  'files above 16 MB go up as multipart uploads (lib-storage Upload), which abort their parts on failure; the story’s files are single PUTs';
const NOT_FOUND =
  'S3 answers a GET of a missing object with 404 only to a caller that may list the prefix (else 403): a missing snapshot file must read as missing, not as access denied';

export const JUSTIFIED: readonly Justification[] = [
  {
    fn: /^BuildPipelineBuild/,
    action: 's3:DeleteObject',
    resource: /\/staging\/\*$/,
    why: 'a build that FAILS deletes the staging its plan may have written (build-release.ts); the story’s builds that fail are unsharded, and its sharded build succeeds',
  },
  {
    fn: /^BuildPipelineBuild/,
    action: 's3:ListBucket',
    resource: /./,
    condition: /s3:prefix=staging\/\*$/,
    why: 'a build that FAILS lists the staging it deletes',
  },
  {
    fn: /^Sweeper/,
    action: 's3:DeleteObject',
    resource: /\/staging\/\*$/,
    why: 'the sweeper deletes the staging of settled sharded and FAILED versions, each sweep until 15 minutes after they settle (longer than the story waits)',
  },
  {
    fn: /^(BuildPipelineBuild|BuildTasks)/,
    action: 's3:ListBucket',
    resource: /./,
    condition: /s3:prefix=incoming\/\*$/,
    why: 'a data file release.json names but not uploaded yet (aws s3 sync has no order) must read as missing — 404, waited for — not as 403',
  },
  {
    fn: /^BuildTasks/,
    action: 's3:ListBucket',
    resource: /./,
    condition: /s3:prefix=snapshots\/\*$/,
    why: 'the finaliser’s retention lists the snapshot files of a version it deletes',
  },
  {
    fn: /^BuildPipelineBuild/,
    action: 's3:AbortMultipartUpload',
    resource: /\/snapshots\/\*$/,
    why: MULTIPART,
  },
  {
    fn: /^BuildTasks/,
    action: 's3:AbortMultipartUpload',
    resource: /\/(snapshots|staging)\/\*$/,
    why: MULTIPART,
  },
  {
    fn: /^BuildTasks/,
    action: 's3:GetObject',
    resource: /\/snapshots\/\*$/,
    why: 'the finaliser reads the serving version’s snapshot for overlap@10 (the story’s sharded release is its space’s first)',
  },
  {
    fn: /^BuildTasks/,
    action: 's3:DeleteObject',
    resource: /\/snapshots\/\*$/,
    why: 'the finaliser runs retention, deleting the snapshots of versions past VICINITY_RETAIN_VERSIONS (the sharded space has one version)',
  },
  { fn: /^Sweeper/, action: 's3:AbortMultipartUpload', resource: /\/snapshots\/\*$/, why: MULTIPART },
  {
    fn: /^Sweeper/,
    action: 's3:DeleteObject',
    resource: /\/snapshots\/\*$/,
    why: 'objects a purge replaced are deleted after VICINITY_RETENTION_GRACE_MS (30 s, longer than the story waits), and a deleted space’s snapshots',
  },
  {
    fn: /^Sweeper/,
    action: 's3:DeleteObject',
    resource: /\/incoming\/\*$/,
    why: 'DELETE /spaces/{space} with includeInputs: the sweeper deletes the space’s uploads',
  },
  {
    fn: /^Sweeper/,
    action: 's3:ListBucket',
    resource: /./,
    why: 'a space deletion lists the space’s snapshots (and uploads) to delete them',
  },
  {
    fn: /^Sweeper/,
    action: 'dynamodb:PutItem',
    resource: /./,
    why: 'activating a settled build (a lost auto-activation) moves the pointer, which writes a history item',
  },
  {
    fn: /^Sweeper/,
    action: 'dynamodb:BatchWriteItem',
    resource: /./,
    why: 'a space deletion deletes the space’s items (versions, claims, history, erasures) in batches',
  },
  {
    fn: /^Sweeper/,
    action: 'events:PutEvents',
    resource: /./,
    why: 'failing an abandoned build puts VersionFailed; activating a settled build puts PointerMoved (the story has neither)',
  },
  { fn: /^QueryApiQuery/, action: 's3:ListBucket', resource: /./, why: NOT_FOUND },
  { fn: /^ShardSlotsSlot\d+/, action: 's3:ListBucket', resource: /./, why: NOT_FOUND },
  {
    fn: /^ShardSlotsSlot\d+/,
    action: 'dynamodb:GetItem',
    resource: /./,
    why: 'when a snapshot file is missing the slot reads the version record to tell a DELETED version (404) from a broken one',
  },
];

export function justification(
  functionId: string,
  action: string,
  resource: string,
  condition?: string,
): string | undefined {
  return JUSTIFIED.find(
    (j) =>
      j.fn.test(functionId) &&
      j.action === action &&
      j.resource.test(resource) &&
      (!j.condition || j.condition.test(condition ?? '')),
  )?.why;
}
