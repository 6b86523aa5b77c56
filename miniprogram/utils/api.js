/**
 * The gateway endpoints the mini-program uses (api.md), as small functions over request().
 * `opts` is merged into the request options (e.g. {toast: false} for page loads whose
 * errors are shown in the page's error state instead of a toast).
 */
const { request, getSession } = require('./request');

const format = require('./format');

const e = encodeURIComponent;
const SCHEDULE_RANGE_DAYS = 62; // api: GET /doctors/{id}/schedules takes at most 62 days

function staffHospital() {
  const session = getSession('staff');
  return (session && session.user && session.user.hospital_id) || '';
}

const catalog = {
  hospitals: (opts) => request({ url: '/hospitals', auth: 'none', ...opts }),
  hospital: (id, opts) => request({ url: `/hospitals/${e(id)}`, auth: 'none', ...opts }),
  departments: (id, opts) => request({ url: `/hospitals/${e(id)}/departments`, auth: 'none', ...opts }),
  doctors: (query, opts) => request({ url: '/doctors', query, auth: 'none', ...opts }),
  doctor: (id, opts) => request({ url: `/doctors/${e(id)}`, auth: 'none', ...opts }),
  schedules: (id, from, to, opts) => request({ url: `/doctors/${e(id)}/schedules`, query: { from, to }, auth: 'none', ...opts }),
  /** Schedules of any window: one call per 62 days (the API's limit), items concatenated. */
  schedulesBetween: async (id, from, to, opts) => {
    const pages = await Promise.all(format.dateRanges(from, to, SCHEDULE_RANGE_DAYS)
      .map(([a, b]) => catalog.schedules(id, a, b, opts)));
    return { items: pages.reduce((all, page) => all.concat(page.items || []), []) };
  },
};

const me = {
  get: (opts) => request({ url: '/me', ...opts }),
  consent: (kind, version, opts) => request({ url: '/me/consents', method: 'POST', data: { kind, version }, ...opts }),
  remove: (opts) => request({ url: '/me', method: 'DELETE', ...opts }),
};

const patients = {
  list: (opts) => request({ url: '/patients', ...opts }),
  create: (body, opts) => request({ url: '/patients', method: 'POST', data: body, ...opts }),
  update: (id, body, opts) => request({ url: `/patients/${e(id)}`, method: 'PATCH', data: body, ...opts }),
  remove: (id, opts) => request({ url: `/patients/${e(id)}`, method: 'DELETE', ...opts }),
};

const appointments = {
  eligibility: (slotId, patientId, opts) => request({
    url: '/appointments/eligibility', query: { slot_id: slotId, patient_id: patientId }, ...opts,
  }),
  book: (slotId, patientId, idempotencyKey, opts) => request({
    url: '/appointments', method: 'POST', data: { slot_id: slotId, patient_id: patientId }, idempotencyKey, ...opts,
  }),
  list: (status, cursor, opts) => request({ url: '/appointments', query: { status, cursor }, ...opts }),
  get: (id, opts) => request({ url: `/appointments/${e(id)}`, ...opts }),
  cancel: (id, opts) => request({ url: `/appointments/${e(id)}/cancel`, method: 'POST', data: {}, ...opts }),
  move: (id, slotId, opts) => request({ url: `/appointments/${e(id)}/move`, method: 'POST', data: { slot_id: slotId }, ...opts }),
  /** The wx.requestPayment arguments of an unpaid appointment (JSAPI prepay). */
  pay: (id, opts) => request({ url: `/appointments/${e(id)}/pay`, method: 'POST', data: {}, ...opts }),
  /** 候诊: {position, ahead, now_serving_seq, eta_minutes, status}. */
  queue: (id, opts) => request({ url: `/appointments/${e(id)}/queue`, ...opts }),
};

const waitlist = {
  join: (body, opts) => request({ url: '/waitlist', method: 'POST', data: body, ...opts }),
  list: (opts) => request({ url: '/waitlist', ...opts }),
  leave: (id, opts) => request({ url: `/waitlist/${e(id)}`, method: 'DELETE', ...opts }),
};

const subscriptions = {
  templates: (opts) => request({ url: '/subscriptions/templates', ...opts }),
  /** Public ids (no login needed), for pages that may ask before the patient logged in. */
  publicTemplates: (opts) => request({ url: '/subscriptions/templates', auth: 'none', ...opts }),
  record: (results, opts) => request({ url: '/subscriptions', method: 'POST', data: { results }, ...opts }),
};

function admin(path) {
  return `/admin/hospitals/${e(staffHospital())}${path}`;
}

const staff = {
  hospitalId: staffHospital,
  appointments: (query, opts) => request({ url: admin('/appointments'), query, auth: 'staff', ...opts }),
  checkIn: (aid, opts) => request({ url: admin(`/appointments/${e(aid)}/check-in`), method: 'POST', data: {}, auth: 'staff', ...opts }),
  cancel: (aid, reason, opts) => request({ url: admin(`/appointments/${e(aid)}/cancel`), method: 'POST', data: { reason }, auth: 'staff', ...opts }),
  move: (aid, slotId, opts) => request({ url: admin(`/appointments/${e(aid)}`), method: 'PATCH', data: { slot_id: slotId }, auth: 'staff', ...opts }),
  noShow: (aid, opts) => request({ url: admin(`/appointments/${e(aid)}/no-show`), method: 'POST', data: {}, auth: 'staff', ...opts }),
  schedules: (date, opts) => request({ url: admin('/schedules'), query: { date }, auth: 'staff', ...opts }),
  stop: (sid, reason, opts) => request({ url: admin(`/schedules/${e(sid)}/stop`), method: 'POST', data: { reason }, auth: 'staff', ...opts }),
  capacity: (slotId, delta, opts) => request({ url: admin(`/slots/${e(slotId)}/capacity`), method: 'POST', data: { delta }, auth: 'staff', ...opts }),
  doctors: (opts) => request({ url: admin('/doctors'), auth: 'staff', ...opts }),
  publish: (did, published, opts) => request({ url: admin(`/doctors/${e(did)}`), method: 'PATCH', data: { published }, auth: 'staff', ...opts }),
  /** A doctor's sessions over the booking window (no date: the whole window). */
  doctorSchedules: (did, opts) => request({ url: admin('/schedules'), query: { doctor_id: did }, auth: 'staff', ...opts }),
  /** Doctor leave {from, to, reason}: 停诊 of every session in the range. */
  leave: (did, body, opts) => request({ url: admin(`/doctors/${e(did)}/leave`), method: 'POST', data: body, auth: 'staff', ...opts }),
  stats: (query, opts) => request({ url: admin('/stats'), query, auth: 'staff', ...opts }),
  queue: (sid, opts) => request({ url: admin(`/schedules/${e(sid)}/queue`), auth: 'staff', ...opts }),
  callNext: (sid, room, opts) => request({
    url: admin(`/schedules/${e(sid)}/queue/call-next`), method: 'POST', data: room ? { room } : {}, auth: 'staff', ...opts,
  }),
};

module.exports = {
  catalog, me, patients, appointments, waitlist, subscriptions, staff,
};
