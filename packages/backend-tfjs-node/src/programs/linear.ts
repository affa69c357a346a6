/**
 * Linear recurrences `s_t = A_t s_{t−1} + b_t` as tensor programs: the initial state is folded
 * into the first step, then the affine maps `(A_t, b_t)` are composed by {@link associativeScan}.
 */
import type * as tfc from '@tensorflow/tfjs-core';
import { type Tf, associativeScan, reverseTime, sliceTime, dims } from './scan.js';

/** Replaces time step 0 of `x` with `first` (`[B, 1, ...]`). */
export function withFirstStep(tf: Tf, x: tfc.Tensor, first: tfc.Tensor): tfc.Tensor {
  const T = dims(x)[1];
  return T === 1 ? first : tf.concat([first, sliceTime(tf, x, 1, T - 1)], 1);
}

/** Batched `M v` for `M` `[..., D, D]` and `v` `[..., D]`. */
export function matVec(tf: Tf, m: tfc.Tensor, v: tfc.Tensor): tfc.Tensor {
  return tf.reshape(tf.matMul(m, tf.expandDims(v, -1)), dims(v));
}

/**
 * `A B` (or `A Bᵀ`) for stacks of matrices with the same leading shape, as one rank-3 batch
 * (tfjs-wasm's rank-4 batched product is ~40% slower).
 */
export function batchMatMul(tf: Tf, A: tfc.Tensor, B: tfc.Tensor, transposeB = false): tfc.Tensor {
  const a = dims(A);
  const b = dims(B);
  const [M, K] = a.slice(-2);
  const N = transposeB ? b[b.length - 2] : b[b.length - 1];
  const flatB = tf.reshape(B, [-1, b[b.length - 2], b[b.length - 1]]);
  return tf.reshape(tf.matMul(tf.reshape(A, [-1, M, K]), flatB, false, transposeB), [...a.slice(0, -2), M, N]);
}

/** Diagonal recurrence per (batch, channel); `a`, `b` `[B, T, D]`, `init` `[B, D]`. */
export function diagonalRecurrence(tf: Tf, a: tfc.Tensor, b: tfc.Tensor, init: tfc.Tensor, reverse: boolean): tfc.Tensor {
  return tf.tidy(() => {
    const [ta, tb] = reverse ? reverseTime(tf, [a, b]) : [a, b];
    const first = tf.add(tf.mul(sliceTime(tf, ta, 0, 1), tf.reshape(init, [dims(ta)[0], 1, dims(ta)[2]])), sliceTime(tf, tb, 0, 1));
    const [, s] = associativeScan(tf, [ta, withFirstStep(tf, tb, first)], ([a1, b1], [a2, b2]) => [tf.mul(a2, a1), tf.add(tf.mul(a2, b1), b2)]);
    return reverse ? reverseTime(tf, [s])[0] : s;
  });
}

/** Dense recurrence; `A` `[B, T, D, D]`, `b` `[B, T, D]`, `init` `[B, D]`. */
export function denseRecurrence(tf: Tf, A: tfc.Tensor, b: tfc.Tensor, init: tfc.Tensor, reverse: boolean): tfc.Tensor {
  return tf.tidy(() => {
    const [tA, tb] = reverse ? reverseTime(tf, [A, b]) : [A, b];
    const first = tf.add(matVec(tf, sliceTime(tf, tA, 0, 1), tf.reshape(init, [dims(tb)[0], 1, dims(tb)[2]])), sliceTime(tf, tb, 0, 1));
    const [, s] = associativeScan(tf, [tA, withFirstStep(tf, tb, first)], ([A1, b1], [A2, b2]) => [
      batchMatMul(tf, A2, A1),
      tf.add(matVec(tf, A2, b1), b2),
    ]);
    return reverse ? reverseTime(tf, [s])[0] : s;
  });
}
