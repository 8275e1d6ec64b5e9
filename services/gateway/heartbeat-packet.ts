/**
 * One tick's heartbeat, serialised once for the whole fan-out, and encoded once per
 * transport: each transport's encoding (a WebSocket frame, a socket.io packet with its
 * frame) is made by the first of its sockets that sends it and shared by all the others.
 */
import type { HeartbeatMessage } from '../../shared/protocol/messages.js';

export class HeartbeatPacket {
  /** {"ts": "..."}: what a plain socket gets. */
  readonly json: string;
  private readonly encodings = new Map<(packet: HeartbeatPacket) => unknown, unknown>();

  constructor(readonly ts: string) {
    this.json = JSON.stringify({ ts } satisfies HeartbeatMessage);
  }

  /** What `encode` makes of this heartbeat: computed on the first call, the same value on every later one. */
  encoded<T>(encode: (packet: HeartbeatPacket) => T): T {
    if (!this.encodings.has(encode)) this.encodings.set(encode, encode(this));
    return this.encodings.get(encode) as T;
  }
}
