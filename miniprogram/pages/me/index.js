// 我的 (tab): entry points for the patient (就诊人, 我的预约) and for hospital staff
// (login, then today's appointments, sessions, doctors); 用户协议 / 隐私政策 and 注销账号
// (DELETE /me: refused with 409 while active appointments remain).
const api = require('../../utils/api');
const elderMode = require('../../utils/elder-mode');
const {
  getSession, staffLogout, clearSession, showError,
} = require('../../utils/request');

/** Why 注销 was refused (409 details: active appointments, waiting 候补 entries). */
function deleteRefusal({ active = 0, waiting = 0 }) {
  const parts = [];
  if (active) parts.push(`${active}个待就诊的预约（在「我的预约」中取消）`);
  if (waiting) parts.push(`${waiting}个候补（在「我的候补」中取消）`);
  return `您还有${parts.join('和') || '未完成的预约'}，请先取消后再注销。`;
}

function confirmModal(options) {
  return new Promise((resolve) => {
    wx.showModal({ ...options, success: (res) => resolve(!!res.confirm), fail: () => resolve(false) });
  });
}

Component({
  behaviors: [elderMode.behavior],
  data: {
    loggedIn: false,
    staff: null,
  },
  methods: {
    onLoad() {
      this.refresh();
    },
    onShow() {
      this.refresh();
      this.refreshElder();
    },
    onToggleElder() {
      elderMode.setOn(!this.data.elder);
      this.setData({ elder: elderMode.isOn() });
      wx.showToast({ title: this.data.elder ? '已开启长辈模式' : '已关闭长辈模式', icon: 'none' });
    },
    refresh() {
      const staff = getSession('staff');
      this.setData({
        loggedIn: !!getSession('patient'),
        staff: staff && staff.user ? { hospital_id: staff.user.hospital_id || '', role: staff.user.role } : null,
      });
    },
    onPatients() {
      wx.navigateTo({ url: '/pages/patients/index' });
    },
    onAppointments() {
      wx.switchTab({ url: '/pages/appointments/index' });
    },
    onWaitlist() {
      wx.navigateTo({ url: '/pages/waitlist/index' });
    },
    onHome() {
      wx.switchTab({ url: '/pages/index/index' });
    },
    onStaffLogin() {
      wx.navigateTo({ url: '/pages/staff-login/index' });
    },
    onStaffToday() {
      wx.navigateTo({ url: '/pages/staff-today/index' });
    },
    onStaffSessions() {
      wx.navigateTo({ url: '/pages/staff-sessions/index' });
    },
    onStaffDoctors() {
      wx.navigateTo({ url: '/pages/staff-doctors/index' });
    },
    onStaffWeek() {
      wx.navigateTo({ url: '/pages/staff-week/index' });
    },
    onStaffQueue() {
      wx.navigateTo({ url: '/pages/staff-queue/index' });
    },
    onStaffStats() {
      wx.navigateTo({ url: '/pages/staff-stats/index' });
    },
    onAgreement() {
      wx.navigateTo({ url: '/pages/agreement/index' });
    },
    onPrivacy() {
      wx.navigateTo({ url: '/pages/privacy/index' });
    },
    async onDeleteAccount() {
      if (this.deleting) return;
      const ok = await confirmModal({
        title: '注销账号',
        content: '将删除您的账号和全部就诊人信息，且无法恢复。有待就诊的预约时需先取消。确定注销吗？',
        confirmText: '注销',
        confirmColor: '#d54941',
      });
      if (!ok) return;
      this.deleting = true;
      try {
        await api.me.remove({ toast: false });
        clearSession('patient');
        this.refresh();
        wx.showToast({ title: '账号已注销', icon: 'success' });
      } catch (err) {
        if (err.code === 'INVALID_STATE') {
          wx.showModal({
            title: '暂不能注销',
            content: deleteRefusal(err.details || {}),
            showCancel: false,
          });
        } else {
          showError(err);
        }
      } finally {
        this.deleting = false;
      }
    },
    onStaffLogout() {
      staffLogout();
      this.refresh();
      wx.showToast({ title: '已退出', icon: 'success' });
    },
  },
});
