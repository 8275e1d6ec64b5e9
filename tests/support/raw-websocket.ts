/**
 * A WebSocket client written by hand over a net.Socket: the handshake and RFC 6455
 * frames (§5.2) encoded and decoded here, with no WebSocket library, so a test can
 * send what no library would (bad opcodes, RSV bits, unmasked frames, lying
 * lengths) and see every byte the server sends back, in order.
 *
 * It answers nothing by itself (no pong, no close echo): each test says what the
 * client does.
 */
import { createHash, randomBytes } from 'node:crypto';
import net from 'node:net';

export const OPCODE = Object.freeze({ continuation: 0x0, text: 0x1, binary: 0x2, close: 0x8, ping: 0x9, pong: 0xa });

/** RFC 6455 §1.3: the GUID the server appends to the key before hashing. */
const ACCEPT_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

export function acceptFor(key: string): string {
  return createHash('sha1').update(key + ACCEPT_GUID).digest('base64');
}

/** One decoded frame. */
export interface RawFrame {
  fin: boolean;
  /** RSV1-3 as the three bits below FIN (0-7). */
  rsv: number;
  opcode: number;
  masked: boolean;
  payload: Buffer;
}

export interface FrameSpec {
  opcode: number;
  payload?: Buffer | string;
  /** @default true */
  fin?: boolean;
  /** RSV1-3 as a 3-bit number. @default 0 */
  rsv?: number;
  /** A client must mask (§5.3); `false` sends the payload in clear. @default a random key */
  mask?: Buffer | false;
  /** Forces the length's encoding (§5.2: 7-bit up to 125, 16-bit up to 65535, 64-bit beyond). */
  lengthForm?: 7 | 16 | 64;
  /** Writes this 64-bit length instead of the payload's own (implies lengthForm 64). */
  declaredLength?: bigint;
}

/** A frame as the wire carries it. */
export function encodeFrame(spec: FrameSpec): Buffer {
  const payload = typeof spec.payload === 'string' ? Buffer.from(spec.payload) : (spec.payload ?? Buffer.alloc(0));
  const mask = spec.mask === undefined ? randomBytes(4) : spec.mask;
  const form = spec.declaredLength !== undefined ? 64 : (spec.lengthForm ?? naturalForm(payload.length));
  const first = ((spec.fin ?? true) ? 0x80 : 0) | (((spec.rsv ?? 0) & 0x7) << 4) | (spec.opcode & 0xf);
  const maskBit = mask === false ? 0 : 0x80;
  let header: Buffer;
  if (form === 7) header = Buffer.from([first, maskBit | payload.length]);
  else if (form === 16) {
    header = Buffer.from([first, maskBit | 126, 0, 0]);
    header.writeUInt16BE(payload.length, 2);
  } else {
    header = Buffer.alloc(10);
    header[0] = first;
    header[1] = maskBit | 127;
    header.writeBigUInt64BE(spec.declaredLength ?? BigInt(payload.length), 2);
  }
  if (mask === false) return Buffer.concat([header, payload]);
  const masked = Buffer.from(payload.map((byte, index) => byte ^ mask[index % 4]!));
  return Buffer.concat([header, mask, masked]);
}

function naturalForm(length: number): 7 | 16 | 64 {
  if (length <= 125) return 7;
  return length <= 0xffff ? 16 : 64;
}

/** A close frame's payload (§5.5.1): the code, then the reason in UTF-8 (or raw bytes). */
export function closePayload(code: number, reason: string | Buffer = ''): Buffer {
  const head = Buffer.alloc(2);
  head.writeUInt16BE(code);
  return Buffer.concat([head, typeof reason === 'string' ? Buffer.from(reason) : reason]);
}

/** A close frame's code and reason; code undefined for an empty close. */
export function parseClose(frame: RawFrame): { code: number | undefined; reason: string } {
  if (frame.payload.length < 2) return { code: undefined, reason: '' };
  return { code: frame.payload.readUInt16BE(0), reason: frame.payload.subarray(2).toString('utf8') };
}

/** Decodes frames from a byte stream, however it is chunked. */
export class FrameDecoder {
  private buffered = Buffer.alloc(0);

  push(chunk: Buffer): RawFrame[] {
    this.buffered = Buffer.concat([this.buffered, chunk]);
    const frames: RawFrame[] = [];
    for (let frame = this.next(); frame !== undefined; frame = this.next()) frames.push(frame);
    return frames;
  }

  private next(): RawFrame | undefined {
    const data = this.buffered;
    if (data.length < 2) return undefined;
    const masked = (data[1]! & 0x80) !== 0;
    let length = data[1]! & 0x7f;
    let offset = 2;
    if (length === 126) {
      if (data.length < 4) return undefined;
      length = data.readUInt16BE(2);
      offset = 4;
    } else if (length === 127) {
      if (data.length < 10) return undefined;
      length = Number(data.readBigUInt64BE(2));
      offset = 10;
    }
    const maskKey = masked ? data.subarray(offset, offset + 4) : undefined;
    if (masked) offset += 4;
    if (data.length < offset + length) return undefined;
    const raw = data.subarray(offset, offset + length);
    const payload = Buffer.from(maskKey === undefined ? raw : raw.map((byte, index) => byte ^ maskKey[index % 4]!));
    this.buffered = data.subarray(offset + length);
    return { fin: (data[0]! & 0x80) !== 0, rsv: (data[0]! >> 4) & 0x7, opcode: data[0]! & 0xf, masked, payload };
  }
}

export interface HandshakeOptions {
  path?: string;
  method?: string;
  httpVersion?: string;
  /** Extra or replacing headers; a value of undefined drops a default header. */
  headers?: Record<string, string | undefined>;
}

/** An upgrade request as a client writes it; the defaults make a valid RFC 6455 §4.1 handshake. */
export function upgradeRequest(options: HandshakeOptions = {}): { text: string; key: string } {
  const key = options.headers?.['Sec-WebSocket-Key'] ?? randomBytes(16).toString('base64');
  const headers: Record<string, string | undefined> = {
    Host: '127.0.0.1',
    Upgrade: 'websocket',
    Connection: 'Upgrade',
    'Sec-WebSocket-Key': key,
    'Sec-WebSocket-Version': '13',
    ...options.headers,
  };
  const lines = Object.entries(headers).flatMap(([name, value]) => (value === undefined ? [] : [`${name}: ${value}`]));
  const requestLine = `${options.method ?? 'GET'} ${options.path ?? '/ws/chat/'} HTTP/${options.httpVersion ?? '1.1'}`;
  return { text: `${requestLine}\r\n${lines.join('\r\n')}\r\n\r\n`, key };
}

/** The HTTP response a handshake got: status (and its whole line), headers (lowercase names), body, and the bytes after it. */
export interface HandshakeResponse {
  status: number;
  statusLine: string;
  headers: Record<string, string>;
  body: string;
  rest: Buffer;
}

function parseResponseHead(head: string): Pick<HandshakeResponse, 'status' | 'statusLine' | 'headers'> {
  const [statusLine = '', ...lines] = head.split('\r\n');
  const headers: Record<string, string> = {};
  for (const line of lines) {
    const colon = line.indexOf(':');
    if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  return { status: Number(/^HTTP\/1\.[01] (\d{3})/.exec(statusLine)?.[1] ?? 0), statusLine, headers };
}

export interface ExchangeOptions {
  /** @default 5000 */
  timeoutMs?: number;
  /** Keeps our side open after the server's FIN: a client that never closes. @default false */
  allowHalfOpen?: boolean;
}

/**
 * Writes `request` and resolves with the response: at the end of the headers for a
 * 101, when the server ends the connection for anything else.
 */
export function exchange(
  port: number,
  request: string,
  { timeoutMs = 5000, allowHalfOpen = false }: ExchangeOptions = {},
): Promise<HandshakeResponse & { socket: net.Socket }> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ port, host: '127.0.0.1', allowHalfOpen }, () => socket.write(request));
    let received = Buffer.alloc(0);
    let upgraded = false;
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no complete response within ${timeoutMs} ms: ${JSON.stringify(received.toString())}`));
    }, timeoutMs);
    let finished = false;
    const finish = (): void => {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      const end = received.indexOf('\r\n\r\n');
      const head = parseResponseHead(received.subarray(0, end === -1 ? received.length : end).toString('latin1'));
      const after = end === -1 ? Buffer.alloc(0) : received.subarray(end + 4);
      const body = upgraded ? '' : after.toString('utf8');
      resolve({ ...head, body, rest: upgraded ? after : Buffer.alloc(0), socket });
    };
    const onData = (chunk: Buffer): void => {
      received = Buffer.concat([received, chunk]);
      if (received.subarray(0, 12).toString('latin1') === 'HTTP/1.1 101' && received.includes('\r\n\r\n')) {
        upgraded = true;
        socket.off('data', onData);
        finish();
      }
    };
    socket.on('data', onData);
    // A FIN, or a reset (which ends in 'close' without 'end').
    socket.once('end', finish);
    socket.once('close', finish);
    socket.on('error', () => undefined);
  });
}

/** A raw WebSocket connection after a 101: what it received, frame by frame. */
export class RawWebSocket {
  readonly frames: RawFrame[] = [];
  /** Resolves when the server's side of TCP is finished (FIN or reset). */
  readonly ended: Promise<void>;
  private readonly decoder = new FrameDecoder();
  private endedAt: number | undefined;
  private waiters: Array<() => void> = [];

  private constructor(
    readonly socket: net.Socket,
    readonly response: HandshakeResponse,
  ) {
    this.ended = new Promise((resolve) => {
      const done = (): void => {
        this.endedAt ??= performance.now();
        this.wake();
        resolve();
      };
      socket.once('end', done);
      socket.once('close', done);
    });
    socket.on('data', (chunk: Buffer) => this.received(chunk));
    if (response.rest.length > 0) this.received(response.rest);
  }

  /** Completes a handshake (checking Sec-WebSocket-Accept, §4.2.2) and resolves once upgraded. */
  static async open(port: number, options: HandshakeOptions = {}): Promise<RawWebSocket> {
    const { text, key } = upgradeRequest(options);
    const response = await exchange(port, text);
    if (response.status !== 101) {
      response.socket.destroy();
      throw new Error(`handshake refused with ${response.status}: ${response.body}`);
    }
    if (response.headers['sec-websocket-accept'] !== acceptFor(key)) throw new Error('wrong Sec-WebSocket-Accept');
    return new RawWebSocket(response.socket, response);
  }

  get sessionId(): string | undefined {
    return this.response.headers['x-session-id'];
  }

  send(spec: FrameSpec): void {
    this.socket.write(encodeFrame(spec));
  }

  /** Writes raw bytes (several frames in one write, or a frame cut anywhere). */
  write(bytes: Buffer): void {
    this.socket.write(bytes);
  }

  sendText(text: string | Buffer): void {
    this.send({ opcode: OPCODE.text, payload: text });
  }

  sendClose(code?: number, reason: string | Buffer = ''): void {
    this.send({ opcode: OPCODE.close, payload: code === undefined ? Buffer.alloc(0) : closePayload(code, reason) });
  }

  /** The payloads of the text frames received, in order. */
  texts(): string[] {
    return this.frames.filter((frame) => frame.opcode === OPCODE.text).map((frame) => frame.payload.toString('utf8'));
  }

  closeFrame(): RawFrame | undefined {
    return this.frames.find((frame) => frame.opcode === OPCODE.close);
  }

  /** Waits until `count` frames arrived; fails with what did arrive. */
  async waitFrames(count: number, timeoutMs = 5000): Promise<RawFrame[]> {
    await this.until(() => this.frames.length >= count, `${count} frames`, timeoutMs);
    return this.frames;
  }

  /** Waits for the server's close frame and resolves with its code and reason. */
  async waitClose(timeoutMs = 5000): Promise<{ code: number | undefined; reason: string }> {
    await this.until(() => this.closeFrame() !== undefined, 'a close frame', timeoutMs);
    return parseClose(this.closeFrame()!);
  }

  /** Waits for the server to end TCP; resolves with every frame received, in order. */
  async waitEnd(timeoutMs = 5000): Promise<RawFrame[]> {
    await this.until(() => this.endedAt !== undefined, 'the server to end the connection', timeoutMs);
    return this.frames;
  }

  destroy(): void {
    this.socket.destroy();
  }

  private received(chunk: Buffer): void {
    this.frames.push(...this.decoder.push(chunk));
    this.wake();
  }

  private wake(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const wake of waiters) wake();
  }

  private until(condition: () => boolean, what: string, timeoutMs: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((waiter) => waiter !== check);
        const got = this.frames.map(describeFrame).join(', ');
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}; got [${got}]`));
      }, timeoutMs);
      const check = (): void => {
        if (!condition()) return void this.waiters.push(check);
        clearTimeout(timer);
        resolve();
      };
      check();
    });
  }
}

/** A frame in a line of a failure message: `text {"count":1}`, `close 1002 protocol error`. */
export function describeFrame(frame: RawFrame): string {
  if (frame.opcode === OPCODE.text) return `text ${frame.payload.toString('utf8')}`;
  if (frame.opcode === OPCODE.close) {
    const { code, reason } = parseClose(frame);
    return `close ${code ?? '(none)'} ${reason}`.trim();
  }
  const names: Record<number, string> = { 0: 'continuation', 2: 'binary', 9: 'ping', 10: 'pong' };
  return `${names[frame.opcode] ?? `opcode ${frame.opcode}`} ${frame.payload.toString('hex')}`.trim();
}

/**
 * Completes a WebSocket handshake on `path`, then reads nothing and answers
 * nothing unless told to (a peer that will never answer its close frame).
 */
export async function silentWebSocket(port: number, path = '/ws/chat/'): Promise<net.Socket> {
  const { text } = upgradeRequest({ path });
  const response = await exchange(port, text);
  if (response.status !== 101) throw new Error(`handshake failed: ${response.status} ${response.body}`);
  return response.socket;
}

/** Writes one masked text frame (as a client must) on a socket from silentWebSocket(). */
export function sendTextFrame(socket: net.Socket, text: string): void {
  socket.write(encodeFrame({ opcode: OPCODE.text, payload: text }));
}
