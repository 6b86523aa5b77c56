/**
 * Display helpers. Dates and times are hospital-local (Asia/Shanghai, UTC+8) whatever the
 * phone's time zone: "today" is computed in UTC+8 and ISO instants are shown in UTC+8.
 */
const SHANGHAI_OFFSET_MS = 8 * 3600 * 1000;
const WEEKDAYS = ['周日', '周一', '周二', '周三', '周四', '周五', '周六'];

const SESSION_LABELS = { am: '上午', pm: '下午', evening: '夜间' };
const SESSION_ORDER = { am: 0, pm: 1, evening: 2 };

const APPOINTMENT_STATUS = {
  pending: { label: '抽签中', theme: 'warning' },
  pending_payment: { label: '待支付', theme: 'warning' },
  booked: { label: '待就诊', theme: 'primary' },
  checked_in: { label: '已签到', theme: 'success' },
  completed: { label: '已完成', theme: 'default' },
  cancelled: { label: '已取消', theme: 'default' },
  no_show: { label: '爽约', theme: 'danger' },
};

const CANCELLED_BY = { patient: '本人取消', hospital: '医院取消', system: '系统取消' };

// payment.status of an appointment (api.md "Registration fee")
const PAYMENT_STATUS = {
  unpaid: '待支付', paid: '已支付', refunding: '退款中', refunded: '已退款', closed: '已关闭',
};

// machine reasons the server may give for a cancellation, in words
const REASONS = { unpaid: '超时未支付，号源已释放' };

const RELATIONS = [
  { value: 'self', label: '本人' },
  { value: 'parent', label: '父母' },
  { value: 'child', label: '子女' },
  { value: 'spouse', label: '配偶' },
  { value: 'other', label: '其他' },
];

function pad(n) {
  return n < 10 ? `0${n}` : String(n);
}

/** A Date whose UTC fields are the Shanghai wall clock of `ms`. */
function shanghai(ms) {
  return new Date(ms + SHANGHAI_OFFSET_MS);
}

function dateKey(d) {
  return `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())}`;
}

/** Today in Shanghai, "YYYY-MM-DD". */
function today(now = Date.now()) {
  return dateKey(shanghai(now));
}

function parseDate(dateStr) {
  const [y, m, d] = String(dateStr).split('-').map(Number);
  return new Date(Date.UTC(y, m - 1, d));
}

/** "2026-12-01" + 3 → "2026-12-04". */
function addDays(dateStr, days) {
  const d = parseDate(dateStr);
  d.setUTCDate(d.getUTCDate() + days);
  return dateKey(d);
}

function weekday(dateStr) {
  return WEEKDAYS[parseDate(dateStr).getUTCDay()];
}

/** "2026-12-02" → "12月02日". */
function monthDay(dateStr) {
  const d = parseDate(dateStr);
  return `${pad(d.getUTCMonth() + 1)}月${pad(d.getUTCDate())}日`;
}

/** "2026-12-02" → "12月02日 周三". */
function dateLabel(dateStr) {
  if (!dateStr) return '';
  return `${monthDay(dateStr)} ${weekday(dateStr)}`;
}

/** "2026-12-02" → "今天" / "明天" / "周三". */
function relativeDay(dateStr, now = Date.now()) {
  const t = today(now);
  if (dateStr === t) return '今天';
  if (dateStr === addDays(t, 1)) return '明天';
  return weekday(dateStr);
}

/** ISO instant → "12月02日 06:00" in Shanghai time (with the year when not this year). */
function instant(iso, now = Date.now()) {
  if (!iso) return '';
  const ms = Date.parse(iso);
  if (Number.isNaN(ms)) return String(iso);
  const d = shanghai(ms);
  const year = d.getUTCFullYear() !== shanghai(now).getUTCFullYear() ? `${d.getUTCFullYear()}年` : '';
  return `${year}${pad(d.getUTCMonth() + 1)}月${pad(d.getUTCDate())}日 ${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}`;
}

function isPast(iso, now = Date.now()) {
  const ms = Date.parse(iso);
  return !Number.isNaN(ms) && ms <= now;
}

/** 1250 → "¥12.50". */
function fee(cents) {
  const n = Number(cents);
  if (!Number.isFinite(n)) return '';
  const sign = n < 0 ? '-' : '';
  const abs = Math.abs(Math.round(n));
  return `${sign}¥${Math.floor(abs / 100)}.${pad(abs % 100)}`;
}

function sessionLabel(session) {
  return SESSION_LABELS[session] || session || '';
}

function appointmentStatus(status) {
  return (APPOINTMENT_STATUS[status] || { label: status || '', theme: 'default' }).label;
}

function appointmentTheme(status) {
  return (APPOINTMENT_STATUS[status] || { theme: 'default' }).theme;
}

function relationLabel(value) {
  const r = RELATIONS.find((x) => x.value === value);
  return r ? r.label : value || '';
}

function genderLabel(g) {
  if (g === 'male') return '男';
  if (g === 'female') return '女';
  return '';
}

/** Epoch ms of a Shanghai wall-clock date + "HH:MM". */
function wallClock(dateStr, hhmm) {
  const [hh, mm] = String(hhmm || '00:00').split(':').map(Number);
  return parseDate(dateStr).getTime() + ((hh * 60 + mm) * 60 * 1000) - SHANGHAI_OFFSET_MS;
}

/**
 * Whether a slice can still be booked: its own status is open (the API's per-slot status;
 * a slice of an open session may be closed) and it has not started yet.
 */
function slotBookable(slot, date, now = Date.now()) {
  if (slot.status && slot.status !== 'open') return false;
  if (date && slot.start && wallClock(date, slot.start) <= now) return false;
  return Number(slot.remaining) > 0;
}

/** What a slice shows: 余N, 约满, 已开始 (started today) or 已截止 (closed by the hospital). */
function slotText(slot, date, now = Date.now()) {
  if (slot.status === 'stopped') return '停诊';
  if (slot.status === 'closed' || slot.status === 'not_released') return '已截止';
  if (date && slot.start && wallClock(date, slot.start) <= now) return '已开始';
  return Number(slot.remaining) > 0 ? `余${slot.remaining}` : '约满';
}

/** Numbers left that can still be booked (the 余N of a session). */
function remainingOf(schedule, now = Date.now()) {
  return (schedule.slots || [])
    .filter((s) => slotBookable(s, schedule.date, now))
    .reduce((sum, s) => sum + Math.max(0, Number(s.remaining) || 0), 0);
}

/**
 * What a patient sees for a clinic session: 余N / 约满 / 停诊 / 未放号 / 已截止.
 * @returns {{text: string, sub: string, bookable: boolean, tone: string}}
 */
function scheduleState(schedule, now = Date.now()) {
  switch (schedule.status) {
    case 'open': {
      const left = remainingOf(schedule, now);
      if (left > 0) return { text: `余${left}`, sub: '', bookable: true, tone: 'open' };
      // nothing left to book: full if a slice is still ahead (候补 makes sense), else over
      const ahead = (schedule.slots || []).some((s) => (!s.status || s.status === 'open' || s.status === 'full')
        && !(schedule.date && s.start && wallClock(schedule.date, s.start) <= now));
      if (!ahead && (schedule.slots || []).length) return { text: '已截止', sub: '', bookable: false, tone: 'closed' };
      return { text: '约满', sub: '', bookable: false, tone: 'full' };
    }
    case 'full':
      return { text: '约满', sub: '', bookable: false, tone: 'full' };
    case 'stopped':
      return { text: '停诊', sub: '', bookable: false, tone: 'stopped' };
    case 'not_released':
      return { text: '未放号', sub: schedule.release_at ? `${instant(schedule.release_at, now)} 放号` : '', bookable: false, tone: 'pending' };
    case 'closed':
      return { text: '已截止', sub: '', bookable: false, tone: 'closed' };
    default:
      return { text: schedule.status || '', sub: '', bookable: false, tone: 'closed' };
  }
}

/** Days for components/date-strip: `count` dates from `start`, with optional marks per date. */
function dateStrip(start, count, marks = {}, now = Date.now()) {
  const days = [];
  for (let i = 0; i < count; i += 1) {
    const date = addDays(start, i);
    days.push({ date, week: relativeDay(date, now), day: date.slice(5), mark: marks[date] || '' });
  }
  return days;
}

/** A query parameter as text: WeChat may hand it over still URL-encoded. */
function param(query, key) {
  const raw = query && query[key];
  if (raw === undefined || raw === null) return '';
  try {
    return decodeURIComponent(String(raw));
  } catch (err) {
    return String(raw);
  }
}

/** Milliseconds left until an ISO instant (0 once past or unreadable). */
function msLeft(iso, now = Date.now()) {
  const ms = Date.parse(iso);
  return Number.isNaN(ms) ? 0 : Math.max(0, ms - now);
}

/** Time left to `iso` as "14:05" (mm:ss) or "1:02:03" beyond an hour; '' once past. */
function countdown(iso, now = Date.now()) {
  const left = Math.ceil(msLeft(iso, now) / 1000);
  if (left <= 0) return '';
  const h = Math.floor(left / 3600);
  const m = Math.floor((left % 3600) / 60);
  const sec = left % 60;
  return h ? `${h}:${pad(m)}:${pad(sec)}` : `${pad(m)}:${pad(sec)}`;
}

/** Payment fields of an appointment for display (empty when the hospital takes no fee online). */
function paymentView(a, now = Date.now()) {
  const payment = a.payment || null;
  const refund = a.refund || (payment && payment.refund) || null;
  const pending = a.status === 'pending_payment';
  const refundCents = refund && (refund.amount_cents !== undefined ? refund.amount_cents : null);
  return {
    awaitingPayment: pending,
    payStatusText: payment ? PAYMENT_STATUS[payment.status] || payment.status || '' : '',
    amountText: payment && payment.amount_cents !== undefined ? fee(payment.amount_cents) : '',
    payByText: pending ? instant(a.pay_by, now) : '',
    countdownText: pending ? countdown(a.pay_by, now) : '',
    payExpired: pending && !!a.pay_by && msLeft(a.pay_by, now) <= 0,
    refundText: payment && (payment.status === 'refunding' || payment.status === 'refunded')
      ? `${PAYMENT_STATUS[payment.status]}${refundCents !== null ? ` ${fee(refundCents)}` : ''}`
      : '',
  };
}

/** Display fields of an appointment (api.md shape). */
function appointmentView(a, now = Date.now()) {
  return {
    ...a,
    ...paymentView(a, now),
    reasonText: a.reason ? REASONS[a.reason] || a.reason : '',
    statusText: appointmentStatus(a.status),
    statusTheme: appointmentTheme(a.status),
    dateText: dateLabel(a.date),
    sessionText: sessionLabel(a.session),
    timeText: a.start && a.end ? `${a.start}-${a.end}` : '',
    feeText: fee(a.fee_cents),
    deadlineText: instant(a.cancel_deadline, now),
    cancelledByText: a.cancelled_by ? CANCELLED_BY[a.cancelled_by] || '' : '',
  };
}

/** One-line summary of a hospital's booking rules (domain.md). */
function rulesSummary(rules) {
  if (!rules) return '';
  const parts = [];
  if (rules.window_days !== undefined) parts.push(`可预约今天起${rules.window_days}天内的号源`);
  if (rules.release_time) parts.push(`每天${rules.release_time}放号`);
  if (rules.cancel_before_hours !== undefined) parts.push(`就诊前${rules.cancel_before_hours}小时可取消`);
  return parts.join('，');
}

/** The detailed rules as lines for the confirm page. */
function rulesLines(rules) {
  if (!rules) return [];
  const lines = [];
  if (rules.window_days !== undefined) lines.push(`可预约今天起${rules.window_days}天内的号源，每天${rules.release_time || '08:00'}放新一天的号`);
  if (rules.same_day_stop_time) lines.push(`当日号源上午${rules.same_day_stop_time.am}、下午${rules.same_day_stop_time.pm}停止预约`);
  if (rules.cancel_before_hours !== undefined) lines.push(`就诊前${rules.cancel_before_hours}小时之前可免费取消`);
  if (rules.per_department_per_day !== undefined) lines.push(`同一就诊人同一科室每天限约${rules.per_department_per_day}个号`);
  if (rules.max_active !== undefined) lines.push(`同一就诊人在本院最多同时有${rules.max_active}个待就诊预约`);
  if (rules.no_show_limit !== undefined) lines.push(`${rules.no_show_window_days}天内爽约${rules.no_show_limit}次将暂停预约${rules.ban_days}天`);
  return lines;
}

/** Age in whole years at `now` from "YYYY-MM-DD". */
function age(birthDate, now = Date.now()) {
  if (!birthDate) return '';
  const [y, m, d] = birthDate.split('-').map(Number);
  const t = today(now).split('-').map(Number);
  let years = t[0] - y;
  if (t[1] < m || (t[1] === m && t[2] < d)) years -= 1;
  return years;
}

/**
 * [from, to] cut into ranges of at most `maxDays` days between their ends (the schedules
 * API refuses more than 62 days in one call).
 */
function dateRanges(from, to, maxDays = 62) {
  const ranges = [];
  let start = from;
  while (start <= to) {
    const end = addDays(start, maxDays) < to ? addDays(start, maxDays) : to;
    ranges.push([start, end]);
    start = addDays(end, 1);
  }
  return ranges;
}

module.exports = {
  SESSION_LABELS,
  slotBookable,
  slotText,
  wallClock,
  dateRanges,
  SESSION_ORDER,
  RELATIONS,
  CANCELLED_BY,
  PAYMENT_STATUS,
  countdown,
  msLeft,
  paymentView,
  today,
  addDays,
  weekday,
  monthDay,
  dateLabel,
  relativeDay,
  instant,
  isPast,
  fee,
  sessionLabel,
  appointmentStatus,
  appointmentTheme,
  relationLabel,
  genderLabel,
  remainingOf,
  scheduleState,
  dateStrip,
  appointmentView,
  param,
  rulesSummary,
  rulesLines,
  age,
};
