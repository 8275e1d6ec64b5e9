// Lets @stryker-mutator/mocha-runner load mocha 12's cli internals.
//
// The runner requires `mocha/lib/cli/run-helpers`, `.../options` and `.../collect-files`
// without an extension; mocha 12 ships them as `.cjs`, which require() never probes, so the
// plugin fails to load and Stryker reports no test runner at all. This retries exactly those
// requests, and only them, with `.cjs`. stryker.config.mjs loads it into Stryker's own process
// and, through testRunnerNodeArgs, into every test runner process.
'use strict';
const Module = require('node:module');

const resolve = Module._resolveFilename;
Module._resolveFilename = function resolveMochaCli(request, ...rest) {
  try {
    return resolve.call(this, request, ...rest);
  } catch (error) {
    if (/[\\/]mocha[\\/]lib[\\/]cli[\\/][\w-]+$/.test(request)) {
      return resolve.call(this, `${request}.cjs`, ...rest);
    }
    throw error;
  }
};
