/**
 * Static checks of the Docker and Compose files. No container engine runs on the
 * machines that build this project, so this is how far they can be checked here:
 * the Compose file renders, everything the files reference exists, and the values
 * that must agree with each other do.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { parse } from 'yaml';
import { repoRoot } from '../tools/harness/repo-root.js';

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

  it('renders with docker-compose config', async () => {
    // A renderer is one that answers `version`: a docker CLI without the compose plugin
    // takes `compose` for an unknown command. make test-deps installs docker-compose when none does.
    const candidates: Array<[string, string[]]> = [
      ['docker', ['compose']],
      ['docker-compose', []],
    ];
    const tried: string[] = [];
    for (const [command, prefix] of candidates) {
      const answers = await run(command, [...prefix, 'version']).then(
        () => true,
        (error: Error) => (tried.push(`${[command, ...prefix].join(' ')} version: ${error.message.split('\n')[0]}`), false),
      );
      if (!answers) continue;
      const { stdout } = await run(command, [...prefix, '-f', 'deploy/compose.yml', '--profile', 'green', 'config'], { cwd: repoRoot });
      for (const service of ['redis', 'app_blue', 'app_green', 'nginx']) assert.match(stdout, new RegExp(`^  ${service}:`, 'm'));
      return;
    }
    assert.fail(`no Compose renderer (docker compose or docker-compose; make test-deps installs docker-compose):\n  ${tried.join('\n  ')}`);
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
