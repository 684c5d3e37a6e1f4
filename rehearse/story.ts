/**
 * The story the rehearsal tells through the running artifacts, every step shaped by the template:
 * publish (data files, then the object the S3 notification's filter selects) → build → automatic
 * activation → every read route, signed → explicit activation and rollback on the admin routes
 * (unsigned → 403) → retention over a few releases → a sharded release (the build fans out to the
 * task function, queries fan out to the shard slots, both named by the template's environment) →
 * an erasure (signed DELETE on the admin route; the item leaves every answer; the sweeper, fired by
 * its scheduled rule on the compressed clock, purges it).
 */

import { Sha256 } from '@aws-crypto/sha256-js';
import { ListObjectsV2Command, PutObjectCommand } from '@aws-sdk/client-s3';
import { SignatureV4 } from '@smithy/signature-v4';
import { ENV, EVENT_DETAIL_TYPE } from '../functions/contract';
import { clusteredVectors, jsonlRows } from '../local/synthetic';
import { type RuleSpec, schedulePeriodMs } from './events';
import type { RouteSpec } from './gateway';
import { type AsyncInvocation, CALLER_CREDENTIALS, type Rehearsal } from './system';
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
const SHARDED_SPACE = 'rehearsal-sharded';
/** Shards of the sharded release: one per slot (so every slot and its grants are used), at least 2. */
const MIN_SHARDS = 2;
const MAX_SHARDS = 16;
/** The compressed clock: a scheduled rule's period divided by this (rate(5 minutes) → every 2 s). */
export const CLOCK_FACTOR = 150;
const MIN_PERIOD_MS = 1000;
/** At most this many firings of a rule while waiting for what its target should do. */
const MAX_FIRINGS = 12;

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
  /** The vectors of the latest release of each space (item-i is row i). */
  private readonly latest = new Map<string, Float32Array>();
  /** Firings of each scheduled rule on the compressed clock during the story. */
  private readonly firings = new Map<string, number>();

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
  private async publish(
    activate: boolean,
    space = SPACE,
    shards?: number,
  ): Promise<{ release: string; key: string } | undefined> {
    const n = this.r.model.notifications.find((x) => x.functionId);
    if (!n) return undefined;
    this.releases++;
    const release = `r${String(this.releases).padStart(2, '0')}`;
    const folder = `${n.prefix}${space}/${release}/`;
    const data = clusteredVectors(ITEMS, DIMS, 6, 1000 + this.releases);
    this.latest.set(space, data.vectors);
    const ids = Array.from({ length: ITEMS }, (_, i) => `item-${i}`);
    const rows = jsonlRows(ids, data.vectors, DIMS, (i) => ({ cluster: data.cluster[i], seen: [] }));
    await this.r.s3.send(new PutObjectCommand({ Bucket: n.bucket, Key: `${folder}items.jsonl`, Body: rows }));
    const manifestName = n.suffix || 'release.json';
    const manifest = {
      collections: { [COLLECTION]: { file: 'items.jsonl', metric: 'cosine', ...(shards ? { shards } : {}) } },
      activate,
    };
    await this.r.s3.send(
      new PutObjectCommand({
        Bucket: n.bucket,
        Key: `${folder}${manifestName}`,
        Body: JSON.stringify(manifest),
      }),
    );
    return { release, key: `${folder}${manifestName}` };
  }

  private async versions(
    space = SPACE,
  ): Promise<Array<{ version: string; status: string; release?: string; reason?: string }>> {
    const r = await this.call('GET', `/v1/spaces/${space}/versions?limit=50`);
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
    await this.sharded(buildFn);
    await this.erasure();
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

  private scheduledRules(): Array<{ rule: RuleSpec; periodMs: number; compressedMs: number }> {
    return this.r.model.rules
      .filter((r) => r.enabled && r.schedule)
      .map((rule) => {
        const periodMs = schedulePeriodMs(rule.schedule as string) ?? Number.NaN;
        return { rule, periodMs, compressedMs: Math.max(MIN_PERIOD_MS, Math.round(periodMs / CLOCK_FACTOR)) };
      });
  }

  /**
   * Runs the template's scheduled rules on the compressed clock (each rule's ScheduleExpression period
   * ÷ CLOCK_FACTOR) until `done` holds, a target fails, or a rule has fired MAX_FIRINGS times. The
   * waits are the schedule itself; after each firing the clock waits for the invocations to finish.
   */
  private async runClock(
    done: () => Promise<boolean>,
  ): Promise<{ done: boolean; ms: number; runs: AsyncInvocation[]; unparsed: RuleSpec[] }> {
    const rules = this.scheduledRules();
    const unparsed = rules.filter((x) => Number.isNaN(x.periodMs)).map((x) => x.rule);
    const clock = rules.filter((x) => !Number.isNaN(x.periodMs));
    const before = this.r.asyncInvocations.length;
    const t0 = performance.now();
    const next = new Map(clock.map((x) => [x.rule.id, t0 + x.compressedMs]));
    const result = (ok: boolean) => ({
      done: ok,
      ms: Math.round(performance.now() - t0),
      runs: this.r.asyncInvocations.slice(before),
      unparsed,
    });
    if (clock.length === 0) return result(await done());
    for (;;) {
      const [id, at] = [...next.entries()].reduce((a, b) => (b[1] < a[1] ? b : a));
      const entry = clock.find((x) => x.rule.id === id) as (typeof clock)[number];
      await new Promise((r) => setTimeout(r, Math.max(0, at - performance.now())));
      this.r.bus.fire(entry.rule);
      this.firings.set(id, (this.firings.get(id) ?? 0) + 1);
      next.set(id, at + entry.compressedMs);
      await this.r.idle();
      const runs = this.r.asyncInvocations.slice(before);
      if (runs.some((a) => a.outcome === 'failed')) return result(false);
      if (await done()) return result(true);
      if ((this.firings.get(id) ?? 0) >= MAX_FIRINGS) return result(false);
    }
  }

  private clockNote(): string {
    return this.scheduledRules()
      .map(
        (x) =>
          `${x.rule.id} ScheduleExpression ${x.rule.schedule} → every ${x.compressedMs / 1000} s (÷${CLOCK_FACTOR}), fired ${this.firings.get(x.rule.id) ?? 0}×`,
      )
      .join('; ');
  }

  /** A release with a sharded collection: build → task fan-out (async Invoke) → READY; queries → slot fan-out (sync Invoke). */
  private async sharded(buildFn: string): Promise<void> {
    const m = this.r.model;
    const build = m.functions.find((f) => f.id === buildFn);
    const taskName = build?.environment[ENV.taskFunction];
    if (!taskName) {
      this.step(
        'sharded release',
        'skip',
        `not in this template (${buildFn} has no Environment.Variables.${ENV.taskFunction})`,
      );
      return;
    }
    const taskFn = m.functions.find((f) => f.name === taskName || f.arn === taskName);
    const queryRoute = this.routeFor('POST', '/v1/spaces/{space}/collections/{collection}/query');
    const queryFn = m.functions.find((f) => f.id === queryRoute?.functionId);
    const prefix = queryFn?.environment[ENV.slotFunctionPrefix];
    const slots = Number(queryFn?.environment[ENV.shardSlots] ?? 0);
    const shards = Math.min(MAX_SHARDS, Math.max(MIN_SHARDS, slots || 0));
    const invBefore = this.r.invokes.length;
    const asyncBefore = this.r.asyncInvocations.length;
    const rel = await this.publish(true, SHARDED_SPACE, shards);
    await this.r.idle();
    const problems: string[] = [];
    const invokes = this.r.invokes.slice(invBefore);
    const fromBuild = invokes.filter((i) => i.caller === buildFn);
    for (const i of invokes.filter((x) => !x.functionId))
      problems.push(
        `${i.caller}: Invoke of "${i.name}" → 404, no function of this template${i.caller === buildFn ? ` (Environment.Variables.${ENV.taskFunction}="${taskName}")` : ''}`,
      );
    if (!taskFn)
      problems.push(
        `${buildFn}: Environment.Variables.${ENV.taskFunction}="${taskName}" names no AWS::Lambda::Function of this template`,
      );
    else if (!fromBuild.some((i) => i.functionId === taskFn.id && i.type === 'Event'))
      problems.push(
        `${buildFn}: built ${rel?.release} (shards: ${shards}) without an asynchronous Invoke of ${taskFn.id} (${taskName})`,
      );
    const tasks = this.r.asyncInvocations.slice(asyncBefore).filter((a) => a.functionId === taskFn?.id);
    for (const t of tasks.filter((x) => x.outcome !== 'ok')) {
      const last = t.attempts.at(-1);
      problems.push(
        `${t.functionId} (${t.why}): ${last && !last.ok ? `${last.error.errorType}: ${last.error.errorMessage}` : 'failed'}${this.functionLogTail(t.functionId)}`,
      );
    }
    const version = (await this.versions(SHARDED_SPACE)).find((v) => v.release === rel?.release);
    if (version?.status !== 'READY')
      problems.push(
        `${buildFn} → ${taskFn?.id}: release ${rel?.release} is ${version ? `${version.version} ${version.status}${version.reason ? ` (${version.reason})` : ''}` : 'no version'}${this.functionLogTail(taskFn?.id)}`,
      );
    if (problems.length) {
      this.step('sharded release: build', 'fail', problems.join('\n    '));
      return;
    }
    const taskArns = [...new Set(fromBuild.map((i) => i.name))];
    this.step(
      'sharded release: build',
      'ok',
      `${rel?.release} (shards: ${shards}) → ${version?.version} READY: ${buildFn} invoked ${taskFn?.id} (Environment.Variables.${ENV.taskFunction}=${taskArns.join(', ')}) asynchronously ${fromBuild.length}×, the tasks ran ${tasks.length} invocation(s) (${invokes.filter((i) => i.caller === taskFn?.id).length} self-invokes)`,
    );

    // Queries fan out to the slots named by the query function's environment.
    const qBefore = this.r.invokes.length;
    const base = `/v1/spaces/${SHARDED_SPACE}/collections/${COLLECTION}`;
    const vectors = this.latest.get(SHARDED_SPACE) as Float32Array;
    const vector = Array.from(vectors.subarray(3 * DIMS, 4 * DIMS));
    const answers = [
      { what: 'POST …/query', res: await this.call('POST', `${base}/query`, { vector, k: 5 }) },
      { what: 'GET …/items/item-3', res: await this.call('GET', `${base}/items/item-3`) },
      { what: 'GET …/items/item-3/similar', res: await this.call('GET', `${base}/items/item-3/similar?k=5`) },
    ];
    const fan = this.r.invokes.slice(qBefore).filter((i) => i.caller === queryFn?.id);
    const qProblems: string[] = [];
    for (const a of answers)
      if (a.res.status !== 200)
        qProblems.push(`${queryFn?.id}: ${a.what} → ${a.res.status} ${a.res.text.slice(0, 200)}`);
    for (const i of fan.filter((x) => !x.functionId || x.functionError))
      qProblems.push(
        i.functionId
          ? `${i.functionId}: the slot answered a function error${this.functionLogTail(i.functionId)}`
          : `${queryFn?.id}: Environment.Variables.${ENV.slotFunctionPrefix}="${prefix}": Invoke of "${i.name}" → 404, no function of this template`,
      );
    const expected = Array.from({ length: Math.min(shards, slots) }, (_, j) => `${prefix}${j % slots}`);
    const called = new Set(fan.filter((i) => i.type === 'RequestResponse').map((i) => i.name));
    const missing = expected.filter((n) => !called.has(n));
    if (!prefix || slots < 1)
      qProblems.push(
        `${queryFn?.id}: Environment.Variables lacks ${ENV.slotFunctionPrefix}/${ENV.shardSlots} (the sharded collection was searched in-process)`,
      );
    else if (missing.length)
      qProblems.push(
        `${queryFn?.id}: no synchronous Invoke of ${missing.join(', ')} (shard j → slot j mod ${ENV.shardSlots}=${slots})`,
      );
    if (qProblems.length) this.step('sharded release: query', 'fail', qProblems.join('\n    '));
    else
      this.step(
        'sharded release: query',
        'ok',
        `3 routes 200; ${queryFn?.id} invoked ${[...called].sort().join(', ')} synchronously ${fan.length}× (Environment.Variables.${ENV.slotFunctionPrefix}=${prefix}, ${ENV.shardSlots}=${slots})`,
      );
  }

  /** Erasure on the admin route, its effect on answers, and the sweeper's purge on the compressed clock. */
  private async erasure(): Promise<void> {
    const key = 'DELETE /v1/spaces/{space}/collections/{collection}/items/{id}';
    const route = this.routeFor('DELETE', '/v1/spaces/{space}/collections/{collection}/items/{id}');
    if (!route) {
      this.step('erasure', 'fail', `${this.describe(route, key)}`);
      return;
    }
    const id = 'item-7';
    const base = `/v1/spaces/${SPACE}/collections/${COLLECTION}`;
    const vectors = this.latest.get(SPACE) as Float32Array;
    const vector = Array.from(vectors.subarray(7 * DIMS, 8 * DIMS), (x) => Number(x.toPrecision(6)));
    const ids = (r: Reply) => ((r.json.results as Array<{ id: string }> | undefined) ?? []).map((x) => x.id);
    const before = await this.call('POST', `${base}/query`, { vector, k: 5, consistency: 'strong' });
    if (ids(before)[0] !== id) {
      this.step(
        'erasure',
        'fail',
        `before the erasure a query with ${id}'s vector answered ${before.status} ${ids(before).join(',') || before.text.slice(0, 200)}; expected ${id} first`,
      );
      return;
    }
    const body = { reason: 'rehearsal', by: 'rehearsal' };
    const unsigned = await this.call('DELETE', `${base}/items/${id}`, body, false);
    const res = await this.call('DELETE', `${base}/items/${id}`, body);
    const item = await this.call('GET', `${base}/items/${id}?consistency=strong`);
    const after = await this.call('POST', `${base}/query`, { vector, k: 5, consistency: 'strong' });
    const problems: string[] = [];
    if (unsigned.status !== 403)
      problems.push(
        `${this.describe(route, key)}: an unsigned request got ${unsigned.status}, not 403 (AuthorizationType must be AWS_IAM)`,
      );
    if (res.status !== 202)
      problems.push(
        `${this.describe(route, key)}: ${res.status} ${res.text.slice(0, 200)}${this.functionLogTail(route.functionId)}`,
      );
    if (item.status !== 404)
      problems.push(`GET ${base}/items/${id} → ${item.status} after the erasure, not 404`);
    if (after.status !== 200 || ids(after).includes(id))
      problems.push(
        `a query with ${id}'s vector → ${after.status} [${ids(after).join(',')}] after the erasure`,
      );
    if (problems.length) {
      this.step('erasure', 'fail', problems.join('\n    '));
      return;
    }
    this.step(
      'erasure',
      'ok',
      `${route.id} (${key}) → ${route.functionId}: unsigned 403, signed 202; ${id} → 404 and gone from a query with its own vector (was first)`,
    );

    // The purge: the sweeper, fired by its scheduled rule on the compressed clock.
    const status = async () => {
      const r = await this.call('GET', `/v1/spaces/${SPACE}/erasures`);
      const e = (r.json.erasures as Array<{ id: string; status: string }> | undefined)?.find(
        (x) => x.id === id,
      );
      return e?.status;
    };
    const clock = await this.runClock(async () => (await status()) === 'PURGED');
    await this.reportClock(clock, `erasure of ${id} PURGED`, async () => `the erasure is ${await status()}`);
  }

  private async reportClock(
    clock: { done: boolean; ms: number; runs: AsyncInvocation[]; unparsed: RuleSpec[] },
    goal: string,
    state: () => Promise<string>,
  ): Promise<void> {
    const name = 'scheduled rules (compressed clock)';
    if (clock.unparsed.length)
      this.step(
        name,
        'fail',
        clock.unparsed
          .map((r) => `${r.id}: ScheduleExpression "${r.schedule}" is not understood by the rehearsal`)
          .join('; '),
      );
    const rules = this.scheduledRules();
    if (rules.length === 0) {
      this.step(
        name,
        'fail',
        `no AWS::Events::Rule with a ScheduleExpression: nothing runs the sweeper (${goal})`,
      );
      return;
    }
    const failed = clock.runs.filter((a) => a.outcome === 'failed');
    if (failed.length) {
      this.step(
        name,
        'fail',
        failed
          .map((a) => {
            const last = a.attempts.at(-1);
            return `${a.why} → ${a.functionId}: ${last && !last.ok ? `${last.error.errorType}: ${last.error.errorMessage}` : 'failed'}${this.functionLogTail(a.functionId)}`;
          })
          .join('\n    '),
      );
      return;
    }
    if (!clock.done) {
      this.step(
        name,
        'fail',
        `${rules.map((x) => `${x.rule.id} (ScheduleExpression ${x.rule.schedule}, Targets → ${x.rule.targets.map((t) => t.functionId ?? t.arn).join(', ')})`).join('; ')}: after ${Math.round(clock.ms / 1000)} s ${await state()}, not ${goal}`,
      );
      return;
    }
    this.step(
      name,
      'ok',
      `${this.clockNote()}; ${clock.runs.length} invocation(s) of ${[...new Set(clock.runs.map((a) => a.functionId))].join(', ')} succeeded; ${goal} after ${Math.round(clock.ms / 1000)} s`,
    );
  }

  /** The compressed clock when the story did not run it (no erasure route): every scheduled rule fires twice. */
  async tick(): Promise<void> {
    if (this.firings.size > 0) return;
    const rules = this.scheduledRules();
    if (rules.length === 0) {
      this.step(
        'scheduled rules',
        'skip',
        'not in this template (no AWS::Events::Rule with a ScheduleExpression)',
      );
      return;
    }
    let n = 0;
    const clock = await this.runClock(async () => ++n >= 2);
    await this.reportClock(clock, 'two firings', async () => `${n} firings`);
  }
}
