// Booking result: seq_no, time and place (GET /appointments/{id}, GET /hospitals/{hid})
const pageState = require('../../utils/page-state');
const api = require('../../utils/api');
const format = require('../../utils/format');
const config = require('../../config');
const elderMode = require('../../utils/elder-mode');

Component({
  behaviors: [pageState, elderMode.behavior],
  data: {
    a: null,
    hospitalName: '',
    address: '',
  },
  methods: {
    onLoad(query = {}) {
      this.appointmentId = query.id || '';
      return this.reload();
    },
    onUnload() {
      clearTimeout(this.pollTimer);
    },
    // a release lottery (放号抽签) answers `pending`: show when it is drawn and poll for it
    pollLottery(a) {
      clearTimeout(this.pollTimer);
      if (a.status !== 'pending') return;
      this.pollTimer = setTimeout(async () => {
        try {
          const next = await api.appointments.get(this.appointmentId, { toast: false });
          this.setData({ a: format.appointmentView(next) });
          this.pollLottery(next);
        } catch (err) {
          this.pollLottery(a);
        }
      }, config.lotteryPollMs);
    },
    reload(opts) {
      return this.runLoad(async () => {
        const a = await api.appointments.get(this.appointmentId, { toast: false });
        this.setData({ a: format.appointmentView(a) });
        this.pollLottery(a);
        try {
          const hospital = await api.catalog.hospital(a.hospital_id, { toast: false });
          this.setData({ hospitalName: hospital.name, address: hospital.address || '' });
        } catch (err) {
          // the place still shows the department
        }
        return true;
      }, opts);
    },
    onMine() {
      wx.switchTab({ url: '/pages/appointments/index' });
    },
    onHome() {
      wx.switchTab({ url: '/pages/index/index' });
    },
  },
});
