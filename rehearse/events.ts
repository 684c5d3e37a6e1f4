/**
 * EventBridge as the template configures it: the PutEvents calls the functions make are answered
 * here and matched against every AWS::Events::Rule (EventPattern on its bus) to invoke the rule's
 * Lambda targets asynchronously with the target's Input/InputPath/InputTransformer; rules with a
 * ScheduleExpression fire on the rehearsal's compressed clock (`tick`).
 */
import { randomUUID } from 'node:crypto';
import type { RecordedRequest } from './iam';
import type { LocalReply } from './proxy';
import { ACCOUNT, type Finding, REGION, type Stack } from './template';

export interface RuleTarget {
  readonly id: string;
  readonly arn: string;
  readonly functionId?: string;
  readonly input?: string;
  readonly inputPath?: string;
  readonly inputTransformer?: { InputPathsMap?: Record<string, string>; InputTemplate: string };
}

export interface RuleSpec {
  readonly id: string;
  readonly bus: string;
  readonly pattern?: Record<string, unknown>;
  readonly schedule?: string;
  readonly enabled: boolean;
  readonly targets: RuleTarget[];
}

export interface BusEvent {
  version: '0';
  id: string;
  'detail-type': string;
  source: string;
  account: string;
  time: string;
  region: string;
  resources: string[];
  detail: unknown;
}

const busName = (nameOrArn: string | undefined) =>
  (nameOrArn ?? 'default').replace(/^arn:.*:event-bus\//, '') || 'default';

export function ruleSpecs(stack: Stack, findings: Finding[]): RuleSpec[] {
  const out: RuleSpec[] = [];
  for (const [id, r] of stack.ofType('AWS::Events::Rule')) {
    const p = r.Properties ?? {};
    const targets: RuleTarget[] = [];
    for (const [i, t] of ((p.Targets as Array<Record<string, unknown>>) ?? []).entries()) {
      const arn = String(stack.resolve(t.Arn, `${id}.Targets[${i}].Arn`));
      const functionId =
        stack.referencedId(t.Arn, 'AWS::Lambda::Function') ??
        stack.referencedId(arn, 'AWS::Lambda::Function');
      if (!functionId)
        findings.push({
          resource: id,
          property: `Targets[${i}].Arn`,
          message: `${arn} is not a function of this stack (not rehearsed)`,
        });
      targets.push({
        id: String(t.Id ?? i),
        arn,
        functionId,
        input:
          t.Input === undefined ? undefined : String(stack.resolve(t.Input, `${id}.Targets[${i}].Input`)),
        inputPath: t.InputPath === undefined ? undefined : String(t.InputPath),
        inputTransformer: t.InputTransformer as RuleTarget['inputTransformer'],
      });
    }
    out.push({
      id,
      bus: busName(
        p.EventBusName === undefined
          ? undefined
          : String(stack.resolve(p.EventBusName, `${id}.EventBusName`)),
      ),
      pattern: p.EventPattern as Record<string, unknown> | undefined,
      schedule: p.ScheduleExpression === undefined ? undefined : String(p.ScheduleExpression),
      enabled: p.State !== 'DISABLED',
      targets,
    });
  }
  return out;
}

const UNIT_MS: Record<string, number> = { minute: 60_000, hour: 3_600_000, day: 86_400_000 };

/**
 * The period of a ScheduleExpression: `rate(5 minutes)` → 300000. A `cron(…)` is taken as its
 * finest field's period (minutes field `*` or `0/n` → n minutes, else hourly, else daily).
 */
export function schedulePeriodMs(expression: string): number | undefined {
  const rate = /^rate\(\s*(\d+)\s+(minute|hour|day)s?\s*\)$/i.exec(expression.trim());
  if (rate) return Number(rate[1]) * (UNIT_MS[(rate[2] as string).toLowerCase()] as number);
  const cron = /^cron\(\s*(\S+)\s+(\S+)/i.exec(expression.trim());
  if (!cron) return undefined;
  const [, minutes = '', hours = ''] = cron;
  if (minutes === '*') return 60_000;
  const step = /^[\d*]+\/(\d+)$/.exec(minutes);
  if (step) return Number(step[1]) * 60_000;
  return hours === '*' || /\//.test(hours) ? 3_600_000 : 86_400_000;
}

function matchValue(cond: unknown, value: unknown, present: boolean): boolean {
  if (cond !== null && typeof cond === 'object') {
    const c = cond as Record<string, unknown>;
    if ('exists' in c) return Boolean(c.exists) === present;
    if (!present) return false;
    const s = typeof value === 'string' ? value : undefined;
    if ('prefix' in c) return s?.startsWith(String(c.prefix)) === true;
    if ('suffix' in c) return s?.endsWith(String(c.suffix)) === true;
    if ('equals-ignore-case' in c) return s?.toLowerCase() === String(c['equals-ignore-case']).toLowerCase();
    if ('wildcard' in c)
      return (
        s !== undefined &&
        new RegExp(
          `^${String(c.wildcard)
            .split('*')
            .map((x) => x.replace(/[.+?^${}()|[\]\\]/g, '\\$&'))
            .join('.*')}$`,
        ).test(s)
      );
    if ('anything-but' in c) {
      const ab = c['anything-but'];
      if (ab && typeof ab === 'object' && !Array.isArray(ab)) return !matchValue(ab, value, present);
      return !(Array.isArray(ab) ? ab : [ab]).includes(value);
    }
    if ('numeric' in c) {
      const ops = c.numeric as unknown[];
      const n = Number(value);
      for (let i = 0; i + 1 < ops.length; i += 2) {
        const v = Number(ops[i + 1]);
        const ok = { '<': n < v, '<=': n <= v, '=': n === v, '>': n > v, '>=': n >= v }[String(ops[i])];
        if (!ok) return false;
      }
      return true;
    }
    return false;
  }
  return present && value === cond;
}

/** EventBridge content filtering (the subset the stack's rules use: values, prefix, suffix, anything-but, exists, numeric). */
export function matches(pattern: Record<string, unknown>, event: Record<string, unknown>): boolean {
  return Object.entries(pattern).every(([key, cond]) => {
    const present = event !== null && typeof event === 'object' && key in event;
    const value = present ? event[key] : undefined;
    if (Array.isArray(cond)) {
      const values = Array.isArray(value) ? value : [value];
      return cond.some((c) =>
        Array.isArray(value) && value.length === 0 ? false : values.some((v) => matchValue(c, v, present)),
      );
    }
    if (cond !== null && typeof cond === 'object')
      return (
        present &&
        value !== null &&
        typeof value === 'object' &&
        matches(cond as Record<string, unknown>, value as Record<string, unknown>)
      );
    return value === cond;
  });
}

function jsonPath(event: unknown, path: string): unknown {
  return path
    .replace(/^\$\.?/, '')
    .split('.')
    .filter(Boolean)
    .reduce<unknown>(
      (v, k) => (v && typeof v === 'object' ? (v as Record<string, unknown>)[k] : undefined),
      event,
    );
}

/** What a target receives for an event. */
export function targetInput(t: RuleTarget, event: BusEvent): unknown {
  if (t.input !== undefined) return JSON.parse(t.input);
  if (t.inputPath) return jsonPath(event, t.inputPath);
  if (t.inputTransformer) {
    const values = Object.fromEntries(
      Object.entries(t.inputTransformer.InputPathsMap ?? {}).map(([k, p]) => [k, jsonPath(event, p)]),
    );
    const text = t.inputTransformer.InputTemplate.replace(/"<([\w-]+)>"/g, (_, k: string) =>
      JSON.stringify(values[k]),
    ).replace(/<([\w-]+)>/g, (_, k: string) =>
      typeof values[k] === 'string' ? String(values[k]) : JSON.stringify(values[k]),
    );
    return JSON.parse(text);
  }
  return event;
}

export interface Delivery {
  rule: string;
  target: string;
  functionId?: string;
  event: BusEvent;
}

/** The bus stand-in: records every event put, delivers matches to the rules' function targets. */
export class EventBusStandIn {
  readonly events: Array<BusEvent & { bus: string; caller: string }> = [];
  readonly deliveries: Delivery[] = [];
  /** Firings per scheduled rule. */
  readonly firings = new Map<string, number>();
  ticks = 0;

  constructor(
    readonly rules: readonly RuleSpec[],
    private readonly invokeAsync: (functionId: string, payload: unknown, why: string) => void,
  ) {}

  put(bus: string, event: BusEvent, caller: string): void {
    this.events.push({ ...event, bus, caller });
    for (const rule of this.rules) {
      if (!rule.enabled || !rule.pattern || rule.bus !== bus) continue;
      if (!matches(rule.pattern, event as unknown as Record<string, unknown>)) continue;
      this.deliver(rule, event);
    }
  }

  private deliver(rule: RuleSpec, event: BusEvent): void {
    for (const t of rule.targets) {
      this.deliveries.push({ rule: rule.id, target: t.id, functionId: t.functionId, event });
      if (t.functionId) this.invokeAsync(t.functionId, targetInput(t, event), `rule ${rule.id}`);
    }
  }

  /** The compressed clock: one period of every scheduled rule passes. */
  tick(): RuleSpec[] {
    this.ticks++;
    const fired = this.rules.filter((r) => r.enabled && r.schedule);
    for (const rule of fired) this.fire(rule);
    return fired;
  }

  /** One firing of a scheduled rule: its targets get EventBridge's Scheduled Event. */
  fire(rule: RuleSpec): void {
    this.firings.set(rule.id, (this.firings.get(rule.id) ?? 0) + 1);
    this.deliver(rule, {
      version: '0',
      id: randomUUID(),
      'detail-type': 'Scheduled Event',
      source: 'aws.events',
      account: ACCOUNT,
      time: new Date().toISOString(),
      region: REGION,
      resources: [`arn:aws:events:${REGION}:${ACCOUNT}:rule/${rule.id}`],
      detail: {},
    });
  }

  /** The PutEvents API (AWS JSON 1.1). */
  handle(req: RecordedRequest, caller: string): LocalReply {
    const op = String(req.headers['x-amz-target'] ?? '')
      .split('.')
      .pop();
    const json = (status: number, body: unknown): LocalReply => ({
      status,
      headers: { 'content-type': 'application/x-amz-json-1.1' },
      body: JSON.stringify(body),
    });
    if (op !== 'PutEvents')
      return json(400, { __type: 'UnknownOperationException', message: `${op} is not rehearsed` });
    const body = JSON.parse(req.body.toString('utf8') || '{}') as {
      Entries?: Array<{
        EventBusName?: string;
        Source?: string;
        DetailType?: string;
        Detail?: string;
        Resources?: string[];
      }>;
    };
    const entries = (body.Entries ?? []).map((e) => {
      const id = randomUUID();
      this.put(
        busName(e.EventBusName),
        {
          version: '0',
          id,
          'detail-type': String(e.DetailType),
          source: String(e.Source),
          account: ACCOUNT,
          time: new Date().toISOString(),
          region: REGION,
          resources: e.Resources ?? [],
          detail: JSON.parse(e.Detail ?? '{}'),
        },
        caller,
      );
      return { EventId: id };
    });
    return json(200, { FailedEntryCount: 0, Entries: entries });
  }
}
