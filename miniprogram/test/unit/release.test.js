const { execFileSync } = require('child_process');
const path = require('path');
const h = require('../helpers');
const config = require('../../config');
const { request } = require('../../utils/request');

const ROOT = path.resolve(__dirname, '..', '..');

function checkRelease(url) {
  const script = `
    global.wx = { getAccountInfoSync: () => ({ miniProgram: { envVersion: 'release' } }) };
    const config = require('./config');
    config.apiBaseUrls.release = ${JSON.stringify(url)};
    require('./scripts/check-release.js');`;
  try {
    return { code: 0, out: execFileSync(process.execPath, ['-e', script], { cwd: ROOT, stdio: 'pipe' }).toString() };
  } catch (err) {
    return { code: err.status, out: err.stderr.toString() };
  }
}

describe('release safety', () => {
  test.each([
    ['', 'empty'],
    ['http://api.example.com/api/v1', 'not HTTPS'],
    ['https://127.0.0.1:8080/api/v1', 'loopback'],
    ['https://localhost/api/v1', 'loopback'],
    ['https://[::1]/api/v1', 'loopback'],
    ['https://10.0.0.8/api/v1', 'IP addresses'],
    ['https://api.example.com:8443/api/v1', 'port'],
    ['api.example.com/api/v1', 'absolute'],
  ])('a release base URL %j is refused (%s)', (url, why) => {
    expect(config.releaseUrlProblem(url)).toContain(why);
  });

  test('an HTTPS domain is accepted', () => {
    expect(config.releaseUrlProblem('https://api.example.com/api/v1')).toBe('');
  });

  test('npm run check:release fails on the shipped config (release URL empty) and passes on HTTPS', () => {
    expect(config.apiBaseUrls.release).toBe('');
    const refused = checkRelease('');
    expect(refused.code).toBe(1);
    expect(refused.out).toContain('apiBaseUrls.release is empty');
    expect(checkRelease('http://127.0.0.1:8080/api/v1').code).toBe(1);
    expect(checkRelease('https://api.example.com/api/v1').code).toBe(0);
  });

  test('a release build never falls back to the development address: no request is sent', async () => {
    const fake = h.fakeWx({ 'GET /hospitals': { items: [] } });
    fake.wx.getAccountInfoSync = jest.fn(() => ({ miniProgram: { envVersion: 'release' } }));
    const err = await request({ url: '/hospitals', auth: 'none' }).catch((e) => e);
    expect(err).toMatchObject({ code: 'CONFIG_ERROR' });
    expect(fake.requests).toHaveLength(0);
    expect(h.toasts(fake)[0]).toBe('服务地址配置错误，请联系医院');

    config.apiBaseUrls.release = 'https://api.example.com/api/v1';
    try {
      await request({ url: '/hospitals', auth: 'none' });
      expect(fake.requests[0].url).toBe('https://api.example.com/api/v1/hospitals');
    } finally {
      config.apiBaseUrls.release = '';
    }
  });

  test('develop and trial builds keep the development fallback', () => {
    global.wx.getAccountInfoSync = () => ({ miniProgram: { envVersion: 'trial' } });
    expect(config.baseUrl()).toBe('http://127.0.0.1:8080/api/v1');
  });
});
