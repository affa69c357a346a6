/**
 * Float64 host references for the browser checks: plain sequential loops. Kept here rather than
 * imported from @pelk/conformance, whose entry pulls in vitest.
 */

/** Deterministic numbers uniform in `[-scale, scale)`, rounded to float32 so the GPU sees exactly these values. */
export function randomF32(n: number, seed: number, scale = 1): Float64Array {
  let s = seed >>> 0;
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    out[i] = Math.fround(((((t ^ (t >>> 14)) >>> 0) / 2 ** 32) * 2 - 1) * scale);
  }
  return out;
}

/**
 * `s_t = A_t s_{t−1} + b_t` (or backwards in time: `s_t = A_t s_{t+1} + b_t`), sequentially.
 * `A` is `[B,T,D]` (diagonal) or `[B,T,D,D]` (dense, row index first); returns `[B,T,D]`.
 */
export function linearRecurrence(
  A: ArrayLike<number>,
  b: ArrayLike<number>,
  init: ArrayLike<number>,
  shape: { B: number; T: number; D: number },
  dense: boolean,
  reverse: boolean,
): Float64Array {
  const { B, T, D } = shape;
  const out = new Float64Array(B * T * D);
  for (let bi = 0; bi < B; bi++) {
    let s = Array.from({ length: D }, (_, i) => init[bi * D + i]);
    for (let k = 0; k < T; k++) {
      const t = reverse ? T - 1 - k : k;
      const row = (bi * T + t) * D;
      const next = new Array<number>(D);
      for (let i = 0; i < D; i++) {
        let acc = b[row + i];
        if (dense) for (let j = 0; j < D; j++) acc += A[(row + i) * D + j] * s[j];
        else acc += A[row + i] * s[i];
        next[i] = acc;
      }
      s = next;
      for (let i = 0; i < D; i++) out[row + i] = s[i];
    }
  }
  return out;
}

/** Filtered or smoothed means and variances, `[B,T,D]` each. */
export interface ScalarKalmanMoments {
  readonly mean: Float64Array;
  readonly variance: Float64Array;
}

/**
 * Scalar Kalman filter and RTS smoother, one model per (batch, channel): `x_0 = init` exactly,
 * `x_t = F_t x_{t−1} + b_t + N(0, q)`, `y_t = x_t + N(0, r)`.
 */
export function scalarKalman(
  F: ArrayLike<number>,
  b: ArrayLike<number>,
  y: ArrayLike<number>,
  init: ArrayLike<number>,
  shape: { B: number; T: number; D: number },
  q: number,
  r: number,
  smooth: boolean,
): ScalarKalmanMoments {
  const { B, T, D } = shape;
  const mean = new Float64Array(B * T * D);
  const variance = new Float64Array(B * T * D);
  const predMean = new Float64Array(T);
  const predVar = new Float64Array(T);
  for (let bi = 0; bi < B; bi++) {
    for (let d = 0; d < D; d++) {
      const at = (t: number) => (bi * T + t) * D + d;
      let m = init[bi * D + d];
      let P = 0;
      for (let t = 0; t < T; t++) {
        const k = at(t);
        const mp = F[k] * m + b[k];
        const Pp = F[k] * F[k] * P + q;
        const gain = Pp / (Pp + r);
        m = mp + gain * (y[k] - mp);
        P = (1 - gain) * Pp;
        predMean[t] = mp;
        predVar[t] = Pp;
        mean[k] = m;
        variance[k] = P;
      }
      if (!smooth) continue;
      for (let t = T - 2; t >= 0; t--) {
        const k = at(t);
        const next = at(t + 1);
        const G = (variance[k] * F[next]) / predVar[t + 1];
        mean[k] += G * (mean[next] - predMean[t + 1]);
        variance[k] += G * G * (variance[next] - predVar[t + 1]);
      }
    }
  }
  return { mean, variance };
}

/** `max |a − b|` (NaN if any difference is NaN, or if the lengths differ). */
export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) return Number.NaN;
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[i]);
    if (Number.isNaN(d)) return Number.NaN;
    if (d > m) m = d;
  }
  return m;
}

/** `max |a|`. */
export function maxAbs(a: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]));
  return m;
}
