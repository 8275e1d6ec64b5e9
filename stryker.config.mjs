// StrykerJS: mutation testing of the unit tier (docs/mutation-testing.md).
//
// Mocha 12: the mocha runner's peer range (>= 7.2 < 13) admits it, but the released runner
// requires mocha's cli internals without an extension and mocha 12 names them `.cjs`, so it
// cannot load (stryker-js pull request 6205 probes the extensions; no release has it). Rather
// than hold the whole project on mocha 11, tools/mutation/mocha-cli-resolve.cjs
// resolves those few requests to their `.cjs` files, here and in every process Stryker starts.
// Its mocha options are given here whole (no-config) instead of being read from
// tests/unit/.mocharc.json, for two reasons: that file's `import` (tsx) is not an option the
// runner passes on, so tsx is loaded into each runner process through testRunnerNodeArgs; and
// its exit guard (tests/support/exit-guard.ts, a mochaGlobalTeardown that exits a process still
// alive some seconds after the last test) would end the runner's worker, which stays alive
// between runs by design.
//
// The incremental file is checked in: a run after a small change tests only the mutants whose
// code or covering tests changed, and reuses every other result.
import { createRequire } from 'node:module';
import process from 'node:process';
import { fileURLToPath, URL } from 'node:url';

const mochaCliResolve = fileURLToPath(new URL('tools/mutation/mocha-cli-resolve.cjs', import.meta.url));
createRequire(import.meta.url)(mochaCliResolve);
// Every process Stryker starts loads the plugins, so each gets the shim too.
process.env.NODE_OPTIONS = `${process.env.NODE_OPTIONS ?? ''} --require ${JSON.stringify(mochaCliResolve)}`.trim();

/** @type {import('@stryker-mutator/api/core').PartialStrykerOptions} */
export default {
  packageManager: 'npm',
  testRunner: 'mocha',
  mochaOptions: {
    'no-config': true,
    'no-package': true,
    spec: ['tests/unit/**/*.test.ts'],
    extension: ['ts'],
    ui: 'bdd',
  },
  testRunnerNodeArgs: ['--import', 'tsx'],
  mutate: [
    'services/gateway/**/*.ts',
    '!services/gateway/public/**',
    '!services/gateway/main.ts',
    'shared/**/*.ts',
  ],
  // Not needed by the unit tier; kept out of the sandbox copy.
  ignorePatterns: ['dist', '.run', '.tools', 'reports', 'coverage', 'deploy', 'observability', 'benchmarks'],
  coverageAnalysis: 'perTest',
  // A static mutant (in code that runs when its module loads: constants, the metrics'
  // definitions) needs a fresh runner process and the whole tier, about a hundred times the
  // cost of another; on a shared two-core machine they would take most of a full run. They
  // are reported as ignored; what they would break is asserted all the same (the unit files
  // of metrics, heartbeat and receiver-errors).
  ignoreStatic: true,
  // The machine is shared: two runner processes at most.
  concurrency: 2,
  timeoutMS: 10_000,
  incremental: true,
  incrementalFile: 'reports/mutation/stryker-incremental.json',
  reporters: ['clear-text', 'progress', 'html', 'json'],
  htmlReporter: { fileName: 'reports/mutation/mutation.html' },
  jsonReporter: { fileName: 'reports/mutation/mutation.json' },
  // break: the whole run's score, held down by the transport code only the integration tiers
  // reach; set at the score reached. The core modules' floors are in tools/mutation/check-scores.ts.
  thresholds: { high: 90, low: 80, break: 46 },
  tempDirName: '.stryker-tmp',
  cleanTempDir: 'always',
};
