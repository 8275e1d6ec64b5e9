/**
 * The docs a newcomer reads (README.md, DESIGN.md, docs/*.md) must stay true to the
 * code: every variable services/gateway/config.ts reads is documented (and nothing else
 * is) in docs/operations.md, so is every stack setting, every close the server starts
 * (docs/protocol.md's close-code table is CLOSE), every make target and npm script they
 * name exists, and every link points at a file and heading that exist. The README and
 * the docs by reader state what is: no dates, issue numbers or work-session narration.
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { repoRoot } from '../../tools/harness/repo-root.js';
import { CLOSE } from '../../shared/protocol/closes.js';

const read = (file: string): string => readFileSync(path.join(repoRoot, file), 'utf8');
const operations = read('docs/operations.md');
const protocol = read('docs/protocol.md');
/** Every Markdown doc a reader is sent to: the README, DESIGN.md and docs/. */
const docs = ['README.md', 'DESIGN.md', ...readdirSync(path.join(repoRoot, 'docs')).filter((name) => name.endsWith('.md')).map((name) => `docs/${name}`)];
/**
 * The docs that state only what is. docs/benchmarks.md records measurements, each with
 * when it was taken, and DESIGN.md is kept apart with it.
 */
const statingDocs = docs.filter((doc) => doc !== 'DESIGN.md' && doc !== 'docs/benchmarks.md');

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

/** The anchors of a Markdown file's headings (fenced code left out: a `# comment` is no heading). */
function anchors(markdown: string): Set<string> {
  const prose = markdown.replace(/^```[^\n]*\n[\s\S]*?^```/gm, '');
  return new Set([...prose.matchAll(/^#{1,6} (.+)$/gm)].map((match) => slug(match[1]!)));
}

/** Every line of a fenced code block and every inline code span: where commands are written. */
function commands(markdown: string): string[] {
  const fenced = [...markdown.matchAll(/^```[^\n]*\n([\s\S]*?)^```/gm)].flatMap((match) => match[1]!.split('\n'));
  const prose = markdown.replace(/^```[^\n]*\n[\s\S]*?^```/gm, '');
  // A span may be wrapped over lines: its command is the span with the line break as a space.
  const inline = [...prose.matchAll(/`([^`]+)`/g)].map((match) => match[1]!.replace(/\s*\n\s*/g, ' '));
  return [...fenced, ...inline].map((line) => line.trim());
}

describe('docs', () => {
  it('docs/operations.md lists every variable services/gateway/config.ts reads, and no other', () => {
    const config = read('services/gateway/config.ts');
    const variables = new Set([...config.matchAll(/(?:read\(|\(read, )'([A-Z][A-Z0-9_]*)'/g)].map((match) => match[1]!));
    assert.ok(variables.size >= 15, `variables found in config.ts: ${[...variables].join(', ')}`);
    const table = section(operations, 'Configuration');
    const rows = [...table.matchAll(/^\| `([A-Z][A-Z0-9_]*)` \|/gm)].map((match) => match[1]!);
    const documented = new Set(rows);
    assert.deepEqual(rows.filter((name, index) => rows.indexOf(name) !== index), [], 'documented twice');
    assert.deepEqual([...variables].filter((name) => !documented.has(name)), [], 'read by config.ts, missing from docs/operations.md');
    assert.deepEqual([...documented].filter((name) => !variables.has(name)), [], 'in docs/operations.md, not read by config.ts');
  });

  it("docs/protocol.md's close-code table is shared/protocol/closes.ts's CLOSE: each code and reason once, its bye and reconnect columns", () => {
    const table = section(protocol, 'Close codes');
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

  it("docs/operations.md's stack settings table lists every setting tools/stack/stack-lib.sh reads, and no other", () => {
    const stackLib = read('tools/stack/stack-lib.sh');
    const loader = stackLib.slice(stackLib.indexOf('load_stack_settings() {'), stackLib.indexOf('\n}\n', stackLib.indexOf('load_stack_settings() {')));
    const settings = [...loader.matchAll(/^ +([A-Z][A-Z0-9_]*)=\$\{\1:-([^}]*)\}$/gm)].map((match) => ({ name: match[1]!, fallback: match[2]! }));
    assert.ok(settings.length >= 10, `settings found in load_stack_settings: ${settings.map(({ name }) => name).join(', ')}`);
    const table = section(operations, 'Stack settings');
    const rows = [...table.matchAll(/^\| (`[A-Z][A-Z0-9_]*`(?:, `[A-Z][A-Z0-9_]*`)*) \| ([^|]+) \|/gm)];
    const documented = new Map<string, string>();
    for (const [, names, defaults] of rows) {
      const nameList = [...names!.matchAll(/`([A-Z][A-Z0-9_]*)`/g)].map((match) => match[1]!);
      const defaultList = [...defaults!.matchAll(/`([^`]*)`/g)].map((match) => match[1]!);
      assert.equal(defaultList.length, nameList.length, `one default per name: ${names}`);
      nameList.forEach((name, index) => documented.set(name, defaultList[index]!));
    }
    for (const { name, fallback } of settings) assert.equal(documented.get(name), fallback, `${name}: docs/operations.md's default vs load_stack_settings`);
    assert.deepEqual([...documented.keys()].filter((name) => !settings.some((setting) => setting.name === name)), [], 'in docs/operations.md, not read by stack-lib.sh');
    // Saved for the commands that follow: every setting is written to stack.env.
    for (const { name } of settings) assert.match(stackLib, new RegExp(`^${name}=\\$${name}$`, 'm'), `${name} saved in stack.env`);
  });

  it('names only make targets and npm scripts that exist', () => {
    const makefile = read('Makefile');
    const scripts = Object.keys((JSON.parse(read('package.json')) as { scripts: Record<string, string> }).scripts);
    for (const doc of docs) {
      for (const command of commands(read(doc))) {
        const target = /^make ([a-z][\w-]*)/.exec(command)?.[1];
        if (target !== undefined) assert.match(makefile, new RegExp(`^${target}:`, 'm'), `${doc}: ${command}`);
        const script = /^npm run ([\w:-]+)/.exec(command)?.[1];
        if (script !== undefined) assert.ok(scripts.includes(script), `${doc}: ${command}`);
      }
    }
  });

  it('links only to files that exist and to headings that exist, in the same doc or another', () => {
    for (const doc of docs) {
      for (const [, target] of read(doc).matchAll(/\]\(([^)\s]+)\)/g)) {
        if (/^[a-z]+:/.test(target!)) continue;
        const [file, anchor] = target!.split('#') as [string, string | undefined];
        // A link is relative to the doc's folder; `#anchor` alone is the doc itself.
        const linked = file === '' ? doc : path.posix.join(path.posix.dirname(doc), file);
        assert.ok(existsSync(path.join(repoRoot, linked)), `${doc}: link to ${target}`);
        if (anchor !== undefined) {
          assert.ok(linked.endsWith('.md'), `${doc}: link to ${target}: an anchor into a file that is not Markdown`);
          assert.ok(anchors(read(linked)).has(anchor), `${doc}: link to ${target}: no such heading in ${linked}`);
        }
      }
    }
  });

  it('README and docs/ state what is: no dates, issue numbers or work-session narration', () => {
    const narration = [
      { name: 'a date', pattern: /\b20\d\d-\d\d-\d\d\b/ },
      { name: 'an issue number', pattern: /\bissues? #?\d+/i },
      { name: 'a work session', pattern: /\b(?:this|that|the last|previous|other|another) (?:work )?sessions?\b(?!['’]s? (?:id|count))/i },
      { name: 'a change told as history', pattern: /\b(?:we (?:changed|added|removed|fixed)|previously|used to be|no longer)\b/i },
    ];
    const found: string[] = [];
    for (const doc of statingDocs) {
      // Link targets are other files' anchors: their text is checked where it is written.
      const text = read(doc).replace(/\]\([^)\s]+\)/g, ']()');
      text.split('\n').forEach((line, index) => {
        for (const { name, pattern } of narration) if (pattern.test(line)) found.push(`${doc}:${index + 1}: ${name}: ${line.trim().slice(0, 120)}`);
      });
    }
    assert.deepEqual(found, []);
  });
});
