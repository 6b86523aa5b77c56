// Staff: the day's appointments grouped by doctor and session
// (GET /admin/hospitals/{hid}/appointments?date=), check-in (POST .../check-in) and
// no-show (POST .../no-show). Today by default; the strip shows the coming week too.
// 签到 is offered only on the visit day and 爽约 only once the booked slice has ended (the
// backend refuses both otherwise with 409 INVALID_STATE). Also: any date (a date picker
// beyond the strip's week), search by name / masked ID / 序号, 取消 with a reason told to the
// patient, and 改约 to another bookable slice of the same department.
const pageState = require('../../utils/page-state');
const api = require('../../utils/api');
const format = require('../../utils/format');
const checkinCode = require('../../utils/checkin-code');
const { showError } = require('../../utils/request');
const { loadDatedStaffPage, confirmModal } = require('../../utils/staff');
const elderMode = require('../../utils/elder-mode');

const MAX_PAGES = 20;

/** What staff may do with an appointment now. */
function actions(a, now) {
  const booked = a.status === 'booked';
  const visitDay = a.date === format.today(now);
  const ended = format.wallClock(a.date, a.end) <= now;
  return {
    canCheckIn: booked && visitDay,
    canNoShow: booked && ended,
    actionHint: !booked ? '' : (!visitDay && !ended ? '就诊当天可签到' : (!ended ? '时段结束后可登记爽约' : '')),
  };
}

function group(items, now = Date.now()) {
  const groups = {};
  items.forEach((a) => {
    const key = `${a.doctor.id}|${a.session}`;
    if (!groups[key]) {
      groups[key] = {
        key,
        doctorName: a.doctor.name,
        doctorTitle: a.doctor.title || '',
        session: a.session,
        sessionText: format.sessionLabel(a.session),
        items: [],
      };
    }
    groups[key].items.push({ ...format.appointmentView(a), ...actions(a, now) });
  });
  return Object.values(groups)
    .sort((x, y) => x.doctorName.localeCompare(y.doctorName, 'zh') || format.SESSION_ORDER[x.session] - format.SESSION_ORDER[y.session])
    .map((g) => ({ ...g, items: g.items.sort((p, q) => (p.start < q.start ? -1 : p.start > q.start ? 1 : p.seq_no - q.seq_no)) }));
}

Component({
  behaviors: [pageState, elderMode.behavior],
  data: {
    days: [],
    date: '',
    search: '',
    moveFor: '', // appointment being moved
    moveSlots: [],
    dateText: '',
    groups: [],
    summary: '',
    busy: '',
  },
  methods: {
    onLoad(query = {}) {
      return loadDatedStaffPage(this, query);
    },
    onPullDownRefresh() {
      return this.pullRefresh();
    },
    reload(opts) {
      const date = this.data.date;
      return this.runLoad(async () => {
        let items = [];
        let cursor;
        for (let i = 0; i < MAX_PAGES; i += 1) {
          // eslint-disable-next-line no-await-in-loop
          const page = await api.staff.appointments({ date, cursor }, { toast: false });
          items = items.concat(page.items || []);
          cursor = page.next;
          if (!cursor) break;
        }
        if (date !== this.data.date) return this.data.groups.length > 0;
        this.items = items;
        this.render();
        return items.length > 0;
      }, opts);
    },
    render() {
      const all = this.items || [];
      const needle = (this.data.search || '').trim().toUpperCase();
      const items = needle ? all.filter((a) => a.patient.name.toUpperCase().includes(needle)
        || String(a.patient.id_number_masked || '').toUpperCase().includes(needle)
        || String(a.seq_no) === needle.replace(/^第|号$/g, '')) : all;
      const count = (s) => items.filter((a) => a.status === s).length;
      this.setData({
        groups: group(items),
        summary: `${this.data.dateText}：共${items.length - count('cancelled')}人，已签到${count('checked_in')}，待就诊${count('booked')}`,
      });
    },
    onSearch(e) {
      this.setData({ search: (e.detail && e.detail.value) || '' });
      this.render();
    },
    /** Any date, also beyond the strip's week (native date picker). */
    onPickAnyDate(e) {
      this.onPickDate({ detail: { date: e.detail.value } });
    },
    async onCancelAppointment(e) {
      const { id } = e.currentTarget.dataset;
      const a = (this.items || []).find((x) => x.id === id);
      if (!a || this.data.busy) return;
      const res = await confirmModal({
        title: '取消预约', editable: true, placeholderText: '取消原因（将通知患者）', confirmText: '取消预约', confirmColor: '#d54941',
      });
      if (!res) return;
      const reason = (res.content || '').trim();
      if (!reason) {
        wx.showToast({ title: '请填写取消原因', icon: 'none' });
        return;
      }
      this.setData({ busy: id });
      try {
        this.replace(await api.staff.cancel(id, reason));
        wx.showToast({ title: '已取消并通知患者', icon: 'none' });
      } catch (err) {
        if (err.code === 'INVALID_STATE') this.reload({ quiet: true });
      } finally {
        this.setData({ busy: '' });
      }
    },
    /** 改约: bookable slices of the same doctor over the next weeks (public schedules). */
    async onStartMove(e) {
      const { id } = e.currentTarget.dataset;
      const a = (this.items || []).find((x) => x.id === id);
      if (!a) return;
      try {
        const now = Date.now();
        const from = format.today(now);
        const { items } = await api.catalog.schedulesBetween(a.doctor.id, from, format.addDays(from, 14), { toast: false });
        const slots = [];
        (items || []).filter((s) => s.status === 'open').forEach((s) => (s.slots || []).forEach((slot) => {
          if (slot.id !== a.slot_id && format.slotBookable(slot, s.date, now)) {
            slots.push({ id: slot.id, text: `${format.dateLabel(s.date)} ${format.sessionLabel(s.session)} ${slot.start}-${slot.end}` });
          }
        }));
        this.setData({ moveFor: id, moveSlots: slots });
      } catch (err) {
        showError(err);
      }
    },
    onCancelMove() {
      this.setData({ moveFor: '', moveSlots: [] });
    },
    async onPickMove(e) {
      const { id } = e.currentTarget.dataset;
      const aid = this.data.moveFor;
      if (!aid || this.data.busy) return;
      this.setData({ busy: aid });
      try {
        const moved = await api.staff.move(aid, id, { toast: false });
        this.setData({ moveFor: '', moveSlots: [] });
        wx.showToast({ title: `已改约到 ${format.dateLabel(moved.date)} ${moved.start}`, icon: 'none' });
        await this.reload({ quiet: true });
      } catch (err) {
        showError(err);
      } finally {
        this.setData({ busy: '' });
      }
    },
    onPickDate(e) {
      const { date } = e.detail;
      this.setData({ date, dateText: format.dateLabel(date), groups: [] });
      this.reload();
    },
    replace(updated) {
      this.items = (this.items || []).map((a) => (a.id === updated.id ? updated : a));
      this.render();
    },
    async onCheckIn(e) {
      const { id } = e.currentTarget.dataset;
      if (this.data.busy) return;
      this.setData({ busy: id });
      try {
        this.replace(await api.staff.checkIn(id));
        wx.showToast({ title: '已签到', icon: 'success' });
      } catch (err) {
        if (err.code === 'INVALID_STATE') this.reload({ quiet: true });
      } finally {
        this.setData({ busy: '' });
      }
    },
    async onNoShow(e) {
      const { id } = e.currentTarget.dataset;
      const a = (this.items || []).find((x) => x.id === id);
      if (!a || this.data.busy) return;
      const ok = await confirmModal({
        title: '登记爽约',
        content: `确认 ${a.patient.name}（第${a.seq_no}号）未到诊？爽约会计入该就诊人的爽约次数。`,
        confirmText: '登记爽约',
        confirmColor: '#d54941',
      });
      if (!ok) return;
      this.setData({ busy: id });
      try {
        this.replace(await api.staff.noShow(id));
        wx.showToast({ title: '已登记爽约', icon: 'none' });
      } catch (err) {
        if (err.code === 'INVALID_STATE') this.reload({ quiet: true });
      } finally {
        this.setData({ busy: '' });
      }
    },
    /** 扫码签到: the patient's check-in QR code (appointment detail) → POST .../check-in. */
    onScan() {
      if (this.data.busy) return;
      wx.scanCode({
        onlyFromCamera: true,
        scanType: ['qrCode'],
        success: (res) => this.checkInScanned(res && res.result),
        fail: () => {},
      });
    },
    async checkInScanned(text) {
      const aid = checkinCode.parse(text);
      if (!aid) {
        wx.showToast({ title: '不是本系统的签到码', icon: 'none' });
        return;
      }
      this.setData({ busy: aid });
      try {
        const updated = await api.staff.checkIn(aid, { toast: false });
        wx.showToast({ title: `第${updated.seq_no}号 ${updated.patient.name} 已签到`, icon: 'none' });
        if (updated.date === this.data.date) this.reload({ quiet: true });
      } catch (err) {
        showError(err); // e.g. 只能在就诊当天签到 (409), or another hospital's code (404)
      } finally {
        this.setData({ busy: '' });
      }
    },
    onSessions() {
      wx.navigateTo({ url: '/pages/staff-sessions/index' });
    },
    onDoctors() {
      wx.navigateTo({ url: '/pages/staff-doctors/index' });
    },
  },
});
