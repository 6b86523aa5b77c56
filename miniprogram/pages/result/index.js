// Booking result: seq_no, time and place (GET /appointments/{id}, GET /hospitals/{hid}).
// With an online registration fee the appointment may still be `pending_payment`:
// - opened after the payment sheet reported success (`?paid=1`): it waits for the server to
//   record the payment (polls GET /appointments/{id}; the sheet's success alone proves
//   nothing), with a timeout and a clear message;
// - otherwise (sheet cancelled or failed): 待支付 with a countdown to pay_by and 去支付.
// Also 叫号提醒: the `queue_near` subscribe message (the booking tap already asked for 3).
const pageState = require('../../utils/page-state');
const api = require('../../utils/api');
const format = require('../../utils/format');
const config = require('../../config');
const elderMode = require('../../utils/elder-mode');
const payment = require('../../utils/payment');
const subscribe = require('../../utils/subscribe');
const { showError } = require('../../utils/request');

Component({
  behaviors: [pageState, elderMode.behavior],
  data: {
    a: null,
    hospitalName: '',
    address: '',
    confirming: false, // waiting for the server's `paid`
    payTimedOut: false,
    paying: false,
    queueTemplate: '',
    queueSubscribed: false,
  },
  methods: {
    onLoad(query = {}) {
      this.appointmentId = query.id || '';
      this.paidHint = query.paid === '1';
      subscribe.loadTemplates(config.queueTemplateKinds).then((t) => {
        this.setData({ queueTemplate: t.queue_near || '' });
      });
      return this.reload();
    },
    onShow() {
      if (!this.hidden) return; // the first onShow follows onLoad, which starts what is needed
      this.hidden = false;
      if (this.resumeWaiting) this.waitForPaid();
      else this.startCountdown();
      if (this.raw) this.pollLottery(this.raw);
    },
    onHide() {
      this.hidden = true;
      this.resumeWaiting = !!this.waiter;
      this.stopTimers();
    },
    onUnload() {
      this.stopTimers();
    },
    /** Stop every timer of the page (none keeps running while it is hidden or gone). */
    stopTimers() {
      clearTimeout(this.pollTimer);
      this.pollTimer = null;
      clearInterval(this.countdownTimer);
      this.countdownTimer = null;
      const waiter = this.waiter;
      this.waiter = null;
      if (waiter) waiter.stop();
    },
    // a release lottery (放号抽签) answers `pending`: show when it is drawn and poll for it
    pollLottery(a) {
      clearTimeout(this.pollTimer);
      if (a.status !== 'pending') return;
      this.pollTimer = setTimeout(async () => {
        try {
          const next = await api.appointments.get(this.appointmentId, { toast: false });
          this.show(next);
          this.pollLottery(next);
        } catch (err) {
          this.pollLottery(a);
        }
      }, config.lotteryPollMs);
    },
    show(a) {
      this.raw = a;
      this.setData({ a: format.appointmentView(a) });
    },
    reload(opts) {
      return this.runLoad(async () => {
        const a = await api.appointments.get(this.appointmentId, { toast: false });
        this.show(a);
        this.pollLottery(a);
        if (this.hidden) {
          this.resumeWaiting = a.status === 'pending_payment' && this.paidHint;
        } else if (a.status === 'pending_payment' && this.paidHint) {
          this.waitForPaid();
        } else {
          this.startCountdown();
        }
        try {
          const hospital = await api.catalog.hospital(a.hospital_id, { toast: false });
          this.setData({ hospitalName: hospital.name, address: hospital.address || '' });
        } catch (err) {
          // the place still shows the department
        }
        return true;
      }, opts);
    },
    /** After the payment sheet: the server's word decides (notification or order query). */
    waitForPaid() {
      this.stopTimers();
      this.setData({ confirming: true, payTimedOut: false });
      const waiter = payment.waitForPaid(this.appointmentId, (a) => this.show(a));
      this.waiter = waiter;
      return waiter.done.then((a) => {
        if (this.waiter !== waiter) return; // stopped or replaced
        this.waiter = null;
        this.setData({ confirming: false, payTimedOut: !a });
        if (a) {
          this.paidHint = false;
          this.show(a);
          this.startCountdown();
        }
      });
    },
    /** 待支付: tick the countdown; at pay_by ask the server (it cancels unpaid appointments). */
    startCountdown() {
      clearInterval(this.countdownTimer);
      this.countdownTimer = null;
      const a = this.raw;
      if (!a || a.status !== 'pending_payment' || this.data.confirming || this.data.payTimedOut) return;
      this.countdownTimer = setInterval(() => this.tick(), config.countdownTickMs);
    },
    async tick() {
      const a = this.raw;
      if (!a || a.status !== 'pending_payment') {
        clearInterval(this.countdownTimer);
        this.countdownTimer = null;
        return;
      }
      this.setData({ a: format.appointmentView(a) });
      this.expiry = this.expiry || {};
      // pay_by reached: the server cancels it (cancelled_by system, reason unpaid)
      if (format.msLeft(a.pay_by) > 0 || !payment.askAfterExpiry(this.expiry)) return;
      try {
        const next = await api.appointments.get(this.appointmentId, { toast: false });
        this.show(next);
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
        if (outcome === 'submitted') {
          this.paidHint = true;
          this.waitForPaid();
        } else if (outcome === 'cancelled') {
          wx.showToast({ title: '已取消支付，请在截止前完成支付', icon: 'none' });
        } else {
          wx.showToast({ title: '支付未完成，请重试', icon: 'none' });
        }
      } catch (err) {
        showError(err);
        this.reload({ quiet: true });
      } finally {
        this.setData({ paying: false });
      }
    },
    onCheckPaid() {
      this.paidHint = true;
      return this.waitForPaid();
    },
    /** 叫号提醒: wx.requestSubscribeMessage is the first call of the tap. */
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
    onMine() {
      wx.switchTab({ url: '/pages/appointments/index' });
    },
    onHome() {
      wx.switchTab({ url: '/pages/index/index' });
    },
  },
});
