import type { ComputeBackend, DType, HostArray, Tensor } from './backend.js';
import type { BoundCell, Cell } from './cell.js';
import { InvalidArgumentError, ResourceLimitError, ShapeError, UnknownMethodError, describeValue } from './errors.js';
import { resolveBackend } from './registry.js';
import { solveNewton } from './solvers/newton.js';
import type { Problem, SolverOutput } from './solvers/problem.js';
import { solveSequential } from './solvers/sequential.js';
import { METHODS, type EvaluateOptions, type EvaluateResult, type InputsLike, type Method } from './types.js';
import { type HostTensor, assertPositiveInteger, assertPositiveNumber, toHostTensor } from './validate.js';

/** Default stopping tolerances per dtype (ALGORITHMS.md §8). */
export const DEFAULT_TOLERANCE: Readonly<Record<DType, number>> = { float64: 1e-7, float32: 1e-4 };

/** Default bound that iterates are clipped to. */
export const DEFAULT_CLIP = 1e8;

/** A validated evaluation request, before anything is allocated on the backend. */
interface Plan {
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
}

function isResult(x: unknown): x is EvaluateResult {
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
    inputs = toHostTensor(inputsLike, 'inputs', [2, 3]);
    batched = inputs.shape.length === 3;
    const [b, t, i] = batched ? inputs.shape : [1, ...inputs.shape];
    if (i !== cell.inputSize) {
      throw new ShapeError('inputs', `last dimension ${cell.inputSize} (the cell's input size)`, `shape [${inputs.shape.join(', ')}]`);
    }
    if (t < 1) throw new ShapeError('inputs', 'at least one time step (T ≥ 1)', `shape [${inputs.shape.join(', ')}]`);
    if (b < 1) throw new ShapeError('inputs', 'a batch of at least one sequence (B ≥ 1)', `shape [${inputs.shape.join(', ')}]`);
    batch = b;
    steps = t;
    if (options.steps !== undefined && options.steps !== t) {
      throw new ShapeError('options.steps', `${t} (the inputs' T) or undefined`, describeValue(options.steps));
    }
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
  const maxIterations =
    options.maxIterations === undefined ? steps + 1 : assertPositiveInteger(options.maxIterations, 'options.maxIterations');
  const clip = options.clip === undefined ? DEFAULT_CLIP : assertPositiveNumber(options.clip, 'options.clip');
  const progressEvery =
    options.progressEvery === undefined ? 4096 : assertPositiveInteger(options.progressEvery, 'options.progressEvery');
  if (options.onIteration !== undefined && typeof options.onIteration !== 'function') {
    throw new InvalidArgumentError('options.onIteration', 'a function', describeValue(options.onIteration));
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

  checkMemory(method, batch, steps, D, cell, backend);
  return { method, dtype, batch, steps, stateSize: D, batched, inputs, init, guess, tolerance, maxIterations, clip, progressEvery };
}

/**
 * Estimates the elements a method keeps live and refuses problems the backend says it cannot hold.
 * Dense (DEER): the `[B, T, D, D]` Jacobians plus the scan's working copy; diagonal and sequential
 * methods: a few dozen `[B, T, max(D, I)]`-sized tensors for cell intermediates.
 */
function checkMemory(method: Method, B: number, T: number, D: number, cell: Cell, backend: ComputeBackend): void {
  const { maxTensorElements, maxTotalElements } = backend.capabilities.limits;
  const width = Math.max(D, cell.inputSize) * 4; // gate pre-activations of an LSTM are 4·H wide
  const rowElements = B * T * width;
  const largest = method === 'deer' ? Math.max(B * T * D * D, rowElements) : rowElements;
  const total = method === 'deer' ? 3 * B * T * D * D + 8 * rowElements : 8 * rowElements;
  const what = `method '${method}' with B=${B}, T=${T}, D=${D}`;
  if (largest > maxTensorElements) {
    throw new ResourceLimitError(
      'options.method',
      `a problem whose largest tensor fits backend '${backend.name}' (≤ ${maxTensorElements} elements)`,
      `${what} needs a tensor of ${largest} elements${method === 'deer' ? " (use 'quasi-deer', or a smaller T or batch)" : ''}`,
    );
  }
  if (total > maxTotalElements) {
    throw new ResourceLimitError(
      'options.method',
      `a problem that fits backend '${backend.name}' (≤ ${maxTotalElements} live elements)`,
      `${what} needs about ${total} elements${method === 'deer' ? " (use 'quasi-deer', or a smaller T or batch)" : ''}`,
    );
  }
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
  let output: SolverOutput | undefined;
  try {
    const inputTensor = pl.inputs ? backend.fromArray(pl.inputs.data, [B, T, cell.inputSize], dtype) : null;
    if (inputTensor) owned.push(inputTensor);
    const init = backend.fromArray(pl.init, [B, D], dtype);
    owned.push(init);
    bound = cell.bind(backend, { dtype, inputs: inputTensor, batch: B, steps: T });
    const problem: Problem = {
      backend,
      cell: bound,
      dtype,
      batch: B,
      steps: T,
      stateSize: D,
      init,
      signal: options.signal,
      onIteration: options.onIteration,
      startedAt,
    };
    if (pl.method === 'sequential') {
      output = solveSequential(problem, pl.progressEvery);
    } else {
      const guess = initialGuessTensor(backend, pl);
      output = await solveNewton(problem, guess, {
        jacobian: pl.method === 'deer' ? 'dense' : 'diagonal',
        tolerance: pl.tolerance,
        maxIterations: pl.maxIterations,
        clip: pl.clip,
      });
    }
    // The certificate: the true residual of the returned states. A sequential trajectory satisfies
    // s_t = f(s_{t−1}) by construction, so only its finiteness is checked (NaN if it overflowed).
    const finalStates = output.states;
    const boundCell = bound;
    let residualP!: Promise<number>;
    if (pl.method === 'sequential') {
      residualP = backend.maxAbs(finalStates).then((m) => (Number.isFinite(m) ? 0 : Number.NaN));
    } else {
      backend.tidy(() => {
        const value = boundCell.apply(backend.shiftTime(finalStates, init));
        residualP = backend.maxAbsDiff(finalStates, value);
      });
    }
    const residual = await residualP;
    const shape = pl.batched ? [B, T, D] : [T, D];
    const states = pl.batched ? output.states : backend.reshape(output.states, shape);
    if (states !== output.states) backend.dispose(output.states);
    const elapsedMs = performance.now() - startedAt;
    return makeResult(backend, pl, output, states, shape, residual, elapsedMs);
  } catch (err) {
    if (output) backend.dispose(output.states);
    throw err;
  } finally {
    bound?.dispose();
    backend.dispose(owned);
    // Pooled buffers served this evaluation's iterations; release them so nothing stays resident.
    backend.trim?.();
  }
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
  residual: number,
  elapsedMs: number,
): EvaluateResult {
  const converged = out.stopped && Number.isFinite(residual);
  const read = (): Promise<HostArray> => backend.read(states);
  return {
    method: pl.method,
    backend: backend.name,
    dtype: pl.dtype,
    states,
    shape,
    iterations: out.iterations,
    converged,
    residual,
    history: out.history,
    diagnostics: {
      nonFiniteResets: out.nonFiniteResets,
      elapsedMs,
      tolerance: pl.tolerance,
      maxIterations: pl.maxIterations,
    },
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
