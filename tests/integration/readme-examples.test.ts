/**
 * The client examples of docs/client.md (the README's front door sends readers there),
 * run as written against a real replica (its own Redis on a free port): the address in
 * each is replaced by the replica's, nothing else.
 * wscat runs in a pseudo-terminal (util-linux `script`), the way a person types the
 * transcript; the scripted wscat line, the Python script (Debian's python3-websockets)
 * and the Node client library example run as they are.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { eventually, RedisServer, ReplicaProcess } from '../../tools/harness/processes.js';
import { repoRoot } from '../../tools/harness/repo-root.js';

const DOC = 'docs/client.md';
const doc = readFileSync(path.join(repoRoot, DOC), 'utf8');
const DOC_URL = 'ws://127.0.0.1:8000/ws/chat/';
/** Debian's interpreter, the one python3-websockets installs for. */
const PYTHON = '/usr/bin/python3';

function section(title: string): string {
  const start = doc.indexOf(`\n## ${title}\n`);
  assert.ok(start >= 0, `${DOC} section "${title}"`);
  const end = doc.indexOf('\n## ', start + 1);
  return doc.slice(start, end === -1 ? undefined : end);
}

/** The fenced blocks of `text` in `language`, in order. */
function blocks(text: string, language: string): string[] {
  return [...text.matchAll(new RegExp(`^\`\`\`${language}\\n([\\s\\S]*?)^\`\`\``, 'gm'))].map((match) => match[1]!);
}

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `command` through bash in the repository, stdin left open (wscat quits at its end), killed after `timeoutMs`. */
function run(command: string, args: string[], timeoutMs = 20_000): Promise<Run> {
  const child = spawn(command, args, { cwd: repoRoot, stdio: ['pipe', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  return new Promise((resolve) => {
    child.on('exit', (code) => {
      clearTimeout(timer);
      child.stdin.destroy();
      resolve({ code, stdout, stderr });
    });
  });
}

// eslint-disable-next-line no-control-regex
const ANSI = /\u001b\[[0-9;]*[A-Za-z]/g;

describe('client examples (docs/client.md), run as written', function () {
  this.timeout(60_000);
  let redis: RedisServer;
  let replica: ReplicaProcess;
  let temp: string;
  const clients = section('Other clients');

  before(async () => {
    redis = await RedisServer.start();
    replica = await ReplicaProcess.start(redis);
    temp = mkdtempSync(path.join(os.tmpdir(), 'wschat-doc-examples-'));
  });

  after(async () => {
    await replica?.stop();
    await redis?.destroy();
    if (temp !== undefined) rmSync(temp, { recursive: true, force: true });
  });

  const here = (text: string): string => text.replaceAll(DOC_URL, replica.wsUrl);

  it('the wscat transcript, typed into wscat in a terminal', async () => {
    const [transcript] = blocks(clients, 'bash');
    const lines = transcript!.trim().split('\n');
    const [command] = lines;
    assert.match(command!, /^npx wscat -c /);
    const typed = lines.filter((line) => line.startsWith('> ')).map((line) => line.slice(2));
    const shown = lines.filter((line) => line.startsWith('< ')).map((line) => line.slice(2));
    assert.ok(typed.length >= 1 && shown.length === typed.length, transcript);

    const child = spawn('script', ['-qfec', here(command!), '/dev/null'], { cwd: repoRoot, stdio: ['pipe', 'pipe', 'pipe'] });
    let screen = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (screen += chunk.replace(ANSI, '')));
    const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
    try {
      await eventually(() => screen.includes('Connected'), `wscat to connect:\n${screen}`, 15_000);
      for (const [index, line] of typed.entries()) {
        child.stdin.write(`${line}\r`);
        await eventually(() => screen.includes(`< ${shown[index]}`), `"< ${shown[index]}" after typing "${line}":\n${screen}`);
      }
      child.stdin.write('\u0004'); // Ctrl-D: wscat closes and exits
      assert.equal(await exited, 0, screen);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  });

  it('the scripted wscat line prints one count per message', async () => {
    const [, scripted] = blocks(clients, 'bash');
    const command = scripted!.trim();
    assert.match(command, /^npx wscat -c \S+ -x hello -x close -w 1$/);
    const result = await run('bash', ['-c', here(command)]);
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stdout, '{"count":1}\n{"count":2}\n');
  });

  it('the Python script, with python3-websockets', async () => {
    const [script] = blocks(clients, 'python');
    assert.match(script!, /asyncio\.run\(main\(\)\)/);
    const file = path.join(temp, 'count.py');
    writeFileSync(file, here(script!));
    const result = await run(PYTHON, [file]);
    assert.equal(result.code, 0, `${result.stderr}\n(${PYTHON} needs Debian's python3-websockets: make test-deps)`);
    assert.equal(result.stdout, 'hello -> 1\nagain -> 2\n');
    assert.match(clients, /It prints `hello -> 1` and `again -> 2`\./);
  });

  it("the client library's Node example", async () => {
    const [example] = blocks(section('Client library'), 'js');
    assert.match(example!, /from '\.\/dist\/shared\/client\/chat-client\.js'/);
    // In the repository's root, where its relative import points (dist/ is what mocha runs from).
    const file = path.join(repoRoot, `.doc-example-${process.pid}.mjs`);
    writeFileSync(file, here(example!));
    try {
      const result = await run('node', [file]);
      assert.equal(result.code, 0, result.stderr);
      assert.match(result.stdout, /^1 session [0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}\n/);
    } finally {
      rmSync(file, { force: true });
    }
  });
});
