/**
 * A TransportSink that records, in one ordered list, everything SessionConnection
 * asked it to write or do, so a test asserts whole sequences (counts, bye, close)
 * including their order. Its unread backlog and whether it can pause are set by the test.
 */
import type { Ack, TransportSink } from '../../services/gateway/session-connection.js';
import type { Transport } from '../../services/gateway/metrics.js';
import type { ServerClose } from '../../shared/protocol/closes.js';
import type { HeartbeatPacket } from '../../services/gateway/heartbeat-packet.js';

export class RecordingSink implements TransportSink {
  /** `count n`, `heartbeat ts`, `bye n`, `close code`, `pause`, `resume`, in the order asked. */
  readonly events: string[] = [];
  closedWith: ServerClose | undefined;
  /** What bufferedBytes() answers: the bytes a client has not read yet. */
  backlog = 0;
  /** What pauseReading() answers: false for a transport that cannot stop reading. */
  canPause = true;

  constructor(readonly transport: Transport = 'plain') {}

  /** Only what a client would receive: counts, heartbeats and the bye. */
  get written(): string[] {
    return this.events.filter((event) => /^(count|heartbeat|bye) /.test(event));
  }

  sendCount(count: number, ack: Ack | undefined, replayed: boolean): void {
    this.events.push(replayed ? `count ${count} replay` : `count ${count}`);
    // As socket.io's sink does: the ack carries the same reply.
    ack?.(replayed ? { count, replay: true } : { count });
  }
  sendHeartbeat(packet: HeartbeatPacket): void {
    this.events.push(`heartbeat ${packet.ts}`);
  }
  sendBye(total: number): void {
    this.events.push(`bye ${total}`);
  }
  closeTransport(reason: ServerClose): void {
    this.closedWith = reason;
    this.events.push(`close ${reason.code}`);
  }
  bufferedBytes(): number {
    return this.backlog;
  }
  pauseReading(): boolean {
    if (this.canPause) this.events.push('pause');
    return this.canPause;
  }
  resumeReading(): void {
    this.events.push('resume');
  }
}
