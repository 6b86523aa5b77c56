const idcard = require('../../utils/idcard');
const { NOW } = require('../helpers');

describe('utils/idcard (GB 11643-1999)', () => {
  test('domain.md examples: 11010519491231002X valid, 110105194912310021 invalid', () => {
    expect(idcard.isValid('11010519491231002X')).toBe(true);
    expect(idcard.isValid('110105194912310021')).toBe(false);
    expect(idcard.validate('110105194912310021').message).toBe('身份证号校验位错误，请核对');
  });

  test('birth date and gender are derived (17th digit odd → male)', () => {
    expect(idcard.validate('11010519491231002X')).toEqual({
      valid: true, number: '11010519491231002X', birthDate: '1949-12-31', gender: 'female',
    });
    const male = `11010520000101001${idcard.checkCharacter('11010520000101001')}`;
    expect(idcard.validate(male)).toMatchObject({ valid: true, birthDate: '2000-01-01', gender: 'male' });
  });

  test('checksum table 1 0 X 9 8 7 6 5 4 3 2', () => {
    expect(idcard.checkCharacter('11010519491231002')).toBe('X');
    expect(idcard.checkCharacter('44052418800101001')).toBe('4');
  });

  test('lower-case x and spaces are accepted', () => {
    expect(idcard.validate(' 11010519491231002x ').number).toBe('11010519491231002X');
  });

  test('format: 18 characters, 17 digits then digit or X', () => {
    ['', '1101051949123100', '1101051949123100212', 'A1010519491231002X', '1101051949123100X2'].forEach((v) => {
      expect(idcard.validate(v)).toEqual({ valid: false, message: '身份证号应为18位（17位数字加1位数字或X）' });
    });
  });

  test('birth date must be real and not in the future', () => {
    const fix = (first17) => first17 + idcard.checkCharacter(first17);
    expect(idcard.validate(fix('11010519490230002')).message).toBe('身份证号中的出生日期无效'); // Feb 30
    expect(idcard.validate(fix('11010518800101002')).message).toBe('身份证号中的出生日期无效'); // before 1890
    expect(idcard.validate(fix('11010520261202002'), NOW).message).toBe('身份证号中的出生日期无效'); // tomorrow
    expect(idcard.validate(fix('11010520261201002'), NOW).valid).toBe(true); // born today
  });

  test('masking as the server does: the province only, 11****************; 138****5678', () => {
    expect(idcard.maskIdNumber('11010519491231002X')).toBe('11****************');
    expect(idcard.maskPhone('13812345678')).toBe('138****5678');
    expect(idcard.maskPhone('123')).toBe('****');
  });
});
