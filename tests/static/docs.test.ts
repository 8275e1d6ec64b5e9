/**
 * The README and DESIGN.md a newcomer reads must stay true to the code: every
 * variable services/gateway/config.ts reads is documented (and nothing else is), so is
 * every close the server starts (README's close-code table is CLOSE), every make
 * target and npm script they name exists, and every link points at something.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { repoRoot } from '../../tools/harness/repo-root.js';
import { CLOSE } from '../../shared/protocol/closes.js';

const read = (file: string): string => readFileSync(path.join(repoRoot, file), 'utf8');
const readme = read('README.md');

/** The text of one `## ` section of `markdown`, heading excluded. */
function section(markdown: string, title: string): string {
  const start = markdown.indexOf(`\n## ${title}\n`);
  assert.ok(start >= 0, `section "${title}"`);
  const end = markdown.indexOf('\n## ', start + 1);
  return markdown.slice(start, end === -1 ? undefined : end);
}

/** GitHub's anchor for a heading: lowercase, punctuation dropped, spaces to hyphens. */
function slug(heading: string): string {
  return heading
    .toLowerCase()
    .replace(/[^\p{L}\p{N}\s_-]/gu, '')
    .replace(/\s/g, '-');
}

/** Every line of a fenced code block and every inline code span: where commands are written. */
function commands(markdown: string): string[] {
  const fenced = [...markdown.matchAll(/^```[^\n]*\n([\s\S]*?)^```/gm)].flatMap((match) => match[1]!.split('\n'));
  const prose = markdown.replace(/^```[^\n]*\n[\s\S]*?^```/gm, '');
  const inline = [...prose.matchAll(/`([^`\n]+)`/g)].map((match) => match[1]!);
  return [...fenced, ...inline].map((line) => line.trim());
}

describe('docs', () => {
  it('README lists every variable services/gateway/config.ts reads, and no other', () => {
    const config = read('services/gateway/config.ts');
    const variables = new Set([...config.matchAll(/(?:read\(|\(read, )'([A-Z][A-Z0-9_]*)'/g)].map((match) => match[1]!));
    assert.ok(variables.size >= 15, `variables found in config.ts: ${[...variables].join(', ')}`);
    const table = section(readme, 'Configuration');
    const rows = [...table.matchAll(/^\| `([A-Z][A-Z0-9_]*)` \|/gm)].map((match) => match[1]!);
    const documented = new Set(rows);
    assert.deepEqual(rows.filter((name, index) => rows.indexOf(name) !== index), [], 'documented twice');
    assert.deepEqual([...variables].filter((name) => !documented.has(name)), [], 'read by config.ts, missing from the README');
    assert.deepEqual([...documented].filter((name) => !variables.has(name)), [], 'in the README, not read by config.ts');
  });

  it("README's close-code table is shared/protocol/closes.ts's CLOSE: each code and reason once, its bye and reconnect columns", () => {
    const start = readme.indexOf('\n### Close codes\n');
    assert.ok(start >= 0, 'section "Close codes"');
    const table = readme.slice(start, readme.indexOf('\n### ', start + 1));
    const rows = [...table.matchAll(/^\| (\d{4}) \| `([^`]+)` \| [^|]+ \| ([^|]+) \| ([^|]+) \|$/gm)].map(([, code, reason, bye, reconnect]) => ({
      code: Number(code),
      reason: reason!,
      failed: bye!.trim() === '**no: failed**',
      reconnect: reconnect!.trim().startsWith('yes'),
    }));
    const closes = Object.values(CLOSE).map(({ code, reason, ending, reconnect }) => ({ code, reason, failed: ending === 'fail', reconnect }));
    const byCode = (a: { code: number }, b: { code: number }): number => a.code - b.code;
    assert.deepEqual(rows.sort(byCode), closes.sort(byCode));
  });

  it("README's stack settings table lists every setting tools/stack/stack-lib.sh reads, and no other", () => {
    const stackLib = read('tools/stack/stack-lib.sh');
    const loader = stackLib.slice(stackLib.indexOf('load_stack_settings() {'), stackLib.indexOf('\n}\n', stackLib.indexOf('load_stack_settings() {')));
    const settings = [...loader.matchAll(/^ +([A-Z][A-Z0-9_]*)=\$\{\1:-([^}]*)\}$/gm)].map((match) => ({ name: match[1]!, fallback: match[2]! }));
    assert.ok(settings.length >= 10, `settings found in load_stack_settings: ${settings.map(({ name }) => name).join(', ')}`);
    const table = section(readme, 'The two commands');
    const rows = [...table.matchAll(/^\| (`[A-Z][A-Z0-9_]*`(?:, `[A-Z][A-Z0-9_]*`)*) \| ([^|]+) \|/gm)];
    const documented = new Map<string, string>();
    for (const [, names, defaults] of rows) {
      const nameList = [...names!.matchAll(/`([A-Z][A-Z0-9_]*)`/g)].map((match) => match[1]!);
      const defaultList = [...defaults!.matchAll(/`([^`]*)`/g)].map((match) => match[1]!);
      assert.equal(defaultList.length, nameList.length, `one default per name: ${names}`);
      nameList.forEach((name, index) => documented.set(name, defaultList[index]!));
    }
    for (const { name, fallback } of settings) assert.equal(documented.get(name), fallback, `${name}: README's default vs load_stack_settings`);
    assert.deepEqual([...documented.keys()].filter((name) => !settings.some((setting) => setting.name === name)), [], 'in the README, not read by stack-lib.sh');
    // Saved for the commands that follow: every setting is written to stack.env.
    for (const { name } of settings) assert.match(stackLib, new RegExp(`^${name}=\\$${name}$`, 'm'), `${name} saved in stack.env`);
  });

  it('names only make targets and npm scripts that exist', () => {
    const makefile = read('Makefile');
    const scripts = Object.keys((JSON.parse(read('package.json')) as { scripts: Record<string, string> }).scripts);
    for (const doc of ['README.md', 'DESIGN.md']) {
      for (const command of commands(read(doc))) {
        const target = /^make ([a-z][\w-]*)/.exec(command)?.[1];
        if (target !== undefined) assert.match(makefile, new RegExp(`^${target}:`, 'm'), `${doc}: ${command}`);
        const script = /^npm run ([\w:-]+)/.exec(command)?.[1];
        if (script !== undefined) assert.ok(scripts.includes(script), `${doc}: ${command}`);
      }
    }
  });

  it('links only to files that exist and to headings that exist', () => {
    for (const doc of ['README.md', 'DESIGN.md']) {
      const text = read(doc);
      const anchors = new Set([...text.matchAll(/^#{1,6} (.+)$/gm)].map((match) => slug(match[1]!)));
      for (const [, target] of text.matchAll(/\]\(([^)\s]+)\)/g)) {
        if (/^[a-z]+:/.test(target!)) continue;
        if (target!.startsWith('#')) assert.ok(anchors.has(target!.slice(1)), `${doc}: link to ${target}`);
        else assert.ok(existsSync(path.join(repoRoot, target!.split('#')[0]!)), `${doc}: link to ${target}`);
      }
    }
  });
});
