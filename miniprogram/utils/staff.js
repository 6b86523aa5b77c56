/** Helpers for the staff pages: the staff session and its hospital. */
const { getSession } = require('./request');
const format = require('./format');

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
 * onLoad of a staff page that works on one date (today's appointments, sessions): the
 * staff session, the 8-day date strip, `?date=`, then the page's reload().
 */
function loadDatedStaffPage(page, query = {}) {
  page.hid = requireStaff();
  const today = format.today();
  const date = query.date || today;
  page.setData({ days: format.dateStrip(today, 8), date, dateText: format.dateLabel(date) });
  if (!page.hid) {
    page.setData({ state: 'error', errorText: '请先登录' });
    return Promise.resolve();
  }
  return page.reload();
}

function confirmModal(options) {
  return new Promise((resolve) => {
    wx.showModal({ ...options, success: (res) => resolve(res.confirm ? res : null), fail: () => resolve(null) });
  });
}

module.exports = { requireStaff, loadDatedStaffPage, confirmModal };
