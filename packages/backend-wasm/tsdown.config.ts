import { execFileSync } from 'node:child_process';
import { defineConfig } from 'tsdown';

// The kernels are compiled from assembly/ first (a no-op when up to date): every build and pack has them.
execFileSync(process.execPath, ['scripts/build-wasm.mjs'], { stdio: 'inherit', cwd: import.meta.dirname });

export default defineConfig({ entry: ['src/index.ts', './src/register.ts'], format: 'esm', dts: true, clean: true, fixedExtension: false });
