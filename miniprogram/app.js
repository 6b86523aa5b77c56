const { getSession } = require('./utils/request');
const privacy = require('./utils/privacy');

App({
  globalData: {
    // set by pages that hand data to the next page without a round trip (none required)
  },
  onLaunch() {
    // Nothing to do up front: the patient logs in on the first request that needs a token
    // (utils/request.js), the catalog pages are public.
    this.globalData.hasPatientSession = !!getSession('patient');
    // __usePrivacyCheck__: privacy APIs wait for the user's agreement (components/privacy-popup)
    privacy.installPrivacyHandler();
  },
});
