/**
 * SessionConnection's rules with a transport that records what it was asked to
 * write: what a client that stops reading gets (over a real socket the same state
 * takes megabytes of 15-byte replies to reach: the kernel buffers them first), with
 * a real Redis behind it; and the close path's two endings, with a store whose
 * answers the test releases one by one.
 */
import assert from 'node:assert/strict';
import type { Redis } from 'ioredis';
import { createLogger } from '../../services/gateway/logger.js';
import { Metrics } from '../../services/gateway/metrics.js';
import { CLOSE } from '../../shared/protocol/closes.js';
import { randomSessionId } from '../../shared/protocol/session-id.js';
import { RedisSessionStore, type LeasedSession, type OpenedSession, type SessionStore } from '../../services/gateway/store/session-store.js';
import { SessionConnection } from '../../services/gateway/session-connection.js';
import { eventually, RedisServer } from '../../tools/harness/processes.js';
import { HeartbeatPacket } from '../../services/gateway/heartbeat-packet.js';
import { RecordingSink } from '../support/recording-sink.js';

/** A store that answers only when the test says so: Redis frozen mid-conversation. */
class HeldStore implements SessionStore {
  private readonly held: Array<() => void> = [];
  private count = 0;

  open(): Promise<OpenedSession> {
    return Promise.resolve({ count: 0, resumed: false });
  }

  increment(): Promise<number> {
    return new Promise((resolve) => this.held.push(() => resolve((this.count += 1))));
  }

  openLeased(): Promise<LeasedSession> {
    return Promise.resolve({ count: 0, resumed: false, lease: 1, raisedBy: 0 });
  }

  incrementLeased(): Promise<number> {
    return this.increment();
  }

  get waiting(): number {
    return this.held.length;
  }

  /** Answers every increment held so far, in order. */
  releaseAll(): void {
    for (const answer of this.held.splice(0)) answer();
  }
}

/** Lets every promise reaction queued so far run. */
function settled(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
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

  function connection(sink: RecordingSink, metrics = new Metrics(), store: SessionStore = new RedisSessionStore(client, { keyPrefix: 'wschat:', keySecret: '', adoptLegacyKeys: true, ttlSeconds: 3600, maxResumeAhead: 10_000 })): SessionConnection {
    const deps = {
      store,
      metrics,
      logger: createLogger({ level: 'error', replica: 'test', version: 'blue' }),
      maxMessageBytes: 1024,
      maxInflight: 64,
      maxMessagesPerSecond: 0,
      maxBufferedBytes: 1000,
    };
    return new SessionConnection(randomSessionId(), sink, 'test', deps);
  }

  /** A connection over Redis whose answers the test releases: opened, `messages` received, all of it waiting at the store. */
  async function heldConnection(messages: number, metrics = new Metrics()): Promise<{ sink: RecordingSink; store: HeldStore; session: SessionConnection }> {
    const sink = new RecordingSink();
    const store = new HeldStore();
    const session = connection(sink, metrics, store);
    session.open();
    for (let i = 0; i < messages; i += 1) session.receive(1);
    await settled();
    return { sink, store, session };
  }

  it('reports in the bye only counts it handed to the transport, when the client stops reading mid-burst', async () => {
    const { sink, store, session } = await heldConnection(1);
    store.releaseAll();
    await eventually(() => sink.written.length === 1, 'count 1');
    session.receive(1);
    session.receive(1);
    await settled();
    sink.backlog = 1001;
    store.releaseAll();
    await eventually(() => sink.closedWith !== undefined, 'the close');
    assert.equal(sink.closedWith, CLOSE.slowConsumer);
    assert.deepEqual(sink.written, ['count 1', 'bye 1'], 'counts 2 and 3 were never written, so the bye cannot report them');
  });

  describe('close endings', () => {
    it("'bye': answers what it received (Redis slow or not), then the bye, then the close", async () => {
      const { sink, store, session } = await heldConnection(2);
      session.close(CLOSE.shuttingDown);
      await settled();
      assert.equal(sink.closedWith, undefined, 'the close waits for the counts');
      store.releaseAll();
      await eventually(() => sink.closedWith !== undefined, 'the close');
      assert.deepEqual(sink.written, ['count 1', 'count 2', 'bye 2']);
      assert.equal(sink.closedWith, CLOSE.shuttingDown);
    });

    for (const reason of [CLOSE.protocolError, CLOSE.invalidUtf8]) {
      it(`'fail' (${reason.code}): the close at once with messages awaiting Redis, no bye, and nothing written after`, async () => {
        const metrics = new Metrics();
        const { sink, store, session } = await heldConnection(1, metrics);
        assert.equal(store.waiting, 1);
        session.close(reason);
        assert.equal(sink.closedWith, reason, 'closed synchronously, without waiting for Redis');
        store.releaseAll();
        await settled();
        session.sendHeartbeat(new HeartbeatPacket('t'));
        session.close(CLOSE.shuttingDown);
        await settled();
        assert.deepEqual(sink.written, []);
        assert.equal(sink.closedWith, reason);
        const errors = await metrics.registry.getSingleMetric('wschat_errors_total')?.get();
        assert.equal(errors?.values.find((value) => value.labels.kind === reason.kind)?.value, 1);
      });
    }

    it("'fail' takes over from a 'bye' close still waiting for Redis", async () => {
      const { sink, store, session } = await heldConnection(1);
      session.close(CLOSE.shuttingDown);
      session.close(CLOSE.protocolError);
      assert.equal(sink.closedWith, CLOSE.protocolError);
      store.releaseAll();
      await settled();
      assert.deepEqual(sink.written, [], 'neither the count nor the drain\'s bye follows the failure');
    });
  });
});
