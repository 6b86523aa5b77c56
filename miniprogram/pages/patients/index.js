// 就诊人管理: list (GET /patients), add (POST), edit (PATCH), delete (DELETE), default (PATCH
// {is_default: true}); the ID number is checked on the client (GB 11643) before sending, and
// only masked numbers are ever shown. At most config.maxPatients profiles.
// Before a 就诊人 is added the user must have agreed (explicitly, a checkbox they tick) to the
// current 用户协议 / 隐私政策 and to the processing of ID numbers and phones: the consent is
// recorded on the server with its version (POST /me/consents, read back from GET /me).
const pageState = require('../../utils/page-state');
const api = require('../../utils/api');
const format = require('../../utils/format');
const idcard = require('../../utils/idcard');
const config = require('../../config');
const privacy = require('../../utils/privacy');
const { readable, showError } = require('../../utils/request');
const elderMode = require('../../utils/elder-mode');

const NAME_RE = /^[\u4e00-\u9fa5A-Za-z·•. ]{2,30}$/;
const PHONE_RE = /^1[3-9]\d{9}$/;

function view(p) {
  const age = format.age(p.birth_date);
  return {
    ...p,
    relationText: format.relationLabel(p.relation),
    genderText: format.genderLabel(p.gender),
    ageText: age === '' ? '' : `${age}岁`,
  };
}

/** Client-side checks (the server checks again): {field: message}. */
function validate(form) {
  const errors = {};
  const name = (form.name || '').trim();
  if (!NAME_RE.test(name)) errors.name = '请输入2-30位中文或英文姓名';
  if (form.mode === 'add') {
    const id = idcard.validate(form.id_number);
    if (!id.valid) errors.id_number = id.message;
  }
  const phone = (form.phone || '').trim();
  if ((form.mode === 'add' || phone) && !PHONE_RE.test(phone)) errors.phone = '请输入11位手机号';
  if (!form.relation) errors.relation = '请选择与本人的关系';
  return errors;
}

function confirmModal(options) {
  return new Promise((resolve) => {
    wx.showModal({ ...options, success: (res) => resolve(!!res.confirm), fail: () => resolve(false) });
  });
}

Component({
  behaviors: [pageState, elderMode.behavior],
  data: {
    patients: [],
    maxPatients: config.maxPatients,
    relations: format.RELATIONS,
    form: null,
    errors: {},
    saving: false,
    consent: null, // {ticked} while asking for consent
    privacyVersion: privacy.VERSION,
  },
  methods: {
    onLoad() {
      return this.reload();
    },
    onPullDownRefresh() {
      if (this.data.form) {
        wx.stopPullDownRefresh();
        return Promise.resolve();
      }
      return this.pullRefresh();
    },
    reload(opts) {
      return this.runLoad(async () => {
        const { items } = await api.patients.list({ toast: false });
        this.setData({ patients: (items || []).map(view) });
        return this.data.patients.length > 0;
      }, opts);
    },
    async onAdd() {
      if (this.data.patients.length >= config.maxPatients) {
        wx.showToast({ title: `最多添加${config.maxPatients}位就诊人`, icon: 'none' });
        return;
      }
      if (!this.consented) {
        try {
          this.consented = privacy.hasConsented(await api.me.get({ toast: false }));
        } catch (err) {
          showError(err);
          return;
        }
      }
      if (!this.consented) {
        this.setData({ consent: { ticked: false } });
        return;
      }
      this.openAddForm();
    },
    onTickConsent() {
      this.setData({ 'consent.ticked': !(this.data.consent && this.data.consent.ticked) });
    },
    onCancelConsent() {
      this.setData({ consent: null });
    },
    async onAgree() {
      if (!this.data.consent || !this.data.consent.ticked || this.data.saving) return;
      this.setData({ saving: true });
      try {
        for (const kind of privacy.CONSENT_KINDS) {
          // eslint-disable-next-line no-await-in-loop
          await api.me.consent(kind, privacy.VERSION);
        }
        this.consented = true;
        this.setData({ consent: null });
        this.openAddForm();
      } catch (err) {
        // toast shown; nothing is collected without the recorded consent
      } finally {
        this.setData({ saving: false });
      }
    },
    onOpenAgreement() {
      wx.navigateTo({ url: '/pages/agreement/index' });
    },
    onOpenPrivacy() {
      wx.navigateTo({ url: '/pages/privacy/index' });
    },
    openAddForm() {
      const first = this.data.patients.length === 0;
      this.setData({
        form: { mode: 'add', name: '', id_number: '', phone: '', relation: first ? 'self' : '' },
        errors: {},
      });
    },
    onEdit(e) {
      const p = this.data.patients.find((x) => x.id === e.currentTarget.dataset.id);
      if (!p) return;
      this.setData({
        form: {
          mode: 'edit', id: p.id, name: p.name, phone: '', relation: p.relation,
          id_number_masked: p.id_number_masked, phone_masked: p.phone_masked,
        },
        errors: {},
      });
    },
    onCloseForm() {
      this.setData({ form: null, errors: {} });
    },
    onInput(e) {
      const { field } = e.currentTarget.dataset;
      this.setData({ [`form.${field}`]: e.detail.value, [`errors.${field}`]: '' });
    },
    onRelation(e) {
      this.setData({ 'form.relation': e.currentTarget.dataset.value, 'errors.relation': '' });
    },
    async onSave() {
      const { form } = this.data;
      if (!form || this.data.saving) return;
      const errors = validate(form);
      if (Object.keys(errors).length) {
        this.setData({ errors });
        wx.showToast({ title: errors[Object.keys(errors)[0]], icon: 'none' });
        return;
      }
      this.setData({ saving: true });
      try {
        if (form.mode === 'add') {
          await api.patients.create({
            name: form.name.trim(),
            id_number: idcard.normalize(form.id_number),
            phone: form.phone.trim(),
            relation: form.relation,
          });
        } else {
          const body = { name: form.name.trim(), relation: form.relation };
          if (form.phone.trim()) body.phone = form.phone.trim();
          await api.patients.update(form.id, body);
        }
        this.setData({ form: null, errors: {} });
        wx.showToast({ title: '已保存', icon: 'success' });
        await this.reload({ quiet: true });
      } catch (err) {
        // the toast already told why; put per-field messages under the fields
        const fields = err.fields || {};
        const mapped = {};
        Object.keys(fields).forEach((k) => {
          const key = k.split('.').pop();
          mapped[key] = readable(fields[k]);
        });
        if (Object.keys(mapped).length) this.setData({ errors: mapped });
      } finally {
        this.setData({ saving: false });
      }
    },
    async onMakeDefault(e) {
      const { id } = e.currentTarget.dataset;
      try {
        await api.patients.update(id, { is_default: true });
        await this.reload({ quiet: true });
      } catch (err) {
        // toast shown
      }
    },
    async onDelete(e) {
      const p = this.data.patients.find((x) => x.id === e.currentTarget.dataset.id);
      if (!p) return;
      const ok = await confirmModal({
        title: '删除就诊人',
        content: `确定删除就诊人「${p.name}」吗？已有的预约不受影响。`,
        confirmText: '删除',
        confirmColor: '#d54941',
      });
      if (!ok) return;
      try {
        await api.patients.remove(p.id);
        wx.showToast({ title: '已删除', icon: 'success' });
        await this.reload({ quiet: true });
      } catch (err) {
        // toast shown
      }
    },
  },
});
