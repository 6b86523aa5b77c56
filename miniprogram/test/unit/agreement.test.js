const h = require('../helpers');
const privacy = require('../../utils/privacy');

const pageId = h.loadPage('agreement');

describe('pages/agreement (用户协议)', () => {
  let fake;
  beforeEach(() => {
    fake = h.fakeWx({});
  });

  test('shows the agreement with the version that consents record, and links the policy', async () => {
    const comp = await h.mount(pageId);
    const t = h.text(comp);
    expect(t).toContain('挂号服务用户协议');
    expect(t).toContain(`版本 ${privacy.VERSION}`);
    expect(t).toContain('实名就诊');
    expect(t).toContain('注销账号');
    expect(fake.requests).toHaveLength(0);
    h.tap(comp.querySelector('#to-privacy'));
    await h.flush();
    expect(h.lastNavigation(fake)).toBe('/pages/privacy/index');
  });
});
