/**
 * The documented configuration table (rows `| \`VARIABLE\` | default | meaning |`, in
 * README.md or docs/) against config-variables.ts, the one place the replica's
 * defaults are written: every variable documented, nothing documented that the
 * replica does not read, and every documented default equal to the code's.
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { documentedDefault, VARIABLES, type Variable } from '../../services/gateway/config-variables.js';
import { repoRoot } from '../../tools/harness/repo-root.js';

/** README.md and every docs/*.md, by path relative to the repo. */
function docs(): Map<string, string> {
  const files = ['README.md'];
  const folder = path.join(repoRoot, 'docs');
  if (existsSync(folder)) files.push(...readdirSync(folder).filter((name) => name.endsWith('.md')).map((name) => `docs/${name}`));
  return new Map(files.map((file) => [file, readFileSync(path.join(repoRoot, file), 'utf8')]));
}

/** Each markdown table of `text` (a run of lines starting with '|'), as its variable rows: name -> default cell. */
function variableTables(text: string): Array<Map<string, string>> {
  const tables: Array<Map<string, string>> = [];
  let current: Map<string, string> | undefined;
  for (const line of text.split('\n')) {
    if (!line.startsWith('|')) {
      current = undefined;
      continue;
    }
    if (current === undefined) tables.push((current = new Map<string, string>()));
    const row = /^\| `([A-Z][A-Z0-9_]*)` \| ([^|]*) \|/.exec(line);
    if (row !== null) current.set(row[1]!, row[2]!.trim().replace(/^`(.*)`$/, '$1'));
  }
  return tables;
}

/** The replica's table: the one table whose rows are mostly variables the replica reads. */
function configurationTable(table: Readonly<Record<string, Variable>>): Map<string, string> {
  const names = new Set(Object.keys(table));
  const found = [...docs()].flatMap(([file, text]) =>
    variableTables(text)
      .filter((rows) => [...rows.keys()].filter((name) => names.has(name)).length * 2 > rows.size)
      .map((rows) => ({ file, rows })),
  );
  assert.equal(found.length, 1, `one configuration table in README.md and docs/ (found in: ${found.map(({ file }) => file).join(', ')})`);
  return found[0]!.rows;
}

/** What differs between the documented rows and the variables, one line each; empty when they agree. */
function mismatches(documented: ReadonlyMap<string, string>, table: Readonly<Record<string, Variable>>): string[] {
  const problems: string[] = [];
  for (const [name, variable] of Object.entries(table)) {
    const shown = documented.get(name);
    if (shown === undefined) problems.push(`${name}: not documented`);
    else if (shown !== documentedDefault(variable)) problems.push(`${name}: documented default ${shown}, code ${documentedDefault(variable)}`);
  }
  for (const name of documented.keys()) if (!(name in table)) problems.push(`${name}: documented, not read by the replica`);
  return problems;
}

describe('configuration table', () => {
  it('documents every variable the replica reads, with the default config-variables.ts gives', () => {
    assert.deepEqual(mismatches(configurationTable(VARIABLES), VARIABLES), []);
  });

  it('tells a default changed on one side only, a missing row and an extra one', () => {
    const documented = new Map(Object.entries(VARIABLES).map(([name, variable]) => [name, documentedDefault(variable)]));
    assert.deepEqual(mismatches(documented, VARIABLES), []);
    const changedDoc = new Map(documented).set('PORT', '8080');
    assert.deepEqual(mismatches(changedDoc, VARIABLES), ['PORT: documented default 8080, code 8000']);
    const changedCode = { ...VARIABLES, PORT: { ...VARIABLES.PORT, fallback: 8080 } };
    assert.deepEqual(mismatches(documented, changedCode), ['PORT: documented default 8000, code 8080']);
    const missing = new Map(documented);
    missing.delete('LOG_LEVEL');
    assert.deepEqual(mismatches(missing, VARIABLES), ['LOG_LEVEL: not documented']);
    const extra = new Map(documented).set('NOT_READ', '1');
    assert.deepEqual(mismatches(extra, VARIABLES), ['NOT_READ: documented, not read by the replica']);
  });

  it('writes a default the way the table does', () => {
    assert.equal(documentedDefault(VARIABLES.PORT), '8000');
    assert.equal(documentedDefault(VARIABLES.SESSION_KEY_SECRET), 'empty');
    assert.equal(documentedDefault(VARIABLES.REDIS_SENTINELS), 'none');
    assert.equal(documentedDefault(VARIABLES.REPLICA_ID), '<hostname>-<pid>');
  });
});
