const h = require('../helpers');
const fx = require('../fixtures');

const pageId = h.loadPage('staff-week');
const HID = '/admin/hospitals/h_1';

const sched = (id, doctorId, date, session, status, remaining) => ({
  id, doctor_id: doctorId, date, session, status, fee_cents: 10000, slots: fx.slots(id, remaining),
});
// today is 2026-12-01; the booking window may reach beyond the 7 days shown
const items = [
  sched('w1', 'doc_1', '2026-12-01', 'pm', 'open', [1, 3]), // booked 2 / 6
  sched('w0', 'doc_1', '2026-12-01', 'am', 'full', [0, 0]), // booked 6 / 6
  sched('w2', 'doc_1', '2026-12-03', 'am', 'stopped', [3, 3]),
  sched('w3', 'doc_1', '2026-12-07', 'evening', 'not_released', [3]),
  sched('w9', 'doc_1', '2026-12-08', 'am', 'open', [0]), // day 8: not in the week
];

describe('pages/staff-week', () => {
  let fake;
  beforeEach(() => {
    jest.spyOn(Date, 'now').mockReturnValue(h.NOW);
    fake = h.fakeWx({
      [`GET ${HID}/doctors`]: { items: [fx.doctor, fx.doctors.items[1]] },
      [`GET ${HID}/schedules`]: (req) => ({ items: req.query.doctor_id === 'doc_1' ? items : [] }),
    });
    h.seedStaff(fake);
  });
  afterEach(() => jest.restoreAllMocks());

  test('without a staff session: to the login page, nothing asked', async () => {
    fake.storage.clear();
    const comp = await h.mount(pageId);
    expect(h.lastNavigation(fake, 'redirectTo')).toBe('/pages/staff-login/index');
    expect(fake.requests).toHaveLength(0);
    expect(comp.data.state).toBe('error');
  });

  test('loading state', async () => {
    fake.routes[`GET ${HID}/schedules`] = () => new Promise(() => {});
    const comp = await h.mount(pageId);
    h.expectLoading(comp, fake, `GET ${HID}/schedules`);
  });

  test('the next 7 days of the first doctor: sessions, booked/capacity, stopped', async () => {
    const comp = await h.mount(pageId);
    const req = fake.requests.find((r) => r.route === `GET ${HID}/schedules`);
    expect(req.query).toEqual({ doctor_id: 'doc_1' });
    expect(comp.data.days.map((d) => d.date)).toEqual(['2026-12-01', '2026-12-02', '2026-12-03', '2026-12-04', '2026-12-05', '2026-12-06', '2026-12-07']);
    const [first] = comp.data.days;
    expect(first.sessions.map((s) => [s.sessionText, s.booked, s.capacity, s.statusText])).toEqual([
      ['上午', 6, 6, '已约满'], ['下午', 2, 6, '预约中'],
    ]);
    const t = h.text(comp);
    expect(t).toContain('张明华 主任医师 · 未来7天');
    expect(t).toContain('12月01日 今天');
    expect(t).toContain('已停诊');
    expect(t).toContain('未放号');
    expect(t).toContain('无出诊');
    // stopped sessions do not count as capacity; day 8 is left out
    expect(comp.data.totals).toEqual({ booked: 8, capacity: 15, sessions: 4 });
    expect(comp.querySelectorAll('.session-stopped')).toHaveLength(1);
  });

  test('another doctor; an empty week says so; 请假 opens the leave page', async () => {
    const comp = await h.mount(pageId);
    h.tap(h.withDataId(comp.querySelectorAll('.doctor-tab'), 'doc_2'));
    await h.flush();
    expect(fake.requests.filter((r) => r.route === `GET ${HID}/schedules`).pop().query).toEqual({ doctor_id: 'doc_2' });
    expect(h.text(comp)).toContain('李静');
    expect(h.text(comp)).toContain('未来7天没有出诊安排');
    h.tapButton(comp.querySelector('#leave'));
    await h.flush();
    expect(h.lastNavigation(fake)).toBe('/pages/staff-leave/index?doctor_id=doc_2');
  });

  test('?doctor_id= picks that doctor; no doctors → empty state', async () => {
    const comp = await h.mount(pageId, { doctor_id: 'doc_2' });
    expect(comp.data.doctorId).toBe('doc_2');
    fake.routes[`GET ${HID}/doctors`] = { items: [] };
    const none = await h.mount(pageId);
    expect(none.data.state).toBe('empty');
    expect(h.text(none)).toContain('本院还没有医生');
  });

  test('error (503) with retry; pull-to-refresh; back from 请假 refreshes', async () => {
    fake.routes[`GET ${HID}/schedules`] = h.apiError(503, 'SERVICE_UNAVAILABLE', '服务暂不可用 / service unavailable');
    const comp = await h.mount(pageId);
    expect(comp.data.state).toBe('error');
    expect(h.text(comp)).toContain('服务暂不可用');
    expect(h.retryButton(comp)).toBeTruthy();
    fake.routes[`GET ${HID}/schedules`] = { items };
    h.tapButton(h.retryButton(comp));
    await h.flush();
    expect(comp.data.state).toBe('ready');
    await comp.instance.onPullDownRefresh();
    expect(fake.wx.stopPullDownRefresh).toHaveBeenCalled();
    const n = fake.requests.length;
    comp.instance.onShow();
    await h.flush();
    expect(fake.requests.length).toBeGreaterThan(n);
  });
});
