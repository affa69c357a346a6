/**
 * `@pelk/conformance/reference`: the float64 host references on their own — plain loops with no
 * imports at all (no vitest, no Node built-ins, no pelk package), so test pages in a browser,
 * benchmarks and other harnesses can compare against the same oracles the suite uses.
 *
 * @example
 * ```ts
 * import { linearRecurrence, maxAbsDiff } from '@pelk/conformance/reference';
 * const want = linearRecurrence(a, b, s0, B, T, D, false);
 * ```
 */
export {
  type DiagonalKalmanReference,
  diagonalKalmanReference,
  type KalmanCase,
  type KalmanReference,
  kalmanReference,
  levenbergMarquardtStep,
} from './kalman-reference.js';
export { linearRecurrence, maxAbs, maxAbsDiff, randomArray } from './reference.js';
