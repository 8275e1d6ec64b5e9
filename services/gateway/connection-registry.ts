/**
 * The replica's live connections, both transports. It is the only process-local
 * state that matters, and it is only a list of who to write to: every count
 * lives in Redis.
 */
import type { SessionConnection } from './session-connection.js';

export class ConnectionRegistry {
  private readonly connections = new Set<SessionConnection>();

  get size(): number {
    return this.connections.size;
  }

  add(connection: SessionConnection): void {
    this.connections.add(connection);
  }

  delete(connection: SessionConnection): void {
    this.connections.delete(connection);
  }

  forEach(visit: (connection: SessionConnection) => void): void {
    for (const connection of this.connections) visit(connection);
  }
}
