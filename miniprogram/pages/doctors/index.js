// Doctors of a department: title, specialty, fee, next available date
// (GET /doctors?hospital_id=&department_id=) → pages/doctor. Also the doctor search
// (`q`: name or specialty, GET /doctors?q=) and 按日期挂号 (`date`: only the doctors with
// numbers that can still be booked that day, from GET /doctors/{id}/schedules?from=&to=).
const pageState = require('../../utils/page-state');
const api = require('../../utils/api');
const format = require('../../utils/format');
const elderMode = require('../../utils/elder-mode');

Component({
  behaviors: [pageState, elderMode.behavior],
  data: {
    departmentName: '',
    doctors: [],
    emptyText: '该科室暂无出诊医生',
  },
  methods: {
    onLoad(query = {}) {
      this.hospitalId = query.hospital_id || '';
      this.departmentId = query.department_id || '';
      this.q = format.param(query, 'q').trim();
      this.date = /^\d{4}-\d{2}-\d{2}$/.test(query.date || '') ? query.date : '';
      let departmentName = format.param(query, 'name');
      if (this.q) departmentName = `搜索“${this.q}”`;
      if (this.date) departmentName = `${format.dateLabel(this.date)} 有号医生`;
      let emptyText = '该科室暂无出诊医生';
      if (this.q) emptyText = '没有找到相关医生';
      if (this.date) emptyText = '当天暂无可预约的医生';
      this.setData({ departmentName, emptyText });
      if (departmentName) wx.setNavigationBarTitle({ title: departmentName });
      return this.reload();
    },
    onPullDownRefresh() {
      return this.pullRefresh();
    },
    reload(opts) {
      return this.runLoad(async () => {
        const { items } = await api.catalog.doctors(
          { hospital_id: this.hospitalId, department_id: this.departmentId, q: this.q },
          { toast: false },
        );
        let found = items || [];
        if (this.date) {
          const now = Date.now();
          const left = await Promise.all(found.map((d) => api.catalog.schedules(d.id, this.date, this.date, { toast: false })
            .then(({ items: sessions }) => (sessions || []).reduce((n, s) => n + (format.scheduleState(s, now).bookable ? format.remainingOf(s, now) : 0), 0))));
          found = found.map((d, i) => ({ ...d, leftOnDate: left[i] })).filter((d) => d.leftOnDate > 0);
        }
        const doctors = found.map((d) => ({
          ...d,
          feeText: format.fee(d.fee_cents),
          nextText: (this.date && `${format.dateLabel(this.date)} 余${d.leftOnDate}`)
            || (d.next_available_date ? `最近可约 ${format.dateLabel(d.next_available_date)}` : '近期暂无可约号源'),
        }));
        this.setData({ doctors });
        return doctors.length > 0;
      }, opts);
    },
    onOpen(e) {
      const { id } = e.currentTarget.dataset;
      wx.navigateTo({
        url: `/pages/doctor/index?id=${encodeURIComponent(id)}&hospital_id=${encodeURIComponent(this.hospitalId)}`
          + (this.date ? `&date=${this.date}` : ''),
      });
    },
  },
});
