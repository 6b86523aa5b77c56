// The staff console: built into dist/ and served by the gateway at /console/ (gateway/static.py).
// No inline script or style ends up in index.html, so the gateway's strict CSP holds.
import { defineConfig } from 'vite';
import vue from '@vitejs/plugin-vue';

export default defineConfig({
  base: '/console/',
  plugins: [vue()],
  build: {
    outDir: 'dist',
    assetsDir: 'assets',
    emptyOutDir: true,
    sourcemap: false,
    // the libraries in their own chunk: it changes less often than the screens, so a
    // console update usually re-downloads only the small app chunk (assets are immutable)
    chunkSizeWarningLimit: 800,
    rolldownOptions: {
      output: {
        codeSplitting: { groups: [{ name: 'vendor', test: /node_modules/ }] },
      },
    },
  },
  server: {
    proxy: { '/api': 'http://127.0.0.1:8080' },
  },
});
