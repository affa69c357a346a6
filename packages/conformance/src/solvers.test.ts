import { CpuBackend } from '@pelk/backend-cpu';
import {
  AbortError,
  type BindContext,
  type BoundCell,
  type Cell,
  type ComputeBackend,
  InvalidArgumentError,
  NonFiniteError,
  ResourceLimitError,
  ShapeError,
  type Tensor,
  UnknownMethodError,
  evaluate,
} from '@pelk/core';
import { describe, expect, it } from 'vitest';

/**
 * A minimal tanh RNN written inline against the ops, so core's solvers are tested without
 * @pelk/models: h' = tanh(W h + x).
 */
function tanhCell(W: number[][]): Cell {
  const D = W.length;
  return {
    kind: 'test-tanh',
    stateSize: D,
    inputSize: D,
    bind(be: ComputeBackend, ctx: BindContext): BoundCell {
      const w = be.fromArray(W.flat(), [D, D], ctx.dtype);
      const x = ctx.inputs!;
      const forward = (prev: Tensor, input: Tensor) => be.unary('tanh', be.binary('add', be.matmul(prev, w, true), input));
      return {
        apply: (prev) => forward(prev, x),
        linearize: (prev, kind) => {
          const value = forward(prev, x);
          const d = be.affine(be.unary('square', value), -1, 1);
          const dense = be.binary('mul', be.reshape(d, [...d.shape, 1]), w);
          return { value, jacobian: kind === 'dense' ? dense : be.diagPart(dense) };
        },
        step: (prev, t) => forward(prev, be.timeStep(x, t)),
        dispose: () => be.dispose(w),
      };
    },
  };
}

function seq(n: number, seed: number): number[] {
  let s = seed;
  return Array.from({ length: n }, () => {
    s = (s * 16807) % 2147483647;
    return (s / 2147483647) * 2 - 1;
  });
}

const D = 4;
const W = Array.from({ length: D }, (_, i) => seq(D, 11 + i).map((v) => v * 0.9));
const inputs = (T: number, seed = 3) => Array.from({ length: T }, (_, t) => seq(D, seed + t * 7));

describe('evaluate', () => {
  const backend = new CpuBackend();
  const cell = tanhCell(W);

  it('DEER and quasi-DEER reproduce the sequential trajectory', async () => {
    const u = inputs(50);
    const ref = await evaluate(cell, u, { backend, method: 'sequential' });
    const expected = await ref.read();
    for (const method of ['deer', 'quasi-deer'] as const) {
      const r = await evaluate(cell, u, { backend, method, tolerance: 1e-12 });
      expect(r.converged).toBe(true);
      expect(r.residual).toBeLessThan(1e-12);
      const got = await r.read();
      for (let i = 0; i < got.length; i++) expect(Math.abs(got[i] - expected[i])).toBeLessThan(1e-12);
      expect(r.shape).toEqual([50, D]);
      r.dispose();
    }
    ref.dispose();
    expect(backend.memory().tensors).toBe(0);
  });

  it('batched inputs give each entry its own sequence and initial state', async () => {
    const u = [inputs(9, 1), inputs(9, 2)];
    const s0 = [seq(D, 5), seq(D, 6)];
    const r = await evaluate(cell, u, { backend, method: 'quasi-deer', initialState: s0, tolerance: 1e-12 });
    expect(r.shape).toEqual([2, 9, D]);
    const both = (await r.toArray()) as number[][][];
    for (let b = 0; b < 2; b++) {
      const single = await evaluate(cell, u[b], { backend, method: 'sequential', initialState: s0[b] });
      const ref = (await single.toArray()) as number[][];
      for (let t = 0; t < 9; t++) for (let i = 0; i < D; i++) expect(both[b][t][i]).toBeCloseTo(ref[t][i], 12);
      single.dispose();
    }
    r.dispose();
  });

  it('reports each iteration, warm-starts from a previous result, and stops at maxIterations', async () => {
    const u = inputs(40);
    const seen: number[] = [];
    const partial = await evaluate(cell, u, { backend, method: 'deer', maxIterations: 2, onIteration: (i) => seen.push(i.iteration) });
    expect(seen).toEqual([1, 2]);
    expect(partial.iterations).toBe(2);
    expect(partial.converged).toBe(false);
    expect(partial.history).toHaveLength(2);
    const warm = await evaluate(cell, u, { backend, method: 'deer', initialGuess: partial, tolerance: 1e-12 });
    const cold = await evaluate(cell, u, { backend, method: 'deer', tolerance: 1e-12 });
    expect(warm.converged).toBe(true);
    expect(warm.iterations).toBeLessThan(cold.iterations);
    for (const r of [partial, warm, cold]) r.dispose();
    expect(backend.memory().tensors).toBe(0);
  });

  it('hands each iterate of every parallel method to onIterate: the last one is the result', async () => {
    const u = inputs(30);
    for (const method of ['deer', 'quasi-deer', 'elk', 'quasi-elk', 'auto'] as const) {
      const seen: { iteration: number; residual: number; method?: string; first: number }[] = [];
      let last: Float32Array | Float64Array | undefined;
      const r = await evaluate(cell, u, {
        backend,
        method,
        allowSequential: false,
        tolerance: 1e-12,
        onIterate: ({ info, states, shape }) => {
          expect(shape).toEqual([1, 30, D]);
          expect(states).toHaveLength(30 * D);
          seen.push({ iteration: info.iteration, residual: info.residual, method: info.method, first: states[0] });
          last = states;
        },
      });
      expect(seen.map((x) => x.iteration), method).toEqual(r.history.map((h) => h.iteration));
      expect(seen.map((x) => x.residual), method).toEqual(r.history.map((h) => h.residual));
      if (method === 'auto') expect(seen.every((x) => x.method !== undefined)).toBe(true);
      expect(Array.from(last!), method).toEqual(Array.from(await r.read()));
      r.dispose();
    }
    const seq: unknown[] = [];
    (await evaluate(cell, u, { backend, method: 'sequential', onIterate: (x) => seq.push(x) })).dispose();
    expect(seq).toEqual([]);
    await expect(evaluate(cell, u, { backend, onIterate: 3 as never })).rejects.toThrow(/options\.onIterate.*a function/s);
    expect(backend.memory().tensors).toBe(0);
  });

  it('aborts through an AbortSignal and frees everything', async () => {
    const controller = new AbortController();
    const run = evaluate(cell, inputs(30), {
      backend,
      method: 'quasi-deer',
      maxIterations: 10,
      onIteration: (i) => i.iteration === 2 && controller.abort(),
      signal: controller.signal,
    });
    await expect(run).rejects.toBeInstanceOf(AbortError);
    expect(backend.memory().tensors).toBe(0);
  });

  it('rejects bad input with typed errors before allocating', async () => {
    const before = backend.memory().tensors;
    await expect(evaluate(cell, [[1, 2, 3]], { backend })).rejects.toThrow(ShapeError);
    await expect(evaluate(cell, [[1, 2, 3, Number.NaN]], { backend })).rejects.toThrow(NonFiniteError);
    await expect(evaluate(cell, [], { backend })).rejects.toThrow(ShapeError);
    await expect(evaluate(cell, inputs(3), { backend, method: 'newton' as never })).rejects.toThrow(UnknownMethodError);
    await expect(evaluate(cell, inputs(3), { backend, tolerance: -1 })).rejects.toThrow(InvalidArgumentError);
    await expect(evaluate(cell, inputs(3), { backend, initialState: [1, 2] })).rejects.toThrow(/options.initialState/);
    await expect(evaluate(cell, inputs(3), { backend: 'no-such-backend' })).rejects.toThrow(/options.backend/);
    const small = new CpuBackend({ maxTotalBytes: 8000 });
    await expect(evaluate(cell, inputs(100), { backend: small, method: 'deer' })).rejects.toThrow(ResourceLimitError);
    expect(backend.memory().tensors).toBe(before);
    expect(small.memory().tensors).toBe(0);
  });

  it('error messages name the field, the expected and the received value', async () => {
    const err = await evaluate(cell, [[1, 2, 3]], { backend }).catch((e) => e);
    expect(err).toBeInstanceOf(ShapeError);
    expect(err.field).toBe('inputs');
    expect(err.expected).toContain('last dimension 4');
    expect(err.received).toContain('[1, 3]');
  });
});
