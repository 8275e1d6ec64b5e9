/**
 * SessionConnection's rules with a real Redis behind it and a transport that records
 * what it was asked to write: what a client that stops reading gets. (Over a real
 * socket the same state takes megabytes of 15-byte replies to reach: the kernel
 * buffers them first.)
 */
import assert from 'node:assert/strict';
import type { Redis } from 'ioredis';
import { createLogger } from '../shared/logger.js';
import { Metrics } from '../shared/metrics.js';
import { CLOSE, newSessionId, type ServerClose } from '../shared/protocol.js';
import { RedisSessionStore } from '../shared/session-store.js';
import { SessionConnection, type TransportSink } from '../services/gateway/session-connection.js';
import { range } from './support/clients.js';
import { eventually, RedisServer } from './support/processes.js';

/** A transport whose unread backlog the test sets; it records every write. */
class RecordingSink implements TransportSink {
  readonly transport = 'plain';
  readonly written: string[] = [];
  closedWith: ServerClose | undefined;
  backlog = 0;

  sendCount(count: number): void {
    this.written.push(`count ${count}`);
  }
  sendHeartbeat(_serialized: string, ts: string): void {
    this.written.push(`heartbeat ${ts}`);
  }
  sendBye(total: number): void {
    this.written.push(`bye ${total}`);
  }
  close(reason: ServerClose): void {
    this.closedWith = reason;
  }
  bufferedBytes(): number {
    return this.backlog;
  }
  pause(): boolean {
    return true;
  }
  resume(): void {}
}

describe('SessionConnection', () => {
  let redis: RedisServer;
  let client: Redis;

  before(async () => {
    redis = await RedisServer.start();
    client = redis.client();
  });

  after(async () => {
    client?.disconnect();
    await redis?.destroy();
  });

  function connection(sink: RecordingSink, metrics = new Metrics()): SessionConnection {
    const deps = {
      store: new RedisSessionStore(client, 'wschat:', 3600),
      metrics,
      logger: createLogger({ level: 'error', replica: 'test', version: 'blue' }),
      maxMessageBytes: 1024,
      maxInflight: 64,
      maxMessagesPerSecond: 0,
      maxBufferedBytes: 1000,
    };
    return new SessionConnection(newSessionId(), sink, { request_id: 'test' }, deps);
  }

  it('stops writing to a client that stopped reading, closes it with 1008, and counts it', async () => {
    const sink = new RecordingSink();
    const metrics = new Metrics();
    const session = connection(sink, metrics);
    session.open();
    for (let i = 0; i < 3; i += 1) session.receive(1);
    await eventually(() => sink.written.length === 3, 'three counts');
    assert.deepEqual(sink.written, ['count 1', 'count 2', 'count 3']);

    sink.backlog = 1001;
    session.sendHeartbeat('{"ts":"t"}', 't');
    session.receive(1);
    await eventually(() => sink.closedWith !== undefined, 'the close');
    assert.equal(sink.closedWith, CLOSE.slowConsumer);
    // Nothing more was written but the bye (which the transport queues behind the backlog).
    assert.deepEqual(sink.written, ['count 1', 'count 2', 'count 3', 'bye 3']);
    const errors = await metrics.registry.getSingleMetric('wschat_errors_total')?.get();
    assert.equal(errors?.values.find((value) => value.labels.kind === 'slow_consumer')?.value, 1);
  });

  it('keeps writing while the backlog stays at or under MAX_BUFFERED_BYTES', async () => {
    const sink = new RecordingSink();
    const session = connection(sink);
    sink.backlog = 1000;
    session.open();
    for (let i = 0; i < 5; i += 1) session.receive(1);
    await eventually(() => sink.written.length === 5, 'five counts');
    assert.deepEqual(sink.written, range(1, 5).map((n) => `count ${n}`));
    assert.equal(sink.closedWith, undefined);
  });
});
