/**
 * Linear recurrences `s_t = A_t s_{t−1} + b_t` solved as work-efficient associative scans
 * (Blelloch up-sweep / down-sweep), the same tree a GPU kernel walks, so the CPU backend's results
 * carry the same rounding structure as parallel hardware.
 *
 * Elements are affine maps `(A, b)`; combining an earlier `(A_i, b_i)` with a later `(A_j, b_j)` gives
 * `(A_j A_i, A_j b_i + b_j)`. For `n` elements (any n, no padding):
 * - up-sweep, stride s = 1, 2, 4, …: the node ending at `j = 2s(k+1) − 1` stores its aggregate at
 *   `e = min(j, n − 1)`; its left child's aggregate sits at `i = j − s` (skipped when `i ≥ n − 1`,
 *   where the node is just its left child, already at `e`).
 * - down-sweep, stride from the top down, carrying the state entering each node (`S[n−1] = s_0`):
 *   the left child inherits the node's incoming state; the right child gets `A_i·S + b_i`.
 * - output: `s_k` (inclusive) is the state entering element `k + 1`; the last one is the root
 *   aggregate applied to `s_0`.
 * Work: ≈ 2n combines (dense: n matrix products + 2n matrix–vector products). The down-sweep only
 * moves states, never matrices.
 *
 * Layouts: diagonal — `a`, `b` `[T, D]` per batch entry; dense — `A` `[T, D, D]`, `b` `[T, D]`.
 * Work buffers are passed in so the caller decides where memory comes from.
 */
import type { HostArray } from '@pelk/core';
import { matvec } from './linalg.js';

/** Largest power of two strictly below n (0 for n ≤ 1): the top stride of the tree. */
function topStride(n: number): number {
  let s = 1;
  while (s * 2 < n) s *= 2;
  return n > 1 ? s : 0;
}

/**
 * Diagonal scan for one batch entry, in place on `wa`, `wb` (copies of `a`, `b` in time order);
 * writes the states into `out` (`[T, D]`, time order) using `ws` (`[T, D]`) as scratch.
 */
export function diagonalScanInPlace(
  wa: HostArray,
  wb: HostArray,
  init: HostArray,
  initOff: number,
  out: HostArray,
  ws: HostArray,
  n: number,
  D: number,
): void {
  // Up-sweep.
  for (let s = 1; s < n; s *= 2) {
    for (let j = 2 * s - 1; j - s < n - 1; j += 2 * s) {
      const i = (j - s) * D;
      const e = Math.min(j, n - 1) * D;
      for (let d = 0; d < D; d++) {
        const ae = wa[e + d];
        wb[e + d] = ae * wb[i + d] + wb[e + d];
        wa[e + d] = ae * wa[i + d];
      }
    }
  }
  // Down-sweep over states.
  const last = (n - 1) * D;
  for (let d = 0; d < D; d++) ws[last + d] = init[initOff + d];
  for (let s = topStride(n); s >= 1; s = s >> 1) {
    for (let j = 2 * s - 1; j - s < n - 1; j += 2 * s) {
      const i = (j - s) * D;
      const e = Math.min(j, n - 1) * D;
      for (let d = 0; d < D; d++) {
        const incoming = ws[e + d];
        ws[i + d] = incoming;
        ws[e + d] = wa[i + d] * incoming + wb[i + d];
      }
    }
  }
  // Inclusive states: s_k is the state entering k + 1; the last is the root applied to s_0.
  for (let k = 0; k < n - 1; k++) {
    const o = k * D;
    const src = o + D;
    for (let d = 0; d < D; d++) out[o + d] = ws[src + d];
  }
  for (let d = 0; d < D; d++) out[last + d] = wa[last + d] * init[initOff + d] + wb[last + d];
}

/**
 * Dense scan for one batch entry, in place on `wA` (`[T, D, D]`) and `wb` (`[T, D]`); writes states
 * into `out` (`[T, D]`). `ws` is `[T, D]` scratch; `tmpM` `[D, D]` and `tmpV` `[D]` hold one
 * product each.
 */
export function denseScanInPlace(
  wA: HostArray,
  wb: HostArray,
  init: HostArray,
  initOff: number,
  out: HostArray,
  ws: HostArray,
  tmpM: HostArray,
  tmpV: HostArray,
  n: number,
  D: number,
): void {
  const DD = D * D;
  for (let s = 1; s < n; s *= 2) {
    for (let j = 2 * s - 1; j - s < n - 1; j += 2 * s) {
      const i = j - s;
      const e = Math.min(j, n - 1);
      // b_e ← A_e b_i + b_e (with the old A_e), then A_e ← A_e A_i.
      matvec(wA, e * DD, wb, i * D, tmpV, 0, D);
      for (let d = 0; d < D; d++) wb[e * D + d] += tmpV[d];
      squareMatmul(wA, e * DD, wA, i * DD, tmpM, D);
      wA.set(tmpM, e * DD);
    }
  }
  const last = n - 1;
  for (let d = 0; d < D; d++) ws[last * D + d] = init[initOff + d];
  for (let s = topStride(n); s >= 1; s = s >> 1) {
    for (let j = 2 * s - 1; j - s < n - 1; j += 2 * s) {
      const i = j - s;
      const e = Math.min(j, n - 1);
      for (let d = 0; d < D; d++) {
        tmpV[d] = ws[e * D + d];
        ws[i * D + d] = tmpV[d];
      }
      matvec(wA, i * DD, tmpV, 0, ws, e * D, D);
      for (let d = 0; d < D; d++) ws[e * D + d] += wb[i * D + d];
    }
  }
  for (let k = 0; k < n - 1; k++) {
    for (let d = 0; d < D; d++) out[k * D + d] = ws[(k + 1) * D + d];
  }
  matvec(wA, last * DD, init, initOff, out, last * D, D);
  for (let d = 0; d < D; d++) out[last * D + d] += wb[last * D + d];
}

/**
 * `out = x · y` for `D×D` row-major matrices (`out` must not alias `x` or `y`). Four rows of `y`
 * are folded into each pass over an output row, so each output element is loaded and stored a
 * quarter as often as in the plain i-k-j loop.
 */
function squareMatmul(x: HostArray, xOff: number, y: HostArray, yOff: number, out: HostArray, D: number): void {
  for (let r = 0; r < D; r++) {
    const o = r * D;
    const xr = xOff + r * D;
    let k = 0;
    {
      // First pass initialises the row.
      const v0 = x[xr];
      const y0 = yOff;
      for (let c = 0; c < D; c++) out[o + c] = v0 * y[y0 + c];
      k = 1;
    }
    for (; k + 3 < D; k += 4) {
      const v0 = x[xr + k];
      const v1 = x[xr + k + 1];
      const v2 = x[xr + k + 2];
      const v3 = x[xr + k + 3];
      const y0 = yOff + k * D;
      const y1 = y0 + D;
      const y2 = y1 + D;
      const y3 = y2 + D;
      for (let c = 0; c < D; c++) out[o + c] += v0 * y[y0 + c] + v1 * y[y1 + c] + v2 * y[y2 + c] + v3 * y[y3 + c];
    }
    for (; k < D; k++) {
      const v = x[xr + k];
      const yr = yOff + k * D;
      for (let c = 0; c < D; c++) out[o + c] += v * y[yr + c];
    }
  }
}
