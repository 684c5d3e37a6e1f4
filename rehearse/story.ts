/**
 * The story the rehearsal tells through the running artifacts, every step shaped by the template:
 * publish (data files, then the object the S3 notification's filter selects) → build → automatic
 * activation → every read route, signed → explicit activation and rollback on the admin routes
 * (unsigned → 403) → retention over a few releases → scheduled rules on the compressed clock.
 */

import { Sha256 } from '@aws-crypto/sha256-js';
import { ListObjectsV2Command, PutObjectCommand } from '@aws-sdk/client-s3';
import { SignatureV4 } from '@smithy/signature-v4';
import { EVENT_DETAIL_TYPE } from '../functions/contract';
import { clusteredVectors, jsonlRows } from '../local/synthetic';
import type { RouteSpec } from './gateway';
import { CALLER_CREDENTIALS, type Rehearsal } from './system';
import { REGION } from './template';

export type StepStatus = 'ok' | 'fail' | 'skip';
export interface Step {
  name: string;
  status: StepStatus;
  detail: string;
}

const DIMS = 16;
const ITEMS = 300;
const COLLECTION = 'items';
const SPACE = 'rehearsal';

interface Reply {
  status: number;
  json: Record<string, unknown>;
  text: string;
}

export class Story {
  readonly steps: Step[] = [];
  private readonly signer = new SignatureV4({
    service: 'execute-api',
    region: REGION,
    credentials: CALLER_CREDENTIALS,
    sha256: Sha256,
  });
  private releases = 0;

  constructor(
    private readonly r: Rehearsal,
    private readonly log: (line: string) => void,
  ) {}

  private step(name: string, status: StepStatus, detail: string): void {
    this.steps.push({ name, status, detail });
    this.log(`${status === 'ok' ? 'ok  ' : status === 'skip' ? 'skip' : 'FAIL'} ${name}: ${detail}`);
  }

  async call(method: string, path: string, body?: unknown, signed = true): Promise<Reply> {
    const url = new URL(path, this.r.gateway.url);
    const text = body === undefined ? undefined : JSON.stringify(body);
    const headers: Record<string, string> = { host: url.host };
    if (text !== undefined) headers['content-type'] = 'application/json';
    let sent = headers;
    if (signed) {
      const query: Record<string, string> = {};
      for (const [k, v] of url.searchParams) query[k] = v;
      const req = await this.signer.sign({
        method,
        protocol: 'http:',
        hostname: url.hostname,
        port: Number(url.port),
        path: url.pathname,
        query,
        headers,
        body: text,
      });
      sent = req.headers;
    }
    const { host: _host, ...fetchHeaders } = sent;
    const res = await fetch(url, { method, headers: fetchHeaders, body: text });
    const out = await res.text();
    let json: Record<string, unknown> = {};
    try {
      json = JSON.parse(out) as Record<string, unknown>;
    } catch {
      // not JSON
    }
    return { status: res.status, json, text: out };
  }

  private routeFor(method: string, path: string): RouteSpec | undefined {
    return this.r.model.routes.find((x) => x.routeKey === `${method} ${path}`);
  }

  private describe(route: RouteSpec | undefined, key: string): string {
    return route
      ? `${route.id} (${route.routeKey}) → ${route.functionId}`
      : `no route "${key}" in the template`;
  }

  private functionLogTail(functionId: string | undefined): string {
    if (!functionId) return '';
    const rt = this.r.runtimes.get(functionId);
    return rt ? ` (function log: ${rt.logFile})` : '';
  }

  /** Uploads a release the way a producer does; returns the release name. */
  private async publish(activate: boolean): Promise<{ release: string; key: string } | undefined> {
    const n = this.r.model.notifications.find((x) => x.functionId);
    if (!n) return undefined;
    this.releases++;
    const release = `r${String(this.releases).padStart(2, '0')}`;
    const folder = `${n.prefix}${SPACE}/${release}/`;
    const data = clusteredVectors(ITEMS, DIMS, 6, 1000 + this.releases);
    const ids = Array.from({ length: ITEMS }, (_, i) => `item-${i}`);
    const rows = jsonlRows(ids, data.vectors, DIMS, (i) => ({ cluster: data.cluster[i], seen: [] }));
    await this.r.s3.send(new PutObjectCommand({ Bucket: n.bucket, Key: `${folder}items.jsonl`, Body: rows }));
    const manifestName = n.suffix || 'release.json';
    const manifest = { collections: { [COLLECTION]: { file: 'items.jsonl', metric: 'cosine' } }, activate };
    await this.r.s3.send(
      new PutObjectCommand({
        Bucket: n.bucket,
        Key: `${folder}${manifestName}`,
        Body: JSON.stringify(manifest),
      }),
    );
    return { release, key: `${folder}${manifestName}` };
  }

  private async versions(): Promise<
    Array<{ version: string; status: string; release?: string; reason?: string }>
  > {
    const r = await this.call('GET', `/v1/spaces/${SPACE}/versions?limit=50`);
    return (r.json.versions as Array<{ version: string; status: string; release?: string }>) ?? [];
  }

  private async active(): Promise<{ version?: string; generation?: number }> {
    const r = await this.call('GET', `/v1/spaces/${SPACE}`);
    return (r.json.active as { version?: string; generation?: number } | null) ?? {};
  }

  async run(): Promise<void> {
    const r = this.r;
    const notification = r.model.notifications.find((x) => x.functionId);
    if (!notification) {
      this.step('publish', 'skip', 'not in this template (no S3 → Lambda notification)');
      return;
    }
    const buildFn = notification.functionId as string;
    const buildRuntime = r.runtimes.get(buildFn);

    // 1. publish: the data file must not trigger; the manifest must.
    const before = r.asyncInvocations.length;
    const first = await this.publish(true);
    await r.idle();
    const triggered = r.asyncInvocations.slice(before);
    const wrong = triggered.filter((a) => !a.why.endsWith(`(${first?.key})`));
    if (wrong.length || triggered.length !== 1)
      this.step(
        'publish',
        'fail',
        `${notification.id}: NotificationConfiguration filter (prefix "${notification.prefix}", suffix "${notification.suffix}") triggered ${triggered.map((a) => a.why).join('; ') || 'nothing'}; expected only ${first?.key}`,
      );
    else
      this.step(
        'publish',
        'ok',
        `data file then ${first?.key}: exactly one ${buildFn} invocation (${notification.id} filter ${notification.prefix}*${notification.suffix}, ${notification.events.join(',')})`,
      );

    // 2. build
    const build = triggered.find((a) => a.functionId === buildFn);
    const outcome = build?.attempts.at(-1);
    const result = outcome?.ok
      ? (outcome.value as Array<{ status?: string; version?: string; reason?: string }>)
      : undefined;
    const v1 = result?.[0]?.version;
    if (!outcome?.ok || result?.[0]?.status !== 'READY' || !v1) {
      this.step(
        'build',
        'fail',
        `${buildFn}: ${outcome?.ok ? JSON.stringify(result) : `${outcome?.error.errorType}: ${outcome?.error.errorMessage}`}${this.functionLogTail(buildFn)}`,
      );
      return;
    }
    this.step(
      'build',
      'ok',
      `${buildFn} built ${v1} READY in ${outcome.ms} ms (cold starts ${buildRuntime?.coldStarts})`,
    );

    // 3. automatic activation, seen through the API and on the bus
    const act = await this.active();
    const events = r.bus.events.filter((e) => e.caller === buildFn).map((e) => e['detail-type']);
    if (act.version !== v1)
      this.step(
        'auto-activate',
        'fail',
        `GET /v1/spaces/${SPACE} says active ${JSON.stringify(act)}, expected ${v1}`,
      );
    else if (
      !events.includes(EVENT_DETAIL_TYPE.versionReady) ||
      !events.includes(EVENT_DETAIL_TYPE.pointerMoved)
    )
      this.step(
        'auto-activate',
        'fail',
        `${buildFn}: PutEvents carried ${events.join(', ') || 'nothing'}; expected VersionReady and PointerMoved (Environment VICINITY_EVENT_BUS / role events:PutEvents)`,
      );
    else
      this.step(
        'auto-activate',
        'ok',
        `${v1} active (generation ${act.generation}); ${buildFn} put ${events.join(', ')} on bus "${r.bus.events[0]?.bus}"`,
      );

    // A candidate for the admin steps and the diff route: READY, not activated.
    const second = await this.publish(false);
    await r.idle();
    const v2 = (await this.versions()).find((v) => v.release === second?.release)?.version;
    if (!v2) {
      this.step(
        'candidate',
        'fail',
        `${buildFn}: release ${second?.release} (activate: false) did not become a version`,
      );
      return;
    }

    await this.readRoutes(v1, v2);
    await this.admin(v1, v2);
    await this.retention(buildFn);
    this.extras();
  }

  private async readRoutes(v1: string, v2: string): Promise<void> {
    // Read routes are those the template sends to another function than the admin one (the function
    // behind activate): erasure, restore and space deletion are admin routes too, rehearsed elsewhere.
    const adminFn = this.r.model.routes.find((x) => /\/activate$/.test(x.path))?.functionId;
    const routes = this.r.model.routes.filter(
      (x) => x.routeKey !== '$default' && (adminFn === undefined || x.functionId !== adminFn),
    );
    const admin = new Set(this.r.model.routes.filter((x) => x.functionId === adminFn).map((x) => x.id));
    const failures: string[] = [];
    let ok = 0;
    const vector = Array.from({ length: DIMS }, (_, i) => Math.sin(i + 1));
    for (const route of routes) {
      if (admin.has(route.id)) continue;
      const path = route.path
        .replace('{space}', SPACE)
        .replace('{collection}', COLLECTION)
        .replace('{id}', 'item-7')
        .replace('{version}', v1);
      const query = path.endsWith('/diff')
        ? `?from=${v1}&to=${v2}&sample=20`
        : path.endsWith('/projection')
          ? '?sample=50'
          : path.endsWith('/items')
            ? '?prefix=item-1'
            : path.endsWith('/similar') && route.method === 'GET'
              ? '?k=5'
              : '';
      const body =
        route.method !== 'POST'
          ? undefined
          : path.endsWith('/query')
            ? { vector, k: 5 }
            : path.endsWith('/batch')
              ? { queries: [{ collection: COLLECTION, item: 'item-1', k: 3 }] }
              : { k: 5 };
      const method = route.method === 'ANY' ? 'GET' : route.method;
      const res = await this.call(method, path + query, body);
      if (res.status >= 300)
        failures.push(
          `${this.describe(route, route.routeKey)}: ${method} ${path}${query} → ${res.status} ${res.text.slice(0, 200)}`,
        );
      else ok++;
      if (route.auth === 'AWS_IAM' && route.path === '/v1/health') {
        const unsigned = await this.call(method, path, body, false);
        if (unsigned.status !== 403)
          failures.push(
            `${route.id}: AuthorizationType AWS_IAM but an unsigned request got ${unsigned.status}`,
          );
      }
    }
    const def = this.r.model.routes.find((x) => x.routeKey === '$default');
    let defaultNote = '';
    if (def) {
      const res = await this.call('GET', '/v1/no-such-route');
      const callerDenied =
        res.status === 403 && String(res.json.message ?? '').startsWith('User is not authorized');
      if (callerDenied)
        defaultNote = '; $default: the caller policies allow no unknown path (403, as AWS would)';
      else if (res.status !== 404 || !String(res.json.type ?? res.json.title ?? '').length)
        failures.push(
          `${def.id} ($default) → ${def.functionId}: GET /v1/no-such-route → ${res.status}, expected the service's problem+json 404`,
        );
      else {
        ok++;
        defaultNote = '; $default → problem+json 404';
      }
    }
    const iamRoutes = routes.filter((x) => x.auth === 'AWS_IAM').length;
    if (failures.length) this.step('query (read routes, signed)', 'fail', failures.join('\n    '));
    else
      this.step(
        'query (read routes, signed)',
        'ok',
        `${ok} routes answered 2xx (${iamRoutes} of ${routes.length} behind AWS_IAM; an unsigned GET /v1/health → 403)${defaultNote}`,
      );
  }

  private async admin(v1: string, v2: string): Promise<void> {
    const activateKey = 'POST /v1/spaces/{space}/activate';
    const rollbackKey = 'POST /v1/spaces/{space}/rollback';
    const activate = this.routeFor('POST', '/v1/spaces/{space}/activate');
    const rollback = this.routeFor('POST', '/v1/spaces/{space}/rollback');
    const gen = (await this.active()).generation ?? 0;
    const unsigned = await this.call(
      'POST',
      `/v1/spaces/${SPACE}/activate`,
      { version: v2, expectedGeneration: gen },
      false,
    );
    if (unsigned.status !== 403)
      this.step(
        'admin: unsigned activate',
        'fail',
        `${this.describe(activate, activateKey)}: an unsigned request got ${unsigned.status}, not 403 (AuthorizationType must be AWS_IAM)`,
      );
    else this.step('admin: unsigned activate', 'ok', `403 ${unsigned.text.slice(0, 60)}`);

    const res = await this.call('POST', `/v1/spaces/${SPACE}/activate`, {
      version: v2,
      expectedGeneration: gen,
    });
    const after = await this.active();
    const adminFn = activate?.functionId;
    const moved = this.r.bus.events.some(
      (e) => e.caller === adminFn && e['detail-type'] === EVENT_DETAIL_TYPE.pointerMoved,
    );
    if (res.status !== 200 || after.version !== v2)
      this.step(
        'admin: activate',
        'fail',
        `${this.describe(activate, activateKey)}: ${res.status} ${res.text.slice(0, 200)}; active ${after.version}${this.functionLogTail(adminFn)}`,
      );
    else
      this.step(
        'admin: activate',
        'ok',
        `${v2} active (generation ${after.generation})${moved ? `; ${adminFn} put PointerMoved` : ' — but no PointerMoved event'}`,
      );

    const rb = await this.call('POST', `/v1/spaces/${SPACE}/rollback`, {
      expectedGeneration: after.generation,
    });
    const back = await this.active();
    if (rb.status !== 200 || back.version !== v1)
      this.step(
        'admin: rollback',
        'fail',
        `${this.describe(rollback, rollbackKey)}: ${rb.status} ${rb.text.slice(0, 200)}; active ${back.version}`,
      );
    else this.step('admin: rollback', 'ok', `back to ${v1} (generation ${back.generation})`);
  }

  private async retention(buildFn: string): Promise<void> {
    const spec = this.r.model.functions.find((f) => f.id === buildFn);
    const keep = Number(spec?.environment.VICINITY_RETAIN_VERSIONS ?? 5);
    const grace = spec?.environment.VICINITY_RETENTION_GRACE_MS;
    const t0 = performance.now();
    // Enough releases that the oldest READY version is neither active, previous, nor among the newest `keep`.
    let deleted: { version: string } | undefined;
    for (let i = 0; i < keep + 2 && !deleted; i++) {
      await this.publish(true);
      await this.r.idle();
      deleted = (await this.versions()).find((v) => v.status === 'DELETED');
    }
    if (!deleted) {
      this.step(
        'retention',
        'fail',
        `${buildFn}: Environment VICINITY_RETAIN_VERSIONS=${keep}: after ${this.releases} releases no version is DELETED`,
      );
      return;
    }
    const n = this.r.model.notifications.find((x) => x.functionId);
    const left = await this.r.s3.send(
      new ListObjectsV2Command({ Bucket: n?.bucket, Prefix: `snapshots/${SPACE}/${deleted.version}/` }),
    );
    const pinned = await this.call(
      'GET',
      `/v1/spaces/${SPACE}/collections/${COLLECTION}/items/item-1?version=${deleted.version}`,
    );
    if ((left.KeyCount ?? 0) > 0 || pinned.status !== 404)
      this.step(
        'retention',
        'fail',
        `${deleted.version} DELETED but ${left.KeyCount} snapshot files remain / a pinned read got ${pinned.status}`,
      );
    else
      this.step(
        'retention',
        'ok',
        `${this.releases} releases, VICINITY_RETAIN_VERSIONS=${keep}: ${deleted.version} DELETED, its snapshot files removed, a pinned read → 404 (${Math.round((performance.now() - t0) / 1000)} s; grace ${grace ?? 'the bundle default (VICINITY_RETENTION_GRACE_MS not in the template)'})`,
      );
  }

  private extras(): void {
    const m = this.r.model;
    const buildFn = m.notifications.find((x) => x.functionId)?.functionId;
    // Sharded builds: a task function the build function may invoke.
    const taskFns = m.functions.filter((f) => f.id !== buildFn && m.asyncConfig.has(f.id));
    if (taskFns.length === 0)
      this.step(
        'sharded release',
        'skip',
        'not in this template (no build-task function with an EventInvokeConfig)',
      );
    else
      this.step(
        'sharded release',
        'skip',
        `task function(s) ${taskFns.map((f) => f.id).join(', ')} present; the story has no sharded step yet`,
      );
    const erase = m.routes.filter((x) => /eras/i.test(x.routeKey));
    if (erase.length === 0)
      this.step('erasure', 'skip', 'not in this template (no route with "eras" in its RouteKey)');
    else
      this.step(
        'erasure',
        'skip',
        `routes ${erase.map((x) => x.routeKey).join(', ')} present; the story has no erasure step yet`,
      );
  }

  /** The compressed clock: every scheduled rule fires once; their targets must succeed. */
  async tick(): Promise<void> {
    const before = this.r.asyncInvocations.length;
    const fired = this.r.bus.tick();
    if (fired.length === 0) {
      this.step(
        'scheduled rules',
        'skip',
        'not in this template (no AWS::Events::Rule with a ScheduleExpression)',
      );
      return;
    }
    await this.r.idle();
    const runs = this.r.asyncInvocations.slice(before);
    const bad = runs.filter((a) => a.outcome !== 'ok');
    if (bad.length)
      this.step(
        'scheduled rules',
        'fail',
        bad.map((a) => `${a.functionId} (${a.why}): ${JSON.stringify(a.attempts.at(-1))}`).join('; '),
      );
    else
      this.step(
        'scheduled rules',
        'ok',
        `${fired.map((f) => `${f.id} (${f.schedule})`).join(', ')} fired once each; ${runs.length} invocations succeeded`,
      );
  }
}
