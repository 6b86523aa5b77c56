// Staff: every doctor of the hospital, published or not (GET /admin/hospitals/{hid}/doctors),
// publish / unpublish (PATCH /admin/hospitals/{hid}/doctors/{did} {published}).
const pageState = require('../../utils/page-state');
const api = require('../../utils/api');
const format = require('../../utils/format');
const { loadStaffPage, confirmModal } = require('../../utils/staff');
const elderMode = require('../../utils/elder-mode');

function view(d) {
  return { ...d, feeText: format.fee(d.fee_cents) };
}

Component({
  behaviors: [pageState, elderMode.behavior],
  data: {
    doctors: [],
    publishedCount: 0,
    busy: '',
  },
  methods: {
    onLoad() {
      return loadStaffPage(this);
    },
    onPullDownRefresh() {
      return this.pullRefresh();
    },
    reload(opts) {
      return this.runLoad(async () => {
        const { items } = await api.staff.doctors({ toast: false });
        this.show((items || []).map(view));
        return this.data.doctors.length > 0;
      }, opts);
    },
    show(doctors) {
      this.setData({ doctors, publishedCount: doctors.filter((d) => d.published).length });
    },
    async onToggle(e) {
      const { id } = e.currentTarget.dataset;
      const d = this.data.doctors.find((x) => x.id === id);
      if (!d || this.data.busy) return;
      const publish = !d.published;
      if (!publish) {
        const ok = await confirmModal({
          title: '下架医生',
          content: `下架后患者将看不到${d.name}，已有预约不受影响。确定下架吗？`,
          confirmText: '下架',
        });
        if (!ok) return;
      }
      this.setData({ busy: id });
      try {
        const updated = await api.staff.publish(id, publish);
        this.show(this.data.doctors.map((x) => (x.id === id ? view({ ...x, ...updated }) : x)));
        wx.showToast({ title: publish ? '已上架' : '已下架', icon: 'success' });
      } catch (err) {
        // toast shown
      } finally {
        this.setData({ busy: '' });
      }
    },
  },
});
