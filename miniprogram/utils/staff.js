/** Helpers for the staff pages: the staff session and its hospital. */
const { getSession } = require('./request');

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

function confirmModal(options) {
  return new Promise((resolve) => {
    wx.showModal({ ...options, success: (res) => resolve(res.confirm ? res : null), fail: () => resolve(null) });
  });
}

module.exports = { requireStaff, confirmModal };
