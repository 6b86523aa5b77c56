/**
 * 长辈模式: larger text for older patients, switched on 我的 and kept in storage. Pages take
 * this Behavior and put `{{elder ? 'elder' : ''}}` on their root view (app.wxss `.elder`).
 */
const KEY = 'guahao.elder';

function isOn() {
  return wx.getStorageSync(KEY) === true;
}

function setOn(on) {
  wx.setStorageSync(KEY, !!on);
}

const elderMode = Behavior({ // (an id under the simulator, an object on WeChat)
  data: { elder: false },
  lifetimes: {
    attached() {
      this.setData({ elder: isOn() });
    },
  },
  methods: {
    refreshElder() {
      if (this.data.elder !== isOn()) this.setData({ elder: isOn() });
    },
  },
});

module.exports = {
  behavior: elderMode, isOn, setOn, KEY,
};
