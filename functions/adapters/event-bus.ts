import { EventBridgeClient, PutEventsCommand } from '@aws-sdk/client-eventbridge';
import { EVENT_SOURCE, type EventDetailType } from '../contract';
import type { EventPublisher, Log } from '../core/ports';

/**
 * Lifecycle events on EventBridge so pipelines can react (a version READY or FAILED, a pointer moved).
 * Best effort: the switch already happened; a lost notification must not fail the build or the API call.
 */
export class EventBridgePublisher implements EventPublisher {
  constructor(
    private readonly client: EventBridgeClient,
    private readonly busName: string,
    private readonly log: Log,
  ) {}

  async publish(detailType: EventDetailType, detail: Record<string, unknown>): Promise<void> {
    try {
      const r = await this.client.send(
        new PutEventsCommand({
          Entries: [
            {
              EventBusName: this.busName,
              Source: EVENT_SOURCE,
              DetailType: detailType,
              Detail: JSON.stringify(detail),
            },
          ],
        }),
      );
      if (r.FailedEntryCount)
        this.log.warn('event not accepted', { detailType, detail, error: r.Entries?.[0]?.ErrorMessage });
    } catch (err) {
      // Logged with its detail, so an operator can see which space and version a pipeline missed.
      this.log.warn('event not published', { detailType, detail, error: String(err) });
    }
  }
}

export function createEventBridgeClient(region: string): EventBridgeClient {
  return new EventBridgeClient({ region, maxAttempts: 3 });
}
