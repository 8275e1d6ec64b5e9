/**
 * Redis Cluster and Sentinel setups for the tests, from Debian's redis-server on
 * loopback: each node on a free port with a data dir of its own, every process
 * tracked and stopped by destroy().
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import { answersPing, eventually, freePorts, killAll } from '../../tools/harness/processes.js';

class Nodes {
  readonly dir = mkdtempSync(path.join(os.tmpdir(), 'wschat-redis-topology-'));
  private readonly children: ChildProcess[] = [];
  private readonly exits = new Map<number, number | null>();

  start(port: number, args: string[]): void {
    const nodeDir = path.join(this.dir, String(port));
    mkdirSync(nodeDir, { recursive: true });
    const child = spawn('redis-server', [...args, '--port', String(port), '--bind', '127.0.0.1', '--dir', nodeDir, '--save', '', '--loglevel', 'warning'], {
      stdio: 'ignore',
    });
    child.once('exit', (code) => this.exits.set(port, code));
    this.children.push(child);
  }

  /** True once the node on `port` answers PING; throws if it has exited (a port taken, a bad argument). */
  async answers(port: number): Promise<boolean> {
    if (this.exits.has(port)) throw new Error(`redis-server on port ${port} exited with code ${this.exits.get(port)}`);
    return answersPing({ host: '127.0.0.1', port });
  }

  async destroy(): Promise<void> {
    await killAll(this.children);
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** Three primaries, no replicas, the 16,384 slots split by redis-cli. */
export class RedisClusterSet {
  private constructor(
    private readonly nodes: Nodes,
    readonly ports: number[],
  ) {}

  static async start(size = 3): Promise<RedisClusterSet> {
    const nodes = new Nodes();
    const ports = await freePorts(size);
    for (const port of ports) nodes.start(port, ['--cluster-enabled', 'yes', '--cluster-config-file', `nodes-${port}.conf`]);
    const set = new RedisClusterSet(nodes, ports);
    try {
      for (const port of ports) await eventually(() => nodes.answers(port), `cluster node ${port}`, 5000, 50);
      const created = spawnSync(
        'redis-cli',
        ['--cluster', 'create', ...ports.map((port) => `127.0.0.1:${port}`), '--cluster-replicas', '0', '--cluster-yes'],
        { encoding: 'utf8' },
      );
      if (created.status !== 0) throw new Error(`redis-cli --cluster create failed: ${created.stdout}${created.stderr}`);
      for (const port of ports) {
        await eventually(async () => (await set.info(port, 'CLUSTER', 'INFO')).includes('cluster_state:ok'), `cluster state ok on ${port}`, 10_000, 100);
      }
    } catch (error) {
      await nodes.destroy();
      throw error;
    }
    return set;
  }

  /** REDIS_CLUSTER_NODES for the replicas. */
  get nodeList(): string {
    return this.ports.map((port) => `127.0.0.1:${port}`).join(',');
  }

  /** A client of the whole cluster, for checking what the replicas stored. Disconnect it when done. */
  client(): import('ioredis').Cluster {
    return new Redis.Cluster(this.ports.map((port) => ({ host: '127.0.0.1', port })));
  }

  private async info(port: number, ...command: string[]): Promise<string> {
    const client = new Redis(port, '127.0.0.1', { maxRetriesPerRequest: 1 });
    try {
      return String(await client.call(command[0]!, ...command.slice(1)));
    } finally {
      client.disconnect();
    }
  }

  /** How many keys each node holds: the sessions spread over the slots. */
  async keysPerNode(): Promise<number[]> {
    return Promise.all(this.ports.map(async (port) => Number(await this.info(port, 'DBSIZE'))));
  }

  destroy(): Promise<void> {
    return this.nodes.destroy();
  }
}

/** A primary, one replica of it and one sentinel watching them (quorum 1). */
export class RedisSentinelSet {
  static readonly MASTER_NAME = 'wschat-primary';

  private constructor(
    private readonly nodes: Nodes,
    readonly primaryPort: number,
    readonly replicaPort: number,
    readonly sentinelPort: number,
  ) {}

  static async start(): Promise<RedisSentinelSet> {
    const nodes = new Nodes();
    const [primaryPort, replicaPort, sentinelPort] = (await freePorts(3)) as [number, number, number];
    const set = new RedisSentinelSet(nodes, primaryPort, replicaPort, sentinelPort);
    try {
      nodes.start(primaryPort, ['--appendonly', 'yes', '--appendfsync', 'always']);
      nodes.start(replicaPort, ['--replicaof', '127.0.0.1', String(primaryPort)]);
      // A sentinel rewrites its config file, so it gets one of its own.
      const config = path.join(nodes.dir, 'sentinel.conf');
      writeFileSync(
        config,
        [
          `sentinel monitor ${RedisSentinelSet.MASTER_NAME} 127.0.0.1 ${primaryPort} 1`,
          `sentinel down-after-milliseconds ${RedisSentinelSet.MASTER_NAME} 1000`,
          `sentinel failover-timeout ${RedisSentinelSet.MASTER_NAME} 5000`,
          '',
        ].join('\n'),
      );
      nodes.start(sentinelPort, [config, '--sentinel']);
      for (const port of [primaryPort, replicaPort, sentinelPort]) await eventually(() => nodes.answers(port), `redis ${port}`, 5000, 50);
      await eventually(async () => await set.replicaLinkUp(), 'the replica in sync', 10_000, 100);
      // The sentinel finds replicas through the primary's INFO, every 10 s: no failover before that.
      await eventually(async () => await set.sentinelSeesReplica(), 'the sentinel to know the replica', 20_000, 200);
    } catch (error) {
      await nodes.destroy();
      throw error;
    }
    return set;
  }

  /** REDIS_SENTINELS for the replicas. */
  get sentinelList(): string {
    return `127.0.0.1:${this.sentinelPort}`;
  }

  /** The port of the primary as the sentinel sees it now. */
  async currentPrimaryPort(): Promise<number> {
    const sentinel = new Redis(this.sentinelPort, '127.0.0.1', { maxRetriesPerRequest: 1 });
    try {
      const answer = (await sentinel.call('SENTINEL', 'get-master-addr-by-name', RedisSentinelSet.MASTER_NAME)) as string[];
      return Number(answer[1]);
    } finally {
      sentinel.disconnect();
    }
  }

  /**
   * Asks the sentinel to fail over (the replica becomes primary). By default it first
   * waits until the replica has every write; `waitForSync: false` fails over at once,
   * so writes the old primary confirmed after the replica's last sync (under live
   * traffic, the newest ones) are lost with it, as in a real failover.
   */
  async failover({ waitForSync = true }: { waitForSync?: boolean } = {}): Promise<void> {
    const primary = new Redis(await this.currentPrimaryPort(), '127.0.0.1', { maxRetriesPerRequest: 1 });
    const sentinel = new Redis(this.sentinelPort, '127.0.0.1', { maxRetriesPerRequest: 1 });
    try {
      if (waitForSync) await primary.call('WAIT', '1', '2000');
      await sentinel.call('SENTINEL', 'failover', RedisSentinelSet.MASTER_NAME);
    } finally {
      primary.disconnect();
      sentinel.disconnect();
    }
  }

  /** The names of the client connections the node on `port` has (CLIENT SETNAME; the replicas name theirs). */
  async connectionNames(port: number): Promise<string[]> {
    const node = new Redis(port, '127.0.0.1', { maxRetriesPerRequest: 1 });
    try {
      const list = String(await node.call('CLIENT', 'LIST'));
      return [...list.matchAll(/ name=(\S*)/g)].map((match) => match[1]!).filter((name) => name !== '');
    } finally {
      node.disconnect();
    }
  }

  private async sentinelSeesReplica(): Promise<boolean> {
    const sentinel = new Redis(this.sentinelPort, '127.0.0.1', { maxRetriesPerRequest: 1 });
    try {
      const replicas = (await sentinel.call('SENTINEL', 'replicas', RedisSentinelSet.MASTER_NAME)) as string[][];
      return replicas.some((fields) => {
        const flags = fields[fields.indexOf('flags') + 1] ?? '';
        return flags === 'slave' && fields[fields.indexOf('master-link-status') + 1] === 'ok';
      });
    } finally {
      sentinel.disconnect();
    }
  }

  private async replicaLinkUp(): Promise<boolean> {
    const replica = new Redis(this.replicaPort, '127.0.0.1', { maxRetriesPerRequest: 1 });
    try {
      return (await replica.info('replication')).includes('master_link_status:up');
    } finally {
      replica.disconnect();
    }
  }

  destroy(): Promise<void> {
    return this.nodes.destroy();
  }
}
