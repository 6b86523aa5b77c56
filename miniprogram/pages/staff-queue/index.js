// Staff: the queue (候诊叫号) of today's sessions — pick a session (GET /admin/hospitals/{hid}/
// schedules?date=today, doctor names from .../doctors), see it (GET .../schedules/{sid}/queue →
// {now_serving, waiting, done}) and call the next patient to a room
// (POST .../schedules/{sid}/queue/call-next {room?}; the room is remembered on this phone).
// `now_serving` is a list (one called patient per room, latest first) or a single entry.
const pageState = require('../../utils/page-state');
const api = require('../../utils/api');
const format = require('../../utils/format');
const { loadStaffPage, doctorsById, actionErrorText } = require('../../utils/staff');
const elderMode = require('../../utils/elder-mode');

const ROOM_KEY = 'guahao.staff.room';

/** A queue entry (a queue row or an appointment with its `queue`) as {id, seq, name, room}. */
function entry(x) {
  if (!x) return null;
  const patient = x.patient || {};
  return {
    id: x.appointment_id || x.id || String(x.seq_no),
    seq: x.seq_no,
    name: patient.name || x.patient_name || x.name || '',
    room: x.room || (x.queue && x.queue.room) || '',
  };
}

const list = (v) => (Array.isArray(v) ? v : (v ? [v] : []));

Component({
  behaviors: [pageState, elderMode.behavior],
  data: {
    sessions: [],
    sid: '',
    room: '',
    queue: null, // {nowServing, waiting: [], done}
    queueState: 'loading',
    queueError: '',
    calling: false,
    called: null,
    callError: '',
  },
  methods: {
    onLoad(query = {}) {
      return loadStaffPage(this, { sid: format.param(query, 'schedule_id'), room: wx.getStorageSync(ROOM_KEY) || '' });
    },
    onPullDownRefresh() {
      return this.pullRefresh();
    },
    reload(opts) {
      return this.runLoad(async () => {
        const [doctors, page] = await Promise.all([
          doctorsById(),
          api.staff.schedules(format.today(), { toast: false }),
        ]);
        const sessions = (page.items || [])
          .filter((s) => s.status !== 'stopped')
          .map((s) => {
            const d = doctors[s.doctor_id] || {};
            return {
              id: s.id, label: `${d.name || s.doctor_id} ${format.sessionLabel(s.session)}`, session: s.session, doctorName: d.name || '',
            };
          })
          .sort((a, b) => a.doctorName.localeCompare(b.doctorName, 'zh') || format.SESSION_ORDER[a.session] - format.SESSION_ORDER[b.session]);
        const sid = sessions.some((s) => s.id === this.data.sid) ? this.data.sid : (sessions[0] && sessions[0].id) || '';
        this.setData({ sessions, sid });
        if (!sid) return false;
        await this.loadQueue();
        return true;
      }, opts);
    },
    async loadQueue() {
      const sid = this.data.sid;
      this.setData({ queueState: this.data.queue ? 'ready' : 'loading', queueError: '' });
      try {
        const q = await api.staff.queue(sid, { toast: false });
        if (sid !== this.data.sid) return;
        this.setData({
          queueState: 'ready',
          queue: {
            nowServing: list(q.now_serving).map(entry),
            waiting: list(q.waiting).map(entry),
            skipped: list(q.skipped).length,
            done: Array.isArray(q.done) ? q.done.length : Number(q.done) || 0,
          },
        });
      } catch (err) {
        if (sid !== this.data.sid) return;
        this.setData({ queueState: 'error', queueError: actionErrorText(err) });
      }
    },
    onPickSession(e) {
      const { id } = e.currentTarget.dataset;
      if (id === this.data.sid) return;
      this.setData({ sid: id, queue: null, called: null, callError: '' });
      this.loadQueue();
    },
    onRoom(e) {
      const room = String(e.detail.value || '').trim();
      this.setData({ room });
      wx.setStorageSync(ROOM_KEY, room);
    },
    onRefreshQueue() {
      return this.loadQueue();
    },
    async onCallNext() {
      const { sid, room } = this.data;
      if (!sid || this.data.calling) return;
      this.setData({ calling: true, callError: '' });
      try {
        const a = await api.staff.callNext(sid, room, { toast: false });
        const called = entry(a);
        this.setData({ called: { ...called, room: called.room || room } });
        wx.showToast({ title: `已叫 ${called.seq} 号`, icon: 'none' });
      } catch (err) {
        this.setData({ called: null, callError: actionErrorText(err) });
      } finally {
        this.setData({ calling: false });
      }
      await this.loadQueue();
    },
  },
});
