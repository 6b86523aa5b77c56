const h = require('../helpers');
const fx = require('../fixtures');

const pageId = h.loadPage('staff-queue');
const HID = '/admin/hospitals/h_1';

const sessions = [
  { id: 'q_pm', doctor_id: 'doc_1', date: '2026-12-01', session: 'pm', status: 'open', fee_cents: 10000, slots: fx.slots('q_pm', [1]) },
  { id: 'q_am', doctor_id: 'doc_1', date: '2026-12-01', session: 'am', status: 'open', fee_cents: 10000, slots: fx.slots('q_am', [1]) },
  { id: 'q_stop', doctor_id: 'doc_2', date: '2026-12-01', session: 'am', status: 'stopped', fee_cents: 10000, slots: fx.slots('q_stop', [3]) },
];
// a queue row (QueueEntry) and the appointment a desk action answers (with its `queue`)
const row = (aid, seq, name, over = {}) => ({
  appointment_id: aid, seq_no: seq, patient: { name, id_number_masked: '1101**********002X' }, state: 'waiting', calls: 0, late: false, ...over,
});
const done = (aid, seq) => row(aid, seq, '某某', { state: 'done' });
const QUEUE = {
  schedule_id: 'q_am',
  now_serving: [row('a_1', 1, '张三', { state: 'called', room: '1诊室' })],
  waiting: [row('a_2', 2, '李四', { position: 1 }), row('a_3', 4, '王五', { position: 2 })],
  skipped: [],
  done: [done('a_7', 7), done('a_8', 8), done('a_9', 9)],
  rooms: [],
};

describe('pages/staff-queue (叫号)', () => {
  let fake;
  let queue;
  beforeEach(() => {
    jest.spyOn(Date, 'now').mockReturnValue(h.NOW);
    queue = JSON.parse(JSON.stringify(QUEUE));
    fake = h.fakeWx({
      [`GET ${HID}/doctors`]: { items: [fx.doctor, fx.doctors.items[1]] },
      [`GET ${HID}/schedules`]: { items: sessions },
      [`GET ${HID}/schedules/q_am/queue`]: () => queue,
      [`GET ${HID}/schedules/q_pm/queue`]: { ...QUEUE, now_serving: [], waiting: [], done: [] },
      [`POST ${HID}/schedules/q_am/queue/call-next`]: (req) => {
        const next = queue.waiting.shift();
        queue.now_serving.unshift({ ...next, state: 'called', room: req.data.room || null });
        return {
          ...fx.appointment, id: next.appointment_id, seq_no: next.seq_no, status: 'checked_in', patient: { id: 'p_x', ...next.patient }, queue: { state: 'called', room: req.data.room || null, calls: 1 },
        };
      },
    });
    h.seedStaff(fake);
  });
  afterEach(() => jest.restoreAllMocks());

  test('without a staff session: to the login page', async () => {
    fake.storage.clear();
    await h.mount(pageId);
    expect(h.lastNavigation(fake, 'redirectTo')).toBe('/pages/staff-login/index');
    expect(fake.requests).toHaveLength(0);
  });

  test('loading state', async () => {
    fake.routes[`GET ${HID}/schedules`] = () => new Promise(() => {});
    const comp = await h.mount(pageId);
    h.expectLoading(comp, fake, `GET ${HID}/schedules`);
  });

  test('today\'s sessions (not the stopped one), the first one\'s queue', async () => {
    const comp = await h.mount(pageId);
    expect(fake.requests.find((r) => r.route === `GET ${HID}/schedules`).query).toEqual({ date: '2026-12-01' });
    expect(comp.data.sessions.map((s) => s.label)).toEqual(['张明华 上午', '张明华 下午']);
    const t = h.text(comp);
    expect(t).toContain('正在就诊：1号 张三（1诊室）');
    expect(t).toContain('等候 2 人 · 过号 0 人 · 已完成 3 人');
    expect(comp.querySelectorAll('.waiting').map((n) => n.dom.textContent)).toEqual(['2号李四', '4号王五']);
  });

  test('叫下一位 posts the room, shows who was called and refreshes the queue', async () => {
    const comp = await h.mount(pageId);
    h.typeInto(comp.querySelector('#room'), '3诊室');
    await h.flush();
    expect(fake.storage.get('guahao.staff.room')).toBe('3诊室');
    h.tapButton(comp.querySelector('#call-next'));
    await h.flush(10);
    const call = fake.requests.find((r) => r.route === `POST ${HID}/schedules/q_am/queue/call-next`);
    expect(call.data).toEqual({ room: '3诊室' });
    const t = h.text(comp);
    expect(t).toContain('请 2 号 李四 到3诊室就诊');
    expect(t).toContain('正在就诊：2号 李四（3诊室）');
    expect(t).toContain('正在就诊：1号 张三（1诊室）'); // every room's current patient
    expect(t).toContain('等候 1 人');
    expect(h.toasts(fake)).toContain('已叫 2 号');
  });

  test('without a room the body is empty; the room is remembered on this phone', async () => {
    const comp = await h.mount(pageId);
    h.tapButton(comp.querySelector('#call-next'));
    await h.flush(10);
    expect(fake.requests.find((r) => r.route === `POST ${HID}/schedules/q_am/queue/call-next`).data).toEqual({});
    fake.storage.set('guahao.staff.room', '5诊室');
    const again = await h.mount(pageId);
    expect(again.data.room).toBe('5诊室');
  });

  test('nobody waiting (409) and 503 are shown on the page', async () => {
    fake.routes[`POST ${HID}/schedules/q_am/queue/call-next`] = h.apiError(409, 'INVALID_STATE', '没有候诊患者 / queue empty');
    const comp = await h.mount(pageId);
    h.tapButton(comp.querySelector('#call-next'));
    await h.flush(10);
    expect(comp.querySelector('.call-error').dom.textContent).toBe('没有候诊患者');
    fake.routes[`POST ${HID}/schedules/q_am/queue/call-next`] = h.apiError(503, 'SERVICE_UNAVAILABLE', '服务暂不可用 / unavailable');
    h.tapButton(comp.querySelector('#call-next'));
    await h.flush(10);
    expect(comp.querySelector('.call-error').dom.textContent).toBe('服务暂不可用，请稍后重试');
  });

  test('switching session loads its queue; an empty queue says so; a failing queue can be retried', async () => {
    const comp = await h.mount(pageId);
    h.tap(h.withDataId(comp.querySelectorAll('.session-tab'), 'q_pm'));
    await h.flush();
    expect(h.text(comp)).toContain('暂无候诊患者');
    expect(h.text(comp)).toContain('正在就诊：—');
    fake.routes[`GET ${HID}/schedules/q_am/queue`] = 'network';
    h.tap(h.withDataId(comp.querySelectorAll('.session-tab'), 'q_am'));
    await h.flush();
    expect(h.text(comp)).toContain('网络异常');
    fake.routes[`GET ${HID}/schedules/q_am/queue`] = () => queue;
    h.tapButton(comp.querySelector('#queue-retry'));
    await h.flush();
    expect(h.text(comp)).toContain('正在就诊：1号 张三');
  });

  test('a single now_serving entry (not a list) and a count for done are read too', async () => {
    fake.routes[`GET ${HID}/schedules/q_am/queue`] = { now_serving: row('a_1', 1, '张三'), waiting: [], done: 5 };
    const comp = await h.mount(pageId);
    expect(h.text(comp)).toContain('正在就诊：1号 张三');
    expect(h.text(comp)).toContain('已完成 5 人');
  });

  test('no session today → empty; error state with retry; pull-to-refresh', async () => {
    fake.routes[`GET ${HID}/schedules`] = { items: [] };
    const empty = await h.mount(pageId);
    expect(empty.data.state).toBe('empty');
    expect(h.text(empty)).toContain('今天没有出诊');
    fake.routes[`GET ${HID}/schedules`] = 'network';
    const comp = await h.mount(pageId);
    expect(comp.data.state).toBe('error');
    fake.routes[`GET ${HID}/schedules`] = { items: sessions };
    h.tapButton(h.retryButton(comp));
    await h.flush();
    expect(comp.data.state).toBe('ready');
    await comp.instance.onPullDownRefresh();
    expect(fake.wx.stopPullDownRefresh).toHaveBeenCalled();
  });
});
