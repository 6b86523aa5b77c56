// Staff: a doctor's week at a glance — the sessions of the next 7 days with booked / capacity
// and their state (GET /admin/hospitals/{hid}/schedules?doctor_id=, the booking window;
// doctors from GET /admin/hospitals/{hid}/doctors). Entry to 请假 (pages/staff-leave).
const pageState = require('../../utils/page-state');
const api = require('../../utils/api');
const format = require('../../utils/format');
const { loadStaffPage, doctorsById } = require('../../utils/staff');
const elderMode = require('../../utils/elder-mode');

const DAYS = 7;
const STATUS = {
  open: '预约中', full: '已约满', stopped: '已停诊', not_released: '未放号', closed: '已截止',
};

/** One session: booked / capacity over its slices, and its state. */
function sessionView(s) {
  const slots = s.slots || [];
  const capacity = slots.reduce((n, x) => n + (Number(x.capacity) || 0), 0);
  const remaining = slots.reduce((n, x) => n + Math.max(0, Number(x.remaining) || 0), 0);
  return {
    id: s.id,
    session: s.session,
    sessionText: format.sessionLabel(s.session),
    time: slots.length ? `${slots[0].start}-${slots[slots.length - 1].end}` : '',
    status: s.status,
    statusText: STATUS[s.status] || s.status || '',
    stopped: s.status === 'stopped',
    booked: capacity - remaining,
    capacity,
  };
}

/** The 7 days from `start`, each with its sessions in am / pm / evening order. */
function week(items, start) {
  const days = [];
  for (let i = 0; i < DAYS; i += 1) {
    const date = format.addDays(start, i);
    const sessions = items.filter((s) => s.date === date)
      .sort((a, b) => format.SESSION_ORDER[a.session] - format.SESSION_ORDER[b.session])
      .map(sessionView);
    days.push({
      date,
      label: `${format.monthDay(date)} ${format.relativeDay(date)}`,
      sessions,
      booked: sessions.reduce((n, x) => n + x.booked, 0),
      capacity: sessions.reduce((n, x) => n + (x.stopped ? 0 : x.capacity), 0),
    });
  }
  return days;
}

Component({
  behaviors: [pageState, elderMode.behavior],
  data: {
    doctors: [],
    doctorId: '',
    doctorName: '',
    days: [],
    totals: { booked: 0, capacity: 0, sessions: 0 },
    emptyText: '',
  },
  methods: {
    onLoad(query = {}) {
      return loadStaffPage(this, { doctorId: format.param(query, 'doctor_id') });
    },
    onShow() {
      // back from 请假: the stopped sessions show at once
      if (this.loadedOnce) this.reload({ quiet: true });
    },
    onPullDownRefresh() {
      return this.pullRefresh();
    },
    reload(opts) {
      return this.runLoad(async () => {
        if (!this.data.doctors.length) {
          const byId = await doctorsById();
          const doctors = Object.values(byId).map((d) => ({ id: d.id, name: d.name, title: d.title || '' }));
          this.setData({ doctors });
        }
        const { doctors } = this.data;
        if (!doctors.length) {
          this.setData({ emptyText: '本院还没有医生' });
          return false;
        }
        const doctor = doctors.find((d) => d.id === this.data.doctorId) || doctors[0];
        this.setData({ doctorId: doctor.id, doctorName: `${doctor.name} ${doctor.title}`.trim() });
        const { items } = await api.staff.doctorSchedules(doctor.id, { toast: false });
        if (doctor.id !== this.data.doctorId) return true; // another doctor picked meanwhile
        const days = week(items || [], format.today());
        const sessions = days.reduce((n, d) => n + d.sessions.length, 0);
        this.setData({
          days,
          totals: {
            booked: days.reduce((n, d) => n + d.booked, 0),
            capacity: days.reduce((n, d) => n + d.capacity, 0),
            sessions,
          },
        });
        this.loadedOnce = true;
        return true;
      }, opts);
    },
    onPickDoctor(e) {
      const { id } = e.currentTarget.dataset;
      if (id === this.data.doctorId) return;
      this.setData({ doctorId: id, days: [] });
      this.reload();
    },
    onLeave() {
      wx.navigateTo({ url: `/pages/staff-leave/index?doctor_id=${encodeURIComponent(this.data.doctorId)}` });
    },
  },
});
