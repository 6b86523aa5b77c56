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
 * there falls back to apiBaseUrl.
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
};

function envVersion() {
  try {
    return wx.getAccountInfoSync().miniProgram.envVersion;
  } catch (err) {
    return '';
  }
}

/** The gateway base URL in force for this build. */
config.baseUrl = function baseUrl() {
  const flavour = envVersion();
  return (flavour && config.apiBaseUrls[flavour]) || config.apiBaseUrl;
};

module.exports = config;
