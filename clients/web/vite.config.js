import { defineConfig } from 'vite';

// A static build: `npm run build` writes dist/ (never committed); host it anywhere the
// people using it trust (docs/web.md). The relay is configured in the app, not here.
export default defineConfig({
  base: './',
  build: { target: 'es2022', sourcemap: false },
  server: { host: '127.0.0.1' },
});
