/** Realistic gateway bodies (api.md shapes), around 2026-12-01 (helpers.NOW). */
const hospital = {
  id: 'h_1', name: '协和示范医院', address: '北京市东城区帅府园1号', phone: '010-00000000', level: '三级甲等',
};
const hospitalDetail = {
  ...hospital,
  rules: {
    window_days: 7,
    release_time: '08:00',
    same_day_stop_time: { am: '11:30', pm: '16:30', evening: '20:30' },
    cancel_before_hours: 2,
    per_department_per_day: 1,
    max_active: 5,
    no_show_limit: 3,
    no_show_window_days: 90,
    ban_days: 30,
  },
};
const hospitals = { items: [hospital, { id: 'h_2', name: '第二人民医院', address: '上海市黄浦区', phone: '021-1', level: '三级乙等' }] };
const departments = {
  items: [
    {
      id: 'dep_internal', name: '内科', parent_id: null,
      children: [
        { id: 'dep_cardio', name: '心血管内科', parent_id: 'dep_internal', children: [] },
        { id: 'dep_gastro', name: '消化内科', parent_id: 'dep_internal', children: [] },
      ],
    },
    {
      id: 'dep_surgery', name: '外科', parent_id: null,
      children: [{ id: 'dep_ortho', name: '骨科', parent_id: 'dep_surgery', children: [] }],
    },
    { id: 'dep_er', name: '急诊科', parent_id: null, children: [] },
  ],
};
const doctor = {
  id: 'doc_1', name: '张明华', title: '主任医师', department_id: 'dep_cardio', hospital_id: 'h_1',
  specialty: '高血压、冠心病、心力衰竭', intro: '从事心血管内科临床工作三十年。', fee_cents: 10000, published: true,
  next_available_date: '2026-12-02',
};
const doctors = {
  items: [
    doctor,
    { id: 'doc_2', name: '李静', title: '副主任医师', department_id: 'dep_cardio', hospital_id: 'h_1', specialty: '心律失常', fee_cents: 5050, published: true, next_available_date: null },
  ],
};

function slots(prefix, remaining) {
  return remaining.map((r, i) => ({
    id: `${prefix}_s${i}`,
    start: `0${8 + Math.floor(i / 2)}:${i % 2 ? '30' : '00'}`.slice(-5),
    end: `0${8 + Math.floor((i + 1) / 2)}:${(i + 1) % 2 ? '30' : '00'}`.slice(-5),
    capacity: 3,
    remaining: r,
  }));
}

const schedules = {
  items: [
    { id: 'sch_1_am', doctor_id: 'doc_1', date: '2026-12-01', session: 'am', status: 'closed', release_at: null, fee_cents: 10000, slots: slots('sch_1_am', [0]) },
    { id: 'sch_2_am', doctor_id: 'doc_1', date: '2026-12-02', session: 'am', status: 'open', release_at: null, fee_cents: 10000, slots: slots('sch_2_am', [2, 0, 1]) },
    { id: 'sch_2_pm', doctor_id: 'doc_1', date: '2026-12-02', session: 'pm', status: 'full', release_at: null, fee_cents: 10000, slots: slots('sch_2_pm', [0, 0]) },
    { id: 'sch_2_ev', doctor_id: 'doc_1', date: '2026-12-02', session: 'evening', status: 'stopped', release_at: null, fee_cents: 10000, slots: slots('sch_2_ev', [3]) },
    { id: 'sch_8_am', doctor_id: 'doc_1', date: '2026-12-08', session: 'am', status: 'not_released', release_at: '2026-12-02T08:00:00+08:00', fee_cents: 10000, slots: slots('sch_8_am', [3, 3]) },
  ],
};

const patient = {
  id: 'p_1', name: '张三', id_number_masked: '1101**********002X', gender: 'female', birth_date: '1949-12-31',
  phone_masked: '138****5678', relation: 'self', is_default: true,
};
const patient2 = {
  id: 'p_2', name: '张小明', id_number_masked: '1101**********0035', gender: 'male', birth_date: '2015-06-01',
  phone_masked: '139****0000', relation: 'child', is_default: false,
};
const patients = { items: [patient, patient2] };

const appointment = {
  id: 'a_1', status: 'booked', seq_no: 3, hospital_id: 'h_1', slot_id: 'sch_2_am_s0', schedule_id: 'sch_2_am',
  doctor: { id: 'doc_1', name: '张明华', title: '主任医师' },
  department: { id: 'dep_cardio', name: '心血管内科' },
  date: '2026-12-02', session: 'am', start: '08:00', end: '08:30', fee_cents: 10000,
  patient: { id: 'p_1', name: '张三', id_number_masked: '1101**********002X' },
  cancel_deadline: '2026-12-02T06:00:00+08:00', created_at: '2026-12-01T09:00:03+08:00',
  cancelled_by: null, reason: null,
};

const templates = {
  items: [
    { kind: 'booking_confirmed', template_id: 'TPL_CONFIRMED' },
    { kind: 'appointment_cancelled', template_id: 'TPL_CANCELLED' },
    { kind: 'appointment_moved', template_id: 'TPL_MOVED' },
    { kind: 'visit_reminder', template_id: 'TPL_REMINDER' },
    { kind: 'waitlist_promoted', template_id: 'TPL_WAITLIST' },
  ],
};

const consentedMe = {
  id: 'u_1', role: 'patient', hospital_id: null,
  consents: ['patient_data', 'privacy', 'terms'].map((kind) => ({ kind, version: '2026-11', at: '2026-11-30T10:00:00+08:00' })),
};

const tokenPair = (n, extra = {}) => ({
  access_token: `at-${n}`, refresh_token: `rt-${n}-xxxxxxxxxxxxxxxx`, token_type: 'Bearer', expires_in: 900,
  user: { id: 'u_1', role: 'patient', ...extra },
});

module.exports = {
  hospital, hospitalDetail, hospitals, departments, doctor, doctors, schedules, slots,
  patient, patient2, patients, appointment, templates, tokenPair, consentedMe,
};
