/**
 * Horizontal strip of dates. `days`: [{date: 'YYYY-MM-DD', week: '今天', day: '12-01', mark: '有号'}],
 * `value`: the selected date. Event: change {date}.
 */
Component({
  properties: {
    days: { type: Array, value: [] },
    value: { type: String, value: '' },
  },
  methods: {
    onPick(e) {
      const { date } = e.currentTarget.dataset;
      if (date !== this.data.value) this.triggerEvent('change', { date });
    },
  },
});
