/**
 * RFC 6455 conformance of /ws/chat/, spoken in raw frames over TCP (no WebSocket
 * library on the client side): what the Autobahn|Testsuite fuzzing client checks
 * for a text-only server, with this service's reply to message k being
 * {"count": k}. Each case cites the section it checks and asserts the exact frames
 * the server sent, in order, and how the connection ended.
 *
 * Two endings recur. A connection the server must *fail* (§7.1.7) gets exactly one
 * frame, the close with its code, and TCP ends: no bye, no count. A connection the
 * server closes healthy gets its counts, the bye, then the close (docs/protocol.md,
 * "Close codes"). A close the client starts is echoed and nothing follows (§5.5.1).
 */
import assert from 'node:assert/strict';
import type { Redis } from 'ioredis';
import {
  closePayload as closeBody,
  describeFrame,
  encodeFrame as frameBytes,
  exchange,
  OPCODE,
  RawWebSocket,
  upgradeRequest,
  type FrameSpec,
  type RawFrame,
} from '../support/raw-websocket.js';
import { eventually, RedisServer, ReplicaProcess } from '../../tools/harness/processes.js';
import { metricSum } from '../../tools/harness/prometheus-text.js';
import { sessionKey } from '../../tools/harness/session-keys.js';

/** Large enough for 64-bit lengths (over 65,535 bytes), small enough to test the limit cheaply. */
const MAX_MESSAGE_BYTES = 70_000;
/** The default MAX_MESSAGE_FRAGMENTS. */
const MAX_MESSAGE_FRAGMENTS = 16_384;

const count = (n: number): string => `text {"count":${n}}`;
const counts = (n: number): string[] => Array.from({ length: n }, (_, index) => count(index + 1));
const PROTOCOL_ERROR = 'close 1002 protocol error';
const INVALID_UTF8 = 'close 1007 invalid utf-8';

describe('RFC 6455 conformance of /ws/chat/ (raw frames)', function () {
  this.timeout(20_000);
  let redis: RedisServer;
  let inspect: Redis;
  let replica: ReplicaProcess;
  const sockets: RawWebSocket[] = [];

  before(async () => {
    redis = await RedisServer.start();
    inspect = redis.client();
    replica = await ReplicaProcess.start(redis, { MAX_MESSAGE_BYTES: String(MAX_MESSAGE_BYTES) });
  });

  afterEach(async () => {
    for (const ws of sockets.splice(0)) ws.destroy();
    // A test that paused Redis and failed before unpausing must not stall the next.
    await inspect.call('CLIENT', 'UNPAUSE');
  });

  after(async () => {
    await replica?.stop();
    inspect?.disconnect();
    await redis?.destroy();
  });

  async function open(): Promise<RawWebSocket> {
    const ws = await RawWebSocket.open(replica.port);
    sockets.push(ws);
    return ws;
  }

  /** Opens a connection, gets one message counted (so the session is loaded), and returns it. */
  async function openCounted(): Promise<RawWebSocket> {
    const ws = await open();
    ws.sendText('first');
    await ws.waitFrames(1);
    assert.deepEqual(ws.frames.map(describeFrame), [count(1)]);
    return ws;
  }

  /** Every frame the server sent until it ended TCP, described. */
  async function framesUntilEnd(ws: RawWebSocket): Promise<string[]> {
    return (await ws.waitEnd()).map(describeFrame);
  }

  /** §7.1.7: the frames sent make the server fail the connection: only the close frame, then TCP ends. */
  async function expectFailed(specs: FrameSpec[], close: string, before: string[] = []): Promise<void> {
    const ws = before.length === 0 ? await open() : await openCounted();
    for (const spec of specs) ws.send(spec);
    assert.deepEqual(await framesUntilEnd(ws), [...before, close]);
  }

  function assertServerFrame(frame: RawFrame): void {
    // §5.1: a server MUST NOT mask; §5.2: no extension was negotiated, so every RSV bit is 0.
    assert.equal(frame.masked, false, 'a server frame is never masked');
    assert.equal(frame.rsv, 0, 'no RSV bit without an extension');
  }

  describe('framing and payload lengths (§5.2)', () => {
    for (const [name, length, form] of [
      ['empty, 7-bit length', 0, 7],
      ['7-bit length, 125 bytes (the largest)', 125, 7],
      ['16-bit length, 126 bytes (the smallest)', 126, 16],
      ['16-bit length, 65,535 bytes (the largest)', 65_535, 16],
      ['64-bit length, 65,536 bytes (the smallest)', 65_536, 64],
    ] as const) {
      it(`counts a text message with a ${name}`, async () => {
        const ws = await open();
        ws.send({ opcode: OPCODE.text, payload: Buffer.alloc(length, 'a'), lengthForm: form });
        ws.sendText('next');
        await ws.waitFrames(2);
        assert.deepEqual(ws.frames.map(describeFrame), counts(2));
        for (const frame of ws.frames) {
          assertServerFrame(frame);
          assert.equal(frame.fin, true, 'each reply is one unfragmented frame');
        }
      });
    }

    it('parses frames however TCP cuts them: three frames written one byte at a time', async () => {
      const ws = await open();
      const bytes = Buffer.concat(['a', 'b'.repeat(200), 'c'].map((text) => frameBytes({ opcode: OPCODE.text, payload: text })));
      for (const byte of bytes) ws.write(Buffer.from([byte]));
      await ws.waitFrames(3);
      assert.deepEqual(ws.frames.map(describeFrame), counts(3));
    });

    it('parses many frames in one TCP write, answering each in order', async () => {
      const ws = await open();
      ws.write(Buffer.concat(Array.from({ length: 100 }, (_, index) => frameBytes({ opcode: OPCODE.text, payload: `m${index}` }))));
      await ws.waitFrames(100);
      assert.deepEqual(ws.frames.map(describeFrame), counts(100));
    });

    it('fails a 64-bit length with its most significant bit set with 1002 (§5.2: that bit MUST be 0)', async () => {
      await expectFailed([{ opcode: OPCODE.text, declaredLength: 1n << 63n }], PROTOCOL_ERROR);
    });

    it('fails any 64-bit length above 2^53 - 1 with 1002 (no peer can send it; ws cannot tell it from the top bit)', async () => {
      await expectFailed([{ opcode: OPCODE.text, declaredLength: 1n << 60n }], PROTOCOL_ERROR);
    });
  });

  describe('fragmentation (§5.4)', () => {
    it('counts a message in three fragments once', async () => {
      const ws = await open();
      ws.send({ opcode: OPCODE.text, payload: 'frag', fin: false });
      ws.send({ opcode: OPCODE.continuation, payload: 'men', fin: false });
      ws.send({ opcode: OPCODE.continuation, payload: 'ted' });
      ws.sendText('after');
      await ws.waitFrames(2);
      assert.deepEqual(ws.frames.map(describeFrame), counts(2));
    });

    it('counts a message of empty fragments', async () => {
      const ws = await open();
      ws.send({ opcode: OPCODE.text, fin: false });
      ws.send({ opcode: OPCODE.continuation, fin: false });
      ws.send({ opcode: OPCODE.continuation });
      await ws.waitFrames(1);
      assert.deepEqual(ws.frames.map(describeFrame), counts(1));
    });

    it('answers pings injected between fragments at once, and the message once it completes (§5.4, §5.5.2)', async () => {
      const ws = await open();
      ws.send({ opcode: OPCODE.text, payload: 'one', fin: false });
      ws.send({ opcode: OPCODE.ping, payload: 'p1' });
      ws.send({ opcode: OPCODE.continuation, payload: 'two', fin: false });
      ws.send({ opcode: OPCODE.ping, payload: 'p2' });
      await ws.waitFrames(2);
      ws.send({ opcode: OPCODE.continuation, payload: 'three' });
      await ws.waitFrames(3);
      assert.deepEqual(ws.frames.map(describeFrame), ['pong 7031', 'pong 7032', count(1)]);
    });

    it('fails a continuation frame with no message to continue with 1002', async () => {
      await expectFailed([{ opcode: OPCODE.continuation, payload: 'orphan' }], PROTOCOL_ERROR);
    });

    it('fails a new text frame inside a fragmented message with 1002', async () => {
      await expectFailed([{ opcode: OPCODE.text, payload: 'a', fin: false }, { opcode: OPCODE.text, payload: 'b' }], PROTOCOL_ERROR);
    });

    it('fails a fragmented control frame with 1002 (§5.5: control frames MUST NOT be fragmented)', async () => {
      await expectFailed([{ opcode: OPCODE.ping, payload: 'p', fin: false }], PROTOCOL_ERROR);
    });
  });

  describe('control frames (§5.5)', () => {
    it('answers a ping with a pong carrying the same payload, 0 and 125 bytes (§5.5.2, §5.5.3)', async () => {
      const ws = await open();
      ws.send({ opcode: OPCODE.ping });
      ws.send({ opcode: OPCODE.ping, payload: Buffer.alloc(125, 0xfe) });
      await ws.waitFrames(2);
      assert.deepEqual(
        ws.frames.map((frame) => [frame.opcode, frame.payload.toString('hex')]),
        [
          [OPCODE.pong, ''],
          [OPCODE.pong, 'fe'.repeat(125)],
        ],
      );
      for (const frame of ws.frames) assertServerFrame(frame);
    });

    it('ignores an unsolicited pong (§5.5.3)', async () => {
      const ws = await open();
      ws.send({ opcode: OPCODE.pong, payload: 'unasked' });
      ws.sendText('after');
      await ws.waitFrames(1);
      assert.deepEqual(ws.frames.map(describeFrame), counts(1));
    });

    it('fails a ping over 125 bytes with 1002 (§5.5: control payloads are at most 125 bytes)', async () => {
      await expectFailed([{ opcode: OPCODE.ping, payload: Buffer.alloc(126), lengthForm: 16 }], PROTOCOL_ERROR);
    });

    it('fails a close frame with a 1-byte body with 1002 (§5.5.1: a body starts with a 2-byte code)', async () => {
      await expectFailed([{ opcode: OPCODE.close, payload: Buffer.from([0x03]) }], PROTOCOL_ERROR);
    });
  });

  describe('RSV bits (§5.2: MUST be 0 unless an extension defines them; none is negotiated)', () => {
    for (const rsv of [1, 2, 3, 4, 5, 6, 7]) {
      it(`fails a text frame with RSV ${rsv.toString(2).padStart(3, '0')} with 1002, after answering the message before it`, async () => {
        await expectFailed([{ opcode: OPCODE.text, payload: 'x', rsv }], PROTOCOL_ERROR, [count(1)]);
      });
    }

    it('fails a ping with RSV1 set with 1002', async () => {
      await expectFailed([{ opcode: OPCODE.ping, rsv: 4 }], PROTOCOL_ERROR);
    });
  });

  describe('reserved opcodes (§5.2: 0x3-0x7 non-control, 0xB-0xF control)', () => {
    for (const opcode of [0x3, 0x4, 0x5, 0x6, 0x7, 0xb, 0xc, 0xd, 0xe, 0xf]) {
      it(`fails opcode 0x${opcode.toString(16)} with 1002`, async () => {
        await expectFailed([{ opcode, payload: 'x' }], PROTOCOL_ERROR, [count(1)]);
      });
    }
  });

  describe('masking (§5.1, §5.3)', () => {
    it('fails an unmasked client frame with 1002 (§5.1: the server MUST close)', async () => {
      await expectFailed([{ opcode: OPCODE.text, payload: 'clear', mask: false }], PROTOCOL_ERROR);
    });

    it('accepts an all-zero masking key (any key is valid, §5.3)', async () => {
      const ws = await open();
      ws.send({ opcode: OPCODE.text, payload: 'zero key', mask: Buffer.alloc(4) });
      await ws.waitFrames(1);
      assert.deepEqual(ws.frames.map(describeFrame), counts(1));
    });
  });

  describe('UTF-8 (§5.6, §8.1)', () => {
    const valid: Array<[string, Buffer]> = [
      ['Greek (2-byte sequences)', Buffer.from('κόσμε')],
      ['a 3-byte sequence (U+FFFD)', Buffer.from([0xef, 0xbf, 0xbd])],
      ['a 4-byte sequence (U+1F600)', Buffer.from('😀')],
      ['the largest code point, U+10FFFF', Buffer.from([0xf4, 0x8f, 0xbf, 0xbf])],
    ];
    for (const [name, payload] of valid) {
      it(`counts valid UTF-8: ${name}`, async () => {
        const ws = await open();
        ws.send({ opcode: OPCODE.text, payload });
        await ws.waitFrames(1);
        assert.deepEqual(ws.frames.map(describeFrame), counts(1));
      });
    }

    it('counts valid UTF-8 split inside a code point across fragments (§8.1: validity is of the whole message)', async () => {
      const ws = await open();
      const text = Buffer.from('κόσμε😀');
      ws.send({ opcode: OPCODE.text, payload: text.subarray(0, 3), fin: false });
      ws.send({ opcode: OPCODE.continuation, payload: text.subarray(3, 11), fin: false });
      ws.send({ opcode: OPCODE.continuation, payload: text.subarray(11) });
      await ws.waitFrames(1);
      assert.deepEqual(ws.frames.map(describeFrame), counts(1));
    });

    const invalid: Array<[string, number[]]> = [
      ['a truncated 2-byte sequence', [0xc3, 0x28]],
      ['an overlong encoding of "/"', [0xc0, 0xaf]],
      ['a UTF-16 surrogate (U+D800)', [0xed, 0xa0, 0x80]],
      ['a code point above U+10FFFF', [0xf4, 0x90, 0x80, 0x80]],
      ['a lone continuation byte', [0x80]],
      ['0xFF', [0x61, 0xff]],
    ];
    for (const [name, bytes] of invalid) {
      it(`fails a text message with ${name} with 1007, after answering the message before it`, async () => {
        await expectFailed([{ opcode: OPCODE.text, payload: Buffer.from(bytes) }], INVALID_UTF8, [count(1)]);
      });
    }

    it('fails invalid UTF-8 split across fragments with 1007 once the message completes (NON-STRICT: ws checks whole messages)', async () => {
      await expectFailed(
        [
          { opcode: OPCODE.text, payload: Buffer.from([0xce, 0xba, 0xed]), fin: false },
          { opcode: OPCODE.continuation, payload: Buffer.from([0xa0, 0x80]) },
        ],
        INVALID_UTF8,
      );
    });
  });

  describe('closing handshake started by the client (§5.5.1, §7.4)', () => {
    /** Sends `payload` as a close and returns every frame until TCP ended. */
    async function closeWith(payload: Buffer): Promise<{ frames: string[]; ws: RawWebSocket }> {
      const ws = await openCounted();
      ws.send({ opcode: OPCODE.close, payload });
      return { frames: await framesUntilEnd(ws), ws };
    }

    for (const code of [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 4999]) {
      it(`echoes a close with code ${code} and its reason, sends nothing after it, logs it as the client's, counts no error`, async () => {
        const errorsBefore = await errorsTotal();
        const { frames, ws } = await closeWith(closeBody(code, 'client says'));
        assert.deepEqual(frames, [count(1), `close ${code} client says`]);
        const tag = `${ws.sessionId!.slice(0, 8)}…`;
        await eventually(() => replica.events('close').some((line) => line.session === tag), 'the close log line');
        const line = replica.events('close').find((entry) => entry.session === tag);
        assert.deepEqual([line?.by, line?.code, line?.total], ['client', code, 1]);
        assert.equal(replica.events('closing').some((entry) => entry.session === tag), false, 'no server close was decided');
        assert.equal(await errorsTotal(), errorsBefore);
      });
    }

    it('echoes an empty close with an empty close (§5.5.1: no body, no code)', async () => {
      const { frames } = await closeWith(Buffer.alloc(0));
      assert.deepEqual(frames, [count(1), 'close (none)']);
    });

    it('echoes a reason of 123 bytes, the largest that fits (§5.5: 125-byte control payload)', async () => {
      const reason = 'r'.repeat(123);
      const { frames } = await closeWith(closeBody(1000, reason));
      assert.deepEqual(frames, [count(1), `close 1000 ${reason}`]);
    });

    it('ignores whatever the client sends after its close (§5.5.1)', async () => {
      const ws = await openCounted();
      ws.write(Buffer.concat([frameBytes({ opcode: OPCODE.close, payload: closeBody(1000) }), frameBytes({ opcode: OPCODE.text, payload: 'late' })]));
      assert.deepEqual(await framesUntilEnd(ws), [count(1), 'close 1000']);
      assert.equal(await inspect.get(sessionKey(ws.sessionId!)), '1', 'the late message was not counted');
    });

    it('never sends a count after its echo, even for a message received just before the close (Redis paused)', async () => {
      const ws = await openCounted();
      await inspect.call('CLIENT', 'PAUSE', '1000', 'WRITE');
      ws.write(Buffer.concat([frameBytes({ opcode: OPCODE.text, payload: 'pending' }), frameBytes({ opcode: OPCODE.close, payload: closeBody(1002) })]));
      assert.deepEqual(await framesUntilEnd(ws), [count(1), 'close 1002']);
    });

    for (const code of [0, 999, 1004, 1005, 1006, 1015, 1016, 2000, 2999, 5000, 65_535]) {
      it(`fails a close with the invalid code ${code} with 1002 (§7.4.1, §7.4.2)`, async () => {
        const { frames } = await closeWith(closeBody(code));
        assert.deepEqual(frames, [count(1), PROTOCOL_ERROR]);
      });
    }

    it('fails a close whose reason is not UTF-8 with 1007 (§5.5.1, §8.1)', async () => {
      const { frames } = await closeWith(closeBody(1000, Buffer.from([0xce, 0xba, 0xed, 0xa0, 0x80])));
      assert.deepEqual(frames, [count(1), INVALID_UTF8]);
    });
  });

  describe('failing the connection (§7.1.7): the close at once, nothing before or after it', () => {
    it('does not wait for counts Redis has not answered (Redis writes paused), and sends none after the close', async () => {
      const ws = await openCounted();
      await inspect.call('CLIENT', 'PAUSE', '3000', 'WRITE');
      const started = performance.now();
      ws.write(Buffer.concat([frameBytes({ opcode: OPCODE.text, payload: 'pending' }), frameBytes({ opcode: 0x3 })]));
      const close = await ws.waitClose();
      const ms = performance.now() - started;
      assert.deepEqual(close, { code: 1002, reason: 'protocol error' });
      assert.ok(ms < 1000, `the close took ${Math.round(ms)} ms with Redis paused for 3000`);
      await inspect.call('CLIENT', 'UNPAUSE');
      assert.deepEqual(await framesUntilEnd(ws), [count(1), PROTOCOL_ERROR]);
    });

    it('counts the failure by kind and logs the server close with its code and the parser error', async () => {
      const before = await replica.metric('wschat_errors_total', { kind: 'protocol_error' });
      const ws = await open();
      ws.send({ opcode: 0xb });
      await ws.waitEnd();
      assert.equal(await replica.metric('wschat_errors_total', { kind: 'protocol_error' }), before + 1);
      const tag = `${ws.sessionId!.slice(0, 8)}…`;
      await eventually(() => replica.events('close').some((line) => line.session === tag), 'the close log line');
      const closing = replica.events('closing').find((line) => line.session === tag);
      assert.deepEqual([closing?.code, closing?.ending, closing?.detail], [1002, 'fail', 'WS_ERR_INVALID_OPCODE']);
      const closed = replica.events('close').find((line) => line.session === tag);
      assert.deepEqual([closed?.by, closed?.code], ['server', 1002]);
    });
  });

  describe("the service's own rules (application rules, docs/protocol.md)", () => {
    it('closes a binary message healthily: counts, bye, 1003, and waits for the echo', async () => {
      const ws = await openCounted();
      ws.send({ opcode: OPCODE.binary, payload: Buffer.from([1, 2, 3]) });
      await ws.waitClose();
      ws.sendClose(1003);
      assert.deepEqual(await framesUntilEnd(ws), [count(1), 'text {"bye":true,"total":1}', 'close 1003 binary frames are not supported']);
    });

    it('closes a message over MAX_MESSAGE_BYTES with bye + 1009, before reading its payload', async () => {
      const ws = await openCounted();
      ws.send({ opcode: OPCODE.text, declaredLength: BigInt(MAX_MESSAGE_BYTES + 1) });
      assert.deepEqual(await framesUntilEnd(ws), [count(1), 'text {"bye":true,"total":1}', 'close 1009 message too big']);
    });

    it('counts the fragments of one message against MAX_MESSAGE_BYTES', async () => {
      const ws = await openCounted();
      ws.send({ opcode: OPCODE.text, payload: Buffer.alloc(MAX_MESSAGE_BYTES - 10, 'a'), fin: false });
      ws.send({ opcode: OPCODE.continuation, payload: Buffer.alloc(11, 'a') });
      assert.deepEqual(await framesUntilEnd(ws), [count(1), 'text {"bye":true,"total":1}', 'close 1009 message too big']);
    });

    it(`closes a message of more than MAX_MESSAGE_FRAGMENTS (${MAX_MESSAGE_FRAGMENTS}) frames with bye + 4504, counted and logged`, async () => {
      const before = await replica.metric('wschat_errors_total', { kind: 'too_many_fragments' });
      const ws = await openCounted();
      const fragment = frameBytes({ opcode: OPCODE.continuation, fin: false });
      ws.write(Buffer.concat([frameBytes({ opcode: OPCODE.text, fin: false }), ...Array<Buffer>(MAX_MESSAGE_FRAGMENTS).fill(fragment)]));
      assert.deepEqual(await framesUntilEnd(ws), [count(1), 'text {"bye":true,"total":1}', 'close 4504 message has too many fragments']);
      assert.equal(await replica.metric('wschat_errors_total', { kind: 'too_many_fragments' }), before + 1);
      const tag = `${ws.sessionId!.slice(0, 8)}…`;
      await eventually(() => replica.events('close').some((line) => line.session === tag), 'the close log line');
      const closed = replica.events('close').find((line) => line.session === tag);
      assert.deepEqual([closed?.by, closed?.code], ['server', 4504]);
    });
  });

  describe('opening handshake (§4.1, §4.2)', () => {
    async function handshake(options: Parameters<typeof upgradeRequest>[0]): Promise<Awaited<ReturnType<typeof exchange>>> {
      const response = await exchange(replica.port, upgradeRequest(options).text);
      response.socket.destroy();
      return response;
    }

    it('accepts a valid handshake: 101, the right Sec-WebSocket-Accept, and the session id (§4.2.2)', async () => {
      const ws = await open();
      assert.equal(ws.response.status, 101);
      assert.match(ws.response.headers.upgrade ?? '', /^websocket$/i);
      assert.match(ws.sessionId ?? '', /^[0-9a-f-]{36}$/);
    });

    it('selects no subprotocol when the client offers some (the service has none, §4.2.2 /subprotocol/)', async () => {
      const response = await handshake({ headers: { 'Sec-WebSocket-Protocol': 'chat, superchat' } });
      assert.equal(response.status, 101);
      assert.equal(response.headers['sec-websocket-protocol'], undefined);
    });

    it('negotiates no extension when offered permessage-deflate (§9.1)', async () => {
      const response = await handshake({ headers: { 'Sec-WebSocket-Extensions': 'permessage-deflate; client_max_window_bits' } });
      assert.equal(response.status, 101);
      assert.equal(response.headers['sec-websocket-extensions'], undefined);
    });

    it('refuses an unsupported Sec-WebSocket-Version with 400 naming version 13 (§4.2.2, §4.4)', async () => {
      const response = await handshake({ headers: { 'Sec-WebSocket-Version': '12' } });
      assert.equal(response.status, 400);
      assert.match(response.headers['sec-websocket-version'] ?? '', /\b13\b/);
    });

    for (const [name, key] of [
      ['a missing Sec-WebSocket-Key', undefined],
      ['a Sec-WebSocket-Key that is not 16 bytes in base64', 'c2hvcnQ='],
    ] as const) {
      it(`refuses ${name} with 400 (§4.1)`, async () => {
        const { text } = upgradeRequest();
        const request = text.replace(/Sec-WebSocket-Key: [^\r]*\r\n/, key === undefined ? '' : `Sec-WebSocket-Key: ${key}\r\n`);
        const response = await exchange(replica.port, request);
        response.socket.destroy();
        assert.equal(response.status, 400);
      });
    }

    it('refuses a method other than GET with 405 (§4.1)', async () => {
      const response = await handshake({ method: 'POST' });
      assert.equal(response.status, 405);
    });

    it('refuses HTTP/1.0 with 400 (§4.1: HTTP/1.1 or higher)', async () => {
      const response = await handshake({ httpVersion: '1.0' });
      assert.deepEqual([response.status, JSON.parse(response.body)], [400, { error: 'http_1_1_required' }]);
    });

    it('refuses an Upgrade header other than websocket with 400 (§4.1)', async () => {
      const response = await handshake({ headers: { Upgrade: 'h2c' } });
      assert.equal(response.status, 400);
    });

    it('refuses a path it does not serve with 404 (§4.2.1: /resource name/)', async () => {
      const response = await handshake({ path: '/ws/other/' });
      assert.deepEqual([response.status, JSON.parse(response.body)], [404, { error: 'not_found' }]);
    });

    it('refuses a browser Origin from another host with 403, and accepts its own (§4.2.2, §10.2)', async () => {
      const foreign = await handshake({ headers: { Origin: 'http://evil.example' } });
      assert.deepEqual([foreign.status, JSON.parse(foreign.body)], [403, { error: 'origin_not_allowed' }]);
      const own = await handshake({ headers: { Origin: 'http://127.0.0.1' } });
      assert.equal(own.status, 101);
    });
  });

  async function errorsTotal(): Promise<number> {
    return metricSum(`${replica.httpUrl}/metrics`, 'wschat_errors_total');
  }
});
