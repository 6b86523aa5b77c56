const h = require('../helpers');
const fx = require('../fixtures');

const pageId = h.loadPage('patients');

async function fill(comp, { name, id, phone }) {
  if (name !== undefined) h.typeInto(comp.querySelector('#f-name'), name);
  if (id !== undefined) h.typeInto(comp.querySelector('#f-id'), id);
  if (phone !== undefined) h.typeInto(comp.querySelector('#f-phone'), phone);
  await h.flush();
}

describe('pages/patients (就诊人)', () => {
  let fake;
  beforeEach(() => {
    jest.spyOn(Date, 'now').mockReturnValue(h.NOW);
    fake = h.fakeWx({
      'GET /patients': fx.patients,
      'POST /patients': (req) => ({ statusCode: 201, data: { ...fx.patient2, id: 'p_3', name: req.data.name } }),
      'PATCH /patients/p_2': (req) => ({ ...fx.patient2, ...req.data }),
      'DELETE /patients/p_2': {},
      'GET /me': fx.consentedMe,
    });
    h.seedPatient(fake);
  });
  afterEach(() => jest.restoreAllMocks());

  test('loading state', async () => {
    fake.routes['GET /patients'] = () => new Promise(() => {});
    const comp = await h.mount(pageId);
    h.expectLoading(comp, fake, 'GET /patients');
  });

  test('the first 就诊人 needs an explicit consent, recorded on the server with its version', async () => {
    fake.routes['GET /patients'] = { items: [] };
    fake.routes['GET /me'] = { id: 'u_1', role: 'patient', consents: [] };
    fake.routes['POST /me/consents'] = (req) => ({ id: 'u_1', role: 'patient', consents: [{ ...req.data, at: '2026-12-01T09:00:00+08:00' }] });
    const comp = await h.mount(pageId);
    h.tapButton(comp.querySelector('#state').querySelector('#sv-action'));
    await h.flush();
    expect(comp.data.form).toBe(null);
    expect(h.text(comp)).toContain('姓名、身份证号、手机号');
    expect(h.text(comp)).toContain('《隐私政策》');
    // not ticked: agreeing does nothing
    h.tapButton(comp.querySelector('#consent-agree'));
    await h.flush();
    expect(fake.requests.some((r) => r.route === 'POST /me/consents')).toBe(false);
    h.tap(comp.querySelector('#consent-tick'));
    await h.flush();
    h.tapButton(comp.querySelector('#consent-agree'));
    await h.flush();
    const consents = fake.requests.filter((r) => r.route === 'POST /me/consents').map((r) => r.data);
    expect(consents).toEqual([
      { kind: 'terms', version: '2026-11' }, { kind: 'privacy', version: '2026-11' }, { kind: 'patient_data', version: '2026-11' },
    ]);
    expect(comp.data.consent).toBe(null);
    expect(comp.data.form.mode).toBe('add');
    expect(fake.requests.some((r) => r.route === 'POST /patients')).toBe(false);
  });

  test('refusing consent collects nothing; an older consent version asks again', async () => {
    fake.routes['GET /me'] = { ...fx.consentedMe, consents: fx.consentedMe.consents.map((c) => ({ ...c, version: '2025-01' })) };
    const comp = await h.mount(pageId);
    h.tapButton(comp.querySelector('#add'));
    await h.flush();
    expect(comp.data.consent).toEqual({ ticked: false });
    h.tapButton(comp.querySelector('#consent-cancel'));
    await h.flush();
    expect(comp.data.consent).toBe(null);
    expect(comp.data.form).toBe(null);
  });

  test('lists profiles with masked numbers only', async () => {
    const comp = await h.mount(pageId);
    const t = h.text(comp);
    expect(t).toContain('张三');
    expect(t).toContain('本人');
    expect(t).toContain('默认');
    expect(t).toContain('身份证 1101**********002X');
    expect(t).toContain('手机 138****5678');
    expect(t).toContain('女 76岁');
    expect(t).toContain('张小明');
    expect(t).toContain('子女');
    expect(t).toContain('还可添加3位就诊人');
  });

  test('empty state offers to add one', async () => {
    fake.routes['GET /patients'] = { items: [] };
    const comp = await h.mount(pageId);
    expect(h.text(comp)).toContain('还没有就诊人');
    h.tapButton(comp.querySelector('#state').querySelector('#sv-action'));
    await h.flush();
    expect(comp.data.form.mode).toBe('add');
    expect(comp.data.form.relation).toBe('self');
  });

  test('adding checks the ID checksum on the client before sending', async () => {
    const comp = await h.mount(pageId);
    h.tapButton(comp.querySelector('#add'));
    await h.flush();
    await fill(comp, { name: '王五', id: '110105194912310021', phone: '13800001111' });
    h.tap(comp.querySelectorAll('.relation')[1]);
    await h.flush();
    h.tapButton(comp.querySelector('#f-save'));
    await h.flush();
    expect(fake.requests.some((r) => r.route === 'POST /patients')).toBe(false);
    expect(comp.data.errors.id_number).toBe('身份证号校验位错误，请核对');
    expect(h.text(comp)).toContain('身份证号校验位错误');
    expect(h.toasts(fake)).toContain('身份证号校验位错误，请核对');
  });

  test('adding a valid profile posts it and reloads the list', async () => {
    const comp = await h.mount(pageId);
    h.tapButton(comp.querySelector('#add'));
    await h.flush();
    await fill(comp, { name: '王五', id: '11010519491231002x', phone: '13800001111' });
    h.tap(comp.querySelectorAll('.relation')[1]);
    await h.flush();
    h.tapButton(comp.querySelector('#f-save'));
    await h.flush();
    const post = fake.requests.find((r) => r.route === 'POST /patients');
    expect(post.data).toEqual({ name: '王五', id_number: '11010519491231002X', phone: '13800001111', relation: 'parent' });
    expect(comp.data.form).toBe(null);
    expect(fake.requests.filter((r) => r.route === 'GET /patients')).toHaveLength(2);
  });

  test('server field errors (422) go under the fields', async () => {
    fake.routes['POST /patients'] = h.apiError(422, 'VALIDATION_FAILED', '参数校验失败 / validation failed', {
      fields: { phone: '手机号格式不正确 / invalid phone' },
    });
    const comp = await h.mount(pageId);
    h.tapButton(comp.querySelector('#add'));
    await h.flush();
    await fill(comp, { name: '王五', id: '11010519491231002X', phone: '13800001111' });
    h.tap(comp.querySelectorAll('.relation')[4]);
    h.tapButton(comp.querySelector('#f-save'));
    await h.flush();
    expect(h.toasts(fake)).toContain('手机号格式不正确');
    expect(comp.data.errors.phone).toBe('手机号格式不正确');
    expect(comp.data.form).not.toBe(null);
  });

  test('editing sends only editable fields (the ID number cannot change)', async () => {
    const comp = await h.mount(pageId);
    h.tapButton(comp.querySelectorAll('.p-edit')[1]);
    await h.flush();
    expect(comp.querySelector('#f-id')).toBeFalsy();
    expect(h.text(comp)).toContain('1101**********0035（不可修改）');
    await fill(comp, { name: '张小明明' });
    h.tapButton(comp.querySelector('#f-save'));
    await h.flush();
    const patch = fake.requests.find((r) => r.route === 'PATCH /patients/p_2');
    expect(patch.data).toEqual({ name: '张小明明', relation: 'child' });
  });

  test('set default and delete (after confirming)', async () => {
    const comp = await h.mount(pageId);
    h.tapButton(comp.querySelectorAll('.p-default')[0]);
    await h.flush();
    expect(fake.requests.find((r) => r.route === 'PATCH /patients/p_2').data).toEqual({ is_default: true });
    h.tapButton(comp.querySelectorAll('.p-delete')[1]);
    await h.flush();
    expect(fake.wx.showModal).toHaveBeenCalled();
    expect(fake.requests.some((r) => r.route === 'DELETE /patients/p_2')).toBe(true);
  });

  test('five profiles: adding is refused on the client; LIMIT_REACHED from the server is a toast', async () => {
    const five = { items: [1, 2, 3, 4, 5].map((i) => ({ ...fx.patient2, id: `p_${i}`, is_default: i === 1 })) };
    fake.routes['GET /patients'] = five;
    const comp = await h.mount(pageId);
    expect(h.text(comp)).toContain('最多添加5位就诊人');
    comp.instance.onAdd();
    expect(comp.data.form).toBe(null);

    fake.routes['GET /patients'] = fx.patients;
    fake.routes['POST /patients'] = h.apiError(409, 'LIMIT_REACHED', '就诊人数量已达上限 / limit reached');
    const comp2 = await h.mount(pageId);
    h.tapButton(comp2.querySelector('#add'));
    await h.flush();
    await fill(comp2, { name: '王五', id: '11010519491231002X', phone: '13800001111' });
    h.tap(comp2.querySelectorAll('.relation')[4]);
    h.tapButton(comp2.querySelector('#f-save'));
    await h.flush();
    expect(h.toasts(fake)).toContain('就诊人数量已达上限');
  });

  test('error state and retry; pull-to-refresh', async () => {
    fake.routes['GET /patients'] = 'network';
    const comp = await h.mount(pageId);
    expect(comp.data.state).toBe('error');
    fake.routes['GET /patients'] = fx.patients;
    h.tapButton(h.retryButton(comp));
    await h.flush();
    expect(comp.data.state).toBe('ready');
    await comp.instance.onPullDownRefresh();
    expect(fake.wx.stopPullDownRefresh).toHaveBeenCalled();
  });
});
