/**
 * The vitest-free entries: `@pelk/conformance/reference` imports nothing outside its own plain
 * loops (so browser pages and harnesses can load it), `@pelk/conformance/fixtures` only Node
 * built-ins; and the batched diagonal Kalman reference agrees with the dense one.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import * as fixtures from '@pelk/conformance/fixtures';
import * as reference from '@pelk/conformance/reference';
import * as main from './index.js';

/** The module specifiers a source file imports or re-exports from. */
function specifiers(file: string): string[] {
  const text = readFileSync(new URL(file, import.meta.url), 'utf8');
  return [...text.matchAll(/^\s*(?:import|export)\b[^'"]*?\bfrom\s+['"]([^'"]+)['"]/gm), ...text.matchAll(/\bimport\s*\(\s*['"]([^'"]+)['"]/g)].map((m) => m[1]);
}

describe('vitest-free entries', () => {
  it('./reference imports only its own loop modules, which import nothing', () => {
    expect(specifiers('./references.ts').sort()).toEqual(['./kalman-reference.js', './reference.js']);
    expect(specifiers('./reference.ts')).toEqual([]);
    expect(specifiers('./kalman-reference.ts')).toEqual([]);
  });

  it('./fixtures imports only Node built-ins', () => {
    for (const s of specifiers('./fixtures.ts')) expect(s).toMatch(/^node:/);
  });

  it('the main entry re-exports both', () => {
    for (const [name, value] of [...Object.entries(reference), ...Object.entries(fixtures)]) {
      expect((main as Record<string, unknown>)[name], name).toBe(value);
    }
    expect(fixtures.FIXTURE_NAMES.map((n) => (fixtures.loadFixture(n) as { cell?: unknown }).cell !== undefined)).toEqual(fixtures.FIXTURE_NAMES.map(() => true));
  });
});

describe('diagonalKalmanReference', () => {
  it('equals kalmanReference on the same model with diagonal transitions', () => {
    const B = 2;
    const T = 7;
    const D = 3;
    const F = reference.randomArray(B * T * D, 1, 1.3);
    const b = reference.randomArray(B * T * D, 2);
    const y = reference.randomArray(B * T * D, 3, 2);
    const s0 = reference.randomArray(B * D, 4);
    for (const r of [0.5, 100]) {
      const got = reference.diagonalKalmanReference(F, b, y, s0, { B, T, D }, 1, r);
      for (let bi = 0; bi < B; bi++) {
        const dense = new Float64Array(T * D * D);
        for (let k = 0; k < T * D; k++) dense[k * D + (k % D)] = F[bi * T * D + k];
        const row = (x: Float64Array) => x.subarray(bi * T * D, (bi + 1) * T * D);
        const want = reference.kalmanReference({ T, D, F: dense, b: row(b), y: row(y), s0: s0.subarray(bi * D, (bi + 1) * D), q: 1, r });
        const diag = (cov: Float64Array) => Float64Array.from({ length: T * D }, (_, k) => cov[Math.floor(k / D) * D * D + (k % D) * (D + 1)]);
        // Same arithmetic per channel up to the dense solve's rounding.
        expect(reference.maxAbsDiff(row(got.filterMean), want.filterMean)).toBeLessThan(1e-12);
        expect(reference.maxAbsDiff(row(got.smoothMean), want.smoothMean)).toBeLessThan(1e-12);
        expect(reference.maxAbsDiff(row(got.filterVariance), diag(want.filterCov))).toBeLessThan(1e-12);
        expect(reference.maxAbsDiff(row(got.smoothVariance), diag(want.smoothCov))).toBeLessThan(1e-12);
        // Not vacuous: the smoother moves the means.
        expect(reference.maxAbsDiff(row(got.smoothMean), row(got.filterMean))).toBeGreaterThan(1e-3);
      }
    }
  });
});
