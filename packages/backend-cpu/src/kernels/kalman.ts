/**
 * Parallel Kalman filter and smoother (Särkkä & García-Fernández 2021) as associative scans, for
 * the model ELK solves: `x_0 = s_0` known exactly, `x_t = F_t x_{t−1} + b_t + q_t`, `q ~ N(0, q·I)`,
 * `y_t = x_t + r_t`, `r ~ N(0, r·I)`.
 *
 * Filter elements (all generic because `x_0` is known: the prior of `x_1` is `F_1 s_0 + b_1` with
 * covariance `q·I`, which is what the generic element applied to the state `(s_0, 0)` gives). With
 * `S = (q + r)·I` and `K = q/(q + r)`:
 *   `A = (1−K) F`, `b = b_t + K (y_t − b_t)`, `C = q (1−K) I`, `η = Fᵀ (y_t − b_t)/(q+r)`, `J = FᵀF/(q+r)`.
 * Combine (1 earlier, 2 later), `G = I + C₁J₂`:
 *   `A = A₂ G⁻¹ A₁`, `b = A₂ G⁻¹ (b₁ + C₁η₂) + b₂`, `C = A₂ G⁻¹ C₁ A₂ᵀ + C₂`,
 *   `η = A₁ᵀ G⁻ᵀ (η₂ − J₂ b₁) + η₁`, `J = A₁ᵀ G⁻ᵀ J₂ A₁ + J₁`.
 * A prefix applied to a state `(m, P)`: `m' = A (I + PJ)⁻¹ (m + Pη) + b`, `P' = A (I + PJ)⁻¹ P Aᵀ + C`.
 * The scalar-per-channel forms are the same with 1×1 blocks, vectorised over the D channels.
 *
 * Smoother (a reverse scan): `E_t = P_t F_{t+1}ᵀ (F_{t+1} P_t F_{t+1}ᵀ + q I)⁻¹`,
 * `g_t = m_t − E_t (F_{t+1} m_t + b_{t+1})`, `L_t = P_t − E_t F_{t+1} P_t`, last `(0, m_T, P_T)`;
 * smoothed mean `μ_t = E_t μ_{t+1} + g_t` (a reverse linear recurrence) and covariance
 * `Λ_t = E_t Λ_{t+1} E_tᵀ + L_t`.
 *
 * Layouts per batch entry: means `[T, D]`; scalar variances `[T, D]`; dense matrices `[T, D, D]`.
 */
import type { HostArray } from '@pelk/core';
import { denseScanInPlace, diagonalScanInPlace } from './scan.js';
import { luFactor, luSolve, luSolveTransposed, mm, mmTransA, symmetrize } from './small-dense.js';
import { treeScan } from './tree-scan.js';

/** Noise variances of the model. */
export interface Noise {
  readonly q: number;
  readonly r: number;
}

/**
 * Scalar-per-channel filter for one batch entry: writes filtered means and variances `[T, D]`.
 * `work` holds 5 arrays of `T·D` (the element tuple) plus 2 for the state slots.
 */
export function scalarFilter(
  F: HostArray,
  bias: HostArray,
  y: HostArray,
  off: number,
  init: HostArray,
  initOff: number,
  noise: Noise,
  T: number,
  D: number,
  work: HostArray[],
  mean: HostArray,
  variance: HostArray,
  outOff: number,
): void {
  const [eA, eb, eC, eEta, eJ, sm, sP] = work;
  const { q, r } = noise;
  const K = q / (q + r);
  for (let k = 0; k < T * D; k++) {
    const f = F[off + k];
    const innov = y[off + k] - bias[off + k];
    eA[k] = (1 - K) * f;
    eb[k] = bias[off + k] + K * innov;
    eC[k] = q * (1 - K);
    eEta[k] = (f * innov) / (q + r);
    eJ[k] = (f * f) / (q + r);
  }
  treeScan(T, {
    combine(i, e) {
      for (let d = 0; d < D; d++) {
        const a = i * D + d;
        const c = e * D + d;
        const A1 = eA[a];
        const b1 = eb[a];
        const C1 = eC[a];
        const A2 = eA[c];
        const J2 = eJ[c];
        const eta2 = eEta[c];
        const g = 1 + C1 * J2;
        eA[c] = (A2 * A1) / g;
        eb[c] = (A2 * (b1 + C1 * eta2)) / g + eb[c];
        eC[c] = (C1 * A2 * A2) / g + eC[c];
        eEta[c] = (A1 * (eta2 - J2 * b1)) / g + eEta[a];
        eJ[c] = (J2 * A1 * A1) / g + eJ[a];
      }
    },
    apply(agg, from, to) {
      for (let d = 0; d < D; d++) {
        const a = agg * D + d;
        const m = sm[from * D + d];
        const P = sP[from * D + d];
        const g = 1 + P * eJ[a];
        sm[to * D + d] = (eA[a] * (m + P * eEta[a])) / g + eb[a];
        sP[to * D + d] = (P * eA[a] * eA[a]) / g + eC[a];
      }
    },
    copyState(from, to) {
      for (let d = 0; d < D; d++) {
        sm[to * D + d] = sm[from * D + d];
        sP[to * D + d] = sP[from * D + d];
      }
    },
    initState(at) {
      for (let d = 0; d < D; d++) {
        sm[at * D + d] = init[initOff + d];
        sP[at * D + d] = 0;
      }
    },
    emit(k, from) {
      for (let d = 0; d < D; d++) {
        mean[outOff + k * D + d] = sm[from * D + d];
        variance[outOff + k * D + d] = sP[from * D + d];
      }
    },
    emitRoot(last) {
      // The root applied to (s_0, 0): J and η drop out because P = 0.
      for (let d = 0; d < D; d++) {
        const a = last * D + d;
        mean[outOff + last * D + d] = eA[a] * init[initOff + d] + eb[a];
        variance[outOff + last * D + d] = eC[a];
      }
    },
  });
}

/**
 * Scalar-per-channel RTS smoother for one batch entry, in place on the filtered means and
 * variances (they become smoothed). `work` holds 6 arrays of `T·D` and one of `D`.
 */
export function scalarSmoother(
  F: HostArray,
  bias: HostArray,
  off: number,
  noise: Noise,
  T: number,
  D: number,
  work: HostArray[],
  mean: HostArray,
  variance: HostArray,
  outOff: number,
): void {
  const [E, g, L, E2, res, ws, zero] = work;
  // Elements in reversed time order (position p ↔ time T−1−p), so the forward scan runs backwards.
  for (let p = 0; p < T; p++) {
    const t = T - 1 - p;
    for (let d = 0; d < D; d++) {
      const k = p * D + d;
      const m = mean[outOff + t * D + d];
      const P = variance[outOff + t * D + d];
      if (t === T - 1) {
        E[k] = 0;
        g[k] = m;
        L[k] = P;
      } else {
        const f = F[off + (t + 1) * D + d];
        const e = (P * f) / (f * P * f + noise.q);
        E[k] = e;
        g[k] = m - e * (f * m + bias[off + (t + 1) * D + d]);
        L[k] = P - e * f * P;
      }
      E2[k] = E[k] * E[k];
    }
  }
  zero.fill(0);
  // Means μ_t = E_t μ_{t+1} + g_t and variances Λ_t = E_t² Λ_{t+1} + L_t: diagonal recurrences.
  diagonalScanInPlace(E, g, zero, 0, res, ws, T, D);
  for (let p = 0; p < T; p++) for (let d = 0; d < D; d++) mean[outOff + (T - 1 - p) * D + d] = res[p * D + d];
  diagonalScanInPlace(E2, L, zero, 0, res, ws, T, D);
  for (let p = 0; p < T; p++) for (let d = 0; d < D; d++) variance[outOff + (T - 1 - p) * D + d] = res[p * D + d];
}

/** Work buffers of the dense filter for one batch entry (allocated once per call). */
export interface DenseKalmanWork {
  readonly A: Float64Array; // [T, D, D]
  readonly b: Float64Array; // [T, D]
  readonly C: Float64Array; // [T, D, D]
  readonly eta: Float64Array; // [T, D]
  readonly J: Float64Array; // [T, D, D]
  readonly m: Float64Array; // [T, D] state slots
  readonly P: Float64Array; // [T, D, D]
  readonly t1: Float64Array; // D×D scratch ×4
  readonly t2: Float64Array;
  readonly t3: Float64Array;
  readonly t4: Float64Array;
  readonly v1: Float64Array; // D scratch ×3
  readonly v2: Float64Array;
  readonly v3: Float64Array;
  readonly piv: Int32Array;
}

/** Allocates the dense work buffers for T steps of size D. */
export function denseKalmanWork(T: number, D: number): DenseKalmanWork {
  const DD = D * D;
  return {
    A: new Float64Array(T * DD),
    b: new Float64Array(T * D),
    C: new Float64Array(T * DD),
    eta: new Float64Array(T * D),
    J: new Float64Array(T * DD),
    m: new Float64Array(T * D),
    P: new Float64Array(T * DD),
    t1: new Float64Array(DD),
    t2: new Float64Array(DD),
    t3: new Float64Array(DD),
    t4: new Float64Array(DD),
    v1: new Float64Array(D),
    v2: new Float64Array(D),
    v3: new Float64Array(D),
    piv: new Int32Array(D),
  };
}

/** Dense filter for one batch entry: writes filtered means `[T, D]` and covariances `[T, D, D]`. */
export function denseFilter(
  F: HostArray,
  bias: HostArray,
  y: HostArray,
  off: number,
  init: HostArray,
  initOff: number,
  noise: Noise,
  T: number,
  D: number,
  w: DenseKalmanWork,
  mean: HostArray,
  cov: HostArray,
  outOff: number,
): void {
  const DD = D * D;
  const { q, r } = noise;
  const K = q / (q + r);
  const { A, b, C, eta, J, m, P, t1, t2, t3, t4, v1, v2, v3, piv } = w;
  for (let t = 0; t < T; t++) {
    const fo = off * D + t * DD; // F is [B, T, D, D]; `off` indexes the [B, T, D] arrays
    for (let i = 0; i < DD; i++) {
      A[t * DD + i] = (1 - K) * F[fo + i];
      C[t * DD + i] = 0;
    }
    for (let i = 0; i < D; i++) {
      C[t * DD + i * D + i] = q * (1 - K);
      const innov = y[off + t * D + i] - bias[off + t * D + i];
      v1[i] = innov;
      b[t * D + i] = bias[off + t * D + i] + K * innov;
    }
    // η = Fᵀ (y − b_t)/(q + r); J = FᵀF/(q + r).
    for (let j = 0; j < D; j++) {
      let s = 0;
      for (let i = 0; i < D; i++) s += F[fo + i * D + j] * v1[i];
      eta[t * D + j] = s / (q + r);
    }
    mmTransA(J, t * DD, F, fo, F, fo, D, D, D);
    for (let i = 0; i < DD; i++) J[t * DD + i] /= q + r;
  }
  treeScan(T, {
    combine(i, e) {
      const a1 = i * DD;
      const a2 = e * DD;
      // G = I + C₁J₂ (LU in t1).
      mm(t1, 0, C, a1, J, a2, D, D, D);
      for (let k = 0; k < D; k++) t1[k * D + k] += 1;
      luFactor(t1, 0, piv, D);
      // b: A₂ G⁻¹ (b₁ + C₁η₂) + b₂
      mm(v2, 0, C, a1, eta, e * D, D, D, 1);
      for (let k = 0; k < D; k++) v2[k] += b[i * D + k];
      luSolve(t1, 0, piv, D, v2, 0, 1);
      // η: A₁ᵀ G⁻ᵀ (η₂ − J₂ b₁) + η₁
      mm(v3, 0, J, a2, b, i * D, D, D, 1);
      for (let k = 0; k < D; k++) v3[k] = eta[e * D + k] - v3[k];
      luSolveTransposed(t1, 0, piv, D, v3, 0, 1);
      // J: A₁ᵀ G⁻ᵀ J₂ A₁ + J₁
      mm(t2, 0, J, a2, A, a1, D, D, D);
      luSolveTransposed(t1, 0, piv, D, t2, 0, D);
      mmTransA(t3, 0, A, a1, t2, 0, D, D, D);
      // C: A₂ G⁻¹ C₁ A₂ᵀ + C₂
      t4.set(C.subarray(a1, a1 + DD));
      luSolve(t1, 0, piv, D, t4, 0, D);
      mm(t2, 0, A, a2, t4, 0, D, D, D);
      mm(t4, 0, t2, 0, A, a2, D, D, D, true);
      for (let k = 0; k < DD; k++) C[a2 + k] += t4[k];
      symmetrize(C, a2, D);
      for (let k = 0; k < DD; k++) J[a2 + k] = t3[k] + J[a1 + k];
      symmetrize(J, a2, D);
      // η and b of the result (they read A₂ and the old values above).
      mmTransA(v1, 0, A, a1, v3, 0, D, D, 1);
      for (let k = 0; k < D; k++) eta[e * D + k] = v1[k] + eta[i * D + k];
      mm(v1, 0, A, a2, v2, 0, D, D, 1);
      for (let k = 0; k < D; k++) b[e * D + k] += v1[k];
      // A: A₂ G⁻¹ A₁ (last: every line above reads the old A₂).
      t2.set(A.subarray(a1, a1 + DD));
      luSolve(t1, 0, piv, D, t2, 0, D);
      mm(t3, 0, A, a2, t2, 0, D, D, D);
      A.set(t3, a2);
    },
    apply(agg, from, to) {
      const a = agg * DD;
      // G = I + P J
      mm(t1, 0, P, from * DD, J, a, D, D, D);
      for (let k = 0; k < D; k++) t1[k * D + k] += 1;
      luFactor(t1, 0, piv, D);
      // m' = A G⁻¹ (m + Pη) + b
      mm(v1, 0, P, from * DD, eta, agg * D, D, D, 1);
      for (let k = 0; k < D; k++) v1[k] += m[from * D + k];
      luSolve(t1, 0, piv, D, v1, 0, 1);
      mm(v2, 0, A, a, v1, 0, D, D, 1);
      for (let k = 0; k < D; k++) m[to * D + k] = v2[k] + b[agg * D + k];
      // P' = A G⁻¹ P Aᵀ + C
      t2.set(P.subarray(from * DD, from * DD + DD));
      luSolve(t1, 0, piv, D, t2, 0, D);
      mm(t3, 0, A, a, t2, 0, D, D, D);
      mm(t4, 0, t3, 0, A, a, D, D, D, true);
      for (let k = 0; k < DD; k++) P[to * DD + k] = t4[k] + C[a + k];
      symmetrize(P, to * DD, D);
    },
    copyState(from, to) {
      m.copyWithin(to * D, from * D, from * D + D);
      P.copyWithin(to * DD, from * DD, from * DD + DD);
    },
    initState(at) {
      for (let k = 0; k < D; k++) m[at * D + k] = init[initOff + k];
      P.fill(0, at * DD, at * DD + DD);
    },
    emit(k, from) {
      for (let i = 0; i < D; i++) mean[outOff + k * D + i] = m[from * D + i];
      for (let i = 0; i < DD; i++) cov[outOff * D + k * DD + i] = P[from * DD + i];
    },
    emitRoot(last) {
      // Root applied to (s_0, 0): m = A s_0 + b, P = C.
      for (let i = 0; i < D; i++) {
        let s = b[last * D + i];
        for (let j = 0; j < D; j++) s += A[last * DD + i * D + j] * init[initOff + j];
        mean[outOff + last * D + i] = s;
      }
      for (let i = 0; i < DD; i++) cov[outOff * D + last * DD + i] = C[last * DD + i];
    },
  });
}

/**
 * Dense RTS smoother for one batch entry, in place on the filtered means and covariances. Reuses
 * the filter's work buffers: `A` holds `E_t`, `b` holds `g_t`, `C` holds `L_t` (reversed time).
 */
export function denseSmoother(
  F: HostArray,
  bias: HostArray,
  off: number,
  noise: Noise,
  T: number,
  D: number,
  w: DenseKalmanWork,
  mean: HostArray,
  cov: HostArray,
  outOff: number,
): void {
  const DD = D * D;
  const { A: E, b: g, C: L, m, P, t1, t2, t3, v1, v2, piv } = w;
  for (let p = 0; p < T; p++) {
    const t = T - 1 - p;
    const mo = outOff + t * D;
    const co = outOff * D + t * DD;
    if (t === T - 1) {
      E.fill(0, p * DD, p * DD + DD);
      for (let i = 0; i < D; i++) g[p * D + i] = mean[mo + i];
      for (let i = 0; i < DD; i++) L[p * DD + i] = cov[co + i];
      continue;
    }
    const fo = off * D + (t + 1) * DD;
    // Eᵀ = G⁻¹ F P with G = F P Fᵀ + q I (symmetric).
    mm(t2, 0, F, fo, cov, co, D, D, D); // F P
    mm(t1, 0, t2, 0, F, fo, D, D, D, true); // F P Fᵀ
    for (let k = 0; k < D; k++) t1[k * D + k] += noise.q;
    luFactor(t1, 0, piv, D);
    t3.set(t2); // F P
    luSolve(t1, 0, piv, D, t3, 0, D); // Eᵀ
    for (let i = 0; i < D; i++) for (let j = 0; j < D; j++) E[p * DD + i * D + j] = t3[j * D + i];
    // g = m − E (F m + b_{t+1})
    mm(v1, 0, F, fo, mean, mo, D, D, 1);
    for (let i = 0; i < D; i++) v1[i] += bias[off + (t + 1) * D + i];
    mm(v2, 0, E, p * DD, v1, 0, D, D, 1);
    for (let i = 0; i < D; i++) g[p * D + i] = mean[mo + i] - v2[i];
    // L = P − E F P
    mm(t3, 0, E, p * DD, t2, 0, D, D, D);
    for (let i = 0; i < DD; i++) L[p * DD + i] = cov[co + i] - t3[i];
    symmetrize(L, p * DD, D);
  }
  // Means: μ_t = E_t μ_{t+1} + g_t (E_T = 0, so the boundary value is irrelevant).
  v1.fill(0);
  const scratchStates = P.subarray(0, T * D);
  denseScanInPlace(E.slice(0, T * DD), g, v1, 0, m, scratchStates, t1, v2, T, D);
  for (let p = 0; p < T; p++) for (let i = 0; i < D; i++) mean[outOff + (T - 1 - p) * D + i] = m[p * D + i];
  // Covariances: Λ_t = E_t Λ_{t+1} E_tᵀ + L_t, the same tree with matrix states.
  treeScan(T, {
    combine(i, e) {
      // (E_e, L_e) after (E_i, L_i) in reversed time: E = E_e E_i, L = E_e L_i E_eᵀ + L_e.
      mm(t1, 0, E, e * DD, L, i * DD, D, D, D);
      mm(t2, 0, t1, 0, E, e * DD, D, D, D, true);
      for (let k = 0; k < DD; k++) L[e * DD + k] += t2[k];
      symmetrize(L, e * DD, D);
      mm(t3, 0, E, e * DD, E, i * DD, D, D, D);
      E.set(t3, e * DD);
    },
    apply(agg, from, to) {
      mm(t1, 0, E, agg * DD, P, from * DD, D, D, D);
      mm(t2, 0, t1, 0, E, agg * DD, D, D, D, true);
      for (let k = 0; k < DD; k++) P[to * DD + k] = t2[k] + L[agg * DD + k];
    },
    copyState(from, to) {
      P.copyWithin(to * DD, from * DD, from * DD + DD);
    },
    initState(at) {
      P.fill(0, at * DD, at * DD + DD);
    },
    emit(k, from) {
      const t = T - 1 - k;
      for (let i = 0; i < DD; i++) cov[outOff * D + t * DD + i] = P[from * DD + i];
    },
    emitRoot(last) {
      const t = T - 1 - last;
      for (let i = 0; i < DD; i++) cov[outOff * D + t * DD + i] = L[last * DD + i];
    },
  });
}
