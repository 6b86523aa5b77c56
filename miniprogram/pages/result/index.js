// Booking result: seq_no, time and place (GET /appointments/{id}, GET /hospitals/{hid})
const pageState = require('../../utils/page-state');
const api = require('../../utils/api');
const format = require('../../utils/format');

Component({
  behaviors: [pageState],
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
    reload(opts) {
      return this.runLoad(async () => {
        const a = await api.appointments.get(this.appointmentId, { toast: false });
        this.setData({ a: format.appointmentView(a) });
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
