// Staff: clinic sessions of a date (GET /admin/hospitals/{hid}/schedules?date=, doctor names from
// GET /admin/hospitals/{hid}/doctors), 停诊 (POST .../schedules/{sid}/stop {reason}) and
// 加号 / 减号 per slot (POST .../slots/{slot_id}/capacity {delta}).
const pageState = require('../../utils/page-state');
const api = require('../../utils/api');
const format = require('../../utils/format');
const { loadDatedStaffPage, confirmModal } = require('../../utils/staff');
const elderMode = require('../../utils/elder-mode');

const STATUS = {
  open: { text: '预约中', theme: 'primary' },
  full: { text: '已约满', theme: 'warning' },
  stopped: { text: '已停诊', theme: 'danger' },
  not_released: { text: '未放号', theme: 'default' },
  closed: { text: '已截止', theme: 'default' },
};

Component({
  behaviors: [pageState, elderMode.behavior],
  data: {
    days: [],
    date: '',
    dateText: '',
    schedules: [],
  },
  methods: {
    onLoad(query = {}) {
      this.doctors = {};
      return loadDatedStaffPage(this, query);
    },
    onPullDownRefresh() {
      return this.pullRefresh();
    },
    reload(opts) {
      const date = this.data.date;
      return this.runLoad(async () => {
        const [page, doctors] = await Promise.all([
          api.staff.schedules(date, { toast: false }),
          Object.keys(this.doctors).length ? null : api.staff.doctors({ toast: false }),
        ]);
        if (doctors) {
          (doctors.items || []).forEach((d) => {
            this.doctors[d.id] = d;
          });
        }
        if (date !== this.data.date) return this.data.schedules.length > 0;
        this.raw = page.items || [];
        this.render();
        return this.raw.length > 0;
      }, opts);
    },
    render() {
      const schedules = this.raw
        .map((s) => {
          const d = this.doctors[s.doctor_id] || {};
          const st = STATUS[s.status] || { text: s.status, theme: 'default' };
          const slots = s.slots || [];
          return {
            ...s,
            doctorName: d.name || s.doctor_id,
            doctorTitle: d.title || '',
            sessionText: format.sessionLabel(s.session),
            statusText: st.text,
            statusTheme: st.theme,
            capacity: slots.reduce((n, x) => n + x.capacity, 0),
            remaining: slots.reduce((n, x) => n + x.remaining, 0),
          };
        })
        .sort((a, b) => a.doctorName.localeCompare(b.doctorName, 'zh') || format.SESSION_ORDER[a.session] - format.SESSION_ORDER[b.session]);
      this.setData({ schedules });
    },
    onPickDate(e) {
      const { date } = e.detail;
      this.setData({ date, dateText: format.dateLabel(date), schedules: [] });
      this.reload();
    },
    async onStop(e) {
      const { id } = e.currentTarget.dataset;
      const s = this.data.schedules.find((x) => x.id === id);
      if (!s) return;
      const res = await confirmModal({
        title: `停诊：${s.doctorName} ${s.sessionText}`,
        content: '',
        editable: true,
        placeholderText: '请输入停诊原因（将通知已预约的患者）',
        confirmText: '确认停诊',
        confirmColor: '#d54941',
      });
      if (!res) return;
      const reason = (res.content || '').trim() || '医生临时停诊';
      try {
        const result = await api.staff.stop(id, reason);
        this.raw = this.raw.map((x) => (x.id === id ? { ...x, status: 'stopped' } : x));
        this.render();
        wx.showToast({ title: `已停诊，取消${result.cancelled || 0}个预约`, icon: 'none' });
      } catch (err) {
        // toast shown
      }
    },
    async onCapacity(e) {
      const { id, delta } = e.currentTarget.dataset;
      try {
        const slot = await api.staff.capacity(id, Number(delta));
        this.raw = this.raw.map((s) => ({
          ...s,
          slots: (s.slots || []).map((x) => (x.id === slot.id ? { ...x, capacity: slot.capacity, remaining: slot.remaining } : x)),
        }));
        this.render();
        wx.showToast({ title: Number(delta) > 0 ? '已加号' : '已减号', icon: 'success' });
      } catch (err) {
        // toast shown (e.g. INVALID_STATE: below what is booked)
      }
    },
  },
});
