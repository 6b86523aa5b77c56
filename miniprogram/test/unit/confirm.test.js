const h = require('../helpers');
const fx = require('../fixtures');

const pageId = h.loadPage('confirm');
const QUERY = {
  slot_id: 'sch_2_am_s0', hospital_id: 'h_1', doctor_id: 'doc_1', date: '2026-12-02',
};
const UUID4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

function routes() {
  return {
    'GET /hospitals/h_1': fx.hospitalDetail,
    'GET /doctors/doc_1': fx.doctor,
    'GET /doctors/doc_1/schedules': (req) => ({ items: fx.schedules.items.filter((s) => s.date === req.query.from) }),
    'GET /patients': fx.patients,
    'GET /subscriptions/templates': fx.templates,
    'GET /appointments/eligibility': { eligible: true, reasons: [] },
    'POST /subscriptions': { items: [] },
    'POST /appointments': { statusCode: 201, data: fx.appointment },
  };
}

describe('pages/confirm', () => {
  let fake;
  beforeEach(() => {
    jest.spyOn(Date, 'now').mockReturnValue(h.NOW);
    fake = h.fakeWx(routes());
    h.seedPatient(fake);
  });
  afterEach(() => jest.restoreAllMocks());

  test('loading state', async () => {
    fake.routes['GET /patients'] = () => new Promise(() => {});
    const comp = await h.mount(pageId, QUERY);
    h.expectLoading(comp, fake, 'GET /patients');
  });

  test('doctor, time and fee come from the server, never from the URL', async () => {
    const forged = {
      ...QUERY, doctor_name: encodeURIComponent('假医生'), fee_cents: '1', start: '23:00', end: '23:30',
    };
    const comp = await h.mount(pageId, forged);
    expect(comp.data.state).toBe('ready');
    const t = h.text(comp);
    expect(t).toContain('张明华');
    expect(t).not.toContain('假医生');
    expect(t).toContain('08:00-08:30');
    expect(t).toContain('¥100.00');
    const sch = fake.requests.find((r) => r.route === 'GET /doctors/doc_1/schedules');
    expect(sch.query).toEqual({ from: '2026-12-02', to: '2026-12-02' });
  });

  test('a slot the server does not know (changed schedule) is an error, not a booking form', async () => {
    const comp = await h.mount(pageId, { ...QUERY, slot_id: 'gone' });
    expect(comp.data.state).toBe('error');
    expect(h.text(comp)).toContain('号源不存在或已调整，请重新选择');
    expect(fake.requests.some((r) => r.route === 'POST /appointments')).toBe(false);
  });

  test('shows the booking, the rules, the default patient and checks eligibility for it', async () => {
    const comp = await h.mount(pageId, QUERY);
    expect(comp.data.state).toBe('ready');
    const t = h.text(comp);
    expect(t).toContain('张明华');
    expect(t).toContain('协和示范医院');
    expect(t).toContain('12月02日 周三 上午 08:00-08:30');
    expect(t).toContain('¥100.00');
    expect(t).toContain('就诊前2小时之前可免费取消');
    expect(t).toContain('张三');
    expect(t).toContain('1101**********002X');
    const elig = fake.requests.find((r) => r.route === 'GET /appointments/eligibility');
    expect(elig.query).toEqual({ slot_id: 'sch_2_am_s0', patient_id: 'p_1' });
    expect(elig.header.Authorization).toBe('Bearer at-patient-1');
    expect(comp.data.canSubmit).toBe(true);
  });

  test('eligibility reasons are shown before the tap and block the button', async () => {
    fake.routes['GET /appointments/eligibility'] = (req) => (req.query.patient_id === 'p_2'
      ? {
        eligible: false,
        reasons: [
          { code: 'PATIENT_BANNED', message: '爽约次数过多，暂停预约 / banned', until: '2026-12-31T00:00:00+08:00' },
          { code: 'ALREADY_BOOKED', message: '已有同科室当日预约 / already booked' },
        ],
      }
      : { eligible: true, reasons: [] });
    const comp = await h.mount(pageId, QUERY);
    h.tap(comp.querySelectorAll('.patient')[1]);
    await h.flush();
    const t = h.text(comp);
    expect(t).toContain('暂不能预约');
    expect(t).toContain('爽约次数过多，暂停预约（至 12月31日 00:00）');
    expect(t).toContain('已有同科室当日预约');
    expect(comp.data.canSubmit).toBe(false);
    h.tapButton(comp.querySelector('#confirm'));
    await h.flush();
    expect(fake.wx.requestSubscribeMessage).not.toHaveBeenCalled();
    expect(fake.requests.some((r) => r.route === 'POST /appointments')).toBe(false);
  });

  test('wx.requestSubscribeMessage is the first wx call of the tap, made synchronously (nothing awaited before it)', async () => {
    const comp = await h.mount(pageId, QUERY);
    const before = fake.calls.length;
    // the handler bound to #confirm's tap (the next test taps the button itself), called as
    // WeChat calls it; no flush after: an await before the call would leave it for later
    expect(comp.querySelector('#confirm')).toBeTruthy();
    comp.instance.onConfirm({ type: 'tap' });
    const sync = fake.calls.slice(before);
    expect(sync.length).toBeGreaterThan(0);
    expect(sync[0].api).toBe('requestSubscribeMessage');
    expect(fake.wx.requestSubscribeMessage).toHaveBeenCalledTimes(1);
    await h.flush(10);
    expect(h.lastNavigation(fake, 'redirectTo')).toBe('/pages/result/index?id=a_1');
  });

  test('the tap calls wx.requestSubscribeMessage before any wx.request, posts its result, then books', async () => {
    const comp = await h.mount(pageId, QUERY);
    const before = fake.calls.length;
    h.tapButton(comp.querySelector('#confirm'));
    await h.flush(10);
    const during = fake.calls.slice(before).filter((c) => c.api === 'requestSubscribeMessage' || c.api === 'request');
    expect(during[0].api).toBe('requestSubscribeMessage');
    expect(during[0].args.tmplIds).toEqual(['TPL_CONFIRMED', 'TPL_REMINDER', 'TPL_CANCELLED']);
    const after = during.slice(1).map((c) => `${c.args.method} ${new URL(c.args.url).pathname}`);
    expect(after).toEqual(['POST /api/v1/subscriptions', 'POST /api/v1/appointments']);
    const sub = fake.requests.find((r) => r.route === 'POST /subscriptions');
    expect(sub.data).toEqual({ results: { TPL_CONFIRMED: 'accept', TPL_REMINDER: 'accept', TPL_CANCELLED: 'accept' } });
    const book = fake.requests.find((r) => r.route === 'POST /appointments');
    expect(book.data).toEqual({ slot_id: 'sch_2_am_s0', patient_id: 'p_1' });
    expect(book.header['Idempotency-Key']).toMatch(UUID4);
    expect(h.lastNavigation(fake, 'redirectTo')).toBe('/pages/result/index?id=a_1');
  });

  test('rejections in the subscribe dialog are posted too; a failing dialog does not stop the booking', async () => {
    fake.wx.requestSubscribeMessage.mockImplementationOnce((opts) => {
      fake.calls.push({ api: 'requestSubscribeMessage', args: opts });
      opts.success({ errMsg: 'requestSubscribeMessage:ok', TPL_CONFIRMED: 'accept', TPL_REMINDER: 'reject', TPL_CANCELLED: 'ban' });
    });
    const comp = await h.mount(pageId, QUERY);
    h.tapButton(comp.querySelector('#confirm'));
    await h.flush(10);
    const sub = fake.requests.find((r) => r.route === 'POST /subscriptions');
    expect(sub.data.results).toEqual({ TPL_CONFIRMED: 'accept', TPL_REMINDER: 'reject', TPL_CANCELLED: 'ban' });

    fake.requests.length = 0;
    fake.wx.requestSubscribeMessage.mockImplementationOnce((opts) => opts.fail({ errMsg: 'requestSubscribeMessage:fail can only be invoked by user TAP gesture.' }));
    const comp2 = await h.mount(pageId, QUERY);
    h.tapButton(comp2.querySelector('#confirm'));
    await h.flush(10);
    expect(fake.requests.some((r) => r.route === 'POST /subscriptions')).toBe(false);
    expect(fake.requests.some((r) => r.route === 'POST /appointments')).toBe(true);
  });

  test('without templates (notify down) it books without asking', async () => {
    fake.routes['GET /subscriptions/templates'] = h.apiError(503, 'SERVICE_UNAVAILABLE', '服务暂不可用 / unavailable');
    const comp = await h.mount(pageId, QUERY);
    expect(comp.data.state).toBe('ready');
    h.tapButton(comp.querySelector('#confirm'));
    await h.flush(10);
    expect(fake.wx.requestSubscribeMessage).not.toHaveBeenCalled();
    expect(fake.requests.some((r) => r.route === 'POST /appointments')).toBe(true);
  });

  test('a network failure keeps the Idempotency-Key for the retry of the same attempt', async () => {
    let n = 0;
    fake.routes['POST /appointments'] = () => {
      n += 1;
      return n === 1 ? 'network' : { statusCode: 201, data: fx.appointment };
    };
    const comp = await h.mount(pageId, QUERY);
    h.tapButton(comp.querySelector('#confirm'));
    await h.flush(10);
    expect(h.text(comp)).toContain('网络异常，请重试');
    expect(h.toasts(fake)).toContain('网络异常，请重试');
    expect(comp.data.submitText).toBe('重新提交');
    expect(fake.wx.redirectTo).not.toHaveBeenCalled();
    h.tapButton(comp.querySelector('#confirm'));
    await h.flush(10);
    const keys = fake.requests.filter((r) => r.route === 'POST /appointments').map((r) => r.header['Idempotency-Key']);
    expect(keys).toHaveLength(2);
    expect(keys[0]).toBe(keys[1]);
    expect(h.lastNavigation(fake, 'redirectTo')).toBe('/pages/result/index?id=a_1');
  });

  test('a business refusal shows the reason, re-checks eligibility and starts a new attempt next time', async () => {
    let n = 0;
    fake.routes['POST /appointments'] = () => {
      n += 1;
      return n === 1 ? h.apiError(409, 'SLOT_FULL', '号源已约满 / slot is full') : { statusCode: 201, data: fx.appointment };
    };
    const comp = await h.mount(pageId, QUERY);
    h.tapButton(comp.querySelector('#confirm'));
    await h.flush(10);
    expect(h.toasts(fake)).toContain('号源已约满');
    expect(h.text(comp)).toContain('号源已约满');
    expect(fake.requests.filter((r) => r.route === 'GET /appointments/eligibility')).toHaveLength(2);
    h.tapButton(comp.querySelector('#confirm'));
    await h.flush(10);
    const keys = fake.requests.filter((r) => r.route === 'POST /appointments').map((r) => r.header['Idempotency-Key']);
    expect(keys[0]).not.toBe(keys[1]);
  });

  test('no patient profile: asks to add one and cannot submit', async () => {
    fake.routes['GET /patients'] = { items: [] };
    const comp = await h.mount(pageId, QUERY);
    expect(h.text(comp)).toContain('还没有就诊人');
    expect(comp.data.canSubmit).toBe(false);
    h.tapButton(comp.querySelector('#add-patient'));
    await h.flush();
    expect(h.lastNavigation(fake)).toBe('/pages/patients/index');
    // back on the page with a new profile
    fake.routes['GET /patients'] = { items: [fx.patient] };
    comp.instance.onShow();
    await h.flush();
    expect(comp.data.patientId).toBe('p_1');
    expect(comp.data.canSubmit).toBe(true);
  });

  test('first use logs in with wx.login before loading the profiles', async () => {
    fake.storage.clear();
    fake.routes['POST /auth/wechat/login'] = fx.tokenPair('new');
    const comp = await h.mount(pageId, QUERY);
    await h.flush();
    expect(comp.data.state).toBe('ready');
    expect(fake.wx.login).toHaveBeenCalledTimes(1);
    const login = fake.requests.find((r) => r.route === 'POST /auth/wechat/login');
    expect(login.data).toEqual({ code: 'wx-code-1' });
    const patients = fake.requests.find((r) => r.route === 'GET /patients');
    expect(patients.header.Authorization).toBe('Bearer at-new');
  });

  test('error state and retry', async () => {
    fake.routes['GET /hospitals/h_1'] = 'network';
    const comp = await h.mount(pageId, QUERY);
    expect(comp.data.state).toBe('error');
    fake.routes['GET /hospitals/h_1'] = fx.hospitalDetail;
    h.tapButton(h.retryButton(comp));
    await h.flush();
    expect(comp.data.state).toBe('ready');
  });
});
