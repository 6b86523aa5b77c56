// Staff: doctor leave (请假) — POST /admin/hospitals/{hid}/doctors/{did}/leave {from, to, reason}
// stops (停诊) every session of the doctor in the range; booked patients are cancelled and
// notified (paid fees refunded). The page shows which sessions and how many booked patients
// are affected (GET .../schedules?doctor_id=), asks for confirmation saying exactly that, and
// shows a 422's per-field messages next to the fields (other refusals above the button).
const pageState = require('../../utils/page-state');
const api = require('../../utils/api');
const format = require('../../utils/format');
const {
  loadStaffPage, confirmModal, actionErrorText, fieldErrors, doctorsById,
} = require('../../utils/staff');
const elderMode = require('../../utils/elder-mode');

const FIELDS = ['from', 'to', 'reason'];

function booked(schedule) {
  return (schedule.slots || []).reduce((n, x) => n + Math.max(0, (Number(x.capacity) || 0) - (Number(x.remaining) || 0)), 0);
}

Component({
  behaviors: [pageState, elderMode.behavior],
  data: {
    doctorId: '',
    doctorName: '',
    today: '',
    form: { from: '', to: '', reason: '' },
    errors: {},
    affected: { sessions: 0, booked: 0 },
    submitting: false,
    submitError: '',
    done: null, // {stopped, cancelled} after a successful leave
  },
  methods: {
    onLoad(query = {}) {
      const today = format.today();
      return loadStaffPage(this, {
        doctorId: format.param(query, 'doctor_id'),
        today,
        form: { from: today, to: today, reason: '' },
      });
    },
    reload(opts) {
      return this.runLoad(async () => {
        const [doctors, schedules] = await Promise.all([
          doctorsById(),
          this.data.doctorId ? api.staff.doctorSchedules(this.data.doctorId, { toast: false }) : { items: [] },
        ]);
        const doctor = doctors[this.data.doctorId];
        if (!doctor) {
          this.setData({ state: 'empty' });
          return false;
        }
        this.schedules = schedules.items || [];
        this.setData({ doctorName: `${doctor.name} ${doctor.title || ''}`.trim() });
        this.updateAffected();
        return true;
      }, opts);
    },
    /** Sessions of the range not stopped yet, and their booked patients (to be cancelled). */
    updateAffected() {
      const { from, to } = this.data.form;
      const hit = (this.schedules || []).filter((s) => s.date >= from && s.date <= to && s.status !== 'stopped');
      this.setData({ affected: { sessions: hit.length, booked: hit.reduce((n, s) => n + booked(s), 0) } });
    },
    onFrom(e) {
      const from = e.detail.value;
      const to = this.data.form.to < from ? from : this.data.form.to;
      this.setData({
        'form.from': from, 'form.to': to, 'errors.from': '', 'errors.to': '', submitError: '',
      });
      this.updateAffected();
    },
    onTo(e) {
      this.setData({ 'form.to': e.detail.value, 'errors.to': '', submitError: '' });
      this.updateAffected();
    },
    onReason(e) {
      this.setData({ 'form.reason': e.detail.value, 'errors.reason': '', submitError: '' });
    },
    /** Checks the server would make too, shown before asking. */
    validate() {
      const { from, to, reason } = this.data.form;
      const errors = {};
      if (!from) errors.from = '请选择开始日期';
      if (!to) errors.to = '请选择结束日期';
      else if (from && to < from) errors.to = '结束日期不能早于开始日期';
      if (!String(reason).trim()) errors.reason = '请填写请假原因（将告知已预约的患者）';
      this.setData({ errors });
      return Object.keys(errors).length === 0;
    },
    async onSubmit() {
      if (this.data.submitting || !this.validate()) return;
      const { form, affected, doctorName } = this.data;
      const range = form.from === form.to ? format.dateLabel(form.from) : `${format.dateLabel(form.from)} 至 ${format.dateLabel(form.to)}`;
      const ok = await confirmModal({
        title: `确认${doctorName}请假`,
        content: `${range}的${affected.sessions}个出诊将全部停诊，已预约的${affected.booked}位患者的预约将被取消并收到通知（已付挂号费全额退款）。此操作不可撤销。`,
        confirmText: '确认请假',
        cancelText: '再想想',
        confirmColor: '#d54941',
      });
      if (!ok) return;
      this.setData({ submitting: true, submitError: '' });
      try {
        const leave = await api.staff.leave(this.data.doctorId, {
          from: form.from, to: form.to, reason: form.reason.trim(),
        }, { toast: false });
        this.setData({ done: { stopped: (leave.stopped || []).length, cancelled: leave.cancelled || 0 } });
        wx.showToast({ title: '已登记请假', icon: 'success' });
      } catch (err) {
        // a 422's messages go next to their fields; others (a whole-body rule such as
        // "to before from", 404, 409, 503) above the button
        const all = fieldErrors(err);
        const errors = {};
        const others = [];
        Object.keys(all).forEach((k) => {
          if (FIELDS.includes(k)) errors[k] = all[k];
          else others.push(all[k]);
        });
        this.setData({
          errors,
          submitError: others.length ? others.join('；') : (Object.keys(errors).length ? '' : actionErrorText(err)),
        });
      } finally {
        this.setData({ submitting: false });
      }
    },
    onBack() {
      wx.navigateBack();
    },
  },
});
