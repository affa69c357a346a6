/**
 * Fast checks of what `pnpm release:verify` checks slowly: every published package's manifest, and
 * the smoke test's float64 oracle against pelk's own GRU (so a rehearsal failure points at the
 * packaging, not at the oracle).
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CpuBackend } from '@pelk/backend-cpu';
import { evaluate } from '@pelk/core';
import { gru } from '@pelk/models';
import { describe, expect, it } from 'vitest';
import { gruReference, smokeProblem } from '../smoke/problem.mjs';
import { manifestProblems, publicPackages } from './packages.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

describe('published packages', () => {
  const packages = publicPackages(root);

  it('are the seven @pelk packages, versioned in lockstep', () => {
    expect(packages.map((p) => p.name).sort()).toEqual([
      '@pelk/backend-cpu',
      '@pelk/backend-tfjs-node',
      '@pelk/backend-wasm',
      '@pelk/backend-webgpu',
      '@pelk/conformance',
      '@pelk/core',
      '@pelk/models',
    ]);
    expect(new Set(packages.map((p) => p.manifest.version)).size).toBe(1);
  });

  for (const pkg of packages) {
    it(`${pkg.name}: license, repository, engines, publishConfig, sideEffects, prepack, exports`, () => {
      expect(manifestProblems(root, pkg)).toEqual([]);
    });
  }

  it('the root declares the same Node range the README states', () => {
    const range = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).engines.node as string;
    expect(range).toBe('^20.19.0 || >=22.12.0');
    expect(readFileSync(join(root, 'README.md'), 'utf8')).toContain('Node 20.19+ or 22.12+');
  });
});

describe('the release smoke test', () => {
  it('its float64 GRU oracle matches @pelk/models gru.torch evaluated sequentially on cpu', async () => {
    const { stateDict, inputs, T, H } = smokeProblem();
    const want = gruReference(stateDict, inputs);
    const result = await evaluate(gru.torch(stateDict), inputs, { backend: new CpuBackend(), dtype: 'float64', method: 'sequential' });
    const got = (await result.toArray()) as number[][];
    result.dispose();
    let maxError = 0;
    for (let t = 0; t < T; t++) for (let i = 0; i < H; i++) maxError = Math.max(maxError, Math.abs(got[t]![i]! - want[t]![i]!));
    // The same operations in a different order: a few float64 roundoffs per step, not growing (a contracting GRU).
    expect(maxError).toBeLessThan(1e-13);
  });
});
