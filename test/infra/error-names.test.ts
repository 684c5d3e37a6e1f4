/**
 * The bundles are minified without `keepNames` (infra/bundle.ts), which renames
 * classes and functions. Built as the stack builds them and run in plain Node, every error class of
 * functions/ keeps the `name` it has in the source run, the error edge still names a domain error,
 * and the DynamoDB registry still recognises the SDK's ConditionalCheckFailedException.
 */
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDynamoClient } from '../../functions/adapters/aws-clients';
import { bundleFunction } from '../../infra/bundle';
import { runNode } from '../../infra/bundle-init';
import { PROJECT_ROOT } from '../../infra/paths';
import type { DynamoStandIn } from '../../local/standins/common';
import { ensureTable, LOCAL_CREDENTIALS, LOCAL_REGION } from '../../local/standins/common';
import { startDynalite } from '../../local/standins/dynalite';
import * as source from './fixtures/error-names';

const FIXTURE = 'test/infra/fixtures/error-names.ts';

const RUNNER = `process.stderr.write = process.stdout.write.bind(process.stdout);
const m = await import('./index.mjs');
const [endpoint, table] = process.argv.slice(2);
console.log(JSON.stringify({ names: m.errorNames() }));
console.log(JSON.stringify({ response: await m.failWithDomainError() }));
console.log(JSON.stringify({ sdkLogger: m.sdkLoggerName() }));
console.log(JSON.stringify({ conflict: await m.conflictingSwitch(endpoint, table) }));
`;

/** Every class under functions/ that extends Error, directly or through another such class. */
function errorClassesInSource(): { name: string; parent: string }[] {
  const found: { name: string; parent: string }[] = [];
  const walk = (dir: string) => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, e.name);
      if (e.isDirectory()) walk(path);
      else if (e.name.endsWith('.ts')) {
        for (const m of readFileSync(path, 'utf8').matchAll(/\bclass (\w+) extends (\w+)/g)) {
          found.push({ name: m[1] as string, parent: m[2] as string });
        }
      }
    }
  };
  walk(join(PROJECT_ROOT, 'functions'));
  const errors = new Set(['Error']);
  for (let grew = true; grew; ) {
    grew = false;
    for (const c of found) {
      if (errors.has(c.parent) && !errors.has(c.name)) {
        errors.add(c.name);
        grew = true;
      }
    }
  }
  return found.filter((c) => errors.has(c.name));
}

/** Whether `name` descends from VicinityError (its instances are named after their class). */
function isDomainError(name: string, classes: { name: string; parent: string }[]): boolean {
  for (let n: string | undefined = name; n; n = classes.find((c) => c.name === n)?.parent) {
    if (n === 'VicinityError') return true;
  }
  return false;
}

describe('names in a minified bundle', () => {
  const out = join(PROJECT_ROOT, 'cdk.out', `error-names-test-${process.pid}`);
  let dynamo: DynamoStandIn;
  let lines: Record<string, unknown>[] = [];
  const line = <T>(key: string): T => (lines.find((l) => key in l) as Record<string, T>)[key] as T;

  beforeAll(async () => {
    mkdirSync(out, { recursive: true });
    dynamo = await startDynalite();
    const table = `error-names-${process.pid}`;
    const ddb = createDynamoClient({
      region: LOCAL_REGION,
      dynamodbEndpoint: dynamo.endpoint,
      credentials: LOCAL_CREDENTIALS,
    });
    await ensureTable(ddb, table);
    ddb.destroy();
    await bundleFunction(join(PROJECT_ROOT, FIXTURE), out, true);
    writeFileSync(join(out, 'runner.mjs'), RUNNER);
    const stdout = await runNode([join(out, 'runner.mjs'), dynamo.endpoint, table], {
      cwd: out,
      env: {
        PATH: process.env.PATH ?? '/usr/bin:/bin',
        POWERTOOLS_METRICS_DISABLED: 'true',
        AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
      },
    });
    lines = stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
  });
  afterAll(async () => {
    rmSync(out, { recursive: true, force: true });
    await dynamo?.stop();
  });

  it('the fixture covers every error class of functions/', () => {
    const classes = errorClassesInSource().map((c) => c.name);
    expect(classes.length).toBeGreaterThan(20);
    expect(Object.keys(source.errorNames()).sort()).toEqual([...new Set(classes)].sort());
  });

  it('every error keeps the name it has unbundled; a domain error is named after its class', () => {
    const bundled = line<Record<string, { name: string; header: string }>>('names');
    expect(bundled).toEqual(source.errorNames());
    const classes = errorClassesInSource();
    for (const [cls, { name, header }] of Object.entries(bundled)) {
      if (isDomainError(cls, classes)) expect(name, cls).toBe(cls);
      expect(header.startsWith(`${name}: `), cls).toBe(true);
    }
  });

  it('the error edge logs a domain error by its name and answers its problem type', () => {
    const failed = lines.find((l) => l.message === 'request failed') as {
      error: { name: string; stack: string };
    };
    expect(failed.error.name).toBe('SnapshotUnavailableError');
    expect(failed.error.stack).toMatch(
      /^SnapshotUnavailableError: the snapshot of v000000000007 failed verification\n/,
    );
    const response = line<{ statusCode: number; body: string }>('response');
    expect(response.statusCode).toBe(503);
    expect(JSON.parse(response.body)).toMatchObject({
      type: 'https://vicinity.dev/problems/snapshot-unavailable',
    });
  });

  it("the SDK's default logger keeps its class name (the SDK tells it from a real logger by name)", () => {
    expect(line('sdkLogger')).toBe('NoOpLogger');
    expect(source.sdkLoggerName()).toBe('NoOpLogger');
  });

  it("the bundled registry recognises the real client's ConditionalCheckFailedException (dynalite) as a conflict", () => {
    expect(line('conflict')).toEqual({
      name: 'PointerConflictError',
      kind: 'conflict',
      isPointerConflict: true,
      causeName: 'ConditionalCheckFailedException',
      causeIsSdkClass: true,
    });
  });
});
