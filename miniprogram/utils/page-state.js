/**
 * The page states every page shares: data.state is 'loading' | 'ready' | 'empty' | 'error'
 * (rendered by components/state-view), data.errorText the message of the last failure.
 *
 * runLoad(loader): loader resolves to true when there is something to show, false when the
 * page is empty; a rejection becomes the error state (with its readable message) whose
 * retry button calls the page's reload(). Pull-to-refresh keeps the content on screen
 * (no loading flash) and stops the native spinner at the end.
 */
const { errorText } = require('./request');

module.exports = Behavior({
  data: {
    state: 'loading',
    errorText: '',
  },
  methods: {
    async runLoad(loader, { quiet = false } = {}) {
      if (!quiet || this.data.state !== 'ready') this.setData({ state: 'loading', errorText: '' });
      try {
        const hasContent = await loader();
        this.setData({ state: hasContent === false ? 'empty' : 'ready' });
        return true;
      } catch (err) {
        if (err && err.sessionExpired) {
          wx.redirectTo({ url: '/pages/staff-login/index' });
        }
        this.setData({ state: 'error', errorText: errorText(err) });
        return false;
      }
    },
    async pullRefresh() {
      try {
        await this.reload({ quiet: true });
      } finally {
        wx.stopPullDownRefresh();
      }
    },
    onRetry() {
      return this.reload();
    },
  },
});
