// Hospital: details, booking rules and departments in two levels
// (GET /hospitals/{id} + GET /hospitals/{id}/departments) → pages/doctors
const pageState = require('../../utils/page-state');
const api = require('../../utils/api');
const format = require('../../utils/format');
const elderMode = require('../../utils/elder-mode');

/** Second-level entries of a top department; a department without children is its own entry. */
function childrenOf(top) {
  if (!top) return [];
  return top.children && top.children.length ? top.children : [top];
}

Component({
  behaviors: [pageState, elderMode.behavior],
  data: {
    hospital: null,
    rulesText: '',
    departments: [],
    active: 0,
    children: [],
  },
  methods: {
    onLoad(query) {
      this.hospitalId = (query && query.id) || '';
      return this.reload();
    },
    onPullDownRefresh() {
      return this.pullRefresh();
    },
    reload(opts) {
      return this.runLoad(async () => {
        const [hospital, tree] = await Promise.all([
          api.catalog.hospital(this.hospitalId, { toast: false }),
          api.catalog.departments(this.hospitalId, { toast: false }),
        ]);
        const departments = tree.items || [];
        const active = Math.min(this.data.active, Math.max(departments.length - 1, 0));
        this.setData({
          hospital,
          rulesText: format.rulesSummary(hospital.rules),
          departments,
          active,
          children: childrenOf(departments[active]),
          days: format.dateStrip(format.today(), (Number.isInteger((hospital.rules || {}).window_days) ? hospital.rules.window_days : 7) + 1),
        });
        wx.setNavigationBarTitle({ title: hospital.name });
        return departments.length > 0;
      }, opts);
    },
    onSearchInput(e) {
      this.query = (e.detail && e.detail.value) || '';
    },
    onSearch() {
      const q = (this.query || '').trim();
      if (!q) return;
      wx.navigateTo({ url: `/pages/doctors/index?hospital_id=${encodeURIComponent(this.hospitalId)}&q=${encodeURIComponent(q)}` });
    },
    /** 按日期挂号: every doctor of this hospital with numbers on the chosen date. */
    onPickDay(e) {
      const { date } = e.currentTarget.dataset;
      wx.navigateTo({ url: `/pages/doctors/index?hospital_id=${encodeURIComponent(this.hospitalId)}&date=${date}` });
    },
    onShareAppMessage() {
      const name = (this.data.hospital && this.data.hospital.name) || '预约挂号';
      return { title: `${name} · 在线预约挂号`, path: `/pages/hospital/index?id=${encodeURIComponent(this.hospitalId)}` };
    },
    onPickTop(e) {
      const active = Number(e.currentTarget.dataset.index);
      this.setData({ active, children: childrenOf(this.data.departments[active]) });
    },
    onOpen(e) {
      const { id, name } = e.currentTarget.dataset;
      wx.navigateTo({
        url: `/pages/doctors/index?hospital_id=${encodeURIComponent(this.hospitalId)}`
          + `&department_id=${encodeURIComponent(id)}&name=${encodeURIComponent(name)}`,
      });
    },
  },
});
