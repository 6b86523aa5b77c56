/**
 * Chinese resident ID numbers (GB 11643-1999), the same rules as the server (domain.md):
 * 17 digits then a digit or X; checksum weights 7 9 10 5 8 4 2 1 6 3 7 9 10 5 8 4 2,
 * sum mod 11 indexes "10X98765432"; birth date = digits 7–14, a real date not in the
 * future; 17th digit odd → male. Masking keeps the province code (first 2) only.
 */
const WEIGHTS = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
const CHECK = '10X98765432';

function normalize(value) {
  return String(value == null ? '' : value).trim().toUpperCase();
}

/** The 18th character for the first 17 digits. */
function checkCharacter(first17) {
  let sum = 0;
  for (let i = 0; i < 17; i += 1) sum += Number(first17[i]) * WEIGHTS[i];
  return CHECK[sum % 11];
}

function pad(n) {
  return n < 10 ? `0${n}` : String(n);
}

/**
 * Check an ID number.
 * @returns {{valid: boolean, message?: string, number?: string, birthDate?: string, gender?: 'male'|'female'}}
 */
function validate(value, now = Date.now()) {
  const number = normalize(value);
  if (!/^\d{17}[\dX]$/.test(number)) {
    return { valid: false, message: '身份证号应为18位（17位数字加1位数字或X）' };
  }
  if (checkCharacter(number.slice(0, 17)) !== number[17]) {
    return { valid: false, message: '身份证号校验位错误，请核对' };
  }
  const y = Number(number.slice(6, 10));
  const m = Number(number.slice(10, 12));
  const d = Number(number.slice(12, 14));
  const date = new Date(Date.UTC(y, m - 1, d));
  const real = date.getUTCFullYear() === y && date.getUTCMonth() === m - 1 && date.getUTCDate() === d;
  // "today" in China (UTC+8), whatever the device's time zone
  const today = new Date(now + 8 * 3600 * 1000);
  const todayUtc = Date.UTC(today.getUTCFullYear(), today.getUTCMonth(), today.getUTCDate());
  if (!real || y < 1890 || date.getTime() > todayUtc) {
    return { valid: false, message: '身份证号中的出生日期无效' };
  }
  return {
    valid: true,
    number,
    birthDate: `${y}-${pad(m)}-${pad(d)}`,
    gender: Number(number[16]) % 2 === 1 ? 'male' : 'female',
  };
}

function isValid(value, now) {
  return validate(value, now).valid;
}

/** "11010519491231002X" → "11****************". */
function maskIdNumber(value) {
  // as the server masks (shared/idcard.py): the province code only, so that nothing shown
  // beside the birth date and gender can rebuild the number
  const s = normalize(value);
  if (s.length <= 2) return s.replace(/./g, '*');
  return s.slice(0, 2) + '*'.repeat(s.length - 2);
}

/** "13812345678" → "138****5678". */
function maskPhone(value) {
  const s = String(value == null ? '' : value).trim();
  return s.length >= 7 ? `${s.slice(0, 3)}****${s.slice(-4)}` : '****';
}

module.exports = { validate, isValid, checkCharacter, maskIdNumber, maskPhone, normalize };
