const h = require('../helpers');
const fx = require('../fixtures');

const pageId = h.loadPage('hospital');

describe('pages/hospital (departments)', () => {
  let fake;
  beforeEach(() => {
    fake = h.fakeWx({
      'GET /hospitals/h_1': fx.hospitalDetail,
      'GET /hospitals/h_1/departments': fx.departments,
    });
  });

  test('loading state while the hospital loads', async () => {
    fake.routes['GET /hospitals/h_1'] = () => new Promise(() => {});
    const comp = await h.mount(pageId, { id: 'h_1' });
    h.expectLoading(comp, fake, 'GET /hospitals/h_1');
  });

  test('shows the hospital, its rules and two levels of departments', async () => {
    const comp = await h.mount(pageId, { id: 'h_1' });
    expect(fake.requests.map((r) => r.route).sort()).toEqual(['GET /hospitals/h_1', 'GET /hospitals/h_1/departments']);
    const t = h.text(comp);
    expect(t).toContain('协和示范医院');
    expect(t).toContain('可预约今天起7天内的号源');
    expect(t).toContain('每天08:00放号');
    expect(t).toContain('内科');
    expect(t).toContain('外科');
    expect(t).toContain('心血管内科');
    expect(t).toContain('消化内科');
    expect(t).not.toContain('骨科');
    expect(fake.wx.setNavigationBarTitle).toHaveBeenCalledWith({ title: '协和示范医院' });
  });

  test('picking a top department shows its children; a leaf top is its own entry', async () => {
    const comp = await h.mount(pageId, { id: 'h_1' });
    h.tap(comp.querySelectorAll('.dept-top')[1]);
    await h.flush();
    expect(h.text(comp)).toContain('骨科');
    expect(comp.data.children.map((c) => c.id)).toEqual(['dep_ortho']);
    h.tap(comp.querySelectorAll('.dept-top')[2]);
    await h.flush();
    expect(comp.data.children.map((c) => c.id)).toEqual(['dep_er']);
  });

  test('tapping a department opens its doctors', async () => {
    const comp = await h.mount(pageId, { id: 'h_1' });
    h.clickCell(comp.querySelectorAll('.dept')[1]);
    await h.flush();
    expect(h.lastNavigation(fake)).toBe(
      `/pages/doctors/index?hospital_id=h_1&department_id=dep_gastro&name=${encodeURIComponent('消化内科')}`,
    );
  });

  test('empty state when the hospital has no department', async () => {
    fake.routes['GET /hospitals/h_1/departments'] = { items: [] };
    const comp = await h.mount(pageId, { id: 'h_1' });
    expect(comp.data.state).toBe('empty');
    expect(h.text(comp)).toContain('该医院暂未开放科室');
  });

  test('404 shows the error with a retry that reloads', async () => {
    fake.routes['GET /hospitals/h_1'] = h.apiError(404, 'NOT_FOUND', '医院不存在 / hospital not found');
    const comp = await h.mount(pageId, { id: 'h_1' });
    expect(comp.data.state).toBe('error');
    expect(h.text(comp)).toContain('医院不存在');
    fake.routes['GET /hospitals/h_1'] = fx.hospitalDetail;
    h.tapButton(h.retryButton(comp));
    await h.flush();
    expect(comp.data.state).toBe('ready');
  });

  test('pull-to-refresh reloads quietly', async () => {
    const comp = await h.mount(pageId, { id: 'h_1' });
    await comp.instance.onPullDownRefresh();
    expect(fake.requests).toHaveLength(4);
    expect(fake.wx.stopPullDownRefresh).toHaveBeenCalled();
  });

  test('search, 按日期挂号 and sharing the hospital', async () => {
    const comp = await h.mount(pageId, { id: 'h_1' });
    comp.instance.onSearchInput({ detail: { value: ' 张明华 ' } });
    h.tap(comp.querySelector('#search-go'));
    await h.flush();
    expect(h.lastNavigation(fake)).toBe(`/pages/doctors/index?hospital_id=h_1&q=${encodeURIComponent('张明华')}`);
    const days = comp.querySelectorAll('.day');
    expect(days.length).toBe(fx.hospitalDetail.rules.window_days + 1);
    h.tap(days[1]);
    await h.flush();
    expect(h.lastNavigation(fake)).toMatch(/^\/pages\/doctors\/index\?hospital_id=h_1&date=\d{4}-\d{2}-\d{2}$/);
    expect(comp.instance.onShareAppMessage()).toEqual({ title: '协和示范医院 · 在线预约挂号', path: '/pages/hospital/index?id=h_1' });
  });
});
