import { Duration } from 'aws-cdk-lib';
import type { HttpApi } from 'aws-cdk-lib/aws-apigatewayv2';
import {
  Alarm,
  AlarmStatusWidget,
  ComparisonOperator,
  Dashboard,
  GraphWidget,
  type IMetric,
  Metric,
  Stats,
  TextWidget,
  TreatMissingData,
} from 'aws-cdk-lib/aws-cloudwatch';
import { SnsAction } from 'aws-cdk-lib/aws-cloudwatch-actions';
import type { IFunction } from 'aws-cdk-lib/aws-lambda';
import { Topic } from 'aws-cdk-lib/aws-sns';
import { EmailSubscription } from 'aws-cdk-lib/aws-sns-subscriptions';
import type { IQueue } from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { METRIC, METRICS_NAMESPACE, SERVICE_NAME } from '../../functions/contract';
import { acknowledge, NAG_REASON } from '../nag';

export interface MonitoringProps {
  readonly api: HttpApi;
  readonly queryFunction: IFunction;
  readonly adminFunction: IFunction;
  readonly buildFunction: IFunction;
  readonly failedBuilds: IQueue;
  readonly queryP99AlarmMs: number;
  readonly alarmEmail?: string;
}

const PERIOD = Duration.minutes(5);

/** A metric the functions emit through Powertools (namespace Vicinity, dimension `service`). */
export function appMetric(service: string, metricName: string, statistic: string): Metric {
  return new Metric({
    namespace: METRICS_NAMESPACE,
    metricName,
    dimensionsMap: { service },
    statistic,
    period: PERIOD,
  });
}

/**
 * Alarms (function errors and throttles, failed builds, failed snapshot loads, query p99 latency,
 * API 5xx, failed-build queue depth) → one SNS topic; and a dashboard with latency, loads, builds and
 * pointer moves.
 */
export class Monitoring extends Construct {
  readonly topic: Topic;
  readonly alarms: Alarm[] = [];
  readonly dashboard: Dashboard;

  constructor(scope: Construct, id: string, props: MonitoringProps) {
    super(scope, id);
    this.topic = new Topic(this, 'Alarms', { displayName: 'Vicinity alarms', enforceSSL: true });
    if (props.alarmEmail) {
      const email = this.topic.addSubscription(new EmailSubscription(props.alarmEmail));
      acknowledge(email, 'Serverless-SNSRedrivePolicy', NAG_REASON.alarmEmailRedrive);
    }
    const action = new SnsAction(this.topic);

    const alarm = (
      name: string,
      metric: IMetric,
      threshold: number,
      description: string,
      evaluationPeriods = 1,
      datapointsToAlarm = 1,
    ): Alarm => {
      const a = new Alarm(this, name, {
        metric,
        threshold,
        evaluationPeriods,
        datapointsToAlarm,
        comparisonOperator: ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        treatMissingData: TreatMissingData.NOT_BREACHING,
        alarmDescription: description,
      });
      a.addAlarmAction(action);
      a.addOkAction(action);
      this.alarms.push(a);
      return a;
    };

    const functions: [string, IFunction][] = [
      ['Query', props.queryFunction],
      ['Admin', props.adminFunction],
      ['Build', props.buildFunction],
    ];
    for (const [name, fn] of functions) {
      alarm(
        `${name}Errors`,
        fn.metricErrors({ period: PERIOD, statistic: Stats.SUM }),
        1,
        `${name} function: invocations ended in an unhandled error or timeout`,
      );
      alarm(
        `${name}Throttles`,
        fn.metricThrottles({ period: PERIOD, statistic: Stats.SUM }),
        1,
        `${name} function: invocations throttled (concurrency limit reached)`,
      );
    }
    alarm(
      'BuildsFailed',
      appMetric(SERVICE_NAME.build, METRIC.buildFailures, Stats.SUM),
      1,
      'A release ended FAILED (see the version record’s reason); what is served did not change',
    );
    alarm(
      'FailedBuildEvents',
      props.failedBuilds.metricApproximateNumberOfMessagesVisible({
        period: PERIOD,
        statistic: Stats.MAXIMUM,
      }),
      1,
      'Build invocations failed after all retries; their S3 events wait in the failed-builds queue for a redrive',
    );
    alarm(
      'SnapshotLoadsFailed',
      appMetric(SERVICE_NAME.query, METRIC.snapshotLoadFailures, Stats.SUM),
      1,
      'The query function could not verify or load a snapshot (requests got 503)',
    );
    alarm(
      'QueryLatencyP99',
      props.api.metricLatency({ period: PERIOD, statistic: Stats.p(99) }),
      props.queryP99AlarmMs,
      `API p99 latency at or above ${props.queryP99AlarmMs} ms in 2 of 3 five-minute periods`,
      3,
      2,
    );
    alarm(
      'Api5xx',
      props.api.metricServerError({ period: PERIOD, statistic: Stats.SUM }),
      5,
      'The API answered 5xx at least 5 times in 5 minutes',
    );

    const pointerMoves = [SERVICE_NAME.build, SERVICE_NAME.admin].map((s) =>
      appMetric(s, METRIC.pointerMoves, Stats.SUM).with({ label: `pointer moved by ${s}` }),
    );
    this.dashboard = new Dashboard(this, 'Dashboard', { defaultInterval: Duration.hours(3) });
    this.dashboard.addWidgets(
      new TextWidget({
        markdown:
          '# Vicinity\nLatency and traffic at API Gateway; snapshot loads and builds from the functions’ metrics (namespace `Vicinity`).',
        width: 24,
        height: 2,
      }),
    );
    this.dashboard.addWidgets(
      new GraphWidget({
        title: 'API latency (ms)',
        left: [Stats.p(50), Stats.p(90), Stats.p(99)].map((s) =>
          props.api.metricLatency({ period: Duration.minutes(1), statistic: s, label: s }),
        ),
        width: 8,
      }),
      new GraphWidget({
        title: 'API requests and errors',
        left: [
          props.api.metricCount({
            period: Duration.minutes(1),
            statistic: Stats.SAMPLE_COUNT,
            label: 'requests',
          }),
        ],
        right: [
          props.api.metricClientError({ period: Duration.minutes(1), label: '4xx' }),
          props.api.metricServerError({ period: Duration.minutes(1), label: '5xx' }),
        ],
        width: 8,
      }),
      new GraphWidget({
        title: 'Query function duration (ms) and concurrency',
        left: [Stats.p(50), Stats.p(99)].map((s) =>
          props.queryFunction.metricDuration({ period: Duration.minutes(1), statistic: s, label: s }),
        ),
        right: [
          props.queryFunction.metric('ConcurrentExecutions', {
            period: Duration.minutes(1),
            statistic: Stats.MAXIMUM,
            label: 'concurrent',
          }),
        ],
        width: 8,
      }),
    );
    this.dashboard.addWidgets(
      new GraphWidget({
        title: 'Snapshot loads',
        left: [
          appMetric(SERVICE_NAME.query, METRIC.snapshotLoads, Stats.SUM).with({ label: 'loads' }),
          appMetric(SERVICE_NAME.query, METRIC.snapshotLoadFailures, Stats.SUM).with({ label: 'failed' }),
        ],
        right: [
          appMetric(SERVICE_NAME.query, METRIC.snapshotDownloadMs, Stats.MAXIMUM).with({
            label: 'download max ms',
          }),
          appMetric(SERVICE_NAME.query, METRIC.snapshotReadIndexMs, Stats.MAXIMUM).with({
            label: 'readIndex max ms',
          }),
        ],
        width: 8,
      }),
      new GraphWidget({
        title: 'Builds',
        left: [
          appMetric(SERVICE_NAME.build, METRIC.buildsReady, Stats.SUM).with({ label: 'ready' }),
          appMetric(SERVICE_NAME.build, METRIC.buildFailures, Stats.SUM).with({ label: 'failed' }),
          props.failedBuilds
            .metricApproximateNumberOfMessagesVisible({ statistic: Stats.MAXIMUM })
            .with({ label: 'failed-build events queued' }),
        ],
        right: [
          props.buildFunction.metricDuration({ statistic: Stats.MAXIMUM, label: 'build function max ms' }),
        ],
        width: 8,
      }),
      new GraphWidget({ title: 'Active version changes (pointer moves)', left: pointerMoves, width: 8 }),
    );
    this.dashboard.addWidgets(
      new GraphWidget({
        title: 'Function errors and throttles',
        left: functions.flatMap(([name, fn]) => [
          fn.metricErrors({ statistic: Stats.SUM, label: `${name} errors` }),
          fn.metricThrottles({ statistic: Stats.SUM, label: `${name} throttles` }),
        ]),
        width: 12,
      }),
      new AlarmStatusWidget({ title: 'Alarms', alarms: this.alarms, width: 12 }),
    );
  }
}
