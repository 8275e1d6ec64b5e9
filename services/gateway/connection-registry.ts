/**
 * The replica's live sockets, both transports, kept here and nowhere else:
 * - the sessions, the connections it writes to: the heartbeat's fan-out, the plain
 *   endpoint's liveness sweep and the drain's close all walk this one list, in
 *   slices (sliced-walk.ts);
 * - every upgraded socket until it closes, whatever became of it (a session on
 *   either endpoint, a socket refused with a close frame, a socket.io transport in
 *   its closing handshake). An upgraded socket leaves the HTTP server's bookkeeping,
 *   yet server.close() waits for it, so one silent peer would hold the drain until
 *   the watchdog; the drain waits for these and destroys what is left.
 * It is the only process-local state that matters, and it only says who to write to
 * and what a drain waits for: every count lives in Redis.
 */
import type { Duplex } from 'node:stream';
import type { SessionConnection } from './session-connection.js';

export class ConnectionRegistry {
  private readonly connections = new Set<SessionConnection>();
  private readonly upgraded = new Set<Duplex>();
  private emptyWaiters: Array<() => void> = [];

  /** Open sessions, both transports. */
  get size(): number {
    return this.connections.size;
  }

  add(connection: SessionConnection): void {
    this.connections.add(connection);
  }

  delete(connection: SessionConnection): void {
    this.connections.delete(connection);
  }

  /**
   * A live walk of the open sessions, for a visit spread over time: a Set iterator
   * skips the sessions deleted meanwhile and reaches the ones added, at its end.
   */
  walk(): Iterator<SessionConnection, undefined> {
    return this.connections.values();
  }

  /** Upgraded sockets open now, refused or routed: what MAX_CONNECTIONS bounds. */
  get openSockets(): number {
    return this.upgraded.size;
  }

  /**
   * A walk of the sessions open now, for a visit spread over time that must not reach
   * the ones added meanwhile (a heartbeat tick goes to the sockets there were when it
   * came). A session deleted meanwhile is still visited: the visit skips what closed.
   */
  snapshot(): Iterator<SessionConnection, undefined> {
    return Array.from(this.connections).values();
  }

  /** An upgraded socket, kept until it closes (the upgrade router hands over every one, refused or not). */
  trackUpgraded(socket: Duplex): void {
    this.upgraded.add(socket);
    // One listener shared by every socket, so a socket carries no closure or once()
    // wrapper of its own; 'close' is emitted once, so on() is enough.
    socket.on('close', this.upgradedClosed);
  }

  /** Node calls it with the closed socket as `this`. */
  private readonly upgradedClosed = ((registry: ConnectionRegistry) =>
    function upgradedClosed(this: Duplex): void {
      registry.untrack(this);
    })(this);

  private untrack(socket: Duplex): void {
    if (this.upgraded.delete(socket) && this.upgraded.size === 0) {
      const waiters = this.emptyWaiters;
      this.emptyWaiters = [];
      for (const wake of waiters) wake();
    }
  }

  /** Resolves true once every upgraded socket has closed, or false when `timeoutMs` passes first. */
  whenAllClosed(timeoutMs: number): Promise<boolean> {
    if (this.upgraded.size === 0) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.emptyWaiters = this.emptyWaiters.filter((waiter) => waiter !== wake);
        resolve(false);
      }, Math.max(0, timeoutMs));
      const wake = (): void => {
        clearTimeout(timer);
        resolve(true);
      };
      this.emptyWaiters.push(wake);
    });
  }

  /** Destroys every upgraded socket still open; returns how many there were. */
  destroyAll(): number {
    const count = this.upgraded.size;
    for (const socket of this.upgraded) socket.destroy();
    return count;
  }
}
