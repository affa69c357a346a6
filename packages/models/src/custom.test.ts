import { CpuBackend } from '@pelk/backend-cpu';
import { type ComputeBackend, InvalidArgumentError, ShapeError, type Tensor } from '@pelk/core';
import { describe, expect, it, vi } from 'vitest';
import { scaleRows } from './bound.js';
import { customCell } from './custom.js';
import { cellContract, randomArray } from './test-support.js';

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
