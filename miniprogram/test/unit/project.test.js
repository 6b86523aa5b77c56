// Static checks of the project as WeChat DevTools would open it.
const fs = require('fs');
const path = require('path');
const { ROOT } = require('../helpers');

const read = (p) => JSON.parse(fs.readFileSync(path.join(ROOT, p), 'utf8'));
const app = read('app.json');
const project = read('project.config.json');

describe('project layout', () => {
  test('project.config.json: placeholder appid, root, manual npm build into ./miniprogram_npm', () => {
    expect(['touristappid', 'wx0000000000000000']).toContain(project.appid);
    expect(project.miniprogramRoot).toBe('./');
    expect(project.setting.packNpmManually).toBe(true);
    expect(project.setting.packNpmRelationList).toEqual([{ packageJsonPath: './package.json', miniprogramNpmDistDir: './' }]);
    const ignored = project.packOptions.ignore.map((i) => i.value);
    expect(ignored).toEqual(expect.arrayContaining(['test', 'scripts', 'node_modules']));
  });

  test('tab bar: 首页 / 我的预约 / 我的', () => {
    expect(app.tabBar.list.map((t) => t.text)).toEqual(['首页', '我的预约', '我的']);
    app.tabBar.list.forEach((t) => expect(app.pages).toContain(t.pagePath));
    expect(app.pages[0]).toBe('pages/index/index');
  });

  test('every page has its four files and is built with Component()', () => {
    app.pages.forEach((page) => {
      ['js', 'json', 'wxml', 'wxss'].forEach((ext) => {
        expect(fs.existsSync(path.join(ROOT, `${page}.${ext}`))).toBe(true);
      });
      const js = fs.readFileSync(path.join(ROOT, `${page}.js`), 'utf8');
      expect(js).toMatch(/\bComponent\(\{/);
      expect(js).not.toMatch(/\bPage\(\{/);
    });
  });

  test('one unit test file per page', () => {
    app.pages.forEach((page) => {
      const name = page.split('/')[1];
      expect(fs.existsSync(path.join(ROOT, 'test', 'unit', `${name}.test.js`))).toBe(true);
    });
  });

  test('every usingComponents entry resolves (TDesign from miniprogram_npm after `npm run build:npm`)', () => {
    const jsons = app.pages.map((p) => `${p}.json`).concat(['components/state-view/index.json', 'components/date-strip/index.json']);
    jsons.forEach((file) => {
      const using = read(file).usingComponents || {};
      Object.values(using).forEach((target) => {
        const resolved = target.startsWith('/') ? path.join(ROOT, target) : path.join(ROOT, path.dirname(file), target);
        expect(fs.existsSync(`${resolved}.json`)).toBe(true);
      });
    });
  });

  test('pages that list things enable pull-to-refresh and handle it', () => {
    ['index', 'hospital', 'doctors', 'doctor', 'appointments', 'appointment-detail', 'patients', 'staff-today', 'staff-sessions', 'staff-doctors']
      .forEach((name) => {
        expect(read(`pages/${name}/index.json`).enablePullDownRefresh).toBe(true);
        expect(fs.readFileSync(path.join(ROOT, `pages/${name}/index.js`), 'utf8')).toMatch(/onPullDownRefresh\(\)/);
      });
  });
});
