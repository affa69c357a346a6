/**
 * The `ComputeBackend` contract. Core and the cells in @pelk/models are written only against this
 * interface; each backend package implements all of it.
 *
 * Conventions every backend follows:
 * - Tensors are opaque, immutable once created, row-major, and owned by the backend that made them.
 *   Ops never mutate their inputs and always return new tensors (which may share storage with an
 *   input only when the op is a pure view such as `reshape`).
 * - Every tensor created inside `tidy(fn)` is disposed when `fn` returns, except the tensors `fn`
 *   returns and those passed to `keep`. Outside `tidy`, the caller disposes.
 * - Sequences use the layout `[B, T, D]` (batch, time, channel); dense per-step matrices `[B, T, D, D]`
 *   with the row index first (`A[b, t, i, j]` multiplies `s[j]` into row `i`).
 */

import type { BindContext } from './cell.js';
import type { CellProgram, FusedCell } from './program.js';

/** Element type of a tensor. */
export type DType = 'float32' | 'float64';

/** An opaque, backend-owned array with a shape and a dtype. */
export interface Tensor {
  readonly shape: readonly number[];
  readonly dtype: DType;
  /** Number of elements (product of `shape`). */
  readonly size: number;
}

/** Host array matching a dtype. */
export type HostArray = Float32Array | Float64Array;

/** Elementwise unary functions every backend provides. */
export type UnaryOp =
  | 'neg'
  | 'abs'
  | 'square'
  | 'sqrt'
  | 'exp'
  | 'log'
  | 'tanh'
  | 'sigmoid'
  /** `clip(0.2·x + 0.5, 0, 1)` — TensorFlow.js / Keras 2 convention. */
  | 'hardSigmoid'
  /** Derivative of `hardSigmoid`: 0.2 where `|x| < 2.5`, else 0. */
  | 'hardSigmoidGrad'
  | 'relu'
  /** Derivative of `relu`: 1 where `x > 0`, else 0. */
  | 'step'
  | 'softplus';

/** Elementwise binary functions (NumPy broadcasting). */
export type BinaryOp = 'add' | 'sub' | 'mul' | 'div' | 'max' | 'min';

/** What a backend can do and how much it can hold; core reads it to choose methods and refuse clearly. */
export interface BackendCapabilities {
  /** dtypes this backend computes in. */
  readonly dtypes: readonly DType[];
  /** Unit roundoff per supported dtype (2^-53 for float64, 2^-24 for float32). */
  readonly epsilon: Readonly<Partial<Record<DType, number>>>;
  /** Human-readable device description (CPU model, GPU adapter, …). */
  readonly device: string;
  /** True when evaluating step by step is usually faster here than a parallel method (a CPU). */
  readonly prefersSequential: boolean;
  /**
   * True when the fused cells `bindProgram` returns for RNN programs (GRU, LSTM, Elman) sweep
   * adjoints (`FusedCell.adjoint`): `grad` then binds one for its sequential sweep. Default false.
   */
  readonly fusedAdjoint?: boolean;
  readonly limits: {
    /** Largest number of elements one tensor may have. */
    readonly maxTensorElements: number;
    /**
     * The memory budget of one evaluation, in bytes: core refuses a problem whose estimated peak
     * (`estimateEvaluationBytes`, per dtype) exceeds it. Derived from the machine by each backend
     * (a fraction of system memory, the wasm heap limit, the GPU adapter's limits).
     */
    readonly maxTotalBytes: number;
  };
}

/** Options of the linear-recurrence scans. */
export interface ScanOptions {
  /**
   * Run backwards in time: `s_t = A_t s_{t+1} + b_t`, with `s_{T+1}` = the given boundary state.
   * Serves adjoint (gradient) recurrences.
   */
  readonly reverse?: boolean;
}

/**
 * The linear-Gaussian state-space model of the Kalman primitives (ALGORITHMS.md §5–7), which ELK
 * solves: `x_0 = init` known exactly, `x_t = F_t x_{t−1} + b_t + q_t` with `q_t ~ N(0, q·I)`, and
 * observations `y_t = x_t + r_t` with `r_t ~ N(0, r·I)`.
 */
export interface KalmanModel {
  /** `F_t`: `[B, T, D]` for `kalmanDiagonal` (one scalar model per channel), `[B, T, D, D]` for `kalmanDense`. */
  readonly transition: Tensor;
  /** `b_t`: `[B, T, D]`. */
  readonly bias: Tensor;
  /** `y_t`: `[B, T, D]`. */
  readonly observation: Tensor;
  /** `x_0`: `[B, D]`. */
  readonly init: Tensor;
  /** `q > 0`, the process-noise variance (ELK: 1). */
  readonly processVariance: number;
  /** `r > 0`, the observation-noise variance (ELK: σ² = 1/λ). */
  readonly observationVariance: number;
}

/** Options of the Kalman primitives. */
export interface KalmanOptions {
  /** Return smoothed (RTS) instead of filtered moments. Default false. */
  readonly smooth?: boolean;
}

/** Posterior moments from a Kalman primitive. */
export interface KalmanMoments {
  /** `[B, T, D]` means of `x_1..x_T`. */
  readonly mean: Tensor;
  /** Variances `[B, T, D]` (diagonal) or covariances `[B, T, D, D]` (dense). */
  readonly covariance: Tensor;
}

/** Memory in use by a backend, for leak checks. */
export interface BackendMemory {
  /** Live tensors (created and not yet disposed). */
  readonly tensors: number;
  /** Bytes held by live tensors. */
  readonly bytes: number;
  /**
   * Most bytes held at once since the last `resetPeakMemory()` — live tensors plus the scratch
   * space of primitives — where the backend tracks it.
   */
  readonly peakBytes?: number;
}

/**
 * A compute backend: tensor storage, the elementwise and linear-algebra ops cells need, and the
 * sequence primitives the solvers need.
 */
export interface ComputeBackend {
  /** Registry name, e.g. `'cpu'`. */
  readonly name: string;
  readonly capabilities: BackendCapabilities;

  // ---- memory -------------------------------------------------------------------------------
  /** Copies host data into a new tensor. `data.length` must equal the product of `shape`. */
  fromArray(data: ArrayLike<number>, shape: readonly number[], dtype: DType): Tensor;
  /** A tensor filled with `value`. */
  fill(shape: readonly number[], value: number, dtype: DType): Tensor;
  /** Copies a tensor to the host (row-major). */
  read(t: Tensor): Promise<HostArray>;
  /** Releases a tensor's storage. Disposing twice is a no-op. */
  dispose(t: Tensor | readonly Tensor[]): void;
  /**
   * Runs `fn`; disposes every tensor it created except those it returns (and those kept). Scopes
   * nest: returned tensors move to the enclosing scope.
   */
  tidy<R extends Tensor | readonly Tensor[] | Record<string, Tensor> | void>(fn: () => R): R;
  /** Marks a tensor created inside `tidy` to survive it and every enclosing scope (the caller then disposes it). */
  keep<T extends Tensor>(t: T): T;
  /** Live tensors and bytes. */
  memory(): BackendMemory;
  /** Starts a new high-water mark for `memory().peakBytes` (benchmarks call it before a run). */
  resetPeakMemory?(): void;
  /**
   * Device backends: the compute dispatches and queue submissions recorded since the backend was
   * created (evaluations report their share in `diagnostics.device`).
   */
  deviceCounters?(): DeviceCounters;

  // ---- shape ops ----------------------------------------------------------------------------
  /** Same data, new shape (a view where possible). One entry may be -1. */
  reshape(t: Tensor, shape: readonly number[]): Tensor;
  /** Casts to another dtype (a copy). */
  cast(t: Tensor, dtype: DType): Tensor;
  /** Slice `[start, start + size)` along `axis` (negative axes count from the end). */
  slice(t: Tensor, axis: number, start: number, size: number): Tensor;
  /** Concatenates along `axis`; all other dimensions must agree. */
  concat(ts: readonly Tensor[], axis: number): Tensor;
  /** Cyclic shift along the last axis: `out[..., i] = t[..., (i - shift) mod n]`. */
  roll(t: Tensor, shift: number): Tensor;
  /**
   * The previous-state sequence: for `s` `[B, T, D]` and `s0` `[B, D]`,
   * returns `p` with `p[:, 0] = s0` and `p[:, t] = s[:, t - 1]`.
   */
  shiftTime(s: Tensor, s0: Tensor): Tensor;
  /** `x[:, t, :]` of a `[B, T, K]` tensor, as `[B, K]`. */
  timeStep(x: Tensor, t: number): Tensor;
  /** Stacks `T` tensors `[B, K]` into `[B, T, K]`. */
  stackTime(steps: readonly Tensor[]): Tensor;
  /** Swaps the last two axes: `[..., M, N]` → `[..., N, M]` (adjoint recurrences need `Aᵀ`). */
  transpose(t: Tensor): Tensor;
  /** `[..., D]` → `[..., D, D]` with `v` on the diagonal. */
  diagEmbed(v: Tensor): Tensor;
  /** `[..., D, D]` → `[..., D]`, the diagonal. */
  diagPart(m: Tensor): Tensor;

  // ---- arithmetic ---------------------------------------------------------------------------
  unary(op: UnaryOp, x: Tensor): Tensor;
  /** Elementwise with NumPy broadcasting. */
  binary(op: BinaryOp, a: Tensor, b: Tensor): Tensor;
  /** `a·x + b` elementwise with scalars `a`, `b`. */
  affine(x: Tensor, a: number, b: number): Tensor;
  /**
   * Matrix product over the last two axes. `a` is `[..., M, K]`; `b` is `[K, N]` (shared) or
   * `[..., K, N]` with the same leading shape as `a`. `transposeB` uses `b`'s last two axes swapped.
   */
  matmul(a: Tensor, b: Tensor, transposeB?: boolean): Tensor;
  /** `[..., D, D]` × `[..., D]` → `[..., D]` (batched matrix–vector product). */
  matvec(m: Tensor, v: Tensor): Tensor;

  // ---- reductions and safeguards ---------------------------------------------------------------
  /** `max |a - b|` over all elements (NaN if any difference is NaN). */
  maxAbsDiff(a: Tensor, b: Tensor): Promise<number>;
  /** `max |a|` over all elements (NaN if any element is NaN). */
  maxAbs(a: Tensor): Promise<number>;
  /** `Σ (a − b)²` over all elements (the ELK merit is half of it for `a = s`, `b = f(s)`). */
  sumSquaredDiff(a: Tensor, b: Tensor): Promise<number>;
  /**
   * Replaces NaN by 0 and clips to `[-bound, bound]` (±Infinity become ±bound). Returns the cleaned
   * tensor, how many elements were NaN or infinite, and how many finite elements lay beyond
   * `±bound` and were clipped.
   */
  sanitize(t: Tensor, bound: number): Sanitized;
  /**
   * A Newton update in one pass: `value = sanitize(current + correction, bound)` with its counts
   * (as {@link sanitize}), and the step `max |value − current|` (NaN if any difference is NaN).
   * The solvers call it once per iteration; device backends fuse it into one kernel.
   */
  applyCorrection(current: Tensor, correction: Tensor, bound: number): Corrected;

  // ---- sequence primitives ------------------------------------------------------------------
  /**
   * Diagonal linear recurrence, per (batch, channel): `s_t = a_t ⊙ s_{t-1} + b_t`, `s_0 = init`.
   * `a`, `b`: `[B, T, D]`; `init`: `[B, D]`; returns `s_1..s_T` as `[B, T, D]`.
   */
  linearScanDiagonal(a: Tensor, b: Tensor, init: Tensor, options?: ScanOptions): Tensor;
  /**
   * Dense linear recurrence: `s_t = A_t s_{t-1} + b_t`, `s_0 = init`.
   * `A`: `[B, T, D, D]`; `b`: `[B, T, D]`; `init`: `[B, D]`; returns `[B, T, D]`.
   */
  linearScanDense(A: Tensor, b: Tensor, init: Tensor, options?: ScanOptions): Tensor;
  /**
   * Parallel Kalman filter (or RTS smoother) with one scalar model per (batch, channel): the
   * quasi-ELK step. Work O(T·D), depth O(log T).
   */
  kalmanDiagonal(model: KalmanModel, options?: KalmanOptions): KalmanMoments;
  /** Parallel Kalman filter (or RTS smoother) with `D×D` transitions and covariances: the ELK step. */
  kalmanDense(model: KalmanModel, options?: KalmanOptions): KalmanMoments;

  /** Releases pooled or cached resources (buffers, pipelines); live tensors stay valid. */
  trim?(): void;

  /**
   * Host-memory backends only (e.g. the CPU backend): the tensor's storage itself, without a copy,
   * so cells can run fused host kernels (see `BoundCell.rollout`). Callers only read it — except
   * for a tensor they have just created and not yet shared, which they may fill in place.
   */
  hostData?(t: Tensor): HostArray;

  /**
   * Optional fused cell kernels (see `program.ts`): binds a cell's {@link CellProgram} to this
   * backend and one sequence of inputs, or returns `undefined` when the backend has no kernel for
   * it (its kind, an activation, the dtype). Core then evaluates with the cell's op-by-op
   * `BoundCell`. Checks `context` as `Cell.bind` does, before allocating.
   */
  bindProgram?(program: CellProgram, context: BindContext): FusedCell | undefined;
}

/** What {@link ComputeBackend.sanitize} returns. */
export interface Sanitized {
  readonly value: Tensor;
  /** Elements that were NaN or ±Infinity. */
  readonly nonFinite: Promise<number>;
  /** Finite elements beyond `±bound`, clipped to it. */
  readonly clipped: Promise<number>;
}

/** Work a device backend queued (see {@link ComputeBackend.deviceCounters}). */
export interface DeviceCounters {
  /** Compute dispatches (kernel launches). */
  readonly dispatches: number;
  /** Queue submissions (each device read-back submits whatever is queued). */
  readonly submissions: number;
}

/** What {@link ComputeBackend.applyCorrection} returns. */
export interface Corrected extends Sanitized {
  /** `max |value − current|`: how far the iterate moved. */
  readonly step: Promise<number>;
}

/** The number of elements of a shape. */
export function shapeSize(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}
