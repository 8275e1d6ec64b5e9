/**
 * Every reliance on what ws and engine.io do but do not document, in one place, each
 * with the shape it assumes. tests/unit/library-internals.test.ts checks those shapes
 * against the installed versions, so a dependency update that changes one fails
 * there rather than in production.
 */
import type { Server as HttpServer } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Socket } from 'socket.io';

// ws

/**
 * Whether a call to a ws WebSocket's close(code, data) is ws closing the socket itself
 * after its frame parser rejected input: its receiver's error handler calls
 * `close(code)`, a code and no reason, then emits 'error' in the same tick
 * (lib/websocket.js, receiverOnError). Every other caller of close() passes a reason,
 * ws's echo of a client's close included.
 */
export function isReceiverClose(code: number | undefined, data: string | Buffer | undefined): boolean {
  return code !== undefined && data === undefined;
}

/**
 * Writes a whole frame to the TCP socket a ws WebSocket runs on, past ws's Sender.
 * Safe between ws's own frames: with permessage-deflate off, the Sender writes each
 * frame to the socket within the call that sends it and never queues one
 * (lib/sender.js), so a frame written here never lands inside one of ws's.
 */
export function writeBesideSender(socket: Duplex | undefined, frame: Buffer): void {
  socket?.write(frame);
}

// engine.io

/** An engine.io connection (socket.io's `socket.conn`). */
type EngineSocket = Socket['conn'];

/** engine.io's write() options, as typed (engine.io is socket.io's dependency, not this project's). */
export type EngineSendOptions = NonNullable<Parameters<EngineSocket['write']>[1]>;

/**
 * write() options that hand engine.io's WebSocket transport a frame built already:
 * `wsPreEncodedFrame`, which its transport passes to ws's sender as it is. socket.io's
 * own broadcasts use it (socket.io-adapter's _encode); engine.io's typings omit it.
 */
export function preEncodedFrame(frame: Buffer): EngineSendOptions {
  return { wsPreEncodedFrame: [frame] } as EngineSendOptions;
}

/** An approximate size of a queued packet whose data is not a string. */
const NON_STRING_PACKET_BYTES = 64;

/**
 * What engine.io holds for one connection, unwritten: it writes one packet at a time
 * over WebSocket and queues the rest in the socket's `writeBuffer` (typed private)
 * until the previous write has drained. If the field ever goes, this reads 0 and the
 * MAX_BUFFERED_BYTES bound stops applying to socket.io.
 */
export function engineQueuedBytes(conn: EngineSocket): number {
  const queue = (conn as unknown as { writeBuffer?: unknown }).writeBuffer;
  if (!Array.isArray(queue)) return 0;
  let bytes = 0;
  for (const packet of queue as Array<{ data?: unknown }>) {
    bytes += typeof packet.data === 'string' ? packet.data.length : NON_STRING_PACKET_BYTES;
  }
  return bytes;
}

/**
 * Removes the 'upgrade' listener engine.io adds to the HTTP server when socket.io
 * attaches to it, so that one router owns every upgrade; the router hands engine.io
 * its own through engine.handleUpgrade().
 */
export function detachEngineUpgrades(httpServer: HttpServer): void {
  httpServer.removeAllListeners('upgrade');
}
