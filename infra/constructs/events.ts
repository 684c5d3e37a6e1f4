import { EventBus, EventField, type IEventBus, Rule, RuleTargetInput } from 'aws-cdk-lib/aws-events';
import { LambdaFunction } from 'aws-cdk-lib/aws-events-targets';
import type { IFunction } from 'aws-cdk-lib/aws-lambda';
import { Construct } from 'constructs';
import { EVENT_DETAIL_TYPE, EVENT_SOURCE, type WarmUpEvent } from '../../functions/contract';

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
    this.rule = new Rule(this, 'PointerMoved', {
      eventBus: props.eventBus,
      description: 'Vicinity: warm the query function after a space pointer moves',
      eventPattern: { source: [EVENT_SOURCE], detailType: [EVENT_DETAIL_TYPE.pointerMoved] },
    });
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
