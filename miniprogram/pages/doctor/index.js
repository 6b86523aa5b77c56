// Doctor: intro, a date strip over the hospital's booking window, sessions 上午/下午/夜间
// per date (余N / 约满 / 停诊 / 未放号 + release time / 已截止) and the slot choice
// (GET /doctors/{id}, GET /hospitals/{hid}, GET /doctors/{id}/schedules?from=&to=) → pages/confirm
const pageState = require('../../utils/page-state');
const api = require('../../utils/api');
const format = require('../../utils/format');
const elderMode = require('../../utils/elder-mode');

const DEFAULT_WINDOW_DAYS = 7;
const SUBSCRIBE_VALUES = ['accept', 'reject', 'ban', 'filter'];

function sessionView(schedule, now) {
  const state = format.scheduleState(schedule, now);
  return {
    id: schedule.id,
    session: schedule.session,
    label: format.sessionLabel(schedule.session),
    text: state.text,
    sub: state.sub,
    tone: state.tone,
    bookable: state.bookable,
    // 候补: a full session (not stopped, closed or unreleased) can be waited for
    waitable: state.tone === 'full',
    fee_cents: schedule.fee_cents,
    slots: (schedule.slots || []).map((slot) => ({
      ...slot,
      bookable: format.slotBookable(slot, schedule.date, now),
      text: format.slotText(slot, schedule.date, now),
    })),
  };
}

Component({
  behaviors: [pageState, elderMode.behavior],
  data: {
    doctor: null,
    feeText: '',
    rulesText: '',
    days: [],
    date: '',
    dateText: '',
    sessions: [],
    openId: '',
  },
  methods: {
    onLoad(query = {}) {
      this.doctorId = query.id || '';
      this.hospitalId = query.hospital_id || '';
      // a shared link or 按日期挂号 opens this date (when it is within the booking window)
      if (/^\d{4}-\d{2}-\d{2}$/.test(query.date || '')) this.setData({ date: query.date });
      return this.reload();
    },
    onPullDownRefresh() {
      return this.pullRefresh();
    },
    reload(opts) {
      return this.runLoad(async () => {
        const now = Date.now();
        const [doctor, known] = await Promise.all([
          api.catalog.doctor(this.doctorId, { toast: false }),
          this.hospitalId ? api.catalog.hospital(this.hospitalId, { toast: false }) : null,
        ]);
        this.hospitalId = this.hospitalId || doctor.hospital_id;
        const hospital = known || await api.catalog.hospital(this.hospitalId, { toast: false });
        const rules = hospital.rules || {};
        const windowDays = Number.isInteger(rules.window_days) ? rules.window_days : DEFAULT_WINDOW_DAYS;
        const from = format.today(now);
        const to = format.addDays(from, windowDays);
        const { items } = await api.catalog.schedulesBetween(this.doctorId, from, to, { toast: false });
        this.hospital = hospital;
        this.byDate = {};
        (items || []).forEach((s) => {
          (this.byDate[s.date] = this.byDate[s.date] || []).push(s);
        });
        Object.keys(this.byDate).forEach((d) => {
          this.byDate[d].sort((a, b) => format.SESSION_ORDER[a.session] - format.SESSION_ORDER[b.session]);
        });
        const marks = {};
        let firstBookable = '';
        Object.keys(this.byDate).sort().forEach((d) => {
          const states = this.byDate[d].map((s) => format.scheduleState(s, now));
          if (states.some((st) => st.bookable)) {
            marks[d] = '有号';
            firstBookable = firstBookable || d;
          } else if (states.some((st) => st.tone === 'pending')) {
            marks[d] = '待放号';
          } else {
            marks[d] = '无号';
          }
        });
        const keep = this.data.date && this.data.date >= from && this.data.date <= to ? this.data.date : '';
        this.setData({
          doctor,
          feeText: format.fee(doctor.fee_cents),
          rulesText: format.rulesSummary(rules),
          days: format.dateStrip(from, windowDays + 1, marks, now),
        });
        wx.setNavigationBarTitle({ title: `${doctor.name} ${doctor.title || ''}`.trim() });
        this.loadWaitlistTemplate();
        this.showDate(keep || firstBookable || from, now);
        return true;
      }, opts);
    },
    showDate(date, now = Date.now()) {
      const sessions = (this.byDate[date] || []).map((s) => sessionView(s, now));
      const open = sessions.find((s) => s.bookable);
      this.setData({
        date,
        dateText: format.dateLabel(date),
        sessions,
        openId: open ? open.id : '',
      });
    },
    loadWaitlistTemplate() {
      if (this.waitlistTemplate !== undefined) return;
      this.waitlistTemplate = '';
      api.subscriptions.publicTemplates({ toast: false })
        .then(({ items }) => {
          const t = (items || []).find((x) => x.kind === 'waitlist_promoted');
          this.waitlistTemplate = t ? t.template_id : '';
        })
        .catch(() => {});
    },
    /** 候补 tap: wx.requestSubscribeMessage (waitlist_promoted) first, then join. */
    onJoinWaitlist(e) {
      const { id } = e.currentTarget.dataset;
      const session = this.data.sessions.find((s) => s.id === id);
      if (!session || !session.waitable || this.joining) return undefined;
      const tmpl = this.waitlistTemplate;
      const subscribed = tmpl
        ? new Promise((resolve) => {
          wx.requestSubscribeMessage({ tmplIds: [tmpl], success: resolve, fail: () => resolve(null) });
        })
        : Promise.resolve(null);
      this.joining = true;
      return this.joinWaitlist(session, subscribed, tmpl).finally(() => {
        this.joining = false;
      });
    },
    async joinWaitlist(session, subscribed, tmpl) {
      const choice = await subscribed;
      if (choice && SUBSCRIBE_VALUES.includes(choice[tmpl])) {
        await api.subscriptions.record({ [tmpl]: choice[tmpl] }, { toast: false }).catch(() => {});
      }
      try {
        const { items } = await api.patients.list();
        const patient = (items || []).find((p) => p.is_default) || (items || [])[0];
        if (!patient) {
          wx.showToast({ title: '请先添加就诊人', icon: 'none' });
          wx.navigateTo({ url: '/pages/patients/index' });
          return;
        }
        await api.waitlist.join({
          doctor_id: this.data.doctor.id,
          date_from: this.data.date,
          date_to: this.data.date,
          sessions: [session.session],
          patient_id: patient.id,
        });
        wx.showToast({ title: `已为${patient.name}加入候补`, icon: 'none' });
      } catch (err) {
        // toast shown by the request layer (e.g. LIMIT_REACHED, PATIENT_BANNED)
      }
    },
    onShareAppMessage() {
      const { doctor, date } = this.data;
      const name = doctor ? `${doctor.name} ${doctor.title || ''}`.trim() : '医生';
      const path = `/pages/doctor/index?id=${encodeURIComponent(this.doctorId)}`
        + `&hospital_id=${encodeURIComponent(this.hospitalId)}${date ? `&date=${date}` : ''}`;
      return { title: `${name} · ${date ? format.dateLabel(date) : ''} 预约挂号`, path };
    },
    onMyWaitlist() {
      wx.navigateTo({ url: '/pages/waitlist/index' });
    },
    onPickDate(e) {
      this.showDate(e.detail.date);
    },
    onToggleSession(e) {
      const { id } = e.currentTarget.dataset;
      const session = this.data.sessions.find((s) => s.id === id);
      if (!session) return;
      if (!session.bookable) {
        const why = session.sub ? `${session.text}，${session.sub}` : session.text;
        wx.showToast({ title: `该时段${why}`, icon: 'none' });
        return;
      }
      this.setData({ openId: this.data.openId === id ? '' : id });
    },
    onPickSlot(e) {
      const { schedule, slotId } = e.currentTarget.dataset;
      const session = this.data.sessions.find((s) => s.id === schedule);
      const slot = session && session.slots.find((s) => s.id === slotId);
      if (!slot) return;
      if (!slot.bookable) {
        const why = slot.text === '约满' ? '已约满' : `${slot.text}预约`.replace('已开始预约', '已开始');
        wx.showToast({ title: `该时段${why}，请选择其他时段`, icon: 'none' });
        return;
      }
      // only ids: the confirm page reads doctor, time and fee from the server
      const params = {
        slot_id: slot.id,
        doctor_id: this.data.doctor.id,
        hospital_id: this.hospitalId,
        date: this.data.date,
      };
      const qs = Object.keys(params).map((k) => `${k}=${encodeURIComponent(params[k])}`).join('&');
      wx.navigateTo({ url: `/pages/confirm/index?${qs}` });
    },
  },
});
