/**
 * Paying the registration fee (挂号费) of an appointment in `pending_payment`:
 * POST /appointments/{id}/pay gives exactly the arguments of wx.requestPayment (JSAPI prepay
 * through WeChat Pay API v3); they are passed through unchanged. The outcome of the payment
 * sheet is only a hint: an appointment is paid when the server says so (`status: booked`,
 * `payment.status: paid`), which the result page waits for (waitForPaid).
 */
const api = require('./api');
const config = require('../config');
const format = require('./format');
const { showError } = require('./request');

const PAY_KEYS = ['timeStamp', 'nonceStr', 'package', 'signType', 'paySign'];

/**
 * Open WeChat Pay's sheet for an appointment.
 * @returns {Promise<{outcome: 'submitted'|'cancelled'|'failed', errMsg: string}>}
 *   submitted: the sheet reported success (not proof of payment); cancelled: the patient
 *   closed the sheet (`requestPayment:fail cancel`); failed: any other failure.
 *   Rejects with the ApiError of POST /pay (e.g. 409 INVALID_STATE once expired or paid).
 */
async function requestPayment(appointmentId) {
  const args = await api.appointments.pay(appointmentId, { toast: false });
  const payArgs = {};
  PAY_KEYS.forEach((k) => {
    payArgs[k] = args[k];
  });
  return new Promise((resolve) => {
    wx.requestPayment({
      ...payArgs,
      success: (res) => resolve({ outcome: 'submitted', errMsg: (res && res.errMsg) || '' }),
      fail: (res) => {
        const errMsg = (res && res.errMsg) || '';
        resolve({ outcome: /cancel/.test(errMsg) ? 'cancelled' : 'failed', errMsg });
      },
    });
  });
}

/** The result page of an appointment; `paid`: the sheet said success, wait for the server. */
function resultUrl(appointmentId, paid) {
  return `/pages/result/index?id=${encodeURIComponent(appointmentId)}${paid ? '&paid=1' : ''}`;
}

/** Whether the server has recorded the payment (or the appointment left pending_payment). */
function settled(a) {
  return !!a && (a.status !== 'pending_payment' || (a.payment && a.payment.status === 'paid'));
}

/**
 * Poll GET /appointments/{id} every config.payPollMs until settled(a) or
 * config.payConfirmTimeoutMs have passed. `onUpdate(a)` sees each answer.
 * Returns {stop(), done: Promise<appointment|null>} (null: timed out or stopped).
 */
function waitForPaid(appointmentId, onUpdate) {
  const deadline = Date.now() + config.payConfirmTimeoutMs;
  let timer = null;
  let stopped = false;
  let finish;
  const done = new Promise((resolve) => {
    finish = resolve;
  });
  const tick = async () => {
    timer = null;
    if (stopped) return;
    let a = null;
    try {
      a = await api.appointments.get(appointmentId, { toast: false });
    } catch (err) {
      a = null; // a failed poll is tried again until the deadline
    }
    if (stopped) return;
    if (a && onUpdate) onUpdate(a);
    if (settled(a)) {
      finish(a);
    } else if (Date.now() >= deadline) {
      finish(null);
    } else {
      timer = setTimeout(tick, config.payPollMs);
    }
  };
  timer = setTimeout(tick, 0);
  return {
    done,
    stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      timer = null;
      finish(null);
    },
  };
}

/**
 * Past pay_by a page asks the server whether it has cancelled the appointment (it does within
 * seconds): one question at a time, at most once per config.payPollMs. `state` is the page's
 * {asking, askedAt}; the caller sets state.asking = false when its answer is in.
 */
function askAfterExpiry(state, now = Date.now()) {
  if (state.asking || (state.askedAt && now - state.askedAt < config.payPollMs)) return false;
  Object.assign(state, { asking: true, askedAt: now });
  return true;
}

/**
 * One tick of the 待支付 countdown of a page showing one appointment (`page.raw`, shown
 * again by `page.show(a)`, fetched by `page.appointmentId`): re-render the time left and,
 * once pay_by has passed, ask the server (throttled by askAfterExpiry) — it cancels unpaid
 * appointments. Answers 'gone' when the appointment was no longer pending (stop the
 * countdown), 'changed' when the server's answer is not pending any more (already shown),
 * else 'pending'.
 */
async function tickPending(page) {
  const a = page.raw;
  if (!a || a.status !== 'pending_payment') return 'gone';
  page.setData({ a: format.appointmentView(a) });
  page.expiry = page.expiry || {};
  if (format.msLeft(a.pay_by) > 0 || !askAfterExpiry(page.expiry)) return 'pending';
  try {
    const next = await api.appointments.get(page.appointmentId, { toast: false });
    page.show(next);
    return next.status === 'pending_payment' ? 'pending' : 'changed';
  } catch (err) {
    return 'pending'; // asked again at the next tick
  } finally {
    page.expiry.asking = false;
  }
}

/**
 * A 去支付 tap: open the payment sheet for appointment `id` while `page.data.paying` is set
 * to `busy` (a second tap meanwhile does nothing, as does a tap when `page.data.paying` is
 * set already), `onSubmitted()` when the sheet reports success (the server's `paid` is
 * still to be waited for), a toast when it was closed or failed; a refusal of the server
 * is shown and the page reloaded quietly.
 */
async function payFromPage(page, id, busy, idle, onSubmitted) {
  if (page.data.paying) return;
  page.setData({ paying: busy });
  try {
    const { outcome } = await requestPayment(id);
    if (outcome === 'submitted') onSubmitted();
    else if (outcome === 'cancelled') wx.showToast({ title: '已取消支付，请在截止前完成支付', icon: 'none' });
    else wx.showToast({ title: '支付未完成，请重试', icon: 'none' });
  } catch (err) {
    showError(err);
    page.reload({ quiet: true });
  } finally {
    page.setData({ paying: idle });
  }
}

module.exports = {
  PAY_KEYS, requestPayment, resultUrl, settled, waitForPaid, askAfterExpiry, tickPending,
  payFromPage,
};
