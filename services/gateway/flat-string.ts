/**
 * A string V8 holds as one sequential run of characters. crypto.randomUUID() builds
 * its result by concatenation, which V8 keeps as a tree of string nodes until
 * something reads it whole; a connection keeps its request id and session id for its
 * life, so each is copied flat once. A copy through a Buffer is flat whatever V8 does
 * with the tree (flattening in place is not guaranteed to happen).
 */
export function flattened(text: string): string {
  return Buffer.from(text, 'utf8').toString('utf8');
}
