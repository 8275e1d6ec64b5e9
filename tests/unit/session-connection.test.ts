/**
 * SessionConnection, in-process: a ManualStore settles every open and increment by hand,
 * in any order, and a RecordingSink keeps every write and close in one list. Counting and
 * ordering, the in-flight bound, backpressure, the close path's endings and its status,
 * the edges of a close decided early, and a connection resumed with `last`/`pending`.
 */
import assert from 'node:assert/strict';
import { CLOSE } from '../../shared/protocol/closes.js';
import { ABNORMAL_CLOSURE, SessionConnection, type ConnectionStatus } from '../../services/gateway/session-connection.js';
import { range } from '../../tools/harness/clients.js';
import { settled, ManualStore } from '../support/manual-store.js';
import { MAX_BUFFERED_BYTES, MAX_MESSAGE_BYTES, openedSession, sessionHarness, type SessionHarness } from '../support/session-harness.js';
import { RecordingSink } from '../support/recording-sink.js';
import { metricValue } from '../support/in-process.js';
import { HeartbeatPacket } from '../../services/gateway/heartbeat-packet.js';
import { PassThrough } from 'node:stream';
import { createLogger, sessionTag } from '../../services/gateway/logger.js';
import type { Resume } from '../../services/gateway/resume-plan.js';
import { STALE_LEASE } from '../../services/gateway/store/session-store.js';
import { randomSessionId } from '../../shared/protocol/session-id.js';
import fc from 'fast-check';
import { Metrics } from '../../services/gateway/metrics.js';

const counts = (from: number, to: number): string[] => range(from, to).map((n) => `count ${n}`);

type Line = Record<string, unknown>;

/** A connection whose log lines (debug and up) the test reads back, parsed. */
function logged(resume?: Resume): SessionHarness & { lines: Line[] } {
  const stream = new PassThrough();
  const lines: Line[] = [];
  stream.on('data', (chunk: Buffer) => {
    for (const text of String(chunk).split('\n')) if (text !== '') lines.push(JSON.parse(text) as Line);
  });
  const logger = createLogger({ level: 'debug', replica: 'unit', version: 'blue', stream });
  return { ...sessionHarness({ logger }, new RecordingSink(), randomSessionId(), resume), lines };
}

/** Each line without what every line carries (timestamp, replica, version, request id, session, transport). */
function events(h: SessionHarness & { lines: Line[] }): Line[] {
  for (const line of h.lines) {
    assert.deepEqual(
      [line.request_id, line.session, line.transport],
      ['unit', sessionTag(h.connection.sessionId), 'plain'],
      `every line names its connection: ${JSON.stringify(line)}`,
    );
  }
  return h.lines.map(({ timestamp: _t, replica: _r, version: _v, request_id: _i, session: _s, transport: _tr, ...rest }) => rest);
}

describe('SessionConnection (unit)', () => {
  describe('the FIFO', () => {
    it('writes nothing before the open is answered, then counts 1, 2, 3 although the store answered 3, 2, 1', async () => {
      const { connection, store, sink } = sessionHarness();
      connection.open();
      for (let i = 0; i < 3; i += 1) connection.receive(1);
      assert.equal(store.increments.length, 3, 'every increment starts at once (a burst is pipelined)');
      for (const n of [3, 2, 1]) store.nthIncrement(n).resolve(n);
      await settled();
      assert.deepEqual(sink.events, [], 'nothing may go out before the open is answered');

      store.opens[0]!.resolve({ count: 0, resumed: false });
      await settled();
      assert.deepEqual(sink.events, counts(1, 3), 'counts leave in arrival order, whatever order the store answered in');
      connection.close(CLOSE.shuttingDown);
      await settled();
      assert.deepEqual(sink.events, [...counts(1, 3), 'bye 3', 'close 1001'], 'the bye carries the last count sent');
    });

    it('holds a count whose answer came early until every message before it was answered', async () => {
      const { connection, store, sink } = await openedSession();
      for (let i = 0; i < 4; i += 1) connection.receive(1);
      store.nthIncrement(2).resolve(2);
      store.nthIncrement(4).resolve(4);
      await settled();
      assert.deepEqual(sink.written, [], 'message 1 is not answered yet: nothing may overtake it');
      store.nthIncrement(1).resolve(1);
      await settled();
      assert.deepEqual(sink.written, counts(1, 2), 'message 3 is still unanswered: 4 waits behind it');
      store.nthIncrement(3).resolve(3);
      await settled();
      assert.deepEqual(sink.written, counts(1, 4));
    });

    it('gives each message its own ack with its own count', async () => {
      const { connection, store } = await openedSession();
      const acks: Array<[string, number]> = [];
      connection.receive(1, ({ count }) => acks.push(['first', count]));
      connection.receive(1, ({ count }) => acks.push(['second', count]));
      store.nthIncrement(2).resolve(2);
      store.nthIncrement(1).resolve(1);
      await settled();
      assert.deepEqual(acks, [['first', 1], ['second', 2]]);
    });

    it('answers what it received before a drain, then bye with that total and 1001', async () => {
      const { connection, store, sink } = await openedSession(7);
      connection.receive(1);
      connection.receive(1);
      connection.close(CLOSE.shuttingDown);
      connection.receive(1);
      await settled();
      assert.deepEqual(sink.events, [], 'the bye waits for the answers of messages received before the close');
      assert.equal(store.increments.length, 2, 'a message after the close decision is not counted (the client re-sends it)');
      store.nthIncrement(2).resolve(9);
      store.nthIncrement(1).resolve(8);
      await settled();
      assert.deepEqual(sink.events, ['count 8', 'count 9', 'bye 9', 'close 1001']);
    });

    it('says bye with the resumed count when a resumed session sent nothing', async () => {
      const { connection, sink } = await openedSession(41);
      connection.close(CLOSE.shuttingDown);
      await settled();
      assert.deepEqual(sink.events, ['bye 41', 'close 1001']);
    });
  });

  describe('a store failure', () => {
    for (const order of [[1, 2, 3], [3, 2, 1]]) {
      it(`sends no count queued behind a failed increment (answers in the order ${order.join(', ')}): count 1, bye 1, close 1013`, async () => {
        const { connection, store, sink, metrics } = await openedSession();
        for (let i = 0; i < 3; i += 1) connection.receive(1);
        for (const n of order) {
          if (n === 2) store.nthIncrement(2).reject(new Error('Command timed out'));
          else store.nthIncrement(n).resolve(n);
        }
        await settled();
        assert.ok(!sink.written.includes('count 3'), `a count after a failed one reached the client: ${sink.events.join(', ')}`);
        assert.deepEqual(sink.events, ['count 1', 'bye 1', 'close 1013'], 'the bye reports the last count the client got');
        assert.equal(sink.closedWith, CLOSE.storeUnavailable);
        assert.equal(await metricValue(metrics, 'wschat_errors_total', { kind: 'store_unavailable' }), 1);
      });
    }

    it('closes with 1013 and no bye when the open fails, and never counts the messages that arrived meanwhile', async () => {
      const { connection, store, sink } = sessionHarness();
      connection.open();
      connection.receive(1);
      connection.receive(1);
      store.opens[0]!.reject(new Error('ECONNREFUSED'));
      store.nthIncrement(1).resolve(1);
      store.nthIncrement(2).resolve(2);
      await settled();
      // No bye: nothing was confirmed to this client, so it has no total to report.
      assert.deepEqual(sink.events, ['close 1013']);
    });

    it('drops the messages waiting for a slot: they are never sent to the store (the client re-sends them)', async () => {
      const { connection, store, sink } = await openedSession(0, { maxInflight: 2 });
      for (let i = 0; i < 4; i += 1) connection.receive(1);
      assert.equal(store.increments.length, 2);
      store.nthIncrement(1).reject(new Error('Command timed out'));
      store.nthIncrement(2).resolve(2);
      await settled();
      assert.equal(store.increments.length, 2, 'no increment after the failure');
      // Reading resumes (so the close handshake can complete); the bye reports what was confirmed: nothing.
      assert.deepEqual(sink.events, ['pause', 'resume', 'bye 0', 'close 1013']);
    });
  });

  describe('backpressure', () => {
    it('pauses at MAX_INFLIGHT, counts what was already read in order, resumes at half', async () => {
      const { connection, store, sink } = await openedSession(0, { maxInflight: 4 });
      for (let i = 0; i < 6; i += 1) connection.receive(1);
      assert.equal(store.increments.length, 4, 'at most MAX_INFLIGHT increments at a time');
      assert.deepEqual(sink.events, ['pause']);
      for (let n = 1; n <= 6; n += 1) {
        store.nthIncrement(n).resolve(n);
        await settled();
        assert.equal(store.increments.length, Math.min(6, n + 4), `a freed slot takes the next waiting message (after ${n})`);
      }
      // Resumed once in flight fell to half (after the 4th answer, nothing waiting any more).
      assert.deepEqual(sink.events, ['pause', ...counts(1, 4), 'resume', ...counts(5, 6)]);
    });

    it('closes a transport that cannot pause with 4501 past MAX_INFLIGHT, after answering what it took', async () => {
      const sink = new RecordingSink('socketio');
      sink.canPause = false;
      const { connection, store } = await openedSession(0, { maxInflight: 4 }, sink);
      for (let i = 0; i < 5; i += 1) connection.receive(1);
      assert.equal(store.increments.length, 4, 'the message over the bound is not counted');
      for (let n = 4; n >= 1; n -= 1) store.nthIncrement(n).resolve(n);
      await settled();
      assert.deepEqual(sink.events, [...counts(1, 4), 'bye 4', 'close 4501']);
      assert.equal(sink.closedWith, CLOSE.tooManyInflight);
    });

    it('counts the messages waiting for a slot when a drain starts, before the bye', async () => {
      const { connection, store, sink } = await openedSession(0, { maxInflight: 2 });
      for (let i = 0; i < 4; i += 1) connection.receive(1);
      connection.close(CLOSE.shuttingDown);
      assert.equal(store.increments.length, 4, 'received before the close decision: counted');
      for (const n of [4, 1, 3, 2]) store.nthIncrement(n).resolve(n);
      await settled();
      assert.deepEqual(sink.written, [...counts(1, 4), 'bye 4']);
      assert.equal(sink.events.at(-1), 'close 1001');
    });
  });

  describe('a client that stops reading', () => {
    it('stops writing past MAX_BUFFERED_BYTES, closes it with 4503, and counts it', async () => {
      const { connection, store, sink, metrics } = await openedSession();
      for (let i = 0; i < 3; i += 1) connection.receive(1);
      for (let n = 1; n <= 3; n += 1) store.nthIncrement(n).resolve(n);
      await settled();
      assert.deepEqual(sink.written, counts(1, 3));

      sink.backlog = MAX_BUFFERED_BYTES + 1;
      connection.sendHeartbeat(new HeartbeatPacket('t'));
      connection.receive(1);
      await settled();
      assert.equal(store.increments.length, 3, 'the heartbeat found the backlog: the message after it is not counted');
      assert.equal(sink.closedWith, CLOSE.slowConsumer);
      // Nothing more was written but the bye (which the transport queues behind the backlog).
      assert.deepEqual(sink.events, [...counts(1, 3), 'bye 3', 'close 4503']);
      assert.equal(await metricValue(metrics, 'wschat_errors_total', { kind: 'slow_consumer' }), 1);
    });

    it('keeps writing while the backlog stays at or under MAX_BUFFERED_BYTES', async () => {
      const sink = new RecordingSink();
      sink.backlog = MAX_BUFFERED_BYTES;
      const { connection, store } = await openedSession(0, {}, sink);
      for (let i = 0; i < 5; i += 1) connection.receive(1);
      for (let n = 1; n <= 5; n += 1) store.nthIncrement(n).resolve(n);
      connection.sendHeartbeat(new HeartbeatPacket('t'));
      await settled();
      assert.deepEqual(sink.written, ['heartbeat t', ...counts(1, 5)]);
      assert.equal(sink.closedWith, undefined);
    });
  });

  describe('closes', () => {
    it('answers an oversized message with bye (the last count) and 1009, without counting it', async () => {
      const { connection, store, sink, metrics } = await openedSession(2);
      connection.receive(MAX_MESSAGE_BYTES);
      connection.receive(MAX_MESSAGE_BYTES + 1);
      store.nthIncrement(1).resolve(3);
      await settled();
      assert.equal(store.increments.length, 1);
      assert.deepEqual(sink.events, ['count 3', 'bye 3', 'close 1009']);
      assert.equal(await metricValue(metrics, 'wschat_errors_total', { kind: 'message_too_big' }), 1);
    });

    it('closes a flood with 4502 once the burst (twice MAX_MESSAGES_PER_SECOND) is spent', async () => {
      const { connection, store, sink } = await openedSession(0, { maxMessagesPerSecond: 2 });
      for (let i = 0; i < 5; i += 1) connection.receive(1);
      assert.equal(store.increments.length, 4, 'a burst of 4 is allowed, the 5th message is over the rate');
      for (let n = 1; n <= 4; n += 1) store.nthIncrement(n).resolve(n);
      await settled();
      assert.deepEqual(sink.events, [...counts(1, 4), 'bye 4', 'close 4502']);
      assert.equal(sink.closedWith, CLOSE.rateLimited);
    });

    it('keeps the first reason: a second close changes nothing', async () => {
      const { connection, sink, metrics } = await openedSession(5);
      connection.close(CLOSE.shuttingDown);
      connection.close(CLOSE.messageTooBig);
      await settled();
      assert.deepEqual(sink.events, ['bye 5', 'close 1001']);
      assert.equal(await metricValue(metrics, 'wschat_errors_total', { kind: 'message_too_big' }), 0);
    });

    it('sends heartbeats while open and none once it decided to close', async () => {
      const { connection, sink } = await openedSession();
      connection.sendHeartbeat(new HeartbeatPacket('a'));
      connection.close(CLOSE.shuttingDown);
      connection.sendHeartbeat(new HeartbeatPacket('b'));
      await settled();
      assert.deepEqual(sink.events, ['heartbeat a', 'bye 0', 'close 1001']);
    });

    it('never closes synchronously (callers are inside a transport event)', async () => {
      const { connection, sink } = await openedSession();
      connection.close(CLOSE.shuttingDown);
      assert.deepEqual(sink.events, []);
      await settled();
      assert.deepEqual(sink.events, ['bye 0', 'close 1001']);
    });
  });

  describe('what the store is asked and what is measured', () => {
    it('asks the store for a plain open and plain increments when the client resumes nothing (no lease)', async () => {
      const { connection, store } = sessionHarness();
      connection.open();
      connection.receive(1);
      store.opens[0]!.resolve({ count: 0, resumed: false });
      await settled();
      connection.receive(1);
      const id = connection.sessionId;
      assert.deepEqual(store.calls, [`open ${id}`, `increment ${id}`, `increment ${id}`]);
    });

    it('counts a drain close as no error, and every other server close as one error of its kind', async () => {
      const drained = await openedSession();
      drained.connection.close(CLOSE.shuttingDown);
      await settled();
      const kinds = ((await drained.metrics.registry.getSingleMetric('wschat_errors_total')?.get())?.values ?? [])
        .filter((value) => value.value > 0)
        .map((value) => value.labels.kind);
      assert.deepEqual(kinds, [], 'a drain is not an error');

      const limited = await openedSession();
      limited.connection.close(CLOSE.rateLimited);
      await settled();
      assert.equal(await metricValue(limited.metrics, 'wschat_errors_total', { kind: 'rate_limited' }), 1);
    });

    it('measures each message from its arrival to its count being written, in seconds', async () => {
      const { connection, store, metrics } = await openedSession();
      const real = performance.now.bind(performance);
      let now = 5_000;
      performance.now = () => now;
      try {
        connection.receive(1);
        now += 250;
        store.nthIncrement(1).resolve(1);
        await settled();
      } finally {
        performance.now = real;
      }
      const values = (await metrics.messageDuration.get()).values.filter((value) => value.labels.transport === 'plain');
      const of = (metricName: string, le?: number | string): number | undefined =>
        values.find((value) => value.metricName === metricName && (le === undefined || value.labels.le === le))?.value;
      assert.equal(of('wschat_message_duration_seconds_sum'), 0.25, '250 ms is 0.25 s');
      assert.equal(of('wschat_message_duration_seconds_count'), 1);
      assert.equal(of('wschat_message_duration_seconds_bucket', 0.1), 0);
      assert.equal(of('wschat_message_duration_seconds_bucket', 0.25), 1);
    });

    it('counts a session the store already knew as resumed, and a new one not', async () => {
      const resumed = await openedSession(41);
      assert.equal(await metricValue(resumed.metrics, 'wschat_sessions_resumed_total', { transport: 'plain' }), 1);
      const fresh = await openedSession(0);
      assert.equal(await metricValue(fresh.metrics, 'wschat_sessions_resumed_total', { transport: 'plain' }), 0);
    });
  });

  describe('log lines', () => {
    it('logs the open, a server close with its code, reason and ending, and the final total once the socket is gone', async () => {
      const h = logged();
      h.connection.open();
      h.store.opens[0]!.resolve({ count: 3, resumed: true });
      await settled();
      h.connection.receive(MAX_MESSAGE_BYTES + 1);
      await settled();
      h.connection.transportClosed(1009);
      await settled();
      assert.deepEqual(events(h), [
        { level: 'info', message: 'session resumed', event: 'resume', count: 3 },
        { level: 'info', message: 'closing connection', event: 'closing', code: 1009, reason: CLOSE.messageTooBig.reason, ending: 'bye' },
        { level: 'info', message: 'connection closed', event: 'close', by: 'server', code: 1009, total: 3 },
      ]);
    });

    it("logs a drain's close at debug, a parser error's code as its detail, and who ended a socket the server did not close", async () => {
      const drained = logged();
      drained.connection.open();
      drained.store.opens[0]!.resolve({ count: 0, resumed: false });
      await settled();
      drained.connection.close(CLOSE.shuttingDown);
      await settled();
      assert.deepEqual(events(drained), [
        { level: 'info', message: 'connection opened', event: 'connect', count: 0 },
        { level: 'debug', message: 'closing connection', event: 'closing', code: 1001, reason: CLOSE.shuttingDown.reason, ending: 'bye' },
      ]);

      const broken = logged();
      broken.connection.close(CLOSE.protocolError, 'WS_ERR_INVALID_OPCODE');
      await settled();
      assert.deepEqual(events(broken), [
        { level: 'info', message: 'closing connection', event: 'closing', code: 1002, reason: CLOSE.protocolError.reason, ending: 'fail', detail: 'WS_ERR_INVALID_OPCODE' },
      ]);

      for (const [code, by] of [[1000, 'client'], [ABNORMAL_CLOSURE, 'abnormal']] as const) {
        const h = logged();
        h.connection.transportClosed(code);
        await settled();
        assert.deepEqual(events(h), [{ level: 'info', message: 'connection closed', event: 'close', by, code, total: 0 }]);
      }
    });

    it('logs a store failure once, with the error and its code, however many answers fail', async () => {
      const h = logged();
      h.connection.open();
      h.store.opens[0]!.resolve({ count: 0, resumed: false });
      h.connection.receive(1);
      h.connection.receive(1);
      h.store.nthIncrement(1).reject(Object.assign(new Error('Command timed out'), { code: 'ETIMEDOUT' }));
      h.store.nthIncrement(2).reject(new Error('Command timed out'));
      await settled();
      const failures = events(h).filter((line) => line.event === 'store_error');
      assert.deepEqual(failures, [{ level: 'warn', message: 'session store failed', event: 'store_error', error: 'Command timed out', error_code: 'ETIMEDOUT' }]);
    });

    it("logs a resume with the client's last, the replays and the store's raise, then the session taken by a newer connection", async () => {
      const h = logged({ last: 5, pending: 2 });
      h.connection.open();
      h.store.leasedOpens[0]!.resolve({ count: 7, resumed: true, lease: 2, raisedBy: 1 });
      await settled();
      for (let i = 0; i < 3; i += 1) h.connection.receive(1);
      h.store.nthIncrement(1).resolve(STALE_LEASE);
      await settled();
      assert.deepEqual(events(h).slice(0, 3), [
        { level: 'info', message: 'session resumed', event: 'resume', count: 7, last: 5, replays: 2, raised: 1 },
        { level: 'info', message: 'session resumed on another connection', event: 'session_taken' },
        { level: 'info', message: 'closing connection', event: 'closing', code: 4505, reason: CLOSE.sessionTaken.reason, ending: 'bye' },
      ]);
    });

    it('logs a refused resume position with the last asked for and the count stored', async () => {
      const h = logged({ last: 60_000_000, pending: 0 });
      h.connection.open();
      h.store.leasedOpens[0]!.resolve({ refused: 'too_far_ahead', count: 3 });
      await settled();
      assert.deepEqual(events(h)[0], { level: 'info', message: 'resume position refused', event: 'refused', code: 4506, last: 60_000_000, count: 3 });
    });

    it('counts every open in connections_opened_total', async () => {
      const { metrics } = await openedSession();
      assert.equal(await metricValue(metrics, 'wschat_connections_opened_total', { transport: 'plain' }), 1);
    });
  });

  describe('the transport going away', () => {
    it('writes nothing after the socket closed, not even the answers already on their way', async () => {
      const { connection, store, sink } = await openedSession();
      connection.receive(1);
      connection.receive(1);
      connection.transportClosed(ABNORMAL_CLOSURE);
      connection.close(CLOSE.shuttingDown);
      store.nthIncrement(1).resolve(1);
      store.nthIncrement(2).resolve(2);
      await settled();
      assert.deepEqual(sink.events, []);
    });

    it('keeps connections_active and messages_total true through open, three messages and a close', async () => {
      const { connection, store, metrics } = sessionHarness();
      const plain = { transport: 'plain' };
      connection.open();
      assert.equal(await metricValue(metrics, 'wschat_connections_active', plain), 1, 'counted active from the open');
      store.opens[0]!.resolve({ count: 0, resumed: false });
      for (let i = 0; i < 3; i += 1) connection.receive(1);
      assert.equal(await metricValue(metrics, 'wschat_messages_inflight'), 3);
      for (let n = 1; n <= 3; n += 1) store.nthIncrement(n).resolve(n);
      await settled();
      assert.equal(await metricValue(metrics, 'wschat_messages_total', plain), 3);
      assert.equal(await metricValue(metrics, 'wschat_messages_inflight'), 0);
      connection.transportClosed(1000);
      connection.transportClosed(1000);
      assert.equal(await metricValue(metrics, 'wschat_connections_active', plain), 0, 'decremented once, however often the transport reports the close');
      assert.equal(await metricValue(metrics, 'wschat_connections_closed_total', { transport: 'plain', code: 'client' }), 1);
    });

    it('labels a close by who started it: the server code, or abnormal', async () => {
      const byServer = await openedSession();
      byServer.connection.close(CLOSE.shuttingDown);
      await settled();
      byServer.connection.transportClosed(1001);
      assert.equal(await metricValue(byServer.metrics, 'wschat_connections_closed_total', { code: '1001' }), 1);

      const dropped = await openedSession();
      dropped.connection.transportClosed(ABNORMAL_CLOSURE);
      assert.equal(await metricValue(dropped.metrics, 'wschat_connections_closed_total', { code: 'abnormal' }), 1);
    });
  });
});

const closed = (reason: { code: number }): string => `close ${reason.code}`;

describe('SessionConnection edges (unit)', () => {
  describe('a close decided before the open is answered', () => {
    it('waits for the open, answers what was received, then says bye with the loaded count', async () => {
      const { connection, store, sink } = sessionHarness();
      connection.open();
      connection.receive(1);
      connection.close(CLOSE.shuttingDown);
      await settled();
      assert.deepEqual(sink.events, [], 'no bye before the open is answered: there is no total yet');
      store.nthIncrement(1).resolve(6);
      store.opens[0]!.resolve({ count: 5, resumed: true });
      await settled();
      assert.deepEqual(sink.events, ['count 6', 'bye 6', closed(CLOSE.shuttingDown)]);
    });

    it('closes with its own code and no bye when the open then fails (nothing was loaded to report)', async () => {
      const { connection, store, sink } = sessionHarness();
      connection.open();
      connection.close(CLOSE.shuttingDown);
      store.opens[0]!.reject(new Error('ECONNREFUSED'));
      await settled();
      assert.deepEqual(sink.events, [closed(CLOSE.shuttingDown)], 'the first reason stands; a bye needs a loaded count');
    });
  });

  describe('a store failure during a drain', () => {
    it('writes no count after the failed one; the bye reports the last count sent and the drain keeps its code', async () => {
      const { connection, store, sink } = await openedSession(10);
      for (let i = 0; i < 3; i += 1) connection.receive(1);
      connection.close(CLOSE.shuttingDown);
      store.nthIncrement(1).resolve(11);
      store.nthIncrement(2).reject(new Error('Command timed out'));
      store.nthIncrement(3).resolve(13);
      await settled();
      assert.deepEqual(sink.events, ['count 11', 'bye 11', closed(CLOSE.shuttingDown)]);
    });

    it('calls the ack of each message answered before the failure, and no other', async () => {
      const sink = new RecordingSink('socketio');
      const { connection, store } = await openedSession(0, {}, sink);
      const acked: number[] = [];
      for (let i = 0; i < 3; i += 1) connection.receive(1, ({ count }) => acked.push(count));
      store.nthIncrement(3).resolve(3);
      store.nthIncrement(2).reject(new Error('Command timed out'));
      store.nthIncrement(1).resolve(1);
      await settled();
      assert.deepEqual(acked, [1], 'message 3 was counted in Redis, but its ack would say nothing the client can place');
      assert.deepEqual(sink.events, ['count 1', 'bye 1', closed(CLOSE.storeUnavailable)]);
    });

    it('leaves no message in flight once every answer is in, the dropped waiting ones included', async () => {
      const { connection, store, metrics } = await openedSession(0, { maxInflight: 2 });
      for (let i = 0; i < 5; i += 1) connection.receive(1);
      assert.equal(await metricValue(metrics, 'wschat_messages_inflight'), 2, 'two in flight, three waiting for a slot');
      store.nthIncrement(2).resolve(2);
      store.nthIncrement(1).reject(new Error('Command timed out'));
      await settled();
      assert.equal(store.increments.length, 2, 'the waiting messages never reach the store');
      assert.equal(await metricValue(metrics, 'wschat_messages_inflight'), 0);
    });
  });

  describe("the 'fail' ending (RFC 6455 §7.1.7)", () => {
    it('sends the close frame at once, and nothing after it, whatever the store answers later', async () => {
      const { connection, store, sink, metrics } = await openedSession(2);
      connection.receive(1);
      connection.receive(1);
      store.nthIncrement(1).resolve(3);
      await settled();
      connection.close(CLOSE.protocolError, 'WS_ERR_INVALID_OPCODE');
      assert.deepEqual(sink.events, ['count 3', closed(CLOSE.protocolError)], 'synchronously, with no bye');
      store.nthIncrement(2).resolve(4);
      connection.sendHeartbeat(new HeartbeatPacket('t'));
      await settled();
      assert.deepEqual(sink.events, ['count 3', closed(CLOSE.protocolError)]);
      assert.equal(sink.closedWith, CLOSE.protocolError);
      assert.equal(await metricValue(metrics, 'wschat_errors_total', { kind: 'protocol_error' }), 1);
    });

    it('takes over from a drain still waiting for the store: no count, no bye, its own code', async () => {
      const { connection, store, sink } = await openedSession(7);
      connection.receive(1);
      connection.close(CLOSE.shuttingDown);
      connection.close(CLOSE.invalidUtf8);
      assert.deepEqual(sink.events, [closed(CLOSE.invalidUtf8)]);
      store.nthIncrement(1).resolve(8);
      await settled();
      assert.deepEqual(sink.events, [closed(CLOSE.invalidUtf8)], 'the drain waiting for message 1 sends nothing once it is answered');
    });

    it('drops the messages waiting for a slot: they never reach the store', async () => {
      const { connection, store, sink } = await openedSession(0, { maxInflight: 2 });
      for (let i = 0; i < 4; i += 1) connection.receive(1);
      connection.close(CLOSE.protocolError);
      store.nthIncrement(1).resolve(1);
      store.nthIncrement(2).resolve(2);
      await settled();
      assert.equal(store.increments.length, 2);
      assert.deepEqual(sink.written, []);
      assert.equal(sink.closedWith, CLOSE.protocolError);
    });

    it('is the last word: a second failure or a drain after it changes nothing', async () => {
      const { connection, sink, metrics } = await openedSession();
      connection.close(CLOSE.protocolError);
      connection.close(CLOSE.invalidUtf8);
      connection.close(CLOSE.shuttingDown);
      connection.receive(1);
      await settled();
      assert.deepEqual(sink.events, [closed(CLOSE.protocolError)]);
      assert.equal(await metricValue(metrics, 'wschat_errors_total', { kind: 'invalid_utf8' }), 0);
    });

    it('labels the close with its code once the transport reports it', async () => {
      const { connection, metrics } = await openedSession();
      connection.close(CLOSE.protocolError);
      connection.transportClosed(CLOSE.protocolError.code);
      const code = String(CLOSE.protocolError.code);
      assert.equal(await metricValue(metrics, 'wschat_connections_closed_total', { transport: 'plain', code }), 1);
    });
  });

  describe('the socket going away while a close waits for the store', () => {
    it('sends neither the counts nor the bye nor the close frame once the answers come', async () => {
      const { connection, store, sink, metrics } = await openedSession(3);
      connection.receive(1);
      connection.close(CLOSE.shuttingDown);
      connection.transportClosed(ABNORMAL_CLOSURE);
      store.nthIncrement(1).resolve(4);
      await settled();
      assert.deepEqual(sink.events, []);
      // The server had decided to close: the close is labelled with its code, not as abnormal.
      const code = String(CLOSE.shuttingDown.code);
      assert.equal(await metricValue(metrics, 'wschat_connections_closed_total', { transport: 'plain', code }), 1);
      assert.equal(await metricValue(metrics, 'wschat_connections_active', { transport: 'plain' }), 0);
    });
  });

  describe('the socket going away with messages waiting for a slot', () => {
    it('counts none of them: the client gets no reply and re-sends them elsewhere, so counting them would skip', async () => {
      const { connection, store, sink } = await openedSession(0, { maxInflight: 2 });
      for (let i = 0; i < 4; i += 1) connection.receive(1);
      assert.equal(store.increments.length, 2, 'two in flight, two waiting');
      connection.transportClosed(ABNORMAL_CLOSURE);
      store.nthIncrement(1).resolve(1);
      store.nthIncrement(2).resolve(2);
      await settled();
      assert.equal(store.increments.length, 2, 'the waiting ones never reach the store');
      assert.deepEqual(sink.events.filter((event) => !['pause', 'resume'].includes(event)), [], 'no count, bye or close frame');
    });
  });

  describe('a backlog that grows between two replies', () => {
    it('writes the first count, not the second; the bye reports the first and the close is slow consumer', async () => {
      const { connection, store, sink, metrics } = await openedSession();
      connection.receive(1);
      connection.receive(1);
      store.nthIncrement(1).resolve(1);
      await settled();
      sink.backlog = MAX_BUFFERED_BYTES + 1;
      store.nthIncrement(2).resolve(2);
      await settled();
      assert.deepEqual(sink.events, ['count 1', 'bye 1', closed(CLOSE.slowConsumer)], 'the bye never reports a count the client was not sent');
      assert.equal(sink.closedWith, CLOSE.slowConsumer);
      assert.equal(await metricValue(metrics, 'wschat_messages_total', { transport: 'plain' }), 1, 'only the count written is counted');
    });
  });

  describe('backpressure over time', () => {
    it('pauses again when a later burst fills the slots, and resumes again', async () => {
      const { connection, store, sink } = await openedSession(0, { maxInflight: 2 });
      // Each answer in turn: a freed slot starts the waiting message's increment.
      const answerInTurn = async (from: number, to: number): Promise<void> => {
        for (let n = from; n <= to; n += 1) {
          store.nthIncrement(n).resolve(n);
          await settled();
        }
      };
      for (let i = 0; i < 3; i += 1) connection.receive(1);
      await answerInTurn(1, 3);
      assert.deepEqual(sink.events, ['pause', ...counts(1, 2), 'resume', 'count 3'], 'the first burst');
      for (let i = 0; i < 3; i += 1) connection.receive(1);
      await answerInTurn(4, 6);
      assert.deepEqual(sink.events.slice(5), ['pause', ...counts(4, 5), 'resume', 'count 6'], 'the second burst pauses and resumes the same way');
    });

    it('with an odd MAX_INFLIGHT, resumes only once in flight is at or under half', async () => {
      const { connection, store, sink } = await openedSession(0, { maxInflight: 5 });
      for (let i = 0; i < 6; i += 1) connection.receive(1);
      const resumedAfter: number[] = [];
      for (let n = 1; n <= 6; n += 1) {
        store.nthIncrement(n).resolve(n);
        await settled();
        if (sink.events.includes('resume') && resumedAfter.length === 0) resumedAfter.push(n);
      }
      // After answer 1 the waiting message takes the slot (5 in flight); answers 2..4 leave 4, 3, 2.
      assert.deepEqual(resumedAfter, [4], 'resumed at 2 in flight (≤ 2.5), not at 3');
      assert.deepEqual(sink.written, counts(1, 6));
    });
  });
});

const SESSION = randomSessionId();

function resumed(resume: Resume): SessionHarness {
  const harness = sessionHarness({}, new RecordingSink(), SESSION, resume);
  harness.connection.open();
  return harness;
}

/** The store's calls after the open, without the session id. */
const incrementsOf = (store: ManualStore): string[] =>
  store.calls.filter((call) => call.startsWith('increment')).map((call) => call.replace(` ${SESSION}`, ''));

describe('SessionConnection resumed with last (unit)', () => {
  it('takes the lease before any increment, then counts what arrived meanwhile with its expected counts, in order', async () => {
    const { connection, store, sink } = resumed({ last: 5, pending: 0 });
    assert.deepEqual(store.calls, [`open-leased ${SESSION} last=5`]);
    connection.receive(1);
    connection.receive(1);
    await settled();
    assert.deepEqual(incrementsOf(store), [], 'no increment before the lease is known');
    store.leasedOpens[0]!.resolve({ count: 5, resumed: true, lease: 3, raisedBy: 0 });
    await settled();
    connection.receive(1);
    assert.deepEqual(incrementsOf(store), ['increment-leased lease=3 expected=5', 'increment-leased lease=3 expected=6', 'increment-leased lease=3 expected=7']);
    for (const [index, count] of [6, 7, 8].entries()) store.nthIncrement(index + 1).resolve(count);
    await settled();
    assert.deepEqual(sink.events, ['count 6', 'count 7', 'count 8']);
  });

  it('answers the first re-sends with the counts the store gave them, counting only the rest', async () => {
    const { connection, store, sink } = resumed({ last: 5, pending: 3 });
    store.leasedOpens[0]!.resolve({ count: 7, resumed: true, lease: 2, raisedBy: 0 });
    await settled();
    for (let i = 0; i < 3; i += 1) connection.receive(1);
    assert.deepEqual(incrementsOf(store), ['increment-leased lease=2 expected=7'], 'two re-sends were counted already');
    store.nthIncrement(1).resolve(8);
    await settled();
    // The answered re-sends are marked (socket.io carries replay: true); the new count is not.
    assert.deepEqual(sink.events, ['count 6 replay', 'count 7 replay', 'count 8']);
  });

  it('answers re-sends that arrived before the open in the same way, and acks them on socket.io', async () => {
    const { connection, store, sink } = resumed({ last: 5, pending: 2 });
    const acked: number[] = [];
    connection.receive(1, ({ count }) => acked.push(count));
    connection.receive(1, ({ count }) => acked.push(count));
    store.leasedOpens[0]!.resolve({ count: 6, resumed: true, lease: 2, raisedBy: 0 });
    await settled();
    assert.deepEqual(incrementsOf(store), ['increment-leased lease=2 expected=6']);
    store.nthIncrement(1).resolve(7);
    await settled();
    assert.deepEqual(sink.events, ['count 6 replay', 'count 7']);
    assert.deepEqual(acked, [6, 7]);
  });

  it("says bye with the client's last until the replayed counts went out", async () => {
    const { connection, store, sink } = resumed({ last: 5, pending: 2 });
    store.leasedOpens[0]!.resolve({ count: 7, resumed: true, lease: 2, raisedBy: 0 });
    await settled();
    connection.close(CLOSE.shuttingDown);
    await settled();
    assert.deepEqual(sink.events, ['bye 5', 'close 1001']);
  });

  it('says bye with the stored count, not last, when nothing is replayed', async () => {
    const { connection, store, sink } = resumed({ last: 5, pending: 0 });
    store.leasedOpens[0]!.resolve({ count: 7, resumed: true, lease: 2, raisedBy: 0 });
    await settled();
    connection.close(CLOSE.shuttingDown);
    await settled();
    assert.deepEqual(sink.events, ['bye 7', 'close 1001']);
  });

  it('counts the messages that waited for the lease when a drain starts before it, with their expected counts, then says bye', async () => {
    const { connection, store, sink } = resumed({ last: 5, pending: 0 });
    connection.receive(1);
    connection.receive(1);
    connection.close(CLOSE.shuttingDown);
    await settled();
    assert.deepEqual(incrementsOf(store), [], 'still no increment: the lease is not known');
    store.leasedOpens[0]!.resolve({ count: 5, resumed: true, lease: 3, raisedBy: 0 });
    await settled();
    assert.deepEqual(incrementsOf(store), ['increment-leased lease=3 expected=5', 'increment-leased lease=3 expected=6']);
    store.nthIncrement(1).resolve(6);
    store.nthIncrement(2).resolve(7);
    await settled();
    assert.deepEqual(sink.events, ['count 6', 'count 7', 'bye 7', 'close 1001']);
  });

  it('lets MAX_INFLIGHT messages wait for the lease, and pauses the reader at the next one', async () => {
    const { connection, store, sink } = sessionHarness({ maxInflight: 3 }, new RecordingSink(), SESSION, { last: 0, pending: 0 });
    connection.open();
    for (let i = 0; i < 3; i += 1) connection.receive(1);
    assert.deepEqual(sink.events, [], 'three wait without a pause');
    connection.receive(1);
    assert.deepEqual(sink.events, ['pause']);
    store.leasedOpens[0]!.resolve({ count: 0, resumed: false, lease: 1, raisedBy: 0 });
    await settled();
    assert.equal(incrementsOf(store).length, 3, 'the bound holds once the lease is known');
  });

  it('closes a transport that cannot pause with 4501 at the message after MAX_INFLIGHT waiting for the lease', () => {
    const sink = new RecordingSink('socketio');
    sink.canPause = false;
    const { connection } = sessionHarness({ maxInflight: 3 }, sink, SESSION, { last: 0, pending: 0 });
    connection.open();
    for (let i = 0; i < 3; i += 1) connection.receive(1);
    assert.equal(connection.status.state, 'open');
    connection.receive(1);
    assert.deepEqual(connection.status, { state: 'closing', reason: CLOSE.tooManyInflight });
  });

  it('replays nothing when the gap is larger than what the client has unanswered (another connection counted)', async () => {
    const { connection, store, sink } = resumed({ last: 5, pending: 1 });
    store.leasedOpens[0]!.resolve({ count: 9, resumed: true, lease: 4, raisedBy: 0 });
    await settled();
    connection.receive(1);
    assert.deepEqual(incrementsOf(store), ['increment-leased lease=4 expected=9']);
    store.nthIncrement(1).resolve(10);
    connection.close(CLOSE.shuttingDown);
    await settled();
    assert.deepEqual(sink.events, ['count 10', 'bye 10', 'close 1001']);
  });

  it('ends with bye + 4505 when the store says a newer connection holds the lease, and sends no count after it', async () => {
    const { connection, store, sink } = resumed({ last: 0, pending: 0 });
    store.leasedOpens[0]!.resolve({ count: 0, resumed: false, lease: 1, raisedBy: 0 });
    await settled();
    connection.receive(1);
    connection.receive(1);
    connection.receive(1);
    store.nthIncrement(1).resolve(1);
    store.nthIncrement(2).resolve(STALE_LEASE);
    store.nthIncrement(3).resolve(STALE_LEASE);
    await settled();
    assert.deepEqual(sink.events, ['count 1', 'bye 1', 'close 4505']);
    assert.equal(sink.closedWith, CLOSE.sessionTaken);
    connection.receive(1);
    assert.equal(incrementsOf(store).length, 3, 'nothing more is counted');
  });

  it('fails messages waiting for the lease when the open fails: bye-less 1013, nothing counted', async () => {
    const { connection, store, sink } = resumed({ last: 3, pending: 0 });
    connection.receive(1);
    store.leasedOpens[0]!.reject(new Error('Command timed out'));
    await settled();
    assert.deepEqual(incrementsOf(store), []);
    assert.deepEqual(sink.events, ['close 1013']);
  });

  it('ends with 4506, no bye and nothing counted when the store refuses a last too far ahead of its count', async () => {
    const { connection, store, sink } = resumed({ last: 60_000_000, pending: 0 });
    connection.receive(1);
    store.leasedOpens[0]!.resolve({ refused: 'too_far_ahead', count: 3 });
    await settled();
    connection.receive(1);
    await settled();
    assert.deepEqual(incrementsOf(store), []);
    assert.deepEqual(sink.events, ['close 4506']);
    assert.equal(sink.closedWith, CLOSE.invalidResume);
  });

  it('costs what its limits allow, whatever last, pending and re-sends the client chose', async () => {
    const MAX_INFLIGHT = 8;
    await fc.assert(
      fc.asyncProperty(
        fc.nat({ max: Number.MAX_SAFE_INTEGER }),
        fc.nat({ max: Number.MAX_SAFE_INTEGER }),
        fc.nat({ max: MAX_INFLIGHT }),
        fc.nat({ max: 4 * MAX_INFLIGHT }),
        async (stored, last, pending, sent) => {
          const sink = new RecordingSink();
          const { connection, store } = sessionHarness({ maxInflight: MAX_INFLIGHT }, sink, SESSION, { last, pending });
          connection.open();
          for (let i = 0; i < sent; i += 1) connection.receive(1);
          store.leasedOpens[0]!.resolve({ count: stored, resumed: true, lease: 1, raisedBy: 0 });
          await settled();
          const gap = stored - last;
          const replayed = gap > 0 && gap <= pending ? Math.min(gap, sent) : 0;
          const counted = incrementsOf(store).length;
          // What waits is bounded by the limit: the rest of the re-sends paused the reader.
          assert.ok(counted <= MAX_INFLIGHT, `${counted} increments in flight`);
          assert.equal(counted, Math.min(sent - replayed, MAX_INFLIGHT));
          const replies = sink.written.filter((event) => event.endsWith('replay'));
          assert.deepEqual(replies, Array.from({ length: replayed }, (_, i) => `count ${last + 1 + i} replay`));
        },
      ),
      { numRuns: 300 },
    );
  });
});

function harness(): { connection: SessionConnection; store: ManualStore; sink: RecordingSink } {
  const store = new ManualStore();
  const sink = new RecordingSink();
  const connection = new SessionConnection(randomSessionId(), sink, 'unit', {
    store,
    metrics: new Metrics(),
    logger: createLogger({ level: 'error', replica: 'unit', version: 'blue' }),
    maxMessageBytes: 1024,
    maxInflight: 64,
    maxMessagesPerSecond: 0,
    maxBufferedBytes: 1000,
  });
  return { connection, store, sink };
}

/** The status as `state` or `state code` (the reason's close code). */
function described(status: ConnectionStatus): string {
  if (status.state === 'open') return 'open';
  return status.reason === undefined ? status.state : `${status.state} ${status.reason.code}`;
}

describe('SessionConnection status (unit)', () => {
  it('a bye close: open, closing while a count awaits Redis, closed once the bye went, gone when the transport reports it', async () => {
    const { connection, store, sink } = harness();
    connection.open();
    store.opens[0]!.resolve({ count: 0, resumed: false });
    connection.receive(1);
    await settled();
    assert.equal(described(connection.status), 'open');

    connection.close(CLOSE.shuttingDown);
    assert.equal(described(connection.status), 'closing 1001');
    connection.receive(1);
    assert.equal(store.increments.length, 1, 'closing: a new message starts no increment');
    connection.sendHeartbeat(new HeartbeatPacket('ts'));
    assert.deepEqual(sink.events, [], 'closing: no heartbeat');

    store.nthIncrement(1).resolve(1);
    await settled();
    assert.equal(described(connection.status), 'closed 1001');
    assert.deepEqual(sink.events, ['count 1', 'bye 1', 'close 1001']);

    connection.transportClosed(1001);
    assert.equal(described(connection.status), 'gone 1001', 'gone keeps the server close');
  });

  it('a fail close takes over from a waiting bye close: closed at once with its own reason, nothing after it', async () => {
    const { connection, store, sink } = harness();
    connection.open();
    store.opens[0]!.resolve({ count: 0, resumed: false });
    connection.receive(1);
    connection.close(CLOSE.messageTooBig);
    connection.close(CLOSE.protocolError);
    assert.equal(described(connection.status), 'closed 1002');
    store.nthIncrement(1).resolve(1);
    await settled();
    assert.deepEqual(sink.events, ['close 1002'], 'no count and no bye after the close frame');
    connection.close(CLOSE.shuttingDown);
    assert.equal(described(connection.status), 'closed 1002', 'a later close changes nothing');
  });

  it('a client that closes first: straight from open to gone, with no server close', async () => {
    const { connection, store, sink } = harness();
    connection.open();
    connection.transportClosed(1000);
    assert.equal(described(connection.status), 'gone');
    connection.close(CLOSE.shuttingDown);
    assert.equal(described(connection.status), 'gone', 'no close once the transport is gone');
    store.opens[0]!.resolve({ count: 4, resumed: true });
    await settled();
    assert.deepEqual(sink.events, [], 'nothing is written to a gone transport');
  });

  it('no bye before the session is known: a close decided while the open fails sends only the close frame', async () => {
    const { connection, store, sink } = harness();
    connection.open();
    connection.close(CLOSE.shuttingDown);
    store.opens[0]!.reject(new Error('redis down'));
    await settled();
    assert.deepEqual(sink.events, ['close 1001']);
    connection.transportClosed(ABNORMAL_CLOSURE);
    assert.equal(described(connection.status), 'gone 1001');
  });
});
