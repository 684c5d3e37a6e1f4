import { Duration } from 'aws-cdk-lib';
import { EventBus, EventField, type IEventBus, Rule, RuleTargetInput } from 'aws-cdk-lib/aws-events';
import { LambdaFunction } from 'aws-cdk-lib/aws-events-targets';
import type { IFunction } from 'aws-cdk-lib/aws-lambda';
import { Construct } from 'constructs';
import { EVENT_DETAIL_TYPE, EVENT_SOURCE, type WarmUpEvent } from '../../functions/contract';
import { acknowledge, NAG_REASON } from '../nag';

/** The bus the functions put events on: a named existing bus, or the account's default bus. */
export function resolveEventBus(scope: Construct, eventBusName: string | undefined): IEventBus {
  return EventBus.fromEventBusName(scope, 'EventBus', eventBusName ?? 'default');
}

export interface WarmUpProps {
  readonly eventBus: IEventBus;
  readonly queryFunction: IFunction;
  /** Concurrent invocations (1–5: an EventBridge rule holds at most 5 targets). */
  readonly invocations: number;
}

/**
 * After the pointer moves, invokes the query function `invocations` times at once (asynchronously),
 * each with a WarmUpEvent, so that many instances load the new version before user requests need it.
 * Concurrent asynchronous invocations usually land on distinct instances; it is best effort.
 */
export class WarmUp extends Construct {
  readonly rule: Rule;

  constructor(scope: Construct, id: string, props: WarmUpProps) {
    super(scope, id);
    if (!Number.isInteger(props.invocations) || props.invocations < 1 || props.invocations > 5) {
      throw new Error(`warm-up invocations must be 1..5, got ${props.invocations}`);
    }
    // The targets' retryAttempts covers EventBridge's delivery; this stops Lambda's own retries of a
    // failed warm-up (2 by default), which would only load a broken version again.
    props.queryFunction.configureAsyncInvoke({ retryAttempts: 0, maxEventAge: Duration.minutes(5) });
    acknowledge(
      props.queryFunction,
      'Serverless-LambdaAsyncFailureDestination',
      NAG_REASON.warmUpDestination,
    );
    this.rule = new Rule(this, 'PointerMoved', {
      eventBus: props.eventBus,
      description: 'Vicinity: warm the query function after a space pointer moves',
      eventPattern: { source: [EVENT_SOURCE], detailType: [EVENT_DETAIL_TYPE.pointerMoved] },
    });
    acknowledge(this.rule, 'Serverless-EventBusDLQ', NAG_REASON.warmUpRuleDlq);
    for (let slot = 0; slot < props.invocations; slot++) {
      const payload: Record<keyof WarmUpEvent, unknown> = {
        vicinity: 'warm-up',
        slot,
        space: EventField.fromPath('$.detail.space'),
        version: EventField.fromPath('$.detail.version'),
      };
      this.rule.addTarget(
        new LambdaFunction(props.queryFunction, {
          event: RuleTargetInput.fromObject(payload),
          retryAttempts: 0,
        }),
      );
    }
  }
}
