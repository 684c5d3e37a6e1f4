import type { EventBridgeClient } from '@aws-sdk/client-eventbridge';
import { EVENT_SOURCE, type EventDetailType } from '../contract';
import type { EventPublisher, Log } from '../core/ports';

type EventBridgeSdk = typeof import('@aws-sdk/client-eventbridge');
let sdk: Promise<EventBridgeSdk> | undefined;
/**
 * The EventBridge client is loaded on the first event, not at init: events follow switches and builds
 * only, so a query instance never loads it, and a cold start of the others does not wait for it.
 */
const loadSdk = (): Promise<EventBridgeSdk> => {
  sdk ??= import('@aws-sdk/client-eventbridge').catch((err) => {
    sdk = undefined;
    throw err;
  });
  return sdk;
};

/**
 * Lifecycle events on EventBridge so pipelines can react (a version READY or FAILED, a pointer moved).
 * Best effort: the switch already happened; a lost notification must not fail the build or the API call.
 */
export class EventBridgePublisher implements EventPublisher {
  private client: Promise<EventBridgeClient> | undefined;

  /** `client` (tests): use this client instead of creating one for `region` on the first event. */
  constructor(
    private readonly region: string,
    private readonly busName: string,
    private readonly log: Log,
    client?: EventBridgeClient,
  ) {
    if (client) this.client = Promise.resolve(client);
  }

  async publish(detailType: EventDetailType, detail: Record<string, unknown>): Promise<void> {
    try {
      const { PutEventsCommand } = await loadSdk();
      this.client ??= createEventBridgeClient(this.region);
      const r = await (await this.client).send(
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

export async function createEventBridgeClient(region: string): Promise<EventBridgeClient> {
  const { EventBridgeClient } = await loadSdk();
  return new EventBridgeClient({ region, maxAttempts: 3 });
}
