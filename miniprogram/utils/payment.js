/**
 * Paying the registration fee (挂号费) of an appointment in `pending_payment`:
 * POST /appointments/{id}/pay gives exactly the arguments of wx.requestPayment (JSAPI prepay
 * through WeChat Pay API v3); they are passed through unchanged. The outcome of the payment
 * sheet is only a hint: an appointment is paid when the server says so (`status: booked`,
 * `payment.status: paid`), which the result page waits for (waitForPaid).
 */
const api = require('./api');
const config = require('../config');

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

module.exports = {
  PAY_KEYS, requestPayment, resultUrl, settled, waitForPaid, askAfterExpiry,
};
