/**
 * Where the CLI's commands go. By default the local stack `npm start` runs: `VICINITY_HOME/local.json`
 * (default ./.vicinity) names its API, S3 and DynamoDB endpoints, bucket, table and credentials.
 * With `--bucket`/`--table`/`--profile` it talks to AWS through the standard credential chain; with
 * only `--api-url` it talks to that API.
 *
 * Reads (status, versions, the build's progress) use the HTTP API when there is one, else the
 * DynamoDB registry. activate/rollback always go through the admin API, signed with SigV4 (service
 * execute-api) as AWS's IAM authorizer wants: against AWS with the default credential chain
 * (`--profile`), locally with the stack's own key pair — so they pass the same checks everywhere.
 */

import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { S3Client } from '@aws-sdk/client-s3';
import type { ClientConfig } from '../functions/adapters/aws-clients';
import type { DynamoRegistry } from '../functions/adapters/dynamo-registry';
import type { HistoryEntry, Pointer } from '../functions/core/pointer';
import type { VersionRecord } from '../functions/core/version';
import { type VersionSummary, versionSummary } from '../functions/core/version';
import { LOCAL_INFO_FILE, type LocalInfo } from '../local/info';
import { asCliError, CliError } from './io';
import { regionOfApiUrl, type SigningConfig, signedHeaders } from './sigv4';

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
      return 'the API needs IAM (SigV4): check --region, and that your credentials (--profile or the default chain) may call execute-api:Invoke (stack outputs ReadInvokePolicyArn for reads, AdminInvokePolicyArn for admin calls)';
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
  private readonly profile?: string;
  private readonly region?: string;
  private signing?: SigningConfig;
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
      this.region = region;
      this.profile = opts.profile;
      this.bucket = opts.bucket;
      this.table = opts.table;
      this.apiUrl = opts.apiUrl?.replace(/\/+$/, '');
    } else if (opts.apiUrl) {
      this.mode = 'api';
      this.apiUrl = opts.apiUrl.replace(/\/+$/, '');
      this.region = opts.region ?? env.AWS_REGION ?? env.AWS_DEFAULT_REGION ?? regionOfApiUrl(this.apiUrl);
    } else {
      this.mode = 'local';
      const file = join(this.home, LOCAL_INFO_FILE);
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
      // The stack's own key pair: what it checks admin signatures against (VICINITY_ADMIN_AUTH=iam).
      this.signing = {
        region: local.region,
        credentials: this.clientConfig.credentials as SigningConfig['credentials'],
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

  /** activate/rollback go through the admin API only (against AWS: signed, never the table directly). */
  requireAdminApi(action: string): string {
    if (!this.apiUrl)
      throw new CliError(
        `${action} needs the admin API, and no --api-url was given`,
        'pass --api-url (the stack output ApiUrl); the CLI signs the request with SigV4 from your credentials (--profile or the default chain)',
      );
    return this.apiUrl;
  }

  close(): void {
    for (const c of this.closers.splice(0)) c();
  }

  // -------------------------------------------------------------------------------------------
  // HTTP

  /** An API call; `signed` adds a SigV4 signature (the admin routes). */
  async request(
    method: string,
    path: string,
    body?: unknown,
    signed = false,
  ): Promise<{ body: Record<string, unknown>; headers: Headers }> {
    const base = this.requireApi('this command');
    const text = body === undefined ? undefined : JSON.stringify(body);
    let headers: Record<string, string> = {
      accept: 'application/json',
      ...(text === undefined ? {} : { 'content-type': 'application/json' }),
    };
    // Admin calls are always signed; reads too whenever there are credentials to sign with, since a
    // default deploy puts them behind IAM as well (readAuth: iam). Without credentials a read goes
    // unsigned: a deploy with readAuth none or jwt answers it, an IAM one says 403 with the hint below.
    const signing = signed ? await this.signingConfig() : await this.readSigning();
    if (signing) headers = await signedHeaders(signing, method, new URL(base + path), headers, text);
    let res: Response;
    try {
      res = await fetch(base + path, { method, headers, ...(text === undefined ? {} : { body: text }) });
    } catch (err) {
      throw this.fail(err, base);
    }
    const answer = await res.text();
    let parsed: Record<string, unknown>;
    try {
      parsed = answer === '' ? {} : (JSON.parse(answer) as Record<string, unknown>);
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

  private readSigningTried = false;

  /** The signing config for a read, or undefined when there is no region or no credentials (no error). */
  private async readSigning(): Promise<SigningConfig | undefined> {
    if (this.signing) return this.signing;
    if (!this.region || this.readSigningTried) return undefined;
    this.readSigningTried = true;
    try {
      return await this.signingConfig();
    } catch {
      return undefined;
    }
  }

  /** Region and credentials for SigV4: the local stack's, or AWS's default chain (honouring --profile). */
  private async signingConfig(): Promise<SigningConfig> {
    if (this.signing) return this.signing;
    if (!this.region)
      throw new CliError(
        'no AWS region to sign the admin request for',
        'pass --region (the region of the API) or set AWS_REGION',
      );
    const { fromNodeProviderChain } = await import('@aws-sdk/credential-providers');
    const chain = fromNodeProviderChain(this.profile ? { profile: this.profile } : {});
    let credentials: Awaited<ReturnType<typeof chain>>;
    try {
      credentials = await chain();
    } catch (err) {
      throw this.fail(err);
    }
    this.signing = { region: this.region, credentials };
    return this.signing;
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
    const action = version === undefined ? 'rollback' : 'activate';
    const body = {
      ...(version === undefined ? {} : { version }),
      expectedGeneration,
      by: 'cli',
      ...(force ? { force } : {}),
    };
    this.requireAdminApi(action);
    const answer = await this.request('POST', `/v1/spaces/${enc(space)}/${action}`, body, true);
    return answer.body.pointer as PointerView;
  }
}
