const { getSession } = require('./utils/request');

App({
  globalData: {
    // set by pages that hand data to the next page without a round trip (none required)
  },
  onLaunch() {
    // Nothing to do up front: the patient logs in on the first request that needs a token
    // (utils/request.js), the catalog pages are public.
    this.globalData.hasPatientSession = !!getSession('patient');
  },
});
