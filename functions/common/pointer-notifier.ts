import type { Metrics } from '@aws-lambda-powertools/metrics';
import { EVENT_DETAIL_TYPE, METRIC } from '../contract';
import type { EventPublisher, Log, PointerMove, PointerMoveNotifier } from '../core/ports';
import { MetricUnit } from './observability';

/**
 * The one thing that happens after any pointer move (build, API, CLI): a log line, a PointerMoved
 * event (warm-up and pipelines listen), and the PointerMoves count. Never throws: the switch has
 * already happened, so a lost notification is logged, not turned into a failed activation.
 */
export function pointerNotifier(o: {
  log: Log;
  events: EventPublisher;
  /** Absent where nothing collects metrics (the CLI). */
  metrics?: Pick<Metrics, 'addMetric'>;
}): PointerMoveNotifier {
  return {
    async onPointerMoved(move: PointerMove) {
      const { space, version, pointer, by } = move;
      o.metrics?.addMetric(METRIC.pointerMoves, MetricUnit.Count, 1);
      o.log.info('pointer moved', { space, version, generation: pointer.generation, by });
      try {
        await o.events.publish(EVENT_DETAIL_TYPE.pointerMoved, { space, version, pointer, by });
      } catch (err) {
        o.log.warn('PointerMoved not published', { space, version, error: String(err) });
      }
    },
  };
}
