// ESLint is part of `make test` (Makefile `miniprogram` target → npm run lint).
const fs = require('fs');
const path = require('path');
const { ESLint } = require('eslint');

const ROOT = path.resolve(__dirname, '..', '..');

describe('ESLint', () => {
  test('knows the mini-program globals and still catches an undefined name', async () => {
    const eslint = new ESLint({ cwd: ROOT });
    const code = 'App({}); Page({}); Component({}); getApp(); getCurrentPages(); wx.request({}); notDefinedAnywhere();\n';
    const [result] = await eslint.lintText(code, { filePath: path.join(ROOT, 'pages/x/index.js') });
    expect(result.messages.map((m) => `${m.ruleId}: ${m.message}`)).toEqual([
      "no-undef: 'notDefinedAnywhere' is not defined.",
    ]);
  });

  test('make test runs it', () => {
    const makefile = fs.readFileSync(path.join(ROOT, '..', 'Makefile'), 'utf8');
    const target = makefile.split('\nminiprogram:')[1].split('\n\n')[0];
    expect(target).toMatch(/npm run --silent lint/);
    expect(JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')).scripts.lint).toMatch(/^eslint /);
  });
});
