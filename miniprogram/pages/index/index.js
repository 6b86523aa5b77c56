// 首页: hospitals (GET /hospitals) → pages/hospital
const pageState = require('../../utils/page-state');
const api = require('../../utils/api');
const elderMode = require('../../utils/elder-mode');

Component({
  behaviors: [pageState, elderMode.behavior],
  data: {
    hospitals: [],
  },
  methods: {
    onLoad() {
      return this.reload();
    },
    onPullDownRefresh() {
      return this.pullRefresh();
    },
    reload(opts) {
      return this.runLoad(async () => {
        const { items } = await api.catalog.hospitals({ toast: false });
        this.setData({ hospitals: items || [] });
        return (items || []).length > 0;
      }, opts);
    },
    onOpen(e) {
      const { id } = e.currentTarget.dataset;
      wx.navigateTo({ url: `/pages/hospital/index?id=${encodeURIComponent(id)}` });
    },
  },
});
