import { defineConfig } from 'vite';

/**
 * A static site: `pnpm --filter @pelk/demo build` writes dist/, which works offline once served
 * (nothing is fetched from a CDN). The page is served cross-origin isolated (COOP/COEP), so the
 * WebAssembly backend's Web Worker may use SharedArrayBuffer.
 */
const isolation = { 'Cross-Origin-Opener-Policy': 'same-origin', 'Cross-Origin-Embedder-Policy': 'require-corp' };

export default defineConfig({
  // Workspace packages from source (no build step needed), as the tests do.
  resolve: { conditions: ['@pelk/source'] },
  worker: { format: 'es' },
  server: { headers: isolation, host: '127.0.0.1' },
  preview: { headers: isolation, host: '127.0.0.1' },
  build: { target: 'es2022', outDir: 'dist', emptyOutDir: true, reportCompressedSize: false },
});
