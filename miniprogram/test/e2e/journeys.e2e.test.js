/**
 * End-to-end journeys: the real page code (rendered by miniprogram-simulate) against the real
 * gateway. Needs GUAHAO_GATEWAY_URL and GUAHAO_WECHAT_FAKE_URL (and, for the staff journey,
 * GUAHAO_STAFF_USERNAME / GUAHAO_STAFF_PASSWORD of a hospital_admin); skipped otherwise.
 * The bookable slot is discovered by browsing: first hospital → first doctor with an open
 * session → first slot with numbers left.
 */
const h = require('../helpers');
const shim = require('./wx-shim');
const idcard = require('../../utils/idcard');
const format = require('../../utils/format');
const { getSession, request } = require('../../utils/request');

const APP_PAGES = require('../../app.json').pages;

const ENV = shim.env();
const describeE2E = ENV.enabled ? describe : describe.skip;
const staffTest = ENV.enabled && ENV.staffUsername && ENV.staffPassword ? test : test.skip;
// paying needs the WeChat Pay fake (GUAHAO_WECHATPAY_FAKE_URL) and a hospital admin (to turn
// the hospital's `payment: required` rule on for the journey, and off again)
const payTest = ENV.enabled && ENV.payFake && ENV.staffUsername && ENV.staffPassword ? test : test.skip;

const P = ENV.enabled ? (() => {
  const ids = h.loadPages(['index', 'hospital', 'doctors', 'doctor', 'confirm', 'result', 'appointments',
    'appointment-detail', 'patients', 'staff-login', 'staff-today', 'waitlist']);
  return {
    index: ids.index,
    hospital: ids.hospital,
    doctors: ids.doctors,
    doctor: ids.doctor,
    confirm: ids.confirm,
    result: ids.result,
    appointments: ids.appointments,
    detail: ids['appointment-detail'],
    patients: ids.patients,
    staffLogin: ids['staff-login'],
    staffToday: ids['staff-today'],
    waitlist: ids.waitlist,
  };
})() : {};

function randomIdNumber() {
  const pad = (n) => String(n).padStart(2, '0');
  const year = 1950 + Math.floor(Math.random() * 55);
  const first17 = `110105${year}${pad(1 + Math.floor(Math.random() * 12))}${pad(1 + Math.floor(Math.random() * 28))}`
    + String(Math.floor(Math.random() * 1000)).padStart(3, '0');
  return first17 + idcard.checkCharacter(first17);
}

let wx;

async function mountReady(id, query = {}, what = 'page') {
  const comp = await h.mount(id, query);
  await shim.waitFor(() => comp.data.state !== 'loading', `${what} to load`);
  return comp;
}

async function navigation(api, action, what) {
  const before = wx.calls(api).length;
  await action();
  await shim.waitFor(() => wx.calls(api).length > before, what);
  return wx.last(api).url;
}

function staffCheckIn(hid, aid) {
  return request({ url: `/admin/hospitals/${hid}/appointments/${aid}/check-in`, method: 'POST', data: {}, auth: 'staff', toast: false });
}

/** A direct API call (for the other actors of a journey: staff set-up, a second patient). */
async function http(method, path, body, token, extra = {}) {
  const res = await global.__nodeHttp(`${ENV.apiBase}${path}`, {
    method,
    headers: { 'Content-Type': 'application/json', ...(token ? { Authorization: `Bearer ${token}` } : {}), ...extra },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (res.status >= 300) throw new Error(`e2e: ${method} ${path} → ${res.status} ${res.text}`);
  return res.text ? JSON.parse(res.text) : null;
}

/** Another patient, logged in through the WeChat fake with its own openid, with a profile. */
async function otherPatient() {
  const openid = `o_e2e_other_${Date.now()}_${Math.floor(Math.random() * 1e6)}`;
  const minted = await global.__nodeHttp(`${ENV.fake}/__fake__/codes`, {
    method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ openid }),
  });
  const { access_token: token } = await http('POST', '/auth/wechat/login', { code: JSON.parse(minted.text).code });
  // as the mini-program asks before the first 就诊人: the server refuses a profile without it
  await http('POST', '/me/consents', { kind: 'patient_data', version: '2026-12' }, token);
  const profile = await http('POST', '/patients', {
    name: '另一患者', id_number: randomIdNumber(), phone: '13900000001', relation: 'self',
  }, token);
  return { token, patientId: profile.id };
}

/** Make sure the patient has one profile, through the 就诊人 page. */
async function ensureProfile() {
  const page = await mountReady(P.patients, {}, '就诊人');
  expect(['ready', 'empty']).toContain(page.data.state);
  if (page.data.patients.length) return page.data.patients[0];
  h.tapButton(page.querySelector('#state').querySelector('#sv-action'));
  // first 就诊人: explicit consent, recorded on the server with its version
  await shim.waitFor(() => page.data.consent || page.data.form, 'the consent step');
  if (page.data.consent) {
    h.tap(page.querySelector('#consent-tick'));
    await h.flush();
    h.tapButton(page.querySelector('#consent-agree'));
    await shim.waitFor(() => page.data.form, 'the profile form after consent');
    const me = await request({ url: '/me', toast: false });
    expect(me.consents.map((c) => c.kind).sort()).toEqual(['patient_data', 'privacy', 'terms']);
  }
  const id = randomIdNumber();
  h.typeInto(page.querySelector('#f-name'), '测试患者');
  h.typeInto(page.querySelector('#f-id'), id);
  h.typeInto(page.querySelector('#f-phone'), `139${String(Math.floor(Math.random() * 1e8)).padStart(8, '0')}`);
  await h.flush();
  h.tap(page.querySelectorAll('.relation')[0]);
  await h.flush();
  h.tapButton(page.querySelector('#f-save'));
  await shim.waitFor(() => page.data.form === null && page.data.patients.length === 1, 'the new profile');
  expect(h.text(page)).toContain(idcard.maskIdNumber(id));
  expect(h.text(page)).not.toContain(id);
  return page.data.patients[0];
}

/** Browse hospital → departments → doctors → doctor → first slot with numbers; returns the confirm query. */
async function discoverSlot(hospitalId, { preferLater = true } = {}) {
  const hospital = await mountReady(P.hospital, { id: hospitalId }, 'hospital');
  expect(hospital.data.state).toBe('ready');
  const leaves = [];
  hospital.data.departments.forEach((top) => {
    (top.children && top.children.length ? top.children : [top]).forEach((d) => leaves.push(d));
  });
  const today = format.today();
  for (const dept of leaves) {
    // eslint-disable-next-line no-await-in-loop
    const doctors = await mountReady(P.doctors, { hospital_id: hospitalId, department_id: dept.id, name: encodeURIComponent(dept.name) }, 'doctors');
    if (doctors.data.state !== 'ready') continue; // eslint-disable-line no-continue
    const cards = doctors.querySelectorAll('.doctor');
    for (let i = 0; i < cards.length; i += 1) {
      // eslint-disable-next-line no-await-in-loop
      const url = await navigation('navigateTo', () => h.tap(cards[i]), 'doctor page navigation');
      // eslint-disable-next-line no-await-in-loop
      const doctor = await mountReady(P.doctor, shim.queryOf(url), 'doctor');
      if (doctor.data.state !== 'ready') continue; // eslint-disable-line no-continue
      const open = doctor.data.days.filter((d) => d.mark === '有号').map((d) => d.date);
      const ordered = preferLater ? open.filter((d) => d !== today).concat(open.filter((d) => d === today)) : open;
      for (const date of ordered) {
        const dayIndex = doctor.data.days.findIndex((d) => d.date === date);
        if (doctor.data.date !== date) {
          doctor.querySelector('#dates').querySelectorAll('.ds-day')[dayIndex].dispatchEvent('tap');
          // eslint-disable-next-line no-await-in-loop
          await shim.waitFor(() => doctor.data.date === date, 'the date to switch');
        }
        for (const session of doctor.data.sessions.filter((s) => s.bookable)) {
          if (doctor.data.openId !== session.id) {
            h.tap(doctor.querySelectorAll('.session-head')[doctor.data.sessions.indexOf(session)]);
            // eslint-disable-next-line no-await-in-loop
            await shim.waitFor(() => doctor.data.openId === session.id, 'the session to open');
          }
          const slotIndex = session.slots.findIndex((s) => s.remaining > 0 && (!s.status || s.status === 'open'));
          if (slotIndex >= 0) {
            // eslint-disable-next-line no-await-in-loop
            const confirmUrl = await navigation('navigateTo', () => h.tap(doctor.querySelectorAll('.slot')[slotIndex]), 'confirm navigation');
            expect(confirmUrl.startsWith('/pages/confirm/index?')).toBe(true);
            return shim.queryOf(confirmUrl);
          }
        }
      }
    }
  }
  throw new Error(`e2e: no bookable slot found in hospital ${hospitalId} (is a hospital with open sessions seeded?)`);
}

/** Confirm page: eligible → tap → (subscribe) → POST /appointments → result. Returns the appointment id. */
async function book(query) {
  const confirm = await mountReady(P.confirm, query, 'confirm');
  expect(confirm.data.state).toBe('ready');
  await shim.waitFor(() => !confirm.data.checking, 'the eligibility check');
  expect(confirm.data.reasons).toEqual([]);
  expect(confirm.data.canSubmit).toBe(true);
  const mark = wx.log.length;
  const url = await navigation('redirectTo', () => h.tapButton(confirm.querySelector('#confirm')), 'the booking');
  const after = wx.log.slice(mark);
  const bookAt = after.findIndex((c) => c.api === 'request' && c.args.method === 'POST' && c.args.url.endsWith('/appointments'));
  expect(bookAt).toBeGreaterThanOrEqual(0);
  expect(after[bookAt].args.header['Idempotency-Key']).toMatch(/^[0-9a-f-]{36}$/);
  if (confirm.instance.templateIds.length) {
    // the subscribe dialog came first, and its result was posted before booking
    expect(after[0].api).toBe('requestSubscribeMessage');
    const subAt = after.findIndex((c) => c.api === 'request' && c.args.url.endsWith('/subscriptions'));
    expect(subAt).toBeGreaterThan(0);
    expect(subAt).toBeLessThan(bookAt);
  }
  expect(url.startsWith('/pages/result/index?id=')).toBe(true);
  return shim.queryOf(url).id;
}

describeE2E('e2e against the running gateway', () => {
  const OPENID = `o_e2e_${Date.now()}_${Math.floor(Math.random() * 1e6)}`;
  beforeAll(() => {
    wx = shim.install({ openid: OPENID });
  });

  test('patient: login → profile → browse → book → my appointments → cancel', async () => {
    // login on first use, then a profile
    const profile = await ensureProfile();
    expect(wx.calls('login')).toHaveLength(1);
    expect(getSession('patient').user.role).toBe('patient');

    // browse: first hospital
    const home = await mountReady(P.index, {}, 'hospital list');
    expect(home.data.state).toBe('ready');
    const hospitalUrl = await navigation('navigateTo', () => h.clickCell(home.querySelectorAll('.hospital')[0]), 'hospital navigation');
    const query = await discoverSlot(shim.queryOf(hospitalUrl).id);

    // book
    const aid = await book(query);
    const result = await mountReady(P.result, { id: aid }, 'result');
    expect(result.data.state).toBe('ready');
    const resultText = h.text(result);
    expect(resultText).toContain('预约成功');
    expect(resultText).toContain(`第 ${result.data.a.seq_no} 号`);
    expect(result.data.a.patient.id).toBe(profile.id);
    expect(result.data.a.slot_id).toBe(query.slot_id);
    h.tapButton(result.querySelector('#to-list'));
    await shim.waitFor(() => wx.last('switchTab'), 'switch to my appointments');
    expect(wx.last('switchTab').url).toBe('/pages/appointments/index');

    // my appointments (newest first) → detail → cancel
    const list = await mountReady(P.appointments, {}, 'my appointments');
    expect(list.data.items[0]).toMatchObject({ id: aid, status: 'booked' });
    const detailUrl = await navigation('navigateTo', () => h.tap(list.querySelectorAll('.appt')[0]), 'detail navigation');
    const detail = await mountReady(P.detail, shim.queryOf(detailUrl), 'appointment detail');
    expect(h.text(detail)).toContain('取消');
    expect(detail.data.deadlinePassed).toBe(false);

    // the booking's subscribe message reached (the fake) WeChat; its page is a page of
    // app.json and opens this appointment's detail
    const message = await shim.waitForAsync(async () => (await shim.fakeMessages(OPENID))
      .find((m) => String(m.page || '').endsWith(`id=${aid}`)), 'the booking_confirmed message');
    const [pagePath, pageQuery] = message.page.split('?');
    expect(APP_PAGES).toContain(pagePath);
    expect(pagePath).toBe('pages/appointment-detail/index');
    const opened = await mountReady(P.detail, Object.fromEntries(new URLSearchParams(pageQuery)), 'the message page');
    expect(opened.data.state).toBe('ready');
    expect(opened.data.a.id).toBe(aid);

    // 改约 to another bookable slice of the same doctor (when the doctor has one)
    h.tapButton(detail.querySelector('#move'));
    await shim.waitFor(() => detail.data.moveSlots, 'the slices to move to');
    if (detail.data.moveSlots.length) {
      // the latest one: a slice starting within the cancel window could not be cancelled below
      const last = detail.data.moveSlots.length - 1;
      const target = detail.data.moveSlots[last].id;
      h.tap(detail.querySelectorAll('.move-slot')[last]);
      await shim.waitFor(() => detail.data.a.slot_id === target, 'the move');
      expect(detail.data.a.status).toBe('booked');
      expect(wx.calls('showToast').map((c) => c.args.title)).toContain('已改约');
      expect(detail.data.deadlinePassed).toBe(false);
    } else {
      h.tapButton(detail.querySelector('#move-cancel'));
    }
    h.tapButton(detail.querySelector('#cancel'));
    await shim.waitFor(() => detail.data.a.status === 'cancelled', 'the cancellation');
    expect(h.text(detail)).toContain('已取消');

    // the 已取消 tab lists it
    h.tap(list.querySelectorAll('.tab').find((t) => t.dom.textContent === '已取消'));
    await shim.waitFor(() => list.data.status === 'cancelled' && list.data.state !== 'loading', 'the cancelled tab');
    expect(list.data.items.map((a) => a.id)).toContain(aid);
  });

  staffTest('staff: login → today\'s appointments → check-in', async () => {
    const login = await h.mount(P.staffLogin);
    h.typeInto(login.querySelector('#username'), ENV.staffUsername);
    h.typeInto(login.querySelector('#password'), ENV.staffPassword);
    await h.flush();
    const url = await navigation('redirectTo', () => h.tapButton(login.querySelector('#login')), 'staff login');
    expect(url).toBe('/pages/staff-today/index');
    const hid = getSession('staff').user.hospital_id;
    expect(hid).toBeTruthy();

    // a patient books in that hospital, so that there is someone to check in
    await ensureProfile();
    const query = await discoverSlot(hid, { preferLater: false });
    const aid = await book(query);

    const today = await mountReady(P.staffToday, {}, "today's appointments");
    expect(['ready', 'empty']).toContain(today.data.state);
    if (today.data.date !== query.date) {
      const index = today.data.days.findIndex((d) => d.date === query.date);
      expect(index).toBeGreaterThanOrEqual(0);
      today.querySelector('#dates').querySelectorAll('.ds-day')[index].dispatchEvent('tap');
      await shim.waitFor(() => today.data.date === query.date && today.data.state === 'ready', 'the booked date');
    }
    const row = () => today.data.groups.flatMap((g) => g.items).find((a) => a.id === aid);
    await shim.waitFor(() => row(), 'the booked row');
    if (query.date !== format.today()) {
      // 签到 only on the visit day: no button, a hint, and the backend refuses it too
      expect(h.withDataId(today.querySelectorAll('.check-in'), aid)).toBeFalsy();
      expect(h.text(today)).toContain('就诊当天可签到');
      const refused = await staffCheckIn(hid, aid).catch((e) => e);
      expect(refused).toMatchObject({ statusCode: 409, code: 'INVALID_STATE' });
      return;
    }
    const button = h.withDataId(today.querySelectorAll('.check-in'), aid);
    expect(button).toBeTruthy();
    h.tapButton(button);
    await shim.waitFor(() => row() && row().status === 'checked_in', 'the check-in');
    expect(h.text(today)).toContain('已签到');

    // the patient sees it too
    const detail = await mountReady(P.detail, { id: aid }, 'appointment detail');
    expect(detail.data.a.status).toBe('checked_in');
    detail.instance.onUnload(); // its queue refresh stops with the page
  });

  payTest('挂号费: book → WeChat Pay (fake) → the result waits for paid; a closed sheet → 去支付; cancel → refund', async () => {
    const staff = await http('POST', '/auth/staff/login', { username: ENV.staffUsername, password: ENV.staffPassword });
    const hid = staff.user.hospital_id;
    const token = staff.access_token;
    const tag = Math.floor(Math.random() * 1e6);
    await http('PATCH', `/admin/hospitals/${hid}/rules`, { payment: 'required', payment_timeout_minutes: 15 }, token);
    try {
      const dep = await http('POST', `/admin/hospitals/${hid}/departments`, { name: `收费测试科${tag}` }, token);
      const doc = await http('POST', `/admin/hospitals/${hid}/doctors`, {
        name: '收费医生', title: '主治医师', department_id: dep.id, fee_cents: 2500, published: true,
      }, token);
      const date = format.addDays(format.today(), 2);
      const schedule = await http('POST', `/admin/hospitals/${hid}/doctors/${doc.id}/schedules`, {
        date, session: 'pm', slots: [{ start: '14:00', end: '14:30', capacity: 2 }, { start: '14:30', end: '15:00', capacity: 2 }],
      }, token);
      // the second booking on another day: one per department and day (the hospital's rule)
      const date2 = format.addDays(format.today(), 3);
      const schedule2 = await http('POST', `/admin/hospitals/${hid}/doctors/${doc.id}/schedules`, {
        date: date2, session: 'pm', slots: [{ start: '14:00', end: '14:30', capacity: 2 }],
      }, token);
      await ensureProfile();
      const query = (slot, day = date) => ({
        slot_id: slot.id, hospital_id: hid, doctor_id: doc.id, date: day,
      });

      // 1. pay in the sheet: the page passes the server's arguments, the result page waits
      const payRequests = () => wx.log.filter((c) => c.api === 'request' && /\/appointments\/[^/]+\/pay$/.test(c.args.url));
      const aid = await book(query(schedule.slots[0]));
      expect(payRequests().length).toBeGreaterThanOrEqual(1);
      const sheet = wx.last('requestPayment');
      expect(Object.keys(sheet).sort()).toEqual(['nonceStr', 'package', 'paySign', 'signType', 'timeStamp']);
      expect(sheet.signType).toBe('RSA');
      const redirect = wx.last('redirectTo').url;
      expect(redirect).toBe(`/pages/result/index?id=${aid}&paid=1`);
      const result = await mountReady(P.result, shim.queryOf(redirect), 'the payment result');
      await shim.waitFor(() => !result.data.confirming && result.data.a.status !== 'pending_payment', 'the server\'s paid', 60000);
      expect(result.data.a).toMatchObject({ status: 'booked', payment: { status: 'paid', amount_cents: 2500 } });
      expect(h.text(result)).toContain('预约成功');
      expect(h.text(result)).toContain('¥25.00（已支付）');
      result.instance.onUnload();

      // 2. a closed sheet keeps it pending with 去支付; paying later from the result page
      wx.payMode('cancel');
      const aid2 = await book(query(schedule2.slots[0], date2));
      expect(wx.last('redirectTo').url).toBe(`/pages/result/index?id=${aid2}`);
      const pending = await mountReady(P.result, { id: aid2 }, 'the unpaid result');
      expect(pending.data.a.status).toBe('pending_payment');
      expect(h.text(pending)).toContain('待支付');
      wx.payMode('pay');
      h.tapButton(pending.querySelector('#pay'));
      await shim.waitFor(() => pending.data.a.status === 'booked' && !pending.data.confirming, 'paid through 去支付', 60000);
      pending.instance.onUnload();

      // 3. cancelling a paid appointment refunds it in full; the detail page shows the refund
      const detail = await mountReady(P.detail, { id: aid }, 'the paid appointment');
      h.tapButton(detail.querySelector('#cancel'));
      await shim.waitFor(() => detail.data.a.status === 'cancelled', 'the cancellation');
      await shim.waitForAsync(async () => {
        await detail.instance.reload({ quiet: true });
        return ['refunding', 'refunded'].includes(detail.data.a.payment && detail.data.a.payment.status);
      }, 'the refund', 60000);
      expect(h.text(detail)).toMatch(/退款(中|已退款)/);
      detail.instance.onUnload();
    } finally {
      wx.payMode('pay');
      await http('PATCH', `/admin/hospitals/${hid}/rules`, { payment: 'none' }, token);
    }
  });

  staffTest('候补: join from a full session → another patient cancels → promoted → message opens it', async () => {
    // staff: a new department and doctor with one session of one number tomorrow
    const staff = await http('POST', '/auth/staff/login', { username: ENV.staffUsername, password: ENV.staffPassword });
    const hid = staff.user.hospital_id;
    const tag = Math.floor(Math.random() * 1e6);
    const dep = await http('POST', `/admin/hospitals/${hid}/departments`, { name: `候补测试科${tag}` }, staff.access_token);
    const doc = await http('POST', `/admin/hospitals/${hid}/doctors`, {
      name: '候补医生', title: '主治医师', department_id: dep.id, fee_cents: 1000, published: true,
    }, staff.access_token);
    const date = format.addDays(format.today(), 1);
    const schedule = await http('POST', `/admin/hospitals/${hid}/doctors/${doc.id}/schedules`, {
      date, session: 'pm', slots: [{ start: '14:00', end: '14:30', capacity: 1 }],
    }, staff.access_token);
    const slotId = schedule.slots[0].id;

    // another patient takes the only number
    const other = await otherPatient();
    const taken = await http('POST', '/appointments', { slot_id: slotId, patient_id: other.patientId }, other.token,
      { 'Idempotency-Key': `e2e-${tag}-${Date.now()}` });

    // our patient: the doctor page on that date is 约满 and offers 候补
    await ensureProfile();
    const doctor = await mountReady(P.doctor, { id: doc.id, hospital_id: hid, date }, 'the full doctor page');
    expect(doctor.data.date).toBe(date);
    await shim.waitFor(() => doctor.instance.waitlistTemplate, 'the waitlist_promoted template id');
    const template = doctor.instance.waitlistTemplate;
    expect(doctor.data.sessions.filter((s) => s.waitable)).toHaveLength(1);
    const mark = wx.log.length;
    h.tapButton(doctor.querySelectorAll('.join-waitlist')[0]);
    await shim.waitFor(() => wx.calls('showToast').some((c) => String(c.args.title).includes('加入候补')), 'joining the waitlist');
    expect(wx.log.slice(mark)[0]).toMatchObject({ api: 'requestSubscribeMessage', args: { tmplIds: [template] } });

    // the other patient cancels: the number goes to our patient, who gets waitlist_promoted
    await http('POST', `/appointments/${taken.id}/cancel`, {}, other.token);
    const message = await shim.waitForAsync(async () => (await shim.fakeMessages(OPENID))
      .find((m) => m.template_id === template), 'the waitlist_promoted message');
    const [pagePath, pageQuery] = message.page.split('?');
    expect(APP_PAGES).toContain(pagePath);
    const opened = await mountReady(P.detail, Object.fromEntries(new URLSearchParams(pageQuery)), 'the promoted appointment');
    expect(opened.data.a).toMatchObject({ status: 'booked', slot_id: slotId });

    const mine = await mountReady(P.waitlist, {}, 'my waitlist');
    const entry = mine.data.items.find((x) => x.doctor_id === doc.id);
    expect(entry).toMatchObject({ status: 'promoted', appointment_id: opened.data.a.id });
  });
});

if (!ENV.enabled) {
  test.skip('e2e suite (set GUAHAO_GATEWAY_URL and GUAHAO_WECHAT_FAKE_URL to run it)', () => {});
}
