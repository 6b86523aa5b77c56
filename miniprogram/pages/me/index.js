// 我的 (tab): entry points for the patient (就诊人, 我的预约) and for hospital staff
// (login, then today's appointments, sessions, doctors). No request of its own.
const { getSession, staffLogout } = require('../../utils/request');

Component({
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
    onStaffLogout() {
      staffLogout();
      this.refresh();
      wx.showToast({ title: '已退出', icon: 'success' });
    },
  },
});
