/**
 * A SessionConnection in-process for the unit tier: a ManualStore whose answers the
 * test gives by hand, a RecordingSink, and a Metrics registry of its own.
 */
import { createLogger } from '../../services/gateway/logger.js';
import { Metrics } from '../../services/gateway/metrics.js';
import { randomSessionId } from '../../shared/protocol/session-id.js';
import type { Resume } from '../../services/gateway/resume-plan.js';
import { SessionConnection, type ConnectionDeps } from '../../services/gateway/session-connection.js';
import { ManualStore, settled } from './manual-store.js';
import { RecordingSink } from './recording-sink.js';

export const MAX_MESSAGE_BYTES = 1024;
export const MAX_BUFFERED_BYTES = 1000;

export interface SessionHarness {
  connection: SessionConnection;
  store: ManualStore;
  sink: RecordingSink;
  metrics: Metrics;
}

/** A connection not opened yet; `deps` overrides the limits; `resume` makes it a resumed one (exactly once). */
export function sessionHarness(
  deps: Partial<ConnectionDeps> = {},
  sink = new RecordingSink(),
  sessionId = randomSessionId(),
  resume?: Resume,
): SessionHarness {
  const store = new ManualStore();
  const metrics = new Metrics();
  const connection = new SessionConnection(sessionId, sink, 'unit', {
    store,
    metrics,
    // Error level: the warn line of a store failure would only clutter the reporter.
    logger: createLogger({ level: 'error', replica: 'unit', version: 'blue' }),
    maxMessageBytes: MAX_MESSAGE_BYTES,
    maxInflight: 64,
    maxMessagesPerSecond: 0,
    maxBufferedBytes: MAX_BUFFERED_BYTES,
    ...deps,
  }, resume);
  return { connection, store, sink, metrics };
}

/** An opened connection: the open answered with `count` (a resumed session when above 0). */
export async function openedSession(count = 0, deps: Partial<ConnectionDeps> = {}, sink?: RecordingSink): Promise<SessionHarness> {
  const h = sessionHarness(deps, sink);
  h.connection.open();
  h.store.opens[0]!.resolve({ count, resumed: count > 0 });
  await settled();
  return h;
}
