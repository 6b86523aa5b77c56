const h = require('../helpers');
const fx = require('../fixtures');

const pageId = h.loadPage('appointments');

const second = {
  ...fx.appointment, id: 'a_2', status: 'cancelled', seq_no: 5, cancelled_by: 'patient',
  doctor: { id: 'doc_2', name: '李静', title: '副主任医师' },
};
const third = { ...fx.appointment, id: 'a_3', status: 'no_show', seq_no: 1, date: '2026-11-20' };

describe('pages/appointments (我的预约)', () => {
  let fake;
  beforeEach(() => {
    jest.spyOn(Date, 'now').mockReturnValue(h.NOW);
    fake = h.fakeWx({
      'GET /appointments': (req) => {
        if (req.query.status === 'booked') return { items: [fx.appointment] };
        if (req.query.status === 'checked_in') return { items: [] };
        if (req.query.cursor === '2') return { items: [third], next: null };
        return { items: [fx.appointment, second], next: '2' };
      },
    });
    h.seedPatient(fake);
  });
  afterEach(() => jest.restoreAllMocks());

  test('loading state', async () => {
    fake.routes['GET /appointments'] = () => new Promise(() => {});
    const comp = await h.mount(pageId);
    h.expectLoading(comp, fake, 'GET /appointments');
  });

  test('lists all appointments with status labels', async () => {
    const comp = await h.mount(pageId);
    expect(fake.requests[0].query).toEqual({});
    expect(fake.requests[0].header.Authorization).toBe('Bearer at-patient-1');
    const t = h.text(comp);
    expect(t).toContain('张明华');
    expect(t).toContain('待就诊');
    expect(t).toContain('李静');
    expect(t).toContain('已取消');
    expect(t).toContain('12月02日 周三 上午 08:00-08:30 · 第3号');
    expect(t).toContain('加载更多');
  });

  test('more pages follow `next` (button and reaching the bottom)', async () => {
    const comp = await h.mount(pageId);
    h.tapButton(comp.querySelector('#more'));
    await h.flush();
    expect(fake.requests[1].query).toEqual({ cursor: '2' });
    expect(comp.data.items.map((a) => a.id)).toEqual(['a_1', 'a_2', 'a_3']);
    expect(h.text(comp)).toContain('爽约');
    expect(h.text(comp)).toContain('没有更多了');
    await comp.instance.onReachBottom();
    expect(fake.requests).toHaveLength(2); // nothing more to ask
  });

  test('tabs filter by status; an empty tab says so', async () => {
    const comp = await h.mount(pageId);
    const tabs = comp.querySelectorAll('.tab');
    expect(tabs.map((t) => t.dom.textContent)).toEqual(['全部', '待支付', '待就诊', '已签到', '已完成', '已取消', '爽约']);
    h.tap(tabs[2]);
    await h.flush();
    expect(fake.requests[1].query).toEqual({ status: 'booked' });
    expect(comp.data.items.map((a) => a.id)).toEqual(['a_1']);
    h.tap(comp.querySelectorAll('.tab')[3]);
    await h.flush();
    expect(comp.data.state).toBe('empty');
    expect(h.text(comp)).toContain('没有已签到的预约');
    h.tapButton(comp.querySelector('#state').querySelector('#sv-action'));
    await h.flush();
    expect(h.lastNavigation(fake, 'switchTab')).toBe('/pages/index/index');
  });

  test('tapping an appointment opens its detail', async () => {
    const comp = await h.mount(pageId);
    h.tap(comp.querySelectorAll('.appt')[1]);
    await h.flush();
    expect(h.lastNavigation(fake)).toBe('/pages/appointment-detail/index?id=a_2');
  });

  test('onShow after the first load refreshes quietly', async () => {
    const comp = await h.mount(pageId, {}, { show: true });
    expect(fake.requests).toHaveLength(1); // the first show does not load twice
    comp.instance.onShow();
    await h.flush();
    expect(fake.requests).toHaveLength(2);
    expect(comp.data.state).toBe('ready');
  });

  test('error state and retry; pull-to-refresh', async () => {
    fake.routes['GET /appointments'] = 'network';
    const comp = await h.mount(pageId);
    expect(comp.data.state).toBe('error');
    expect(h.text(comp)).toContain('网络异常，请重试');
    fake.routes['GET /appointments'] = { items: [fx.appointment] };
    h.tapButton(h.retryButton(comp));
    await h.flush();
    expect(comp.data.state).toBe('ready');
    await comp.instance.onPullDownRefresh();
    expect(fake.wx.stopPullDownRefresh).toHaveBeenCalled();
  });
});
