const h = require('../helpers');
const fx = require('../fixtures');

const pageId = h.loadPage('staff-login');

async function login(comp, username, password) {
  h.typeInto(comp.querySelector('#username'), username);
  h.typeInto(comp.querySelector('#password'), password);
  await h.flush();
  h.tapButton(comp.querySelector('#login'));
  await h.flush();
}

describe('pages/staff-login', () => {
  let fake;
  beforeEach(() => {
    fake = h.fakeWx({ 'POST /auth/staff/login': fx.tokenPair('staff', { role: 'hospital_admin', hospital_id: 'h_1' }) });
  });

  test('the button is disabled until both fields are filled', async () => {
    const comp = await h.mount(pageId);
    h.tapButton(comp.querySelector('#login'));
    await h.flush();
    expect(fake.requests).toHaveLength(0);
  });

  test('logs in, stores the staff session and opens today\'s appointments', async () => {
    const comp = await h.mount(pageId);
    await login(comp, 'staff_h1', 'secret-pass');
    const req = fake.requests[0];
    expect(req.route).toBe('POST /auth/staff/login');
    expect(req.data).toEqual({ username: 'staff_h1', password: 'secret-pass' });
    expect(req.header.Authorization).toBeUndefined();
    expect(fake.storage.get('guahao.session.staff').user.hospital_id).toBe('h_1');
    expect(fake.storage.has('guahao.session.patient')).toBe(false);
    expect(h.lastNavigation(fake, 'redirectTo')).toBe('/pages/staff-today/index');
  });

  test('wrong password: shown on the page', async () => {
    fake.routes['POST /auth/staff/login'] = h.apiError(401, 'UNAUTHENTICATED', '用户名或密码错误 / bad credentials');
    const comp = await h.mount(pageId);
    await login(comp, 'staff_h1', 'nope');
    expect(h.text(comp)).toContain('账号或密码错误');
    expect(fake.wx.redirectTo).not.toHaveBeenCalled();
  });

  test('a platform admin is turned away; network errors are readable', async () => {
    fake.routes['POST /auth/staff/login'] = fx.tokenPair('adm', { role: 'platform_admin' });
    const comp = await h.mount(pageId);
    await login(comp, 'admin', 'secret-pass');
    expect(h.text(comp)).toContain('该账号不是医院管理员');
    expect(fake.storage.has('guahao.session.staff')).toBe(false);

    fake.routes['POST /auth/staff/login'] = 'network';
    h.tapButton(comp.querySelector('#login'));
    await h.flush();
    expect(h.text(comp)).toContain('网络异常，请重试');
  });
});
