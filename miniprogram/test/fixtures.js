/**
 * Gateway bodies for the page tests, around 2026-12-01 (helpers.NOW). They are generated from
 * the API's reply contracts (pydantic models) by `tests/miniprogram_fixtures.py` into
 * fixtures.json — never typed here by hand — and pinned by tests/test_miniprogram_fixtures.py.
 */
const generated = require('./fixtures.json');

const clone = (value) => JSON.parse(JSON.stringify(value));

/** Half-hour slices from 08:00 shaped like a generated slot (status: open, or full at 0). */
function slots(prefix, remaining) {
  return remaining.map((r, i) => {
    const start = 8 * 60 + 30 * i;
    const end = start + 30;
    const hhmm = (m) => `${String(Math.floor(m / 60)).padStart(2, '0')}:${String(m % 60).padStart(2, '0')}`;
    return {
      ...clone(generated.slot), id: `${prefix}_s${i}`, start: hhmm(start), end: hhmm(end), capacity: 3, remaining: r, status: r > 0 ? 'open' : 'full',
    };
  });
}

/** A token pair like the generated one, numbered `n`; `extra` goes into `user`. */
const tokenPair = (n, extra = {}) => {
  const pair = clone(generated.tokenPair);
  return {
    ...pair,
    access_token: `at-${n}`,
    refresh_token: `rt-${n}-xxxxxxxxxxxxxxxx`,
    user: { ...pair.user, ...extra },
  };
};

module.exports = {
  ...clone(generated),
  slots,
  tokenPair,
};
