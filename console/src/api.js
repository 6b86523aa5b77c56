// The console's only way to the server: the public API under /api/v1 (api.md).
// Tokens live in memory and in sessionStorage (gone when the tab closes); an access token
// about to expire is refreshed first, a 401 is answered by one refresh and one retry, and
// a refresh that fails ends the session (the refresh token family may have been revoked).
import { reactive } from 'vue';

const BASE = '/api/v1';
const STORE_KEY = 'guahao.console.session';
const REFRESH_MARGIN_MS = 30_000;

export class ApiError extends Error {
  constructor(status, body) {
    const error = (body && body.error) || {};
    super(error.message || `HTTP ${status}`);
    this.status = status;
    this.code = error.code || 'HTTP_ERROR';
    this.details = error.details || {};
  }

  /** Field-level messages of a 422, joined for a toast. */
  get fieldText() {
    const fields = this.details.fields || {};
    return Object.entries(fields).map(([k, v]) => `${k}: ${v}`).join('；');
  }
}

function load() {
  try {
    return JSON.parse(sessionStorage.getItem(STORE_KEY) || 'null');
  } catch {
    return null;
  }
}

/** The signed-in staff member (reactive): `user` is GET /me, null when signed out. */
export const session = reactive({ tokens: load(), user: null, expired: false });

function save(tokens) {
  session.tokens = tokens;
  if (tokens) sessionStorage.setItem(STORE_KEY, JSON.stringify(tokens));
  else sessionStorage.removeItem(STORE_KEY);
}

function fromPair(pair) {
  return {
    access: pair.access_token,
    refresh: pair.refresh_token,
    expiresAt: Date.now() + pair.expires_in * 1000,
    mustChange: Boolean(pair.must_change_password),
  };
}

async function send(method, path, { body, query, headers, token, accept } = {}) {
  let url = BASE + path;
  if (query) {
    const params = new URLSearchParams();
    for (const [k, v] of Object.entries(query)) {
      if (v !== undefined && v !== null && v !== '') params.set(k, v);
    }
    const qs = params.toString();
    if (qs) url += `?${qs}`;
  }
  const init = { method, headers: { Accept: accept || 'application/json', ...headers } };
  if (token) init.headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(url, init);
  } catch {
    throw new ApiError(0, { error: { code: 'NETWORK', message: '网络不可用，请稍后重试' } });
  }
  if (accept === 'text/csv' && response.ok) return response.text();
  const text = await response.text();
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = null;
    }
  }
  if (!response.ok) throw new ApiError(response.status, data);
  return data;
}

let refreshing = null;

async function refresh() {
  if (!session.tokens) throw new ApiError(401, null);
  if (!refreshing) {
    const current = session.tokens.refresh;
    refreshing = send('POST', '/auth/refresh', { body: { refresh_token: current } })
      .then((pair) => save({ ...fromPair(pair), mustChange: session.tokens?.mustChange }))
      .catch((err) => {
        if (err.status === 401 || err.status === 403) endSession(true);
        throw err;
      })
      .finally(() => { refreshing = null; });
  }
  return refreshing;
}

function endSession(expired) {
  save(null);
  session.user = null;
  session.expired = expired;
}

/** An authenticated call; `opts`: body, query, headers, accept. */
export async function api(method, path, opts = {}) {
  if (!session.tokens) throw new ApiError(401, { error: { code: 'UNAUTHENTICATED', message: '请先登录' } });
  if (session.tokens.expiresAt - Date.now() < REFRESH_MARGIN_MS) await refresh();
  try {
    return await send(method, path, { ...opts, token: session.tokens.access });
  } catch (err) {
    if (err.status !== 401 || !session.tokens) throw err;
    await refresh();
    return send(method, path, { ...opts, token: session.tokens.access });
  }
}

/** A public endpoint (the catalog): no token, so nothing can refuse it for the caller's sake. */
export function publicGet(path, query) {
  return send('GET', path, { query });
}

/** Every page of a `{items, next}` list (bounded). */
export async function apiAll(path, query = {}, maxPages = 20) {
  const items = [];
  let cursor;
  for (let page = 0; page < maxPages; page += 1) {
    const data = await api('GET', path, { query: { ...query, cursor } });
    items.push(...(data.items || []));
    if (!data.next) break;
    cursor = data.next;
  }
  return items;
}

export async function login(username, password) {
  const pair = await send('POST', '/auth/staff/login', { body: { username, password } });
  save(fromPair(pair));
  session.expired = false;
  return loadMe();
}

export async function loadMe() {
  const me = await api('GET', '/me');
  if (me.role !== 'hospital_admin' && me.role !== 'desk') {
    await logout();
    throw new ApiError(403, { error: { code: 'FORBIDDEN', message: '工作台仅供医院员工使用' } });
  }
  session.user = me;
  return me;
}

export async function changePassword(oldPassword, newPassword) {
  const pair = await api('POST', '/auth/password', { body: { old: oldPassword, new: newPassword } });
  save(fromPair(pair));
}

export async function logout() {
  const tokens = session.tokens;
  if (tokens) {
    try {
      await send('POST', '/auth/logout', { token: tokens.access, body: { refresh_token: tokens.refresh } });
    } catch {
      // signing out locally is what matters
    }
  }
  endSession(false);
}

/** `/admin/hospitals/{hid}` of the signed-in staff member. */
export function hospitalPath(rest = '') {
  return `/admin/hospitals/${encodeURIComponent(session.user.hospital_id)}${rest}`;
}

export function isAdmin() {
  return session.user?.role === 'hospital_admin';
}

/** A user-facing sentence for any failure. */
export function describe(err) {
  if (!(err instanceof ApiError)) return String(err && err.message ? err.message : err);
  const fields = err.fieldText;
  return fields ? `${err.message}（${fields}）` : err.message;
}
