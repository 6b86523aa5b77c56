// Confirm a booking: the booking itself read from the server by its ids (GET /doctors/{id},
// GET /doctors/{id}/schedules for the date: doctor, time and fee never come from the URL),
// patient profile picker (GET /patients), rules summary (GET /hospitals/{hid}),
// eligibility reasons before the tap (GET /appointments/eligibility), then on the tap:
// wx.requestSubscribeMessage FIRST (a user gesture is needed; nothing may be awaited before
// it), its result to POST /subscriptions, then POST /appointments with an Idempotency-Key
// that is generated once per booking attempt and reused when that attempt is retried.
// A hospital with an online registration fee answers 201 `pending_payment`: the page then
// opens WeChat Pay with the server's arguments (utils/payment.js) and goes to the result
// page, which waits for the server's `paid` (or offers 去支付 when the sheet was cancelled).
const pageState = require('../../utils/page-state');
const api = require('../../utils/api');
const format = require('../../utils/format');
const config = require('../../config');
const elderMode = require('../../utils/elder-mode');
const payment = require('../../utils/payment');
const {
  newIdempotencyKey, errorText, readable, ApiError, showError,
} = require('../../utils/request');

const SUBSCRIBE_VALUES = ['accept', 'reject', 'ban', 'filter'];

/** The online-fee rule as a line of 预约须知 (none when the fee is paid at the hospital). */
function payRules(rules) {
  if (!rules || rules.payment !== 'required') return [];
  const minutes = rules.payment_timeout_minutes || 15;
  return [`挂号费需在预约后${minutes}分钟内微信支付，超时未支付将自动取消；取消预约或停诊全额退款`];
}

function reasonText(reason) {
  const msg = readable(reason.message) || reason.code;
  return reason.until ? `${msg}（至 ${format.instant(reason.until)}）` : msg;
}

Component({
  behaviors: [pageState, elderMode.behavior],
  data: {
    info: {},
    rules: [],
    patients: [],
    patientId: '',
    checking: false,
    eligible: false,
    reasons: [],
    submitting: false,
    submitError: '',
    canSubmit: false,
    submitText: '确认预约',
  },
  methods: {
    onLoad(query = {}) {
      this.slotId = query.slot_id || '';
      this.doctorId = query.doctor_id || '';
      this.hospitalId = query.hospital_id || '';
      this.date = query.date || '';
      this.templateIds = [];
      this.attempt = null;
      return this.reload();
    },
    onShow() {
      // back from 就诊人管理: the list may have changed
      if (this.loadedOnce) this.loadPatients().catch(() => {});
    },
    reload(opts) {
      return this.runLoad(async () => {
        const [doctor, { items }] = await Promise.all([
          api.catalog.doctor(this.doctorId, { toast: false }),
          api.catalog.schedules(this.doctorId, this.date, this.date, { toast: false }),
          this.loadPatients(),
          this.loadTemplates(),
        ]);
        const schedule = (items || []).find((s) => (s.slots || []).some((x) => x.id === this.slotId));
        const slot = schedule && schedule.slots.find((x) => x.id === this.slotId);
        if (!slot) {
          throw new ApiError({ statusCode: 404, code: 'NOT_FOUND', message: '号源不存在或已调整，请重新选择 / slot not found' });
        }
        this.hospitalId = this.hospitalId || doctor.hospital_id;
        const hospital = await api.catalog.hospital(this.hospitalId, { toast: false });
        const bookable = schedule.status === 'open' && format.slotBookable(slot, schedule.date);
        this.setData({
          info: {
            doctorName: doctor.name,
            title: doctor.title || '',
            dateText: format.dateLabel(schedule.date),
            sessionLabel: format.sessionLabel(schedule.session),
            time: `${slot.start}-${slot.end}`,
            feeText: format.fee(schedule.fee_cents),
            hospitalName: hospital.name,
            slotText: bookable ? '' : format.slotText(slot, schedule.date),
          },
          rules: format.rulesLines(hospital.rules).concat(payRules(hospital.rules)),
        });
        this.payRequired = !!(hospital.rules && hospital.rules.payment === 'required');
        this.refreshButton();
        this.loadedOnce = true;
        return true;
      }, opts);
    },
    async loadTemplates() {
      try {
        const { items } = await api.subscriptions.templates({ toast: false });
        const byKind = {};
        (items || []).forEach((t) => {
          byKind[t.kind] = t.template_id;
        });
        this.templateIds = config.bookingTemplateKinds.map((k) => byKind[k]).filter(Boolean).slice(0, 3);
      } catch (err) {
        this.templateIds = []; // booking works without notifications
      }
    },
    async loadPatients() {
      const { items } = await api.patients.list({ toast: false });
      const patients = (items || []).map((p) => ({ ...p, relationText: format.relationLabel(p.relation) }));
      const still = patients.find((p) => p.id === this.data.patientId);
      const chosen = still || patients.find((p) => p.is_default) || patients[0];
      this.setData({ patients });
      await this.choose(chosen ? chosen.id : '');
    },
    async choose(patientId, { keepError = false } = {}) {
      this.setData(keepError ? { patientId } : { patientId, submitError: '' });
      if (!patientId) {
        this.setData({ checking: false, eligible: false, reasons: [] });
        this.refreshButton();
        return;
      }
      this.setData({ checking: true });
      this.refreshButton();
      try {
        const result = await api.appointments.eligibility(this.slotId, patientId, { toast: false });
        if (this.data.patientId !== patientId) return; // another pick since
        this.setData({
          eligible: !!result.eligible,
          reasons: (result.reasons || []).map((r) => ({ code: r.code, text: reasonText(r) })),
        });
      } catch (err) {
        // cannot tell: let the server decide at booking time
        this.setData({ eligible: true, reasons: [] });
      } finally {
        this.setData({ checking: false });
        this.refreshButton();
      }
    },
    refreshButton() {
      const { patientId, checking, eligible, submitting } = this.data;
      this.setData({
        canSubmit: !!patientId && !checking && eligible && !submitting,
        submitText: this.attempt && this.attempt.retryable ? '重新提交' : (this.payRequired ? '确认预约并支付' : '确认预约'),
      });
    },
    onPickPatient(e) {
      const { id } = e.currentTarget.dataset;
      if (id !== this.data.patientId && !this.data.submitting) this.choose(id);
    },
    onAddPatient() {
      wx.navigateTo({ url: '/pages/patients/index' });
    },
    /** The tap handler: wx.requestSubscribeMessage is its first call. */
    onConfirm() {
      if (!this.data.canSubmit || this.data.submitting) return undefined;
      const tmplIds = this.templateIds || [];
      const subscribed = tmplIds.length
        ? new Promise((resolve) => {
          wx.requestSubscribeMessage({
            tmplIds,
            success: resolve,
            fail: () => resolve(null),
          });
        })
        : Promise.resolve(null);
      this.setData({ submitting: true, submitError: '' });
      this.refreshButton();
      return this.submit(subscribed, tmplIds);
    },
    async submit(subscribed, tmplIds) {
      const choice = await subscribed;
      if (choice) {
        const results = {};
        tmplIds.forEach((id) => {
          if (SUBSCRIBE_VALUES.includes(choice[id])) results[id] = choice[id];
        });
        if (Object.keys(results).length) {
          await api.subscriptions.record(results, { toast: false }).catch(() => {});
        }
      }
      const attempt = this.currentAttempt();
      try {
        const appointment = await api.appointments.book(this.slotId, this.data.patientId, attempt.key);
        this.attempt = null;
        if (appointment.status === 'pending_payment') {
          await this.pay(appointment);
          return;
        }
        wx.redirectTo({ url: `/pages/result/index?id=${encodeURIComponent(appointment.id)}` });
      } catch (err) {
        // a retryable failure (network, 5xx, 429) keeps the key: the booking may have been made
        attempt.retryable = !!err.retryable;
        if (!err.retryable) this.attempt = null;
        this.setData({ submitError: errorText(err) });
        if (!err.retryable) this.choose(this.data.patientId, { keepError: true });
      } finally {
        this.setData({ submitting: false });
        this.refreshButton();
      }
    },
    /** Booked, fee unpaid: WeChat Pay's sheet, then the result page (which asks the server). */
    async pay(appointment) {
      let submitted = false;
      try {
        const { outcome } = await payment.requestPayment(appointment.id);
        submitted = outcome === 'submitted';
        if (outcome === 'failed') wx.showToast({ title: '支付未完成，可稍后去支付', icon: 'none' });
      } catch (err) {
        showError(err); // the result page still offers 去支付 while it can be paid
      }
      wx.redirectTo({ url: payment.resultUrl(appointment.id, submitted) });
    },
    /** The booking attempt for the current slot + patient, with its Idempotency-Key. */
    currentAttempt() {
      const patientId = this.data.patientId;
      if (!this.attempt || this.attempt.slotId !== this.slotId || this.attempt.patientId !== patientId) {
        this.attempt = { key: newIdempotencyKey(), slotId: this.slotId, patientId, retryable: false };
      }
      return this.attempt;
    },
  },
});
