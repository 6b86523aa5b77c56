const h = require('../helpers');
const fx = require('../fixtures');

const pageId = h.loadPage('staff-sessions');
const HID = '/admin/hospitals/h_1';

const sched = [
  { id: 'sch_a', doctor_id: 'doc_1', date: '2026-12-01', session: 'am', status: 'open', fee_cents: 10000, slots: fx.slots('sch_a', [2, 0]) },
  { id: 'sch_b', doctor_id: 'doc_2', date: '2026-12-01', session: 'pm', status: 'stopped', fee_cents: 5000, slots: fx.slots('sch_b', [3]) },
];

describe('pages/staff-sessions', () => {
  let fake;
  beforeEach(() => {
    jest.spyOn(Date, 'now').mockReturnValue(h.NOW);
    fake = h.fakeWx({
      [`GET ${HID}/schedules`]: { items: sched },
      [`GET ${HID}/doctors`]: { items: [fx.doctor, { ...fx.doctors.items[1], published: false }] },
      [`POST ${HID}/schedules/sch_a/stop`]: { schedule_id: 'sch_a', status: 'stopped', cancelled: 2 },
      [`POST ${HID}/slots/sch_a_s0/capacity`]: (req) => ({ id: 'sch_a_s0', schedule_id: 'sch_a', start: '08:00', end: '08:30', capacity: 3 + req.data.delta, remaining: 2 + req.data.delta }),
    });
    h.seedStaff(fake);
  });
  afterEach(() => jest.restoreAllMocks());

  test('without a staff session: to the login page', async () => {
    fake.storage.clear();
    await h.mount(pageId);
    expect(h.lastNavigation(fake, 'redirectTo')).toBe('/pages/staff-login/index');
  });

  test('loading state', async () => {
    fake.routes[`GET ${HID}/schedules`] = () => new Promise(() => {});
    const comp = await h.mount(pageId);
    h.expectLoading(comp, fake, `GET ${HID}/schedules`);
  });

  test('sessions of today with doctor names, status and slots', async () => {
    const comp = await h.mount(pageId);
    const q = fake.requests.find((r) => r.route === `GET ${HID}/schedules`).query;
    expect(q).toEqual({ date: '2026-12-01' });
    const t = h.text(comp);
    expect(t).toContain('张明华 主任医师 · 上午');
    expect(t).toContain('预约中');
    expect(t).toContain('号源 6，剩余 2，已约 4');
    expect(t).toContain('李静 副主任医师 · 下午');
    expect(t).toContain('已停诊');
    expect(comp.querySelectorAll('.stop')).toHaveLength(1);
  });

  test('停诊 asks for a reason and posts it', async () => {
    fake.wx.showModal.mockImplementationOnce((o) => o.success({ confirm: true, content: '医生外出会诊' }));
    const comp = await h.mount(pageId);
    h.tapButton(comp.querySelector('.stop'));
    await h.flush();
    const stop = fake.requests.find((r) => r.route === `POST ${HID}/schedules/sch_a/stop`);
    expect(stop.data).toEqual({ reason: '医生外出会诊' });
    expect(h.toasts(fake)).toContain('已停诊，取消2个预约');
    expect(comp.data.schedules.every((s) => s.status === 'stopped')).toBe(true);
  });

  test('加号 / 减号 post the delta and update the slot; refusals are toasts', async () => {
    const comp = await h.mount(pageId);
    h.tapButton(h.withDataId(comp.querySelectorAll('.plus'), 'sch_a_s0'));
    await h.flush();
    const req = fake.requests.find((r) => r.route === `POST ${HID}/slots/sch_a_s0/capacity`);
    expect(req.data).toEqual({ delta: 1 });
    expect(h.text(comp)).toContain('余3/4');
    fake.routes[`POST ${HID}/slots/sch_a_s0/capacity`] = h.apiError(409, 'INVALID_STATE', '不能少于已预约数 / below booked');
    h.tapButton(h.withDataId(comp.querySelectorAll('.minus'), 'sch_a_s0'));
    await h.flush();
    expect(h.toasts(fake)).toContain('不能少于已预约数');
  });

  test('empty date and error state with retry', async () => {
    fake.routes[`GET ${HID}/schedules`] = { items: [] };
    const comp = await h.mount(pageId);
    expect(h.text(comp)).toContain('没有出诊安排');
    fake.routes[`GET ${HID}/schedules`] = 'network';
    comp.querySelector('#dates').querySelectorAll('.ds-day')[2].dispatchEvent('tap');
    await h.flush();
    expect(comp.data.state).toBe('error');
    fake.routes[`GET ${HID}/schedules`] = { items: sched };
    h.tapButton(h.retryButton(comp));
    await h.flush();
    expect(comp.data.state).toBe('ready');
    await comp.instance.onPullDownRefresh();
    expect(fake.wx.stopPullDownRefresh).toHaveBeenCalled();
  });
});
