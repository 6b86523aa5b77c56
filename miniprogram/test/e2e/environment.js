// jsdom (for miniprogram-simulate) plus Node's own fetch for the wx.request shim. Node's fetch
// and AbortSignal stay in this (outer) realm; tests reach them through `__nodeHttp`.
const { TestEnvironment } = require('jest-environment-jsdom');

async function nodeHttp(url, { method = 'GET', headers = {}, body, timeout = 15000 } = {}) {
  const res = await fetch(url, { method, headers, body, signal: AbortSignal.timeout(timeout) });
  const text = await res.text();
  const header = {};
  res.headers.forEach((value, key) => {
    header[key] = value;
  });
  return { status: res.status, header, text };
}

class E2EEnvironment extends TestEnvironment {
  constructor(config, context) {
    super(config, context);
    this.global.__nodeHttp = nodeHttp;
  }
}

module.exports = E2EEnvironment;
