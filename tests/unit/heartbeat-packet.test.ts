/**
 * The heartbeat is encoded once per tick and transport, not once per socket: each
 * transport's encoding is made by the first socket that sends it and shared, and what
 * the shortcut writes is byte for byte what ws and socket.io would have written.
 */
import assert from 'node:assert/strict';
import { Server } from 'socket.io';
import * as ws from 'ws';
import { HeartbeatPacket } from '../../services/gateway/heartbeat-packet.js';
import { plainHeartbeatFrame } from '../../services/gateway/plain-endpoint.js';
import { socketIoHeartbeat } from '../../services/gateway/socketio-gateway.js';
import { textFrame } from '../../services/gateway/text-frame.js';

/** ws's own frame builder (exported by its ES module), which @types/ws does not declare. */
const { Sender } = ws as unknown as {
  Sender: { frame(data: Buffer, options: { fin: boolean; rsv1: boolean; opcode: number; mask: boolean; readOnly: boolean }): Buffer[] };
};

function wsFrame(text: string): Buffer {
  return Buffer.concat(Sender.frame(Buffer.from(text), { fin: true, rsv1: false, opcode: 1, mask: false, readOnly: false }));
}

const TS = '2026-12-02T13:00:00.000Z';

describe('HeartbeatPacket', () => {
  it('runs each encoder once, however many sockets ask, and hands every one the same value', () => {
    const packet = new HeartbeatPacket(TS);
    let plainRuns = 0;
    let otherRuns = 0;
    const plain = (heartbeat: HeartbeatPacket): Buffer => {
      plainRuns += 1;
      return textFrame(heartbeat.json);
    };
    const other = (heartbeat: HeartbeatPacket): string => {
      otherRuns += 1;
      return `x${heartbeat.ts}`;
    };
    const frames = Array.from({ length: 15_000 }, () => packet.encoded(plain));
    const others = Array.from({ length: 1_000 }, () => packet.encoded(other));
    assert.equal(plainRuns, 1, 'one plain encoding for 15,000 sockets');
    assert.equal(otherRuns, 1, 'one encoding of the other transport for 1,000 sockets');
    assert.ok(frames.every((frame) => frame === frames[0]), 'every socket gets the very same buffer');
    assert.ok(others.every((encoded) => encoded === `x${TS}`));
  });

  it('encodes anew for the next tick', () => {
    let runs = 0;
    const count = (heartbeat: HeartbeatPacket): string => `${(runs += 1)}${heartbeat.ts}`;
    new HeartbeatPacket(TS).encoded(count);
    new HeartbeatPacket(TS).encoded(count);
    assert.equal(runs, 2);
  });

  it('serialises {"ts": ...} as JSON.stringify does', () => {
    assert.equal(new HeartbeatPacket(TS).json, JSON.stringify({ ts: TS }));
  });
});

describe('textFrame', () => {
  for (const length of [0, 1, 125, 126, 65_535, 65_536]) {
    it(`builds the frame ws builds, ${length} bytes of text`, () => {
      const text = 'é'.repeat(Math.floor(length / 2)) + 'a'.repeat(length % 2);
      assert.deepEqual(textFrame(text), wsFrame(text));
    });
  }
});

describe('heartbeat encodings', () => {
  it('plain: the heartbeat JSON in the frame ws.send() writes', () => {
    const packet = new HeartbeatPacket(TS);
    assert.deepEqual(plainHeartbeatFrame(packet), wsFrame(packet.json));
  });

  it("socket.io: the packet socket.io's encoder makes of emit('heartbeat', {ts}), and the frame its broadcasts pre-encode", () => {
    // Not attached to any HTTP server: nothing listens, nothing to close.
    const io = new Server();
    const packet = new HeartbeatPacket(TS);
    const { encoded, options } = socketIoHeartbeat(packet);
    // socket.io-parser's PacketType.EVENT is 2; what socket.emit() encodes, on the main namespace.
    const expected = io.encoder.encode({ type: 2, nsp: '/', data: ['heartbeat', { ts: TS }] });
    assert.deepEqual([encoded], expected);
    const frames = (options as { wsPreEncodedFrame?: Buffer[] }).wsPreEncodedFrame ?? [];
    assert.deepEqual(Buffer.concat(frames), wsFrame(`4${encoded}`), 'engine.io message packet "4" + the socket.io packet, one text frame');
  });
});
