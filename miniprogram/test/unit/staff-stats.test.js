const h = require('../helpers');

const pageId = h.loadPage('staff-stats');
const STATS = 'GET /admin/hospitals/h_1/stats';

const row = (key, name, over) => ({
  key,
  name,
  booked: 0,
  cancelled_by_patient: 0,
  cancelled_by_hospital: 0,
  cancelled_by_system: 0,
  no_show: 0,
  completed: 0,
  capacity: 0,
  utilization: 0,
  no_show_rate: 0,
  ...over,
});
const items = [
  row('dep_resp', '呼吸内科', {
    booked: 10, cancelled_by_patient: 1, completed: 6, no_show: 1, capacity: 40, utilization: 0.25,
  }),
  row('dep_cardio', '心血管内科', {
    booked: 45, cancelled_by_patient: 3, cancelled_by_hospital: 2, cancelled_by_system: 1, no_show: 4, completed: 30, capacity: 60, utilization: 0.75,
  }),
];

describe('pages/staff-stats (今日数据)', () => {
  let fake;
  beforeEach(() => {
    jest.spyOn(Date, 'now').mockReturnValue(h.NOW);
    fake = h.fakeWx({ [STATS]: { items } });
    h.seedStaff(fake);
  });
  afterEach(() => jest.restoreAllMocks());

  test('without a staff session: to the login page', async () => {
    fake.storage.clear();
    const comp = await h.mount(pageId);
    expect(h.lastNavigation(fake, 'redirectTo')).toBe('/pages/staff-login/index');
    expect(fake.requests).toHaveLength(0);
    expect(comp.data.state).toBe('error');
  });

  test('loading state', async () => {
    fake.routes[STATS] = () => new Promise(() => {});
    const comp = await h.mount(pageId);
    h.expectLoading(comp, fake, STATS);
  });

  test('asks for today by department and renders totals and each department', async () => {
    const comp = await h.mount(pageId);
    expect(fake.requests[0].query).toEqual({ from: '2026-12-01', to: '2026-12-01', group_by: 'department' });
    const q = (sel) => comp.querySelector(sel).dom.textContent;
    expect(q('.t-booked')).toBe('55');
    expect(q('.t-cancelled')).toBe('7');
    expect(q('.t-no-show')).toBe('5');
    expect(q('.t-completed')).toBe('36');
    expect(q('.t-utilization')).toBe('55%'); // (0.25×40 + 0.75×60) / 100
    const t = h.text(comp);
    expect(t).toContain('今日数据 · 12月01日 周二');
    expect(t).toContain('号源共 100 个');
    // busiest department first
    expect(comp.data.rows.map((r) => r.name)).toEqual(['心血管内科', '呼吸内科']);
    expect(t).toContain('预约 45 · 取消 6（患者3 医院2 系统1） · 爽约 4 · 已就诊 30');
    expect(t).toContain('使用率 75%');
    expect(t).toContain('预约 10 · 取消 1（患者1 医院0） · 爽约 1 · 已就诊 6');
  });

  test('no numbers yet → empty state; a department without capacity shows — for utilisation', async () => {
    fake.routes[STATS] = { items: [] };
    const comp = await h.mount(pageId);
    expect(comp.data.state).toBe('empty');
    expect(h.text(comp)).toContain('今天还没有出诊或预约数据');
    fake.routes[STATS] = { items: [row('dep_x', '皮肤科', { booked: 0, capacity: 0 })] };
    await comp.instance.reload();
    expect(h.text(comp)).toContain('使用率 —');
  });

  test('503 → error state with retry; 403 (desk) says so; pull-to-refresh', async () => {
    fake.routes[STATS] = h.apiError(503, 'SERVICE_UNAVAILABLE', '服务暂不可用 / service unavailable');
    const comp = await h.mount(pageId);
    expect(comp.data.state).toBe('error');
    expect(h.text(comp)).toContain('服务暂不可用');
    expect(h.retryButton(comp)).toBeTruthy();
    fake.routes[STATS] = h.apiError(403, 'FORBIDDEN', '无权限 / forbidden');
    h.tapButton(h.retryButton(comp));
    await h.flush();
    expect(h.text(comp)).toContain('无权限');
    fake.routes[STATS] = { items };
    h.tapButton(h.retryButton(comp));
    await h.flush();
    expect(comp.data.state).toBe('ready');
    await comp.instance.onPullDownRefresh();
    expect(fake.wx.stopPullDownRefresh).toHaveBeenCalled();
  });
});
