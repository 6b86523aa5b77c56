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
        });
        wx.setNavigationBarTitle({ title: hospital.name });
        return departments.length > 0;
      }, opts);
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
