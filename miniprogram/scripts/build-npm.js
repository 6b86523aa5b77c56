#!/usr/bin/env node
// Build the npm dependencies (TDesign) into ./miniprogram_npm, as WeChat DevTools'
// 「工具 → 构建 npm」 does, offline: only miniprogram-ci's packNpmManually is used (its
// compile/upload parts need WeChat's servers and are never called here).
//   node scripts/build-npm.js               build (again)
//   node scripts/build-npm.js --if-missing  build only when miniprogram_npm/ is absent
const fs = require('fs');
const path = require('path');

const root = path.resolve(__dirname, '..');
const dist = path.join(root, 'miniprogram_npm', 'tdesign-miniprogram');

async function main() {
  if (process.argv.includes('--if-missing') && fs.existsSync(path.join(dist, 'button', 'button.js'))) {
    return;
  }
  const ci = require('miniprogram-ci'); // eslint-disable-line global-require
  const result = await ci.packNpmManually({
    packageJsonPath: path.join(root, 'package.json'),
    miniprogramNpmDistDir: root,
  });
  if (!fs.existsSync(path.join(dist, 'button', 'button.js'))) {
    throw new Error(`packNpmManually did not produce ${dist} (${JSON.stringify(result)})`);
  }
  console.log(`miniprogram_npm built: ${JSON.stringify(result)}`);
}

main().catch((err) => {
  console.error('build:npm failed:', err && err.stack ? err.stack : err);
  process.exit(1);
});
