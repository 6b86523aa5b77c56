// 我的候补: GET /waitlist (waiting / promoted / cancelled), leave (DELETE /waitlist/{id})
// while waiting; a promoted entry opens its appointment.
const pageState = require('../../utils/page-state');
const api = require('../../utils/api');
const format = require('../../utils/format');
const elderMode = require('../../utils/elder-mode');

const STATUS = { waiting: '候补中', promoted: '候补成功', cancelled: '已取消' };

function view(entry) {
  const range = entry.date_from === entry.date_to
    ? format.dateLabel(entry.date_from)
    : `${format.dateLabel(entry.date_from)} 至 ${format.dateLabel(entry.date_to)}`;
  return {
    ...entry,
    statusText: STATUS[entry.status] || entry.status,
    rangeText: range,
    sessionsText: (entry.sessions || []).map(format.sessionLabel).join('、') || '全天',
  };
}

Component({
  behaviors: [pageState, elderMode.behavior],
  data: {
    items: [],
    busy: '',
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
        const { items } = await api.waitlist.list({ toast: false });
        this.setData({ items: (items || []).map(view) });
        return this.data.items.length > 0;
      }, opts);
    },
    async onLeave(e) {
      const { id } = e.currentTarget.dataset;
      if (this.data.busy) return;
      this.setData({ busy: id });
      try {
        const updated = await api.waitlist.leave(id);
        this.setData({ items: this.data.items.map((x) => (x.id === id ? view(updated) : x)) });
        wx.showToast({ title: '已取消候补', icon: 'none' });
      } catch (err) {
        // toast shown
      } finally {
        this.setData({ busy: '' });
      }
    },
    onOpenAppointment(e) {
      const { aid } = e.currentTarget.dataset;
      if (aid) wx.navigateTo({ url: `/pages/appointment-detail/index?id=${encodeURIComponent(aid)}` });
    },
  },
});
