const h = require('../helpers');
const fx = require('../fixtures');

const pageId = h.loadPage('staff-leave');
const HID = '/admin/hospitals/h_1';
const LEAVE = `POST ${HID}/doctors/doc_1/leave`;

const sched = (id, date, status, remaining) => ({
  id, doctor_id: 'doc_1', date, session: 'am', status, fee_cents: 10000, slots: fx.slots(id, remaining),
});
const items = [
  sched('l1', '2026-12-01', 'open', [1, 3]), // 2 booked
  sched('l2', '2026-12-02', 'open', [0]), // 3 booked
  sched('l3', '2026-12-03', 'stopped', [3]),
];

function pick(comp, id, value) {
  comp.querySelector(id).dispatchEvent('change', { detail: { value } });
}

describe('pages/staff-leave', () => {
  let fake;
  beforeEach(() => {
    jest.spyOn(Date, 'now').mockReturnValue(h.NOW);
    fake = h.fakeWx({
      [`GET ${HID}/doctors`]: { items: [fx.doctor, fx.doctors.items[1]] },
      [`GET ${HID}/schedules`]: { items },
      [LEAVE]: (req) => ({
        statusCode: 201,
        data: {
          id: 'lv_1', doctor_id: 'doc_1', from: req.data.from, to: req.data.to, reason: req.data.reason, stopped: ['l1', 'l2'], cancelled: 5,
        },
      }),
    });
    h.seedStaff(fake);
  });
  afterEach(() => jest.restoreAllMocks());

  test('without a staff session: to the login page', async () => {
    fake.storage.clear();
    await h.mount(pageId, { doctor_id: 'doc_1' });
    expect(h.lastNavigation(fake, 'redirectTo')).toBe('/pages/staff-login/index');
  });

  test('loading state, then the doctor and today as the default range', async () => {
    fake.routes[`GET ${HID}/schedules`] = () => new Promise(() => {});
    const loading = await h.mount(pageId, { doctor_id: 'doc_1' });
    h.expectLoading(loading, fake, `GET ${HID}/schedules`);
    fake.routes[`GET ${HID}/schedules`] = { items };
    const comp = await h.mount(pageId, { doctor_id: 'doc_1' });
    expect(h.text(comp)).toContain('张明华 主任医师 请假');
    expect(comp.data.form).toEqual({ from: '2026-12-01', to: '2026-12-01', reason: '' });
    expect(h.text(comp)).toContain('该时段有 1 个出诊、2 位已预约患者');
  });

  test('an unknown doctor is the empty state', async () => {
    const comp = await h.mount(pageId, { doctor_id: 'doc_x' });
    expect(comp.data.state).toBe('empty');
  });

  test('confirm dialog says booked patients will be cancelled and notified, then posts', async () => {
    const comp = await h.mount(pageId, { doctor_id: 'doc_1' });
    pick(comp, '#f-to', '2026-12-03');
    h.typeInto(comp.querySelector('#f-reason'), '外出学术会议');
    await h.flush();
    expect(comp.data.affected).toEqual({ sessions: 2, booked: 5 }); // the stopped one is not counted
    h.tapButton(comp.querySelector('#submit'));
    await h.flush();
    const modal = fake.wx.showModal.mock.calls[0][0];
    expect(modal.title).toBe('确认张明华 主任医师请假');
    expect(modal.content).toContain('12月01日 周二 至 12月03日 周四的2个出诊将全部停诊');
    expect(modal.content).toContain('已预约的5位患者的预约将被取消并收到通知');
    const req = fake.requests.find((r) => r.route === LEAVE);
    expect(req.data).toEqual({ from: '2026-12-01', to: '2026-12-03', reason: '外出学术会议' });
    expect(h.text(comp)).toContain('停诊 2 个出诊，取消 5 个预约');
    h.tapButton(comp.querySelector('#back'));
    await h.flush();
    expect(fake.wx.navigateBack).toHaveBeenCalled();
  });

  test('declining the dialog posts nothing; a missing reason is caught before asking', async () => {
    const comp = await h.mount(pageId, { doctor_id: 'doc_1' });
    h.tapButton(comp.querySelector('#submit'));
    await h.flush();
    expect(fake.wx.showModal).not.toHaveBeenCalled();
    expect(h.text(comp)).toContain('请填写请假原因');
    h.typeInto(comp.querySelector('#f-reason'), '病假');
    await h.flush();
    fake.wx.showModal.mockImplementationOnce((o) => o.success({ confirm: false, cancel: true }));
    h.tapButton(comp.querySelector('#submit'));
    await h.flush();
    expect(fake.wx.showModal).toHaveBeenCalledTimes(1);
    expect(fake.requests.filter((r) => r.route === LEAVE)).toHaveLength(0);
  });

  test('a 422 shows each field message next to its field; a whole-body message above the button', async () => {
    fake.routes[LEAVE] = h.apiError(422, 'VALIDATION_FAILED', '参数错误 / validation failed', {
      fields: { reason: '原因过长 / reason too long', to: '请假最长92天 / leave too long' },
    });
    const comp = await h.mount(pageId, { doctor_id: 'doc_1' });
    h.typeInto(comp.querySelector('#f-reason'), 'x');
    await h.flush();
    h.tapButton(comp.querySelector('#submit'));
    await h.flush();
    expect(comp.data.errors).toEqual({ reason: '原因过长', to: '请假最长92天' });
    expect(comp.querySelector('.err-to').dom.textContent).toBe('请假最长92天');
    expect(h.text(comp)).toContain('原因过长');
    expect(comp.querySelector('.submit-error')).toBeFalsy();
    fake.routes[LEAVE] = h.apiError(422, 'VALIDATION_FAILED', '参数错误 / validation failed', { fields: { body: 'to 不能早于 from / to before from' } });
    h.tapButton(comp.querySelector('#submit'));
    await h.flush();
    expect(comp.querySelector('.submit-error').dom.textContent).toBe('to 不能早于 from');
  });

  test('409 / 503 refusals are shown on the page (503 with a retry hint), nothing is marked done', async () => {
    fake.routes[LEAVE] = h.apiError(503, 'SERVICE_UNAVAILABLE', '服务暂不可用 / service unavailable');
    const comp = await h.mount(pageId, { doctor_id: 'doc_1' });
    h.typeInto(comp.querySelector('#f-reason'), '病假');
    await h.flush();
    h.tapButton(comp.querySelector('#submit'));
    await h.flush();
    expect(comp.querySelector('.submit-error').dom.textContent).toBe('服务暂不可用，请稍后重试');
    expect(comp.data.done).toBe(null);
    fake.routes[LEAVE] = h.apiError(409, 'INVALID_STATE', '该时段已有请假 / overlapping leave');
    h.tapButton(comp.querySelector('#submit'));
    await h.flush();
    expect(comp.querySelector('.submit-error').dom.textContent).toBe('该时段已有请假');
  });

  test('moving the start after the end moves the end with it', async () => {
    const comp = await h.mount(pageId, { doctor_id: 'doc_1' });
    pick(comp, '#f-from', '2026-12-02');
    await h.flush();
    expect(comp.data.form.to).toBe('2026-12-02');
    expect(comp.data.affected).toEqual({ sessions: 1, booked: 3 });
  });

  test('error state with retry', async () => {
    fake.routes[`GET ${HID}/doctors`] = 'network';
    const comp = await h.mount(pageId, { doctor_id: 'doc_1' });
    expect(comp.data.state).toBe('error');
    fake.routes[`GET ${HID}/doctors`] = { items: [fx.doctor] };
    h.tapButton(h.retryButton(comp));
    await h.flush();
    expect(comp.data.state).toBe('ready');
  });
});
