/**
 * How heartbeats and probes travel between replicas: one publish reaches every other
 * replica of the fleet (either colour, same Redis), and each replica hands what it
 * receives to its heartbeat. The socket.io gateway implements it over its Redis
 * adapter (serverSideEmit); the unit tier passes a channel kept in memory.
 */
import type { FleetHeartbeat, HeartbeatMessage } from '../../shared/protocol/messages.js';

export interface FleetChannel {
  /** Sends `message` once to every other replica; never back to this one. */
  publish(message: HeartbeatMessage): void;
  /** Runs `handler` for each message another replica published. */
  subscribe(handler: (message: FleetHeartbeat) => void): void;
}
