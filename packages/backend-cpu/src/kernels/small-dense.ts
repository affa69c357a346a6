/**
 * Small dense linear algebra on row-major D×D blocks inside larger arrays (offsets everywhere, no
 * allocation): products, LU factorisation with partial pivoting, and solves — the Kalman kernels
 * solve linear systems instead of forming inverses.
 */
import type { HostArray } from '@pelk/core';

/** `out = a · b` (`a` `[M, K]`, `b` `[K, N]`, or `bᵀ` when `transB` with `b` `[N, K]`). `out` must not alias. */
export function mm(
  out: HostArray,
  oOff: number,
  a: HostArray,
  aOff: number,
  b: HostArray,
  bOff: number,
  M: number,
  K: number,
  N: number,
  transB = false,
): void {
  for (let i = 0; i < M; i++) {
    for (let j = 0; j < N; j++) {
      let s = 0;
      if (transB) for (let k = 0; k < K; k++) s += a[aOff + i * K + k] * b[bOff + j * K + k];
      else for (let k = 0; k < K; k++) s += a[aOff + i * K + k] * b[bOff + k * N + j];
      out[oOff + i * N + j] = s;
    }
  }
}

/** `outᵀ · b` with `a` `[K, M]` (i.e. `aᵀ b`), `b` `[K, N]` → `[M, N]`. */
export function mmTransA(out: HostArray, oOff: number, a: HostArray, aOff: number, b: HostArray, bOff: number, K: number, M: number, N: number): void {
  for (let i = 0; i < M; i++) {
    for (let j = 0; j < N; j++) {
      let s = 0;
      for (let k = 0; k < K; k++) s += a[aOff + k * M + i] * b[bOff + k * N + j];
      out[oOff + i * N + j] = s;
    }
  }
}

/** In-place LU factorisation with partial pivoting of the D×D block at `off`; row swaps in `piv`. */
export function luFactor(a: Float64Array, off: number, piv: Int32Array, D: number): void {
  for (let k = 0; k < D; k++) {
    let p = k;
    let best = Math.abs(a[off + k * D + k]);
    for (let r = k + 1; r < D; r++) {
      const v = Math.abs(a[off + r * D + k]);
      if (v > best) {
        best = v;
        p = r;
      }
    }
    piv[k] = p;
    if (p !== k) {
      for (let c = 0; c < D; c++) {
        const t = a[off + k * D + c];
        a[off + k * D + c] = a[off + p * D + c];
        a[off + p * D + c] = t;
      }
    }
    const pivot = a[off + k * D + k];
    for (let r = k + 1; r < D; r++) {
      const f = (a[off + r * D + k] /= pivot);
      if (f === 0) continue;
      for (let c = k + 1; c < D; c++) a[off + r * D + c] -= f * a[off + k * D + c];
    }
  }
}

/** Swaps rows `k` and `p` of the `[·, nrhs]` block at `bOff` (the LU row permutation). */
function swapRows(b: Float64Array, bOff: number, nrhs: number, k: number, p: number): void {
  if (p === k) return;
  for (let c = 0; c < nrhs; c++) {
    const t = b[bOff + k * nrhs + c];
    b[bOff + k * nrhs + c] = b[bOff + p * nrhs + c];
    b[bOff + p * nrhs + c] = t;
  }
}

/** Solves `A X = B` in place on `B` (`[D, nrhs]` row-major at `bOff`) with `A`'s LU factors. */
export function luSolve(lu: Float64Array, off: number, piv: Int32Array, D: number, b: Float64Array, bOff: number, nrhs: number): void {
  for (let k = 0; k < D; k++) swapRows(b, bOff, nrhs, k, piv[k]);
  for (let r = 1; r < D; r++) {
    for (let k = 0; k < r; k++) {
      const f = lu[off + r * D + k];
      if (f === 0) continue;
      for (let c = 0; c < nrhs; c++) b[bOff + r * nrhs + c] -= f * b[bOff + k * nrhs + c];
    }
  }
  for (let r = D - 1; r >= 0; r--) {
    for (let k = r + 1; k < D; k++) {
      const f = lu[off + r * D + k];
      if (f === 0) continue;
      for (let c = 0; c < nrhs; c++) b[bOff + r * nrhs + c] -= f * b[bOff + k * nrhs + c];
    }
    const d = lu[off + r * D + r];
    for (let c = 0; c < nrhs; c++) b[bOff + r * nrhs + c] /= d;
  }
}

/** Solves `Aᵀ X = B` in place on `B` with `A`'s LU factors (`Aᵀ = Uᵀ Lᵀ Pᵀ`... applied in reverse). */
export function luSolveTransposed(lu: Float64Array, off: number, piv: Int32Array, D: number, b: Float64Array, bOff: number, nrhs: number): void {
  // Uᵀ y = b (forward), Lᵀ z = y (backward), then undo the row permutation.
  for (let r = 0; r < D; r++) {
    for (let k = 0; k < r; k++) {
      const f = lu[off + k * D + r];
      if (f === 0) continue;
      for (let c = 0; c < nrhs; c++) b[bOff + r * nrhs + c] -= f * b[bOff + k * nrhs + c];
    }
    const d = lu[off + r * D + r];
    for (let c = 0; c < nrhs; c++) b[bOff + r * nrhs + c] /= d;
  }
  for (let r = D - 2; r >= 0; r--) {
    for (let k = r + 1; k < D; k++) {
      const f = lu[off + k * D + r];
      if (f === 0) continue;
      for (let c = 0; c < nrhs; c++) b[bOff + r * nrhs + c] -= f * b[bOff + k * nrhs + c];
    }
  }
  for (let k = D - 1; k >= 0; k--) swapRows(b, bOff, nrhs, k, piv[k]);
}

/** Makes the D×D block at `off` exactly symmetric (covariances drift by rounding otherwise). */
export function symmetrize(a: HostArray, off: number, D: number): void {
  for (let i = 0; i < D; i++) {
    for (let j = i + 1; j < D; j++) {
      const v = 0.5 * (a[off + i * D + j] + a[off + j * D + i]);
      a[off + i * D + j] = v;
      a[off + j * D + i] = v;
    }
  }
}
