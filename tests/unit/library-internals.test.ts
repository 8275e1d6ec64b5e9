/**
 * The contract with ws and engine.io that services/gateway/library-internals.ts relies
 * on, checked against the installed versions: a dependency update that changes one of
 * these shapes fails here. ws runs on a loopback socket pair in this process; engine.io's
 * Socket on a stand-in transport that never writes.
 */
import assert from 'node:assert/strict';
import { EventEmitter, once } from 'node:events';
import type { IncomingMessage } from 'node:http';
import net, { type AddressInfo } from 'node:net';
import { Socket as EngineSocket } from 'engine.io';
import { WebSocket, WebSocketServer } from 'ws';
import { engineQueuedBytes, isReceiverClose, preEncodedFrame } from '../../services/gateway/library-internals.js';

/** A server WebSocket that records the arguments of every close() call. */
class RecordingWebSocket extends WebSocket {
  readonly closeCalls: Array<[code?: number, data?: string | Buffer]> = [];

  override close(...args: [code?: number, data?: string | Buffer]): void {
    this.closeCalls.push(args);
    super.close(...args);
  }
}

/** Both ends of a loopback TCP connection: [the server's, the client's]. */
async function socketPair(): Promise<[net.Socket, net.Socket]> {
  const server = net.createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const accepted = once(server, 'connection') as Promise<[net.Socket]>;
  const client = net.connect((server.address() as AddressInfo).port, '127.0.0.1');
  const [serverSide] = await accepted;
  server.close();
  return [serverSide, client];
}

/** A server WebSocket upgraded on a fresh socket pair (the handshake's 101 is left unread), with the client's raw socket. */
async function upgraded(): Promise<{ ws: RecordingWebSocket; serverSide: net.Socket; client: net.Socket }> {
  const [serverSide, client] = await socketPair();
  const wss = new WebSocketServer({ noServer: true, WebSocket: RecordingWebSocket, perMessageDeflate: false, clientTracking: false });
  const request = {
    method: 'GET',
    url: '/ws/chat/',
    headers: { host: '127.0.0.1', upgrade: 'websocket', connection: 'Upgrade', 'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==', 'sec-websocket-version': '13' },
  } as unknown as IncomingMessage;
  const ws = await new Promise<RecordingWebSocket>((resolve) => {
    wss.handleUpgrade(request, serverSide, Buffer.alloc(0), (socket) => resolve(socket));
  });
  return { ws, serverSide, client };
}

/** Resolves once `done()` holds, checked every few milliseconds. */
async function until(done: () => boolean): Promise<void> {
  while (!done()) await new Promise((resolve) => setTimeout(resolve, 5));
}

/** A client frame: final, masked with a zero key, `payload` at most 125 bytes. */
function clientFrame(opcode: number, payload: Buffer = Buffer.alloc(0)): Buffer {
  return Buffer.concat([Buffer.from([0x80 | opcode, 0x80 | payload.length, 0, 0, 0, 0]), payload]);
}

describe('library internals: ws', () => {
  let pair: Awaited<ReturnType<typeof upgraded>> | undefined;

  afterEach(() => {
    pair?.client.destroy();
    pair?.serverSide.destroy();
    pair = undefined;
  });

  it('runs a WebSocket on the very socket handleUpgrade was given (_socket)', async () => {
    pair = await upgraded();
    assert.equal((pair.ws as unknown as { _socket?: unknown })._socket, pair.serverSide);
  });

  it("closes on a parser error with close(code), one argument, then emits 'error' with ws's code", async () => {
    pair = await upgraded();
    const { ws, client } = pair;
    const failed = once(ws, 'error') as Promise<[Error & { code?: string }]>;
    client.write(clientFrame(0x3));
    const [error] = await failed;
    assert.equal(error.code, 'WS_ERR_INVALID_OPCODE');
    assert.deepEqual(ws.closeCalls, [[1002]]);
    const [code, data] = ws.closeCalls[0]!;
    assert.equal(isReceiverClose(code, data), true);
  });

  it("echoes a client's close with a code and a reason, which is no receiver close", async () => {
    pair = await upgraded();
    const { ws, client } = pair;
    client.write(clientFrame(0x8, Buffer.from([0x03, 0xe8, 0x62, 0x79, 0x65])));
    await until(() => ws.closeCalls.length > 0);
    assert.equal(ws.closeCalls.length, 1);
    assert.equal(ws.closeCalls[0]!.length, 2);
    const [code, data] = ws.closeCalls[0]!;
    assert.equal(isReceiverClose(code, data), false);
  });

  it('writes a frame to the socket within send(), queueing none, with permessage-deflate off', async () => {
    pair = await upgraded();
    const { ws, serverSide } = pair;
    let writes = 0;
    const write = serverSide.write.bind(serverSide) as (...args: unknown[]) => boolean;
    serverSide.write = ((...args: unknown[]): boolean => {
      writes += 1;
      return write(...args);
    });
    ws.send('one');
    ws.send('two');
    assert.ok(writes >= 2, `ws wrote ${writes} times for two sends`);
    assert.equal(ws.bufferedAmount, serverSide.writableLength);
  });
});

/** The least an engine.io Socket needs of its transport: one that is never writable, so packets stay queued. */
class HeldTransport extends EventEmitter {
  readonly name = 'websocket';
  readonly protocol = 4;
  writable = false;
  sid = '';
  send(): void {}
  discard(): void {}
  close(done?: () => void): void {
    done?.();
  }
}

describe('library internals: engine.io', () => {
  function engineSocket(): EngineSocket {
    const server = { opts: { pingInterval: 60_000, pingTimeout: 60_000, maxHttpBufferSize: 1_000_000 }, upgrades: () => [] };
    return new EngineSocket('contract', server as never, new HeldTransport() as never, null as never, 4);
  }

  it('queues unwritten packets in the writeBuffer array, each with its data', () => {
    const conn = engineSocket();
    try {
      const queue = (conn as unknown as { writeBuffer?: unknown }).writeBuffer;
      assert.ok(Array.isArray(queue), 'writeBuffer is an array');
      const before = engineQueuedBytes(conn);
      conn.write('x'.repeat(100));
      assert.equal(engineQueuedBytes(conn), before + 100);
      assert.equal((queue as Array<{ data?: unknown }>).at(-1)?.data, 'x'.repeat(100));
    } finally {
      conn.close(true);
    }
  });

  it('keeps the wsPreEncodedFrame option on the queued packet, for its WebSocket transport', () => {
    const conn = engineSocket();
    try {
      const frame = Buffer.from([0x81, 0x01, 0x34]);
      conn.write('4', preEncodedFrame(frame));
      const queue = (conn as unknown as { writeBuffer: Array<{ options?: { wsPreEncodedFrame?: unknown } }> }).writeBuffer;
      assert.deepEqual(queue.at(-1)?.options?.wsPreEncodedFrame, [frame]);
    } finally {
      conn.close(true);
    }
  });
});
