// Staff login (POST /auth/staff/login {username, password}) → pages/staff-today.
// Only hospital admins have a hospital to work on; a platform admin is told to use the console.
const { staffLogin, clearSession, errorText } = require('../../utils/request');
const elderMode = require('../../utils/elder-mode');

Component({
  behaviors: [elderMode.behavior],
  data: {
    username: '',
    password: '',
    loading: false,
    error: '',
  },
  methods: {
    onLoad() {},
    onInput(e) {
      this.setData({ [e.currentTarget.dataset.field]: e.detail.value, error: '' });
    },
    async onLogin() {
      const username = this.data.username.trim();
      const { password } = this.data;
      if (!username || !password || this.data.loading) return;
      this.setData({ loading: true, error: '' });
      try {
        const session = await staffLogin(username, password);
        const user = session.user || {};
        if (user.role !== 'hospital_admin' || !user.hospital_id) {
          clearSession('staff');
          this.setData({ error: '该账号不是医院管理员，请使用平台管理后台' });
          return;
        }
        this.setData({ password: '' });
        wx.showToast({ title: '登录成功', icon: 'success' });
        wx.redirectTo({ url: '/pages/staff-today/index' });
      } catch (err) {
        this.setData({ error: err.statusCode === 401 ? '账号或密码错误' : errorText(err) });
      } finally {
        this.setData({ loading: false });
      }
    },
  },
});
