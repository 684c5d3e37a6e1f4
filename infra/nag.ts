/**
 * cdk-nag (3.x) in the synth: the AWS Solutions and Serverless packs run as CDK policy-validation
 * plugins, so `cdk synth` (and `npm run synth` in CI) fails on any finding that is neither fixed nor
 * acknowledged. Findings that stay are acknowledged next to the construct they concern, through
 * `acknowledge` below (cdk-nag 3 replaced `NagSuppressions` with CDK's `Validations.of().acknowledge`).
 */
import { type CfnElement, Stack, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks, type NagPack, ServerlessChecks } from 'cdk-nag';
import type { IConstruct } from 'constructs';

/** The rule packs the stack must pass. */
export function nagPacks(): NagPack[] {
  return [new AwsSolutionsChecks(), new ServerlessChecks()];
}

/** Registers the packs on the app: synthesis stops when one reports an unacknowledged finding. */
export function addNagChecks(app: IConstruct): void {
  Validations.of(app).addPlugins(new AwsSolutionsChecks(app), new ServerlessChecks(app));
}

/** Shortest acknowledgement reason accepted: a reason must say why, not just "ok". */
export const MIN_REASON_LENGTH = 40;

/**
 * Acknowledges one cdk-nag finding (`Rule-Id` or `Rule-Id[Finding]`) on a construct and its children,
 * with the reason a reviewer reads. Throws on a missing or perfunctory reason.
 */
export function acknowledge(scope: IConstruct, id: string, reason: string): void {
  if (reason.trim().length < MIN_REASON_LENGTH) {
    throw new Error(
      `acknowledging ${id} on ${scope.node.path} needs a reason (≥ ${MIN_REASON_LENGTH} chars)`,
    );
  }
  Validations.of(scope).acknowledge({ id, reason });
}

/** How cdk-nag names a resource's attribute in a finding: `<LogicalId.Attr>` (GetAtt) or `<LogicalId>` (Ref). */
export function nagRef(resource: IConstruct, attribute?: string): string {
  const cfn = (resource.node.defaultChild ?? resource) as CfnElement;
  const id = Stack.of(resource).getLogicalId(cfn);
  return attribute ? `<${id}.${attribute}>` : `<${id}>`;
}

/** The acknowledgements the stack makes: rule → reason. Tests check each one lands where it should. */
export const NAG_REASON = Object.freeze({
  prefixObjects:
    'Object ARNs under one key prefix (incoming/ or snapshots/): a trailing * after the prefix is the ' +
    'narrowest form S3 resource ARNs allow for keys named by space, version and file.',
  xray:
    'AWS X-Ray PutTraceSegments and PutTelemetryRecords support no resource-level permissions; ' +
    'CDK adds them for active tracing, on resource "*" as AWS documents.',
  executeApi:
    'execute-api ARNs of named routes: the * stand for the stage and for path parameters ({space}, ' +
    '{collection}, {id}); IAM has no narrower form for a path parameter.',
  notificationsHandler:
    "CDK's BucketNotificationsHandler custom resource (runs at deploy time only, to set the bucket's " +
    'notification configuration); its role and managed policy are created by CDK, not by this app.',
  buildDlq:
    'Asynchronous failures of the build function go to its on-failure destination (EventInvokeConfig → ' +
    'failed-builds queue), which records the event, the error and the response; a DLQ would duplicate it.',
  apiOnlyDlq:
    'Invoked synchronously by API Gateway only: the caller receives the error; a dead-letter queue ' +
    'applies only to asynchronous invocations.',
  queryDlq:
    'Invoked synchronously by API Gateway (the caller receives the error) and, when warm-up is on, ' +
    'asynchronously for best-effort warm-ups that are never retried and have nothing to replay.',
  warmUpDestination:
    'Warm-up invocations are best effort: a failure shows in the query function Errors alarm, and there ' +
    'is nothing to replay (the next request loads the version itself), so no on-failure destination.',
  warmUpRuleDlq:
    'Warm-up targets are best effort: an event EventBridge fails to deliver is not worth keeping, since ' +
    'the next request loads the new version itself; the query function metrics show the warm-up gap.',
  alarmEmailRedrive:
    'Alarm notification by email: SNS retries email deliveries itself, and an alarm whose email is lost ' +
    'still shows its state in CloudWatch and on the dashboard; a DLQ would hold messages no one reads.',
  failedBuildsRedrive:
    'The failed-builds queue is itself the dead-letter destination of the build function; an operator ' +
    'inspects and replays its messages (docs/deploy.md), kept 14 days, and an alarm fires on arrival.',
  sweeperDlq:
    'The sweeper runs on a 5-minute schedule and each run redoes all its work: a failed or missed run is ' +
    'made up by the next one, so there is nothing to keep in a dead-letter queue; its Errors show in CloudWatch.',
  accessLogBucket:
    'This is the server access log bucket of the data bucket; logging it would need yet another bucket ' +
    '(or log into itself, which S3 advises against as it loops).',
  publicRead:
    'readAuth=none was set explicitly by the deployer: read routes are public on purpose; the synth ' +
    'warns and the query function refuses vectors and private metadata to anonymous callers.',
} as const);
