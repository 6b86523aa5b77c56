/**
 * Privacy (PIPL; WeChat's 小程序隐私保护指引): the versions of our 用户协议 / 隐私政策, what
 * the mini-program collects (this list is what the privacy guide in the WeChat console must
 * say, README "The mini-program"), the consent recorded on the server before the first
 * 就诊人 (POST /me/consents), and the wx.onNeedPrivacyAuthorization flow.
 */
const VERSION = '2026-11';
// recorded together when the user agrees before adding the first 就诊人
const CONSENT_KINDS = ['terms', 'privacy', 'patient_data'];

/** What is collected, why, and for how long (the 隐私政策 and the console guide list the same). */
const COLLECTED = [
  { item: '微信标识（openid）', purpose: '登录、向您发送您订阅的就诊通知', keep: '注销账号时删除' },
  { item: '就诊人姓名、身份证号、手机号', purpose: '医院实名挂号（敏感个人信息，单独同意）', keep: '删除就诊人或注销账号时删除；加密保存，只显示脱敏号码' },
  { item: '预约记录（医院、科室、医生、时间、序号）', purpose: '挂号、取消、改约、签到与候补', keep: '属于医疗记录，由医院按规定保存' },
  { item: '订阅消息授权结果', purpose: '按您的授权发送预约成功、取消、改约、就诊提醒、候补成功通知', keep: '注销账号时删除' },
  { item: '摄像头（仅医院工作人员扫码签到）', purpose: '扫描患者签到码', keep: '不保存图像' },
];

const AGREEMENT = [
  { title: '一、服务内容', text: '本小程序为患者提供医院门诊预约挂号、取消、改约、候补和就诊提醒服务；号源由医院发布，以医院实际安排为准。' },
  { title: '二、实名就诊', text: '挂号须使用就诊人真实身份信息；为他人（父母、子女等）挂号时，您应已取得其同意。' },
  { title: '三、预约规则', text: '放号时间、可预约天数、取消时限、爽约限制由各医院规定，在确认挂号页面展示；多次爽约将被暂停预约。' },
  { title: '四、账号注销', text: '您可在「我的 → 注销账号」删除账号及全部就诊人；有待就诊预约时须先取消。' },
];

const POLICY_INTRO = '我们仅收集挂号所必需的信息，不用于广告或其他目的，不向医院以外的第三方提供。';

function consentOf(me, kind) {
  return ((me && me.consents) || []).find((c) => c.kind === kind) || null;
}

/** True when the user has agreed to the current version of everything asked before a 就诊人. */
function hasConsented(me) {
  return CONSENT_KINDS.every((kind) => {
    const c = consentOf(me, kind);
    return !!c && c.version === VERSION;
  });
}

/**
 * wx.onNeedPrivacyAuthorization (with __usePrivacyCheck__ in app.json): a privacy API was
 * called before the user agreed to the privacy guide. The current page's
 * <privacy-popup id="privacy-popup"> asks; without one the call is refused.
 */
function onNeedPrivacyAuthorization(resolve, eventInfo) {
  const pages = typeof getCurrentPages === 'function' ? getCurrentPages() : [];
  const page = pages[pages.length - 1];
  const popup = page && page.selectComponent ? page.selectComponent('#privacy-popup') : null;
  if (popup && popup.open) {
    popup.open(resolve, eventInfo);
    return;
  }
  resolve({ event: 'disagree' });
  wx.showToast({ title: '请先阅读并同意隐私保护指引', icon: 'none' });
}

function installPrivacyHandler() {
  if (typeof wx !== 'undefined' && typeof wx.onNeedPrivacyAuthorization === 'function') {
    wx.onNeedPrivacyAuthorization(onNeedPrivacyAuthorization);
    return true;
  }
  return false; // base library < 2.32.3: WeChat shows its own dialog
}

module.exports = {
  VERSION,
  CONSENT_KINDS,
  COLLECTED,
  AGREEMENT,
  POLICY_INTRO,
  consentOf,
  hasConsented,
  onNeedPrivacyAuthorization,
  installPrivacyHandler,
};
