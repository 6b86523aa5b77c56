const h = require('../helpers');
const fx = require('../fixtures');

const pageId = h.loadPage('index');

describe('pages/index (hospital list)', () => {
  let fake;
  beforeEach(() => {
    fake = h.fakeWx({ 'GET /hospitals': fx.hospitals });
  });

  test('shows the loading state until the list arrives', async () => {
    fake.routes['GET /hospitals'] = () => new Promise(() => {}); // never answers
    const comp = await h.mount(pageId);
    h.expectLoading(comp, fake, 'GET /hospitals');
    expect(h.text(comp)).toContain('加载中');
  });

  test('lists hospitals from GET /hospitals without logging in', async () => {
    const comp = await h.mount(pageId);
    expect(comp.data.state).toBe('ready');
    expect(h.text(comp)).toContain('协和示范医院');
    expect(h.text(comp)).toContain('三级甲等');
    expect(h.text(comp)).toContain('第二人民医院');
    expect(fake.requests.map((r) => r.route)).toEqual(['GET /hospitals']);
    expect(fake.requests[0].header.Authorization).toBeUndefined();
    expect(fake.wx.login).not.toHaveBeenCalled();
  });

  test('empty state when there is no hospital', async () => {
    fake.routes['GET /hospitals'] = { items: [] };
    const comp = await h.mount(pageId);
    expect(comp.data.state).toBe('empty');
    expect(h.text(comp)).toContain('暂无可预约的医院');
  });

  test('error state with retry; retry loads again', async () => {
    fake.routes['GET /hospitals'] = 'network';
    const comp = await h.mount(pageId);
    expect(comp.data.state).toBe('error');
    expect(h.text(comp)).toContain('网络异常，请重试');
    fake.routes['GET /hospitals'] = fx.hospitals;
    h.tapButton(h.retryButton(comp));
    await h.flush();
    expect(comp.data.state).toBe('ready');
    expect(fake.requests).toHaveLength(2);
  });

  test('a server error shows its readable message', async () => {
    fake.routes['GET /hospitals'] = h.apiError(503, 'SERVICE_UNAVAILABLE', '服务暂不可用 / service unavailable');
    const comp = await h.mount(pageId);
    expect(h.text(comp)).toContain('服务暂不可用');
    expect(h.text(comp)).not.toContain('service unavailable');
  });

  test('tapping a hospital opens its page', async () => {
    const comp = await h.mount(pageId);
    h.clickCell(comp.querySelectorAll('.hospital')[1]);
    await h.flush();
    expect(h.lastNavigation(fake)).toBe('/pages/hospital/index?id=h_2');
  });

  test('pull-to-refresh reloads and stops the spinner', async () => {
    const comp = await h.mount(pageId);
    await comp.instance.onPullDownRefresh();
    expect(fake.requests).toHaveLength(2);
    expect(fake.wx.stopPullDownRefresh).toHaveBeenCalled();
    expect(comp.data.state).toBe('ready');
  });
});
