/**
 * The Kalman primitives of ELK and quasi-ELK as tensor programs (ALGORITHMS.md §6–7): the
 * filter is an associative scan of Särkkä & García-Fernández's 5-tuple elements; the RTS smoother
 * is a reverse scan of `(E, g, L)` elements. With `x_0` known, the first step is made generic by
 * taking `F_1 = 0` and `b_1 = F_1 x_0 + b_1` (its prior is then `N(b_1, q·I)` like every other step).
 * Model: `x_t = F_t x_{t−1} + b_t + N(0, q·I)`, `y_t = x_t + N(0, r·I)`.
 */
import type * as tfc from '@tensorflow/tfjs-core';
import { batchMatMul, matVec, withFirstStep } from './linear.js';
import { solve, symmetrize, transposeLast } from './linalg.js';
import { type Tf, associativeScan, reverseTime, sliceTime, dims } from './scan.js';

/** Inputs of a Kalman pass. `F` is `[B, T, D]` (scalar per channel) or `[B, T, D, D]`. */
export interface KalmanInputs {
  readonly F: tfc.Tensor;
  readonly bias: tfc.Tensor;
  readonly y: tfc.Tensor;
  readonly init: tfc.Tensor;
  readonly q: number;
  readonly r: number;
}

/** Means `[B, T, D]` and variances `[B, T, D]` or covariances `[B, T, D, D]`. */
export type Moments = {
  readonly mean: tfc.Tensor;
  readonly covariance: tfc.Tensor;
};

/** Scalar-per-channel filter (and smoother): the quasi-ELK step. */
export function kalmanDiagonalProgram(tf: Tf, m: KalmanInputs, smooth: boolean): Moments {
  return tf.tidy((): tfc.TensorContainer => {
    const { q, r } = m;
    const S = q + r;
    const kappa = q / S;
    const F = withFirstStep(tf, m.F, tf.zerosLike(sliceTime(tf, m.F, 0, 1)));
    const bias = withFirstStep(tf, m.bias, tf.add(tf.mul(sliceTime(tf, m.F, 0, 1), tf.reshape(m.init, [dims(m.bias)[0], 1, dims(m.bias)[2]])), sliceTime(tf, m.bias, 0, 1)));
    const innovation = tf.sub(m.y, bias);
    const elements = [
      tf.mul(F, 1 - kappa), // A
      tf.add(bias, tf.mul(innovation, kappa)), // b
      tf.fill(dims(F), q * (1 - kappa)), // C
      tf.div(tf.mul(F, innovation), S), // η
      tf.div(tf.square(F), S), // J
    ];
    const [, mean, variance] = associativeScan(tf, elements, ([A1, b1, C1, e1, J1], [A2, b2, C2, e2, J2]) => {
      const delta = tf.add(tf.mul(C1, J2), 1);
      return [
        tf.div(tf.mul(A2, A1), delta),
        tf.add(tf.div(tf.mul(A2, tf.add(tf.mul(C1, e2), b1)), delta), b2),
        tf.add(tf.div(tf.mul(C1, tf.square(A2)), delta), C2),
        tf.add(tf.div(tf.mul(A1, tf.sub(e2, tf.mul(J2, b1))), delta), e1),
        tf.add(tf.div(tf.mul(J2, tf.square(A1)), delta), J1),
      ];
    });
    if (!smooth) return { mean, covariance: variance };
    return smoothDiagonal(tf, m, mean, variance);
  }) as unknown as Moments;
}

/**
 * Scalar RTS smoother: `m^s_t = E_t m^s_{t+1} + g_t` and `P^s_t = E_t² P^s_{t+1} + L_t` are two
 * reverse diagonal recurrences, scanned together over `2D` channels.
 */
function smoothDiagonal(tf: Tf, m: KalmanInputs, mean: tfc.Tensor, variance: tfc.Tensor): Moments {
  const [B, T, D] = dims(mean);
  if (T === 1) return { mean, covariance: variance };
  const head = (x: tfc.Tensor) => sliceTime(tf, x, 0, T - 1);
  const next = (x: tfc.Tensor) => sliceTime(tf, x, 1, T - 1);
  const Fn = next(m.F);
  const P = head(variance);
  const mu = head(mean);
  const E = tf.div(tf.mul(P, Fn), tf.add(tf.mul(tf.square(Fn), P), m.q));
  const g = tf.sub(mu, tf.mul(E, tf.add(tf.mul(Fn, mu), next(m.bias))));
  const L = tf.sub(P, tf.mul(tf.mul(E, Fn), P));
  const last = (x: tfc.Tensor) => sliceTime(tf, x, T - 1, 1);
  const a = tf.concat([tf.concat([E, tf.square(E)], 2), tf.zeros([B, 1, 2 * D])], 1);
  const b = tf.concat([tf.concat([g, L], 2), tf.concat([last(mean), last(variance)], 2)], 1);
  const [ra, rb] = reverseTime(tf, [a, b]);
  const [, s] = associativeScan(tf, [ra, rb], ([a1, b1], [a2, b2]) => [tf.mul(a2, a1), tf.add(tf.mul(a2, b1), b2)]);
  const [both] = reverseTime(tf, [s]);
  return { mean: tf.slice(both, [0, 0, 0], [B, T, D]), covariance: tf.slice(both, [0, 0, D], [B, T, D]) };
}

/** Dense filter (and smoother): the ELK step. */
export function kalmanDenseProgram(tf: Tf, m: KalmanInputs, smooth: boolean): Moments {
  return tf.tidy((): tfc.TensorContainer => {
    const { q, r } = m;
    const [B, T, D] = dims(m.bias);
    const S = q + r;
    const kappa = q / S;
    const F1 = sliceTime(tf, m.F, 0, 1);
    const F = withFirstStep(tf, m.F, tf.zerosLike(F1));
    const bias = withFirstStep(tf, m.bias, tf.add(matVec(tf, F1, tf.reshape(m.init, [B, 1, D])), sliceTime(tf, m.bias, 0, 1)));
    const innovation = tf.sub(m.y, bias);
    const Ft = transposeLast(tf, F);
    const eye = tf.eye(D);
    const elements = [
      tf.mul(F, 1 - kappa), // A
      tf.add(bias, tf.mul(innovation, kappa)), // b
      tf.mul(tf.broadcastTo(eye, [B, T, D, D]), q * (1 - kappa)), // C
      tf.div(matVec(tf, Ft, innovation), S), // η
      tf.div(batchMatMul(tf, Ft, F), S), // J
    ];
    const [, mean, covariance] = associativeScan(tf, elements, ([A1, b1, C1, e1, J1], [A2, b2, C2, e2, J2]) => {
      // One solve with M = (I + C₁J₂) for M·A₁, M·(b₁ + C₁η₂) and M·C₁; N = (I + J₂C₁)⁻¹ = Mᵀ.
      const rhs = tf.concat([A1, tf.expandDims(tf.add(b1, matVec(tf, C1, e2)), -1), C1], -1);
      const X = solve(tf, tf.add(eye, batchMatMul(tf, C1, J2)), rhs);
      const lead = dims(A1).slice(0, -2);
      const XA = tf.slice(X, [...lead.map(() => 0), 0, 0], [...lead, D, D]);
      const Xb = tf.reshape(tf.slice(X, [...lead.map(() => 0), 0, D], [...lead, D, 1]), dims(b1));
      const XC = tf.slice(X, [...lead.map(() => 0), 0, D + 1], [...lead, D, D]);
      const XAt = transposeLast(tf, XA);
      return [
        batchMatMul(tf, A2, XA),
        tf.add(matVec(tf, A2, Xb), b2),
        tf.add(symmetrize(tf, batchMatMul(tf, batchMatMul(tf, A2, XC), A2, true)), C2),
        tf.add(matVec(tf, XAt, tf.sub(e2, matVec(tf, J2, b1))), e1),
        tf.add(symmetrize(tf, batchMatMul(tf, batchMatMul(tf, XAt, J2), A1)), J1),
      ];
    });
    if (!smooth) return { mean, covariance };
    return smoothDense(tf, m, mean, covariance, eye);
  }) as unknown as Moments;
}

/** Dense RTS smoother as a reverse scan of `(E, g, L)` elements (ALGORITHMS.md §7). */
function smoothDense(tf: Tf, m: KalmanInputs, mean: tfc.Tensor, cov: tfc.Tensor, eye: tfc.Tensor): Moments {
  const [B, T, D] = dims(mean);
  if (T === 1) return { mean, covariance: cov };
  const head = (x: tfc.Tensor) => sliceTime(tf, x, 0, T - 1);
  const next = (x: tfc.Tensor) => sliceTime(tf, x, 1, T - 1);
  const last = (x: tfc.Tensor) => sliceTime(tf, x, T - 1, 1);
  const Fn = next(m.F);
  const P = head(cov);
  const mu = head(mean);
  const FP = batchMatMul(tf, Fn, P);
  // E = P Fᵀ G⁻¹ with G = F P Fᵀ + qI symmetric, so Eᵀ = G⁻¹ (F P).
  const G = tf.add(batchMatMul(tf, FP, Fn, true), tf.mul(eye, m.q));
  const E = transposeLast(tf, solve(tf, G, FP, false));
  const g = tf.sub(mu, matVec(tf, E, tf.add(matVec(tf, Fn, mu), next(m.bias))));
  const L = symmetrize(tf, tf.sub(P, batchMatMul(tf, E, FP)));
  const elements = reverseTime(tf, [
    tf.concat([E, tf.zeros([B, 1, D, D])], 1),
    tf.concat([g, last(mean)], 1),
    tf.concat([L, last(cov)], 1),
  ]);
  // Scanned from the end: `later` is the next earlier time step.
  const [, gs, Ls] = associativeScan(tf, elements, ([E1, g1, L1], [E2, g2, L2]) => [
    batchMatMul(tf, E2, E1),
    tf.add(matVec(tf, E2, g1), g2),
    tf.add(symmetrize(tf, batchMatMul(tf, batchMatMul(tf, E2, L1), E2, true)), L2),
  ]);
  const [smoothedMean, smoothedCov] = reverseTime(tf, [gs, Ls]);
  return { mean: smoothedMean, covariance: smoothedCov };
}
