/**
 * The replica's live connections, both transports. It is the only process-local
 * state that matters, and it is only a list of who to write to: every count
 * lives in Redis.
 */
import type { SessionConnection } from './session-connection.js';

export class ConnectionRegistry {
  private readonly connections = new Set<SessionConnection>();
  private emptyWaiters: Array<() => void> = [];

  get size(): number {
    return this.connections.size;
  }

  add(connection: SessionConnection): void {
    this.connections.add(connection);
  }

  delete(connection: SessionConnection): void {
    if (this.connections.delete(connection) && this.connections.size === 0) {
      const waiters = this.emptyWaiters;
      this.emptyWaiters = [];
      for (const wake of waiters) wake();
    }
  }

  forEach(visit: (connection: SessionConnection) => void): void {
    for (const connection of this.connections) visit(connection);
  }

  /** Resolves true once no connection is left, or false when `timeoutMs` passes first. */
  whenEmpty(timeoutMs: number): Promise<boolean> {
    if (this.connections.size === 0) return Promise.resolve(true);
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
}
