/**
 * Replicas of the test's own behind the stack's Nginx: each replica a ReplicaProcess
 * with an environment of its own (its Redis address, its topology), so a fault test
 * can cut one replica's links and SIGKILL or restart any process, while Nginx runs
 * the configuration operators run: nginx/nginx.conf.template rendered by
 * tools/stack/stack-lib.sh's render_nginx (upstreams, timeouts, proxy_next_upstream),
 * in a temporary run folder. destroy() stops everything it started, Nginx's workers
 * included; this process's exit kills Nginx's group if a test died before that.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { eventually, freePorts, ReplicaProcess } from '../../tools/harness/processes.js';
import { repoRoot } from '../../tools/harness/repo-root.js';
import { freePortBlock } from './stack.js';

/**
 * Each Nginx runs as the leader of a process group of its own, and is killed as a
 * group: a master SIGKILLed alone leaves its workers running, holding the port.
 */
const nginxes = new Set<ChildProcess>();
process.on('exit', () => {
  for (const child of nginxes) killGroup(child, 'SIGKILL');
});

function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  try {
    process.kill(-child.pid!, signal);
  } catch {
    // The group is gone already.
  }
}

/** SIGTERM (Nginx's fast shutdown: the master stops its workers, then exits); the whole group SIGKILLed if that overruns. */
async function stopNginx(child: ChildProcess): Promise<void> {
  const exited = new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve();
    else child.once('exit', () => resolve());
  });
  killGroup(child, 'SIGTERM');
  const timer = setTimeout(() => killGroup(child, 'SIGKILL'), 5000);
  try {
    await exited;
  } finally {
    clearTimeout(timer);
  }
  // Workers the master could not stop in time must not outlive it.
  killGroup(child, 'SIGKILL');
}

export interface FleetSettings {
  replicas: number;
  heartbeatIntervalMs: number;
  /** Replica `index`'s environment (1-based, as the stack names them): REDIS_URL and whatever else it needs. */
  replicaEnv: (index: number) => Record<string, string>;
}

export class ReplicaFleet {
  /** The replica processes, replica-blue-1 first; restartReplica() replaces one. */
  readonly replicas: ReplicaProcess[] = [];

  private constructor(
    private readonly settings: FleetSettings,
    private readonly runDir: string,
    private readonly stackPort: number,
    private readonly replicaPortBase: number,
    private nginx: ChildProcess | undefined,
  ) {}

  /** Starts the replicas, waits until each is ready, then Nginx in front of them. */
  static async start(settings: FleetSettings): Promise<ReplicaFleet> {
    const runDir = mkdtempSync(path.join(os.tmpdir(), 'wschat-fleet-'));
    const [stackPort, statusPort] = (await freePorts(2)) as [number, number];
    const fleet = new ReplicaFleet(settings, runDir, stackPort, await freePortBlock(settings.replicas), undefined);
    try {
      for (let index = 1; index <= settings.replicas; index += 1) fleet.replicas.push(fleet.spawnReplica(index));
      await Promise.all(fleet.replicas.map((replica) => replica.waitReady(10_000)));
      await fleet.startNginx(statusPort);
    } catch (error) {
      await fleet.destroy();
      throw error;
    }
    return fleet;
  }

  /** Nginx's public side: ws:// of /ws/chat/ and the socket.io base URL. */
  get wsUrl(): string {
    return `ws://127.0.0.1:${this.stackPort}/ws/chat/`;
  }

  get httpUrl(): string {
    return `http://127.0.0.1:${this.stackPort}`;
  }

  replicaPort(index: number): number {
    return this.replicaPortBase + index;
  }

  replica(index: number): ReplicaProcess {
    return this.replicas[index - 1]!;
  }

  /** SIGKILLs replica `index` and waits for its exit. */
  async killReplica(index: number): Promise<void> {
    const replica = this.replica(index);
    replica.signal('SIGKILL');
    await replica.exited;
  }

  /** Starts replica `index` again (after killReplica), on its port, and waits until it is ready. */
  async restartReplica(index: number): Promise<ReplicaProcess> {
    const replica = this.spawnReplica(index);
    this.replicas[index - 1] = replica;
    await replica.waitReady(10_000);
    return replica;
  }

  async destroy(): Promise<void> {
    if (this.nginx !== undefined) {
      await stopNginx(this.nginx);
      nginxes.delete(this.nginx);
      this.nginx = undefined;
    }
    await Promise.all(this.replicas.map((replica) => replica.stop(5000)));
    rmSync(this.runDir, { recursive: true, force: true });
  }

  private spawnReplica(index: number): ReplicaProcess {
    return ReplicaProcess.spawn(
      {
        APP_VERSION: 'blue',
        REPLICA_ID: `replica-blue-${index}`,
        HEARTBEAT_INTERVAL_MS: String(this.settings.heartbeatIntervalMs),
        ...this.settings.replicaEnv(index),
      },
      this.replicaPort(index),
    );
  }

  /** Renders nginx.conf as dev-up does (blue live, this fleet as blue's upstream) and runs Nginx in the foreground. */
  private async startNginx(statusPort: number): Promise<void> {
    const env = {
      ...process.env,
      RUN_DIR: this.runDir,
      STACK_PORT: String(this.stackPort),
      NGINX_STATUS_PORT: String(statusPort),
      REPLICAS: String(this.settings.replicas),
      BLUE_PORT_BASE: String(this.replicaPortBase),
      // Green is rendered too, never made live.
      GREEN_PORT_BASE: String(this.replicaPortBase + this.settings.replicas),
      HEARTBEAT_INTERVAL_MS: String(this.settings.heartbeatIntervalMs),
    };
    const render = spawn('bash', ['-c', 'set -euo pipefail; source tools/stack/stack-lib.sh; load_stack_settings; render_nginx'], {
      cwd: repoRoot,
      env,
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    render.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    const code = await new Promise<number | null>((resolve) => render.on('exit', resolve));
    if (code !== 0) throw new Error(`render_nginx exited with ${code}: ${stderr}`);
    const prefix = path.join(this.runDir, 'nginx');
    const nginx = spawn('nginx', ['-p', `${prefix}/`, '-c', path.join(prefix, 'conf', 'nginx.conf')], {
      env: { ...process.env, PATH: `${process.env.PATH ?? ''}:/usr/sbin:/sbin` },
      stdio: 'ignore',
      detached: true,
    });
    this.nginx = nginx;
    nginxes.add(nginx);
    nginx.once('exit', () => nginxes.delete(nginx));
    await eventually(
      async () => {
        if (nginx.exitCode !== null) throw new Error(`nginx exited with ${nginx.exitCode} (see ${this.runDir}/logs/nginx-error.log)`);
        try {
          return (await fetch(`${this.httpUrl}/readyz`, { headers: { connection: 'close' } })).status === 200;
        } catch {
          return false;
        }
      },
      'nginx answering /readyz',
      5000,
      25,
    );
  }
}
