// Appointment detail with cancellation: the deadline is shown, POST /appointments/{id}/cancel;
// CANCEL_DEADLINE_PASSED is shown on the page, not only as a toast. The hospital (name,
// address, phone → wx.makePhoneCall, map → wx.openLocation), the check-in QR code that the
// staff page scans, and 改约 to another bookable slice of the same doctor
// (POST /appointments/{id}/move).
const pageState = require('../../utils/page-state');
const api = require('../../utils/api');
const format = require('../../utils/format');
const checkinCode = require('../../utils/checkin-code');
const { showError } = require('../../utils/request');
const elderMode = require('../../utils/elder-mode');

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
        })
        .catch(() => {});
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
