/**
 * Sequential float64 references for the Kalman primitives: a textbook Kalman filter and
 * Rauch–Tung–Striebel smoother (one step after another, explicit small inverses are fine here),
 * and the Levenberg–Marquardt normal equations the smoother mean must solve.
 * Model: `x_0 = s_0`, `x_t = F_t x_{t−1} + b_t + N(0, q·I)`, `y_t = x_t + N(0, r·I)`.
 */

/** Dense row-major helpers on plain arrays. */
function matmul(a: number[], b: number[], n: number, k: number, m: number): number[] {
  const out = new Array<number>(n * m).fill(0);
  for (let i = 0; i < n; i++) for (let j = 0; j < m; j++) for (let l = 0; l < k; l++) out[i * m + j] += a[i * k + l] * b[l * m + j];
  return out;
}

function transpose(a: number[], n: number, m: number): number[] {
  const out = new Array<number>(n * m);
  for (let i = 0; i < n; i++) for (let j = 0; j < m; j++) out[j * n + i] = a[i * m + j];
  return out;
}

/** Solves `M X = R` (`M` n×n, `R` n×m) by Gaussian elimination with partial pivoting. */
export function solve(M: number[], R: number[], n: number, m: number): number[] {
  const a = [...M];
  const x = [...R];
  for (let k = 0; k < n; k++) {
    let p = k;
    for (let i = k + 1; i < n; i++) if (Math.abs(a[i * n + k]) > Math.abs(a[p * n + k])) p = i;
    for (let j = 0; j < n; j++) [a[k * n + j], a[p * n + j]] = [a[p * n + j], a[k * n + j]];
    for (let j = 0; j < m; j++) [x[k * m + j], x[p * m + j]] = [x[p * m + j], x[k * m + j]];
    for (let i = k + 1; i < n; i++) {
      const f = a[i * n + k] / a[k * n + k];
      for (let j = k; j < n; j++) a[i * n + j] -= f * a[k * n + j];
      for (let j = 0; j < m; j++) x[i * m + j] -= f * x[k * m + j];
    }
  }
  for (let i = n - 1; i >= 0; i--) {
    for (let j = 0; j < m; j++) {
      let s = x[i * m + j];
      for (let l = i + 1; l < n; l++) s -= a[i * n + l] * x[l * m + j];
      x[i * m + j] = s / a[i * n + i];
    }
  }
  return x;
}

/** Inputs of the references for one batch entry (dense `F`: `[T][D×D]`). */
export interface KalmanCase {
  readonly T: number;
  readonly D: number;
  /** `[T, D, D]` flat. */
  readonly F: ArrayLike<number>;
  /** `[T, D]` flat. */
  readonly b: ArrayLike<number>;
  readonly y: ArrayLike<number>;
  readonly s0: ArrayLike<number>;
  readonly q: number;
  readonly r: number;
}

/** Filtered and smoothed means `[T, D]` and covariances `[T, D, D]` (flat). */
export interface KalmanReference {
  readonly filterMean: Float64Array;
  readonly filterCov: Float64Array;
  readonly smoothMean: Float64Array;
  readonly smoothCov: Float64Array;
}

/** Sequential Kalman filter + RTS smoother. */
export function kalmanReference(c: KalmanCase): KalmanReference {
  const { T, D, q, r } = c;
  const DD = D * D;
  const eye = (s: number) => Array.from({ length: DD }, (_, k) => (k % (D + 1) === 0 ? s : 0));
  const add = (a: number[], b: number[]) => a.map((v, k) => v + b[k]);
  const sub = (a: number[], b: number[]) => a.map((v, k) => v - b[k]);
  const F = (t: number) => Array.from({ length: DD }, (_, k) => c.F[t * DD + k]);
  const row = (x: ArrayLike<number>, t: number) => Array.from({ length: D }, (_, k) => x[t * D + k]);
  const fm: number[][] = [];
  const fP: number[][] = [];
  const pm: number[][] = [];
  const pP: number[][] = [];
  let m = Array.from(c.s0);
  let P = eye(0);
  for (let t = 0; t < T; t++) {
    const Ft = F(t);
    const mPred = add(matmul(Ft, m, D, D, 1), row(c.b, t));
    const PPred = add(matmul(matmul(Ft, P, D, D, D), transpose(Ft, D, D), D, D, D), eye(q));
    const S = add(PPred, eye(r));
    // K = P⁻ S⁻¹ = (S⁻¹ P⁻)ᵀ since both are symmetric.
    const K = transpose(solve(S, PPred, D, D), D, D);
    m = add(mPred, matmul(K, sub(row(c.y, t), mPred), D, D, 1));
    P = matmul(sub(eye(1), K), PPred, D, D, D);
    pm.push(mPred);
    pP.push(PPred);
    fm.push(m);
    fP.push(P);
  }
  const sm: number[][] = new Array(T);
  const sP: number[][] = new Array(T);
  sm[T - 1] = fm[T - 1];
  sP[T - 1] = fP[T - 1];
  for (let t = T - 2; t >= 0; t--) {
    // G = P_t F_{t+1}ᵀ (P⁻_{t+1})⁻¹ = ((P⁻)⁻¹ F P_t)ᵀ.
    const G = transpose(solve(pP[t + 1], matmul(F(t + 1), fP[t], D, D, D), D, D), D, D);
    sm[t] = add(fm[t], matmul(G, sub(sm[t + 1], pm[t + 1]), D, D, 1));
    sP[t] = add(fP[t], matmul(matmul(G, sub(sP[t + 1], pP[t + 1]), D, D, D), transpose(G, D, D), D, D, D));
  }
  return {
    filterMean: Float64Array.from(fm.flat()),
    filterCov: Float64Array.from(fP.flat()),
    smoothMean: Float64Array.from(sm.flat()),
    smoothCov: Float64Array.from(sP.flat()),
  };
}

/**
 * The Levenberg–Marquardt step as a dense solve: with residuals `ρ_t(x) = x_t − F_t x_{t−1} − b_t`
 * (`x_0 = s_0`), minimises `Σ ½‖ρ_t‖²/q + Σ ½‖x_t − y_t‖²/r`; writing `x = y + Δ`, `Δ` solves
 * `(JᵀJ/q + I/r) Δ = −Jᵀρ(y)/q` with `J` the block-bidiagonal Jacobian of ρ. Returns `y + Δ`.
 */
export function levenbergMarquardtStep(c: KalmanCase): Float64Array {
  const { T, D, q, r } = c;
  const N = T * D;
  const J = new Array<number>(N * N).fill(0);
  const rho = new Array<number>(N).fill(0);
  for (let t = 0; t < T; t++) {
    for (let i = 0; i < D; i++) {
      J[(t * D + i) * N + t * D + i] = 1;
      let pred = c.b[t * D + i];
      for (let j = 0; j < D; j++) {
        const f = c.F[t * D * D + i * D + j];
        pred += f * (t === 0 ? c.s0[j] : c.y[(t - 1) * D + j]);
        if (t > 0) J[(t * D + i) * N + (t - 1) * D + j] = -f;
      }
      rho[t * D + i] = c.y[t * D + i] - pred;
    }
  }
  const Jt = transpose(J, N, N);
  const M = matmul(Jt, J, N, N, N).map((v, k) => v / q + (k % (N + 1) === 0 ? 1 / r : 0));
  const rhs = matmul(Jt, rho, N, N, 1).map((v) => -v / q);
  const delta = solve(M, rhs, N, 1);
  return Float64Array.from({ length: N }, (_, k) => c.y[k] + delta[k]);
}

/** Filtered and smoothed means and variances of {@link diagonalKalmanReference}, `[B, T, D]` flat each. */
export interface DiagonalKalmanReference {
  readonly filterMean: Float64Array;
  readonly filterVariance: Float64Array;
  readonly smoothMean: Float64Array;
  readonly smoothVariance: Float64Array;
}

/**
 * The scalar-per-channel model of `kalmanDiagonal`, batched: one independent filter and smoother
 * per (batch entry, channel) with `F` `[B, T, D]` (the transitions' diagonals), `b` and `y`
 * `[B, T, D]`, `s0` `[B, D]`. Each channel is {@link kalmanReference} with `D = 1`.
 */
export function diagonalKalmanReference(
  F: ArrayLike<number>,
  b: ArrayLike<number>,
  y: ArrayLike<number>,
  s0: ArrayLike<number>,
  shape: { readonly B: number; readonly T: number; readonly D: number },
  q: number,
  r: number,
): DiagonalKalmanReference {
  const { B, T, D } = shape;
  const out = {
    filterMean: new Float64Array(B * T * D),
    filterVariance: new Float64Array(B * T * D),
    smoothMean: new Float64Array(B * T * D),
    smoothVariance: new Float64Array(B * T * D),
  };
  for (let bi = 0; bi < B; bi++) {
    for (let d = 0; d < D; d++) {
      const channel = (x: ArrayLike<number>) => Float64Array.from({ length: T }, (_, t) => x[(bi * T + t) * D + d]);
      const ref = kalmanReference({ T, D: 1, F: channel(F), b: channel(b), y: channel(y), s0: [s0[bi * D + d]], q, r });
      for (let t = 0; t < T; t++) {
        const k = (bi * T + t) * D + d;
        out.filterMean[k] = ref.filterMean[t];
        out.filterVariance[k] = ref.filterCov[t];
        out.smoothMean[k] = ref.smoothMean[t];
        out.smoothVariance[k] = ref.smoothCov[t];
      }
    }
  }
  return out;
}
