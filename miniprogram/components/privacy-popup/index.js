/**
 * Asks for the privacy guide when WeChat reports a privacy API call before agreement
 * (utils/privacy.js → open(resolve)). 同意 is a button with open-type
 * "agreePrivacyAuthorization": WeChat only accepts the agreement from such a tap.
 */
Component({
  data: {
    visible: false,
    referrer: '',
  },
  methods: {
    open(resolve, eventInfo) {
      this.pending = resolve;
      this.setData({ visible: true, referrer: (eventInfo && eventInfo.referrer) || '' });
    },
    close(result) {
      const resolve = this.pending;
      this.pending = null;
      this.setData({ visible: false });
      if (resolve) resolve(result);
    },
    onAgree() {
      this.close({ buttonId: 'agree-privacy', event: 'agree' });
    },
    onDisagree() {
      this.close({ event: 'disagree' });
    },
    onContract() {
      if (wx.openPrivacyContract) wx.openPrivacyContract({});
    },
  },
});
