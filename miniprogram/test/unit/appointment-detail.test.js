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

  test('the hospital: address, map (wx.openLocation) and phone (wx.makePhoneCall)', async () => {
    const comp = await h.mount(pageId, { id: 'a_1' });
    await h.flush();
    const t = h.text(comp);
    expect(t).toContain('北京市东城区帅府园1号');
    fake.wx.openLocation = jest.fn();
    fake.wx.makePhoneCall = jest.fn();
    h.tapButton(comp.querySelector('#open-map'));
    h.tapButton(comp.querySelector('#call-hospital'));
    await h.flush();
    expect(fake.wx.openLocation).toHaveBeenCalledWith(expect.objectContaining({
      latitude: fx.hospital.latitude, longitude: fx.hospital.longitude, name: '协和示范医院',
    }));
    expect(fake.wx.makePhoneCall).toHaveBeenCalledWith({ phoneNumber: '010-00000000' });
  });

  test('a booked appointment shows its check-in QR code (the staff page reads it back)', async () => {
    const checkinCode = require('../../utils/checkin-code');
    const comp = await h.mount(pageId, { id: 'a_1' });
    const rows = comp.querySelectorAll('.qr-row');
    expect(rows.length).toBe(checkinCode.matrix(checkinCode.payload('a_1')).length);
    expect(rows.length).toBeGreaterThanOrEqual(21);
    expect(comp.querySelectorAll('.qr-dark').length).toBeGreaterThan(100);
    expect(checkinCode.parse(checkinCode.payload('a_1'))).toBe('a_1');
    expect(checkinCode.parse('guahao:checkin:{"$gt":""}')).toBe('');
  });

  test('改约: lists the doctor\'s bookable slices, then moves after confirming', async () => {
    fake.routes['GET /doctors/doc_1/schedules'] = fx.schedules;
    fake.routes['POST /appointments/a_1/move'] = (req) => ({ ...fx.appointment, slot_id: req.data.slot_id, start: '09:00', end: '09:30', seq_no: 4 });
    const comp = await h.mount(pageId, { id: 'a_1' });
    await h.flush();
    h.tapButton(comp.querySelector('#move'));
    await h.flush();
    // sch_2_am: s0 is the current one, s1 is full → only s2 (09:00) is offered
    expect(comp.data.moveSlots.map((s) => s.id)).toEqual(['sch_2_am_s2']);
    h.tap(comp.querySelectorAll('.move-slot')[0]);
    await h.flush();
    const move = fake.requests.find((r) => r.route === 'POST /appointments/a_1/move');
    expect(move.data).toEqual({ slot_id: 'sch_2_am_s2' });
    expect(comp.data.moveSlots).toBe(null);
    expect(h.text(comp)).toContain('第 4 号');
    expect(h.toasts(fake)).toContain('已改约');
  });

  test('改约 tap: wx.requestSubscribeMessage(appointment_moved) is its first call', async () => {
    fake.routes['GET /doctors/doc_1/schedules'] = fx.schedules;
    fake.routes['GET /subscriptions/templates'] = fx.templates;
    fake.routes['POST /subscriptions'] = { items: [] };
    const comp = await h.mount(pageId, { id: 'a_1' });
    await h.flush();
    const before = fake.calls.length;
    comp.instance.onTapMove();
    expect(fake.calls.slice(before)[0]).toMatchObject({ api: 'requestSubscribeMessage', args: { tmplIds: ['TPL_MOVED'] } });
    await h.flush(10);
    const sub = fake.requests.find((r) => r.route === 'POST /subscriptions');
    expect(sub.data).toEqual({ results: { TPL_MOVED: 'accept' } });
    expect(comp.data.moveSlots.map((s) => s.id)).toEqual(['sch_2_am_s2']);
  });
});
