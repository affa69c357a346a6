import { defineConfig } from 'tsdown';

export default defineConfig({
  entry: ['src/index.ts', 'src/references.ts', 'src/fixtures.ts'],
  format: 'esm',
  dts: true,
  clean: true,
  fixedExtension: false,
});
