/**
 * Test kit: load/mount pages with miniprogram-simulate, a per-test fake of the wx APIs with
 * an in-memory gateway (routes keyed "METHOD /path"), and tap helpers for TDesign nodes.
 */
const path = require('path');
const simulate = require('miniprogram-simulate');

const ROOT = path.resolve(__dirname, '..');
// 2026-12-01 09:00 in Shanghai (a Tuesday)
const NOW = Date.parse('2026-12-01T09:00:00+08:00');

/** Register a page (once per test file: a second load of the same path registers nothing). */
function loadPage(name) {
  return simulate.load(path.join(ROOT, 'pages', name, 'index'), 'page', { rootPath: ROOT });
}

/**
 * Register many pages in one go (for a file that renders several pages: a component shared by
 * two pages must be registered once per file). Returns {name: id}.
 */
function loadPages(names) {
  const jComponent = require('j-component');
  const original = jComponent.register;
  const ids = {};
  jComponent.register = (definition) => {
    const id = original(definition);
    if (definition && definition.path) ids[definition.path] = id;
    return id;
  };
  try {
    simulate.load(path.join(ROOT, 'test', 'e2e', 'host', 'index'), 'host', { rootPath: ROOT });
  } finally {
    jComponent.register = original;
  }
  const out = {};
  names.forEach((name) => {
    out[name] = ids[path.join(ROOT, 'pages', name, 'index')];
    if (!out[name]) throw new Error(`loadPages: ${name} is not in test/e2e/host/index.json`);
  });
  return out;
}

function loadComponent(rel, tag = 'comp') {
  return simulate.load(path.join(ROOT, rel), tag, { rootPath: ROOT });
}

async function flush(times = 6) {
  for (let i = 0; i < times; i += 1) {
    // eslint-disable-next-line no-await-in-loop
    await new Promise((resolve) => setTimeout(resolve, 0));
  }
}

/** Render a page, attach it, run onLoad(query) (and onShow) and wait for its requests. */
async function mount(id, query = {}, { show = false } = {}) {
  const comp = simulate.render(id, query);
  comp.attach(document.createElement('parent-wrapper'));
  if (comp.instance.onLoad) comp.instance.onLoad(query);
  if (show && comp.instance.onShow) comp.instance.onShow();
  await flush();
  return comp;
}

function text(comp) {
  return comp.dom.textContent.replace(/\s+/g, ' ');
}

/** A reply helper: error body in the api.md format. */
function apiError(statusCode, code, message, details = {}) {
  return { statusCode, data: { error: { code, message, details } } };
}

/**
 * Install a fresh fake of the wx APIs. `routes`: {"GET /hospitals": reply}, where reply is a
 * body (200), {statusCode, data}, 'network' (wx.request fails) or a function (req) → reply.
 * Returns {requests, calls, storage, routes, wx}.
 */
function fakeWx(routes = {}) {
  const storage = new Map();
  const calls = [];
  const requests = [];
  let codeSeq = 0;
  const log = (name) => (...args) => {
    calls.push({ api: name, args: args[0] });
  };
  const w = global.wx;
  const fn = (name, impl) => {
    w[name] = jest.fn((opts = {}) => {
      log(name)(opts);
      return impl ? impl(opts) : (opts.success && opts.success({ errMsg: `${name}:ok` }), undefined);
    });
    return w[name];
  };

  fn('request', (opts) => {
    const url = new URL(opts.url);
    const route = `${opts.method || 'GET'} ${url.pathname.replace(/^\/api\/v1/, '')}`;
    const query = Object.fromEntries(url.searchParams.entries());
    const req = { route, method: opts.method || 'GET', path: url.pathname, query, data: opts.data, header: opts.header || {}, url: opts.url };
    req.settled = false; // true once the page got its answer (success or fail)
    requests.push(req);
    let reply = Object.prototype.hasOwnProperty.call(routes, route) ? routes[route] : undefined;
    setTimeout(() => {
      if (typeof reply === 'function') reply = reply(req);
      if (reply === undefined) reply = apiError(404, 'NOT_FOUND', `不存在 / no fake route for ${route}`);
      Promise.resolve(reply).then((r) => {
        req.settled = true;
        if (r === 'network') {
          const err = { errMsg: 'request:fail timeout' };
          if (opts.fail) opts.fail(err);
          if (opts.complete) opts.complete(err);
          return;
        }
        const res = r && typeof r === 'object' && 'statusCode' in r
          ? { statusCode: r.statusCode, data: r.data, header: r.header || {} }
          : { statusCode: 200, data: r, header: { 'Content-Type': 'application/json' } };
        res.errMsg = 'request:ok';
        if (opts.success) opts.success(res);
        if (opts.complete) opts.complete(res);
      });
    }, 0);
    return { abort() {} };
  });
  fn('login', (opts) => {
    codeSeq += 1;
    const res = { errMsg: 'login:ok', code: `wx-code-${codeSeq}` };
    setTimeout(() => {
      if (opts.success) opts.success(res);
      if (opts.complete) opts.complete(res);
    }, 0);
  });
  // storage functions take positional arguments (not an options object)
  w.getStorageSync = jest.fn((key) => (storage.has(key) ? storage.get(key) : ''));
  w.setStorageSync = jest.fn((key, value) => {
    storage.set(key, JSON.parse(JSON.stringify(value)));
  });
  w.removeStorageSync = jest.fn((key) => {
    storage.delete(key);
  });
  w.getAccountInfoSync = jest.fn(() => ({ miniProgram: { appId: 'touristappid', envVersion: 'develop' } }));
  fn('showToast');
  fn('showLoading');
  fn('hideLoading');
  fn('showModal', (opts) => {
    const res = { errMsg: 'showModal:ok', confirm: true, cancel: false, content: opts.content };
    if (opts.success) opts.success(res);
  });
  fn('navigateTo');
  fn('redirectTo');
  fn('switchTab');
  fn('reLaunch');
  fn('navigateBack');
  fn('stopPullDownRefresh');
  fn('setNavigationBarTitle');
  // the payment sheet: succeeds unless a test says otherwise (success proves nothing: the
  // pages wait for the server's `paid`)
  fn('requestPayment', (opts) => {
    setTimeout(() => {
      const res = { errMsg: 'requestPayment:ok' };
      if (opts.success) opts.success(res);
      if (opts.complete) opts.complete(res);
    }, 0);
  });
  fn('requestSubscribeMessage', (opts) => {
    const res = { errMsg: 'requestSubscribeMessage:ok' };
    (opts.tmplIds || []).forEach((id) => {
      res[id] = 'accept';
    });
    setTimeout(() => {
      if (opts.success) opts.success(res);
      if (opts.complete) opts.complete(res);
    }, 0);
  });
  return { requests, calls, storage, routes, wx: w };
}

const PATIENT_SESSION = {
  access_token: 'at-patient-1',
  refresh_token: 'rt-patient-1-xxxxxxxxxxxx',
  expires_in: 900,
  user: { id: 'u_1', role: 'patient' },
};
const STAFF_SESSION = {
  access_token: 'at-staff-1',
  refresh_token: 'rt-staff-1-xxxxxxxxxxxxxx',
  expires_in: 900,
  user: { id: 'u_staff', role: 'hospital_admin', hospital_id: 'h_1' },
};

function seedPatient(fake) {
  fake.storage.set('guahao.session.patient', { ...PATIENT_SESSION });
}
function seedStaff(fake) {
  fake.storage.set('guahao.session.staff', { ...STAFF_SESSION });
}

/** Tap a TDesign button (virtual host): dispatch on its inner native node, as a finger would. */
function tapButton(node) {
  if (!node) throw new Error('tapButton: node not found');
  const inner = node.querySelector('.t-button');
  if (!inner) throw new Error('tapButton: not a t-button');
  inner.dispatchEvent('tap');
}

/** Click a TDesign cell (emits `click` from its inner view's tap). */
function clickCell(node) {
  if (!node) throw new Error('clickCell: node not found');
  const inner = node.querySelector('.t-cell');
  if (!inner) throw new Error('clickCell: not a t-cell');
  inner.dispatchEvent('tap');
}

/** Tap a native node (view/text). */
function tap(node) {
  if (!node) throw new Error('tap: node not found');
  node.dispatchEvent('tap');
}

function retryButton(comp) {
  const sv = comp.querySelector('#state');
  return sv && sv.querySelector('#sv-retry');
}

function lastNavigation(fake, api = 'navigateTo') {
  const c = fake.calls.filter((x) => x.api === api).pop();
  return c && c.args.url;
}

function toasts(fake) {
  return fake.calls.filter((c) => c.api === 'showToast').map((c) => c.args.title);
}

module.exports = {
  ROOT,
  NOW,
  simulate,
  loadPage,
  loadPages,
  loadComponent,
  mount,
  flush,
  text,
  apiError,
  fakeWx,
  seedPatient,
  seedStaff,
  PATIENT_SESSION,
  STAFF_SESSION,
  tapButton,
  clickCell,
  tap,
  retryButton,
  lastNavigation,
  toasts,
};

/** Type into a TDesign input (its inner native <input> fires `input`, the component emits change). */
function typeInto(node, value) {
  if (!node) throw new Error('typeInto: node not found');
  const inner = node.querySelector('.t-input__control');
  if (!inner) throw new Error('typeInto: not a t-input');
  inner.dispatchEvent('input', { detail: { value, cursor: String(value).length, keyCode: 0 } });
}

module.exports.typeInto = typeInto;

/**
 * The honest loading check: `route` was requested and is still unanswered (in flight), the
 * page is in its loading state and shows the spinner. Fails if the page never asked.
 */
function expectLoading(comp, fake, route) {
  const inFlight = fake.requests.filter((r) => r.route === route && !r.settled);
  expect(inFlight.length).toBeGreaterThan(0);
  expect(comp.data.state).toBe('loading');
  const spinner = comp.querySelector('#state') && comp.querySelector('#state').querySelector('.sv-loading');
  expect(spinner).toBeTruthy();
}
module.exports.expectLoading = expectLoading;

/** The node among `nodes` whose data-id is `id` (works for TDesign virtual hosts too). */
function withDataId(nodes, id) {
  return nodes.find((n) => n._exparserNode && n._exparserNode.dataset && n._exparserNode.dataset.id === id);
}

module.exports.withDataId = withDataId;

/** The data part of a wx.* options object (its success/fail/complete callbacks left out). */
function withoutCallbacks(opts) {
  return Object.fromEntries(Object.entries(opts || {}).filter(([, v]) => typeof v !== 'function'));
}

module.exports.withoutCallbacks = withoutCallbacks;
