/**
 * The one HTTP layer of the mini-program: every call to the guahao gateway goes through
 * `request()`.
 *
 * - base URL from config.js, JSON in and out;
 * - the api.md error format `{"error": {"code", "message", "details"}}` becomes an ApiError
 *   and a readable toast (the Chinese part of the message; for 422 the first field message);
 * - patient calls log in on first use (wx.login → POST /auth/wechat/login {code});
 * - tokens live in storage (wx.setStorageSync), one session for the patient and one for
 *   hospital staff;
 * - on a 401, ONE refresh per session is in flight however many requests failed
 *   (POST /auth/refresh); each failed request is retried once; if the refresh is refused
 *   (401) the patient logs in again with wx.login (staff must log in again by hand); a
 *   refresh answered 429 or 503 (the 08:00 rush) is retried after its Retry-After and, if
 *   still refused, fails this request only: the session is kept;
 * - network failures reject with a retryable ApiError shown as 「网络异常，请重试」;
 * - `idempotencyKey` is sent as the `Idempotency-Key` header; the caller generates it once
 *   per booking attempt (newIdempotencyKey()) and passes the same one on every retry.
 */
const config = require('../config');

const SESSION_KEYS = {
  patient: 'guahao.session.patient',
  staff: 'guahao.session.staff',
};
const NETWORK_MESSAGE = '网络异常，请重试';
const STATUS_MESSAGES = {
  400: '请求格式错误',
  401: '请先登录',
  403: '无权操作',
  404: '内容不存在',
  409: '操作冲突，请刷新后重试',
  413: '提交的内容过大',
  422: '填写的信息有误',
  429: '操作太频繁，请稍后再试',
  502: '微信服务异常，请稍后重试',
  503: '服务繁忙，请稍后重试',
};

class ApiError extends Error {
  constructor({ statusCode = 0, code = 'UNKNOWN', message = '', details = {}, network = false }) {
    super(message || NETWORK_MESSAGE);
    this.name = 'ApiError';
    this.statusCode = statusCode;
    this.code = code;
    this.details = details || {};
    this.network = network;
    // worth trying again as is (same idempotency key): the request may not have arrived
    this.retryable = network || statusCode === 429 || statusCode >= 500;
  }

  /** Per-field messages of a 422 (`details.fields`), possibly empty. */
  get fields() {
    return (this.details && this.details.fields) || {};
  }
}

/** "号源已约满 / slot is full" → "号源已约满" (the Chinese half, for the toast). */
function readable(message) {
  if (!message || typeof message !== 'string') return '';
  const cut = message.indexOf(' / ');
  return (cut > 0 ? message.slice(0, cut) : message).trim();
}

/** The text shown to the user for an error (toast, error state). */
function errorText(err) {
  if (!err) return '出错了，请重试';
  if (err.network) return NETWORK_MESSAGE;
  if (err.code === 'VALIDATION_FAILED') {
    const first = Object.keys(err.fields || {})[0];
    if (first) return readable(err.fields[first]);
  }
  return readable(err.message) || STATUS_MESSAGES[err.statusCode] || '出错了，请重试';
}

function showError(err) {
  wx.showToast({ title: errorText(err), icon: 'none', duration: 2500 });
}

/** Retry-After of a response in milliseconds (seconds form; HTTP dates are not used here). */
function retryAfterMs(res) {
  const header = (res && res.header) || {};
  const key = Object.keys(header).find((k) => k.toLowerCase() === 'retry-after');
  const seconds = key === undefined ? NaN : Number(header[key]);
  return Number.isFinite(seconds) && seconds >= 0 ? seconds * 1000 : 1000;
}

function errorFromResponse(res) {
  const err = apiErrorFromResponse(res);
  if (res && (res.statusCode === 429 || res.statusCode === 503)) err.retryAfterMs = retryAfterMs(res);
  return err;
}

function apiErrorFromResponse(res) {
  const body = res && res.data;
  const error = body && typeof body === 'object' && body.error;
  if (error && typeof error === 'object') {
    return new ApiError({
      statusCode: res.statusCode,
      code: error.code || 'UNKNOWN',
      message: error.message || STATUS_MESSAGES[res.statusCode],
      details: error.details || {},
    });
  }
  return new ApiError({
    statusCode: res.statusCode,
    code: `HTTP_${res.statusCode}`,
    message: STATUS_MESSAGES[res.statusCode] || `服务异常（${res.statusCode}）`,
  });
}

/** RFC 4122 version 4 UUID (for Idempotency-Key). */
function uuid4() {
  const hex = [];
  for (let i = 0; i < 32; i += 1) hex.push(Math.floor(Math.random() * 16));
  hex[12] = 4;
  hex[16] = (hex[16] & 0x3) | 0x8; // eslint-disable-line no-bitwise
  const s = hex.map((n) => n.toString(16)).join('');
  return `${s.slice(0, 8)}-${s.slice(8, 12)}-${s.slice(12, 16)}-${s.slice(16, 20)}-${s.slice(20)}`;
}

function newIdempotencyKey() {
  return uuid4();
}

function queryString(query) {
  if (!query) return '';
  const parts = Object.keys(query)
    .filter((k) => query[k] !== undefined && query[k] !== null && query[k] !== '')
    .map((k) => `${encodeURIComponent(k)}=${encodeURIComponent(query[k])}`);
  return parts.length ? `?${parts.join('&')}` : '';
}

/** One wx.request; resolves with {statusCode, data, header}, rejects only on network failure. */
function send({ path, method, data, header }) {
  return new Promise((resolve, reject) => {
    let base;
    try {
      base = config.baseUrl();
    } catch (err) {
      // a release build without an HTTPS gateway: never fall back to a developer's address
      const e = new ApiError({ code: 'CONFIG_ERROR', message: '服务地址配置错误，请联系医院 / bad release base URL' });
      e.cause = err;
      reject(e);
      return;
    }
    wx.request({
      url: base + path,
      method,
      data: data === undefined ? undefined : data,
      header,
      dataType: 'json',
      timeout: config.requestTimeout,
      success(res) {
        resolve(res);
      },
      fail(err) {
        const e = new ApiError({ network: true, code: 'NETWORK_ERROR', message: NETWORK_MESSAGE });
        e.cause = err;
        reject(e);
      },
    });
  });
}

// ---- sessions -------------------------------------------------------------------------

function getSession(kind = 'patient') {
  const value = wx.getStorageSync(SESSION_KEYS[kind]);
  return value && typeof value === 'object' && value.access_token ? value : null;
}

function saveSession(kind, pair) {
  const session = {
    access_token: pair.access_token,
    refresh_token: pair.refresh_token,
    expires_in: pair.expires_in,
    user: pair.user || null,
  };
  wx.setStorageSync(SESSION_KEYS[kind], session);
  return session;
}

function clearSession(kind = 'patient') {
  wx.removeStorageSync(SESSION_KEYS[kind]);
}

const inflight = { login: null, refresh: { patient: null, staff: null } };

function wxLoginCode() {
  return new Promise((resolve, reject) => {
    wx.login({
      success(res) {
        if (res && res.code) resolve(res.code);
        else reject(new ApiError({ statusCode: 401, code: 'WX_LOGIN_FAILED', message: '微信登录失败，请重试' }));
      },
      fail() {
        reject(new ApiError({ network: true, code: 'WX_LOGIN_FAILED', message: '微信登录失败，请重试' }));
      },
    });
  });
}

async function pairFrom(res) {
  if (res.statusCode >= 200 && res.statusCode < 300 && res.data && res.data.access_token) return res.data;
  throw errorFromResponse(res);
}

/** Patient login with a fresh wx.login code; concurrent callers share one login. */
function login() {
  if (!inflight.login) {
    inflight.login = wxLoginCode()
      .then((code) => send({
        path: '/auth/wechat/login',
        method: 'POST',
        data: { code },
        header: { 'Content-Type': 'application/json' },
      }))
      .then(pairFrom)
      .then((pair) => saveSession('patient', pair))
      .finally(() => {
        inflight.login = null;
      });
  }
  return inflight.login;
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Busy, not refused: the refresh token is still good, try again later. */
function busy(err) {
  return err.statusCode === 429 || err.statusCode === 503;
}

async function rotate(kind) {
  for (let attempt = 0; ; attempt += 1) {
    const session = getSession(kind);
    if (!session || !session.refresh_token) {
      throw new ApiError({ statusCode: 401, code: 'UNAUTHENTICATED', message: '请先登录' });
    }
    try {
      // eslint-disable-next-line no-await-in-loop
      const pair = await pairFrom(await send({
        path: '/auth/refresh',
        method: 'POST',
        data: { refresh_token: session.refresh_token },
        header: { 'Content-Type': 'application/json' },
      }));
      return saveSession(kind, pair);
    } catch (err) {
      if (!busy(err) || attempt >= config.refreshRetries) throw err;
      // eslint-disable-next-line no-await-in-loop
      await sleep(Math.min(err.retryAfterMs, config.refreshRetryCapMs));
    }
  }
}

/** Rotate the refresh token of a session; one rotation (with its retries) in flight per session. */
function refresh(kind) {
  if (!inflight.refresh[kind]) {
    inflight.refresh[kind] = rotate(kind).finally(() => {
      inflight.refresh[kind] = null;
    });
  }
  return inflight.refresh[kind];
}

function staffExpired() {
  const err = new ApiError({ statusCode: 401, code: 'UNAUTHENTICATED', message: '登录已过期，请重新登录' });
  err.sessionExpired = true;
  return err;
}

async function tokenFor(kind) {
  const session = getSession(kind);
  if (session) return session.access_token;
  if (kind === 'patient') return (await login()).access_token;
  throw staffExpired();
}

/** After a 401 with `failedToken`: make sure a newer valid token is in storage. */
async function renew(kind, failedToken) {
  const current = getSession(kind);
  if (current && current.access_token !== failedToken) return; // someone renewed already
  try {
    await refresh(kind);
  } catch (err) {
    if (err.network || busy(err)) throw err; // the session is still good: keep it
    clearSession(kind);
    if (kind !== 'patient') throw staffExpired();
    await login();
  }
}

/**
 * Call the gateway.
 * @param {object} options
 * @param {string} options.url path under /api/v1, e.g. '/hospitals'
 * @param {string} [options.method='GET']
 * @param {object} [options.query] query parameters (empty values are left out)
 * @param {object} [options.data] JSON body
 * @param {'patient'|'staff'|'none'} [options.auth='patient'] whose token to send
 * @param {string} [options.idempotencyKey] sent as Idempotency-Key (same on every retry)
 * @param {boolean} [options.toast=true] show the error as a toast
 * @returns {Promise<any>} the response body
 */
async function request(options) {
  try {
    return await perform(options);
  } catch (err) {
    if (options.toast !== false) showError(err);
    throw err;
  }
}

async function perform({ url, method = 'GET', query, data, auth = 'patient', idempotencyKey, header: extra }) {
  const path = url + queryString(query);
  const header = { 'Content-Type': 'application/json', ...(extra || {}) };
  if (idempotencyKey) header['Idempotency-Key'] = idempotencyKey;
  const call = (token) => send({
    path,
    method,
    data,
    header: token ? { ...header, Authorization: `Bearer ${token}` } : header,
  });

  let token = auth === 'none' ? null : await tokenFor(auth);
  let res = await call(token);
  if (res.statusCode === 401 && token) {
    await renew(auth, token);
    token = getSession(auth).access_token;
    res = await call(token); // exactly one retry
    if (res.statusCode === 401 && auth === 'staff') {
      clearSession('staff');
      throw staffExpired();
    }
  }
  if (res.statusCode >= 200 && res.statusCode < 300) return res.data;
  throw errorFromResponse(res);
}

/** Staff login (username/password); stores the staff session. */
async function staffLogin(username, password) {
  const pair = await request({
    url: '/auth/staff/login', method: 'POST', auth: 'none', data: { username, password }, toast: false,
  });
  return saveSession('staff', pair);
}

function staffLogout() {
  const session = getSession('staff');
  clearSession('staff');
  if (session && session.refresh_token) {
    send({
      path: '/auth/logout',
      method: 'POST',
      data: { refresh_token: session.refresh_token },
      header: { 'Content-Type': 'application/json', Authorization: `Bearer ${session.access_token}` },
    }).catch(() => {});
  }
}

module.exports = {
  request,
  login,
  staffLogin,
  staffLogout,
  getSession,
  saveSession,
  clearSession,
  errorText,
  showError,
  readable,
  newIdempotencyKey,
  uuid4,
  queryString,
  ApiError,
  NETWORK_MESSAGE,
  SESSION_KEYS,
};
