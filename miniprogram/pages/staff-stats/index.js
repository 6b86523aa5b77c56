// Staff: today's numbers per department — GET /admin/hospitals/{hid}/stats?from=&to=&group_by=department
// (today in Shanghai for both ends): booked, cancelled (by patient / hospital / system),
// no-show, completed and utilisation, with the hospital's totals on top.
const pageState = require('../../utils/page-state');
const api = require('../../utils/api');
const format = require('../../utils/format');
const { loadStaffPage } = require('../../utils/staff');
const elderMode = require('../../utils/elder-mode');

const n = (v) => (Number.isFinite(Number(v)) ? Number(v) : 0);

/** 0.8333 → "83%" ('—' without capacity). */
function percent(ratio, capacity) {
  if (!capacity) return '—';
  return `${Math.round(n(ratio) * 100)}%`;
}

function row(item) {
  const cancelled = n(item.cancelled_by_patient) + n(item.cancelled_by_hospital) + n(item.cancelled_by_system);
  return {
    key: item.key,
    name: item.name || item.key,
    booked: n(item.booked),
    cancelled,
    cancelledDetail: `患者${n(item.cancelled_by_patient)} 医院${n(item.cancelled_by_hospital)}${n(item.cancelled_by_system) ? ` 系统${n(item.cancelled_by_system)}` : ''}`,
    noShow: n(item.no_show),
    completed: n(item.completed),
    capacity: n(item.capacity),
    utilization: n(item.utilization),
    utilizationText: percent(item.utilization, n(item.capacity)),
  };
}

/** The hospital's totals; utilisation weighted by capacity (as the per-row figures are). */
function total(rows) {
  const sum = (k) => rows.reduce((s, r) => s + r[k], 0);
  const capacity = sum('capacity');
  const used = rows.reduce((s, r) => s + r.utilization * r.capacity, 0);
  return {
    booked: sum('booked'),
    cancelled: sum('cancelled'),
    noShow: sum('noShow'),
    completed: sum('completed'),
    capacity,
    utilizationText: percent(capacity ? used / capacity : 0, capacity),
  };
}

Component({
  behaviors: [pageState, elderMode.behavior],
  data: {
    date: '',
    dateText: '',
    rows: [],
    totals: null,
  },
  methods: {
    onLoad() {
      const date = format.today();
      return loadStaffPage(this, { date, dateText: format.dateLabel(date) });
    },
    onPullDownRefresh() {
      return this.pullRefresh();
    },
    reload(opts) {
      const date = format.today();
      return this.runLoad(async () => {
        const { items } = await api.staff.stats({ from: date, to: date, group_by: 'department' }, { toast: false });
        const rows = (items || []).map(row).sort((a, b) => b.booked - a.booked || a.name.localeCompare(b.name, 'zh'));
        this.setData({
          date, dateText: format.dateLabel(date), rows, totals: rows.length ? total(rows) : null,
        });
        return rows.length > 0;
      }, opts);
    },
  },
});
