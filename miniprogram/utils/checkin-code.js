/**
 * The check-in code: the appointment id in a QR code the patient shows at the desk; the
 * staff page scans it (wx.scanCode) and checks the appointment in. It identifies, it does
 * not authorise: only staff of the appointment's hospital can check it in (others get 404).
 */
const qrcode = require('qrcode-generator');

const PREFIX = 'guahao:checkin:';

function payload(appointmentId) {
  return `${PREFIX}${appointmentId}`;
}

/** The appointment id of a scanned code, or '' when it is not one of ours. */
function parse(text) {
  const value = String(text || '').trim();
  if (!value.startsWith(PREFIX)) return '';
  const id = value.slice(PREFIX.length);
  return /^[A-Za-z0-9_-]{1,64}$/.test(id) ? id : '';
}

/** QR modules as rows of booleans (dark = true), rendered as views by the page. */
function matrix(text) {
  const qr = qrcode(0, 'M');
  qr.addData(text);
  qr.make();
  const n = qr.getModuleCount();
  const rows = [];
  for (let r = 0; r < n; r += 1) {
    const row = [];
    for (let c = 0; c < n; c += 1) row.push(qr.isDark(r, c));
    rows.push(row);
  }
  return rows;
}

module.exports = { PREFIX, payload, parse, matrix };
