// The registration fee (挂号费) through WeChat Pay, across pages: confirm → book (201
// pending_payment) → POST /pay → wx.requestPayment with exactly the server's arguments →
// the result page waits for the server's `paid`; a cancelled sheet keeps 去支付; the
// countdown reaching pay_by shows the unpaid cancellation.
const h = require('../helpers');
const fx = require('../fixtures');
const config = require('../../config');
const payment = require('../../utils/payment');

const ids = h.loadPages(['confirm', 'result']);

const QUERY = {
  slot_id: 'sch_2_am_s0', hospital_id: 'h_1', doctor_id: 'doc_1', date: '2026-12-02',
};
const PAY_BY = '2026-12-01T09:15:00+08:00';
const PAY_ARGS = {
  timeStamp: '1764550800',
  nonceStr: '5K8264ILTKCH16CQ2502SI8ZNMTM67VS',
  package: 'prepay_id=wx201410272009395522657a690389285100',
  signType: 'RSA',
  paySign: 'oR9d8PuhnIc+YZ8cBHFCwfgpaK9gd7vaRvkYD7rthRAZ/X+QBhcCYL21N7cHCTUxbQ+EAt6Uy+lwSN22f5YZvI45MLko8Pfso0jm46v5hqcVwrk6uddkGuT+Cdvu4WBqDzaDjnNa5UK3GfE1Wfl2gHxIIY5lLdUgWFts17D4WuolLLkiFZV+JSHMvH7eaLdT9N5GBovBwu5yYKUR7skR8Fu+LozcSqQixnlEZUfyE55feLOQTUYzLmR9pNtPbPsu6WVhbNHMS3Ss2+AehHvz+n64GDmXxbX++IOBvm2olHu3PsOUGRwhudhVf7UcGcunXt8cqNjKNqZLhLw4jq/xDg==',
};

const pending = {
  ...fx.appointment,
  status: 'pending_payment',
  pay_by: PAY_BY,
  payment: { order_id: 'o_1', amount_cents: 10000, status: 'unpaid' },
};
const paid = { ...fx.appointment, payment: { order_id: 'o_1', amount_cents: 10000, status: 'paid' } };
const expired = {
  ...pending, status: 'cancelled', cancelled_by: 'system', reason: 'unpaid', payment: { ...pending.payment, status: 'closed' },
};
const requiredRules = { ...fx.hospitalDetail, rules: { ...fx.hospitalDetail.rules, payment: 'required', payment_timeout_minutes: 15 } };

function routes() {
  return {
    'GET /hospitals/h_1': requiredRules,
    'GET /doctors/doc_1': fx.doctor,
    'GET /doctors/doc_1/schedules': (req) => ({ items: fx.schedules.items.filter((s) => s.date === req.query.from) }),
    'GET /patients': fx.patients,
    'GET /subscriptions/templates': fx.templates,
    'GET /appointments/eligibility': { eligible: true, reasons: [] },
    'POST /subscriptions': { items: [] },
    'POST /appointments': { statusCode: 201, data: pending },
    'POST /appointments/a_1/pay': PAY_ARGS,
    'GET /appointments/a_1': pending,
  };
}

const count = (fake, route) => fake.requests.filter((r) => r.route === route).length;
const payCalls = (fake) => fake.wx.requestPayment.mock.calls.map((c) => ({ args: c[0] }));

describe('payment flow', () => {
  let fake;
  const saved = { ...config };
  beforeEach(() => {
    jest.spyOn(Date, 'now').mockReturnValue(h.NOW);
    Object.assign(config, { payPollMs: 5, countdownTickMs: 5, payConfirmTimeoutMs: 60000 });
    fake = h.fakeWx(routes());
    h.seedPatient(fake);
  });
  afterEach(() => {
    Object.assign(config, saved);
    jest.restoreAllMocks();
  });

  test('confirm: book → pay → wx.requestPayment with exactly the server\'s arguments → result waits', async () => {
    const comp = await h.mount(ids.confirm, QUERY);
    expect(h.text(comp)).toContain('挂号费需在预约后15分钟内微信支付');
    expect(comp.data.submitText).toBe('确认预约并支付');
    h.tapButton(comp.querySelector('#confirm'));
    await h.flush(12);
    const routesSeen = fake.requests.map((r) => r.route);
    expect(routesSeen.indexOf('POST /appointments')).toBeLessThan(routesSeen.indexOf('POST /appointments/a_1/pay'));
    const calls = payCalls(fake);
    expect(calls).toHaveLength(1);
    expect(h.withoutCallbacks(calls[0].args)).toEqual(PAY_ARGS); // unchanged, nothing added or dropped
    expect(typeof calls[0].args.success).toBe('function');
    expect(h.lastNavigation(fake, 'redirectTo')).toBe('/pages/result/index?id=a_1&paid=1');
  });

  test('confirm: a cancelled payment sheet keeps the appointment pending (result without paid=1)', async () => {
    fake.wx.requestPayment.mockImplementation((o) => setTimeout(() => o.fail({ errMsg: 'requestPayment:fail cancel' }), 0));
    const comp = await h.mount(ids.confirm, QUERY);
    h.tapButton(comp.querySelector('#confirm'));
    await h.flush(12);
    expect(h.lastNavigation(fake, 'redirectTo')).toBe('/pages/result/index?id=a_1');
  });

  test('confirm: a hospital without online fee books as before (no payment)', async () => {
    fake.routes['GET /hospitals/h_1'] = fx.hospitalDetail;
    fake.routes['POST /appointments'] = { statusCode: 201, data: fx.appointment };
    const comp = await h.mount(ids.confirm, QUERY);
    expect(comp.data.submitText).toBe('确认预约');
    h.tapButton(comp.querySelector('#confirm'));
    await h.flush(12);
    expect(count(fake, 'POST /appointments/a_1/pay')).toBe(0);
    expect(payCalls(fake)).toHaveLength(0);
    expect(h.lastNavigation(fake, 'redirectTo')).toBe('/pages/result/index?id=a_1');
  });

  test('result (?paid=1): the sheet\'s success is not enough — it waits for the server\'s paid', async () => {
    let polls = 0;
    fake.routes['GET /appointments/a_1'] = () => {
      polls += 1;
      return polls < 4 ? pending : paid;
    };
    const comp = await h.mount(ids.result, { id: 'a_1', paid: '1' }, { show: true });
    // still pending on the server: the page says it is confirming, never 预约成功
    expect(comp.data.a.status).toBe('pending_payment');
    expect(h.text(comp)).toContain('支付结果确认中');
    expect(h.text(comp)).not.toContain('预约成功');
    for (let i = 0; i < 10 && comp.data.confirming; i += 1) await h.flush(); // eslint-disable-line no-await-in-loop
    expect(polls).toBeGreaterThanOrEqual(4);
    expect(comp.data.confirming).toBe(false);
    const t = h.text(comp);
    expect(t).toContain('预约成功');
    expect(t).toContain('¥100.00（已支付）');
    const before = polls;
    await h.flush();
    expect(polls).toBe(before); // no more polling once paid
    comp.instance.onUnload();
  });

  test('result (?paid=1): no paid before the timeout → a clear message and 刷新支付结果', async () => {
    const comp = await h.mount(ids.result, { id: 'a_1', paid: '1' }, { show: true });
    expect(comp.data.confirming).toBe(true);
    Date.now.mockReturnValue(h.NOW + config.payConfirmTimeoutMs + 1);
    for (let i = 0; i < 10 && comp.data.confirming; i += 1) await h.flush(); // eslint-disable-line no-await-in-loop
    expect(comp.data.payTimedOut).toBe(true);
    expect(h.text(comp)).toContain('暂未确认支付结果');
    expect(h.text(comp)).toContain('如已付款，系统会自动确认');
    const polled = count(fake, 'GET /appointments/a_1');
    await h.flush();
    expect(count(fake, 'GET /appointments/a_1')).toBe(polled); // stopped
    fake.routes['GET /appointments/a_1'] = paid;
    Date.now.mockReturnValue(h.NOW);
    h.tapButton(comp.querySelector('#check-paid'));
    await h.flush(12);
    expect(h.text(comp)).toContain('预约成功');
    comp.instance.onUnload();
  });

  test('result without paid=1: 待支付 with a countdown and 去支付; a cancelled sheet stays pending', async () => {
    const comp = await h.mount(ids.result, { id: 'a_1' }, { show: true });
    expect(comp.data.confirming).toBe(false);
    let t = h.text(comp);
    expect(t).toContain('待支付');
    expect(t).toContain('请在 15:00 内完成支付');
    Date.now.mockReturnValue(h.NOW + 61 * 1000);
    await h.flush();
    expect(h.text(comp)).toContain('请在 13:59 内完成支付'); // it ticks
    fake.wx.requestPayment.mockImplementation((o) => setTimeout(() => o.fail({ errMsg: 'requestPayment:fail cancel' }), 0));
    h.tapButton(comp.querySelector('#pay'));
    await h.flush(12);
    expect(payCalls(fake)).toHaveLength(1);
    expect(h.toasts(fake)).toContain('已取消支付，请在截止前完成支付');
    t = h.text(comp);
    expect(t).toContain('待支付');
    expect(comp.querySelector('#pay')).toBeTruthy();
    expect(comp.data.confirming).toBe(false);
    comp.instance.onUnload();
  });

  test('result: 去支付 then success → waits for the server (never trusts the callback)', async () => {
    const comp = await h.mount(ids.result, { id: 'a_1' }, { show: true });
    h.tapButton(comp.querySelector('#pay'));
    await h.flush(4);
    expect(payCalls(fake)[0].args).toEqual(expect.objectContaining(PAY_ARGS));
    expect(comp.data.confirming).toBe(true);
    expect(h.text(comp)).not.toContain('预约成功');
    fake.routes['GET /appointments/a_1'] = paid;
    for (let i = 0; i < 10 && comp.data.confirming; i += 1) await h.flush(); // eslint-disable-line no-await-in-loop
    expect(h.text(comp)).toContain('预约成功');
    comp.instance.onUnload();
  });

  test('result: the countdown reaching pay_by asks the server and shows the unpaid cancellation', async () => {
    const comp = await h.mount(ids.result, { id: 'a_1' }, { show: true });
    const before = count(fake, 'GET /appointments/a_1');
    fake.routes['GET /appointments/a_1'] = expired;
    Date.now.mockReturnValue(Date.parse(PAY_BY));
    await h.flush(12);
    expect(count(fake, 'GET /appointments/a_1')).toBeGreaterThan(before);
    const t = h.text(comp);
    expect(t).toContain('未能预约');
    expect(t).toContain('超时未支付，号源已释放');
    expect(comp.querySelector('#pay')).toBeFalsy();
    const after = count(fake, 'GET /appointments/a_1');
    await h.flush(6);
    expect(count(fake, 'GET /appointments/a_1')).toBe(after); // the countdown stopped
  });

  test('result: past pay_by while the server still says pending → asks at most once per payPollMs', async () => {
    config.payPollMs = 1000; // the countdown ticks every 5 ms
    const comp = await h.mount(ids.result, { id: 'a_1' }, { show: true });
    const before = count(fake, 'GET /appointments/a_1');
    Date.now.mockReturnValue(Date.parse(PAY_BY) + 1);
    await h.flush(12);
    expect(count(fake, 'GET /appointments/a_1')).toBe(before + 1);
    expect(h.text(comp)).toContain('支付已超时，正在取消预约');
    await h.flush(12);
    expect(count(fake, 'GET /appointments/a_1')).toBe(before + 1); // not once per tick
    fake.routes['GET /appointments/a_1'] = expired;
    Date.now.mockReturnValue(Date.parse(PAY_BY) + 1001);
    await h.flush(12);
    expect(count(fake, 'GET /appointments/a_1')).toBe(before + 2);
    expect(h.text(comp)).toContain('超时未支付，号源已释放');
    comp.instance.onUnload();
  });

  test('result: POST /pay refused (already expired) → the error, then the server\'s state', async () => {
    fake.routes['POST /appointments/a_1/pay'] = h.apiError(409, 'INVALID_STATE', '预约已取消 / appointment cancelled');
    const comp = await h.mount(ids.result, { id: 'a_1' }, { show: true });
    fake.routes['GET /appointments/a_1'] = expired;
    h.tapButton(comp.querySelector('#pay'));
    await h.flush(12);
    expect(payCalls(fake)).toHaveLength(0);
    expect(h.toasts(fake)).toContain('预约已取消');
    expect(h.text(comp)).toContain('超时未支付');
    comp.instance.onUnload();
  });

  test('result: timers stop on onHide and none run after onUnload', async () => {
    const comp = await h.mount(ids.result, { id: 'a_1', paid: '1' }, { show: true });
    expect(comp.data.confirming).toBe(true);
    comp.instance.onHide();
    const n = count(fake, 'GET /appointments/a_1');
    await h.flush(10);
    expect(count(fake, 'GET /appointments/a_1')).toBe(n);
    comp.instance.onShow(); // back: waiting again
    await h.flush(4);
    expect(count(fake, 'GET /appointments/a_1')).toBeGreaterThan(n);
    comp.instance.onUnload();
    const m = count(fake, 'GET /appointments/a_1');
    await h.flush(10);
    expect(count(fake, 'GET /appointments/a_1')).toBe(m);
  });

  test('result: 叫号提醒 asks for queue_near as the first call of its tap and records it', async () => {
    fake.routes['GET /appointments/a_1'] = paid;
    fake.routes['GET /subscriptions/templates'] = { items: [...fx.templates.items, { kind: 'queue_near', template_id: 'TPL_QUEUE' }] };
    const comp = await h.mount(ids.result, { id: 'a_1' }, { show: true });
    expect(comp.querySelector('#subscribe-queue')).toBeTruthy();
    const before = fake.calls.length;
    const done = comp.instance.onSubscribeQueue();
    expect(fake.calls.slice(before)[0]).toMatchObject({ api: 'requestSubscribeMessage', args: { tmplIds: ['TPL_QUEUE'] } });
    await done;
    expect(fake.requests.find((r) => r.route === 'POST /subscriptions').data).toEqual({ results: { TPL_QUEUE: 'accept' } });
    expect(comp.querySelector('#subscribe-queue')).toBeFalsy();
    comp.instance.onUnload();
  });

  test('payment.requestPayment: other failures are "failed", POST /pay errors reject', async () => {
    fake.wx.requestPayment.mockImplementation((o) => o.fail({ errMsg: 'requestPayment:fail (detail message)' }));
    await expect(payment.requestPayment('a_1')).resolves.toEqual({ outcome: 'failed', errMsg: 'requestPayment:fail (detail message)' });
    fake.routes['POST /appointments/a_1/pay'] = h.apiError(503, 'SERVICE_UNAVAILABLE', '服务暂不可用 / unavailable');
    await expect(payment.requestPayment('a_1')).rejects.toMatchObject({ statusCode: 503 });
  });
});
