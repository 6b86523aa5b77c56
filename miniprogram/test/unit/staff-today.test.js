const h = require('../helpers');
const fx = require('../fixtures');

const pageId = h.loadPage('staff-today');
const BASE = '/admin/hospitals/h_1/appointments';

const today = (over) => ({ ...fx.appointment, date: '2026-12-01', ...over });
const items = [
  today({ id: 'a_1', seq_no: 2, start: '08:30', end: '09:00', patient: { id: 'p_1', name: '张三', id_number_masked: '1101**********002X' } }),
  today({ id: 'a_2', seq_no: 1, start: '08:00', end: '08:30', status: 'checked_in', patient: { id: 'p_9', name: '赵六', id_number_masked: '3201**********1234' } }),
  today({ id: 'a_3', seq_no: 1, session: 'pm', start: '13:30', end: '14:00', doctor: { id: 'doc_2', name: '李静', title: '副主任医师' } }),
];

describe('pages/staff-today', () => {
  let fake;
  beforeEach(() => {
    jest.spyOn(Date, 'now').mockReturnValue(h.NOW);
    fake = h.fakeWx({
      [`GET ${BASE}`]: (req) => (req.query.cursor === '2' ? { items: [items[2]] } : { items: items.slice(0, 2), next: '2' }),
      [`POST ${BASE}/a_1/check-in`]: { ...items[0], status: 'checked_in' },
      [`POST ${BASE}/a_1/no-show`]: { ...items[0], status: 'no_show' },
    });
    h.seedStaff(fake);
  });
  afterEach(() => jest.restoreAllMocks());

  test('without a staff session it sends the user to staff login', async () => {
    fake.storage.clear();
    const comp = await h.mount(pageId);
    expect(h.lastNavigation(fake, 'redirectTo')).toBe('/pages/staff-login/index');
    expect(fake.requests).toHaveLength(0);
    expect(comp.data.state).toBe('error');
  });

  test('loading state', async () => {
    fake.routes[`GET ${BASE}`] = () => new Promise(() => {});
    const comp = await h.mount(pageId);
    h.expectLoading(comp, fake, `GET ${BASE}`);
  });

  test('loads every page of today and groups by doctor and session', async () => {
    const comp = await h.mount(pageId);
    expect(fake.requests.map((r) => r.query)).toEqual([{ date: '2026-12-01' }, { date: '2026-12-01', cursor: '2' }]);
    expect(fake.requests[0].header.Authorization).toBe('Bearer at-staff-1');
    expect(comp.data.groups.map((g) => g.key).sort()).toEqual(['doc_1|am', 'doc_2|pm']);
    const t = h.text(comp);
    expect(t).toContain('张明华 主任医师 · 上午（2人）');
    expect(t).toContain('李静 副主任医师 · 下午（1人）');
    expect(t).toContain('共3人，已签到1，待就诊2');
    // sorted by time within the session
    const am = comp.data.groups.find((g) => g.key === 'doc_1|am');
    expect(am.items.map((a) => a.id)).toEqual(['a_2', 'a_1']);
  });

  test('check-in posts and updates the row', async () => {
    const comp = await h.mount(pageId);
    h.tapButton(h.withDataId(comp.querySelectorAll('.check-in'), 'a_1'));
    await h.flush();
    expect(fake.requests.map((r) => r.route)).toContain(`POST ${BASE}/a_1/check-in`);
    expect(comp.data.groups.find((g) => g.key === 'doc_1|am').items.find((a) => a.id === 'a_1').status).toBe('checked_in');
    expect(h.text(comp)).toContain('已签到2');
  });

  test('no-show asks first, then posts', async () => {
    const comp = await h.mount(pageId);
    h.tapButton(h.withDataId(comp.querySelectorAll('.no-show'), 'a_1'));
    await h.flush();
    expect(fake.wx.showModal).toHaveBeenCalled();
    expect(fake.requests.map((r) => r.route)).toContain(`POST ${BASE}/a_1/no-show`);
  });

  test('签到 only on the visit day, 爽约 only once the slice has ended', async () => {
    const comp = await h.mount(pageId);
    // 09:00 now: a_1 (08:30-09:00) has ended → both; a_3 (13:30-14:00) → 签到 only
    expect(h.withDataId(comp.querySelectorAll('.no-show'), 'a_1')).toBeTruthy();
    expect(h.withDataId(comp.querySelectorAll('.check-in'), 'a_3')).toBeTruthy();
    expect(h.withDataId(comp.querySelectorAll('.no-show'), 'a_3')).toBeFalsy();
    expect(h.text(comp)).toContain('时段结束后可登记爽约');

    fake.routes[`GET ${BASE}`] = { items: [{ ...items[0], id: 'a_9', date: '2026-12-02' }] };
    comp.querySelector('#dates').querySelectorAll('.ds-day')[1].dispatchEvent('tap');
    await h.flush();
    expect(comp.querySelectorAll('.check-in')).toHaveLength(0);
    expect(comp.querySelectorAll('.no-show')).toHaveLength(0);
    expect(h.text(comp)).toContain('就诊当天可签到');
  });

  test('扫码签到: the patient\'s check-in code checks the appointment in', async () => {
    const checkinCode = require('../../utils/checkin-code');
    const comp = await h.mount(pageId);
    fake.wx.scanCode = jest.fn((opts) => opts.success({ errMsg: 'scanCode:ok', result: checkinCode.payload('a_1') }));
    h.tap(comp.querySelector('#scan-checkin'));
    await h.flush();
    expect(fake.wx.scanCode.mock.calls[0][0]).toMatchObject({ onlyFromCamera: true });
    expect(fake.requests.map((r) => r.route)).toContain(`POST ${BASE}/a_1/check-in`);
    expect(h.toasts(fake)).toContain('第2号 张三 已签到');

    fake.wx.scanCode = jest.fn((opts) => opts.success({ errMsg: 'scanCode:ok', result: 'https://example.com/x' }));
    const before = fake.requests.length;
    h.tap(comp.querySelector('#scan-checkin'));
    await h.flush();
    expect(fake.requests.length).toBe(before);
    expect(h.toasts(fake)).toContain('不是本系统的签到码');
  });

  test('another date, empty day', async () => {
    fake.routes[`GET ${BASE}`] = { items: [] };
    const comp = await h.mount(pageId);
    comp.querySelector('#dates').querySelectorAll('.ds-day')[1].dispatchEvent('tap');
    await h.flush();
    expect(fake.requests.pop().query).toEqual({ date: '2026-12-02' });
    expect(comp.data.state).toBe('empty');
    expect(h.text(comp)).toContain('12月02日 周三 暂无预约');
  });

  test('an expired staff session that cannot refresh goes back to the login page', async () => {
    fake.routes[`GET ${BASE}`] = h.apiError(401, 'TOKEN_EXPIRED', '登录已过期 / token expired');
    fake.routes['POST /auth/refresh'] = h.apiError(401, 'UNAUTHENTICATED', '请先登录 / authentication required');
    const comp = await h.mount(pageId);
    expect(comp.data.state).toBe('error');
    expect(h.lastNavigation(fake, 'redirectTo')).toBe('/pages/staff-login/index');
    expect(fake.wx.login).not.toHaveBeenCalled();
  });

  test('error state, retry and pull-to-refresh', async () => {
    fake.routes[`GET ${BASE}`] = 'network';
    const comp = await h.mount(pageId);
    expect(comp.data.state).toBe('error');
    fake.routes[`GET ${BASE}`] = { items };
    h.tapButton(h.retryButton(comp));
    await h.flush();
    expect(comp.data.state).toBe('ready');
    await comp.instance.onPullDownRefresh();
    expect(fake.wx.stopPullDownRefresh).toHaveBeenCalled();
  });

  test('links to sessions and doctors', async () => {
    const comp = await h.mount(pageId);
    h.tap(comp.querySelector('#to-sessions'));
    await h.flush();
    expect(h.lastNavigation(fake)).toBe('/pages/staff-sessions/index');
    h.tap(comp.querySelector('#to-doctors'));
    await h.flush();
    expect(h.lastNavigation(fake)).toBe('/pages/staff-doctors/index');
  });

  test('取消 asks for a reason (told to the patient) and posts it', async () => {
    fake.routes[`POST ${BASE}/a_3/cancel`] = (req) => ({ ...items[2], status: 'cancelled', cancelled_by: 'hospital', reason: req.data.reason });
    const comp = await h.mount(pageId);
    fake.wx.showModal.mockImplementationOnce((opts) => opts.success({ confirm: true, cancel: false, content: '' }));
    h.tapButton(h.withDataId(comp.querySelectorAll('.staff-cancel'), 'a_3'));
    await h.flush();
    expect(fake.requests.some((r) => r.route === `POST ${BASE}/a_3/cancel`)).toBe(false);
    expect(h.toasts(fake)).toContain('请填写取消原因');
    fake.wx.showModal.mockImplementationOnce((opts) => {
      expect(opts.editable).toBe(true);
      opts.success({ confirm: true, cancel: false, content: ' 医生临时停诊 ' });
    });
    h.tapButton(h.withDataId(comp.querySelectorAll('.staff-cancel'), 'a_3'));
    await h.flush();
    expect(fake.requests.find((r) => r.route === `POST ${BASE}/a_3/cancel`).data).toEqual({ reason: '医生临时停诊' });
    expect(comp.data.groups.flatMap((g) => g.items).find((a) => a.id === 'a_3').status).toBe('cancelled');
  });

  test('search by name, masked ID or 序号; any date through the date picker', async () => {
    const comp = await h.mount(pageId);
    comp.instance.onSearch({ detail: { value: '赵六' } });
    expect(comp.data.groups.flatMap((g) => g.items).map((a) => a.id)).toEqual(['a_2']);
    comp.instance.onSearch({ detail: { value: '1101**' } });
    expect(comp.data.groups.flatMap((g) => g.items).map((a) => a.id).sort()).toEqual(['a_1', 'a_3']);
    comp.instance.onSearch({ detail: { value: '第2号' } });
    expect(comp.data.groups.flatMap((g) => g.items).map((a) => a.id)).toEqual(['a_1']);
    comp.instance.onSearch({ detail: { value: '' } });
    comp.instance.onPickAnyDate({ detail: { value: '2027-01-15' } });
    await h.flush();
    expect(comp.data.date).toBe('2027-01-15');
    expect(fake.requests.filter((r) => r.query.date === '2027-01-15').length).toBeGreaterThan(0);
  });

  test('改约 lists bookable slices of the same doctor and PATCHes the appointment', async () => {
    fake.routes['GET /doctors/doc_1/schedules'] = fx.schedules;
    fake.routes[`PATCH ${BASE}/a_1`] = (req) => ({ ...items[0], slot_id: req.data.slot_id, date: '2026-12-02', start: '09:00' });
    const comp = await h.mount(pageId);
    h.tapButton(h.withDataId(comp.querySelectorAll('.staff-move'), 'a_1'));
    await h.flush();
    expect(comp.data.moveFor).toBe('a_1');
    // its own slice (s0) and the full one (s1) are not offered
    expect(comp.data.moveSlots.map((m) => m.id)).toEqual(['sch_2_am_s2']);
    h.tap(comp.querySelectorAll('.move-slot')[0]);
    await h.flush();
    expect(fake.requests.find((r) => r.route === `PATCH ${BASE}/a_1`).data).toEqual({ slot_id: 'sch_2_am_s2' });
    expect(h.toasts(fake)).toContain('已改约到 12月02日 周三 09:00');
    expect(comp.data.moveFor).toBe('');
  });
});

