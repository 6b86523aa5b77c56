// The waiting-room TV (候诊大屏): polls GET /api/v1/display/{hid}/{sid} and shows who is
// being seen in each room, the next few (names masked by the server) and how many wait.
// No login, no inline code (the page's CSP allows only this file). When the network drops
// the last data stays on screen with a discreet "reconnecting" mark; polling backs off up
// to 30 s and returns to normal as soon as an answer arrives.
(function () {
  'use strict';

  // ?refresh=N (seconds, 1–60) for a screen that must move faster or slower than every 5 s
  var requested = Number(new URLSearchParams(window.location.search).get('refresh'));
  var POLL_MS = requested >= 1 && requested <= 60 ? requested * 1000 : 5000;
  var MAX_BACKOFF_MS = Math.max(30000, POLL_MS);
  var TIMEOUT_MS = 8000;
  var NEXT_SHOWN = 5;

  var parts = window.location.pathname.split('/').filter(Boolean);
  var hid = parts[1] || '';
  var sid = parts[2] || '';
  var url = '/api/v1/display/' + encodeURIComponent(decodeURIComponent(hid)) + '/' +
    encodeURIComponent(decodeURIComponent(sid));
  var failures = 0;
  var lastOk = null;

  function $(id) { return document.getElementById(id); }

  function text(tag, cls, value) {
    var el = document.createElement(tag);
    el.className = cls;
    el.textContent = value === undefined || value === null ? '' : String(value);
    return el;
  }

  function list(value) {
    if (!value) return [];
    return Array.isArray(value) ? value : [value];
  }

  function nameOf(entry) {
    return (entry && entry.name) || ''; // masked by the server: 张*
  }

  function seqOf(entry) {
    return entry && entry.seq_no !== undefined ? entry.seq_no + ' 号' : '';
  }

  function render(data) {
    var doctor = [data.doctor_name, data.doctor_title].filter(Boolean).join(' ');
    var title = [data.department_name, doctor].filter(Boolean).join(' · ');
    $('title').textContent = title || '候诊叫号';
    document.title = (title ? title + ' · ' : '') + '候诊叫号';

    var serving = list(data.now_serving);
    var ul = $('serving');
    ul.replaceChildren.apply(ul, serving.map(function (e) {
      var li = document.createElement('li');
      li.appendChild(text('span', 'seq', seqOf(e)));
      li.appendChild(text('span', 'name', nameOf(e)));
      if (e.room) li.appendChild(text('span', 'room', e.room));
      return li;
    }));
    $('serving-empty').hidden = serving.length > 0;

    var next = list(data.next).slice(0, NEXT_SHOWN);
    var ol = $('next');
    ol.replaceChildren.apply(ol, next.map(function (e) {
      var li = document.createElement('li');
      li.appendChild(text('span', 'seq', seqOf(e)));
      li.appendChild(text('span', 'name', nameOf(e)));
      return li;
    }));
    $('next-empty').hidden = next.length > 0;
    $('waiting-count').textContent = String(data.waiting_count);
  }

  function setStale(stale) {
    $('status').hidden = !stale;
    document.body.classList.toggle('stale', stale);
  }

  function stamp() {
    $('updated').textContent = lastOk
      ? '更新于 ' + lastOk.toLocaleTimeString('zh-CN', { hour12: false }) : '';
  }

  var pending = 0;
  var inflight = false;

  function schedule() {
    var delay = POLL_MS;
    if (failures > 0) {
      delay = Math.min(MAX_BACKOFF_MS, POLL_MS * Math.pow(2, failures - 1));
      delay = delay / 2 + Math.random() * delay / 2; // many TVs must not retry in step
    }
    pending = window.setTimeout(poll, delay);
  }

  // the network is back: do not wait out the back-off
  window.addEventListener('online', function () {
    if (failures === 0 || inflight) return;
    window.clearTimeout(pending);
    poll();
  });

  function poll() {
    inflight = true;
    var controller = typeof AbortController === 'function' ? new AbortController() : null;
    var timer = controller ? window.setTimeout(function () { controller.abort(); }, TIMEOUT_MS) : 0;
    fetch(url, { cache: 'no-store', headers: { Accept: 'application/json' },
      signal: controller ? controller.signal : undefined })
      .then(function (response) {
        // an unknown session (a mistyped address on the TV): say so, keep trying slowly
        $('serving-empty').textContent = response.status === 404 ? '未找到该出诊，请检查地址' : '请稍候';
        if (!response.ok) throw new Error('HTTP ' + response.status);
        return response.json();
      })
      .then(function (data) {
        failures = 0;
        lastOk = new Date();
        render(data);
        setStale(false);
        stamp();
      })
      .catch(function () {
        failures += 1;
        setStale(true); // keep the last data on screen
      })
      .then(function () {
        window.clearTimeout(timer);
        inflight = false;
        schedule();
      });
  }

  function tick() {
    $('clock').textContent = new Date().toLocaleTimeString('zh-CN', { hour12: false, hour: '2-digit', minute: '2-digit' });
  }

  tick();
  window.setInterval(tick, 10000);
  poll();
}());
