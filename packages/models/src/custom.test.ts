import { CpuBackend } from '@pelk/backend-cpu';
import { type ComputeBackend, InvalidArgumentError, ShapeError, type Tensor } from '@pelk/core';
import { describe, expect, it, vi } from 'vitest';
import { scaleRows } from './bound.js';
import { customCell } from './custom.js';
import { cellContract, maxAbs, randomArray, thrownBy } from '../test/support.js';

const D = 3;
const I = 2;
const W = randomArray(D * D, 1, 0.9);
const U = randomArray(D * I, 2, 0.9);

// s' = tanh(W s + U u); weights are uploaded per call (freed by the caller's tidy).
const step = (b: ComputeBackend, s: Tensor, u: Tensor | null): Tensor => {
  const wT = b.fromArray(transpose(W, D, D), [D, D], s.dtype);
  const uT = b.fromArray(transpose(U, D, I), [I, D], s.dtype);
  return b.unary('tanh', b.binary('add', b.matmul(s, wT), b.matmul(u!, uT)));
};
const derivative = (b: ComputeBackend, s: Tensor, u: Tensor | null): Tensor => b.affine(b.unary('square', step(b, s, u)), -1, 1);
const jacobian = (b: ComputeBackend, s: Tensor, u: Tensor | null): Tensor =>
  scaleRows(b, derivative(b, s, u), b.fromArray(W, [D, D], s.dtype));
const diagonalJacobian = (b: ComputeBackend, s: Tensor, u: Tensor | null): Tensor =>
  b.binary('mul', derivative(b, s, u), b.fromArray([W[0], W[4], W[8]], [D], s.dtype));

function transpose(m: Float64Array, r: number, c: number): Float64Array {
  return Float64Array.from({ length: r * c }, (_, k) => m[(k % r) * c + Math.floor(k / r)]);
}

// An autonomous map: s'_i = s_i + 0.1 (s_{i−1} s_{i+1} − s_i³).
const autonomous = (b: ComputeBackend, s: Tensor): Tensor =>
  b.binary(
    'add',
    s,
    b.affine(b.binary('sub', b.binary('mul', b.roll(s, 1), b.roll(s, -1)), b.binary('mul', s, b.unary('square', s))), 0.1, 0),
  );

describe('custom cells', () => {
  const quiet = { onWarning: () => {} };
  cellContract('with dense and diagonal Jacobians', () => customCell({ stateSize: D, inputSize: I, step, jacobian, diagonalJacobian }));
  cellContract('with a dense Jacobian only', () => customCell({ stateSize: D, inputSize: I, step, jacobian }));
  cellContract('finite differences (driven)', () => customCell({ stateSize: D, inputSize: I, step, ...quiet }));
  cellContract('finite differences (autonomous)', () => customCell({ stateSize: 4, inputSize: 0, step: autonomous, ...quiet }), {
    stateScale: 2,
  });
});

/**
 * The contract above checks a cell's Jacobians against finite differences, which is vacuous for
 * the cells that have none (their Jacobians ARE finite differences). Here the finite-difference
 * Jacobians of those cells are checked against analytic ones written out on the host.
 *
 * Tolerance: the cell differences with `h = ε^{1/3}·max(1, |x_j|)`. Central differences err by at
 * most `h²/6·max|∂³f_i/∂x_j³|` (truncation) plus `2·δf/(2h)` where `δf` bounds the absolute
 * rounding error of one evaluation of `f_i`; we allow twice that sum.
 */
describe('custom cells without Jacobians: finite differences match analytic Jacobians', () => {
  const backend = new CpuBackend();
  const eps = 2 ** -53;
  const h0 = Math.cbrt(eps);
  const B = 2;
  const T = 3;

  /** The cell's dense and diagonal Jacobians at `prev` (`[B, T, D]`), and its values. */
  function linearize(cell: ReturnType<typeof customCell>, prev: Float64Array, inputs: Float64Array | null) {
    const D = cell.stateSize;
    const u = inputs ? backend.fromArray(inputs, [B, T, cell.inputSize], 'float64') : null;
    const bound = cell.bind(backend, { dtype: 'float64', inputs: u, batch: B, steps: T });
    let dense!: Float64Array;
    let diagonal!: Float64Array;
    backend.tidy(() => {
      const p = backend.fromArray(prev, [B, T, D], 'float64');
      dense = Float64Array.from(backend.readSync(bound.linearize(p, 'dense').jacobian));
      diagonal = Float64Array.from(backend.readSync(bound.linearize(p, 'diagonal').jacobian));
    });
    bound.dispose();
    if (u) backend.dispose(u);
    return { dense, diagonal };
  }

  /** Largest |a − b| (lengths must agree). */
  function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
    expect(a.length).toBe(b.length);
    let m = 0;
    for (let k = 0; k < a.length; k++) m = Math.max(m, Math.abs(a[k] - b[k]));
    return m;
  }

  const diagonalOf = (J: Float64Array, D: number) => Float64Array.from({ length: J.length / D }, (_, k) => J[Math.floor(k / D) * D * D + (k % D) * (D + 1)]);

  it('tanh(W s + U u): J = diag(1 − tanh²(W s + U u))·W', () => {
    const prev = randomArray(B * T * D, 11);
    const inputs = randomArray(B * T * I, 12);
    const want = new Float64Array(B * T * D * D);
    let zScale = 0;
    for (let r = 0; r < B * T; r++) {
      for (let i = 0; i < D; i++) {
        let z = 0;
        let size = 0;
        for (let j = 0; j < D; j++) {
          z += W[i * D + j] * prev[r * D + j];
          size += Math.abs(W[i * D + j] * prev[r * D + j]);
        }
        for (let k = 0; k < I; k++) {
          z += U[i * I + k] * inputs[r * I + k];
          size += Math.abs(U[i * I + k] * inputs[r * I + k]);
        }
        zScale = Math.max(zScale, size);
        const d = 1 - Math.tanh(z) ** 2;
        for (let j = 0; j < D; j++) want[(r * D + i) * D + j] = d * W[i * D + j];
      }
    }
    const got = linearize(customCell({ stateSize: D, inputSize: I, step, onWarning: () => {} }), prev, inputs);

    // |tanh'''| ≤ 2, so ∂³f_i/∂s_j³ ≤ 2|W_ij|³. One evaluation: z carries ≤ (D + I)·ε·Σ|terms| of
    // rounding (the matmuls) and 3ε of its last additions; tanh' ≤ 1 passes it on, tanh adds ≤ 2ε.
    const h = h0 * Math.max(1, maxAbs(prev));
    const wMax = maxAbs(W);
    const deltaF = (D + I + 3) * eps * zScale + 2 * eps;
    const tol = 2 * ((h * h) / 6 * 2 * wMax ** 3 + deltaF / h);
    expect(tol).toBeLessThan(1e-9);

    expect(maxDiff(got.dense, want)).toBeLessThanOrEqual(tol);
    expect(maxDiff(got.diagonal, diagonalOf(want, D))).toBeLessThanOrEqual(tol);
    // Not vacuous: the Jacobian is far from zero, and its transpose (a plausible bug) is rejected.
    expect(maxAbs(want)).toBeGreaterThan(0.1);
    const transposed = Float64Array.from(want, (_, k) => {
      const r = Math.floor(k / (D * D));
      const i = Math.floor(k / D) % D;
      const j = k % D;
      return want[r * D * D + j * D + i];
    });
    expect(maxDiff(got.dense, transposed)).toBeGreaterThan(1e3 * tol);
  });

  it('s_i + 0.1 (s_{i−1} s_{i+1} − s_i³): J has 1 − 0.3 s_i² on the diagonal, 0.1 s_{i±1} beside it', () => {
    const N = 4;
    const prev = randomArray(B * T * N, 13, 2);
    const want = new Float64Array(B * T * N * N);
    for (let r = 0; r < B * T; r++) {
      const s = (i: number) => prev[r * N + ((i + N) % N)];
      for (let i = 0; i < N; i++) {
        const row = (r * N + i) * N;
        want[row + i] = 1 - 0.3 * s(i) ** 2;
        want[row + ((i + N - 1) % N)] += 0.1 * s(i + 1);
        want[row + ((i + 1) % N)] += 0.1 * s(i - 1);
      }
    }
    const got = linearize(customCell({ stateSize: N, inputSize: 0, step: autonomous, onWarning: () => {} }), prev, null);

    // ∂³f_i/∂s_i³ = −0.6 (the products of neighbours are linear in each direction). One
    // evaluation of f_i (|s| ≤ 2, terms ≤ 2 + 0.1·(4 + 8)) rounds by at most ~8ε·(2 + 1.2).
    const x = maxAbs(prev);
    const h = h0 * Math.max(1, x);
    const deltaF = 8 * eps * (x + 0.1 * (x * x + x ** 3));
    const tol = 2 * ((h * h) / 6 * 0.6 + deltaF / h);
    expect(tol).toBeLessThan(1e-9);

    expect(maxDiff(got.dense, want)).toBeLessThanOrEqual(tol);
    expect(maxDiff(got.diagonal, diagonalOf(want, N))).toBeLessThanOrEqual(tol);
    // The neighbour terms are not symmetric: a swapped roll direction would be caught.
    const swapped = new Float64Array(want.length);
    for (let r = 0; r < B * T; r++) {
      const s = (i: number) => prev[r * N + ((i + N) % N)];
      for (let i = 0; i < N; i++) {
        const row = (r * N + i) * N;
        swapped[row + i] = 1 - 0.3 * s(i) ** 2;
        swapped[row + ((i + N - 1) % N)] += 0.1 * s(i - 1);
        swapped[row + ((i + 1) % N)] += 0.1 * s(i + 1);
      }
    }
    expect(maxDiff(got.dense, swapped)).toBeGreaterThan(1e3 * tol);
  });
});

describe('custom cell behaviour', () => {
  const backend = new CpuBackend();
  const B = 2;
  const T = 3;

  function linearizeTwice(cell: ReturnType<typeof customCell>) {
    const inputs = backend.fromArray(randomArray(B * T * I, 3), [B, T, I], 'float64');
    const bound = cell.bind(backend, { dtype: 'float64', inputs, batch: B, steps: T });
    backend.tidy(() => {
      const prev = backend.fromArray(randomArray(B * T * D, 4), [B, T, D], 'float64');
      bound.linearize(prev, 'dense');
      bound.linearize(prev, 'diagonal');
      bound.linearize(prev, 'dense');
    });
    bound.dispose();
    backend.dispose(inputs);
  }

  it('warns once per cell when it falls back to finite differences', () => {
    const messages: string[] = [];
    const cell = customCell({ stateSize: D, inputSize: I, step, name: 'mine', onWarning: (m) => messages.push(m) });
    linearizeTwice(cell);
    linearizeTwice(cell);
    expect(messages).toHaveLength(1);
    expect(messages[0]).toMatch(/custom cell 'mine' has no dense Jacobian; using batched central finite differences/);
    const spy = vi.spyOn(console, 'warn').mockImplementation(() => {});
    linearizeTwice(customCell({ stateSize: D, inputSize: I, step }));
    expect(spy).toHaveBeenCalledTimes(1);
    spy.mockRestore();
  });

  it('does not warn when Jacobians are given', () => {
    const onWarning = vi.fn();
    linearizeTwice(customCell({ stateSize: D, inputSize: I, step, jacobian, onWarning }));
    expect(onWarning).not.toHaveBeenCalled();
  });

  it('finite differences call step once per linearisation, batched over all perturbations', () => {
    const calls: number[][] = [];
    const counted = (b: ComputeBackend, s: Tensor, u: Tensor | null) => {
      calls.push([...s.shape]);
      return step(b, s, u);
    };
    linearizeTwice(customCell({ stateSize: D, inputSize: I, step: counted, onWarning: () => {} }));
    // value + perturbations per linearize, three linearize calls
    expect(calls).toEqual([[B * T, D], [B * T * 2 * D, D], [B * T, D], [B * T * 2 * D, D], [B * T, D], [B * T * 2 * D, D]]);
  });

  it('validates options and the shapes its functions return', () => {
    expect(() => customCell({ stateSize: 0, inputSize: 0, step })).toThrow(/options.stateSize/);
    expect(() => customCell({ stateSize: 2, inputSize: -1, step })).toThrow(InvalidArgumentError);
    expect(() => customCell({ stateSize: 2, inputSize: 0, step: 3 as never })).toThrow(/options.step: expected a function/);
    expect(() => customCell({ stateSize: 2, inputSize: 0, step, jacobian: 'x' as never })).toThrow(/options.jacobian/);
    const wrong = customCell({ stateSize: 4, inputSize: 0, step: (b, s) => b.slice(s, -1, 0, 2), name: 'wrong' });
    const bound = wrong.bind(backend, { dtype: 'float64', inputs: null, batch: 1, steps: 2 });
    backend.tidy(() => {
      expect(() => bound.step(backend.fill([1, 4], 0, 'float64'), 0)).toThrow(ShapeError);
      expect(() => bound.step(backend.fill([1, 4], 0, 'float64'), 0)).toThrow(/wrong.step: expected a tensor of shape \[1, 4\]/);
      expect(() => bound.step(backend.fill([1, 3], 0, 'float64'), 0)).toThrow(/prev: expected shape \[1, 4\]/);
      expect(() => bound.step(backend.fill([1, 4], 0, 'float64'), 2)).toThrow(/t: expected an integer in \[0, 1\]/);
    });
    bound.dispose();
    backend.tidy(() => {
      const inputs = backend.fill([1, 2, 1], 0, 'float64');
      expect(() => wrong.bind(backend, { dtype: 'float64', inputs, batch: 1, steps: 2 })).toThrow(/context.inputs: expected null/);
    });
  });
});

describe('customCell options: unknown keys are errors', () => {
  it('a misspelt jacobian is refused instead of falling back to finite differences', () => {
    const e = thrownBy(() => customCell({ stateSize: D, inputSize: I, step, jacobain: jacobian } as never));
    expect(e.field).toBe('options.jacobain');
    expect(e.expected).toBe('only the keys `stateSize`, `inputSize`, `step`, `jacobian`, `diagonalJacobian`, `name`, `onWarning`');
    expect(e.received).toBe('an unknown key `jacobain` (did you mean `jacobian`?)');
  });
});
