/**
 * Node's crypto.randomUUID() joins its 36 characters with `+`, which V8 keeps as a
 * tree of about fourteen concatenated-string nodes (about 450 bytes) until something
 * reads the string whole. A connection keeps its request id and session id for its
 * life, so that tree was a tenth of an idle plain socket's memory (docs/benchmarks.md).
 * A copy made through a Buffer is one sequential string (56 bytes for a uuid) whatever
 * V8 does with the tree; converting to a number, which flattens in place, did not
 * flatten every one (heap snapshots of 2,000 socket.io sockets still held 1,152 trees).
 * Once per connection, ~100 ns.
 */
export function flattened(text: string): string {
  return Buffer.from(text, 'utf8').toString('utf8');
}
