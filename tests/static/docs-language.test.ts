/**
 * Docs state what is, and comments state invariants and reasons (CONTRIBUTING.md): no
 * dates, no issue numbers, no narrative of a work session. Every tracked Markdown file is
 * read whole; every other tracked text file only in its comments, since a date in data
 * (a fixture, a timestamp a test feeds in) is not prose. An ISO timestamp is data and
 * does not match the date rule: the `T` joins its date to its time. "session" is also the
 * protocol's word (a chat session); only the phrases that narrate a work session match.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import ts from 'typescript';
import { repoRoot } from '../../tools/harness/repo-root.js';

/** What may not appear, each with the reason a reader gets. */
const FORBIDDEN: { name: string; pattern: RegExp }[] = [
  { name: 'a date', pattern: /\b20\d\d-\d\d-\d\d\b/g },
  { name: 'an issue number', pattern: /\bissues? #?\d+/gi },
  { name: 'a work session', pattern: /\b(?:this|last|previous|earlier) session\b/gi },
];

/** Files whose comments start with `#` (shell, YAML, Nginx, Redis, env, image recipes). */
const HASH_COMMENTS = /(?:\.(?:sh|ya?ml|conf|template|env|acl|Containerfile)|(?:^|\/)(?:Dockerfile|Makefile|\.gitignore|\.dockerignore)|^\.ci\/run)$/;
/** Files parsed as TypeScript or JavaScript, comments found by the compiler's scanner. */
const SCRIPT = /\.(?:[cm]?ts|[cm]?js)$/;

interface Text {
  /** 1-based line of the text's first character in its file. */
  line: number;
  text: string;
}

/** The 1-based line of an offset of `source`, by binary search over its line starts. */
function lineFinder(source: string): (offset: number) => number {
  const starts = [0];
  for (let index = source.indexOf('\n'); index !== -1; index = source.indexOf('\n', index + 1)) starts.push(index + 1);
  return (offset) => {
    let low = 0;
    let high = starts.length - 1;
    while (low < high) {
      const middle = Math.ceil((low + high) / 2);
      if (starts[middle]! <= offset) low = middle;
      else high = middle - 1;
    }
    return low + 1;
  };
}

/** Every comment of a TypeScript or JavaScript file, once each, as the compiler sees them. */
function scriptComments(file: string, source: string): Text[] {
  const sourceFile = ts.createSourceFile(file, source, ts.ScriptTarget.Latest, true);
  const lineOf = lineFinder(source);
  const seen = new Map<number, Text>();
  const collect = (ranges: ts.CommentRange[] | undefined): void => {
    for (const range of ranges ?? []) {
      if (!seen.has(range.pos)) seen.set(range.pos, { line: lineOf(range.pos), text: source.slice(range.pos, range.end) });
    }
  };
  const visit = (node: ts.Node): void => {
    collect(ts.getLeadingCommentRanges(source, node.pos));
    collect(ts.getTrailingCommentRanges(source, node.end));
    for (const child of node.getChildren(sourceFile)) visit(child);
  };
  visit(sourceFile);
  collect(ts.getLeadingCommentRanges(source, sourceFile.endOfFileToken.pos));
  return [...seen.values()];
}

/** `#` comments: a line that starts with one, or the part of a line after ` #`. */
function hashComments(source: string): Text[] {
  return source.split('\n').flatMap((text, index) => {
    const match = /(?:^\s*|\s)(#.*)$/.exec(text);
    return match ? [{ line: index + 1, text: match[1]! }] : [];
  });
}

/** `<!-- -->` in HTML and SVG, `/* *\/` in CSS. */
function blockComments(source: string, pattern: RegExp): Text[] {
  const lineOf = lineFinder(source);
  return [...source.matchAll(pattern)].map((match) => ({ line: lineOf(match.index), text: match[0] }));
}

const proseOf = new Map<string, Text[] | undefined>();

/** The prose of a tracked file this suite reads, or undefined for a file it does not. */
function prose(file: string): Text[] | undefined {
  if (!proseOf.has(file)) proseOf.set(file, readProse(file));
  return proseOf.get(file);
}

function readProse(file: string): Text[] | undefined {
  const source = () => readFileSync(path.join(repoRoot, file), 'utf8');
  if (file.endsWith('.md')) return source().split('\n').map((text, index) => ({ line: index + 1, text }));
  if (SCRIPT.test(file)) return scriptComments(file, source());
  if (HASH_COMMENTS.test(file)) return hashComments(source());
  if (/\.(?:html|svg)$/.test(file)) return blockComments(source(), /<!--[\s\S]*?-->/g);
  if (file.endsWith('.css')) return blockComments(source(), /\/\*[\s\S]*?\*\//g);
  return undefined;
}

/** `file:line: the forbidden text (what it is)` for every hit. */
function hits(file: string, texts: Text[]): string[] {
  const found: string[] = [];
  for (const { line, text } of texts) {
    for (const { name, pattern } of FORBIDDEN) {
      for (const match of text.matchAll(pattern)) {
        found.push(`${file}:${line + text.slice(0, match.index).split('\n').length - 1}: "${match[0]}" (${name})`);
      }
    }
  }
  return found;
}

const tracked = execFileSync('git', ['ls-files', '-z'], { cwd: repoRoot, encoding: 'utf8' })
  .split('\0')
  .filter((file) => file !== '' && !file.startsWith('node_modules/'));

describe('docs language: no dates, issue numbers or work sessions', () => {
  const docs = tracked.filter((file) => file.endsWith('.md'));
  const code = tracked.filter((file) => !file.endsWith('.md') && prose(file) !== undefined);

  it('finds the files it is meant to read', () => {
    for (const file of ['README.md', 'DESIGN.md', 'CONTRIBUTING.md', 'docs/benchmarks.md', 'nginx/README.md', 'deploy/k8s/README.md']) {
      assert.ok(docs.includes(file), `${file} is tracked and read`);
    }
    for (const file of ['services/gateway/replica.ts', 'shared/protocol/closes.ts', 'tools/promote.sh', 'tests/static/docs.test.ts', '.ci/run', 'nginx/nginx.conf.template', 'redis/redis.conf', 'deploy/compose.yml', 'deploy/Dockerfile', 'Makefile']) {
      assert.ok(code.includes(file), `${file} is tracked and its comments read`);
    }
  });

  for (const file of docs) {
    it(`${file}`, () => {
      assert.deepEqual(hits(file, prose(file)!), []);
    });
  }

  it('comments of tracked code', () => {
    assert.deepEqual(code.flatMap((file) => hits(file, prose(file)!)), []);
  });

  it('comments are found where the compiler finds them, and only there', () => {
    const source = "const a = '2026-01-02'; // 2026-01-03\n/* issue 4 */ const b = `// this session`;\n";
    assert.deepEqual(
      scriptComments('x.ts', source).map(({ line, text }) => [line, text]),
      [[1, '// 2026-01-03'], [2, '/* issue 4 */']],
    );
    assert.deepEqual(hashComments('echo "a#b" # last session\n  # 2026-01-02\nx=1').map(({ line }) => line), [1, 2]);
  });
});
