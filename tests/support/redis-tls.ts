/**
 * Redis over TLS for the tests, from Debian's redis-server: a throwaway CA and a
 * server certificate for 127.0.0.1 made with openssl, a primary that serves TLS
 * only (no plaintext port), and a sentinel that serves TLS only and reaches the
 * primary over TLS. Every process is tracked and killed by destroy(), the
 * certificates removed with the folder.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import { answersPing, eventually, freePorts, killAll } from '../../tools/harness/processes.js';

export const TLS_MASTER_NAME = 'wschat-tls-primary';

export class RedisTlsSet {
  private readonly children: ChildProcess[] = [];

  private constructor(
    readonly dir: string,
    readonly primaryPort: number,
    readonly sentinelPort: number,
  ) {}

  /** The CA's certificate: NODE_EXTRA_CA_CERTS for the replicas. */
  get caFile(): string {
    return path.join(this.dir, 'ca.crt');
  }

  get sentinelList(): string {
    return `127.0.0.1:${this.sentinelPort}`;
  }

  static async start(): Promise<RedisTlsSet> {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'wschat-redis-tls-'));
    const [primaryPort, sentinelPort] = (await freePorts(2)) as [number, number];
    const set = new RedisTlsSet(dir, primaryPort, sentinelPort);
    try {
      set.makeCertificates();
      set.spawn('primary', [...set.tlsArgs(), '--port', '0', '--tls-port', String(set.primaryPort), '--dir', dir]);
      // A sentinel rewrites its config file, so it gets one of its own.
      const config = path.join(dir, 'sentinel.conf');
      writeFileSync(
        config,
        [
          'port 0',
          `tls-port ${set.sentinelPort}`,
          `tls-cert-file ${path.join(dir, 'server.crt')}`,
          `tls-key-file ${path.join(dir, 'server.key')}`,
          `tls-ca-cert-file ${set.caFile}`,
          'tls-auth-clients no',
          // The sentinel reaches the primary over TLS too (it has no plaintext port).
          'tls-replication yes',
          `sentinel monitor ${TLS_MASTER_NAME} 127.0.0.1 ${set.primaryPort} 1`,
          '',
        ].join('\n'),
      );
      set.spawn('sentinel', [config, '--sentinel']);
      await eventually(() => set.answers(set.primaryPort), 'the TLS primary', 5000, 50);
      await eventually(() => set.answers(set.sentinelPort), 'the TLS sentinel', 5000, 50);
    } catch (error) {
      await set.destroy();
      throw error;
    }
    return set;
  }

  /** A client that trusts the throwaway CA. Disconnect it when done. */
  client(): Redis {
    return new Redis({ host: '127.0.0.1', port: this.primaryPort, tls: { ca: readFileSync(this.caFile) }, maxRetriesPerRequest: 1 });
  }

  async destroy(): Promise<void> {
    await killAll(this.children);
    rmSync(this.dir, { recursive: true, force: true });
  }

  private tlsArgs(): string[] {
    return [
      '--tls-cert-file', path.join(this.dir, 'server.crt'),
      '--tls-key-file', path.join(this.dir, 'server.key'),
      '--tls-ca-cert-file', this.caFile,
      '--tls-auth-clients', 'no',
      '--bind', '127.0.0.1',
      '--save', '',
      '--loglevel', 'warning',
    ];
  }

  /** A CA valid for a day, and a certificate it signed for 127.0.0.1 (an IP SAN: the sentinel names the primary by address). */
  private makeCertificates(): void {
    const file = (name: string): string => path.join(this.dir, name);
    const openssl = (...args: string[]): void => void execFileSync('openssl', args, { stdio: 'ignore' });
    openssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=wschat test CA', '-keyout', file('ca.key'), '-out', this.caFile);
    openssl('req', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=127.0.0.1', '-keyout', file('server.key'), '-out', file('server.csr'));
    writeFileSync(file('san.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\n');
    openssl('x509', '-req', '-days', '1', '-in', file('server.csr'), '-CA', this.caFile, '-CAkey', file('ca.key'), '-CAcreateserial', '-extfile', file('san.ext'), '-out', file('server.crt'));
  }

  private spawn(name: string, args: string[]): void {
    const child = spawn('redis-server', args, { stdio: ['ignore', 'ignore', 'pipe'] });
    child.stderr?.on('data', (chunk: Buffer) => process.stderr.write(`[redis-tls ${name}] ${chunk.toString()}`));
    this.children.push(child);
  }

  private answers(port: number): Promise<boolean> {
    return answersPing({ host: '127.0.0.1', port, tls: { ca: readFileSync(this.caFile) } });
  }
}
