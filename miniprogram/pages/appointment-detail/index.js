// Appointment detail with cancellation: the deadline is shown, POST /appointments/{id}/cancel;
// CANCEL_DEADLINE_PASSED is shown on the page, not only as a toast.
const pageState = require('../../utils/page-state');
const api = require('../../utils/api');
const format = require('../../utils/format');
const { showError } = require('../../utils/request');

function confirmModal(options) {
  return new Promise((resolve) => {
    wx.showModal({ ...options, success: (res) => resolve(!!res.confirm), fail: () => resolve(false) });
  });
}

Component({
  behaviors: [pageState],
  data: {
    a: null,
    hospitalName: '',
    deadlinePassed: false,
    cancelling: false,
  },
  methods: {
    onLoad(query = {}) {
      this.appointmentId = query.id || '';
      return this.reload();
    },
    onPullDownRefresh() {
      return this.pullRefresh();
    },
    reload(opts) {
      return this.runLoad(async () => {
        const a = await api.appointments.get(this.appointmentId, { toast: false });
        this.show(a);
        if (!this.data.hospitalName) {
          api.catalog.hospital(a.hospital_id, { toast: false })
            .then((hospital) => this.setData({ hospitalName: hospital.name }))
            .catch(() => {});
        }
        return true;
      }, opts);
    },
    show(a) {
      const view = format.appointmentView(a);
      this.setData({
        a: view,
        deadlinePassed: a.status === 'booked' && format.isPast(a.cancel_deadline),
      });
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
