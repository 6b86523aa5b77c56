const h = require('../helpers');
const fx = require('../fixtures');
const config = require('../../config');
const {
  request, staffLogin, errorText, uuid4, newIdempotencyKey, queryString, getSession,
} = require('../../utils/request');

const UUID4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

/** A gateway whose valid access tokens are in `valid`; others get 401 TOKEN_EXPIRED. */
function guarded(valid, body = { ok: true }) {
  return (req) => (valid.has((req.header.Authorization || '').replace('Bearer ', ''))
    ? body
    : h.apiError(401, 'TOKEN_EXPIRED', '登录已过期 / token expired'));
}

describe('utils/request', () => {
  let fake;
  beforeEach(() => {
    fake = h.fakeWx({});
  });

  test('uses the base URL of config.js and JSON', async () => {
    fake.routes['GET /hospitals'] = fx.hospitals;
    await request({ url: '/hospitals', auth: 'none' });
    expect(fake.requests[0].url).toBe('http://127.0.0.1:8080/api/v1/hospitals');
    expect(fake.requests[0].header['Content-Type']).toBe('application/json');
    expect(fake.wx.request.mock.calls[0][0].method).toBe('GET');
  });

  test('the build flavour can override the base URL', async () => {
    fake.routes['GET /hospitals'] = fx.hospitals;
    config.apiBaseUrls.develop = 'https://dev.example.com/api/v1';
    try {
      await request({ url: '/hospitals', auth: 'none' });
      expect(fake.requests[0].url).toBe('https://dev.example.com/api/v1/hospitals');
    } finally {
      config.apiBaseUrls.develop = '';
    }
  });

  test('public calls send no token and never log in', async () => {
    fake.routes['GET /doctors'] = { items: [] };
    const body = await request({ url: '/doctors', auth: 'none', query: { hospital_id: 'h_1', department_id: '', q: undefined } });
    expect(body).toEqual({ items: [] });
    expect(fake.requests[0].query).toEqual({ hospital_id: 'h_1' });
    expect(fake.requests[0].header.Authorization).toBeUndefined();
    expect(fake.wx.login).not.toHaveBeenCalled();
  });

  test('logs in on first use: wx.login → POST /auth/wechat/login {code}, tokens in storage', async () => {
    fake.routes['POST /auth/wechat/login'] = fx.tokenPair('one');
    fake.routes['GET /patients'] = guarded(new Set(['at-one']), fx.patients);
    const body = await request({ url: '/patients' });
    expect(body).toEqual(fx.patients);
    expect(fake.wx.login).toHaveBeenCalledTimes(1);
    expect(fake.requests[0].route).toBe('POST /auth/wechat/login');
    expect(fake.requests[0].data).toEqual({ code: 'wx-code-1' });
    expect(fake.requests[1].header.Authorization).toBe('Bearer at-one');
    expect(fake.wx.setStorageSync).toHaveBeenCalledWith('guahao.session.patient', expect.objectContaining({
      access_token: 'at-one', refresh_token: 'rt-one-xxxxxxxxxxxxxxxx',
    }));
    // the next call reuses the stored token
    await request({ url: '/patients' });
    expect(fake.wx.login).toHaveBeenCalledTimes(1);
  });

  test('concurrent first calls share one login', async () => {
    fake.routes['POST /auth/wechat/login'] = fx.tokenPair('one');
    fake.routes['GET /patients'] = guarded(new Set(['at-one']), fx.patients);
    await Promise.all([request({ url: '/patients' }), request({ url: '/patients' }), request({ url: '/patients' })]);
    expect(fake.wx.login).toHaveBeenCalledTimes(1);
    expect(fake.requests.filter((r) => r.route === 'POST /auth/wechat/login')).toHaveLength(1);
  });

  test('concurrent 401s → exactly one refresh, each request retried once with the new token', async () => {
    h.seedPatient(fake);
    const valid = new Set();
    fake.routes['GET /appointments'] = guarded(valid, { items: [] });
    fake.routes['GET /patients'] = guarded(valid, fx.patients);
    fake.routes['POST /auth/refresh'] = (req) => {
      expect(req.data).toEqual({ refresh_token: h.PATIENT_SESSION.refresh_token });
      valid.add('at-two');
      return fx.tokenPair('two');
    };
    const results = await Promise.all([
      request({ url: '/appointments' }),
      request({ url: '/patients' }),
      request({ url: '/appointments', query: { status: 'booked' } }),
      request({ url: '/patients' }),
    ]);
    expect(results[1]).toEqual(fx.patients);
    expect(fake.requests.filter((r) => r.route === 'POST /auth/refresh')).toHaveLength(1);
    const business = fake.requests.filter((r) => r.route !== 'POST /auth/refresh');
    expect(business).toHaveLength(8); // 4 originals + 4 retries
    expect(business.slice(0, 4).every((r) => r.header.Authorization === 'Bearer at-patient-1')).toBe(true);
    expect(business.slice(4).every((r) => r.header.Authorization === 'Bearer at-two')).toBe(true);
    expect(getSession('patient').refresh_token).toBe('rt-two-xxxxxxxxxxxxxxxx');
    expect(fake.wx.login).not.toHaveBeenCalled();
  });

  test('a 401 that arrives after another request renewed just retries with the new token', async () => {
    h.seedPatient(fake);
    const valid = new Set();
    let slow;
    fake.routes['GET /patients'] = guarded(valid, fx.patients);
    fake.routes['GET /appointments'] = (req) => (slow ? guarded(valid, { items: [] })(req) : new Promise((resolve) => {
      slow = () => resolve(guarded(valid, { items: [] })(req));
    }));
    fake.routes['POST /auth/refresh'] = () => {
      valid.add('at-two');
      return fx.tokenPair('two');
    };
    const late = request({ url: '/appointments' });
    await request({ url: '/patients' }); // 401 → refresh → retry
    slow(); // now the old-token request comes back 401
    await expect(late).resolves.toEqual({ items: [] });
    expect(fake.requests.filter((r) => r.route === 'POST /auth/refresh')).toHaveLength(1);
    expect(fake.requests.filter((r) => r.route === 'GET /appointments').map((r) => r.header.Authorization))
      .toEqual(['Bearer at-patient-1', 'Bearer at-two']);
  });

  test('only one retry: a second 401 is the caller\'s error', async () => {
    h.seedPatient(fake);
    fake.routes['GET /patients'] = h.apiError(401, 'UNAUTHENTICATED', '请先登录 / authentication required');
    fake.routes['POST /auth/refresh'] = fx.tokenPair('two');
    await expect(request({ url: '/patients' })).rejects.toMatchObject({ statusCode: 401, code: 'UNAUTHENTICATED' });
    expect(fake.requests.filter((r) => r.route === 'GET /patients')).toHaveLength(2);
  });

  test('a failed refresh → log in again with wx.login, then retry', async () => {
    h.seedPatient(fake);
    const valid = new Set();
    fake.routes['GET /patients'] = guarded(valid, fx.patients);
    fake.routes['POST /auth/refresh'] = h.apiError(401, 'UNAUTHENTICATED', '刷新令牌已失效 / refresh token revoked');
    fake.routes['POST /auth/wechat/login'] = () => {
      valid.add('at-fresh');
      return fx.tokenPair('fresh');
    };
    const [a, b] = await Promise.all([request({ url: '/patients' }), request({ url: '/patients' })]);
    expect(a).toEqual(fx.patients);
    expect(b).toEqual(fx.patients);
    expect(fake.requests.filter((r) => r.route === 'POST /auth/refresh')).toHaveLength(1);
    expect(fake.wx.login).toHaveBeenCalledTimes(1);
    expect(getSession('patient').access_token).toBe('at-fresh');
  });

  test('a refresh that cannot reach the server is a network error (no re-login)', async () => {
    h.seedPatient(fake);
    fake.routes['GET /patients'] = h.apiError(401, 'TOKEN_EXPIRED', '登录已过期 / token expired');
    fake.routes['POST /auth/refresh'] = 'network';
    await expect(request({ url: '/patients' })).rejects.toMatchObject({ network: true, retryable: true });
    expect(fake.wx.login).not.toHaveBeenCalled();
    expect(getSession('patient')).not.toBe(null);
  });

  test.each([429, 503])('a refresh answered %i is retried after Retry-After and the session is kept', async (status) => {
    h.seedPatient(fake);
    const valid = new Set();
    fake.routes['GET /patients'] = guarded(valid, fx.patients);
    let refreshes = 0;
    const times = [];
    fake.routes['POST /auth/refresh'] = () => {
      refreshes += 1;
      times.push(Date.now());
      if (refreshes === 1) {
        return { statusCode: status, header: { 'retry-after': '1' }, data: { error: { code: status === 429 ? 'RATE_LIMITED' : 'SERVICE_UNAVAILABLE', message: '忙 / busy', details: {} } } };
      }
      valid.add('at-two');
      return fx.tokenPair('two');
    };
    const [a, b] = await Promise.all([request({ url: '/patients' }), request({ url: '/patients' })]);
    expect(a).toEqual(fx.patients);
    expect(b).toEqual(fx.patients);
    expect(refreshes).toBe(2); // one rotation shared by both requests, retried once
    expect(times[1] - times[0]).toBeGreaterThanOrEqual(900);
    expect(fake.wx.login).not.toHaveBeenCalled();
    expect(getSession('patient').access_token).toBe('at-two');
  });

  test('a refresh still busy after its retries fails the request but keeps the session', async () => {
    h.seedStaff(fake);
    fake.routes['GET /admin/hospitals/h_1/doctors'] = h.apiError(401, 'TOKEN_EXPIRED', '登录已过期 / token expired');
    fake.routes['POST /auth/refresh'] = { statusCode: 503, header: { 'Retry-After': '0' }, data: { error: { code: 'SERVICE_UNAVAILABLE', message: '服务繁忙 / busy', details: {} } } };
    const err = await request({ url: '/admin/hospitals/h_1/doctors', auth: 'staff' }).catch((e) => e);
    expect(err).toMatchObject({ statusCode: 503, code: 'SERVICE_UNAVAILABLE', retryable: true });
    expect(err.sessionExpired).toBeUndefined();
    expect(fake.requests.filter((r) => r.route === 'POST /auth/refresh')).toHaveLength(1 + config.refreshRetries);
    expect(getSession('staff')).toMatchObject({ refresh_token: h.STAFF_SESSION.refresh_token });
  });

  test('error toasts: the message of the error (Chinese part); 422 shows the first field message', async () => {
    h.seedPatient(fake);
    fake.routes['POST /appointments'] = h.apiError(409, 'SLOT_FULL', '号源已约满 / slot is full');
    await expect(request({ url: '/appointments', method: 'POST', data: {} })).rejects.toMatchObject({ code: 'SLOT_FULL', statusCode: 409 });
    expect(h.toasts(fake)).toEqual(['号源已约满']);
    expect(fake.wx.showToast).toHaveBeenLastCalledWith(expect.objectContaining({ icon: 'none' }));

    fake.routes['POST /patients'] = h.apiError(422, 'VALIDATION_FAILED', '参数校验失败 / validation failed', {
      fields: { id_number: '身份证号校验位错误 / checksum does not match', phone: '手机号格式不正确' },
    });
    const err = await request({ url: '/patients', method: 'POST', data: {} }).catch((e) => e);
    expect(err.fields.phone).toBe('手机号格式不正确');
    expect(h.toasts(fake)[1]).toBe('身份证号校验位错误');
  });

  test('a non-JSON error (e.g. a proxy page) still gets a readable message; toast can be turned off', async () => {
    fake.routes['GET /hospitals'] = { statusCode: 502, data: '<html>Bad Gateway</html>' };
    const err = await request({ url: '/hospitals', auth: 'none', toast: false }).catch((e) => e);
    expect(errorText(err)).toBe('微信服务异常，请稍后重试');
    expect(err.retryable).toBe(true);
    expect(fake.wx.showToast).not.toHaveBeenCalled();
  });

  test('network errors reject with a retryable error shown as 网络异常，请重试', async () => {
    fake.routes['GET /hospitals'] = 'network';
    const err = await request({ url: '/hospitals', auth: 'none' }).catch((e) => e);
    expect(err).toMatchObject({ network: true, retryable: true, code: 'NETWORK_ERROR' });
    expect(h.toasts(fake)).toEqual(['网络异常，请重试']);
  });

  test('the Idempotency-Key given by the caller is sent, and reused on the retry after a 401', async () => {
    h.seedPatient(fake);
    const valid = new Set();
    fake.routes['POST /appointments'] = guarded(valid, { statusCode: 201, data: fx.appointment });
    fake.routes['POST /auth/refresh'] = () => {
      valid.add('at-two');
      return fx.tokenPair('two');
    };
    const key = newIdempotencyKey();
    const body = await request({ url: '/appointments', method: 'POST', data: { slot_id: 's', patient_id: 'p' }, idempotencyKey: key });
    expect(body.id).toBe('a_1');
    const posts = fake.requests.filter((r) => r.route === 'POST /appointments');
    expect(posts).toHaveLength(2);
    expect(posts.map((r) => r.header['Idempotency-Key'])).toEqual([key, key]);
    expect(posts[1].data).toEqual(posts[0].data);
  });

  test('uuid4 keys are RFC 4122 version 4 and distinct', () => {
    const keys = new Set(Array.from({ length: 200 }, () => uuid4()));
    expect(keys.size).toBe(200);
    keys.forEach((k) => expect(k).toMatch(UUID4));
  });

  test('queryString leaves out empty values and encodes', () => {
    expect(queryString({ a: '1', b: '', c: null, d: undefined, e: '北 京' })).toBe('?a=1&e=%E5%8C%97%20%E4%BA%AC');
    expect(queryString({})).toBe('');
  });

  describe('staff session', () => {
    test('staff login stores a separate session; staff calls send the staff token', async () => {
      h.seedPatient(fake);
      fake.routes['POST /auth/staff/login'] = fx.tokenPair('staff', { role: 'hospital_admin', hospital_id: 'h_1' });
      fake.routes['GET /admin/hospitals/h_1/doctors'] = { items: [] };
      await staffLogin('staff_h1', 'pw');
      await request({ url: '/admin/hospitals/h_1/doctors', auth: 'staff' });
      expect(fake.requests[1].header.Authorization).toBe('Bearer at-staff');
      expect(getSession('patient').access_token).toBe('at-patient-1');
    });

    test('no staff session: rejected as expired, no wx.login', async () => {
      const err = await request({ url: '/admin/hospitals/h_1/doctors', auth: 'staff', toast: false }).catch((e) => e);
      expect(err.sessionExpired).toBe(true);
      expect(fake.requests).toHaveLength(0);
      expect(fake.wx.login).not.toHaveBeenCalled();
    });

    test('staff 401 → one refresh; a failed refresh clears the staff session', async () => {
      h.seedStaff(fake);
      const valid = new Set();
      fake.routes['GET /admin/hospitals/h_1/doctors'] = guarded(valid, { items: [] });
      fake.routes['POST /auth/refresh'] = () => {
        valid.add('at-staff2');
        return fx.tokenPair('staff2', { role: 'hospital_admin', hospital_id: 'h_1' });
      };
      await Promise.all([
        request({ url: '/admin/hospitals/h_1/doctors', auth: 'staff' }),
        request({ url: '/admin/hospitals/h_1/doctors', auth: 'staff' }),
      ]);
      expect(fake.requests.filter((r) => r.route === 'POST /auth/refresh')).toHaveLength(1);

      valid.clear();
      fake.routes['POST /auth/refresh'] = h.apiError(401, 'UNAUTHENTICATED', '请先登录 / authentication required');
      const err = await request({ url: '/admin/hospitals/h_1/doctors', auth: 'staff' }).catch((e) => e);
      expect(err.sessionExpired).toBe(true);
      expect(getSession('staff')).toBe(null);
      expect(fake.wx.login).not.toHaveBeenCalled();
      expect(h.toasts(fake)).toContain('登录已过期，请重新登录');
    });
  });
});
