/** Helpers for the staff pages: the staff session and its hospital. */
const { getSession, errorText, readable } = require('./request');
const format = require('./format');
const api = require('./api');

/** The staff session's hospital id, or '' (then the page sends the user to staff-login). */
function requireStaff() {
  const session = getSession('staff');
  const hid = session && session.user && session.user.hospital_id;
  if (!hid) {
    wx.redirectTo({ url: '/pages/staff-login/index' });
    return '';
  }
  return hid;
}

/**
 * onLoad of a staff page: the staff session's hospital (`page.hid`; without one the user is
 * sent to staff-login and the page shows 请先登录), the page's initial `data`, then its
 * reload().
 */
function loadStaffPage(page, data = {}) {
  page.hid = requireStaff();
  page.setData(data);
  if (!page.hid) {
    page.setData({ state: 'error', errorText: '请先登录' });
    return Promise.resolve();
  }
  return page.reload();
}

/**
 * onLoad of a staff page that works on one date (today's appointments, sessions): the
 * staff session, the 8-day date strip, `?date=`, then the page's reload().
 */
function loadDatedStaffPage(page, query = {}) {
  const today = format.today();
  const date = query.date || today;
  return loadStaffPage(page, { days: format.dateStrip(today, 8), date, dateText: format.dateLabel(date) });
}

function confirmModal(options) {
  return new Promise((resolve) => {
    wx.showModal({ ...options, success: (res) => resolve(res.confirm ? res : null), fail: () => resolve(null) });
  });
}

/**
 * The message of a failed staff action, shown on the page: a 422's first field message,
 * the Chinese half of the server's message, and for 503 / network failures a retry hint.
 */
function actionErrorText(err) {
  const text = errorText(err);
  if (err && (err.network || err.statusCode === 503 || err.statusCode === 429) && !/重试|稍后/.test(text)) {
    return `${text}，请稍后重试`;
  }
  return text;
}

/** Per-field messages of a 422 (`details.fields`), readable: {from: '…', reason: '…'}. */
function fieldErrors(err) {
  const out = {};
  const fields = (err && err.code === 'VALIDATION_FAILED' && err.fields) || {};
  Object.keys(fields).forEach((k) => {
    out[k] = readable(String(fields[k]));
  });
  return out;
}

/** The staff's doctors as {id: doctor} (GET /admin/hospitals/{hid}/doctors). */
async function doctorsById(opts) {
  const { items } = await api.staff.doctors({ toast: false, ...opts });
  const byId = {};
  (items || []).forEach((d) => {
    byId[d.id] = d;
  });
  return byId;
}

module.exports = {
  requireStaff, loadStaffPage, loadDatedStaffPage, confirmModal, actionErrorText, fieldErrors, doctorsById,
};
