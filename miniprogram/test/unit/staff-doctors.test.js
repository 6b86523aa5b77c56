const h = require('../helpers');
const fx = require('../fixtures');

const pageId = h.loadPage('staff-doctors');
const HID = '/admin/hospitals/h_1';

describe('pages/staff-doctors', () => {
  let fake;
  beforeEach(() => {
    fake = h.fakeWx({
      [`GET ${HID}/doctors`]: { items: [fx.doctor, { ...fx.doctors.items[1], published: false }] },
      [`PATCH ${HID}/doctors/doc_1`]: (req) => ({ ...fx.doctor, ...req.data }),
      [`PATCH ${HID}/doctors/doc_2`]: (req) => ({ ...fx.doctors.items[1], ...req.data }),
    });
    h.seedStaff(fake);
  });

  test('without a staff session: to the login page', async () => {
    fake.storage.clear();
    await h.mount(pageId);
    expect(h.lastNavigation(fake, 'redirectTo')).toBe('/pages/staff-login/index');
  });

  test('loading state', async () => {
    fake.routes[`GET ${HID}/doctors`] = () => new Promise(() => {});
    const comp = await h.mount(pageId);
    h.expectLoading(comp, fake, `GET ${HID}/doctors`);
  });

  test('lists every doctor, published or not', async () => {
    const comp = await h.mount(pageId);
    const t = h.text(comp);
    expect(t).toContain('共2位医生，已上架1位');
    expect(t).toContain('张明华');
    expect(t).toContain('已上架');
    expect(t).toContain('李静');
    expect(t).toContain('未上架');
    expect(fake.requests[0].header.Authorization).toBe('Bearer at-staff-1');
  });

  test('publish and unpublish (unpublish asks first)', async () => {
    const comp = await h.mount(pageId);
    h.tapButton(h.withDataId(comp.querySelectorAll('.toggle'), 'doc_2'));
    await h.flush();
    expect(fake.requests.find((r) => r.route === `PATCH ${HID}/doctors/doc_2`).data).toEqual({ published: true });
    expect(h.text(comp)).toContain('已上架2位');
    h.tapButton(h.withDataId(comp.querySelectorAll('.toggle'), 'doc_1'));
    await h.flush();
    expect(fake.wx.showModal).toHaveBeenCalled();
    expect(fake.requests.find((r) => r.route === `PATCH ${HID}/doctors/doc_1`).data).toEqual({ published: false });
    expect(h.text(comp)).toContain('已上架1位');
  });

  test('empty, error and retry', async () => {
    fake.routes[`GET ${HID}/doctors`] = { items: [] };
    const comp = await h.mount(pageId);
    expect(h.text(comp)).toContain('本院还没有医生');
    fake.routes[`GET ${HID}/doctors`] = h.apiError(503, 'SERVICE_UNAVAILABLE', '服务暂不可用 / unavailable');
    await comp.instance.onPullDownRefresh();
    expect(comp.data.state).toBe('error');
    expect(h.text(comp)).toContain('服务暂不可用');
    fake.routes[`GET ${HID}/doctors`] = { items: [fx.doctor] };
    h.tapButton(h.retryButton(comp));
    await h.flush();
    expect(comp.data.state).toBe('ready');
  });
});
