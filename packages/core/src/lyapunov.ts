/**
 * The largest Lyapunov exponent of a trajectory, estimated from its Jacobians on any backend: the
 * average rate (natural log per step) at which the most-expanding perturbation of the state grows.
 * It says ahead of time how parallel evaluation will fare: along a contracting trajectory (λ < 0)
 * an error made at one step fades, so DEER/ELK iterations stay few whatever T; along an expanding
 * one (λ > 0) errors grow like e^{λT}, and the number of parallel iterations grows with T.
 *
 * The method is Benettin's (Benettin, Galgani, Giorgilli, Strelcyn 1980): follow a tangent vector
 * `v_t = A_t v_{t−1}` and renormalise it now and then, summing the logs of the growth factors.
 * Followed step by step that is T dependent backend calls; here the window is cut into chunks of
 * L steps and every chunk runs at once as one batched linear scan (`s_t = A_t s_{t−1} + 0`), so an
 * estimate is two scans and two small read-backs on any backend, a GPU included:
 *
 * 1. Pass 1 starts every chunk from the same unit vector `u = 1/√D` and reads the chunk's end
 *    vector. After L steps it points along the chunk's most-expanding direction.
 * 2. Pass 2 starts chunk k from the normalised pass-1 end vector of chunk k − 1 — the direction the
 *    tangent vector has after the preceding L steps, as in Benettin's method with renormalisation
 *    every L steps — and `log ‖v_end‖` is chunk k's growth.
 *
 * Why two passes: a chunk started from the fixed `u` grows by `L·λ + log|⟨u, e₁⟩|`-ish, where `e₁`
 * is the leading direction; that second term is a bias of order `1/L` per step which does not
 * shrink with the window (for a non-normal 2×2 matrix with eigenvalues 1.05 and 0.5 it is as large
 * as λ itself). Pass 2's start vectors are already aligned, up to the ratio of the second to the
 * first singular growth over L steps (e.g. `(0.5/1.05)^32 ≈ 5e-11`), and the bias goes with them.
 *
 * Why chunks of 32 steps: one chunk's growth is computed as a number, not as a log, so it must not
 * overflow the dtype. float32 holds up to e^{88.7}: with L = 32 exponents up to ≈ 2.77 per step
 * (and down to ≈ −2.7, where float32 underflows) are resolved, far beyond the rates of trained
 * recurrent models; float64 would allow longer chunks, but 32 is already ample for alignment.
 */
import type { ComputeBackend, DType, HostArray, Tensor } from './backend.js';
import { InvalidArgumentError, ShapeError, describeValue } from './errors.js';
import { checkKnownKeys } from './keys.js';
import { assertPositiveInteger, assertPositiveNumber } from './validate.js';

/** What a Lyapunov estimate says about parallel evaluation. */
export type LyapunovVerdict = 'predictable' | 'unpredictable' | 'marginal' | 'unknown';

/** The result of {@link estimateLyapunov}. Every number is finite, except NaN for 'unknown'. */
export interface LyapunovEstimate {
  /**
   * Largest Lyapunov exponent per time step (natural-log growth per step), max over the batch.
   * Never below {@link LYAPUNOV_FLOOR} (a zero Jacobian gives exactly the floor); NaN when the
   * Jacobians hold NaN or ±Infinity. A growth beyond the dtype's range within one chunk (float32:
   * λ ≳ 2.77 per step at the default chunk) is counted as that range: a lower bound.
   */
  readonly exponent: number;
  /**
   * Standard error of `exponent` from the spread of the chunk growths (of the batch row that gives
   * the maximum): `std(growths) / L / √chunks`. NaN when a single chunk was measured (a window of
   * fewer than 3 steps): its spread is unknown.
   */
  readonly standardError: number;
  /**
   * Time steps the estimate is taken over: the measured chunks, `(C − 1)·L` of the window's `W`.
   * The first chunk only aligns the start vector, and a remainder of `W mod L` steps is dropped
   * from the start of the window (the transient of the initial state).
   */
  readonly steps: number;
  /** Which Jacobians it was computed from. */
  readonly jacobian: 'dense' | 'diagonal';
  readonly verdict: LyapunovVerdict;
  /** One line for people, e.g. "unpredictable (λ ≈ +0.012 ± 0.001 per step): parallel iterations will grow with T". */
  readonly reading: string;
}

/** Options of {@link estimateLyapunov}. */
export interface LyapunovOptions {
  /** The full sequence length T the verdict is about. Default: the window length W. */
  readonly horizon?: number;
  /**
   * Steps per chunk L: the tangent vector is renormalised every L steps (default 32). Shorter
   * windows use shorter chunks, so that there are at least 3 (one to align, two to measure).
   */
  readonly chunk?: number;
}

/**
 * The lowest exponent reported, per step: `log 2⁻²⁴ ≈ −16.6`. A perturbation shrunk by 2⁻²⁴ in one
 * step is below float32 rounding at once; faster contraction (a zero Jacobian: −∞) changes nothing
 * about parallel evaluation, and a finite floor keeps every estimate a JSON number. Each chunk's
 * growth is clamped to `L·LYAPUNOV_FLOOR` before averaging. In float32 with the default chunk, a
 * chunk contracting faster than about −2.7 per step underflows to a zero end vector and reads as
 * the floor too: either way the verdict is 'predictable'.
 */
export const LYAPUNOV_FLOOR = Math.log(2 ** -24);

const DEFAULT_CHUNK = 32;
/** Chunks a window is cut into at least, when it is short: one aligns, two give a spread. */
const MIN_CHUNKS = 3;
const OPTION_KEYS = ['horizon', 'chunk'] as const;
/** The largest finite value per dtype: a chunk end vector beyond it overflowed. */
const MAX_FINITE: Readonly<Record<DType, number>> = { float32: 3.4028234663852886e38, float64: Number.MAX_VALUE };

/**
 * Estimates the largest Lyapunov exponent of a trajectory from its Jacobians `A_t = ∂f/∂s_{t−1}`,
 * in parallel on `backend` (two batched linear scans, two small read-backs, and a `maxAbs` that
 * checks the Jacobians are finite), in the Jacobians' dtype. Does not take ownership of
 * `jacobians` and leaves no tensor behind.
 *
 * `jacobians` is `[B, W, D, D]` (`kind` `'dense'`) or `[B, W, D]` (`'diagonal'`, the
 * quasi-DEER Jacobians: then the estimate is the largest exponent of the diagonal system). The
 * exponent is computed per batch row and the largest is reported; the verdict
 * ({@link lyapunovVerdict}) is about a sequence of `options.horizon` steps (default W).
 *
 * @example
 * ```ts
 * // Jacobians along a trajectory, e.g. from a converged evaluation's linearisation.
 * const a = backend.fill([1, 256, 4], 1.01, 'float64'); // s_t = 1.01·s_{t−1}: λ = log 1.01
 * const est = await estimateLyapunov(backend, a, 'diagonal', { horizon: 10_000 });
 * backend.dispose(a);
 * est.exponent; // ≈ 0.00995
 * est.reading; // "unpredictable (λ ≈ +0.01 ± 0 per step): parallel iterations will grow with T"
 * ```
 */
export async function estimateLyapunov(
  backend: ComputeBackend,
  jacobians: Tensor,
  kind: 'dense' | 'diagonal',
  options: LyapunovOptions = {},
): Promise<LyapunovEstimate> {
  checkKnownKeys(options, OPTION_KEYS, 'options');
  if (kind !== 'dense' && kind !== 'diagonal') {
    throw new InvalidArgumentError('kind', "'dense' or 'diagonal'", describeValue(kind));
  }
  const dense = kind === 'dense';
  const shape = jacobians.shape;
  if (shape.length !== (dense ? 4 : 3) || (dense && shape[2] !== shape[3]) || shape.some((d) => d < 1)) {
    throw new ShapeError('jacobians', dense ? '[B, W, D, D] with B, W, D ≥ 1' : '[B, W, D] with B, W, D ≥ 1', `[${shape.join(', ')}]`);
  }
  const [B, W, D] = shape;
  const horizon = options.horizon === undefined ? W : assertPositiveNumber(options.horizon, 'options.horizon');
  const maxChunk = options.chunk === undefined ? DEFAULT_CHUNK : assertPositiveInteger(options.chunk, 'options.chunk');

  const L = Math.min(maxChunk, Math.max(1, Math.floor(W / MIN_CHUNKS)));
  const C = Math.floor(W / L);
  const head = W - C * L; // dropped: the start of the window is the initial state's transient
  // Chunks measured per row. A one-chunk window (W = 1) is measured from the unaligned start.
  const n = Math.max(1, C - 1);
  const rows = B * n;
  const steps = n * L;
  const dtype = jacobians.dtype;
  const scan = (from: number, start: Float64Array) => chunkEnds(backend, jacobians, dense, from, rows, L, D, start);

  // Pass 1: chunks 0..C−2 from the fixed unit vector (row b·n + k is chunk k of batch row b).
  const unit = new Float64Array(rows * D).fill(1 / Math.sqrt(D));
  const [largest, ends1] = await Promise.all([backend.maxAbs(jacobians), scan(head, unit)]);
  if (!Number.isFinite(largest)) {
    return {
      exponent: Number.NaN,
      standardError: Number.NaN,
      steps,
      jacobian: kind,
      verdict: 'unknown',
      reading: 'unknown (λ not computed): the Jacobians hold NaN or ±Infinity',
    };
  }
  // Pass 2: chunks 1..C−1, each from the normalised pass-1 end of the chunk before it — the same
  // row index. A pass-1 end that vanished (a singular chunk) or overflowed has no direction to
  // give: that chunk restarts from the unit vector.
  let ends = ends1;
  if (C > 1) {
    const aligned = new Float64Array(rows * D);
    for (let r = 0; r < rows; r++) {
      const norm = norm2(ends1, r * D, D);
      const ok = norm > 0 && Number.isFinite(norm);
      for (let i = 0; i < D; i++) aligned[r * D + i] = ok ? ends1[r * D + i] / norm : unit[r * D + i];
    }
    ends = await scan(head + L, aligned);
  }

  // Growths per chunk, floored (a zero end vector is −∞) and capped at the dtype's range (the
  // Jacobians are finite, so a non-finite end vector overflowed: at least that much growth).
  const floor = L * LYAPUNOV_FLOOR;
  const ceiling = Math.log(MAX_FINITE[dtype]);
  let exponent = Number.NEGATIVE_INFINITY;
  let standardError = Number.NaN;
  for (let b = 0; b < B; b++) {
    const growth = new Float64Array(n);
    for (let k = 0; k < n; k++) {
      const norm = norm2(ends, (b * n + k) * D, D);
      growth[k] = Number.isFinite(norm) ? Math.max(floor, Math.log(norm)) : ceiling;
    }
    const mean = growth.reduce((s, g) => s + g, 0) / n;
    if (mean / L <= exponent) continue;
    exponent = mean / L;
    const variance = n > 1 ? growth.reduce((s, g) => s + (g - mean) ** 2, 0) / (n - 1) : Number.NaN;
    standardError = Math.sqrt(variance / n) / L;
  }
  return { exponent, standardError, steps, jacobian: kind, ...lyapunovVerdict(exponent, standardError, horizon) };
}

/**
 * The verdict on an exponent `λ` (per step) with standard error `σ`, for a sequence of `horizon`
 * steps: 'unpredictable' when `λ − 3σ > 0` and `λ·horizon > 1` (errors surely grow, by more than a
 * factor e over the sequence); 'predictable' when `λ + 3σ < 0` (errors surely shrink); 'marginal'
 * otherwise; 'unknown' when `λ` or `σ` is NaN. With a one-line reading for people.
 *
 * @example
 * ```ts
 * lyapunovVerdict(0.012, 0.001, 10_000);
 * // { verdict: 'unpredictable', reading: 'unpredictable (λ ≈ +0.012 ± 0.001 per step): parallel iterations will grow with T' }
 * lyapunovVerdict(-0.69, 0, 1000).verdict; // 'predictable'
 * lyapunovVerdict(0.0005, 0.001, 1000).verdict; // 'marginal'
 * ```
 */
export function lyapunovVerdict(exponent: number, standardError: number, horizon: number): { verdict: LyapunovVerdict; reading: string } {
  assertPositiveNumber(horizon, 'horizon');
  if (Number.isNaN(exponent)) {
    return { verdict: 'unknown', reading: 'unknown (λ is not a number): nothing to judge; non-finite Jacobians give this' };
  }
  const lambda = `λ ≈ ${formatRate(exponent, true)}`;
  if (Number.isNaN(standardError)) {
    return { verdict: 'unknown', reading: `unknown (${lambda} per step, spread unknown): too few steps to judge` };
  }
  const stated = `${lambda} ± ${formatRate(standardError, false)} per step`;
  if (exponent - 3 * standardError > 0 && exponent * horizon > 1) {
    return { verdict: 'unpredictable', reading: `unpredictable (${stated}): parallel iterations will grow with T` };
  }
  if (exponent + 3 * standardError < 0) {
    return { verdict: 'predictable', reading: `predictable (${stated}): parallel iterations stay few` };
  }
  if (exponent - 3 * standardError > 0) {
    return {
      verdict: 'marginal',
      reading: `marginal (${stated}): errors grow by less than e over ${horizon} steps; parallel iterations may still grow with T`,
    };
  }
  return {
    verdict: 'marginal',
    reading: `marginal (${stated}): neither clearly expanding nor contracting; parallel iterations may grow slowly with T`,
  };
}

/**
 * Runs `rows` chunks of `L` steps, taken from `jacobians` starting at step `from` (row `b·n + k`:
 * chunk k of batch row b), as one linear scan with zero offsets from the start vectors `start`
 * (`[rows, D]`, float64 on the host); returns the end vectors `[rows, D]` on the host.
 */
async function chunkEnds(
  backend: ComputeBackend,
  jacobians: Tensor,
  dense: boolean,
  from: number,
  rows: number,
  L: number,
  D: number,
  start: Float64Array,
): Promise<HostArray> {
  const dtype = jacobians.dtype;
  const perRow = rows / jacobians.shape[0];
  const end = backend.tidy(() => {
    const chunks = backend.slice(jacobians, 1, from, perRow * L);
    const A = backend.reshape(chunks, dense ? [rows, L, D, D] : [rows, L, D]);
    const zeros = backend.fill([rows, L, D], 0, dtype);
    const init = backend.fromArray(start, [rows, D], dtype);
    const s = dense ? backend.linearScanDense(A, zeros, init) : backend.linearScanDiagonal(A, zeros, init);
    return backend.timeStep(s, L - 1);
  });
  try {
    return await backend.read(end);
  } finally {
    backend.dispose(end);
  }
}

/** Euclidean norm of `x[offset .. offset + n)`, scaled so that float64 squares cannot overflow. */
function norm2(x: ArrayLike<number>, offset: number, n: number): number {
  let scale = 0;
  for (let i = 0; i < n; i++) {
    const a = Math.abs(x[offset + i]);
    if (Number.isNaN(a)) return Number.NaN;
    if (a > scale) scale = a;
  }
  if (scale === 0 || scale === Number.POSITIVE_INFINITY) return scale;
  let sum = 0;
  for (let i = 0; i < n; i++) sum += (x[offset + i] / scale) ** 2;
  return scale * Math.sqrt(sum);
}

/** A rate with two significant digits: `+0.012`, `−0.69`, `0`, `1e-7` (a true minus sign). */
function formatRate(x: number, signed: boolean): string {
  if (Number.isNaN(x)) return 'NaN';
  const magnitude = Math.abs(x);
  const text = magnitude === Number.POSITIVE_INFINITY ? '∞' : String(Number(magnitude.toPrecision(2)));
  if (!signed || x === 0) return text;
  return `${x > 0 ? '+' : '−'}${text}`;
}
