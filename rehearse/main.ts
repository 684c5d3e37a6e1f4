// Deploy rehearsal (`npm run rehearse`): runs the synthesized stack's own artifacts in cdk.out the way Lambda would, on the local stand-ins, and proves its IAM by use.
// May import node, the AWS SDK, rehearse/*, local/standins, local/sigv4-verifier, local/synthetic and functions/contract (plus types) — never handler source: the bundles are what run.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  CALLS_FILE,
  checkingStage,
  formatIamReport,
  formatIamTable,
  type IamReport,
  iamReport,
  overGrants,
  type RecordedCalls,
} from './checks';
import { Story } from './story';
import { startRehearsal } from './system';
import { findTemplate, formatFinding, Stack } from './template';

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';
const IAM_TABLE_FILE = 'rehearsal-iam.md';
const PROJECT_ROOT = fileURLToPath(new URL('..', import.meta.url)).replace(/\/$/, '');

function newestMtime(dir: string): number {
  let newest = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) newest = Math.max(newest, newestMtime(p));
    else newest = Math.max(newest, statSync(p).mtimeMs);
  }
  return newest;
}

async function main(): Promise<number> {
  const args = process.argv.slice(2);
  const noSynth = args.includes('--no-synth');
  const keep = args.includes('--keep');
  const outIdx = args.indexOf('--out');
  const outDir = resolve(outIdx >= 0 ? (args[outIdx + 1] as string) : join(PROJECT_ROOT, 'cdk.out'));
  const log = (line: string) => process.stdout.write(`${line}\n`);

  if (!noSynth) {
    log('== synth (npm run synth)');
    const s = spawnSync('npm', ['run', 'synth'], { cwd: PROJECT_ROOT, stdio: 'inherit' });
    if (s.status !== 0) return 1;
  }
  const templatePath = findTemplate(outDir);
  if (noSynth) {
    const sources = Math.max(...['functions', 'infra'].map((d) => newestMtime(join(PROJECT_ROOT, d))));
    if (statSync(templatePath).mtimeMs < sources) {
      log(`FAIL ${templatePath} is older than functions/ or infra/: run npm run rehearse without --no-synth`);
      return 1;
    }
  }
  const stack = Stack.load(templatePath, outDir);
  log(`== checking stage: ${templatePath}`);
  const { model, findings } = checkingStage(stack, PROJECT_ROOT);
  for (const n of model.notes) log(`note ${n}`);
  for (const f of findings) log(`FAIL ${formatFinding(f)}`);
  if (findings.length) return 1;
  log(
    `ok   ${model.functions.length} functions, ${model.routes.length} routes, ${model.notifications.length} S3 notifications, ${model.rules.length} EventBridge rules, ${model.callerStatements.length} caller policy statements`,
  );

  const workDir = mkdtempSync(join(tmpdir(), 'vicinity-rehearsal-'));
  log(`== starting the artifacts (work dir ${workDir})`);
  const t0 = performance.now();
  const r = await startRehearsal(stack, model, {
    workDir,
    sdkDir: join(PROJECT_ROOT, 'node_modules', '@aws-sdk'),
    projectRoot: PROJECT_ROOT,
    log,
  });
  let failed = false;
  try {
    const inits = await Promise.allSettled([...r.runtimes.values()].map((rt) => rt.warm()));
    [...r.runtimes.values()].forEach((rt, i) => {
      const res = inits[i];
      if (res?.status === 'rejected') {
        failed = true;
        log(
          `FAIL ${rt.spec.id}: Handler ${rt.spec.handler} / Environment: init failed: ${String(res.reason).slice(0, 600)}`,
        );
      } else
        log(
          `ok   ${rt.spec.id}: ${rt.spec.handler} in its own process (heap ${rt.spec.memoryMb} MB, timeout ${rt.spec.timeoutSeconds} s, ${rt.spec.layers.length} layer(s) at opt/, SDK calls → ${r.proxies.get(rt.spec.id)?.endpoint})`,
        );
    });
    log(`   gateway ${r.gateway.url}, s3rver ${r.s3Endpoint}`);
    if (!failed) {
      log('== story');
      const story = new Story(r, log);
      await story.run();
      await story.tick();
      await r.idle();
      if (story.steps.some((s) => s.status === 'fail')) failed = true;
    }

    log('== IAM by use (Conditions evaluated: StringEquals/Like, ArnEquals/Like, Bool, Null, …IfExists)');
    const recorded: RecordedCalls = {};
    const reports: IamReport[] = [];
    for (const spec of model.functions) {
      const calls = [...(r.proxies.get(spec.id)?.calls ?? []), ...(r.platformCalls.get(spec.id) ?? [])];
      recorded[spec.id] = calls.map(({ action, resource, context }) => ({
        action,
        resource,
        ...(context && Object.keys(context).length ? { context } : {}),
      }));
      const report = iamReport(stack, model, spec, calls);
      reports.push(report);
      log(formatIamReport(report));
      for (const f of report.findings) {
        failed = true;
        log(`FAIL ${formatFinding(f)}`);
      }
    }
    writeFileSync(join(outDir, CALLS_FILE), `${JSON.stringify(recorded, null, 1)}\n`);
    writeFileSync(join(outDir, IAM_TABLE_FILE), `${formatIamTable(reports)}\n`);
    const over = reports.flatMap((x) =>
      overGrants(x).map((u) => `${x.functionId}: ${u.action} ${u.resource} (${u.statement})`),
    );
    log(
      over.length
        ? `note ${over.length} OVER-GRANT(s), neither used nor justified in rehearse/justified.ts:\n  ${over.join('\n  ')}`
        : 'ok   every allowed action was used by the story, by Lambda itself, or is justified (rehearse/justified.ts)',
    );
    log(`   IAM-by-use table (docs/deploy.md) written to ${join(outDir, IAM_TABLE_FILE)}`);
    const failedBuilds = [...r.queues.entries()].filter(([, q]) => q.length > 0);
    for (const [arn, q] of failedBuilds)
      log(`note ${q.length} message(s) in ${arn} (async invocations that failed after retries)`);
    const unsignedRefused = r.gateway.records.filter((x) => !x.signed && x.status === 403).length;
    log(
      `== ${failed ? 'FAILED' : 'passed'} in ${Math.round((performance.now() - t0) / 1000)} s: ${r.gateway.records.length} API requests (${unsignedRefused} unsigned refused), ${r.asyncInvocations.length} async invocations, ${r.bus.events.length} events put, calls written to ${join(outDir, CALLS_FILE)}`,
    );
  } finally {
    await r.stop();
    if (!keep && !failed) rmSync(workDir, { recursive: true, force: true });
    else log(`work dir kept: ${workDir} (function logs in functions/*/function.log)`);
  }
  return failed ? 1 : 0;
}

process.exitCode = await main();
