/**
 * pelk's own WGSL kernels for the WebGPU backend, run as tfjs-backend-webgpu programs: tensors in
 * and out are tfjs tensors on the given `WebGPUBackend` (float32, layout `[B, T, D]`, each
 * (batch, channel) an independent recurrence along T with stride D).
 *
 * All scans are work-efficient reduce-then-scan passes (no inter-workgroup waiting, so no
 * reliance on forward progress) with a bounded number of dispatches: with
 * `L = max(0, ⌈log_chunk T⌉ − 1)` reduce levels, `diagonalScan` and `denseScan` issue `2L + 1`
 * dispatches, `kalmanDiagonal` `2L + 1` (filter) or `4L + 2` (filter and smoother). The diagonal
 * and Kalman scans have two memory layouts (`KernelOptions.scanLayout`): direct, and staged
 * through workgroup memory so that reads and writes coalesce for small D.
 */
import type { WebGPUBackend } from '@tensorflow/tfjs-backend-webgpu';
import type { Tensor } from '@tensorflow/tfjs-core';
import { chunkedScan } from './chunked-scan.js';
import { denseChunkedScan } from './dense-scan.js';
import { diagonalAlgebra } from './diagonal-element.wgsl.js';
import { kalmanFilterAlgebra } from './kalman-filter-element.wgsl.js';
import { kalmanSmootherAlgebra } from './kalman-smoother-element.wgsl.js';
import { checkChunk, emptyTensor, expectShape } from './program.js';
import type { ScanLayout } from './scan-kernel.wgsl.js';

export type { ScanLayout } from './scan-kernel.wgsl.js';

export { reduceLevels } from './chunked-scan.js';

/** Options of the kernels. */
export interface KernelOptions {
  /**
   * Time steps per chunk handled by one invocation (or one group of invocations for dense
   * scans), ≥ 2. Default 32 for the diagonal scan and the Kalman kernels, 16 for the dense scan.
   * Each recursion level is `chunk` times shorter, so tiny values (2, 3) exercise many levels.
   */
  chunk?: number;
  /**
   * Dense scan only, for testing: force the reduce kernel's workgroup-memory (`true`) or
   * global-memory (`false`) variant. Default: workgroup memory whenever it fits the device limit.
   */
  denseWorkgroupMemory?: boolean;
  /**
   * Memory layout of the diagonal and Kalman scans (see `ScanLayout`): default `'auto'`, staged
   * through workgroup memory for D < 32 on a GPU, direct otherwise and on CPU adapters.
   */
  scanLayout?: ScanLayout;
}

/** Default chunk of the diagonal scan and the Kalman kernels. */
export const DEFAULT_CHUNK = 32;
/** Default chunk of the dense scan (its reduce costs D³ per step, so shorter chunks keep groups busy). */
export const DEFAULT_DENSE_CHUNK = 16;

function chunkOf(options: KernelOptions | undefined, fallback: number): number {
  return checkChunk(options?.chunk ?? fallback);
}

/**
 * Diagonal linear recurrence `s_t = a_t ⊙ s_{t−1} + b_t`, `s_0 = init`, per (batch, channel).
 * `reverse`: `s_t = a_t ⊙ s_{t+1} + b_t`, `s_{T+1} = init`.
 *
 * @param backend - the tfjs WebGPU backend owning every tensor.
 * @param a - `[B, T, D]` float32.
 * @param b - `[B, T, D]` float32.
 * @param init - `[B, D]` float32.
 * @returns `s_1..s_T` as `[B, T, D]` (the caller disposes it).
 */
export function diagonalScan(
  backend: WebGPUBackend,
  a: Tensor,
  b: Tensor,
  init: Tensor,
  reverse: boolean,
  options?: KernelOptions,
): Tensor {
  const [B, T, D] = expectShape('a', a, [-1, -1, -1]);
  expectShape('b', b, [B, T, D]);
  expectShape('init', init, [B, D]);
  const chunk = chunkOf(options, DEFAULT_CHUNK);
  if (B * T * D === 0) return emptyTensor(backend, [B, T, D]);
  const [s] = chunkedScan(backend, diagonalAlgebra, { B, T, D, reverse, chunk, raw: [a, b], seed: [init], layout: options?.scanLayout });
  return s;
}

/**
 * Dense linear recurrence `s_t = A_t s_{t−1} + b_t`, `s_0 = init`, per batch entry
 * (`A[b, t, i, j]` multiplies `s[j]` into row `i`). `reverse`: `s_t = A_t s_{t+1} + b_t`,
 * `s_{T+1} = init`.
 *
 * @param backend - the tfjs WebGPU backend owning every tensor.
 * @param A - `[B, T, D, D]` float32.
 * @param b - `[B, T, D]` float32.
 * @param init - `[B, D]` float32.
 * @returns `[B, T, D]` (the caller disposes it).
 */
export function denseScan(
  backend: WebGPUBackend,
  A: Tensor,
  b: Tensor,
  init: Tensor,
  reverse: boolean,
  options?: KernelOptions,
): Tensor {
  const [B, T, D] = expectShape('A', A, [-1, -1, -1, -1]);
  expectShape('A', A, [B, T, D, D]);
  expectShape('b', b, [B, T, D]);
  expectShape('init', init, [B, D]);
  const chunk = chunkOf(options, DEFAULT_DENSE_CHUNK);
  if (B * T * D === 0) return emptyTensor(backend, [B, T, D]);
  return denseChunkedScan(backend, {
    B,
    T,
    D,
    reverse,
    chunk,
    A,
    b,
    init,
    workgroupMemory: options?.denseWorkgroupMemory,
  });
}

/**
 * Scalar-per-channel Kalman filter, or filter plus Rauch–Tung–Striebel smoother, as
 * `ComputeBackend.kalmanDiagonal`: `x_0 = init` known exactly,
 * `x_t = F_t x_{t−1} + b_t + N(0, q)`, `y_t = x_t + N(0, r)`, per (batch, channel).
 * The filter is one chunked scan over the associative 5-tuple elements (ALGORITHMS.md §6); the
 * smoother a second, reverse, chunked scan over `(E, g, L)` elements built from the filtered
 * moments.
 *
 * @param backend - the tfjs WebGPU backend owning every tensor.
 * @param F - transitions `[B, T, D]`.
 * @param bias - `b_t`, `[B, T, D]`.
 * @param y - observations `[B, T, D]`.
 * @param init - `x_0`, `[B, D]`.
 * @param q - process-noise variance, > 0.
 * @param r - observation-noise variance, > 0.
 * @param smooth - return smoothed instead of filtered moments.
 * @returns means and variances of `x_1..x_T`, each `[B, T, D]` (the caller disposes them).
 */
export function kalmanDiagonal(
  backend: WebGPUBackend,
  F: Tensor,
  bias: Tensor,
  y: Tensor,
  init: Tensor,
  q: number,
  r: number,
  smooth: boolean,
  options?: KernelOptions,
): { mean: Tensor; variance: Tensor } {
  const [B, T, D] = expectShape('F', F, [-1, -1, -1]);
  expectShape('bias', bias, [B, T, D]);
  expectShape('y', y, [B, T, D]);
  expectShape('init', init, [B, D]);
  if (!(q > 0 && Number.isFinite(q))) throw new RangeError(`pelk webgpu: q must be positive and finite, got ${q}`);
  if (!(r > 0 && Number.isFinite(r))) throw new RangeError(`pelk webgpu: r must be positive and finite, got ${r}`);
  const chunk = chunkOf(options, DEFAULT_CHUNK);
  if (B * T * D === 0) return { mean: emptyTensor(backend, [B, T, D]), variance: emptyTensor(backend, [B, T, D]) };
  const base = { B, T, D, chunk, layout: options?.scanLayout };
  const [mean, variance] = chunkedScan(backend, kalmanFilterAlgebra, { ...base, reverse: false, raw: [F, bias, y], seed: [init], floats: { q, r } });
  if (!smooth) return { mean, variance };
  try {
    const [sm, sv] = chunkedScan(backend, kalmanSmootherAlgebra, { ...base, reverse: true, raw: [mean, variance, F, bias], seed: [], floats: { q } });
    return { mean: sm, variance: sv };
  } finally {
    mean.dispose();
    variance.dispose();
  }
}
