#!/usr/bin/env node
// Run before uploading a release (体验版 → 正式版): refuses a release base URL that is empty,
// not HTTPS, loopback or an IP address. Exit code 1 with the reason.
global.wx = global.wx || { getAccountInfoSync: () => ({ miniProgram: { envVersion: 'release' } }) };
const config = require('../config');

const problem = config.releaseUrlProblem(config.apiBaseUrls.release);
if (problem) {
  process.stderr.write(`check:release: ${problem} (set apiBaseUrls.release in config.js)\n`);
  process.exit(1);
}
process.stdout.write(`check:release: ok (${config.apiBaseUrls.release})\n`);
