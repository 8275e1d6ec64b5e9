/**
 * The registry in-process: the one set of live sockets. Sessions are the list the
 * heartbeat, the liveness sweep and the drain walk; upgraded sockets (PassThrough
 * streams here) are what a drain waits for.
 */
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { ConnectionRegistry } from '../../services/gateway/connection-registry.js';
import type { SessionConnection } from '../../services/gateway/session-connection.js';

/** Stands in for a session: the registry only keeps it and hands it back. */
const session = (name: string): SessionConnection => ({ sessionId: name }) as unknown as SessionConnection;

/** The session ids a walk visits, in order. */
function names(walk: Iterator<SessionConnection, undefined>): string[] {
  const visited: string[] = [];
  for (let next = walk.next(); next.done !== true; next = walk.next()) visited.push(next.value.sessionId);
  return visited;
}

describe('connection registry', () => {
  it('walks the open sessions in the order they came, without those that left', () => {
    const registry = new ConnectionRegistry();
    const [a, b, c] = [session('a'), session('b'), session('c')];
    for (const connection of [a, b, c]) registry.add(connection);
    registry.delete(b);
    assert.deepEqual(names(registry.walk()), ['a', 'c']);
    assert.deepEqual(names(registry.snapshot()), ['a', 'c']);
    assert.equal(registry.size, 2);
  });

  it('a walk spread over time skips the sessions that left meanwhile and reaches the ones that came', () => {
    const registry = new ConnectionRegistry();
    const [a, b, c, d] = [session('a'), session('b'), session('c'), session('d')];
    for (const connection of [a, b, c]) registry.add(connection);
    const walk = registry.walk();
    const visited = [walk.next().value?.sessionId];
    registry.delete(b);
    registry.add(d);
    for (let next = walk.next(); next.done !== true; next = walk.next()) visited.push(next.value.sessionId);
    assert.deepEqual(visited, ['a', 'c', 'd']);
  });

  it("a snapshot walks the sessions open when it was taken: not the ones that came since, still the ones that left", () => {
    const registry = new ConnectionRegistry();
    const [a, b, c] = [session('a'), session('b'), session('c')];
    for (const connection of [a, b]) registry.add(connection);
    const snapshot = registry.snapshot();
    registry.delete(a);
    registry.add(c);
    assert.deepEqual(names(snapshot), ['a', 'b']);
  });

  it('counts sessions only: an upgraded socket is waited for, not written to', () => {
    const registry = new ConnectionRegistry();
    registry.trackUpgraded(new PassThrough());
    assert.equal(registry.size, 0);
    assert.equal(registry.destroyAll(), 1);
  });

  it('waits its whole time for the last socket: true when it closes within it', async () => {
    const registry = new ConnectionRegistry();
    const socket = new PassThrough();
    registry.trackUpgraded(socket);
    setTimeout(() => socket.destroy(), 30);
    assert.equal(await registry.whenAllClosed(2000), true);
  });

  it('a timed-out wait is dropped: a later wait still resolves true when the last socket closes', async () => {
    const registry = new ConnectionRegistry();
    const socket = new PassThrough();
    registry.trackUpgraded(socket);
    assert.equal(await registry.whenAllClosed(10), false);
    // What a drain that timed out leaves behind: nothing (its wait is not woken later).
    assert.deepEqual((registry as unknown as { emptyWaiters: unknown[] }).emptyWaiters, []);
    const later = registry.whenAllClosed(5000);
    socket.destroy();
    assert.equal(await later, true);
    assert.equal(registry.destroyAll(), 0, 'nothing left to destroy');
  });
});
