const h = require('../helpers');
const fx = require('../fixtures');

const pageId = h.loadPage('doctor');

describe('pages/doctor (date strip, sessions, slots)', () => {
  let fake;
  beforeEach(() => {
    jest.spyOn(Date, 'now').mockReturnValue(h.NOW);
    fake = h.fakeWx({
      'GET /doctors/doc_1': fx.doctor,
      'GET /hospitals/h_1': fx.hospitalDetail,
      'GET /doctors/doc_1/schedules': fx.schedules,
      'GET /subscriptions/templates': fx.templates,
    });
  });
  afterEach(() => jest.restoreAllMocks());

  test('loading state', async () => {
    fake.routes['GET /doctors/doc_1'] = () => new Promise(() => {});
    const comp = await h.mount(pageId, { id: 'doc_1', hospital_id: 'h_1' });
    h.expectLoading(comp, fake, 'GET /doctors/doc_1');
  });

  test('asks schedules over the hospital window and shows the doctor', async () => {
    const comp = await h.mount(pageId, { id: 'doc_1', hospital_id: 'h_1' });
    expect(comp.data.state).toBe('ready');
    const sch = fake.requests.find((r) => r.route === 'GET /doctors/doc_1/schedules');
    expect(sch.query).toEqual({ from: '2026-12-01', to: '2026-12-08' });
    const t = h.text(comp);
    expect(t).toContain('张明华');
    expect(t).toContain('主任医师');
    expect(t).toContain('挂号费 ¥100.00');
    expect(t).toContain('从事心血管内科临床工作三十年');
    // 8 dates: today + window_days
    expect(comp.data.days).toHaveLength(8);
    expect(comp.data.days[0]).toMatchObject({ date: '2026-12-01', week: '今天', mark: '无号' });
    expect(comp.data.days[1]).toMatchObject({ date: '2026-12-02', week: '明天', mark: '有号' });
    expect(comp.data.days[7]).toMatchObject({ date: '2026-12-08', mark: '待放号' });
  });

  test('the first date with numbers is selected: 余N / 约满 / 停诊 per session', async () => {
    const comp = await h.mount(pageId, { id: 'doc_1', hospital_id: 'h_1' });
    expect(comp.data.date).toBe('2026-12-02');
    const t = h.text(comp);
    expect(t).toContain('上午');
    expect(t).toContain('余3');
    expect(t).toContain('下午');
    expect(t).toContain('约满');
    expect(t).toContain('夜间');
    expect(t).toContain('停诊');
    // the open session's slots are listed
    const slots = comp.querySelectorAll('.slot');
    expect(slots).toHaveLength(3);
    expect(t).toContain('08:00-08:30');
    expect(t).toContain('余2');
  });

  test('未放号 shows the release time; 已截止 for a closed session', async () => {
    const comp = await h.mount(pageId, { id: 'doc_1', hospital_id: 'h_1' });
    comp.querySelector('#dates').querySelectorAll('.ds-day')[7].dispatchEvent('tap');
    await h.flush();
    expect(comp.data.date).toBe('2026-12-08');
    expect(h.text(comp)).toContain('未放号');
    expect(h.text(comp)).toContain('12月02日 08:00 放号');
    comp.querySelector('#dates').querySelectorAll('.ds-day')[0].dispatchEvent('tap');
    await h.flush();
    expect(h.text(comp)).toContain('已截止');
    comp.querySelector('#dates').querySelectorAll('.ds-day')[3].dispatchEvent('tap');
    await h.flush();
    expect(h.text(comp)).toContain('暂无出诊');
  });

  test('picking a slot with numbers opens the confirm page with its details', async () => {
    const comp = await h.mount(pageId, { id: 'doc_1', hospital_id: 'h_1' });
    h.tap(comp.querySelectorAll('.slot')[0]);
    await h.flush();
    const url = h.lastNavigation(fake);
    expect(url.startsWith('/pages/confirm/index?')).toBe(true);
    const q = Object.fromEntries(new URLSearchParams(url.split('?')[1]));
    // ids only: the confirm page reads doctor, time and fee from the server
    expect(q).toEqual({
      slot_id: 'sch_2_am_s0', hospital_id: 'h_1', doctor_id: 'doc_1', date: '2026-12-02',
    });
  });

  test('a booking window beyond 62 days is asked in several calls of at most 62 days', async () => {
    fake.routes['GET /hospitals/h_1'] = { ...fx.hospitalDetail, rules: { ...fx.hospitalDetail.rules, window_days: 90 } };
    fake.routes['GET /doctors/doc_1/schedules'] = (req) => ({
      items: fx.schedules.items.filter((s) => s.date >= req.query.from && s.date <= req.query.to),
    });
    const comp = await h.mount(pageId, { id: 'doc_1', hospital_id: 'h_1' });
    expect(comp.data.state).toBe('ready');
    const calls = fake.requests.filter((r) => r.route === 'GET /doctors/doc_1/schedules').map((r) => r.query);
    expect(calls).toEqual([
      { from: '2026-12-01', to: '2027-02-01' },
      { from: '2027-02-02', to: '2027-03-01' },
    ]);
    calls.forEach(({ from, to }) => {
      expect((Date.parse(to) - Date.parse(from)) / 86400000).toBeLessThanOrEqual(62);
    });
    expect(comp.data.days).toHaveLength(91);
    expect(comp.data.date).toBe('2026-12-02');
  });

  test('余N counts only slices that can still be booked: not started today, status open', async () => {
    // 09:00 now: the 08:00 and 08:30 slices of today have started; 09:30 is closed by the hospital
    const today = {
      id: 'sch_1_pm', doctor_id: 'doc_1', date: '2026-12-01', session: 'am', status: 'open', release_at: null, fee_cents: 10000,
      slots: fx.slots('sch_1_pm', [2, 1, 3, 1, 2]).map((s, i) => (i === 3 ? { ...s, status: 'closed' } : s)),
    };
    fake.routes['GET /doctors/doc_1/schedules'] = { items: [today] };
    const comp = await h.mount(pageId, { id: 'doc_1', hospital_id: 'h_1' });
    expect(comp.data.date).toBe('2026-12-01');
    // 08:00 (2) and 08:30 (1) started, 09:00 starts now (3), 09:30 closed (1): only 10:00 (2) is left
    expect(comp.data.sessions[0].text).toBe('余2');
    const slots = comp.querySelectorAll('.slot');
    expect(slots.map((n) => n.dom.textContent.replace(/\s+/g, ' ').trim())).toEqual([
      '08:00-08:30已开始', '08:30-09:00已开始', '09:00-09:30已开始', '09:30-10:00已截止', '10:00-10:30余2',
    ]);
    h.tap(slots[0]);
    await h.flush();
    expect(fake.wx.navigateTo).not.toHaveBeenCalled();
    expect(h.toasts(fake)).toContain('该时段已开始，请选择其他时段');
    h.tap(slots[4]);
    await h.flush();
    expect(h.lastNavigation(fake)).toContain('slot_id=sch_1_pm_s4');
  });

  test('a full slot or a non-bookable session only explains itself', async () => {
    const comp = await h.mount(pageId, { id: 'doc_1', hospital_id: 'h_1' });
    h.tap(comp.querySelectorAll('.slot')[1]);
    await h.flush();
    expect(fake.wx.navigateTo).not.toHaveBeenCalled();
    expect(h.toasts(fake)).toContain('该时段已约满，请选择其他时段');
    h.tap(comp.querySelectorAll('.session-head')[2]);
    await h.flush();
    expect(h.toasts(fake)).toContain('该时段停诊');
  });

  test('without hospital_id the doctor tells which hospital rules apply', async () => {
    const comp = await h.mount(pageId, { id: 'doc_1' });
    expect(comp.data.state).toBe('ready');
    expect(fake.requests.map((r) => r.route)).toEqual([
      'GET /doctors/doc_1', 'GET /hospitals/h_1', 'GET /doctors/doc_1/schedules', 'GET /subscriptions/templates',
    ]);
  });

  test('no sessions at all: the doctor is shown with 暂无出诊', async () => {
    fake.routes['GET /doctors/doc_1/schedules'] = { items: [] };
    const comp = await h.mount(pageId, { id: 'doc_1', hospital_id: 'h_1' });
    expect(comp.data.state).toBe('ready');
    expect(comp.data.date).toBe('2026-12-01');
    expect(h.text(comp)).toContain('暂无出诊');
  });

  test('error state and retry', async () => {
    fake.routes['GET /doctors/doc_1/schedules'] = 'network';
    const comp = await h.mount(pageId, { id: 'doc_1', hospital_id: 'h_1' });
    expect(comp.data.state).toBe('error');
    expect(h.text(comp)).toContain('网络异常，请重试');
    fake.routes['GET /doctors/doc_1/schedules'] = fx.schedules;
    h.tapButton(h.retryButton(comp));
    await h.flush();
    expect(comp.data.state).toBe('ready');
  });

  test('pull-to-refresh keeps the chosen date', async () => {
    const comp = await h.mount(pageId, { id: 'doc_1', hospital_id: 'h_1' });
    comp.querySelector('#dates').querySelectorAll('.ds-day')[7].dispatchEvent('tap');
    await h.flush();
    await comp.instance.onPullDownRefresh();
    expect(comp.data.date).toBe('2026-12-08');
    expect(fake.wx.stopPullDownRefresh).toHaveBeenCalled();
  });

  test('候补 on a full session: wx.requestSubscribeMessage(waitlist_promoted) first, then join', async () => {
    h.seedPatient(fake);
    fake.routes['GET /patients'] = fx.patients;
    fake.routes['POST /subscriptions'] = { items: [] };
    fake.routes['POST /waitlist'] = (req) => ({ statusCode: 201, data: { id: 'wl_1', status: 'waiting', ...req.data } });
    const comp = await h.mount(pageId, { id: 'doc_1', hospital_id: 'h_1' });
    const templatesCall = fake.requests.find((r) => r.route === 'GET /subscriptions/templates');
    expect(templatesCall.header.Authorization).toBeUndefined(); // browsing needs no login
    // 12-02: the pm session is 约满 → 候补 offered there only
    const buttons = comp.querySelectorAll('.join-waitlist');
    expect(buttons).toHaveLength(1);
    const before = fake.calls.length;
    comp.instance.onJoinWaitlist({ currentTarget: { dataset: { id: 'sch_2_pm' } } });
    expect(fake.calls.slice(before)[0]).toMatchObject({ api: 'requestSubscribeMessage', args: { tmplIds: ['TPL_WAITLIST'] } });
    await h.flush(10);
    const sub = fake.requests.find((r) => r.route === 'POST /subscriptions');
    expect(sub.data).toEqual({ results: { TPL_WAITLIST: 'accept' } });
    const join = fake.requests.find((r) => r.route === 'POST /waitlist');
    expect(join.data).toEqual({
      doctor_id: 'doc_1', date_from: '2026-12-02', date_to: '2026-12-02', sessions: ['pm'], patient_id: 'p_1',
    });
    expect(join.data.hospital_id).toBeUndefined();
    expect(h.toasts(fake)).toContain('已为张三加入候补');
  });

  test('a shared link opens its date, and sharing carries the chosen date', async () => {
    const comp = await h.mount(pageId, { id: 'doc_1', hospital_id: 'h_1', date: '2026-12-08' });
    expect(comp.data.date).toBe('2026-12-08');
    expect(h.text(comp)).toContain('未放号');
    const share = comp.instance.onShareAppMessage();
    expect(share.path).toBe('/pages/doctor/index?id=doc_1&hospital_id=h_1&date=2026-12-08');
    expect(share.title).toContain('张明华 主任医师');
    // the path opens the same page on the same date
    const [, qs] = share.path.split('?');
    const again = await h.mount(pageId, Object.fromEntries(new URLSearchParams(qs)));
    expect(again.data.date).toBe('2026-12-08');
  });
});
