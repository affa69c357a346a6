/** Dense linear-algebra kernels on row-major typed arrays (no allocation). */
import type { HostArray } from '@pelk/core';

/**
 * `out[i, :] = Σ_k a[i, k] · b[k, :]` for `rows` rows, with `a` `[rows, K]` at `aOff`,
 * `b` `[K, N]` at `bOff`, `out` `[rows, N]` at `oOff`. Loop order i-k-j keeps the inner loop contiguous.
 */
export function matmulNN(
  a: HostArray,
  aOff: number,
  b: HostArray,
  bOff: number,
  out: HostArray,
  oOff: number,
  rows: number,
  K: number,
  N: number,
): void {
  for (let i = 0; i < rows; i++) {
    const o = oOff + i * N;
    for (let j = 0; j < N; j++) out[o + j] = 0;
    const ar = aOff + i * K;
    for (let k = 0; k < K; k++) {
      const aik = a[ar + k];
      if (aik === 0) continue;
      const br = bOff + k * N;
      for (let j = 0; j < N; j++) out[o + j] += aik * b[br + j];
    }
  }
}

/**
 * `out[i, j] = Σ_k a[i, k] · b[j, k]` (`b` transposed: `[N, K]`): contiguous dot products, the fast
 * form for `x · Wᵀ` with PyTorch-layout weights.
 */
export function matmulNT(
  a: HostArray,
  aOff: number,
  b: HostArray,
  bOff: number,
  out: HostArray,
  oOff: number,
  rows: number,
  K: number,
  N: number,
): void {
  for (let i = 0; i < rows; i++) {
    const ar = aOff + i * K;
    const o = oOff + i * N;
    let j = 0;
    // Two output columns at a time halves the reads of `a`.
    for (; j + 1 < N; j += 2) {
      const b0 = bOff + j * K;
      const b1 = b0 + K;
      let s0 = 0;
      let s1 = 0;
      for (let k = 0; k < K; k++) {
        const x = a[ar + k];
        s0 += x * b[b0 + k];
        s1 += x * b[b1 + k];
      }
      out[o + j] = s0;
      out[o + j + 1] = s1;
    }
    if (j < N) {
      const b0 = bOff + j * K;
      let s0 = 0;
      for (let k = 0; k < K; k++) s0 += a[ar + k] * b[b0 + k];
      out[o + j] = s0;
    }
  }
}

/** `out[i] = Σ_j m[i, j] · v[j]` for one `D×D` matrix at `mOff` and vectors at `vOff`, `oOff`. */
export function matvec(m: HostArray, mOff: number, v: HostArray, vOff: number, out: HostArray, oOff: number, D: number): void {
  for (let i = 0; i < D; i++) {
    const r = mOff + i * D;
    let s = 0;
    for (let j = 0; j < D; j++) s += m[r + j] * v[vOff + j];
    out[oOff + i] = s;
  }
}
