/** Deterministic benchmark data. */
import type { ShapedArray } from '@pelk/core';
import { mulberry32 } from '@pelk/models';

/**
 * Standard-normal inputs `[B, T, I]` (or `[T, I]` when `batch` is 1) from a seeded generator
 * (mulberry32 + Box–Muller), so every run of a benchmark sees the same data.
 *
 * @example
 * ```ts
 * const inputs = randomInputs(1, 1000, 8, 7); // { data, shape: [1000, 8] }
 * ```
 */
export function randomInputs(batch: number, steps: number, size: number, seed: number): ShapedArray & { data: Float64Array } {
  const n = batch * steps * size;
  const data = new Float64Array(n);
  const uniform = mulberry32(seed);
  for (let i = 0; i < n; i += 2) {
    const r = Math.sqrt(-2 * Math.log(1 - uniform()));
    const th = 2 * Math.PI * uniform();
    data[i] = r * Math.cos(th);
    if (i + 1 < n) data[i + 1] = r * Math.sin(th);
  }
  return { data, shape: batch === 1 ? [steps, size] : [batch, steps, size] };
}
