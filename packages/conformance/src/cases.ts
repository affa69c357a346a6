/**
 * Cells the suite checks, built from model-spec objects with random weights (so every convention
 * and activation of @pelk/models is covered), and the finite-difference Jacobian check.
 */
import type { Cell, ComputeBackend, DType } from '@pelk/core';
import { type CellSpec, customCell, readModelSpec } from '@pelk/models';
import { expect } from 'vitest';
import { maxAbs, maxAbsDiff, randomArray } from './reference.js';

/** A nested `[rows][cols]` random matrix. */
function matrix(rows: number, cols: number, seed: number, scale: number): number[][] {
  const flat = randomArray(rows * cols, seed, scale);
  return Array.from({ length: rows }, (_, r) => Array.from(flat.subarray(r * cols, (r + 1) * cols)));
}

function vector(n: number, seed: number, scale: number): number[] {
  return Array.from(randomArray(n, seed, scale));
}

/** Builds a cell from a `cell` spec object through the model-spec reader. */
export function cellFromSpec(cell: CellSpec): Cell {
  const inputSize = 'inputSize' in cell ? cell.inputSize : 0;
  return readModelSpec({
    cell,
    steps: 1,
    inputs: inputSize ? [new Array(inputSize).fill(0)] : null,
    initialState: null,
  }).cell;
}

/** PyTorch-layout random weights for `gates` gate blocks. */
function torchWeights(I: number, H: number, gates: number, seed: number, scale: number) {
  const bound = scale / Math.sqrt(H);
  return {
    weight_ih_l0: matrix(gates * H, I, seed, bound),
    weight_hh_l0: matrix(gates * H, H, seed + 1, bound),
    bias_ih_l0: vector(gates * H, seed + 2, bound),
    bias_hh_l0: vector(gates * H, seed + 3, bound),
  };
}

/** Keras-layout random weights (`kernel [I, G·H]`, `recurrentKernel [H, G·H]`). */
function kerasWeights(I: number, H: number, gates: number, seed: number, scale: number, doubleBias: boolean) {
  const bound = scale / Math.sqrt(H);
  return {
    kernel: matrix(I, gates * H, seed, bound),
    recurrentKernel: matrix(H, gates * H, seed + 1, bound),
    bias: doubleBias ? matrix(2, gates * H, seed + 2, bound) : vector(gates * H, seed + 2, bound),
  };
}

/** A GRU (PyTorch convention) with weights scaled by `scale`. */
export function randomGru(I: number, H: number, seed: number, scale = 1): { cell: Cell } {
  return { cell: cellFromSpec({ type: 'gru', convention: 'torch', inputSize: I, hiddenSize: H, weights: torchWeights(I, H, 3, seed, scale) }) };
}

/** A GRU, LSTM or Elman (tanh) cell, PyTorch convention, with weights scaled by `scale`. */
export function randomRnn(kind: 'gru' | 'lstm' | 'elman', I: number, H: number, seed: number, scale = 1): Cell {
  const base = { convention: 'torch', inputSize: I, hiddenSize: H } as const;
  if (kind === 'elman') return cellFromSpec({ ...base, type: 'elman', nonlinearity: 'tanh', weights: torchWeights(I, H, 1, seed, scale) });
  return cellFromSpec({ ...base, type: kind, weights: torchWeights(I, H, kind === 'gru' ? 3 : 4, seed, scale) });
}

/** A named cell for the Jacobian checks. */
export interface CellCase {
  readonly name: string;
  readonly cell: Cell;
  readonly seed: number;
}

/** Every cell family, convention and activation @pelk/models offers. */
export function jacobianCases(): CellCase[] {
  const I = 3;
  const H = 5;
  const cases: CellCase[] = [];
  const add = (name: string, cell: Cell) => cases.push({ name, cell, seed: 1000 + cases.length });
  add('GRU (PyTorch)', randomGru(I, H, 1, 1.5).cell);
  const flat = (m: number[][]) => m;
  const flaxDense = (i: number, o: number, seed: number, bias: boolean) => ({
    kernel: flat(matrix(i, o, seed, 0.8)),
    ...(bias ? { bias: vector(o, seed + 1, 0.5) } : {}),
  });
  add(
    'GRU (flax)',
    cellFromSpec({
      type: 'gru',
      convention: 'flax',
      inputSize: I,
      hiddenSize: H,
      weights: {
        ir: flaxDense(I, H, 10, true),
        iz: flaxDense(I, H, 12, true),
        in: flaxDense(I, H, 14, true),
        hr: flaxDense(H, H, 16, false),
        hz: flaxDense(H, H, 18, false),
        hn: flaxDense(H, H, 20, true),
      },
    }),
  );
  for (const resetAfter of [true, false]) {
    for (const recurrentActivation of ['sigmoid', 'hardSigmoid'] as const) {
      add(
        `GRU (Keras, resetAfter ${resetAfter}, ${recurrentActivation})`,
        cellFromSpec({
          type: 'gru',
          convention: 'keras',
          inputSize: I,
          hiddenSize: H,
          resetAfter,
          activation: 'tanh',
          recurrentActivation,
          weights: kerasWeights(I, H, 3, 30, 1.2, resetAfter),
        }),
      );
    }
  }
  add('LSTM (PyTorch)', cellFromSpec({ type: 'lstm', convention: 'torch', inputSize: I, hiddenSize: H, weights: torchWeights(I, H, 4, 40, 1.5) }));
  add(
    'LSTM (Keras, hardSigmoid)',
    cellFromSpec({
      type: 'lstm',
      convention: 'keras',
      inputSize: I,
      hiddenSize: H,
      activation: 'tanh',
      recurrentActivation: 'hardSigmoid',
      weights: kerasWeights(I, H, 4, 50, 1.2, false),
    }),
  );
  for (const nonlinearity of ['tanh', 'relu'] as const) {
    add(`Elman (${nonlinearity})`, cellFromSpec({ type: 'elman', convention: 'torch', inputSize: I, hiddenSize: H, nonlinearity, weights: torchWeights(I, H, 1, 60, 1.5) }));
  }
  for (const integrator of ['rk4', 'euler'] as const) {
    add(`Lorenz-96 (${integrator})`, cellFromSpec({ type: 'lorenz96', dimension: 6, forcing: 8, dt: 0.01, integrator }));
  }
  const w = randomArray(H * H, 70, 0.7);
  const step = (be: ComputeBackend, prev: Parameters<Parameters<typeof customCell>[0]['step']>[1], input: Parameters<Parameters<typeof customCell>[0]['step']>[2]) => {
    const W = be.fromArray(w, [H, H], prev.dtype);
    const pre = be.matmul(prev, W, true);
    return be.unary('tanh', input ? be.binary('add', pre, be.slice(be.concat([input, input], -1), -1, 0, H)) : pre);
  };
  add('custom cell (finite-difference Jacobians)', customCell({ stateSize: H, inputSize: I, step, onWarning: () => {} }));
  return cases;
}

/**
 * Checks a cell's dense and diagonal Jacobians against central finite differences of its own
 * `apply`, at random states and inputs. Tolerance: the FD truncation and rounding error for a step
 * `h = eps^(1/3)`, i.e. about `eps^(2/3)` relative.
 */
export async function checkJacobians(backend: ComputeBackend, dtype: DType, cell: Cell, seed: number): Promise<void> {
  const B = 2;
  const T = 3;
  const D = cell.stateSize;
  const I = cell.inputSize;
  const eps = backend.capabilities.epsilon[dtype] ?? 2 ** -24;
  const h = Math.cbrt(eps) * 4;
  const before = backend.memory().tensors;
  const inputs = I ? backend.fromArray(randomArray(B * T * I, seed, 1.5), [B, T, I], dtype) : null;
  const bound = cell.bind(backend, { dtype, inputs, batch: B, steps: T });
  const prevData = randomArray(B * T * D, seed + 1, cell.kind === 'lorenz96' ? 5 : 0.9);
  try {
    const prev = backend.fromArray(prevData, [B, T, D], dtype);
    const { dense, diag, value } = backend.tidy(() => {
      const d = bound.linearize(prev, 'dense');
      const g = bound.linearize(prev, 'diagonal');
      return { dense: d.jacobian, diag: g.jacobian, value: d.value };
    });
    const J = await backend.read(dense);
    const Jd = await backend.read(diag);
    const f = await backend.read(value);
    const applied = backend.tidy(() => bound.apply(prev));
    const fApply = await backend.read(applied);
    backend.dispose(applied);
    expect(maxAbsDiff(f, fApply), 'linearize value equals apply').toBeLessThanOrEqual(16 * eps * (1 + maxAbs(f)));
    // Columns of the FD Jacobian: perturb state component j at every (b, t) at once.
    const fd = new Float64Array(B * T * D * D);
    for (let j = 0; j < D; j++) {
      const plus = Float64Array.from(prevData);
      const minus = Float64Array.from(prevData);
      for (let r = 0; r < B * T; r++) {
        plus[r * D + j] += h;
        minus[r * D + j] -= h;
      }
      const fp = await readApply(backend, bound, plus, [B, T, D], dtype);
      const fm = await readApply(backend, bound, minus, [B, T, D], dtype);
      for (let r = 0; r < B * T; r++) for (let i = 0; i < D; i++) fd[(r * D + i) * D + j] = (fp[r * D + i] - fm[r * D + i]) / (2 * h);
    }
    const scale = Math.max(1, maxAbs(fd));
    expect(maxAbsDiff(J, fd), 'dense Jacobian vs finite differences').toBeLessThanOrEqual(Math.cbrt(eps) ** 2 * 200 * scale);
    const diagOfDense = new Float64Array(B * T * D);
    for (let r = 0; r < B * T; r++) for (let i = 0; i < D; i++) diagOfDense[r * D + i] = J[(r * D + i) * D + i];
    expect(maxAbsDiff(Jd, diagOfDense), 'diagonal Jacobian vs the dense one').toBeLessThanOrEqual(64 * eps * scale);
    backend.dispose([prev, dense, diag, value]);
  } finally {
    bound.dispose();
    if (inputs) backend.dispose(inputs);
  }
  expect(backend.memory().tensors, 'tensors left alive').toBe(before);
}

async function readApply(
  backend: ComputeBackend,
  bound: ReturnType<Cell['bind']>,
  data: Float64Array,
  shape: number[],
  dtype: DType,
): Promise<Float64Array> {
  const x = backend.fromArray(data, shape, dtype);
  const y = backend.tidy(() => bound.apply(x));
  const out = Float64Array.from(await backend.read(y));
  backend.dispose([x, y]);
  return out;
}

/**
 * A cell of backend ops (`tanh(0.5·s + x)`, D = I = `size`, no fused host kernel) that throws
 * "cell failed" on its `failAt`-th call: the failure lands mid-run, with intermediates alive, so
 * leak checks see every method's error path. `failAt = Infinity` never fails.
 *
 * @example
 * ```ts
 * await expect(evaluate(failingCell(6), inputs, { backend })).rejects.toThrow('cell failed');
 * ```
 */
export function failingCell(failAt: number, size = 3): Cell {
  let calls = 0;
  return customCell({
    stateSize: size,
    inputSize: size,
    onWarning: () => {},
    step: (b, s, x) => {
      if (++calls >= failAt) throw new Error('cell failed');
      return b.unary('tanh', b.binary('add', b.affine(s, 0.5, 0), x!));
    },
  });
}
