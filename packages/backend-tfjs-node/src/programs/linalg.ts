/**
 * Batched small dense solves as tensor programs (tfjs has no batched `solve`): Gauss–Jordan
 * elimination with partial pivoting on the augmented matrix `[M | R]`, one column per step, every
 * matrix of the batch at once. D steps of a constant number of ops; O(D²(D + K)) work per matrix.
 */
import type * as tfc from '@tensorflow/tfjs-core';
import { type Tf, dims } from './scan.js';

/**
 * `M⁻¹ R` for `M` `[..., D, D]` and `R` `[..., D, K]` (same leading shape). `pivot = false` skips
 * the row exchanges: only for symmetric positive definite `M`, where elimination is stable without them.
 *
 * @example
 * ```ts
 * const x = solve(tf, tf.eye(3).expandDims(0), rhs); // x equals rhs
 * ```
 */
export function solve(tf: Tf, M: tfc.Tensor, R: tfc.Tensor, pivot = true): tfc.Tensor {
  return tf.tidy(() => {
    const D = dims(M)[dims(M).length - 1];
    const K = dims(R)[dims(R).length - 1];
    const lead = dims(M).slice(0, -2);
    const N = lead.reduce((a, d) => a * d, 1);
    const W = D + K;
    let X = tf.concat([tf.reshape(M, [N, D, D]), tf.reshape(R, [N, D, K])], 2);
    const rowIndex = tf.range(0, D, 1, 'float32');
    const eye = tf.eye(D);
    for (let k = 0; k < D; k++) {
      const unit = tf.reshape(tf.slice(eye, [k, 0], [1, D]), [1, D, 1]);
      // D = 1: one row, nothing to exchange (and tfjs's oneHot refuses a depth below 2).
      if (!pivot || D === 1) {
        const rowK = tf.slice(X, [0, k, 0], [N, 1, W]);
        const pivotRow = tf.div(rowK, tf.slice(rowK, [0, 0, k], [N, 1, 1]));
        X = tf.sub(X, tf.mul(tf.sub(tf.slice(X, [0, 0, k], [N, D, 1]), unit), pivotRow));
        continue;
      }
      // Partial pivoting: the largest |entry| of column k among rows k..D−1.
      const column = tf.reshape(tf.slice(X, [0, 0, k], [N, D, 1]), [N, D]);
      const eligible = tf.mul(tf.abs(column), tf.cast(tf.greaterEqual(rowIndex, k), 'float32'));
      const pick = tf.reshape(tf.cast(tf.oneHot(tf.argMax(eligible, 1), D), 'float32'), [N, D, 1]);
      const rowP = tf.matMul(pick, X, true, false); // [N, 1, W]
      const rowK = tf.slice(X, [0, k, 0], [N, 1, W]);
      // Swap rows k and p: X += (e_k − e_p) ⊗ (row_p − row_k).
      X = tf.add(X, tf.mul(tf.sub(unit, pick), tf.sub(rowP, rowK)));
      const pivotRow = tf.div(rowP, tf.slice(rowP, [0, 0, k], [N, 1, 1]));
      // Eliminate column k everywhere and normalise row k: X −= (col_k − e_k) ⊗ pivotRow.
      const col = tf.slice(X, [0, 0, k], [N, D, 1]);
      X = tf.sub(X, tf.mul(tf.sub(col, unit), pivotRow));
    }
    return tf.reshape(tf.slice(X, [0, 0, D], [N, D, K]), [...lead, D, K]);
  });
}

/** `(X + Xᵀ) / 2` over the last two axes. */
export function symmetrize(tf: Tf, X: tfc.Tensor): tfc.Tensor {
  return tf.mul(tf.add(X, transposeLast(tf, X)), 0.5);
}

/** Swaps the last two axes. */
export function transposeLast(tf: Tf, X: tfc.Tensor): tfc.Tensor {
  const r = dims(X).length;
  const perm = dims(X).map((_, k) => k);
  perm[r - 2] = r - 1;
  perm[r - 1] = r - 2;
  return tf.transpose(X, perm);
}
