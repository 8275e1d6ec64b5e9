/**
 * Node's crypto.randomUUID() joins its 36 characters with `+`, which V8 keeps as a
 * tree of about fourteen concatenated-string nodes (about 450 bytes) until something
 * reads the string whole. A connection keeps its request id and session id for its
 * life, so that tree was a tenth of an idle socket's memory (docs/benchmarks.md).
 * Converting a string to a number makes V8 flatten it in place (one sequential string,
 * 56 bytes for a uuid); the garbage collector then drops the tree.
 */
export function flattened(text: string): string {
  // The value is unused: the conversion is what flattens the string.
  void Number(text);
  return text;
}
