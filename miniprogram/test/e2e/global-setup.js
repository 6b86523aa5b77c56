module.exports = async () => {
  const missing = ['GUAHAO_GATEWAY_URL', 'GUAHAO_WECHAT_FAKE_URL'].filter((k) => !process.env[k]);
  if (missing.length) {
    console.log(`\n[e2e] skipped: ${missing.join(' and ')} not set `
      + '(start the system, then run with GUAHAO_GATEWAY_URL=http://127.0.0.1:8080 '
      + 'GUAHAO_WECHAT_FAKE_URL=<fake> [GUAHAO_STAFF_USERNAME=… GUAHAO_STAFF_PASSWORD=…] npm run test:e2e)\n');
  } else if (!process.env.GUAHAO_STAFF_USERNAME || !process.env.GUAHAO_STAFF_PASSWORD) {
    console.log('\n[e2e] staff journey skipped: GUAHAO_STAFF_USERNAME / GUAHAO_STAFF_PASSWORD not set\n');
  }
};
