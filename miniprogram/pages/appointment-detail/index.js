// Appointment detail with cancellation: the deadline is shown, POST /appointments/{id}/cancel;
// CANCEL_DEADLINE_PASSED is shown on the page, not only as a toast. The hospital (name,
// address, phone → wx.makePhoneCall, map → wx.openLocation), the check-in QR code that the
// staff page scans, and 改约 to another bookable slice of the same doctor
// (POST /appointments/{id}/move).
// 待支付: countdown to pay_by and 去支付 (utils/payment.js); refund status once cancelled.
// 候诊: on the visit day the queue (GET /appointments/{id}/queue: position, ahead, now
// serving, ETA) is refreshed every config.queueRefreshMs while the page is shown (stopped in
// onHide / onUnload), and 叫号提醒 asks for the `queue_near` subscribe message.
const pageState = require('../../utils/page-state');
const api = require('../../utils/api');
const format = require('../../utils/format');
const checkinCode = require('../../utils/checkin-code');
const { showError } = require('../../utils/request');
const elderMode = require('../../utils/elder-mode');
const config = require('../../config');
const payment = require('../../utils/payment');
const subscribe = require('../../utils/subscribe');
const { errorText } = require('../../utils/request');

const SUBSCRIBE_VALUES = ['accept', 'reject', 'ban', 'filter'];

function confirmModal(options) {
  return new Promise((resolve) => {
    wx.showModal({ ...options, success: (res) => resolve(!!res.confirm), fail: () => resolve(false) });
  });
}

Component({
  behaviors: [pageState, elderMode.behavior],
  data: {
    a: null,
    hospitalName: '',
    hospital: null,
    deadlinePassed: false,
    cancelling: false,
    qrRows: [],
    moveSlots: null, // [{id, text}] while choosing a new slice
    moving: false,
    paying: false,
    queue: null, // {position, ahead, nowServing, eta, status, called, done}
    queueError: '',
    queueTemplate: '',
    queueSubscribed: false,
  },
  methods: {
    onLoad(query = {}) {
      this.appointmentId = query.id || '';
      this.loadMovedTemplate();
      return this.reload();
    },
    loadMovedTemplate() {
      this.movedTemplate = '';
      api.subscriptions.publicTemplates({ toast: false })
        .then(({ items }) => {
          const t = (items || []).find((x) => x.kind === 'appointment_moved');
          this.movedTemplate = t ? t.template_id : '';
          const q = (items || []).find((x) => config.queueTemplateKinds.includes(x.kind));
          this.setData({ queueTemplate: q ? q.template_id : '' });
        })
        .catch(() => {});
    },
    onShow() {
      if (!this.hidden) return; // the first onShow follows onLoad, which starts the timers
      this.hidden = false;
      this.startTimers();
    },
    onHide() {
      this.hidden = true;
      this.stopTimers();
    },
    onUnload() {
      this.hidden = true;
      this.stopTimers();
    },
    stopTimers() {
      clearTimeout(this.queueTimer);
      this.queueTimer = null;
      clearInterval(this.countdownTimer);
      this.countdownTimer = null;
      this.queueRun = (this.queueRun || 0) + 1; // an answer in flight schedules nothing more
    },
    startTimers() {
      this.stopTimers();
      const a = this.raw;
      if (this.hidden || !a) return;
      if (a.status === 'pending_payment') {
        this.countdownTimer = setInterval(() => this.tickPayment(), config.countdownTickMs);
      }
      if (this.queueable(a)) this.refreshQueue(this.queueRun);
      else this.setData({ queue: null, queueError: '' });
    },
    /** The queue matters on the visit day, once checked in (or booked, to see it move). */
    queueable(a) {
      return a.status === 'checked_in' || (a.status === 'booked' && a.date === format.today());
    },
    async refreshQueue(run) {
      try {
        const q = await api.appointments.queue(this.appointmentId, { toast: false });
        if (run !== this.queueRun) return;
        const eta = q.eta_minutes === null || q.eta_minutes === undefined ? NaN : Number(q.eta_minutes);
        if (q.status === 'cancelled' || q.status === 'no_show') {
          // out of the queue for good: show the appointment as it is now (no more polling)
          this.setData({ queue: null, queueError: '' });
          this.reload({ quiet: true });
          return;
        }
        this.setData({
          queueError: '',
          queue: {
            position: q.position,
            ahead: q.ahead,
            nowServing: q.now_serving_seq,
            hasNowServing: q.now_serving_seq !== null && q.now_serving_seq !== undefined,
            eta: Number.isFinite(eta) ? Math.max(0, Math.round(eta)) : null,
            status: q.status,
            room: q.room || '',
            called: q.status === 'called',
            skipped: q.status === 'skipped',
            done: q.status === 'done' || q.status === 'completed',
            waiting: q.status === 'waiting' || (q.status === undefined && q.position !== null && q.position !== undefined),
          },
        });
        if (q.status === 'done' || q.status === 'completed') {
          this.reload({ quiet: true });
          return;
        }
      } catch (err) {
        if (run !== this.queueRun) return;
        // not in the queue yet (booked, not checked in) answers 404/409: nothing to show
        const absent = err.statusCode === 404 || err.statusCode === 409;
        this.setData({
          queue: absent ? null : this.data.queue,
          queueError: absent ? '' : `候诊信息暂时无法获取：${errorText(err)}`,
        });
      }
      if (run !== this.queueRun) return;
      this.queueTimer = setTimeout(() => this.refreshQueue(run), config.queueRefreshMs);
    },
    async tickPayment() {
      const a = this.raw;
      if (!a || a.status !== 'pending_payment') {
        clearInterval(this.countdownTimer);
        this.countdownTimer = null;
        return;
      }
      this.setData({ a: format.appointmentView(a) });
      this.expiry = this.expiry || {};
      // pay_by reached: the server cancels it (system, unpaid)
      if (format.msLeft(a.pay_by) > 0 || !payment.askAfterExpiry(this.expiry)) return;
      try {
        const next = await api.appointments.get(this.appointmentId, { toast: false });
        this.show(next);
        if (next.status !== 'pending_payment') this.startTimers();
      } catch (err) {
        // asked again at the next tick
      } finally {
        this.expiry.asking = false;
      }
    },
    async onPay() {
      const { a } = this.data;
      if (!a || a.status !== 'pending_payment' || this.data.paying) return;
      this.setData({ paying: true });
      try {
        const { outcome } = await payment.requestPayment(a.id);
        if (outcome === 'submitted') wx.redirectTo({ url: payment.resultUrl(a.id, true) });
        else if (outcome === 'cancelled') wx.showToast({ title: '已取消支付，请在截止前完成支付', icon: 'none' });
        else wx.showToast({ title: '支付未完成，请重试', icon: 'none' });
      } catch (err) {
        showError(err);
        this.reload({ quiet: true });
      } finally {
        this.setData({ paying: false });
      }
    },
    /** 叫号提醒: wx.requestSubscribeMessage (queue_near) is the first call of the tap. */
    onSubscribeQueue() {
      const tmpl = this.data.queueTemplate;
      if (!tmpl) return Promise.resolve();
      return subscribe.ask([tmpl]).then((accepted) => {
        if (accepted.length) {
          this.setData({ queueSubscribed: true });
          wx.showToast({ title: '快到您时将通知您', icon: 'none' });
        }
      });
    },
    /** The 改约 tap: wx.requestSubscribeMessage (appointment_moved) is its first call —
     * anything awaited before it would lose the user's gesture. */
    onTapMove() {
      const tmpl = this.movedTemplate;
      if (tmpl) {
        wx.requestSubscribeMessage({
          tmplIds: [tmpl],
          success: (choice) => {
            if (SUBSCRIBE_VALUES.includes(choice[tmpl])) {
              api.subscriptions.record({ [tmpl]: choice[tmpl] }, { toast: false }).catch(() => {});
            }
          },
          fail: () => {},
        });
      }
      return this.onStartMove();
    },
    onPullDownRefresh() {
      return this.pullRefresh();
    },
    reload(opts) {
      return this.runLoad(async () => {
        const a = await api.appointments.get(this.appointmentId, { toast: false });
        this.show(a);
        this.startTimers();
        if (!this.data.hospital) {
          api.catalog.hospital(a.hospital_id, { toast: false })
            .then((hospital) => {
              this.hospitalRules = hospital.rules || {};
              this.setData({
                hospitalName: hospital.name,
                hospital: {
                  name: hospital.name,
                  address: hospital.address || '',
                  phone: hospital.phone || '',
                  hasLocation: typeof hospital.latitude === 'number' && typeof hospital.longitude === 'number',
                  latitude: hospital.latitude,
                  longitude: hospital.longitude,
                },
              });
            })
            .catch(() => {});
        }
        return true;
      }, opts);
    },
    show(a) {
      this.raw = a;
      const view = format.appointmentView(a);
      this.setData({
        a: view,
        deadlinePassed: a.status === 'booked' && format.isPast(a.cancel_deadline),
        qrRows: a.status === 'booked' ? checkinCode.matrix(checkinCode.payload(a.id)) : [],
      });
    },
    onCall() {
      const { hospital } = this.data;
      if (hospital && hospital.phone) wx.makePhoneCall({ phoneNumber: hospital.phone });
    },
    onMap() {
      const { hospital } = this.data;
      if (!hospital || !hospital.hasLocation) return;
      wx.openLocation({
        latitude: hospital.latitude, longitude: hospital.longitude, name: hospital.name, address: hospital.address, scale: 16,
      });
    },
    /** 改约: the bookable slices of the same doctor within the booking window. */
    async onStartMove() {
      const { a } = this.data;
      if (!a || a.status !== 'booked' || this.data.moving) return;
      this.setData({ moving: true });
      try {
        const rules = this.hospitalRules || {};
        const now = Date.now();
        const from = format.today(now);
        const to = format.addDays(from, Number.isInteger(rules.window_days) ? rules.window_days : 7);
        const { items } = await api.catalog.schedulesBetween(a.doctor.id, from, to, { toast: false });
        const slots = [];
        (items || []).filter((s) => s.status === 'open').forEach((s) => {
          (s.slots || []).forEach((slot) => {
            if (slot.id !== a.slot_id && format.slotBookable(slot, s.date, now)) {
              slots.push({
                id: slot.id,
                text: `${format.dateLabel(s.date)} ${format.sessionLabel(s.session)} ${slot.start}-${slot.end}`,
                left: `余${slot.remaining}`,
              });
            }
          });
        });
        this.setData({ moveSlots: slots });
      } catch (err) {
        showError(err);
      } finally {
        this.setData({ moving: false });
      }
    },
    onCancelMove() {
      this.setData({ moveSlots: null });
    },
    async onPickMove(e) {
      const { id } = e.currentTarget.dataset;
      const choice = (this.data.moveSlots || []).find((s) => s.id === id);
      if (!choice || this.data.moving) return;
      const ok = await confirmModal({ title: '改约', content: `改约到 ${choice.text}？原号源将被释放。`, confirmText: '改约' });
      if (!ok) return;
      this.setData({ moving: true });
      try {
        const updated = await api.appointments.move(this.data.a.id, id, { toast: false });
        this.setData({ moveSlots: null });
        this.show(updated);
        this.startTimers();
        wx.showToast({ title: '已改约', icon: 'success' });
      } catch (err) {
        showError(err);
        if (err.code === 'SLOT_FULL') this.onStartMove();
      } finally {
        this.setData({ moving: false });
      }
    },
    async onCancel() {
      const { a } = this.data;
      if (!a || a.status !== 'booked' || this.data.cancelling) return;
      const ok = await confirmModal({
        title: '取消预约',
        content: `确定取消 ${a.dateText} ${a.sessionText} ${a.doctor.name} 的预约吗？`,
        confirmText: '取消预约',
        cancelText: '再想想',
        confirmColor: '#d54941',
      });
      if (!ok) return;
      this.setData({ cancelling: true });
      try {
        const updated = await api.appointments.cancel(a.id, { toast: false });
        this.show(updated);
        this.startTimers();
        wx.showToast({ title: '已取消预约', icon: 'success' });
      } catch (err) {
        if (err.code === 'CANCEL_DEADLINE_PASSED') {
          this.setData({ deadlinePassed: true });
          wx.showToast({ title: '已过取消截止时间', icon: 'none' });
        } else {
          showError(err);
          if (err.code === 'INVALID_STATE') this.reload({ quiet: true });
        }
      } finally {
        this.setData({ cancelling: false });
      }
    },
  },
});
