/**
 * The layout's dependency direction (DESIGN.md, "Modules"), checked on the sources:
 * shared/protocol/ imports nothing, shared/client/ only the protocol, the product
 * never the tests or tools, and tools/ never the tests.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { repoRoot } from '../../tools/harness/repo-root.js';

/** Every .ts file under `folder` (relative to the repo), with its import specifiers. */
function sources(folder: string): Array<{ file: string; imports: string[] }> {
  const entries = readdirSync(path.join(repoRoot, folder), { recursive: true, withFileTypes: true });
  return entries
    .filter((entry) => entry.isFile() && /\.[cm]?ts$/.test(entry.name))
    .map((entry) => {
      const file = path.relative(repoRoot, path.join(entry.parentPath, entry.name));
      const text = readFileSync(path.join(repoRoot, file), 'utf8');
      const imports = [...text.matchAll(/^\s*(?:import|export)\b[^'"]*?from\s+['"]([^'"]+)['"]/gm)].map((match) => match[1]!);
      return { file, imports };
    });
}

/** Where a relative import lands, relative to the repo; packages and node: as they are. */
function target(file: string, specifier: string): string {
  return specifier.startsWith('.') ? path.relative(repoRoot, path.resolve(repoRoot, path.dirname(file), specifier)) : specifier;
}

function violations(folder: string, allowed: (target: string) => boolean): string[] {
  return sources(folder).flatMap(({ file, imports }) =>
    imports.map((specifier) => target(file, specifier)).filter((landing) => !allowed(landing)).map((landing) => `${file} → ${landing}`),
  );
}

describe('layers', () => {
  it('finds the sources it checks', () => {
    for (const folder of ['shared/protocol', 'shared/client', 'services', 'tools']) assert.ok(sources(folder).length > 0, folder);
    assert.ok(sources('tools').some(({ imports }) => imports.length > 0));
  });

  it('shared/protocol/ imports nothing but itself: no Node, no DOM, no package', () => {
    assert.deepEqual(violations('shared/protocol', (landing) => landing.startsWith('shared/protocol/')), []);
  });

  it('shared/client/ imports only itself and shared/protocol/', () => {
    assert.deepEqual(violations('shared/client', (landing) => /^shared\/(client|protocol)\//.test(landing)), []);
  });

  it('the product (services/, shared/) never imports the tests or the tools', () => {
    const product = (landing: string): boolean => !/^(tests|tools)\//.test(landing);
    assert.deepEqual([...violations('services', product), ...violations('shared', product)], []);
  });

  it('tools/ never imports the tests', () => {
    assert.deepEqual(violations('tools', (landing) => !landing.startsWith('tests/')), []);
  });
});
