// Doctors of a department: title, specialty, fee, next available date
// (GET /doctors?hospital_id=&department_id=) → pages/doctor
const pageState = require('../../utils/page-state');
const api = require('../../utils/api');
const format = require('../../utils/format');
const elderMode = require('../../utils/elder-mode');

Component({
  behaviors: [pageState, elderMode.behavior],
  data: {
    departmentName: '',
    doctors: [],
  },
  methods: {
    onLoad(query = {}) {
      this.hospitalId = query.hospital_id || '';
      this.departmentId = query.department_id || '';
      const departmentName = format.param(query, 'name');
      this.setData({ departmentName });
      if (departmentName) wx.setNavigationBarTitle({ title: departmentName });
      return this.reload();
    },
    onPullDownRefresh() {
      return this.pullRefresh();
    },
    reload(opts) {
      return this.runLoad(async () => {
        const { items } = await api.catalog.doctors(
          { hospital_id: this.hospitalId, department_id: this.departmentId },
          { toast: false },
        );
        const doctors = (items || []).map((d) => ({
          ...d,
          feeText: format.fee(d.fee_cents),
          nextText: d.next_available_date
            ? `最近可约 ${format.dateLabel(d.next_available_date)}`
            : '近期暂无可约号源',
        }));
        this.setData({ doctors });
        return doctors.length > 0;
      }, opts);
    },
    onOpen(e) {
      const { id } = e.currentTarget.dataset;
      wx.navigateTo({
        url: `/pages/doctor/index?id=${encodeURIComponent(id)}&hospital_id=${encodeURIComponent(this.hospitalId)}`,
      });
    },
  },
});
