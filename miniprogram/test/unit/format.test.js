const format = require('../../utils/format');
const { NOW } = require('../helpers');

describe('utils/format', () => {
  test('fee in fen → ¥', () => {
    expect(format.fee(1250)).toBe('¥12.50');
    expect(format.fee(10000)).toBe('¥100.00');
    expect(format.fee(5)).toBe('¥0.05');
    expect(format.fee(0)).toBe('¥0.00');
    expect(format.fee(undefined)).toBe('');
  });

  test('session labels 上午/下午/夜间', () => {
    expect(['am', 'pm', 'evening'].map(format.sessionLabel)).toEqual(['上午', '下午', '夜间']);
  });

  test('appointment status labels', () => {
    expect(['booked', 'checked_in', 'completed', 'cancelled', 'no_show'].map(format.appointmentStatus))
      .toEqual(['待就诊', '已签到', '已完成', '已取消', '爽约']);
  });

  test('dates are Shanghai dates whatever the device time zone', () => {
    // 2026-11-30T20:00Z is already 12-01 04:00 in Shanghai
    expect(format.today(Date.parse('2026-11-30T20:00:00Z'))).toBe('2026-12-01');
    expect(format.today(NOW)).toBe('2026-12-01');
    expect(format.addDays('2026-12-30', 3)).toBe('2027-01-02');
    expect(format.dateLabel('2026-12-02')).toBe('12月02日 周三');
    expect(format.relativeDay('2026-12-01', NOW)).toBe('今天');
    expect(format.relativeDay('2026-12-02', NOW)).toBe('明天');
    expect(format.relativeDay('2026-12-03', NOW)).toBe('周四');
    expect(format.instant('2026-12-02T06:00:00+08:00', NOW)).toBe('12月02日 06:00');
    expect(format.instant('2026-12-01T22:00:00Z', NOW)).toBe('12月02日 06:00');
    expect(format.instant('2027-01-02T08:00:00+08:00', NOW)).toBe('2027年01月02日 08:00');
  });

  test('schedule states 余N / 约满 / 停诊 / 未放号 (release time) / 已截止', () => {
    const slots = [{ remaining: 2 }, { remaining: 0 }, { remaining: 1 }];
    expect(format.scheduleState({ status: 'open', slots }, NOW)).toMatchObject({ text: '余3', bookable: true });
    expect(format.scheduleState({ status: 'open', slots: [{ remaining: 0 }] }, NOW)).toMatchObject({ text: '约满', bookable: false });
    expect(format.scheduleState({ status: 'full', slots }, NOW).text).toBe('约满');
    expect(format.scheduleState({ status: 'stopped', slots }, NOW).text).toBe('停诊');
    expect(format.scheduleState({ status: 'not_released', release_at: '2026-12-02T08:00:00+08:00', slots }, NOW))
      .toMatchObject({ text: '未放号', sub: '12月02日 08:00 放号', bookable: false });
    expect(format.scheduleState({ status: 'closed', slots }, NOW).text).toBe('已截止');
  });

  test('date strip over a window', () => {
    const days = format.dateStrip('2026-12-01', 8, { '2026-12-02': '有号' }, NOW);
    expect(days).toHaveLength(8);
    expect(days[0]).toEqual({ date: '2026-12-01', week: '今天', day: '12-01', mark: '' });
    expect(days[1].mark).toBe('有号');
    expect(days[7].date).toBe('2026-12-08');
  });

  test('rules summary, relation, gender, age, query params', () => {
    expect(format.rulesSummary({ window_days: 7, release_time: '08:00', cancel_before_hours: 2 }))
      .toBe('可预约今天起7天内的号源，每天08:00放号，就诊前2小时可取消');
    expect(format.relationLabel('parent')).toBe('父母');
    expect(format.genderLabel('male')).toBe('男');
    expect(format.age('1949-12-31', NOW)).toBe(76);
    expect(format.age('2000-12-01', NOW)).toBe(26);
    expect(format.age('2000-12-02', NOW)).toBe(25);
    expect(format.param({ name: encodeURIComponent('心血管内科') }, 'name')).toBe('心血管内科');
    expect(format.param({ name: '心血管内科' }, 'name')).toBe('心血管内科');
    expect(format.param({ name: '100%' }, 'name')).toBe('100%');
  });

  test('an open session whose slices have all started today is 已截止, not 约满 (no 候补 offered)', () => {
    const now = Date.parse('2026-12-01T09:00:00+08:00');
    const started = { status: 'open', date: '2026-12-01', slots: [{ start: '08:00', end: '08:30', remaining: 2, status: 'open' }, { start: '08:30', end: '09:00', remaining: 0, status: 'full' }] };
    expect(format.scheduleState(started, now)).toMatchObject({ text: '已截止', tone: 'closed', bookable: false });
    const fullAhead = { status: 'open', date: '2026-12-01', slots: [{ start: '10:00', end: '10:30', remaining: 0, status: 'full' }] };
    expect(format.scheduleState(fullAhead, now)).toMatchObject({ text: '约满', tone: 'full' });
  });
});

