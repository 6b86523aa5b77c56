const dayFormat = new Intl.DateTimeFormat('en-CA', {
  timeZone: 'Asia/Shanghai', year: 'numeric', month: '2-digit', day: '2-digit',
});

/** Today in the hospital's time zone (Asia/Shanghai), YYYY-MM-DD. */
export function today(offsetDays = 0) {
  return dayFormat.format(new Date(Date.now() + offsetDays * 86_400_000));
}

export const SESSION_NAMES = { am: '上午', pm: '下午', evening: '晚间' };

export const STATUS_NAMES = {
  pending_payment: '待支付',
  booked: '已预约',
  checked_in: '已签到',
  completed: '已完成',
  cancelled: '已取消',
  no_show: '爽约',
};

export const STATUS_THEMES = {
  pending_payment: 'warning',
  booked: 'primary',
  checked_in: 'success',
  completed: 'default',
  cancelled: 'default',
  no_show: 'danger',
};

export const CHECKIN_PREFIX = 'guahao:checkin:';

/** The appointment id of a scanned check-in code (or of a typed id), '' otherwise. */
export function parseCheckinCode(text) {
  let value = String(text || '').trim();
  if (value.startsWith(CHECKIN_PREFIX)) value = value.slice(CHECKIN_PREFIX.length);
  return /^[A-Za-z0-9_-]{1,64}$/.test(value) ? value : '';
}

export function yuan(cents) {
  return cents === null || cents === undefined ? '—' : `¥${(cents / 100).toFixed(2)}`;
}

/** Who is being seen now (GET .../queue: one entry per called patient, latest call first). */
export function servingList(queue) {
  return (queue && queue.now_serving) || [];
}

export function entryId(entry) {
  return entry && entry.appointment_id;
}

export function entryName(entry) {
  return (entry && entry.patient && entry.patient.name) || '';
}
