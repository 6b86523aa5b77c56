const fs = require('fs');
const path = require('path');
const h = require('../helpers');
const privacy = require('../../utils/privacy');

const pageId = h.loadPage('privacy');
const popupId = h.loadComponent('components/privacy-popup/index', 'privacy-popup');

describe('pages/privacy (隐私政策) and the privacy authorization flow', () => {
  let fake;
  beforeEach(() => {
    fake = h.fakeWx({});
  });
  afterEach(() => {
    global.getCurrentPages = () => [];
  });

  test('the policy lists everything the mini-program collects, with purpose and retention', async () => {
    const comp = await h.mount(pageId);
    const t = h.text(comp);
    ['openid', '身份证号', '手机号', '预约记录', '订阅消息', '摄像头'].forEach((word) => expect(t).toContain(word));
    expect(comp.querySelectorAll('.collected')).toHaveLength(privacy.COLLECTED.length);
    fake.wx.openPrivacyContract = jest.fn();
    h.tap(comp.querySelector('#open-contract'));
    await h.flush();
    expect(fake.wx.openPrivacyContract).toHaveBeenCalled();
  });

  test('app.json turns the privacy check on and app.js installs the handler', () => {
    const root = path.resolve(__dirname, '..', '..');
    const app = JSON.parse(fs.readFileSync(path.join(root, 'app.json'), 'utf8'));
    expect(app.__usePrivacyCheck__).toBe(true);
    expect(app.pages).toEqual(expect.arrayContaining(['pages/agreement/index', 'pages/privacy/index']));
    fake.wx.onNeedPrivacyAuthorization = jest.fn();
    expect(privacy.installPrivacyHandler()).toBe(true);
    expect(fake.wx.onNeedPrivacyAuthorization).toHaveBeenCalledWith(privacy.onNeedPrivacyAuthorization);
    expect(fs.readFileSync(path.join(root, 'app.js'), 'utf8')).toMatch(/privacy\.installPrivacyHandler\(\)/);
  });

  test('a privacy API call opens the popup of the current page; 同意 resolves with the agree button', async () => {
    const popup = h.simulate.render(popupId);
    popup.attach(document.createElement('parent-wrapper'));
    global.getCurrentPages = () => [{ selectComponent: (sel) => (sel === '#privacy-popup' ? popup.instance : null) }];
    const resolve = jest.fn();
    privacy.onNeedPrivacyAuthorization(resolve, { referrer: 'wx.scanCode' });
    await h.flush();
    expect(popup.data.visible).toBe(true);
    const agree = popup.querySelector('#agree-privacy');
    // the simulator drops open-type: check the template WeChat will compile
    const wxml = fs.readFileSync(path.resolve(__dirname, '..', '..', 'components/privacy-popup/index.wxml'), 'utf8');
    expect(wxml).toMatch(/<button id="agree-privacy"[^>]*open-type="agreePrivacyAuthorization"[^>]*bindagreeprivacyauthorization="onAgree"/);
    agree.dispatchEvent('agreeprivacyauthorization');
    await h.flush();
    expect(resolve).toHaveBeenCalledWith({ buttonId: 'agree-privacy', event: 'agree' });
    expect(popup.data.visible).toBe(false);

    const refuse = jest.fn();
    privacy.onNeedPrivacyAuthorization(refuse, {});
    await h.flush();
    popup.querySelector('#disagree-privacy').dispatchEvent('tap');
    await h.flush();
    expect(refuse).toHaveBeenCalledWith({ event: 'disagree' });
  });

  test('a page without the popup refuses the call and says why', () => {
    global.getCurrentPages = () => [{ selectComponent: () => null }];
    const resolve = jest.fn();
    privacy.onNeedPrivacyAuthorization(resolve, {});
    expect(resolve).toHaveBeenCalledWith({ event: 'disagree' });
    expect(h.toasts(fake)).toContain('请先阅读并同意隐私保护指引');
  });

  test('consent is current only when every kind is at the current version', () => {
    const at = '2026-12-01T09:00:00+08:00';
    const all = privacy.CONSENT_KINDS.map((kind) => ({ kind, version: privacy.VERSION, at }));
    expect(privacy.hasConsented({ consents: all })).toBe(true);
    expect(privacy.hasConsented({ consents: all.slice(1) })).toBe(false);
    expect(privacy.hasConsented({ consents: [{ ...all[0], version: 'old' }, ...all.slice(1)] })).toBe(false);
    expect(privacy.hasConsented({})).toBe(false);
  });
});
