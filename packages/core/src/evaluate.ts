import type { ComputeBackend, DType, HostArray, Tensor } from './backend.js';
import type { BoundCell, Cell } from './cell.js';
import { InvalidArgumentError, ResourceLimitError, ShapeError, UnknownMethodError, describeValue } from './errors.js';
import { DeviceTrace } from './device-work.js';
import { bindFused, lazyBound } from './fused/bind.js';
import { estimateEvaluationBytes } from './memory.js';
import type { FusedCell } from './program.js';
import { resolveBackend } from './registry.js';
import { type ElkDamping, solveElk } from './solvers/elk.js';
import { solveNewton } from './solvers/newton.js';
import { Pacer, type Problem, type SolverOutput } from './solvers/problem.js';
import { type SequentialBase, solveSequential, solveSequentialSegments } from './solvers/sequential.js';
import {
  type DeviceWork,
  type EvaluateOptions,
  type EvaluateResult,
  type IterationInfo,
  type InputsLike,
  type KalmanMode,
  METHODS,
  type Method,
  type MethodRun,
} from './types.js';
import { checkKnownKeys } from './keys.js';
import type { LyapunovEstimate } from './lyapunov.js';
import { type WindowSource, bindWindow, lyapunovAlong, lyapunovProbe } from './predictability.js';
import { type HostTensor, assertPositiveInteger, assertPositiveNumber, shapeOfInputs, toHostTensor } from './validate.js';

/**
 * Default stopping tolerances per dtype (ALGORITHMS.md §8): the largest true residual
 * `max_t ‖s_t − f(s_{t−1})‖∞` a converged result may have, in the units of the state.
 */
export const DEFAULT_TOLERANCE: Readonly<Record<DType, number>> = { float64: 1e-7, float32: 1e-4 };

/**
 * The smallest tolerance accepted per dtype: 16 unit roundoffs (2⁻⁴⁹ ≈ 1.8e-15 for float64,
 * 2⁻²⁰ ≈ 9.5e-7 for float32). Evaluating `s_t − f(s_{t−1})` in the dtype rounds each term, so even
 * an exact solution with states of magnitude 1 shows a residual of a few roundoffs: a tolerance
 * below this floor could never be certified, only run into the iteration cap.
 */
export const MIN_TOLERANCE: Readonly<Record<DType, number>> = { float64: 2 ** -49, float32: 2 ** -20 };

/**
 * Default iteration cap of ELK and quasi-ELK with Kalman-smoother steps, when it exceeds `T + 1`.
 * DEER, quasi-DEER and ELK / quasi-ELK with the (default) Kalman filter are exact after `T`
 * iterations from any guess (finite convergence: every step extends the exact prefix), so `T + 1`
 * suffices for them and for `auto`; the smoother's step mixes later states into earlier ones and
 * has no such guarantee, and a damped smoother step moves only part of the way even at T = 1.
 */
export const DAMPED_MIN_ITERATIONS = 1000;

/** Default bound that iterates are clipped to. */
export const DEFAULT_CLIP = 1e8;

/** Every key of {@link EvaluateOptions}: any other is a typo, refused with the closest name. */
export const EVALUATE_OPTION_KEYS = [
  'backend',
  'method',
  'dtype',
  'tolerance',
  'maxIterations',
  'initialState',
  'initialGuess',
  'steps',
  'batch',
  'clip',
  'onIteration',
  'onIterate',
  'progressEvery',
  'signal',
  'kalman',
  'sigmaSq',
  'allowSequential',
  'lyapunov',
  'fused',
] as const satisfies readonly (keyof EvaluateOptions)[];

/** A validated evaluation request, before anything is allocated on the backend. */
export interface Plan {
  readonly method: Method;
  readonly dtype: DType;
  readonly batch: number;
  readonly steps: number;
  readonly stateSize: number;
  readonly batched: boolean;
  readonly inputs: HostTensor | null;
  readonly init: Float64Array;
  readonly guess: HostTensor | EvaluateResult | null;
  readonly tolerance: number;
  readonly maxIterations: number;
  readonly clip: number;
  readonly progressEvery: number;
  readonly kalman: KalmanMode;
  /** Fixed σ², or undefined for adaptive damping. */
  readonly sigmaSq: number | undefined;
  readonly allowSequential: boolean;
  /** Estimate the Lyapunov exponent (undefined: only when a parallel method runs). */
  readonly lyapunov: boolean | undefined;
  /** Use the backend's fused kernels when it has them for the cell. */
  readonly fused: boolean;
}

/**
 * Adaptive damping of ELK and quasi-ELK (see `solveElk`): a trust region that starts as Newton.
 * The first step is undamped (σ² = ∞, DEER's step). A candidate with a non-finite merit
 * `½Σ‖r_t‖²`, an undamped one with clipped or reset values, a damped one whose merit is over `slack`
 * × the current one, and any that raises the merit over `ceiling` × the initial guess's is replaced
 * by the Jacobi step, and σ² falls (to `initialSigmaSq` after an undamped step, ÷`shrink` after a
 * damped one, never below `minSigmaSq`); σ² grows ×`grow` after an accepted step that lowered the
 * merit, up to `maxSigmaSqDense` for ELK (above it, undamped again) and `maxSigmaSqDiagonal` for
 * quasi-ELK. The numbers are those of the earlier schedule (σ² from 1, ×1.5, ÷4, slack 3, ceiling
 * 1e4, quasi-ELK's cap 300), measured on the trained AR-GRU (T = 2,000) and Lorenz-96 D = 5; what
 * changed is the structure — start undamped, the Jacobi step on rejection, a Jacobi sweep after a
 * damped step — not new tuning. `pnpm pelk bench --suite stability` measures it on those tuning
 * problems and, apart, on held-out ones (BENCHMARKS.md).
 */
export const ADAPTIVE_DAMPING = {
  initialSigmaSq: 1,
  grow: 1.5,
  shrink: 4,
  maxSigmaSqDense: 1e12,
  maxSigmaSqDiagonal: 300,
  minSigmaSq: 1e-8,
  slack: 3,
  ceiling: 1e4,
} as const;

/** The adaptive schedule of ELK (dense) or quasi-ELK (diagonal). */
function adaptiveDamping(jacobian: 'dense' | 'diagonal'): ElkDamping {
  const { maxSigmaSqDense, maxSigmaSqDiagonal, ...rest } = ADAPTIVE_DAMPING;
  // Dense: undamped again above 1e12. Diagonal: once damped, σ² stays ≤ 300 (the quasi-DEER step
  // failed once; the diagonal model is too poor a model of coupled dynamics to retry it).
  const dense = jacobian === 'dense';
  return { mode: 'adaptive', ...rest, maxSigmaSq: dense ? maxSigmaSqDense : maxSigmaSqDiagonal, undampAboveMax: dense };
}

/** Whether `x` looks like an {@link EvaluateResult}. */
export function isResult(x: unknown): x is EvaluateResult {
  return typeof x === 'object' && x !== null && 'states' in x && 'method' in x && 'dispose' in x;
}

function validateCell(cell: Cell): void {
  if (!cell || typeof cell !== 'object' || typeof cell.bind !== 'function') {
    throw new InvalidArgumentError('cell', 'a Cell (e.g. from @pelk/models)', describeValue(cell));
  }
  if (!Number.isInteger(cell.stateSize) || cell.stateSize < 1) {
    throw new InvalidArgumentError('cell.stateSize', 'a positive integer', describeValue(cell.stateSize));
  }
}

/** Checks everything on the host and decides sizes. Throws typed errors; allocates nothing on a backend. */
function plan(cell: Cell, inputsLike: InputsLike, options: EvaluateOptions, backend: ComputeBackend): Plan {
  validateCell(cell);
  checkKnownKeys(options, EVALUATE_OPTION_KEYS, 'options');
  const method = options.method ?? 'quasi-deer';
  if (!METHODS.includes(method)) throw new UnknownMethodError(method, METHODS);

  const caps = backend.capabilities;
  const dtype: DType = options.dtype ?? (caps.dtypes.includes('float64') ? 'float64' : 'float32');
  if (dtype !== 'float32' && dtype !== 'float64') {
    throw new InvalidArgumentError('options.dtype', "'float32' or 'float64'", describeValue(dtype));
  }
  if (!caps.dtypes.includes(dtype)) {
    throw new InvalidArgumentError(
      'options.dtype',
      `a dtype backend '${backend.name}' supports (${caps.dtypes.join(', ')})`,
      `'${dtype}'`,
    );
  }
  const D = cell.stateSize;

  // Inputs: [T, I] or [B, T, I]; autonomous cells take none and need options.steps.
  let inputs: HostTensor | null = null;
  let batch: number;
  let steps: number;
  let batched: boolean;
  if (cell.inputSize > 0) {
    if (inputsLike === null || inputsLike === undefined) {
      throw new InvalidArgumentError('inputs', `[T, ${cell.inputSize}] or [B, T, ${cell.inputSize}] data`, describeValue(inputsLike));
    }
    // Shapes first: sizes and limits are checked before the data is copied.
    const shape = shapeOfInputs(inputsLike, 'inputs', [2, 3]);
    batched = shape.length === 3;
    const [b, t, i] = batched ? shape : [1, ...shape];
    if (i !== cell.inputSize) {
      throw new ShapeError('inputs', `last dimension ${cell.inputSize} (the cell's input size)`, `shape [${shape.join(', ')}]`);
    }
    if (t < 1) throw new ShapeError('inputs', 'at least one time step (T ≥ 1)', `shape [${shape.join(', ')}]`);
    if (b < 1) throw new ShapeError('inputs', 'a batch of at least one sequence (B ≥ 1)', `shape [${shape.join(', ')}]`);
    batch = b;
    steps = t;
    if (options.steps !== undefined && options.steps !== t) {
      throw new ShapeError('options.steps', `${t} (the inputs' T) or undefined`, describeValue(options.steps));
    }
    checkMemory(method, batch, steps, D, dtype, cell, backend);
    inputs = toHostTensor(inputsLike, 'inputs', [2, 3]);
  } else {
    if (inputsLike !== null && inputsLike !== undefined) {
      throw new InvalidArgumentError('inputs', `null (a '${cell.kind}' cell takes no inputs)`, describeValue(inputsLike));
    }
    steps = assertPositiveInteger(options.steps, 'options.steps');
    batch = options.batch === undefined ? 0 : assertPositiveInteger(options.batch, 'options.batch');
    batched = batch > 0;
  }

  // Initial state: [D] shared, or [B, D].
  let init: Float64Array;
  if (options.initialState === undefined) {
    batch ||= 1;
    init = new Float64Array(batch * D);
  } else {
    const s0 = toHostTensor(options.initialState, 'options.initialState', [1, 2]);
    if (s0.shape[s0.shape.length - 1] !== D) {
      throw new ShapeError('options.initialState', `last dimension ${D} (the cell's state size)`, `shape [${s0.shape.join(', ')}]`);
    }
    if (s0.shape.length === 2) {
      if (batch === 0) {
        batch = s0.shape[0];
        batched = true;
      }
      if (s0.shape[0] !== batch) {
        throw new ShapeError('options.initialState', `shape [${D}] or [${batch}, ${D}]`, `shape [${s0.shape.join(', ')}]`);
      }
      init = s0.data;
    } else {
      batch ||= 1;
      init = new Float64Array(batch * D);
      for (let b = 0; b < batch; b++) init.set(s0.data, b * D);
    }
  }

  const tolerance =
    options.tolerance === undefined ? DEFAULT_TOLERANCE[dtype] : assertPositiveNumber(options.tolerance, 'options.tolerance');
  if (tolerance < MIN_TOLERANCE[dtype]) {
    throw new InvalidArgumentError(
      'options.tolerance',
      `at least ${MIN_TOLERANCE[dtype].toExponential(2)} for ${dtype} (16 unit roundoffs: a smaller residual cannot be certified)`,
      describeValue(options.tolerance),
    );
  }
  const kalman = options.kalman ?? 'filter';
  if (kalman !== 'filter' && kalman !== 'smoother') {
    throw new InvalidArgumentError('options.kalman', "'filter' or 'smoother'", describeValue(kalman));
  }
  const smoothed = kalman === 'smoother' && (method === 'elk' || method === 'quasi-elk' || method === 'auto');
  const maxIterations =
    options.maxIterations === undefined
      ? smoothed
        ? Math.max(steps + 1, DAMPED_MIN_ITERATIONS)
        : steps + 1
      : assertPositiveInteger(options.maxIterations, 'options.maxIterations');
  const clip = options.clip === undefined ? DEFAULT_CLIP : assertPositiveNumber(options.clip, 'options.clip');
  const progressEvery =
    options.progressEvery === undefined ? 4096 : assertPositiveInteger(options.progressEvery, 'options.progressEvery');
  if (options.onIteration !== undefined && typeof options.onIteration !== 'function') {
    throw new InvalidArgumentError('options.onIteration', 'a function', describeValue(options.onIteration));
  }
  if (options.onIterate !== undefined && typeof options.onIterate !== 'function') {
    throw new InvalidArgumentError('options.onIterate', 'a function', describeValue(options.onIterate));
  }
  if (options.signal !== undefined && (typeof options.signal !== 'object' || typeof options.signal?.aborted !== 'boolean')) {
    throw new InvalidArgumentError('options.signal', 'an AbortSignal', describeValue(options.signal));
  }

  // Initial guess.
  let guess: HostTensor | EvaluateResult | null = null;
  const g = options.initialGuess;
  if (g !== undefined && g !== 'zeros') {
    if (isResult(g)) {
      const expected = [batch, steps, D];
      const got = g.states.shape.length === 2 ? [1, ...g.states.shape] : [...g.states.shape];
      if (got.join(',') !== expected.join(',')) {
        throw new ShapeError('options.initialGuess', `a result of shape [${expected.join(', ')}]`, `[${g.states.shape.join(', ')}]`);
      }
      guess = g;
    } else {
      guess = toHostTensor(g, 'options.initialGuess', [2, 3]);
      const got = guess.shape.length === 2 ? [1, ...guess.shape] : guess.shape;
      if (got[0] !== batch || got[1] !== steps || got[2] !== D) {
        throw new ShapeError('options.initialGuess', `shape [${steps}, ${D}] or [${batch}, ${steps}, ${D}]`, `[${guess.shape.join(', ')}]`);
      }
    }
  }

  const sigmaSq =
    options.sigmaSq === undefined || options.sigmaSq === 'adaptive' ? undefined : assertPositiveNumber(options.sigmaSq, 'options.sigmaSq');
  if (options.allowSequential !== undefined && typeof options.allowSequential !== 'boolean') {
    throw new InvalidArgumentError('options.allowSequential', 'a boolean', describeValue(options.allowSequential));
  }
  const allowSequential = options.allowSequential ?? true;
  if (options.lyapunov !== undefined && typeof options.lyapunov !== 'boolean') {
    throw new InvalidArgumentError('options.lyapunov', 'a boolean', describeValue(options.lyapunov));
  }
  if (options.fused !== undefined && typeof options.fused !== 'boolean') {
    throw new InvalidArgumentError('options.fused', 'a boolean', describeValue(options.fused));
  }

  // 'auto' may end on dense ELK only if that fits; quasi-ELK and sequential always fit when quasi-DEER does.
  checkMemory(method, batch, steps, D, dtype, cell, backend);
  return {
    method,
    dtype,
    batch,
    steps,
    stateSize: D,
    batched,
    inputs,
    init,
    guess,
    tolerance,
    maxIterations,
    clip,
    progressEvery,
    kalman,
    sigmaSq,
    allowSequential,
    lyapunov: options.lyapunov,
    fused: options.fused ?? true,
  };
}

/**
 * Validates an evaluation request on the host (the checks {@link evaluate} makes first) and returns
 * its plan: sizes, dtype, host copies of the inputs and initial state. For `grad`, which validates
 * its cotangent against these sizes before anything is allocated.
 */
export function planEvaluation(cell: Cell, inputs: InputsLike, options: EvaluateOptions, backend: ComputeBackend): Plan {
  return plan(cell, inputs, options, backend);
}

/**
 * Refuses, before anything is allocated, a problem the backend says it cannot hold: a tensor beyond
 * its largest, or an estimated peak ({@link estimateEvaluationBytes}, an upper bound of the measured
 * peaks; `auto` is budgeted as its largest diagonal method) beyond its memory budget in bytes.
 */
function checkMemory(method: Method, B: number, T: number, D: number, dtype: DType, cell: Cell, backend: ComputeBackend): void {
  const problem = memoryProblem(method, B, T, D, dtype, cell, backend);
  if (problem) throw problem;
}

/**
 * The error to throw when the backend cannot hold the problem (see `checkMemory`), else
 * `undefined`: the largest tensor (a `[B, T, D, D]` Jacobian for the dense methods, the
 * `[B, T, 4·max(D, I)]` gate pre-activations otherwise) against `limits.maxTensorElements`, and
 * {@link estimateEvaluationBytes} in the evaluation's dtype against `limits.maxTotalBytes`.
 */
function memoryProblem(
  method: Method,
  B: number,
  T: number,
  D: number,
  dtype: DType,
  cell: Cell,
  backend: ComputeBackend,
): ResourceLimitError | undefined {
  const { maxTensorElements, maxTotalBytes } = backend.capabilities.limits;
  const rowElements = B * T * Math.max(D, cell.inputSize) * 4; // gate pre-activations of an LSTM are 4·H wide
  const dense = method === 'deer' || method === 'elk';
  const largest = dense ? Math.max(B * T * D * D, rowElements) : rowElements;
  const bytes = estimateEvaluationBytes({ method, batch: B, steps: T, stateSize: D, inputSize: cell.inputSize, dtype, cellKind: cell.kind });
  const what = `method '${method}' with B=${B}, T=${T}, D=${D} in ${dtype}`;
  const gib = (n: number): string => `${(n / 2 ** 30).toFixed(n < 2 ** 30 ? 3 : 1)} GiB`;
  const advice = dense
    ? ` (use 'quasi-${method}', or a smaller T or batch)`
    : dtype === 'float64'
      ? ' (use float32, or a smaller T or batch)'
      : ' (use a smaller T or batch)';
  if (largest > maxTensorElements) {
    return new ResourceLimitError(
      'options.method',
      `a problem whose largest tensor fits backend '${backend.name}' (≤ ${maxTensorElements} elements)`,
      `${what} needs a tensor of ${largest} elements${advice}`,
    );
  }
  if (bytes > maxTotalBytes) {
    return new ResourceLimitError(
      'options.method',
      `a problem that fits backend '${backend.name}' (≤ ${maxTotalBytes} bytes, ${gib(maxTotalBytes)})`,
      `${what} needs about ${bytes} bytes (${gib(bytes)})${advice}`,
    );
  }
  return undefined;
}

/**
 * Evaluates a recurrent cell over a sequence: `s_t = f(s_{t−1}, u_t)` for t = 1..T, sequentially or
 * in parallel over time (DEER, quasi-DEER). Every method returns the same trajectory up to float
 * precision; parallel methods also report how they converged.
 *
 * Bad input throws a typed {@link PelkError} before anything is allocated. On success the caller
 * owns `result.states` (free it with `result.dispose()`); on failure everything is freed.
 *
 * @example
 * ```ts
 * import { evaluate } from '@pelk/core';
 * import '@pelk/backend-cpu/register';
 * import { gru } from '@pelk/models';
 *
 * const cell = gru.random({ inputSize: 2, hiddenSize: 16, seed: 1 });
 * const inputs = Array.from({ length: 1000 }, (_, t) => [Math.sin(t / 10), 1]);
 * const result = await evaluate(cell, inputs, { method: 'quasi-deer' });
 * console.log(result.iterations, result.converged, result.residual);
 * const states = await result.toArray(); // [1000][16]
 * result.dispose();
 * ```
 */
export async function evaluate(cell: Cell, inputs: InputsLike, options: EvaluateOptions = {}): Promise<EvaluateResult> {
  if (options === null || typeof options !== 'object') {
    throw new InvalidArgumentError('options', 'an options object', describeValue(options));
  }
  const backend = await resolveBackend(options.backend);
  const pl = plan(cell, inputs, options, backend);
  const startedAt = performance.now();
  const { batch: B, steps: T, stateSize: D, dtype } = pl;

  const owned: Tensor[] = [];
  let bound: BoundCell | undefined;
  let fused: FusedCell | undefined;
  let usedFused = false;
  let output: SolverOutput | undefined;
  let methods: MethodRun[] = [];
  let deviceTrace: DeviceTrace | undefined;
  try {
    const init = backend.fromArray(pl.init, [B, D], dtype);
    owned.push(init);
    const userOnIteration = options.onIteration;
    const userOnIterate = options.onIterate;
    const pacer = new Pacer(options.signal);
    deviceTrace = backend.deviceCounters ? new DeviceTrace(() => backend.deviceCounters!()) : undefined;
    const trace = deviceTrace;
    const onIteration = trace
      ? (info: IterationInfo) => {
          // Iterations only: a sequential run's progress reports (with a `fraction`) are not iterations.
          if (info.fraction === undefined) trace.mark();
          userOnIteration?.(info);
        }
      : userOnIteration;
    const base: SequentialBase = {
      backend,
      dtype,
      batch: B,
      stateSize: D,
      init,
      signal: options.signal,
      onIteration,
      // The read races the abort signal, so an abort is seen without waiting for the transfer.
      onIterate: userOnIterate && (async (info, states) => userOnIterate({ info, states: await pacer.settle(backend.read(states), info.iteration), shape: [B, T, D] })),
      startedAt,
      pacer,
    };
    const source: WindowSource = { backend, cell, dtype, inputs: pl.inputs, batch: B, steps: T, init };
    // Method `auto` on a backend that runs parallel methods fast reads the model's predictability
    // first: along an unpredictable trajectory parallel iterations grow with T.
    let lyapunov: LyapunovEstimate | undefined;
    let sequentialReason: string | undefined;
    if (pl.method === 'sequential') sequentialReason = 'requested';
    else if (pl.method === 'auto' && pl.allowSequential) {
      if (backend.capabilities.prefersSequential) sequentialReason = `backend '${backend.name}' evaluates sequentially faster than in parallel`;
      else {
        lyapunov = await lyapunovProbe(source, base.pacer, startedAt);
        if (lyapunov?.verdict === 'unpredictable') {
          sequentialReason = `along its first ${lyapunov.steps} steps the model is ${lyapunov.reading} — sequential evaluation is faster`;
        }
      }
    }
    if (sequentialReason !== undefined) {
      output = await solveSequentialSegments(
        base,
        T,
        (start, steps) => {
          const window = bindWindow(source, start, steps, B, pl.fused);
          usedFused ||= window.fused !== undefined;
          return window;
        },
        pl.progressEvery,
      );
      methods = [{ method: 'sequential', iterations: 1, reason: sequentialReason }];
    } else {
      const inputTensor = pl.inputs ? backend.fromArray(pl.inputs.data, [B, T, cell.inputSize], dtype) : null;
      if (inputTensor) owned.push(inputTensor);
      const context = { dtype, inputs: inputTensor, batch: B, steps: T };
      fused = pl.fused ? bindFused(backend, cell, context) : undefined;
      usedFused = fused !== undefined;
      bound = fused ? lazyBound(cell, backend, context) : cell.bind(backend, context);
      const run = await solve({ ...base, cell: bound, fused, steps: T }, pl, cell);
      output = run.output;
      methods = run.methods;
    }
    if (lyapunov === undefined && (pl.lyapunov ?? sequentialReason === undefined)) lyapunov = await lyapunovAlong(source, output.states);
    const shape = pl.batched ? [B, T, D] : [T, D];
    const states = pl.batched ? output.states : backend.reshape(output.states, shape);
    if (states !== output.states) backend.dispose(output.states);
    const elapsedMs = performance.now() - startedAt;
    return makeResult(backend, pl, output, states, shape, elapsedMs, methods, lyapunov, usedFused, deviceTrace?.work());
  } catch (err) {
    if (output) backend.dispose(output.states);
    throw err;
  } finally {
    fused?.dispose();
    bound?.dispose();
    backend.dispose(owned);
    // Pooled buffers served this evaluation's iterations; release them so nothing stays resident.
    backend.trim?.();
  }
}

type Runner = (jacobian: 'dense' | 'diagonal', guess: Tensor, options?: { problem?: Problem; maxIterations?: number }) => Promise<SolverOutput>;

/** Runs the requested method (for `auto`: the chain of methods) and says which ran and why. */
async function solve(problem: Problem, pl: Plan, cell: Cell): Promise<{ output: SolverOutput; methods: MethodRun[] }> {
  const { backend } = problem;
  const newton: Runner = (jacobian, guess, o = {}) =>
    solveNewton(o.problem ?? problem, guess, { jacobian, tolerance: pl.tolerance, maxIterations: o.maxIterations ?? pl.maxIterations, clip: pl.clip });
  const elk: Runner = (jacobian, guess, o = {}) =>
    solveElk(o.problem ?? problem, guess, {
      jacobian,
      kalman: pl.kalman,
      damping: pl.sigmaSq === undefined ? adaptiveDamping(jacobian) : { mode: 'fixed', sigmaSq: pl.sigmaSq },
      tolerance: pl.tolerance,
      maxIterations: o.maxIterations ?? pl.maxIterations,
      clip: pl.clip,
    });
  const one = (method: Method, output: SolverOutput) => ({ output, methods: [{ method, iterations: output.iterations, reason: 'requested' }] });

  switch (pl.method) {
    case 'sequential': // evaluate runs it in segments; here for completeness
      return one('sequential', await solveSequential(problem, pl.progressEvery));
    case 'deer':
    case 'quasi-deer':
      return one(pl.method, await newton(pl.method === 'deer' ? 'dense' : 'diagonal', initialGuessTensor(backend, pl)));
    case 'elk':
    case 'quasi-elk':
      return one(pl.method, await elk(pl.method === 'elk' ? 'dense' : 'diagonal', initialGuessTensor(backend, pl)));
    case 'auto':
      return solveAuto(problem, pl, cell, elk);
  }
}

/**
 * Method `auto` (once `evaluate` has ruled out sequential evaluation: the backend prefers it, or
 * the model is unpredictable — a clearly positive Lyapunov exponent along its first steps):
 * 1. quasi-ELK with adaptive damping, which takes quasi-DEER's undamped steps for as long as they
 *    work and damps only when one fails;
 * 2. if that stops without converging, ELK with adaptive damping from the same initial guess, when
 *    its dense memory fits the backend.
 * `maxIterations` caps the iterations of the whole chain: each method gets what its predecessors
 * left. The result's `methods` lists each method that ran and why.
 */
async function solveAuto(problem: Problem, pl: Plan, cell: Cell, elk: Runner): Promise<{ output: SolverOutput; methods: MethodRun[] }> {
  const { backend } = problem;
  // Each method's progress reports and history records say which method produced them.
  const as = (method: Method): Problem => ({
    ...problem,
    onIteration: problem.onIteration && ((info) => problem.onIteration?.({ ...info, method })),
    onIterate: problem.onIterate && ((info, states) => problem.onIterate!({ ...info, method }, states)),
  });
  const tag = (method: Method, out: SolverOutput): SolverOutput => ({ ...out, history: out.history.map((h) => ({ ...h, method })) });
  const methods: MethodRun[] = [];
  let budget = pl.maxIterations;
  const first = tag('quasi-elk', await elk('diagonal', initialGuessTensor(backend, pl), { problem: as('quasi-elk'), maxIterations: budget }));
  methods.push({
    method: 'quasi-elk',
    iterations: first.iterations,
    reason: 'parallel backend: quasi-ELK (quasi-DEER steps, the cheapest per iteration, damped only when one fails)',
  });
  budget -= first.iterations;
  if (first.reason === 'converged' || budget <= 0) return { output: first, methods };
  if (memoryProblem('elk', pl.batch, pl.steps, pl.stateSize, pl.dtype, cell, backend)) return { output: first, methods };
  backend.dispose(first.states);
  const dense = tag('elk', await elk('dense', initialGuessTensor(backend, pl), { problem: as('elk'), maxIterations: budget }));
  methods.push({ method: 'elk', iterations: dense.iterations, reason: `quasi-ELK stopped without converging (${first.reason})` });
  return { output: withHistory(first, dense), methods };
}

/** `later`'s output with `earlier`'s history and counts prepended (for `auto`). */
function withHistory(earlier: SolverOutput, later: SolverOutput): SolverOutput {
  return {
    ...later,
    iterations: earlier.iterations + later.iterations,
    history: [...earlier.history, ...later.history],
    nonFiniteResets: earlier.nonFiniteResets + later.nonFiniteResets,
    clippedValues: earlier.clippedValues + later.clippedValues,
  };
}

function initialGuessTensor(backend: ComputeBackend, pl: Plan): Tensor {
  const shape = [pl.batch, pl.steps, pl.stateSize];
  if (pl.guess === null) return backend.fill(shape, 0, pl.dtype);
  if (isResult(pl.guess)) {
    const src = pl.guess.states;
    // Copy, so the solver may free its iterates without touching the caller's result.
    return backend.tidy(() => backend.cast(backend.reshape(src, shape), pl.dtype));
  }
  return backend.fromArray(pl.guess.data, shape, pl.dtype);
}

function makeResult(
  backend: ComputeBackend,
  pl: Plan,
  out: SolverOutput,
  states: Tensor,
  shape: number[],
  elapsedMs: number,
  methods: MethodRun[],
  lyapunov: LyapunovEstimate | undefined,
  fused: boolean,
  device?: DeviceWork,
): EvaluateResult {
  // The certificate. Solvers end 'converged' only on a clean iterate within the tolerance; the
  // residual is checked here once more so that no solver path can hand out a false claim.
  const residual = out.residual;
  const sound = out.reason === 'converged' && residual <= pl.tolerance;
  const reason = out.reason === 'converged' && !sound ? 'non-finite' : out.reason;
  const read = (): Promise<HostArray> => backend.read(states);
  return {
    method: methods[methods.length - 1].method,
    backend: backend.name,
    dtype: pl.dtype,
    states,
    initialState: Float64Array.from(pl.init),
    shape,
    iterations: out.iterations,
    converged: sound,
    reason,
    residual,
    history: out.history,
    diagnostics: {
      nonFiniteResets: out.nonFiniteResets,
      clippedValues: out.clippedValues,
      elapsedMs,
      tolerance: pl.tolerance,
      maxIterations: pl.maxIterations,
      fused,
      ...(device ? { device } : {}),
      ...(lyapunov ? { lyapunov } : {}),
    },
    methods,
    read,
    toArray: async () => nest(await read(), shape),
    dispose: () => backend.dispose(states),
  };
}

/** Flat row-major data → nested arrays of the given rank-2 or rank-3 shape. */
export function nest(data: ArrayLike<number>, shape: readonly number[]): number[][] | number[][][] {
  const D = shape[shape.length - 1];
  const rows = (offset: number, count: number): number[][] => {
    const out: number[][] = new Array(count);
    for (let r = 0; r < count; r++) out[r] = Array.from({ length: D }, (_, j) => data[offset + r * D + j]);
    return out;
  };
  if (shape.length === 2) return rows(0, shape[0]);
  const [B, T] = shape;
  return Array.from({ length: B }, (_, b) => rows(b * T * D, T));
}
