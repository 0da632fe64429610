import react from '@vitejs/plugin-react';
import { defineConfig } from 'vite';

// The console is served by the query service from web/dist (docs/console.md): same origin, hashed assets
// under /assets, no inline script (the service's Content-Security-Policy allows only its own scripts).
export default defineConfig({
  plugins: [react()],
  build: {
    outDir: 'dist',
    assetsDir: 'assets',
    sourcemap: true,
    modulePreload: { polyfill: false },
    reportCompressedSize: true,
    // ECharts (components/echart.tsx) is one lazily loaded chunk of about 590 kB (193 KiB gzipped), fetched
    // only by pages that draw a chart; the first page's download is measured by `npm run size`.
    chunkSizeWarningLimit: 650,
  },
  server: {
    proxy: { '^/(runs|admin|tenants|projects|api|whoami|config|console|audit|alerts)/': 'http://127.0.0.1:3000' },
  },
});
