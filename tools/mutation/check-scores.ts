/**
 * Holds the core modules to their own mutation score, which Stryker's thresholds.break
 * cannot: it judges the whole run, and most of the gateway's transport code is covered
 * by the integration tiers only (no unit test reaches it, so its mutants count as
 * NoCoverage and pull the overall score down). Reads Stryker's JSON report
 * (mutation-testing-report-schema), prints every file's score, and fails when a core
 * module is under its floor.
 *
 *   tsx tools/mutation/check-scores.ts [reports/mutation/mutation.json]
 *
 * A score is Stryker's: detected (Killed, Timeout) over detected plus undetected
 * (Survived, NoCoverage); errors and ignored mutants count in neither.
 */
import { readFileSync } from 'node:fs';
import type { MutantStatus, MutationTestResult } from 'mutation-testing-report-schema';

/**
 * Each core module's floor, in percent: the score it has reached, never lowered to let
 * a change through. A path ending in '/' is every file under it, scored together.
 */
export const FLOORS: ReadonlyMap<string, number> = new Map([
  ['services/gateway/session-connection.ts', 96],
  ['services/gateway/resume-plan.ts', 100],
  ['services/gateway/session-request.ts', 100],
  ['services/gateway/upgrade-router.ts', 98],
  ['services/gateway/heartbeat.ts', 93],
  ['services/gateway/lifecycle.ts', 100],
  ['services/gateway/connection-registry.ts', 93],
  ['shared/protocol/', 94],
]);

const DETECTED: ReadonlySet<MutantStatus> = new Set(['Killed', 'Timeout']);
const UNDETECTED: ReadonlySet<MutantStatus> = new Set(['Survived', 'NoCoverage']);

export interface Score {
  detected: number;
  undetected: number;
}

export function percent({ detected, undetected }: Score): number {
  const valid = detected + undetected;
  return valid === 0 ? 100 : (100 * detected) / valid;
}

/** Every file's score, keyed by its path relative to the project. */
export function fileScores(report: MutationTestResult, root: string): Map<string, Score> {
  const scores = new Map<string, Score>();
  for (const [path, file] of Object.entries(report.files)) {
    const score: Score = { detected: 0, undetected: 0 };
    for (const mutant of file.mutants) {
      if (DETECTED.has(mutant.status)) score.detected += 1;
      else if (UNDETECTED.has(mutant.status)) score.undetected += 1;
    }
    scores.set(path.startsWith(`${root}/`) ? path.slice(root.length + 1) : path, score);
  }
  return scores;
}

/** The scores of the files `module` names: itself, or every file under a path ending in '/'. */
export function moduleScore(scores: ReadonlyMap<string, Score>, module: string): Score | undefined {
  const parts = [...scores].filter(([path]) => (module.endsWith('/') ? path.startsWith(module) : path === module));
  if (parts.length === 0) return undefined;
  return parts.reduce<Score>((sum, [, score]) => ({ detected: sum.detected + score.detected, undetected: sum.undetected + score.undetected }), {
    detected: 0,
    undetected: 0,
  });
}

function main(reportPath: string): number {
  const report = JSON.parse(readFileSync(reportPath, 'utf8')) as MutationTestResult;
  const scores = fileScores(report, process.cwd());
  const line = (name: string, score: Score): string =>
    `${percent(score).toFixed(2).padStart(6)}%  ${String(score.detected).padStart(4)} / ${String(score.detected + score.undetected).padEnd(4)}  ${name}`;
  const out: string[] = ['mutation score by file (detected / valid):'];
  for (const [path, score] of [...scores].sort(([a], [b]) => a.localeCompare(b))) out.push(line(path, score));
  out.push('', 'core modules (floor):');
  const failures: string[] = [];
  for (const [module, floor] of FLOORS) {
    const score = moduleScore(scores, module);
    if (score === undefined) {
      failures.push(`${module}: not in the report`);
      continue;
    }
    out.push(`${line(module, score)}  (floor ${floor}%)`);
    if (percent(score) < floor) failures.push(`${module}: ${percent(score).toFixed(2)}% is under its floor of ${floor}%`);
  }
  process.stdout.write(`${out.join('\n')}\n`);
  for (const failure of failures) process.stderr.write(`check-scores: ${failure}\n`);
  return failures.length === 0 ? 0 : 1;
}

if (import.meta.url === `file://${process.argv[1]}`) process.exitCode = main(process.argv[2] ?? 'reports/mutation/mutation.json');
