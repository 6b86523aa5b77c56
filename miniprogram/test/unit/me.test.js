const h = require('../helpers');

const pageId = h.loadPage('me');

describe('pages/me (我的)', () => {
  let fake;
  beforeEach(() => {
    fake = h.fakeWx({ 'POST /auth/logout': {} });
  });

  test('not logged in: entries and the staff login entry; no request', async () => {
    const comp = await h.mount(pageId);
    const t = h.text(comp);
    expect(t).toContain('未登录');
    expect(t).toContain('就诊人管理');
    expect(t).toContain('我的预约');
    expect(t).toContain('工作人员登录');
    expect(fake.requests).toHaveLength(0);
  });

  test('entries navigate', async () => {
    const comp = await h.mount(pageId);
    h.clickCell(comp.querySelector('#go-patients'));
    await h.flush();
    expect(h.lastNavigation(fake)).toBe('/pages/patients/index');
    h.clickCell(comp.querySelector('#go-appointments'));
    await h.flush();
    expect(h.lastNavigation(fake, 'switchTab')).toBe('/pages/appointments/index');
    h.clickCell(comp.querySelector('#go-staff-login'));
    await h.flush();
    expect(h.lastNavigation(fake)).toBe('/pages/staff-login/index');
  });

  test('with a staff session: the hospital workbench, and logging out', async () => {
    h.seedPatient(fake);
    h.seedStaff(fake);
    const comp = await h.mount(pageId);
    const t = h.text(comp);
    expect(t).toContain('已通过微信登录');
    expect(t).toContain('医院 h_1');
    h.clickCell(comp.querySelector('#go-today'));
    await h.flush();
    expect(h.lastNavigation(fake)).toBe('/pages/staff-today/index');
    h.clickCell(comp.querySelector('#go-sessions'));
    await h.flush();
    expect(h.lastNavigation(fake)).toBe('/pages/staff-sessions/index');
    h.clickCell(comp.querySelector('#go-doctors'));
    await h.flush();
    expect(h.lastNavigation(fake)).toBe('/pages/staff-doctors/index');
    h.clickCell(comp.querySelector('#go-week'));
    await h.flush();
    expect(h.lastNavigation(fake)).toBe('/pages/staff-week/index');
    h.clickCell(comp.querySelector('#go-queue'));
    await h.flush();
    expect(h.lastNavigation(fake)).toBe('/pages/staff-queue/index');
    h.clickCell(comp.querySelector('#go-stats'));
    await h.flush();
    expect(h.lastNavigation(fake)).toBe('/pages/staff-stats/index');
    h.clickCell(comp.querySelector('#staff-logout'));
    await h.flush();
    expect(fake.storage.has('guahao.session.staff')).toBe(false);
    expect(fake.requests.map((r) => r.route)).toEqual(['POST /auth/logout']);
    expect(h.text(comp)).toContain('工作人员登录');
  });

  describe('注销账号', () => {
    test('only when logged in; confirmed → DELETE /me, the session is forgotten', async () => {
      fake.routes['DELETE /me'] = { deleted: true, patients_deleted: 2 };
      const anonymous = await h.mount(pageId);
      expect(anonymous.querySelector('#delete-account')).toBe(undefined);
      h.seedPatient(fake);
      const comp = await h.mount(pageId);
      h.clickCell(comp.querySelector('#delete-account'));
      await h.flush();
      expect(fake.requests.map((r) => r.route)).toEqual(['DELETE /me']);
      expect(fake.storage.has('guahao.session.patient')).toBe(false);
      expect(comp.data.loggedIn).toBe(false);
      expect(h.toasts(fake)).toContain('账号已注销');
    });

    test('active appointments: the 409 is explained and the session kept', async () => {
      fake.routes['DELETE /me'] = h.apiError(409, 'INVALID_STATE', '还有待就诊的预约 / active', { active: 2, waiting: 1 });
      h.seedPatient(fake);
      const comp = await h.mount(pageId);
      h.clickCell(comp.querySelector('#delete-account'));
      await h.flush();
      const modals = fake.calls.filter((c) => c.api === 'showModal').map((c) => c.args.content);
      expect(modals[1]).toContain('您还有2个待就诊的预约（在「我的预约」中取消）和1个候补（在「我的候补」中取消）');
      expect(fake.storage.has('guahao.session.patient')).toBe(true);
    });

    test('用户协议 and 隐私政策 are reachable from 我的', async () => {
      const comp = await h.mount(pageId);
      h.clickCell(comp.querySelector('#go-agreement'));
      await h.flush();
      expect(h.lastNavigation(fake)).toBe('/pages/agreement/index');
      h.clickCell(comp.querySelector('#go-privacy'));
      await h.flush();
      expect(h.lastNavigation(fake)).toBe('/pages/privacy/index');
    });
  });
});
