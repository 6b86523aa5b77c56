/**
 * Subscribe messages outside the booking tap (e.g. 叫号提醒 `queue_near`): template ids are
 * loaded when the page opens; ask() must be the first call of a tap handler (WeChat needs the
 * user's gesture) and posts what the patient accepted to POST /subscriptions.
 */
const api = require('./api');

const VALUES = ['accept', 'reject', 'ban', 'filter'];

/** {kind: template_id} for the given kinds (those the server knows); {} when unavailable. */
async function loadTemplates(kinds) {
  try {
    const { items } = await api.subscriptions.publicTemplates({ toast: false });
    const out = {};
    (items || []).forEach((t) => {
      if (kinds.includes(t.kind)) out[t.kind] = t.template_id;
    });
    return out;
  } catch (err) {
    return {};
  }
}

/** Ask for tmplIds (at most 3, WeChat's limit); resolves to the accepted ids. */
function ask(tmplIds) {
  const ids = (tmplIds || []).filter(Boolean).slice(0, 3);
  if (!ids.length) return Promise.resolve([]);
  return new Promise((resolve) => {
    wx.requestSubscribeMessage({
      tmplIds: ids,
      success: (choice) => {
        const results = {};
        ids.forEach((id) => {
          if (VALUES.includes(choice[id])) results[id] = choice[id];
        });
        const accepted = ids.filter((id) => results[id] === 'accept');
        if (!Object.keys(results).length) {
          resolve(accepted);
          return;
        }
        api.subscriptions.record(results, { toast: false }).catch(() => {}).then(() => resolve(accepted));
      },
      fail: () => resolve([]),
    });
  });
}

module.exports = { loadTemplates, ask };
