/**
 * Vitest global setup (root vitest.config.ts): builds the WebAssembly kernels before any test file
 * imports them, so `pnpm test` on a fresh clone compiles them from assembly/ (a no-op when they
 * are up to date).
 */
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export function setup() {
  execFileSync(process.execPath, [fileURLToPath(new URL('./build-wasm.mjs', import.meta.url))], { stdio: 'inherit' });
}
