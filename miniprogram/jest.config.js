module.exports = {
  testEnvironment: 'jsdom',
  roots: ['<rootDir>/test'],
  testMatch: ['**/test/unit/**/*.test.js'],
  setupFiles: ['<rootDir>/test/setup.js'],
  transform: {
    '\\.js$': ['babel-jest', { presets: [['@babel/preset-env', { targets: { node: 'current' } }]], babelrc: false, configFile: false }],
  },
  transformIgnorePatterns: ['/node_modules/'],
  testTimeout: 20000,
};
