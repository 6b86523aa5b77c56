/**
 * Mini-program configuration.
 *
 * apiBaseUrl: the guahao gateway, including the /api/v1 prefix, without a trailing slash.
 *   - Local development: `make run` serves the gateway on http://127.0.0.1:8080; in WeChat
 *     DevTools tick 详情 → 本地设置 → 「不校验合法域名、web-view（业务域名）、TLS 版本以及 HTTPS 证书」
 *     (project.config.json already sets urlCheck: false) to call plain HTTP.
 *   - Testing on a phone (预览 / 真机调试): use your machine's LAN address instead of 127.0.0.1.
 *   - Release: an HTTPS origin whitelisted in the mini-program console
 *     (开发管理 → 开发设置 → 服务器域名 → request 合法域名), e.g. https://api.example.com/api/v1.
 * The value can also be set per build flavour in `apiBaseUrls` (keys are
 * wx.getAccountInfoSync().miniProgram.envVersion: develop / trial / release); an empty value
 * there falls back to apiBaseUrl — except for `release`, which must be set to an HTTPS,
 * non-loopback origin: `npm run check:release` fails otherwise (run it before uploading),
 * and a release build with a bad value refuses to send any request instead of calling
 * 127.0.0.1 from patients' phones.
 */
const config = {
  apiBaseUrl: 'http://127.0.0.1:8080/api/v1',
  apiBaseUrls: {
    develop: '',
    trial: '',
    release: '',
  },
  // milliseconds before wx.request gives up (then: 网络异常，请重试)
  requestTimeout: 15000,
  // subscribe-message kinds asked for at booking (WeChat allows at most 3 per request)
  bookingTemplateKinds: ['booking_confirmed', 'visit_reminder', 'appointment_cancelled'],
  // most patient profiles per user (api.md: LIMIT_REACHED beyond)
  maxPatients: 5,
  // how often the result page asks whether a release lottery (放号抽签) has been drawn
  lotteryPollMs: 2000,
  // after the payment sheet: how often / how long the result page asks whether the server
  // has recorded the payment (WeChat Pay's notification, or the server's own order query)
  payPollMs: 2000,
  payConfirmTimeoutMs: 60000,
  // the 待支付 countdown tick
  countdownTickMs: 1000,
  // 候诊: how often the appointment page refreshes the queue position while it is shown
  queueRefreshMs: 10000,
  // subscribe-message kinds asked for by the 叫号提醒 button (result and detail pages):
  // the booking tap already asks for 3, WeChat's limit per call
  queueTemplateKinds: ['queue_near'],
  // a refresh answered 429/503 is retried after Retry-After (capped) this many times
  refreshRetries: 2,
  refreshRetryCapMs: 5000,
};

const LOOPBACK = /^(localhost|127(\.\d{1,3}){3}|0\.0\.0\.0|\[?::1\]?|\[?::\]?)$/i;

/**
 * Why `url` cannot be the base URL of a release build ('' when it can): it must be an
 * absolute https:// URL whose host is a domain name (the request 合法域名 of the WeChat
 * console take neither IP addresses nor localhost) without a port other than 443.
 */
function releaseUrlProblem(url) {
  if (!url) return 'apiBaseUrls.release is empty';
  const match = /^([a-z][a-z0-9+.-]*):\/\/(\[[^\]]*\]|[^/:?#]*)(?::(\d+))?([/?#].*)?$/i.exec(url);
  if (!match) return `${url} is not an absolute URL`;
  const [, scheme, host, port] = match;
  if (scheme.toLowerCase() !== 'https') return `${url} is not HTTPS`;
  if (!host || LOOPBACK.test(host)) return `${url} points at a loopback address`;
  if (/^\[.*\]$/.test(host) || /^\d{1,3}(\.\d{1,3}){3}$/.test(host)) {
    return `${url}: WeChat allows only domain names, not IP addresses`;
  }
  if (port && port !== '443') return `${url}: WeChat allows only the default HTTPS port`;
  if (/\/$/.test(url)) return `${url} must not end with a slash`;
  return '';
}

function envVersion() {
  try {
    return wx.getAccountInfoSync().miniProgram.envVersion;
  } catch (err) {
    return '';
  }
}

/** The gateway base URL in force for this build (throws in a release build with a bad one). */
config.baseUrl = function baseUrl() {
  const flavour = envVersion();
  if (flavour === 'release') {
    const url = config.apiBaseUrls.release;
    const problem = releaseUrlProblem(url);
    if (problem) throw new Error(`config.js: release build refused: ${problem}`);
    return url;
  }
  return (flavour && config.apiBaseUrls[flavour]) || config.apiBaseUrl;
};

config.releaseUrlProblem = releaseUrlProblem;

module.exports = config;
