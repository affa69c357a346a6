import type { ComputeBackend, DType, DeviceCounters, HostArray, Tensor } from './backend.js';
import type { LyapunovEstimate } from './lyapunov.js';

/**
 * Solver methods: `sequential`; DEER (Newton, dense Jacobians) and quasi-DEER (diagonal);
 * ELK and quasi-ELK (Levenberg–Marquardt damping computed by a parallel Kalman pass); `auto`.
 */
export type Method = 'sequential' | 'deer' | 'quasi-deer' | 'elk' | 'quasi-elk' | 'auto';

/** Every method {@link evaluate} accepts. */
export const METHODS: readonly Method[] = ['sequential', 'deer', 'quasi-deer', 'elk', 'quasi-elk', 'auto'];

/** Which Kalman pass computes an ELK step. */
export type KalmanMode = 'filter' | 'smoother';

/**
 * Why an evaluation stopped. Only `'converged'` comes with `converged: true`:
 * - `'converged'`: the returned trajectory's true residual is within the tolerance, and no value of it
 *   was clipped or reset;
 * - `'max-iterations'`: the iteration cap was reached first;
 * - `'clipped'`: the iteration repeats an iterate whose values were clipped to `±clip` (the
 *   trajectory grows beyond the clip bound, so no clipped iterate can be the answer);
 * - `'non-finite'`: the returned trajectory holds NaN or ±Infinity (sequential), or the iterate kept
 *   going non-finite;
 * - `'stalled'`: the iteration stopped making progress (an exact repeat of a non-solution, or steps
 *   within the tolerance that no longer lower the residual: a rounding floor above the tolerance).
 */
export type StopReason = 'converged' | 'max-iterations' | 'clipped' | 'non-finite' | 'stalled';

/** One method run by `auto`, and why. */
export interface MethodRun {
  readonly method: Method;
  readonly iterations: number;
  /** Why this method ran (for `auto`: why it chose it, or why the previous one did not suffice). */
  readonly reason: string;
}

/** Host data with an explicit shape, row-major. */
export interface ShapedArray {
  readonly data: ArrayLike<number>;
  readonly shape: readonly number[];
}

/** Inputs: `[T, I]` or `[B, T, I]` as nested arrays or a {@link ShapedArray}; `null` for autonomous cells. */
export type InputsLike = number[][] | number[][][] | ShapedArray | null;

/** What an evaluation queued on a device backend (`diagnostics.device`). */
export interface DeviceWork extends DeviceCounters {
  /** One iteration's share (median over iterations 2…n); absent with fewer than two iterations. */
  readonly perIteration?: DeviceCounters;
}

/** A per-iteration record, also passed to `onIteration`. */
export interface IterationInfo {
  /** 1-based iteration number. */
  readonly iteration: number;
  /**
   * True residual `max_t ‖s_t − f(s_{t−1})‖∞` of the iterate this iteration produced (ELK: of the
   * accepted iterate after this iteration) — a by-product of linearising it for the next step.
   */
  readonly residual: number;
  /** `max |s^(i) − s^(i−1)|`, the size of this iteration's update. */
  readonly step: number;
  /** NaN/±Inf elements of this iteration's iterate that were reset (NaN → 0, ±Inf → ±clip). */
  readonly nonFinite: number;
  /** Finite elements of this iteration's iterate beyond `±clip` that were clipped to it. */
  readonly clipped: number;
  /** Milliseconds since the evaluation started. */
  readonly elapsedMs: number;
  /** Sequential method only: the fraction of time steps done so far (its progress reports). */
  readonly fraction?: number;
  /**
   * ELK methods: the observation variance σ² = 1/λ this iteration's step used; `Infinity` for an
   * undamped (Newton) step (JSON writes it as `null`).
   */
  readonly sigmaSq?: number;
  /** ELK methods: the merit `½Σ‖s_t − f(s_{t−1})‖²` of this iteration's candidate. */
  readonly merit?: number;
  /**
   * ELK with adaptive damping: whether the candidate was accepted; a rejected one is replaced by the
   * Jacobi step of the current iterate, and the next step is damped more.
   */
  readonly accepted?: boolean;
  /** Method `auto`: which method produced this iteration. */
  readonly method?: Method;
}

/** One iterate of a parallel method, passed to `onIterate`. */
export interface IterateSnapshot {
  /** The iteration that produced it (as in {@link IterationInfo}), with its residual and step. */
  readonly info: IterationInfo;
  /** The iterate's states, row-major `[B, T, D]` (B = 1 for unbatched inputs), in the evaluation's dtype. */
  readonly states: Float32Array | Float64Array;
  /** `[B, T, D]`. */
  readonly shape: readonly [number, number, number];
}

/** Options of {@link evaluate}. */
export interface EvaluateOptions {
  /** A backend instance or a registered name. Default: the highest-priority registered backend. */
  readonly backend?: string | ComputeBackend;
  /** Default `'quasi-deer'`. */
  readonly method?: Method;
  /** Default: `'float64'` when the backend supports it, else `'float32'`. */
  readonly dtype?: DType;
  /**
   * The certificate's bound: a parallel method stops converged when the true residual
   * `max_t ‖s_t − f(s_{t−1}, u_t)‖∞` of its current iterate, evaluated in the result's dtype, is
   * ≤ `tolerance` (an absolute bound, in the units of the state). Default 1e-7 (float64) / 1e-4
   * (float32) — ALGORITHMS.md §8; values below 16 unit roundoffs of the dtype (`MIN_TOLERANCE`) are
   * refused, since no residual that small can be certified.
   */
  readonly tolerance?: number;
  /**
   * Iteration cap. Default `T + 1`: by finite convergence DEER, quasi-DEER and ELK / quasi-ELK with
   * the Kalman filter are exact after `T` iterations; `max(T + 1, 1000)` for ELK methods with
   * `kalman: 'smoother'`, which have no such guarantee. For `auto` it caps all its methods together
   * (should quasi-ELK stop early — a stall — ELK restarts with what is left of the cap).
   */
  readonly maxIterations?: number;
  /**
   * Initial state `s_0`: `[D]` (shared by the batch) or `[B, D]`. Default zeros.
   */
  readonly initialState?: number[] | number[][] | Float64Array | Float32Array | ShapedArray;
  /**
   * First iterate of the parallel methods: `'zeros'` (default), data `[T, D]` / `[B, T, D]`,
   * or a previous {@link EvaluateResult} on the same problem (warm start).
   */
  readonly initialGuess?: 'zeros' | number[][] | number[][][] | ShapedArray | EvaluateResult;
  /** Number of steps, for autonomous cells (which take no inputs). */
  readonly steps?: number;
  /** Batch size for autonomous cells when `initialState` does not give it. Default 1. */
  readonly batch?: number;
  /**
   * Iterates are clipped to `±clip` and NaN reset to 0 (ALGORITHMS.md §8), counted in
   * `diagnostics.clippedValues` / `nonFiniteResets`; an iterate with clipped or reset values is
   * never certified as converged. Default 1e8.
   */
  readonly clip?: number;
  /**
   * Progress callback, called once per iteration (parallel methods) or every `progressEvery` steps
   * (sequential, fused or not). Evaluations also yield to the event loop every ~20 ms, so timers,
   * I/O and `signal` are served while they run.
   */
  readonly onIteration?: (info: IterationInfo) => void;
  /**
   * Parallel methods: called after each iteration with that iteration's iterate — the whole
   * trajectory `[B, T, D]` read back from the backend — for animations and studies of how the
   * iterates approach the solution. It costs one read-back of the trajectory per iteration (on a
   * GPU, a second transfer beside the scalars, counted in `diagnostics.device`); leave it unset
   * otherwise. The evaluation waits for the read (an abort does not), not for anything the
   * callback starts. Not called by the sequential method.
   */
  readonly onIterate?: (iterate: IterateSnapshot) => void;
  /** Sequential method: call `onIteration` every this many steps. Default 4096. */
  readonly progressEvery?: number;
  /** Cancels the evaluation; it then rejects with an `AbortError` and frees everything. */
  readonly signal?: AbortSignal;
  /**
   * ELK methods: `'filter'` (default) steps to the Kalman filter mean, as the published ELK code
   * does — it converges fast on unstable models; `'smoother'` steps to the smoother mean, the exact
   * Levenberg–Marquardt step (monotone in the damped objective, but it can stall on badly
   * conditioned problems such as the trained AR-GRU).
   */
  readonly kalman?: KalmanMode;
  /**
   * ELK methods: the pseudo-observation variance σ² = 1/λ (λ is the Levenberg–Marquardt damping;
   * larger σ² = less damping, σ² → ∞ is DEER), or `'adaptive'` (default): a trust region that starts
   * undamped — DEER's step — and damps only after a step fails (its merit `½Σ‖r_t‖²` over 3× the
   * current one: the step is replaced by the Jacobi step and σ² falls to 1, then ÷4 per failure;
   * it grows ×1.5 after each step that lowers the merit). Every ELK step, damped or not, extends the
   * exact prefix of the trajectory by at least one step (Kalman filter), so ELK, like DEER, is exact
   * after at most T iterations. See `ADAPTIVE_DAMPING` and `solveElk`.
   */
  readonly sigmaSq?: number | 'adaptive';
  /**
   * Method `auto`: evaluate sequentially when the backend says that is faster (a CPU). Default
   * `true`; `false` forces the parallel path (quasi-ELK, then ELK).
   */
  readonly allowSequential?: boolean;
  /**
   * Estimate the largest Lyapunov exponent along the returned trajectory (`diagnostics.lyapunov`):
   * whether the model is predictable, i.e. whether parallel iterations stay few as T grows. It costs
   * a dense linearisation of a window of at most `LYAPUNOV_WINDOW` steps and two batched scans.
   * Default: `true` when a parallel method runs, `false` for sequential evaluation.
   */
  readonly lyapunov?: boolean;
  /**
   * Use the backend's fused kernels for the cell (`ComputeBackend.bindProgram`) when both have them:
   * one pass per linearisation, sweep and rollout instead of op by op. Default `true`; `false`
   * forces the op-by-op path (the reference the fused kernels are checked against).
   */
  readonly fused?: boolean;
}

/** The outcome of {@link evaluate}. The caller owns `states` and frees it with `dispose()`. */
export interface EvaluateResult {
  readonly method: Method;
  readonly backend: string;
  readonly dtype: DType;
  /** `[T, D]` for unbatched inputs, `[B, T, D]` for batched ones. */
  readonly states: Tensor;
  /** The initial states `s_0` the trajectory starts from, row-major `[B, D]` (float64, as given). */
  readonly initialState: Float64Array;
  readonly shape: readonly number[];
  /** Iterations run (the sequential method reports 1). */
  readonly iterations: number;
  /**
   * A certificate: true only when the returned trajectory's true residual (below) is ≤ the
   * tolerance, no value of the returned iterate was clipped or reset, and the solver did not stop
   * at the iteration cap. `reason` says why when it is false.
   */
  readonly converged: boolean;
  /** Why the evaluation stopped (`'converged'` exactly when `converged` is true). */
  readonly reason: StopReason;
  /**
   * True residual `max_t ‖s_t − f(s_{t−1})‖∞` of the returned states (parallel methods), evaluated
   * in the result's dtype — or, by fused host kernels, in float64 from the stored states. The sequential method computes each `s_t` as `f(s_{t−1})`, so it
   * reports 0 by construction, or NaN when the trajectory overflowed.
   */
  readonly residual: number;
  /** One record per iteration. */
  readonly history: readonly IterationInfo[];
  readonly diagnostics: {
    /** Total NaN/Inf elements reset over all iterations. */
    readonly nonFiniteResets: number;
    /** Total finite elements clipped to `±clip` over all iterations. */
    readonly clippedValues: number;
    /** Wall time of the solve in milliseconds (upload and download included, file I/O not). */
    readonly elapsedMs: number;
    /** Tolerance and iteration cap actually used. */
    readonly tolerance: number;
    readonly maxIterations: number;
    /** Whether the backend's fused kernels evaluated the cell (see `options.fused`). */
    readonly fused: boolean;
    /**
     * Device backends (those with `deviceCounters`): the dispatches and queue submissions of the
     * whole evaluation, and of one iteration (the median over the iterations after the first, when
     * there were at least two).
     */
    readonly device?: DeviceWork;
    /**
     * The largest Lyapunov exponent (per step) along the returned trajectory's last window (see
     * `options.lyapunov`), with its verdict and a one-line reading; method `auto` on a parallel
     * backend estimates it along the first steps before choosing. Absent when not estimated (or the
     * window does not fit: `B·W·D²` Jacobian entries are capped).
     */
    readonly lyapunov?: LyapunovEstimate;
  };
  /** The methods that ran, in order, and why: one entry, or several when `auto` switched methods. */
  readonly methods: readonly MethodRun[];
  /** The states on the host, flat row-major. */
  read(): Promise<HostArray>;
  /** The states as nested arrays (`[T][D]` or `[B][T][D]`). */
  toArray(): Promise<number[][] | number[][][]>;
  /** Frees `states`. */
  dispose(): void;
}
