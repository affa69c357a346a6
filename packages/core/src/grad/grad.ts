/**
 * Exact gradients of a trajectory by the adjoint method (ALGORITHMS.md §9). For `L = Σ_t ḡ_t · s_t`
 * at the solution `s*`, the cotangents `μ_t = ∂L/∂s_t` (through the dynamics) solve the linear
 * reverse recurrence `μ_t = ḡ_t + A_{t+1}ᵀ μ_{t+1}`, `μ_T = ḡ_T`, with `A_t = ∂f/∂s(s*_{t−1}, u_t)`;
 * then `∂L/∂θ = Σ_t (∂f_t/∂θ)ᵀ μ_t`, `∂L/∂u_t = (∂f_t/∂u_t)ᵀ μ_t`, `∂L/∂s_0 = A_1ᵀ μ_1`. Nothing is
 * differentiated through the solver's iterations.
 */
import { type ComputeBackend, type DType, type HostArray, type Tensor, shapeSize } from '../backend.js';
import type { BoundCell, Cell } from '../cell.js';
import { describeValue, InvalidArgumentError, NotConvergedError, ResourceLimitError, ShapeError } from '../errors.js';
import { EVALUATE_OPTION_KEYS, evaluate, isResult, planEvaluation } from '../evaluate.js';
import { bindFused, lazyBound } from '../fused/bind.js';
import { checkKnownKeys } from '../keys.js';
import { storedAs } from '../fused/host-rnn.js';
import type { FusedAdjoint, FusedCell, RnnProgram } from '../program.js';
import { resolveBackend } from '../registry.js';
import { linearizeAt } from '../solvers/newton.js';
import { elapsedSince, Pacer, type Problem } from '../solvers/problem.js';
import type { EvaluateOptions, EvaluateResult, InputsLike, Method, ShapedArray, StopReason } from '../types.js';
import { assertPositiveInteger, assertPositiveNumber, toHostTensor } from '../validate.js';
import { gateRows, type HostVjp, programVjp } from './host-vjp.js';

/**
 * How the adjoint recurrence is solved:
 * - `'sequential'`: one reverse sweep, step by step (backpropagation through time at the converged
 *   trajectory), on the host or as the backend's fused kernels — the cheapest everywhere today;
 * - `'dense'`: the reverse parallel scan with the transposed dense Jacobians `A_{t+1}ᵀ` on the
 *   backend (DEER's linear solve, run backwards), refined until the residual is within tolerance;
 * - `'diagonal'`: reverse parallel scans with the diagonal Jacobians, corrected by exact
 *   vector–Jacobian products each iteration — converges to the exact adjoint (within `T`
 *   iterations, like quasi-DEER), never the diagonal approximation;
 * - `'auto'` (default): `'sequential'`. The vector–Jacobian products run on the host (or in the
 *   backend's fused sweep), and a parallel adjoint needs at least one pass of them per iteration
 *   where the sweep needs one in all; the parallel methods are there for study, and for backends
 *   that will compute those products on the device.
 */
export type AdjointMethod = 'auto' | 'sequential' | 'dense' | 'diagonal';

/** Every adjoint method {@link grad} accepts. */
export const ADJOINT_METHODS: readonly AdjointMethod[] = ['auto', 'sequential', 'dense', 'diagonal'];

/**
 * Default relative tolerances of the adjoint's certificate: its residual
 * `max_t ‖μ_t − ḡ_t − A_{t+1}ᵀ μ_{t+1}‖∞`, computed in float64, is at most this times the scale
 * `max(‖ḡ‖∞, ‖μ‖∞, ‖Aᵀμ‖∞)`.
 */
export const DEFAULT_ADJOINT_TOLERANCE: Readonly<Record<DType, number>> = { float64: 1e-12, float32: 1e-6 };

/** Cotangent data: `[T, D]` or `[B, T, D]`, matching the states. */
export type CotangentLike = number[][] | number[][][] | ShapedArray;

/** Options of {@link grad}: those of `evaluate` for the forward solve, and the adjoint's. */
export interface GradOptions extends EvaluateOptions {
  /**
   * A finished evaluation of the same cell, inputs and initial state, whose states are used instead
   * of evaluating again (its method then names the forward method). The caller still owns it.
   */
  readonly forward?: EvaluateResult;
  /** How to solve the adjoint recurrence. Default `'auto'`. */
  readonly adjoint?: AdjointMethod;
  /** The adjoint certificate's relative bound. Default {@link DEFAULT_ADJOINT_TOLERANCE}. */
  readonly adjointTolerance?: number;
  /** Iteration cap of the parallel adjoint methods. Default `T + 1` (both converge within `T` in exact arithmetic). */
  readonly adjointMaxIterations?: number;
  /**
   * Differentiate at a forward trajectory that did not converge. Default `false`: such a request is
   * refused with a `NotConvergedError`, since that trajectory is not the solution.
   */
  readonly allowNonConverged?: boolean;
}

/** A gradient with its shape (row-major, float64). */
export interface GradientArray {
  readonly data: Float64Array;
  readonly shape: readonly number[];
}

/** One iteration of a parallel adjoint solve. */
export interface AdjointIteration {
  readonly iteration: number;
  /** The relative residual of the adjoint iterate this iteration produced. */
  readonly residual: number;
}

/** How the adjoint was solved, and its certificate. */
export interface AdjointReport {
  readonly method: Exclude<AdjointMethod, 'auto'>;
  /** Why that method (for `'auto'`, why it was chosen). */
  readonly why: string;
  /** Reverse scans run (parallel methods); 1 for the sequential sweep. */
  readonly iterations: number;
  /** Relative residual of the returned adjoint (0 for the sequential sweep, which solves it step by step). */
  readonly residual: number;
  readonly tolerance: number;
  /** True only when the residual is within the tolerance and every value is finite. */
  readonly converged: boolean;
  readonly reason: StopReason;
  readonly history: readonly AdjointIteration[];
  /**
   * True when the sequential sweep ran as the backend's fused adjoint kernels (`FusedCell.adjoint`,
   * in float64 whatever the forward dtype); false for core's host sweep and the parallel methods.
   */
  readonly fused: boolean;
  readonly elapsedMs: number;
}

/** What {@link grad} returns. */
export interface GradResult {
  /** `∂L/∂θ` for each of the cell's parameters, by the cell's names (a model spec's weight names). */
  readonly parameters: Readonly<Record<string, GradientArray>>;
  /** `∂L/∂u`, shaped as the inputs (`[T, I]` or `[B, T, I]`); `null` for autonomous cells. */
  readonly inputs: GradientArray | null;
  /** `∂L/∂s_0`: `[D]` for unbatched inputs, `[B, D]` for batched ones (one row per sequence). */
  readonly initialState: GradientArray;
  /** `L = Σ ḡ ⊙ s` at the forward trajectory. */
  readonly loss: number;
  /** The forward trajectory the gradient was taken at, as read from the backend (`[T, D]` or `[B, T, D]`). */
  readonly states: { readonly data: HostArray; readonly shape: readonly number[] };
  readonly forward: {
    readonly method: Method;
    readonly iterations: number;
    readonly converged: boolean;
    readonly reason: StopReason;
    readonly residual: number;
    readonly elapsedMs: number;
  };
  readonly adjoint: AdjointReport;
  readonly dtype: DType;
  readonly backend: string;
}

const GRAD_KEYS = ['forward', 'adjoint', 'adjointTolerance', 'adjointMaxIterations', 'allowNonConverged'] as const;

/** The cell's analytic vector–Jacobian products: its own, or those of its program; `undefined` when it has neither. */
function analyticVjp(cell: Cell, dtype: DType): HostVjp | undefined {
  if (typeof cell.hostVjp === 'function') return cell.hostVjp(dtype);
  const program = typeof cell.program === 'function' ? cell.program() : undefined;
  return program ? programVjp(program, dtype) : undefined;
}

/**
 * Gradients of `L = Σ_t ḡ_t · s_t` (ḡ: the `cotangent`, shaped as the states) with respect to the
 * cell's parameters, the inputs and the initial state, at the trajectory a method computes — exact
 * at the solution, whatever method found it (no differentiation through iterations). Cells with a
 * program (GRU, LSTM, Elman, `ar`) and Lorenz-96 have analytic vector–Jacobian products; other
 * cells get them from their dense Jacobian and central differences of their inputs (and report no
 * parameters). The adjoint's solve comes with a certificate (`adjoint.converged`), as the forward's.
 *
 * @example
 * ```ts
 * import { grad } from '@pelk/core';
 * import { gru } from '@pelk/models';
 * const cell = gru.random({ inputSize: 2, hiddenSize: 4, seed: 1 });
 * const inputs = [[0.1, 0.2], [0.3, -0.1], [0, 0.5]];
 * const cotangent = [[0, 0, 0, 0], [0, 0, 0, 0], [1, 0, 0, 0]]; // L = s_T[0]
 * const g = await grad(cell, inputs, cotangent, { method: 'deer', backend: 'cpu' });
 * g.parameters.weight_hh_l0; // ∂L/∂W_hh, [12, 4]
 * ```
 */
export async function grad(cell: Cell, inputs: InputsLike, cotangent: CotangentLike, options: GradOptions = {}): Promise<GradResult> {
  if (options === null || typeof options !== 'object') {
    throw new InvalidArgumentError('options', 'an options object', describeValue(options));
  }
  const { forward, adjoint, adjointTolerance, adjointMaxIterations, allowNonConverged, ...given } = options;
  checkKnownKeys(options, [...EVALUATE_OPTION_KEYS, ...GRAD_KEYS], 'options');
  // Host checks first: nothing (not even a device) is started for a request that is refused.
  const method = adjoint ?? 'auto';
  if (!ADJOINT_METHODS.includes(method)) {
    throw new InvalidArgumentError('options.adjoint', ADJOINT_METHODS.map((m) => `'${m}'`).join(', '), describeValue(adjoint));
  }
  if (adjointTolerance !== undefined) assertPositiveNumber(adjointTolerance, 'options.adjointTolerance');
  if (adjointMaxIterations !== undefined) assertPositiveInteger(adjointMaxIterations, 'options.adjointMaxIterations');
  if (allowNonConverged !== undefined && typeof allowNonConverged !== 'boolean') {
    throw new InvalidArgumentError('options.allowNonConverged', 'a boolean', describeValue(allowNonConverged));
  }
  if (forward !== undefined && !isResult(forward)) {
    throw new InvalidArgumentError('options.forward', 'an EvaluateResult of this problem', describeValue(forward));
  }
  if (forward && given.dtype !== undefined && given.dtype !== forward.dtype) {
    throw new InvalidArgumentError('options.dtype', `the forward result's dtype ('${forward.dtype}') or undefined`, describeValue(given.dtype));
  }
  if (forward && !forward.converged && allowNonConverged !== true) {
    throw new NotConvergedError(
      'options.forward',
      'a converged evaluation (or allowNonConverged: true)',
      `one that stopped with reason '${forward.reason}' at residual ${forward.residual.toExponential(3)}`,
    );
  }
  // A reused forward solve brings its dtype and initial state (the trajectory starts from it).
  const evaluateOptions: EvaluateOptions = forward ? { ...given, dtype: forward.dtype, initialState: given.initialState ?? forwardInitialState(forward) } : given;
  const backend = await resolveBackend(options.backend ?? forward?.backend);
  const pl = planEvaluation(cell, inputs, evaluateOptions, backend);
  const { batch: B, steps: T, stateSize: D } = pl;
  const I = cell.inputSize;
  const dtype = pl.dtype;
  const tolerance = adjointTolerance ?? DEFAULT_ADJOINT_TOLERANCE[dtype];
  const maxIterations = adjointMaxIterations ?? T + 1;
  const expectedShape = pl.batched ? [B, T, D] : [T, D];
  const g = toHostTensor(cotangent, 'cotangent', [2, 3]);
  if (g.shape.join(',') !== expectedShape.join(',')) {
    throw new ShapeError('cotangent', `shape [${expectedShape.join(', ')}] (the states' shape)`, `shape [${g.shape.join(', ')}]`);
  }
  for (let k = 0; k < g.data.length; k++) {
    if (!Number.isFinite(g.data[k])) {
      throw new InvalidArgumentError('cotangent', 'finite numbers', `${g.data[k]} at flat index ${k}`, 'NON_FINITE');
    }
  }
  if (forward !== undefined) {
    const got = forward.states.shape.length === 2 ? [1, ...forward.states.shape] : [...forward.states.shape];
    if (got.join(',') !== [B, T, D].join(',')) {
      throw new ShapeError('options.forward', `a result of shape [${expectedShape.join(', ')}]`, `shape [${forward.states.shape.join(', ')}]`);
    }
    const mismatch = forward.initialState.findIndex((v, k) => v !== pl.init[k]);
    if (mismatch >= 0) {
      throw new InvalidArgumentError(
        'options.initialState',
        "the forward result's initial state (or undefined: it is taken from the result)",
        `one that differs at flat index ${mismatch} (${pl.init[mismatch]} against ${forward.initialState[mismatch]})`,
      );
    }
  }
  const vjp = analyticVjp(cell, dtype);
  // Dense Jacobians must fit when asked for, or when they are the only products a cell has.
  if (method === 'dense' || vjp === undefined) checkDenseFits(backend, B, T, D, I, dtype);

  // ---- forward ----
  const fwd = forward ?? (await evaluate(cell, inputs, evaluateOptions));
  let released = false;
  /** Frees a forward solve this call made (once): as soon as its states are read, or on failure. */
  const release = (): void => {
    if (forward || released) return;
    released = true;
    fwd.dispose();
  };
  try {
    if (!fwd.converged && allowNonConverged !== true) {
      throw new NotConvergedError(
        'forward evaluation',
        'a converged evaluation (or options.allowNonConverged: true)',
        `${fwd.method} stopped with reason '${fwd.reason}' at residual ${fwd.residual.toExponential(3)} after ${fwd.iterations} iterations`,
      );
    }
    const states = await fwd.read();
    release(); // its device memory is not needed by the adjoint
    const round = dtype === 'float32' ? Math.fround : (v: number) => v;
    // The states entering each step (s_0 first), and the inputs, as the forward solve saw them.
    const prev = new Float64Array(B * T * D);
    for (let b = 0; b < B; b++) {
      for (let j = 0; j < D; j++) prev[b * T * D + j] = round(pl.init[b * D + j]);
      prev.set(states.subarray(b * T * D, (b * T + T - 1) * D), b * T * D + D);
    }
    const u = pl.inputs ? Float64Array.from(pl.inputs.data, round) : null;
    const problem: AdjointProblem = { backend, cell, dtype, B, T, D, I, prev, states, u, g: g.data, pacer: new Pacer(options.signal), fused: pl.fused };
    const started = performance.now();
    const engine = vjp ?? (await genericVjp(problem));
    const chosen = chooseAdjoint(method, backend);
    const solved = chosen.method === 'sequential' ? await sweepAdjoint(problem, engine) : await parallelAdjoint(problem, engine, chosen.method, tolerance, maxIterations);
    const elapsedMs = elapsedSince(started);
    let loss = 0;
    for (let k = 0; k < states.length; k++) loss += g.data[k] * states[k];
    const unbatched = !pl.batched;
    const parameters: Record<string, GradientArray> = {};
    const named = engine.report ? engine.report(solved.parameters) : engine.parameters.map((q, k) => ({ ...q, data: solved.parameters[k] }));
    for (const q of named) parameters[q.name] = { data: q.data, shape: q.shape };
    const finite = solved.finite;
    return {
      parameters,
      inputs: solved.inputs && { data: solved.inputs, shape: unbatched ? [T, I] : [B, T, I] },
      initialState: { data: solved.initialState, shape: unbatched ? [D] : [B, D] },
      loss,
      states: { data: states, shape: expectedShape },
      forward: {
        method: fwd.method,
        iterations: fwd.iterations,
        converged: fwd.converged,
        reason: fwd.reason,
        residual: fwd.residual,
        elapsedMs: fwd.diagnostics.elapsedMs,
      },
      adjoint: {
        method: chosen.method,
        why: [chosen.why, vjp ? undefined : 'the cell has no analytic vector–Jacobian products, so they come from its dense Jacobian and central differences of its inputs', solved.note]
          .filter((part) => part !== undefined)
          .join('; '),
        iterations: solved.iterations,
        residual: solved.residual,
        tolerance,
        converged: finite && solved.reason === 'converged',
        reason: finite ? solved.reason : 'non-finite',
        history: solved.history,
        fused: solved.fused,
        elapsedMs,
      },
      dtype,
      backend: backend.name,
    };
  } finally {
    release();
  }
}

/** A trajectory {@link gradAt} differentiates at: `[B, T, ·]` host arrays (B = 1 for one sequence). */
export interface Trajectory {
  /** `s_1..s_T`, `[B, T, D]`. */
  readonly states: ShapedArray;
  /** `[B, T, I]`, or `null` for autonomous cells. */
  readonly inputs: ShapedArray | null;
  /** `s_0`, `[B, D]`. */
  readonly initialState: ShapedArray;
  /** The dtype the trajectory was computed in: float32 weights and values are rounded as it stored them. Default `'float64'`. */
  readonly dtype?: DType;
}

/** What {@link gradAt} returns: {@link GradResult}'s gradients, all batched (`[B, T, I]`, `[B, D]`). */
export type TrajectoryGradient = Pick<GradResult, 'parameters' | 'inputs' | 'initialState' | 'loss'>;

/**
 * The exact gradient of `L = Σ ḡ ⊙ states` at a given trajectory, synchronously: the adjoint's
 * reverse sweep on the host, in float64, with the cell's analytic vector–Jacobian products (cells
 * without them are refused). For callers that cannot await — a `tf.customGrad` gradient function —
 * and for trajectories computed elsewhere. The trajectory is trusted to solve the recurrence (no
 * certificate: use {@link grad} for a certified forward and adjoint solve).
 *
 * @example
 * ```ts
 * const g = gradAt(cell, { states, inputs, initialState }, { data: c, shape: states.shape });
 * ```
 */
export function gradAt(cell: Cell, trajectory: Trajectory, cotangent: ShapedArray): TrajectoryGradient {
  const dtype = trajectory.dtype ?? 'float64';
  if (dtype !== 'float32' && dtype !== 'float64') throw new InvalidArgumentError('trajectory.dtype', "'float32' or 'float64'", describeValue(dtype));
  const vjp = analyticVjp(cell, dtype);
  if (!vjp) {
    throw new InvalidArgumentError('cell', 'a cell with analytic vector–Jacobian products (a program, or hostVjp)', `a '${cell.kind}' cell without them (use grad, which derives them)`);
  }
  const [B, T, D] = trajectory.states.shape;
  const I = cell.inputSize;
  const expect3 = (a: ShapedArray | null, field: string, shape: readonly number[]): void => {
    const got = a ? a.shape : [];
    if (got.join(',') !== shape.join(',') || (a !== null && a.data.length !== shapeSize(shape))) {
      throw new ShapeError(field, `shape [${shape.join(', ')}]`, `shape [${got.join(', ')}]`);
    }
  };
  if (trajectory.states.shape.length !== 3 || D !== cell.stateSize) {
    throw new ShapeError('trajectory.states', `shape [B, T, ${cell.stateSize}]`, `shape [${trajectory.states.shape.join(', ')}]`);
  }
  expect3(trajectory.states, 'trajectory.states', [B, T, D]);
  expect3(trajectory.initialState, 'trajectory.initialState', [B, D]);
  if (I > 0) expect3(trajectory.inputs, 'trajectory.inputs', [B, T, I]);
  expect3(cotangent, 'cotangent', [B, T, D]);
  for (let k = 0; k < cotangent.data.length; k++) {
    if (!Number.isFinite(cotangent.data[k])) throw new InvalidArgumentError('cotangent', 'finite numbers', `${cotangent.data[k]} at flat index ${k}`, 'NON_FINITE');
  }
  const round = dtype === 'float32' ? Math.fround : (v: number) => v;
  const states = trajectory.states.data;
  const prev = new Float64Array(B * T * D);
  for (let b = 0; b < B; b++) {
    for (let j = 0; j < D; j++) prev[b * T * D + j] = round(trajectory.initialState.data[b * D + j]);
    for (let k = 0; k < (T - 1) * D; k++) prev[b * T * D + D + k] = states[b * T * D + k];
  }
  const u = I > 0 && trajectory.inputs ? Float64Array.from(trajectory.inputs.data, round) : null;
  const solved = sequentialAdjoint({ B, T, D, I, prev, u, g: cotangent.data }, vjp);
  let loss = 0;
  for (let k = 0; k < B * T * D; k++) loss += cotangent.data[k] * states[k];
  const named = vjp.report ? vjp.report(solved.parameters) : vjp.parameters.map((q, k) => ({ ...q, data: solved.parameters[k] }));
  return {
    parameters: Object.fromEntries(named.map((q) => [q.name, { data: q.data, shape: q.shape }])),
    inputs: solved.inputs && { data: solved.inputs, shape: [B, T, I] },
    initialState: { data: solved.initialState, shape: [B, D] },
    loss,
  };
}

/** A forward result's initial state as evaluate options take it (`[B, D]`). */
function forwardInitialState(forward: EvaluateResult): ShapedArray {
  const D = forward.states.shape[forward.states.shape.length - 1];
  return { data: forward.initialState, shape: [forward.initialState.length / D, D] };
}

/**
 * Which adjoint method runs, and why: as asked, or for `'auto'` the sequential sweep. Every solve
 * takes its vector–Jacobian products on the host (or the backend's fused sweep): the sweep is one
 * pass of them, while a parallel adjoint needs a pass of state products per iteration, then the
 * full pass, besides its scans and transfers — so it cannot be cheaper until a backend computes
 * those products on the device.
 */
function chooseAdjoint(method: AdjointMethod, backend: ComputeBackend): { method: Exclude<AdjointMethod, 'auto'>; why: string } {
  if (method !== 'auto') return { method, why: 'requested' };
  if (backend.capabilities.prefersSequential) {
    return { method: 'sequential', why: `backend '${backend.name}' runs a sequential sweep faster than parallel scans` };
  }
  return {
    method: 'sequential',
    why: 'the vector–Jacobian products run on the host: the sequential sweep is one pass of them, a parallel adjoint at least one per iteration',
  };
}

/** The estimate of a dense adjoint's `[B, T, D, max(D, I)]` Jacobians, and whether it fits the backend. */
function denseEstimate(backend: ComputeBackend, B: number, T: number, D: number, I: number, dtype: DType): { elements: number; bytes: number; fits: boolean } {
  const elements = B * T * D * Math.max(D, I);
  const limits = backend.capabilities.limits;
  // The Jacobians, their shifted copy, its transpose, and a scan's scratch of the same size.
  const bytes = elements * (dtype === 'float64' ? 8 : 4) * 4;
  return { elements, bytes, fits: elements <= limits.maxTensorElements && bytes <= limits.maxTotalBytes };
}

/** Refuses a dense adjoint whose `[B, T, D, D]` Jacobians (and the input Jacobians of a generic cell) the backend cannot hold. */
function checkDenseFits(backend: ComputeBackend, B: number, T: number, D: number, I: number, dtype: DType): void {
  const { elements, bytes, fits } = denseEstimate(backend, B, T, D, I, dtype);
  const limits = backend.capabilities.limits;
  if (!fits) {
    throw new ResourceLimitError(
      'options.adjoint',
      `an adjoint whose dense Jacobians fit backend '${backend.name}' (at most ${limits.maxTensorElements} elements and ${limits.maxTotalBytes} bytes)`,
      `B·T·D·max(D, I) = ${elements} elements (about ${bytes} bytes): use adjoint 'sequential' or 'diagonal' with a cell that has analytic vector–Jacobian products`,
    );
  }
}

/** Everything an adjoint solve needs, on the host in float64. */
interface AdjointProblem {
  readonly backend: ComputeBackend;
  readonly cell: Cell;
  readonly dtype: DType;
  readonly B: number;
  readonly T: number;
  readonly D: number;
  readonly I: number;
  /** `[B, T, D]`: the state entering each step (`s_0`, then `s_1..s_{T−1}`). */
  readonly prev: Float64Array;
  /** `[B, T, D]`: the forward states `s_1..s_T`. */
  readonly states: HostArray;
  /** `[B, T, I]` inputs, or `null`. */
  readonly u: Float64Array | null;
  /** `[B, T, D]` cotangent ḡ. */
  readonly g: ArrayLike<number>;
  readonly pacer: Pacer;
  readonly fused: boolean;
}

interface AdjointSolution {
  readonly parameters: Float64Array[];
  readonly inputs: Float64Array | null;
  readonly initialState: Float64Array;
  readonly iterations: number;
  readonly residual: number;
  readonly reason: StopReason;
  readonly history: AdjointIteration[];
  readonly finite: boolean;
  /** Swept by the backend's fused kernels. */
  readonly fused: boolean;
  /** How the sweep ran, when that is worth saying (the fused kernels, or why not). */
  readonly note?: string;
}

function allFinite(...arrays: readonly (ArrayLike<number> | null)[]): boolean {
  for (const a of arrays) {
    if (!a) continue;
    for (let k = 0; k < a.length; k++) if (!Number.isFinite(a[k])) return false;
  }
  return true;
}

/** Rows of the reverse sweep between two chances to serve the event loop (and an abort signal). */
const SWEEP_ROWS = 2048;

/**
 * The reverse sweep: `μ_T = ḡ_T`, then `μ_t = ḡ_t + A_{t+1}ᵀ μ_{t+1}` step by step, each step's
 * vector–Jacobian product also adding its share of `∂L/∂θ` and giving `∂L/∂u_t`. A generator that
 * yields every {@link SWEEP_ROWS} steps, so an asynchronous caller can pace it.
 */
function* reverseSweep(p: Pick<AdjointProblem, 'B' | 'T' | 'D' | 'I' | 'prev' | 'u' | 'g'>, vjp: HostVjp): Generator<number, AdjointSolution, void> {
  const { B, T, D, I, prev, u, g } = p;
  const parameters = vjp.parameters.map((q) => new Float64Array(shapeSize(q.shape)));
  const inputs = u ? new Float64Array(B * T * I) : null;
  const initialState = new Float64Array(B * D);
  const mu = new Float64Array(D);
  const carry = new Float64Array(D); // A_{t+1}ᵀ μ_{t+1}
  let rows = 0;
  for (let b = 0; b < B; b++) {
    carry.fill(0);
    for (let t = T - 1; t >= 0; t--) {
      const row = b * T + t;
      for (let j = 0; j < D; j++) mu[j] = g[row * D + j] + carry[j];
      vjp.step(prev, row * D, u, row * I, mu, 0, { state: carry, stateOffset: 0, input: inputs, inputOffset: row * I, parameters });
      if (++rows % SWEEP_ROWS === 0) yield rows;
    }
    initialState.set(carry, b * D);
  }
  vjp.flush?.();
  return sweepSolution(parameters, inputs, initialState, false);
}

/** A sequential sweep's result: exact step by step, so its residual is 0 — unless a value is not finite. */
function sweepSolution(parameters: Float64Array[], inputs: Float64Array | null, initialState: Float64Array, fused: boolean, note?: string): AdjointSolution {
  const finite = allFinite(initialState, inputs, ...parameters);
  return { parameters, inputs, initialState, iterations: 1, residual: finite ? 0 : Number.NaN, reason: finite ? 'converged' : 'non-finite', history: [], finite, fused, note };
}

/** The reverse sweep, synchronously (for {@link gradAt}). */
function sequentialAdjoint(p: Pick<AdjointProblem, 'B' | 'T' | 'D' | 'I' | 'prev' | 'u' | 'g'>, vjp: HostVjp): AdjointSolution {
  const sweep = reverseSweep(p, vjp);
  for (;;) {
    const next = sweep.next();
    if (next.done) return next.value;
  }
}

/** The reverse sweep, serving the event loop and the abort signal every {@link SWEEP_ROWS} steps. */
async function sequentialAdjointPaced(p: AdjointProblem, vjp: HostVjp): Promise<AdjointSolution> {
  const sweep = reverseSweep(p, vjp);
  for (;;) {
    const next = sweep.next();
    if (next.done) return next.value;
    await p.pacer.tick(0);
  }
}

/**
 * Multiply–adds the fused sweep runs between two chances to serve the event loop (and an abort
 * signal): about 20 ms at the WebAssembly kernels' rate on one core.
 */
const FUSED_SWEEP_MACS = 2 ** 26;

/**
 * The sequential adjoint: the backend's fused sweep when it has one for the cell's program, else
 * core's host sweep (saying why, when a fused sweep was there but could not run).
 */
async function sweepAdjoint(p: AdjointProblem, vjp: HostVjp): Promise<AdjointSolution> {
  const fused = await fusedSweep(p, vjp);
  if (fused === undefined || typeof fused === 'string') {
    const host = await sequentialAdjointPaced(p, vjp);
    return fused ? { ...host, note: fused } : host;
  }
  return fused;
}

/**
 * The reverse sweep as the backend's fused kernels (`FusedCell.adjoint`); `undefined` when it has
 * none for this cell, and the reason when its float64 binding does not fit (the host sweep then
 * runs, and `adjoint.why` says so). It runs in float64 whatever the forward
 * dtype — on the weights, inputs and states rounded as the forward solve stored them — so that it
 * computes what the host sweep computes (and is exact step by step, as its certificate says).
 */
async function fusedSweep(p: AdjointProblem, vjp: HostVjp): Promise<AdjointSolution | string | undefined> {
  const { backend, cell, B, T, D, I } = p;
  const { capabilities } = backend;
  if (!p.fused || typeof backend.bindProgram !== 'function' || capabilities.fusedAdjoint !== true || !capabilities.dtypes.includes('float64')) return undefined;
  const program = typeof cell.program === 'function' ? cell.program() : undefined;
  if (!program || program.kind === 'ar' || !reportsProgramParameters(vjp, program)) return undefined;
  const rounded: RnnProgram = {
    ...program,
    weightIh: storedAs(p.dtype, program.weightIh),
    weightHh: storedAs(p.dtype, program.weightHh),
    biasIh: storedAs(p.dtype, program.biasIh),
    biasHh: storedAs(p.dtype, program.biasHh),
  };
  const owned: Tensor[] = [];
  let fused: FusedCell | undefined;
  let sweep: FusedAdjoint | undefined;
  try {
    const keep = (t: Tensor): Tensor => {
      owned.push(t);
      return t;
    };
    let inputs: Tensor | null;
    try {
      inputs = p.u ? keep(backend.fromArray(p.u, [B, T, I], 'float64')) : null;
      fused = backend.bindProgram(rounded, { dtype: 'float64', inputs, batch: B, steps: T });
      if (!fused?.adjoint) return undefined;
      const prev = keep(backend.fromArray(p.prev, [B, T, D], 'float64'));
      const cotangent = keep(backend.fromArray(Float64Array.from(p.g), [B, T, D], 'float64'));
      sweep = fused.adjoint(prev, cotangent, { inputs: inputs !== null });
    } catch (err) {
      // Too big for the backend in float64: the host sweep needs no device memory.
      if (err instanceof ResourceLimitError) return `the backend's fused adjoint did not fit (${err.message}), so core's host sweep ran it`;
      throw err;
    }
    const G = gateRows(program);
    // Per step of one entry: the gates recomputed, W_hhᵀ μ, and the weights' gradients.
    const chunk = Math.max(1, Math.floor(FUSED_SWEEP_MACS / (B * 3 * G * (program.hiddenSize + I))));
    do await p.pacer.tick(0);
    while (sweep.advance(chunk) < T);
    const got = sweep.finish();
    owned.push(...got.parameters, got.initialState, ...(got.inputs ? [got.inputs] : []));
    const read = async (t: Tensor) => Float64Array.from(await p.pacer.settle(backend.read(t), 0));
    const parameters: Float64Array[] = [];
    for (const t of got.parameters) parameters.push(await read(t));
    const gradInputs = got.inputs ? await read(got.inputs) : null;
    return sweepSolution(parameters, gradInputs, await read(got.initialState), true, `the backend's fused adjoint kernels swept it (in float64)`);
  } finally {
    sweep?.dispose();
    fused?.dispose();
    backend.dispose(owned);
  }
}

/** Whether a cell's products report the program's own parameters (`W_ih`, `W_hh`, `b_ih`, `b_hh` in PyTorch layout), which a fused sweep returns. */
function reportsProgramParameters(vjp: HostVjp, p: RnnProgram): boolean {
  const G = gateRows(p);
  const want = [[G, p.inputSize], [G, p.hiddenSize], [G], [G]];
  return vjp.parameters.length === want.length && vjp.parameters.every((q, k) => q.shape.join(',') === want[k].join(','));
}

/** `v[b, t] = A_tᵀ w[b, t]` for every step (state products only). */
function stateProducts(p: AdjointProblem, vjp: HostVjp, w: Float64Array, v: Float64Array): void {
  const { B, T, D, I, prev, u } = p;
  for (let row = 0; row < B * T; row++) {
    vjp.step(prev, row * D, u, row * I, w, row * D, { state: v, stateOffset: row * D, input: null, inputOffset: 0, parameters: null });
  }
}

/**
 * The parallel adjoint: from `μ = 0`, each iteration computes the residual
 * `r_t = ḡ_t + A_{t+1}ᵀ μ_{t+1} − μ_t` exactly (vector–Jacobian products, float64) and adds the
 * correction `δ` of the reverse scan `δ_t = Ã_{t+1} δ_{t+1} + r_t` on the backend, where `Ã` is
 * `Aᵀ` (dense: Newton on a linear system, exact in one step up to rounding, refined after) or its
 * diagonal (a quasi-Newton iteration whose error is strictly triangular in time, so it is exact
 * after at most `T` iterations). Stops when the residual is within `tolerance` of the scale.
 */
async function parallelAdjoint(p: AdjointProblem, vjp: HostVjp, kind: 'dense' | 'diagonal', tolerance: number, maxIterations: number): Promise<AdjointSolution> {
  const { backend, B, T, D, I, g, dtype } = p;
  const n = B * T * D;
  const mu = new Float64Array(n);
  const v = new Float64Array(n);
  const r = new Float64Array(n);
  const history: AdjointIteration[] = [];
  let gScale = 0;
  for (let k = 0; k < n; k++) gScale = Math.max(gScale, Math.abs(g[k]));
  const transition = await adjointTransitions(p, kind);
  let zero: Tensor | undefined;
  let reason: StopReason = 'max-iterations';
  let residual = Number.NaN;
  let iterations = 0;
  try {
    const boundary = backend.fill([B, D], 0, dtype);
    zero = boundary;
    for (;;) {
      // r = ḡ + shift(Aᵀμ) − μ, and the scale it is measured against.
      if (iterations > 0) stateProducts(p, vjp, mu, v);
      let worst = 0;
      let scale = gScale;
      for (let b = 0; b < B; b++) {
        for (let t = 0; t < T; t++) {
          const o = (b * T + t) * D;
          for (let j = 0; j < D; j++) {
            const next = iterations > 0 && t + 1 < T ? v[o + D + j] : 0;
            const rk = g[o + j] + next - mu[o + j];
            r[o + j] = rk;
            const a = Math.abs(rk);
            worst = a > worst || Number.isNaN(a) ? a : worst;
            scale = Math.max(scale, Math.abs(mu[o + j]), Math.abs(next));
          }
        }
      }
      residual = scale > 0 ? worst / scale : worst;
      if (iterations > 0) history.push({ iteration: iterations, residual });
      if (Number.isNaN(residual) || !Number.isFinite(scale)) {
        reason = 'non-finite';
        break;
      }
      if (residual <= tolerance) {
        reason = 'converged';
        break;
      }
      // No stall test: the residual of this iteration need not fall monotonically (it converges
      // step by step along the sequence, finite convergence), so only the cap ends it.
      if (iterations >= maxIterations) break;
      await p.pacer.tick(iterations);
      const rt = backend.fromArray(r, [B, T, D], dtype);
      let delta: Tensor;
      try {
        delta =
          kind === 'dense'
            ? backend.linearScanDense(transition, rt, boundary, { reverse: true })
            : backend.linearScanDiagonal(transition, rt, boundary, { reverse: true });
      } finally {
        backend.dispose(rt);
      }
      let d: HostArray;
      try {
        d = await p.pacer.settle(backend.read(delta), iterations);
      } finally {
        backend.dispose(delta);
      }
      for (let k = 0; k < n; k++) mu[k] += d[k];
      iterations++;
    }
  } finally {
    backend.dispose(zero ? [transition, zero] : [transition]);
  }
  // The gradients at the returned adjoint: one full pass of vector–Jacobian products.
  const parameters = vjp.parameters.map((q) => new Float64Array(shapeSize(q.shape)));
  const inputs = p.u ? new Float64Array(B * T * I) : null;
  for (let row = 0; row < B * T; row++) {
    vjp.step(p.prev, row * D, p.u, row * I, mu, row * D, { state: v, stateOffset: row * D, input: inputs, inputOffset: row * I, parameters });
  }
  vjp.flush?.();
  const initialState = new Float64Array(B * D);
  for (let b = 0; b < B; b++) initialState.set(v.subarray(b * T * D, b * T * D + D), b * D);
  const finite = allFinite(initialState, inputs, ...parameters);
  return { parameters, inputs, initialState, iterations, residual, reason, history, finite, fused: false };
}

/**
 * The reverse scan's transitions `Ã_t` (`t = 1..T`): `A_{t+1}ᵀ` (dense) or the diagonal of `A_{t+1}`,
 * zero at `t = T` (nothing follows the last step), from the backend's linearisation at the forward
 * trajectory.
 */
async function adjointTransitions(p: AdjointProblem, kind: 'dense' | 'diagonal'): Promise<Tensor> {
  const { backend, B, T, D, dtype } = p;
  const jacobian = await linearizeHost(p, kind);
  try {
    return backend.tidy(() => {
      const tail = kind === 'dense' ? [B, 1, D, D] : [B, 1, D];
      const last = backend.fill(tail, 0, dtype);
      const shifted = T > 1 ? backend.concat([backend.slice(jacobian, 1, 1, T - 1), last], 1) : last;
      return kind === 'dense' ? backend.transpose(shifted) : shifted;
    });
  } finally {
    backend.dispose(jacobian);
  }
}

/** The backend's Jacobians `A_t` at the forward trajectory (`[B, T, D, D]` or `[B, T, D]`), through the solvers' linearisation. */
async function linearizeHost(p: AdjointProblem, kind: 'dense' | 'diagonal'): Promise<Tensor> {
  return withBound(p, async (problem, states) => {
    const lin = await linearizeAt(problem, states, kind, false);
    p.backend.dispose(lin.defect);
    return lin.jacobian;
  });
}

/** Binds the cell to the forward inputs on the backend (fused when it can be) and uploads the forward states, for `fn`. */
async function withBound<R>(p: AdjointProblem, fn: (problem: Problem, states: Tensor) => Promise<R>): Promise<R> {
  const { backend, cell, B, T, D, I, dtype } = p;
  const owned: Tensor[] = [];
  let fused: FusedCell | undefined;
  let bound: BoundCell | undefined;
  try {
    const inputs = p.u ? backend.fromArray(p.u, [B, T, I], dtype) : null;
    if (inputs) owned.push(inputs);
    const init = backend.fromArray(rowsAt(p.prev, B, T, D, 0), [B, D], dtype);
    owned.push(init);
    const states = backend.fromArray(p.states, [B, T, D], dtype);
    owned.push(states);
    const context = { dtype, inputs, batch: B, steps: T };
    fused = p.fused ? bindFused(backend, cell, context) : undefined;
    bound = fused ? lazyBound(cell, backend, context) : cell.bind(backend, context);
    const problem: Problem = { backend, cell: bound, fused, dtype, batch: B, steps: T, stateSize: D, init, startedAt: performance.now(), pacer: p.pacer };
    return await fn(problem, states);
  } finally {
    fused?.dispose();
    bound?.dispose();
    backend.dispose(owned);
  }
}

/** Rows `[b, t]` of a `[B, T, D]` array, as `[B, D]`. */
function rowsAt(a: Float64Array, B: number, T: number, D: number, t: number): Float64Array {
  const out = new Float64Array(B * D);
  for (let b = 0; b < B; b++) out.set(a.subarray((b * T + t) * D, (b * T + t + 1) * D), b * D);
  return out;
}

/**
 * Vector–Jacobian products of a cell without analytic ones, from its Jacobians at every step,
 * computed once on the backend and kept on the host: `∂f/∂s` from its dense linearisation, and
 * `∂f/∂u` by central differences — the cell rebound to inputs `u ± h_i e_i` (`h_i = ε^{1/3}·max(1, |u_i|)`,
 * divided by the spacing actually represented). It reports no parameters: such a cell's parameters
 * are not visible to core. Its `step` reads the row from `prevOffset / D`, so it serves the
 * {@link AdjointProblem}'s own arrays only.
 */
async function genericVjp(p: AdjointProblem): Promise<HostVjp> {
  const { backend, B, T, D, I, dtype } = p;
  const Js = Float64Array.from(
    await withBound(p, async (problem, states) => {
      const lin = await linearizeAt(problem, states, 'dense', false);
      backend.dispose(lin.defect);
      try {
        return await p.pacer.settle(backend.read(lin.jacobian), 0);
      } finally {
        backend.dispose(lin.jacobian);
      }
    }),
  );
  // Ju[row, i, k] = ∂f_i/∂u_k, by central differences, one input channel at a time.
  const Ju = p.u && I > 0 ? new Float64Array(B * T * D * I) : null;
  if (p.u && Ju) {
    const eps = backend.capabilities.epsilon[dtype] ?? (dtype === 'float64' ? 2 ** -53 : 2 ** -24);
    const h0 = Math.cbrt(eps);
    const round = dtype === 'float32' ? Math.fround : (x: number) => x;
    const prevT = backend.fromArray(p.prev, [B, T, D], dtype);
    try {
      for (let k = 0; k < I; k++) {
        const plus = Float64Array.from(p.u);
        const minus = Float64Array.from(p.u);
        const spacing = new Float64Array(B * T);
        for (let row = 0; row < B * T; row++) {
          const x = p.u[row * I + k];
          const h = h0 * Math.max(1, Math.abs(x));
          plus[row * I + k] = round(x + h);
          minus[row * I + k] = round(x - h);
          spacing[row] = plus[row * I + k] - minus[row * I + k];
        }
        const [fp, fm] = [await applyAt(p, prevT, plus), await applyAt(p, prevT, minus)];
        for (let row = 0; row < B * T; row++) {
          for (let i = 0; i < D; i++) Ju[(row * D + i) * I + k] = (fp[row * D + i] - fm[row * D + i]) / spacing[row];
        }
        await p.pacer.tick(0);
      }
    } finally {
      backend.dispose(prevT);
    }
  }
  return {
    stateSize: D,
    inputSize: I,
    parameters: [],
    step(_prev, prevOffset, _input, _inputOffset, w, wOffset, out) {
      const row = prevOffset / D;
      const { state, stateOffset } = out;
      state.fill(0, stateOffset, stateOffset + D);
      for (let i = 0; i < D; i++) {
        const wi = w[wOffset + i];
        if (wi === 0) continue;
        const base = (row * D + i) * D;
        for (let j = 0; j < D; j++) state[stateOffset + j] += Js[base + j] * wi;
      }
      if (out.input && Ju) {
        const { input, inputOffset } = out;
        input.fill(0, inputOffset, inputOffset + I);
        for (let i = 0; i < D; i++) {
          const wi = w[wOffset + i];
          const base = (row * D + i) * I;
          for (let k = 0; k < I; k++) input[inputOffset + k] += Ju[base + k] * wi;
        }
      }
    },
  };
}

/** `f(prev_t, u_t)` for every step, with the cell bound to the inputs `u` (`[B, T, I]`), read to the host. */
async function applyAt(p: AdjointProblem, prev: Tensor, u: Float64Array): Promise<HostArray> {
  const { backend, cell, B, T, I, dtype } = p;
  const inputs = backend.fromArray(u, [B, T, I], dtype);
  let bound: BoundCell | undefined;
  let value: Tensor | undefined;
  try {
    bound = cell.bind(backend, { dtype, inputs, batch: B, steps: T });
    value = bound.apply(prev);
    return await p.pacer.settle(backend.read(value), 0);
  } finally {
    if (value) backend.dispose(value);
    bound?.dispose();
    backend.dispose(inputs);
  }
}
