/**
 * `ComputeBackend.bindProgram` for host-memory backends (those with `hostData`): the fused
 * {@link HostRnnKernel}s run straight over the tensors' storage. One pass over the steps gives a
 * linearisation's Jacobians, defects, residual and sum of squares, where the op-by-op path makes
 * ~45 backend calls writing ~49 full-size intermediates.
 */
import type { ComputeBackend, DType, HostArray, Tensor } from '../backend.js';
import type { BindContext, Rollout } from '../cell.js';
import { InvalidArgumentError, ShapeError, describeValue } from '../errors.js';
import {
  type ArProgram,
  type CellProgram,
  type FusedAdjoint,
  type FusedAdjointOptions,
  type FusedCell,
  type FusedGradients,
  type FusedLinearization,
  type FusedLinearizeOptions,
  SCALAR_ACTIVATIONS,
} from '../program.js';
import { checkBindContext } from '../validate.js';
import { hostArKernel } from './host-ar.js';
import { type HostRnnKernel, hostRnnKernel } from './host-rnn.js';

const text = (shape: readonly number[] | undefined) => (shape ? `shape [${shape.join(', ')}]` : 'no tensor');

/**
 * The end of the next window of an advancing kernel: `done + count`, at most `T`. A count that is
 * not a number ≥ 0 (NaN included) is refused, so that no window is skipped unseen.
 */
export function windowEnd(done: number, count: number, T: number): number {
  if (typeof count !== 'number' || !(count >= 0)) throw new InvalidArgumentError('count', 'a number of steps ≥ 0', describeValue(count));
  return Math.min(T, done + Math.floor(count));
}

/** Throws a `ShapeError` naming `field` unless `t` has exactly the `expected` shape. */
export function checkShape(t: Tensor, field: string, expected: readonly number[]): void {
  if (!t?.shape || t.shape.length !== expected.length || t.shape.some((d, i) => d !== expected[i])) {
    throw new ShapeError(field, text(expected), text(t?.shape));
  }
}

/** Checks a program's sizes against its weights (programs come from cells, but a caller may build one). */
export function checkProgram(program: CellProgram, field = 'program'): void {
  if (!program || typeof program !== 'object') throw new InvalidArgumentError(field, 'a CellProgram', describeValue(program));
  if (program.kind === 'ar') {
    checkProgram(program.inner, `${field}.inner`);
    if (program.inner.kind === undefined || (program.inner.kind as string) === 'ar') {
      throw new InvalidArgumentError(`${field}.inner.kind`, "'gru', 'lstm' or 'elman'", describeValue(program.inner.kind));
    }
    const I = program.inputSize;
    if (program.inner.inputSize !== I) throw new InvalidArgumentError(`${field}.inner.inputSize`, `${I} (the emitted value's size)`, describeValue(program.inner.inputSize));
    const H = program.inner.hiddenSize;
    const { weight, bias, skip } = program.readout ?? ({} as ArProgram['readout']);
    if (!(weight instanceof Float64Array) || weight.length !== 2 * I * H) {
      throw new ShapeError(`${field}.readout.weight`, `a Float64Array of ${2 * I * H} elements`, describeValue(weight));
    }
    if (!(bias instanceof Float64Array) || bias.length !== 2 * I) throw new ShapeError(`${field}.readout.bias`, `a Float64Array of ${2 * I} elements`, describeValue(bias));
    if (skip && I !== 1 && I !== H) throw new InvalidArgumentError(`${field}.readout.skip`, `false when I (${I}) is neither 1 nor H (${H})`, 'true');
    const D = I + program.inner.stateSize;
    if (program.stateSize !== D) throw new InvalidArgumentError(`${field}.stateSize`, `${D}`, describeValue(program.stateSize));
    return;
  }
  const gates = { gru: 3, lstm: 4, elman: 1 }[program.kind as string];
  if (gates === undefined) throw new InvalidArgumentError(`${field}.kind`, "'gru', 'lstm', 'elman' or 'ar'", describeValue(program.kind));
  const { inputSize: I, hiddenSize: H } = program;
  for (const [name, v, min] of [['inputSize', I, 0], ['hiddenSize', H, 1]] as const) {
    if (!Number.isInteger(v) || v < min) throw new InvalidArgumentError(`${field}.${name}`, `an integer ≥ ${min}`, describeValue(v));
  }
  const activations = Object.keys(SCALAR_ACTIVATIONS);
  const named = (name: 'activation' | 'recurrentActivation', value: unknown) => {
    if (typeof value !== 'string' || !activations.includes(value)) {
      throw new InvalidArgumentError(`${field}.${name}`, `one of ${activations.map((a) => `'${a}'`).join(', ')}`, describeValue(value));
    }
  };
  named('activation', program.activation);
  if (program.kind !== 'elman' || program.recurrentActivation !== undefined) named('recurrentActivation', program.recurrentActivation ?? 'sigmoid');
  if (program.resetAfter !== undefined && typeof program.resetAfter !== 'boolean') {
    throw new InvalidArgumentError(`${field}.resetAfter`, 'a boolean', describeValue(program.resetAfter));
  }
  const G = gates * H;
  const expect = (name: 'weightIh' | 'weightHh' | 'biasIh' | 'biasHh', n: number) => {
    const a = program[name];
    if (!(a instanceof Float64Array) || a.length !== n) {
      throw new ShapeError(`${field}.${name}`, `a Float64Array of ${n} elements`, a instanceof Float64Array ? `${a.length} elements` : describeValue(a));
    }
  };
  expect('weightIh', G * I);
  expect('weightHh', G * H);
  expect('biasIh', G);
  expect('biasHh', G);
  const D = program.kind === 'lstm' ? 2 * H : H;
  if (program.stateSize !== D) throw new InvalidArgumentError(`${field}.stateSize`, `${D}`, describeValue(program.stateSize));
}

/** The host kernel of any program. */
export function hostKernel(program: CellProgram, dtype: DType): HostRnnKernel {
  return program.kind === 'ar' ? hostArKernel(program, dtype) : hostRnnKernel(program, dtype);
}

/**
 * Binds a program on a host-memory backend, or returns `undefined` when the backend keeps its
 * tensors elsewhere (no `hostData`).
 *
 * @example
 * ```ts
 * // A host-memory backend's bindProgram:
 * bindProgram(program: CellProgram, context: BindContext) {
 *   return bindHostProgram(this, program, context);
 * }
 * ```
 */
export function bindHostProgram(backend: ComputeBackend, program: CellProgram, context: BindContext): FusedCell | undefined {
  if (!backend.hostData) return undefined;
  checkProgram(program);
  checkBindContext(context, program.inputSize, program.kind);
  const view = backend.hostData.bind(backend);
  const { batch: B, steps: T, dtype } = context;
  const kernel = hostKernel(program, dtype);
  const D = kernel.stateSize;
  const G = kernel.driveSize;
  const I = program.inputSize;
  // The input projection of every step, once (a fresh tensor, filled in place). The inputs' view is
  // taken first: a disposed or foreign tensor is refused before anything is allocated.
  if (context.inputs) view(context.inputs);
  const drive = backend.fill([B, T, G], 0, dtype);
  try {
    const x = context.inputs ? view(context.inputs) : new Float64Array(0);
    const out = view(drive);
    for (let row = 0; row < B * T; row++) kernel.project(x, row * I, out, row * G);
  } catch (err) {
    backend.dispose(drive);
    throw err;
  }
  let disposed = false;
  const alive = (): void => {
    if (disposed) throw new InvalidArgumentError(`${program.kind} fused cell`, 'a cell that is still bound', 'a disposed one');
  };
  return {
    rollout(init) {
      alive();
      checkShape(init, 'init', [B, D]);
      return hostRollout(backend, (prev, po, x, xo, out, oo) => kernel.step(prev, po, x!, xo, out, oo), init, drive, [B, T, D], alive);
    },
    linearize(states, init, options) {
      alive();
      return linearizeHost(backend, view, kernel, drive, states, init, options, alive);
    },
    apply(prev) {
      alive();
      checkShape(prev, 'prev', [B, T, D]);
      view(prev); // refused before allocating if it is not a live tensor of this backend
      const out = backend.fill([B, T, D], 0, dtype);
      const p = view(prev);
      const x = view(drive);
      const o = view(out);
      for (let row = 0; row < B * T; row++) kernel.step(p, row * D, x, row * G, o, row * D);
      return out;
    },
    dispose() {
      if (disposed) return;
      disposed = true;
      backend.dispose(drive);
    },
  };
}

/** One step of one sequence on host arrays: `out[outOff..] = f(prev[prevOff..], drive row at driveOff)`. */
export type HostStepFn = (prev: HostArray, prevOff: number, drive: HostArray | null, driveOff: number, out: HostArray, outOff: number) => void;

/**
 * A sequential rollout on a host-memory backend: `step` over every batch entry, advanced in slices,
 * into a fresh `[B, T, D]` tensor from `init` `[B, D]` (drive rows from `drive` `[B, T, G]`, or none).
 * `alive` throws when the owner was disposed.
 *
 * @example
 * ```ts
 * const rollout = hostRollout(backend, step, init, drive, [B, T, D], () => {});
 * rollout.advance(T);
 * ```
 */
export function hostRollout(
  backend: ComputeBackend,
  step: HostStepFn,
  init: Tensor,
  drive: Tensor | null,
  [B, T, D]: readonly [number, number, number],
  alive: () => void,
): Rollout {
  const view = backend.hostData!.bind(backend);
  view(init); // refused before allocating if it is not a live tensor of this backend
  const out = backend.fill([B, T, D], 0, init.dtype);
  const G = drive ? drive.shape[drive.shape.length - 1] : 0;
  let done = 0;
  return {
    states: out,
    advance(count) {
      alive();
      // Views are taken per slice: a backend may move its storage between slices.
      const o = view(out);
      const s0 = view(init);
      const x = drive ? view(drive) : null;
      const end = windowEnd(done, count, T);
      for (let b = 0; b < B; b++) {
        for (let t = done; t < end; t++) {
          const row = b * T + t;
          if (t === 0) step(s0, b * D, x, row * G, o, row * D);
          else step(o, (row - 1) * D, x, row * G, o, row * D);
        }
      }
      done = end;
      return done;
    },
  };
}

/** Checks a fused linearisation's arguments (shared by every backend's fused cells). */
export function checkLinearize(states: Tensor, init: Tensor, options: FusedLinearizeOptions, [B, T, D]: readonly number[]): boolean {
  const kind = options?.kind;
  if (kind !== 'dense' && kind !== 'diagonal') throw new InvalidArgumentError('options.kind', "'dense' or 'diagonal'", describeValue(kind));
  checkShape(states, 'states', [B, T, D]);
  checkShape(init, 'init', [B, D]);
  if (states.dtype !== init.dtype) throw new InvalidArgumentError('init.dtype', `'${states.dtype}' (the states' dtype)`, `'${init.dtype}'`);
  return kind === 'dense';
}

/** Checks a fused adjoint's arguments (shared by every backend's fused cells); returns whether `∂L/∂u` is wanted. */
export function checkAdjoint(prev: Tensor, cotangent: Tensor, options: FusedAdjointOptions, [B, T, D]: readonly number[], dtype: DType): boolean {
  checkShape(prev, 'prev', [B, T, D]);
  checkShape(cotangent, 'cotangent', [B, T, D]);
  if (prev.dtype !== dtype) throw new InvalidArgumentError('prev.dtype', `'${dtype}' (the binding's dtype)`, describeValue(prev.dtype));
  if (cotangent.dtype !== dtype) throw new InvalidArgumentError('cotangent.dtype', `'${dtype}' (the binding's dtype)`, describeValue(cotangent.dtype));
  const inputs = options?.inputs;
  if (typeof inputs !== 'boolean') throw new InvalidArgumentError('options.inputs', 'a boolean', describeValue(inputs));
  return inputs;
}

/**
 * The bookkeeping of a fused adjoint sweep any backend's kernels can share: `sweepSteps(from, to)`
 * runs the reverse recurrence over steps `[from, to)` of every batch entry (the later steps already
 * done), `gradients()` hands over the results and `release()` frees the rest. This clamps the
 * windows (from the last step backwards), refuses `finish()` before the first step or twice, and
 * anything after `dispose()`.
 *
 * @example
 * ```ts
 * return adjointRun(T, alive, { sweepSteps: (from, to) => kernels(from, to), gradients, release });
 * ```
 */
export function adjointRun(
  T: number,
  alive: () => void,
  parts: { sweepSteps(from: number, to: number): void; gradients(): FusedGradients; release(): void },
): FusedAdjoint {
  let done = 0;
  let finished = false;
  let disposed = false;
  const usable = (): void => {
    alive();
    if (disposed) throw new InvalidArgumentError('adjoint', 'a sweep that is not disposed', 'a disposed one');
    if (finished) throw new InvalidArgumentError('adjoint', 'a sweep whose gradients were not taken yet', 'a finished one');
  };
  return {
    advance(count) {
      usable();
      const end = windowEnd(done, count, T);
      if (end > done) parts.sweepSteps(T - end, T - done);
      done = end;
      return done;
    },
    finish() {
      usable();
      if (!(done >= T)) throw new InvalidArgumentError('adjoint', `all ${T} steps done before finish()`, `${done} steps done`);
      finished = true;
      return parts.gradients();
    },
    dispose() {
      if (disposed) return;
      disposed = true;
      parts.release();
    },
  };
}

/**
 * The bookkeeping of a fused linearisation any backend's kernels can share: `advanceSteps(from, to)`
 * linearises steps `[from, to)` of every batch entry and returns that window's `max |d|` (NaN if
 * any is NaN) and `Σ d²`; this clamps the windows, folds the reductions (a NaN residual sticks) and
 * refuses `finish()` before the last step.
 *
 * @example
 * ```ts
 * return linearizationRun(jacobian, defect, T, options, alive, (from, to) => kernel(from, to));
 * ```
 */
export function linearizationRun(
  jacobian: Tensor,
  defect: Tensor,
  T: number,
  options: FusedLinearizeOptions,
  alive: () => void,
  advanceSteps: (from: number, to: number) => { residual: number; sumSquares: number },
): FusedLinearization {
  let residual = 0;
  let sumSquares = 0;
  let done = 0;
  return {
    jacobian,
    defect,
    advance(count) {
      alive();
      const end = windowEnd(done, count, T);
      if (end > done) {
        const part = advanceSteps(done, end);
        residual = Number.isNaN(residual) || Number.isNaN(part.residual) ? Number.NaN : Math.max(residual, part.residual);
        sumSquares += part.sumSquares;
      }
      done = end;
      return done;
    },
    finish() {
      if (!(done >= T)) throw new InvalidArgumentError('linearisation', `all ${T} steps done before finish()`, `${done} steps done`);
      return { residual: Promise.resolve(residual), sumSquares: Promise.resolve(options.sumSquares ? sumSquares : Number.NaN) };
    },
  };
}

/** A fused linearisation on host arrays, advanced step range by step range. */
function linearizeHost(
  backend: ComputeBackend,
  view: (t: Tensor) => HostArray,
  kernel: HostRnnKernel,
  drive: Tensor,
  states: Tensor,
  init: Tensor,
  options: FusedLinearizeOptions,
  alive: () => void,
): FusedLinearization {
  const D = kernel.stateSize;
  const G = kernel.driveSize;
  const [B, T] = drive.shape;
  const dense = checkLinearize(states, init, options, [B, T, D]);
  view(states); // refused before allocating if not live tensors of this backend
  view(init);
  const jacobian = backend.fill(dense ? [B, T, D, D] : [B, T, D], 0, drive.dtype);
  const defect = backend.fill([B, T, D], 0, drive.dtype);
  const value = new Float64Array(D);
  const jacSize = dense ? D * D : D;
  return linearizationRun(jacobian, defect, T, options, alive, (from, to) => {
    // Views per window: a backend may move its storage between windows.
    const s = view(states);
    const s0 = view(init);
    const x = view(drive);
    const J = view(jacobian);
    const d = view(defect);
    let residual = 0;
    let sumSquares = 0;
    for (let b = 0; b < B; b++) {
      for (let t = from; t < to; t++) {
        const row = b * T + t;
        if (t === 0) kernel.linearize(s0, b * D, x, row * G, value, 0, J, row * jacSize, dense);
        else kernel.linearize(s, (row - 1) * D, x, row * G, value, 0, J, row * jacSize, dense);
        for (let i = 0; i < D; i++) {
          const e = value[i] - s[row * D + i];
          d[row * D + i] = e;
          const a = Math.abs(e);
          // NaN sticks: a NaN defect makes the residual NaN, and nothing replaces a NaN residual.
          if (!Number.isNaN(residual) && !(a <= residual)) residual = a;
          sumSquares += e * e;
        }
      }
    }
    return { residual, sumSquares };
  });
}
