/**
 * Static checks of the Docker and Compose files. No container engine runs on the
 * machines that build this project, so this is how far they can be checked here:
 * the Compose file renders, everything the files reference exists, and the values
 * that must agree with each other do.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { parse } from 'yaml';
import { repoRoot } from '../../tools/harness/repo-root.js';

const read = (file: string): string => readFileSync(path.join(repoRoot, file), 'utf8');
const run = promisify(execFile);

/** KEY=value lines of an env file. */
function envFile(file: string): Map<string, string> {
  const entries = read(file)
    .split('\n')
    .filter((line) => /^[A-Z_][A-Z0-9_]*=/.test(line))
    .map((line) => [line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1)] as [string, string]);
  return new Map(entries);
}

function seconds(duration: string): number {
  const match = /^(\d+)s$/.exec(duration);
  assert.ok(match, `not a duration in seconds: ${duration}`);
  return Number(match[1]);
}

describe('deploy files', () => {
  const compose = read('deploy/compose.yml');

  /**
   * `config` of every profile by the first Compose renderer that answers `version` (a
   * docker CLI without the compose plugin takes `compose` for an unknown command), with
   * ENV over the process's. None answering fails naming both: make test-deps installs
   * docker-compose when neither works.
   */
  async function renderCompose(args: string[], env: Record<string, string>): Promise<{ code: number; stdout: string; stderr: string }> {
    const candidates: Array<[string, string[]]> = [
      ['docker', ['compose']],
      ['docker-compose', []],
    ];
    const profiles = ['green', 'observability', 'grafana'].flatMap((profile) => ['--profile', profile]);
    const tried: string[] = [];
    for (const [command, prefix] of candidates) {
      const answers = await run(command, [...prefix, 'version']).then(
        () => true,
        (error: Error) => (tried.push(`${[command, ...prefix].join(' ')} version: ${error.message.split('\n')[0]}`), false),
      );
      if (!answers) continue;
      try {
        const { stdout, stderr } = await run(command, [...prefix, '-f', 'deploy/compose.yml', ...args, ...profiles, 'config'], {
          cwd: repoRoot,
          env: { ...process.env, ...env },
        });
        return { code: 0, stdout, stderr };
      } catch (error) {
        const failure = error as NodeJS.ErrnoException & { code: unknown; stdout?: string; stderr?: string };
        if (typeof failure.code === 'number') return { code: failure.code, stdout: failure.stdout ?? '', stderr: failure.stderr ?? '' };
        throw error;
      }
    }
    assert.fail(`no Compose renderer (docker compose or docker-compose; make test-deps installs docker-compose):\n  ${tried.join('\n  ')}`);
  }

  /** Stand-ins for deploy/.env's secrets (tools/compose/compose-secrets.sh), so the file renders on a fresh clone. */
  const secrets = { WSCHAT_REDIS_PASSWORD: 'p'.repeat(64), WSCHAT_SESSION_KEY_SECRET: 's'.repeat(64) };

  interface RenderedService {
    cap_drop?: string[];
    cap_add?: string[];
    security_opt?: string[];
    read_only?: boolean;
    mem_limit?: string | number;
    pids_limit?: number;
    environment?: Record<string, string>;
    entrypoint?: string[];
    command?: string[];
    healthcheck?: { test?: string[] };
  }

  it('renders with docker-compose config', async () => {
    const rendered = await renderCompose([], secrets);
    assert.equal(rendered.code, 0, rendered.stderr);
    for (const service of ['redis', 'app_blue', 'app_green', 'nginx', 'prometheus', 'grafana']) {
      assert.match(rendered.stdout, new RegExp(`^  ${service}:`, 'm'));
    }
  });

  it('renders every service without capabilities, new privileges or a writable root, and with memory and process limits', async () => {
    const rendered = await renderCompose([], secrets);
    assert.equal(rendered.code, 0, rendered.stderr);
    const services = (parse(rendered.stdout) as { services: Record<string, RenderedService> }).services;
    assert.deepEqual(Object.keys(services).sort(), ['app_blue', 'app_green', 'grafana', 'nginx', 'prometheus', 'redis']);
    for (const [name, service] of Object.entries(services)) {
      assert.deepEqual(service.cap_drop, ['ALL'], `${name}: cap_drop`);
      assert.ok(service.security_opt?.includes('no-new-privileges:true'), `${name}: no-new-privileges`);
      assert.equal(service.read_only, true, `${name}: read_only`);
      assert.ok(service.mem_limit !== undefined && service.mem_limit !== 0, `${name}: mem_limit`);
      assert.ok(typeof service.pids_limit === 'number' && service.pids_limit > 0, `${name}: pids_limit`);
      assert.deepEqual(service.cap_add ?? [], name === 'nginx' ? ['CHOWN', 'SETGID', 'SETUID'] : [], `${name}: cap_add`);
    }
  });

  it('gives the replicas the Redis user and session-key secret of deploy/.env, and Redis no open door', async () => {
    const rendered = await renderCompose([], secrets);
    const services = (parse(rendered.stdout) as { services: Record<string, RenderedService> }).services;
    for (const colour of ['app_blue', 'app_green']) {
      assert.equal(services[colour]?.environment?.REDIS_URL, `redis://wschat:${secrets.WSCHAT_REDIS_PASSWORD}@redis:6379`);
      assert.equal(services[colour]?.environment?.SESSION_KEY_SECRET, secrets.WSCHAT_SESSION_KEY_SECRET);
    }
    const redis = services.redis!;
    assert.equal(redis.environment?.REDIS_PASSWORD, secrets.WSCHAT_REDIS_PASSWORD);
    assert.deepEqual(redis.entrypoint, ['/bin/sh', '/usr/local/etc/redis/compose-start.sh']);
    assert.doesNotMatch(rendered.stdout, /protected-mode/);
    assert.match(redis.healthcheck?.test?.join(' ') ?? '', /--user wschat/);
    const start = read('redis/compose-start.sh');
    assert.match(start, /user default off/);
    assert.doesNotMatch(start, /nopass/);
  });

  it('stops without deploy/.env with one message naming it and the script that creates it', async function () {
    const empty = path.join(mkdtempSync(path.join(os.tmpdir(), 'compose-env-')), 'empty.env');
    writeFileSync(empty, '');
    // An empty env file in place of deploy/.env, and no secret in the environment.
    const rendered = await renderCompose(['--env-file', empty], { WSCHAT_REDIS_PASSWORD: '', WSCHAT_SESSION_KEY_SECRET: '' });
    assert.notEqual(rendered.code, 0, rendered.stdout);
    assert.match(rendered.stderr, /deploy\/\.env is missing: create it with tools\/compose\/compose-secrets\.sh/, rendered.stderr);
  });

  it('keeps deploy/.env out of git', () => {
    assert.ok(read('.gitignore').split('\n').includes('deploy/.env'));
  });

  it('names one Node LTS major everywhere, and the engines floor once', () => {
    const nodeEnv = envFile('tools/stack/node.env');
    const version = nodeEnv.get('NODE_VERSION')!;
    const major = version.split('.')[0]!;
    const local = envFile('deploy/images/local.env');
    assert.equal(local.get('LOCAL_NODE_VERSION'), version, 'the local base image carries the Node that .tools/node installs');
    assert.equal(local.get('LOCAL_NPM_VERSION'), nodeEnv.get('NPM_VERSION'), 'and the same npm');
    assert.equal(local.get('NODE_IMAGE'), `localhost/wschat-local/node:${major}`);
    assert.match(read('deploy/Dockerfile'), new RegExp(`^ARG NODE_IMAGE=node:${major}-bookworm-slim$`, 'm'));
    assert.match(compose, new RegExp(`NODE_IMAGE:-node:${major}-bookworm-slim`));
    const pkg = JSON.parse(read('package.json')) as { engines: { node: string }; devDependencies: Record<string, string> };
    assert.equal(pkg.engines.node, `>=${nodeEnv.get('NODE_MIN_MAJOR')}`);
    assert.match(pkg.devDependencies['@types/node']!, new RegExp(`^\\^${major}\\.`), '@types/node of the same major');
  });

  it('references only files that exist', () => {
    const composeDir = path.join(repoRoot, 'deploy');
    const mounts = [...compose.matchAll(/^\s+- (\.\.\/[^:\s]+):/gm)].map((match) => match[1]!);
    const envFiles = [...compose.matchAll(/env_file: \[([^\]]+)\]/g)].flatMap((match) => match[1]!.split(',').map((file) => file.trim()));
    assert.ok(mounts.length >= 4 && envFiles.length >= 3);
    for (const file of [...mounts, ...envFiles]) {
      assert.ok(existsSync(path.resolve(composeDir, file)), `deploy/compose.yml references ${file}`);
    }
  });

  it('builds the image only from files that exist and are not ignored', () => {
    const dockerfile = read('deploy/Dockerfile');
    const ignored = read('.dockerignore')
      .split('\n')
      .filter((line) => line !== '' && !line.startsWith('#'));
    const sources = [...dockerfile.matchAll(/^COPY (?!--from)(.+) \S+$/gm)].flatMap((match) => match[1]!.split(' '));
    assert.ok(sources.includes('package-lock.json'));
    for (const source of sources) {
      assert.ok(existsSync(path.join(repoRoot, source)), `COPY ${source}`);
      assert.ok(!ignored.includes(source), `${source} is in .dockerignore`);
    }
    assert.match(dockerfile, /^USER node$/m, 'runs as a non-root user');
    assert.match(dockerfile, /^HEALTHCHECK [\s\S]*?\/readyz/m, 'healthy means ready');
    assert.match(dockerfile, /^ENTRYPOINT \["node", "dist\/services\/gateway\/main\.js"\]$/m, 'exec form: SIGTERM reaches Node');
  });

  it('defines every placeholder of the Nginx template for the Compose stack', () => {
    const placeholders = new Set([...read('nginx/nginx.conf.template').matchAll(/\$\{([A-Z_]+)\}/g)].map((match) => match[1]!));
    const defined = envFile('deploy/env/nginx.env');
    for (const name of placeholders) assert.ok(defined.has(name), `deploy/env/nginx.env lacks ${name}`);
  });

  it('gives each replica longer to stop than its drain may take', () => {
    const drainMs = Number(envFile('deploy/env/common.env').get('SHUTDOWN_TIMEOUT_MS'));
    // Parsed with YAML merge keys: both colours take theirs from the x-replica anchor.
    const services = (parse(compose, { merge: true }) as { services: Record<string, { stop_grace_period?: string }> }).services;
    const grace = ['app_blue', 'app_green'].map((name) => seconds(services[name]?.stop_grace_period ?? '0s'));
    for (const period of grace) assert.ok(period * 1000 > drainMs, `stop_grace_period ${period}s <= ${drainMs} ms`);
  });
});
