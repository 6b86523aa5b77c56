// 我的预约 (tab): appointments by status (GET /appointments?status=&cursor=), newest first,
// more pages through `next` → pages/appointment-detail. An unpaid appointment (待支付) shows a
// live countdown to its pay_by and 去支付 (WeChat Pay, then the result page waits for the
// server's `paid`); past pay_by the list asks the server again (unpaid → cancelled by system).
const pageState = require('../../utils/page-state');
const api = require('../../utils/api');
const format = require('../../utils/format');
const elderMode = require('../../utils/elder-mode');
const config = require('../../config');
const payment = require('../../utils/payment');
const { showError } = require('../../utils/request');

const TABS = [
  { value: '', label: '全部', empty: '还没有预约记录' },
  { value: 'pending_payment', label: '待支付', empty: '没有待支付的预约' },
  { value: 'booked', label: '待就诊', empty: '没有待就诊的预约' },
  { value: 'checked_in', label: '已签到', empty: '没有已签到的预约' },
  { value: 'completed', label: '已完成', empty: '没有已完成的就诊' },
  { value: 'cancelled', label: '已取消', empty: '没有已取消的预约' },
  { value: 'no_show', label: '爽约', empty: '没有爽约记录' },
];

Component({
  behaviors: [pageState, elderMode.behavior],
  data: {
    tabs: TABS,
    status: '',
    emptyText: TABS[0].empty,
    items: [],
    next: null,
    loadingMore: false,
    paying: '', // id of the appointment whose payment sheet is open
  },
  methods: {
    onLoad(query = {}) {
      const status = TABS.some((t) => t.value === query.status) ? query.status : '';
      this.setStatus(status);
      return this.reload();
    },
    onShow() {
      this.hidden = false;
      // coming back after booking or cancelling: refresh without a loading flash
      if (this.loadedOnce) this.reload({ quiet: true });
    },
    onHide() {
      this.hidden = true;
      this.stopCountdown();
    },
    onUnload() {
      this.hidden = true;
      this.stopCountdown();
    },
    /** Tick 待支付 countdowns once a second while the page is shown and something is unpaid. */
    startCountdown() {
      this.stopCountdown();
      if (this.hidden || !this.data.items.some((a) => a.status === 'pending_payment')) return;
      this.countdownTimer = setInterval(() => this.tick(), config.countdownTickMs);
    },
    stopCountdown() {
      clearInterval(this.countdownTimer);
      this.countdownTimer = null;
    },
    tick() {
      const items = this.data.items.map((a) => (a.status === 'pending_payment' ? format.appointmentView(a) : a));
      this.setData({ items });
      this.expiry = this.expiry || {};
      if (items.some((a) => a.payExpired)) {
        // pay_by reached: the server cancels (cancelled_by system, reason unpaid); ask it
        if (!payment.askAfterExpiry(this.expiry)) return;
        this.reload({ quiet: true }).then(() => {
          this.expiry.asking = false;
        });
      } else if (!items.some((a) => a.status === 'pending_payment')) {
        this.stopCountdown();
      }
    },
    async onPay(e) {
      const { id } = e.currentTarget.dataset;
      if (this.data.paying) return;
      this.setData({ paying: id });
      try {
        const { outcome } = await payment.requestPayment(id);
        if (outcome === 'submitted') wx.navigateTo({ url: payment.resultUrl(id, true) });
        else if (outcome === 'cancelled') wx.showToast({ title: '已取消支付，请在截止前完成支付', icon: 'none' });
        else wx.showToast({ title: '支付未完成，请重试', icon: 'none' });
      } catch (err) {
        showError(err);
        this.reload({ quiet: true });
      } finally {
        this.setData({ paying: '' });
      }
    },
    onPullDownRefresh() {
      return this.pullRefresh();
    },
    onReachBottom() {
      return this.onMore();
    },
    setStatus(status) {
      const tab = TABS.find((t) => t.value === status) || TABS[0];
      this.setData({ status, emptyText: tab.empty });
    },
    reload(opts) {
      const status = this.data.status;
      return this.runLoad(async () => {
        const page = await api.appointments.list(status, undefined, { toast: false });
        if (status !== this.data.status) return this.data.items.length > 0; // tab changed meanwhile
        const items = (page.items || []).map((a) => format.appointmentView(a));
        this.setData({ items, next: page.next || null });
        this.loadedOnce = true;
        this.startCountdown();
        return items.length > 0;
      }, opts);
    },
    async onMore() {
      const { next, status, loadingMore } = this.data;
      if (!next || loadingMore) return;
      this.setData({ loadingMore: true });
      try {
        const page = await api.appointments.list(status, next);
        if (status !== this.data.status) return;
        const more = (page.items || []).map((a) => format.appointmentView(a));
        this.setData({ items: this.data.items.concat(more), next: page.next || null });
        this.startCountdown();
      } catch (err) {
        // the toast says why; the button stays for another try
      } finally {
        this.setData({ loadingMore: false });
      }
    },
    onTab(e) {
      const { value } = e.currentTarget.dataset;
      if (value === this.data.status) return;
      this.setStatus(value);
      this.setData({ items: [], next: null });
      this.reload();
    },
    onOpen(e) {
      wx.navigateTo({ url: `/pages/appointment-detail/index?id=${encodeURIComponent(e.currentTarget.dataset.id)}` });
    },
    onGoBook() {
      wx.switchTab({ url: '/pages/index/index' });
    },
  },
});
