/**
 * SessionConnection's FIFO, backpressure and close paths at their edges, beyond
 * tests/unit/session-connection.test.ts: closes decided before the open is answered,
 * a store failure during a drain, the 'fail' ending (a close frame at once, nothing
 * after it, even over a drain still waiting), the socket going away mid-close, a
 * backlog that grows between two replies, pausing more than once, and what a failure
 * leaves in the acks and the in-flight gauge. Through the public API only.
 */
import assert from 'node:assert/strict';
import { CLOSE } from '../../shared/protocol/closes.js';
import { ABNORMAL_CLOSURE } from '../../services/gateway/session-connection.js';
import { range } from '../../tools/harness/clients.js';
import { settled } from '../support/manual-store.js';
import { RecordingSink } from '../support/recording-sink.js';
import { metricValue } from '../support/in-process.js';
import { MAX_BUFFERED_BYTES, openedSession, sessionHarness } from '../support/session-harness.js';
import { HeartbeatPacket } from '../../services/gateway/heartbeat-packet.js';

const counts = (from: number, to: number): string[] => range(from, to).map((n) => `count ${n}`);
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
