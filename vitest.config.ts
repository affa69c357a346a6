import { readFileSync, readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { defaultServerConditions } from 'vite';
import { defineConfig } from 'vitest/config';

// Tests run on `src` through the `@pelk/source` export condition: no build step needed.
const conditions = ['@pelk/source', ...defaultServerConditions];

const packageDirs = ['packages', 'apps', 'tooling'].flatMap((group) =>
  readdirSync(group, { withFileTypes: true })
    .filter((d) => d.isDirectory())
    .map((d) => join(group, d.name)),
);

// CI sets PELK_TEST_REPORT to a path: the JSON reporter writes the totals there for `.ci/run`.
const report = process.env.PELK_TEST_REPORT;

export default defineConfig({
  resolve: { conditions },
  ssr: { resolve: { conditions, externalConditions: conditions } },
  test: {
    reporters: report ? ['default', ['json', { outputFile: report }]] : ['default'],
    // The WebAssembly kernels are built from source (AssemblyScript) before any test imports them.
    globalSetup: [resolve('packages/backend-wasm/scripts/vitest-global-setup.mjs')],
    projects: packageDirs.map((dir) => ({
      extends: true,
      test: {
        name: JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')).name as string,
        root: dir,
        include: ['src/**/*.test.ts'],
        testTimeout: 60_000,
        hookTimeout: 60_000,
      },
    })),
  },
});
