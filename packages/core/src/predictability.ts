/**
 * Predictability of an evaluation: the largest Lyapunov exponent along a window of a trajectory
 * (ALGORITHMS.md; Gonzalez et al. 2025, "Predictability enables parallelization of nonlinear state
 * space models"). Where it is clearly positive, the number of parallel iterations grows with T and
 * sequential evaluation wins; method `auto` reads it before choosing.
 */
import type { ComputeBackend, DType, Tensor } from './backend.js';
import type { BoundCell, Cell } from './cell.js';
import { bindFused, lazyBound } from './fused/bind.js';
import type { FusedCell } from './program.js';
import { type LyapunovEstimate, estimateLyapunov } from './lyapunov.js';
import { lyapunovWindow } from './lyapunov-window.js';
import type { Pacer } from './solvers/problem.js';
import { solveSequential } from './solvers/sequential.js';
import type { HostTensor } from './validate.js';

/** What a window of a trajectory needs: the cell, its host inputs and the initial states. */
export interface WindowSource {
  readonly backend: ComputeBackend;
  readonly cell: Cell;
  readonly dtype: DType;
  /** `[B, T, I]` host inputs, or null for autonomous cells. */
  readonly inputs: HostTensor | null;
  readonly batch: number;
  readonly steps: number;
  /** `[B, D]` initial states. */
  readonly init: Tensor;
}

/** The window `[start, start + W)` and the batch rows an estimate uses, or undefined when none fits. */
function windowOf(src: WindowSource, at: 'start' | 'end'): { start: number; steps: number; rows: number } | undefined {
  const w = lyapunovWindow(src.batch, src.steps, src.cell.stateSize);
  return w && { ...w, start: at === 'end' ? src.steps - w.steps : 0 };
}

/**
 * Binds the cell to steps `[start, start + steps)` of the first `rows` sequences' inputs. With
 * `fused`, the backend's fused kernels are bound when it has them, and the op-by-op cell only lazily.
 */
export function bindWindow(
  src: WindowSource,
  start: number,
  steps: number,
  rows: number,
  fused = false,
): { cell: BoundCell; fused?: FusedCell; owned: Tensor[] } {
  const { backend, cell } = src;
  let segment: Tensor | null = null;
  if (src.inputs) {
    const I = cell.inputSize;
    const T = src.steps;
    // One sequence: its rows are contiguous, uploaded straight from the host inputs.
    let data = src.inputs.data.subarray(start * I, (start + steps) * I);
    if (rows > 1) {
      data = new Float64Array(rows * steps * I);
      for (let b = 0; b < rows; b++) data.set(src.inputs.data.subarray((b * T + start) * I, (b * T + start + steps) * I), b * steps * I);
    }
    segment = backend.fromArray(data, [rows, steps, I], src.dtype);
  }
  try {
    const context = { dtype: src.dtype, inputs: segment, batch: rows, steps };
    const owned = segment ? [segment] : [];
    const kernels = fused ? bindFused(backend, cell, context) : undefined;
    if (kernels) return { cell: lazyBound(cell, backend, context), fused: kernels, owned };
    return { cell: cell.bind(backend, context), owned };
  } catch (err) {
    if (segment) backend.dispose(segment);
    throw err;
  }
}

/** The exponent along `window` (`[rows, W, D]`) entered from `entering` (`[rows, D]`), with `bound` bound to it. */
async function estimateOn(src: WindowSource, bound: BoundCell, window: Tensor, entering: Tensor): Promise<LyapunovEstimate> {
  const { backend } = src;
  const jacobian = backend.tidy(() => {
    const lin = bound.linearize(backend.shiftTime(window, entering), 'dense');
    return lin.jacobian;
  });
  try {
    return await estimateLyapunov(backend, jacobian, 'dense', { horizon: src.steps });
  } finally {
    backend.dispose(jacobian);
  }
}

/**
 * The largest Lyapunov exponent along the last window of `states` (`[B, T, D]`, not consumed), or
 * undefined when the window does not fit (`lyapunovWindow`).
 */
export async function lyapunovAlong(src: WindowSource, states: Tensor): Promise<LyapunovEstimate | undefined> {
  const w = windowOf(src, 'end');
  if (!w) return undefined;
  const { backend } = src;
  const { cell, owned } = bindWindow(src, w.start, w.steps, w.rows);
  const tensors: Tensor[] = [];
  try {
    const rows = backend.slice(states, 0, 0, w.rows);
    tensors.push(rows);
    tensors.push(backend.slice(rows, 1, w.start, w.steps));
    tensors.push(w.start === 0 ? backend.slice(src.init, 0, 0, w.rows) : backend.timeStep(rows, w.start - 1));
    return await estimateOn(src, cell, tensors[1], tensors[2]);
  } finally {
    backend.dispose(tensors);
    cell.dispose();
    backend.dispose(owned);
  }
}

/**
 * The largest Lyapunov exponent along the first window of the true trajectory, computed by
 * evaluating that window sequentially first: what `auto` reads before choosing a method.
 */
export async function lyapunovProbe(src: WindowSource, pacer: Pacer, startedAt: number): Promise<LyapunovEstimate | undefined> {
  const w = windowOf(src, 'start');
  if (!w) return undefined;
  const { backend } = src;
  const { cell, owned } = bindWindow(src, 0, w.steps, w.rows);
  const tensors: Tensor[] = [];
  try {
    const init = backend.slice(src.init, 0, 0, w.rows);
    tensors.push(init);
    const run = await solveSequential(
      { backend, cell, dtype: src.dtype, batch: w.rows, steps: w.steps, stateSize: src.cell.stateSize, init, startedAt, pacer },
      w.steps,
    );
    tensors.push(run.states);
    return await estimateOn(src, cell, run.states, init);
  } finally {
    backend.dispose(tensors);
    cell.dispose();
    backend.dispose(owned);
  }
}
