const h = require('../helpers');
const fx = require('../fixtures');

const pageId = h.loadPage('doctors');
const QUERY = { hospital_id: 'h_1', department_id: 'dep_cardio', name: encodeURIComponent('心血管内科') };

describe('pages/doctors', () => {
  let fake;
  beforeEach(() => {
    fake = h.fakeWx({ 'GET /doctors': fx.doctors });
  });

  test('loading state', async () => {
    fake.routes['GET /doctors'] = () => new Promise(() => {});
    const comp = await h.mount(pageId, QUERY);
    h.expectLoading(comp, fake, 'GET /doctors');
  });

  test('lists doctors of the department with title, specialty, fee and next date', async () => {
    const comp = await h.mount(pageId, QUERY);
    expect(fake.requests[0].query).toEqual({ hospital_id: 'h_1', department_id: 'dep_cardio' });
    const t = h.text(comp);
    expect(t).toContain('心血管内科');
    expect(t).toContain('张明华');
    expect(t).toContain('主任医师');
    expect(t).toContain('擅长：高血压、冠心病、心力衰竭');
    expect(t).toContain('¥100.00');
    expect(t).toContain('¥50.50');
    expect(t).toContain('最近可约 12月02日 周三');
    expect(t).toContain('近期暂无可约号源');
    expect(fake.wx.setNavigationBarTitle).toHaveBeenCalledWith({ title: '心血管内科' });
  });

  test('empty state', async () => {
    fake.routes['GET /doctors'] = { items: [] };
    const comp = await h.mount(pageId, QUERY);
    expect(h.text(comp)).toContain('该科室暂无出诊医生');
  });

  test('error state and retry', async () => {
    fake.routes['GET /doctors'] = h.apiError(429, 'RATE_LIMITED', '请求过于频繁 / too many requests');
    const comp = await h.mount(pageId, QUERY);
    expect(comp.data.state).toBe('error');
    expect(h.text(comp)).toContain('请求过于频繁');
    fake.routes['GET /doctors'] = fx.doctors;
    h.tapButton(h.retryButton(comp));
    await h.flush();
    expect(comp.data.state).toBe('ready');
  });

  test('tapping a doctor opens the doctor page', async () => {
    const comp = await h.mount(pageId, QUERY);
    h.tap(comp.querySelectorAll('.doctor')[0]);
    await h.flush();
    expect(h.lastNavigation(fake)).toBe('/pages/doctor/index?id=doc_1&hospital_id=h_1');
  });

  test('pull-to-refresh', async () => {
    const comp = await h.mount(pageId, QUERY);
    await comp.instance.onPullDownRefresh();
    expect(fake.requests).toHaveLength(2);
    expect(fake.wx.stopPullDownRefresh).toHaveBeenCalled();
  });

  test('doctor search passes q and says what was searched', async () => {
    const comp = await h.mount(pageId, { hospital_id: 'h_1', q: encodeURIComponent('高血压') });
    expect(fake.requests[0].query).toEqual({ hospital_id: 'h_1', q: '高血压' });
    expect(h.text(comp)).toContain('搜索“高血压”');
  });

  test('按日期挂号: only doctors with numbers still bookable that day; the doctor opens on it', async () => {
    jest.spyOn(Date, 'now').mockReturnValue(h.NOW);
    fake.routes['GET /doctors/doc_1/schedules'] = (req) => ({ items: fx.schedules.items.filter((s) => s.date === req.query.from) });
    fake.routes['GET /doctors/doc_2/schedules'] = { items: [] };
    const comp = await h.mount(pageId, { hospital_id: 'h_1', date: '2026-12-02' });
    await h.flush();
    expect(comp.data.doctors.map((d) => d.id)).toEqual(['doc_1']);
    expect(h.text(comp)).toContain('12月02日 周三 余3');
    h.tap(comp.querySelectorAll('.doctor')[0]);
    await h.flush();
    expect(h.lastNavigation(fake)).toBe('/pages/doctor/index?id=doc_1&hospital_id=h_1&date=2026-12-02');
    jest.restoreAllMocks();
  });
});
