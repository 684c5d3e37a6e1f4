/**
 * Where the CLI's commands go. By default the local stack `npm start` runs: `VICINITY_HOME/local.json`
 * (default ./.vicinity) names its API, S3 and DynamoDB endpoints, bucket, table and credentials.
 * With `--bucket`/`--table`/`--profile` it talks to AWS through the standard credential chain; with
 * only `--api-url` it talks to that API.
 *
 * Reads (status, versions, the build's progress) use the HTTP API when there is one, else the
 * DynamoDB registry. activate/rollback use the admin API locally; against AWS (whose admin routes need
 * SigV4) they call the core use cases on the DynamoDB registry directly — the same conditional write
 * on the pointer, with changedBy `cli`.
 */

import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { S3Client } from '@aws-sdk/client-s3';
import type { ClientConfig } from '../functions/adapters/aws-clients';
import type { DynamoRegistry } from '../functions/adapters/dynamo-registry';
import { httpStatus } from '../functions/common/problem';
import { activateVersion, rollbackSpace } from '../functions/core/activation';
import { VicinityError } from '../functions/core/errors';
import type { HistoryEntry, Pointer } from '../functions/core/pointer';
import type { VersionRecord } from '../functions/core/version';
import { type VersionSummary, versionSummary } from '../functions/core/version';
import type { LocalInfo } from '../local/stack';
import { asCliError, CliError } from './io';

export interface GlobalOptions {
  home?: string;
  apiUrl?: string;
  bucket?: string;
  table?: string;
  region?: string;
  profile?: string;
}

/** `VICINITY_HOME/local.json`, as the local stack writes it. */
export type LocalFile = LocalInfo;

export type { VersionSummary };

export interface PointerView {
  version: string | null;
  generation: number;
  previous: string | null;
  changedAt: string | null;
  changedBy: string | null;
}

/** An answer of the service that is not a success: the HTTP status and the problem body. */
export class ServiceProblem extends CliError {
  constructor(
    readonly status: number,
    detail: string,
    readonly body: Record<string, unknown>,
    hint?: string,
  ) {
    super(detail, hint ?? hintForStatus(status));
  }
  get pointer(): PointerView | undefined {
    return this.body.pointer as PointerView | undefined;
  }
}

function hintForStatus(status: number): string | undefined {
  switch (status) {
    case 400:
      return 'check the arguments (see `vicinity <command> --help`)';
    case 403:
      return 'the admin routes need IAM (SigV4) in AWS: pass --table so the CLI switches through DynamoDB';
    case 404:
      return 'check the space and version names: `vicinity versions <space>`';
    case 409:
      return 'someone else moved the pointer first: `vicinity status <space>`, then try again';
    case 422:
      return undefined;
    case 503:
      return 'the snapshot could not be loaded; try again in a few seconds';
    default:
      return status >= 500 ? 'the service failed; its logs name the request id' : undefined;
  }
}

const toSummary = versionSummary;

const enc = encodeURIComponent;

export class CliContext {
  readonly mode: 'local' | 'aws' | 'api';
  readonly apiUrl?: string;
  readonly bucket?: string;
  readonly table?: string;
  readonly home: string;
  private readonly clientConfig?: ClientConfig;
  private s3Client?: S3Client;
  private registryInstance?: DynamoRegistry;
  private closers: (() => void)[] = [];

  constructor(opts: GlobalOptions, env: NodeJS.ProcessEnv, cwd: string) {
    this.home = resolve(cwd, opts.home ?? env.VICINITY_HOME ?? '.vicinity');
    if (opts.bucket || opts.table || opts.profile) {
      this.mode = 'aws';
      if (opts.profile) env.AWS_PROFILE = opts.profile;
      const region = opts.region ?? env.AWS_REGION ?? env.AWS_DEFAULT_REGION;
      if (!region)
        throw new CliError(
          'no AWS region given',
          'pass --region (e.g. --region eu-west-1) or set AWS_REGION',
        );
      this.clientConfig = { region };
      this.bucket = opts.bucket;
      this.table = opts.table;
      this.apiUrl = opts.apiUrl?.replace(/\/+$/, '');
    } else if (opts.apiUrl) {
      this.mode = 'api';
      this.apiUrl = opts.apiUrl.replace(/\/+$/, '');
    } else {
      this.mode = 'local';
      const file = join(this.home, 'local.json');
      let local: LocalFile;
      try {
        local = JSON.parse(readFileSync(file, 'utf8')) as LocalFile;
      } catch (err) {
        const missing = (err as { code?: string }).code === 'ENOENT';
        throw new CliError(
          missing
            ? `no local stack found: ${file} does not exist`
            : `cannot read ${file}: ${(err as Error).message}`,
          'start the local stack with `npm start` (or set VICINITY_HOME / --home), or pass --bucket/--table/--api-url for AWS',
        );
      }
      this.apiUrl = local.apiUrl;
      this.bucket = local.bucket;
      this.table = local.table;
      this.clientConfig = {
        region: local.region,
        s3Endpoint: local.s3Endpoint,
        dynamodbEndpoint: local.dynamodbEndpoint,
        credentials: { accessKeyId: local.accessKeyId, secretAccessKey: local.secretAccessKey },
      };
    }
  }

  /** Wraps an AWS SDK or network failure into one line and a hint. */
  fail(err: unknown, endpoint?: string): CliError {
    return asCliError(err, { endpoint: endpoint ?? this.apiUrl, local: this.mode === 'local' });
  }

  /** The S3 client (the SDK is loaded on first use: most commands never need it). */
  async s3(): Promise<S3Client> {
    if (!this.clientConfig || !this.bucket)
      throw new CliError('no bucket to upload to', 'pass --bucket (with --region/--profile) for AWS');
    if (!this.s3Client) {
      const { createS3Client } = await import('../functions/adapters/aws-clients');
      const c = createS3Client(this.clientConfig);
      this.s3Client = c;
      this.closers.push(() => c.destroy());
    }
    return this.s3Client;
  }

  async registry(): Promise<DynamoRegistry> {
    if (!this.clientConfig || !this.table)
      throw new CliError(
        'no DynamoDB table given',
        'pass --table (the stack output "Table") with --region/--profile',
      );
    if (!this.registryInstance) {
      const [{ createDynamoClient }, { DynamoRegistry }] = await Promise.all([
        import('../functions/adapters/aws-clients'),
        import('../functions/adapters/dynamo-registry'),
      ]);
      const dynamo = createDynamoClient(this.clientConfig);
      this.closers.push(() => dynamo.destroy());
      this.registryInstance = new DynamoRegistry(dynamo, this.table);
    }
    return this.registryInstance;
  }

  requireApi(what: string): string {
    if (!this.apiUrl)
      throw new CliError(`${what} needs the HTTP API`, 'pass --api-url (the stack output "ApiUrl")');
    return this.apiUrl;
  }

  close(): void {
    for (const c of this.closers.splice(0)) c();
  }

  // -------------------------------------------------------------------------------------------
  // HTTP

  async request(
    method: string,
    path: string,
    body?: unknown,
  ): Promise<{ body: Record<string, unknown>; headers: Headers }> {
    const base = this.requireApi('this command');
    let res: Response;
    try {
      res = await fetch(base + path, {
        method,
        headers: {
          accept: 'application/json',
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
    } catch (err) {
      throw this.fail(err, base);
    }
    const text = await res.text();
    let parsed: Record<string, unknown>;
    try {
      parsed = text === '' ? {} : (JSON.parse(text) as Record<string, unknown>);
    } catch {
      throw new CliError(
        `${method} ${path} answered ${res.status} with a body that is not JSON`,
        `is ${base} a Vicinity API? (check --api-url)`,
      );
    }
    if (!res.ok) {
      const detail =
        typeof parsed.detail === 'string' ? parsed.detail : `${method} ${path} failed with ${res.status}`;
      throw new ServiceProblem(res.status, detail, parsed);
    }
    return { body: parsed, headers: res.headers };
  }

  async get<T = Record<string, unknown>>(path: string): Promise<T> {
    return (await this.request('GET', path)).body as T;
  }

  // -------------------------------------------------------------------------------------------
  // Reads: the API when there is one, else the registry

  private async viaRegistry<T>(fn: (r: DynamoRegistry) => Promise<T>): Promise<T> {
    try {
      return await fn(await this.registry());
    } catch (err) {
      if (err instanceof CliError) throw err;
      throw this.fail(err);
    }
  }

  /** The pointer (with who moved it last) and the newest versions. */
  async space(space: string, limit = 20): Promise<{ pointer: PointerView; versions: VersionSummary[] }> {
    if (this.apiUrl) {
      const [info, versions, history] = await Promise.all([
        this.get<{
          active: { version: string; generation: number; changedAt: string } | null;
          pointer?: Pointer;
        }>(`/v1/spaces/${enc(space)}`),
        this.versions(space, limit),
        this.get<{ history: HistoryEntry[] }>(`/v1/spaces/${enc(space)}/history`),
      ]);
      const last = history.history[0];
      const pointer: PointerView = info.pointer
        ? {
            version: info.pointer.version,
            generation: info.pointer.generation,
            previous: info.pointer.previous,
            changedAt: info.pointer.changedAt,
            changedBy: info.pointer.changedBy,
          }
        : {
            version: info.active?.version ?? null,
            generation: info.active?.generation ?? 0,
            previous: last?.from ?? null,
            changedAt: info.active?.changedAt ?? null,
            changedBy: last?.by ?? null,
          };
      return { pointer, versions };
    }
    return this.viaRegistry(async (r) => {
      const [p, page] = await Promise.all([r.getPointer(space), r.listVersions(space, limit)]);
      if (!p.version && page.versions.length === 0)
        throw new ServiceProblem(404, `Unknown space ${space}`, {}, 'list spaces with `vicinity spaces`');
      return { pointer: p, versions: page.versions.map(toSummary) };
    });
  }

  async versions(space: string, limit = 20): Promise<VersionSummary[]> {
    if (this.apiUrl) {
      const body = await this.get<{ versions: VersionSummary[] }>(
        `/v1/spaces/${enc(space)}/versions?limit=${Math.min(100, limit)}`,
      );
      return body.versions;
    }
    return this.viaRegistry(async (r) => (await r.listVersions(space, limit)).versions.map(toSummary));
  }

  async version(space: string, version: string): Promise<VersionRecord | undefined> {
    if (this.apiUrl) {
      try {
        return await this.get<VersionRecord>(`/v1/spaces/${enc(space)}/versions/${enc(version)}`);
      } catch (err) {
        if (err instanceof ServiceProblem && err.status === 404) return undefined;
        throw err;
      }
    }
    return this.viaRegistry((r) => r.getVersion(space, version));
  }

  async history(space: string): Promise<HistoryEntry[]> {
    if (this.apiUrl)
      return (await this.get<{ history: HistoryEntry[] }>(`/v1/spaces/${enc(space)}/history`)).history;
    return this.viaRegistry((r) => r.listHistory(space, 100));
  }

  async spaces(): Promise<{ space: string; active: { version: string; generation: number } | null }[]> {
    if (this.apiUrl) return (await this.get<{ spaces: [] }>('/v1/spaces')).spaces;
    return this.viaRegistry(async (r) => {
      const pointers = await r.getPointers(await r.listSpaces());
      return pointers.map((p) => ({
        space: p.space,
        active: p.version ? { version: p.version, generation: p.generation } : null,
      }));
    });
  }

  // -------------------------------------------------------------------------------------------
  // Switches (CAS-guarded)

  /** activate (version given) or rollback (version undefined), only if the pointer is at expectedGeneration. */
  async switchPointer(
    space: string,
    version: string | undefined,
    expectedGeneration: number,
    force: boolean,
  ): Promise<PointerView> {
    if (this.mode === 'aws' && this.table) {
      try {
        const registry = await this.registry();
        const input = { space, expectedGeneration, force, by: 'cli' as const };
        return version === undefined
          ? await rollbackSpace(registry, input)
          : await activateVersion(registry, { ...input, version });
      } catch (err) {
        if (err instanceof VicinityError) {
          const status = httpStatus(err);
          throw new ServiceProblem(status, err.message, { ...err.extras, status });
        }
        throw this.fail(err);
      }
    }
    const action = version === undefined ? 'rollback' : 'activate';
    const body = {
      ...(version === undefined ? {} : { version }),
      expectedGeneration,
      by: 'cli',
      ...(force ? { force } : {}),
    };
    const answer = await this.request('POST', `/v1/spaces/${enc(space)}/${action}`, body);
    return answer.body.pointer as PointerView;
  }
}
