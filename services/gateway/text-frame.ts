/**
 * RFC 6455 §5.2 text frames as the server sends them (final, unmasked, uncompressed),
 * built into one Buffer, so a plain socket gets each frame in one write.
 *
 * ws's send() builds a header and writes it and the text as two chunks (a corked
 * writev, the text encoded inside it), per frame and per socket. A heartbeat framed
 * here once per tick is the same bytes written to every socket; a count is one small
 * buffer and one write. Frames written this way go to the socket between whole frames
 * of ws's own: with permessage-deflate off (the plain endpoint never negotiates it)
 * ws's sender writes every frame at once, never queueing one (library-internals.ts,
 * writeBesideSender).
 */
const FIN_TEXT = 0x81;
const MAX_SHORT_LENGTH = 125;
const MAX_16_BIT_LENGTH = 0xffff;

export function textFrame(text: string): Buffer {
  const length = Buffer.byteLength(text);
  const headerLength = length <= MAX_SHORT_LENGTH ? 2 : length <= MAX_16_BIT_LENGTH ? 4 : 10;
  const frame = Buffer.allocUnsafe(headerLength + length);
  frame[0] = FIN_TEXT;
  if (headerLength === 2) {
    frame[1] = length;
  } else if (headerLength === 4) {
    frame[1] = 126;
    frame.writeUInt16BE(length, 2);
  } else {
    frame[1] = 127;
    frame.writeBigUInt64BE(BigInt(length), 2);
  }
  frame.write(text, headerLength, 'utf8');
  return frame;
}
