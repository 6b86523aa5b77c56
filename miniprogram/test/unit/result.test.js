const h = require('../helpers');
const fx = require('../fixtures');

const pageId = h.loadPage('result');

describe('pages/result', () => {
  let fake;
  beforeEach(() => {
    jest.spyOn(Date, 'now').mockReturnValue(h.NOW);
    fake = h.fakeWx({ 'GET /appointments/a_1': fx.appointment, 'GET /hospitals/h_1': fx.hospitalDetail });
    h.seedPatient(fake);
  });
  afterEach(() => jest.restoreAllMocks());

  test('loading state', async () => {
    fake.routes['GET /appointments/a_1'] = () => new Promise(() => {});
    const comp = await h.mount(pageId, { id: 'a_1' });
    h.expectLoading(comp, fake, 'GET /appointments/a_1');
  });

  test('shows seq_no, time and place', async () => {
    const comp = await h.mount(pageId, { id: 'a_1' });
    const t = h.text(comp);
    expect(t).toContain('预约成功');
    expect(t).toContain('第 3 号');
    expect(t).toContain('12月02日 周三 上午 08:00-08:30');
    expect(t).toContain('协和示范医院 心血管内科');
    expect(t).toContain('北京市东城区帅府园1号');
    expect(t).toContain('张明华 主任医师');
    expect(t).toContain('1101**********002X');
    expect(t).toContain('12月02日 06:00');
  });

  test('a pending lottery entry waits for the draw and then shows the number', async () => {
    const config = require('../../config');
    const before = config.lotteryPollMs;
    config.lotteryPollMs = 20;
    try {
      fake.routes['GET /appointments/a_1'] = { ...fx.appointment, status: 'pending', seq_no: 0,
        lottery_draw_at: '2026-12-01T08:00:10+08:00' };
      const comp = await h.mount(pageId, { id: 'a_1' });
      expect(h.text(comp)).toContain('已参加放号抽签');
      fake.routes['GET /appointments/a_1'] = fx.appointment;
      await new Promise((resolve) => setTimeout(resolve, 100));
      await h.flush();
      expect(h.text(comp)).toContain('预约成功');
      expect(h.text(comp)).toContain('第 3 号');
      comp.instance.onUnload();
    } finally {
      config.lotteryPollMs = before;
    }
  });

  test('a lost lottery says so', async () => {
    fake.routes['GET /appointments/a_1'] = { ...fx.appointment, status: 'cancelled',
      cancelled_by: 'system', reason: '未中签 / not drawn in the release lottery' };
    const comp = await h.mount(pageId, { id: 'a_1' });
    expect(h.text(comp)).toContain('未能预约');
    expect(h.text(comp)).toContain('未中签');
  });

  test('the place falls back to the department when the hospital cannot load', async () => {
    fake.routes['GET /hospitals/h_1'] = 'network';
    const comp = await h.mount(pageId, { id: 'a_1' });
    expect(comp.data.state).toBe('ready');
    expect(h.text(comp)).toContain('心血管内科');
  });

  test('buttons go to my appointments and home (tab pages)', async () => {
    const comp = await h.mount(pageId, { id: 'a_1' });
    h.tapButton(comp.querySelector('#to-list'));
    await h.flush();
    expect(h.lastNavigation(fake, 'switchTab')).toBe('/pages/appointments/index');
    h.tapButton(comp.querySelector('#to-home'));
    await h.flush();
    expect(h.lastNavigation(fake, 'switchTab')).toBe('/pages/index/index');
  });

  test('error state and retry', async () => {
    fake.routes['GET /appointments/a_1'] = h.apiError(404, 'NOT_FOUND', '预约不存在 / appointment not found');
    const comp = await h.mount(pageId, { id: 'a_1' });
    expect(comp.data.state).toBe('error');
    expect(h.text(comp)).toContain('预约不存在');
    fake.routes['GET /appointments/a_1'] = fx.appointment;
    h.tapButton(h.retryButton(comp));
    await h.flush();
    expect(comp.data.state).toBe('ready');
  });
});
