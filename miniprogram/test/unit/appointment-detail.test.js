const h = require('../helpers');
const fx = require('../fixtures');

const pageId = h.loadPage('appointment-detail');

describe('pages/appointment-detail', () => {
  let fake;
  beforeEach(() => {
    jest.spyOn(Date, 'now').mockReturnValue(h.NOW);
    fake = h.fakeWx({
      'GET /appointments/a_1': fx.appointment,
      'GET /hospitals/h_1': fx.hospitalDetail,
      'POST /appointments/a_1/cancel': { ...fx.appointment, status: 'cancelled', cancelled_by: 'patient' },
    });
    h.seedPatient(fake);
  });
  afterEach(() => jest.restoreAllMocks());

  test('loading state', async () => {
    fake.routes['GET /appointments/a_1'] = () => new Promise(() => {});
    const comp = await h.mount(pageId, { id: 'a_1' });
    h.expectLoading(comp, fake, 'GET /appointments/a_1');
  });

  test('shows the appointment and its cancel deadline', async () => {
    const comp = await h.mount(pageId, { id: 'a_1' });
    const t = h.text(comp);
    expect(t).toContain('第 3 号');
    expect(t).toContain('待就诊');
    expect(t).toContain('协和示范医院 心血管内科');
    expect(t).toContain('可在 12月02日 06:00 前免费取消预约');
    expect(comp.querySelector('#cancel')).toBeTruthy();
  });

  test('cancel asks first, then posts and shows the cancelled status', async () => {
    const comp = await h.mount(pageId, { id: 'a_1' });
    h.tapButton(comp.querySelector('#cancel'));
    await h.flush();
    expect(fake.wx.showModal).toHaveBeenCalled();
    expect(fake.requests.map((r) => r.route)).toContain('POST /appointments/a_1/cancel');
    expect(comp.data.a.status).toBe('cancelled');
    expect(h.text(comp)).toContain('已取消');
    expect(h.text(comp)).toContain('本人取消');
    expect(comp.querySelector('#cancel')).toBeFalsy();
  });

  test('declining the dialog does not cancel', async () => {
    fake.wx.showModal.mockImplementationOnce((o) => o.success({ confirm: false, cancel: true }));
    const comp = await h.mount(pageId, { id: 'a_1' });
    h.tapButton(comp.querySelector('#cancel'));
    await h.flush();
    expect(fake.requests.map((r) => r.route)).not.toContain('POST /appointments/a_1/cancel');
  });

  test('CANCEL_DEADLINE_PASSED from the server is shown clearly', async () => {
    fake.routes['POST /appointments/a_1/cancel'] = h.apiError(409, 'CANCEL_DEADLINE_PASSED', '已过取消截止时间 / cancellation deadline passed');
    const comp = await h.mount(pageId, { id: 'a_1' });
    h.tapButton(comp.querySelector('#cancel'));
    await h.flush();
    expect(h.text(comp)).toContain('已过取消截止时间（12月02日 06:00），无法在线取消');
    expect(h.toasts(fake)).toContain('已过取消截止时间');
    expect(comp.data.deadlinePassed).toBe(true);
  });

  test('a deadline already past disables the button up front', async () => {
    fake.routes['GET /appointments/a_1'] = { ...fx.appointment, cancel_deadline: '2026-12-01T08:00:00+08:00' };
    const comp = await h.mount(pageId, { id: 'a_1' });
    expect(comp.data.deadlinePassed).toBe(true);
    expect(h.text(comp)).toContain('已过取消截止时间');
    h.tapButton(comp.querySelector('#cancel'));
    await h.flush();
    expect(fake.wx.showModal).not.toHaveBeenCalled();
  });

  test('error state and retry', async () => {
    fake.routes['GET /appointments/a_1'] = 'network';
    const comp = await h.mount(pageId, { id: 'a_1' });
    expect(comp.data.state).toBe('error');
    fake.routes['GET /appointments/a_1'] = fx.appointment;
    h.tapButton(h.retryButton(comp));
    await h.flush();
    expect(comp.data.state).toBe('ready');
  });
});
