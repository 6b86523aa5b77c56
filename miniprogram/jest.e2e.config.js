// End-to-end: the real page code against a real running gateway (see test/e2e/README section
// in README.md). Skips itself cleanly when GUAHAO_GATEWAY_URL / GUAHAO_WECHAT_FAKE_URL are unset.
const unit = require('./jest.config');

module.exports = {
  ...unit,
  testEnvironment: '<rootDir>/test/e2e/environment.js',
  testMatch: ['**/test/e2e/**/*.e2e.test.js'],
  globalSetup: '<rootDir>/test/e2e/global-setup.js',
  testTimeout: 120000,
  maxWorkers: 1,
};
