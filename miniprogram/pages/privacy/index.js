// 隐私政策: what is collected, why and for how long (utils/privacy.js COLLECTED: the same
// list the privacy guide in the WeChat console must give), and how to delete it all.
const privacy = require('../../utils/privacy');
const elderMode = require('../../utils/elder-mode');

Component({
  behaviors: [elderMode.behavior],
  data: {
    version: privacy.VERSION,
    intro: privacy.POLICY_INTRO,
    collected: privacy.COLLECTED,
  },
  methods: {
    onLoad() {},
    onContract() {
      // the privacy guide as configured in the WeChat console
      if (wx.openPrivacyContract) wx.openPrivacyContract({});
    },
  },
});
