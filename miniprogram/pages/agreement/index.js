// 用户协议 (static; its version is the one recorded by POST /me/consents).
const privacy = require('../../utils/privacy');
const elderMode = require('../../utils/elder-mode');

Component({
  behaviors: [elderMode.behavior],
  data: {
    version: privacy.VERSION,
    sections: privacy.AGREEMENT,
  },
  methods: {
    onLoad() {},
    onPrivacy() {
      wx.navigateTo({ url: '/pages/privacy/index' });
    },
  },
});
