// A small history router for the console's screens under /console/ (the gateway answers
// every client route with index.html). Admin-only screens are hidden from `desk` staff;
// the API refuses them anyway (403).
import { reactive } from 'vue';

export const BASE = '/console';

export const SCREENS = [
  { path: '/board', title: '今日看板', admin: false },
  { path: '/checkin', title: '签到', admin: false },
  { path: '/queue', title: '叫号台', admin: false },
  { path: '/appointments', title: '预约管理', admin: false },
  { path: '/doctors', title: '医生与排班', admin: true },
  { path: '/calendar', title: '节假日', admin: true },
  { path: '/stats', title: '统计', admin: true },
  { path: '/webhooks', title: 'Webhooks', admin: true },
  { path: '/staff', title: '员工账号', admin: true },
  { path: '/password', title: '修改密码', admin: false, hidden: true },
];

function current() {
  const path = window.location.pathname.startsWith(BASE)
    ? window.location.pathname.slice(BASE.length) : window.location.pathname;
  return { path: path.replace(/\/+$/, '') || '/', query: new URLSearchParams(window.location.search) };
}

export const route = reactive(current());

export function navigate(path, { replace = false } = {}) {
  const url = BASE + path;
  if (replace) window.history.replaceState(null, '', url);
  else window.history.pushState(null, '', url);
  Object.assign(route, current());
}

window.addEventListener('popstate', () => Object.assign(route, current()));
