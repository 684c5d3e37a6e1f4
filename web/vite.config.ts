import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

const root = fileURLToPath(new URL('.', import.meta.url));

/**
 * The explorer page: `npm run build:web` writes web/dist, which the local stack serves at `/`.
 * `npx vite --config web/vite.config.ts` serves it with hot reload, proxying /v1 to `npm start`'s API.
 */
export default defineConfig({
  root,
  base: '/',
  logLevel: 'warn',
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    target: 'es2022',
    sourcemap: false,
    chunkSizeWarningLimit: 400,
  },
  server: {
    proxy: { '/v1': process.env.VICINITY_API ?? 'http://127.0.0.1:3000' },
  },
});
