/**
 * The replica's Prometheus metrics, in a registry of its own (never prom-client's
 * global one, so tests can build as many replicas as they like in one process).
 *
 * Labels are bounded: transport (2 values), error kind and close code (fixed
 * sets from shared/protocol/closes.ts; a close code is a server-sent one, "client"
 * or "abnormal"). Colour and replica are target labels added by
 * Prometheus, not metric labels.
 */
import client from 'prom-client';
import { CLOSE } from '../../shared/protocol/closes.js';
import { TallyHistogram, type TallySeries } from './tally-histogram.js';

export type Transport = 'plain' | 'socketio';
export const TRANSPORTS: readonly Transport[] = ['plain', 'socketio'];

export const METRIC_PREFIX = 'wschat_';

/**
 * Every value of the errors metric's `kind` label (DESIGN.md, "Close codes and
 * errors"): the server-initiated closes that are errors, then the rest.
 */
export const ERROR_KINDS = [
  ...Object.values(CLOSE).flatMap((close) => (close.kind === 'shutdown' ? [] : [close.kind])),
  'redis',
  'adapter_error',
  'heartbeat_election',
  'heartbeat_publish',
  'heartbeat_malformed',
  'peer_unresponsive',
  'upgrade_while_draining',
  'upgrade_store_unavailable',
  'replica_full',
  'upgrade_not_found',
  'upgrade_http_version',
  'origin_refused',
  'http_client_error',
  'http_headers_too_large',
  'http_headers_timeout',
  'socketio_bad_packet',
  'socketio_polling_refused',
  'http',
  'unhandled_rejection',
] as const;
export type ErrorKind = (typeof ERROR_KINDS)[number];

/**
 * A count the per-message path keeps as a plain number; the registry reads it when
 * scraped (prom-client's inc() builds and hashes a label key on every call).
 */
export class PlainCount {
  value = 0;

  inc(): void {
    this.value += 1;
  }

  dec(): void {
    this.value -= 1;
  }

  /** What was counted since the last take. */
  take(): number {
    const { value } = this;
    this.value = 0;
    return value;
  }
}

/** One transport's labelled series, bound once: the per-message path does no label lookups. */
export interface TransportMetrics {
  /** Messages counted since the last scrape, added to wschat_messages_total then. */
  messages: PlainCount;
  messageDuration: TallySeries;
  connectionsActive: ReturnType<client.Gauge<'transport'>['labels']>;
  connectionsOpened: ReturnType<client.Counter<'transport'>['labels']>;
  sessionsResumed: ReturnType<client.Counter<'transport'>['labels']>;
}

export class Metrics {
  readonly registry = new client.Registry();
  private readonly byTransport = new Map<Transport, TransportMetrics>();

  readonly messages = new client.Counter({
    name: `${METRIC_PREFIX}messages_total`,
    help: 'Text messages counted (confirmed by Redis and answered), by transport.',
    labelNames: ['transport'] as const,
    registers: [this.registry],
    collect: () => {
      for (const [transport, bound] of this.byTransport) this.messages.inc({ transport }, bound.messages.take());
    },
  });

  readonly connectionsActive = new client.Gauge({
    name: `${METRIC_PREFIX}connections_active`,
    help: 'Open sockets on this replica, by transport.',
    labelNames: ['transport'] as const,
    registers: [this.registry],
  });

  /** Messages awaiting their count from Redis, all connections: read when scraped. */
  readonly messagesInflight = new PlainCount();

  private readonly messagesInflightGauge: client.Gauge = new client.Gauge({
    name: `${METRIC_PREFIX}messages_inflight`,
    help: 'Messages awaiting their count from Redis, all connections of this replica.',
    registers: [this.registry],
    collect: () => {
      this.messagesInflightGauge.set(this.messagesInflight.value);
    },
  });

  readonly connectionsOpened = new client.Counter({
    name: `${METRIC_PREFIX}connections_opened_total`,
    help: 'Sockets accepted since start, by transport.',
    labelNames: ['transport'] as const,
    registers: [this.registry],
  });

  readonly connectionsClosed = new client.Counter({
    name: `${METRIC_PREFIX}connections_closed_total`,
    help: 'Sockets closed, by transport and close code (server-sent codes; "client" for client-initiated closes, "abnormal" for sockets gone without a close frame).',
    labelNames: ['transport', 'code'] as const,
    registers: [this.registry],
  });

  private readonly errorsByKind = new client.Counter({
    name: `${METRIC_PREFIX}errors_total`,
    help: 'Errors by kind (see DESIGN.md, "Close codes and errors").',
    labelNames: ['kind'] as const,
    registers: [this.registry],
  });

  forTransport(transport: Transport): TransportMetrics {
    let bound = this.byTransport.get(transport);
    if (bound === undefined) {
      bound = {
        messages: new PlainCount(),
        messageDuration: this.messageDuration.labels(transport),
        connectionsActive: this.connectionsActive.labels(transport),
        connectionsOpened: this.connectionsOpened.labels(transport),
        sessionsResumed: this.sessionsResumed.labels(transport),
      };
      this.byTransport.set(transport, bound);
    }
    return bound;
  }

  /** Counts one error of a known kind (the type keeps the label set closed). */
  error(kind: ErrorKind): void {
    this.errorsByKind.inc({ kind });
  }

  readonly messageDuration = new TallyHistogram({
    name: `${METRIC_PREFIX}message_duration_seconds`,
    help: 'From a text message arriving to its count being written back, by transport.',
    labelName: 'transport',
    labelValues: TRANSPORTS,
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registry: this.registry,
  });

  readonly sessionsResumed = new client.Counter({
    name: `${METRIC_PREFIX}sessions_resumed_total`,
    help: 'Connections that resumed a session already known to Redis, by transport.',
    labelNames: ['transport'] as const,
    registers: [this.registry],
  });

  readonly heartbeatsPublished = new client.Counter({
    name: `${METRIC_PREFIX}heartbeats_published_total`,
    help: 'Heartbeat ticks this replica won and published to the fleet (one per tick across the fleet).',
    registers: [this.registry],
  });

  readonly heartbeatTicksDelivered = new client.Counter({
    name: `${METRIC_PREFIX}heartbeat_ticks_delivered_total`,
    help: 'Heartbeat ticks this replica delivered to its local sockets (its own or received from the fleet).',
    registers: [this.registry],
  });

  readonly heartbeatsDelivered = new client.Counter({
    name: `${METRIC_PREFIX}heartbeats_delivered_total`,
    help: 'Heartbeat messages written to local sockets, by transport.',
    labelNames: ['transport'] as const,
    registers: [this.registry],
  });

  readonly heartbeatFanOut = new client.Histogram({
    name: `${METRIC_PREFIX}heartbeat_fanout_seconds`,
    help: "From a heartbeat tick's instant to the end of this replica's writes of it to its local sockets.",
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [this.registry],
  });

  readonly ready = new client.Gauge({
    name: `${METRIC_PREFIX}ready`,
    help: '1 while /readyz answers 200, else 0.',
    registers: [this.registry],
  });

  readonly redisConnected = new client.Gauge({
    name: `${METRIC_PREFIX}redis_connected`,
    help: '1 while both Redis connections (commands, adapter subscriber) are ready, else 0.',
    registers: [this.registry],
  });

  readonly shutdownDuration = new client.Histogram({
    name: `${METRIC_PREFIX}shutdown_duration_seconds`,
    help: 'Drain durations of replicas that have exited, reported through Redis by the replicas that outlive them.',
    buckets: [0.05, 0.1, 0.25, 0.5, 1, 2, 3, 5, 8, 10],
    registers: [this.registry],
  });

  constructor() {
    client.collectDefaultMetrics({ register: this.registry, prefix: '' });
    // Export every labelled series at zero from the start, so rate() and absent()
    // behave from the first scrape instead of after the first event.
    for (const transport of TRANSPORTS) {
      this.messages.inc({ transport }, 0);
      this.connectionsActive.set({ transport }, 0);
      this.connectionsOpened.inc({ transport }, 0);
      this.sessionsResumed.inc({ transport }, 0);
      this.heartbeatsDelivered.inc({ transport }, 0);
    }
    for (const kind of ERROR_KINDS) this.errorsByKind.inc({ kind }, 0);
    this.ready.set(0);
    this.redisConnected.set(0);
  }
}
