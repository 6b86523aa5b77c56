/**
 * The `wx` of a phone, for the e2e suite: wx.request goes over real HTTP (Node's fetch) to the
 * running gateway and answers success/fail/complete with {statusCode, data, header} as WeChat
 * does; wx.login gets one-time codes minted by the WeChat fake (POST {fake}/__fake__/codes
 * {openid} → {code}); storage is an in-memory map; navigation, toasts and dialogs are recorded.
 * wx.requestPayment forwards exactly its five arguments to the WeChat Pay fake
 * (POST {GUAHAO_WECHATPAY_FAKE_URL}/__control/pay), which pays the prepay order and notifies
 * the server as WeChat Pay would; `payMode('cancel')` makes the next sheets answer
 * `requestPayment:fail cancel` instead (the patient closed the sheet).
 */
const config = require('../../config');

function env() {
  const gateway = (process.env.GUAHAO_GATEWAY_URL || '').replace(/\/+$/, '');
  const fake = (process.env.GUAHAO_WECHAT_FAKE_URL || '').replace(/\/+$/, '');
  return {
    enabled: !!(gateway && fake),
    gateway,
    apiBase: gateway.endsWith('/api/v1') ? gateway : `${gateway}/api/v1`,
    fake,
    payFake: (process.env.GUAHAO_WECHATPAY_FAKE_URL || '').replace(/\/+$/, ''),
    staffUsername: process.env.GUAHAO_STAFF_USERNAME || '',
    staffPassword: process.env.GUAHAO_STAFF_PASSWORD || '',
  };
}

function appendQuery(url, data) {
  if (!data || typeof data !== 'object') return url;
  const parts = Object.keys(data)
    .filter((k) => data[k] !== undefined)
    .map((k) => `${encodeURIComponent(k)}=${encodeURIComponent(data[k])}`);
  if (!parts.length) return url;
  return url + (url.includes('?') ? '&' : '?') + parts.join('&');
}

async function grantAtFake(fake, openid, templateId) {
  const q = `openid=${encodeURIComponent(openid)}&template_id=${encodeURIComponent(templateId)}`;
  const current = await global.__nodeHttp(`${fake}/__fake__/quota?${q}`, { method: 'GET', headers: {} });
  const count = JSON.parse(current.text).count + 1;
  await global.__nodeHttp(`${fake}/__fake__/quota`, {
    method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ openid, template_id: templateId, count }),
  });
}

/** The subscribe messages the WeChat fake delivered to `openid`. */
async function fakeMessages(openid) {
  const { text } = await global.__nodeHttp(`${env().fake}/__fake__/messages?touser=${encodeURIComponent(openid)}`, { method: 'GET', headers: {} });
  return JSON.parse(text).items;
}

/** Poll an async `check()` until truthy (or throw after `timeout` ms with `what`). */
async function waitForAsync(check, what, timeout = 30000) {
  const deadline = Date.now() + timeout;
  for (;;) {
    // eslint-disable-next-line no-await-in-loop
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`e2e: timed out waiting for ${what}`);
    // eslint-disable-next-line no-await-in-loop
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

function install({ openid }) {
  const e = env();
  config.apiBaseUrl = e.apiBase;
  Object.keys(config.apiBaseUrls).forEach((k) => {
    config.apiBaseUrls[k] = '';
  });
  const storage = new Map();
  const log = [];
  const w = global.wx;
  const record = (api, args) => log.push({ api, args });

  w.request = (opts) => {
    const method = (opts.method || 'GET').toUpperCase();
    const header = { ...(opts.header || {}) };
    let { url } = opts;
    let body;
    if (method === 'GET' || method === 'HEAD') {
      url = appendQuery(url, opts.data);
    } else if (opts.data !== undefined) {
      body = typeof opts.data === 'string' ? opts.data : JSON.stringify(opts.data);
    }
    record('request', { method, url, header, data: opts.data });
    global.__nodeHttp(url, { method, headers: header, body, timeout: opts.timeout || 15000 })
      .then(({ status, header: resHeader, text }) => {
        let data = text;
        if (opts.dataType !== 'text' && text) {
          try {
            data = JSON.parse(text);
          } catch (err) {
            data = text; // WeChat hands over the raw string when it is not JSON
          }
        }
        const res = { statusCode: status, data, header: resHeader, errMsg: 'request:ok' };
        if (opts.success) opts.success(res);
        if (opts.complete) opts.complete(res);
      })
      .catch((err) => {
        const res = { errMsg: `request:fail ${err && err.message}` };
        if (opts.fail) opts.fail(res);
        if (opts.complete) opts.complete(res);
      });
    return { abort() {} };
  };

  w.login = (opts = {}) => {
    record('login', {});
    global.__nodeHttp(`${e.fake}/__fake__/codes`, {
      method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ openid }),
    })
      .then(({ status, text }) => {
        if (status !== 200) throw new Error(`fake answered ${status}: ${text}`);
        const res = { errMsg: 'login:ok', code: JSON.parse(text).code };
        if (opts.success) opts.success(res);
        if (opts.complete) opts.complete(res);
      })
      .catch((err) => {
        const res = { errMsg: `login:fail ${err.message}` };
        if (opts.fail) opts.fail(res);
        if (opts.complete) opts.complete(res);
      });
  };

  w.getStorageSync = (key) => (storage.has(key) ? JSON.parse(storage.get(key)) : '');
  w.setStorageSync = (key, value) => storage.set(key, JSON.stringify(value));
  w.removeStorageSync = (key) => storage.delete(key);
  w.getAccountInfoSync = () => ({ miniProgram: { appId: 'touristappid', envVersion: 'develop' } });

  const recorded = (api, answer) => (opts = {}) => {
    record(api, opts);
    const res = answer ? answer(opts) : { errMsg: `${api}:ok` };
    if (opts.success) setTimeout(() => opts.success(res), 0);
    if (opts.complete) setTimeout(() => opts.complete(res), 0);
  };
  ['navigateTo', 'redirectTo', 'switchTab', 'reLaunch', 'navigateBack', 'showToast', 'showLoading',
    'hideLoading', 'stopPullDownRefresh', 'setNavigationBarTitle'].forEach((api) => {
    w[api] = recorded(api);
  });
  // the person taps 确定 in every dialog (with a reason where one is asked for)
  w.showModal = recorded('showModal', (o) => ({ errMsg: 'showModal:ok', confirm: true, cancel: false, content: o.editable ? 'e2e 测试' : '' }));
  // and accepts every subscribe-message template; WeChat's side of an accept is one more send
  // for this user and template, so the fake's ledger is raised before the dialog answers
  w.requestSubscribeMessage = (o = {}) => {
    record('requestSubscribeMessage', o);
    const res = { errMsg: 'requestSubscribeMessage:ok' };
    (o.tmplIds || []).forEach((id) => {
      res[id] = 'accept';
    });
    Promise.all((o.tmplIds || []).map((id) => grantAtFake(e.fake, openid, id))).then(() => {
      if (o.success) o.success(res);
      if (o.complete) o.complete(res);
    });
  };

  // the payment sheet: the person pays (the fake is told with exactly the page's arguments)
  // or closes it
  let payMode = 'pay';
  w.requestPayment = (o = {}) => {
    const args = {};
    ['timeStamp', 'nonceStr', 'package', 'signType', 'paySign'].forEach((k) => {
      if (o[k] !== undefined) args[k] = o[k];
    });
    record('requestPayment', args);
    const answer = (ok, errMsg) => {
      const res = { errMsg };
      if (ok && o.success) o.success(res);
      if (!ok && o.fail) o.fail(res);
      if (o.complete) o.complete(res);
    };
    if (payMode === 'cancel') {
      setTimeout(() => answer(false, 'requestPayment:fail cancel'), 0);
      return;
    }
    global.__nodeHttp(`${e.payFake}/__control/pay`, {
      method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(args),
    })
      .then(({ status, text }) => answer(status < 300, status < 300 ? 'requestPayment:ok' : `requestPayment:fail ${status} ${text}`))
      .catch((err) => answer(false, `requestPayment:fail ${err.message}`));
  };

  return {
    log,
    storage,
    payMode: (mode) => {
      payMode = mode;
    },
    calls: (api) => log.filter((c) => c.api === api),
    last: (api) => {
      const c = log.filter((x) => x.api === api).pop();
      return c && c.args;
    },
  };
}

/** Poll until `check()` is truthy (or throw after `timeout` ms with `what`). */
async function waitFor(check, what, timeout = 20000) {
  const deadline = Date.now() + timeout;
  for (;;) {
    const value = check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`e2e: timed out waiting for ${what}`);
    // eslint-disable-next-line no-await-in-loop
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

/** Query parameters of a navigation URL. */
function queryOf(url) {
  return Object.fromEntries(new URLSearchParams(String(url).split('?')[1] || ''));
}

module.exports = {
  env, install, waitFor, waitForAsync, queryOf, fakeMessages,
};
