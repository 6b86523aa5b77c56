const h = require('../helpers');

const stateViewId = h.loadComponent('components/state-view/index', 'state-view');
const dateStripId = h.loadComponent('components/date-strip/index', 'date-strip');

describe('components/state-view', () => {
  beforeEach(() => h.fakeWx());

  function render(props) {
    const comp = h.simulate.render(stateViewId, props);
    comp.attach(document.createElement('parent-wrapper'));
    return comp;
  }

  test('loading, empty, error, ready', async () => {
    expect(h.text(render({ state: 'loading' }))).toContain('加载中');
    expect(h.text(render({ state: 'empty', emptyText: '暂无医院' }))).toContain('暂无医院');
    const err = render({ state: 'error', errorText: '网络异常，请重试' });
    expect(h.text(err)).toContain('网络异常，请重试');
    expect(h.text(err)).toContain('重试');
    expect(h.text(render({ state: 'ready' })).trim()).toBe('');
  });

  test('retry and action events', async () => {
    const comp = render({ state: 'error', errorText: 'x' });
    const retry = jest.fn();
    comp.addEventListener('retry', retry);
    h.tapButton(comp.querySelector('#sv-retry'));
    await h.flush();
    expect(retry).toHaveBeenCalledTimes(1);

    const empty = render({ state: 'empty', actionText: '去预约' });
    const action = jest.fn();
    empty.addEventListener('action', action);
    h.tapButton(empty.querySelector('#sv-action'));
    await h.flush();
    expect(action).toHaveBeenCalledTimes(1);
  });
});

describe('components/date-strip', () => {
  const days = [
    { date: '2026-12-01', week: '今天', day: '12-01', mark: '' },
    { date: '2026-12-02', week: '明天', day: '12-02', mark: '有号' },
  ];

  test('renders the days and emits change with the picked date', async () => {
    const comp = h.simulate.render(dateStripId, { days, value: '2026-12-01' });
    comp.attach(document.createElement('parent-wrapper'));
    expect(h.text(comp)).toContain('今天');
    expect(h.text(comp)).toContain('有号');
    const change = jest.fn();
    comp.addEventListener('change', change);
    comp.querySelectorAll('.ds-day')[1].dispatchEvent('tap');
    await h.flush();
    expect(change).toHaveBeenCalledTimes(1);
    expect(change.mock.calls[0][0].detail).toEqual({ date: '2026-12-02' });
    // tapping the selected date again does nothing
    comp.querySelectorAll('.ds-day')[0].dispatchEvent('tap');
    await h.flush();
    expect(change).toHaveBeenCalledTimes(1);
  });
});
