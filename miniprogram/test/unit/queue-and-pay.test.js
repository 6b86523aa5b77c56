// 我的预约 and the appointment detail with an online fee (待支付 countdown, 去支付, unpaid
// cancellation, refund status) and the live queue (候诊) on the detail page: refreshed every
// config.queueRefreshMs while shown, stopped in onHide / onUnload (no timer leaks).
const h = require('../helpers');
const fx = require('../fixtures');
const config = require('../../config');

const ids = h.loadPages(['appointments', 'appointment-detail']);

const PAY_BY = '2026-12-01T09:15:00+08:00';
const PAY_ARGS = {
  timeStamp: '1764550800', nonceStr: 'abc', package: 'prepay_id=wx1', signType: 'RSA', paySign: 'sig==',
};
const pending = {
  ...fx.appointment,
  status: 'pending_payment',
  pay_by: PAY_BY,
  payment: { order_id: 'o_1', amount_cents: 10000, status: 'unpaid' },
};
const expired = {
  ...pending, status: 'cancelled', cancelled_by: 'system', reason: 'unpaid', payment: { ...pending.payment, status: 'closed' },
};
const refunded = {
  ...fx.appointment,
  id: 'a_2',
  status: 'cancelled',
  cancelled_by: 'patient',
  payment: { order_id: 'o_2', amount_cents: 10000, status: 'refunded' },
  refund: { out_refund_no: 'r_2', amount_cents: 10000, status: 'succeeded' },
};
const today = { ...fx.appointment, status: 'checked_in', date: '2026-12-01' };
const QUEUE = {
  position: 4, ahead: 3, now_serving_seq: 7, eta_minutes: 24, status: 'waiting',
};

const count = (fake, route) => fake.requests.filter((r) => r.route === route).length;

describe('我的预约 with 待支付', () => {
  let fake;
  const saved = { ...config };
  beforeEach(() => {
    jest.spyOn(Date, 'now').mockReturnValue(h.NOW);
    Object.assign(config, { countdownTickMs: 5, payPollMs: 5 });
    fake = h.fakeWx({
      'GET /appointments': { items: [pending, refunded] },
      'POST /appointments/a_1/pay': PAY_ARGS,
    });
    h.seedPatient(fake);
  });
  afterEach(() => {
    Object.assign(config, saved);
    jest.restoreAllMocks();
  });

  test('待支付 with a live countdown and 去支付; refund status of a cancelled one', async () => {
    const comp = await h.mount(ids.appointments, {}, { show: true });
    let t = h.text(comp);
    expect(t).toContain('待支付');
    expect(t).toContain('待支付 ¥100.00，剩余 15:00');
    expect(t).toContain('挂号费已退款 ¥100.00');
    Date.now.mockReturnValue(h.NOW + 5 * 60 * 1000 + 30 * 1000);
    await h.flush();
    t = h.text(comp);
    expect(t).toContain('剩余 09:30');
    comp.instance.onUnload();
  });

  test('the 待支付 tab asks for status=pending_payment', async () => {
    const comp = await h.mount(ids.appointments);
    h.tap(comp.querySelectorAll('.tab')[1]);
    await h.flush();
    expect(fake.requests.pop().query).toEqual({ status: 'pending_payment' });
    comp.instance.onUnload();
  });

  test('去支付 passes the server\'s arguments and opens the result page that waits for paid', async () => {
    const comp = await h.mount(ids.appointments, {}, { show: true });
    h.tapButton(comp.querySelector('.pay'));
    await h.flush();
    expect(h.withoutCallbacks(fake.wx.requestPayment.mock.calls[0][0])).toEqual(PAY_ARGS);
    expect(h.lastNavigation(fake)).toBe('/pages/result/index?id=a_1&paid=1');
    comp.instance.onUnload();
  });

  test('a cancelled sheet stays on the list with 去支付', async () => {
    const comp = await h.mount(ids.appointments, {}, { show: true });
    fake.wx.requestPayment.mockImplementation((o) => o.fail({ errMsg: 'requestPayment:fail cancel' }));
    h.tapButton(comp.querySelector('.pay'));
    await h.flush();
    expect(h.lastNavigation(fake)).toBe(undefined);
    expect(h.toasts(fake)).toContain('已取消支付，请在截止前完成支付');
    expect(comp.querySelector('.pay')).toBeTruthy();
    comp.instance.onUnload();
  });

  test('reaching pay_by: the list asks again and shows the system cancellation (unpaid)', async () => {
    const comp = await h.mount(ids.appointments, {}, { show: true });
    fake.routes['GET /appointments'] = { items: [expired, refunded] };
    Date.now.mockReturnValue(Date.parse(PAY_BY) + 1000);
    await h.flush(12);
    const t = h.text(comp);
    expect(t).toContain('超时未支付，号源已释放');
    expect(comp.querySelector('.pay')).toBeFalsy();
    const n = count(fake, 'GET /appointments');
    await h.flush(10);
    expect(count(fake, 'GET /appointments')).toBe(n); // nothing unpaid left: the ticker stopped
  });

  test('the countdown stops in onHide', async () => {
    const comp = await h.mount(ids.appointments, {}, { show: true });
    comp.instance.onHide();
    const setData = jest.spyOn(comp.instance, 'setData');
    await h.flush(10);
    expect(setData).not.toHaveBeenCalled();
    comp.instance.onUnload();
  });
});

describe('appointment detail: 待支付 and refunds', () => {
  let fake;
  const saved = { ...config };
  beforeEach(() => {
    jest.spyOn(Date, 'now').mockReturnValue(h.NOW);
    Object.assign(config, { countdownTickMs: 5, payPollMs: 5 });
    fake = h.fakeWx({
      'GET /appointments/a_1': pending,
      'GET /appointments/a_2': refunded,
      'GET /hospitals/h_1': fx.hospitalDetail,
      'POST /appointments/a_1/pay': PAY_ARGS,
    });
    h.seedPatient(fake);
  });
  afterEach(() => {
    Object.assign(config, saved);
    jest.restoreAllMocks();
  });

  test('待支付 with the countdown and 去支付 → result page waiting for the server', async () => {
    const comp = await h.mount(ids['appointment-detail'], { id: 'a_1' }, { show: true });
    expect(h.text(comp)).toContain('请在 15:00 内完成支付');
    expect(comp.querySelector('#cancel')).toBeFalsy();
    h.tapButton(comp.querySelector('#pay'));
    await h.flush();
    expect(h.withoutCallbacks(fake.wx.requestPayment.mock.calls[0][0])).toEqual(PAY_ARGS);
    expect(h.lastNavigation(fake, 'redirectTo')).toBe('/pages/result/index?id=a_1&paid=1');
    comp.instance.onUnload();
  });

  test('pay_by reached → 系统取消：超时未支付', async () => {
    const comp = await h.mount(ids['appointment-detail'], { id: 'a_1' }, { show: true });
    fake.routes['GET /appointments/a_1'] = expired;
    Date.now.mockReturnValue(Date.parse(PAY_BY));
    await h.flush(12);
    const t = h.text(comp);
    expect(t).toContain('系统取消：超时未支付，号源已释放');
    expect(comp.querySelector('#pay')).toBeFalsy();
    comp.instance.onUnload();
  });

  test('a refunded appointment shows its refund', async () => {
    const comp = await h.mount(ids['appointment-detail'], { id: 'a_2' }, { show: true });
    const t = h.text(comp);
    expect(t).toContain('¥100.00（已退款）');
    expect(t).toContain('退款已退款 ¥100.00');
    fake.routes['GET /appointments/a_2'] = { ...refunded, payment: { ...refunded.payment, status: 'refunding' }, refund: { amount_cents: 10000, status: 'processing' } };
    await comp.instance.reload({ quiet: true });
    expect(h.text(comp)).toContain('退款中 ¥100.00');
    comp.instance.onUnload();
  });
});

describe('appointment detail: 候诊 queue', () => {
  let fake;
  const saved = { ...config };
  beforeEach(() => {
    jest.spyOn(Date, 'now').mockReturnValue(h.NOW);
    Object.assign(config, { queueRefreshMs: 5 });
    fake = h.fakeWx({
      'GET /appointments/a_1': today,
      'GET /appointments/a_1/queue': QUEUE,
      'GET /hospitals/h_1': fx.hospitalDetail,
      'GET /subscriptions/templates': { items: [...fx.templates.items, { kind: 'queue_near', template_id: 'TPL_QUEUE' }] },
      'POST /subscriptions': { items: [] },
    });
    h.seedPatient(fake);
  });
  afterEach(() => {
    Object.assign(config, saved);
    jest.restoreAllMocks();
  });

  test('position, ahead, now serving and ETA', async () => {
    const comp = await h.mount(ids['appointment-detail'], { id: 'a_1' }, { show: true });
    const t = h.text(comp);
    expect(t).toContain('候诊');
    expect(comp.querySelector('.queue-position').dom.textContent).toBe('4');
    expect(comp.querySelector('.queue-ahead').dom.textContent).toBe('3');
    expect(comp.querySelector('.queue-serving').dom.textContent).toBe('7号');
    expect(t).toContain('预计还需等待约 24 分钟');
    comp.instance.onUnload();
  });

  test('refreshes while shown; onHide stops it, onShow resumes, onUnload leaves no timer', async () => {
    const comp = await h.mount(ids['appointment-detail'], { id: 'a_1' }, { show: true });
    const first = count(fake, 'GET /appointments/a_1/queue');
    fake.routes['GET /appointments/a_1/queue'] = { ...QUEUE, position: 2, ahead: 1, now_serving_seq: 9, eta_minutes: 8 };
    await h.flush(10);
    expect(count(fake, 'GET /appointments/a_1/queue')).toBeGreaterThan(first);
    expect(h.text(comp)).toContain('预计还需等待约 8 分钟');
    comp.instance.onHide();
    await h.flush(2); // an answer in flight may land, nothing more is asked
    const hidden = count(fake, 'GET /appointments/a_1/queue');
    await h.flush(10);
    expect(count(fake, 'GET /appointments/a_1/queue')).toBe(hidden);
    comp.instance.onShow();
    await h.flush(10);
    expect(count(fake, 'GET /appointments/a_1/queue')).toBeGreaterThan(hidden);
    comp.instance.onUnload();
    await h.flush(2);
    const gone = count(fake, 'GET /appointments/a_1/queue');
    await h.flush(10);
    expect(count(fake, 'GET /appointments/a_1/queue')).toBe(gone);
  });

  test('called: go to the room; a booked appointment of another day asks nothing', async () => {
    fake.routes['GET /appointments/a_1/queue'] = { ...QUEUE, position: 0, ahead: 0, status: 'called', room: '3诊室' };
    const comp = await h.mount(ids['appointment-detail'], { id: 'a_1' }, { show: true });
    expect(h.text(comp)).toContain('已叫到您的号，请前往3诊室就诊');
    comp.instance.onUnload();
    fake.routes['GET /appointments/a_1'] = fx.appointment; // 2026-12-02, booked
    const n = count(fake, 'GET /appointments/a_1/queue');
    const other = await h.mount(ids['appointment-detail'], { id: 'a_1' }, { show: true });
    await h.flush(6);
    expect(count(fake, 'GET /appointments/a_1/queue')).toBe(n);
    expect(other.querySelector('.queue')).toBeFalsy();
    other.instance.onUnload();
  });

  test('not checked in yet, skipped, cancelled: what the patient endpoint answers is explained', async () => {
    fake.routes['GET /appointments/a_1'] = { ...today, status: 'booked' };
    fake.routes['GET /appointments/a_1/queue'] = { status: 'not_checked_in', now_serving_seq: 5, seq_no: 9 };
    const comp = await h.mount(ids['appointment-detail'], { id: 'a_1' }, { show: true });
    expect(h.text(comp)).toContain('签到后进入候诊队列，当前正在就诊 5 号');
    fake.routes['GET /appointments/a_1/queue'] = { status: 'skipped', now_serving_seq: 6, seq_no: 9 };
    await h.flush(10);
    expect(h.text(comp)).toContain('已过号');
    fake.routes['GET /appointments/a_1/queue'] = { status: 'cancelled', now_serving_seq: 6, seq_no: 9 };
    await h.flush(10);
    expect(comp.querySelector('.queue')).toBeFalsy();
    comp.instance.onUnload();
  });

  test('a failing queue says so (503 → try later) and keeps trying; not queued yet (409) shows nothing', async () => {
    fake.routes['GET /appointments/a_1/queue'] = h.apiError(503, 'SERVICE_UNAVAILABLE', '服务暂不可用 / unavailable');
    const comp = await h.mount(ids['appointment-detail'], { id: 'a_1' }, { show: true });
    expect(h.text(comp)).toContain('候诊信息暂时无法获取');
    fake.routes['GET /appointments/a_1/queue'] = QUEUE;
    await h.flush(10);
    expect(comp.data.queueError).toBe('');
    expect(comp.data.queue.ahead).toBe(3);
    fake.routes['GET /appointments/a_1/queue'] = h.apiError(409, 'INVALID_STATE', '尚未签到 / not checked in');
    await h.flush(10);
    expect(comp.querySelector('.queue')).toBeFalsy();
    comp.instance.onUnload();
  });

  test('叫号提醒: wx.requestSubscribeMessage(queue_near) is the first call of the tap', async () => {
    const comp = await h.mount(ids['appointment-detail'], { id: 'a_1' }, { show: true });
    await h.flush();
    const before = fake.calls.length;
    const done = comp.instance.onSubscribeQueue();
    expect(fake.calls.slice(before)[0]).toMatchObject({ api: 'requestSubscribeMessage', args: { tmplIds: ['TPL_QUEUE'] } });
    await done;
    await h.flush();
    const sub = fake.requests.find((r) => r.route === 'POST /subscriptions');
    expect(sub.data).toEqual({ results: { TPL_QUEUE: 'accept' } });
    expect(comp.querySelector('#subscribe-queue')).toBeFalsy();
    comp.instance.onUnload();
  });
});
