const h = require('../helpers');
const fx = require('../fixtures');

const pageId = h.loadPage('waitlist');

const entry = (over) => ({
  id: 'wl_1', status: 'waiting', hospital_id: 'h_1', doctor_id: 'doc_1', department_id: null,
  date_from: '2026-12-02', date_to: '2026-12-02', sessions: ['pm'],
  patient: { id: 'p_1', name: '张三', id_number_masked: '1101**********002X' },
  created_at: '2026-12-01T09:00:00+08:00', appointment_id: null, ...over,
});

describe('pages/waitlist (我的候补)', () => {
  let fake;
  beforeEach(() => {
    jest.spyOn(Date, 'now').mockReturnValue(h.NOW);
    fake = h.fakeWx({
      'GET /waitlist': { items: [entry(), entry({ id: 'wl_2', status: 'promoted', appointment_id: 'a_1' })] },
      'DELETE /waitlist/wl_1': entry({ status: 'cancelled' }),
    });
    h.seedPatient(fake);
  });
  afterEach(() => jest.restoreAllMocks());

  test('loading state', async () => {
    fake.routes['GET /waitlist'] = () => new Promise(() => {});
    const comp = await h.mount(pageId);
    h.expectLoading(comp, fake, 'GET /waitlist');
  });

  test('lists entries; leave a waiting one; a promoted one opens its appointment', async () => {
    const comp = await h.mount(pageId);
    const t = h.text(comp);
    expect(t).toContain('候补中');
    expect(t).toContain('候补成功');
    expect(t).toContain('12月02日 周三 · 下午');
    h.tapButton(comp.querySelector('.leave'));
    await h.flush();
    expect(fake.requests.map((r) => r.route)).toContain('DELETE /waitlist/wl_1');
    expect(comp.data.items[0].status).toBe('cancelled');
    h.tapButton(comp.querySelector('.open-appointment'));
    await h.flush();
    expect(h.lastNavigation(fake)).toBe('/pages/appointment-detail/index?id=a_1');
  });

  test('empty', async () => {
    fake.routes['GET /waitlist'] = { items: [] };
    const comp = await h.mount(pageId);
    expect(comp.data.state).toBe('empty');
    expect(h.text(comp)).toContain('没有候补');
    expect(fx.templates.items.map((t) => t.kind)).toContain('waitlist_promoted');
  });
});
